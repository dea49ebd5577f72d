//! sealkey's AWS calls (Secrets Manager for `create --store`, KMS for `--seal-to ARN`) against a
//! hostile endpoint on 127.0.0.1 (issue 20): errors that echo what was sent (the private key, the
//! SOPS data key, in any slice and encoding) or the credentials held never show them; server
//! text loses terminal controls on error and success paths; plain http goes to loopback only,
//! however the endpoint is configured; answers are capped in size.

mod support;

use base64::Engine as _;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use support::hostile_aws::{self, run_watched, HostileAws, Mode, Request};
use support::text;

const KMS_ARN: &str = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";

fn sealkey_aws(env: &[(String, String)], args: &[&str]) -> Command {
    let mut c = support::sealkey();
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
    for (k, _) in std::env::vars() {
        if k.starts_with("AWS_") {
            c.env_remove(k);
        }
    }
    c.envs(env.iter().map(|(k, v)| (k, v))).args(args);
    c
}

fn create_store(env: &[(String, String)]) -> Command {
    sealkey_aws(
        env,
        &[
            "create",
            "--repo",
            "acme/dags",
            "-n",
            "dev",
            "--store",
            "aws-secrets-manager:dev/hostile",
        ],
    )
}

fn create_kms(env: &[(String, String)]) -> Command {
    sealkey_aws(
        env,
        &[
            "create",
            "--repo",
            "acme/dags",
            "-n",
            "dev",
            "--seal-to",
            KMS_ARN,
        ],
    )
}

/// Every encoding an echo might use, of `bytes` from `from` on.
fn encodings(bytes: &[u8], from: usize) -> Vec<(&'static str, String)> {
    let b = &bytes[from.min(bytes.len())..];
    let b64 = base64::engine::general_purpose::STANDARD;
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    vec![
        ("raw", String::from_utf8_lossy(b).into_owned()),
        ("base64", b64.encode(b)),
        ("base64url", url.encode(b)),
        ("hex", hex::encode(b)),
        ("HEX", hex::encode_upper(b)),
        (
            "json-escaped",
            serde_json::to_string(&String::from_utf8_lossy(b)).unwrap(),
        ),
        (
            "url-encoded",
            url::form_urlencoded::byte_serialize(b).collect(),
        ),
    ]
}

/// Asserts no run of `window` characters of any encoding of `secret` is in `shown` (line
/// breaks in `shown` are ignored, as a terminal would join them).
fn assert_no_window(shown: &str, what: &str, secret: &[u8], window: usize) {
    let joined: String = shown.chars().filter(|c| !c.is_whitespace()).collect();
    for (enc, form) in encodings(secret, 0) {
        let form: Vec<char> = form.chars().filter(|c| !c.is_whitespace()).collect();
        for w in form.windows(window) {
            let w: String = w.iter().collect();
            assert!(
                !joined.contains(&w),
                "{window} characters of {what} ({enc}) shown: {w:?} in {shown}"
            );
        }
    }
}

const CONTROLS: [char; 8] = [
    '\u{1b}', '\u{7}', '\u{9b}', '\u{202e}', '\u{2028}', '\u{200b}', '\u{7f}', '\r',
];

fn assert_no_controls(s: &str) {
    for c in CONTROLS {
        assert!(!s.contains(c), "{c:?} reached the terminal: {s:?}");
    }
}

/// The signature of a SigV4 `Authorization` header.
fn signature(r: &Request) -> String {
    r.header("authorization")
        .and_then(|a| a.split("Signature=").nth(1).map(str::to_string))
        .expect("a signed request")
}

#[test]
fn a_store_error_echoing_the_secret_string_in_any_encoding_never_shows_the_key() {
    // Before: `SecretString[200:]` in a ValidationException put the private key on stderr.
    for (from, pick) in [
        (200, 0),
        (100, 1),
        (37, 2),
        (50, 3),
        (51, 4),
        (150, 5),
        (80, 6),
    ] {
        let echo = move |r: &Request| {
            let sent = r.field("SecretString").unwrap_or_default();
            let (name, form) = encodings(sent.as_bytes(), from).swap_remove(pick);
            format!("Invalid SecretString ({name}): {form}")
        };
        let server = HostileAws::start(Mode::Echo(Arc::new(echo)));
        let w = run_watched(
            create_store(&server.env()),
            Duration::from_secs(60),
            512 << 10,
        );
        let stderr = text(&w.out.stderr);
        assert_eq!(w.out.status.code(), Some(3), "{stderr}");
        assert!(stderr.contains("ValidationException"), "{stderr}");
        assert!(stderr.contains("Invalid SecretString"), "{stderr}");
        let sent = server
            .request("CreateSecret")
            .and_then(|r| r.field("SecretString"))
            .expect("CreateSecret was sent");
        let fields: serde_json::Value = serde_json::from_str(&sent).unwrap();
        let pem = fields["gitSshKey"].as_str().unwrap();
        assert!(pem.contains("PRIVATE KEY"), "{pem}");
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        assert_no_window(&stderr, "the private key", body.as_bytes(), 16);
        assert_no_window(&stderr, "the secret string", sent.as_bytes(), 20);
        assert!(w.out.stdout.is_empty(), "{}", text(&w.out.stdout));
    }
}

