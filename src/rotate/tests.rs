//! The rotation plan against in-memory GitHub and cluster fakes that fail on command: the fault
//! matrix (every step x every fault) and the happy paths. Faults that hide an effect (a timeout
//! after GitHub created the key, a connection dropped after the API server stored the Secret)
//! apply the effect and then fail, which is the hardest case for rollback.

use super::*;
use crate::cluster::RolloutStatus;
use crate::cluster::{LiveSecret, Workload, WorkloadKind};
use crate::emit::live::{key_in_secret, rotated_secret};
use crate::emit::{self, keys, keys::PREVIOUS_FINGERPRINT};
use crate::error::{Error, Result};
use crate::github::DeployKeyInfo;
use crate::keygen::DeployKey;
use serde_json::{json, Value};
use std::cell::{Cell, RefCell};
use std::future::Future;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Fault {
    Github5xx,
    Github422,
    GithubTimeout,
    Github403,
    Kube409,
    Kube403,
    KubeDropped,
}

impl Fault {
    pub(super) const GITHUB: [Fault; 4] = [
        Fault::Github5xx,
        Fault::Github422,
        Fault::GithubTimeout,
        Fault::Github403,
    ];
    pub(super) const KUBE: [Fault; 3] = [Fault::Kube409, Fault::Kube403, Fault::KubeDropped];

    fn error(self, op: &str) -> Error {
        let (service, message) = match self {
            Fault::Github5xx => ("GitHub", format!("{op}: 502 Bad Gateway")),
            Fault::Github422 => ("GitHub", format!("{op}: 422 Validation Failed")),
            Fault::GithubTimeout => ("GitHub", format!("{op}: timed out after 30 s")),
            Fault::Github403 => (
                "GitHub",
                format!("{op}: 403 Resource not accessible by integration"),
            ),
            Fault::Kube409 => (
                "Kubernetes API",
                format!("{op}: 409 Conflict: the object has been modified"),
            ),
            Fault::Kube403 => ("Kubernetes API", format!("{op}: 403 Forbidden")),
            Fault::KubeDropped => (
                "Kubernetes API",
                format!("{op}: connection closed before message completed"),
            ),
        };
        Error::remote(service, message, "test fault")
    }

    /// Faults after which the request did take effect.
    fn effect_lands(self) -> bool {
        matches!(self, Fault::GithubTimeout | Fault::KubeDropped)
    }
}

