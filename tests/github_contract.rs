//! Contract test: every request sealkey makes is validated by Prism serving GitHub's official
//! OpenAPI description (npm `@octokit/openapi`, `api.github.com.json`), with zero violations; a
//! deliberately broken request is rejected by it.
//!
//! sealkey -> a recording proxy (this file) -> Prism. The proxy notes each request and Prism's
//! `sl-violations` header. Two test-only adjustments, both on Prism's side of the exchange:
//! `/meta` is asked with `Prefer: dynamic=true` (the static example violates its own schema), and
//! Prism's canned `Link` header (pointing at api.github.com) is dropped.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use support::fake_github::*;
use support::*;

struct Prism {
    port: u16,
    _child: Child,
}

/// Prism, started once per test binary; stops by itself when this process ends.
fn prism() -> u16 {
    static PRISM: OnceLock<Prism> = OnceLock::new();
    PRISM.get_or_init(start_prism).port
}

fn start_prism() -> Prism {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/prism");
    let bin = dir.join("node_modules/.bin/prism");
    let spec = dir.join("node_modules/@octokit/openapi/generated/api.github.com.json");
    assert!(
        bin.exists() && spec.exists(),
        "Prism or GitHub's OpenAPI description missing under {}: run scripts/install-test-deps",
        dir.display()
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The shell watches this test process and stops Prism when it is gone.
    let child = Command::new("sh")
        .arg("-c")
        .arg(r#""$1" mock -h 127.0.0.1 -p "$2" "$3" >"$5" 2>&1 & p=$!; while kill -0 "$4" 2>/dev/null && kill -0 $p 2>/dev/null; do sleep 1; done; kill $p 2>/dev/null"#)
        .arg("sh")
        .arg(&bin)
        .arg(port.to_string())
        .arg(&spec)
        .arg(std::process::id().to_string())
        .arg(std::env::temp_dir().join(format!("sealkey-prism-{port}.log")))
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    loop {
        if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
            let _ = s.write_all(b"GET /meta HTTP/1.1\r\nHost: x\r\nAccept: application/json\r\nConnection: close\r\n\r\n");
            let mut buf = [0u8; 12];
            if s.read(&mut buf).is_ok_and(|n| n > 0) {
                break;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "Prism did not start within 120 s"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    eprintln!(
        "Prism up on 127.0.0.1:{port} after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Prism {
        port,
        _child: child,
    }
}

/// One exchange seen by the proxy.
#[derive(Clone, Debug)]
struct Exchange {
    method: String,
    path: String,
    status: u16,
    violations: Option<String>,
}

/// Starts a recording proxy in front of Prism; returns its base URL and the record.
fn proxy() -> (String, Arc<Mutex<Vec<Exchange>>>) {
    let prism_port = prism();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let port = serve(move |req| {
        let (resp, raw_status, violations) = forward(prism_port, &req);
        record.lock().unwrap().push(Exchange {
            method: req.method.clone(),
            path: req.path.clone(),
            status: raw_status,
            violations,
        });
        Some(resp)
    });
    (format!("http://127.0.0.1:{port}"), seen)
}

fn forward(prism_port: u16, req: &Request) -> (Response, u16, Option<String>) {
    let target = if req.query.is_empty() {
        req.path.clone()
    } else {
        format!("{}?{}", req.path, req.query)
    };
    let mut head = format!(
        "{} {target} HTTP/1.1\r\nHost: 127.0.0.1:{prism_port}\r\nConnection: close\r\n",
        req.method
    );
    for (k, v) in &req.headers {
        if !["host", "connection"].contains(&k.to_ascii_lowercase().as_str()) {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    if req.path == "/meta" {
        head.push_str("Prefer: dynamic=true\r\n");
    }
    head.push_str("\r\n");
    let mut s = TcpStream::connect(("127.0.0.1", prism_port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&req.body).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let split = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let body = raw[split + 4..].to_vec();
    let mut lines = head.lines();
    let status: u16 = lines
        .next()
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let mut headers = Vec::new();
    let mut violations = None;
    let mut chunked = false;
    for l in lines {
        let (k, v) = l.split_once(':').unwrap();
        let (k, v) = (k.trim(), v.trim());
        match k.to_ascii_lowercase().as_str() {
            "sl-violations" => violations = Some(v.to_string()),
            "transfer-encoding" => chunked = v.eq_ignore_ascii_case("chunked"),
            "link" | "content-length" | "connection" | "keep-alive" => {}
            _ => headers.push((k.to_string(), v.to_string())),
        }
    }
    assert!(
        !chunked,
        "Prism answered chunked; the proxy expects Content-Length"
    );
    (
        Response {
            status,
            headers,
            body,
        },
        status,
        violations,
    )
}

fn pinned_known_hosts(dir: &std::path::Path) -> PathBuf {
    let p = dir.join("known_hosts");
    std::fs::write(
        &p,
        // The API is on 127.0.0.1, so git's host is too (GitHub Enterprise Server serves git on
        // the API host): the lines must name it, or create refuses them.
        sealkey::known_hosts::KnownHosts::github_pinned()
            .to_text()
            .replace("github.com ", "github.com,127.0.0.1 "),
    )
    .unwrap();
    p
}

#[test]
fn every_request_sealkey_makes_validates_against_githubs_openapi_description() {
    let (url, seen) = proxy();
    let dir = tempfile::tempdir().unwrap();
    let kh = pinned_known_hosts(dir.path());
    let kh = kh.to_str().unwrap();
    let token = "ghp_contractTEST0000000000000000000000";
    let cli = |args: &[&str], stdin: Option<&str>| {
        let mut c = sealkey();
        c.env("GITHUB_TOKEN", token)
            .args(args)
            .args(["--api-url", &url]);
        run_cmd(c, stdin)
    };

    // create --register (read-only, POST keys) with host keys from a file.
    let out = cli(
        &[
            "create",
            "--repo",
            "acme/dags",
            "--register",
            "--cluster",
            "prod",
            "--known-hosts",
            kh,
            "--seal-to",
            AGE_RECIPIENT,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // create --register with host keys from /meta (Prism's dynamic /meta has random strings for
    // keys, so this run stops at the host keys, exit 3, before a key exists; the request counts).
    let out = cli(
        &[
            "create",
            "--repo",
            "acme/dags",
            "--register",
            "--seal-to",
            AGE_RECIPIENT,
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    // Rollback: POST then DELETE /repos/{owner}/{repo}/keys/{key_id}.
    let out = cli(
        &[
            "create",
            "--repo",
            "acme/dags",
            "--register",
            "--known-hosts",
            kh,
            "--seal-to",
            AGE_RECIPIENT,
            // Sealing that would leave the key in clear is refused after the registration.
            "--encrypted-regex",
            "^nomatch$",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("rollback"),
        "{}",
        text(&out.stderr)
    );
    // register an existing public key.
    let key =
        sealkey::keygen::DeployKey::generate(sealkey::keygen::KeyType::Ed25519, "flux").unwrap();
    let out = cli(
        &["register", "--repo", "acme/dags", "--title", "flux prod"],
        Some(key.public_openssh()),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // register --read-write: the POST body with read_only false.
    let out = cli(
        &["register", "--repo", "acme/dags", "--read-write"],
        Some(key.public_openssh()),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // keys list and audit (several repositories).
    let out = cli(&["keys", "list", "--repo", "acme/dags", "-o", "json"], None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let out = cli(
        &["keys", "audit", "--repo", "acme/dags", "--repo", "acme/web"],
        None,
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "Prism's example key is flagged: {}",
        text(&out.stdout)
    );
    // known-hosts: GET /meta.
    let _ = cli(&["known-hosts"], None);
    // GitHub App: GET /repos/{owner}/{repo}/installation, POST /app/installations/{id}/access_tokens.
    {
        use rsa::pkcs1::EncodeRsaPrivateKey;
        let app_key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let pem = dir.path().join("app.TEST-ONLY.pem");
        std::fs::write(
            &pem,
            app_key.to_pkcs1_pem(Default::default()).unwrap().as_bytes(),
        )
        .unwrap();
        // sealkey refuses a private key other users can read, as ssh does.
        std::fs::set_permissions(&pem, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        let mut c = sealkey();
        c.args([
            "keys",
            "list",
            "--repo",
            "acme/dags",
            "--app-id",
            "42",
            "--app-key",
            pem.to_str().unwrap(),
            "--api-url",
            &url,
        ]);
        let out = run_cmd(c, None);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    // get: GET /repos/{owner}/{repo}/keys/{key_id} through the library.
    {
        let api = sealkey::github::ApiUrl::parse(&url).unwrap();
        let client = sealkey::github::GithubClient::new(
            sealkey::github::ClientSettings::new(api),
            sealkey::github::Auth::Token(sealkey::secret::GithubToken::new(token.into())),
        )
        .unwrap();
        let repo = sealkey::repo::RepoRef::parse("acme/dags").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let got = rt.block_on(client.get_deploy_key(&repo, 1)).unwrap();
        assert_eq!(got.id, 1);
    }

    let seen = seen.lock().unwrap().clone();
    let violations: Vec<&Exchange> = seen.iter().filter(|e| e.violations.is_some()).collect();
    assert!(
        violations.is_empty(),
        "Prism found violations: {violations:#?}"
    );
    assert!(seen.iter().all(|e| e.status < 400), "{seen:#?}");
    let operations: std::collections::BTreeSet<String> = seen
        .iter()
        .map(|e| {
            let templ: Vec<&str> = e
                .path
                .split('/')
                .map(|s| {
                    if s.chars().all(|c| c.is_ascii_digit()) && !s.is_empty() {
                        "{id}"
                    } else {
                        s
                    }
                })
                .collect();
            format!("{} {}", e.method, templ.join("/"))
        })
        .collect();
    let expected = [
        "GET /meta",
        "GET /repos/acme/dags/keys",
        "POST /repos/acme/dags/keys",
        "GET /repos/acme/dags/keys/{id}",
        "DELETE /repos/acme/dags/keys/{id}",
        "GET /repos/acme/web/keys",
        "GET /repos/acme/dags/installation",
        "POST /app/installations/{id}/access_tokens",
    ];
    for op in expected {
        assert!(
            operations.contains(op),
            "{op} was not exercised: {operations:?}"
        );
    }
    eprintln!(
        "{} requests validated by Prism, 0 violations: {operations:?}",
        seen.len()
    );
}

#[test]
fn prism_rejects_a_deliberately_broken_request() {
    let (url, seen) = proxy();
    let port: u16 = url.rsplit(':').next().unwrap().parse().unwrap();
    let send = |body: &str| {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        write!(
            s,
            "POST /repos/acme/dags/keys HTTP/1.1\r\nHost: x\r\nAccept: application/vnd.github+json, application/json;q=0.9\r\nX-GitHub-Api-Version: 2022-11-28\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        out
    };
    // No `key`, and `read_only` of the wrong type.
    let answer = send(r#"{"title":"x","read_only":"yes"}"#);
    assert!(answer.starts_with("HTTP/1.1 422"), "{answer}");
    let seen = seen.lock().unwrap().clone();
    let v = seen[0].violations.as_deref().expect("violations reported");
    assert!(v.contains("key") && v.contains("read_only"), "{v}");
}

#[test]
fn app_create_requests_validate_against_githubs_openapi_description() {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let (url, seen) = proxy();
    let dir = tempfile::tempdir().unwrap();
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let pem = dir.path().join("app.TEST-ONLY.pem");
    write_private(
        &pem,
        key.to_pkcs1_pem(Default::default()).unwrap().as_bytes(),
    );
    let mut c = sealkey();
    // App id 1 is the id of GitHub's example App, which Prism answers GET /app with.
    c.args([
        "app",
        "create",
        "--repo",
        "acme/dags",
        "--app-id",
        "1",
        "--app-key",
        pem.to_str().unwrap(),
        "--for",
        "git-sync",
        "--seal",
        "none",
        "--api-url",
        &url,
    ]);
    let out = run_cmd(c, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let seen = seen.lock().unwrap().clone();
    let ops: Vec<String> = seen
        .iter()
        .map(|e| format!("{} {}", e.method, e.path))
        .collect();
    assert_eq!(
        ops,
        [
            "GET /app",
            "GET /repos/acme/dags/installation",
            "POST /app/installations/1/access_tokens",
            "GET /repos/acme/dags",
        ]
    );
    // Only our requests are judged: Prism's canned answer to GET /repos/{owner}/{repo} lacks a
    // property its own schema requires (`language`), a violation on the response side.
    let violations: Vec<&Exchange> = seen
        .iter()
        .filter(|e| {
            e.violations.as_deref().is_some_and(|v| {
                let v: serde_json::Value = serde_json::from_str(v).unwrap();
                v.as_array()
                    .unwrap()
                    .iter()
                    .any(|x| x["location"][0] != "response")
            })
        })
        .collect();
    assert!(
        violations.is_empty(),
        "Prism found violations: {violations:#?}"
    );
    assert!(seen.iter().all(|e| e.status < 400), "{seen:#?}");
}
