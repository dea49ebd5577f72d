//! After the live Secret holds the new key: bring every pod that reads it onto the new key before
//! an old key may be deleted. Shared by the modes that change a live Secret: `--apply` and
//! `--store` (where ESO writes it).

use super::{failed, Progress, RotateSettings, SecretCluster, Step};
use crate::cluster::{self, ConsumerAction, SecretConsumer};
use crate::error::{Message, Result, Setting};
use crate::message;

/// What became of the Secret's readers.
#[derive(Debug)]
pub struct Readers {
    /// The workloads that read the Secret, and how.
    pub consumers: Vec<SecretConsumer>,
    /// `kind/name` of each workload restarted (its rollout finished).
    pub restarted: Vec<String>,
    /// Why the old keys must stay registered (readers still on the old key), when they must.
    pub kept_because: Option<Message>,
}

/// Lists the workloads reading `name` in `ns`; restarts those that keep the old key until they
/// restart (a `subPath` mount, an env var) and waits for their rollouts, or, with
/// `settings.restart` off, says in `kept_because` that they still run the old key; names the bare
/// pods nobody can restart; and, when readers mount the Secret as a volume, waits
/// `settings.sync_wait` for the kubelet to update their files. `then` is what to run once the
/// kept readers are on the new key (e.g. `rotate --finish`); `kept_both(until)` is what a failure
/// leaves behind.
pub async fn refresh<C: SecretCluster>(
    cluster: &C,
    settings: &RotateSettings,
    now: jiff::Timestamp,
    then: &Message,
    kept_both: &dyn Fn(&str) -> Message,
    progress: Progress<'_>,
) -> Result<Readers> {
    let (ns, name) = (settings.namespace.as_str(), settings.secret_name.as_str());
    progress(Step::FindConsumers, ns);
    // Listing is a read and a restart sets the same annotation value again: both are safe to
    // repeat once after a hiccup (a dropped connection may have hidden a success).
    let workloads = match cluster.list_workloads(ns).await {
        Ok(w) => Ok(w),
        Err(_) => cluster.list_workloads(ns).await,
    };
    let workloads = workloads.map_err(|e| {
        failed(
            Step::FindConsumers,
            e,
            kept_both("every pod reading the Secret has restarted"),
        )
    })?;
    let consumers = cluster::consumers_of(name, &workloads);
    let mut kept_because = None;
    let mut restarted = Vec::new();
    let to_restart: Vec<&SecretConsumer> = consumers
        .iter()
        .filter(|c| c.action == ConsumerAction::Restart)
        .collect();
    let manual: Vec<String> = consumers
        .iter()
        .filter(|c| c.action == ConsumerAction::ManualRestart)
        .map(|c| format!("pod/{}", c.name))
        .collect();
    if !to_restart.is_empty() && settings.restart {
        let at = now.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
        for c in &to_restart {
            let label = format!("{}/{}", c.kind.as_str(), c.name);
            progress(Step::Restart, &label);
            let result = match cluster.restart(c.kind, ns, &c.name, &at).await {
                Ok(()) => Ok(()),
                Err(_) => cluster.restart(c.kind, ns, &c.name, &at).await,
            };
            result.map_err(|e| {
                failed(
                    Step::Restart,
                    e,
                    kept_both(&format!("{label} runs the new Secret")),
                )
            })?;
            restarted.push(label);
        }
        let targets: Vec<_> = to_restart
            .iter()
            .map(|c| (c.kind, c.name.clone()))
            .collect();
        cluster::wait_for_rollouts(
            cluster,
            ns,
            &targets,
            settings.timeout,
            settings.poll_interval,
            &|detail| progress(Step::Restart, detail),
        )
        .await
        .map_err(|(until, e)| failed(Step::Restart, e, kept_both(&until)))?;
    } else if !to_restart.is_empty() {
        let names: Vec<String> = to_restart
            .iter()
            .map(|c| format!("{}/{}", c.kind.as_str(), c.name))
            .collect();
        kept_because = Some(message!(
            "{}: {} still run the old key; restart them (kubectl rollout restart), then run `{}`",
            Setting::NoRestart,
            names.join(", "),
            then
        ));
    }
    if !manual.is_empty() && kept_because.is_none() {
        kept_because = Some(message!(
            "{} read the Secret at start and have no controller to restart them; recreate them, then run `{}`",
            manual.join(", "),
            then
        ));
    }
    if consumers
        .iter()
        .any(|c| c.action == ConsumerAction::WaitForSync)
        && kept_because.is_none()
        && !settings.keep_old
    {
        progress(Step::SyncWait, &format!("{:?}", settings.sync_wait));
        tokio::time::sleep(settings.sync_wait).await;
    }
    Ok(Readers {
        consumers,
        restarted,
        kept_because,
    })
}
