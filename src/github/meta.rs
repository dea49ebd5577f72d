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
        KnownHosts::from_meta(host, &meta.ssh_keys, self.api_url().as_str()).map_err(|e| {
            crate::error::Error::remote(
                super::SERVICE,
                format!("/meta did not list usable SSH host keys ({e})"),
                "pass --known-hosts FILE (e.g. from `ssh-keyscan HOST`) instead",
            )
        })
    }
}
