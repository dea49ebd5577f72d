//! What every mode reads before it changes anything: the live Secret, the key in it, the
//! repository's deploy keys; and what it derives from them: which keys are old, which one is a
//! pending `--gitops` rotation, whether Helm owns the Secret. Plus the one way old keys are
//! deleted.

use super::{failed, Progress, RotateSettings, SecretCluster, Step};
use crate::cluster::LiveSecret;
use crate::emit::keys::PREVIOUS_FINGERPRINT;
use crate::emit::live::{key_in_secret, SecretKey};
use crate::error::{Command, Error, Message, Result, Setting};
use crate::github::registry::DeployKeyRegistry;
use crate::github::title::title_time;
use crate::github::DeployKeyInfo;
use crate::keygen::DeployKey;
use crate::message;

/// The state a rotation starts from.
#[derive(Debug)]
pub struct Plan {
    /// The live Secret.
    pub secret: LiveSecret,
    /// The key in it, and its data key.
    pub old: SecretKey,
    /// That key's fingerprint.
    pub old_fp: String,
    /// Every deploy key of the repository.
    pub keys: Vec<DeployKeyInfo>,
}

impl Plan {
    /// Step 1 of every mode: reads the live Secret and the key in it. A failure here has changed
    /// nothing; `nothing` says so in the mode's own words.
    pub async fn read_secret<C: SecretCluster>(
        cluster: &C,
        settings: &RotateSettings,
        progress: Progress<'_>,
        nothing: &str,
    ) -> Result<(LiveSecret, SecretKey, String)> {
        progress(Step::ReadSecret, &settings.secret_ref());
        let secret = cluster
            .read_secret(&settings.namespace, &settings.secret_name)
            .await
            .and_then(|s| s.ok_or_else(|| missing(settings)))
            .map_err(|e| failed(Step::ReadSecret, e, nothing))?;
        let key = key_in_secret(&secret, settings.consumer)
            .map_err(|e| failed(Step::ReadSecret, e, nothing))?;
        let fingerprint = key.key.fingerprint().to_string();
        Ok((secret, key, fingerprint))
    }

    /// Steps 1 and 2: the live Secret and its key, then the repository's keys.
    pub async fn read<C: SecretCluster, R: DeployKeyRegistry>(
        cluster: &C,
        registry: &R,
        settings: &RotateSettings,
        progress: Progress<'_>,
        nothing: &str,
    ) -> Result<Plan> {
        let (secret, old, old_fp) = Self::read_secret(cluster, settings, progress, nothing).await?;
        progress(Step::ListKeys, &old_fp);
        let keys = registry
            .list()
            .await
            .map_err(|e| failed(Step::ListKeys, e, nothing))?;
        Ok(Plan {
            secret,
            old,
            old_fp,
            keys,
        })
    }

    /// The `sealkey.io/previous-fingerprint` annotation, when sealkey rotated this Secret in
    /// place (a Secret rendered by Helm has none).
    pub fn previous(&self) -> Option<&str> {
        self.secret
            .annotations
            .get(PREVIOUS_FINGERPRINT)
            .map(String::as_str)
    }

    /// GitHub's id of the live key, when it is registered.
    pub fn live_id(&self) -> Option<u64> {
        self.keys
            .iter()
            .find(|k| fingerprint(k).as_deref() == Some(self.old_fp.as_str()))
            .map(|k| k.id)
    }

    /// When sealkey registered the live key for this Secret, from its title (the latest, if it
    /// is registered more than once); `None` when no key titled for this Secret holds it.
    fn live_recorded_at(&self, settings: &RotateSettings) -> Option<jiff::Timestamp> {
        self.keys
            .iter()
            .filter(|k| settings.owns_title(&k.title) || settings.legacy_title(&k.title))
            .filter(|k| fingerprint(k).as_deref() == Some(self.old_fp.as_str()))
            .filter_map(|k| title_time(&k.title))
            .max()
    }

    /// Keys registered for this Secret (by title) that are not in it and are not older than the
    /// live key: an earlier `--gitops` rotation whose file has not been applied yet. Older and
    /// newer are what sealkey recorded in the titles, not GitHub's ids (a key deleted and
    /// registered again gets a higher id) nor the Secret's annotations (cluster data). When the
    /// order is not known (the live key has no title for this Secret, a title has no time, two
    /// titles the same moment or day) the key counts as pending: it is kept, never deleted.
    pub fn pending(&self, settings: &RotateSettings) -> Vec<&DeployKeyInfo> {
        let live_at = self.live_recorded_at(settings);
        self.keys
            .iter()
            .filter(|k| settings.owns_title(&k.title))
            .filter(|k| fingerprint(k).as_deref() != Some(self.old_fp.as_str()))
            .filter(|k| match (live_at, title_time(&k.title)) {
                (Some(live), Some(at)) => at >= live,
                _ => true,
            })
            .collect()
    }

