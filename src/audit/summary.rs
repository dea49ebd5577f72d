//! The per-Secret consumption summary: which workloads use each Secret, and how (the matrix of
//! volume / env / envFrom / imagePullSecrets).
//!
//! Rows exist only for consumed Secrets (bounded by the names workloads reference). Secrets
//! defined in the input are kept as an exact set, by name, with a small index into the (type,
//! storage) pairs seen, in bounded memory ([`defined`]: past a few thousand they go to temporary
//! files), so a corpus that defines a new Secret in every file does not make memory grow by an
//! entry per file; the unconsumed ones are counted exactly.

pub mod defined;

use super::model::{SecretDecl, Usage, Via};
use defined::Defined;
use serde::Serialize;
use std::collections::BTreeMap;
use std::io;

/// Workloads named per Secret (the first seen, in input order); the rest are counted, and the
/// counts per way count them all. Five say who uses a Secret; the names are most of the
/// summary's memory, so more would make it grow with the workloads (issue 14: 20 were 0.5 MiB
/// more at 10,000 files than at 1,000).
pub const WORKLOADS_LISTED: usize = 5;

/// Unconsumed Secrets named in the reports (the first by namespace and name); the rest are
/// counted.
pub const UNCONSUMED_LISTED: usize = 20;

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
    pub workloads: Listed,
    /// How many more workloads use it.
    pub more_workloads: u64,
}

/// The workloads named for one Secret, packed into one buffer: for each, a byte of [`Via`] bits,
/// its name's length (LEB128) and the name. One allocation per Secret instead of one or two per
/// workload: the names are most of the summary's memory.
#[derive(Debug, Clone, Default)]
pub struct Listed {
    bytes: Vec<u8>,
    count: usize,
}

impl Listed {
    /// Adds a workload at the end.
    fn push(&mut self, workload: &str, via: u8) {
        let mut head = [0u8; 11];
        head[0] = via;
        let mut n = 1;
        let mut len = workload.len();
        loop {
            let byte = (len & 0x7f) as u8;
            len >>= 7;
            head[n] = if len == 0 { byte } else { byte | 0x80 };
            n += 1;
            if len == 0 {
                break;
            }
        }
        // Exactly what is needed: the list never grows past WORKLOADS_LISTED.
        self.bytes.reserve_exact(n + workload.len());
        self.bytes.extend_from_slice(&head[..n]);
        self.bytes.extend_from_slice(workload.as_bytes());
        self.count += 1;
    }

    /// How many workloads are named.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The workloads in the order they were seen.
    pub fn iter(&self) -> impl Iterator<Item = WorkloadUse<'_>> {
        let mut rest = self.bytes.as_slice();
        std::iter::from_fn(move || {
            let (&via, mut tail) = rest.split_first()?;
            let mut len = 0usize;
            let mut shift = 0;
            loop {
                let (&byte, t) = tail.split_first()?;
                tail = t;
                len |= usize::from(byte & 0x7f) << shift;
                shift += 7;
                if byte & 0x80 == 0 {
                    break;
                }
            }
            let (name, t) = tail.split_at(len.min(tail.len()));
            rest = t;
            Some(WorkloadUse {
                // Pushed from a `str`: always UTF-8.
                workload: std::str::from_utf8(name).unwrap_or_default(),
                via,
            })
        })
    }
}

impl Serialize for Listed {
    /// `[{"workload": "Kind/name", "via": ["volume", ...]}, ...]`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// One workload's use of a Secret: its name and a bit set of ways.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkloadUse<'a> {
    /// `Kind/name`.
    pub workload: &'a str,
    /// Bits of [`Via`].
    via: u8,
}

impl WorkloadUse<'_> {
    /// How: `volume`, `env`, `envFrom`, `imagePullSecrets`.
    pub fn via(&self) -> impl Iterator<Item = &'static str> + '_ {
        Via::ALL
            .into_iter()
            .filter(|v| self.via & v.bit() != 0)
            .map(Via::as_str)
    }
}

impl Serialize for WorkloadUse<'_> {
    /// `{"workload": "Kind/name", "via": ["volume", ...]}`.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("WorkloadUse", 2)?;
        st.serialize_field("workload", self.workload)?;
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
    /// Each defined Secret once, with an index into `kinds`.
    defined: Defined,
    /// The distinct (type, storage) pairs of defined Secrets.
    kinds: Vec<(Option<String>, &'static str)>,
    unconsumed: u64,
    /// The first [`UNCONSUMED_LISTED`] unconsumed Secrets by (namespace, name).
    unconsumed_named: Vec<(Option<String>, String)>,
}

impl Summary {
    /// A summary keeping at most `resident` defined Secrets in memory before it spills them
    /// (the default is [`defined::RESIDENT`]); for tests of the spilled path.
    pub fn with_resident(resident: usize) -> Self {
        Summary {
            defined: Defined::with_resident(resident),
            ..Summary::default()
        }
    }

