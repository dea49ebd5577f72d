//! Deploy key rotation and its rollback: read the live Secret, register a new read-only key,
//! swap it into the Secret (guarded by `resourceVersion`), restart or wait for the workloads that
//! read it, and only then retire the old keys. The GitOps variant writes a sealed manifest instead
//! of touching the Secret, and `finish` retires the old keys once the new key is live.
//!
//! All state lives in GitHub key titles (`sealkey CONTEXT/NAMESPACE/SECRET DATE`) and the Secret's
//! annotations (`sealkey.io/fingerprint`, `sealkey.io/previous-fingerprint`): no local state file.
//!
//! The invariant every run keeps, whatever step fails: the key in the live Secret is registered,
//! and a key this run registered stays registered only if it is the key in the live Secret.
//! GitHub and the cluster are reached through [`DeployKeyRegistry`] and [`SecretCluster`], so the
//! plan and its rollback are tested against faults at every step without a network.

use crate::cluster::{
    self, Cluster, ConsumerAction, LiveSecret, RolloutStatus, SecretConsumer, Workload,
    WorkloadKind,
};
use crate::emit::{self, keys, Consumer, ManifestStream};
use crate::error::{Error, Result};
use crate::keygen::{fingerprint_of_public, DeployKey, KeyType};
use crate::secret::PrivateKeyPem;
use serde_json::{json, Map, Value};
use std::future::Future;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// kubectl's client-side apply record (the whole last applied object, `data` included).
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Annotation holding the fingerprint of the key the Secret held before the last rotation.
pub const PREVIOUS_FINGERPRINT: &str = "sealkey.io/previous-fingerprint";

/// A deploy key as GitHub lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RegisteredKey {
    /// GitHub's key id.
    pub id: u64,
    /// The title it was registered with.
    pub title: String,
    /// `ssh-ed25519 AAAA...` (GitHub drops the comment).
    pub key: String,
    /// Whether it lacks write access.
    pub read_only: bool,
}

impl RegisteredKey {
    /// The key's `SHA256:...` fingerprint (`None` if GitHub listed something unparseable).
    pub fn fingerprint(&self) -> Option<String> {
        fingerprint_of_public(&self.key).ok()
    }
}

/// The deploy keys of one repository.
pub trait DeployKeyRegistry {
    /// Every deploy key of the repository.
    fn list(&self) -> impl Future<Output = Result<Vec<RegisteredKey>>>;
    /// Registers `public_key` read-only under `title`.
    fn register(
        &self,
        title: &str,
        public_key: &str,
    ) -> impl Future<Output = Result<RegisteredKey>>;
    /// Deletes key `id`.
    fn delete(&self, id: u64) -> impl Future<Output = Result<()>>;
}

/// What rotation needs from the cluster.
pub trait SecretCluster {
    /// Reads a Secret; `None` when missing.
    fn read_secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<Option<LiveSecret>>>;
    /// Writes a full Secret document (server-side apply; a `resourceVersion` in it is a precondition).
    fn write_secret(&self, doc: &Value) -> impl Future<Output = Result<()>>;
    /// Every workload in the namespace.
    fn list_workloads(&self, namespace: &str) -> impl Future<Output = Result<Vec<Workload>>>;
    /// Rollout restart.
    fn restart(
        &self,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
        at: &str,
    ) -> impl Future<Output = Result<()>>;
    /// Rollout status.
    fn rollout_status(
        &self,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
    ) -> impl Future<Output = Result<RolloutStatus>>;
}

impl SecretCluster for Cluster {
    async fn read_secret(&self, namespace: &str, name: &str) -> Result<Option<LiveSecret>> {
        self.get_secret(namespace, name).await
    }
    async fn write_secret(&self, doc: &Value) -> Result<()> {
        Cluster::write_secret(self, doc).await.map(drop)
    }
    async fn list_workloads(&self, namespace: &str) -> Result<Vec<Workload>> {
        Cluster::list_workloads(self, namespace).await
    }
    async fn restart(
        &self,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
        at: &str,
    ) -> Result<()> {
        Cluster::restart(self, kind, namespace, name, at).await
    }
    async fn rollout_status(
        &self,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
    ) -> Result<RolloutStatus> {
        Cluster::rollout_status(self, kind, namespace, name).await
    }
}

/// The deploy keys of one repository through sealkey's GitHub client (retries, rate limits,
/// 422 disambiguation live there).
pub struct GithubRepoKeys<'a> {
    client: &'a crate::github::GithubClient,
    repo: crate::repo::RepoRef,
}

impl<'a> GithubRepoKeys<'a> {
    /// The keys of `repo`.
    pub fn new(client: &'a crate::github::GithubClient, repo: crate::repo::RepoRef) -> Self {
        Self { client, repo }
    }
}

