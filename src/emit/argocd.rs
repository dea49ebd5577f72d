//! Argo CD: a repository Secret (`type: git`, `url`, `sshPrivateKey`) and, for hosts Argo CD
//! does not already trust, the `argocd-ssh-known-hosts-cm` ConfigMap with the host keys.

use super::{b64, secret_object, secret_value, EmitSettings};
use crate::keygen::DeployKey;
use crate::known_hosts::KnownHosts;
use crate::secret::PrivateKeyPem;
use serde_json::{json, Map, Value};

/// The repository Secret, then the known-hosts ConfigMap unless the host keys are github.com's
/// pinned ones: Argo CD's default `argocd-ssh-known-hosts-cm` already lists those (checked
/// against Argo CD's manifest in tests), and applying the ConfigMap would replace its whole list,
/// dropping GitLab, Bitbucket and Azure DevOps.
pub(crate) fn objects(
    settings: &EmitSettings,
    key: &DeployKey,
    kh: &KnownHosts,
    pem: &PrivateKeyPem,
) -> Vec<Value> {
    let mut data = Map::new();
    data.insert("type".into(), Value::String(b64(b"git").to_string()));
    data.insert(
        "url".into(),
        Value::String(b64(settings.repo_url().as_bytes()).to_string()),
    );
    data.insert(
        "sshPrivateKey".into(),
        secret_value(b64(pem.expose_secret().as_bytes())),
    );
    let mut secret = secret_object(settings, key, kh, "Opaque", data);
    secret["metadata"]["labels"]["argocd.argoproj.io/secret-type"] = json!("repository");
    if kh.equals_pinned_github() {
        return vec![secret];
    }
    // Applying this ConfigMap replaces Argo CD's whole list: the annotation says so, and
    // docs/consumers/argocd.md shows how to merge instead.
    let cm = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": "argocd-ssh-known-hosts-cm",
            "namespace": settings.namespace,
            "labels": {
                "app.kubernetes.io/name": "argocd-ssh-known-hosts-cm",
                "app.kubernetes.io/part-of": "argocd",
                super::keys::MANAGED_BY: "sealkey",
            },
            "annotations": {
                "sealkey.io/note": "replaces the whole ssh_known_hosts list: merge with your existing entries",
                super::keys::REPO: settings.repo.slug(),
            },
        },
        "data": { "ssh_known_hosts": kh.to_text() },
    });
    vec![secret, cm]
}
