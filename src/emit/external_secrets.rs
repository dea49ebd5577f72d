//! External Secrets Operator (external-secrets.io/v1) documents for a key kept in AWS Secrets
//! Manager: an `ExternalSecret` whose `target.template` renders exactly the Secret sealkey
//! would have emitted (name, type, keys, labels, annotations), and optionally the AWS
//! `SecretStore`/`ClusterSecretStore` using IRSA (`auth.jwt.serviceAccountRef`).
//!
//! The Secret's values go to the store, never into these documents: each template entry reads
//! one property of the store's JSON secret.

use crate::error::{Error, Result};
use crate::secret::SecretText;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

/// ESO's annotation that makes it re-read the store now (any new value triggers a sync).
pub const FORCE_SYNC: &str = "force-sync";

/// The Secret's annotations that change with every key: they travel in the store secret (as
/// properties named like the annotation) and ESO's template renders them, so a rotation (a new
/// store version) updates them without touching the ExternalSecret in git.
pub const PER_KEY_ANNOTATIONS: [&str; 3] = [
    crate::emit::keys::FINGERPRINT,
    crate::emit::keys::KEY_TYPE,
    crate::emit::keys::CREATED,
];

/// The ExternalSecret `secretKey` for a per-key annotation (`/` is not allowed there).
pub fn annotation_secret_key(annotation: &str) -> String {
    annotation.replace('/', "-")
}

/// Which kind of store the ExternalSecret refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreKind {
    /// A namespaced `SecretStore`.
    SecretStore,
    /// A cluster-wide `ClusterSecretStore`.
    ClusterSecretStore,
}

impl StoreKind {
    /// The Kubernetes kind.
    pub fn as_str(self) -> &'static str {
        match self {
            StoreKind::SecretStore => "SecretStore",
            StoreKind::ClusterSecretStore => "ClusterSecretStore",
        }
    }
}

/// What the ESO documents refer to; no secrets in here.
#[derive(Clone, Debug)]
pub struct ExternalSecretSettings {
    /// The Secrets Manager secret's name.
    pub remote_name: String,
    /// The (Cluster)SecretStore's name.
    pub store_name: String,
    /// Its kind.
    pub store_kind: StoreKind,
    /// How often ESO re-reads the store (`1h`).
    pub refresh_interval: String,
    /// The store's AWS region.
    pub region: String,
    /// With `Some(SA)`, also emit the store, authenticating as that IRSA ServiceAccount.
    pub irsa_service_account: Option<String>,
}

/// The fields of the consumer's Secret as one JSON object (`{"gitSshKey": "-----BEGIN..."}`):
/// what goes into Secrets Manager. Wiped when dropped; no `Clone`, `Display` or `Serialize`.
pub struct StoreValue(Zeroizing<String>);

impl std::fmt::Debug for StoreValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreValue(<redacted>)")
    }
}

impl StoreValue {
    /// Wraps a JSON text (read back from the store).
    pub fn from_json(text: Zeroizing<String>) -> Self {
        Self(text)
    }

    /// The JSON text, for the one call that sends it.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The field `name` of the JSON object, if there.
    pub fn field(&self, name: &str) -> Option<SecretText> {
        let mut v: Value = serde_json::from_str(&self.0).ok()?;
        let out = v
            .get(name)
            .and_then(Value::as_str)
            .map(|s| SecretText::new(s.to_string()));
        crate::secret::wipe_value(&mut v);
        out
    }
}

