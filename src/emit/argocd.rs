//! Argo CD: a repository Secret (`type: git`, `url`, `sshPrivateKey`), and the host keys added to
//! the user's `argocd-ssh-known-hosts-cm` (never a whole ConfigMap of sealkey's).

use super::{b64, secret_object, secret_value, EmitSettings};
use crate::error::{Error, Result};
use crate::keygen::DeployKey;
use crate::known_hosts::KnownHosts;
use crate::secret::PrivateKeyPem;
use serde_json::{json, Map, Value};

/// The repository Secret. Argo CD's default `argocd-ssh-known-hosts-cm` already lists
/// github.com's keys (checked against Argo CD's manifest in tests); other hosts' keys are added
/// to the user's ConfigMap with [`add_known_hosts`].
pub(crate) fn objects(
    settings: &EmitSettings,
    key: &DeployKey,
    kh: &KnownHosts,
    pem: &PrivateKeyPem,
) -> Vec<Value> {
    let mut data = Map::new();
    data.insert("type".into(), Value::String(b64(b"git").to_string()));
    data.insert(
        "url".into(),
        Value::String(b64(settings.repo_url().as_bytes()).to_string()),
    );
    data.insert(
        "sshPrivateKey".into(),
        secret_value(b64(pem.expose_secret().as_bytes())),
    );
    let mut secret = secret_object(settings, key, kh, "Opaque", data);
    secret["metadata"]["labels"]["argocd.argoproj.io/secret-type"] = json!("repository");
    // Never the known-hosts ConfigMap: applying one replaces Argo CD's whole list (github.com,
    // gitlab.com, bitbucket.org, ...). Its lines are added to the user's ConfigMap instead
    // ([`add_known_hosts`]), as `argocd cert add-ssh` adds them.
    vec![secret]
}

/// Argo CD's known-hosts ConfigMap.
pub const KNOWN_HOSTS_CONFIG_MAP: &str = "argocd-ssh-known-hosts-cm";

/// The lines of `kh` that `existing` (an `ssh_known_hosts` text) lacks, after checking none
/// conflicts: a line for the same host and key type with another key is refused (a changed
/// host key is for a person to look at, not to add beside the old one).
pub fn missing_known_hosts(existing: &str, kh: &KnownHosts, what: &str) -> Result<Vec<String>> {
    let fields = |l: &str| -> Option<(String, String, String)> {
        let mut f = l.split_whitespace();
        let hosts = f.next()?;
        if hosts.starts_with('@') || hosts.starts_with('#') {
            return None;
        }
        Some((
            hosts.to_ascii_lowercase(),
            f.next()?.to_string(),
            f.next()?.to_string(),
        ))
    };
    let have: Vec<(String, String, String)> = existing.lines().filter_map(fields).collect();
    let mut missing = Vec::new();
    for line in kh.lines() {
        let Some((hosts, kind, key)) = fields(line) else {
            continue;
        };
        if have
            .iter()
            .any(|(h, k, b)| *h == hosts && *k == kind && *b == key)
        {
            continue;
        }
        if have.iter().any(|(h, k, _)| *h == hosts && *k == kind) {
            return Err(Error::input(
                what,
                format!("it already trusts another {kind} key for {hosts}: adding a second would hide a changed host key"),
                "check the host's published fingerprints and fix the ConfigMap by hand; nothing was changed",
            ));
        }
        missing.push(format!("{hosts} {kind} {key}"));
    }
    Ok(missing)
}

/// Adds the host keys of `kh` that the `argocd-ssh-known-hosts-cm` ConfigMap in `text` lacks,
/// changing only its `data.ssh_known_hosts` lines (every other line byte for byte); `None` when
/// nothing is missing. `what` names the file in errors.
pub fn add_known_hosts(
    text: &str,
    what: &str,
    kh: &KnownHosts,
) -> Result<Option<(String, Vec<String>)>> {
    let docs = crate::yaml::parse_stream(text, what)?;
    let cms: Vec<&Value> = docs
        .iter()
        .filter(|d| d["kind"] == "ConfigMap" && d["metadata"]["name"] == KNOWN_HOSTS_CONFIG_MAP)
        .collect();
    let [cm] = cms[..] else {
        return Err(Error::input(
            what,
            format!("it holds {} {KNOWN_HOSTS_CONFIG_MAP} ConfigMaps, not one", cms.len()),
            "pass the file that holds Argo CD's known-hosts ConfigMap (Argo CD's manifests/base/config/argocd-ssh-known-hosts-cm.yaml, or your copy)",
        ));
    };
    let existing = cm["data"]["ssh_known_hosts"].as_str().unwrap_or_default();
    let missing = missing_known_hosts(existing, kh, what)?;
    if missing.is_empty() {
        return Ok(None);
    }
    let mut value = existing.to_string();
    if !value.is_empty() && !value.ends_with('\n') {
        value.push('\n');
    }
    for l in &missing {
        value.push_str(l);
        value.push('\n');
    }
    let owned = [super::merge::Owned::new(
        &["data", "ssh_known_hosts"],
        Value::String(value),
    )];
    let merged = super::merge::merge_object_lines(text, what, "ConfigMap", &owned, &[], false)?;
    Ok(Some((merged, missing)))
}
