//! Confirming a Secret write from a fresh read: an answer is not an effect. An API server may
//! answer 200 and store nothing, or time out and store the write later; so before any key is
//! deleted, reads show which key the live Secret holds, within a bound.

use super::SecretCluster;
use crate::emit::live::fingerprint_in;
use crate::error::Error;
use std::time::{Duration, Instant};

/// Whether `e` is the API server's refusal (a 4xx answer): the write was not carried out, so
/// undoing what the run did cannot strand the Secret. Anything else (no answer, a 5xx from a
/// proxy or an overloaded server) leaves the outcome unknown.
pub fn refused(e: &Error) -> bool {
    matches!(e, Error::Kube { status: Some(s), .. } if (400..500).contains(s))
}

/// What the reads of the live Secret showed.
#[derive(Debug)]
pub enum Seen {
    /// It holds the key with this fingerprint (the wanted one, or the last other one seen).
    Key(String),
    /// It is gone, or holds no key in the field.
    NoKey,
    /// It could not be read (the last error).
    Unreadable(Error),
}

impl Seen {
    /// Whether the Secret holds the key `fingerprint`.
    pub fn holds(&self, fingerprint: &str) -> bool {
        matches!(self, Seen::Key(fp) if fp == fingerprint)
    }
}

/// Reads Secret `namespace/name` until its `field` holds the key `want`, at least once and
/// then every `poll` until `bound` has passed; returns what the last read showed.
pub async fn watch_for_key<C: SecretCluster>(
    cluster: &C,
    (namespace, name, field): (&str, &str, &str),
    want: &str,
    bound: Duration,
    poll: Duration,
) -> Seen {
    let started = Instant::now();
    loop {
        let seen = match cluster.read_secret(namespace, name).await {
            Ok(Some(s)) => fingerprint_in(&s, field).map_or(Seen::NoKey, Seen::Key),
            Ok(None) => Seen::NoKey,
            Err(e) => Seen::Unreadable(e),
        };
        let waited = started.elapsed();
        if seen.holds(want) || waited >= bound {
            return seen;
        }
        tokio::time::sleep(poll.max(Duration::from_millis(1)).min(bound - waited)).await;
    }
}
