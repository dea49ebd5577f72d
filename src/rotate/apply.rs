//! `sealkey rotate --apply`: the whole rotation straight into the cluster.

use super::confirm::{self, Seen};
use super::plan::{controller_owner, delete_keys, Owner, Plan};
use super::{failed, DeployKeyRegistry, Progress, RotateSettings, SecretCluster, Step};
use crate::cluster::{self, LiveSecret, SecretConsumer};
use crate::emit::live::rotated_secret;
use crate::error::{Command, Error, Message, Result, Setting};
use crate::github::registry::{register_read_only, undo_registration};
use crate::github::title::key_title_at;
use crate::github::DeployKeyInfo;
use crate::keygen::DeployKey;
use crate::message;
use std::time::Duration;

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
    let written = cluster.write_secret(&doc.expose_docs()[0]).await;
    drop(doc);
    let at = (ns, name, field.as_str());
    if let Some(id) = new_id {
        confirm_swap(
            cluster,
            registry,
            settings,
            written,
            at,
            (&old_fp, &new_fp, id),
            &new,
        )
        .await?;
    } else if let Err(e) = written {
        return Err(failed(
            Step::UpdateSecret,
            e,
            "dry run: nothing was registered",
        ));
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
    // A fresh read right before deleting: the Secret may have been written back (a GitOps
    // controller, Helm, a person, a stale write landing late) while readers were refreshed.
    match confirm::watch_for_key(cluster, at, &new_fp, Duration::ZERO, Duration::ZERO).await {
        Seen::Key(fp) if fp == new_fp => {}
        seen => {
            let (now, why) = match seen {
                Seen::Key(fp) => (fp, "something wrote it back".to_string()),
                Seen::NoKey => ("no key".into(), "it was deleted or emptied".into()),
                Seen::Unreadable(e) => ("unknown".into(), e.to_string()),
            };
            return Err(failed(
                Step::DeleteOld,
                Error::remote(
                    "Kubernetes API",
                    format!("before deleting the old keys, a fresh read of Secret {ns}/{name} showed {now} instead of the new key {new_fp} ({why})"),
                    "find out what writes the Secret (kubectl get secret -o yaml: managedFields) before rotating it in place",
                ),
                kept_both("the Secret holds the new key again"),
            ));
        }
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

/// Step 4's check: whatever the write answered, a fresh read must show the new key before the
/// rotation goes on. A refusal (4xx) undoes the registration; an unknown outcome (no answer, a
/// 5xx, a 200 whose effect does not show) is watched for `write_confirm_timeout`, and if the
/// Secret still does not show the new key, both keys stay registered: a late commit may yet
/// put the new key into the Secret, and deleting either could strand it.
async fn confirm_swap<C: SecretCluster, R: DeployKeyRegistry>(
    cluster: &C,
    registry: &R,
    settings: &RotateSettings,
    written: Result<()>,
    at: (&str, &str, &str),
    (old_fp, new_fp, id): (&str, &str, u64),
    new: &DeployKey,
) -> Result<()> {
    let (ns, name, _) = at;
    let refusal = matches!(&written, Err(e) if confirm::refused(e));
    let bound = if refusal {
        Duration::ZERO
    } else {
        settings.write_confirm_timeout
    };
    let seen = confirm::watch_for_key(cluster, at, new_fp, bound, settings.poll_interval).await;
    if seen.holds(new_fp) {
        return Ok(()); // it landed (even if the answer was lost): carry on with the rotation
    }
    let e = match written {
        Err(e) => e,
        Ok(()) => Error::remote(
            "Kubernetes API",
            format!(
                "apply Secret {ns}/{name} was answered as done, but {} later the Secret does not hold the new key",
                humantime(bound)
            ),
            "the API server (or something between sealkey and it) answers writes it does not carry out; check the cluster before rotating again",
        ),
    };
    if refusal {
        let undone = undo_registration(registry, Some(id), new.public_openssh())
            .await
            .said;
        // A refused write stored nothing, but the Secret may have been changed by someone else
        // since it was read (the server's 409 for a stale resourceVersion): say what it holds.
        let undone = match &seen {
            Seen::Key(fp) if fp != old_fp => message!(
                "{}, but the Secret was changed by someone else since sealkey read it: it now holds {}, neither the old key {} (which stays registered) nor the new one; check `kubectl get secret -n {} {}` before rotating again",
                undone,
                fp.to_string(),
                old_fp.to_string(),
                ns.to_string(),
                name.to_string()
            ),
            Seen::NoKey => message!(
                "{}, but the Secret now holds no key (changed or deleted by someone else since sealkey read it); the old key {} stays registered; check `kubectl get secret -n {} {}` before rotating again",
                undone,
                old_fp.to_string(),
                ns.to_string(),
                name.to_string()
            ),
            _ => message!(
                "{}; the Secret still holds the old key {}, which stays registered",
                undone,
                old_fp.to_string()
            ),
        };
        return Err(failed(Step::UpdateSecret, e, undone));
    }
    let shows = match &seen {
        Seen::Key(fp) if fp == old_fp => format!("still holds the old key {old_fp}"),
        Seen::Key(fp) => format!("holds {fp}, neither the old nor the new key"),
        Seen::NoKey => "holds no key".into(),
        Seen::Unreadable(_) => "could not be read".into(),
    };
    let undone = message!(
        "{}`{} {} {} 10m` once it shows {}; if it never does, `{} {} {}` deletes the new key",
        format!("the write's outcome is unknown: after {} the Secret {shows}, and a write can still land late, so both keys stay registered (old {old_fp}, new {new_fp} id {id}): either works. Check `kubectl get secret -n {ns} {name} -o jsonpath='{{.metadata.annotations}}'` and run ", humantime(bound)),
        Command::Rotate,
        Setting::Finish,
        Setting::Wait,
        new_fp.to_string(),
        Command::Rotate,
        Setting::Apply,
        Setting::AbandonPending
    );
    Err(failed(Step::UpdateSecret, e, undone))
}

fn humantime(d: Duration) -> String {
    if d.as_secs() >= 1 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}
