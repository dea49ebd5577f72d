//! The rotation plan against in-memory GitHub and cluster fakes that fail on command: the fault
//! matrix (every step x every fault) and the happy paths. Faults that hide an effect (a timeout
//! after GitHub created the key, a connection dropped after the API server stored the Secret)
//! apply the effect and then fail, which is the hardest case for rollback.
//!
//! This file holds the fakes and the invariant; the tests are split by mode like `rotate/`
//! itself: `apply.rs` (`--apply`), `gitops.rs` (`--gitops`, pending rotations), `finish.rs`.

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

/// An error and all its causes, as the CLI spells them.
fn whole(e: &Error) -> String {
    let mut msg = String::new();
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(e) = source {
        msg.push_str(&format!(" / {}", crate::cli::spelling::show(e)));
        source = e.source();
    }
    msg
}

/// `rotate --apply` with the default settings against the world's fakes.
fn apply_rotation(w: &World) -> Result<super::apply::Rotated> {
    block_on(rotate_in_cluster(
        &settings(),
        &w.cluster,
        &w.gh,
        &no_progress,
    ))
}

/// The fingerprints of the keys registered on the fake GitHub, in order.
fn registered_fingerprints(w: &World) -> Vec<String> {
    w.gh.keys
        .borrow()
        .iter()
        .filter_map(super::plan::fingerprint)
        .collect()
}

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

mod apply;
mod finish;
mod gitops;
