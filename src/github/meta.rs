//! `GET /meta`: the SSH host keys GitHub (or a GitHub Enterprise Server) publishes.

use super::client::GithubClient;
use super::transport::{check, expect_answer};
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
        let answer = expect_answer(self.plain_request(Method::GET, url).await?)?;
        check(answer, what, None)?.json(what)
    }

    /// known_hosts lines for `host` from `/meta` (validated: every key must parse).
    pub async fn known_hosts(&self, host: &str) -> Result<KnownHosts> {
        let meta = self.meta().await?;
        // Entries are refused, not trimmed, unless each is exactly `TYPE BASE64`: a line break
        // or "comment" in one would otherwise become another known_hosts line (for any host) or
        // terminal text, and a server that sends such an answer is not one to take keys from.
        KnownHosts::from_meta(host, &meta.ssh_keys, self.api_url().as_str()).map_err(|e| {
            crate::error::Error::remote(
                super::SERVICE,
                format!("/meta did not list usable SSH host keys ({e})"),
                crate::message!(
                    "pass {} FILE (e.g. from `ssh-keyscan HOST`) instead",
                    crate::error::Setting::KnownHosts
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::known_hosts::KnownHosts;

    #[test]
    fn meta_entries_cannot_inject_known_hosts_lines_or_controls() {
        let good =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
        for bad in [
            format!("{good}\ngithub.evil {good}"),
            format!("{good} \u{1b}]0;pwned\u{7}"),
            format!("{good} c\u{2028}---"),
        ] {
            let err = KnownHosts::from_meta(
                "github.com",
                &[good.to_string(), bad],
                "https://api.github.com",
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains("ssh_keys[1]"), "{err}");
            assert!(
                !err.contains('\u{1b}') && !err.contains("github.evil"),
                "{err}"
            );
        }
        assert!(
            KnownHosts::from_meta("github.com", &[good.to_string()], "https://api.github.com")
                .is_ok()
        );
    }
}
