//! `sealkey rotate --gitops FILE`: register a new key and hand it, with the live Secret rebuilt
//! around it, to the caller, which seals it into the GitOps repository (a sealed Secret, or the
//! `extraSecrets` entry of a HelmRelease). The old key stays registered until `finish`.

use super::plan::{delete_keys, Plan};
use super::{failed, DeployKeyRegistry, Progress, RotateSettings, SecretCluster, Step};
use crate::emit::live::rotated_secret;
use crate::emit::ManifestStream;
use crate::error::Result;
use crate::github::registry::{register_read_only, undo_registration};
use crate::github::title::key_title_at;
use crate::keygen::DeployKey;

/// What `rotate --gitops` did.
#[derive(Debug)]
pub struct GitopsRotated {
    /// The Secret's current key.
    pub old_fingerprint: String,
    /// The new key, registered, in the sealed manifest.
    pub new_fingerprint: String,
    /// Its public half.
    pub new_public: String,
    /// Its GitHub id.
    pub new_key_id: u64,
}

/// The new key as the writer gets it.
#[derive(Debug)]
pub struct NewKey<'a> {
    /// The new key.
    pub key: &'a DeployKey,
    /// The live Secret with the new key in place (everything else kept, no server fields).
    pub secret: &'a ManifestStream,
    /// The Secret's data key that holds the private key (`gitSshKey`, `ssh`, `identity`, ...).
    pub field: &'a str,
    /// Fingerprint of the key the live Secret holds now.
    pub old_fingerprint: &'a str,
}

/// Registers a new key and hands it to `write`, which seals and stores it. If `write` fails, the
/// new key is deleted again. A pending earlier rotation is refused, or deleted with
/// `abandon_pending`.
pub async fn rotate_gitops<C, R, W>(
    settings: &RotateSettings,
    cluster: &C,
    registry: &R,
    write: W,
    progress: Progress<'_>,
) -> Result<GitopsRotated>
where
    C: SecretCluster,
    R: DeployKeyRegistry,
    W: FnOnce(&NewKey<'_>) -> Result<()>,
{
    let nothing = "nothing was changed";
    let plan = Plan::read(cluster, registry, settings, progress, nothing).await?;
    plan.refuse_over_pending(settings, nothing)?;
    let pending: Vec<_> = plan.pending(settings).into_iter().cloned().collect();
    if !pending.is_empty() {
        // Abandoned: the file that carried it was reverted. Left registered, it would also
        // block --finish of this rotation.
        progress(
            Step::DeleteOld,
            &format!("{} pending key(s)", pending.len()),
        );
        delete_keys(registry, &pending, Step::DeleteOld, nothing.into()).await?;
    }
    let new = plan.generate(settings, nothing)?;
    let now = jiff::Timestamp::now();
    // Built before registering, so an error here costs no GitHub request.
    let doc = rotated_secret(
        &plan.secret,
        &plan.old.field,
        &new,
        &plan.old_fp,
        false,
        now,
    )
    .map_err(|e| failed(Step::WriteManifest, e, nothing))?;
    let title = key_title_at(
        &settings.context,
        &settings.namespace,
        &settings.secret_name,
        now,
    );
    progress(
        Step::Register,
        &format!("{} as \"{title}\" (read-only)", new.fingerprint()),
    );
    let id = match register_read_only(registry, &title, &new).await {
        Ok(id) => id,
        Err((e, undone)) => return Err(failed(Step::Register, e, undone)),
    };
    progress(Step::WriteManifest, "");
    let handed = NewKey {
        key: &new,
        secret: &doc,
        field: &plan.old.field,
        old_fingerprint: &plan.old_fp,
    };
    if let Err(e) = write(&handed) {
        let undone = undo_registration(registry, Some(id), new.public_openssh())
            .await
            .said;
        return Err(failed(Step::WriteManifest, e, undone));
    }
    Ok(GitopsRotated {
        old_fingerprint: plan.old_fp.clone(),
        new_fingerprint: new.fingerprint().into(),
        new_public: new.public_openssh().into(),
        new_key_id: id,
    })
}
