//! Bitnami Sealed Secrets: the controller's certificate (PEM file or its `/v1/cert.pem` URL),
//! checked as kubeseal checks it, and `bitnami.com/v1alpha1` SealedSecrets whose values the
//! controller opens: per value, a fresh AES-256-GCM session key wrapped with RSA-OAEP-SHA256,
//! the OAEP label fixing the scope (bitnami-labs/sealed-secrets `pkg/crypto`, `v1alpha1`).

use crate::error::{Error, Result, Setting};
use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::Aes256Gcm;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rand_core::{OsRng, RngCore};
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::traits::PublicKeyParts;
use rsa::{Oaep, RsaPublicKey};
use serde_json::{json, Map, Value};
use x509_cert::der::DecodePem;
use zeroize::Zeroizing;

/// Annotation that makes a SealedSecret openable in any namespace under any name.
pub const CLUSTER_WIDE_ANNOTATION: &str = "sealedsecrets.bitnami.com/cluster-wide";
/// Annotation that makes a SealedSecret openable under any name in its namespace.
pub const NAMESPACE_WIDE_ANNOTATION: &str = "sealedsecrets.bitnami.com/namespace-wide";

/// Where a SealedSecret may be opened.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scope {
    /// Only under its own name and namespace (OAEP label `NAMESPACE/NAME`).
    #[default]
    Strict,
    /// Under any name in its namespace (label `NAMESPACE`).
    NamespaceWide,
    /// Anywhere (empty label).
    ClusterWide,
}

impl Scope {
    /// The command-line name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Strict => "strict",
            Scope::NamespaceWide => "namespace-wide",
            Scope::ClusterWide => "cluster-wide",
        }
    }

    /// The RSA-OAEP label for an object (sealed-secrets `EncryptionLabel`).
    pub fn label(self, namespace: &str, name: &str) -> String {
        match self {
            Scope::Strict => format!("{namespace}/{name}"),
            Scope::NamespaceWide => namespace.to_string(),
            Scope::ClusterWide => String::new(),
        }
    }
}

/// The controller's public key, taken from a certificate that is RSA and currently valid.
#[derive(Clone)]
pub struct ControllerCert {
    key: RsaPublicKey,
    source: String,
    not_after: jiff::Timestamp,
}

impl std::fmt::Debug for ControllerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerCert")
            .field("source", &self.source)
            .field("rsa_bits", &(self.key.size() * 8))
            .field("not_after", &self.not_after.to_string())
            .finish()
    }
}

const CERT_HINT: &str = "pass the controller's certificate: `kubeseal --fetch-cert > cert.pem`, or the URL of its /v1/cert.pem";

impl ControllerCert {
    /// Parses a PEM certificate and checks it as kubeseal does: RSA, not expired, not yet-to-come.
    /// `source` names it in errors (a path or URL).
    pub fn from_pem(pem: &[u8], source: &str, now: jiff::Timestamp) -> Result<Self> {
        let text = std::str::from_utf8(pem)
            .map_err(|_| Error::input(source, "not a PEM certificate (not text)", CERT_HINT))?;
        let start = text.find("-----BEGIN CERTIFICATE-----").ok_or_else(|| {
            Error::input(
                source,
                "no `-----BEGIN CERTIFICATE-----` block in it",
                CERT_HINT,
            )
        })?;
        let cert = x509_cert::Certificate::from_pem(&text.as_bytes()[start..]).map_err(|e| {
            Error::input(
                source,
                format!("not a readable X.509 certificate ({e})"),
                CERT_HINT,
            )
            .caused_by(e)
        })?;
        let tbs = &cert.tbs_certificate;
        let to_ts = |t: &x509_cert::time::Time| {
            jiff::Timestamp::from_second(t.to_unix_duration().as_secs() as i64)
                .unwrap_or(jiff::Timestamp::MAX)
        };
        let not_before = to_ts(&tbs.validity.not_before);
        let not_after = to_ts(&tbs.validity.not_after);
        if now > not_after {
            return Err(Error::input(
                source,
                format!("the certificate expired at {not_after}"),
                "the controller renews its key every 30 days: fetch the current certificate (`kubeseal --fetch-cert`)",
            ));
        }
        if now < not_before {
            return Err(Error::input(
                source,
                format!("the certificate is not valid before {not_before}"),
                "check this machine's clock, or fetch the controller's current certificate",
            ));
        }
        let spki = &tbs.subject_public_key_info;
        const RSA_ENCRYPTION: &str = "1.2.840.113549.1.1.1";
        if spki.algorithm.oid.to_string() != RSA_ENCRYPTION {
            return Err(Error::input(
                source,
                format!(
                    "the certificate's key is not RSA (algorithm {}); Sealed Secrets controllers use RSA keys",
                    spki.algorithm.oid
                ),
                CERT_HINT,
            ));
        }
        let key =
            RsaPublicKey::from_pkcs1_der(spki.subject_public_key.raw_bytes()).map_err(|e| {
                Error::input(
                    source,
                    format!("the certificate's RSA key is unreadable ({e})"),
                    CERT_HINT,
                )
                .caused_by(e)
            })?;
        if key.size() * 8 < 2048 {
            return Err(Error::input(
                source,
                format!("the RSA key has only {} bits", key.size() * 8),
                "use the controller's own certificate (RSA 4096 by default)",
            ));
        }
        Ok(Self {
            key,
            source: source.to_string(),
            not_after,
        })
    }

