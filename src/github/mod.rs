//! GitHub REST client for repository deploy keys and `/meta`: one HTTP stack shared with kube
//! (rustls + ring), rate limits waited out within a bound, retries only where repeating is safe.
//!
//! Endpoints (API version 2022-11-28): `GET/POST /repos/{owner}/{repo}/keys`,
//! `GET/DELETE /repos/{owner}/{repo}/keys/{id}`, `GET /meta`, and for GitHub App auth
//! `GET /repos/{owner}/{repo}/installation` and `POST /app/installations/{id}/access_tokens`;
//! for an App as the git credential also `GET /app` and `GET /repos/{owner}/{repo}`.

mod api_url;
pub mod app;
pub mod app_credential;
mod auth;
mod client;
pub mod hygiene;
mod keys;
mod meta;
pub mod registry;
pub mod title;
mod transport;

pub use api_url::ApiUrl;
pub use app::AppCredentials;
pub use client::{Auth, ClientSettings, GithubClient, WaitNotice};
pub use keys::{same_key, DeployKeyInfo, NewDeployKey, Registered, RegistrationOutcome};
pub use meta::Meta;
pub use registry::{DeployKeyRegistry, RepoKeys};

/// The service name used in errors.
pub(crate) const SERVICE: &str = "GitHub";