/// The Secret's values (`data` base64-decoded, `stringData` as is) as a [`StoreValue`], and the
/// sorted list of its keys.
pub fn store_value(secret: &Value) -> Result<(StoreValue, Vec<String>)> {
    let name = secret["metadata"]["name"]
        .as_str()
        .unwrap_or("?")
        .to_string();
    let mut fields = Map::new();
    if let Some(data) = secret["data"].as_object() {
        for (k, v) in data {
            let b64 = v.as_str().unwrap_or_default();
            let bytes = Zeroizing::new(
                base64::engine::general_purpose::STANDARD
                    .decode(b64)
                    .map_err(|_| {
                        Error::input(
                            format!("Secret {name} key {k}"),
                            "not base64",
                            "report this as a sealkey bug",
                        )
                    })?,
            );
            let text = std::str::from_utf8(&bytes).map_err(|_| {
                Error::input(
                    format!("Secret {name} key {k}"),
                    "not UTF-8 text, which a Secrets Manager JSON field cannot hold",
                    "report this as a sealkey bug",
                )
            })?;
            fields.insert(k.clone(), Value::String(text.to_string()));
        }
    }
    if let Some(data) = secret["stringData"].as_object() {
        for (k, v) in data {
            fields.insert(k.clone(), v.clone());
        }
    }
    let keys: Vec<String> = fields.keys().cloned().collect();
    if let Some(ann) = secret["metadata"]["annotations"].as_object() {
        for (k, v) in ann {
            let per_key =
                PER_KEY_ANNOTATIONS.contains(&k.as_str()) || k == "sealkey.io/previous-fingerprint";
            if per_key && !fields.contains_key(k) {
                fields.insert(k.clone(), v.clone());
            }
        }
    }
    let mut obj = Value::Object(fields);
    let text = Zeroizing::new(serde_json::to_string(&obj).expect("JSON of strings"));
    crate::secret::wipe_value(&mut obj);
    Ok((StoreValue(text), keys))
}

/// The ExternalSecret that renders `secret` (sealkey's Secret, values ignored) from the store.
pub fn external_secret(secret: &Value, keys: &[String], s: &ExternalSecretSettings) -> Value {
    let meta = &secret["metadata"];
    let name = meta["name"].clone();
    let mut template_meta = Map::new();
    let mut per_key = Vec::new();
    for field in ["labels", "annotations"] {
        if let Some(m) = meta[field].as_object() {
            let mut m = m.clone();
            if field == "annotations" {
                for (k, v) in m.iter_mut() {
                    if PER_KEY_ANNOTATIONS.contains(&k.as_str()) {
                        let sk = annotation_secret_key(k);
                        *v = json!(format!("{{{{ index . \"{sk}\" }}}}"));
                        per_key.push((sk, k.clone()));
                    }
                }
            }
            if !m.is_empty() {
                template_meta.insert(field.into(), Value::Object(m));
            }
        }
    }
    let data: Vec<Value> = keys
        .iter()
        .map(|k| (k.clone(), k.clone()))
        .chain(per_key)
        .map(|(k, property)| {
            json!({
                "secretKey": k,
                "remoteRef": {
                    "key": s.remote_name,
                    "property": property,
                    "conversionStrategy": "Default",
                    "decodingStrategy": "None",
                },
            })
        })
        .collect();
    let mut template_data = Map::new();
    for k in keys {
        // `index` works for every key name (`ssh-privatekey`, `identity.pub`), `.key` does not.
        template_data.insert(k.clone(), json!(format!("{{{{ index . \"{k}\" }}}}")));
    }
    let mut labels = meta["labels"].as_object().cloned().unwrap_or_default();
    labels.retain(|k, _| k == crate::emit::keys::MANAGED_BY);
    json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {
            "name": name,
            "namespace": meta["namespace"],
            "labels": labels,
            "annotations": {
                "sealkey.io/store": format!("aws-secrets-manager:{}", s.remote_name),
            },
        },
        "spec": {
            "refreshInterval": s.refresh_interval,
            "secretStoreRef": { "name": s.store_name, "kind": s.store_kind.as_str() },
            "target": {
                "name": name,
                "creationPolicy": "Owner",
                "deletionPolicy": "Retain",
                "template": {
                    "engineVersion": "v2",
                    "mergePolicy": "Replace",
                    "type": secret["type"].as_str().unwrap_or("Opaque"),
                    "metadata": Value::Object(template_meta),
                    "data": Value::Object(template_data),
                },
            },
            "data": data,
        },
    })
}

