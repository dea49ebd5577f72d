//! `rotate --store`: rotation when the External Secrets Operator renders the Secret from AWS
//! Secrets Manager. Register the new key, put it as a new version (AWSCURRENT; the old one
//! becomes AWSPREVIOUS), ask ESO to refresh (its `force-sync` annotation), wait until the live
//! Secret holds the new key, restart readers that keep the old value, delete the old deploy key.
//! Every failure before the live Secret holds the new key is rolled back: AWSCURRENT moved back,
//! ESO asked to refresh again, the new key deleted.

use super::aws::SecretsManagerStore;
use super::StoreTarget;
use crate::emit::external_secrets as es;
use crate::emit::live::key_in_secret;
use crate::error::{Error, Result};
use crate::github::title::key_title_at as key_title;
use crate::keygen::DeployKey;
use crate::rotate::{DeployKeyRegistry, RotateSettings, SecretCluster};
use std::future::Future;
use std::time::{Duration, Instant};

/// What rotation needs from the cluster beyond Secrets: ESO's refresh.
pub trait ExternalSecretCluster: SecretCluster {
    /// Sets annotation `force-sync` on ExternalSecret `namespace/name` to `value`.
    fn force_sync(
        &self,
        namespace: &str,
        name: &str,
        value: &str,
    ) -> impl Future<Output = Result<()>>;
}

/// `rotate --store` settings; no secrets in here.
#[derive(Clone, Debug)]
pub struct StoreRotationSettings {
    /// The Secret, its namespace, context, key type, restart and keep-old choices.
    pub rotate: RotateSettings,
    /// The store secret.
    pub target: StoreTarget,
    /// The ExternalSecret's name (default: the Secret's).
    pub external_secret: String,
    /// How long to wait for ESO to write the new key into the Secret.
    pub sync_timeout: Duration,
}

/// Steps, for progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreRotationStep {
    /// Read the live Secret and the store.
    Read,
    /// Register the new key.
    Register,
    /// Put the new version.
    Store,
    /// Annotate the ExternalSecret and wait for the live Secret.
    Sync,
    /// Restart readers.
    Restart,
    /// Delete the old key.
    DeleteOld,
}

/// What a rotation did.
#[derive(Debug)]
pub struct StoreRotation {
    /// The key the Secret held.
    pub old_fingerprint: String,
    /// The new key's fingerprint.
    pub new_fingerprint: String,
    /// The new store version (AWSCURRENT).
    pub version_id: String,
    /// GitHub's id of the new key.
    pub new_key_id: u64,
    /// Old deploy keys deleted.
    pub deleted: Vec<u64>,
    /// Workloads restarted.
    pub restarted: Vec<String>,
    /// Why the old keys stay registered (readers still on them), when they do.
    pub kept_because: Option<crate::error::Message>,
}

fn failed(step: &str, source: Error, undone: impl Into<crate::error::Message>) -> Error {
    Error::Rotation {
        step: step.into(),
        undone: undone.into(),
        source: Box::new(source),
    }
}

