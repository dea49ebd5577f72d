//! Zero downtime, measured (issue 12, D). A real sshd on 127.0.0.1 accepts exactly the deploy
//! keys registered *right now* on the stateful GitHub stand-in (its `AuthorizedKeysCommand` asks
//! the stand-in on every connection). A reader, like git-sync polling, reads the key and
//! known_hosts from the live Secret in the Kubernetes stand-in (kmock) every 100 ms and runs
//! `git ls-remote` through that sshd with `StrictHostKeyChecking=yes`. Through `rotate --apply`
//! and through `rotate --gitops` -> the controller stand-in applies the file -> `--finish`, no
//! pull may fail; and the rig must catch an outage when the old key is deleted before the swap.

mod support;

use base64::Engine as _;
use serde_json::{json, Value};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::fake_github::{FakeGithub, TOKEN};
use support::git_server::GitServer;
use support::kmock::Kmock;

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// One poll of the reader.
#[derive(Debug, Clone)]
struct Pull {
    at: Duration,
    ok: bool,
    registered: usize,
    why: String,
}

struct Rig {
    /// The Secret the reader reads, and the data key holding the private key.
    secret: &'static str,
    field: &'static str,
    kmock: Kmock,
    github: FakeGithub,
    server: GitServer,
    dir: tempfile::TempDir,
    _cmd_dir: tempfile::TempDir,
}

fn subpath_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "dags-sync", "namespace": "dev"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "s"}},
            "template": {"metadata": {"labels": {"app": "s"}}, "spec": {
                // A plain volume mount: the kubelet updates the files in place, which is what the
                // reader models by reading the live Secret at every poll. rotate waits
                // --sync-wait for such readers before it deletes the old key.
                "containers": [{"name": "git-sync", "image": "registry.k8s.io/git-sync/git-sync:v4.4.0",
                    "volumeMounts": [{"name": "key", "mountPath": "/etc/git-secret", "readOnly": true}]}],
                "volumes": [{"name": "key", "secret": {"secretName": "git-creds", "defaultMode": 288}}]}}},
        "status": {"replicas": 1, "updatedReplicas": 1, "availableReplicas": 1, "readyReplicas": 1},
    })
}

/// The Airflow chart's git-sync after `--merge-into`: the key mounted with `subPath`, which the
/// kubelet copies once at container start. Its rollout is not done until the reader (the new
/// pod) has started with the key the Secret holds then: [`Rig::subpath_pulls_while`] marks it
/// done (`observedGeneration`), as a real rollout finishes only when the new pod is ready.
fn real_subpath_deployment() -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "dags-sync", "namespace": "dev", "generation": 2},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "s"}},
            "template": {"metadata": {"labels": {"app": "s"}}, "spec": {
                "containers": [{"name": "git-sync", "image": "registry.k8s.io/git-sync/git-sync:v4.4.0",
                    "volumeMounts": [{"name": "key", "mountPath": "/etc/git-secret/ssh", "subPath": "ssh", "readOnly": true}]}],
                "volumes": [{"name": "key", "secret": {"secretName": "git-creds", "defaultMode": 288}}]}}},
        "status": {"observedGeneration": 1, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1, "readyReplicas": 1},
    })
}

/// One rig at a time: each runs an sshd and polls it, and timings are what is measured.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The parts every rig shares: GitHub stand-in, sshd asking it for keys, a working directory.
struct Parts {
    dir: tempfile::TempDir,
    github: FakeGithub,
    server: GitServer,
    cmd_dir: tempfile::TempDir,
}