    fn row(&mut self, namespace: Option<String>, secret: String) -> &mut SecretUse {
        // The key is moved in; its strings are copied into the row only when the row is new.
        self.rows
            .entry((namespace, secret))
            .or_insert_with_key(|(namespace, secret)| SecretUse {
                namespace: namespace.clone(),
                secret: secret.clone(),
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
            row.workloads.push(&u.workload, u.via);
        } else {
            row.more_workloads += 1;
        }
    }

    /// Records a Secret defined in the input. Fails only when the defined Secrets had to be
    /// spilled to a temporary file and writing it failed (the count would not be exact).
    pub fn add_secret(&mut self, s: SecretDecl) -> io::Result<()> {
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
        self.defined
            .insert(s.namespace.as_deref(), &s.name, index as u16)
    }

    /// Fills in the type and storage of consumed Secrets that were defined in the input (from
    /// the last definition), and counts the defined Secrets no workload consumed. Call once,
    /// after the last input.
    pub fn finalize(&mut self) -> io::Result<()> {
        let defined = std::mem::take(&mut self.defined);
        let (rows, kinds) = (&mut self.rows, &self.kinds);
        let mut unconsumed = 0u64;
        // Bounded: the smallest names seen so far, whatever order `settle` gives them in.
        let mut named: std::collections::BTreeSet<(Option<String>, String)> =
            std::collections::BTreeSet::new();
        // One lookup key, refilled for each defined Secret.
        let mut probe: (Option<String>, String) = (None, String::new());
        defined.settle(|ns, name, i| {
            match ns {
                Some(ns) => {
                    let p = probe.0.get_or_insert_with(String::new);
                    p.clear();
                    p.push_str(ns);
                }
                None => probe.0 = None,
            }
            probe.1.clear();
            probe.1.push_str(name);
            let (t, storage) = &kinds[usize::from(i)];
            if let Some(row) = rows.get_mut(&probe) {
                row.secret_type = t.clone();
                row.storage = Some(storage);
            } else if *storage != super::rules::EXTERNAL_SECRET {
                // issue 15: an ExternalSecret's Secret is fed from a store; its readers may be
                // outside the input (a HelmRelease's values), so it is not counted as unconsumed.
                unconsumed += 1;
                let smaller = named.len() < UNCONSUMED_LISTED
                    || named.last().is_some_and(|last| {
                        (last.0.as_deref(), last.1.as_str()) > (probe.0.as_deref(), name)
                    });
                if smaller {
                    named.insert(probe.clone());
                    if named.len() > UNCONSUMED_LISTED {
                        named.pop_last();
                    }
                }
            }
        })?;
        self.unconsumed = unconsumed;
        self.unconsumed_named = named.into_iter().collect();
        Ok(())
    }

    /// Secrets defined in the input that no workload in it consumes (after [`Summary::finalize`]).
    pub fn unconsumed(&self) -> u64 {
        self.unconsumed
    }

    /// The first [`UNCONSUMED_LISTED`] of them by (namespace, name), as (namespace, name).
    pub fn unconsumed_named(&self) -> &[(Option<String>, String)] {
        &self.unconsumed_named
    }

    /// The named unconsumed Secrets as `namespace/name` (or `name`), and how many more there are.
    pub fn unconsumed_labels(&self) -> (Vec<String>, u64) {
        let labels = self
            .unconsumed_named
            .iter()
            .map(|(ns, name)| match ns {
                Some(ns) => format!("{ns}/{name}"),
                None => name.clone(),
            })
            .collect::<Vec<_>>();
        let more = self.unconsumed.saturating_sub(labels.len() as u64);
        (labels, more)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(namespace: Option<&str>, name: &str, storage: &'static str) -> SecretDecl {
        SecretDecl {
            namespace: namespace.map(String::from),
            name: name.into(),
            secret_type: Some(format!("type-of-{storage}")),
            storage,
        }
    }

    fn usage(namespace: Option<&str>, secret: &str, workload: &str) -> Usage {
        Usage {
            namespace: namespace.map(String::from),
            secret: secret.into(),
            workload: workload.into(),
            via: Via::Env.bit(),
            uses: Vec::new(),
        }
    }

    /// Whether the defined Secrets stay in memory or spill to temporary files, the counts and
    /// the STORED column are the same: each defined Secret once (defined twice, in two
    /// namespaces, with and without one), its last definition's storage, ExternalSecrets not
    /// counted as unconsumed.
    #[test]
    fn unconsumed_and_stored_are_exact_whether_or_not_the_defined_secrets_spill() {
        let mut results = Vec::new();
        for resident in [0, 3] {
            let mut s = Summary::with_resident(resident);
            for i in 0..500 {
                s.add_secret(decl(Some("prod"), &format!("unused-{i}"), "plaintext"))
                    .unwrap();
                // Defined again: still one Secret.
                s.add_secret(decl(Some("prod"), &format!("unused-{i}"), "sops"))
                    .unwrap();
                s.add_secret(decl(None, &format!("unused-{i}"), "plaintext"))
                    .unwrap();
            }
            for i in 0..40 {
                s.add_secret(decl(Some("prod"), &format!("used-{i}"), "plaintext"))
                    .unwrap();
                s.add_secret(decl(
                    Some("prod"),
                    &format!("external-{i}"),
                    "external-secret",
                ))
                .unwrap();
            }
            // Its last definition says sealed-secret.
            s.add_secret(decl(Some("prod"), "used-0", "sealed-secret"))
                .unwrap();
            for i in 0..40 {
                s.add_usage(usage(Some("prod"), &format!("used-{i}"), "Pod/p"));
            }
            s.add_usage(usage(Some("prod"), "not-defined", "Pod/p"));
            s.finalize().unwrap();
            let stored: Vec<(String, Option<&str>, Option<String>)> = s
                .rows()
                .map(|r| (r.secret.clone(), r.storage, r.secret_type.clone()))
                .collect();
            assert_eq!(s.unconsumed(), 1_000, "resident {resident}");
            assert_eq!(stored.len(), 41);
            assert!(stored.contains(&(
                "used-0".into(),
                Some("sealed-secret"),
                Some("type-of-sealed-secret".into())
            )));
            assert!(stored.contains(&(
                "used-7".into(),
                Some("plaintext"),
                Some("type-of-plaintext".into())
            )));
            assert!(stored.contains(&("not-defined".into(), None, None)));
            results.push((s.unconsumed(), stored));
        }
        assert_eq!(results[0], results[1]);
    }

    /// The packed list gives back each name and its ways in order, whatever the name's length
    /// (LEB128 lengths of one, two and three bytes, an empty name, multibyte characters), and
    /// serializes as the list of `{"workload", "via"}` objects it replaced.
    #[test]
    fn the_packed_workload_list_round_trips_and_serializes_as_before() {
        let long = "x".repeat(20_000);
        let names = [
            "Pod/a",
            "",
            &"y".repeat(127),
            &"z".repeat(128),
            &long,
            "Job/é\u{2028}",
        ];
        let mut list = Listed::default();
        for (i, n) in names.iter().enumerate() {
            list.push(n, (i % 16) as u8);
        }
        assert_eq!(list.len(), names.len());
        let back: Vec<(&str, u8)> = list.iter().map(|w| (w.workload, w.via)).collect();
        let expected: Vec<(&str, u8)> = names
            .iter()
            .enumerate()
            .map(|(i, n)| (*n, (i % 16) as u8))
            .collect();
        assert_eq!(back, expected);
        let mut one = Listed::default();
        one.push("Deployment/web", Via::Volume.bit() | Via::Env.bit());
        assert_eq!(
            serde_json::to_string(&one).unwrap(),
            r#"[{"workload":"Deployment/web","via":["volume","env"]}]"#
        );
    }

    /// At most [`WORKLOADS_LISTED`] (five) workloads are named per Secret, the first seen; the
    /// counts per way and `moreWorkloads` count every one (issue 14: the list was 20 long and
    /// the largest part of the summary's memory).
    #[test]
    fn five_workloads_are_named_per_secret_and_every_one_is_counted() {
        let mut s = Summary::default();
        for i in 0..12 {
            let mut u = usage(Some("prod"), "db", &format!("Deployment/w{i}"));
            if i % 3 == 0 {
                u.via |= Via::Volume.bit();
            }
            s.add_usage(u);
        }
        s.finalize().unwrap();
        let row = s.rows().next().unwrap();
        let named: Vec<&str> = row.workloads.iter().map(|w| w.workload).collect();
        assert_eq!(
            named,
            [
                "Deployment/w0",
                "Deployment/w1",
                "Deployment/w2",
                "Deployment/w3",
                "Deployment/w4"
            ]
        );
        assert_eq!((row.env, row.volume, row.more_workloads), (12, 4, 7));
    }

    /// issue 21 item 12: "N Secret(s) consumed by none" named none of them. The first
    /// [`UNCONSUMED_LISTED`] by (namespace, name) are named, the same whether or not the defined
    /// Secrets spilled.
    #[test]
    fn unconsumed_secrets_are_named_first_twenty_in_order() {
        for resident in [0, 3, defined::RESIDENT] {
            let mut s = Summary::with_resident(resident);
            for i in (0..50).rev() {
                s.add_secret(decl(Some("prod"), &format!("unused-{i:02}"), "plaintext"))
                    .unwrap();
            }
            s.add_secret(decl(None, "bare", "plaintext")).unwrap();
            s.add_secret(decl(Some("prod"), "used", "plaintext"))
                .unwrap();
            s.add_usage(usage(Some("prod"), "used", "Pod/p"));
            s.finalize().unwrap();
            assert_eq!(s.unconsumed(), 51);
            let named: Vec<String> = s
                .unconsumed_named()
                .iter()
                .map(|(ns, n)| format!("{}/{n}", ns.as_deref().unwrap_or("-")))
                .collect();
            let mut expected = vec!["-/bare".to_string()];
            expected.extend((0..19).map(|i| format!("prod/unused-{i:02}")));
            assert_eq!(named, expected, "resident {resident}");
        }
    }
}
