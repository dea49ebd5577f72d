//! A GitHub App as the git credential a consumer holds: the App's private key read from a file or
//! stdin and checked (RSA of at least 2048 bits, PKCS#1 or PKCS#8), its fingerprint as GitHub's
//! settings page shows it, and the proof that the App opens one repository before anything is
//! written: JWT -> `GET /app` -> the installation on the repository -> an installation token
//! narrowed to that repository with `contents: read` -> `GET /repos/{owner}/{repo}`. The token is
//! dropped (and wiped) at once; it is never shown or written.

use super::app::AppCredentials;
use super::transport::{expect_answer, Answer, Cred};
use super::{GithubClient, SERVICE};
use crate::error::{Error, Result, Setting};
use crate::message;
use crate::repo::RepoRef;
use crate::secret::GithubToken;
use reqwest::{Method, StatusCode};
use rsa::pkcs1::{DecodeRsaPrivateKey, EncodeRsaPrivateKey};
use rsa::pkcs8::{DecodePrivateKey, EncodePublicKey};
use rsa::traits::PublicKeyParts;
use sha2::Digest;
use std::sync::Arc;
use zeroize::{Zeroize, Zeroizing};

/// The smallest App key accepted, in bits (GitHub makes 2048-bit keys).
pub const MIN_APP_KEY_BITS: usize = 2048;

/// A GitHub App's private key, checked. No `Display`, `Clone` or `Serialize`; `Debug` shows the
/// fingerprint only.
pub struct AppKey {
    key: rsa::RsaPrivateKey,
    fingerprint: String,
}

impl std::fmt::Debug for AppKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppKey")
            .field("fingerprint", &self.fingerprint)
            .field("key", &"<redacted>")
            .finish()
    }
}

impl AppKey {
    /// Reads a PEM private key (PKCS#1 `RSA PRIVATE KEY` as GitHub hands it out, or PKCS#8
    /// `PRIVATE KEY`). `what` names the input in errors (the flag and the file, or stdin).
    pub fn from_pem(pem: &[u8], what: &str) -> Result<Self> {
        let text = std::str::from_utf8(pem).map_err(|_| {
            Error::input(
                what,
                "not a PEM file",
                "pass the App's .pem private key as downloaded from its settings page",
            )
        })?;
        let key = rsa::RsaPrivateKey::from_pkcs1_pem(text.trim())
            .or_else(|_| rsa::RsaPrivateKey::from_pkcs8_pem(text.trim()))
            .map_err(|_| {
                Error::input(
                    what,
                    "not an RSA private key in PEM form (PKCS#1 or PKCS#8)",
                    "pass the .pem file from the App's settings page (Private keys > Generate a private key)",
                )
            })?;
        let bits = key.size() * 8;
        if bits < MIN_APP_KEY_BITS {
            return Err(Error::input(
                what,
                format!("an RSA key of {bits} bits; at least {MIN_APP_KEY_BITS} are required"),
                "generate a new private key in the App's settings page (GitHub makes 2048-bit keys)",
            ));
        }
        let fingerprint = fingerprint_of(&key.to_public_key())?;
        Ok(Self { key, fingerprint })
    }

    /// `SHA256:` and the base64 SHA-256 of the DER public key: what GitHub's settings page shows
    /// under "Private keys" (`openssl rsa -pubout -outform DER | openssl sha256 -binary | base64`).
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The key's size in bits.
    pub fn bits(&self) -> usize {
        self.key.size() * 8
    }

    /// The key as PKCS#1 PEM (the `RSA PRIVATE KEY` armor), the form GitHub hands out and
    /// every consumer reads; in a buffer wiped on drop.
    pub fn expose_pkcs1_pem(&self) -> Result<Zeroizing<String>> {
        self.key
            .to_pkcs1_pem(rsa::pkcs1::LineEnding::LF)
            .map(|pem| Zeroizing::new(pem.to_string()))
            .map_err(|e| {
                Error::crypto(
                    "the App's private key",
                    format!("cannot encode it as PEM ({e})"),
                    "report it",
                )
            })
    }

