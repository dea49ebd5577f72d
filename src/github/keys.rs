//! Repository deploy keys: list, get, create (with 422 disambiguation), delete, and titles.

use super::client::GithubClient;
use super::transport::{check, expect_answer, status_error, Answer, Sent};
use super::SERVICE;
use crate::error::{Error, Result};
use crate::repo::RepoRef;
use reqwest::Method;
use serde::{Deserialize, Serialize};

/// A deploy key as GitHub lists it (`deploy-key` schema).
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
pub struct DeployKeyInfo {
    /// GitHub's id for the key on this repository.
    pub id: u64,
    /// The public key, `TYPE BASE64` (GitHub drops the comment).
    pub key: String,
    /// The title shown in Settings > Deploy keys.
    pub title: String,
    /// Whether GitHub verified it.
    #[serde(default)]
    pub verified: bool,
    /// When it was added (RFC 3339).
    pub created_at: String,
    /// `false` means the key can push.
    pub read_only: bool,
    /// Who added it, when GitHub says.
    #[serde(default)]
    pub added_by: Option<String>,
    /// Last use (RFC 3339), or none if never used (or not reported by this GitHub version).
    #[serde(default)]
    pub last_used: Option<String>,
    /// `false` when an organisation policy disabled deploy keys.
    #[serde(default)]
    pub enabled: Option<bool>,
}

impl DeployKeyInfo {
    /// `SHA256:...` of the key, or `unparseable` if GitHub listed something odd.
    pub fn fingerprint(&self) -> String {
        crate::keygen::fingerprint_of_public(&self.key).unwrap_or_else(|_| "unparseable".into())
    }
}

/// What to register.
#[derive(Clone, Debug)]
pub struct NewDeployKey {
    /// Title, e.g. `sealkey prod/airflow/airflow-ssh-secret 2026-11-26`.
    pub title: String,
    /// The OpenSSH public key line (a trailing comment is fine).
    pub key: String,
    /// Read-only unless the user asked for write access.
    pub read_only: bool,
}

/// How a registration ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RegistrationOutcome {
    /// GitHub created the key now.
    Created,
    /// The same key was already a deploy key on this repository (idempotent success).
    AlreadyRegistered,
}

/// A registered key and how it got there.
#[derive(Clone, Debug)]
pub struct Registered {
    /// The key as GitHub holds it.
    pub key: DeployKeyInfo,
    /// Created now or found already there.
    pub outcome: RegistrationOutcome,
}

/// Whether two OpenSSH public key lines hold the same key (type and base64; comments ignored).
pub fn same_key(a: &str, b: &str) -> bool {
    fn bare(s: &str) -> Vec<&str> {
        s.split_whitespace().take(2).collect()
    }
    let (a, b) = (bare(a), bare(b));
    a.len() == 2 && a == b
}

fn keys_path(repo: &RepoRef) -> String {
    format!("/repos/{}/{}/keys", repo.owner, repo.name)
}

impl GithubClient {
    /// Every deploy key of `repo`, across all pages.
    pub async fn list_deploy_keys(&self, repo: &RepoRef) -> Result<Vec<DeployKeyInfo>> {
        let mut url = self.api_url().join(&keys_path(repo))?;
        url.query_pairs_mut().append_pair("per_page", "100");
        self.get_all_pages(
            repo,
            url,
            &format!("listing deploy keys of {}", repo.slug()),
        )
        .await
    }

    /// One deploy key by id.
    pub async fn get_deploy_key(&self, repo: &RepoRef, id: u64) -> Result<DeployKeyInfo> {
        let url = self.api_url().join(&format!("{}/{id}", keys_path(repo)))?;
        let what = format!("reading deploy key {id} of {}", repo.slug());
        let answer = expect_answer(self.repo_request(Method::GET, repo, url, None).await?)?;
        check(answer, &what, Some(repo))?.json(&what)
    }

    /// Deletes a deploy key. `Ok(false)` if it was already gone (404).
    pub async fn delete_deploy_key(&self, repo: &RepoRef, id: u64) -> Result<bool> {
        let url = self.api_url().join(&format!("{}/{id}", keys_path(repo)))?;
        let what = format!("deleting deploy key {id} of {}", repo.slug());
        let answer = expect_answer(self.repo_request(Method::DELETE, repo, url, None).await?)?;
        if answer.status == reqwest::StatusCode::NOT_FOUND {
            return Ok(false);
        }
        check(answer, &what, Some(repo))?;
        Ok(true)
    }

