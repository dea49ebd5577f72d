//! The GitHub REST client: one per command run, holding the transport (`transport.rs`) and the
//! credentials (`auth.rs`); endpoints live in `keys.rs` and `meta.rs`.

use super::api_url::ApiUrl;
pub use super::auth::Auth;
use super::auth::Credentials;
use super::transport::{check, expect_answer, host_of, next_link, Cred, Sent, Transport};
pub use super::transport::{ClientSettings, WaitNotice};
use super::SERVICE;
use crate::error::{Error, Result, Setting};
use crate::message;
use crate::repo::RepoRef;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, USER_AGENT};
use reqwest::{Method, Url};

/// The most pages one listing reads.
pub const MAX_LIST_PAGES: usize = 1000;
/// The most bytes all answers of one listing may hold together.
pub const MAX_LIST_BYTES: usize = 32 << 20;
/// The most entries one listing may hold (a repository has far fewer deploy keys).
pub const MAX_LIST_ITEMS: usize = 100_000;

/// A GitHub REST client. Cheap to share by reference; one per command run.
pub struct GithubClient {
    transport: Transport,
    credentials: Credentials,
}

impl std::fmt::Debug for GithubClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GithubClient")
            .field("api_url", &self.transport.settings.api_url.as_str())
            .field("auth", self.credentials.auth())
            .finish_non_exhaustive()
    }
}

impl GithubClient {
    /// Builds the client (no redirects, proxies as [`crate::http::ProxyEnv`] decides). Installs
    /// the ring crypto provider for rustls if none is installed.
    pub fn new(settings: ClientSettings, auth: Auth) -> Result<Self> {
        let mut headers = HeaderMap::new();
        // Prism (and some proxies) refuse the vendor type alone; GitHub treats both the same.
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("application/vnd.github+json, application/json;q=0.9"),
        );
        headers.insert(
            "X-GitHub-Api-Version",
            HeaderValue::from_static("2022-11-28"),
        );
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("sealkey/", env!("CARGO_PKG_VERSION"))),
        );
        // Redirects could carry the Authorization header elsewhere; GitHub's API answers
        // directly, so a redirect is reported instead of followed.
        let http = crate::http::client(
            SERVICE,
            settings.api_url.url(),
            headers,
            settings.connect_timeout,
        )?;
        let transport = Transport::new(http, settings);
        let credentials = Credentials::new(auth, &transport);
        Ok(Self {
            transport,
            credentials,
        })
    }

    /// Calls `f` before every wait (rate limit or retry back-off).
    pub fn on_wait(mut self, f: impl Fn(&WaitNotice) + Send + Sync + 'static) -> Self {
        self.transport.set_notify(Box::new(f));
        self
    }

    /// The API base URL.
    pub fn api_url(&self) -> &ApiUrl {
        &self.transport.settings.api_url
    }

    /// The authentication in use.
    pub fn auth(&self) -> &Auth {
        self.credentials.auth()
    }

    /// How many HTTP requests this client has sent (retries included).
    pub fn request_count(&self) -> usize {
        self.transport.request_count()
    }

    /// The transport, for endpoints that bring their own credential (the App proof).
    pub(crate) fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Sends a request about `repo` with the right credential and maps failures to errors.
    pub(crate) async fn repo_request(
        &self,
        method: Method,
        repo: &RepoRef,
        url: Url,
        body: Option<&serde_json::Value>,
    ) -> Result<Sent> {
        let token = self.credentials.token_for(&self.transport, repo).await?;
        let cred = match &token {
            Some(t) => Cred::Bearer(t),
            None => Cred::None,
        };
        self.transport.send(method, url, body, cred).await
    }

    /// Sends a request that is not about one repository (`/meta`), with the plain token if any.
    pub(crate) async fn plain_request(&self, method: Method, url: Url) -> Result<Sent> {
        self.transport
            .send(method, url, None, self.credentials.plain_cred())
            .await
    }

    /// GETs every page of a list, following `Link: <...>; rel="next"`. The whole listing is
    /// bounded, not only each answer: no URL is fetched twice (a `next` link back to an earlier
    /// page is a loop), at most [`MAX_LIST_PAGES`] pages, [`MAX_LIST_BYTES`] bytes and
    /// [`MAX_LIST_ITEMS`] items.
    pub(crate) async fn get_all_pages<T: serde::de::DeserializeOwned>(
        &self,
        repo: &RepoRef,
        first: Url,
        what: &str,
    ) -> Result<Vec<T>> {
        let mut items = Vec::new();
        let mut visited = std::collections::HashSet::new();
        let mut bytes = 0usize;
        let mut next = Some(first);
        let stop = |problem: String| {
            Err(Error::remote(
                SERVICE,
                format!("{what}: {problem}; stopped"),
                "the server (or a proxy on the way) is misbehaving; check the API URL and try again later",
            ))
        };
        while let Some(url) = next.take() {
            if !visited.insert(url.to_string()) {
                return stop(format!(
                    "page {} links back to a page already read ({}), so the listing would never end",
                    visited.len(),
                    host_of(&url)
                ));
            }
            if visited.len() > MAX_LIST_PAGES {
                return stop(format!("more than {MAX_LIST_PAGES} pages"));
            }
            let answer = expect_answer(self.repo_request(Method::GET, repo, url, None).await?)?;
            let answer = check(answer, what, Some(repo))?;
            bytes = bytes.saturating_add(answer.body.len());
            if bytes > MAX_LIST_BYTES {
                return stop(format!(
                    "the answers together are larger than {MAX_LIST_BYTES} bytes"
                ));
            }
            let page: Vec<T> = answer.json(what)?;
            if items.len() + page.len() > MAX_LIST_ITEMS {
                return stop(format!("more than {MAX_LIST_ITEMS} entries"));
            }
            items.extend(page);
            if let Some(link) = next_link(&answer.headers) {
                let url = Url::parse(&link).map_err(|e| {
                    Error::remote(
                        SERVICE,
                        format!("{what}: unreadable Link header ({e})"),
                        "report it",
                    )
                })?;
                if !self.api_url().owns(&url) {
                    return Err(Error::remote(
                        SERVICE,
                        message!(
                            "{}: the next page is at {}, outside {}",
                            what.to_string(),
                            host_of(&url),
                            Setting::ApiUrl
                        ),
                        message!(
                            "refusing to send the token there; check {}",
                            Setting::ApiUrl
                        ),
                    ));
                }
                next = Some(url);
            }
        }
        Ok(items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::GithubToken;

    #[test]
    fn debug_of_client_hides_the_token() {
        let canary = "ghp_CANARY0123456789canary";
        let client = GithubClient::new(
            ClientSettings::new(ApiUrl::github_com()),
            Auth::Token(GithubToken::new(canary.into())),
        )
        .unwrap();
        let shown = format!("{client:?}");
        assert!(!shown.contains(canary), "{shown}");
        assert!(shown.contains("GithubToken(<redacted>)"), "{shown}");
        let header = super::super::transport::bearer(&GithubToken::new(canary.into())).unwrap();
        assert!(!format!("{header:?}").contains(canary));
    }
}