    /// The App's JWT signer for this key.
    pub fn credentials(&self, app_id: &str, label: &std::path::Path) -> Result<AppCredentials> {
        AppCredentials::from_key(app_id, label, self.key.clone())
    }
}

fn fingerprint_of(public: &rsa::RsaPublicKey) -> Result<String> {
    let der = public.to_public_key_der().map_err(|e| {
        Error::crypto(
            "the App's public key",
            format!("cannot encode it ({e})"),
            "report it",
        )
    })?;
    let digest = sha2::Sha256::digest(der.as_bytes());
    use base64::Engine;
    Ok(format!(
        "SHA256:{}",
        base64::engine::general_purpose::STANDARD.encode(digest)
    ))
}

/// What the proof found: enough to write the consumer's configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppAccess {
    /// The App's numeric id (`GET /app`).
    pub app_id: u64,
    /// The App's slug, for messages and settings-page links.
    pub app_slug: String,
    /// The installation that covers the repository.
    pub installation_id: u64,
    /// Who the installation belongs to (the organisation or user).
    pub account: Option<String>,
    /// The App's settings page, where its private keys are made and deleted.
    pub settings_page: String,
}

/// Proves that `app` opens `repo`, through `client` (built with [`super::Auth::Anonymous`]:
/// the only credentials sent are the App's JWT and the installation token made here).
/// `installation` is used as given, else looked up from the repository. Every refusal is a
/// remote error (exit 3) naming what failed and what to do.
pub async fn prove_access(
    client: &GithubClient,
    app: &AppCredentials,
    repo: &RepoRef,
    installation: Option<u64>,
) -> Result<AppAccess> {
    let transport = client.transport();
    let jwt = Arc::new(app.jwt(jiff::Timestamp::now()));
    transport.remember(jwt.clone());
    let api = transport.settings.api_url.clone();

    // 1. The key signs for this App.
    let what = format!("checking GitHub App {} (GET /app)", app.app_id());
    let answer = expect_answer(
        transport
            .send(Method::GET, api.join("/app")?, None, Cred::Bearer(&jwt))
            .await?,
    )?;
    if answer.status == StatusCode::UNAUTHORIZED {
        return Err(Error::remote(
            SERVICE,
            format!("{what}: GitHub refused the App's JWT (401): the key is not a current private key of App {}", app.app_id()),
            message!(
                "check {} and that {} is a key listed in the App's settings page (compare the fingerprint printed above), and that this machine's clock is right",
                Setting::AppId,
                Setting::AppKey
            ),
        ));
    }
    #[derive(serde::Deserialize)]
    struct App {
        id: u64,
        #[serde(default)]
        slug: Option<String>,
        #[serde(default)]
        client_id: Option<String>,
        #[serde(default)]
        owner: Option<Owner>,
    }
    #[derive(serde::Deserialize)]
    struct Owner {
        login: String,
        #[serde(default, rename = "type")]
        kind: Option<String>,
    }
    let found: App = ok(answer, &what, None)?.json(&what)?;
    let matches = match app.app_id().parse::<u64>() {
        Ok(n) => n == found.id,
        Err(_) => found.client_id.as_deref() == Some(app.app_id()),
    };
    if !matches {
        return Err(Error::remote(
            SERVICE,
            message!(
                "{}: the key belongs to App {} ({}), not to {} {}",
                what.clone(),
                found.id.to_string(),
                found.slug.clone().unwrap_or_default(),
                Setting::AppId,
                app.app_id().to_string()
            ),
            message!(
                "pass the id of the App whose key this is ({} {}), or that App's key",
                Setting::AppId,
                found.id.to_string()
            ),
        ));
    }
    let slug = found.slug.clone().unwrap_or_else(|| found.id.to_string());
    let host = api.git_host();
    let settings_page = match &found.owner {
        Some(o) if o.kind.as_deref() == Some("Organization") => {
            format!(
                "https://{host}/organizations/{}/settings/apps/{slug}",
                o.login
            )
        }
        _ => format!("https://{host}/settings/apps/{slug}"),
    };

    // 2. The installation covers the repository (looked up unless given).
    let (installation_id, account) = match installation {
        Some(id) => (id, None),
        None => {
            let what = format!("finding the installation of App {slug} on {}", repo.slug());
            let url = api.join(&format!("/repos/{}/{}/installation", repo.owner, repo.name))?;
            let answer = expect_answer(
                transport
                    .send(Method::GET, url, None, Cred::Bearer(&jwt))
                    .await?,
            )?;
            if answer.status == StatusCode::NOT_FOUND {
                return Err(not_installed(&what, &slug, repo));
            }
            #[derive(serde::Deserialize)]
            struct Installation {
                id: u64,
                #[serde(default)]
                account: Option<Account>,
                #[serde(default)]
                permissions: serde_json::Map<String, serde_json::Value>,
            }
            #[derive(serde::Deserialize)]
            struct Account {
                login: String,
            }
            let inst: Installation = ok(answer, &what, Some(repo))?.json(&what)?;
            if !inst.permissions.is_empty() && !inst.permissions.contains_key("contents") {
                return Err(no_contents(&what, &slug, repo));
            }
            (inst.id, inst.account.map(|a| a.login))
        }
    };

    // 3. A token for that repository only, with contents: read (what a clone needs).
    let what = format!(
        "creating an installation token for {} (installation {installation_id}, contents: read)",
        repo.slug()
    );
    let url = api.join(&format!(
        "/app/installations/{installation_id}/access_tokens"
    ))?;
    let body = serde_json::json!({
        "repositories": [repo.name],
        "permissions": {"contents": "read"},
    });
    let answer = expect_answer(
        transport
            .send(Method::POST, url, Some(&body), Cred::Bearer(&jwt))
            .await?,
    )?;
    match answer.status.as_u16() {
        404 => {
            return Err(Error::remote(
                SERVICE,
                message!(
                    "{}: GitHub answered 404: App {} has no installation {}",
                    what.clone(),
                    slug.clone(),
                    installation_id.to_string()
                ),
                message!(
                    "leave out {} to look it up from the repository, or copy the number from the installation's URL (Settings > GitHub Apps > Configure)",
                    Setting::Installation
                ),
            ))
        }
        422 => {
            let said = answer.said.clone().unwrap_or_default().to_ascii_lowercase();
            return Err(if said.contains("permission") {
                no_contents(&what, &slug, repo)
            } else {
                not_installed(&what, &slug, repo)
            });
        }
        _ => {}
    }
    let mut answer = ok(answer, &what, Some(repo))?;
    let token = take_token(&answer.body);
    answer.body.zeroize();
    let token = Arc::new(token.ok_or_else(|| {
        Error::remote(
            SERVICE,
            format!("{what}: no token in GitHub's answer"),
            message!("check {} points at the GitHub REST API", Setting::ApiUrl),
        )
    })?);
    transport.remember(token.clone());

    // 4. The repository is reachable with that token.
    let what = format!("reading {} with the installation token", repo.slug());
    let url = api.join(&format!("/repos/{}/{}", repo.owner, repo.name))?;
    let answer = expect_answer(
        transport
            .send(Method::GET, url, None, Cred::Bearer(&token))
            .await?,
    )?;
    drop(token);
    if matches!(answer.status.as_u16(), 403 | 404) {
        return Err(not_installed(&what, &slug, repo));
    }
    ok(answer, &what, Some(repo))?;
    Ok(AppAccess {
        app_id: found.id,
        app_slug: slug,
        installation_id,
        account,
        settings_page,
    })
}

