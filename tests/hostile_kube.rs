//! sealkey's Kubernetes client against a hostile API server (the fault proxy on 127.0.0.1 in front
//! of the real kube-apiserver, reached through `kubectl proxy`; one control plane for this test
//! binary, a namespace per test): server text reaches stderr stripped of terminal controls and of credentials (the
//! kubeconfig's token included) for `audit --cluster`, `rotate` and `create --apply`; endless
//! answers are cut at the cap in bounded time and memory; a continue token that loops and a 429
//! storm end with exit 3 in bounded time, and every retry wait is told.

mod support;

use serde_json::json;
use std::process::Command;
use std::time::Duration;
use support::fake_github::{FakeGithub, TOKEN};
use support::fault_proxy::{FaultProxy, ProxyFault, Rule};
use support::real_cluster::{KubectlProxy, RealCluster};
use support::text;
use support::watchdog::{run_watched, Watched};

/// A namespace of the real server with Secret git-creds, and the fault proxy in front of it.
struct Kube {
    cluster: &'static RealCluster,
    ns: String,
    proxy: FaultProxy,
    _plain: KubectlProxy,
    dir: tempfile::TempDir,
}

impl Kube {
    /// The kubeconfig sealkey uses: through the fault proxy, as the admin, in this namespace.
    fn kubeconfig(&self) -> std::path::PathBuf {
        self.cluster.kubeconfig_via(&self.proxy.url(), &self.ns)
    }

    /// The kubeconfig's token (the admin's), which must never be shown.
    fn token(&self) -> String {
        self.cluster.admin_token()
    }
}

/// A Secret `git-creds` holding `pem` (`rotate` reads it first), no workloads.
fn cluster_with(pem: &[u8]) -> Kube {
    use base64::Engine as _;
    let cluster = RealCluster::shared();
    let ns = cluster.namespace("hostile");
    cluster.create(
        &ns,
        &[json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "git-creds"},
            "type": "Opaque",
            "data": {"gitSshKey": base64::engine::general_purpose::STANDARD.encode(pem)},
        })],
    );
    let plain = cluster.plain_http();
    let proxy = FaultProxy::start(plain.port);
    Kube {
        cluster,
        ns,
        proxy,
        _plain: plain,
        dir: tempfile::tempdir().unwrap(),
    }
}

/// A Secret with a key (`rotate` reads it first) and no workloads.
fn cluster() -> Kube {
    let dir = tempfile::tempdir().unwrap();
    let (key, _) = support::ssh_keypair(dir.path(), "ed25519", "live.TEST-ONLY");
    cluster_with(&std::fs::read(key).unwrap())
}

/// `audit --cluster` through the fault proxy.
fn audit(k: &Kube) -> Command {
    let kc = k.kubeconfig();
    let mut c = support::sealkey();
    c.args(["audit", "--cluster", "--format", "json", "--kubeconfig"])
        .arg(kc);
    c
}

