//! `sealkey rotate --apply`: the whole rotation straight into the cluster.

use super::plan::{controller_owner, delete_keys, Owner, Plan};
use super::{failed, DeployKeyRegistry, Progress, RotateSettings, SecretCluster, Step};
use crate::cluster::{self, LiveSecret, SecretConsumer};
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

/// `--apply` on a Secret a controller writes back (Helm, Flux, Argo CD, ESO, Sealed Secrets)
/// would be undone by its next reconcile, after the old key was deleted from GitHub: an outage.
/// Refused (exit 2) before anything is registered, with the route that works for that owner.
fn refuse_controller_owned(
    secret: &LiveSecret,
    settings: &RotateSettings,
    nothing: &str,
) -> Result<()> {
    let Some((owner, mark)) = controller_owner(secret) else {
        return Ok(());
    };
    let reconcile = match owner {
        Owner::Helm => "the next helm upgrade (or Flux's helm-controller reconcile)",
        _ => "its next reconcile",
    };
    Err(failed(
        Step::ReadSecret,
        Error::input(
            message!("{} on Secret {}", Setting::Apply, settings.secret_ref()),
            format!("{} owns it ({mark}): {reconcile} would put the old key back after the old key was deleted from GitHub", owner.name()),
            owner.route(),
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
    refuse_controller_owned(&secret, settings, nothing)?;
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

    let finish = message!("{} {}", Command::Rotate, Setting::Finish);
    let super::readers::Readers {
        consumers,
        restarted,
        mut kept_because,
    } = super::readers::refresh(cluster, settings, now, &finish, &kept_both, progress).await?;

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
