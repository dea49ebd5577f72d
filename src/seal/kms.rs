//! AWS KMS as a SOPS key service, the way getsops/sops (`kms/keysource.go`) uses it: the
//! document's 32-byte data key is encrypted by KMS `Encrypt` under the key ARN (with the
//! entry's encryption context, after assuming its role if it names one), and the `sops.kms`
//! entry records `arn`, `role`, `context`, `created_at`, `enc` (base64 ciphertext blob) and
//! `aws_profile`. Opening calls KMS `Decrypt` with the same context. One call per document,
//! never per value.
//!
//! The SOPS code is synchronous, so the service owns a small current-thread runtime; it must
//! not be used from inside another runtime.

use crate::aws::{sdk_error, AwsSettings};
use crate::error::{Error, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use zeroize::Zeroizing;

/// sops's `arnRegex`: `arn:aws[-partition]:kms:REGION:ACCOUNT:(key|alias)/...`.
const ARN_RE: &str = r"^arn:aws[\w-]*:kms:([^:]+):[0-9]{12}:(key|alias)/[A-Za-z0-9/_-]+$";

/// One KMS master key of a SOPS file (no secret in it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KmsKeyRef {
    /// The key or alias ARN.
    pub arn: String,
    /// An IAM role to assume before calling KMS (sops's `ARN+ROLE`).
    pub role: Option<String>,
    /// The encryption context, bound to the ciphertext.
    pub context: BTreeMap<String, String>,
    /// The AWS profile recorded in the entry (sops writes `""` when none).
    pub aws_profile: String,
}

/// Whether `text` is meant as a KMS key (`arn:...:kms:...`), as opposed to an age recipient.
pub fn is_kms_arn(text: &str) -> bool {
    text.starts_with("arn:") && text.contains(":kms:")
}

impl KmsKeyRef {
    /// Parses `ARN` or `ARN+ROLE_ARN` as sops's `--kms` does; a malformed ARN is an input error.
    pub fn parse(text: &str, what: impl Into<crate::error::Message>) -> Result<Self> {
        let what = what.into();
        let named = |value: &str| {
            let mut t = what.clone();
            t.push(format!(" {value}"));
            t
        };
        let (arn, role) = match text.split_once('+') {
            Some((a, r)) if r.starts_with("arn:") => (a.trim(), Some(r.trim().to_string())),
            _ => (text.trim(), None),
        };
        let re = regex::Regex::new(ARN_RE).expect("ARN regex");
        let Some(caps) = re.captures(arn) else {
            return Err(Error::input(
                named(&crate::seal::age::shorten(arn)),
                "not a KMS key ARN",
                "use arn:aws:kms:REGION:ACCOUNT:key/KEY-ID or arn:aws:kms:REGION:ACCOUNT:alias/NAME (`aws kms list-keys`, `aws kms list-aliases`)",
            ));
        };
        let region = caps.get(1).map_or("", |m| m.as_str());
        if !crate::aws::is_region_name(region) {
            return Err(Error::input(
                named(arn),
                format!("{region} is not an AWS region name"),
                "check the ARN's region part (e.g. us-east-1)",
            ));
        }
        if let Some(r) = &role {
            if !r.starts_with("arn:aws") || !r.contains(":role/") {
                return Err(Error::input(
                    named(text),
                    "the part after `+` is not an IAM role ARN",
                    "use ARN+arn:aws:iam::ACCOUNT:role/NAME, as sops does",
                ));
            }
        }
        Ok(Self {
            arn: arn.to_string(),
            role,
            context: BTreeMap::new(),
            aws_profile: String::new(),
        })
    }

    /// The region named in the ARN.
    pub fn region(&self) -> &str {
        self.arn.split(':').nth(3).unwrap_or_default()
    }

