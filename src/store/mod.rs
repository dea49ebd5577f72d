//! Key stores: instead of committing a sealed Secret, the key goes (from memory) into an external
//! secret store and the External Secrets Operator renders the Secret in the cluster. Today: AWS
//! Secrets Manager ([`aws`]).
//!
//! create --store: check the name is free (or sealkey's), generate,
//! register (optional), store, and hand back the ExternalSecret and the consumer documents;
//! [`aws::SecretsManagerStore::undo`] takes the store write back when writing those documents fails (the
//! create pipeline withdraws the registered key).
//! [`rotate_with_store`] is `rotate --store`.

pub mod aws;
pub mod rotate;

pub use rotate::{rotate_with_store, StoreRotation, StoreRotationSettings};

use crate::emit::external_secrets::{self as es, ExternalSecretSettings};
use crate::error::{Error, Result};
use crate::keygen::DeployKey;
use serde_json::Value;

/// `--store aws-secrets-manager:NAME`, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreTarget {
    /// The Secrets Manager secret name.
    pub name: String,
}

impl StoreTarget {
    /// Parses `aws-secrets-manager:NAME` (NAME: 1-512 of `A-Za-z0-9/_+=.@-`, as AWS accepts).
    pub fn parse(text: &str) -> Result<Self> {
        let what = crate::message!("{} {}", crate::error::Setting::Store, text.to_string());
        let Some(name) = text.strip_prefix("aws-secrets-manager:") else {
            return Err(Error::input(
                &what,
                "unknown store",
                crate::message!(
                    "use {} aws-secrets-manager:NAME (the Secrets Manager secret's name)",
                    crate::error::Setting::Store
                ),
            ));
        };
        let ok = !name.is_empty()
            && name.len() <= 512
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c));
        if !ok {
            return Err(Error::input(
                what,
                "not a valid Secrets Manager secret name",
                "use 1-512 characters from A-Z a-z 0-9 / _ + = . @ -",
            ));
        }
        Ok(Self { name: name.into() })
    }
}

/// Where `create --store` puts the key, besides the client; no secrets in here.
#[derive(Debug)]
pub struct StoreSettings {
    /// Where the key goes.
    pub target: StoreTarget,
    /// `--kms-key-id` for a new secret.
    pub kms_key_id: Option<String>,
    /// Take over a secret of that name that sealkey did not create.
    pub adopt: bool,
    /// Cluster name for the tag.
    pub cluster: String,
    /// What the ExternalSecret refers to.
    pub external_secret: ExternalSecretSettings,
}

/// What the store delivery of `create` did.
#[derive(Debug)]
pub struct StoreOutcome {
    /// What was stored.
    pub stored: aws::Stored,
    /// Whether a secret was there before (sealkey's or adopted).
    pub replaced: bool,
}

/// The tags sealkey puts on the secret.
pub fn store_tags(key: &DeployKey, repo: &str, cluster: &str) -> Vec<(String, String)> {
    vec![
        (aws::tags::MANAGED_BY.into(), "sealkey".into()),
        (aws::tags::FINGERPRINT.into(), key.fingerprint().to_string()),
        (aws::tags::REPO.into(), repo.into()),
        (aws::tags::CLUSTER.into(), cluster.into()),
    ]
}

/// Splits an emitted stream: the consumer's Secret becomes a store value plus an
/// ExternalSecret; every other document passes unchanged.
pub fn externalize(
    docs: &[Value],
    secret_name: &str,
    s: &ExternalSecretSettings,
) -> Result<(es::StoreValue, Vec<Value>)> {
    let mut out = Vec::with_capacity(docs.len() + 1);
    let mut value = None;
    let namespace = docs
        .iter()
        .find_map(|d| d["metadata"]["namespace"].as_str())
        .unwrap_or("default")
        .to_string();
    if let Some(store) = es::secret_store(&namespace, s) {
        out.push(store);
    }
    for doc in docs {
        if doc["kind"] == "Secret" && doc["metadata"]["name"] == secret_name {
            let (v, keys) = es::store_value(doc)?;
            out.push(es::external_secret(doc, &keys, s));
            value = Some(v);
        } else if doc["kind"] == "Secret" {
            return Err(Error::input(
                format!("Secret {}", doc["metadata"]["name"].as_str().unwrap_or("?")),
                "this output has a second Secret, which one store secret cannot feed",
                "report this as a sealkey bug",
            ));
        } else {
            out.push(doc.clone());
        }
    }
    let value = value.ok_or_else(|| {
        Error::input(
            crate::error::Setting::Store,
            crate::message!(
                "this {}/{} has no Secret to keep in the store (the key sits in the HelmRelease's values)",
                crate::error::Setting::Consumer,
                crate::error::Setting::Emit
            ),
            crate::message!(
                "use {} secret, helmrelease or mount with {}",
                crate::error::Setting::Emit,
                crate::error::Setting::Store
            ),
        )
    })?;
    Ok((value, out))
}

/// Splits the emitted stream for the store and proves the rest safe to commit: the store value,
/// the documents (ExternalSecret, store, the consumer's others) and their YAML, which the
/// sealing guard has checked holds no key material and no Secret value.
pub fn externalized_output(
    stream: &crate::emit::ManifestStream,
    secret_name: &str,
    s: &ExternalSecretSettings,
) -> Result<(es::StoreValue, Vec<Value>, String)> {
    if stream.key_inline_in_values() {
        return Err(Error::input(
            crate::message!(
                "{} extra-secrets {}",
                crate::error::Setting::Emit,
                crate::error::Setting::Store
            ),
            "the key would sit inside the HelmRelease's values, which an ExternalSecret cannot feed",
            crate::message!(
                "use {} secret or helmrelease with {}",
                crate::error::Setting::Emit,
                crate::error::Setting::Store
            ),
        ));
    }
    let (value, documents) = externalize(stream.expose_docs(), secret_name, s)?;
    let yaml = crate::yaml::to_yaml_stream(&documents).to_string();
    crate::seal::guard::Guard::for_plaintext(stream.expose_docs())
        .check_text(&yaml, "the ExternalSecret output")?;
    Ok((value, documents, yaml))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_targets_parse_and_bad_ones_are_refused() {
        assert_eq!(
            StoreTarget::parse("aws-secrets-manager:dev/airflow-ssh")
                .unwrap()
                .name,
            "dev/airflow-ssh"
        );
        for bad in [
            "vault:x",
            "aws-secrets-manager:",
            "aws-secrets-manager:a b",
            "aws-secrets-manager:x;y",
        ] {
            assert!(StoreTarget::parse(bad).is_err(), "{bad}");
        }
    }
}
