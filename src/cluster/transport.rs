//! Every request to the Kubernetes API server passes through here: answers capped in bytes (a
//! list page and a single object separately) and in time, 429/503/504 retried a bounded number
//! of times within a bounded total wait (each wait announced to whoever listens), list pages
//! bounded (a repeated continue token, too many pages, too long), and the kubeconfig's
//! credentials (and whatever `Authorization` kube's auth layer sends, exec-plugin tokens
//! included) remembered so that no server text shows them.

use crate::error::{Error, Result};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::{Body as HttpBody, Frame, SizeHint};
use kube::client::Body;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep};
use zeroize::Zeroizing;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The largest list page read (a request carrying `limit`), in bytes.
pub const MAX_LIST_PAGE_BYTES: usize = 16 << 20;
/// The largest single answer read (an object, a Status), in bytes.
pub const MAX_OBJECT_BYTES: usize = 4 << 20;
/// The longest one request may take, answer body included.
pub const ANSWER_TIME: Duration = Duration::from_secs(60);
/// How often one request is retried after 429, 503 or 504.
pub const MAX_RETRIES: u32 = 4;
/// The longest single wait before a retry (a longer `Retry-After` is cut to this).
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(5);
/// All retry waits of one client together.
pub const RETRY_BUDGET: Duration = Duration::from_secs(60);
/// The most pages one listing reads.
pub const MAX_PAGES: usize = 10_000;
/// The longest one listing (every page of one kind) may take.
pub const LISTING_TIME: Duration = Duration::from_secs(15 * 60);

/// A wait before a retry, told to the caller (the CLI shows it).
#[derive(Clone, Debug)]
pub struct WaitNotice {
    /// Why (`the API server answered 429 Too Many Requests`).
    pub reason: String,
    /// Which retry this wait precedes (1 for the first).
    pub retry: u32,
    /// How long the client sleeps.
    pub wait: Duration,
}

type Notify = Arc<dyn Fn(&WaitNotice) + Send + Sync>;

/// What all requests of one client share: who to tell about waits, and how long they took.
#[derive(Default)]
pub(crate) struct Shared {
    notify: Mutex<Option<Notify>>,
    waited: Mutex<Duration>,
}

impl Shared {
    pub(crate) fn set_notify(&self, f: Notify) {
        *self.notify.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
    }

    /// The wait before retry number `retry`, or `None` when the budget is spent.
    fn next_wait(&self, retry_after: Option<Duration>, retry: u32) -> Option<Duration> {
        let backoff = Duration::from_millis(500) * 2u32.pow(retry.saturating_sub(1).min(8));
        let wait = retry_after
            .unwrap_or(backoff)
            .max(backoff)
            .min(MAX_RETRY_WAIT);
        let mut waited = self.waited.lock().unwrap_or_else(|e| e.into_inner());
        if *waited + wait > RETRY_BUDGET {
            return None;
        }
        *waited += wait;
        Some(wait)
    }

    fn tell(&self, notice: &WaitNotice) {
        let notify = self
            .notify
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(f) = notify {
            f(notice);
        }
    }
}

/// Why an answer was cut short; found in a `kube::Error`'s sources by [`answer_cut`].
#[derive(Debug, thiserror::Error)]
pub enum AnswerCut {
    /// The body was (or announced itself) longer than the cap.
    #[error("answer larger than {0} bytes; stopped reading")]
    TooLarge(usize),
    /// The answer was not complete in time.
    #[error("no complete answer within {} s", .0.as_secs())]
    TooSlow(Duration),
}

/// The [`AnswerCut`] behind a client error, if any.
pub fn answer_cut(e: &kube::Error) -> Option<&AnswerCut> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(cut) = err.downcast_ref::<AnswerCut>() {
            return Some(cut);
        }
        cur = err.source();
    }
    None
}

/// `inner` (kube's own stack, without its retries) behind the caps, deadlines and bounded retries.
pub(crate) fn guarded(inner: kube::Client, shared: Arc<Shared>, namespace: String) -> kube::Client {
    let service = tower::service_fn(move |req: Request<Body>| {
        let (inner, shared) = (inner.clone(), shared.clone());
        send(inner, shared, req)
    });
    kube::Client::new(service, namespace)
}

fn is_list(req: &Request<Body>) -> bool {
    req.uri()
        .query()
        .is_some_and(|q| q.split('&').any(|p| p.starts_with("limit=")))
}