/// Whether GitHub still accepts `app`'s key: `GET /app` with its JWT answers 200 (still a key of
/// the App) or 401 (deleted in the settings page, or never the App's). The finishing step of a
/// key rotation: the old key must no longer authenticate.
pub async fn key_still_authenticates(client: &GithubClient, app: &AppCredentials) -> Result<bool> {
    let transport = client.transport();
    let jwt = Arc::new(app.jwt(jiff::Timestamp::now()));
    transport.remember(jwt.clone());
    let what = format!(
        "checking the old key of GitHub App {} (GET /app)",
        app.app_id()
    );
    let url = transport.settings.api_url.join("/app")?;
    let answer = expect_answer(
        transport
            .send(Method::GET, url, None, Cred::Bearer(&jwt))
            .await?,
    )?;
    if answer.status == StatusCode::UNAUTHORIZED {
        return Ok(false);
    }
    ok(answer, &what, None)?;
    Ok(true)
}

fn not_installed(what: &str, slug: &str, repo: &RepoRef) -> Error {
    Error::remote(
        SERVICE,
        format!(
            "{what}: App {slug} is not installed on {} (or its installation does not include the repository)",
            repo.slug()
        ),
        format!(
            "install the App on the repository: the owner's Settings > GitHub Apps > {slug} > Configure > Repository access, add {}",
            repo.name
        ),
    )
}

