//! Sending requests to GitHub: timeouts, the run's deadline, rate-limit waits, safe retries,
//! answers read under a size cap and cleaned for showing, and the error for each status.
//!
//! Retry rules: a request GitHub rejected for a rate limit was not carried out, so any method is
//! sent again once the wait (bounded by `max_wait`) is over. A 5xx answer or a broken connection
//! may have happened after the server acted, so only GET and DELETE are repeated blindly; a POST
//! is followed by a listing first (see `keys.rs`).
//!
//! Bounds against a hostile server or proxy: redirects are reported, never followed; every URL is
//! checked (https, or http to loopback, under `--api-url`); a body longer than
//! [`MAX_ANSWER_BYTES`] is refused; all requests of one run share a total time budget,
//! `--deadline` (rate-limit waits are bounded by `--max-wait` instead); and GitHub's text is
//! stripped of terminal controls and credentials before it goes into an error.
//!
//! This module knows a credential only as the header value of one request; which credential a
//! request carries is `auth.rs`'s business.

use super::api_url::ApiUrl;
use super::SERVICE;
use crate::error::{Error, Result, Setting};
use crate::message;
use crate::repo::RepoRef;
use crate::secret::GithubToken;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION};
use reqwest::{Method, StatusCode, Url};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Tunables; the defaults suit the command line.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    /// Where the API lives.
    pub api_url: ApiUrl,
    /// The most time spent waiting for rate limits over the client's whole life (`--max-wait`).
    pub max_wait: Duration,
    /// Time limit for one request, from connect to the last byte.
    pub timeout: Duration,
    /// Time limit for all requests of the client's life together (pages, retries and their
    /// back-offs; not rate-limit waits, which `max_wait` bounds) (`--deadline`).
    pub deadline: Duration,
    /// Time limit for the TCP + TLS connection.
    pub connect_timeout: Duration,
    /// Extra attempts for GET and DELETE after a 5xx or a connection error.
    pub retries: u32,
    /// First back-off before such a retry; doubles each time, with jitter.
    pub retry_base: Duration,
    /// First back-off for a secondary rate limit that names no `retry-after`; doubles each time.
    pub secondary_backoff: Duration,
}

impl ClientSettings {
    /// Defaults: 10 min total rate-limit wait, 30 s per request, 5 min for all requests, 3
    /// retries from 500 ms.
    pub fn new(api_url: ApiUrl) -> Self {
        Self {
            api_url,
            max_wait: Duration::from_secs(600),
            timeout: Duration::from_secs(30),
            deadline: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
            retries: 3,
            retry_base: Duration::from_millis(500),
            secondary_backoff: Duration::from_secs(60),
        }
    }
}

/// The longest body accepted from GitHub: a page of 100 deploy keys is ~100 KiB, github.com's
/// `/meta` a few hundred KiB.
pub const MAX_ANSWER_BYTES: usize = 4 << 20;

/// Told to the caller before the client sleeps, so the CLI can say why it is waiting.
#[derive(Clone, Debug)]
pub struct WaitNotice {
    /// Why: `primary rate limit exhausted`, `secondary rate limit`, `GitHub answered 502`.
    pub reason: String,
    /// How long the client will sleep.
    pub wait: Duration,
}

type Notify = Box<dyn Fn(&WaitNotice) + Send + Sync>;

/// Sends requests for one run: the HTTP client, the run's time budget and rate-limit waits so far.
pub(crate) struct Transport {
    http: reqwest::Client,
    pub(crate) settings: ClientSettings,
    /// Every credential this run holds, so none is ever shown from an answer.
    secrets: Mutex<Vec<Arc<GithubToken>>>,
    waited: Mutex<Duration>,
    /// Time spent on requests so far, counted against `settings.deadline`.
    spent: Mutex<Duration>,
    requests: std::sync::atomic::AtomicUsize,
    notify: Option<Notify>,
}

/// An answer with its body read, and the parts of it fit to show. The body can hold an App
/// installation token, so `Debug` shows its length only.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// GitHub's `message`, cleaned (controls and credentials removed, cut short).
    pub said: Option<String>,
    /// Each `errors[].message` (or code) of a 422, cleaned the same way.
    pub said_errors: Vec<String>,
    /// `host[:port]` a 3xx answer points at.
    pub redirect: Option<String>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("status", &self.status)
            .field("body", &format_args!("<{} bytes>", self.body.len()))
            .field("said", &self.said)
            .field("said_errors", &self.said_errors)
            .field("redirect", &self.redirect)
            .finish_non_exhaustive()
    }
}

