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
                    "a newer key is registered for it but not in it: key {} (an earlier GitOps rotation waiting for its commit to be applied, or an earlier run stopped after registering it, which then said so), while the Secret still holds {}",
                    ids.join(", "),
                    self.old_fp
                ),
                message!(
                    "if a committed file holds it, let Flux or Argo CD apply it, then run `{} {}`; if no file holds it (the commit was reverted, or the run that registered it was stopped), pass {} to delete it as part of this rotation",
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

/// A controller that writes a Secret back from its own source (a release, a commit, a store, a
/// sealed object): a key rotated in place would be put back by its next reconcile, after the old
/// key was deleted from GitHub. Rotation goes through that source instead.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Owner {
    /// Helm (a release's object or hook, as the Airflow chart's `extraSecrets`), also under
    /// Flux's helm-controller.
    Helm,
    /// Flux's kustomize-controller (a file in the GitOps repository).
    FluxKustomize,
    /// Argo CD (a file in the repository an Application tracks).
    ArgoCd,
    /// The External Secrets Operator (a store).
    ExternalSecrets,
    /// The Sealed Secrets controller (a SealedSecret).
    SealedSecrets,
}

impl Owner {
    /// Who it is, as the refusal names it.
    pub fn name(self) -> &'static str {
        match self {
            Owner::Helm => "Helm",
            Owner::FluxKustomize => "Flux's kustomize-controller",
            Owner::ArgoCd => "Argo CD",
            Owner::ExternalSecrets => "the External Secrets Operator",
            Owner::SealedSecrets => "the Sealed Secrets controller",
        }
    }

    /// The rotation that works for a Secret it owns.
    pub fn route(self) -> Message {
        match self {
            Owner::Helm => message!(
                "rotate where the Secret is defined: `{} {} FILE {} FILE` on the HelmRelease or sealed file in your GitOps repository (for the chart's extraSecrets, the HelmRelease), then `{} {} 10m` (docs/rotation.md)",
                Command::Rotate,
                Setting::Gitops,
                Setting::Update,
                Setting::Finish,
                Setting::Wait
            ),
            Owner::FluxKustomize | Owner::ArgoCd => message!(
                "rotate the committed file: `{} {} FILE` (a SOPS file: with {} FILE), commit and push it, then `{} {} 10m` once it is applied (docs/rotation.md)",
                Command::Rotate,
                Setting::Gitops,
                Setting::Update,
                Setting::Finish,
                Setting::Wait
            ),
            Owner::ExternalSecrets => message!(
                "rotate the key in the store ESO reads: `{} {} aws-secrets-manager:NAME` (docs/rotation.md)",
                Command::Rotate,
                Setting::Store
            ),
            Owner::SealedSecrets => message!(
                "rotate the SealedSecret: `{} {} FILE {} sealed-secrets`, commit and push it, then `{} {} 10m` (docs/rotation.md)",
                Command::Rotate,
                Setting::Gitops,
                Setting::Seal,
                Setting::Finish,
                Setting::Wait
            ),
        }
    }
}

/// The controller that owns `secret` and the mark that says so (a label, annotation or owner
/// reference), if any. Argo CD's default tracking label `app.kubernetes.io/instance` counts too:
/// Helm and kustomize set it as well, and both also write the Secret back.
pub fn controller_owner(secret: &LiveSecret) -> Option<(Owner, String)> {
    let label = |k: &str| secret.labels.get(k).map(String::as_str);
    if label("app.kubernetes.io/managed-by") == Some("Helm") {
        return Some((
            Owner::Helm,
            "label app.kubernetes.io/managed-by: Helm".into(),
        ));
    }
    for kind in &secret.owner_kinds {
        match kind.as_str() {
            "ExternalSecret" => {
                return Some((
                    Owner::ExternalSecrets,
                    "owner reference ExternalSecret".into(),
                ))
            }
            "SealedSecret" => {
                return Some((Owner::SealedSecrets, "owner reference SealedSecret".into()))
            }
            "HelmRelease" => return Some((Owner::Helm, "owner reference HelmRelease".into())),
            _ => {}
        }
    }
    let marks = secret
        .annotations
        .keys()
        .map(|k| (k, "annotation"))
        .chain(secret.labels.keys().map(|k| (k, "label")));
    for (k, what) in marks {
        let owner = if k.starts_with("meta.helm.sh/")
            || k.starts_with("helm.sh/")
            || k.starts_with("helm.toolkit.fluxcd.io/")
        {
            Owner::Helm
        } else if k.starts_with("kustomize.toolkit.fluxcd.io/") {
            Owner::FluxKustomize
        } else if k.starts_with("argocd.argoproj.io/") || k == "app.kubernetes.io/instance" {
            Owner::ArgoCd
        } else if k.starts_with("reconcile.external-secrets.io/") {
            Owner::ExternalSecrets
        } else if k.starts_with("sealedsecrets.bitnami.com/") {
            Owner::SealedSecrets
        } else {
            continue;
        };
        return Some((owner, format!("{what} {k}")));
    }
    None
}