fn no_contents(what: &str, slug: &str, repo: &RepoRef) -> Error {
    Error::remote(
        SERVICE,
        format!(
            "{what}: App {slug} lacks the repository permission Contents on {}",
            repo.slug()
        ),
        format!("give App {slug} the repository permission \"Contents: read-only\" (App settings > Permissions & events), then accept the new permission in the installation"),
    )
}

/// Passes a 2xx answer; any other becomes the transport's error for it.
fn ok(answer: Answer, what: &str, repo: Option<&RepoRef>) -> Result<Answer> {
    super::transport::check(answer, what, repo)
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

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::EncodePrivateKey;

    fn key(bits: usize) -> rsa::RsaPrivateKey {
        rsa::RsaPrivateKey::new(&mut rand::thread_rng(), bits).unwrap()
    }

    #[test]
    fn pkcs1_and_pkcs8_read_to_the_same_key_and_fingerprint() {
        let k = key(2048);
        let p1 = k.to_pkcs1_pem(Default::default()).unwrap();
        let p8 = k.to_pkcs8_pem(Default::default()).unwrap();
        let a = AppKey::from_pem(p1.as_bytes(), "--app-key a.pem").unwrap();
        let b = AppKey::from_pem(p8.as_bytes(), "--app-key b.pem").unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());
        assert!(a.fingerprint().starts_with("SHA256:"));
        assert!(a.fingerprint().ends_with('='), "{}", a.fingerprint());
        assert_eq!(a.bits(), 2048);
        assert_eq!(
            a.expose_pkcs1_pem().unwrap().as_str(),
            p1.as_str(),
            "PKCS#1 in, the same PKCS#1 out"
        );
        // PKCS#8 in, PKCS#1 out: the rsa crate's PKCS#1 reader takes it.
        let out = b.expose_pkcs1_pem().unwrap();
        assert!(rsa::RsaPrivateKey::from_pkcs1_pem(out.as_str()).is_ok());
    }

    #[test]
    fn short_or_foreign_keys_are_input_errors_naming_the_input() {
        let small = key(1024).to_pkcs1_pem(Default::default()).unwrap();
        let err = AppKey::from_pem(small.as_bytes(), "--app-key small.pem").unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let shown = err.to_string();
        assert!(
            shown.contains("small.pem") && shown.contains("1024"),
            "{shown}"
        );
        // An ed25519 key made at test time: a private key, but not RSA.
        let ed25519 = crate::keygen::DeployKey::generate(crate::keygen::KeyType::Ed25519, "test")
            .unwrap()
            .private_pem()
            .unwrap();
        for bad in [
            &b"not a key"[..],
            b"\xff\xfe",
            ed25519.expose_secret().as_bytes(),
        ] {
            let err = AppKey::from_pem(bad, "stdin").unwrap_err();
            assert_eq!(err.exit_code(), 2, "{err}");
        }
    }

    #[test]
    fn debug_shows_the_fingerprint_never_the_key() {
        let k = key(2048);
        let pem = k.to_pkcs1_pem(Default::default()).unwrap();
        let app = AppKey::from_pem(pem.as_bytes(), "x").unwrap();
        let shown = format!("{app:?}");
        assert!(shown.contains(app.fingerprint()));
        let body_line = pem.lines().nth(1).unwrap();
        assert!(
            !shown.contains("BEGIN") && !shown.contains(body_line),
            "{shown}"
        );
    }
}