fn copy_of(req: &Request<Body>) -> Option<Request<Body>> {
    let mut copy = Request::new(req.body().try_clone()?);
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    *copy.extensions_mut() = req.extensions().clone();
    Some(copy)
}

fn retry_after(res: &Response<Body>) -> Option<Duration> {
    let value = res
        .headers()
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

async fn send(
    inner: kube::Client,
    shared: Arc<Shared>,
    req: Request<Body>,
) -> std::result::Result<Response<GuardedBody>, BoxError> {
    let cap = if is_list(&req) {
        MAX_LIST_PAGE_BYTES
    } else {
        MAX_OBJECT_BYTES
    };
    let mut next = Some(req);
    let mut retry = 0;
    while let Some(req) = next.take() {
        let spare = if retry < MAX_RETRIES {
            copy_of(&req)
        } else {
            None
        };
        let deadline = Instant::now() + ANSWER_TIME;
        let res = match tokio::time::timeout_at(deadline, inner.send(req)).await {
            Err(_) => return Err(Box::new(AnswerCut::TooSlow(ANSWER_TIME)) as BoxError),
            Ok(res) => res.map_err(|e| Box::new(e) as BoxError)?,
        };
        let status = res.status();
        if matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS
                | StatusCode::SERVICE_UNAVAILABLE
                | StatusCode::GATEWAY_TIMEOUT
        ) {
            if let Some(spare) = spare {
                if let Some(wait) = shared.next_wait(retry_after(&res), retry + 1) {
                    retry += 1;
                    shared.tell(&WaitNotice {
                        reason: format!(
                            "the API server answered {} {}",
                            status.as_u16(),
                            status.canonical_reason().unwrap_or_default()
                        ),
                        retry,
                        wait,
                    });
                    drop(res);
                    tokio::time::sleep(wait).await;
                    next = Some(spare);
                    continue;
                }
            }
        }
        let announced = res
            .headers()
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if announced.is_some_and(|n| n > cap as u64) {
            return Err(Box::new(AnswerCut::TooLarge(cap)) as BoxError);
        }
        return Ok(res.map(|body| GuardedBody {
            inner: body,
            read: 0,
            cap,
            deadline: Box::pin(tokio::time::sleep_until(deadline)),
        }));
    }
    unreachable!("the loop returns")
}

/// An answer body read under a byte cap and a deadline.
pub(crate) struct GuardedBody {
    inner: Body,
    read: usize,
    cap: usize,
    deadline: Pin<Box<Sleep>>,
}

