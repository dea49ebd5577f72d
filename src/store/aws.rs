//! AWS Secrets Manager as the place a deploy key lives: one JSON secret per consumer Secret,
//! tagged with sealkey's fingerprint, repository and cluster; new versions become AWSCURRENT
//! (the old one AWSPREVIOUS) and can be moved back on rollback.

use crate::aws::sdk_error;
use crate::emit::external_secrets::StoreValue;
use crate::error::{Error, Result};
use aws_sdk_secretsmanager::types::Tag;
use aws_sdk_secretsmanager::Client;
use sha2::{Digest, Sha256};

/// Tag keys sealkey puts on its secrets.
pub mod tags {
    /// `sealkey`: the secret was created by sealkey (or adopted with `--adopt`).
    pub const MANAGED_BY: &str = "sealkey:managed-by";
    /// The key's `SHA256:...` fingerprint.
    pub const FINGERPRINT: &str = "sealkey:fingerprint";
    /// `OWNER/REPO`.
    pub const REPO: &str = "sealkey:repo";
    /// The cluster the key is for.
    pub const CLUSTER: &str = "sealkey:cluster";
}

const SM: &str = "Secrets Manager";

/// A Secrets Manager client in one region.
#[derive(Clone, Debug)]
pub struct SecretsManagerStore {
    client: Client,
    region: String,
}

/// A secret as found (no value).
#[derive(Clone, Debug)]
pub struct Described {
    /// Its ARN.
    pub arn: String,
    /// Its tags.
    pub tags: Vec<(String, String)>,
    /// The version id labelled AWSCURRENT.
    pub current_version: Option<String>,
    /// Whether it is scheduled for deletion.
    pub deleted: bool,
}

impl Described {
    /// Whether sealkey created (or adopted) it.
    pub fn is_sealkeys(&self) -> bool {
        self.tag(tags::MANAGED_BY) == Some("sealkey")
    }

    /// A tag's value.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// What a put changed, so it can be undone.
#[derive(Clone, Debug)]
pub struct Stored {
    /// The secret's ARN.
    pub arn: String,
    /// The new version (now AWSCURRENT).
    pub version_id: String,
    /// The version that was AWSCURRENT before (now AWSPREVIOUS); `None` when the secret is new.
    pub previous_version: Option<String>,
    /// The tags before, to restore on rollback.
    pub previous_tags: Vec<(String, String)>,
}

/// The client request token for storing key `fingerprint` under `name`: the same key stored
/// twice (a retry, a re-run after a lost answer) makes one version, not two. Derived from public
/// data only.
pub fn request_token(name: &str, fingerprint: &str) -> String {
    let h = Sha256::digest(format!("sealkey\0{name}\0{fingerprint}").as_bytes());
    let x = hex::encode(&h[..16]);
    format!(
        "{}-{}-{}-{}-{}",
        &x[0..8],
        &x[8..12],
        &x[12..16],
        &x[16..20],
        &x[20..32]
    )
}

/// Registers what a put sends (the JSON text and each of its values, e.g. the PEM with its line
/// breaks) so that no answer can show it back ([`crate::sent`]).
fn register_sent(value: &StoreValue) {
    crate::sent::register(value.expose_secret().as_bytes());
    if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(value.expose_secret()) {
        if let Some(fields) = v.as_object() {
            for field in fields.values().filter_map(serde_json::Value::as_str) {
                crate::sent::register(field.as_bytes());
            }
        }
        crate::secret::wipe_value(&mut v);
    }
}

impl SecretsManagerStore {
    /// A client for the configuration's region (and `AWS_ENDPOINT_URL`, if set).
    pub fn new(conf: &aws_config::SdkConfig) -> Self {
        Self {
            client: Client::new(conf),
            region: crate::aws::region_of(conf),
        }
    }

    /// The region.
    pub fn region(&self) -> &str {
        &self.region
    }

