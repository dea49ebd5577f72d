//! Deploy key rotation and its rollback, one file per mode over one [`plan::Plan`]:
//!
//! - [`apply`]: read the live Secret, register a new read-only key, swap it into the Secret
//!   (guarded by `resourceVersion`), restart or wait for the workloads that read it, and only
//!   then retire the old keys.
//! - [`gitops`]: register a new key and hand the rebuilt Secret (or HelmRelease entry) to the
//!   caller, which seals it into the GitOps repository; the old key stays.
//! - [`finish()`]: once the live Secret holds the new key, retire the old ones.
//!
//! All state lives in GitHub key titles (`sealkey CONTEXT/NAMESPACE/SECRET DATE`, see
//! [`crate::github::title`], whose moment orders a slot's keys) and the Secret's key itself: no
//! local state file. A Secret that Helm renders carries no annotation of sealkey's, and rotation
//! still knows which keys are older and which one is pending from titles. Neither GitHub's ids
//! (a re-registered key gets a higher one) nor the Secret's annotations (cluster data) decide
//! what is deleted; and no key is deleted before a fresh read shows what the live Secret holds.
//!
//! The invariant every run keeps, whatever step fails: the key in the live Secret is registered,
//! and a key this run registered stays registered only if it is the key in the live Secret.
//! GitHub and the cluster are reached through [`DeployKeyRegistry`] and [`SecretCluster`], so the
//! plan and its rollback are tested against faults at every step without a network.

pub mod apply;
pub mod confirm;
pub mod finish;
pub mod gitops;
pub mod plan;
pub mod readers;

pub use crate::cluster::SecretCluster;
pub use crate::github::registry::DeployKeyRegistry;
pub use apply::{rotate_in_cluster, Rotated};
pub use finish::{finish, Finished};
pub use gitops::{rotate_gitops, GitopsRotated, NewKey};

use crate::emit::Consumer;
use crate::error::Error;
use crate::keygen::KeyType;
use std::time::Duration;

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
    /// Wait until the live Secret holds the new key (`--finish --wait`).
    WaitLive,
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
            Step::WaitLive => "wait for the new key in the live Secret",
            Step::DeleteOld => "delete old keys",
        }
    }
}

/// Progress callback: the library never prints, the CLI shows these on a terminal.
pub type Progress<'a> = &'a dyn Fn(Step, &str);

/// What to rotate and how.
#[derive(Clone, Debug)]
pub struct RotateSettings {
    /// The cluster part of key titles: `NAME#UID8` (see [`crate::github::title::cluster_part`]),
    /// or the kubeconfig context / `--cluster` name alone when the cluster's identity is unknown.
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
    /// How often to poll rollouts (and the live Secret while `finish` waits).
    pub poll_interval: Duration,
    /// Server-side dry run: nothing is registered, written, restarted or deleted.
    pub dry_run: bool,
    /// Go ahead although an earlier `--gitops` rotation is pending (its key registered, its file
    /// not applied): that key is deleted as part of this rotation.
    pub abandon_pending: bool,
    /// How long a Secret write whose outcome is unknown (no answer, a 5xx, or a 200 whose
    /// effect does not show) is watched for before sealkey gives up and keeps both keys.
    pub write_confirm_timeout: Duration,
    /// `finish` only: how long to wait for the live Secret to hold the pending key before giving
    /// up (`None`: do not wait, fail at once).
    pub wait_for_live: Option<Duration>,
}

impl RotateSettings {
    /// Defaults: restart on, keep_old off, 5 min timeout, 90 s sync wait, 2 s polling, 90 s to
    /// see a write whose outcome is unknown land.
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
            write_confirm_timeout: Duration::from_secs(90),
            wait_for_live: None,
        }
    }

    /// `NAMESPACE/NAME` of the Secret.
    pub fn secret_ref(&self) -> String {
        format!("{}/{}", self.namespace, self.secret_name)
    }

    /// Whether `title` marks a key registered for this Secret in this cluster.
    pub fn owns_title(&self, title: &str) -> bool {
        crate::github::title::title_is_for(title, &self.context, &self.namespace, &self.secret_name)
    }

    /// Whether `title` is this Secret's in the format made before sealkey identified clusters
    /// (`sealkey NAME/NAMESPACE/SECRET DATE`, while `context` is `NAME#UID8`): it may be another
    /// cluster's of the same name, so such a key is never deleted for its title alone.
    pub fn legacy_title(&self, title: &str) -> bool {
        let name = crate::github::title::cluster_name(&self.context);
        name != self.context
            && crate::github::title::title_is_for(title, name, &self.namespace, &self.secret_name)
    }
}

/// A step failed: the error, and what was undone and where things stand.
fn failed(step: Step, source: Error, undone: impl Into<crate::error::Message>) -> Error {
    Error::Rotation {
        step: step.as_str().into(),
        undone: undone.into(),
        source: Box::new(source),
    }
}

#[cfg(test)]
mod tests;
