//! The one pipeline behind every `sealkey create`: validate, generate a deploy key in memory,
//! emit the consumer's manifests around it, register it on GitHub (optional), then deliver it:
//! sealed to a file or stdout, or applied to the cluster. If delivery fails, the registration is
//! taken back through the one undo path ([`crate::github::registry::undo_registration`]).
//!
//! The CLI adapts flags to [`CreateSettings`] and prints; nothing here prints.

use crate::cluster::{Cluster, WriteMethod};
use crate::emit::{self, live::key_in_secret, EmitSettings};
use crate::error::{Command, Error, Result, Setting};
use crate::github::registry::{register_key, undo_registration, DeployKeyRegistry};
use crate::github::DeployKeyInfo;
use crate::keygen::{DeployKey, KeyType};
use crate::known_hosts::KnownHosts;
use crate::message;
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
    /// How to seal (ignored when the Secret is applied to a cluster).
    pub seal: SealSettings,
}

/// Registering the new key: where, under which title, with which access.
#[derive(Debug)]
pub struct Registration<'a, R> {
    /// The repository's deploy keys.
    pub registry: &'a R,
    /// The key title (see [`crate::github::title`]).
    pub title: String,
    /// Read-only unless the consumer must push.
    pub read_only: bool,
}

/// Writes sealed output somewhere (a file, stdout).
pub type Writer<'a> = Box<dyn FnOnce(&SealedOutput) -> Result<()> + 'a>;

/// Writes text that holds no secret (the ExternalSecret output) somewhere.
pub type TextWriter<'a> = Box<dyn FnOnce(&str) -> Result<()> + 'a>;

/// The store delivery: the client, where the key goes, and the writer of the ExternalSecret and
/// consumer documents.
pub struct StoreDelivery<'a> {
    /// AWS Secrets Manager.
    pub store: &'a crate::store::aws::SecretsManagerStore,
    /// Name, KMS key, adopt, tags, what the ExternalSecret refers to.
    pub settings: &'a crate::store::StoreSettings,
    /// Writes the documents (no secret in them: the guard checked).
    pub write: TextWriter<'a>,
}

/// Where the key goes once it exists (and is registered).
pub enum Delivery<'a> {
    /// Seal the manifests and hand them to the writer.
    Write(Writer<'a>),
    /// Write the Secret into the cluster (server-side apply, field manager `sealkey`); nothing
    /// is sealed or written. Refused, before a key exists, when the Secret is already there with
    /// a private key in it (that is `rotate`'s job).
    Apply(&'a Cluster),
    /// Put the key into AWS Secrets Manager (a new AWSCURRENT version) and write an
    /// ExternalSecret that renders the Secret, with the consumer's other documents. Refused,
    /// before a key exists, when the secret name belongs to something sealkey did not create
    /// (unless adopted).
    Store(StoreDelivery<'a>),
}

impl std::fmt::Debug for Delivery<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Delivery::Write(_) => f.write_str("Delivery::Write"),
            Delivery::Apply(c) => write!(f, "Delivery::Apply({})", c.server()),
            Delivery::Store(d) => write!(f, "Delivery::Store({})", d.settings.target.name),
        }
    }
}

/// The steps of `create`, for progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CreateStep {
    /// Checking the store's secret name (store delivery).
    Check,
    /// Generating the key in memory.
    Generate,
    /// Registering it on GitHub.
    Register,
    /// Sealing and writing the manifests.
    Seal,
    /// Applying the Secret to the cluster.
    Apply,
    /// Storing the key (store delivery).
    Store,
}

/// What `create` did.
#[derive(Debug)]
pub struct Created {
    /// The new key (its public half and fingerprint are the result).
    pub key: DeployKey,
    /// The key as GitHub holds it, when it was registered.
    pub registered: Option<DeployKeyInfo>,
    /// `NAMESPACE/NAME` of each Secret applied (with [`Delivery::Apply`]).
    pub applied: Vec<String>,
    /// How the last apply reached the server.
    pub method: Option<WriteMethod>,
    /// What the store delivery stored.
    pub stored: Option<crate::store::StoreOutcome>,
}