#[derive(Default)]
pub(super) struct FakeGithub {
    pub keys: RefCell<Vec<DeployKeyInfo>>,
    next_id: Cell<u64>,
    pub requests: RefCell<Vec<String>>,
    /// (operation, fault): fails the first call of that operation.
    pub fault: RefCell<Option<(&'static str, Fault)>>,
}

impl FakeGithub {
    pub fn with_key(public: &str, title: &str) -> Self {
        let gh = FakeGithub::default();
        gh.next_id.set(100);
        gh.keys.borrow_mut().push(DeployKeyInfo {
            id: 99,
            title: title.into(),
            key: bare(public),
            read_only: true,
            ..Default::default()
        });
        gh
    }
    fn take_fault(&self, op: &'static str) -> Option<Fault> {
        let mut f = self.fault.borrow_mut();
        match *f {
            Some((o, fault)) if o == op => {
                *f = None;
                Some(fault)
            }
            _ => None,
        }
    }
}

impl DeployKeyRegistry for FakeGithub {
    async fn list(&self) -> Result<Vec<DeployKeyInfo>> {
        self.requests.borrow_mut().push("GET keys".into());
        if let Some(f) = self.take_fault("list") {
            return Err(f.error("GET /repos/acme/dags/keys"));
        }
        Ok(self.keys.borrow().clone())
    }
    async fn register(
        &self,
        title: &str,
        public_key: &str,
        _read_only: bool,
    ) -> Result<DeployKeyInfo> {
        self.requests.borrow_mut().push("POST keys".into());
        let fault = self.take_fault("register");
        if fault.is_none_or(Fault::effect_lands) {
            let id = self.next_id.get() + 1;
            self.next_id.set(id);
            let k = DeployKeyInfo {
                id,
                title: title.into(),
                key: bare(public_key),
                read_only: true,
                ..Default::default()
            };
            self.keys.borrow_mut().push(k.clone());
            if fault.is_none() {
                return Ok(k);
            }
        }
        Err(fault.unwrap().error("POST /repos/acme/dags/keys"))
    }
    async fn delete(&self, id: u64) -> Result<()> {
        self.requests.borrow_mut().push(format!("DELETE keys/{id}"));
        let fault = self.take_fault("delete");
        if fault.is_none_or(Fault::effect_lands) {
            self.keys.borrow_mut().retain(|k| k.id != id);
        }
        match fault {
            None => Ok(()),
            Some(f) => Err(f.error(&format!("DELETE /repos/acme/dags/keys/{id}"))),
        }
    }
}

pub(super) struct FakeCluster {
    pub secret: RefCell<Option<Value>>,
    pub workloads: Vec<Workload>,
    pub restarted: RefCell<Vec<String>>,
    pub fault: RefCell<Option<(&'static str, Fault)>>,
    /// Keep failing instead of failing once (an RBAC gap, not a hiccup).
    pub persistent: Cell<bool>,
    /// Rollout status answers "not done" this many times first.
    pub rollout_pending: Cell<u32>,
}

impl FakeCluster {
    pub fn new(secret: Value, workloads: Vec<Workload>) -> Self {
        FakeCluster {
            secret: RefCell::new(Some(secret)),
            workloads,
            restarted: RefCell::default(),
            fault: RefCell::default(),
            persistent: Cell::new(false),
            rollout_pending: Cell::new(1),
        }
    }
    fn take_fault(&self, op: &'static str) -> Option<Fault> {
        let mut f = self.fault.borrow_mut();
        match *f {
            Some((o, fault)) if o == op => {
                if !self.persistent.get() {
                    *f = None;
                }
                Some(fault)
            }
            _ => None,
        }
    }
    pub fn live(&self) -> LiveSecret {
        LiveSecret::from_json(self.secret.borrow().clone().unwrap()).unwrap()
    }
}

impl SecretCluster for FakeCluster {
    async fn read_secret(&self, _ns: &str, _name: &str) -> Result<Option<LiveSecret>> {
        if let Some(f) = self.take_fault("read") {
            return Err(f.error("get Secret dev/airflow-ssh-secret"));
        }
        self.secret
            .borrow()
            .clone()
            .map(LiveSecret::from_json)
            .transpose()
    }
    async fn write_secret(&self, doc: &Value) -> Result<()> {
        let fault = self.take_fault("write");
        let current_rv =
            self.secret.borrow().as_ref().unwrap()["metadata"]["resourceVersion"].clone();
        if doc["metadata"]["resourceVersion"] != current_rv {
            return Err(Fault::Kube409.error("apply Secret (stale resourceVersion)"));
        }
        if fault.is_none_or(Fault::effect_lands) {
            let mut stored = doc.clone();
            let rv: u64 = current_rv.as_str().unwrap().parse().unwrap();
            stored["metadata"]["resourceVersion"] = json!((rv + 1).to_string());
            *self.secret.borrow_mut() = Some(stored);
        }
        match fault {
            None => Ok(()),
            Some(f) => Err(f.error("apply Secret dev/airflow-ssh-secret")),
        }
    }
    async fn list_workloads(&self, _ns: &str) -> Result<Vec<Workload>> {
        if let Some(f) = self.take_fault("list_workloads") {
            return Err(f.error("list deployments in dev"));
        }
        Ok(self.workloads.clone())
    }
    async fn restart(&self, kind: WorkloadKind, _ns: &str, name: &str, _at: &str) -> Result<()> {
        let fault = self.take_fault("restart");
        if fault.is_none_or(Fault::effect_lands) {
            self.restarted
                .borrow_mut()
                .push(format!("{}/{name}", kind.as_str()));
        }
        match fault {
            None => Ok(()),
            Some(f) => Err(f.error(&format!("restart {}/{name}", kind.as_str()))),
        }
    }
    async fn rollout_status(
        &self,
        _kind: WorkloadKind,
        _ns: &str,
        _name: &str,
    ) -> Result<RolloutStatus> {
        if let Some(f) = self.take_fault("rollout_status") {
            return Err(f.error("read deployment"));
        }
        let left = self.rollout_pending.get();
        if left > 0 {
            self.rollout_pending.set(left - 1);
            return Ok(RolloutStatus {
                done: false,
                detail: "0 of 1 updated".into(),
            });
        }
        Ok(RolloutStatus {
            done: true,
            detail: "1 updated".into(),
        })
    }
}

pub(super) fn live_secret_doc(key: &DeployKey) -> Value {
    let pem = key.private_pem().unwrap();
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "airflow-ssh-secret",
            "namespace": "dev",
            "resourceVersion": "41",
            "labels": {"app.kubernetes.io/managed-by": "sealkey", "team": "data"},
            "annotations": {keys::FINGERPRINT: key.fingerprint(), keys::CONSUMER: "airflow-chart", "owner": "data-eng"},
        },
        "type": "Opaque",
        "data": {
            "gitSshKey": emit::b64(pem.expose_secret().as_bytes()).as_str(),
            "known_hosts": emit::b64(b"github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n").as_str(),
            "extra": emit::b64(b"keep me").as_str(),
        },
    })
}

