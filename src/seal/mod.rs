//! Sealing emitted manifests so they can be stored or committed: age (one armored file for the
//! whole stream), SOPS (per object, what Flux decrypts) and Bitnami Sealed Secrets.

pub mod age;
pub mod guard;
pub mod inspect;
pub mod kms;
pub mod sealed_secrets;
pub mod sops;
pub mod sops_config;

/// How output is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SealMethod {
    /// The whole YAML stream as one ASCII-armored age file, for people and backups (`age -d` or
    /// `sealkey unseal` opens it); no GitOps controller decrypts it.
    Age,
    /// One SOPS (age) document per Kubernetes object, as Flux's kustomize-controller decrypts it
    /// (the default with --seal-to).
    Sops,
    /// Bitnami SealedSecrets for a controller's certificate (Secrets only; other objects pass).
    SealedSecrets,
    /// No sealing: plaintext, allowed only to a pipe (`| kubectl create -f -`), never a file or terminal.
    None,
}

impl SealMethod {
    /// The command-line name.
    pub fn as_str(self) -> &'static str {
        match self {
            SealMethod::Age => "age",
            SealMethod::Sops => "sops",
            SealMethod::SealedSecrets => "sealed-secrets",
            SealMethod::None => "none",
        }
    }
}

use crate::emit::ManifestStream;
use crate::error::{Error, Result};
use crate::secret::SecretText;

/// A sealing method with everything it needs (recipients, certificates).
pub enum SealSettings {
    /// age to these recipients.
    Age(Vec<age::Recipient>),
    /// SOPS to age recipients, per object.
    Sops(sops::SopsSettings),
    /// Sealed Secrets for a controller certificate and scope.
    SealedSecrets(sealed_secrets::SealedSecretsSettings),
    /// Plaintext (only for a pipe).
    None,
}

impl std::fmt::Debug for SealSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SealSettings::Age(r) => write!(f, "Age({} recipients)", r.len()),
            SealSettings::Sops(s) => write!(f, "Sops({s:?})"),
            SealSettings::SealedSecrets(s) => write!(f, "SealedSecrets({s:?})"),
            SealSettings::None => f.write_str("None"),
        }
    }
}

impl SealSettings {
    /// The method's command-line name.
    pub fn method(&self) -> SealMethod {
        match self {
            SealSettings::Age(_) => SealMethod::Age,
            SealSettings::Sops(_) => SealMethod::Sops,
            SealSettings::SealedSecrets(_) => SealMethod::SealedSecrets,
            SealSettings::None => SealMethod::None,
        }
    }
}

/// Output of a seal step: ciphertext that may go anywhere, or plaintext that may only go to a pipe.
#[derive(Debug)]
pub enum SealedOutput {
    /// Safe to store and commit.
    Sealed(String),
    /// Holds secrets in clear.
    Plaintext(SecretText),
}

impl SealedOutput {
    /// The bytes to write: plaintext for [`SealedOutput::Plaintext`], hence the `expose_` name
    /// (greppable, as for the secret types).
    pub fn expose_bytes(&self) -> &[u8] {
        match self {
            SealedOutput::Sealed(s) => s.as_bytes(),
            SealedOutput::Plaintext(t) => t.expose_secret().as_bytes(),
        }
    }

    /// Whether the output holds secrets in clear.
    pub fn is_plaintext(&self) -> bool {
        matches!(self, SealedOutput::Plaintext(_))
    }
}

/// Seals an emitted stream. The result passes [`guard`]: no private-key material and no Secret
/// value of the stream is left in clear, whatever the method and its settings.
pub fn seal_stream(stream: &ManifestStream, settings: &SealSettings) -> Result<SealedOutput> {
    let sealed = match settings {
        SealSettings::Age(recipients) => {
            let text = stream.to_yaml();
            age::seal_text(text.expose_secret().as_bytes(), recipients)?
        }
        SealSettings::Sops(s) => sops::seal_documents(stream.expose_docs(), s)?,
        SealSettings::SealedSecrets(s) => {
            if stream.key_inline_in_values() {
                return Err(Error::input(
                    crate::message!(
                        "{} extra-secrets {} sealed-secrets",
                        crate::error::Setting::Emit,
                        crate::error::Setting::Seal
                    ),
                    "the key sits inside the HelmRelease's values, which a SealedSecret cannot hold",
                    crate::message!(
                        "use {} sops for this shape, or {} secret/helmrelease with Sealed Secrets",
                        crate::error::Setting::Seal,
                        crate::error::Setting::Emit
                    ),
                ));
            }
            sealed_secrets::seal_documents(stream.expose_docs(), s, true)?
        }
        SealSettings::None => return Ok(SealedOutput::Plaintext(stream.to_yaml())),
    };
    checked(sealed, Some(stream.expose_docs()), settings)
}

