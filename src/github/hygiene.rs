//! Deploy key hygiene: the rules `sealkey keys audit` applies and the plan `keys prune` follows.

use super::keys::DeployKeyInfo;
use super::title::sealkey_slot;
use crate::repo::RepoRef;
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;

/// What the hygiene check measures keys against.
#[derive(Clone, Debug)]
pub struct HygieneSettings {
    /// Keys older than this are flagged (`--max-age`).
    pub max_age: Duration,
    /// Keys unused for this long, or never used and older than this, are flagged (`--unused-for`).
    pub unused_for: Duration,
    /// The time the audit runs at.
    pub now: jiff::Timestamp,
}

/// One rule an audited key can break.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum KeyRule {
    /// The key can push (`read_only: false`).
    WriteAccess,
    /// Older than `--max-age`.
    TooOld,
    /// Never used, and older than `--unused-for`.
    NeverUsed,
    /// Last used longer ago than `--unused-for`.
    Unused,
    /// Disabled by an organisation policy (`enabled: false`).
    Disabled,
    /// The title does not start with `sealkey `: made by hand or another tool.
    NotSealkey,
    /// The same key material appears more than once across the audited repositories.
    DuplicateKey,
    /// Two sealkey keys for the same CONTEXT/NAMESPACE/SECRET on one repository (a rotation
    /// left the old key behind).
    DuplicateSlot,
}

impl KeyRule {
    /// The rule's name as printed.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyRule::WriteAccess => "write-access",
            KeyRule::TooOld => "too-old",
            KeyRule::NeverUsed => "never-used",
            KeyRule::Unused => "unused",
            KeyRule::Disabled => "disabled",
            KeyRule::NotSealkey => "not-sealkey",
            KeyRule::DuplicateKey => "duplicate-key",
            KeyRule::DuplicateSlot => "duplicate-slot",
        }
    }
}

/// A flagged key.
#[derive(Clone, Debug, Serialize)]
pub struct KeyFinding {
    /// `OWNER/REPO`.
    pub repo: String,
    /// GitHub's key id.
    pub key_id: u64,
    /// The key's title.
    pub title: String,
    /// `SHA256:...`.
    pub fingerprint: String,
    /// Which rule.
    pub rule: KeyRule,
    /// Why, in words.
    pub detail: String,
}