    /// Registers `new` on `repo`. Idempotent: if GitHub answers 422 and the key is already a
    /// deploy key of this repository, that key is returned. A POST that got no answer (or a 5xx)
    /// is never repeated blindly: the keys are listed first, and the POST is sent again (at most
    /// twice) only if the key is not there.
    pub async fn register_deploy_key(
        &self,
        repo: &RepoRef,
        new: &NewDeployKey,
    ) -> Result<Registered> {
        let bare: String = new
            .key
            .split_whitespace()
            .take(2)
            .collect::<Vec<_>>()
            .join(" ");
        let body = serde_json::json!({
            "title": new.title,
            "key": bare,
            "read_only": new.read_only,
        });
        let url = self.api_url().join(&keys_path(repo))?;
        let what = format!("registering the deploy key on {}", repo.slug());
        let mut posts = 0;
        loop {
            posts += 1;
            let sent = self
                .repo_request(Method::POST, repo, url.clone(), Some(&body))
                .await?;
            let failure = match sent {
                Sent::Answer(a) if a.status.is_success() => {
                    return Ok(Registered {
                        key: a.json(&what)?,
                        outcome: RegistrationOutcome::Created,
                    })
                }
                Sent::Answer(a) if a.status == reqwest::StatusCode::UNPROCESSABLE_ENTITY => {
                    return self.after_422(repo, &bare, &a).await;
                }
                Sent::Answer(a) if a.status.is_server_error() => {
                    status_error(&a, &what, Some(repo))
                }
                Sent::Answer(a) => return Err(status_error(&a, &what, Some(repo))),
                Sent::Unreachable(e) => e,
            };
            // The POST may or may not have been carried out: look before sending it again.
            let existing = self.list_deploy_keys(repo).await?;
            if let Some(found) = existing.into_iter().find(|k| same_key(&k.key, &bare)) {
                return Ok(Registered {
                    key: found,
                    outcome: RegistrationOutcome::Created,
                });
            }
            if posts >= 3 {
                return Err(failure);
            }
        }
    }

    /// Tells apart the three meanings of a 422 by listing the repository's keys.
    async fn after_422(&self, repo: &RepoRef, bare: &str, answer: &Answer) -> Result<Registered> {
        let existing = self.list_deploy_keys(repo).await?;
        if let Some(found) = existing.into_iter().find(|k| same_key(&k.key, bare)) {
            return Ok(Registered {
                key: found,
                outcome: RegistrationOutcome::AlreadyRegistered,
            });
        }
        let fingerprint =
            crate::keygen::fingerprint_of_public(bare).unwrap_or_else(|_| "(unparseable)".into());
        let messages = error_messages(answer);
        let joined = messages.join("; ");
        if messages
            .iter()
            .any(|m| m.to_ascii_lowercase().contains("already in use"))
        {
            return Err(Error::remote(
                SERVICE,
                format!(
                    "the key {fingerprint} is already in use on another repository or as a user's SSH key (GitHub answered 422: {joined}); GitHub accepts a key only once"
                ),
                crate::message!(
                    "use a separate key per repository: generate a new one for {} (`{}`), or remove this one where it is registered",
                    repo.slug(),
                    crate::error::Command::Create
                ),
            ));
        }
        if messages.iter().any(|m| {
            let m = m.to_ascii_lowercase();
            m.contains("invalid") || m.contains("format")
        }) || messages.is_empty()
        {
            return Err(Error::remote(
                SERVICE,
                format!("GitHub rejected the key {fingerprint} as invalid (422: {joined})"),
                "pass an OpenSSH public key line such as `ssh-ed25519 AAAA...`; GitHub refuses DSA and RSA keys shorter than 1024 bits",
            ));
        }
        Err(Error::remote(
            SERVICE,
            format!(
                "GitHub refused the key {fingerprint} on {} (422: {joined})",
                repo.slug()
            ),
            "check the title and key; GitHub's message above says which field it refused",
        ))
    }
}

/// The messages of a 422 body (cleaned for showing): each `errors[].message` (or code), else
/// the top-level message.
fn error_messages(answer: &Answer) -> Vec<String> {
    if !answer.said_errors.is_empty() {
        return answer.said_errors.clone();
    }
    answer
        .said
        .iter()
        .filter(|m| m.as_str() != "Validation Failed")
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_ignores_comments_only() {
        assert!(same_key("ssh-ed25519 AAAA x@y", "ssh-ed25519 AAAA"));
        assert!(!same_key("ssh-ed25519 AAAA", "ssh-ed25519 AAAB"));
        assert!(!same_key("", ""));
    }
}