    /// Reads a `sops.kms` entry.
    pub fn from_entry(entry: &Value, what: &str) -> Result<Self> {
        let arn = entry["arn"].as_str().unwrap_or_default();
        let mut k = Self::parse(arn, what)?;
        k.role = entry["role"]
            .as_str()
            .filter(|r| !r.is_empty())
            .map(String::from);
        if let Some(ctx) = entry["context"].as_object() {
            for (key, v) in ctx {
                k.context
                    .insert(key.clone(), v.as_str().unwrap_or_default().to_string());
            }
        }
        k.aws_profile = entry["aws_profile"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        Ok(k)
    }

    /// The `sops.kms` entry for `enc`, fields in sops's order.
    pub fn to_entry(&self, created_at: &str, enc: &str) -> Value {
        let mut m = Map::new();
        m.insert("arn".into(), json!(self.arn));
        if let Some(r) = &self.role {
            m.insert("role".into(), json!(r));
        }
        if !self.context.is_empty() {
            m.insert("context".into(), json!(self.context));
        }
        m.insert("created_at".into(), json!(created_at));
        m.insert("enc".into(), json!(enc));
        m.insert("aws_profile".into(), json!(self.aws_profile));
        Value::Object(m)
    }
}

/// KMS clients (one per region and role) behind a synchronous interface.
pub struct KmsService {
    /// Taken on drop (see the `Drop` impl).
    rt: Option<tokio::runtime::Runtime>,
    conf: aws_config::SdkConfig,
    clients: Mutex<HashMap<(String, Option<String>), aws_sdk_kms::Client>>,
    calls: AtomicUsize,
}

impl std::fmt::Debug for KmsService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KmsService")
            .field("calls", &self.calls.load(Ordering::Relaxed))
            .finish()
    }
}