#[test]
fn a_kms_error_echoing_the_plaintext_never_shows_the_data_key() {
    // Before: a KMS Encrypt error echoing `Plaintext` showed the SOPS data key.
    for pick in 0..4 {
        let echo = move |r: &Request| {
            let b64 = r.field("Plaintext").unwrap_or_default();
            let key = base64::engine::general_purpose::STANDARD
                .decode(&b64)
                .unwrap_or_default();
            let form = match pick {
                0 => b64,
                1 => hex::encode(&key),
                2 => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&key[3..]),
                _ => format!("{:?}", &key),
            };
            format!("1 validation error detected: Value '{form}' at 'plaintext' failed")
        };
        let server = HostileAws::start(Mode::Echo(Arc::new(echo)));
        let w = run_watched(
            create_kms(&server.env()),
            Duration::from_secs(60),
            512 << 10,
        );
        let stderr = text(&w.out.stderr);
        assert_eq!(w.out.status.code(), Some(3), "{stderr}");
        assert!(stderr.contains("validation error detected"), "{stderr}");
        let b64 = server
            .request("Encrypt")
            .and_then(|r| r.field("Plaintext"))
            .expect("Encrypt was sent");
        let key = base64::engine::general_purpose::STANDARD
            .decode(&b64)
            .unwrap();
        assert_eq!(key.len(), 32);
        assert_no_window(&stderr, "the data key", &key, 16);
        if pick == 3 {
            // A list of decimal bytes, as a blob might be echoed.
            let list: String = format!("{:?}", &key).split_whitespace().collect();
            let shown: String = stderr.split_whitespace().collect();
            for w in list.as_bytes().windows(16) {
                let w = std::str::from_utf8(w).unwrap();
                assert!(!shown.contains(w), "{w} in {stderr}");
            }
        }
    }
}

#[test]
fn credentials_and_terminal_controls_in_aws_errors_never_reach_stderr() {
    // Before: the session token, the SigV4 Authorization header, U+202E, U+2028 and U+200B
    // reached stderr (only ESC and other C0/C1 controls were removed).
    let echo = |r: &Request| {
        format!(
            "The security token {} is invalid\u{202e} for Authorization: {}\u{2028}fingerprint: SHA256:forged\u{200b} X-Amz-Security-Token={} \u{1b}]0;pwned\u{7}",
            r.header("x-amz-security-token").unwrap_or_default(),
            r.header("authorization").unwrap_or_default(),
            url::form_urlencoded::byte_serialize(
                r.header("x-amz-security-token").unwrap_or_default().as_bytes()
            )
            .collect::<String>(),
        )
    };
    let server = HostileAws::start(Mode::Echo(Arc::new(echo)));
    for cmd in [create_store(&server.env()), create_kms(&server.env())] {
        let w = run_watched(cmd, Duration::from_secs(60), 512 << 10);
        let stderr = text(&w.out.stderr);
        assert_eq!(w.out.status.code(), Some(3), "{stderr}");
        assert!(stderr.contains("The security token"), "{stderr}");
        assert_no_controls(&stderr);
        assert_no_window(
            &stderr,
            "the session token",
            hostile_aws::SESSION_TOKEN.as_bytes(),
            16,
        );
        assert_no_window(
            &stderr,
            "the secret access key",
            hostile_aws::SECRET_ACCESS_KEY.as_bytes(),
            16,
        );
        let sig = signature(server.requests().last().unwrap());
        assert!(!stderr.contains(&sig[..16]), "{stderr}");
        assert!(!stderr.contains("Credential=AKIA"), "{stderr}");
    }
}