use crate::emit::keys::CONTENT_COPY_ANNOTATIONS;

/// The server's bookkeeping in `metadata`: never carried into sealed output.
pub(crate) const SERVER_FIELDS: &[&str] = &[
    "ownerReferences",
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "managedFields",
];

/// Whether [`strip_metadata`] would change `meta` (so the caller copies the object only then).
pub(crate) fn needs_strip(meta: &serde_json::Map<String, serde_json::Value>) -> bool {
    SERVER_FIELDS.iter().any(|k| meta.contains_key(*k))
        || meta
            .get("annotations")
            .and_then(serde_json::Value::as_object)
            .is_some_and(|a| CONTENT_COPY_ANNOTATIONS.iter().any(|k| a.contains_key(*k)))
}

/// Removes what a sealed object must not carry: last-applied copies of its content and the
/// server's bookkeeping (`managedFields`, `uid`, `resourceVersion`, `creationTimestamp`,
/// `ownerReferences`). An emptied `annotations` map is removed.
pub(crate) fn strip_metadata(meta: &mut serde_json::Map<String, serde_json::Value>) {
    for k in SERVER_FIELDS {
        meta.remove(*k);
    }
    if let Some(annotations) = meta
        .get_mut("annotations")
        .and_then(serde_json::Value::as_object_mut)
    {
        for a in CONTENT_COPY_ANNOTATIONS {
            annotations.shift_remove(*a);
        }
        if annotations.is_empty() {
            meta.shift_remove("annotations");
        }
    }
}

/// The one way to [`SealedOutput::Sealed`]: the last check on everything sealkey seals.
fn checked(
    sealed: String,
    plain: Option<&[serde_json::Value]>,
    settings: &SealSettings,
) -> Result<SealedOutput> {
    let guard = match plain {
        Some(docs) => guard::Guard::for_plaintext(docs),
        None => guard::Guard::key_markers(),
    };
    guard.check_text(
        &sealed,
        &format!("the {} output", settings.method().as_str()),
    )?;
    Ok(SealedOutput::Sealed(sealed))
}

/// Seals arbitrary YAML read from stdin (`sealkey seal`). The text must parse as YAML.
pub fn seal_yaml_text(
    text: &SecretText,
    what: &str,
    settings: &SealSettings,
) -> Result<SealedOutput> {
    let no_docs = || {
        Error::input(what, "no YAML documents to seal", "pipe in a manifest, e.g. `kubectl create secret generic x --from-file=k=FILE --dry-run=client -o yaml`")
    };
    // age seals the bytes exactly as given, comments and all: the text only has to be YAML,
    // which is checked without building the documents.
    // The check and the encryption are independent: run them side by side (nothing is
    // written until both are done, so a failed check still loses nothing).
    if let SealSettings::Age(recipients) = settings {
        let plain = text.expose_secret();
        let (check, sealed) = std::thread::scope(|scope| {
            let check = scope.spawn(|| crate::yaml::has_documents(plain, what));
            let sealed = age::seal_text(plain.as_bytes(), recipients);
            (check.join(), sealed)
        });
        match check {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => return Err(no_docs()),
            Ok(Err(e)) => return Err(e),
            Err(panic) => std::panic::resume_unwind(panic),
        }
        return checked(sealed?, None, settings);
    }
    let docs = crate::yaml::parse_stream(text.expose_secret(), what)?;
    if docs.is_empty() {
        return Err(no_docs());
    }
    let stream = ManifestStream::from_docs(docs);
    let sealed = match settings {
        SealSettings::Age(_) => unreachable!("handled above"),
        SealSettings::Sops(s) => sops::seal_documents(stream.expose_docs(), s)?,
        SealSettings::SealedSecrets(s) => {
            sealed_secrets::seal_documents(stream.expose_docs(), s, false)?
        }
        SealSettings::None => return Ok(SealedOutput::Plaintext(stream.to_yaml())),
    };
    checked(sealed, Some(stream.expose_docs()), settings)
}
