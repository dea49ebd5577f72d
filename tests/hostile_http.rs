//! sealkey's HTTP clients (GitHub API, `--cert URL`) against hostile servers and proxies, all on
//! 127.0.0.x: redirects are reported and never followed, proxies never see loopback traffic or the
//! token, answers are capped in size and in total time, and server text shown to people is
//! stripped of terminal controls and of anything shaped like a credential.

mod support;

use base64::Engine as _;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::fake_github::{FakeGithub, TOKEN};
use support::watchdog::run_watched;
use support::{sealkey, text};

// ---------------------------------------------------------------------------------------------
// Servers: each connection is handled on its own thread, reads one request head and ends by
// itself (client gone, or a time or size bound).

/// Reads a request head (up to the blank line); `None` if the peer goes away first.
fn read_head(stream: &mut TcpStream) -> Option<String> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).ok()? == 0 {
            return None;
        }
        head.push_str(&line);
        if line == "\r\n" || line == "\n" || head.len() > 64 * 1024 {
            return Some(head);
        }
    }
}

/// A listener on `ip` that hands each connection's head to `handler`; records every head.
struct Server {
    port: u16,
    heads: Arc<Mutex<Vec<String>>>,
}

impl Server {
    fn start(
        ip: &str,
        handler: impl Fn(&mut TcpStream, &str, u16) + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (h, handler) = (heads.clone(), Arc::new(handler));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (h, handler) = (h.clone(), handler.clone());
                std::thread::spawn(move || {
                    if let Some(head) = read_head(&mut stream) {
                        h.lock().unwrap().push(head.clone());
                        handler(&mut stream, &head, port);
                    }
                });
            }
        });
        Self { port, heads }
    }

    /// Answers every request with `status`, `headers` and `body`.
    fn canned(status: &str, headers: &[(&str, String)], body: Vec<u8>) -> Self {
        let mut head = format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n",
            body.len()
        );
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str("\r\n");
        Self::start("127.0.0.1", move |s, _, _| {
            let _ = s.write_all(head.as_bytes());
            let _ = s.write_all(&body);
        })
    }

    /// A proxy that records what reaches it and answers 502.
    fn proxy_on(ip: &str) -> Self {
        Self::start(ip, |s, _, _| {
            let _ = s.write_all(
                b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            );
        })
    }

    fn heads(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

/// Writes zeros after `head` until the client hangs up (or 30 s / 16 GiB pass: the bound).
fn pour_zeros(s: &mut TcpStream, head: &str, chunked: bool) {
    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
    if s.write_all(head.as_bytes()).is_err() {
        return;
    }
    let zeros = vec![b'0'; 64 * 1024];
    let chunk_head = format!("{:x}\r\n", zeros.len());
    let start = Instant::now();
    let mut sent = 0u64;
    while start.elapsed() < Duration::from_secs(30) && sent < 16 << 30 {
        let ok = if chunked {
            s.write_all(chunk_head.as_bytes()).is_ok()
                && s.write_all(&zeros).is_ok()
                && s.write_all(b"\r\n").is_ok()
        } else {
            s.write_all(&zeros).is_ok()
        };
        if !ok {
            return;
        }
        sent += zeros.len() as u64;
    }
}

fn keys_list(api_url: &str, token: &str) -> Command {
    let mut c = sealkey();
    c.env("GITHUB_TOKEN", token).args([
        "keys",
        "list",
        "--repo",
        "acme/dags",
        "--api-url",
        api_url,
    ]);
    c
}

/// sealkey with every proxy variable unset (the tests set the ones they mean).
fn without_proxies(mut c: Command) -> Command {
    for v in [
        "HTTP_PROXY",
        "http_proxy",
        "HTTPS_PROXY",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        c.env_remove(v);
    }
    c
}

/// A fake token that is not shaped like any GitHub token, so only the exact-credential
/// redaction can catch it.
fn fake_credential() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("fake-test-credential-{nanos}-{}", std::process::id())
}

const SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: git-creds\n  namespace: dev\nstringData:\n  a: b\n";

