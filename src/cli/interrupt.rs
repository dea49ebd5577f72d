//! SIGINT, SIGTERM and SIGHUP (a lost terminal) during a run that registers a deploy key: the
//! run stops where it is, and what it registered is undone before sealkey exits, within a bound,
//! unless the key may already be where the private half went (then both keys stay and the message
//! says how to finish). The library reports its steps through the progress callback; [`Journal`]
//! remembers the last one, so this layer knows what to undo without the library printing.

use crate::github::registry::DeployKeyRegistry;
use std::cell::RefCell;
use std::time::Duration;

/// How long undoing may take after a signal before sealkey exits anyway.
pub const UNDO_BOUND: Duration = Duration::from_secs(20);

/// Which signal stopped the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// Ctrl-C.
    Interrupt,
    /// `kill`, a pod's termination, a CronJob's deadline.
    Terminate,
    /// The terminal went away.
    Hangup,
}

impl Signal {
    /// The signal's name.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
            Signal::Hangup => "SIGHUP",
        }
    }

    /// The shell's exit status for a process ended by this signal (128 + its number).
    pub fn exit_code(self) -> u8 {
        match self {
            Signal::Interrupt => 130,
            Signal::Terminate => 143,
            Signal::Hangup => 129,
        }
    }
}

/// Resolves at the first SIGINT, SIGTERM or SIGHUP; never, when the handlers cannot be set up
/// (the run then goes on as before).
pub async fn signalled() -> Signal {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = int.recv() => Signal::Interrupt,
        _ = term.recv() => Signal::Terminate,
        _ = hup.recv() => Signal::Hangup,
    }
}

/// Where a registering run stands, from its progress reports.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub enum Stage {
    /// Nothing registered yet.
    #[default]
    Before,
    /// Registering (or registered) a key, whose private half is still only in memory.
    Registering,
    /// The key is on its way to (or in) the Secret, the file or the store.
    Delivering,
}

/// What a run told the progress callback: its stage, and the new key's fingerprint and title.
#[derive(Debug, Default)]
pub struct Journal {
    inner: RefCell<Entry>,
}

#[derive(Debug, Default, Clone)]
struct Entry {
    stage: Stage,
    fingerprint: Option<String>,
    title: Option<String>,
}

impl Journal {
    /// A registration starts; `fingerprint` and `title` name the key when known.
    pub fn registering(&self, fingerprint: Option<&str>, title: Option<&str>) {
        let mut e = self.inner.borrow_mut();
        e.stage = Stage::Registering;
        e.fingerprint = fingerprint.map(str::to_string).or(e.fingerprint.take());
        e.title = title.map(str::to_string).or(e.title.take());
    }

    /// Delivery starts: from here the private half may already be where it goes.
    pub fn delivering(&self) {
        let mut e = self.inner.borrow_mut();
        if e.stage == Stage::Registering {
            e.stage = Stage::Delivering;
        }
    }

    /// The stage reached.
    pub fn stage(&self) -> Stage {
        self.inner.borrow().stage.clone()
    }

    /// The new key's fingerprint, when the run said it.
    pub fn fingerprint(&self) -> Option<String> {
        self.inner.borrow().fingerprint.clone()
    }

    /// The new key's title, when the run said it.
    pub fn title(&self) -> Option<String> {
        self.inner.borrow().title.clone()
    }
}

/// A run stopped by a signal: what was undone or left, for the one error line.
#[derive(Debug)]
pub struct Interrupted {
    /// The signal.
    pub signal: Signal,
    /// What was undone, or what is left and how to finish.
    pub said: String,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "stopped by {}: {}", self.signal.name(), self.said)
    }
}

impl std::error::Error for Interrupted {}

/// After a signal in a run that may have registered a key (`create --register`, `rotate`): with
/// the key still only in memory, every copy GitHub may hold is deleted (within [`UNDO_BOUND`]);
/// once delivery started, both keys stay and `then` says how to finish.
pub async fn undo_after<R: DeployKeyRegistry>(
    signal: Signal,
    journal: &Journal,
    registry: &R,
    retire: &str,
    then: &str,
) -> Interrupted {
    let fp = journal.fingerprint();
    let named = fp
        .clone()
        .or_else(|| journal.title().map(|t| format!("titled \"{t}\"")))
        .unwrap_or_else(|| "the new key".into());
    let said = match journal.stage() {
        Stage::Before => "nothing was registered or changed".to_string(),
        Stage::Registering if fp.is_none() && journal.title().is_none() => format!(
            "the new key may be registered and its private half is gone (its title is not sealkey's own, so sealkey cannot tell it from others): {retire}"
        ),
        Stage::Registering => match tokio::time::timeout(
            UNDO_BOUND,
            undo_new_key(registry, fp.as_deref(), journal.title().as_deref()),
        )
        .await
        {
            Ok(Ok(ids)) if ids.is_empty() => {
                format!("the new key {named} had not been registered; nothing changed")
            }
            Ok(Ok(ids)) => {
                let ids: Vec<String> = ids.iter().map(u64::to_string).collect();
                format!(
                    "deleted the new key {named} (id {}) it had registered before its private half was stored anywhere; nothing else changed",
                    ids.join(", ")
                )
            }
            Ok(Err(e)) => format!(
                "the new key {named} may be registered and its private half is gone; deleting it failed ({}): {retire}",
                super::spelling::show(&e)
            ),
            Err(_) => format!(
                "the new key {named} may be registered and its private half is gone; deleting it took longer than {} s: {retire}",
                UNDO_BOUND.as_secs()
            ),
        },
        Stage::Delivering => format!(
            "the new key {named} is registered and may already be where its private half went, so both keys stay registered: {then}"
        ),
    };
    Interrupted { signal, said }
}

/// Deletes every key of the repository that is the run's new key (by fingerprint, or by its
/// title, which holds the moment to the millisecond): a registration whose answer the signal cut
/// off may have made it anyway. Returns the ids deleted.
pub async fn undo_new_key<R: DeployKeyRegistry>(
    registry: &R,
    fingerprint: Option<&str>,
    title: Option<&str>,
) -> crate::error::Result<Vec<u64>> {
    let keys = registry.list().await?;
    let mut deleted = vec![];
    for k in keys {
        let by_fp = fingerprint
            .is_some_and(|fp| crate::rotate::plan::fingerprint(&k).as_deref() == Some(fp));
        let by_title = title.is_some_and(|t| k.title == t);
        if by_fp || by_title {
            registry.delete(k.id).await?;
            deleted.push(k.id);
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_journal_moves_forward_only_and_keeps_what_it_was_told() {
        let j = Journal::default();
        assert_eq!(j.stage(), Stage::Before);
        j.delivering();
        assert_eq!(j.stage(), Stage::Before, "delivery without a registration");
        j.registering(Some("SHA256:abc"), None);
        j.registering(None, Some("sealkey c/n/s 2026-12-06T00:00:00.000Z"));
        assert_eq!(j.stage(), Stage::Registering);
        assert_eq!(j.fingerprint().as_deref(), Some("SHA256:abc"));
        assert_eq!(
            j.title().as_deref(),
            Some("sealkey c/n/s 2026-12-06T00:00:00.000Z")
        );
        j.delivering();
        assert_eq!(j.stage(), Stage::Delivering);
    }

    #[test]
    fn exit_codes_follow_the_shell() {
        assert_eq!(Signal::Interrupt.exit_code(), 130);
        assert_eq!(Signal::Terminate.exit_code(), 143);
        assert_eq!(Signal::Hangup.exit_code(), 129);
    }
}