fn subpath_deployment() -> Workload {
    let spec: k8s_openapi::api::core::v1::PodSpec = serde_json::from_value(json!({
        "containers": [{"name": "git-sync", "image": "x",
            "volumeMounts": [{"name": "k", "mountPath": "/etc/git-secret/ssh", "subPath": "gitSshKey"}]}],
        "volumes": [{"name": "k", "secret": {"secretName": "airflow-ssh-secret"}}],
    }))
    .unwrap();
    Workload {
        kind: WorkloadKind::Deployment,
        namespace: "dev".into(),
        name: "airflow-scheduler".into(),
        pod_spec: Some(spec),
        controlled: false,
    }
}

fn plain_volume_deployment() -> Workload {
    let spec: k8s_openapi::api::core::v1::PodSpec = serde_json::from_value(json!({
        "containers": [{"name": "git-sync", "image": "x", "volumeMounts": [{"name": "k", "mountPath": "/etc/git-secret"}]}],
        "volumes": [{"name": "k", "secret": {"secretName": "airflow-ssh-secret"}}],
    }))
    .unwrap();
    Workload {
        kind: WorkloadKind::Deployment,
        namespace: "dev".into(),
        name: "git-sync".into(),
        pod_spec: Some(spec),
        controlled: false,
    }
}

pub(super) fn settings() -> RotateSettings {
    let mut s = RotateSettings::new(
        "kind-test",
        "dev",
        "airflow-ssh-secret",
        "sealkey:acme/dags",
    );
    s.consumer = Some(Consumer::AirflowChart);
    s.sync_wait = Duration::from_millis(1);
    s.poll_interval = Duration::from_millis(1);
    s.timeout = Duration::from_secs(5);
    s
}

