//! `sealkey rotate --apply`: the whole rotation straight into the cluster.

use super::plan::{delete_keys, helm_owner, Plan};
use super::{failed, DeployKeyRegistry, Progress, RotateSettings, SecretCluster, Step};
use crate::cluster::{self, ConsumerAction, LiveSecret, SecretConsumer};
use crate::emit::live::{fingerprint_in, rotated_secret};
use crate::error::{Command, Error, Message, Result, Setting};
use crate::github::registry::{register_read_only, undo_registration};
use crate::github::title::key_title_at;
use crate::github::DeployKeyInfo;
use crate::message;

/// What a finished rotation did.
#[derive(Debug)]
pub struct Rotated {
    /// Fingerprint of the key the Secret held.
    pub old_fingerprint: String,
    /// Fingerprint of the new key.
    pub new_fingerprint: String,
    /// The new key's public half.
    pub new_public: String,
    /// GitHub id of the new key (`None` in a dry run).
    pub new_key_id: Option<u64>,
    /// Workloads that read the Secret.
    pub consumers: Vec<SecretConsumer>,
    /// Workloads restarted.
    pub restarted: Vec<String>,
    /// Keys deleted.
    pub deleted: Vec<DeployKeyInfo>,
    /// Old keys left registered.
    pub kept: Vec<DeployKeyInfo>,
    /// Why old keys were left (and what to do), when they were.
    pub kept_because: Option<Message>,
    /// Whether the old key was registered on GitHub when the run started.
    pub old_was_registered: bool,
}

/// `--apply` on a Helm-owned Secret would be undone by the next upgrade, after the old key was
/// deleted from GitHub: an outage. Refused (exit 2) before anything is registered.
fn refuse_helm_owned(secret: &LiveSecret, settings: &RotateSettings, nothing: &str) -> Result<()> {
    let Some(mark) = helm_owner(secret) else {
        return Ok(());
    };
    Err(failed(
        Step::ReadSecret,
        Error::input(
            message!("{} on Secret {}", Setting::Apply, settings.secret_ref()),
            format!("Helm owns it ({mark}): the next helm upgrade (or Flux reconcile) would put the old key back after the old key was deleted from GitHub"),
            message!(
                "rotate where the Secret is defined: `{} {} FILE {} FILE` on the HelmRelease or sealed file in your GitOps repository (for the chart's extraSecrets, the HelmRelease), then `{} {} 10m` (docs/rotation.md)",
                Command::Rotate,
                Setting::Gitops,
                Setting::Update,
                Setting::Finish,
                Setting::Wait
            ),
        ),
        nothing,
    ))
}

