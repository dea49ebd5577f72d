//! Which workloads read a Secret, how, and what rotation must do about each.

use super::*;

/// How a container reads a Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretUse {
    /// A `secret` or `projected` volume mounted as a directory: the kubelet updates the files in
    /// place within its sync period.
    Volume {
        /// Container name.
        container: String,
        /// Volume name.
        volume: String,
    },
    /// A volume mounted with `subPath`/`subPathExpr`: the file never changes in a running pod.
    SubPath {
        /// Container name.
        container: String,
        /// Volume name.
        volume: String,
    },
    /// `env[].valueFrom.secretKeyRef`: read once at container start.
    Env {
        /// Container name.
        container: String,
        /// Variable name.
        var: String,
    },
    /// `envFrom[].secretRef`: read once at container start.
    EnvFrom {
        /// Container name.
        container: String,
    },
}

impl SecretUse {
    /// Whether running pods keep the old value until they restart.
    pub fn needs_restart(&self) -> bool {
        !matches!(self, SecretUse::Volume { .. })
    }
}

/// What rotation has to do for a consumer before the old key may go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConsumerAction {
    /// Roll the workload out again (subPath mounts, env vars) and wait for it.
    Restart,
    /// Files update in place: wait for the kubelet's sync period.
    WaitForSync,
    /// A CronJob: its next Job's pods read the new Secret; nothing to do now.
    NextRun,
    /// A Pod without a controller that keeps the old value: sealkey cannot restart it.
    ManualRestart,
}

/// A workload that reads the Secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretConsumer {
    /// Its kind.
    pub kind: WorkloadKind,
    /// Its name.
    pub name: String,
    /// Every way its containers read the Secret.
    pub uses: Vec<SecretUse>,
    /// What rotation must do for it.
    pub action: ConsumerAction,
}

/// The workloads that read Secret `secret_name`, and how. Pods owned by a controller are left
/// out (the controller is listed); volumes that no container mounts are ignored.
pub fn consumers_of(secret_name: &str, workloads: &[Workload]) -> Vec<SecretConsumer> {
    let mut out = Vec::new();
    for w in workloads {
        if w.kind == WorkloadKind::Pod && w.controlled {
            continue;
        }
        let Some(spec) = &w.pod_spec else { continue };
        let uses = secret_uses(secret_name, spec);
        if uses.is_empty() {
            continue;
        }
        let restart = uses.iter().any(SecretUse::needs_restart);
        let action = match (w.kind, restart) {
            (WorkloadKind::CronJob, _) => ConsumerAction::NextRun,
            (_, false) => ConsumerAction::WaitForSync,
            (WorkloadKind::Pod, true) => ConsumerAction::ManualRestart,
            (_, true) => ConsumerAction::Restart,
        };
        out.push(SecretConsumer {
            kind: w.kind,
            name: w.name.clone(),
            uses,
            action,
        });
    }
    out
}

/// How the containers of one pod spec read the Secret (init, regular and ephemeral containers:
/// the walk the audit uses, [`crate::podspec::secret_reads`]).
pub fn secret_uses(secret_name: &str, spec: &PodSpec) -> Vec<SecretUse> {
    let Ok(value) = serde_json::to_value(spec) else {
        return Vec::new();
    };
    let node = crate::audit::doc::from_json(&value);
    crate::podspec::secret_reads(&node)
        .into_iter()
        .filter(|r| r.secret == secret_name)
        .filter_map(|r| {
            let container = r.container?.to_string();
            Some(match r.how {
                crate::podspec::How::Volume {
                    volume, sub_path, ..
                } => {
                    let volume = volume.to_string();
                    if sub_path.is_some() {
                        SecretUse::SubPath { container, volume }
                    } else {
                        SecretUse::Volume { container, volume }
                    }
                }
                crate::podspec::How::Env { var, .. } => SecretUse::Env {
                    container,
                    var: var.to_string(),
                },
                crate::podspec::How::EnvFrom { .. } => SecretUse::EnvFrom { container },
                crate::podspec::How::ImagePull => return None,
            })
        })
        .collect()
}
