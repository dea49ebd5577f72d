//! `rotate --store` end to end on 127.0.0.1 against the real programs: moto (Secrets Manager),
//! the fake GitHub, a real kube-apiserver (scripts/dev-cluster) with ESO's CRDs, and the real
//! External Secrets Operator reconciling the ExternalSecret (it re-reads the store when the
//! force-sync annotation changes). A rotation leaves the new key live, AWSCURRENT/AWSPREVIOUS in
//! place and only the new deploy key; a failure (ESO down, the store refusing) rolls everything
//! back. No controller-manager runs, so the test plays the Deployment controller: it writes the
//! status a rollout would reach (`kubectl patch --subresource=status`).

mod support;

use serde_json::Value;
use std::cell::RefCell;
use std::process::Command;
use std::time::{Duration, Instant};
use support::moto::{sealkey_env, Moto, REGION};
use support::real_cluster::RealCluster;
use support::real_eso::{install_crds, static_credentials_store, RealEso};

const NAME: &str = "dev/airflow-ssh";

struct Rig {
    moto: Moto,
    github: support::fake_github::FakeGithub,
    // Dropped before the cluster it talks to.
    eso: RefCell<RealEso>,
    cluster: RealCluster,
    dir: tempfile::TempDir,
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

impl Rig {
    fn start() -> Rig {
        Rig::start_with(&[])
    }

    /// The rig with `seed` objects (workloads, with the status their controller would have
    /// written) in the cluster from the start.
    fn start_with(seed: &[Value]) -> Rig {
        let moto = Moto::start();
        let github = support::fake_github::FakeGithub::start();
        let cluster = RealCluster::start();
        install_crds(&cluster);
        cluster.kubectl_ok(&["create", "namespace", "dev"]);
        cluster.apply(&static_credentials_store("dev", "sealkey-aws", REGION));
        for obj in seed {
            let mut obj = obj.clone();
            let status = obj.as_object_mut().unwrap().remove("status");
            cluster.apply(&obj.to_string());
            if let Some(status) = status {
                let kind = obj["kind"].as_str().unwrap().to_lowercase();
                let name = obj["metadata"]["name"].as_str().unwrap();
                cluster.kubectl_ok(&[
                    "patch",
                    &kind,
                    name,
                    "-n",
                    "dev",
                    "--subresource=status",
                    "--type=merge",
                    "-p",
                    &serde_json::json!({ "status": status }).to_string(),
                ]);
            }
        }
        let eso = RefCell::new(RealEso::start(&cluster, &moto));
        let dir = tempfile::tempdir().unwrap();
        let rig = Rig {
            moto,
            github,
            eso,
            cluster,
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
            "dev",
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
        let es = rig.dir.path().join("es.yaml");
        std::fs::write(&es, &out.stdout).unwrap();
        let applied =
            rig.cluster
                .kubectl(&["apply", "--validate=strict", "-f", es.to_str().unwrap()]);
        assert!(applied.status.success(), "{}", stderr(&applied));
        let fp = out_fingerprint(&out);
        rig.wait_for_live(&fp);
        rig
    }

    fn sealkey(&self, args: &[&str]) -> std::process::Output {
        let mut env = self.moto.env();
        env.push(("GITHUB_TOKEN".into(), support::fake_github::TOKEN.into()));
        env.push((
            "KUBECONFIG".into(),
            self.cluster.kubeconfig().display().to_string(),
        ));
        let api = self.github.url();
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--api-url", &api]);
        sealkey_env(self.dir.path(), &all, &env, &[])
    }

    /// The object `kind/name` in namespace dev, as the admin reads it.
    fn get(&self, kind: &str, name: &str) -> Option<Value> {
        let out = self
            .cluster
            .kubectl(&["get", kind, name, "-n", "dev", "-o", "json"]);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).unwrap())
    }

    fn live_fingerprint(&self) -> Option<String> {
        let v = self.get("secret", "airflow-ssh-secret")?;
        v["metadata"]["annotations"]["sealkey.io/fingerprint"]
            .as_str()
            .map(String::from)
    }