impl DeployKeyRegistry for GithubRepoKeys<'_> {
    async fn list(&self) -> Result<Vec<RegisteredKey>> {
        Ok(self
            .client
            .list_deploy_keys(&self.repo)
            .await?
            .into_iter()
            .map(|k| RegisteredKey {
                id: k.id,
                title: k.title,
                key: k.key,
                read_only: k.read_only,
            })
            .collect())
    }
    async fn register(&self, title: &str, public_key: &str) -> Result<RegisteredKey> {
        let new = crate::github::NewDeployKey {
            title: title.into(),
            key: public_key.into(),
            read_only: true,
        };
        let k = self.client.register_deploy_key(&self.repo, &new).await?.key;
        Ok(RegisteredKey {
            id: k.id,
            title: k.title,
            key: k.key,
            read_only: k.read_only,
        })
    }
    async fn delete(&self, id: u64) -> Result<()> {
        // Already gone (404) is what a delete wants.
        self.client
            .delete_deploy_key(&self.repo, id)
            .await
            .map(drop)
    }
}

/// The steps of a rotation, in order, as progress and errors name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// Read the live Secret and find its key.
    ReadSecret,
    /// List the repository's deploy keys.
    ListKeys,
    /// Generate the new key and register it read-only.
    Register,
    /// Put the new key into the Secret.
    UpdateSecret,
    /// Write the sealed manifest (GitOps).
    WriteManifest,
    /// Find the workloads that read the Secret.
    FindConsumers,
    /// Restart them and wait for their rollouts.
    Restart,
    /// Wait for the kubelet to update mounted files.
    SyncWait,
    /// Delete the old keys.
    DeleteOld,
}

impl Step {
    /// The step's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Step::ReadSecret => "read Secret",
            Step::ListKeys => "list deploy keys",
            Step::Register => "register new key",
            Step::UpdateSecret => "update Secret",
            Step::WriteManifest => "write sealed manifest",
            Step::FindConsumers => "find consuming workloads",
            Step::Restart => "restart workloads",
            Step::SyncWait => "wait for kubelet sync",
            Step::DeleteOld => "delete old keys",
        }
    }
}

/// Progress callback: the library never prints, the CLI shows these on a terminal.
pub type Progress<'a> = &'a dyn Fn(Step, &str);

/// What to rotate and how.
#[derive(Clone, Debug)]
pub struct RotateSettings {
    /// Name of the cluster in key titles (the kubeconfig context).
    pub context: String,
    /// Namespace of the Secret.
    pub namespace: String,
    /// The Secret.
    pub secret_name: String,
    /// The consumer format (`None`: from the `sealkey.io/for` annotation, else any known field).
    pub consumer: Option<Consumer>,
    /// Type of the new key (`None`: the same as the old one).
    pub key_type: Option<KeyType>,
    /// Comment stored in the new key.
    pub comment: String,
    /// Restart workloads that keep the old value (subPath mounts, env vars).
    pub restart: bool,
    /// Keep the old keys registered.
    pub keep_old: bool,
    /// How long to wait for rollouts.
    pub timeout: Duration,
    /// How long to wait for kubelets to update mounted files.
    pub sync_wait: Duration,
    /// How often to poll rollouts.
    pub poll_interval: Duration,
    /// Server-side dry run: nothing is registered, written, restarted or deleted.
    pub dry_run: bool,
    /// Go ahead although an earlier `--gitops` rotation is pending (its key registered, its file
    /// not applied): that key is deleted as part of this rotation.
    pub abandon_pending: bool,
}

impl RotateSettings {
    /// Defaults: restart on, keep_old off, 5 min timeout, 90 s sync wait, 2 s polling.
    pub fn new(context: &str, namespace: &str, secret_name: &str, comment: &str) -> Self {
        Self {
            context: context.into(),
            namespace: namespace.into(),
            secret_name: secret_name.into(),
            consumer: None,
            key_type: None,
            comment: comment.into(),
            restart: true,
            keep_old: false,
            timeout: Duration::from_secs(300),
            sync_wait: Duration::from_secs(90),
            poll_interval: Duration::from_secs(2),
            dry_run: false,
            abandon_pending: false,
        }
    }

    fn secret_ref(&self) -> String {
        format!("{}/{}", self.namespace, self.secret_name)
    }
}

/// The GitHub key title for keys of Secret `namespace/name` in cluster `context`:
/// `sealkey CONTEXT/NAMESPACE/SECRET YYYY-MM-DD`, the format `create --register` uses, so keys of
/// different clusters on one repository never collide.
pub fn key_title(context: &str, namespace: &str, name: &str, date: jiff::Timestamp) -> String {
    format!(
        "sealkey {context}/{namespace}/{name} {}",
        date.strftime("%Y-%m-%d")
    )
}