impl Answer {
    /// Reads what may be shown of the body, with `secrets` (the credentials the client holds)
    /// redacted wherever GitHub reflects them. `url` is where the request went.
    pub fn new(
        status: StatusCode,
        headers: HeaderMap,
        body: Vec<u8>,
        url: &Url,
        secrets: &[&str],
    ) -> Self {
        // Only a refusal's text is ever shown; a page of keys is not parsed twice.
        let parsed = (!status.is_success())
            .then(|| serde_json::from_slice::<serde_json::Value>(&body).ok())
            .flatten();
        let clean = |t: &str| crate::http::sanitize_server_text(t, secrets);
        let said = parsed
            .as_ref()
            .and_then(|v| v.get("message")?.as_str().map(clean));
        let said_errors = parsed
            .as_ref()
            .and_then(|v| v.get("errors")?.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter_map(|e| match e {
                serde_json::Value::String(s) => Some(clean(s)),
                e => e
                    .get("message")
                    .or_else(|| e.get("code"))
                    .and_then(|m| m.as_str())
                    .map(clean),
            })
            .collect();
        let redirect = status
            .is_redirection()
            .then(|| crate::http::redirect_target(url, &headers));
        Self {
            status,
            headers,
            body,
            said,
            said_errors,
            redirect,
        }
    }

    /// The body as JSON.
    pub fn json<T: serde::de::DeserializeOwned>(&self, what: &str) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| {
            // serde's own message would quote the answer (`invalid type: string "..."`).
            Error::remote(
                SERVICE,
                format!(
                    "unexpected answer to {what} ({:?} error at line {} column {})",
                    e.classify(),
                    e.line(),
                    e.column()
                ),
                message!(
                    "check {} points at a GitHub REST API (https://HOST/api/v3 for GitHub Enterprise Server)",
                    Setting::ApiUrl
                ),
            )
        })
    }

    /// GitHub's `message` field as sent (for matching, never for showing: see `said`).
    fn raw_message(&self) -> Option<String> {
        serde_json::from_slice::<serde_json::Value>(&self.body)
            .ok()?
            .get("message")?
            .as_str()
            .map(|s| s.chars().take(300).collect())
    }
}

/// The outcome of sending one request (after rate-limit waits and safe retries).
pub(crate) enum Sent {
    /// GitHub answered (any status).
    Answer(Answer),
    /// No answer: connection refused, reset or timed out. The error says which.
    Unreachable(Error),
}

/// Why an attempt got no answer.
enum Failure {
    /// Connection refused, reset, or a broken body.
    Transport(reqwest::Error),
    /// No complete answer within `settings.timeout`.
    TimedOut,
    /// The body was longer than [`MAX_ANSWER_BYTES`].
    TooLarge,
}

/// Which credential a request carries.
#[derive(Clone, Copy)]
pub(crate) enum Cred<'a> {
    None,
    Bearer(&'a GithubToken),
}

impl Transport {
    /// A transport over `http` (built by the client: headers, no redirects, proxies).
    pub(crate) fn new(http: reqwest::Client, settings: ClientSettings) -> Self {
        Self {
            http,
            settings,
            secrets: Mutex::new(Vec::new()),
            waited: Mutex::new(Duration::ZERO),
            spent: Mutex::new(Duration::ZERO),
            requests: Default::default(),
            notify: None,
        }
    }

    /// Calls `f` before every wait (rate limit or retry back-off).
    pub(crate) fn set_notify(&mut self, f: Notify) {
        self.notify = Some(f);
    }

    /// Remembers a credential of this run, to redact it from every answer.
    pub(crate) fn remember(&self, token: Arc<GithubToken>) {
        crate::sent::register(token.expose_secret().as_bytes());
        self.secrets.lock().expect("lock").push(token);
    }

