//! Rotation through sealkey's real Kubernetes client against the real kube-apiserver (one control
//! plane for this test binary, a namespace per world), with a fault-injecting proxy in front of it
//! (behind `kubectl proxy`) for the Kubernetes column of the fault matrix (409, 403, connection
//! dropped after the server acted, wrong or late answers). Conflicts the server makes itself (a
//! Secret changed after sealkey read it) come from the server. GitHub is an in-memory registry
//! here; the CLI tests run the same flow against the fake GitHub server. The Secret is read back
//! with kubectl and its key checked with ssh-keygen. No controller runs: the test plays the
//! Deployment controller's status (`support::rollouts`).

mod support;

use base64::Engine as _;
use sealkey::cluster::{Cluster, ConnectSettings};
use sealkey::error::Result;
use sealkey::github::DeployKeyInfo;
use sealkey::rotate::{self, DeployKeyRegistry, RotateSettings, Step};
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::time::Duration;
use support::fault_proxy::{FaultProxy, ProxyFault, Rule};
use support::real_cluster::{KubectlProxy, RealCluster};
use support::rollouts::RolloutPlayer;
use support::*;

#[derive(Default)]
struct Registry {
    keys: RefCell<Vec<DeployKeyInfo>>,
    next: Cell<u64>,
    requests: Cell<usize>,
    /// Runs once, after the next key is registered (between sealkey's read of the Secret and
    /// its write).
    on_register: RefCell<Option<Box<dyn FnOnce()>>>,
}

impl DeployKeyRegistry for Registry {
    async fn list(&self) -> Result<Vec<DeployKeyInfo>> {
        self.requests.set(self.requests.get() + 1);
        Ok(self.keys.borrow().clone())
    }
    async fn register(
        &self,
        title: &str,
        public_key: &str,
        _read_only: bool,
    ) -> Result<DeployKeyInfo> {
        self.requests.set(self.requests.get() + 1);
        self.next.set(self.next.get() + 1);
        let k = DeployKeyInfo {
            id: self.next.get(),
            title: title.into(),
            key: bare(public_key),
            read_only: true,
            ..Default::default()
        };
        self.keys.borrow_mut().push(k.clone());
        let hook = self.on_register.borrow_mut().take();
        if let Some(hook) = hook {
            hook();
        }
        Ok(k)
    }
    async fn delete(&self, id: u64) -> Result<()> {
        self.requests.set(self.requests.get() + 1);
        self.keys.borrow_mut().retain(|k| k.id != id);
        Ok(())
    }
}

struct World {
    cluster: &'static RealCluster,
    /// This world's namespace.
    ns: String,
    proxy: FaultProxy,
    _plain: KubectlProxy,
    _rollouts: RolloutPlayer,
    registry: Registry,
    old_public: String,
    dir: tempfile::TempDir,
}

fn deployment(name: &str, mount: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {
                "containers": [{"name": "git-sync", "image": "registry.k8s.io/git-sync/git-sync:v4.4.0", "volumeMounts": [mount]}],
                "volumes": [{"name": "key", "secret": {"secretName": "airflow-ssh-secret"}}]}}},
    })
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let (key_path, old_public) = ssh_keypair(dir.path(), "ed25519", "old.TEST-ONLY");
    let pem = std::fs::read(&key_path).unwrap();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "airflow-ssh-secret",
            "labels": {"team": "data", "app.kubernetes.io/managed-by": "sealkey"},
            "annotations": {"owner": "data-eng", "sealkey.io/for": "airflow-chart"}},
        "type": "Opaque",
        "data": {"gitSshKey": b64(&pem), "extra": b64(b"keep me")},
    });
    let cluster = RealCluster::shared();
    let ns = cluster.namespace("rot");
    cluster.create(
        &ns,
        &[
            secret,
            deployment(
                "airflow-scheduler",
                json!({"name": "key", "mountPath": "/etc/git-secret/ssh", "subPath": "gitSshKey"}),
            ),
            deployment(
                "git-sync",
                json!({"name": "key", "mountPath": "/etc/git-secret"}),
            ),
        ],
    );
    // The Deployments' status, as their controller would have written it.
    let rollouts = RolloutPlayer::start(cluster, &ns);
    RolloutPlayer::settled(cluster, &ns);
    let plain = cluster.plain_http();
    let proxy = FaultProxy::start(plain.port);
    let registry = Registry::default();
    registry.next.set(500);
    registry.keys.borrow_mut().push(DeployKeyInfo {
        id: 7,
        title: "added by hand".into(),
        key: bare(&old_public),
        read_only: true,
        ..Default::default()
    });
    World {
        cluster,
        ns,
        proxy,
        _plain: plain,
        _rollouts: rollouts,
        registry,
        old_public,
        dir,
    }
}