#[test]
fn terminal_escapes_in_a_successful_store_answer_are_shown_escaped() {
    // Before: the ARN and VersionId of CreateSecret reached stderr raw (window title, screen
    // clear, a cursor move and a forged fingerprint line).
    let server = HostileAws::start(Mode::Succeed {
        arn: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:x\u{1b}]0;pwned\u{7}\u{1b}[2J"
            .into(),
        version: "v1\u{1b}[1A\r\nfingerprint: SHA256:forged\u{202e}\u{2028}\u{9b}2K".into(),
    });
    let w = run_watched(
        create_store(&server.env()),
        Duration::from_secs(60),
        512 << 10,
    );
    let stderr = text(&w.out.stderr);
    assert_eq!(w.out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("stored as arn:aws:secretsmanager"),
        "{stderr}"
    );
    assert_no_controls(&stderr);
    assert!(
        !stderr
            .lines()
            .any(|l| l.starts_with("fingerprint: SHA256:forged")),
        "{stderr}"
    );
}

#[test]
fn plain_http_to_a_non_loopback_aws_endpoint_is_refused_however_it_is_configured() {
    // Before: `AWS_ENDPOINT_URL=http://<non-loopback>` was accepted and the key sent in clear.
    let far = "http://aws.internal.example:4566";
    let dir = tempfile::tempdir().unwrap();
    let profile = |body: &str| {
        let p = dir.path().join(format!("config-{}", body.len()));
        std::fs::write(&p, body).unwrap();
        p.to_str().unwrap().to_string()
    };
    let base = hostile_aws::env_with_endpoint("http://127.0.0.1:9");
    let without = |drop: &str| -> Vec<(String, String)> {
        base.iter().filter(|(k, _)| k != drop).cloned().collect()
    };
    let with = |mut env: Vec<(String, String)>, k: &str, v: &str| {
        env.retain(|(n, _)| n != k);
        env.push((k.to_string(), v.to_string()));
        env
    };
    let cases: Vec<(&str, Command, &str)> = vec![
        (
            "AWS_ENDPOINT_URL",
            create_store(&with(base.clone(), "AWS_ENDPOINT_URL", far)),
            "AWS_ENDPOINT_URL",
        ),
        (
            "AWS_ENDPOINT_URL_SECRETS_MANAGER",
            create_store(&with(
                without("AWS_ENDPOINT_URL"),
                "AWS_ENDPOINT_URL_SECRETS_MANAGER",
                far,
            )),
            "AWS_ENDPOINT_URL_SECRETS_MANAGER",
        ),
        (
            "AWS_ENDPOINT_URL_KMS",
            create_kms(&with(base.clone(), "AWS_ENDPOINT_URL_KMS", far)),
            "AWS_ENDPOINT_URL_KMS",
        ),
        (
            "profile endpoint_url",
            create_store(&with(
                without("AWS_ENDPOINT_URL"),
                "AWS_CONFIG_FILE",
                &profile(&format!("[default]\nendpoint_url = {far}\n")),
            )),
            "endpoint_url",
        ),
        (
            "profile services section",
            create_kms(&with(
                without("AWS_ENDPOINT_URL"),
                "AWS_CONFIG_FILE",
                &profile(&format!(
                    "[default]\nservices = hostile\n\n[services hostile]\nkms =\n  endpoint_url = {far}\n"
                )),
            )),
            "endpoint_url",
        ),
    ];
    for (what, cmd, named) in cases {
        let w = run_watched(cmd, Duration::from_secs(60), 512 << 10);
        let stderr = text(&w.out.stderr);
        assert_eq!(w.out.status.code(), Some(2), "{what}: {stderr}");
        assert!(stderr.contains(named), "{what}: {stderr}");
        assert!(stderr.contains("aws.internal.example"), "{what}: {stderr}");
        assert!(w.out.stdout.is_empty(), "{what}");
    }
}

#[test]
fn a_huge_aws_answer_is_cut_at_the_cap_with_bounded_memory() {
    // Before: a 1.5 GB DescribeSecret body took 1.5 GB of memory.
    for announce in [Some(1_500_000_000u64), None] {
        let server = HostileAws::start(Mode::Endless { announce });
        let w = run_watched(
            create_store(&server.env()),
            Duration::from_secs(60),
            300 << 10,
        );
        let stderr = text(&w.out.stderr);
        assert!(w.killed.is_none(), "{announce:?}: {:?}", w.killed);
        assert_eq!(w.out.status.code(), Some(3), "{announce:?}: {stderr}");
        assert!(
            stderr.contains("answer from 127.0.0.1") && stderr.contains("larger than"),
            "{announce:?}: {stderr}"
        );
        assert!(w.peak_rss_kib < 200 << 10, "{} KiB", w.peak_rss_kib);
    }
}
