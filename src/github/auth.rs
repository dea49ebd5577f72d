//! Which credential a request carries: a token, nothing (for `/meta`), or for a GitHub App an
//! installation token per repository, bought with the App's JWT (`app.rs`) and cached for the run.

use super::app::AppCredentials;
use super::transport::{check, expect_answer, Cred, Transport};
use super::SERVICE;
use crate::error::{Error, Result, Setting};
use crate::message;
use crate::repo::RepoRef;
use crate::secret::GithubToken;
use reqwest::Method;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use zeroize::Zeroize;

/// How sealkey proves who it is to GitHub.
#[derive(Debug)]
pub enum Auth {
    /// A personal (classic or fine-grained) token, or an installation token made elsewhere.
    Token(GithubToken),
    /// A GitHub App: a JWT signed with the App's key buys one installation token per repository.
    App(Box<AppCredentials>),
    /// No credentials (enough for `/meta`).
    Anonymous,
}

/// The run's credentials and the installation tokens bought so far.
pub(crate) struct Credentials {
    auth: Auth,
    /// The token of [`Auth::Token`], shared with the transport's redaction list.
    token: Option<Arc<GithubToken>>,
    /// GitHub App installation tokens by repository slug.
    app_tokens: Mutex<HashMap<String, Arc<GithubToken>>>,
}

impl Credentials {
    /// Takes `auth`; its token (if any) is remembered by `transport`, never to be shown.
    pub(crate) fn new(auth: Auth, transport: &Transport) -> Self {
        let (auth, token) = match auth {
            Auth::Token(t) => {
                let shared = Arc::new(GithubToken::new(t.expose_secret().to_string()));
                transport.remember(shared.clone());
                (Auth::Token(t), Some(shared))
            }
            other => (other, None),
        };
        Self {
            auth,
            token,
            app_tokens: Mutex::new(HashMap::new()),
        }
    }

    /// The authentication in use.
    pub(crate) fn auth(&self) -> &Auth {
        &self.auth
    }

    /// The credential for requests about `repo`: the token, or the App's installation token
    /// (bought on first use, then cached).
    pub(crate) async fn token_for(
        &self,
        transport: &Transport,
        repo: &RepoRef,
    ) -> Result<Option<Arc<GithubToken>>> {
        match &self.auth {
            Auth::Anonymous => Ok(None),
            Auth::Token(_) => Ok(self.token.clone()),
            Auth::App(app) => {
                if let Some(t) = self.app_tokens.lock().expect("lock").get(&repo.slug()) {
                    return Ok(Some(t.clone()));
                }
                let token = Arc::new(installation_token(app, transport, repo).await?);
                transport.remember(token.clone());
                self.app_tokens
                    .lock()
                    .expect("lock")
                    .insert(repo.slug(), token.clone());
                Ok(Some(token))
            }
        }
    }

    /// The credential for requests that are not about one repository (`/meta`).
    pub(crate) fn plain_cred(&self) -> Cred<'_> {
        match &self.token {
            Some(t) => Cred::Bearer(t),
            None => Cred::None,
        }
    }
}

/// Finds the App's installation on `repo` and creates an installation token limited to that
/// repository and to the Administration permission (what deploy keys need).
async fn installation_token(
    app: &AppCredentials,
    transport: &Transport,
    repo: &RepoRef,
) -> Result<GithubToken> {
    let jwt = app.jwt(jiff::Timestamp::now());
    let url = transport
        .settings
        .api_url
        .join(&format!("/repos/{}/{}/installation", repo.owner, repo.name))?;
    let what = format!("finding GitHub App {} on {}", app.app_id(), repo.slug());
    let answer = expect_answer(
        transport
            .send(Method::GET, url, None, Cred::Bearer(&jwt))
            .await?,
    )?;
    if answer.status == reqwest::StatusCode::NOT_FOUND {
        return Err(Error::remote(
            SERVICE,
            format!("{what}: the App is not installed on the repository (404)"),
            "install the App on it (organisation Settings > GitHub Apps > Configure) with the repository permission Administration: read and write",
        ));
    }
    if answer.status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(Error::remote(
            SERVICE,
            format!("{what}: GitHub refused the App's JWT (401)"),
            message!(
                "check {} and that {} is a current private key of that App, and that this machine's clock is right",
                Setting::AppId,
                Setting::AppKey
            ),
        ));
    }
    #[derive(serde::Deserialize)]
    struct Installation {
        id: u64,
    }
    let installation: Installation = check(answer, &what, Some(repo))?.json(&what)?;
    let url = transport.settings.api_url.join(&format!(
        "/app/installations/{}/access_tokens",
        installation.id
    ))?;
    let body = serde_json::json!({
        "repositories": [repo.name],
        "permissions": {"administration": "write"},
    });
    let what = format!(
        "creating an installation token for {} (installation {})",
        repo.slug(),
        installation.id
    );
    let answer = expect_answer(
        transport
            .send(Method::POST, url, Some(&body), Cred::Bearer(&jwt))
            .await?,
    )?;
    if answer.status == reqwest::StatusCode::UNPROCESSABLE_ENTITY {
        return Err(Error::remote(
            SERVICE,
            format!("{what}: GitHub refused (422): the installation does not grant Administration: write on the repository"),
            "give the App the repository permission Administration: read and write and accept it in the installation",
        ));
    }
    let mut answer = check(answer, &what, Some(repo))?;
    let token = take_token(&answer.body);
    answer.body.zeroize();
    token.ok_or_else(|| {
        Error::remote(
            SERVICE,
            format!("{what}: no token in GitHub's answer"),
            message!("check {} points at the GitHub REST API", Setting::ApiUrl),
        )
    })
}

/// Pulls `token` out of an access-token answer without leaving copies behind.
fn take_token(body: &[u8]) -> Option<GithubToken> {
    #[derive(serde::Deserialize)]
    struct AccessToken {
        token: String,
    }
    let parsed: AccessToken = serde_json::from_slice(body).ok()?;
    Some(GithubToken::new(parsed.token))
}
