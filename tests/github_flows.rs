//! Flows against a stateful fake GitHub on 127.0.0.1: registration (idempotent, the three 422
//! cases), rate limits, retries, pagination, rollback, GitHub Enterprise Server URLs, GitHub App
//! auth, keys list/audit/prune, known-hosts, bad input and the token canary.

mod support;

use serde_json::Value;
use std::time::{Duration, Instant};
use support::fake_github::*;
use support::*;

fn create_register(fake: &FakeGithub) -> std::process::Command {
    let mut c = sealkey();
    c.env("GITHUB_TOKEN", TOKEN).args([
        "create",
        "--repo",
        "acme/dags",
        "-n",
        "airflow",
        "--register",
        "--cluster",
        "prod-eu",
        "--seal",
        "age",
        "--seal-to",
        AGE_RECIPIENT,
        "--api-url",
        &fake.url(),
    ]);
    c
}

/// `create --register` whose sealing is refused after the registration: SOPS with a selection
/// that leaves the key in clear (the last check before writing refuses it, exit 2).
fn create_register_then_refused_seal(fake: &FakeGithub) -> std::process::Command {
    let mut c = sealkey();
    c.env("GITHUB_TOKEN", TOKEN).args([
        "create",
        "--repo",
        "acme/dags",
        "-n",
        "airflow",
        "--register",
        "--cluster",
        "prod-eu",
        "--seal-to",
        AGE_RECIPIENT,
        "--encrypted-regex",
        "^nomatch$",
        "--api-url",
        &fake.url(),
    ]);
    c
}

fn public_key_from_stderr(stderr: &str) -> String {
    let line = stderr
        .lines()
        .find_map(|l| l.strip_prefix("public key:"))
        .expect("public key line");
    line.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn create_register_registers_read_only_with_cluster_title_in_two_requests() {
    let fake = FakeGithub::start();
    let out = run_cmd(create_register(&fake), None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(text(&out.stdout).starts_with("-----BEGIN AGE ENCRYPTED FILE-----"));
    let keys = fake.keys("acme/dags");
    assert_eq!(keys.len(), 1);
    let key = &keys[0];
    assert_eq!(key["read_only"], true);
    let today = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::UTC)
        .date();
    // The title records the moment, to the second (rotation orders a slot's keys by it).
    let title = key["title"].as_str().unwrap();
    let when = title
        .strip_prefix("sealkey prod-eu/airflow/airflow-ssh-secret ")
        .unwrap_or_else(|| panic!("{title}"));
    assert!(
        when.starts_with(&format!("{today}T")) && when.ends_with('Z'),
        "{title}"
    );
    assert!(when.parse::<jiff::Timestamp>().is_ok(), "{title}");
    assert_eq!(
        key["key"].as_str().unwrap(),
        public_key_from_stderr(&stderr)
    );
    let log = fake.log();
    let calls: Vec<String> = log
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        calls,
        vec!["GET /meta", "POST /repos/acme/dags/keys"],
        "at most 2 requests"
    );
    for r in &log {
        assert_eq!(r.header("x-github-api-version"), Some("2022-11-28"));
        assert!(r.header("user-agent").unwrap().starts_with("sealkey/"));
        assert!(r
            .header("accept")
            .unwrap()
            .contains("application/vnd.github+json"));
    }
    assert!(
        stderr.contains(&format!("registered deploy key {}", key["id"])),
        "{stderr}"
    );
}

