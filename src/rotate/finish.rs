//! `sealkey rotate --finish`: once the live Secret holds the newest key registered for it, delete
//! the older ones. Works from key titles (slot and the moment recorded in them), so it also
//! finishes a Secret that Helm renders (the Airflow chart's `extraSecrets`), which carries none
//! of sealkey's annotations. It deletes only keys titled for this Secret: the Secret's
//! `previous-fingerprint` annotation is cluster data, which whoever can patch the Secret chooses.
//! With a wait, it polls the live Secret until the GitOps controller has applied the new key.

use super::plan::{delete_keys, Plan};
use super::{failed, DeployKeyRegistry, Progress, RotateSettings, SecretCluster, Step};
use crate::emit::keys::PREVIOUS_FINGERPRINT;
use crate::error::{Command, Error, Message, Result, Setting};
use crate::github::DeployKeyInfo;
use crate::message;

/// What `rotate --finish` did.
#[derive(Debug)]
pub struct Finished {
    /// The key in the live Secret (registered).
    pub live_fingerprint: String,
    /// Keys deleted.
    pub deleted: Vec<DeployKeyInfo>,
    /// Workloads restarted (subPath and env readers) before the old keys went.
    pub restarted: Vec<String>,
    /// Why the old keys stay registered (readers still on them), when they do.
    pub kept_because: Option<Message>,
    /// Keys left registered although they may be this Secret's old keys: named by its
    /// `previous-fingerprint` annotation but titled for something else, or titled for it without
    /// a cluster identity and not named by the annotation (another cluster of the same name may
    /// hold them). Delete them by hand if they really were this Secret's.
    pub left_alone: Vec<DeployKeyInfo>,
    /// How long it waited for the live Secret to hold the new key.
    pub waited: std::time::Duration,
}

