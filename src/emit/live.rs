//! The consumer's Secret as it lives in a cluster: find the private key in it (by the
//! consumer's layout), and rebuild it around a new key for rotation, keeping everything else.

use super::keys::{self, CONTENT_COPY_ANNOTATIONS, PREVIOUS_FINGERPRINT};
use super::{b64, secret_value, Consumer, ManifestStream};
use crate::cluster::LiveSecret;
use crate::error::{Command, Error, Result, Setting};
use crate::keygen::DeployKey;
use crate::message;
use crate::secret::PrivateKeyPem;
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

/// The private key found in a live Secret.
#[derive(Debug)]
pub struct SecretKey {
    /// The data key holding it (`gitSshKey`, `identity`, ...).
    pub field: String,
    /// The key.
    pub key: DeployKey,
}

/// Finds the private key in a Secret: under `consumer`'s field, else under the field of the
/// consumer named by its `sealkey.io/for` annotation, else under any field a consumer uses.
pub fn key_in_secret(secret: &LiveSecret, consumer: Option<Consumer>) -> Result<SecretKey> {
    let from_annotation = secret
        .annotations
        .get(keys::CONSUMER)
        .and_then(|s| <Consumer as clap::ValueEnum>::from_str(s, false).ok());
    let all = [
        Consumer::AirflowChart,
        Consumer::GitSync,
        Consumer::Flux,
        Consumer::Argocd,
        Consumer::Generic,
    ];
    let fields: Vec<&str> = match consumer.or(from_annotation) {
        Some(c) => vec![c.private_key_field()],
        None => all.iter().map(|c| c.private_key_field()).collect(),
    };
    let what = format!("Secret {}/{}", secret.namespace, secret.name);
    for field in &fields {
        if let Some(key) = key_at(secret, field, &format!("{what} key {field}")) {
            return Ok(SecretKey {
                field: field.to_string(),
                key,
            });
        }
    }
    Err(Error::input(
        what,
        format!(
            "holds no passphrase-less OpenSSH private key under {}",
            fields.join(", ")
        ),
        message!(
            "pass {} CONSUMER matching how the Secret was made, or create it with `{} {}`",
            Setting::Consumer,
            Command::Create,
            Setting::Apply
        ),
    ))
}

/// The fingerprint of the key under `field`, if it holds one.
pub fn fingerprint_in(secret: &LiveSecret, field: &str) -> Option<String> {
    key_at(secret, field, "live Secret").map(|k| k.fingerprint().to_string())
}

fn key_at(secret: &LiveSecret, field: &str, what: &str) -> Option<DeployKey> {
    let text = std::str::from_utf8(secret.value(field)?.expose_secret()).ok()?;
    let pem = PrivateKeyPem::new(text.to_string());
    DeployKey::from_openssh(&pem, what).ok()
}

/// The Secret with the new key in place of the old: every other data key, label and annotation
/// kept (Flux's `identity.pub` follows the new key); fingerprint, key type, creation time and
/// previous fingerprint annotations updated; content-copy annotations (kubectl's last-applied,
/// which holds the old key in clear) dropped. `in_place`: the document replaces the live object
/// (its `resourceVersion` goes with it, so the write fails with 409 if the Secret changed since
/// it was read). Otherwise it is a file for git or a store, which carries only what sealkey and
/// the user put there: the labels and annotations of Helm, Flux, Argo CD, ESO and Sealed Secrets
/// ([`controller_metadata`]) are dropped, or the next reader would take the file for theirs.
pub fn rotated_secret(
    secret: &LiveSecret,
    field: &str,
    new: &DeployKey,
    old_fingerprint: &str,
    in_place: bool,
    now: jiff::Timestamp,
) -> Result<ManifestStream> {
    let kept = |k: &str, v: &str| in_place || !controller_metadata(k, v);
    let mut data = Map::new();
    for (k, v) in &secret.data {
        data.insert(k.clone(), secret_value(b64(v.expose_secret())));
    }
    let pem = new.private_pem()?;
    data.insert(
        field.to_string(),
        secret_value(b64(pem.expose_secret().as_bytes())),
    );
    if data.contains_key("identity.pub") {
        let public = Zeroizing::new(format!("{}\n", new.public_openssh()));
        data.insert(
            "identity.pub".into(),
            json!(b64(public.as_bytes()).as_str()),
        );
    }
    let mut annotations: Map<String, Value> = secret
        .annotations
        .iter()
        .filter(|(k, v)| !CONTENT_COPY_ANNOTATIONS.contains(&k.as_str()) && kept(k, v))
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    annotations.insert(keys::FINGERPRINT.into(), json!(new.fingerprint()));
    annotations.insert(keys::KEY_TYPE.into(), json!(new.key_type().as_str()));
    annotations.insert(
        keys::CREATED.into(),
        json!(now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
    );
    annotations.insert(PREVIOUS_FINGERPRINT.into(), json!(old_fingerprint));
    let mut metadata = json!({
        "name": secret.name,
        "namespace": secret.namespace,
    });
    if in_place {
        if let Some(rv) = &secret.resource_version {
            metadata["resourceVersion"] = json!(rv);
        }
    }
    let labels: Map<String, Value> = secret
        .labels
        .iter()
        .filter(|(k, v)| kept(k, v))
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    if !labels.is_empty() {
        metadata["labels"] = Value::Object(labels);
    }
    metadata["annotations"] = Value::Object(annotations);
    let mut doc = json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": metadata,
    });
    if let Some(t) = &secret.type_ {
        doc["type"] = json!(t);
    }
    doc["data"] = Value::Object(data);
    Ok(ManifestStream::from_docs(vec![doc]))
}

