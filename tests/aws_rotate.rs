//! `rotate --store` end to end on 127.0.0.1: moto (Secrets Manager), the fake GitHub, kmock as
//! the Kubernetes API (with ESO's kinds) and tests/support/fake_eso.py standing in for ESO's
//! reconcile loop (it re-renders the Secret when the force-sync annotation changes). A rotation
//! leaves the new key live, AWSCURRENT/AWSPREVIOUS in place and only the new deploy key; a
//! failure (ESO down, the store refusing) rolls everything back.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::moto::{sealkey_env, Moto};

const NAME: &str = "dev/airflow-ssh";

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Rig {
    moto: Moto,
    github: support::fake_github::FakeGithub,
    _kmock: Killed,
    _eso: Killed,
    kube_url: String,
    kubeconfig: PathBuf,
    pause: PathBuf,
    dir: tempfile::TempDir,
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

impl Rig {
    fn start() -> Rig {
        Rig::start_with(&[])
    }

    /// The rig with `seed` objects (workloads) in the cluster from the start.
    fn start_with(seed: &[Value]) -> Rig {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let moto = Moto::start();
        let github = support::fake_github::FakeGithub::start();
        let dir = tempfile::tempdir().unwrap();
        let portfile = dir.path().join("port");
        let seed_path = dir.path().join("seed.json");
        std::fs::write(&seed_path, serde_json::to_vec(seed).unwrap()).unwrap();
        let kmock = Killed(
            Command::new(support::moto::python())
                .arg(root.join("tests/support/kube_standin.py"))
                .arg(&portfile)
                .args(["--mode", "kubectl", "--eso", "--lifetime", "150", "--seed"])
                .arg(&seed_path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        let port: u16 = loop {
            if let Some(p) = std::fs::read_to_string(&portfile)
                .ok()
                .and_then(|t| t.trim().parse().ok())
            {
                break p;
            }
            assert!(Instant::now() < deadline, "kmock did not start within 30 s");
            std::thread::sleep(Duration::from_millis(50));
        };
        let kube_url = format!("http://127.0.0.1:{port}");
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: kmock\n  cluster:\n    server: {kube_url}\n\
                 users:\n- name: tester\n  user:\n    token: test-token-not-secret\n\
                 contexts:\n- name: kmock\n  context:\n    cluster: kmock\n    user: tester\n    namespace: dev\n\
                 current-context: kmock\n"
            ),
        )
        .unwrap();
        let pause = dir.path().join("eso-paused");
        let eso = Killed(
            Command::new(support::moto::python())
                .arg(root.join("tests/support/fake_eso.py"))
                .args([&kube_url, "dev"])
                .arg(&pause)
                .args(["--lifetime", "150"])
                .envs(moto.env())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let rig = Rig {
            moto,
            github,
            _kmock: kmock,
            _eso: eso,
            kube_url,
            kubeconfig,
            pause,
            dir,
        };
        // create --store --register, then the ExternalSecret into the cluster: ESO renders the Secret.
        let out = rig.sealkey(&[
            "create",
            "--repo",
            "acme/dags",
            "-n",
            "dev",
            "--store",
            &format!("aws-secrets-manager:{NAME}"),
            "--register",
            "--cluster",
            "kmock",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let es = rig.dir.path().join("es.yaml");
        std::fs::write(&es, &out.stdout).unwrap();
        let applied = Command::new("kubectl")
            .env("KUBECONFIG", &rig.kubeconfig)
            .args(["apply", "--validate=false", "-f", es.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(applied.status.success(), "{}", stderr(&applied));
        let fp = out_fingerprint(&out);
        rig.wait_for_live(&fp);
        rig
    }

    fn sealkey(&self, args: &[&str]) -> std::process::Output {
        let mut env = self.moto.env();
        env.push(("GITHUB_TOKEN".into(), support::fake_github::TOKEN.into()));
        env.push(("KUBECONFIG".into(), self.kubeconfig.display().to_string()));
        let api = self.github.url();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--api-url", &api]);
        sealkey_env(self.dir.path(), &all, &env, &[])
    }

    fn live_fingerprint(&self) -> Option<String> {
        let out = Command::new("curl")
            .args(["-sf", "--max-time", "5"])
            .arg(format!(
                "{}/api/v1/namespaces/dev/secrets/airflow-ssh-secret",
                self.kube_url
            ))
            .output()
            .ok()?;
        let v: Value = serde_json::from_slice(&out.stdout).ok()?;
        v["metadata"]["annotations"]["sealkey.io/fingerprint"]
            .as_str()
            .map(String::from)
    }

    fn wait_for_live(&self, fp: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.live_fingerprint().as_deref() != Some(fp) {
            assert!(
                Instant::now() < deadline,
                "ESO stand-in did not render {fp}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn stages(&self) -> Value {
        self.moto.boto(&format!(
            "d = c('secretsmanager').describe_secret(SecretId='{NAME}')\nprint(json.dumps({{'stages': {{k: sorted(s) for k, s in d['VersionIdsToStages'].items()}}, 'tags': {{t['Key']: t['Value'] for t in d['Tags']}}}}))"
        ))
    }

    fn rotate(&self, extra: &[&str]) -> std::process::Output {
        let store = format!("aws-secrets-manager:{NAME}");
        let mut args = vec![
            "rotate",
            "--repo",
            "acme/dags",
            "-n",
            "dev",
            "--secret-name",
            "airflow-ssh-secret",
            "--store",
            &store,
        ];
        args.extend_from_slice(extra);
        self.sealkey(&args)
    }
}

fn out_fingerprint(out: &std::process::Output) -> String {
    stderr(out)
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint:"))
        .unwrap()
        .trim()
        .to_string()
}

fn github_fingerprints(rig: &Rig) -> Vec<String> {
    rig.github
        .keys("acme/dags")
        .iter()
        .map(|k| sealkey::keygen::fingerprint_of_public(k["key"].as_str().unwrap()).unwrap())
        .collect()
}

#[test]
fn a_store_rotation_makes_the_new_key_live_through_eso_and_deletes_the_old_one() {
    let rig = Rig::start();
    let old_fp = rig.live_fingerprint().unwrap();
    let before = rig.stages();
    let out = rig.rotate(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let new_fp = stderr(&out)
        .lines()
        .find_map(|l| l.strip_prefix("new key:"))
        .unwrap()
        .trim()
        .to_string();
    assert_ne!(new_fp, old_fp);
    assert_eq!(
        rig.live_fingerprint().as_deref(),
        Some(new_fp.as_str()),
        "ESO rendered the new key"
    );
    assert_eq!(
        github_fingerprints(&rig),
        vec![new_fp.clone()],
        "only the new deploy key is registered"
    );
    let after = rig.stages();
    let old_version = before["stages"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    assert_eq!(
        after["stages"][&old_version],
        serde_json::json!(["AWSPREVIOUS"])
    );
    assert_eq!(after["tags"]["sealkey:fingerprint"], new_fp.as_str());
}

#[test]
fn eso_not_syncing_rolls_back_the_store_version_and_the_new_key() {
    let rig = Rig::start();
    let old_fp = rig.live_fingerprint().unwrap();
    let before = rig.stages();
    std::fs::write(&rig.pause, b"").unwrap();
    let out = rig.rotate(&["--store-sync-timeout", "3s"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("wait for ESO") && err.contains("AWSCURRENT moved back"),
        "{err}"
    );
    assert_eq!(
        github_fingerprints(&rig),
        vec![old_fp.clone()],
        "the new key was deleted, the old one kept"
    );
    let after = rig.stages();
    let old_version = before["stages"]
        .as_object()
        .unwrap()
        .keys()
        .next()
        .unwrap()
        .clone();
    assert_eq!(
        after["stages"][&old_version],
        serde_json::json!(["AWSCURRENT"]),
        "AWSCURRENT moved back: {after}"
    );
    assert_eq!(
        after["tags"]["sealkey:fingerprint"],
        old_fp.as_str(),
        "tags restored"
    );
    std::fs::remove_file(&rig.pause).unwrap();
    // ESO, back, renders the old key (it was asked to re-sync), which is still registered.
    rig.wait_for_live(&old_fp);
}

#[test]
fn a_store_that_refuses_the_new_version_deletes_the_new_key_and_changes_nothing() {
    let rig = Rig::start();
    let old_fp = rig.live_fingerprint().unwrap();
    rig.moto.fault(
        "secretsmanager.PutSecretValue",
        "AccessDeniedException",
        400,
        -1,
    );
    let out = rig.rotate(&[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("secretsmanager:PutSecretValue"), "{err}");
    assert!(err.contains("deleted the new key"), "{err}");
    assert_eq!(github_fingerprints(&rig), vec![old_fp.clone()]);
    assert_eq!(rig.live_fingerprint().as_deref(), Some(old_fp.as_str()));
    assert_eq!(rig.stages()["tags"]["sealkey:fingerprint"], old_fp.as_str());
}

#[test]
fn a_store_whose_key_is_not_the_live_secrets_is_refused_before_anything_changes() {
    // Hostile/unsynced state: the store's tag names another key than the Secret ESO rendered.
    let rig = Rig::start();
    let old_fp = rig.live_fingerprint().unwrap();
    rig.moto.boto(&format!(
        "c('secretsmanager').tag_resource(SecretId='{NAME}', Tags=[{{'Key': 'sealkey:fingerprint', 'Value': 'SHA256:someoneelse'}}])\nprint('null')"
    ));
    let before = rig.stages();
    let out = rig.rotate(&[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("SHA256:someoneelse") && err.contains("nothing was changed"),
        "{err}"
    );
    assert_eq!(github_fingerprints(&rig), vec![old_fp]);
    assert_eq!(rig.stages()["stages"], before["stages"]);
}

/// A Deployment whose git-sync mounts the key with `subPath`: the kubelet never updates such a
/// file, so the pods keep the old key until they restart.
fn subpath_deployment() -> Value {
    serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "airflow-scheduler", "namespace": "dev"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "s"}},
            "template": {"metadata": {"labels": {"app": "s"}}, "spec": {
                "containers": [{"name": "git-sync", "image": "registry.k8s.io/git-sync/git-sync:v4.4.0",
                    "volumeMounts": [{"name": "key", "mountPath": "/etc/git-secret/ssh", "subPath": "gitSshKey"}]}],
                "volumes": [{"name": "key", "secret": {"secretName": "airflow-ssh-secret"}}]}}},
        "status": {"replicas": 1, "updatedReplicas": 1, "availableReplicas": 1, "readyReplicas": 1},
    })
}

impl Rig {
    fn restarted_at(&self) -> Option<String> {
        let out = Command::new("curl")
            .args(["-sf", "--max-time", "5"])
            .arg(format!(
                "{}/apis/apps/v1/namespaces/dev/deployments/airflow-scheduler",
                self.kube_url
            ))
            .output()
            .ok()?;
        let d: Value = serde_json::from_slice(&out.stdout).ok()?;
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .as_str()
            .map(String::from)
    }
}

#[test]
fn a_subpath_reader_is_restarted_before_the_old_key_is_deleted() {
    let rig = Rig::start_with(&[subpath_deployment()]);
    let out = rig.rotate(&["--timeout", "30s"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("restarted [\"deployment/airflow-scheduler\"]"),
        "{err}"
    );
    assert!(
        rig.restarted_at().is_some(),
        "no restartedAt on the Deployment"
    );
    let new_fp = err
        .lines()
        .find_map(|l| l.strip_prefix("new key:"))
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(github_fingerprints(&rig), vec![new_fp]);
}

/// Was: with `--no-restart` the old key was deleted while the subPath readers still used it, so
/// their next `git fetch` failed. Now both keys stay registered and the output says why.
#[test]
fn with_no_restart_a_subpath_reader_keeps_its_old_key_registered() {
    let rig = Rig::start_with(&[subpath_deployment()]);
    let old_fp = rig.live_fingerprint().unwrap();
    let out = rig.rotate(&["--no-restart"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        rig.restarted_at().is_none(),
        "restarted despite --no-restart"
    );
    let keys = github_fingerprints(&rig);
    assert!(
        keys.contains(&old_fp),
        "old key deleted under a reader: {keys:?}\n{err}"
    );
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(
        err.contains(
            "old key(s) kept: --no-restart: deployment/airflow-scheduler still run the old key"
        ),
        "{err}"
    );
    assert!(err.contains("sealkey rotate --finish"), "{err}");
}

/// Was (issue 21.3): when the rollout of a restarted reader failed, the hint said "run `sealkey
/// keys prune` or rotate again" (rotating again registers a third key), and a later `--finish`
/// deleted the old key without looking at the rollout. Now the hint names `rotate --finish`, and
/// `--finish` restarts the reader and keeps the old key until its rollout completes.
#[test]
fn a_failed_rollout_keeps_the_old_key_through_finish_until_the_reader_rolled_out() {
    let mut stuck = subpath_deployment();
    stuck["metadata"]["generation"] = serde_json::json!(2);
    stuck["status"]["observedGeneration"] = serde_json::json!(1);
    let rig = Rig::start_with(&[stuck]);
    let old_fp = rig.live_fingerprint().unwrap();
    let out = rig.rotate(&["--timeout", "2s"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("sealkey rotate --finish"), "{err}");
    assert!(
        !err.contains("keys prune") && !err.contains("rotate again"),
        "{err}"
    );
    assert!(github_fingerprints(&rig).contains(&old_fp), "{err}");
    assert_eq!(github_fingerprints(&rig).len(), 2);
    let finish = |timeout: &str| {
        rig.sealkey(&[
            "rotate",
            "--repo",
            "acme/dags",
            "-n",
            "dev",
            "--secret-name",
            "airflow-ssh-secret",
            "--cluster",
            "kmock",
            "--finish",
            "--timeout",
            timeout,
            "--sync-wait",
            "0s",
        ])
    };
    let out = finish("2s");
    let err = stderr(&out);
    assert_eq!(
        out.status.code(),
        Some(3),
        "--finish under a stuck rollout: {err}"
    );
    assert!(
        github_fingerprints(&rig).contains(&old_fp),
        "--finish deleted the old key while the reader had not rolled out: {err}"
    );
    // The reader rolls out; --finish completes.
    let st = Command::new("curl")
        .args(["-sSf", "-o", "/dev/null", "-X", "PATCH", "-H"])
        .arg("Content-Type: application/merge-patch+json")
        .args([
            "--data-binary",
            r#"{"status": {"observedGeneration": 1000}}"#,
        ])
        .arg(format!(
            "{}/apis/apps/v1/namespaces/dev/deployments/airflow-scheduler",
            rig.kube_url
        ))
        .status()
        .unwrap();
    assert!(st.success());
    let out = finish("10s");
    assert!(out.status.success(), "{}", stderr(&out));
    let keys = github_fingerprints(&rig);
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_ne!(keys[0], old_fp);
}

/// The pids of sealkey processes running in `dir` (each rig has its own directory).
fn sealkey_pids_in(dir: &std::path::Path) -> Vec<u32> {
    let mut pids = vec![];
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let exe = std::fs::read_link(entry.path().join("exe")).ok();
        let cwd = std::fs::read_link(entry.path().join("cwd")).ok();
        if exe.is_some_and(|e| e.ends_with("sealkey")) && cwd.as_deref() == Some(dir) {
            pids.push(pid);
        }
    }
    pids
}

// Was: no signal handling. SIGTERM while `rotate --store` waited for GitHub's answer to the new
// key left it registered with its private half gone; nothing had been stored.
#[test]
fn a_signal_while_the_store_rotation_registers_deletes_the_new_key_and_stores_nothing() {
    let rig = Rig::start();
    let old_fp = rig.live_fingerprint().unwrap();
    let before = rig.stages();
    rig.github.state().stall_registrations_ms = 8_000;
    let dir = rig.dir.path().to_path_buf();
    let github = rig.github.clone();
    let killer = std::thread::spawn(move || {
        let began = Instant::now();
        while github.keys("acme/dags").len() < 2 {
            assert!(
                began.elapsed() < Duration::from_secs(60),
                "never registered"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        for pid in sealkey_pids_in(&dir) {
            let _ = Command::new("kill")
                .args(["-s", "TERM", &pid.to_string()])
                .status();
        }
    });
    let out = rig.rotate(&[]);
    killer.join().unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(143), "{err}");
    assert!(
        err.contains("stopped by SIGTERM") && err.contains("deleted the new key"),
        "{err}"
    );
    assert_eq!(github_fingerprints(&rig), vec![old_fp.clone()], "{err}");
    assert_eq!(rig.live_fingerprint().as_deref(), Some(old_fp.as_str()));
    assert_eq!(rig.stages(), before, "the store changed");
}