/// Runs the rotation; see the module documentation.
pub async fn rotate_with_store<C: ExternalSecretCluster, R: DeployKeyRegistry>(
    settings: &StoreRotationSettings,
    store: &SecretsManagerStore,
    cluster: &C,
    registry: &R,
    progress: &dyn Fn(StoreRotationStep, &str),
) -> Result<StoreRotation> {
    let s = &settings.rotate;
    let (ns, name) = (s.namespace.as_str(), s.secret_name.as_str());
    let remote = settings.target.name.as_str();
    let nothing = "nothing was changed";
    progress(
        StoreRotationStep::Read,
        &format!("Secret {ns}/{name} and {remote}"),
    );
    let live = cluster
        .read_secret(ns, name)
        .await
        .map_err(|e| failed("read Secret", e, nothing))?
        .ok_or_else(|| {
            failed(
                "read Secret",
                Error::input(
                    crate::message!(
                        "{} {} {} {}",
                        crate::error::Setting::Namespace,
                        ns.to_string(),
                        crate::error::Setting::SecretName,
                        name.to_string()
                    ),
                    "no such Secret",
                    crate::message!(
                        "check the names; ESO creates it from the ExternalSecret `{} {}` emitted",
                        crate::error::Command::Create,
                        crate::error::Setting::Store
                    ),
                ),
                nothing,
            )
        })?;
    let old = key_in_secret(&live, s.consumer).map_err(|e| failed("read Secret", e, nothing))?;
    let old_fp = old.key.fingerprint().to_string();
    let existing = store
        .check_writable(remote, false)
        .await
        .map_err(|e| failed("read store", e, nothing))?
        .ok_or_else(|| {
            failed(
                "read store",
                Error::input(
                    crate::message!(
                        "{} aws-secrets-manager:{}",
                        crate::error::Setting::Store,
                        remote.to_string()
                    ),
                    "no such secret",
                    crate::message!(
                        "create it with `{} {} ...`",
                        crate::error::Command::Create,
                        crate::error::Setting::Store
                    ),
                ),
                nothing,
            )
        })?;
    if let Some(tagged) = existing.tag(super::aws::tags::FINGERPRINT) {
        if tagged != old_fp {
            // The tag's value is what the store answered.
            let tagged = crate::http::sanitize_server_text(tagged, &[]);
            return Err(failed(
                "read store",
                Error::input(
                    crate::message!("{} aws-secrets-manager:{}", crate::error::Setting::Store, remote.to_string()),
                    format!("the store holds key {tagged}, the live Secret {ns}/{name} key {old_fp}: ESO has not synced, or they are not the same secret"),
                    "wait for ESO to sync (or fix the ExternalSecret), then rotate again",
                ),
                nothing,
            ));
        }
    }
    let keys = registry
        .list()
        .await
        .map_err(|e| failed("list deploy keys", e, nothing))?;
    let old_keys: Vec<u64> = keys
        .iter()
        .filter(|k| k.fingerprint() == old_fp)
        .map(|k| k.id)
        .collect();

    let new = DeployKey::generate(s.key_type.unwrap_or(old.key.key_type()), &s.comment)
        .map_err(|e| failed("register new key", e, nothing))?;
    let new_fp = new.fingerprint().to_string();
    let now = jiff::Timestamp::now();
    let rotated = crate::emit::live::rotated_secret(&live, &old.field, &new, &old_fp, false, now)
        .map_err(|e| failed("register new key", e, nothing))?;
    let (value, _) = es::store_value(&rotated.expose_docs()[0])?;
    drop(rotated);

    let title = key_title(&s.context, ns, name, now);
    progress(
        StoreRotationStep::Register,
        &format!("{new_fp} as \"{title}\" (read-only)"),
    );
    let new_id = match crate::github::registry::register_read_only(registry, &title, &new).await {
        Ok(id) => id,
        Err((e, undone)) => return Err(failed("register new key", e, undone)),
    };
    let undo_key = || async {
        crate::github::registry::undo_registration(registry, Some(new_id), new.public_openssh())
            .await
            .said
    };

    progress(
        StoreRotationStep::Store,
        &format!("{remote}: new version AWSCURRENT"),
    );
    let mut tags: Vec<(String, String)> = existing.tags.clone();
    tags.retain(|(k, _)| k != super::aws::tags::FINGERPRINT);
    tags.push((super::aws::tags::FINGERPRINT.into(), new_fp.clone()));
    let stored = match store
        .put(remote, Some(&existing), &value, &new_fp, None, &tags)
        .await
    {
        Ok(st) => st,
        Err(e) => return Err(failed("store new version", e, undo_key().await)),
    };
    // From here a failure moves AWSCURRENT back, asks ESO to re-render, deletes the new key.
    let stored_ref = &stored;
    let rollback = |why: &'static str| async move {
        let store_back = store.undo(remote, stored_ref).await;
        let resync = match cluster
            .force_sync(
                ns,
                &settings.external_secret,
                &jiff::Timestamp::now().to_string(),
            )
            .await
        {
            Ok(()) => "ESO asked to re-render the old key".to_string(),
            Err(e) => format!(
                "asking ESO to re-render FAILED ({e}): annotate ExternalSecret {ns}/{} with {}=now",
                settings.external_secret,
                es::FORCE_SYNC
            ),
        };
        crate::message!("{}: {}; {}; {}", why, store_back, resync, undo_key().await)
    };

    progress(
        StoreRotationStep::Sync,
        &format!(
            "annotating ExternalSecret {ns}/{} ({})",
            settings.external_secret,
            es::FORCE_SYNC
        ),
    );
    if let Err(e) = cluster
        .force_sync(ns, &settings.external_secret, &now.to_string())
        .await
    {
        return Err(failed(
            "ask ESO to refresh",
            e,
            rollback("rolled back").await,
        ));
    }
    let deadline = Instant::now() + settings.sync_timeout;
    loop {
        match cluster.read_secret(ns, name).await {
            Ok(Some(l))
                if key_in_secret(&l, s.consumer).is_ok_and(|k| k.key.fingerprint() == new_fp) =>
            {
                break
            }
            Ok(_) | Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(s.poll_interval).await;
            }
            Ok(_) => {
                let e = Error::remote(
                    "External Secrets Operator",
                    format!(
                        "Secret {ns}/{name} does not hold the new key after {:?}",
                        settings.sync_timeout
                    ),
                    format!(
                        "check ESO's status: `kubectl describe externalsecret -n {ns} {}`",
                        settings.external_secret
                    ),
                );
                return Err(failed("wait for ESO", e, rollback("rolled back").await));
            }
            Err(e) => return Err(failed("wait for ESO", e, rollback("rolled back").await)),
        }
    }

    // From here the live Secret holds the new key: never roll back. What finishes the job is
    // `rotate --finish`, which brings the readers onto the new key (restart, rollout, sync wait)
    // before it deletes the old key; not `keys prune` or another rotation (which would only
    // register a third key).
    let kept_both = |what: &str| {
        crate::message!(
            "the live Secret holds the new key; both keys stay registered until {}: then run `{} {} {} {} {} {} {} ...`",
            what,
            crate::error::Command::Rotate,
            crate::error::Setting::Finish,
            crate::error::Setting::Namespace,
            ns.to_string(),
            crate::error::Setting::SecretName,
            name.to_string(),
            crate::error::Setting::Repo
        )
    };
    let then = crate::message!(
        "{} {}",
        crate::error::Command::Rotate,
        crate::error::Setting::Finish
    );
    let readers = crate::rotate::readers::refresh(
        cluster,
        s,
        jiff::Timestamp::now(),
        &then,
        &kept_both,
        &|_, detail| progress(StoreRotationStep::Restart, detail),
    )
    .await?;

    let mut deleted = Vec::new();
    if !s.keep_old && readers.kept_because.is_none() {
        progress(
            StoreRotationStep::DeleteOld,
            &format!("{} old key(s)", old_keys.len()),
        );
        for id in &old_keys {
            registry.delete(*id).await.map_err(|e| {
                failed(
                    "delete old keys",
                    e,
                    crate::message!(
                        "the new key is live; old key {} is still registered: run `{} {}` to delete it",
                        id.to_string(),
                        crate::error::Command::Rotate,
                        crate::error::Setting::Finish
                    ),
                )
            })?;
            deleted.push(*id);
        }
    }
    Ok(StoreRotation {
        old_fingerprint: old_fp,
        new_fingerprint: new_fp,
        version_id: stored.version_id.clone(),
        new_key_id: new_id,
        deleted,
        restarted: readers.restarted,
        kept_because: readers.kept_because,
    })
}

