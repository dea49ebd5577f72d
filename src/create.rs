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

/// What `create --apply` wrote.
#[derive(Debug)]
pub struct Applied {
    /// The new key.
    pub key: DeployKey,
    /// `NAMESPACE/NAME` of each Secret written.
    pub secrets: Vec<String>,
    /// How the last write reached the server.
    pub method: crate::cluster::WriteMethod,
    /// GitHub's id of the key, when it was registered.
    pub registered_id: Option<u64>,
}

/// The steps of `create --apply`, for progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplyStep {
    /// Registering the key read-only.
    Register,
    /// Writing the Secret.
    Apply,
}

/// `create --apply`: generates the key and writes its Secret straight into the cluster (server-side
/// apply, field manager `sealkey`); nothing is emitted or sealed. Refuses, before a key exists,
/// when the Secret is already there with a private key in it (that is `sealkey rotate`'s job).
/// With `register` (a repository's deploy keys and a title) the key is registered read-only
/// first; if the apply then fails, it is deleted again and the error says so.
pub async fn apply<R: crate::rotate::DeployKeyRegistry>(
    settings: &CreateSettings,
    cluster: &crate::cluster::Cluster,
    register: Option<(&R, &str)>,
    progress: &dyn Fn(ApplyStep),
) -> Result<Applied> {
    use crate::error::Error;
    settings.emit.validate()?;
    let (ns, name) = (
        settings.emit.namespace.as_str(),
        settings.emit.secret_name(),
    );
    if let Some(existing) = cluster.get_secret(ns, &name).await? {
        if crate::rotate::key_in_secret(&existing, Some(settings.emit.consumer)).is_ok() {
            return Err(Error::input(
                format!("--namespace {ns} --secret-name {name}"),
                "this Secret already exists and holds a deploy key",
                "rotate it with `sealkey rotate --apply` (keeps GitHub and the cluster in step), or pick another --secret-name",
            ));
        }
    }
    let key = DeployKey::generate(settings.key_type, &settings.comment)?;
    let stream = emit::emit(&settings.emit, &key, &settings.known_hosts)?;
    let registered_id = match register {
        Some((registry, title)) => {
            progress(ApplyStep::Register);
            match crate::rotate::register_read_only(registry, title, &key).await {
                Ok(id) => Some(id),
                Err((e, undone)) => {
                    return Err(Error::Rotation {
                        step: "register new key".into(),
                        undone,
                        source: Box::new(e),
                    })
                }
            }
        }
        None => None,
    };
    progress(ApplyStep::Apply);
    let mut secrets = Vec::new();
    let mut method = crate::cluster::WriteMethod::Apply;
    for doc in stream.docs().iter().filter(|d| d["kind"] == "Secret") {
        match cluster.write_secret(doc).await {
            Ok(m) => method = m,
            Err(e) => {
                let undone = match (register, registered_id) {
                    (Some((registry, _)), Some(id)) => {
                        crate::rotate::undo_registration(registry, id, key.public_openssh()).await
                    }
                    _ => "nothing was registered".into(),
                };
                return Err(Error::Rotation {
                    step: "apply Secret".into(),
                    undone,
                    source: Box::new(e),
                });
            }
        }
        secrets.push(format!(
            "{}/{}",
            doc["metadata"]["namespace"].as_str().unwrap_or_default(),
            doc["metadata"]["name"].as_str().unwrap_or_default()
        ));
    }
    Ok(Applied {
        key,
        secrets,
        method,
        registered_id,
    })
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
                    assert!(std::str::from_utf8(created.output.expose_bytes())
                        .unwrap()
                        .contains(&b64[100..160]));
                }
            }
        }
    }
}