fn bare(public: &str) -> String {
    public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

fn block_on<F: Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

fn no_progress(_: Step, _: &str) {}

struct World {
    old: DeployKey,
    gh: FakeGithub,
    cluster: FakeCluster,
}

fn world(workloads: Vec<Workload>) -> World {
    let old = DeployKey::generate(KeyType::Ed25519, "old").unwrap();
    let gh = FakeGithub::with_key(
        old.public_openssh(),
        "sealkey kind-test/dev/airflow-ssh-secret 2026-01-01",
    );
    let cluster = FakeCluster::new(live_secret_doc(&old), workloads);
    World { old, gh, cluster }
}

/// Scope 5: the live key is registered (read-only), and no other key than the live one and the
/// pre-run key is registered; the Secret's other keys, labels and annotations survive.
fn assert_invariant(w: &World, cell: &str) -> String {
    let live = w.cluster.live();
    let live_fp = key_in_secret(&live, None)
        .unwrap()
        .key
        .fingerprint()
        .to_string();
    let keys = w.gh.keys.borrow();
    let fps: Vec<String> = keys.iter().filter_map(super::plan::fingerprint).collect();
    assert!(
        fps.contains(&live_fp),
        "{cell}: live key {live_fp} not registered; keys {fps:?}"
    );
    assert!(
        keys.iter().all(|k| k.read_only),
        "{cell}: a writable key is registered"
    );
    for fp in &fps {
        assert!(
            *fp == live_fp || fp == w.old.fingerprint(),
            "{cell}: stray key {fp} registered (live {live_fp})"
        );
    }
    assert_eq!(
        live.value("extra").unwrap().expose_secret(),
        b"keep me",
        "{cell}"
    );
    assert!(live.value("known_hosts").is_some(), "{cell}");
    assert_eq!(
        live.labels.get("team").map(String::as_str),
        Some("data"),
        "{cell}"
    );
    assert_eq!(
        live.annotations.get("owner").map(String::as_str),
        Some("data-eng"),
        "{cell}"
    );
    live_fp
}

fn assert_one_key_equal_to_live(w: &World, cell: &str) {
    let live_fp = assert_invariant(w, cell);
    let keys = w.gh.keys.borrow();
    assert_eq!(keys.len(), 1, "{cell}: {keys:?}");
    assert_eq!(
        super::plan::fingerprint(&keys[0]).as_deref(),
        Some(live_fp.as_str()),
        "{cell}"
    );
    assert_ne!(
        live_fp,
        w.old.fingerprint(),
        "{cell}: the key did not change"
    );
}

#[test]
fn happy_path_rotation_uses_three_github_requests_and_leaves_one_key_equal_to_the_live_secret() {
    let w = world(vec![subpath_deployment(), plain_volume_deployment()]);
    let done = block_on(rotate_in_cluster(
        &settings(),
        &w.cluster,
        &w.gh,
        &no_progress,
    ))
    .unwrap();
    assert_one_key_equal_to_live(&w, "happy path");
    assert_eq!(
        *w.gh.requests.borrow(),
        ["GET keys", "POST keys", "DELETE keys/99"]
    );
    assert_eq!(
        *w.cluster.restarted.borrow(),
        ["deployment/airflow-scheduler"]
    );
    assert_eq!(done.deleted.len(), 1);
    assert!(done.old_was_registered);
    let live = w.cluster.live();
    assert_eq!(live.annotations[PREVIOUS_FINGERPRINT], w.old.fingerprint());
    assert_eq!(live.annotations[keys::FINGERPRINT], done.new_fingerprint);
}

#[test]
fn keep_old_and_no_restart_leave_the_old_key_registered_and_finish_removes_it() {
    for (keep_old, restart) in [(true, true), (false, false)] {
        let w = world(vec![subpath_deployment()]);
        let mut s = settings();
        s.keep_old = keep_old;
        s.restart = restart;
        let done = block_on(rotate_in_cluster(&s, &w.cluster, &w.gh, &no_progress)).unwrap();
        assert!(done.kept_because.is_some());
        assert_eq!(w.gh.keys.borrow().len(), 2);
        assert_eq!(w.cluster.restarted.borrow().is_empty(), !restart);
        let fin = block_on(finish(&s, &w.cluster, &w.gh, &no_progress)).unwrap();
        assert_eq!(fin.deleted.len(), 1);
        assert_one_key_equal_to_live(&w, "keep-old/no-restart then finish");
    }
}

#[test]
fn a_conflicting_change_to_the_secret_aborts_and_deletes_the_new_key() {
    let w = world(vec![]);
    // Someone changes the Secret between our read and our write.
    struct Racing<'a>(&'a FakeCluster);
    impl SecretCluster for Racing<'_> {
        async fn read_secret(&self, ns: &str, n: &str) -> Result<Option<LiveSecret>> {
            self.0.read_secret(ns, n).await
        }
        async fn write_secret(&self, doc: &Value) -> Result<()> {
            self.0.secret.borrow_mut().as_mut().unwrap()["metadata"]["resourceVersion"] =
                json!("42");
            self.0.write_secret(doc).await
        }
        async fn list_workloads(&self, ns: &str) -> Result<Vec<Workload>> {
            self.0.list_workloads(ns).await
        }
        async fn restart(&self, k: WorkloadKind, ns: &str, n: &str, at: &str) -> Result<()> {
            self.0.restart(k, ns, n, at).await
        }
        async fn rollout_status(
            &self,
            k: WorkloadKind,
            ns: &str,
            n: &str,
        ) -> Result<RolloutStatus> {
            self.0.rollout_status(k, ns, n).await
        }
    }
    let err = block_on(rotate_in_cluster(
        &settings(),
        &Racing(&w.cluster),
        &w.gh,
        &no_progress,
    ))
    .unwrap_err();
    assert!(err.to_string().contains("update Secret"), "{err}");
    assert!(err.to_string().contains("deleted the new key"), "{err}");
    assert_eq!(w.gh.keys.borrow().len(), 1);
    assert_eq!(assert_invariant(&w, "conflict"), w.old.fingerprint());
}

/// One cell of the matrix: (operation faulted, fault). Returns whether the run succeeded.
fn direct_cell(op: &'static str, fault: Fault) -> String {
    let w = world(vec![subpath_deployment(), plain_volume_deployment()]);
    let cell = format!("rotate --apply, {op} x {fault:?}");
    if Fault::GITHUB.contains(&fault) {
        *w.gh.fault.borrow_mut() = Some((op, fault));
    } else {
        *w.cluster.fault.borrow_mut() = Some((op, fault));
    }
    let result = block_on(rotate_in_cluster(
        &settings(),
        &w.cluster,
        &w.gh,
        &no_progress,
    ));
    assert_invariant(&w, &cell);
    let keys_after = w.gh.keys.borrow().len();
    match &result {
        Ok(_) => {
            assert_one_key_equal_to_live(&w, &cell);
            "completed; 1 key, equal to the live one".to_string()
        }
        Err(e) => {
            let msg = e.to_string();
            assert!(msg.starts_with("step `"), "{cell}: {msg}");
            assert_eq!(e.exit_code(), crate::error::exit::REMOTE, "{cell}: {msg}");
            let step = msg.split('`').nth(1).unwrap().to_string();
            let live = w.cluster.live();
            if live.annotations.contains_key(PREVIOUS_FINGERPRINT) {
                // A failed run that left both keys can always be finished.
                block_on(finish(&settings(), &w.cluster, &w.gh, &no_progress)).unwrap();
                assert_one_key_equal_to_live(&w, &format!("{cell} then --finish"));
                format!("exit 3 at `{step}`; new key live, old kept ({keys_after} keys); `--finish` then leaves 1")
            } else {
                assert_eq!(keys_after, 1, "{cell}");
                format!("exit 3 at `{step}`; rolled back: old key only, Secret unchanged")
            }
        }
    }
}