fn settings(w: &World) -> RotateSettings {
    let mut s = RotateSettings::new("dev", &w.ns, "airflow-ssh-secret", "sealkey:acme/dags");
    s.sync_wait = Duration::from_millis(10);
    s.poll_interval = Duration::from_millis(50);
    s.timeout = Duration::from_secs(10);
    s
}

fn run_rotation(w: &World) -> Result<rotate::Rotated> {
    run_rotation_with(w, &settings(w))
}

impl World {
    /// The kubeconfig sealkey uses: through the fault proxy, as the admin, in this namespace.
    fn kubeconfig(&self) -> std::path::PathBuf {
        self.cluster.kubeconfig_via(&self.proxy.url(), &self.ns)
    }

    /// `path` with this world's namespace for `NS`.
    fn path(&self, path: &str) -> String {
        path.replace("NS", &self.ns)
    }
}

/// The public key (bare) in the live Secret, by ssh-keygen.
fn live_public(w: &World) -> (String, Value) {
    let secret = w.cluster.secret(&w.ns, "airflow-ssh-secret").unwrap();
    let pem = b64d(&secret["data"]["gitSshKey"]);
    (bare(&ssh_public_of(w.dir.path(), &pem)), secret)
}

/// The rotation's promise, checked with kubectl + ssh-keygen: the live key is registered; the only
/// registered keys are the live one and the pre-run one; other data, labels, annotations survive.
fn assert_invariant(w: &World, cell: &str) -> String {
    let (live, secret) = live_public(w);
    let keys = w.registry.keys.borrow();
    assert!(
        keys.iter().any(|k| k.key == live),
        "{cell}: live key not registered"
    );
    for k in keys.iter() {
        assert!(
            k.key == live || k.key == bare(&w.old_public),
            "{cell}: stray key {}",
            k.title
        );
        assert!(k.read_only, "{cell}");
    }
    assert_eq!(b64d(&secret["data"]["extra"]), b"keep me", "{cell}");
    assert_eq!(secret["metadata"]["labels"]["team"], "data", "{cell}");
    assert_eq!(
        secret["metadata"]["annotations"]["owner"], "data-eng",
        "{cell}"
    );
    live
}

