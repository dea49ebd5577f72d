//! Flux: the GitRepository SSH Secret (`identity`, `identity.pub`, `known_hosts`), as
//! `flux create secret git` writes it.

use super::{b64, secret_object, secret_value, EmitSettings};
use crate::keygen::DeployKey;
use crate::known_hosts::KnownHosts;
use crate::secret::PrivateKeyPem;
use serde_json::{Map, Value};

/// The Secret a GitRepository's `spec.secretRef` names.
pub(crate) fn secret(
    settings: &EmitSettings,
    key: &DeployKey,
    kh: &KnownHosts,
    pem: &PrivateKeyPem,
) -> Value {
    let mut data = Map::new();
    data.insert(
        "identity".into(),
        secret_value(b64(pem.expose_secret().as_bytes())),
    );
    data.insert(
        "identity.pub".into(),
        Value::String(b64(format!("{}\n", key.public_openssh()).as_bytes()).to_string()),
    );
    data.insert(
        "known_hosts".into(),
        Value::String(b64(kh.to_text().as_bytes()).to_string()),
    );
    secret_object(settings, key, kh, "Opaque", data)
}
