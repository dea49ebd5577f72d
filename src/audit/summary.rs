//! The per-Secret consumption summary: which workloads use each Secret, and how (the matrix of
//! volume / env / envFrom / imagePullSecrets).

use super::model::{SecretDecl, Usage, Via};
use serde::Serialize;
use std::collections::BTreeMap;

/// Workloads named per Secret; the rest are counted, so memory is bounded by distinct Secrets.
pub const WORKLOADS_LISTED: usize = 20;

/// One Secret's row.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretUse {
    /// Namespace, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The Secret's name.
    pub secret: String,
    /// Its type, when the Secret itself was in the input.
    #[serde(skip_serializing_if = "Option::is_none", rename = "type")]
    pub secret_type: Option<String>,
    /// How it is stored (`plaintext`, `sops`, `sealed-secret`), when it was in the input.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage: Option<&'static str>,
    /// Workloads mounting it as a volume.
    pub volume: u64,
    /// Workloads taking keys as env vars.
    pub env: u64,
    /// Workloads taking every key as env vars.
    pub env_from: u64,
    /// Workloads pulling images with it.
    pub image_pull_secrets: u64,
    /// The first [`WORKLOADS_LISTED`] workloads, `Kind/name`, with how each uses it.
    pub workloads: Vec<WorkloadUse>,
    /// How many more workloads use it.
    pub more_workloads: u64,
}

/// One workload's use of a Secret.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadUse {
    /// `Kind/name`.
    pub workload: String,
    /// How: `volume`, `env`, `envFrom`, `imagePullSecrets`.
    pub via: Vec<&'static str>,
}

impl SecretUse {
    /// Whether any workload uses it.
    pub fn used(&self) -> bool {
        self.volume + self.env + self.env_from + self.image_pull_secrets > 0
    }
}

/// All Secrets seen, keyed by (namespace, name).
#[derive(Debug, Default)]
pub struct Summary {
    rows: BTreeMap<(Option<String>, String), SecretUse>,
}

impl Summary {
    fn row(&mut self, namespace: Option<String>, secret: String) -> &mut SecretUse {
        self.rows
            .entry((namespace.clone(), secret.clone()))
            .or_insert_with(|| SecretUse {
                namespace,
                secret,
                ..SecretUse::default()
            })
    }

    /// Records a workload's use of a Secret.
    pub fn add_usage(&mut self, u: Usage) {
        let row = self.row(u.namespace, u.secret);
        for via in Via::ALL {
            if u.via & via.bit() != 0 {
                match via {
                    Via::Volume => row.volume += 1,
                    Via::Env => row.env += 1,
                    Via::EnvFrom => row.env_from += 1,
                    Via::ImagePullSecrets => row.image_pull_secrets += 1,
                }
            }
        }
        if row.workloads.len() < WORKLOADS_LISTED {
            row.workloads.push(WorkloadUse {
                workload: u.workload,
                via: Via::ALL
                    .into_iter()
                    .filter(|v| u.via & v.bit() != 0)
                    .map(Via::as_str)
                    .collect(),
            });
        } else {
            row.more_workloads += 1;
        }
    }

    /// Records a Secret defined in the input.
    pub fn add_secret(&mut self, s: SecretDecl) {
        let row = self.row(s.namespace, s.name);
        row.secret_type = s.secret_type;
        row.storage = Some(s.storage);
    }

    /// Rows in (namespace, name) order.
    pub fn rows(&self) -> impl Iterator<Item = &SecretUse> {
        self.rows.values()
    }

    /// Number of Secrets.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Whether no Secret was seen.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}
