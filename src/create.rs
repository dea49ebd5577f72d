//! The core pipeline behind `sealkey create`: generate a deploy key in memory, emit the
//! consumer's manifests around it, seal them. Registration and cluster apply hook in around it.

use crate::emit::{self, EmitSettings};
use crate::error::Result;
use crate::keygen::{DeployKey, KeyType};
use crate::known_hosts::KnownHosts;
use crate::seal::{self, SealSettings, SealedOutput};

/// Everything `create` needs; no secrets in here.
#[derive(Debug)]
pub struct CreateSettings {
    /// Algorithm of the new key.
    pub key_type: KeyType,
    /// Comment stored in the key (`sealkey:OWNER/REPO` by default).
    pub comment: String,
    /// What to emit.
    pub emit: EmitSettings,
    /// Host keys for the emitted configuration.
    pub known_hosts: KnownHosts,
    /// How to seal.
    pub seal: SealSettings,
}

/// The result: the key (for its public half and fingerprint) and the sealed or plaintext output.
#[derive(Debug)]
pub struct Created {
    /// The new key; its private half is inside `output` already.
    pub key: DeployKey,
    /// What to write.
    pub output: SealedOutput,
}

/// Validates settings, then generates, emits and seals. Nothing is written anywhere.
pub fn create(settings: &CreateSettings) -> Result<Created> {
    settings.emit.validate()?;
    let key = DeployKey::generate(settings.key_type, &settings.comment)?;
    let output = seal_key(settings, &key)?;
    Ok(Created { key, output })
}

/// Emits and seals the manifests for an existing key (rotation re-uses this).
pub fn seal_key(settings: &CreateSettings, key: &DeployKey) -> Result<SealedOutput> {
    let stream = emit::emit(&settings.emit, key, &settings.known_hosts)?;
    seal::seal_stream(&stream, &settings.seal)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emit::{Consumer, DocumentKind};
    use crate::repo::RepoRef;

    /// Canary: the Debug output of every settings and result type never shows the key.
    #[test]
    fn debug_of_settings_and_results_never_shows_the_key() {
        let recipient =
            "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p".to_string();
        for (consumer, doc) in [
            (Consumer::AirflowChart, DocumentKind::ExtraSecrets),
            (Consumer::GitSync, DocumentKind::Mount),
        ] {
            for seal in [
                SealSettings::Age(
                    crate::seal::age::parse_recipients(std::slice::from_ref(&recipient)).unwrap(),
                ),
                SealSettings::Sops(
                    crate::seal::sops::SopsSettings::new(std::slice::from_ref(&recipient), None)
                        .unwrap(),
                ),
                SealSettings::None,
            ] {
                let settings = CreateSettings {
                    key_type: KeyType::Ed25519,
                    comment: "sealkey:acme/dags".into(),
                    emit: EmitSettings::new(
                        RepoRef::parse("acme/dags").unwrap(),
                        "dev",
                        consumer,
                        doc,
                    ),
                    known_hosts: KnownHosts::github_pinned(),
                    seal,
                };
                let created = create(&settings).unwrap();
                let pem = created.key.private_pem().unwrap();
                let body = pem.expose_secret().lines().nth(2).unwrap().to_string();
                let b64 = crate::emit::b64(pem.expose_secret().as_bytes());
                let shown = format!("{settings:?} {created:?} {:?} {pem:?}", created.output);
                assert!(!shown.contains(&body), "PEM body in Debug output");
                assert!(
                    !shown.contains(&b64[100..160]),
                    "base64 key in Debug output"
                );
                if matches!(settings.seal, SealSettings::None) {
                    // The plaintext really is in the output; only Debug hides it.
                    assert!(std::str::from_utf8(created.output.as_bytes())
                        .unwrap()
                        .contains(&b64[100..160]));
                }
            }
        }
    }
}
