//! sealkey's Kubernetes client against a hostile API server (kmock behind the fault proxy, on
//! 127.0.0.1): server text reaches stderr stripped of terminal controls and of credentials (the
//! kubeconfig's token included) for `audit --cluster`, `rotate` and `create --apply`; endless
//! answers are cut at the cap in bounded time and memory; a continue token that loops and a 429
//! storm end with exit 3 in bounded time, and every retry wait is told.

mod support;

use serde_json::json;
use std::process::Command;
use std::time::Duration;
use support::fake_github::{FakeGithub, TOKEN};
use support::fault_proxy::{FaultProxy, ProxyFault, Rule};
use support::kmock::Kmock;
use support::text;
use support::watchdog::{run_watched, Watched};

/// The token `Kmock::kubeconfig_for` writes into the kubeconfig's user.
const KUBE_TOKEN: &str = "test-token-not-secret";

/// A Secret with a key (`rotate` reads it first) and an empty Deployment list.
fn cluster() -> Kmock {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = support::ssh_keypair(dir.path(), "ed25519", "live.TEST-ONLY");
    use base64::Engine as _;
    let pem = base64::engine::general_purpose::STANDARD.encode(std::fs::read(key).unwrap());
    Kmock::start(&[json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "git-creds", "namespace": "dev"},
        "type": "Opaque", "data": {"gitSshKey": pem},
    })])
}

/// `audit --cluster` through `proxy`.
fn audit(kmock: &Kmock, proxy: &FaultProxy) -> Command {
    let kc = kmock.kubeconfig_for(&proxy.url(), "dev");
    let mut c = support::sealkey();
    c.args(["audit", "--cluster", "--format", "json", "--kubeconfig"])
        .arg(kc);
    c
}

/// `rotate --apply` of dev/git-creds through `proxy`, GitHub faked.
fn rotate(kmock: &Kmock, proxy: &FaultProxy, github: &FakeGithub) -> Command {
    let kc = kmock.kubeconfig_for(&proxy.url(), "dev");
    let mut c = support::sealkey();
    c.args([
        "rotate",
        "--repo",
        "acme/dags",
        "-n",
        "dev",
        "--secret-name",
        "git-creds",
        "--apply",
        "--api-url",
        &github.url(),
        "--kubeconfig",
    ])
    .arg(kc)
    .env("GITHUB_TOKEN", TOKEN);
    c
}

/// `create --apply` of dev/new-creds through `proxy` (no registration).
fn create(kmock: &Kmock, proxy: &FaultProxy) -> Command {
    let kc = kmock.kubeconfig_for(&proxy.url(), "dev");
    let mut c = support::sealkey();
    c.args([
        "create",
        "--repo",
        "acme/dags",
        "--namespace",
        "dev",
        "--secret-name",
        "new-creds",
        "--for",
        "git-sync",
        "--apply",
        "--kubeconfig",
    ])
    .arg(kc);
    c
}

fn watched(c: Command, secs: u64) -> Watched {
    run_watched(c, b"", Duration::from_secs(secs), 512 * 1024)
}

/// Server text holding everything that must not reach a terminal raw: ESC sequences (CSI,
/// OSC 0, an OSC 8 hyperlink), C1, bidi override, line separator, DEL, a `Bearer` credential,
/// a GitHub token shape, and the kubeconfig's own token as plain text.
fn hostile_message() -> String {
    format!(
        "secrets is forbidden\u{1b}]0;pwned\u{7}\u{1b}[2J \u{1b}]8;;https://evil.example/\u{1b}\\click\u{1b}]8;;\u{1b}\\ \
         \u{9b}31m \u{202e}reversed\u{2028}next line\u{7f} Authorization: Bearer ghp_FAKEfakeFAKEfake0123456789abcdefABCD \
         user token {KUBE_TOKEN} ghs_16C7e42F292c6912E7710c838347Ae178B4a"
    )
}