/// Applies every rule to the keys of every repository.
pub fn check(
    repos: &[(RepoRef, Vec<DeployKeyInfo>)],
    settings: &HygieneSettings,
) -> Vec<KeyFinding> {
    let mut findings = Vec::new();
    let mut by_fingerprint: HashMap<String, Vec<(String, u64, String)>> = HashMap::new();
    for (repo, keys) in repos {
        let mut slots: HashMap<String, Vec<u64>> = HashMap::new();
        for key in keys {
            let fingerprint = key.fingerprint();
            let mut flag = |rule: KeyRule, detail: String| {
                findings.push(KeyFinding {
                    repo: repo.slug(),
                    key_id: key.id,
                    title: key.title.clone(),
                    fingerprint: fingerprint.clone(),
                    rule,
                    detail,
                })
            };
            if !key.read_only {
                flag(
                    KeyRule::WriteAccess,
                    "the key can push to the repository".into(),
                );
            }
            let created = key.created_at.parse::<jiff::Timestamp>().ok();
            let age = created.map(|c| elapsed(c, settings.now));
            if let Some(age) = age {
                if age > settings.max_age {
                    flag(
                        KeyRule::TooOld,
                        format!(
                            "created {} days ago (max {})",
                            days(age),
                            days(settings.max_age)
                        ),
                    );
                }
            }
            match key.last_used.as_deref().map(str::parse::<jiff::Timestamp>) {
                Some(Ok(used)) => {
                    let idle = elapsed(used, settings.now);
                    if idle > settings.unused_for {
                        flag(
                            KeyRule::Unused,
                            format!("last used {} days ago", days(idle)),
                        );
                    }
                }
                Some(Err(_)) => {}
                None => {
                    if age.is_none_or(|a| a > settings.unused_for) {
                        flag(
                            KeyRule::NeverUsed,
                            format!(
                                "never used, and added more than {} days ago",
                                days(settings.unused_for)
                            ),
                        );
                    }
                }
            }
            if key.enabled == Some(false) {
                flag(
                    KeyRule::Disabled,
                    "disabled by an organisation policy".into(),
                );
            }
            match sealkey_slot(&key.title) {
                Some(slot) => slots.entry(slot.to_string()).or_default().push(key.id),
                None => flag(
                    KeyRule::NotSealkey,
                    "not made by sealkey (title does not start with \"sealkey \")".into(),
                ),
            }
            // Grouped by key material, so even keys whose fingerprint cannot be computed compare.
            let material: String = key
                .key
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            by_fingerprint.entry(material).or_default().push((
                repo.slug(),
                key.id,
                fingerprint.clone(),
            ));
        }
        for (slot, ids) in slots.into_iter().filter(|(_, ids)| ids.len() > 1) {
            for key in keys.iter().filter(|k| ids.contains(&k.id)) {
                findings.push(KeyFinding {
                    repo: repo.slug(),
                    key_id: key.id,
                    title: key.title.clone(),
                    fingerprint: key.fingerprint(),
                    rule: KeyRule::DuplicateSlot,
                    detail: format!("{} keys for {slot}; prune the old ones", ids.len()),
                });
            }
        }
    }
    for (_, places) in by_fingerprint.into_iter().filter(|(_, p)| p.len() > 1) {
        let listed: Vec<String> = places
            .iter()
            .map(|(r, id, _)| format!("{r}#{id}"))
            .collect();
        for (repo, id, fingerprint) in &places {
            let title = repos
                .iter()
                .flat_map(|(_, ks)| ks)
                .find(|k| k.id == *id)
                .map(|k| k.title.clone())
                .unwrap_or_default();
            findings.push(KeyFinding {
                repo: repo.clone(),
                key_id: *id,
                title,
                fingerprint: fingerprint.clone(),
                rule: KeyRule::DuplicateKey,
                detail: format!(
                    "the same key is registered {} times: {}",
                    places.len(),
                    listed.join(", ")
                ),
            });
        }
    }
    findings.sort_by(|a, b| {
        (&a.repo, a.key_id, a.rule.as_str()).cmp(&(&b.repo, b.key_id, b.rule.as_str()))
    });
    findings
}

/// The keys `prune` deletes: every key whose fingerprint is not kept.
pub fn prune_plan<'a>(keys: &'a [DeployKeyInfo], keep: &[String]) -> Vec<&'a DeployKeyInfo> {
    keys.iter()
        .filter(|k| !keep.iter().any(|f| same_fingerprint(f, &k.fingerprint())))
        .collect()
}

/// The keys `prune --retire` deletes: only those whose fingerprint is given.
pub fn retire_plan<'a>(keys: &'a [DeployKeyInfo], retire: &[String]) -> Vec<&'a DeployKeyInfo> {
    keys.iter()
        .filter(|k| retire.iter().any(|f| same_fingerprint(f, &k.fingerprint())))
        .collect()
}

/// Compares fingerprints with or without the `SHA256:` prefix.
pub fn same_fingerprint(a: &str, b: &str) -> bool {
    let strip = |s: &str| {
        s.trim()
            .strip_prefix("SHA256:")
            .unwrap_or(s.trim())
            .to_string()
    };
    strip(a) == strip(b)
}

fn elapsed(from: jiff::Timestamp, now: jiff::Timestamp) -> Duration {
    let secs = now.as_second() - from.as_second();
    Duration::from_secs(secs.max(0) as u64)
}