    fn wait_for_live(&self, fp: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.live_fingerprint().as_deref() != Some(fp) {
            assert!(
                Instant::now() < deadline,
                "ESO did not render {fp} within 60 s; its log:\n{}",
                self.eso.borrow().log_tail()
            );
            std::thread::sleep(Duration::from_millis(200));
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
#[ignore = "needs the judges etcd, kube-apiserver and external-secrets (scripts/install-test-deps)"]
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
#[ignore = "needs the judges etcd, kube-apiserver and external-secrets (scripts/install-test-deps)"]
fn eso_not_syncing_rolls_back_the_store_version_and_the_new_key() {
    let rig = Rig::start();
    let old_fp = rig.live_fingerprint().unwrap();
    let before = rig.stages();
    rig.eso.borrow_mut().stop();
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
    // ESO, back, re-reads the store (it was asked to re-sync: the ExternalSecret's annotation
    // changed while it was down) and renders the old key, which is still registered.
    let stopped =
        rig.get("externalsecret", "airflow-ssh-secret").unwrap()["status"]["refreshTime"].clone();
    std::thread::sleep(Duration::from_millis(1100));
    rig.eso.borrow_mut().restart();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let es = rig.get("externalsecret", "airflow-ssh-secret").unwrap();
        if es["status"]["refreshTime"] != stopped {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ESO did not re-sync after its restart: {}\n{}",
            es["status"],
            rig.eso.borrow().log_tail()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    rig.wait_for_live(&old_fp);
}

#[test]
#[ignore = "needs the judges etcd, kube-apiserver and external-secrets (scripts/install-test-deps)"]
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
#[ignore = "needs the judges etcd, kube-apiserver and external-secrets (scripts/install-test-deps)"]
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
        // What the Deployment controller would write; observedGeneration: it has seen every
        // generation so far and the ones the restarts make (no controller-manager runs).
        "status": {"observedGeneration": 1000, "replicas": 1, "updatedReplicas": 1, "availableReplicas": 1, "readyReplicas": 1},
    })
}

impl Rig {
    fn restarted_at(&self) -> Option<String> {
        let d = self.get("deployment", "airflow-scheduler")?;
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .as_str()
            .map(String::from)
    }
}

#[test]
#[ignore = "needs the judges etcd, kube-apiserver and external-secrets (scripts/install-test-deps)"]
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
#[ignore = "needs the judges etcd, kube-apiserver and external-secrets (scripts/install-test-deps)"]
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
#[ignore = "needs the judges etcd, kube-apiserver and external-secrets (scripts/install-test-deps)"]
fn a_failed_rollout_keeps_the_old_key_through_finish_until_the_reader_rolled_out() {
    let rig = Rig::start_with(&[subpath_deployment()]);
    // The key `create --store --register` registered is titled without the cluster's identity
    // (create never contacts the cluster), which `--finish` deletes only when the Secret's
    // previous-fingerprint names it. A first rotation makes the live key one titled with the
    // identity, as rotations after the first are, so this test is about the rollout alone.
    let first = rig.rotate(&["--timeout", "30s"]);
    assert!(first.status.success(), "{}", stderr(&first));
    // From now on the Deployment controller sees no newer template: the next restart's
    // generation never rolls out.
    let generation =
        rig.get("deployment", "airflow-scheduler").unwrap()["metadata"]["generation"].clone();
    rig.cluster.kubectl_ok(&[
        "patch",
        "deployment",
        "airflow-scheduler",
        "-n",
        "dev",
        "--subresource=status",
        "--type=merge",
        "-p",
        &serde_json::json!({"status": {"observedGeneration": generation}}).to_string(),
    ]);
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
            "dev",
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
    rig.cluster.kubectl_ok(&[
        "patch",
        "deployment",
        "airflow-scheduler",
        "-n",
        "dev",
        "--subresource=status",
        "--type=merge",
        "-p",
        r#"{"status": {"observedGeneration": 1000}}"#,
    ]);
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
#[ignore = "needs the judges etcd, kube-apiserver and external-secrets (scripts/install-test-deps)"]
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

/// The Secret the real ESO wrote carries ESO's own marks (owner reference, labels): `rotate
/// --apply` recognises it as ESO's and refuses before any GitHub request, naming `--store`.
#[test]
#[ignore = "needs the judges etcd, kube-apiserver and external-secrets (scripts/install-test-deps)"]
fn rotate_apply_on_the_secret_the_real_eso_wrote_is_refused_and_names_store() {
    let rig = Rig::start();
    let old_fp = rig.live_fingerprint().unwrap();
    let live = rig.get("secret", "airflow-ssh-secret").unwrap();
    assert_eq!(
        live["metadata"]["ownerReferences"][0]["kind"], "ExternalSecret",
        "{live}"
    );
    let calls = rig.github.keys("acme/dags").len();
    let out = rig.sealkey(&[
        "rotate",
        "--repo",
        "acme/dags",
        "-n",
        "dev",
        "--secret-name",
        "airflow-ssh-secret",
        "--apply",
    ]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("External Secrets") && err.contains("--store"),
        "{err}"
    );
    assert_eq!(rig.github.keys("acme/dags").len(), calls);
    assert_eq!(github_fingerprints(&rig), vec![old_fp.clone()]);
    assert_eq!(rig.live_fingerprint().as_deref(), Some(old_fp.as_str()));
}