fn assert_clean(what: &str, stderr: &str) {
    for c in stderr.chars() {
        assert!(
            c == '\n'
                || !(c.is_control()
                    || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')),
            "{what}: {c:?} reached stderr: {stderr:?}"
        );
    }
    for leaked in [KUBE_TOKEN, "ghp_FAKE", "ghs_16C7"] {
        assert!(
            !stderr.contains(leaked),
            "{what}: {leaked} reached stderr: {stderr}"
        );
    }
}

#[test]
fn kubernetes_error_text_is_stripped_and_redacted_for_audit_rotate_and_create() {
    // Before: `audit --cluster` printed the Status message raw (escapes, bidi, tokens), and
    // create/rotate, which stripped controls, still showed the kubeconfig's token as plain text.
    let kmock = cluster();
    let github = FakeGithub::start();
    let proxy = FaultProxy::start(kmock.port);
    proxy.arm_every(Rule {
        method: "GET",
        path: "/".into(),
        fault: ProxyFault::StatusSaying(403, Box::leak(hostile_message().into_boxed_str())),
    });
    for (what, cmd) in [
        ("audit --cluster", audit(&kmock, &proxy)),
        ("rotate --apply", rotate(&kmock, &proxy, &github)),
        ("create --apply", create(&kmock, &proxy)),
    ] {
        let w = watched(cmd, 60);
        let stderr = text(&w.out.stderr);
        assert_eq!(w.killed, None, "{what}: {stderr}");
        assert_eq!(w.out.status.code(), Some(3), "{what}: {stderr}");
        assert!(
            stderr.contains("secrets is forbidden") && stderr.contains("403"),
            "{what}: the server's words are still shown: {stderr}"
        );
        assert_clean(what, &stderr);
    }
    assert!(proxy.fired_count() >= 3);
}

#[test]
fn endless_kubernetes_answers_are_cut_at_the_cap_in_bounded_time_and_memory() {
    // Before: an endless list body took `audit --cluster` to 9 GB in 30 s, and an endless GET
    // took `rotate --apply` to gigabytes and hung.
    let kmock = cluster();
    let github = FakeGithub::start();
    let proxy = FaultProxy::start(kmock.port);
    proxy.arm_every(Rule {
        method: "GET",
        path: "/".into(),
        fault: ProxyFault::EndlessBody,
    });
    let server = format!("127.0.0.1:{}", proxy.port);
    for (what, cmd, cap) in [
        ("audit --cluster", audit(&kmock, &proxy), "16777216"),
        ("rotate --apply", rotate(&kmock, &proxy, &github), "4194304"),
    ] {
        let w = watched(cmd, 30);
        let stderr = text(&w.out.stderr);
        assert_eq!(w.killed, None, "{what}: {stderr}");
        assert_eq!(w.out.status.code(), Some(3), "{what}: {stderr}");
        assert!(
            stderr.contains(&format!("larger than {cap} bytes")) && stderr.contains(&server),
            "{what}: the cap and the server are named: {stderr}"
        );
        assert!(
            w.elapsed < Duration::from_secs(20),
            "{what}: {:?}",
            w.elapsed
        );
        assert!(
            w.peak_rss_kib < 200 * 1024,
            "{what}: {} KiB",
            w.peak_rss_kib
        );
    }
    // Nothing changed on GitHub: rotate stopped before registering.
    assert!(github.keys("acme/dags").is_empty());
}

#[test]
fn a_continue_token_that_comes_back_ends_audit_cluster_at_once_with_exit_3() {
    // Before: the same token was followed forever (the watchdog killed the run).
    let kmock = cluster();
    let proxy = FaultProxy::start(kmock.port);
    proxy.arm_every(Rule {
        method: "GET",
        path: "/".into(),
        fault: ProxyFault::LoopingContinue,
    });
    let w = watched(audit(&kmock, &proxy), 30);
    let stderr = text(&w.out.stderr);
    assert_eq!(w.killed, None, "{stderr}");
    assert_eq!(w.out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("continue token it had given before"),
        "{stderr}"
    );
    assert!(proxy.fired_count() <= 3, "{} pages", proxy.fired_count());
}

#[test]
fn a_429_storm_is_retried_a_bounded_number_of_times_and_every_wait_is_told() {
    // Before: kube's default retry policy followed Retry-After and backed off up to 1,000 s a
    // try, 15 times, saying nothing; the run was killed by the watchdog.
    let kmock = cluster();
    let proxy = FaultProxy::start(kmock.port);
    proxy.arm_every(Rule {
        method: "GET",
        path: "/".into(),
        fault: ProxyFault::TooManyRequests,
    });
    let w = watched(audit(&kmock, &proxy), 40);
    let stderr = text(&w.out.stderr);
    assert_eq!(w.killed, None, "{stderr}");
    assert_eq!(w.out.status.code(), Some(3), "{stderr}");
    for n in 1..=4 {
        assert!(
            stderr.contains(&format!(
                "the API server answered 429 Too Many Requests; retry {n} of at most 4"
            )),
            "retry {n} is told: {stderr}"
        );
    }
    assert!(stderr.contains("429"), "{stderr}");
    assert_eq!(proxy.fired_count(), 5, "one request and four retries");
    assert!(w.elapsed < Duration::from_secs(25), "{:?}", w.elapsed);
}

#[test]
fn a_token_from_a_kubeconfig_exec_plugin_is_redacted_from_server_text() {
    // Before: only the kubeconfig's literal credentials were known; a token an exec plugin
    // (aws eks get-token, gke-gcloud-auth-plugin, kubelogin) printed was shown when the server
    // reflected it without a `Bearer ` in front.
    const EXEC_TOKEN: &str = "exec-plugin-token-canary-7f3a";
    let kmock = cluster();
    let proxy = FaultProxy::start(kmock.port);
    let message = format!("user with token {EXEC_TOKEN} cannot list pods");
    proxy.arm_every(Rule {
        method: "GET",
        path: "/".into(),
        fault: ProxyFault::StatusSaying(403, Box::leak(message.into_boxed_str())),
    });
    let plugin = kmock.dir.path().join("exec-credential.sh");
    std::fs::write(
        &plugin,
        format!(
            "#!/bin/sh\nprintf '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{EXEC_TOKEN}\"}}}}'\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o700)).unwrap();
    let kubeconfig = kmock.dir.path().join("kubeconfig-exec");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster:\n    server: {}\n\
             users:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {}\n      interactiveMode: Never\n\
             contexts:\n- name: k\n  context:\n    cluster: k\n    user: u\n    namespace: dev\ncurrent-context: k\n",
            proxy.url(),
            plugin.display()
        ),
    )
    .unwrap();
    let mut c = support::sealkey();
    c.args(["audit", "--cluster", "--format", "json", "--kubeconfig"])
        .arg(&kubeconfig);
    let w = watched(c, 30);
    let stderr = text(&w.out.stderr);
    assert_eq!(w.out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("cannot list pods"), "{stderr}");
    assert!(!stderr.contains(EXEC_TOKEN), "{stderr}");
    assert!(stderr.contains("[redacted]"), "{stderr}");
}

/// The key in the Secret bodies a [`ProxyFault::StatusEchoingBody`] answered: each `data`
/// value as a slice of its base64 and, decoded, as a PEM body line.
fn needles_in(bodies: &[Vec<u8>]) -> Vec<String> {
    use base64::Engine as _;
    let mut needles = Vec::new();
    for body in bodies {
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        for value in v["data"].as_object().into_iter().flatten().map(|(_, v)| v) {
            let b64 = value.as_str().unwrap();
            needles.push(b64[40..100].to_string());
            let pem = base64::engine::general_purpose::STANDARD
                .decode(b64)
                .unwrap();
            let pem = String::from_utf8(pem).unwrap();
            needles.extend(pem.lines().nth(2).map(str::to_string));
        }
    }
    needles
}

#[test]
fn a_status_echoing_the_secret_written_shows_no_key_for_rotate_and_create_apply() {
    // The Kubernetes echo cell of issue 20's no-leak matrix: the API server refuses the Secret
    // write with a Status whose message quotes the object sent (each data value as base64 and
    // decoded, then the whole body). Neither the new key nor the old one reaches stdout or
    // stderr; the server's words still do, with the key redacted.
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let (old, old_public) = support::ssh_keypair(dir.path(), "ed25519", "live.TEST-ONLY");
    let old_pem = std::fs::read(old).unwrap();
    let kmock = Kmock::start(&[json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "git-creds", "namespace": "dev"},
        "type": "Opaque",
        "data": {"gitSshKey": base64::engine::general_purpose::STANDARD.encode(&old_pem)},
    })]);
    let github = FakeGithub::start();
    github.add_key(
        "acme/dags",
        &support::bare(&old_public),
        "sealkey kmock/dev/git-creds",
        true,
        "2026-01-01T00:00:00Z",
        None,
    );
    let proxy = FaultProxy::start(kmock.port);
    for (what, cmd, decoded_first) in [
        ("rotate --apply", rotate(&kmock, &proxy, &github), false),
        ("rotate --apply", rotate(&kmock, &proxy, &github), true),
        ("create --apply", create(&kmock, &proxy), false),
        ("create --apply", create(&kmock, &proxy), true),
    ] {
        proxy.arm_every(Rule {
            method: "PATCH",
            path: "/secrets/".into(),
            fault: ProxyFault::StatusEchoingBody(422, decoded_first),
        });
        let before = proxy.echoed().len();
        let w = watched(cmd, 60);
        let stderr = text(&w.out.stderr);
        let stdout = text(&w.out.stdout);
        assert_eq!(w.killed, None, "{what}: {stderr}");
        assert_eq!(w.out.status.code(), Some(3), "{what}: {stderr}");
        let echoed = proxy.echoed()[before..].to_vec();
        assert!(!echoed.is_empty(), "{what}: the Secret write was answered");
        assert!(
            stderr.contains("Invalid value") && stderr.contains("[redacted]"),
            "{what}: the server's words are shown, the key redacted: {stderr}"
        );
        let old_line = String::from_utf8_lossy(&old_pem)
            .lines()
            .nth(2)
            .unwrap()
            .to_string();
        for needle in needles_in(&echoed).iter().chain([&old_line]) {
            assert!(
                !stderr.contains(needle.as_str()),
                "{what}: stderr holds a key: {stderr}"
            );
            assert!(
                !stdout.contains(needle.as_str()),
                "{what}: stdout holds a key"
            );
        }
        assert_clean(what, &stderr);
    }
    let left: Vec<String> = github
        .keys("acme/dags")
        .iter()
        .map(|k| k["key"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        left,
        vec![support::bare(&old_public)],
        "the failed write withdrew rotate's new key"
    );
}