/// Whether a key title marks a key registered for that Secret in that cluster.
pub fn title_is_for(title: &str, context: &str, namespace: &str, name: &str) -> bool {
    let prefix = format!("sealkey {context}/{namespace}/{name}");
    title == prefix || title.starts_with(&format!("{prefix} "))
}

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
        let Some(value) = secret.value(field) else {
            continue;
        };
        let Ok(text) = std::str::from_utf8(value.expose_secret()) else {
            continue;
        };
        let pem = PrivateKeyPem::new(text.to_string());
        if let Ok(key) = DeployKey::from_openssh(&pem, &format!("{what} key {field}")) {
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
        "pass --for CONSUMER matching how the Secret was made, or create it with `sealkey create --apply`",
    ))
}

/// The Secret with the new key in place of the old: every other data key, label and annotation
/// kept; fingerprint, key type, creation time and previous fingerprint annotations updated.
/// With `resource_version`, the write fails (409) if the Secret changed since it was read.
pub fn rotated_secret(
    secret: &LiveSecret,
    field: &str,
    new: &DeployKey,
    old_fingerprint: &str,
    with_resource_version: bool,
    now: jiff::Timestamp,
) -> Result<ManifestStream> {
    let mut data = Map::new();
    for (k, v) in &secret.data {
        data.insert(k.clone(), emit::secret_value(emit::b64(v.expose_secret())));
    }
    let pem = new.private_pem()?;
    data.insert(
        field.to_string(),
        emit::secret_value(emit::b64(pem.expose_secret().as_bytes())),
    );
    if data.contains_key("identity.pub") {
        let public = Zeroizing::new(format!("{}\n", new.public_openssh()));
        data.insert(
            "identity.pub".into(),
            json!(emit::b64(public.as_bytes()).as_str()),
        );
    }
    // kubectl's client-side apply record holds the whole previous object, old key included: it
    // must never travel into a GitOps file (SOPS encrypts only data), nor be re-asserted.
    let mut annotations: Map<String, Value> = secret
        .annotations
        .iter()
        .filter(|(k, _)| k.as_str() != LAST_APPLIED)
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
    if with_resource_version {
        if let Some(rv) = &secret.resource_version {
            metadata["resourceVersion"] = json!(rv);
        }
    }
    if !secret.labels.is_empty() {
        metadata["labels"] = json!(secret.labels);
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

/// What a finished rotation did.
#[derive(Debug)]
pub struct Rotated {
    /// Fingerprint of the key the Secret held.
    pub old_fingerprint: String,
    /// Fingerprint of the new key.
    pub new_fingerprint: String,
    /// The new key's public half.
    pub new_public: String,
    /// GitHub id of the new key (`None` in a dry run).
    pub new_key_id: Option<u64>,
    /// Workloads that read the Secret.
    pub consumers: Vec<SecretConsumer>,
    /// Workloads restarted.
    pub restarted: Vec<String>,
    /// Keys deleted.
    pub deleted: Vec<RegisteredKey>,
    /// Old keys left registered.
    pub kept: Vec<RegisteredKey>,
    /// Why old keys were left (and what to do), when they were.
    pub kept_because: Option<String>,
    /// Whether the old key was registered on GitHub when the run started.
    pub old_was_registered: bool,
}

fn failed(step: Step, source: Error, undone: impl Into<String>) -> Error {
    Error::Rotation {
        step: step.as_str().into(),
        undone: undone.into(),
        source: Box::new(source),
    }
}

fn bare(public: &str) -> String {
    public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Registers `key` read-only under `title`. On failure, every copy of the key GitHub may have
/// created anyway is removed; the error comes with a sentence saying so.
pub async fn register_read_only<R: DeployKeyRegistry>(
    registry: &R,
    title: &str,
    key: &DeployKey,
) -> std::result::Result<u64, (Error, String)> {
    match registry.register(title, &key.public_key_bare()).await {
        Ok(k) if k.read_only => Ok(k.id),
        Ok(k) => {
            let undone = undo_register(registry, key.public_openssh()).await;
            let e = Error::remote(
                "GitHub",
                format!("key {} was registered with write access", k.id),
                "report this; sealkey always asks for read_only",
            );
            Err((e, undone))
        }
        Err(e) => Err((e, undo_register(registry, key.public_openssh()).await)),
    }
}

/// Deletes key `id` that this run registered (checking by listing if the DELETE fails) and
/// says what happened.
pub async fn undo_registration<R: DeployKeyRegistry>(
    registry: &R,
    id: u64,
    public: &str,
) -> String {
    match registry.delete(id).await {
        Ok(()) => format!("deleted the new deploy key {id} again; nothing else was changed"),
        Err(_) => undo_register(registry, public).await,
    }
}

/// Removes the key this run tried to register, whether or not GitHub created it (a timeout or a
/// 5xx may hide a created key): lists the keys and deletes every copy of `public`.
async fn undo_register<R: DeployKeyRegistry>(registry: &R, public: &str) -> String {
    let keys = match registry.list().await {
        Ok(k) => k,
        Err(e) => {
            return format!(
                "could not check whether GitHub created the new key ({e}): look for a key ending in {} under the repository's Deploy keys and delete it",
                tail(public)
            )
        }
    };
    let mut undone = Vec::new();
    for k in keys.iter().filter(|k| bare(&k.key) == bare(public)) {
        match registry.delete(k.id).await {
            Ok(()) => undone.push(format!("deleted the new key {} that GitHub had created", k.id)),
            Err(e) => {
                return format!(
                    "GitHub created the new key {} but deleting it failed ({e}): delete it under the repository's Deploy keys",
                    k.id
                )
            }
        }
    }
    if undone.is_empty() {
        "no new key is registered; the Secret and GitHub are as before".into()
    } else {
        format!("{}; the Secret and GitHub are as before", undone.join(", "))
    }
}

fn tail(public: &str) -> String {
    let b = public.split_whitespace().nth(1).unwrap_or_default();
    b[b.len().saturating_sub(12)..].to_string()
}

fn fingerprint_of(secret: &LiveSecret, field: &str) -> Option<String> {
    let text = std::str::from_utf8(secret.value(field)?.expose_secret()).ok()?;
    let pem = PrivateKeyPem::new(text.to_string());
    DeployKey::from_openssh(&pem, "live Secret")
        .ok()
        .map(|k| k.fingerprint().to_string())
}

/// Old keys for this Secret: the old key itself (any title) and keys titled for this Secret,
/// never the new key.
fn old_keys(
    keys: &[RegisteredKey],
    settings: &RotateSettings,
    old_fp: &str,
    new_fp: &str,
) -> Vec<RegisteredKey> {
    keys.iter()
        .filter(|k| {
            let fp = k.fingerprint();
            fp.as_deref() != Some(new_fp)
                && (fp.as_deref() == Some(old_fp)
                    || title_is_for(
                        &k.title,
                        &settings.context,
                        &settings.namespace,
                        &settings.secret_name,
                    ))
        })
        .cloned()
        .collect()
}

/// Keys registered for this Secret (by title) that are neither in it nor its predecessor: an
/// earlier `--gitops` rotation whose file has not been applied yet.
fn pending_keys<'k>(
    keys: &'k [RegisteredKey],
    settings: &RotateSettings,
    live_fp: &str,
    previous: Option<&str>,
) -> Vec<&'k RegisteredKey> {
    keys.iter()
        .filter(|k| {
            title_is_for(
                &k.title,
                &settings.context,
                &settings.namespace,
                &settings.secret_name,
            )
        })
        .filter(|k| {
            let fp = k.fingerprint();
            fp.as_deref() != Some(live_fp) && fp.as_deref() != previous
        })
        .collect()
}

/// Refuses to start a rotation over a pending one (unless told to abandon it): rotating again
/// would delete, or strand, the key that the committed GitOps file still carries.
fn refuse_over_pending(
    pending: &[&RegisteredKey],
    settings: &RotateSettings,
    live_fp: &str,
    nothing: &str,
) -> Result<()> {
    if pending.is_empty() || settings.abandon_pending {
        return Ok(());
    }
    let ids: Vec<String> = pending
        .iter()
        .map(|k| format!("{} (\"{}\")", k.id, k.title))
        .collect();
    Err(failed(
        Step::ListKeys,
        Error::input(
            format!("Secret {}", settings.secret_ref()),
            format!(
                "an earlier --gitops rotation is pending: key {} is registered for it, but the Secret still holds {live_fp}",
                ids.join(", ")
            ),
            "let Flux or Argo CD apply the committed file, then run `sealkey rotate --finish`; if that commit was reverted, pass --abandon-pending to delete the pending key as part of this rotation",
        ),
        nothing,
    ))
}

/// `sealkey rotate --apply`: the whole rotation straight into the cluster.
pub async fn rotate_in_cluster<C: SecretCluster, R: DeployKeyRegistry>(
    settings: &RotateSettings,
    cluster: &C,
    registry: &R,
    progress: Progress<'_>,
) -> Result<Rotated> {
    let (ns, name) = (settings.namespace.as_str(), settings.secret_name.as_str());
    let nothing = "nothing was changed";

    let (secret, old, old_fp) = read_live_key(cluster, settings, progress, nothing).await?;
    refuse_helm_owned(&secret, settings, nothing)?;

    progress(Step::ListKeys, &old_fp);
    let keys = registry
        .list()
        .await
        .map_err(|e| failed(Step::ListKeys, e, nothing))?;
    let previous = secret
        .annotations
        .get(PREVIOUS_FINGERPRINT)
        .map(String::as_str);
    // Pending keys are titled for this Secret, so old_keys deletes them at the end.
    refuse_over_pending(
        &pending_keys(&keys, settings, &old_fp, previous),
        settings,
        &old_fp,
        nothing,
    )?;
    let old_was_registered = keys
        .iter()
        .any(|k| k.fingerprint().as_deref() == Some(&old_fp));

    let key_type = settings.key_type.unwrap_or(old.key.key_type());
    let new = DeployKey::generate(key_type, &settings.comment)
        .map_err(|e| failed(Step::Register, e, nothing))?;
    let new_fp = new.fingerprint().to_string();
    let now = jiff::Timestamp::now();
    let title = key_title(&settings.context, ns, name, now);
    progress(
        Step::Register,
        &format!("{new_fp} as \"{title}\" (read-only)"),
    );
    let new_id = if settings.dry_run {
        None
    } else {
        match register_read_only(registry, &title, &new).await {
            Ok(id) => Some(id),
            Err((e, undone)) => return Err(failed(Step::Register, e, undone)),
        }
    };

    progress(
        Step::UpdateSecret,
        &format!("{} in {}", old.field, settings.secret_ref()),
    );
    let doc = rotated_secret(&secret, &old.field, &new, &old_fp, true, now)
        .map_err(|e| failed(Step::UpdateSecret, e, nothing))?;
    if let Err(e) = cluster.write_secret(&doc.docs()[0]).await {
        drop(doc);
        // The write may have landed although its answer was lost: look before undoing.
        let landed = match cluster.read_secret(ns, name).await {
            Ok(Some(s)) => Some(fingerprint_of(&s, &old.field).as_deref() == Some(new_fp.as_str())),
            Ok(None) => Some(false),
            Err(_) => None,
        };
        match (landed, new_id) {
            (Some(true), _) => {} // it did land: carry on with the rotation
            (_, None) => {
                return Err(failed(
                    Step::UpdateSecret,
                    e,
                    "dry run: nothing was registered",
                ))
            }
            (Some(false), Some(id)) => {
                let undone = match registry.delete(id).await {
                    Ok(()) => format!("deleted the new key {id}; the Secret still holds the old key {old_fp}, which stays registered"),
                    Err(_) => undo_register(registry, new.public_openssh()).await,
                };
                return Err(failed(Step::UpdateSecret, e, undone));
            }
            (None, Some(id)) => {
                let undone = format!(
                    "could not read the Secret back to see whether it changed, so both keys stay registered (old {old_fp}, new {new_fp} id {id}): either works; check `kubectl get secret -n {ns} {name} -o jsonpath='{{.metadata.annotations}}'` and run `sealkey rotate --finish` once it shows {new_fp}, or run rotate again"
                );
                return Err(failed(Step::UpdateSecret, e, undone));
            }
        }
    }
    if settings.dry_run {
        let consumers = cluster
            .list_workloads(ns)
            .await
            .map(|w| cluster::consumers_of(name, &w))
            .map_err(|e| failed(Step::FindConsumers, e, nothing))?;
        return Ok(Rotated {
            old_fingerprint: old_fp,
            new_fingerprint: new_fp,
            new_public: new.public_openssh().into(),
            new_key_id: None,
            consumers,
            restarted: vec![],
            deleted: vec![],
            kept: vec![],
            kept_because: Some("dry run".into()),
            old_was_registered,
        });
    }

    // From here on the Secret holds the new key: never roll back (restarted pods may run it);
    // on failure keep the old keys too, so pods with either key keep working.
    let kept_both = |step: &str| {
        format!(
            "the Secret holds the new key {new_fp} (registered) and the old keys stay registered, so pods with either key work; once {step}, run `sealkey rotate --finish --namespace {ns} --secret-name {name} --repo ...` to delete the old keys"
        )
    };

    progress(Step::FindConsumers, ns);
    // Listing is a read and a restart sets the same annotation value again: both are safe to
    // repeat once after a hiccup (a dropped connection may have hidden a success).
    let workloads = match cluster.list_workloads(ns).await {
        Ok(w) => Ok(w),
        Err(_) => cluster.list_workloads(ns).await,
    };
    let workloads = workloads.map_err(|e| {
        failed(
            Step::FindConsumers,
            e,
            kept_both("every pod reading the Secret has restarted"),
        )
    })?;
    let consumers = cluster::consumers_of(name, &workloads);
    let mut kept_because = None;
    let mut restarted = Vec::new();
    let to_restart: Vec<&SecretConsumer> = consumers
        .iter()
        .filter(|c| c.action == ConsumerAction::Restart)
        .collect();
    let manual: Vec<String> = consumers
        .iter()
        .filter(|c| c.action == ConsumerAction::ManualRestart)
        .map(|c| format!("pod/{}", c.name))
        .collect();
    if !to_restart.is_empty() && settings.restart {
        let at = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        for c in &to_restart {
            let label = format!("{}/{}", c.kind.as_str(), c.name);
            progress(Step::Restart, &label);
            let result = match cluster.restart(c.kind, ns, &c.name, &at).await {
                Ok(()) => Ok(()),
                Err(_) => cluster.restart(c.kind, ns, &c.name, &at).await,
            };
            result.map_err(|e| {
                failed(
                    Step::Restart,
                    e,
                    kept_both(&format!("{label} runs the new Secret")),
                )
            })?;
            restarted.push(label);
        }
        let deadline = Instant::now() + settings.timeout;
        let mut waiting: Vec<&SecretConsumer> = to_restart.clone();
        let mut read_failures = 0;
        while !waiting.is_empty() {
            let mut still = Vec::new();
            for c in waiting {
                let label = format!("{}/{}", c.kind.as_str(), c.name);
                // A status read is harmless to repeat: a hiccup (dropped connection, 5xx) is
                // retried on the next poll; three failures in a row end the wait.
                let st = match cluster.rollout_status(c.kind, ns, &c.name).await {
                    Ok(st) => {
                        read_failures = 0;
                        st
                    }
                    Err(e) => {
                        read_failures += 1;
                        if read_failures >= 3 || Instant::now() >= deadline {
                            return Err(failed(
                                Step::Restart,
                                e,
                                kept_both(&format!("{label} has rolled out")),
                            ));
                        }
                        progress(Step::Restart, &format!("{label}: {e}; trying again"));
                        RolloutStatus {
                            done: false,
                            detail: "status unknown".into(),
                        }
                    }
                };
                if !st.done {
                    progress(Step::Restart, &format!("{label}: {}", st.detail));
                    still.push(c);
                }
            }
            waiting = still;
            if waiting.is_empty() {
                break;
            }
            if Instant::now() >= deadline {
                let names: Vec<String> = waiting
                    .iter()
                    .map(|c| format!("{}/{}", c.kind.as_str(), c.name))
                    .collect();
                let e = Error::remote(
                    "Kubernetes API",
                    format!(
                        "rollout of {} not finished after {:?}",
                        names.join(", "),
                        settings.timeout
                    ),
                    format!("see `kubectl rollout status -n {ns} {}`", names[0]),
                );
                return Err(failed(Step::Restart, e, kept_both("the rollouts finish")));
            }
            tokio::time::sleep(settings.poll_interval).await;
        }
    } else if !to_restart.is_empty() {
        let names: Vec<String> = to_restart
            .iter()
            .map(|c| format!("{}/{}", c.kind.as_str(), c.name))
            .collect();
        kept_because = Some(format!(
            "--no-restart: {} still run the old key; restart them (kubectl rollout restart), then run `sealkey rotate --finish`",
            names.join(", ")
        ));
    }
    if !manual.is_empty() && kept_because.is_none() {
        kept_because = Some(format!(
            "{} read the Secret at start and have no controller to restart them; recreate them, then run `sealkey rotate --finish`",
            manual.join(", ")
        ));
    }

    if consumers
        .iter()
        .any(|c| c.action == ConsumerAction::WaitForSync)
        && kept_because.is_none()
        && !settings.keep_old
    {
        progress(Step::SyncWait, &format!("{:?}", settings.sync_wait));
        tokio::time::sleep(settings.sync_wait).await;
    }

    let old = old_keys(&keys, settings, &old_fp, &new_fp);
    if settings.keep_old && kept_because.is_none() {
        kept_because = Some("--keep-old".into());
    }
    if kept_because.is_some() {
        return Ok(Rotated {
            old_fingerprint: old_fp,
            new_fingerprint: new_fp,
            new_public: new.public_openssh().into(),
            new_key_id: new_id,
            consumers,
            restarted,
            deleted: vec![],
            kept: old,
            kept_because,
            old_was_registered,
        });
    }
    progress(Step::DeleteOld, &format!("{} key(s)", old.len()));
    let deleted = delete_keys(
        registry,
        &old,
        Step::DeleteOld,
        &kept_both("GitHub answers again"),
    )
    .await?;
    Ok(Rotated {
        old_fingerprint: old_fp,
        new_fingerprint: new_fp,
        new_public: new.public_openssh().into(),
        new_key_id: new_id,
        consumers,
        restarted,
        deleted,
        kept: vec![],
        kept_because: None,
        old_was_registered,
    })
}

async fn delete_keys<R: DeployKeyRegistry>(
    registry: &R,
    keys: &[RegisteredKey],
    step: Step,
    state: &str,
) -> Result<Vec<RegisteredKey>> {
    let mut deleted = Vec::new();
    for k in keys {
        if let Err(e) = registry.delete(k.id).await {
            // The delete may have happened although its answer was lost: look before failing.
            let gone =
                matches!(registry.list().await, Ok(now) if !now.iter().any(|n| n.id == k.id));
            if gone {
                deleted.push(k.clone());
                continue;
            }
            let done: Vec<String> = deleted
                .iter()
                .map(|d: &RegisteredKey| d.id.to_string())
                .collect();
            let undone = format!(
                "deleted [{}], key {} is still registered; {state}",
                done.join(", "),
                k.id
            );
            return Err(failed(step, e, undone));
        }
        deleted.push(k.clone());
    }
    Ok(deleted)
}

/// Marks of a Secret that Helm renders (the Airflow chart's `extraSecrets` are Helm hooks) or
/// that Flux's helm-controller owns: the next upgrade writes the Secret back from the release.
fn helm_owner(secret: &LiveSecret) -> Option<String> {
    if secret
        .labels
        .get("app.kubernetes.io/managed-by")
        .map(String::as_str)
        == Some("Helm")
    {
        return Some("label app.kubernetes.io/managed-by: Helm".into());
    }
    let marks = secret
        .annotations
        .keys()
        .chain(secret.labels.keys())
        .find(|k| {
            k.starts_with("meta.helm.sh/")
                || k.starts_with("helm.sh/")
                || k.starts_with("helm.toolkit.fluxcd.io/")
        });
    marks.map(|k| k.to_string())
}

/// `--apply` on a Helm-owned Secret would be undone by the next upgrade, after the old key was
/// deleted from GitHub: an outage. Refused (exit 2) before anything is registered.
fn refuse_helm_owned(secret: &LiveSecret, settings: &RotateSettings, nothing: &str) -> Result<()> {
    let Some(mark) = helm_owner(secret) else {
        return Ok(());
    };
    Err(failed(
        Step::ReadSecret,
        Error::input(
            format!("--apply on Secret {}", settings.secret_ref()),
            format!("Helm owns it ({mark}): the next helm upgrade (or Flux reconcile) would put the old key back after the old key was deleted from GitHub"),
            "rotate where the Secret is defined: `sealkey rotate --gitops FILE --update FILE` on the HelmRelease or sealed file in your GitOps repository (for the chart's extraSecrets, the HelmRelease), then `--finish` once the live Secret holds the new key (docs/rotation.md)",
        ),
        nothing,
    ))
}

/// Step 1 of every mode: reads the live Secret and the key in it. A failure here has changed
/// nothing; `nothing` says so in the mode's own words.
async fn read_live_key<C: SecretCluster>(
    cluster: &C,
    settings: &RotateSettings,
    progress: Progress<'_>,
    nothing: &str,
) -> Result<(LiveSecret, SecretKey, String)> {
    progress(Step::ReadSecret, &settings.secret_ref());
    let secret = read_existing(cluster, settings)
        .await
        .map_err(|e| failed(Step::ReadSecret, e, nothing))?;
    let key = key_in_secret(&secret, settings.consumer)
        .map_err(|e| failed(Step::ReadSecret, e, nothing))?;
    let fingerprint = key.key.fingerprint().to_string();
    Ok((secret, key, fingerprint))
}

async fn read_existing<C: SecretCluster>(
    cluster: &C,
    settings: &RotateSettings,
) -> Result<LiveSecret> {
    cluster
        .read_secret(&settings.namespace, &settings.secret_name)
        .await?
        .ok_or_else(|| {
            Error::input(
                format!("--namespace {} --secret-name {}", settings.namespace, settings.secret_name),
                "no such Secret in the cluster",
                "check the names (kubectl get secrets -n NAMESPACE); a new Secret is made with `sealkey create --apply`",
            )
        })
}

/// What `rotate --gitops` did.
#[derive(Debug)]
pub struct GitopsRotated {
    /// The Secret's current key.
    pub old_fingerprint: String,
    /// The new key, registered, in the sealed manifest.
    pub new_fingerprint: String,
    /// Its public half.
    pub new_public: String,
    /// Its GitHub id.
    pub new_key_id: u64,
}

/// `sealkey rotate --gitops FILE`: registers a new key and hands the Secret with it in place
/// (everything else kept, no server fields) to `write`, which seals and stores it. The old key
/// stays registered until `finish`. If `write` fails, the new key is deleted again.
pub async fn rotate_gitops<C, R, W>(
    settings: &RotateSettings,
    cluster: &C,
    registry: &R,
    write: W,
    progress: Progress<'_>,
) -> Result<GitopsRotated>
where
    C: SecretCluster,
    R: DeployKeyRegistry,
    W: FnOnce(&ManifestStream) -> Result<()>,
{
    let nothing = "nothing was changed";
    let (secret, old, old_fp) = read_live_key(cluster, settings, progress, nothing).await?;
    progress(Step::ListKeys, &old_fp);
    let keys = registry
        .list()
        .await
        .map_err(|e| failed(Step::ListKeys, e, nothing))?;
    let previous = secret
        .annotations
        .get(PREVIOUS_FINGERPRINT)
        .map(String::as_str);
    let pending: Vec<RegisteredKey> = pending_keys(&keys, settings, &old_fp, previous)
        .into_iter()
        .cloned()
        .collect();
    refuse_over_pending(
        &pending.iter().collect::<Vec<_>>(),
        settings,
        &old_fp,
        nothing,
    )?;
    if !pending.is_empty() {
        // Abandoned: the file that carried it was reverted. Left registered, it would also
        // block --finish of this rotation.
        progress(
            Step::DeleteOld,
            &format!("{} pending key(s)", pending.len()),
        );
        delete_keys(registry, &pending, Step::DeleteOld, nothing).await?;
    }
    let new = DeployKey::generate(
        settings.key_type.unwrap_or(old.key.key_type()),
        &settings.comment,
    )
    .map_err(|e| failed(Step::Register, e, nothing))?;
    let now = jiff::Timestamp::now();
    // Sealed before registering, so a sealing error costs no GitHub request.
    let doc = rotated_secret(&secret, &old.field, &new, &old_fp, false, now)
        .map_err(|e| failed(Step::WriteManifest, e, nothing))?;
    let title = key_title(
        &settings.context,
        &settings.namespace,
        &settings.secret_name,
        now,
    );
    progress(
        Step::Register,
        &format!("{} as \"{title}\" (read-only)", new.fingerprint()),
    );
    let id = match register_read_only(registry, &title, &new).await {
        Ok(id) => id,
        Err((e, undone)) => return Err(failed(Step::Register, e, undone)),
    };
    progress(Step::WriteManifest, "");
    if let Err(e) = write(&doc) {
        let undone = match registry.delete(id).await {
            Ok(()) => format!("deleted the new key {id}; nothing else was changed"),
            Err(_) => undo_register(registry, new.public_openssh()).await,
        };
        return Err(failed(Step::WriteManifest, e, undone));
    }
    Ok(GitopsRotated {
        old_fingerprint: old_fp,
        new_fingerprint: new.fingerprint().into(),
        new_public: new.public_openssh().into(),
        new_key_id: id,
    })
}

/// What `rotate --finish` did.
#[derive(Debug)]
pub struct Finished {
    /// The key in the live Secret (registered).
    pub live_fingerprint: String,
    /// Keys deleted.
    pub deleted: Vec<RegisteredKey>,
}

/// `sealkey rotate --finish`: once the live Secret carries the new key, deletes the old keys.
/// Before that (a key registered for this Secret is not in it yet) it fails and deletes nothing.
pub async fn finish<C: SecretCluster, R: DeployKeyRegistry>(
    settings: &RotateSettings,
    cluster: &C,
    registry: &R,
    progress: Progress<'_>,
) -> Result<Finished> {
    let (ns, name) = (settings.namespace.as_str(), settings.secret_name.as_str());
    let nothing = "nothing was deleted";
    let (secret, _, live_fp) = read_live_key(cluster, settings, progress, nothing).await?;
    let previous = secret.annotations.get(PREVIOUS_FINGERPRINT).cloned();
    progress(Step::ListKeys, &live_fp);
    let keys = registry
        .list()
        .await
        .map_err(|e| failed(Step::ListKeys, e, nothing))?;
    let pending = pending_keys(&keys, settings, &live_fp, previous.as_deref());
    if !pending.is_empty() {
        let ids: Vec<String> = pending
            .iter()
            .map(|k| format!("{} ({})", k.id, k.title))
            .collect();
        return Err(failed(
            Step::ReadSecret,
            Error::input(
                format!("Secret {ns}/{name}"),
                format!("still holds key {live_fp}, not the new key {} registered for it", ids.join(", ")),
                "commit and push the sealed manifest, let Flux or Argo CD apply it (the Secret's sealkey.io/fingerprint annotation changes), then run --finish again",
            ),
            nothing,
        ));
    }
    if !keys
        .iter()
        .any(|k| k.fingerprint().as_deref() == Some(live_fp.as_str()))
    {
        return Err(failed(
            Step::ListKeys,
            Error::input(
                format!("Secret {ns}/{name}"),
                format!("its key {live_fp} is not registered on the repository"),
                "refusing to delete anything: register the live key first, or rotate again",
            ),
            nothing,
        ));
    }
    let Some(previous) = previous.filter(|p| *p != live_fp) else {
        return Err(failed(
            Step::ReadSecret,
            Error::input(
                format!("Secret {ns}/{name}"),
                format!("has no {PREVIOUS_FINGERPRINT} annotation: it was not rotated by sealkey"),
                "nothing to finish; run `sealkey rotate` first",
            ),
            nothing,
        ));
    };
    let old = old_keys(&keys, settings, &previous, &live_fp);
    progress(Step::DeleteOld, &format!("{} key(s)", old.len()));
    let deleted = delete_keys(
        registry,
        &old,
        Step::DeleteOld,
        "the live key stays registered; run --finish again to retry",
    )
    .await?;
    Ok(Finished {
        live_fingerprint: live_fp,
        deleted,
    })
}

#[cfg(test)]
#[path = "rotate_tests.rs"]
mod tests;
