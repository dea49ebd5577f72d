//! The core pipeline behind `sealkey create`: generate a deploy key in memory, emit the
//! consumer's manifests around it, seal them. Registration and cluster apply hook in around it.

use crate::emit::{self, EmitSettings};
use crate::error::Result;
use crate::keygen::{DeployKey, KeyType};
use crate::known_hosts::KnownHosts;
use crate::seal::{self, SealSettings, SealedOutput};

/// Everything `create` needs; no secrets in here.
#[derive(Debug)]
pub struct CreateSettings {
    /// Algorithm of the new key.
    pub key_type: KeyType,
    /// Comment stored in the key (`sealkey:OWNER/REPO` by default).
    pub comment: String,
    /// What to emit.
    pub emit: EmitSettings,
    /// Host keys for the emitted configuration.
    pub known_hosts: KnownHosts,
    /// How to seal.
    pub seal: SealSettings,
}

/// The result: the key (for its public half and fingerprint) and the sealed or plaintext output.
#[derive(Debug)]
pub struct Created {
    /// The new key; its private half is inside `output` already.
    pub key: DeployKey,
    /// What to write.
    pub output: SealedOutput,
}

/// Validates settings, then generates, emits and seals. Nothing is written anywhere.
pub fn create(settings: &CreateSettings) -> Result<Created> {
    settings.emit.validate()?;
    let key = DeployKey::generate(settings.key_type, &settings.comment)?;
    let output = seal_key(settings, &key)?;
    Ok(Created { key, output })
}

/// Emits and seals the manifests for an existing key (rotation re-uses this).
pub fn seal_key(settings: &CreateSettings, key: &DeployKey) -> Result<SealedOutput> {
    let stream = emit::emit(&settings.emit, key, &settings.known_hosts)?;
    seal::seal_stream(&stream, &settings.seal)
}