#[test]
#[ignore = "needs the judges (scripts/install-test-deps)"]
fn rotate_through_kube_client_swaps_the_key_restarts_the_subpath_consumer_and_keeps_the_rest() {
    let w = world();
    let done = run_rotation(&w).unwrap();
    let live = assert_invariant(&w, "happy path");
    let keys = w.registry.keys.borrow();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert_eq!(keys[0].key, live);
    assert_ne!(live, bare(&w.old_public));
    assert_eq!(bare(&done.new_public), live);
    assert_eq!(w.registry.requests.get(), 3, "list, create, delete");
    assert_eq!(done.restarted, ["deployment/airflow-scheduler"]);
    // The restart is the one kubectl rollout restart makes.
    let d = w
        .cluster
        .get(&w.path("/apis/apps/v1/namespaces/NS/deployments/airflow-scheduler"))
        .unwrap();
    assert!(
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string()
    );
    let g = w
        .cluster
        .get(&w.path("/apis/apps/v1/namespaces/NS/deployments/git-sync"))
        .unwrap();
    assert!(
        g["spec"]["template"]["metadata"]
            .get("annotations")
            .is_none(),
        "plain volume consumer was restarted"
    );
    let (_, secret) = live_public(&w);
    let fp = String::from_utf8(tool("ssh-keygen", &["-l", "-f", "-"], live.as_bytes())).unwrap();
    assert!(fp.contains(
        secret["metadata"]["annotations"]["sealkey.io/fingerprint"]
            .as_str()
            .unwrap()
    ));
    assert!(
        w.proxy.log().iter().any(|l| l
            .starts_with(&w.path("PATCH /api/v1/namespaces/NS/secrets/airflow-ssh-secret?"))
            && l.contains("fieldManager=sealkey")),
        "{:?}",
        w.proxy.log()
    );
    // The real server's record: the key is sealkey's (server-side apply), the restart too.
    let managers = |obj: &Value| -> Vec<(String, String)> {
        obj["metadata"]["managedFields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["manager"].as_str().unwrap().to_string(),
                    m["operation"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    assert!(
        managers(&secret).contains(&("sealkey".into(), "Apply".into())),
        "{:?}",
        managers(&secret)
    );
    assert!(
        managers(&d).contains(&("sealkey".into(), "Update".into())),
        "{:?}",
        managers(&d)
    );
}

/// Kubernetes column of the fault matrix over real HTTP: (operation, method, path, fault).
#[test]
#[ignore = "needs the judges (scripts/install-test-deps)"]
fn kubernetes_faults_at_every_step_keep_the_invariant_over_http() {
    let ops: [(&str, &str, &str); 5] = [
        (
            "read Secret",
            "GET",
            "/api/v1/namespaces/NS/secrets/airflow-ssh-secret",
        ),
        (
            "update Secret",
            "PATCH",
            "/api/v1/namespaces/NS/secrets/airflow-ssh-secret",
        ),
        (
            "list workloads",
            "GET",
            "/apis/apps/v1/namespaces/NS/deployments?",
        ),
        (
            "restart",
            "PATCH",
            "/apis/apps/v1/namespaces/NS/deployments/airflow-scheduler",
        ),
        (
            "rollout status",
            "GET",
            "/apis/apps/v1/namespaces/NS/deployments/airflow-scheduler",
        ),
    ];
    let faults = [
        ProxyFault::Status(409),
        ProxyFault::Status(403),
        ProxyFault::DropAfterForward,
    ];
    let mut cells = 0;
    for (op, method, path) in ops {
        for fault in faults {
            let w = world();
            w.proxy.arm(Rule {
                method,
                path: w.path(path),
                fault,
            });
            let cell = format!("{op} x {fault:?}");
            let result = run_rotation(&w);
            assert!(
                w.proxy.fired(),
                "{cell}: fault never fired; log {:?}",
                w.proxy.log()
            );
            let live = assert_invariant(&w, &cell);
            eprintln!(
                "{cell}: {}",
                match &result {
                    Ok(_) => "completed".to_string(),
                    Err(e) => e.to_string(),
                }
            );
            match result {
                Ok(_) => assert_eq!(w.registry.keys.borrow().len(), 1, "{cell}"),
                Err(e) => {
                    assert_eq!(e.exit_code(), 3, "{cell}: {e}");
                    let changed = live != bare(&w.old_public);
                    // Failed before the Secret changed: everything as before.
                    if !changed {
                        assert_eq!(w.registry.keys.borrow().len(), 1, "{cell}: {e}");
                    }
                }
            }
            cells += 1;
        }
    }
    assert_eq!(cells, 15);
}

#[test]
#[ignore = "needs the judges (scripts/install-test-deps)"]
fn dry_run_sends_every_write_as_a_server_side_dry_run_and_registers_nothing() {
    let w = world();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let done = rt
        .block_on(async {
            let kc = w.kubeconfig();
            let cluster = Cluster::connect(&ConnectSettings {
                kubeconfig: Some(kc),
                dry_run: true,
                ..Default::default()
            })
            .await?;
            let mut s = settings(&w);
            s.dry_run = true;
            rotate::rotate_in_cluster(&s, &cluster, &w.registry, &|_: Step, _: &str| {}).await
        })
        .unwrap();
    assert_eq!(done.new_key_id, None);
    assert_eq!(done.consumers.len(), 2, "{:?}", done.consumers);
    let keys = w.registry.keys.borrow();
    assert_eq!(keys.len(), 1, "a dry run registered or deleted a key");
    assert_eq!(keys[0].key, bare(&w.old_public));
    let writes: Vec<String> = w
        .proxy
        .log()
        .into_iter()
        .filter(|l| !l.starts_with("GET "))
        .collect();
    assert!(!writes.is_empty());
    for l in &writes {
        assert!(l.contains("dryRun=All"), "write without dryRun: {l}");
    }
    assert!(
        !writes.iter().any(|l| l.contains("/deployments/")),
        "a dry run restarted something: {writes:?}"
    );
    // The real server honours dryRun (the stand-in it replaced ignored it): the Secret still
    // holds the old key.
    assert_eq!(live_public(&w).0, bare(&w.old_public));
}

/// An error and its causes, one after the other.
fn causes(e: &sealkey::error::Error) -> String {
    let mut said = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        said.push_str(&format!(" / {c}"));
        cause = c.source();
    }
    said
}

/// Writes `extra = value` into the world's Secret through sealkey's client, with `rv` as the
/// document's resourceVersion, the server-side apply answered 415 by the proxy (as a server
/// without apply would).
fn write_without_apply(w: &World, rv: &str, value: &str) -> Result<sealkey::cluster::WriteMethod> {
    w.proxy.arm(Rule {
        method: "PATCH",
        path: w.path("/api/v1/namespaces/NS/secrets/airflow-ssh-secret"),
        fault: ProxyFault::Status(415),
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cluster = Cluster::connect(&ConnectSettings {
            kubeconfig: Some(w.kubeconfig()),
            ..Default::default()
        })
        .await
        .unwrap();
        let doc = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "airflow-ssh-secret", "namespace": w.ns, "resourceVersion": rv},
            "data": {"extra": base64::engine::general_purpose::STANDARD.encode(value)},
        });
        cluster.write_secret(&doc).await
    })
}