impl HttpBody for GuardedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(AnswerCut::TooSlow(ANSWER_TIME)))));
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.read = this.read.saturating_add(data.len());
                    if this.read > this.cap {
                        return Poll::Ready(Some(Err(Box::new(AnswerCut::TooLarge(this.cap)))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// kube's client for `config`, with the `Authorization` each request carries remembered for
/// [`redact`]: the credential an exec plugin or token file yields exists only inside kube's
/// auth layer, so that layer is moved out of kube's stack and a recorder put under it. Only
/// done when the user authenticates by header; otherwise (client certificates, none) kube's
/// stack is used as it is.
pub(crate) fn kube_client(config: kube::Config) -> std::result::Result<kube::Client, kube::Error> {
    use kube::client::ConfigExt as _;
    remember_credentials(&config.auth_info);
    let namespace = config.default_namespace.clone();
    let Some(auth) = config.auth_layer()? else {
        return kube::Client::try_from(config);
    };
    // The same stack without the header credentials (client certificates stay): an auth layer
    // exists only when the user's credential is a header, which then takes precedence anyway.
    let mut base = config;
    let user = &mut base.auth_info;
    user.token = None;
    user.token_file = None;
    user.username = None;
    user.password = None;
    user.auth_provider = None;
    user.exec = None;
    let plain = kube::Client::try_from(base)?;
    let send = tower::service_fn(move |req: Request<Body>| {
        let plain = plain.clone();
        async move { plain.send(req).await.map_err(|e| Box::new(e) as BoxError) }
    });
    let service = tower::ServiceBuilder::new()
        .layer(auth)
        .map_request(remember_authorization)
        .service(send);
    Ok(kube::Client::new(service, namespace))
}

fn remember_authorization(req: Request<Body>) -> Request<Body> {
    use base64::Engine as _;
    let header = req.headers().get(http::header::AUTHORIZATION);
    if let Some(value) = header.and_then(|v| v.to_str().ok()) {
        let (scheme, credential) = value.split_once(' ').unwrap_or(("", value));
        let mut found = vec![Zeroizing::new(credential.trim().to_string())];
        if scheme.eq_ignore_ascii_case("basic") {
            let plain = base64::engine::general_purpose::STANDARD
                .decode(credential.trim())
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .map(Zeroizing::new);
            if let Some(plain) = plain {
                if let Some((_, password)) = plain.split_once(':') {
                    found.push(Zeroizing::new(password.to_string()));
                }
                found.push(plain);
            }
        }
        remember(found);
    }
    req
}

fn remember(found: Vec<Zeroizing<String>>) {
    let mut all = CREDENTIALS.lock().unwrap_or_else(|e| e.into_inner());
    for c in found {
        // Too short to be a credential worth redacting (and it would blank out ordinary words).
        if c.len() >= 6 && !all.iter().any(|k| **k == *c) {
            all.push(c);
        }
    }
}

/// The credentials of every kubeconfig user this process connected with (token, token file,
/// password, `user:password`, client key), removed from any server text shown.
static CREDENTIALS: Mutex<Vec<Zeroizing<String>>> = Mutex::new(Vec::new());

/// Remembers the credentials `auth` holds, for [`redact`].
pub(crate) fn remember_credentials(auth: &kube::config::AuthInfo) {
    use secrecy::ExposeSecret as _;
    let mut found: Vec<Zeroizing<String>> = Vec::new();
    let mut add = |s: &str| found.push(Zeroizing::new(s.trim().to_string()));
    if let Some(t) = &auth.token {
        add(t.expose_secret());
    }
    if let Some(path) = &auth.token_file {
        if let Ok(t) = std::fs::read_to_string(path) {
            add(&Zeroizing::new(t));
        }
    }
    if let Some(p) = &auth.password {
        add(p.expose_secret());
        if let Some(u) = &auth.username {
            add(&Zeroizing::new(format!("{u}:{}", p.expose_secret())));
        }
    }
    if let Some(k) = &auth.client_key_data {
        add(k.expose_secret());
    }
    if let Some(provider) = &auth.auth_provider {
        for key in ["access-token", "id-token", "refresh-token", "client-secret"] {
            if let Some(v) = provider.config.get(key) {
                add(v);
            }
        }
    }
    remember(found);
}

/// Server text (or a client error quoting it) made fit to show: [`crate::http::sanitize_server_text`]
/// with the kubeconfig's credentials added to what it redacts.
pub fn redact(text: &str) -> String {
    let all = CREDENTIALS.lock().unwrap_or_else(|e| e.into_inner());
    let secrets: Vec<&str> = all.iter().map(|s| s.as_str()).collect();
    crate::http::sanitize_server_text(text, &secrets)
}

/// The bounds of one paginated listing: every continue token used once, at most `MAX_PAGES`
/// pages, at most `LISTING_TIME`.
pub struct Pages {
    what: String,
    seen: HashSet<String>,
    count: usize,
    started: std::time::Instant,
    max_pages: usize,
    max_time: Duration,
}

impl Pages {
    /// Bounds for listing `what` (`pods in dev`), named in errors.
    pub fn new(what: impl Into<String>) -> Self {
        Self::bounded(what, MAX_PAGES, LISTING_TIME)
    }

    /// With other bounds (tests).
    pub fn bounded(what: impl Into<String>, max_pages: usize, max_time: Duration) -> Self {
        Self {
            what: what.into(),
            seen: HashSet::new(),
            count: 0,
            started: std::time::Instant::now(),
            max_pages,
            max_time,
        }
    }

    /// Takes the continue token of the page just read: `None` when the listing is complete,
    /// the token to ask for next, or an error when it was handed out before or a bound is hit.
    pub fn next(&mut self, token: Option<String>) -> Result<Option<String>> {
        self.count += 1;
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            return Ok(None);
        };
        let stop = |problem: String| {
            Err(Error::remote(
                "Kubernetes API",
                format!("listing {}: {problem}", self.what),
                "the API server (or a proxy on the way) is misbehaving; check it with kubectl get --chunk-size=500 -v=6",
            ))
        };
        if self.seen.contains(&token) {
            return stop(format!(
                "after page {} the server handed out a continue token it had given before, so the listing would never end; stopped",
                self.count
            ));
        }
        if self.count >= self.max_pages {
            return stop(format!("more than {} pages; stopped", self.max_pages));
        }
        if self.started.elapsed() > self.max_time {
            return stop(format!(
                "not finished after {} s ({} pages); stopped",
                self.max_time.as_secs(),
                self.count
            ));
        }
        self.seen.insert(token.clone());
        Ok(Some(token))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_stop_at_a_repeated_token_and_at_the_page_and_time_bounds() {
        let mut p = Pages::new("pods in dev");
        assert_eq!(p.next(Some("a".into())).unwrap().as_deref(), Some("a"));
        assert_eq!(p.next(Some("b".into())).unwrap().as_deref(), Some("b"));
        let e = p.next(Some("a".into())).unwrap_err().to_string();
        assert!(
            e.contains("pods in dev") && e.contains("given before"),
            "{e}"
        );
        assert_eq!(p.next(None).unwrap(), None);

        let mut p = Pages::bounded("pods", 3, LISTING_TIME);
        for t in ["1", "2"] {
            assert!(p.next(Some(t.into())).unwrap().is_some());
        }
        let e = p.next(Some("3".into())).unwrap_err().to_string();
        assert!(e.contains("more than 3 pages"), "{e}");

        let mut p = Pages::bounded("pods", 100, Duration::ZERO);
        std::thread::sleep(Duration::from_millis(5));
        let e = p.next(Some("x".into())).unwrap_err().to_string();
        assert!(e.contains("not finished after 0 s"), "{e}");
        // A last page ends the listing whatever the bounds.
        assert_eq!(p.next(Some(String::new())).unwrap(), None);
    }

    #[test]
    fn every_kubeconfig_credential_is_redacted_from_server_text() {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, "file-token-kept-in-a-file\n").unwrap();
        let kubeconfig = format!(
            "apiVersion: v1\nkind: Config\nusers:\n- name: a\n  user:\n    token: plain-kube-token-1234\n\
             - name: b\n  user:\n    tokenFile: {}\n\
             - name: c\n  user:\n    username: admin\n    password: hunter2-password\n\
             - name: d\n  user:\n    client-key-data: S0VZLURBVEEtY2FuYXJ5\n\
             - name: e\n  user:\n    auth-provider:\n      name: oidc\n      config:\n        id-token: oidc-id-token-canary\n",
            token_file.display()
        );
        let kc = kube::config::Kubeconfig::from_yaml(&kubeconfig).unwrap();
        for named in &kc.auth_infos {
            remember_credentials(named.auth_info.as_ref().unwrap());
        }
        let said = "rejected plain-kube-token-1234 and file-token-kept-in-a-file, \
                    admin:hunter2-password (YWRtaW46aHVudGVyMi1wYXNzd29yZA), S0VZLURBVEEtY2FuYXJ5, \
                    oidc-id-token-canary\u{1b}[2J";
        let shown = redact(said);
        for gone in [
            "plain-kube-token",
            "file-token-kept",
            "hunter2",
            "YWRtaW46aHVudGVyMi1wYXNzd29yZA",
            "S0VZLURBVEEt",
            "oidc-id-token",
            "\u{1b}",
        ] {
            assert!(!shown.contains(gone), "{gone} in {shown}");
        }
        assert!(
            shown.starts_with("rejected [redacted] and [redacted]"),
            "{shown}"
        );
    }

    #[test]
    fn retry_waits_grow_honour_retry_after_up_to_a_cap_and_stop_at_the_budget() {
        let s = Shared::default();
        assert_eq!(s.next_wait(None, 1), Some(Duration::from_millis(500)));
        assert_eq!(s.next_wait(None, 3), Some(Duration::from_secs(2)));
        assert_eq!(
            s.next_wait(Some(Duration::from_secs(3600)), 1),
            Some(MAX_RETRY_WAIT)
        );
        let mut total = Duration::from_millis(7500);
        while let Some(w) = s.next_wait(Some(Duration::from_secs(5)), 1) {
            total += w;
        }
        assert!(total <= RETRY_BUDGET, "{total:?}");
        assert!(total + MAX_RETRY_WAIT > RETRY_BUDGET, "{total:?}");
    }
}