fn parts() -> Parts {
    let dir = tempfile::tempdir().unwrap();
    let github = FakeGithub::start();
    // The keys command: root-owned, in a directory only root can write, and so is every
    // directory above it (sshd checks the whole path: a checkout under /tmp, mode 1777, would
    // not do). /run is root's; the target directory is the fallback.
    let cmd_dir = tempfile::Builder::new()
        .prefix("sealkey-keys-command-")
        .tempdir_in("/run")
        .or_else(|_| tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")))
        .unwrap();
    let cmd = cmd_dir.path().join("github-keys");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::write(
            &cmd,
            format!(
                "#!/bin/sh\n# The deploy keys GitHub accepts right now, asked on every connection.\n\
                 curl -sf --max-time 5 -H 'Authorization: Bearer {TOKEN}' '{}/repos/acme/dags/keys?per_page=100' \\\n\
                 | python3 -c 'import json,sys; [print(k[\"key\"]) for k in json.load(sys.stdin)]'\n",
                github.url()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&cmd, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let server = GitServer::start_with_keys_command(dir.path(), &cmd);
    Parts {
        dir,
        github,
        server,
        cmd_dir,
    }
}

fn rig() -> Rig {
    rig_with(json!({}), subpath_deployment())
}

/// The rig with `labels` added to the Secret and `workload` reading it.
fn rig_with(labels: Value, workload: Value) -> Rig {
    let Parts {
        dir,
        github,
        server,
        cmd_dir,
    } = parts();
    let (key_path, old_public) = support::ssh_keypair(dir.path(), "ed25519", "old.TEST-ONLY");
    let pem = std::fs::read(&key_path).unwrap();
    github.add_key(
        "acme/dags",
        &support::bare(&old_public),
        "sealkey kmock/dev/git-creds 2026-01-01",
        true,
        "2026-01-01T00:00:00Z",
        None,
    );
    let mut secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "git-creds", "namespace": "dev",
            "labels": {"app.kubernetes.io/managed-by": "sealkey"},
            "annotations": {"sealkey.io/for": "git-sync"}},
        "type": "Opaque",
        "data": {"ssh": b64(&pem), "known_hosts": b64(server.known_hosts().as_bytes())},
    });
    for (k, v) in labels.as_object().unwrap() {
        secret["metadata"]["labels"][k] = v.clone();
    }
    let kmock = Kmock::start(&[secret, workload]);
    Rig {
        secret: "git-creds",
        field: "ssh",
        kmock,
        github,
        server,
        dir,
        _cmd_dir: cmd_dir,
    }
}