#[test]
fn create_register_emits_meta_host_keys_and_the_registered_public_key() {
    let fake = FakeGithub::start();
    let mut c = sealkey();
    c.env("GITHUB_TOKEN", TOKEN).args([
        "create",
        "--repo",
        "acme/dags",
        "--for",
        "flux",
        "--register",
        "--seal",
        "none",
        "--api-url",
        &fake.url(),
        "--git-host",
        "github.com",
    ]);
    let out = run_cmd(c, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let yaml = text(&out.stdout);
    let docs = sealkey::yaml::parse_stream(&yaml, "stdout").unwrap();
    let secret = docs.iter().find(|d| d["kind"] == "Secret").unwrap();
    let field = |k: &str| -> String {
        if let Some(s) = secret["stringData"][k].as_str() {
            return s.to_string();
        }
        use base64::Engine;
        let b = base64::engine::general_purpose::STANDARD
            .decode(secret["data"][k].as_str().unwrap())
            .unwrap();
        String::from_utf8(b).unwrap()
    };
    let registered = fake.keys("acme/dags")[0]["key"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(field("identity.pub").starts_with(&registered));
    let meta_lines: Vec<String> = fake
        .state()
        .meta_keys
        .iter()
        .map(|k| format!("github.com {k}"))
        .collect();
    assert_eq!(field("known_hosts").lines().collect::<Vec<_>>(), meta_lines);
}

#[test]
fn register_twice_is_idempotent_and_returns_the_same_id() {
    let fake = FakeGithub::start();
    let key = sealkey::keygen::DeployKey::generate(sealkey::keygen::KeyType::Ed25519, "flux@prod")
        .unwrap();
    let reg = || {
        let mut c = sealkey();
        c.env("GITHUB_TOKEN", TOKEN).args([
            "register",
            "--repo",
            "acme/dags",
            "--api-url",
            &fake.url(),
        ]);
        run_cmd(c, Some(&format!("{}\n", key.public_openssh())))
    };
    let first = reg();
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    let second = reg();
    assert_eq!(second.status.code(), Some(0), "{}", text(&second.stderr));
    let a: Value = serde_json::from_slice(&first.stdout).unwrap();
    let b: Value = serde_json::from_slice(&second.stdout).unwrap();
    assert_eq!(a["outcome"], "created");
    assert_eq!(b["outcome"], "already_registered");
    assert_eq!(a["id"], b["id"]);
    assert_eq!(a["fingerprint"], key.fingerprint());
    assert_eq!(fake.keys("acme/dags").len(), 1);
    assert!(text(&second.stderr).contains("already registered"));
}

#[test]
fn key_in_use_on_another_repository_gets_its_own_message() {
    let fake = FakeGithub::start();
    let key = sealkey::keygen::DeployKey::generate(sealkey::keygen::KeyType::Ed25519, "x").unwrap();
    fake.state().elsewhere.push(key.public_key_bare());
    let mut c = sealkey();
    c.env("GITHUB_TOKEN", TOKEN).args([
        "register",
        "--repo",
        "acme/dags",
        "--api-url",
        &fake.url(),
    ]);
    let out = run_cmd(c, Some(key.public_openssh()));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("already in use on another repository"),
        "{stderr}"
    );
    assert!(!stderr.contains("invalid"), "{stderr}");
    let calls: Vec<String> = fake.log().iter().map(|r| r.method.clone()).collect();
    assert_eq!(calls, vec!["POST", "GET"], "a 422 is followed by a listing");
}

#[test]
fn key_github_calls_invalid_gets_its_own_message() {
    let fake = FakeGithub::start();
    let key = sealkey::keygen::DeployKey::generate(sealkey::keygen::KeyType::Ed25519, "x").unwrap();
    fake.state().invalid.push(key.public_key_bare());
    let mut c = sealkey();
    c.env("GITHUB_TOKEN", TOKEN).args([
        "register",
        "--repo",
        "acme/dags",
        "--api-url",
        &fake.url(),
    ]);
    let out = run_cmd(c, Some(key.public_openssh()));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("rejected the key") && stderr.contains("invalid"),
        "{stderr}"
    );
    assert!(!stderr.contains("another repository"), "{stderr}");
}

