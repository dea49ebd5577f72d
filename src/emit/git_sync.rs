//! git-sync v4: a Secret with `ssh` and `known_hosts`, and the patch that mounts it.

use super::{key_data, mount, secret_object, EmitSettings};
use crate::keygen::DeployKey;
use crate::known_hosts::KnownHosts;
use crate::secret::PrivateKeyPem;
use serde_json::{json, Value};

/// Where git-sync reads its key and host keys (its defaults).
pub(crate) const SECRET_DIR: &str = "/etc/git-secret";

/// The Secret git-sync's documentation calls `git-creds`.
pub(crate) fn secret(
    settings: &EmitSettings,
    key: &DeployKey,
    kh: &KnownHosts,
    pem: &PrivateKeyPem,
) -> Value {
    let data = key_data("ssh", pem, Some(kh));
    secret_object(settings, key, kh, "Opaque", data)
}

/// Consecutive failed syncs git-sync tolerates before it exits. Its default, 0, ends it at the
/// first failure; a rotated key can fail one sync when the kubelet swaps the files under a
/// running ssh handshake (ssh reads the public and the private half at different moments).
pub(crate) const MAX_FAILURES: &str = "3";

/// Mounts the Secret at /etc/git-secret (files `ssh`, `known_hosts`) with mode 0400, or 0440
/// with `fsGroup` so git-sync's uid 65533 can read it, switches host-key checking on, and lets
/// git-sync retry a failed sync ([`MAX_FAILURES`]) instead of exiting.
pub(crate) fn mount_patch(settings: &EmitSettings) -> Value {
    let mode = if settings.fs_group.is_some() {
        0o440
    } else {
        0o400
    };
    let env = json!([
        { "name": "GITSYNC_REPO", "value": settings.repo_url() },
        { "name": "GITSYNC_REF", "value": settings.branch },
        { "name": "GITSYNC_SSH_KEY_FILE", "value": format!("{SECRET_DIR}/ssh") },
        { "name": "GITSYNC_SSH_KNOWN_HOSTS", "value": "true" },
        { "name": "GITSYNC_SSH_KNOWN_HOSTS_FILE", "value": format!("{SECRET_DIR}/known_hosts") },
        { "name": "GITSYNC_MAX_FAILURES", "value": MAX_FAILURES },
    ]);
    mount::patch(
        settings,
        &settings.secret_name(),
        "git-secret",
        SECRET_DIR,
        mode,
        env,
    )
}