/// [`ExternalSecretCluster`] over sealkey's Kubernetes client and a second client for the
/// ExternalSecret (a merge patch of one annotation).
pub struct KubeExternalSecrets {
    /// Secrets, workloads, restarts.
    pub cluster: crate::cluster::Cluster,
    /// For the ExternalSecret.
    pub client: kube::Client,
}

impl SecretCluster for KubeExternalSecrets {
    async fn read_secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<Option<crate::cluster::LiveSecret>> {
        self.cluster.get_secret(namespace, name).await
    }
    async fn write_secret(&self, doc: &serde_json::Value) -> Result<()> {
        self.cluster.write_secret(doc).await.map(drop)
    }
    async fn list_workloads(&self, namespace: &str) -> Result<Vec<crate::cluster::Workload>> {
        self.cluster.list_workloads(namespace).await
    }
    async fn restart(
        &self,
        kind: crate::cluster::WorkloadKind,
        namespace: &str,
        name: &str,
        at: &str,
    ) -> Result<()> {
        self.cluster.restart(kind, namespace, name, at).await
    }
    async fn rollout_status(
        &self,
        kind: crate::cluster::WorkloadKind,
        namespace: &str,
        name: &str,
    ) -> Result<crate::cluster::RolloutStatus> {
        self.cluster.rollout_status(kind, namespace, name).await
    }
}

impl ExternalSecretCluster for KubeExternalSecrets {
    async fn force_sync(&self, namespace: &str, name: &str, value: &str) -> Result<()> {
        use kube::api::{Api, ApiResource, DynamicObject, Patch, PatchParams};
        let ar = ApiResource {
            group: "external-secrets.io".into(),
            version: "v1".into(),
            api_version: "external-secrets.io/v1".into(),
            kind: "ExternalSecret".into(),
            plural: "externalsecrets".into(),
        };
        let api: Api<DynamicObject> = Api::namespaced_with(self.client.clone(), namespace, &ar);
        let patch = serde_json::json!({"metadata": {"annotations": {es::FORCE_SYNC: value}}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(drop)
            .map_err(|e| {
                crate::cluster::kube_error(
                    self.cluster.server(),
                    &format!("ExternalSecret {namespace}/{name}"),
                    e,
                )
            })
    }
}