/// Runs the pipeline. On a failure after registering, the key is deleted again and the error
/// (an [`Error::Rotation`]) says so; if that delete fails too, the error is a remote failure
/// naming the key left behind.
pub async fn create<R: DeployKeyRegistry>(
    settings: &CreateSettings,
    registration: Option<Registration<'_, R>>,
    delivery: Delivery<'_>,
    progress: &dyn Fn(CreateStep),
) -> Result<Created> {
    settings.emit.validate()?;
    let existing = match &delivery {
        Delivery::Apply(cluster) => {
            refuse_existing_key(settings, cluster).await?;
            None
        }
        Delivery::Store(d) => {
            progress(CreateStep::Check);
            Some(
                d.store
                    .check_writable(&d.settings.target.name, d.settings.adopt)
                    .await?,
            )
        }
        Delivery::Write(_) => None,
    };
    progress(CreateStep::Generate);
    let key = DeployKey::generate(settings.key_type, &settings.comment)?;
    let stream = emit::emit(&settings.emit, &key, &settings.known_hosts)?;
    // The store's split is made (and the guard run over what goes to git) before registering.
    let externalized = match &delivery {
        Delivery::Store(d) => Some(crate::store::externalized_output(
            &stream,
            &settings.emit.secret_name(),
            &d.settings.external_secret,
        )?),
        _ => None,
    };
    let registered = match &registration {
        Some(r) => {
            progress(CreateStep::Register);
            match register_key(r.registry, &r.title, &key, r.read_only).await {
                Ok(k) => Some(k),
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
    let mut stored = None;
    let (step, delivered, store_undone) = match delivery {
        Delivery::Write(write) => {
            progress(CreateStep::Seal);
            let written = seal::seal_stream(&stream, &settings.seal).and_then(|out| write(&out));
            ("seal and write", written.map(|()| (Vec::new(), None)), None)
        }
        Delivery::Apply(cluster) => {
            progress(CreateStep::Apply);
            ("apply Secret", apply_secrets(cluster, &stream).await, None)
        }
        Delivery::Store(d) => {
            progress(CreateStep::Store);
            let (value, _documents, yaml) = externalized.expect("made above for the store");
            let existing = existing.flatten();
            let tags =
                crate::store::store_tags(&key, &settings.emit.repo.slug(), &d.settings.cluster);
            match d
                .store
                .put(
                    &d.settings.target.name,
                    existing.as_ref(),
                    &value,
                    key.fingerprint(),
                    d.settings.kms_key_id.as_deref(),
                    &tags,
                )
                .await
            {
                Err(e) => ("store key", Err(e), None),
                Ok(s) => match (d.write)(&yaml) {
                    Ok(()) => {
                        stored = Some(crate::store::StoreOutcome {
                            stored: s,
                            replaced: existing.is_some(),
                        });
                        ("write ExternalSecret", Ok((Vec::new(), None)), None)
                    }
                    Err(e) => {
                        let undone = d.store.undo(&d.settings.target.name, &s).await;
                        ("write ExternalSecret", Err(e), Some(undone))
                    }
                },
            }
        }
    };
    drop(stream);
    match delivered {
        Ok((applied, method)) => Ok(Created {
            key,
            registered,
            applied,
            method,
            stored,
        }),
        Err(e) => Err(match (registration, registered) {
            (Some(r), Some(k)) => undo_after(r.registry, &k, &key, step, e, store_undone).await,
            _ => match store_undone {
                Some(undone) => Error::Rotation {
                    step: step.into(),
                    undone: undone.into(),
                    source: Box::new(e),
                },
                None => e,
            },
        }),
    }
}

/// A later step failed after `registered` was created: take it back and build the error.
async fn undo_after<R: DeployKeyRegistry>(
    registry: &R,
    registered: &DeployKeyInfo,
    key: &DeployKey,
    step: &str,
    failure: Error,
    undone_before: Option<String>,
) -> Error {
    let mut undo = undo_registration(registry, Some(registered.id), key.public_openssh()).await;
    if let Some(before) = undone_before {
        undo.said = message!("{}; {}", before, &undo.said);
    }
    if undo.left_behind {
        return Error::Rotation {
            step: step.into(),
            undone: undo.said,
            source: Box::new(Error::remote(
                crate::github::SERVICE,
                message!(
                    "{}; and the rollback failed: deploy key {} is still registered",
                    &failure,
                    registered.id.to_string()
                ),
                message!(
                    "delete it under the repository's Settings > Deploy keys, or `{} {} OWNER/REPO {} FINGERPRINT...`",
                    Command::KeysPrune,
                    Setting::Repo,
                    Setting::Keep
                ),
            )),
        };
    }
    if failure.is_broken_pipe() {
        // A closed pipe normally ends sealkey quietly with 0; here the output was lost and the
        // key withdrawn, which must not look like success.
        return Error::input(
            "standard output",
            message!(
                "the reader closed the pipe before the output was written; {} (rollback)",
                undo.said
            ),
            "run the command again with a reader that consumes all of it",
        );
    }
    Error::Rotation {
        step: step.into(),
        undone: message!("{} (rollback); nothing was written", undo.said),
        source: Box::new(failure),
    }
}

async fn refuse_existing_key(settings: &CreateSettings, cluster: &Cluster) -> Result<()> {
    let (ns, name) = (
        settings.emit.namespace.as_str(),
        settings.emit.secret_name(),
    );
    if let Some(existing) = cluster.get_secret(ns, &name).await? {
        if key_in_secret(&existing, Some(settings.emit.consumer)).is_ok() {
            return Err(Error::input(
                format!("Secret {ns}/{name}"),
                "it already exists and holds a deploy key",
                message!(
                    "rotate it with `{} {}` (keeps GitHub and the cluster in step), or pick another Secret name",
                    Command::Rotate,
                    Setting::Apply
                ),
            ));
        }
    }
    Ok(())
}

async fn apply_secrets(
    cluster: &Cluster,
    stream: &emit::ManifestStream,
) -> Result<(Vec<String>, Option<WriteMethod>)> {
    let mut applied = Vec::new();
    let mut method = None;
    for doc in stream
        .expose_docs()
        .iter()
        .filter(|d| d["kind"] == "Secret")
    {
        method = Some(cluster.write_secret(doc).await?);
        if !cluster.dry_run() {
            confirm_stored(cluster, doc).await?;
        }
        applied.push(format!(
            "{}/{}",
            doc["metadata"]["namespace"].as_str().unwrap_or_default(),
            doc["metadata"]["name"].as_str().unwrap_or_default()
        ));
    }
    Ok((applied, method))
}

/// An answer is not an effect: an API server (or a proxy) may answer 200 and store nothing.
/// Reads the Secret back and checks that every data value written is there, so that a key
/// registered moments before is withdrawn (by the caller) when it was not stored.
async fn confirm_stored(cluster: &Cluster, doc: &serde_json::Value) -> Result<()> {
    use base64::Engine as _;
    let ns = doc["metadata"]["namespace"].as_str().unwrap_or_default();
    let name = doc["metadata"]["name"].as_str().unwrap_or_default();
    let live = cluster.get_secret(ns, name).await?;
    let holds = |live: &crate::cluster::LiveSecret| {
        doc["data"].as_object().is_some_and(|data| {
            data.iter().all(|(k, v)| {
                let want = v
                    .as_str()
                    .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
                    .map(zeroize::Zeroizing::new);
                match (want, live.value(k)) {
                    (Some(want), Some(have)) => have.expose_secret() == want.as_slice(),
                    _ => false,
                }
            })
        })
    };
    if live.as_ref().is_some_and(holds) {
        return Ok(());
    }
    Err(Error::remote(
        "Kubernetes API",
        format!("apply Secret {ns}/{name} was answered as done, but reading it back shows it does not hold what was written"),
        "the API server (or something between sealkey and it) answers writes it does not carry out; check the cluster (kubectl get secret -n NAMESPACE NAME) before trying again",
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emit::{Consumer, DocumentKind};
    use crate::github::RepoKeys;
    use crate::repo::RepoRef;

    fn run(settings: &CreateSettings) -> Created {
        let out = std::cell::RefCell::new(Vec::new());
        let write = |o: &SealedOutput| {
            out.borrow_mut().extend_from_slice(o.expose_bytes());
            Ok(())
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(create(
            settings,
            None::<Registration<'_, RepoKeys<'_>>>,
            Delivery::Write(Box::new(write)),
            &|_| {},
        ))
        .unwrap()
    }

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
                let created = run(&settings);
                let pem = created.key.private_pem().unwrap();
                let body = pem.expose_secret().lines().nth(2).unwrap().to_string();
                let b64 = crate::emit::b64(pem.expose_secret().as_bytes());
                let shown = format!("{settings:?} {created:?} {pem:?}");
                assert!(!shown.contains(&body), "PEM body in Debug output");
                assert!(
                    !shown.contains(&b64[100..160]),
                    "base64 key in Debug output"
                );
            }
        }
    }
}