/// Deletes the old keys once the live Secret carries the new key. Before that (a key registered
/// for this Secret after the live one is not in it yet) it waits up to
/// `settings.wait_for_live`, then fails having deleted nothing. Before deleting, it brings every
/// reader onto the live key as `--apply` does ([`super::readers::refresh`]): restarts subPath and
/// env readers and waits for their rollouts (or, without restarts, keeps the old keys and says
/// why), and waits `settings.sync_wait` for volume readers, whether or not it polled.
pub async fn finish<C: SecretCluster, R: DeployKeyRegistry>(
    settings: &RotateSettings,
    cluster: &C,
    registry: &R,
    progress: Progress<'_>,
) -> Result<Finished> {
    let ns_name = settings.secret_ref();
    let nothing = "nothing was deleted";
    let started = std::time::Instant::now();
    let mut plan = Plan::read(cluster, registry, settings, progress, nothing).await?;
    let mut saw_it_change = false;
    loop {
        let pending = plan.pending(settings);
        if pending.is_empty() {
            break;
        }
        let ids: Vec<String> = pending
            .iter()
            .map(|k| format!("{} ({})", k.id, k.title))
            .collect();
        let waited = started.elapsed();
        match settings.wait_for_live {
            Some(limit) if waited < limit => {
                saw_it_change = true;
                progress(
                    Step::WaitLive,
                    &format!(
                        "{ns_name} still holds {}; waiting for {}",
                        plan.old_fp,
                        ids.join(", ")
                    ),
                );
                tokio::time::sleep(settings.poll_interval.min(limit - waited)).await;
                plan = Plan::read(cluster, registry, settings, &|_, _| {}, nothing).await?;
            }
            limit => {
                let after = match limit {
                    Some(l) => format!(" after waiting {}s", l.as_secs()),
                    None => String::new(),
                };
                return Err(failed(
                    Step::WaitLive,
                    Error::input(
                        format!("Secret {ns_name}"),
                        format!(
                            "still holds key {}{after}, not the newer key {} registered for it",
                            plan.old_fp,
                            ids.join(", ")
                        ),
                        message!(
                            "commit and push the sealed file, let Flux or Argo CD apply it (for a HelmRelease: until helm-controller upgraded the release), then run {} again, or with {} DURATION",
                            Setting::Finish,
                            Setting::Wait
                        ),
                    ),
                    nothing,
                ));
            }
        }
    }
    let live_fp = plan.old_fp.clone();
    if !plan.old_was_registered() {
        return Err(failed(
            Step::ListKeys,
            Error::input(
                format!("Secret {ns_name}"),
                format!("its key {live_fp} is not registered on the repository"),
                "refusing to delete anything: register the live key first, or rotate again",
            ),
            nothing,
        ));
    }
    // Only keys sealkey titled for this very Secret are deleted. The annotation is the
    // cluster's word, so the key it names is deleted only when its title is also this Secret's:
    // with this cluster's identity, or without any identity (a key `create --register` made
    // offline, or one made before sealkey identified clusters), which the annotation then proves
    // was this Secret's: another cluster of the same name holds it only if it was given this
    // very key. A key it names under any other title is reported, not deleted.
    let previous = plan
        .previous()
        .filter(|p| *p != live_fp)
        .map(str::to_string);
    let mut old = plan.old_keys(settings, None, &live_fp);
    let named_by_previous =
        |k: &DeployKeyInfo| previous.is_some() && super::plan::fingerprint(k) == previous;
    for k in &plan.keys {
        if settings.legacy_title(&k.title)
            && named_by_previous(k)
            && !old.iter().any(|o| o.id == k.id)
        {
            old.push(k.clone());
        }
    }
    let left_alone: Vec<DeployKeyInfo> = plan
        .keys
        .iter()
        .filter(|k| !old.iter().any(|o| o.id == k.id))
        .filter(|k| !settings.owns_title(&k.title))
        .filter(|k| super::plan::fingerprint(k).as_deref() != Some(live_fp.as_str()))
        .filter(|k| named_by_previous(k) || settings.legacy_title(&k.title))
        .cloned()
        .collect();
    // Keys titled for this Secret under another cluster name (a teammate's kubeconfig context
    // names the cluster differently): say which name to pass rather than "nothing to finish".
    let mut elsewhere: Vec<String> = plan
        .keys
        .iter()
        .filter(|k| !settings.owns_title(&k.title) && !settings.legacy_title(&k.title))
        .filter_map(|k| {
            crate::github::title::slot_cluster(&k.title, &settings.namespace, &settings.secret_name)
        })
        .map(|c| {
            crate::github::title::context_name(crate::github::title::cluster_name(c)).to_string()
        })
        .collect();
    elsewhere.sort();
    elsewhere.dedup();
    if old.is_empty() && left_alone.is_empty() && !elsewhere.is_empty() {
        return Err(failed(
            Step::ListKeys,
            Error::input(
                format!("Secret {ns_name}"),
                format!(
                    "no older key is titled for it in cluster \"{}\", but keys are titled for it in cluster(s) {}",
                    crate::github::title::cluster_name(&settings.context),
                    elsewhere.join(", ")
                ),
                message!(
                    "titles name the cluster by the kubeconfig context that registered them: pass {} {} (the name they were registered under) and run {} again",
                    Setting::Cluster,
                    elsewhere[0].clone(),
                    Setting::Finish
                ),
            ),
            nothing,
        ));
    }
    if old.is_empty() && previous.is_none() && left_alone.is_empty() {
        return Err(failed(
            Step::ListKeys,
            Error::input(
                format!("Secret {ns_name}"),
                format!("no older key is titled for it (\"sealkey {}/{ns_name} ...\") and it has no {PREVIOUS_FINGERPRINT} annotation", settings.context),
                message!(
                    "nothing to finish; run `{}` first (or check {}: titles name the cluster)",
                    Command::Rotate,
                    Setting::Cluster
                ),
            ),
            nothing,
        ));
    }
    let mut restarted = Vec::new();
    if !old.is_empty() {
        // Readers that took the old key before the Secret changed keep it until they restart
        // (subPath, env) or their kubelet syncs (a volume): the same step `--apply` runs, whether
        // or not this run saw the change happen.
        let kept_both = |until: &str| {
            message!(
                "{}; once {}, run {} again",
                format!("nothing was deleted: the live key {live_fp} and the old keys stay registered, so pods with either key work"),
                until.to_string(),
                Setting::Finish
            )
        };
        let then = message!("{} {}", Command::Rotate, Setting::Finish);
        let readers = super::readers::refresh(
            cluster,
            settings,
            jiff::Timestamp::now(),
            &then,
            &kept_both,
            progress,
        )
        .await?;
        restarted = readers.restarted;
        let nobody_read = readers.consumers.is_empty();
        if let Some(why) = readers.kept_because {
            return Ok(Finished {
                live_fingerprint: live_fp,
                deleted: vec![],
                restarted,
                kept_because: Some(why),
                left_alone,
                waited: started.elapsed(),
            });
        }
        // No reader found in the namespace (readers elsewhere, or none): when this run saw the
        // Secret change, a pull in flight may still hold the old key for a kubelet sync period.
        if nobody_read && saw_it_change && !settings.sync_wait.is_zero() {
            progress(Step::SyncWait, &format!("{:?}", settings.sync_wait));
            tokio::time::sleep(settings.sync_wait).await;
        }
    }
    // Confirm from a fresh read, after the waits, that the Secret still holds the live key.
    if saw_it_change || !old.is_empty() {
        let again = Plan::read_secret(cluster, settings, &|_, _| {}, nothing).await?;
        if again.2 != live_fp {
            return Err(failed(
                Step::DeleteOld,
                Error::input(
                    format!("Secret {ns_name}"),
                    format!(
                        "changed while sealkey was finishing: it held {live_fp}, now {}",
                        again.2
                    ),
                    message!("run {} again once the Secret settled", Setting::Finish),
                ),
                nothing,
            ));
        }
    }
    progress(Step::DeleteOld, &format!("{} key(s)", old.len()));
    let deleted = delete_keys(
        registry,
        &old,
        Step::DeleteOld,
        message!(
            "the live key stays registered; run {} again to retry",
            Setting::Finish
        ),
    )
    .await?;
    Ok(Finished {
        live_fingerprint: live_fp,
        deleted,
        restarted,
        kept_because: None,
        left_alone,
        waited: started.elapsed(),
    })
}
