//! Rotation through sealkey's real Kubernetes client against kmock (a stateful API stand-in) on
//! 127.0.0.1, with a fault-injecting proxy between them for the Kubernetes column of the fault
//! matrix (409, 403, connection dropped after the server acted). GitHub is an in-memory registry
//! here; the CLI tests run the same flow against the fake GitHub server. The Secret is read back
//! with curl and its key checked with ssh-keygen.

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
use support::kmock::Kmock;
use support::*;

#[derive(Default)]
struct Registry {
    keys: RefCell<Vec<DeployKeyInfo>>,
    next: Cell<u64>,
    requests: Cell<usize>,
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
        Ok(k)
    }
    async fn delete(&self, id: u64) -> Result<()> {
        self.requests.set(self.requests.get() + 1);
        self.keys.borrow_mut().retain(|k| k.id != id);
        Ok(())
    }
}

struct World {
    kmock: Kmock,
    proxy: FaultProxy,
    registry: Registry,
    old_public: String,
    dir: tempfile::TempDir,
}

fn deployment(name: &str, mount: Value) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": "dev"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {
                "containers": [{"name": "git-sync", "image": "registry.k8s.io/git-sync/git-sync:v4.4.0", "volumeMounts": [mount]}],
                "volumes": [{"name": "key", "secret": {"secretName": "airflow-ssh-secret"}}]}}},
        "status": {"replicas": 1, "updatedReplicas": 1, "availableReplicas": 1, "readyReplicas": 1},
    })
}

fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let (key_path, old_public) = ssh_keypair(dir.path(), "ed25519", "old.TEST-ONLY");
    let pem = std::fs::read(&key_path).unwrap();
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let secret = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "airflow-ssh-secret", "namespace": "dev",
            "labels": {"team": "data", "app.kubernetes.io/managed-by": "sealkey"},
            "annotations": {"owner": "data-eng", "sealkey.io/for": "airflow-chart"}},
        "type": "Opaque",
        "data": {"gitSshKey": b64(&pem), "extra": b64(b"keep me")},
    });
    let kmock = Kmock::start(&[
        secret,
        deployment(
            "airflow-scheduler",
            json!({"name": "key", "mountPath": "/etc/git-secret/ssh", "subPath": "gitSshKey"}),
        ),
        deployment(
            "git-sync",
            json!({"name": "key", "mountPath": "/etc/git-secret"}),
        ),
    ]);
    let proxy = FaultProxy::start(kmock.port);
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
        kmock,
        proxy,
        registry,
        old_public,
        dir,
    }
}

fn settings() -> RotateSettings {
    let mut s = RotateSettings::new("kmock", "dev", "airflow-ssh-secret", "sealkey:acme/dags");
    s.sync_wait = Duration::from_millis(10);
    s.poll_interval = Duration::from_millis(10);
    s.timeout = Duration::from_secs(10);
    s
}

fn run_rotation(w: &World) -> Result<rotate::Rotated> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let kc = w.kmock.kubeconfig_for(&w.proxy.url(), "dev");
        let cluster = Cluster::connect(&ConnectSettings {
            kubeconfig: Some(kc),
            ..Default::default()
        })
        .await?;
        rotate::rotate_in_cluster(&settings(), &cluster, &w.registry, &|_: Step, _: &str| {}).await
    })
}

/// The public key (bare) in the live Secret, by ssh-keygen.
fn live_public(w: &World) -> (String, Value) {
    let secret = w.kmock.secret("dev", "airflow-ssh-secret").unwrap();
    let pem = b64d(&secret["data"]["gitSshKey"]);
    (bare(&ssh_public_of(w.dir.path(), &pem)), secret)
}

/// Scope 5 of the issue, checked with curl + ssh-keygen: the live key is registered; the only
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
        .kmock
        .get("/apis/apps/v1/namespaces/dev/deployments/airflow-scheduler")
        .unwrap();
    assert!(
        d["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"]
            .is_string()
    );
    let g = w
        .kmock
        .get("/apis/apps/v1/namespaces/dev/deployments/git-sync")
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
            .starts_with("PATCH /api/v1/namespaces/dev/secrets/airflow-ssh-secret?")
            && l.contains("fieldManager=sealkey")),
        "{:?}",
        w.proxy.log()
    );
}