    /// How many HTTP requests were sent (retries included).
    pub(crate) fn request_count(&self) -> usize {
        self.requests.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Sends one request, waiting out rate limits and retrying GET/DELETE on 5xx and connection
    /// errors. Returns whatever GitHub finally answered.
    pub(crate) async fn send(
        &self,
        method: Method,
        url: Url,
        body: Option<&serde_json::Value>,
        cred: Cred<'_>,
    ) -> Result<Sent> {
        if !crate::http::may_send_to(&url) || !self.settings.api_url.owns(&url) {
            return Err(Error::remote(
                SERVICE,
                message!(
                    "refusing to send a request to {}: not https, or outside {}",
                    host_of(&url),
                    Setting::ApiUrl
                ),
                message!(
                    "check {} (https://, or http:// to 127.0.0.1, ::1 or localhost only)",
                    Setting::ApiUrl
                ),
            ));
        }
        let authorization = match cred {
            Cred::Bearer(token) => Some(bearer(token)?),
            Cred::None => None,
        };
        let repeatable = method == Method::GET || method == Method::DELETE;
        let mut retries = 0u32;
        let mut secondary_hits = 0u32;
        loop {
            let remaining = self.remaining();
            if remaining.is_zero() {
                return Err(self.deadline_error(&url));
            }
            let limit = remaining.min(self.settings.timeout);
            let started = Instant::now();
            let attempt = tokio::time::timeout(
                limit,
                self.attempt(&method, &url, body, authorization.as_ref()),
            )
            .await;
            self.spend(started.elapsed());
            let answer = match attempt {
                Ok(Ok((status, headers, body))) => {
                    Ok(self.answer(status, headers, body, &url, cred))
                }
                Ok(Err(Failure::TooLarge)) => {
                    return Err(crate::http::BodyError::too_large(
                        SERVICE,
                        &url,
                        MAX_ANSWER_BYTES,
                    ))
                }
                Ok(Err(failure)) => Err(failure),
                Err(_) if limit == remaining => return Err(self.deadline_error(&url)),
                Err(_) => Err(Failure::TimedOut),
            };
            match answer {
                Err(failure) => {
                    if repeatable && retries < self.settings.retries {
                        retries += 1;
                        let wait = self.backoff(retries);
                        self.tell(
                            format!("no answer from {} ({})", host_of(&url), short(&failure)),
                            wait,
                        );
                        self.pause(wait).await;
                        continue;
                    }
                    return Ok(Sent::Unreachable(unreachable(&url, failure)));
                }
                Ok(answer) => {
                    if let Some((reason, wait)) = self.rate_limit_wait(&answer, secondary_hits) {
                        if !reason.starts_with("primary") {
                            secondary_hits += 1;
                        }
                        self.wait_for_limit(&reason, wait).await?;
                        continue;
                    }
                    if answer.status.is_server_error()
                        && repeatable
                        && retries < self.settings.retries
                    {
                        retries += 1;
                        let wait = self.backoff(retries);
                        self.tell(format!("GitHub answered {}", answer.status), wait);
                        self.pause(wait).await;
                        continue;
                    }
                    return Ok(Sent::Answer(answer));
                }
            }
        }
    }

    /// One request and its body, read under the size cap.
    async fn attempt(
        &self,
        method: &Method,
        url: &Url,
        body: Option<&serde_json::Value>,
        authorization: Option<&HeaderValue>,
    ) -> std::result::Result<(StatusCode, HeaderMap, Vec<u8>), Failure> {
        let mut req = self.http.request(method.clone(), url.clone());
        if let Some(value) = authorization {
            req = req.header(AUTHORIZATION, value.clone());
        }
        if let Some(body) = body {
            req = req.json(body);
        }
        self.requests
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut resp = req.send().await.map_err(Failure::Transport)?;
        let status = resp.status();
        let headers = resp.headers().clone();
        match crate::http::read_capped(&mut resp, MAX_ANSWER_BYTES).await {
            Ok(body) => Ok((status, headers, body)),
            Err(crate::http::BodyError::TooLarge(_)) => Err(Failure::TooLarge),
            Err(crate::http::BodyError::Transport(e)) => Err(Failure::Transport(e)),
        }
    }

    /// Builds the answer, redacting every credential this run holds from what may be shown.
    fn answer(
        &self,
        status: StatusCode,
        headers: HeaderMap,
        body: Vec<u8>,
        url: &Url,
        cred: Cred<'_>,
    ) -> Answer {
        let held = self.secrets.lock().expect("lock").clone();
        let mut secrets: Vec<&str> = held.iter().map(|t| t.expose_secret()).collect();
        if let Cred::Bearer(token) = cred {
            secrets.push(token.expose_secret());
        }
        Answer::new(status, headers, body, url, &secrets)
    }

    /// What is left of `settings.deadline`.
    fn remaining(&self) -> Duration {
        self.settings
            .deadline
            .saturating_sub(*self.spent.lock().expect("lock"))
    }

    fn spend(&self, time: Duration) {
        *self.spent.lock().expect("lock") += time;
    }

    /// A retry back-off, counted against the deadline (and cut short by it).
    async fn pause(&self, wait: Duration) {
        let wait = wait.min(self.remaining());
        tokio::time::sleep(wait).await;
        self.spend(wait);
    }

    fn deadline_error(&self, url: &Url) -> Error {
        Error::remote(
            SERVICE,
            message!(
                "stopped after {} waiting for answers from {}: that is the {} for all requests of this run ({} sent)",
                seconds(self.settings.deadline),
                host_of(url),
                Setting::Deadline,
                self.request_count().to_string()
            ),
            message!(
                "the server or a proxy on the way is answering very slowly; try again later, or raise {} (e.g. {} 10m, or SEALKEY_DEADLINE=10m)",
                Setting::Deadline,
                Setting::Deadline
            ),
        )
    }

    /// Jittered exponential back-off: base * 2^(n-1), scaled by a random factor in [0.5, 1).
    fn backoff(&self, n: u32) -> Duration {
        let full = self.settings.retry_base * 2u32.saturating_pow(n.saturating_sub(1));
        let factor = 0.5 + rand::random::<f64>() / 2.0;
        full.mul_f64(factor)
    }

    fn tell(&self, reason: String, wait: Duration) {
        if let Some(f) = &self.notify {
            f(&WaitNotice { reason, wait });
        }
    }

    /// Whether an answer is a rate limit, and how long to wait for it.
    fn rate_limit_wait(&self, answer: &Answer, secondary_hits: u32) -> Option<(String, Duration)> {
        if answer.status != StatusCode::FORBIDDEN && answer.status != StatusCode::TOO_MANY_REQUESTS
        {
            return None;
        }
        let header = |name: &str| {
            answer
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        if header("x-ratelimit-remaining") == Some("0") {
            if let Some(reset) = header("x-ratelimit-reset").and_then(|v| v.parse::<i64>().ok()) {
                let now = jiff::Timestamp::now().as_second();
                // One second of slack: GitHub's reset second is inclusive.
                let secs = (reset - now).max(0) as u64 + 1;
                let at = jiff::Timestamp::from_second(reset)
                    .map(|t| t.strftime("%H:%M:%S UTC").to_string())
                    .unwrap_or_default();
                return Some((
                    format!("primary rate limit exhausted (resets at {at})"),
                    Duration::from_secs(secs),
                ));
            }
        }
        if let Some(secs) = header("retry-after").and_then(|v| v.parse::<u64>().ok()) {
            // At least a second, so a `retry-after: 0` loop still uses up --max-wait.
            return Some((
                "secondary rate limit (retry-after)".into(),
                Duration::from_secs(secs.max(1)),
            ));
        }
        let message = answer
            .raw_message()
            .unwrap_or_default()
            .to_ascii_lowercase();
        if answer.status == StatusCode::TOO_MANY_REQUESTS
            || message.contains("secondary rate limit")
            || message.contains("abuse")
        {
            let wait = self.settings.secondary_backoff * 2u32.saturating_pow(secondary_hits.min(6));
            return Some(("secondary rate limit".into(), wait));
        }
        None
    }

    async fn wait_for_limit(&self, reason: &str, wait: Duration) -> Result<()> {
        let total = {
            let mut waited = self.waited.lock().expect("lock");
            let total = *waited + wait;
            if total > self.settings.max_wait {
                return Err(Error::remote(
                    SERVICE,
                    message!(
                        "{}: GitHub asks to wait {} s, beyond {} {} s ({} s already waited)",
                        reason.to_string(),
                        wait.as_secs().to_string(),
                        Setting::MaxWait,
                        self.settings.max_wait.as_secs().to_string(),
                        waited.as_secs().to_string()
                    ),
                    message!(
                        "try again later, or raise {} (e.g. {} 1h); an App installation token has a higher limit",
                        Setting::MaxWait,
                        Setting::MaxWait
                    ),
                ));
            }
            *waited = total;
            total
        };
        let _ = total;
        self.tell(reason.to_string(), wait);
        tokio::time::sleep(wait).await;
        Ok(())
    }
}

pub(crate) fn bearer(token: &GithubToken) -> Result<HeaderValue> {
    let text = Zeroizing::new(format!("Bearer {}", token.expose_secret()));
    let mut value = HeaderValue::from_str(&text).map_err(|_| {
        Error::input(
            "GitHub token",
            "contains characters that cannot go into an HTTP header",
            "check the token was copied whole (no quotes or line breaks inside)",
        )
    })?;
    value.set_sensitive(true);
    Ok(value)
}

pub(crate) fn host_of(url: &Url) -> String {
    crate::http::host_port(url)
}

/// `3 s`, `2.5 s`.
fn seconds(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

fn short(failure: &Failure) -> &'static str {
    match failure {
        Failure::TimedOut => "timed out",
        Failure::TooLarge => "answer too large",
        Failure::Transport(e) if e.is_timeout() => "timed out",
        Failure::Transport(e) if e.is_connect() => "connection failed",
        Failure::Transport(_) => "connection broken",
    }
}

fn unreachable(url: &Url, failure: Failure) -> Error {
    let mut detail = String::new();
    if let Failure::Transport(e) = &failure {
        let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
        while let Some(s) = source {
            detail = s.to_string();
            source = s.source();
        }
    }
    // The innermost cause comes from our own stack, but may quote the peer: shown cleaned.
    let detail = crate::http::sanitize_server_text(&detail, &[]);
    let message = if detail.is_empty() {
        format!("no answer from {} ({})", host_of(url), short(&failure))
    } else {
        format!(
            "no answer from {} ({}: {detail})",
            host_of(url),
            short(&failure)
        )
    };
    let hint = "check the network and the API URL (GitHub Enterprise Server: https://HOST/api/v3)";
    match failure {
        Failure::Transport(e) => Error::Http {
            service: SERVICE.into(),
            message,
            hint: hint.into(),
            source: Box::new(e),
        },
        _ => Error::remote(SERVICE, message, hint),
    }
}

/// Turns an unreachable outcome into its error.
pub(crate) fn expect_answer(sent: Sent) -> Result<Answer> {
    match sent {
        Sent::Answer(a) => Ok(a),
        Sent::Unreachable(e) => Err(e),
    }
}

/// Passes 2xx answers; maps the rest to an error saying what to do.
pub(crate) fn check(answer: Answer, what: &str, repo: Option<&RepoRef>) -> Result<Answer> {
    if answer.status.is_success() {
        return Ok(answer);
    }
    Err(status_error(&answer, what, repo))
}

/// The error for a non-2xx answer.
pub(crate) fn status_error(answer: &Answer, what: &str, repo: Option<&RepoRef>) -> Error {
    let on = repo
        .map(|r| format!(" for {}", r.slug()))
        .unwrap_or_default();
    let said = answer
        .said
        .as_ref()
        .map(|m| format!(" ({m})"))
        .unwrap_or_default();
    let status = answer.status;
    let (message, hint) = match status.as_u16() {
        401 => (
            format!("{what}: GitHub answered 401 Unauthorized{said}: the token is invalid, expired or revoked"),
            message!("create a new token (fine-grained, Administration: read and write on the repository) and pass it via GITHUB_TOKEN or {}", Setting::TokenStdin),
        ),
        403 => (
            format!("{what}: GitHub answered 403 Forbidden{on}{said}: the token lacks admin rights on the repository"),
            "deploy keys need the fine-grained permission \"Administration: read and write\" on the repository (classic tokens: the repo scope and admin role; GitHub Apps: Administration write)".into(),
        ),
        // A 404 with no repository involved (`/meta`) is a wrong API URL, not a repository.
        404 if repo.is_none() => (
            format!("{what}: GitHub answered 404 Not Found{said}: this API URL serves no such endpoint"),
            message!("check {}: https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise Server", Setting::ApiUrl),
        ),
        404 => (
            format!("{what}: GitHub answered 404 Not Found{on}{said}: no such repository, or the token cannot see it"),
            "check OWNER/REPO; a fine-grained token must list the repository under \"Repository access\" with Administration: read and write".into(),
        ),
        s if (300..400).contains(&s) => (
            format!(
                "{what}: GitHub answered {status}{on}, a redirect to {} (not followed)",
                answer.redirect.as_deref().unwrap_or("an unnamed Location")
            ),
            message!("sealkey never follows redirects (they could carry the token elsewhere); check {} (GitHub Enterprise Server: https://HOST/api/v3) or whether the repository was renamed", Setting::ApiUrl),
        ),
        s if s >= 500 => (
            format!("{what}: GitHub answered {status}{on}{said}"),
            "GitHub is having trouble; try again in a few minutes".into(),
        ),
        _ => (
            format!("{what}: GitHub answered {status}{on}{said}"),
            "see the message above; GitHub's REST docs for deploy keys list the causes".into(),
        ),
    };
    Error::remote(SERVICE, message, hint)
}

/// The `rel="next"` URL of a `Link` header.
pub(crate) fn next_link(headers: &HeaderMap) -> Option<String> {
    let link = headers.get(reqwest::header::LINK)?.to_str().ok()?;
    link.split(',').find_map(|part| {
        let mut pieces = part.split(';');
        let url = pieces.next()?.trim();
        let is_next = pieces.any(|p| {
            let p = p.trim();
            p == "rel=\"next\"" || p == "rel=next"
        });
        (is_next && url.starts_with('<') && url.ends_with('>'))
            .then(|| url[1..url.len() - 1].to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_link_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            reqwest::header::LINK,
            HeaderValue::from_static(
                "<https://api.github.com/x?page=1>; rel=\"prev\", <https://api.github.com/x?page=3>; rel=\"next\", <https://api.github.com/x?page=9>; rel=\"last\"",
            ),
        );
        assert_eq!(
            next_link(&h).as_deref(),
            Some("https://api.github.com/x?page=3")
        );
        h.insert(
            reqwest::header::LINK,
            HeaderValue::from_static("<https://api.github.com/x?page=1>; rel=\"first\""),
        );
        assert_eq!(next_link(&h), None);
    }

    #[test]
    fn debug_of_an_answer_shows_no_body() {
        // An installation-token answer: `{:?}` (logs, panics) must not carry the token.
        let a = Answer::new(
            StatusCode::CREATED,
            HeaderMap::new(),
            br#"{"token":"ghs_CANARYcanary0123456789abcdefABCDEF"}"#.to_vec(),
            &Url::parse("https://api.github.com/app/installations/1/access_tokens").unwrap(),
            &[],
        );
        let dbg = format!("{a:?}");
        // Neither as text nor as the derived byte list ("CAN" = 67, 65, 78).
        assert!(
            !dbg.contains("CANARY") && !dbg.contains("67, 65, 78"),
            "{dbg}"
        );
        assert!(dbg.contains("bytes"), "{dbg}");
    }

    #[test]
    fn status_errors_say_what_to_do() {
        let repo = RepoRef::parse("acme/dags").unwrap();
        let answer = |code: u16| {
            Answer::new(
                StatusCode::from_u16(code).unwrap(),
                HeaderMap::new(),
                br#"{"message":"Bad credentials"}"#.to_vec(),
                &Url::parse("https://api.github.com/repos/acme/dags/keys").unwrap(),
                &[],
            )
        };
        let e = status_error(&answer(401), "listing deploy keys", Some(&repo)).to_string();
        assert!(
            e.contains("401") && e.contains("invalid, expired or revoked"),
            "{e}"
        );
        let e = status_error(&answer(403), "listing deploy keys", Some(&repo)).to_string();
        assert!(
            e.contains("Administration: read and write") && e.contains("acme/dags"),
            "{e}"
        );
        let e = status_error(&answer(404), "listing deploy keys", Some(&repo));
        assert!(e.to_string().contains("no such repository"), "{e}");
        // /meta involves no repository: a 404 there is the API URL.
        let e = status_error(&answer(404), "reading host keys from /meta", None);
        assert!(
            !e.to_string().contains("repository") && e.names(Setting::ApiUrl),
            "{e}"
        );
        assert_eq!(e.exit_code(), 3);
    }

    #[test]
    fn unexpected_json_errors_do_not_quote_the_answer() {
        let answer = Answer::new(
            StatusCode::OK,
            HeaderMap::new(),
            br#"{"id":"\u001b[2J ghp_QUOTEDquotedQUOTEDquoted0123456789"}"#.to_vec(),
            &Url::parse("https://api.github.com/meta").unwrap(),
            &[],
        );
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Id {
            id: u64,
        }
        let e = answer.json::<Id>("reading a key").unwrap_err().to_string();
        assert!(
            e.contains("unexpected answer to reading a key (Data error"),
            "{e}"
        );
        assert!(!e.contains("QUOTED") && !e.contains('\u{1b}'), "{e}");
    }
}
