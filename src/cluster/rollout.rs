//! Rollouts: the SecretCluster trait rotation and create run against, `kubectl rollout status`
//! for each workload kind, and waiting for restarted workloads.

use super::*;

/// What rotation and `create --apply` need from the cluster: a trait so their plans and
/// rollbacks are tested against faults at every step without a network. [`Cluster`] is the real
/// one.
pub trait SecretCluster {
    /// Reads a Secret; `None` when missing.
    fn read_secret(
        &self,
        namespace: &str,
        name: &str,
    ) -> impl std::future::Future<Output = Result<Option<LiveSecret>>>;
    /// Writes a full Secret document (server-side apply; a `resourceVersion` in it is a precondition).
    fn write_secret(&self, doc: &Value) -> impl std::future::Future<Output = Result<()>>;
    /// Every workload in the namespace.
    fn list_workloads(
        &self,
        namespace: &str,
    ) -> impl std::future::Future<Output = Result<Vec<Workload>>>;
    /// Rollout restart.
    fn restart(
        &self,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
        at: &str,
    ) -> impl std::future::Future<Output = Result<()>>;
    /// Rollout status.
    fn rollout_status(
        &self,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
    ) -> impl std::future::Future<Output = Result<RolloutStatus>>;
}

impl SecretCluster for Cluster {
    async fn read_secret(&self, namespace: &str, name: &str) -> Result<Option<LiveSecret>> {
        self.get_secret(namespace, name).await
    }
    async fn write_secret(&self, doc: &Value) -> Result<()> {
        Cluster::write_secret(self, doc).await.map(drop)
    }
    async fn list_workloads(&self, namespace: &str) -> Result<Vec<Workload>> {
        Cluster::list_workloads(self, namespace).await
    }
    async fn restart(
        &self,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
        at: &str,
    ) -> Result<()> {
        Cluster::restart(self, kind, namespace, name, at).await
    }
    async fn rollout_status(
        &self,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
    ) -> Result<RolloutStatus> {
        Cluster::rollout_status(self, kind, namespace, name).await
    }
}

/// Polls the rollouts of `workloads` every `poll` until all are done or `timeout` passed.
/// A failed status read is retried on the next poll; three in a row end the wait. On failure:
/// what has to happen before the wait would have succeeded (for the caller's message) and the
/// error. `progress` gets one line per workload still rolling out, per poll.
pub async fn wait_for_rollouts<C: SecretCluster>(
    cluster: &C,
    namespace: &str,
    workloads: &[(WorkloadKind, String)],
    timeout: Duration,
    poll: Duration,
    progress: &dyn Fn(&str),
) -> std::result::Result<(), (String, Error)> {
    let deadline = std::time::Instant::now() + timeout;
    let mut waiting: Vec<&(WorkloadKind, String)> = workloads.iter().collect();
    let mut read_failures = 0;
    while !waiting.is_empty() {
        let mut still = Vec::new();
        for w in waiting {
            let (kind, name) = (w.0, w.1.as_str());
            let label = format!("{}/{name}", kind.as_str());
            let st = match cluster.rollout_status(kind, namespace, name).await {
                Ok(st) => {
                    read_failures = 0;
                    st
                }
                Err(e) => {
                    read_failures += 1;
                    if read_failures >= 3 || std::time::Instant::now() >= deadline {
                        return Err((format!("{label} has rolled out"), e));
                    }
                    progress(&format!("{label}: {e}; trying again"));
                    pending("status unknown")
                }
            };
            if !st.done {
                progress(&format!("{label}: {}", st.detail));
                still.push(w);
            }
        }
        waiting = still;
        if waiting.is_empty() {
            break;
        }
        if std::time::Instant::now() >= deadline {
            let names: Vec<String> = waiting
                .iter()
                .map(|w| format!("{}/{}", w.0.as_str(), w.1))
                .collect();
            let e = Error::remote(
                SERVICE,
                format!(
                    "rollout of {} not finished after {timeout:?}",
                    names.join(", ")
                ),
                format!("see `kubectl rollout status -n {namespace} {}`", names[0]),
            );
            return Err(("the rollouts finish".into(), e));
        }
        tokio::time::sleep(poll).await;
    }
    Ok(())
}

/// `kubectl rollout status` for a Deployment.
pub fn deployment_status(d: &Deployment) -> RolloutStatus {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let st = d.status.clone().unwrap_or_default();
    let generation = d.metadata.generation.unwrap_or(0);
    let observed = st.observed_generation.unwrap_or(0);
    let updated = st.updated_replicas.unwrap_or(0);
    let total = st.replicas.unwrap_or(0);
    let available = st.available_replicas.unwrap_or(0);
    if observed < generation {
        return pending("waiting for the controller to see the new template");
    }
    if updated < want {
        return pending(&format!("{updated} of {want} replicas updated"));
    }
    if total > updated {
        return pending(&format!(
            "{} old replicas pending termination",
            total - updated
        ));
    }
    if available < updated {
        return pending(&format!(
            "{available} of {updated} updated replicas available"
        ));
    }
    RolloutStatus {
        done: true,
        detail: format!("{updated} replicas updated and available"),
    }
}

/// `kubectl rollout status` for a StatefulSet.
pub fn statefulset_status(s: &StatefulSet) -> RolloutStatus {
    let want = s.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let st = s.status.clone().unwrap_or_default();
    let generation = s.metadata.generation.unwrap_or(0);
    if st.observed_generation.unwrap_or(0) < generation {
        return pending("waiting for the controller to see the new template");
    }
    let ready = st.ready_replicas.unwrap_or(0);
    if ready < want {
        return pending(&format!("{ready} of {want} pods ready"));
    }
    let updated = st.updated_replicas.unwrap_or(0);
    if updated < want {
        return pending(&format!("{updated} of {want} pods updated"));
    }
    if st.update_revision.is_some() && st.current_revision != st.update_revision {
        return pending("pods still on the previous revision");
    }
    RolloutStatus {
        done: true,
        detail: format!("{ready} pods ready on the current revision"),
    }
}

/// `kubectl rollout status` for a DaemonSet.
pub fn daemonset_status(d: &DaemonSet) -> RolloutStatus {
    let st = d.status.clone().unwrap_or_default();
    let generation = d.metadata.generation.unwrap_or(0);
    if st.observed_generation.unwrap_or(0) < generation {
        return pending("waiting for the controller to see the new template");
    }
    let want = st.desired_number_scheduled;
    let updated = st.updated_number_scheduled.unwrap_or(0);
    let available = st.number_available.unwrap_or(0);
    if updated < want {
        return pending(&format!("{updated} of {want} pods updated"));
    }
    if available < want {
        return pending(&format!("{available} of {want} updated pods available"));
    }
    RolloutStatus {
        done: true,
        detail: format!("{available} pods updated and available"),
    }
}

pub(super) fn pending(detail: &str) -> RolloutStatus {
    RolloutStatus {
        done: false,
        detail: detail.to_string(),
    }
}
