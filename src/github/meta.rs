//! `GET /meta`: the SSH host keys GitHub (or a GitHub Enterprise Server) publishes.

use super::client::{check, expect_answer, GithubClient};
use crate::error::Result;
use crate::known_hosts::KnownHosts;
use reqwest::Method;
use serde::Deserialize;

/// The part of `/meta` sealkey uses.
#[derive(Clone, Debug, Deserialize)]
pub struct Meta {
    /// `TYPE BASE64` host keys.
    #[serde(default)]
    pub ssh_keys: Vec<String>,
    /// `{ "SHA256_ED25519": "..." }`, when the server says.
    #[serde(default)]
    pub ssh_key_fingerprints: Option<serde_json::Map<String, serde_json::Value>>,
}

impl GithubClient {
    /// `GET /meta` (no repository involved; sent with the personal token if there is one).
    pub async fn meta(&self) -> Result<Meta> {
        let url = self.api_url().join("/meta")?;
        let what = "reading host keys from /meta";
        let answer = expect_answer(self.send(Method::GET, url, None, self.plain_cred()).await?)?;
        check(answer, what, None)?.json(what)
    }

    /// known_hosts lines for `host` from `/meta` (validated: every key must parse).
    pub async fn known_hosts(&self, host: &str) -> Result<KnownHosts> {
        let meta = self.meta().await?;
        let keys = key_fields(&meta.ssh_keys);
        KnownHosts::from_meta(host, &keys, self.api_url().as_str()).map_err(|e| {
            crate::error::Error::remote(
                super::SERVICE,
                format!("/meta did not list usable SSH host keys ({e})"),
                "pass --known-hosts FILE (e.g. from `ssh-keyscan HOST`) instead",
            )
        })
    }
}

/// `TYPE BASE64` of each `/meta` entry and nothing else: a line break or a trailing "comment" in
/// an entry would otherwise become another known_hosts line (for any host) or terminal text.
fn key_fields(entries: &[String]) -> Vec<String> {
    entries
        .iter()
        .map(|e| e.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_entries_cannot_inject_known_hosts_lines_or_controls() {
        let entries = vec![
            "ssh-ed25519 AAAAC3Nza\ngithub.evil ssh-ed25519 AAAAother".to_string(),
            "ssh-rsa AAAAB3 \u{1b}]0;pwned\u{7}".to_string(),
        ];
        assert_eq!(
            key_fields(&entries),
            vec!["ssh-ed25519 AAAAC3Nza", "ssh-rsa AAAAB3"]
        );
    }
}