/// `rotate --apply` of NS/git-creds through the fault proxy, GitHub faked.
fn rotate(k: &Kube, github: &FakeGithub) -> Command {
    let kc = k.kubeconfig();
    let mut c = support::sealkey();
    c.args([
        "rotate",
        "--repo",
        "acme/dags",
        "-n",
        &k.ns,
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

/// `create --apply` of NS/new-creds through the fault proxy (no registration).
fn create(k: &Kube) -> Command {
    let kc = k.kubeconfig();
    let mut c = support::sealkey();
    c.args([
        "create",
        "--repo",
        "acme/dags",
        "--namespace",
        &k.ns,
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
fn hostile_message(kube_token: &str) -> String {
    format!(
        "secrets is forbidden\u{1b}]0;pwned\u{7}\u{1b}[2J \u{1b}]8;;https://evil.example/\u{1b}\\click\u{1b}]8;;\u{1b}\\ \
         \u{9b}31m \u{202e}reversed\u{2028}next line\u{7f} Authorization: Bearer ghp_FAKEfakeFAKEfake0123456789abcdefABCD \
         user token {kube_token} ghs_16C7e42F292c6912E7710c838347Ae178B4a"
    )
}

fn assert_clean(what: &str, stderr: &str, kube_token: &str) {
    for c in stderr.chars() {
        assert!(
            c == '\n'
                || !(c.is_control()
                    || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')),
            "{what}: {c:?} reached stderr: {stderr:?}"
        );
    }
    for leaked in [kube_token, "ghp_FAKE", "ghs_16C7"] {
        assert!(
            !stderr.contains(leaked),
            "{what}: {leaked} reached stderr: {stderr}"
        );
    }
}

#[test]
#[ignore = "needs the judges (scripts/install-test-deps)"]
fn kubernetes_error_text_is_stripped_and_redacted_for_audit_rotate_and_create() {
    // Before: `audit --cluster` printed the Status message raw (escapes, bidi, tokens), and
    // create/rotate, which stripped controls, still showed the kubeconfig's token as plain text.
    let k = cluster();
    let github = FakeGithub::start();
    let token = k.token();
    k.proxy.arm_every(Rule {
        method: "GET",
        path: "/".into(),
        fault: ProxyFault::StatusSaying(403, Box::leak(hostile_message(&token).into_boxed_str())),
    });
    for (what, cmd) in [
        ("audit --cluster", audit(&k)),
        ("rotate --apply", rotate(&k, &github)),
        ("create --apply", create(&k)),
    ] {
        let w = watched(cmd, 60);
        let stderr = text(&w.out.stderr);
        assert_eq!(w.killed, None, "{what}: {stderr}");
        assert_eq!(w.out.status.code(), Some(3), "{what}: {stderr}");
        assert!(
            stderr.contains("secrets is forbidden") && stderr.contains("403"),
            "{what}: the server's words are still shown: {stderr}"
        );
        assert_clean(what, &stderr, &token);
    }
    assert!(k.proxy.fired_count() >= 3);
}

#[test]
#[ignore = "needs the judges (scripts/install-test-deps)"]
fn endless_kubernetes_answers_are_cut_at_the_cap_in_bounded_time_and_memory() {
    // Before: an endless list body took `audit --cluster` to 9 GB in 30 s, and an endless GET
    // took `rotate --apply` to gigabytes and hung.
    let k = cluster();
    let github = FakeGithub::start();
    k.proxy.arm_every(Rule {
        method: "GET",
        path: "/".into(),
        fault: ProxyFault::EndlessBody,
    });
    let server = format!("127.0.0.1:{}", k.proxy.port);
    for (what, cmd, cap) in [
        ("audit --cluster", audit(&k), "16777216"),
        ("rotate --apply", rotate(&k, &github), "4194304"),
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
#[ignore = "needs the judges (scripts/install-test-deps)"]
fn a_continue_token_that_comes_back_ends_audit_cluster_at_once_with_exit_3() {
    // Before: the same token was followed forever (the watchdog killed the run).
    let k = cluster();
    k.proxy.arm_every(Rule {
        method: "GET",
        path: "/".into(),
        fault: ProxyFault::LoopingContinue,
    });
    let w = watched(audit(&k), 30);
    let stderr = text(&w.out.stderr);
    assert_eq!(w.killed, None, "{stderr}");
    assert_eq!(w.out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("continue token it had given before"),
        "{stderr}"
    );
    assert!(
        k.proxy.fired_count() <= 3,
        "{} pages",
        k.proxy.fired_count()
    );
}

#[test]
#[ignore = "needs the judges (scripts/install-test-deps)"]
fn a_429_storm_is_retried_a_bounded_number_of_times_and_every_wait_is_told() {
    // Before: kube's default retry policy followed Retry-After and backed off up to 1,000 s a
    // try, 15 times, saying nothing; the run was killed by the watchdog.
    let k = cluster();
    k.proxy.arm_every(Rule {
        method: "GET",
        path: "/".into(),
        fault: ProxyFault::TooManyRequests,
    });
    let w = watched(audit(&k), 40);
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
    assert_eq!(k.proxy.fired_count(), 5, "one request and four retries");
    assert!(w.elapsed < Duration::from_secs(25), "{:?}", w.elapsed);
}

#[test]
#[ignore = "needs the judges (scripts/install-test-deps)"]
fn a_token_from_a_kubeconfig_exec_plugin_is_redacted_from_server_text() {
    // Before: only the kubeconfig's literal credentials were known; a token an exec plugin
    // (aws eks get-token, gke-gcloud-auth-plugin, kubelogin) printed was shown when the server
    // reflected it without a `Bearer ` in front.
    const EXEC_TOKEN: &str = "exec-plugin-token-canary-7f3a";
    let k = cluster();
    let message = format!("user with token {EXEC_TOKEN} cannot list pods");
    k.proxy.arm_every(Rule {
        method: "GET",
        path: "/".into(),
        fault: ProxyFault::StatusSaying(403, Box::leak(message.into_boxed_str())),
    });
    let plugin = k.dir.path().join("exec-credential.sh");
    std::fs::write(
        &plugin,
        format!(
            "#!/bin/sh\nprintf '{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{EXEC_TOKEN}\"}}}}'\n"
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o700)).unwrap();
    let kubeconfig = k.dir.path().join("kubeconfig-exec");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: k\n  cluster:\n    server: {}\n\
             users:\n- name: u\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {}\n      interactiveMode: Never\n\
             contexts:\n- name: k\n  context:\n    cluster: k\n    user: u\n    namespace: {}\ncurrent-context: k\n",
            k.proxy.url(),
            plugin.display(),
            k.ns
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
#[ignore = "needs the judges (scripts/install-test-deps)"]
fn a_status_echoing_the_secret_written_shows_no_key_for_rotate_and_create_apply() {
    // The Kubernetes echo cell of the no-leak matrix: the API server refuses the Secret
    // write with a Status whose message quotes the object sent (each data value as base64 and
    // decoded, then the whole body). Neither the new key nor the old one reaches stdout or
    // stderr; the server's words still do, with the key redacted.
    let dir = tempfile::tempdir().unwrap();
    let (old, old_public) = support::ssh_keypair(dir.path(), "ed25519", "live.TEST-ONLY");
    let old_pem = std::fs::read(old).unwrap();
    let k = cluster_with(&old_pem);
    let github = FakeGithub::start();
    github.add_key(
        "acme/dags",
        &support::bare(&old_public),
        &format!("sealkey dev/{}/git-creds", k.ns),
        true,
        "2026-01-01T00:00:00Z",
        None,
    );
    let token = k.token();
    for (what, cmd, decoded_first) in [
        ("rotate --apply", rotate(&k, &github), false),
        ("rotate --apply", rotate(&k, &github), true),
        ("create --apply", create(&k), false),
        ("create --apply", create(&k), true),
    ] {
        k.proxy.arm_every(Rule {
            method: "PATCH",
            path: "/secrets/".into(),
            fault: ProxyFault::StatusEchoingBody(422, decoded_first),
        });
        let before = k.proxy.echoed().len();
        let w = watched(cmd, 60);
        let stderr = text(&w.out.stderr);
        let stdout = text(&w.out.stdout);
        assert_eq!(w.killed, None, "{what}: {stderr}");
        assert_eq!(w.out.status.code(), Some(3), "{what}: {stderr}");
        let echoed = k.proxy.echoed()[before..].to_vec();
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
        assert_clean(what, &stderr, &token);
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