/// Whether label or annotation `key` (with `value`) was put on a live object by a controller
/// (Helm and its hooks, Flux's helm- and kustomize-controllers, Argo CD, ESO, Sealed Secrets,
/// kubectl) rather than by the user or sealkey; so do `app.kubernetes.io/managed-by: Helm` and
/// the Airflow chart's `heritage: Helm`. Argo CD's tracking label
/// `app.kubernetes.io/instance` does not: users set it too, and Argo CD puts it back.
pub fn controller_metadata(key: &str, value: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "meta.helm.sh/",
        "helm.sh/",
        "helm.toolkit.fluxcd.io/",
        "kustomize.toolkit.fluxcd.io/",
        "argocd.argoproj.io/",
        "reconcile.external-secrets.io/",
        "sealedsecrets.bitnami.com/",
        "kubectl.kubernetes.io/",
    ];
    PREFIXES.iter().any(|p| key.starts_with(p))
        || (key == "app.kubernetes.io/managed-by" && value == "Helm")
        || (key == "heritage" && value == "Helm")
}

/// The index of the HelmRelease in `docs` whose `spec.values.extraSecrets` has an entry
/// `secret_name` (the Airflow chart renders it as that Secret, as a Helm hook).
pub fn extra_secret_release(docs: &[Value], secret_name: &str) -> Option<usize> {
    docs.iter().position(|d| {
        d["kind"] == "HelmRelease" && d["spec"]["values"]["extraSecrets"][secret_name].is_object()
    })
}

/// `docs` with the new key in the `extraSecrets` entry `secret_name` of HelmRelease `index`:
/// the entry's `data` (a YAML block of `KEY: BASE64` lines the chart renders into the Secret)
/// keeps every other line; sealkey's annotations on the HelmRelease, when present, name the new
/// key. Everything else is kept as it was.
pub fn with_rotated_extra_secret(
    docs: &[Value],
    index: usize,
    secret_name: &str,
    field: &str,
    new: &DeployKey,
    now: jiff::Timestamp,
) -> Result<ManifestStream> {
    let what = format!("HelmRelease values.extraSecrets.{secret_name}.data");
    let mut out = ManifestStream::from_docs(docs.to_vec());
    let doc = out.doc_mut(index);
    let entry = &mut doc["spec"]["values"]["extraSecrets"][secret_name];
    let data_text = entry["data"].as_str().unwrap_or_default();
    let mut data = match data_text.trim() {
        "" => Value::Object(Map::new()),
        text => crate::yaml::parse_stream(text, &what)?
            .into_iter()
            .next()
            .unwrap_or(Value::Null),
    };
    let Some(map) = data.as_object_mut() else {
        crate::secret::wipe_value(&mut data);
        return Err(Error::input(
            what,
            "is not a mapping of Secret keys to base64 values",
            message!(
                "fix the HelmRelease by hand, or make it again with `{} {} extra-secrets`",
                Command::Create,
                Setting::Emit
            ),
        ));
    };
    let pem = new.private_pem()?;
    map.insert(
        field.to_string(),
        secret_value(b64(pem.expose_secret().as_bytes())),
    );
    let text = crate::yaml::to_yaml(&data);
    crate::secret::wipe_value(&mut data);
    if let Some(old) = entry.get_mut("data") {
        crate::secret::wipe_value(old);
    }
    entry["data"] = secret_value(text);
    if let Some(a) = doc["metadata"]["annotations"].as_object_mut() {
        if a.contains_key(keys::FINGERPRINT) {
            a.insert(keys::FINGERPRINT.into(), json!(new.fingerprint()));
            a.insert(keys::KEY_TYPE.into(), json!(new.key_type().as_str()));
            a.insert(
                keys::CREATED.into(),
                json!(now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()),
            );
        }
    }
    Ok(out)
}
