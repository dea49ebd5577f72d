//! The per-Secret consumption summary: which workloads use each Secret, and how (the matrix of
//! volume / env / envFrom / imagePullSecrets).
//!
//! Rows exist only for consumed Secrets (bounded by the names workloads reference). Secrets
//! defined in the input are remembered as a 64-bit hash of their name and a small index into
//! the (type, storage) pairs seen, about 16 bytes each, so a corpus that defines a new Secret in
//! every file does not make memory grow by a row per file; unconsumed ones are counted.

use super::model::{SecretDecl, Usage, Via};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};

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

/// One workload's use of a Secret: its name and a bit set of ways (kept small: the summary
/// holds up to [`WORKLOADS_LISTED`] of these per Secret, the largest part of an audit's memory).
#[derive(Debug, Clone)]
pub struct WorkloadUse {
    /// `Kind/name`.
    pub workload: Box<str>,
    /// Bits of [`Via`].
    via: u8,
}

impl WorkloadUse {
    /// How: `volume`, `env`, `envFrom`, `imagePullSecrets`.
    pub fn via(&self) -> impl Iterator<Item = &'static str> + '_ {
        Via::ALL
            .into_iter()
            .filter(|v| self.via & v.bit() != 0)
            .map(Via::as_str)
    }
}

impl Serialize for WorkloadUse {
    /// `{"workload": "Kind/name", "via": ["volume", ...]}`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("WorkloadUse", 2)?;
        st.serialize_field("workload", &*self.workload)?;
        st.serialize_field("via", &self.via().collect::<Vec<_>>())?;
        st.end()
    }
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
    /// Hash of (namespace, name) of each defined Secret -> index into `kinds`.
    declared: HashMap<u64, u16>,
    /// The distinct (type, storage) pairs of defined Secrets.
    kinds: Vec<(Option<String>, &'static str)>,
    unconsumed: u64,
}

fn name_hash(namespace: Option<&str>, name: &str) -> u64 {
    let mut h = DefaultHasher::new();
    namespace.hash(&mut h);
    name.hash(&mut h);
    h.finish()
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
            if row.workloads.is_empty() {
                // One allocation for the whole list instead of four doublings to 32.
                row.workloads.reserve_exact(WORKLOADS_LISTED.min(4));
            } else if row.workloads.len() == 4 {
                row.workloads.reserve_exact(WORKLOADS_LISTED - 4);
            }
            row.workloads.push(WorkloadUse {
                workload: u.workload.into_boxed_str(),
                via: u.via,
            });
        } else {
            row.more_workloads += 1;
        }
    }

    /// Records a Secret defined in the input.
    pub fn add_secret(&mut self, s: SecretDecl) {
        let kind = (s.secret_type, s.storage);
        let index = match self.kinds.iter().position(|k| *k == kind) {
            Some(i) => i,
            None if self.kinds.len() < usize::from(u16::MAX) => {
                self.kinds.push(kind);
                self.kinds.len() - 1
            }
            // More distinct types than anyone has: keep the storage, drop the type.
            None => {
                let generic = (None, kind.1);
                match self.kinds.iter().position(|k| *k == generic) {
                    Some(i) => i,
                    None => {
                        self.kinds.push(generic);
                        self.kinds.len() - 1
                    }
                }
            }
        };
        self.declared
            .insert(name_hash(s.namespace.as_deref(), &s.name), index as u16);
    }

    /// Fills in the type and storage of consumed Secrets that were defined in the input, and
    /// counts the defined Secrets no workload consumed. Call once, after the last input.
    pub fn finalize(&mut self) {
        let mut consumed = HashSet::new();
        for ((ns, name), row) in self.rows.iter_mut() {
            let h = name_hash(ns.as_deref(), name);
            if let Some(&i) = self.declared.get(&h) {
                consumed.insert(h);
                let (t, storage) = &self.kinds[usize::from(i)];
                row.secret_type = t.clone();
                row.storage = Some(storage);
            }
        }
        // issue 15: an ExternalSecret's Secret is fed from a store; its readers may be outside
        // the input (a HelmRelease's values), so it is not counted as unconsumed.
        let external = self
            .declared
            .iter()
            .filter(|(h, &i)| {
                !consumed.contains(*h)
                    && self.kinds[usize::from(i)].1 == super::rules::EXTERNAL_SECRET
            })
            .count();
        self.unconsumed = (self.declared.len() - consumed.len() - external) as u64;
    }

    /// Secrets defined in the input that no workload in it consumes (after [`Summary::finalize`]).
    pub fn unconsumed(&self) -> u64 {
        self.unconsumed
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
