//! The part of kube-controller-manager a rotation waits for, played by the test: the real API
//! server holds Deployments, StatefulSets and DaemonSets as objects only (no controller runs
//! here), so their `status` never follows a restart. [`RolloutPlayer`] polls one namespace and,
//! for every workload whose `metadata.generation` is ahead of `status.observedGeneration`, writes
//! the status a finished rollout has (all replicas updated, ready and available) through the
//! status subresource, as the admin, with curl. Workloads listed as `stuck` are left alone (a
//! rollout that never finishes). Stopped on drop.
#![allow(dead_code)]

use super::real_cluster::RealCluster;
use serde_json::{json, Value};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct RolloutPlayer {
    stop: Arc<AtomicBool>,
    stuck: Arc<Mutex<Vec<String>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for RolloutPlayer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Curl {
    url: String,
    token: String,
    ca: std::path::PathBuf,
}

impl Curl {
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Option<Value> {
        let mut c = Command::new("curl");
        c.args(["-sS", "-f", "--max-time", "10", "-X", method, "--cacert"])
            .arg(&self.ca)
            .arg("-H")
            .arg(format!("Authorization: Bearer {}", self.token));
        if let Some(b) = body {
            c.args([
                "-H",
                "Content-Type: application/merge-patch+json",
                "--data-binary",
                &b.to_string(),
            ]);
        }
        let out = c.arg(format!("{}{path}", self.url)).output().ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice(&out.stdout).ok()
    }
}

/// The status of a finished rollout of `obj` (a Deployment, StatefulSet or DaemonSet).
fn finished_status(plural: &str, obj: &Value) -> Value {
    let generation = obj["metadata"]["generation"].as_i64().unwrap_or(1);
    let replicas = obj["spec"]["replicas"].as_i64().unwrap_or(1);
    match plural {
        "statefulsets" => json!({
            "observedGeneration": generation, "replicas": replicas,
            "readyReplicas": replicas, "updatedReplicas": replicas,
            "availableReplicas": replicas, "currentReplicas": replicas,
            "currentRevision": format!("rev-{generation}"),
            "updateRevision": format!("rev-{generation}"),
        }),
        "daemonsets" => json!({
            "observedGeneration": generation, "desiredNumberScheduled": 1,
            "currentNumberScheduled": 1, "numberMisscheduled": 0, "numberReady": 1,
            "updatedNumberScheduled": 1, "numberAvailable": 1,
        }),
        _ => json!({
            "observedGeneration": generation, "replicas": replicas,
            "updatedReplicas": replicas, "readyReplicas": replicas,
            "availableReplicas": replicas,
        }),
    }
}

impl RolloutPlayer {
    /// Starts playing the rollout controllers for namespace `ns` (polls every 100 ms).
    pub fn start(cluster: &RealCluster, ns: &str) -> RolloutPlayer {
        let curl = Curl {
            url: cluster.url(),
            token: cluster.admin_token(),
            ca: cluster.ca(),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let stuck: Arc<Mutex<Vec<String>>> = Arc::default();
        let (s, st, ns) = (stop.clone(), stuck.clone(), ns.to_string());
        let thread = std::thread::spawn(move || {
            // Bounded: a test binary's tests end within minutes.
            for _ in 0..6000 {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                for plural in ["deployments", "statefulsets", "daemonsets"] {
                    let list = format!("/apis/apps/v1/namespaces/{ns}/{plural}");
                    let Some(items) = curl.call("GET", &list, None) else {
                        continue;
                    };
                    for obj in items["items"].as_array().into_iter().flatten() {
                        let name = obj["metadata"]["name"].as_str().unwrap_or("");
                        let generation = obj["metadata"]["generation"].as_i64().unwrap_or(0);
                        let observed = obj["status"]["observedGeneration"].as_i64().unwrap_or(0);
                        if observed >= generation || st.lock().unwrap().iter().any(|n| n == name) {
                            continue;
                        }
                        let body = json!({"status": finished_status(plural, obj)});
                        curl.call("PATCH", &format!("{list}/{name}/status"), Some(&body));
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        RolloutPlayer {
            stop,
            stuck,
            thread: Some(thread),
        }
    }

    /// Leaves workload `name` (of any kind) alone from now on: its rollout never finishes.
    pub fn stick(&self, name: &str) {
        self.stuck.lock().unwrap().push(name.to_string());
    }

    /// Waits (up to 10 s) until every workload in `ns` has a status for its generation: the
    /// state a running cluster is in before the test begins.
    pub fn settled(cluster: &RealCluster, ns: &str) {
        for _ in 0..100 {
            let mut behind = 0;
            for plural in ["deployments", "statefulsets", "daemonsets"] {
                let list = cluster
                    .get(&format!("/apis/apps/v1/namespaces/{ns}/{plural}"))
                    .unwrap();
                for obj in list["items"].as_array().into_iter().flatten() {
                    let generation = obj["metadata"]["generation"].as_i64().unwrap_or(0);
                    if obj["status"]["observedGeneration"].as_i64().unwrap_or(0) < generation {
                        behind += 1;
                    }
                }
            }
            if behind == 0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("workloads in {ns} have no status after 10 s");
    }
}