/// `sealkey rotate --apply`: the whole rotation straight into the cluster.
pub async fn rotate_in_cluster<C: SecretCluster, R: DeployKeyRegistry>(
    settings: &RotateSettings,
    cluster: &C,
    registry: &R,
    progress: Progress<'_>,
) -> Result<Rotated> {
    let (ns, name) = (settings.namespace.as_str(), settings.secret_name.as_str());
    let nothing = "nothing was changed";

    let (secret, old, old_fp) = Plan::read_secret(cluster, settings, progress, nothing).await?;
    refuse_helm_owned(&secret, settings, nothing)?;
    progress(Step::ListKeys, &old_fp);
    let keys = registry
        .list()
        .await
        .map_err(|e| failed(Step::ListKeys, e, nothing))?;
    let plan = Plan {
        secret,
        old,
        old_fp,
        keys,
    };
    // Pending keys are titled for this Secret, so old_keys deletes them at the end.
    plan.refuse_over_pending(settings, nothing)?;
    let old_was_registered = plan.old_was_registered();

    let new = plan.generate(settings, nothing)?;
    let new_fp = new.fingerprint().to_string();
    let old_fp = plan.old_fp.clone();
    let now = jiff::Timestamp::now();
    let title = key_title_at(&settings.context, ns, name, now);
    progress(
        Step::Register,
        &format!("{new_fp} as \"{title}\" (read-only)"),
    );
    let new_id = if settings.dry_run {
        None
    } else {
        match register_read_only(registry, &title, &new).await {
            Ok(id) => Some(id),
            Err((e, undone)) => return Err(failed(Step::Register, e, undone)),
        }
    };

    let field = plan.old.field.clone();
    progress(
        Step::UpdateSecret,
        &format!("{field} in {}", settings.secret_ref()),
    );
    let doc = rotated_secret(&plan.secret, &field, &new, &old_fp, true, now)
        .map_err(|e| failed(Step::UpdateSecret, e, nothing))?;
    if let Err(e) = cluster.write_secret(&doc.expose_docs()[0]).await {
        drop(doc);
        // The write may have landed although its answer was lost: look before undoing.
        let landed = match cluster.read_secret(ns, name).await {
            Ok(Some(s)) => Some(fingerprint_in(&s, &field).as_deref() == Some(new_fp.as_str())),
            Ok(None) => Some(false),
            Err(_) => None,
        };
        match (landed, new_id) {
            (Some(true), _) => {} // it did land: carry on with the rotation
            (_, None) => {
                return Err(failed(
                    Step::UpdateSecret,
                    e,
                    "dry run: nothing was registered",
                ))
            }
            (Some(false), Some(id)) => {
                let undone = undo_registration(registry, Some(id), new.public_openssh())
                    .await
                    .said;
                let undone = message!(
                    "{}; the Secret still holds the old key {}, which stays registered",
                    undone,
                    old_fp.to_string()
                );
                return Err(failed(Step::UpdateSecret, e, undone));
            }
            (None, Some(id)) => {
                let undone = message!(
                    "{}`{} {}` once it shows {}, or run rotate again",
                    format!("could not read the Secret back to see whether it changed, so both keys stay registered (old {old_fp}, new {new_fp} id {id}): either works; check `kubectl get secret -n {ns} {name} -o jsonpath='{{.metadata.annotations}}'` and run "),
                    Command::Rotate,
                    Setting::Finish,
                    new_fp.clone()
                );
                return Err(failed(Step::UpdateSecret, e, undone));
            }
        }
    }
    let rotated = |consumers, restarted, deleted, kept, kept_because| Rotated {
        old_fingerprint: old_fp.clone(),
        new_fingerprint: new_fp.clone(),
        new_public: new.public_openssh().into(),
        new_key_id: new_id,
        consumers,
        restarted,
        deleted,
        kept,
        kept_because,
        old_was_registered,
    };
    if settings.dry_run {
        let consumers = cluster
            .list_workloads(ns)
            .await
            .map(|w| cluster::consumers_of(name, &w))
            .map_err(|e| failed(Step::FindConsumers, e, nothing))?;
        return Ok(rotated(
            consumers,
            vec![],
            vec![],
            vec![],
            Some("dry run".into()),
        ));
    }

    // From here on the Secret holds the new key: never roll back (restarted pods may run it);
    // on failure keep the old keys too, so pods with either key keep working.
    let kept_both = |step: &str| {
        message!(
            "{}`{} {} {} {} {} {} {} ...` to delete the old keys",
            format!("the Secret holds the new key {new_fp} (registered) and the old keys stay registered, so pods with either key work; once {step}, run "),
            Command::Rotate,
            Setting::Finish,
            Setting::Namespace,
            ns.to_string(),
            Setting::SecretName,
            name.to_string(),
            Setting::Repo
        )
    };

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
            "{}: {} still run the old key; restart them (kubectl rollout restart), then run `{} {}`",
            Setting::NoRestart,
            names.join(", "),
            Command::Rotate,
            Setting::Finish
        ));
    }
    if !manual.is_empty() && kept_because.is_none() {
        kept_because = Some(message!(
            "{} read the Secret at start and have no controller to restart them; recreate them, then run `{} {}`",
            manual.join(", "),
            Command::Rotate,
            Setting::Finish
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

    let old = plan.old_keys(settings, Some(&old_fp), &new_fp);
    if settings.keep_old && kept_because.is_none() {
        kept_because = Some(Setting::KeepOld.into());
    }
    if kept_because.is_some() {
        return Ok(rotated(consumers, restarted, vec![], old, kept_because));
    }
    progress(Step::DeleteOld, &format!("{} key(s)", old.len()));
    let deleted = delete_keys(
        registry,
        &old,
        Step::DeleteOld,
        kept_both("GitHub answers again"),
    )
    .await?;
    Ok(rotated(consumers, restarted, deleted, vec![], None))
}