    /// Old keys for this Secret: the key with fingerprint `old_fp` (any title) and every key
    /// titled for this Secret, never the key `keep_fp`.
    pub fn old_keys(
        &self,
        settings: &RotateSettings,
        old_fp: Option<&str>,
        keep_fp: &str,
    ) -> Vec<DeployKeyInfo> {
        self.keys
            .iter()
            .filter(|k| {
                let fp = fingerprint(k);
                fp.as_deref() != Some(keep_fp)
                    && (old_fp.is_some() && fp.as_deref() == old_fp
                        || settings.owns_title(&k.title))
            })
            .cloned()
            .collect()
    }

    /// Whether the live key was registered when the run started.
    pub fn old_was_registered(&self) -> bool {
        self.live_id().is_some()
    }

    /// The new key: the settings' type, else the old key's.
    pub fn generate(&self, settings: &RotateSettings, nothing: &str) -> Result<DeployKey> {
        DeployKey::generate(
            settings.key_type.unwrap_or(self.old.key.key_type()),
            &settings.comment,
        )
        .map_err(|e| failed(Step::Register, e, nothing))
    }

    /// Refuses to start a rotation over a pending one (unless told to abandon it): rotating
    /// again would delete, or strand, the key that the committed GitOps file still carries.
    pub fn refuse_over_pending(&self, settings: &RotateSettings, nothing: &str) -> Result<()> {
        let pending = self.pending(settings);
        if pending.is_empty() || settings.abandon_pending {
            return Ok(());
        }
        let ids: Vec<String> = pending
            .iter()
            .map(|k| format!("{} (\"{}\")", k.id, k.title))
            .collect();
        Err(failed(
            Step::ListKeys,
            Error::input(
                format!("Secret {}", settings.secret_ref()),
                format!(
                    "an earlier GitOps rotation is pending: key {} is registered for it, but the Secret still holds {}",
                    ids.join(", "),
                    self.old_fp
                ),
                message!(
                    "let Flux or Argo CD apply the committed file, then run `{} {}`; if that commit was reverted, pass {} to delete the pending key as part of this rotation",
                    Command::Rotate,
                    Setting::Finish,
                    Setting::AbandonPending
                ),
            ),
            nothing,
        ))
    }
}

/// The key's fingerprint (`None` if GitHub listed something unparseable).
pub fn fingerprint(k: &DeployKeyInfo) -> Option<String> {
    crate::keygen::fingerprint_of_public(&k.key).ok()
}

fn missing(settings: &RotateSettings) -> Error {
    Error::input(
        message!(
            "{} {} {} {}",
            Setting::Namespace,
            &settings.namespace,
            Setting::SecretName,
            &settings.secret_name
        ),
        "no such Secret in the cluster",
        message!(
            "check the names (kubectl get secrets -n NAMESPACE); a new Secret is made with `{} {}`",
            Command::Create,
            Setting::Apply
        ),
    )
}

/// Deletes `keys`. A DELETE whose answer was lost may still have happened: the list is checked
/// before failing. On failure the error says what was deleted and `state`.
pub async fn delete_keys<R: DeployKeyRegistry>(
    registry: &R,
    keys: &[DeployKeyInfo],
    step: Step,
    state: Message,
) -> Result<Vec<DeployKeyInfo>> {
    let mut deleted = Vec::new();
    for k in keys {
        if let Err(e) = registry.delete(k.id).await {
            let gone =
                matches!(registry.list().await, Ok(now) if !now.iter().any(|n| n.id == k.id));
            if gone {
                deleted.push(k.clone());
                continue;
            }
            let done: Vec<String> = deleted
                .iter()
                .map(|d: &DeployKeyInfo| d.id.to_string())
                .collect();
            let mut undone = Message::from(format!(
                "deleted [{}], key {} is still registered; ",
                done.join(", "),
                k.id
            ));
            undone.push(state);
            return Err(failed(step, e, undone));
        }
        deleted.push(k.clone());
    }
    Ok(deleted)
}

/// Marks of a Secret that Helm renders (the Airflow chart's `extraSecrets` are Helm hooks) or
/// that Flux's helm-controller owns: the next upgrade writes the Secret back from the release.
pub fn helm_owner(secret: &LiveSecret) -> Option<String> {
    if secret
        .labels
        .get("app.kubernetes.io/managed-by")
        .map(String::as_str)
        == Some("Helm")
    {
        return Some("label app.kubernetes.io/managed-by: Helm".into());
    }
    secret
        .annotations
        .keys()
        .chain(secret.labels.keys())
        .find(|k| {
            k.starts_with("meta.helm.sh/")
                || k.starts_with("helm.sh/")
                || k.starts_with("helm.toolkit.fluxcd.io/")
        })
        .map(|k| k.to_string())
}
