//! Flux: the GitRepository SSH Secret (`identity`, `identity.pub`, `known_hosts`), as
//! `flux create secret git` writes it.

use super::{b64, key_data, secret_object, EmitSettings};
use crate::keygen::DeployKey;
use crate::known_hosts::KnownHosts;
use crate::secret::PrivateKeyPem;
use serde_json::Value;

/// The Secret a GitRepository's `spec.secretRef` names.
pub(crate) fn secret(
    settings: &EmitSettings,
    key: &DeployKey,
    kh: &KnownHosts,
    pem: &PrivateKeyPem,
) -> Value {
    let mut data = key_data("identity", pem, Some(kh));
    data.insert(
        "identity.pub".into(),
        Value::String(b64(format!("{}\n", key.public_openssh()).as_bytes()).to_string()),
    );
    secret_object(settings, key, kh, "Opaque", data)
}