/// The service can be dropped inside another runtime (an error inside the async create
/// pipeline), where a blocking runtime shutdown would panic: it is shut down in the background.
impl Drop for KmsService {
    fn drop(&mut self) {
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}

impl KmsService {
    /// Loads the SDK configuration (credentials checked now, before any key exists; the region
    /// comes from each key's ARN).
    pub fn connect(settings: &AwsSettings) -> Result<Self> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::file("start", "the async runtime", e))?;
        let conf = rt.block_on(crate::aws::load_any_region(settings))?;
        Ok(Self {
            rt: Some(rt),
            conf,
            clients: Mutex::new(HashMap::new()),
            calls: AtomicUsize::new(0),
        })
    }

    /// How many KMS calls this service made.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// Runs an SDK call on this service's runtime. Sealing can be reached from inside another
    /// runtime (the create pipeline is async), where blocking it would panic: the call then runs
    /// on a scoped thread of its own.
    fn run<F>(&self, fut: F) -> F::Output
    where
        F: std::future::Future + Send,
        F::Output: Send,
    {
        if tokio::runtime::Handle::try_current().is_ok() {
            std::thread::scope(|s| {
                s.spawn(|| self.runtime().block_on(fut))
                    .join()
                    .expect("the KMS call's thread")
            })
        } else {
            self.runtime().block_on(fut)
        }
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.rt.as_ref().expect("the runtime lives until drop")
    }

    fn client(&self, key: &KmsKeyRef) -> Result<aws_sdk_kms::Client> {
        let id = (key.region().to_string(), key.role.clone());
        if let Some(c) = self.clients.lock().expect("kms clients").get(&id) {
            return Ok(c.clone());
        }
        let mut builder = aws_sdk_kms::config::Builder::from(&self.conf)
            .region(aws_config::Region::new(key.region().to_string()));
        if let Some(role) = &key.role {
            let provider = self.run(
                aws_config::sts::AssumeRoleProvider::builder(role)
                    .session_name("sops@sealkey")
                    .region(aws_config::Region::new(key.region().to_string()))
                    .configure(&self.conf)
                    .build(),
            );
            builder = builder.credentials_provider(provider);
        }
        let client = aws_sdk_kms::Client::from_conf(builder.build());
        self.clients
            .lock()
            .expect("kms clients")
            .insert(id, client.clone());
        Ok(client)
    }

    /// The client for `key`'s region (and role) and its encryption context; counts the call.
    fn call(
        &self,
        key: &KmsKeyRef,
    ) -> Result<(aws_sdk_kms::Client, Option<HashMap<String, String>>)> {
        let client = self.client(key)?;
        self.calls.fetch_add(1, Ordering::Relaxed);
        let ctx = (!key.context.is_empty()).then(|| {
            key.context
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        });
        Ok((client, ctx))
    }

    /// KMS `Encrypt` of the data key; returns the base64 ciphertext blob for `enc`.
    pub fn encrypt(&self, key: &KmsKeyRef, data_key: &[u8]) -> Result<String> {
        let (client, ctx) = self.call(key)?;
        // An error may echo `Plaintext`: never shown back ([`crate::sent`]).
        crate::sent::register(data_key);
        let out = self
            .run(
                client
                    .encrypt()
                    .key_id(&key.arn)
                    .plaintext(aws_sdk_kms::primitives::Blob::new(data_key.to_vec()))
                    .set_encryption_context(ctx)
                    .send(),
            )
            .map_err(|e| sdk_error("KMS", "Encrypt", &key.arn, e))?;
        let blob = out.ciphertext_blob().ok_or_else(|| {
            Error::remote(
                "AWS KMS",
                format!("Encrypt under {} answered no ciphertext", key.arn),
                "report this; the server's answer was incomplete",
            )
        })?;
        Ok(B64.encode(blob.as_ref()))
    }

    /// KMS `Decrypt` of an entry's `enc`; a 32-byte data key or an error naming the key.
    pub fn decrypt(&self, key: &KmsKeyRef, enc: &str, label: &str) -> Result<Zeroizing<[u8; 32]>> {
        let blob = B64.decode(enc.trim()).map_err(|_| {
            Error::crypto(
                label,
                format!("the kms entry for {} is not base64", key.arn),
                "the file was altered: restore it from git",
            )
        })?;
        let (client, ctx) = self.call(key)?;
        let out = self
            .run(
                client
                    .decrypt()
                    .key_id(&key.arn)
                    .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(blob))
                    .set_encryption_context(ctx)
                    .send(),
            )
            .map_err(|e| sdk_error("KMS", "Decrypt", &key.arn, e))?;
        let plain = out.plaintext().map(|b| Zeroizing::new(b.as_ref().to_vec()));
        match plain {
            Some(p) if p.len() == 32 => {
                let mut k = Zeroizing::new([0u8; 32]);
                k.copy_from_slice(&p);
                Ok(k)
            }
            _ => Err(Error::crypto(
                label,
                format!("KMS returned no 32-byte data key for {}", key.arn),
                "the entry was not written by sops or sealkey: restore the file from git",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_alias_arns_parse_and_malformed_ones_are_refused() {
        let k = KmsKeyRef::parse(
            "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            crate::error::Setting::SealTo,
        )
        .unwrap();
        assert_eq!(k.region(), "eu-west-1");
        let a = KmsKeyRef::parse(
            "arn:aws:kms:us-east-1:123456789012:alias/sops+arn:aws:iam::123456789012:role/sops",
            crate::error::Setting::SealTo,
        )
        .unwrap();
        assert_eq!(
            a.role.as_deref(),
            Some("arn:aws:iam::123456789012:role/sops")
        );
        for bad in [
            "arn:aws:kms:eu-west-1:1234:key/x",
            "arn:aws:kms:mars-1:123456789012:key/x",
            "arn:aws:s3:::bucket",
            "arn:aws:kms:eu-west-1:123456789012:key/",
            "arn:aws:kms:eu-west-1:123456789012:key/x+notarole",
        ] {
            assert!(
                KmsKeyRef::parse(bad, crate::error::Setting::SealTo).is_err(),
                "{bad}"
            );
        }
    }

    #[test]
    fn entries_carry_sopss_fields_in_its_order() {
        let mut k = KmsKeyRef::parse("arn:aws:kms:eu-west-1:123456789012:key/abc", "x").unwrap();
        k.context.insert("app".into(), "airflow".into());
        let e = k.to_entry("2026-01-01T00:00:00Z", "AQID");
        let keys: Vec<&String> = e.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["arn", "context", "created_at", "enc", "aws_profile"]);
        assert_eq!(KmsKeyRef::from_entry(&e, "x").unwrap(), k);
    }
}