#[test]
#[ignore = "needs the judges (scripts/install-test-deps)"]
fn a_server_without_apply_gets_a_patch_carrying_the_read_resource_version() {
    let w = world();
    let read = w.cluster.secret(&w.ns, "airflow-ssh-secret").unwrap();
    let rv = read["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    let method = write_without_apply(&w, &rv, "changed").unwrap();
    assert!(w.proxy.fired());
    assert_eq!(method, sealkey::cluster::WriteMethod::PreconditionedPatch);
    let patches: Vec<String> = w
        .proxy
        .log()
        .into_iter()
        .filter(|l| l.starts_with("PATCH"))
        .collect();
    assert_eq!(patches.len(), 2, "{patches:?}");
    assert!(
        !patches[1].contains("force=true"),
        "the fallback is not an apply: {patches:?}"
    );
    let secret = w.cluster.secret(&w.ns, "airflow-ssh-secret").unwrap();
    assert_eq!(b64d(&secret["data"]["extra"]), b"changed");
    assert_eq!(secret["metadata"]["labels"]["team"], "data");
    // The precondition travelled in the patch: the same write again, now with a stale
    // resourceVersion, is refused by the real server (409 Conflict) and changes nothing. (A stand-in
    // that keeps no resourceVersion stored the one in the patch and could not refuse.)
    assert_ne!(secret["metadata"]["resourceVersion"], rv.as_str());
    let e = write_without_apply(&w, &rv, "stale").unwrap_err();
    assert_eq!(e.exit_code(), 3, "{e}");
    assert!(e.to_string().contains("409"), "{e}");
    let secret = w.cluster.secret(&w.ns, "airflow-ssh-secret").unwrap();
    assert_eq!(b64d(&secret["data"]["extra"]), b"changed");
}

/// A Secret changed by someone else after sealkey read it (here: another key put in while sealkey
/// registered its new one): the real server refuses sealkey's apply, whose resourceVersion is
/// the one it read (409 Conflict). The rotation stops at `update Secret`, withdraws the key it
/// registered, and the other writer's key stays live.
#[test]
#[ignore = "needs the judges (scripts/install-test-deps)"]
fn a_secret_changed_after_it_was_read_is_refused_by_the_real_server_and_nothing_is_overwritten() {
    let w = world();
    let (other_path, other_public) = ssh_keypair(w.dir.path(), "ed25519", "other.TEST-ONLY");
    let other =
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(other_path).unwrap());
    let (cluster, ns) = (w.cluster, w.ns.clone());
    *w.registry.on_register.borrow_mut() = Some(Box::new(move || {
        let patch = json!({"data": {"gitSshKey": other}}).to_string();
        cluster.kubectl_ok(&[
            "patch",
            "secret",
            "airflow-ssh-secret",
            "-n",
            &ns,
            "--type",
            "merge",
            "-p",
            &patch,
        ]);
    }));
    let e = run_rotation(&w).unwrap_err();
    assert_eq!(e.exit_code(), 3, "{e}");
    assert!(causes(&e).contains("409"), "{}", causes(&e));
    // It says what the Secret holds now (it said "still holds the old key" before).
    let said = e.to_string();
    assert!(
        said.contains("changed by someone else") && !said.contains("still holds the old key"),
        "{said}"
    );
    assert_eq!(
        live_public(&w).0,
        bare(&other_public),
        "sealkey overwrote it"
    );
    let keys = w.registry.keys.borrow();
    assert_eq!(keys.len(), 1, "the new key was not withdrawn: {keys:?}");
    assert_eq!(keys[0].key, bare(&w.old_public));
    drop(keys);
    // Nothing was restarted.
    let d = w
        .cluster
        .get(&w.path("/apis/apps/v1/namespaces/NS/deployments/airflow-scheduler"))
        .unwrap();
    assert!(d["spec"]["template"]["metadata"]
        .get("annotations")
        .is_none());
}