    /// Where the certificate came from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// When it expires.
    pub fn not_after(&self) -> jiff::Timestamp {
        self.not_after
    }
}

/// Whether a `--cert` value is a URL rather than a file.
pub fn is_url(cert: &str) -> bool {
    cert.starts_with("https://") || cert.starts_with("http://")
}

/// The longest answer accepted from a certificate URL (a controller's PEM is under 3 KiB).
pub const MAX_CERT_BYTES: usize = 64 * 1024;

/// The longest a certificate fetch may take, from connecting to the last byte.
const CERT_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30);

/// Fetches a certificate from the controller's `/v1/cert.pem` URL. Only https, except plain http
/// to this machine (`kubectl port-forward`/`kubectl proxy`); a redirect is reported, never
/// followed (it could lead anywhere, plain http included); the answer is capped at
/// [`MAX_CERT_BYTES`] and 30 s. Failures to reach it are remote errors (exit 3).
pub async fn fetch_cert_pem(url: &str) -> Result<Vec<u8>> {
    let parsed = reqwest::Url::parse(url).map_err(|e| {
        Error::input(
            crate::message!("{} {}", Setting::Cert, url.to_string()),
            format!("not a URL ({e})"),
            CERT_HINT,
        )
        .caused_by(e)
    })?;
    if !crate::http::may_send_to(&parsed) {
        return Err(Error::input(
            crate::message!("{} {}", Setting::Cert, url.to_string()),
            "plain http is only accepted to this machine (kubectl port-forward or proxy)",
            "use https://, or save the certificate with `kubeseal --fetch-cert > cert.pem`",
        ));
    }
    let client = crate::http::client(
        url,
        &parsed,
        Default::default(),
        std::time::Duration::from_secs(10),
    )?;
    let unreachable = |e: reqwest::Error| {
        Error::Http {
        service: url.to_string(),
        message: format!(
            "cannot fetch the certificate ({})",
            crate::http::sanitize_server_text(&error_chain(&e), &[])
        ),
        hint: "check the URL and that the controller is reachable (e.g. `kubectl -n kube-system port-forward svc/sealed-secrets-controller 8080`), or pass a saved cert.pem".into(),
        source: Box::new(e),
    }
    };
    let fetch = async {
        let mut resp = client
            .get(parsed.clone())
            .send()
            .await
            .map_err(unreachable)?;
        let status = resp.status();
        if status.is_redirection() {
            return Err(Error::remote(
                url,
                format!(
                    "answered HTTP {status}, a redirect to {}, which sealkey does not follow for a certificate",
                    crate::http::redirect_target(&parsed, resp.headers())
                ),
                "pass the controller's own /v1/cert.pem URL, or a saved cert.pem",
            ));
        }
        let body = crate::http::read_capped(&mut resp, MAX_CERT_BYTES).await;
        if !status.is_success() {
            // What the server said helps (`kubectl proxy` names the missing service), cleaned.
            let said = body
                .map(|b| crate::http::sanitize_server_text(&String::from_utf8_lossy(&b), &[]))
                .unwrap_or_default();
            let said = if said.is_empty() {
                String::new()
            } else {
                format!(" ({said})")
            };
            return Err(Error::remote(
                url,
                format!("answered HTTP {status}{said}"),
                "check the URL: the controller serves its certificate at /v1/cert.pem",
            ));
        }
        match body {
            Ok(body) => Ok(body),
            Err(crate::http::BodyError::TooLarge(cap)) => {
                Err(crate::http::BodyError::too_large(url, &parsed, cap))
            }
            Err(crate::http::BodyError::Transport(e)) => Err(unreachable(e)),
        }
    };
    tokio::time::timeout(CERT_DEADLINE, fetch)
        .await
        .map_err(|_| {
            Error::remote(
                url,
                format!(
                    "stopped after {} s without the whole certificate",
                    CERT_DEADLINE.as_secs()
                ),
                "the controller (or a proxy on the way) answers very slowly; check the URL, or pass a saved cert.pem",
            )
        })?
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// What `--seal sealed-secrets` needs.
#[derive(Debug, Clone)]
pub struct SealedSecretsSettings {
    /// The controller's key.
    pub cert: ControllerCert,
    /// Where the SealedSecrets may be opened.
    pub scope: Scope,
}

/// Seals one value: `u16 len || RSA-OAEP(session key) || AES-GCM(value)` (sealed-secrets
/// `HybridEncrypt`), base64.
pub fn hybrid_encrypt(key: &RsaPublicKey, plaintext: &[u8], label: &str) -> Result<String> {
    let mut session = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(&mut *session);
    let wrapped = key
        .encrypt(
            &mut OsRng,
            Oaep::new_with_label::<sha2::Sha256, _>(label),
            &*session,
        )
        .map_err(|e| {
            Error::crypto(
                label,
                format!("RSA-OAEP failed ({e})"),
                "check the certificate",
            )
        })?;
    // The session key is used once, so the all-zero nonce is safe (as in sealed-secrets).
    let cipher = Aes256Gcm::new_from_slice(&*session).expect("32-byte key");
    let sealed = cipher
        .encrypt(&Default::default(), plaintext)
        .map_err(|_| Error::crypto(label, "AES-GCM failed", "report this as a bug"))?;
    let mut out = Vec::with_capacity(2 + wrapped.len() + sealed.len());
    out.extend_from_slice(&(wrapped.len() as u16).to_be_bytes());
    out.extend_from_slice(&wrapped);
    out.extend_from_slice(&sealed);
    Ok(B64.encode(out))
}

/// Turns every `v1` Secret of `docs` into a SealedSecret. Other objects pass through unchanged
/// when `pass_through` is set (sealkey's own emitted ConfigMaps and patches hold no secret) and
/// are refused otherwise (stdin could hold secrets anywhere). Large streams are sealed on all
/// cores: each value costs an RSA-4096 operation.
pub fn seal_documents(
    docs: &[Value],
    settings: &SealedSecretsSettings,
    pass_through: bool,
) -> Result<String> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(docs.len().div_ceil(16))
        .max(1);
    let chunk = docs.len().div_ceil(threads).max(1);
    let parts: Vec<Result<Vec<Value>>> = std::thread::scope(|s| {
        let workers: Vec<_> = docs
            .chunks(chunk)
            .enumerate()
            .map(|(c, part)| {
                s.spawn(move || {
                    part.iter()
                        .enumerate()
                        .map(|(j, doc)| seal_one(doc, c * chunk + j, settings, pass_through))
                        .collect::<Result<Vec<_>>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().expect("a sealing thread panicked"))
            .collect()
    });
    let mut out = Vec::with_capacity(docs.len());
    for part in parts {
        out.extend(part?);
    }
    Ok(crate::yaml::to_yaml_stream(&out).to_string())
}

fn seal_one(
    doc: &Value,
    index: usize,
    settings: &SealedSecretsSettings,
    pass_through: bool,
) -> Result<Value> {
    let is_secret = doc["apiVersion"] == "v1" && doc["kind"] == "Secret";
    if is_secret {
        return seal_secret(doc, index, settings);
    }
    if pass_through {
        return Ok(doc.clone());
    }
    Err(Error::input(
        format!(
            "document {} ({})",
            index + 1,
            doc["kind"].as_str().unwrap_or("not a Kubernetes object")
        ),
        "Sealed Secrets seals only v1 Secrets",
        crate::message!(
            "pipe only Secrets into `{} {} sealed-secrets`, or use {} sops for other kinds",
            crate::error::Command::Seal,
            Setting::Seal,
            Setting::Seal
        ),
    ))
}

fn seal_secret(secret: &Value, index: usize, settings: &SealedSecretsSettings) -> Result<Value> {
    let meta = secret["metadata"].as_object().cloned().unwrap_or_default();
    let name = meta.get("name").and_then(Value::as_str).unwrap_or_default();
    let label_doc = format!("document {} (Secret {name})", index + 1);
    if name.is_empty() {
        return Err(Error::input(
            label_doc,
            "the Secret has no metadata.name",
            "give it a name",
        ));
    }
    let namespace = meta
        .get("namespace")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if namespace.is_empty() && settings.scope != Scope::ClusterWide {
        return Err(Error::input(
            label_doc,
            format!(
                "the Secret has no metadata.namespace, which {} scope seals into",
                settings.scope.as_str()
            ),
            crate::message!(
                "set metadata.namespace (or {}), or use {} cluster-wide",
                Setting::Namespace,
                Setting::Scope
            ),
        ));
    }
    let label = settings.scope.label(namespace, name);
    let mut encrypted = Map::new();
    if let Some(data) = secret.get("data").and_then(Value::as_object) {
        for (k, v) in data {
            let b64 = v.as_str().unwrap_or_default();
            let raw = Zeroizing::new(B64.decode(b64.trim()).map_err(|_| {
                Error::input(
                    format!("{label_doc} data.{k}"),
                    "not base64",
                    "Secret `data` values are base64; put plain text under `stringData`",
                )
            })?);
            encrypted.insert(
                k.clone(),
                json!(hybrid_encrypt(&settings.cert.key, &raw, &label)?),
            );
        }
    }
    if let Some(data) = secret.get("stringData").and_then(Value::as_object) {
        for (k, v) in data {
            let text = match v {
                Value::String(s) => Zeroizing::new(s.clone()),
                other => Zeroizing::new(other.to_string()),
            };
            encrypted.insert(
                k.clone(),
                json!(hybrid_encrypt(&settings.cert.key, text.as_bytes(), &label)?),
            );
        }
    }
    // The template keeps the Secret's metadata, minus what must not travel (sealed-secrets strips
    // last-applied copies, which hold the values in clear, and owner references).
    let mut template_meta = meta.clone();
    super::strip_metadata(&mut template_meta);
    let mut annotations = template_meta
        .get("annotations")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    annotations.remove(CLUSTER_WIDE_ANNOTATION);
    annotations.remove(NAMESPACE_WIDE_ANNOTATION);
    let mut scope_annotations = Map::new();
    match settings.scope {
        Scope::Strict => {}
        Scope::NamespaceWide => {
            scope_annotations.insert(NAMESPACE_WIDE_ANNOTATION.into(), json!("true"));
        }
        Scope::ClusterWide => {
            scope_annotations.insert(CLUSTER_WIDE_ANNOTATION.into(), json!("true"));
        }
    }
    annotations.extend(scope_annotations.clone());
    if annotations.is_empty() {
        template_meta.remove("annotations");
    } else {
        template_meta.insert("annotations".into(), Value::Object(annotations));
    }
    let mut template = Map::new();
    template.insert("metadata".into(), Value::Object(template_meta));
    if let Some(t) = secret.get("type") {
        template.insert("type".into(), t.clone());
    }
    if let Some(imm) = secret.get("immutable") {
        template.insert("immutable".into(), imm.clone());
    }
    let mut metadata = Map::new();
    metadata.insert("name".into(), json!(name));
    if !namespace.is_empty() {
        metadata.insert("namespace".into(), json!(namespace));
    }
    if let Some(labels) = meta.get("labels") {
        metadata.insert("labels".into(), labels.clone());
    }
    if !scope_annotations.is_empty() {
        metadata.insert("annotations".into(), Value::Object(scope_annotations));
    }
    Ok(json!({
        "apiVersion": "bitnami.com/v1alpha1",
        "kind": "SealedSecret",
        "metadata": metadata,
        "spec": {
            "encryptedData": encrypted,
            "template": template,
        },
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_the_scope() {
        assert_eq!(Scope::Strict.label("dev", "s"), "dev/s");
        assert_eq!(Scope::NamespaceWide.label("dev", "s"), "dev");
        assert_eq!(Scope::ClusterWide.label("dev", "s"), "");
    }

    #[test]
    fn garbage_and_missing_certificates_are_input_errors() {
        let now = jiff::Timestamp::now();
        for (bad, needle) in [
            (&b"hello"[..], "no `-----BEGIN CERTIFICATE-----`"),
            (
                b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
                "not a readable X.509",
            ),
            (&[0xff, 0xfe][..], "not text"),
        ] {
            let err = ControllerCert::from_pem(bad, "cert.pem", now).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            assert!(err.to_string().contains(needle), "{err}");
            assert!(err.to_string().starts_with("cert.pem:"), "{err}");
        }
    }
}