impl Rig {
    fn sealkey(&self, args: &[&str]) -> Output {
        let kc = self.kmock.kubeconfig("dev");
        Command::new(support::sealkey_bin())
            .args(args)
            .args([
                "--kubeconfig",
                kc.to_str().unwrap(),
                "--api-url",
                &self.github.url(),
            ])
            .env("GITHUB_TOKEN", TOKEN)
            .env_remove("GH_TOKEN")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn rotate(&self, extra: &[&str]) -> Output {
        // --sync-wait 3s: longer than a pull takes here, as the kubelet's default sync period is
        // for the real thing (rotate's default wait, 90 s, covers that).
        let mut args = vec![
            "rotate",
            "--repo",
            "acme/dags",
            "-n",
            "dev",
            "--secret-name",
            self.secret,
            "--timeout",
            "30s",
            "--sync-wait",
            "3s",
        ];
        args.extend_from_slice(extra);
        let out = self.sealkey(&args);
        assert!(
            out.status.success(),
            "rotate {extra:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    /// Polls every 100 ms while `during` runs, plus `settle` before and after.
    fn pulls_while(&self, settle: Duration, during: impl FnOnce()) -> Vec<Pull> {
        let stop = Arc::new(AtomicBool::new(false));
        let pulls = Arc::new(Mutex::new(Vec::new()));
        let start = Instant::now();
        std::thread::scope(|scope| {
            let reader = {
                let (stop, pulls) = (stop.clone(), pulls.clone());
                scope.spawn(move || {
                    let mut n = 0u32;
                    // Bounded: at most 10 minutes of polls, whatever happens.
                    while !stop.load(Ordering::Relaxed) && n < 6000 {
                        let tick = Instant::now();
                        let secret = self.kmock.secret("dev", self.secret).expect("the Secret");
                        let key = support::b64d(&secret["data"][self.field]);
                        // The chart's Secret holds no known_hosts (they are in the values).
                        let kh = match secret["data"].get("known_hosts") {
                            Some(v) => support::b64d(v),
                            None => self.server.known_hosts().into_bytes(),
                        };
                        let (ok, why) = self.server.ls_remote_with(&key, &kh, "reader");
                        let registered = self.github.keys("acme/dags").len();
                        pulls.lock().unwrap().push(Pull {
                            at: start.elapsed(),
                            ok,
                            registered,
                            why,
                        });
                        n += 1;
                        if let Some(rest) = Duration::from_millis(100).checked_sub(tick.elapsed()) {
                            std::thread::sleep(rest);
                        }
                    }
                })
            };
            std::thread::sleep(settle);
            during();
            std::thread::sleep(settle);
            stop.store(true, Ordering::Relaxed);
            reader.join().unwrap();
        });
        Arc::try_unwrap(pulls).unwrap().into_inner().unwrap()
    }
}

impl Rig {
    /// Like [`Rig::pulls_while`], but the reader is a subPath pod: it keeps the key it read at
    /// start until the Deployment is restarted (`kubectl.kubernetes.io/restartedAt` changes);
    /// then the new pod reads the Secret as it is now, and its rollout is marked done. The old
    /// pod's pulls end before the new pod takes over (one reader), as a rolling update replaces
    /// an old pod only once the new one is ready.
    fn subpath_pulls_while(&self, settle: Duration, during: impl FnOnce()) -> Vec<Pull> {
        let deployment = "/apis/apps/v1/namespaces/dev/deployments/dags-sync";
        let restarted_at = || {
            self.kmock.get(deployment).expect("the Deployment")["spec"]["template"]["metadata"]
                ["annotations"]["kubectl.kubernetes.io/restartedAt"]
                .clone()
        };
        let read_key = || {
            let secret = self.kmock.secret("dev", self.secret).expect("the Secret");
            let kh = support::b64d(&secret["data"]["known_hosts"]);
            (support::b64d(&secret["data"][self.field]), kh)
        };
        let stop = Arc::new(AtomicBool::new(false));
        let pulls = Arc::new(Mutex::new(Vec::new()));
        let start = Instant::now();
        std::thread::scope(|scope| {
            let reader = {
                let (stop, pulls) = (stop.clone(), pulls.clone());
                scope.spawn(move || {
                    let mut seen = restarted_at();
                    let (mut key, mut kh) = read_key();
                    let mut n = 0u32;
                    while !stop.load(Ordering::Relaxed) && n < 6000 {
                        let tick = Instant::now();
                        let now = restarted_at();
                        if now != seen {
                            // The new pod starts with the Secret as it is now; the rollout ends.
                            seen = now;
                            (key, kh) = read_key();
                            let st = Command::new("curl")
                                .args(["-sSf", "-o", "/dev/null", "-X", "PATCH", "-H"])
                                .arg("Content-Type: application/merge-patch+json")
                                .args([
                                    "--data-binary",
                                    r#"{"status": {"observedGeneration": 1000}}"#,
                                ])
                                .arg(format!("{}{deployment}", self.kmock.url()))
                                .status()
                                .unwrap();
                            assert!(st.success(), "marking the rollout done");
                        }
                        let (ok, why) = self.server.ls_remote_with(&key, &kh, "subpath-reader");
                        let registered = self.github.keys("acme/dags").len();
                        pulls.lock().unwrap().push(Pull {
                            at: start.elapsed(),
                            ok,
                            registered,
                            why,
                        });
                        n += 1;
                        if let Some(rest) = Duration::from_millis(100).checked_sub(tick.elapsed()) {
                            std::thread::sleep(rest);
                        }
                    }
                })
            };
            std::thread::sleep(settle);
            during();
            std::thread::sleep(settle);
            stop.store(true, Ordering::Relaxed);
            reader.join().unwrap();
        });
        Arc::try_unwrap(pulls).unwrap().into_inner().unwrap()
    }

    /// The controller stand-in: decrypts `file` as Flux would (npm SOPS decoders) and applies
    /// the Secret (curl, merge patch).
    fn controller_applies(&self, file: &std::path::Path, identity: &std::path::Path) {
        let docs = support::npm_sops_decode(file, identity).unwrap();
        let patch = self.dir.path().join("apply.json");
        std::fs::write(&patch, serde_json::to_vec(&docs[0]).unwrap()).unwrap();
        let st = Command::new("curl")
            .args([
                "-sSf",
                "-o",
                "/dev/null",
                "-X",
                "PATCH",
                "-H",
                "Content-Type: application/merge-patch+json",
                "--data-binary",
            ])
            .arg(format!("@{}", patch.display()))
            .arg(format!(
                "{}/api/v1/namespaces/dev/secrets/{}",
                self.kmock.url(),
                self.secret
            ))
            .status()
            .unwrap();
        assert!(st.success());
    }
}

/// (pulls, failed, longest stretch with two keys registered)
fn summary(pulls: &[Pull]) -> (usize, usize, Duration) {
    let failed = pulls.iter().filter(|p| !p.ok).count();
    let mut overlap = Duration::ZERO;
    let mut since: Option<Duration> = None;
    for p in pulls {
        match (p.registered >= 2, since) {
            (true, None) => since = Some(p.at),
            (false, Some(s)) => {
                overlap = overlap.max(p.at - s);
                since = None;
            }
            _ => {}
        }
    }
    (pulls.len(), failed, overlap)
}

fn report(what: &str, pulls: &[Pull]) {
    let (n, failed, overlap) = summary(pulls);
    eprintln!("{what}: {n} pulls, {failed} failed, both keys registered for {overlap:?}");
    if let Some(p) = pulls.iter().find(|p| !p.ok) {
        eprintln!(
            "  first failure at {:?}: {}",
            p.at,
            p.why.lines().last().unwrap_or_default()
        );
    }
}

#[test]
fn rotate_apply_keeps_every_pull_working() {
    support::required_tool("sshd");
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let r = rig();
    let before = r.github.keys("acme/dags")[0]["key"].clone();
    let pulls = r.pulls_while(Duration::from_millis(1500), || {
        r.rotate(&["--for", "git-sync", "--apply"]);
    });
    report("rotate --apply", &pulls);
    let (n, failed, overlap) = summary(&pulls);
    assert!(n >= 8, "too few pulls to show anything: {n}");
    assert_eq!(
        failed,
        0,
        "{:#?}",
        pulls.iter().filter(|p| !p.ok).collect::<Vec<_>>()
    );
    assert!(
        overlap > Duration::ZERO,
        "the new key was never registered beside the old one"
    );
    let keys = r.github.keys("acme/dags");
    assert_eq!(keys.len(), 1);
    assert_ne!(keys[0]["key"], before, "the key did not change");
    // The last pulls used the new key.
    assert!(pulls.last().unwrap().ok);
}

#[test]
fn rotate_gitops_then_controller_then_finish_keeps_every_pull_working() {
    support::required_tool("sshd");
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let r = rig();
    let (identity, recipient) = support::age_keypair(r.dir.path());
    let file = r.dir.path().join("git-creds.sops.yaml");
    let pulls = r.pulls_while(Duration::from_millis(1500), || {
        r.rotate(&[
            "--for",
            "git-sync",
            "--gitops",
            file.to_str().unwrap(),
            "--seal-to",
            &recipient,
        ]);
        std::thread::sleep(Duration::from_millis(500));
        // The controller stand-in: decrypt as Flux would (npm decoders) and apply (curl).
        let docs = support::npm_sops_decode(&file, &identity).unwrap();
        let patch = r.dir.path().join("apply.json");
        std::fs::write(&patch, serde_json::to_vec(&docs[0]).unwrap()).unwrap();
        let st = Command::new("curl")
            .args([
                "-sSf",
                "-o",
                "/dev/null",
                "-X",
                "PATCH",
                "-H",
                "Content-Type: application/merge-patch+json",
                "--data-binary",
            ])
            .arg(format!("@{}", patch.display()))
            .arg(format!(
                "{}/api/v1/namespaces/dev/secrets/git-creds",
                r.kmock.url()
            ))
            .status()
            .unwrap();
        assert!(st.success());
        // Flux applied; consumers pick it up (the kubelet's sync), then the operator finishes.
        std::thread::sleep(Duration::from_millis(2000));
        r.rotate(&["--for", "git-sync", "--finish"]);
    });
    report("rotate --gitops, apply, --finish", &pulls);
    let (n, failed, overlap) = summary(&pulls);
    assert!(n >= 8, "too few pulls: {n}");
    assert_eq!(
        failed,
        0,
        "{:#?}",
        pulls.iter().filter(|p| !p.ok).collect::<Vec<_>>()
    );
    assert!(overlap >= Duration::from_millis(900), "overlap {overlap:?}");
    assert_eq!(r.github.keys("acme/dags").len(), 1);
}

#[test]
fn the_rig_catches_an_outage_when_the_old_key_goes_before_the_swap() {
    // The wrong order: the old deploy key is deleted while the Secret still holds it.
    support::required_tool("sshd");
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let r = rig();
    let id = r.github.keys("acme/dags")[0]["id"].as_u64().unwrap();
    let pulls = r.pulls_while(Duration::from_millis(1500), || {
        let st = Command::new("curl")
            .args(["-sSf", "-o", "/dev/null", "-X", "DELETE", "-H"])
            .arg(format!("Authorization: Bearer {TOKEN}"))
            .arg(format!("{}/repos/acme/dags/keys/{id}", r.github.url()))
            .status()
            .unwrap();
        assert!(st.success());
    });
    report("old key deleted first", &pulls);
    let (_, failed, _) = summary(&pulls);
    assert!(failed >= 2, "the rig saw no outage: {pulls:#?}");
    assert!(!pulls.last().unwrap().ok, "pulls came back without a key");
    assert!(pulls[0].ok, "pulls worked before the deletion");
}

/// helm-controller's part, as the Airflow chart's `extraSecrets` template does it: the entry's
/// `data` block (YAML, read here by PyYAML) becomes a Helm-owned Secret of that name.
fn render_extra_secret(hr: &Value, name: &str) -> Value {
    let block = hr["spec"]["values"]["extraSecrets"][name]["data"]
        .as_str()
        .expect("extraSecrets entry with data");
    let out = Command::new("python3")
        .args([
            "-c",
            "import json,sys,yaml; print(json.dumps(yaml.safe_load(sys.stdin.read())))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(block.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success());
    let data: Value = serde_json::from_slice(&out.stdout).unwrap();
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": "dev",
            "labels": {"app.kubernetes.io/managed-by": "Helm", "release": "airflow", "heritage": "Helm"},
            "annotations": {"helm.sh/hook": "pre-install,pre-upgrade", "helm.sh/hook-weight": "0",
                "meta.helm.sh/release-name": "airflow"}},
        "type": "Opaque",
        "data": data,
    })
}

/// The Airflow chart's shape (issue 12, C): the key lives in a SOPS-sealed HelmRelease's
/// `values.extraSecrets`, helm-controller renders a Helm-owned Secret from it. `rotate --apply`
/// is refused; `rotate --gitops` on the HelmRelease, helm-controller's upgrade, and `--finish
/// --wait` (which has no sealkey annotation to go by: titles and ids) keep every pull working.
#[test]
fn rotate_gitops_of_a_helmrelease_with_extra_secrets_then_upgrade_then_finish_wait_keeps_every_pull_working(
) {
    support::required_tool("sshd");
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let Parts {
        dir,
        github,
        server,
        cmd_dir,
    } = parts();
    let (identity, recipient) = support::age_keypair(dir.path());
    let kh_file = dir.path().join("known_hosts");
    std::fs::write(&kh_file, server.known_hosts()).unwrap();
    let hr = dir.path().join("airflow.sops.yaml");
    // The user's HelmRelease, as `sealkey create` wrote it; its key registered as create would.
    let out = Command::new(env!("CARGO_BIN_EXE_sealkey"))
        .args([
            "create",
            "--repo",
            "acme/dags",
            "-n",
            "dev",
            "--for",
            "airflow-chart",
            "--emit",
            "extra-secrets",
            "--secret-name",
            "airflow-ssh-secret",
            "--repo-url",
            &server.url(),
            "--known-hosts",
            kh_file.to_str().unwrap(),
            "--seal-to",
            &recipient,
            "--out",
            hr.to_str().unwrap(),
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stderr).to_string();
    let public = stdout
        .lines()
        .find_map(|l| l.strip_prefix("public key:"))
        .expect("create prints the public key")
        .trim()
        .to_string();
    github.add_key(
        "acme/dags",
        &support::bare(&public),
        "sealkey kmock/dev/airflow-ssh-secret 2026-01-01",
        true,
        "2026-01-01T00:00:00Z",
        None,
    );
    let first = support::npm_sops_decode(&hr, &identity).unwrap();
    let live = render_extra_secret(&first[0], "airflow-ssh-secret");
    let r = Rig {
        secret: "airflow-ssh-secret",
        field: "gitSshKey",
        kmock: Kmock::start(&[live]),
        github,
        server,
        dir,
        _cmd_dir: cmd_dir,
    };
    // --apply on the Helm-owned Secret: refused before anything is registered.
    let refused = r.sealkey(&[
        "rotate",
        "--repo",
        "acme/dags",
        "-n",
        "dev",
        "--secret-name",
        "airflow-ssh-secret",
        "--apply",
    ]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("Helm owns it"));
    assert_eq!(r.github.keys("acme/dags").len(), 1);

    let hr_s = hr.to_str().unwrap();
    let finisher = std::cell::RefCell::new(None);
    let pulls = r.pulls_while(Duration::from_millis(1500), || {
        r.rotate(&[
            "--gitops",
            hr_s,
            "--update",
            hr_s,
            "--identity",
            identity.to_str().unwrap(),
            "--seal-to",
            &recipient,
        ]);
        // --finish --wait, started before helm-controller got to it, waits for the new key.
        std::thread::scope(|s| {
            let waiting = s.spawn(|| r.rotate(&["--finish", "--wait", "60s"]));
            std::thread::sleep(Duration::from_millis(1500));
            assert_eq!(
                r.github.keys("acme/dags").len(),
                2,
                "finish deleted a key before the upgrade"
            );
            // Flux decrypts the HelmRelease (npm decoder), helm-controller upgrades: the
            // chart renders the Secret again from the new values (curl PUT to the stand-in).
            let docs = support::npm_sops_decode(&hr, &identity).unwrap();
            let rendered = render_extra_secret(&docs[0], "airflow-ssh-secret");
            let body = r.dir.path().join("upgrade.json");
            std::fs::write(&body, serde_json::to_vec(&rendered).unwrap()).unwrap();
            let st = Command::new("curl")
                .args([
                    "-sSf",
                    "-o",
                    "/dev/null",
                    "-X",
                    "PATCH",
                    "-H",
                    "Content-Type: application/merge-patch+json",
                    "--data-binary",
                ])
                .arg(format!("@{}", body.display()))
                .arg(format!(
                    "{}/api/v1/namespaces/dev/secrets/airflow-ssh-secret",
                    r.kmock.url()
                ))
                .status()
                .unwrap();
            assert!(st.success());
            *finisher.borrow_mut() = Some(waiting.join().unwrap());
        });
    });
    report(
        "HelmRelease extraSecrets: rotate --gitops, upgrade, --finish --wait",
        &pulls,
    );
    let (n, failed, overlap) = summary(&pulls);
    assert!(n >= 8, "too few pulls: {n}");
    assert_eq!(
        failed,
        0,
        "{:#?}",
        pulls.iter().filter(|p| !p.ok).collect::<Vec<_>>()
    );
    assert!(
        overlap >= Duration::from_millis(1000),
        "overlap {overlap:?}"
    );
    let finished = finisher.borrow_mut().take().unwrap();
    assert!(
        String::from_utf8_lossy(&finished.stderr).contains("after waiting"),
        "{}",
        String::from_utf8_lossy(&finished.stderr)
    );
    let keys = r.github.keys("acme/dags");
    assert_eq!(keys.len(), 1);
    assert_ne!(keys[0]["key"].as_str().unwrap(), support::bare(&public));
    // The HelmRelease kept everything but the key: chart, values, the entry's other lines.
    let after = support::npm_sops_decode(&hr, &identity).unwrap();
    let (mut a, mut b) = (first[0].clone(), after[0].clone());
    for d in [&mut a, &mut b] {
        d["spec"]["values"]["extraSecrets"]["airflow-ssh-secret"]["data"] = Value::Null;
        for k in [
            "sealkey.io/fingerprint",
            "sealkey.io/created",
            "sealkey.io/key-type",
        ] {
            d["metadata"]["annotations"][k] = Value::Null;
        }
    }
    assert_eq!(a, b, "only the key and its annotations changed");
    assert_eq!(
        after[0]["metadata"]["annotations"]["sealkey.io/fingerprint"].as_str(),
        Some(r.kmock_fingerprint().as_str())
    );
}

impl Rig {
    /// The fingerprint of the key in the live Secret, by ssh-keygen.
    fn kmock_fingerprint(&self) -> String {
        let secret = self.kmock.secret("dev", self.secret).unwrap();
        let key = self.dir.path().join("live.TEST-ONLY.key");
        support::write_private(&key, &support::b64d(&secret["data"][self.field]));
        let out = Command::new("ssh-keygen")
            .arg("-lf")
            .arg(&key)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .unwrap_or_default()
            .to_string()
    }
}

/// Issue 21.1: the Airflow chart mounts the key with `subPath`, which never sees a Secret update.
/// After `--gitops` and the controller's apply, `--finish` deleted the old key at once and
/// restarted nothing: every pull of the running pod failed from then on. Now `--finish` restarts
/// the reader and waits for its rollout before the old key goes.
#[test]
fn rotate_gitops_then_controller_then_finish_with_a_subpath_reader_keeps_every_pull_working() {
    support::required_tool("sshd");
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let r = rig_with(json!({}), real_subpath_deployment());
    let (identity, recipient) = support::age_keypair(r.dir.path());
    let file = r.dir.path().join("git-creds.sops.yaml");
    let mut finish_err = String::new();
    let pulls = r.subpath_pulls_while(Duration::from_millis(1500), || {
        r.rotate(&[
            "--for",
            "git-sync",
            "--gitops",
            file.to_str().unwrap(),
            "--seal-to",
            &recipient,
        ]);
        std::thread::sleep(Duration::from_millis(500));
        r.controller_applies(&file, &identity);
        // The operator checked `kubectl get secret` and finishes (no --wait: nothing polled).
        std::thread::sleep(Duration::from_millis(1000));
        let out = r.rotate(&["--for", "git-sync", "--finish"]);
        finish_err = String::from_utf8_lossy(&out.stderr).to_string();
    });
    report("rotate --gitops, apply, --finish (subPath reader)", &pulls);
    let (n, failed, _) = summary(&pulls);
    assert_eq!(
        failed,
        0,
        "{finish_err}\n{:#?}",
        pulls.iter().filter(|p| !p.ok).collect::<Vec<_>>()
    );
    // Each poll also reads the Deployment: fewer pulls than the volume rig, still one every
    // few hundred ms through the whole rotation.
    assert!(n >= 5, "too few pulls: {n}");
    assert!(
        finish_err.contains("deployment/dags-sync: restarted"),
        "{finish_err}"
    );
    assert_eq!(r.github.keys("acme/dags").len(), 1, "{finish_err}");
    assert!(pulls.last().unwrap().ok);
}

/// Issue 21.2: a Secret Flux's kustomize-controller applies was rotated in place by `--apply`
/// (and the monthly CronJob, which runs `--apply`); Flux's next reconcile put the committed key
/// back, which GitHub no longer accepted. Now `--apply` refuses before registering anything and
/// names the route that works; no pull fails and nothing changes.
#[test]
fn rotate_apply_refuses_a_secret_flux_applies_and_changes_nothing() {
    support::required_tool("sshd");
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let r = rig_with(
        json!({"kustomize.toolkit.fluxcd.io/name": "apps", "kustomize.toolkit.fluxcd.io/namespace": "flux-system"}),
        subpath_deployment(),
    );
    let keys_before = r.github.keys("acme/dags");
    let secret_before = r.kmock.secret("dev", "git-creds").unwrap()["data"].clone();
    let mut out = None;
    let pulls = r.pulls_while(Duration::from_millis(500), || {
        out = Some(r.sealkey(&[
            "rotate",
            "--repo",
            "acme/dags",
            "-n",
            "dev",
            "--secret-name",
            "git-creds",
            "--for",
            "git-sync",
            "--apply",
            "--sync-wait",
            "0s",
        ]));
    });
    let out = out.unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("kustomize-controller")
            && err.contains("--gitops")
            && err.contains("--finish"),
        "{err}"
    );
    assert_eq!(r.github.keys("acme/dags"), keys_before, "GitHub changed");
    assert_eq!(
        r.kmock.secret("dev", "git-creds").unwrap()["data"],
        secret_before,
        "the Secret changed"
    );
    let (_, failed, _) = summary(&pulls);
    assert_eq!(failed, 0);
}