pub(super) const DIRECT_GITHUB_OPS: [&str; 3] = ["list", "register", "delete"];
pub(super) const DIRECT_KUBE_OPS: [&str; 5] = [
    "read",
    "write",
    "list_workloads",
    "restart",
    "rollout_status",
];

#[test]
fn fault_matrix_rotate_apply_keeps_the_invariant_in_every_cell() {
    let mut cells = 0;
    for op in DIRECT_GITHUB_OPS {
        for f in Fault::GITHUB {
            eprintln!("| GitHub `{op}` | {f:?} | {} |", direct_cell(op, f));
            cells += 1;
        }
    }
    for op in DIRECT_KUBE_OPS {
        for f in Fault::KUBE {
            eprintln!("| Kubernetes `{op}` | {f:?} | {} |", direct_cell(op, f));
            cells += 1;
        }
    }
    assert_eq!(cells, 27);
}

fn gitops_cell(op: &'static str, fault: Option<Fault>, write_fails: bool) {
    let w = world(vec![]);
    let cell = format!("rotate --gitops, {op} x {fault:?} write_fails={write_fails}");
    if let Some(f) = fault {
        if Fault::GITHUB.contains(&f) {
            *w.gh.fault.borrow_mut() = Some((op, f));
        } else {
            *w.cluster.fault.borrow_mut() = Some((op, f));
        }
    }
    let written: RefCell<Option<Value>> = RefCell::default();
    let result = block_on(rotate_gitops(
        &settings(),
        &w.cluster,
        &w.gh,
        |doc: &NewKey<'_>| {
            if write_fails {
                return Err(Error::file(
                    "write",
                    "out.yaml",
                    std::io::Error::other("disk full"),
                ));
            }
            *written.borrow_mut() = Some(doc.secret.expose_docs()[0].clone());
            Ok(())
        },
        &no_progress,
    ));
    // The cluster is never touched by --gitops.
    assert_eq!(
        w.cluster.live().annotations[keys::FINGERPRINT],
        w.old.fingerprint(),
        "{cell}"
    );
    let Ok(done) = result else {
        assert_invariant(&w, &cell);
        assert_eq!(
            w.gh.keys.borrow().len(),
            1,
            "{cell}: the new key was left registered"
        );
        return;
    };
    // Success: the old (live) key and the new, pending key are registered, nothing else.
    let fps: Vec<String> =
        w.gh.keys
            .borrow()
            .iter()
            .filter_map(super::plan::fingerprint)
            .collect();
    assert_eq!(
        fps,
        [
            w.old.fingerprint().to_string(),
            done.new_fingerprint.clone()
        ],
        "{cell}"
    );
    // --finish before the Secret changed refuses and deletes nothing.
    let early = block_on(finish(&settings(), &w.cluster, &w.gh, &no_progress)).unwrap_err();
    assert_eq!(early.exit_code(), 2, "{cell}: {early}");
    assert_eq!(w.gh.keys.borrow().len(), 2, "{cell}");
    // Flux applies the manifest.
    let mut doc = written.borrow_mut().take().unwrap();
    doc["metadata"]["resourceVersion"] = json!("77");
    *w.cluster.secret.borrow_mut() = Some(doc);
    let fin = block_on(finish(&settings(), &w.cluster, &w.gh, &no_progress)).unwrap();
    assert_eq!(fin.live_fingerprint, done.new_fingerprint);
    assert_one_key_equal_to_live(&w, &cell);
}

#[test]
fn fault_matrix_rotate_gitops_keeps_the_invariant_in_every_cell() {
    gitops_cell("none", None, false);
    gitops_cell("none", None, true);
    for f in Fault::GITHUB {
        gitops_cell("list", Some(f), false);
        gitops_cell("register", Some(f), false);
        gitops_cell("delete", Some(f), true); // the undo fails once
    }
    for f in Fault::KUBE {
        gitops_cell("read", Some(f), false);
    }
}