#[test]
fn primary_rate_limit_is_waited_out_until_reset() {
    let fake = FakeGithub::start();
    fake.add_key(
        "acme/dags",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
        "sealkey a/b/c 2026-11-20",
        true,
        "2026-11-20T00:00:00Z",
        None,
    );
    let reset = jiff::Timestamp::now().as_second() + 1;
    fake.fault(Fault {
        method: "GET",
        path_suffix: "/keys".into(),
        response: Some(
            Response::json(
                403,
                serde_json::json!({"message": "API rate limit exceeded"}),
            )
            .with_header("x-ratelimit-remaining", "0")
            .with_header("x-ratelimit-reset", &reset.to_string()),
        ),
        apply_first: false,
    });
    let mut c = sealkey();
    c.env("GITHUB_TOKEN", TOKEN).args([
        "keys",
        "list",
        "--repo",
        "acme/dags",
        "--api-url",
        &fake.url(),
    ]);
    let started = Instant::now();
    let out = run_cmd(c, None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(stderr.contains("primary rate limit"), "{stderr}");
    assert!(text(&out.stdout).contains("sealkey a/b/c"));
    assert_eq!(fake.log().len(), 2);
}

#[test]
fn secondary_rate_limit_on_post_honours_retry_after_then_posts_again() {
    let fake = FakeGithub::start();
    fake.fault(Fault {
        method: "POST",
        path_suffix: "/keys".into(),
        response: Some(
            Response::json(
                403,
                serde_json::json!({"message": "You have exceeded a secondary rate limit"}),
            )
            .with_header("retry-after", "1"),
        ),
        apply_first: false,
    });
    let started = Instant::now();
    let out = run_cmd(create_register(&fake), None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(started.elapsed() >= Duration::from_secs(1));
    assert!(stderr.contains("secondary rate limit"), "{stderr}");
    let posts = fake.log().iter().filter(|r| r.method == "POST").count();
    assert_eq!(posts, 2);
    assert_eq!(fake.keys("acme/dags").len(), 1);
}

#[test]
fn max_wait_is_honoured_when_the_reset_is_too_far() {
    let fake = FakeGithub::start();
    let reset = jiff::Timestamp::now().as_second() + 600;
    fake.fault(Fault {
        method: "GET",
        path_suffix: "/keys".into(),
        response: Some(
            Response::json(
                429,
                serde_json::json!({"message": "API rate limit exceeded"}),
            )
            .with_header("x-ratelimit-remaining", "0")
            .with_header("x-ratelimit-reset", &reset.to_string()),
        ),
        apply_first: false,
    });
    let mut c = sealkey();
    c.env("GITHUB_TOKEN", TOKEN).args([
        "keys",
        "list",
        "--repo",
        "acme/dags",
        "--max-wait",
        "30s",
        "--api-url",
        &fake.url(),
    ]);
    let started = Instant::now();
    let out = run_cmd(c, None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(stderr.contains("--max-wait 30 s"), "{stderr}");
    assert_eq!(fake.log().len(), 1);
}

#[test]
fn get_is_retried_after_5xx_and_dropped_connections() {
    let fake = FakeGithub::start();
    for response in [
        Some(Response::json(
            502,
            serde_json::json!({"message": "Bad Gateway"}),
        )),
        None,
    ] {
        fake.fault(Fault {
            method: "GET",
            path_suffix: "/keys".into(),
            response,
            apply_first: false,
        });
    }
    let mut c = sealkey();
    c.env("GITHUB_TOKEN", TOKEN).args([
        "keys",
        "list",
        "--repo",
        "acme/dags",
        "-o",
        "json",
        "--api-url",
        &fake.url(),
    ]);
    let out = run_cmd(c, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(fake.log().len(), 3);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(listed, serde_json::json!([]));
}

#[test]
fn persistent_5xx_gives_up_after_bounded_retries_with_exit_3() {
    let fake = FakeGithub::start();
    for _ in 0..10 {
        fake.fault(Fault {
            method: "GET",
            path_suffix: "/keys".into(),
            response: Some(Response::json(
                503,
                serde_json::json!({"message": "Service Unavailable"}),
            )),
            apply_first: false,
        });
    }
    let mut c = sealkey();
    c.env("GITHUB_TOKEN", TOKEN).args([
        "keys",
        "list",
        "--repo",
        "acme/dags",
        "--api-url",
        &fake.url(),
    ]);
    let out = run_cmd(c, None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("503"), "{stderr}");
    assert_eq!(fake.log().len(), 4, "1 try + 3 retries");
}

#[test]
fn post_without_answer_is_not_repeated_when_the_listing_shows_it_landed() {
    let fake = FakeGithub::start();
    fake.fault(Fault {
        method: "POST",
        path_suffix: "/keys".into(),
        response: Some(Response::json(
            502,
            serde_json::json!({"message": "Bad Gateway"}),
        )),
        apply_first: true,
    });
    let out = run_cmd(create_register(&fake), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let calls: Vec<String> = fake.log().iter().map(|r| r.method.clone()).collect();
    assert_eq!(
        calls,
        vec!["GET", "POST", "GET"],
        "meta, the lost POST, then a listing; no second POST"
    );
    assert_eq!(fake.keys("acme/dags").len(), 1);
}

#[test]
fn post_that_failed_is_sent_again_only_after_listing() {
    let fake = FakeGithub::start();
    fake.fault(Fault {
        method: "POST",
        path_suffix: "/keys".into(),
        response: None,
        apply_first: false,
    });
    let out = run_cmd(create_register(&fake), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let calls: Vec<String> = fake.log().iter().map(|r| r.method.clone()).collect();
    assert_eq!(calls, vec!["GET", "POST", "GET", "POST"]);
    assert_eq!(fake.keys("acme/dags").len(), 1);
}

#[test]
fn listing_follows_link_pagination_over_three_pages() {
    let fake = FakeGithub::start();
    fake.state().page_size = 2;
    let mut ids = Vec::new();
    for i in 0..5 {
        let k =
            sealkey::keygen::DeployKey::generate(sealkey::keygen::KeyType::Ed25519, "p").unwrap();
        ids.push(fake.add_key(
            "acme/dags",
            &k.public_key_bare(),
            &format!("sealkey c/n/s{i} 2026-11-20"),
            true,
            "2026-11-20T00:00:00Z",
            None,
        ));
    }
    let mut c = sealkey();
    c.env("GITHUB_TOKEN", TOKEN).args([
        "keys",
        "list",
        "--repo",
        "acme/dags",
        "-o",
        "json",
        "--api-url",
        &fake.url(),
    ]);
    let out = run_cmd(c, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        listed
            .iter()
            .map(|k| k["id"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        ids
    );
    let pages: Vec<String> = fake.log().iter().map(|r| r.query.clone()).collect();
    assert_eq!(pages.len(), 3, "{pages:?}");
    assert!(pages[2].contains("page=3"), "{pages:?}");
    for r in fake.log() {
        assert_eq!(
            r.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
    }
}

#[test]
fn failure_after_registering_deletes_the_key_again() {
    let fake = FakeGithub::start();
    let dir = tempfile::tempdir().unwrap();
    let out_path = dir.path().join("out.sops.yaml");
    let mut c = create_register_then_refused_seal(&fake);
    c.args(["--out", out_path.to_str().unwrap()]);
    let out = run_cmd(c, None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("deleted the new key") && stderr.contains("rollback"),
        "{stderr}"
    );
    assert!(fake.keys("acme/dags").is_empty(), "the key is gone");
    let calls: Vec<String> = fake.log().iter().map(|r| r.method.clone()).collect();
    assert_eq!(calls, vec!["GET", "POST", "DELETE"]);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "nothing written, no temp file left behind"
    );
}

#[test]
fn failed_rollback_exits_3_and_names_the_key_left_behind() {
    let fake = FakeGithub::start();
    // Every DELETE fails, with its retries and the second attempt after listing the keys.
    for _ in 0..12 {
        fake.fault(Fault {
            method: "DELETE",
            path_suffix: "".into(),
            response: Some(Response::json(500, serde_json::json!({"message": "boom"}))),
            apply_first: false,
        });
    }
    let c = create_register_then_refused_seal(&fake);
    let out = run_cmd(c, None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    let id = fake.keys("acme/dags")[0]["id"].clone();
    assert!(
        stderr.contains(&format!("deploy key {id} is still registered")),
        "{stderr}"
    );
}

#[test]
fn missing_out_directory_is_refused_before_any_request() {
    let fake = FakeGithub::start();
    let mut c = create_register(&fake);
    c.args(["--out", "/nonexistent-dir/x.age"]);
    let out = run_cmd(c, None);
    assert_eq!(out.status.code(), Some(2));
    assert!(fake.log().is_empty());
}

#[test]
fn github_enterprise_server_base_url_prefixes_every_request() {
    let fake = FakeGithub::start_with_prefix("/api/v3");
    let out = run_cmd(create_register(&fake), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(fake.keys("acme/dags").len(), 1);
    let log = fake.log();
    assert_eq!(log.len(), 2);
    assert!(
        log.iter().all(|r| r.path.starts_with("/api/v3/")),
        "{log:?}"
    );
    let mut c = sealkey();
    c.env("GITHUB_TOKEN", TOKEN).args([
        "keys",
        "list",
        "--repo",
        "acme/dags",
        "--api-url",
        &format!("{}/", fake.url()),
    ]);
    let out = run_cmd(c, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn github_app_auth_signs_a_jwt_and_uses_the_installation_token() {
    use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey};
    let fake = FakeGithub::start();
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    fake.state().app_public_pem = Some(
        key.to_public_key()
            .to_pkcs1_pem(Default::default())
            .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("app.TEST-ONLY.pem");
    std::fs::write(
        &pem,
        key.to_pkcs1_pem(Default::default()).unwrap().as_bytes(),
    )
    .unwrap();
    // sealkey refuses a private key other users can read, as ssh does.
    std::fs::set_permissions(&pem, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let mut c = sealkey();
    c.args([
        "create",
        "--repo",
        "acme/dags",
        "--register",
        "--seal",
        "age",
        "--seal-to",
        AGE_RECIPIENT,
        "--app-id",
        "12345",
        "--app-key",
        pem.to_str().unwrap(),
        "--api-url",
        &fake.url(),
    ]);
    let out = run_cmd(c, None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let log = fake.log();
    let calls: Vec<String> = log
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        calls,
        vec![
            "GET /meta",
            "GET /repos/acme/dags/installation",
            "POST /app/installations/77/access_tokens",
            "POST /repos/acme/dags/keys"
        ]
    );
    let token_req = &log[2].json();
    assert_eq!(token_req["repositories"], serde_json::json!(["dags"]));
    assert_eq!(token_req["permissions"]["administration"], "write");
    let installation = fake.state().installation_token.clone();
    assert_eq!(
        log[3].header("authorization"),
        Some(format!("Bearer {installation}").as_str())
    );
    assert!(
        log[0].header("authorization").is_none(),
        "/meta goes without the App's credentials"
    );
    assert!(!stderr.contains(&installation) && !text(&out.stdout).contains(&installation));
    assert_eq!(fake.keys("acme/dags").len(), 1);
}

#[test]
fn audit_flags_risky_keys_across_repositories_and_exits_1() {
    let fake = FakeGithub::start();
    fake.add_repo("acme/web");
    let k = |c: &str| {
        sealkey::keygen::DeployKey::generate(sealkey::keygen::KeyType::Ed25519, c)
            .unwrap()
            .public_key_bare()
    };
    let now = jiff::Timestamp::now();
    let recent = (now - jiff::SignedDuration::from_hours(24)).to_string();
    let old = (now - jiff::SignedDuration::from_hours(24 * 200)).to_string();
    fake.add_key(
        "acme/dags",
        &k("a"),
        "sealkey prod/airflow/s 2026-11-25",
        true,
        &recent,
        Some(&recent),
    );
    let rw = fake.add_key(
        "acme/dags",
        &k("b"),
        "sealkey prod/flux/s 2026-11-25",
        false,
        &recent,
        Some(&recent),
    );
    let hand = fake.add_key("acme/web", &k("c"), "laptop of bob", true, &old, None);
    let dir = tempfile::tempdir().unwrap();
    let list = dir.path().join("repos.txt");
    std::fs::write(&list, "# org\nacme/dags\nacme/web  # second\n").unwrap();
    let mut c = sealkey();
    c.env("GITHUB_TOKEN", TOKEN).args([
        "keys",
        "audit",
        "--repos-file",
        list.to_str().unwrap(),
        "--api-url",
        &fake.url(),
    ]);
    let out = run_cmd(c, None);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{}{stdout}", text(&out.stderr));
    assert!(
        stdout.contains(&format!("acme/dags  {rw}")) && stdout.contains("write-access"),
        "{stdout}"
    );
    for rule in ["too-old", "never-used", "not-sealkey"] {
        assert!(
            stdout
                .lines()
                .any(|l| l.contains(&hand.to_string()) && l.contains(rule)),
            "{rule}: {stdout}"
        );
    }
    let summary: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("REPO  "))
        .filter(|l| l.contains("KEYS") || l.starts_with("acme/"))
        .collect();
    assert!(
        summary
            .iter()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["acme/dags", "2", "1", "1"]),
        "{summary:?}"
    );
    assert!(
        summary
            .iter()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["acme/web", "1", "1", "3"]),
        "{summary:?}"
    );

    let mut c = sealkey();
    c.env("GITHUB_TOKEN", TOKEN).args([
        "keys",
        "audit",
        "--repo",
        "acme/dags",
        "-o",
        "json",
        "--api-url",
        &fake.url(),
    ]);
    let out = run_cmd(c, None);
    assert_eq!(out.status.code(), Some(1));
    let doc: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["findings"].as_array().unwrap().len(), 1);
    assert_eq!(doc["findings"][0]["rule"], "write-access");
}

#[test]
fn audit_of_clean_keys_exits_0() {
    let fake = FakeGithub::start();
    let key = sealkey::keygen::DeployKey::generate(sealkey::keygen::KeyType::Ed25519, "a").unwrap();
    let recent = (jiff::Timestamp::now() - jiff::SignedDuration::from_hours(2)).to_string();
    fake.add_key(
        "acme/dags",
        &key.public_key_bare(),
        "sealkey prod/airflow/s 2026-11-25",
        true,
        &recent,
        None,
    );
    let mut c = sealkey();
    c.env("GITHUB_TOKEN", TOKEN).args([
        "keys",
        "audit",
        "--repo",
        "acme/dags",
        "--api-url",
        &fake.url(),
    ]);
    let out = run_cmd(c, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
}

#[test]
fn prune_deletes_all_but_kept_keys_and_dry_run_deletes_nothing() {
    let fake = FakeGithub::start();
    let keep =
        sealkey::keygen::DeployKey::generate(sealkey::keygen::KeyType::Ed25519, "keep").unwrap();
    let drop =
        sealkey::keygen::DeployKey::generate(sealkey::keygen::KeyType::Ed25519, "drop").unwrap();
    let keep_id = fake.add_key(
        "acme/dags",
        &keep.public_key_bare(),
        "sealkey a/b/c 2026-11-25",
        true,
        "2026-11-25T00:00:00Z",
        None,
    );
    let drop_id = fake.add_key(
        "acme/dags",
        &drop.public_key_bare(),
        "sealkey a/b/c 2026-01-01",
        true,
        "2026-01-01T00:00:00Z",
        None,
    );
    let prune = |extra: &[&str]| {
        let mut c = sealkey();
        c.env("GITHUB_TOKEN", TOKEN)
            .args([
                "keys",
                "prune",
                "--repo",
                "acme/dags",
                "--api-url",
                &fake.url(),
            ])
            .args(extra);
        run_cmd(c, None)
    };
    let out = prune(&["--keep", keep.fingerprint(), "--dry-run"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains(&format!("would delete  acme/dags  {drop_id}")),
        "{}",
        text(&out.stdout)
    );
    assert_eq!(fake.keys("acme/dags").len(), 2);

    let unknown =
        sealkey::keygen::DeployKey::generate(sealkey::keygen::KeyType::Ed25519, "u").unwrap();
    let out = prune(&["--keep", unknown.fingerprint()]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "a typo in --keep deletes nothing"
    );
    assert_eq!(fake.keys("acme/dags").len(), 2);

    let out = prune(&["--keep", keep.fingerprint()]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let left: Vec<u64> = fake
        .keys("acme/dags")
        .iter()
        .map(|k| k["id"].as_u64().unwrap())
        .collect();
    assert_eq!(left, vec![keep_id]);
}

#[test]
fn known_hosts_prints_meta_lines_and_warns_when_they_differ_from_pinned() {
    let fake = FakeGithub::start();
    let run_kh = |fake: &FakeGithub| {
        let mut c = sealkey();
        c.args([
            "known-hosts",
            "--host",
            "github.com",
            "--api-url",
            &fake.url(),
        ]);
        run_cmd(c, None)
    };
    let out = run_kh(&fake);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        sealkey::known_hosts::KnownHosts::github_pinned().to_text()
    );
    assert!(!text(&out.stderr).contains("differ"));
    let rotated =
        sealkey::keygen::DeployKey::generate(sealkey::keygen::KeyType::Ed25519, "").unwrap();
    fake.state().meta_keys[0] = rotated.public_key_bare();
    let out = run_kh(&fake);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("differ from the github.com keys pinned"),
        "{stderr}"
    );
    assert!(stderr.contains(rotated.fingerprint()), "{stderr}");
    assert!(text(&out.stdout).contains(&format!("github.com {}", rotated.public_key_bare())));
}

#[test]
fn bad_input_exits_2_with_a_message_naming_it() {
    let fake = FakeGithub::start();
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec!["keys", "list", "--repo", "https://github.com/acme/dags"],
            "--repo",
        ),
        (
            vec![
                "keys",
                "list",
                "--repo",
                "acme/dags",
                "--api-url",
                "http://api.example.com",
            ],
            "--api-url",
        ),
        (
            vec!["register", "--repo", "acme", "--key-file", "/dev/null"],
            "OWNER/REPO",
        ),
        (
            vec![
                "keys",
                "list",
                "--repo",
                "acme/dags",
                "--app-id",
                "1",
                "--app-key",
                "/nonexistent/app.pem",
            ],
            "--app-key",
        ),
    ];
    for (args, needle) in cases {
        let mut c = sealkey();
        c.env("GITHUB_TOKEN", TOKEN).args(&args);
        let out = run_cmd(c, None);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
    // No token anywhere and stdin is not a terminal.
    let mut c = sealkey();
    c.args([
        "keys",
        "list",
        "--repo",
        "acme/dags",
        "--api-url",
        &fake.url(),
    ]);
    let out = run_cmd(c, None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("GITHUB_TOKEN") && stderr.contains("--token-stdin"),
        "{stderr}"
    );
    // A private key is never sent to GitHub.
    let key = sealkey::keygen::DeployKey::generate(sealkey::keygen::KeyType::Ed25519, "x").unwrap();
    let mut c = sealkey();
    c.env("GITHUB_TOKEN", TOKEN).args([
        "register",
        "--repo",
        "acme/dags",
        "--api-url",
        &fake.url(),
    ]);
    let out = run_cmd(c, Some(key.private_pem().unwrap().expose_secret()));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("private key"));
    assert!(fake.log().is_empty(), "no request for bad input");
}

#[test]
fn github_errors_exit_3_with_what_to_do() {
    let fake = FakeGithub::start();
    let cases = [
        (
            "ghp_wrong",
            "acme/dags",
            "401",
            "invalid, expired or revoked",
        ),
        (TOKEN, "acme/missing", "404", "no such repository"),
    ];
    for (token, repo, code, needle) in cases {
        let mut c = sealkey();
        c.env("GITHUB_TOKEN", token).args([
            "keys",
            "list",
            "--repo",
            repo,
            "--api-url",
            &fake.url(),
        ]);
        let out = run_cmd(c, None);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{stderr}");
        assert!(stderr.contains(code) && stderr.contains(needle), "{stderr}");
    }
    fake.fault(Fault {
        method: "GET",
        path_suffix: "/keys".into(),
        response: Some(Response::json(
            403,
            serde_json::json!({"message": "Resource not accessible by personal access token"}),
        )),
        apply_first: false,
    });
    let mut c = sealkey();
    c.env("GITHUB_TOKEN", TOKEN).args([
        "keys",
        "list",
        "--repo",
        "acme/dags",
        "--api-url",
        &fake.url(),
    ]);
    let out = run_cmd(c, None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("Administration: read and write"),
        "{stderr}"
    );
}

#[test]
fn token_never_appears_in_output_or_errors() {
    let fake = FakeGithub::start();
    let mut outputs = Vec::new();
    outputs.push(run_cmd(create_register(&fake), None));
    let mut c = create_register(&fake);
    c.args([
        "--out",
        tempfile::tempdir().unwrap().path().to_str().unwrap(),
        "-v",
    ]);
    outputs.push(run_cmd(c, None));
    for args in [
        vec!["keys", "list", "--repo", "acme/dags", "-v"],
        vec!["keys", "audit", "--repo", "acme/dags", "-o", "json"],
        vec!["keys", "list", "--repo", "acme/missing"],
    ] {
        let mut c = sealkey();
        c.env("GITHUB_TOKEN", TOKEN)
            .args(&args)
            .args(["--api-url", &fake.url()]);
        outputs.push(run_cmd(c, None));
    }
    // Via --token-stdin, and a refused token (its error chain printed in full).
    let mut c = sealkey();
    c.args([
        "keys",
        "list",
        "--repo",
        "acme/dags",
        "--token-stdin",
        "--api-url",
        &fake.url(),
    ]);
    outputs.push(run_cmd(c, Some(&format!("{TOKEN}\n"))));
    assert_eq!(outputs.last().unwrap().status.code(), Some(0));
    fake.state().token = "something-else".into();
    let mut c = sealkey();
    c.env("GH_TOKEN", TOKEN).args([
        "keys",
        "list",
        "--repo",
        "acme/dags",
        "--api-url",
        &fake.url(),
    ]);
    let refused = run_cmd(c, None);
    assert_eq!(refused.status.code(), Some(3));
    outputs.push(refused);
    for out in &outputs {
        for stream in [&out.stdout, &out.stderr] {
            let s = text(stream);
            assert!(!s.contains("CANARY"), "token leaked: {s}");
        }
    }
    let sent = fake
        .log()
        .iter()
        .filter(|r| r.header("authorization") == Some(format!("Bearer {TOKEN}").as_str()))
        .count();
    assert!(
        sent >= 6,
        "the canary token was really used ({sent} requests)"
    );
}

#[test]
fn closed_stdout_after_registering_rolls_back_and_does_not_exit_0() {
    // Regression: a broken pipe normally exits 0 quietly; after a rollback that hid the failure.
    let fake = FakeGithub::start();
    let mut c = sealkey();
    c.env("GITHUB_TOKEN", TOKEN)
        .args([
            "create",
            "--repo",
            "acme/dags",
            "--register",
            "--seal",
            "none",
            "--api-url",
            &fake.url(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("closed the pipe") && stderr.contains("rollback"),
        "{stderr}"
    );
    assert!(fake.keys("acme/dags").is_empty());
}

// Regression: key titles (anyone with admin on a repository sets them) reached the terminal raw
// in `keys list`/`keys audit` tables: an OSC sequence could retitle the terminal or hide rows.
#[test]
fn deploy_key_titles_with_terminal_escapes_are_shown_escaped_in_tables() {
    let fake = FakeGithub::start();
    let key = sealkey::keygen::DeployKey::generate(sealkey::keygen::KeyType::Ed25519, "t").unwrap();
    fake.add_key(
        "acme/dags",
        key.public_openssh(),
        "evil\u{1b}]0;pwned\u{7}\u{1b}[2J\u{202e}title",
        true,
        "2026-01-01T00:00:00Z",
        None,
    );
    for sub in ["list", "audit"] {
        let mut c = sealkey();
        c.env("GITHUB_TOKEN", TOKEN).args([
            "keys",
            sub,
            "--repo",
            "acme/dags",
            "--api-url",
            &fake.url(),
        ]);
        let out = run_cmd(c, None);
        let all = [out.stdout.as_slice(), out.stderr.as_slice()].concat();
        let all = String::from_utf8_lossy(&all);
        assert!(all.contains("evil"), "{sub}: {all}");
        assert!(
            !all.contains('\u{1b}') && !all.contains('\u{7}') && !all.contains('\u{202e}'),
            "{sub}: {all:?}"
        );
    }
}

// Was: no signal handling. SIGTERM while `create --register` waited for GitHub's answer left the
// key registered and its private half gone (nothing sealed, nothing written).
#[test]
fn a_signal_while_create_registers_deletes_the_registered_key_and_writes_nothing() {
    let fake = FakeGithub::start();
    // GitHub stores the key at once and answers 8 s later: the signal lands in between.
    fake.state().stall_registrations_ms = 8_000;
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("dags.age");
    let mut c = sealkey();
    c.env("GITHUB_TOKEN", TOKEN)
        .args([
            "create",
            "--repo",
            "acme/dags",
            "--register",
            "--seal",
            "age",
            "--seal-to",
            AGE_RECIPIENT,
            "--out",
            out_file.to_str().unwrap(),
            "--api-url",
            &fake.url(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    let began = Instant::now();
    while fake.keys("acme/dags").is_empty() {
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "the key was never registered"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let killed = std::process::Command::new("kill")
        .args(["-s", "TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let waited = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(40),
            "sealkey did not exit within 40 s of the signal"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    use std::io::Read as _;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert_eq!(status.code(), Some(143), "{stderr}");
    assert!(
        stderr.contains("stopped by SIGTERM") && stderr.contains("deleted the new key"),
        "{stderr}"
    );
    assert!(!stderr.contains("PRIVATE KEY") && !stderr.contains(TOKEN));
    assert!(
        fake.keys("acme/dags").is_empty(),
        "a key was left registered"
    );
    assert!(!out_file.exists(), "a file was written");
}