/// Kubernetes column of the fault matrix over real HTTP: (operation, method, path, fault).
#[test]
fn kubernetes_faults_at_every_step_keep_the_invariant_over_http() {
    let ops: [(&str, &str, &str); 5] = [
        (
            "read Secret",
            "GET",
            "/api/v1/namespaces/dev/secrets/airflow-ssh-secret",
        ),
        (
            "update Secret",
            "PATCH",
            "/api/v1/namespaces/dev/secrets/airflow-ssh-secret",
        ),
        (
            "list workloads",
            "GET",
            "/apis/apps/v1/namespaces/dev/deployments?",
        ),
        (
            "restart",
            "PATCH",
            "/apis/apps/v1/namespaces/dev/deployments/airflow-scheduler",
        ),
        (
            "rollout status",
            "GET",
            "/apis/apps/v1/namespaces/dev/deployments/airflow-scheduler",
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
                path: path.into(),
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
fn dry_run_sends_every_write_as_a_server_side_dry_run_and_registers_nothing() {
    let w = world();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let done = rt
        .block_on(async {
            let kc = w.kmock.kubeconfig_for(&w.proxy.url(), "dev");
            let cluster = Cluster::connect(&ConnectSettings {
                kubeconfig: Some(kc),
                dry_run: true,
                ..Default::default()
            })
            .await?;
            let mut s = settings();
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
}

#[test]
fn a_server_without_apply_gets_a_patch_carrying_the_read_resource_version() {
    let w = world();
    // 415 Unsupported Media Type: what a server without server-side apply answers.
    w.proxy.arm(Rule {
        method: "PATCH",
        path: "/api/v1/namespaces/dev/secrets/airflow-ssh-secret".into(),
        fault: ProxyFault::Status(415),
    });
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let method = rt.block_on(async {
        let kc = w.kmock.kubeconfig_for(&w.proxy.url(), "dev");
        let cluster = Cluster::connect(&ConnectSettings {
            kubeconfig: Some(kc),
            ..Default::default()
        })
        .await
        .unwrap();
        let doc = json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "airflow-ssh-secret", "namespace": "dev", "resourceVersion": "7"},
            "data": {"extra": base64::engine::general_purpose::STANDARD.encode("changed")},
        });
        cluster.write_secret(&doc).await.unwrap()
    });
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
    let secret = w.kmock.secret("dev", "airflow-ssh-secret").unwrap();
    assert_eq!(b64d(&secret["data"]["extra"]), b"changed");
    assert_eq!(
        secret["metadata"]["resourceVersion"], "7",
        "the precondition travelled in the patch"
    );
    assert_eq!(secret["metadata"]["labels"]["team"], "data");
}

fn run_rotation_with(w: &World, s: &RotateSettings) -> Result<rotate::Rotated> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let kc = w.kmock.kubeconfig_for(&w.proxy.url(), "dev");
        let cluster = Cluster::connect(&ConnectSettings {
            kubeconfig: Some(kc),
            ..Default::default()
        })
        .await?;
        rotate::rotate_in_cluster(s, &cluster, &w.registry, &|_: Step, _: &str| {}).await
    })
}

/// The promise when a write's outcome was open: the live key (curl + ssh-keygen) is registered
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

/// Issue 22 over real HTTP: a Secret write answered 200 with the old object and never carried
/// out, and writes that commit after the client was dropped (within and after the bound).
// Was: the 200 was trusted (old key deleted, the live Secret held an unregistered... the old
// key, now deleted); the late write was "undone" by deleting the new key, then landed.
#[test]
fn secret_writes_that_succeed_wrongly_or_commit_late_never_cost_the_live_key_over_http() {
    let path = "/api/v1/namespaces/dev/secrets/airflow-ssh-secret";
    for (fault, bound_ms, completes) in [
        (ProxyFault::WrongSuccess, 400, false),
        (ProxyFault::WrongSuccessOld, 400, false),
        (ProxyFault::LateCommit(300), 10_000, true),
        (ProxyFault::LateCommit(1500), 300, false),
    ] {
        let w = world();
        let old = bare(&w.old_public);
        w.proxy.arm(Rule {
            method: "PATCH",
            path: path.into(),
            fault,
        });
        let mut s = settings();
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
            for _ in 0..100 {
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