fn finish_cell(op: &'static str, fault: Fault) {
    let w = world(vec![]);
    let mut s = settings();
    s.keep_old = true;
    block_on(rotate_in_cluster(&s, &w.cluster, &w.gh, &no_progress)).unwrap();
    let cell = format!("rotate --finish, {op} x {fault:?}");
    if Fault::GITHUB.contains(&fault) {
        *w.gh.fault.borrow_mut() = Some((op, fault));
    } else {
        *w.cluster.fault.borrow_mut() = Some((op, fault));
    }
    let r = block_on(finish(&s, &w.cluster, &w.gh, &no_progress));
    assert_invariant(&w, &cell);
    if r.is_err() && !(op == "delete" && fault.effect_lands()) {
        assert_eq!(
            w.gh.keys.borrow().len(),
            2,
            "{cell}: deleted something although it failed"
        );
    }
    // Retrying finishes the job.
    let _ = block_on(finish(&s, &w.cluster, &w.gh, &no_progress));
    assert_one_key_equal_to_live(&w, &cell);
}

#[test]
fn fault_matrix_rotate_finish_keeps_the_invariant_in_every_cell() {
    for op in ["list", "delete"] {
        for f in Fault::GITHUB {
            finish_cell(op, f);
        }
    }
    for f in Fault::KUBE {
        finish_cell("read", f);
    }
}

#[test]
fn missing_secret_and_secret_without_a_key_are_input_errors_and_change_nothing() {
    let w = world(vec![]);
    *w.cluster.secret.borrow_mut() = None;
    let e = block_on(rotate_in_cluster(
        &settings(),
        &w.cluster,
        &w.gh,
        &no_progress,
    ))
    .unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    assert!(w.gh.requests.borrow().is_empty());

    let w = world(vec![]);
    w.cluster.secret.borrow_mut().as_mut().unwrap()["data"]["gitSshKey"] =
        json!(emit::b64(b"not a key").as_str());
    let mut s = settings();
    s.consumer = None;
    let e = block_on(rotate_in_cluster(&s, &w.cluster, &w.gh, &no_progress)).unwrap_err();
    assert_eq!(e.exit_code(), 2, "{e}");
    assert!(e.to_string().contains("read Secret"), "{e}");
    assert!(format!("{:?}", std::error::Error::source(&e))
        .contains("no passphrase-less OpenSSH private key"));
    assert!(w.gh.requests.borrow().is_empty());
}

#[test]
fn rollout_that_never_finishes_times_out_and_keeps_both_keys() {
    let w = world(vec![subpath_deployment()]);
    w.cluster.rollout_pending.set(u32::MAX);
    let mut s = settings();
    s.timeout = Duration::from_millis(30);
    let e = block_on(rotate_in_cluster(&s, &w.cluster, &w.gh, &no_progress)).unwrap_err();
    assert!(e.to_string().contains("restart workloads"), "{e}");
    assert_eq!(w.gh.keys.borrow().len(), 2);
    assert_invariant(&w, "rollout timeout");
}

#[test]
fn flux_identity_pub_follows_the_new_key() {
    let old = DeployKey::generate(KeyType::Ed25519, "old").unwrap();
    let mut doc = live_secret_doc(&old);
    let pem = old.private_pem().unwrap();
    doc["data"] = json!({
        "identity": emit::b64(pem.expose_secret().as_bytes()).as_str(),
        "identity.pub": emit::b64(old.public_openssh().as_bytes()).as_str(),
    });
    let live = LiveSecret::from_json(doc).unwrap();
    let new = DeployKey::generate(KeyType::Ed25519, "new").unwrap();
    let rotated = rotated_secret(
        &live,
        "identity",
        &new,
        old.fingerprint(),
        true,
        jiff::Timestamp::now(),
    )
    .unwrap();
    let back = LiveSecret::from_json(rotated.expose_docs()[0].clone()).unwrap();
    assert_eq!(
        key_in_secret(&back, Some(Consumer::Flux))
            .unwrap()
            .key
            .fingerprint(),
        new.fingerprint()
    );
    let public =
        String::from_utf8(back.value("identity.pub").unwrap().expose_secret().to_vec()).unwrap();
    assert_eq!(public.trim(), new.public_openssh());
    assert_eq!(back.resource_version.as_deref(), Some("41"));
}