fn days(d: Duration) -> u64 {
    d.as_secs() / 86_400
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(
        id: u64,
        key: &str,
        title: &str,
        ro: bool,
        created: &str,
        used: Option<&str>,
    ) -> DeployKeyInfo {
        DeployKeyInfo {
            id,
            key: key.into(),
            title: title.into(),
            verified: true,
            created_at: created.into(),
            read_only: ro,
            added_by: None,
            last_used: used.map(Into::into),
            enabled: Some(true),
        }
    }

    const K1: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";

    fn settings() -> HygieneSettings {
        HygieneSettings {
            max_age: Duration::from_secs(90 * 86_400),
            unused_for: Duration::from_secs(30 * 86_400),
            now: "2026-11-26T00:00:00Z".parse().unwrap(),
        }
    }

    fn rules(f: &[KeyFinding], id: u64) -> Vec<KeyRule> {
        f.iter()
            .filter(|x| x.key_id == id)
            .map(|x| x.rule)
            .collect()
    }

    #[test]
    fn a_fresh_read_only_sealkey_key_passes() {
        let repo = RepoRef::parse("acme/dags").unwrap();
        let keys = vec![key(
            1,
            K1,
            "sealkey prod/ns/s 2026-11-20",
            true,
            "2026-11-20T00:00:00Z",
            None,
        )];
        assert!(check(&[(repo, keys)], &settings()).is_empty());
    }

    #[test]
    fn each_rule_flags_its_case() {
        let a = RepoRef::parse("acme/a").unwrap();
        let b = RepoRef::parse("acme/b").unwrap();
        let mut disabled = key(
            5,
            "ssh-ed25519 AAAC",
            "sealkey c/n/x 2026-11-20",
            true,
            "2026-11-20T00:00:00Z",
            Some("2026-11-25T00:00:00Z"),
        );
        disabled.enabled = Some(false);
        let keys_a = vec![
            key(
                1,
                "ssh-ed25519 AAAA",
                "sealkey c/n/s 2026-01-01",
                false,
                "2026-01-01T00:00:00Z",
                Some("2026-11-25T00:00:00Z"),
            ),
            key(
                2,
                "ssh-ed25519 AAAB",
                "hand made",
                true,
                "2026-10-01T00:00:00Z",
                None,
            ),
            key(
                3,
                "ssh-ed25519 AAAD",
                "sealkey c/n/s 2026-11-20",
                true,
                "2026-11-20T00:00:00Z",
                Some("2026-09-01T00:00:00Z"),
            ),
            disabled,
        ];
        let keys_b = vec![key(
            4,
            "ssh-ed25519 AAAA",
            "sealkey d/n/s 2026-11-20",
            true,
            "2026-11-20T00:00:00Z",
            Some("2026-11-25T00:00:00Z"),
        )];
        let f = check(&[(a, keys_a), (b, keys_b)], &settings());
        let r1 = rules(&f, 1);
        assert!(
            r1.contains(&KeyRule::WriteAccess)
                && r1.contains(&KeyRule::TooOld)
                && r1.contains(&KeyRule::DuplicateKey)
                && r1.contains(&KeyRule::DuplicateSlot),
            "{r1:?}"
        );
        assert_eq!(rules(&f, 2), vec![KeyRule::NeverUsed, KeyRule::NotSealkey]);
        let r3 = rules(&f, 3);
        assert!(
            r3.contains(&KeyRule::Unused) && r3.contains(&KeyRule::DuplicateSlot),
            "{r3:?}"
        );
        assert_eq!(rules(&f, 4), vec![KeyRule::DuplicateKey]);
        assert_eq!(rules(&f, 5), vec![KeyRule::Disabled]);
    }

    #[test]
    fn prune_keeps_listed_fingerprints_with_or_without_prefix() {
        let keys = vec![
            key(1, K1, "t", true, "2026-11-20T00:00:00Z", None),
            key(
                2,
                "ssh-ed25519 AAAB",
                "t",
                true,
                "2026-11-20T00:00:00Z",
                None,
            ),
        ];
        let fp = keys[0].fingerprint();
        let plan = prune_plan(&keys, &[fp.trim_start_matches("SHA256:").to_string()]);
        assert_eq!(plan.iter().map(|k| k.id).collect::<Vec<_>>(), vec![2]);
    }
}