/// The AWS Secrets Manager store using IRSA (`auth.jwt.serviceAccountRef`), if asked for.
pub fn secret_store(namespace: &str, s: &ExternalSecretSettings) -> Option<Value> {
    let sa = s.irsa_service_account.as_ref()?;
    let mut sa_ref = json!({ "name": sa });
    let mut metadata = json!({
        "name": s.store_name,
        "labels": { crate::emit::keys::MANAGED_BY: "sealkey" },
    });
    match s.store_kind {
        StoreKind::SecretStore => metadata["namespace"] = json!(namespace),
        // A cluster-wide store names the ServiceAccount's namespace.
        StoreKind::ClusterSecretStore => sa_ref["namespace"] = json!(namespace),
    }
    Some(json!({
        "apiVersion": "external-secrets.io/v1",
        "kind": s.store_kind.as_str(),
        "metadata": metadata,
        "spec": {
            "provider": {
                "aws": {
                    "service": "SecretsManager",
                    "region": s.region,
                    "auth": { "jwt": { "serviceAccountRef": sa_ref } },
                },
            },
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> ExternalSecretSettings {
        ExternalSecretSettings {
            remote_name: "dev/airflow-ssh".into(),
            store_name: "sealkey-aws".into(),
            store_kind: StoreKind::SecretStore,
            refresh_interval: "1h".into(),
            region: "eu-west-1".into(),
            irsa_service_account: Some("external-secrets".into()),
        }
    }

    #[test]
    fn the_template_renders_the_secrets_keys_type_and_labels_and_no_value() {
        let secret = json!({
            "apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/ssh-auth",
            "metadata": {"name": "git-creds", "namespace": "dev",
                "labels": {"app.kubernetes.io/managed-by": "sealkey"},
                "annotations": {"sealkey.io/fingerprint": "SHA256:abc"}},
            "data": {"ssh-privatekey": "Q0FOQVJZ", "known_hosts": "aG9zdA=="},
        });
        let (value, keys) = store_value(&secret).unwrap();
        assert_eq!(
            value.field("ssh-privatekey").unwrap().expose_secret(),
            "CANARY"
        );
        assert_eq!(format!("{value:?}"), "StoreValue(<redacted>)");
        let es = external_secret(&secret, &keys, &settings());
        let text = serde_json::to_string(&es).unwrap();
        assert!(!text.contains("CANARY") && !text.contains("Q0FOQVJZ"));
        let t = &es["spec"]["target"]["template"];
        assert_eq!(t["type"], "kubernetes.io/ssh-auth");
        assert_eq!(
            t["data"]["ssh-privatekey"],
            "{{ index . \"ssh-privatekey\" }}"
        );
        assert_eq!(
            t["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "sealkey"
        );
        assert_eq!(es["spec"]["target"]["name"], "git-creds");
        let properties: Vec<&str> = es["spec"]["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["remoteRef"]["property"].as_str().unwrap())
            .collect();
        assert_eq!(
            properties,
            ["ssh-privatekey", "known_hosts", "sealkey.io/fingerprint"]
        );
        // The per-key annotation is rendered from the store, which holds it.
        assert_eq!(
            t["metadata"]["annotations"]["sealkey.io/fingerprint"],
            "{{ index . \"sealkey.io-fingerprint\" }}"
        );
        assert_eq!(
            value
                .field("sealkey.io/fingerprint")
                .unwrap()
                .expose_secret(),
            "SHA256:abc"
        );
        let store = secret_store("dev", &settings()).unwrap();
        assert_eq!(
            store["spec"]["provider"]["aws"]["auth"]["jwt"]["serviceAccountRef"]["name"],
            "external-secrets"
        );
    }
}