#[test]
fn a_lasting_kubernetes_refusal_after_the_swap_keeps_both_keys_and_finish_completes_later() {
    for op in ["list_workloads", "restart", "rollout_status"] {
        for fault in Fault::KUBE {
            let w = world(vec![subpath_deployment()]);
            let cell = format!("lasting {op} x {fault:?}");
            *w.cluster.fault.borrow_mut() = Some((op, fault));
            w.cluster.persistent.set(true);
            let e = block_on(rotate_in_cluster(
                &settings(),
                &w.cluster,
                &w.gh,
                &no_progress,
            ))
            .unwrap_err();
            assert_eq!(e.exit_code(), 3, "{cell}: {e}");
            assert!(
                e.to_string().contains("old keys stay registered"),
                "{cell}: {e}"
            );
            let live_fp = assert_invariant(&w, &cell);
            assert_ne!(
                live_fp,
                w.old.fingerprint(),
                "{cell}: the swap happened before {op}"
            );
            assert_eq!(w.gh.keys.borrow().len(), 2, "{cell}");
            *w.cluster.fault.borrow_mut() = None;
            block_on(finish(&settings(), &w.cluster, &w.gh, &no_progress)).unwrap();
            assert_one_key_equal_to_live(&w, &cell);
        }
    }
}

/// Regression guard: a Secret made with `kubectl apply` carries its whole previous body (the old
/// private key in base64) in an annotation; the rotated document must not carry it on.
#[test]
fn kubectl_last_applied_annotation_with_the_old_key_is_not_copied() {
    let old = DeployKey::generate(KeyType::Ed25519, "old").unwrap();
    let mut doc = live_secret_doc(&old);
    let old_b64 = doc["data"]["gitSshKey"].as_str().unwrap().to_string();
    let record =
        json!({"apiVersion": "v1", "kind": "Secret", "data": {"gitSshKey": old_b64}}).to_string();
    doc["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] =
        json!(record);
    let live = LiveSecret::from_json(doc).unwrap();
    let new = DeployKey::generate(KeyType::Ed25519, "new").unwrap();
    let rotated = rotated_secret(
        &live,
        "gitSshKey",
        &new,
        old.fingerprint(),
        false,
        jiff::Timestamp::now(),
    )
    .unwrap();
    let text = serde_json::to_string(&rotated.expose_docs()[0]).unwrap();
    assert!(
        !text.contains(&old_b64[300..360]),
        "the old key travelled on"
    );
    assert!(!text.contains("last-applied-configuration"));
    assert_eq!(
        rotated.expose_docs()[0]["metadata"]["annotations"]["owner"],
        "data-eng"
    );
}

/// A `--gitops` rotation whose file was written but not applied: (the world, the pending key's
/// manifest as Flux would apply it, its fingerprint).
fn pending_gitops() -> (World, Value, String) {
    let w = world(vec![subpath_deployment()]);
    let written: RefCell<Option<Value>> = RefCell::default();
    let done = block_on(rotate_gitops(
        &settings(),
        &w.cluster,
        &w.gh,
        |doc: &NewKey<'_>| {
            *written.borrow_mut() = Some(doc.secret.expose_docs()[0].clone());
            Ok(())
        },
        &no_progress,
    ))
    .unwrap();
    let doc = written.borrow_mut().take().unwrap();
    (w, doc, done.new_fingerprint)
}

#[test]
fn apply_or_gitops_over_a_pending_gitops_rotation_refuses_and_changes_nothing() {
    let (w, _, pending_fp) = pending_gitops();
    let keys_before: Vec<u64> = w.gh.keys.borrow().iter().map(|k| k.id).collect();
    w.gh.requests.borrow_mut().clear();
    let err = block_on(rotate_in_cluster(
        &settings(),
        &w.cluster,
        &w.gh,
        &no_progress,
    ))
    .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    let mut msg = String::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(e) = source {
        msg.push_str(&format!(" / {}", crate::cli::spelling::show(e)));
        source = e.source();
    }
    assert!(
        msg.contains("pending") && msg.contains("--abandon-pending") && msg.contains("--finish"),
        "{msg}"
    );
    let err = block_on(rotate_gitops(
        &settings(),
        &w.cluster,
        &w.gh,
        |_: &NewKey<'_>| panic!("nothing may be written over a pending rotation"),
        &no_progress,
    ))
    .unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    // Only reads reached GitHub; the pending key and the live Secret are untouched.
    assert_eq!(*w.gh.requests.borrow(), ["GET keys", "GET keys"]);
    let keys_after: Vec<u64> = w.gh.keys.borrow().iter().map(|k| k.id).collect();
    assert_eq!(keys_after, keys_before);
    assert!(w
        .gh
        .keys
        .borrow()
        .iter()
        .any(|k| super::plan::fingerprint(k).as_deref() == Some(pending_fp.as_str())));
    assert_eq!(
        w.cluster.live().annotations[keys::FINGERPRINT],
        w.old.fingerprint()
    );
}