/// A self-signed RSA certificate made by openssl, as a Sealed Secrets controller serves it.
fn controller_cert(dir: &Path) -> Vec<u8> {
    let (key, cert) = (dir.join("key.TEST-ONLY.pem"), dir.join("cert.pem"));
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=sealed-secret",
        ])
        .args(["-newkey", "rsa:2048", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (Debian package openssl)");
    assert!(out.status.success(), "{}", text(&out.stderr));
    std::fs::read(cert).unwrap()
}

fn seal_with_cert(url: &str, out: Option<&Path>) -> Command {
    let mut c = sealkey();
    c.args(["seal", "--seal", "sealed-secrets", "--cert", url]);
    if let Some(out) = out {
        c.arg("--out").arg(out);
    }
    c
}

fn assert_no_terminal_controls(s: &str) {
    for bad in [
        '\u{1b}', '\u{7}', '\u{9b}', '\u{2028}', '\u{2029}', '\u{7f}',
    ] {
        assert!(!s.contains(bad), "{bad:?} reached stderr: {s:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Class 5: redirects.

#[test]
fn cert_url_redirect_to_another_host_is_refused_and_nothing_is_written() {
    // Before: the 302 was followed and the Secret sealed to the other server's certificate.
    let dir = tempfile::tempdir().unwrap();
    let pem = controller_cert(dir.path());
    let elsewhere = Server::canned("200 OK", &[], pem);
    let redirect = Server::canned(
        "302 Found",
        &[(
            "Location",
            format!("http://localhost:{}/v1/cert.pem", elsewhere.port),
        )],
        vec![],
    );
    let out_file = dir.path().join("sealed.yaml");
    let url = format!("http://127.0.0.1:{}/v1/cert.pem", redirect.port);
    let w = run_watched(
        seal_with_cert(&url, Some(&out_file)),
        SECRET.as_bytes(),
        Duration::from_secs(20),
        1 << 20,
    );
    let stderr = text(&w.out.stderr);
    assert_eq!(w.out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("redirect") && stderr.contains(&format!("localhost:{}", elsewhere.port)),
        "{stderr}"
    );
    assert!(elsewhere.heads().is_empty(), "the redirect was followed");
    assert!(!out_file.exists(), "something was written");
}

#[test]
fn github_redirects_are_reported_with_their_target_and_not_followed() {
    // Before: not followed, but the error did not say where the redirect pointed.
    let elsewhere = Server::canned("200 OK", &[], b"[]".to_vec());
    for status in [
        "301 Moved Permanently",
        "302 Found",
        "307 Temporary Redirect",
    ] {
        let redirect = Server::canned(
            status,
            &[(
                "Location",
                format!("http://localhost:{}/repos/acme/dags/keys", elsewhere.port),
            )],
            vec![],
        );
        let url = format!("http://127.0.0.1:{}", redirect.port);
        let w = run_watched(
            keys_list(&url, &fake_credential()),
            b"",
            Duration::from_secs(20),
            1 << 20,
        );
        let stderr = text(&w.out.stderr);
        assert_eq!(w.out.status.code(), Some(3), "{status}: {stderr}");
        assert!(
            stderr.contains("redirect")
                && stderr.contains(&format!("localhost:{}", elsewhere.port)),
            "{status}: {stderr}"
        );
    }
    assert!(elsewhere.heads().is_empty(), "a redirect was followed");
}

// ---------------------------------------------------------------------------------------------
// Class 6: proxies.

#[test]
fn proxy_variables_never_reach_loopback_destinations() {
    // Before: HTTP_PROXY received the GitHub request, Authorization header included.
    let proxy = Server::proxy_on("127.0.0.2");
    let proxy_url = format!("http://127.0.0.2:{}", proxy.port);
    let with_proxies = |c: Command| {
        let mut c = without_proxies(c);
        for v in [
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            c.env(v, &proxy_url);
        }
        c
    };
    let fake = FakeGithub::start();
    for api_url in [
        fake.url(),
        format!("http://localhost:{}", fake.port),
        format!("http://127.0.0.1:{}/", fake.port),
    ] {
        let w = run_watched(
            with_proxies(keys_list(&api_url, TOKEN)),
            b"",
            Duration::from_secs(20),
            1 << 20,
        );
        assert_eq!(
            w.out.status.code(),
            Some(0),
            "{api_url}: {}",
            text(&w.out.stderr)
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let cert = Server::canned("200 OK", &[], controller_cert(dir.path()));
    let w = run_watched(
        with_proxies(seal_with_cert(
            &format!("http://127.0.0.1:{}/v1/cert.pem", cert.port),
            None,
        )),
        SECRET.as_bytes(),
        Duration::from_secs(20),
        1 << 20,
    );
    assert_eq!(w.out.status.code(), Some(0), "{}", text(&w.out.stderr));
    assert_eq!(proxy.heads(), Vec::<String>::new(), "the proxy was used");
    assert!(fake
        .log()
        .iter()
        .all(|r| r.header("authorization") == Some(&format!("Bearer {TOKEN}"))));
}

#[test]
fn https_proxy_only_sees_a_connect_and_no_proxy_is_honoured() {
    // The token travels inside the CONNECT tunnel's TLS; the proxy sees host and port only.
    let proxy = Server::proxy_on("127.0.0.2");
    let proxy_url = format!("http://127.0.0.2:{}", proxy.port);
    let token = fake_credential();
    let mut c = without_proxies(keys_list("https://ghe.example.test/api/v3", &token));
    c.env("HTTPS_PROXY", &proxy_url);
    let w = run_watched(c, b"", Duration::from_secs(30), 1 << 20);
    assert_eq!(w.out.status.code(), Some(3), "{}", text(&w.out.stderr));
    let heads = proxy.heads();
    assert!(!heads.is_empty(), "HTTPS_PROXY was not used");
    for head in &heads {
        assert!(head.starts_with("CONNECT ghe.example.test:443 "), "{head}");
        assert!(!head.contains(&token) && !head.to_ascii_lowercase().contains("authorization"));
    }
    // Every form of entry is covered by the unit tests in src/http.rs; here, both names.
    for (var, no_proxy) in [
        ("NO_PROXY", "ghe.example.test"),
        ("no_proxy", ".example.test"),
    ] {
        let mut c = without_proxies(keys_list("https://ghe.example.test/api/v3", &token));
        c.env("HTTPS_PROXY", &proxy_url).env(var, no_proxy);
        let before = proxy.heads().len();
        let w = run_watched(c, b"", Duration::from_secs(30), 1 << 20);
        assert_eq!(w.out.status.code(), Some(3), "{}", text(&w.out.stderr));
        assert_eq!(proxy.heads().len(), before, "{var}={no_proxy} was ignored");
    }
}

// ---------------------------------------------------------------------------------------------
// Class 10: unbounded answers and server text.

#[test]
fn endless_github_answer_is_cut_at_the_cap_quickly_with_bounded_memory() {
    // Before: the client kept reading (and holding) the whole 8 GiB body.
    let with_length = Server::start("127.0.0.1", |s, _, _| {
        pour_zeros(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 8589934592\r\n\r\n",
            false,
        )
    });
    let chunked = Server::start("127.0.0.1", |s, _, _| {
        pour_zeros(
            s,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            true,
        )
    });
    for server in [&with_length, &chunked] {
        let url = format!("http://127.0.0.1:{}", server.port);
        let w = run_watched(
            keys_list(&url, &fake_credential()),
            b"",
            Duration::from_secs(15),
            512 * 1024,
        );
        let stderr = text(&w.out.stderr);
        assert_eq!(w.killed, None, "{stderr}");
        assert_eq!(w.out.status.code(), Some(3), "{stderr}");
        assert!(stderr.contains("larger than"), "{stderr}");
        assert!(w.elapsed < Duration::from_secs(8), "{:?}", w.elapsed);
        assert!(w.peak_rss_kib < 128 * 1024, "{} KiB", w.peak_rss_kib);
    }
}

#[test]
fn endless_cert_answer_is_cut_at_64_kib() {
    // Before: the whole body was read into memory.
    let server = Server::start("127.0.0.1", |s, _, _| {
        pour_zeros(
            s,
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
            true,
        )
    });
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("sealed.yaml");
    let w = run_watched(
        seal_with_cert(
            &format!("http://127.0.0.1:{}/v1/cert.pem", server.port),
            Some(&out_file),
        ),
        SECRET.as_bytes(),
        Duration::from_secs(15),
        512 * 1024,
    );
    let stderr = text(&w.out.stderr);
    assert_eq!(w.killed, None, "{stderr}");
    assert_eq!(w.out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("larger than 65536 bytes"), "{stderr}");
    assert!(w.peak_rss_kib < 128 * 1024, "{} KiB", w.peak_rss_kib);
    assert!(!out_file.exists());
}

#[test]
fn slow_drip_pages_stop_at_the_overall_deadline() {
    // Before: every page arrived within the per-request timeout, so 1,000 of them were read.
    let server = Server::start("127.0.0.1", |s, head, port| {
        let page: u32 = head
            .split_once("page=")
            .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        let body = format!("[{}]", " ".repeat(8));
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nLink: <http://127.0.0.1:{port}/repos/acme/dags/keys?per_page=100&page={}>; rel=\"next\"\r\n\r\n",
            body.len(),
            page + 1
        );
        if s.write_all(head.as_bytes()).is_err() {
            return;
        }
        for b in body.bytes() {
            std::thread::sleep(Duration::from_millis(150));
            if s.write_all(&[b]).is_err() {
                return;
            }
        }
    });
    let mut c = keys_list(
        &format!("http://127.0.0.1:{}", server.port),
        &fake_credential(),
    );
    c.env("SEALKEY_DEADLINE", "3s");
    let w = run_watched(c, b"", Duration::from_secs(15), 1 << 20);
    let stderr = text(&w.out.stderr);
    assert_eq!(w.killed, None, "{stderr}");
    assert_eq!(w.out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("stopped") && stderr.contains("3 s") && stderr.contains("--deadline"),
        "{stderr}"
    );
    assert!(w.elapsed < Duration::from_secs(6), "{:?}", w.elapsed);
    assert!(server.heads().len() < 5, "{} pages", server.heads().len());
}

/// Server text with everything that must not reach a terminal: the client's own credential
/// (plain, after `Bearer`, base64), other token shapes, a JWT, and terminal controls.
fn hostile_text(token: &str) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(token);
    format!(
        "Bad credentials\u{1b}]0;pwned\u{7}\u{1b}[2J for Bearer {token} ({token}, {b64}) \u{9b}31m \
         ghs_16C7e42F292c6912E7710c838347Ae178B4a github_pat_11ABCDEFG0123456789_abcdefghijklmnop \
         eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlc2ln\u{2028}next line\u{7f}"
    )
}

fn assert_clean(stderr: &str, token: &str) {
    assert_no_terminal_controls(stderr);
    let b64 = base64::engine::general_purpose::STANDARD.encode(token);
    for leaked in [
        token,
        b64.as_str(),
        "ghs_16C7e42F",
        "github_pat_11ABC",
        "eyJhbGciOiJIUzI1NiJ9.eyJ",
    ] {
        assert!(
            !stderr.contains(leaked),
            "{leaked} reached stderr: {stderr}"
        );
    }
}

#[test]
fn reflected_token_and_terminal_controls_in_github_errors_never_reach_stderr() {
    // Before: GitHub's `message` was printed verbatim (300 chars), token and escapes included.
    let token = fake_credential();
    for status in [
        "401 Unauthorized",
        "403 Forbidden",
        "404 Not Found",
        "500 Oops",
    ] {
        let body = serde_json::json!({
            "message": hostile_text(&token),
            "documentation_url": format!("https://docs.github.com/\u{1b}[2J{token}"),
        })
        .to_string();
        let server = Server::canned(
            status,
            &[("Content-Type", "application/json".into())],
            body.into_bytes(),
        );
        let mut c = keys_list(&format!("http://127.0.0.1:{}", server.port), &token);
        c.env("SEALKEY_DEADLINE", "5s");
        let w = run_watched(c, b"", Duration::from_secs(20), 1 << 20);
        let stderr = text(&w.out.stderr);
        assert_eq!(w.out.status.code(), Some(3), "{stderr}");
        assert!(stderr.contains("Bad credentials"), "{status}: {stderr}");
        assert_clean(&stderr, &token);
    }
    // A 422 on registration carries its text in `errors[].message`.
    let server = Server::start("127.0.0.1", {
        let token = token.clone();
        move |s, head, _| {
            let (status, body) = if head.starts_with("POST") {
                (
                    "422 Unprocessable Entity",
                    serde_json::json!({"message": "Validation Failed",
                        "errors": [{"message": hostile_text(&token)}]})
                    .to_string(),
                )
            } else {
                ("200 OK", "[]".to_string())
            };
            let _ = s.write_all(
                format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    let key = sealkey::keygen::DeployKey::generate(sealkey::keygen::KeyType::Ed25519, "t")
        .unwrap()
        .public_key_bare();
    let mut c = sealkey();
    c.env("GITHUB_TOKEN", &token).args([
        "register",
        "--repo",
        "acme/dags",
        "--api-url",
        &format!("http://127.0.0.1:{}", server.port),
    ]);
    let w = run_watched(c, key.as_bytes(), Duration::from_secs(20), 1 << 20);
    let stderr = text(&w.out.stderr);
    assert_eq!(w.out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("Bad credentials"), "{stderr}");
    assert_clean(&stderr, &token);
}

#[test]
fn cert_url_error_text_is_shown_stripped_and_redacted() {
    // Before: the body of a refused cert request was not shown at all (only "HTTP 503"), so a
    // `kubectl proxy` error ("services ... not found") was lost; now it is shown, made safe.
    // No credential is held for a cert URL, so a token is caught by its shape only.
    let token = "ghp_FAKEfakeFAKEfake0123456789abcdefABCD";
    let body = format!("controller is restarting {}", hostile_text(token));
    let server = Server::canned("503 Service Unavailable", &[], body.into_bytes());
    let w = run_watched(
        seal_with_cert(
            &format!("http://127.0.0.1:{}/v1/cert.pem", server.port),
            None,
        ),
        SECRET.as_bytes(),
        Duration::from_secs(20),
        1 << 20,
    );
    let stderr = text(&w.out.stderr);
    assert_eq!(w.out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("controller is restarting"), "{stderr}");
    assert_no_terminal_controls(&stderr);
    for leaked in [
        token,
        "ghs_16C7e42F",
        "github_pat_11ABC",
        "eyJhbGciOiJIUzI1NiJ9.eyJ",
    ] {
        assert!(
            !stderr.contains(leaked),
            "{leaked} reached stderr: {stderr}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Class 11: listings bounded as a whole, not only per answer.

/// A deploy key list page as GitHub sends it, holding one key whose title is `title_len` bytes.
fn key_page(id: u64, title_len: usize) -> String {
    serde_json::json!([{"id": id, "key": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFake", "title": "t".repeat(title_len),
        "verified": true, "created_at": "2026-01-01T00:00:00Z", "read_only": true}])
    .to_string()
}

#[test]
fn a_link_next_loop_back_to_an_earlier_page_stops_at_the_first_repeat() {
    // Before: page 2 linked back to page 1, and sealkey went round until its 1,000-page stop
    // (3.9 GB with big pages); now a URL already read ends the listing with exit 3.
    let server = Server::start("127.0.0.1", |s, head, port| {
        let body = key_page(1, 10);
        let next = if head.contains("page=2") {
            "page=1"
        } else {
            "page=2"
        };
        let _ = s.write_all(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nLink: <http://127.0.0.1:{port}/repos/acme/dags/keys?per_page=100&{next}>; rel=\"next\"\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        );
    });
    let w = run_watched(
        keys_list(
            &format!("http://127.0.0.1:{}", server.port),
            &fake_credential(),
        ),
        b"",
        Duration::from_secs(30),
        1 << 20,
    );
    let stderr = text(&w.out.stderr);
    assert_eq!(w.killed, None, "{stderr}");
    assert_eq!(w.out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("links back to a page already read"),
        "{stderr}"
    );
    // Three requests (the first URL, page=2, page=1); page=2 again is refused unsent.
    assert!(
        server.heads().len() <= 3,
        "{} requests",
        server.heads().len()
    );
}

#[test]
fn a_listing_of_endless_distinct_pages_stops_at_the_total_byte_bound_with_bounded_memory() {
    // Before: each 3.5 MB page was under the per-answer cap, so 1,000 of them were read and
    // held (3.5 GB); now the listing as a whole stops at 32 MiB.
    let server = Server::start("127.0.0.1", |s, head, port| {
        let page: u64 = head
            .split_once("&page=")
            .and_then(|(_, rest)| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or(1);
        let body = key_page(page, 3_500_000);
        let _ = s.write_all(
            format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nLink: <http://127.0.0.1:{port}/repos/acme/dags/keys?per_page=100&page={}>; rel=\"next\"\r\nConnection: close\r\n\r\n",
                body.len(),
                page + 1
            )
            .as_bytes(),
        );
        let _ = s.write_all(body.as_bytes());
    });
    let w = run_watched(
        keys_list(
            &format!("http://127.0.0.1:{}", server.port),
            &fake_credential(),
        ),
        b"",
        Duration::from_secs(60),
        512 * 1024,
    );
    let stderr = text(&w.out.stderr);
    assert_eq!(w.killed, None, "{stderr}");
    assert_eq!(w.out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("larger than 33554432 bytes"), "{stderr}");
    assert!(server.heads().len() <= 11, "{} pages", server.heads().len());
    assert!(w.peak_rss_kib < 256 * 1024, "{} KiB", w.peak_rss_kib);
}
