//! Strategic-merge patches that mount a key Secret into a workload as files.
//!
//! The whole volume is mounted at a directory rather than with `subPath`, so that a rotated Secret
//! reaches the running pod without a restart (files under `subPath` never update).

use super::{EmitSettings, PatchKind};
use serde_json::{json, Value};

/// A patch for `settings.workload` adding a secret volume (`mode`, e.g. 0o400) mounted read-only
/// at `dir` in `settings.container`, with `env` added to that container.
pub(crate) fn patch(
    settings: &EmitSettings,
    secret_name: &str,
    volume: &str,
    dir: &str,
    mode: u32,
    env: Value,
) -> Value {
    let kind = match settings.workload_kind {
        PatchKind::Deployment => "Deployment",
        PatchKind::StatefulSet => "StatefulSet",
    };
    let mut container = json!({
        "name": settings.container,
        "volumeMounts": [{ "name": volume, "mountPath": dir, "readOnly": true }],
    });
    if env.as_array().is_some_and(|a| !a.is_empty()) {
        container["env"] = env;
    }
    let mut pod_spec = json!({
        "volumes": [{ "name": volume, "secret": { "secretName": secret_name, "defaultMode": mode } }],
        "containers": [container],
    });
    if let Some(g) = settings.fs_group {
        pod_spec["securityContext"] = json!({ "fsGroup": g });
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": { "name": settings.workload, "namespace": settings.namespace },
        "spec": { "template": { "spec": pod_spec } },
    })
}