#[test]
fn the_pending_file_applied_then_finish_works_and_then_apply_is_allowed_again() {
    let (w, mut doc, pending_fp) = pending_gitops();
    doc["metadata"]["resourceVersion"] = json!("77");
    *w.cluster.secret.borrow_mut() = Some(doc);
    block_on(finish(&settings(), &w.cluster, &w.gh, &no_progress)).unwrap();
    assert_eq!(w.cluster.live().annotations[keys::FINGERPRINT], pending_fp);
    block_on(rotate_in_cluster(
        &settings(),
        &w.cluster,
        &w.gh,
        &no_progress,
    ))
    .unwrap();
    let keys = w.gh.keys.borrow();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let live_fp = key_in_secret(&w.cluster.live(), None)
        .unwrap()
        .key
        .fingerprint()
        .to_string();
    assert_eq!(
        super::plan::fingerprint(&keys[0]).as_deref(),
        Some(live_fp.as_str())
    );
    assert_ne!(live_fp, pending_fp);
}

#[test]
fn abandon_pending_lets_apply_and_gitops_proceed_and_deletes_the_abandoned_key() {
    let mut s = settings();
    s.abandon_pending = true;
    // --apply: the abandoned key is deleted with the old one.
    let (w, _, pending_fp) = pending_gitops();
    block_on(rotate_in_cluster(&s, &w.cluster, &w.gh, &no_progress)).unwrap();
    assert_one_key_equal_to_live(&w, "apply --abandon-pending");
    assert!(!w
        .gh
        .keys
        .borrow()
        .iter()
        .any(|k| super::plan::fingerprint(k).as_deref() == Some(pending_fp.as_str())));
    // --gitops: the abandoned key goes first, so the new rotation's --finish is not blocked.
    let (w, _, pending_fp) = pending_gitops();
    let written: RefCell<Option<Value>> = RefCell::default();
    let done = block_on(rotate_gitops(
        &s,
        &w.cluster,
        &w.gh,
        |doc: &NewKey<'_>| {
            *written.borrow_mut() = Some(doc.secret.expose_docs()[0].clone());
            Ok(())
        },
        &no_progress,
    ))
    .unwrap();
    let fps: Vec<String> =
        w.gh.keys
            .borrow()
            .iter()
            .filter_map(super::plan::fingerprint)
            .collect();
    assert_eq!(
        fps,
        [
            w.old.fingerprint().to_string(),
            done.new_fingerprint.clone()
        ]
    );
    assert!(!fps.contains(&pending_fp));
    let mut doc = written.borrow_mut().take().unwrap();
    doc["metadata"]["resourceVersion"] = json!("78");
    *w.cluster.secret.borrow_mut() = Some(doc);
    block_on(finish(&settings(), &w.cluster, &w.gh, &no_progress)).unwrap();
    assert_one_key_equal_to_live(&w, "gitops --abandon-pending then finish");
}

#[test]
fn apply_on_a_helm_owned_secret_is_refused_before_anything_is_registered() {
    // The Airflow chart renders extraSecrets as Helm hooks: a Secret rotated in place would be put
    // back by the next upgrade, after the old key was deleted from GitHub (an outage).
    for (labels, annotations) in [
        (json!({"app.kubernetes.io/managed-by": "Helm"}), json!({})),
        (
            json!({}),
            json!({"meta.helm.sh/release-name": "airflow", "meta.helm.sh/release-namespace": "dev"}),
        ),
        (
            json!({}),
            json!({"helm.sh/hook": "pre-install,pre-upgrade"}),
        ),
        (json!({"helm.toolkit.fluxcd.io/name": "airflow"}), json!({})),
    ] {
        let w = world(vec![]);
        {
            let mut secret = w.cluster.secret.borrow_mut();
            let doc = secret.as_mut().unwrap();
            for (k, v) in labels.as_object().unwrap() {
                doc["metadata"]["labels"][k] = v.clone();
            }
            for (k, v) in annotations.as_object().unwrap() {
                doc["metadata"]["annotations"][k] = v.clone();
            }
        }
        let before = w.cluster.secret.borrow().clone();
        let e = block_on(rotate_in_cluster(
            &settings(),
            &w.cluster,
            &w.gh,
            &no_progress,
        ))
        .unwrap_err();
        assert_eq!(e.exit_code(), 2, "{e}");
        let Error::Rotation { source, .. } = &e else {
            panic!("not a rotation error: {e}")
        };
        let source = source.render(&crate::cli::spelling::Flags);
        assert!(
            source.contains("Helm owns it") && source.contains("--gitops"),
            "{source}"
        );
        assert!(w.gh.requests.borrow().is_empty(), "GitHub was called");
        assert_eq!(*w.cluster.secret.borrow(), before, "the Secret changed");
    }
}