fn run_rotation_with(w: &World, s: &RotateSettings) -> Result<rotate::Rotated> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let cluster = Cluster::connect(&ConnectSettings {
            kubeconfig: Some(w.kubeconfig()),
            ..Default::default()
        })
        .await?;
        rotate::rotate_in_cluster(s, &cluster, &w.registry, &|_: Step, _: &str| {}).await
    })
}

/// The promise when a write's outcome was open: the live key (kubectl + ssh-keygen) is registered
/// and every key in `kept` (bare public keys) is still registered.
fn assert_live_registered_and_kept(w: &World, kept: &[&str], cell: &str) -> String {
    let (live, _) = live_public(w);
    let keys = w.registry.keys.borrow();
    assert!(
        keys.iter().any(|k| k.key == live),
        "{cell}: live key not registered"
    );
    for k in kept {
        assert!(
            keys.iter().any(|r| r.key == *k),
            "{cell}: a key something depends on was deleted"
        );
    }
    live
}

/// Over real HTTP: a Secret write answered 200 with the old object and never carried
/// out, and writes that commit after the client was dropped (within and after the bound).
// Was: the 200 was trusted (old key deleted, the live Secret held an unregistered... the old
// key, now deleted); the late write was "undone" by deleting the new key, then landed.
#[test]
#[ignore = "needs the judges (scripts/install-test-deps)"]
fn secret_writes_that_succeed_wrongly_or_commit_late_never_cost_the_live_key_over_http() {
    for (fault, bound_ms, completes) in [
        (ProxyFault::WrongSuccess, 400, false),
        (ProxyFault::WrongSuccessOld, 400, false),
        (ProxyFault::LateCommit(300), 10_000, true),
        (ProxyFault::LateCommit(4000), 300, false),
    ] {
        let w = world();
        let old = bare(&w.old_public);
        w.proxy.arm(Rule {
            method: "PATCH",
            path: w.path("/api/v1/namespaces/NS/secrets/airflow-ssh-secret"),
            fault,
        });
        let mut s = settings(&w);
        s.write_confirm_timeout = Duration::from_millis(bound_ms);
        let cell = format!("update Secret x {fault:?}, bound {bound_ms} ms");
        let result = run_rotation_with(&w, &s);
        assert!(w.proxy.fired(), "{cell}");
        let live = assert_live_registered_and_kept(&w, &[], &cell);
        if completes {
            result.unwrap_or_else(|e| panic!("{cell}: {e}"));
            let keys = w.registry.keys.borrow();
            assert_eq!(keys.len(), 1, "{cell}");
            assert_eq!(keys[0].key, live, "{cell}");
            assert_ne!(live, old, "{cell}");
            continue;
        }
        let e = result.expect_err(&cell);
        assert_eq!(e.exit_code(), 3, "{cell}: {e}");
        assert_eq!(live, old, "{cell}: the Secret changed before the run ended");
        assert_live_registered_and_kept(&w, &[&old], &cell);
        assert_eq!(w.registry.keys.borrow().len(), 2, "{cell}: both keys kept");
        if let ProxyFault::LateCommit(_) = fault {
            // The write lands after the run gave up: the new key is live and still registered.
            let mut landed = false;
            for _ in 0..300 {
                if live_public(&w).0 != old {
                    landed = true;
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            assert!(landed, "{cell}: the late write never landed");
            assert_live_registered_and_kept(&w, &[&old], &format!("{cell}, landed"));
        }
    }
}