    /// The secret `name`, or `None` when there is none.
    pub async fn describe(&self, name: &str) -> Result<Option<Described>> {
        match self.client.describe_secret().secret_id(name).send().await {
            Ok(d) => {
                let current_version = d.version_ids_to_stages().and_then(|m| {
                    m.iter()
                        .find(|(_, stages)| stages.iter().any(|s| s == "AWSCURRENT"))
                        .map(|(v, _)| v.clone())
                });
                Ok(Some(Described {
                    arn: d.arn().unwrap_or_default().to_string(),
                    tags: d
                        .tags()
                        .iter()
                        .map(|t| {
                            (
                                t.key().unwrap_or_default().to_string(),
                                t.value().unwrap_or_default().to_string(),
                            )
                        })
                        .collect(),
                    current_version,
                    deleted: d.deleted_date().is_some(),
                }))
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|se| se.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(sdk_error(SM, "DescribeSecret", name, e)),
        }
    }

    /// Checks that `name` may be written: absent, or sealkey's, or `adopt`. Returns what is there.
    pub async fn check_writable(&self, name: &str, adopt: bool) -> Result<Option<Described>> {
        let found = self.describe(name).await?;
        if let Some(d) = &found {
            if d.deleted {
                return Err(Error::input(
                    crate::message!("{} aws-secrets-manager:{}", crate::error::Setting::Store, name.to_string()),
                    "this secret is scheduled for deletion",
                    format!("restore it (`aws secretsmanager restore-secret --secret-id {name}`) or choose another name"),
                ));
            }
            if !d.is_sealkeys() && !adopt {
                return Err(Error::input(
                    crate::message!("{} aws-secrets-manager:{}", crate::error::Setting::Store, name.to_string()),
                    format!("a secret of this name exists and sealkey did not create it (no tag {}=sealkey)", tags::MANAGED_BY),
                    crate::message!(
                        "choose another name, or pass {} to let sealkey take it over (its value gets a new version; the old one stays as AWSPREVIOUS)",
                        crate::error::Setting::Adopt
                    ),
                ));
            }
        }
        Ok(found)
    }

    /// Stores `value` as the new AWSCURRENT version of `name` (creating the secret, with
    /// `kms_key_id` and `tags`, when absent). Idempotent for the same key: the client request
    /// token is derived from the name and the key's fingerprint.
    pub async fn put(
        &self,
        name: &str,
        existing: Option<&Described>,
        value: &StoreValue,
        fingerprint: &str,
        kms_key_id: Option<&str>,
        new_tags: &[(String, String)],
    ) -> Result<Stored> {
        let token = request_token(name, fingerprint);
        register_sent(value);
        let tag_list: Vec<Tag> = new_tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        match existing {
            None => {
                let mut req = self
                    .client
                    .create_secret()
                    .name(name)
                    .client_request_token(&token)
                    .description("SSH deploy key managed by sealkey")
                    .secret_string(value.expose_secret())
                    .set_tags(Some(tag_list));
                if let Some(k) = kms_key_id {
                    req = req.kms_key_id(k);
                }
                let out = req
                    .send()
                    .await
                    .map_err(|e| sdk_error(SM, "CreateSecret", name, e))?;
                Ok(Stored {
                    arn: out.arn().unwrap_or_default().to_string(),
                    version_id: out.version_id().unwrap_or(&token).to_string(),
                    previous_version: None,
                    previous_tags: Vec::new(),
                })
            }
            Some(d) => {
                let out = self
                    .client
                    .put_secret_value()
                    .secret_id(name)
                    .client_request_token(&token)
                    .secret_string(value.expose_secret())
                    .send()
                    .await
                    .map_err(|e| sdk_error(SM, "PutSecretValue", name, e))?;
                let stored = Stored {
                    arn: d.arn.clone(),
                    version_id: out.version_id().unwrap_or(&token).to_string(),
                    previous_version: d.current_version.clone(),
                    previous_tags: d.tags.clone(),
                };
                if let Err(e) = self.tag(name, new_tags).await {
                    let undone = self.undo(name, &stored).await;
                    return Err(Error::Rotation {
                        step: "tag secret".into(),
                        undone: undone.into(),
                        source: Box::new(e),
                    });
                }
                Ok(stored)
            }
        }
    }

    async fn tag(&self, name: &str, new_tags: &[(String, String)]) -> Result<()> {
        let tag_list: Vec<Tag> = new_tags
            .iter()
            .map(|(k, v)| Tag::builder().key(k).value(v).build())
            .collect();
        self.client
            .tag_resource()
            .secret_id(name)
            .set_tags(Some(tag_list))
            .send()
            .await
            .map_err(|e| sdk_error(SM, "TagResource", name, e))?;
        Ok(())
    }

    /// The AWSCURRENT value of `name`.
    pub async fn current_value(&self, name: &str) -> Result<(StoreValue, String)> {
        let out = self
            .client
            .get_secret_value()
            .secret_id(name)
            .send()
            .await
            .map_err(|e| sdk_error(SM, "GetSecretValue", name, e))?;
        let text = zeroize::Zeroizing::new(out.secret_string().unwrap_or_default().to_string());
        Ok((
            StoreValue::from_json(text),
            out.version_id().unwrap_or_default().to_string(),
        ))
    }

    /// Undoes a [`Self::put`]: a new secret is deleted (no recovery window: it only ever held the
    /// new key, which is being withdrawn); otherwise AWSCURRENT moves back to the previous version
    /// and the tags are restored. Returns what was done, for the error message.
    pub async fn undo(&self, name: &str, stored: &Stored) -> String {
        match &stored.previous_version {
            None => match self
                .client
                .delete_secret()
                .secret_id(name)
                .force_delete_without_recovery(true)
                .send()
                .await
            {
                Ok(_) => format!("secret {name} (created moments ago) was deleted again"),
                Err(e) => format!(
                    "deleting secret {name} FAILED ({}): delete it by hand (`aws secretsmanager delete-secret --secret-id {name} --force-delete-without-recovery`)",
                    sdk_error(SM, "DeleteSecret", name, e)
                ),
            },
            Some(prev) => {
                // Version ids come from AWS's answers: shown cleaned, sent as they came.
                let (shown_prev, shown_new) = (
                    crate::http::sanitize_server_text(prev, &[]),
                    crate::http::sanitize_server_text(&stored.version_id, &[]),
                );
                let moved = self
                    .client
                    .update_secret_version_stage()
                    .secret_id(name)
                    .version_stage("AWSCURRENT")
                    .move_to_version_id(prev)
                    .remove_from_version_id(&stored.version_id)
                    .send()
                    .await;
                let tags_back = if stored.previous_tags.is_empty() {
                    Ok(())
                } else {
                    self.tag(name, &stored.previous_tags).await
                };
                match (moved, tags_back) {
                    (Ok(_), Ok(())) => format!(
                        "secret {name}: AWSCURRENT moved back to version {shown_prev}, tags restored"
                    ),
                    (Err(e), _) => format!(
                        "moving AWSCURRENT of {name} back to version {shown_prev} FAILED ({}): run `aws secretsmanager update-secret-version-stage --secret-id {name} --version-stage AWSCURRENT --move-to-version-id {shown_prev} --remove-from-version-id {shown_new}`",
                        sdk_error(SM, "UpdateSecretVersionStage", name, e),
                    ),
                    (Ok(_), Err(e)) => format!(
                        "secret {name}: AWSCURRENT moved back to version {shown_prev}, but restoring its tags failed ({e})"
                    ),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_request_token_is_stable_per_key_and_uuid_shaped() {
        let a = request_token("dev/x", "SHA256:abc");
        assert_eq!(a, request_token("dev/x", "SHA256:abc"));
        assert_ne!(a, request_token("dev/x", "SHA256:abd"));
        assert_eq!(a.len(), 36);
    }
}
