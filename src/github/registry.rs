//! The deploy keys of one repository as a small trait, so the create and rotate pipelines and
//! their rollback are tested against faults at every step without a network; and the one undo
//! path for a key a run registered moments ago.

use super::keys::{same_key, DeployKeyInfo, NewDeployKey};
use super::GithubClient;
use crate::error::{Error, Result};
use crate::keygen::DeployKey;
use crate::repo::RepoRef;
use std::future::Future;

/// The deploy keys of one repository.
pub trait DeployKeyRegistry {
    /// Every deploy key of the repository.
    fn list(&self) -> impl Future<Output = Result<Vec<DeployKeyInfo>>>;
    /// Registers `public_key` under `title`, read-only unless `read_only` is false.
    fn register(
        &self,
        title: &str,
        public_key: &str,
        read_only: bool,
    ) -> impl Future<Output = Result<DeployKeyInfo>>;
    /// Deletes key `id` (already gone is success).
    fn delete(&self, id: u64) -> impl Future<Output = Result<()>>;
}

/// The deploy keys of one repository through sealkey's GitHub client (retries, rate limits and
/// 422 disambiguation live there).
pub struct RepoKeys<'a> {
    client: &'a GithubClient,
    repo: RepoRef,
}

impl<'a> RepoKeys<'a> {
    /// The keys of `repo`.
    pub fn new(client: &'a GithubClient, repo: RepoRef) -> Self {
        Self { client, repo }
    }
}

impl DeployKeyRegistry for RepoKeys<'_> {
    async fn list(&self) -> Result<Vec<DeployKeyInfo>> {
        self.client.list_deploy_keys(&self.repo).await
    }
    async fn register(
        &self,
        title: &str,
        public_key: &str,
        read_only: bool,
    ) -> Result<DeployKeyInfo> {
        let new = NewDeployKey {
            title: title.into(),
            key: public_key.into(),
            read_only,
        };
        Ok(self.client.register_deploy_key(&self.repo, &new).await?.key)
    }
    async fn delete(&self, id: u64) -> Result<()> {
        self.client
            .delete_deploy_key(&self.repo, id)
            .await
            .map(drop)
    }
}

/// Registers `key` read-only under `title` and returns its id (see [`register_key`]).
pub async fn register_read_only<R: DeployKeyRegistry>(
    registry: &R,
    title: &str,
    key: &DeployKey,
) -> std::result::Result<u64, (Error, crate::error::Message)> {
    register_key(registry, title, key, true).await.map(|k| k.id)
}

/// Registers `key` under `title` with the access asked for. On failure (GitHub's error, or a
/// key registered with other access than asked) every copy GitHub may have created anyway is
/// removed ([`undo_registration`]); the error comes with the sentence saying so.
pub async fn register_key<R: DeployKeyRegistry>(
    registry: &R,
    title: &str,
    key: &DeployKey,
    read_only: bool,
) -> std::result::Result<DeployKeyInfo, (Error, crate::error::Message)> {
    match registry
        .register(title, &key.public_key_bare(), read_only)
        .await
    {
        Ok(k) if k.read_only == read_only => Ok(k),
        Ok(k) => {
            let undone = undo_registration(registry, Some(k.id), key.public_openssh()).await;
            let e = Error::remote(
                super::SERVICE,
                format!(
                    "key {} was registered {} although sealkey asked for {}",
                    k.id,
                    access(k.read_only),
                    access(read_only)
                ),
                "report this; check the repository's Deploy keys",
            );
            Err((e, undone.said))
        }
        Err(e) => Err((
            e,
            undo_registration(registry, None, key.public_openssh())
                .await
                .said,
        )),
    }
}

fn access(read_only: bool) -> &'static str {
    if read_only {
        "read-only"
    } else {
        "with write access"
    }
}

/// What [`undo_registration`] did.
#[derive(Debug)]
pub struct Undone {
    /// One sentence for the error: what was deleted, or what is left and what to do.
    pub said: crate::error::Message,
    /// Whether a key this run registered may still be on GitHub.
    pub left_behind: bool,
}

/// Takes back the key this run registered (`id` when GitHub answered with one) and says what
/// happened. When the DELETE fails or there is no id (a timeout or a 5xx may hide a created
/// key), it lists the keys and deletes every copy of `public`.
pub async fn undo_registration<R: DeployKeyRegistry>(
    registry: &R,
    id: Option<u64>,
    public: &str,
) -> Undone {
    let done = |said: String| Undone {
        said: said.into(),
        left_behind: false,
    };
    let left = |said: crate::error::Message| Undone {
        said,
        left_behind: true,
    };
    if let Some(id) = id {
        if registry.delete(id).await.is_ok() {
            return done(format!(
                "deleted the new key {id} again; everything is as before"
            ));
        }
    }
    let keys = match registry.list().await {
        Ok(k) => k,
        Err(e) => {
            return left(crate::message!(
                "could not check whether GitHub created the new key ({}): look for a key ending in {} under the repository's Deploy keys and delete it",
                &e,
                tail(public)
            ))
        }
    };
    let mut undone = Vec::new();
    for k in keys.iter().filter(|k| same_key(&k.key, public)) {
        match registry.delete(k.id).await {
            Ok(()) => undone.push(format!("deleted the new key {} that GitHub had created", k.id)),
            Err(e) => {
                return left(crate::message!(
                    "GitHub created the new key {} but deleting it failed ({}): delete it under the repository's Deploy keys",
                    k.id.to_string(),
                    &e
                ))
            }
        }
    }
    if undone.is_empty() {
        done("no new key is registered; everything is as before".into())
    } else {
        done(format!("{}; everything is as before", undone.join(", ")))
    }
}

/// The last 12 characters of a public key's base64, to find it in GitHub's list by eye.
fn tail(public: &str) -> String {
    let b = public.split_whitespace().nth(1).unwrap_or_default();
    b[b.len().saturating_sub(12)..].to_string()
}
