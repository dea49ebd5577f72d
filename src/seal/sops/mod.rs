//! SOPS with age, as Flux's kustomize-controller decrypts it: every Kubernetes object becomes its
//! own SOPS document with its own data key, `sops` block and MAC. Also the way back: opening SOPS
//! documents (ours or the real `sops`'s) with an identity, MAC verified, and re-sealing a file so
//! that unchanged objects come out byte for byte as before (changed ones get a fresh data key).
//!
//! The value format, AAD and MAC rules follow getsops/sops (`aes/cipher.go`, `sops.go`): values
//! become `ENC[AES256_GCM,data:...,iv:...,tag:...,type:...]` under AES-256-GCM with a 32-byte IV
//! and the AAD `key:path:`; the MAC is SHA-512 over every leaf's plaintext bytes in document
//! order, upper-case hex, encrypted with the `lastmodified` time as AAD.

use crate::error::{Command, Error, Result, Setting};
use crate::message;
use crate::seal::age::{self as agefmt, Identity, Recipient};
use crate::secret::wipe_value;
use aes_gcm::aead::consts::U32;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::aes::Aes256;
use aes_gcm::AesGcm;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rand_core::{OsRng, RngCore};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256, Sha512};
use std::collections::HashMap;
use zeroize::Zeroizing;

/// AES-256-GCM with SOPS's 32-byte IV.
type SopsAes = AesGcm<Aes256, U32>;

pub mod layout;
mod merge;
mod open;
mod values;
pub use merge::{merge_into_sealed_helm_release, set_in_sealed_helm_release};
use open::open_stream;
pub use open::{
    has_kms_entries, looks_like_sops, plain_documents, unseal, unseal_documents, unseal_with_kms,
    unseal_with_plain,
};
use values::*;

/// The selection Flux users write for Kubernetes Secrets.
pub const DEFAULT_ENCRYPTED_REGEX: &str = "^(data|stringData)$";

/// The SOPS format version written into `sops.version` (the release whose format this follows).
pub const FORMAT_VERSION: &str = "3.13.2";

/// `sha256("sops")`: the MAC's first bytes when `mac_only_encrypted` is set (sops.go).
const MAC_ONLY_ENCRYPTED_INIT: &str =
    "8a3fd2ad54ce66527b1034f3d147be0b0b975b3bf44f72c6fdadec8176f27d69";

/// An age recipient with the text SOPS records for it.
struct SopsRecipient {
    text: String,
    recipient: Recipient,
}

/// Everything `--seal sops` needs: recipients, the selection rule, and (for `--update`) the
/// previously sealed file opened with its identity.
pub struct SopsSettings {
    recipients: Vec<SopsRecipient>,
    encrypted_regex: String,
    rule: Rule,
    previous: Vec<Previous>,
    // Objects of the previous file written without a `sops` block: (id, written by sealkey).
    previous_plain: Vec<(ObjectId, bool)>,
    lastmodified: Option<String>,
    keep_foreign: bool,
    // issue 15: AWS KMS master keys (see seal/kms.rs) and the service that calls KMS.
    kms: Vec<crate::seal::kms::KmsKeyRef>,
    kms_service: Option<std::sync::Arc<crate::seal::kms::KmsService>>,
    // issue 15: `.sops.yaml`'s unencrypted_suffix instead of encrypted_regex.
    unencrypted_suffix: Option<String>,
}

impl std::fmt::Debug for SopsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SopsSettings")
            .field(
                "recipients",
                &self
                    .recipients
                    .iter()
                    .map(|r| r.text.as_str())
                    .collect::<Vec<_>>(),
            )
            .field(
                "kms",
                &self.kms.iter().map(|k| k.arn.as_str()).collect::<Vec<_>>(),
            )
            .field("encrypted_regex", &self.encrypted_regex)
            .field("previous_documents", &self.previous.len())
            .finish()
    }
}

impl SopsSettings {
    /// Parses `--seal-to` values and `--encrypted-regex`. At least one recipient must be an
    /// `age1...` X25519 key: Flux decrypts only with those, never with SSH keys.
    ///
    /// AWS KMS key ARNs (`arn:aws:kms:REGION:ACCOUNT:key/ID` or `alias/NAME`, optionally
    /// `+ROLE_ARN`) among them add `sops.kms` entries; AWS credentials are checked here, before
    /// any key exists.
    pub fn new(seal_to: &[String], encrypted_regex: Option<&str>) -> Result<Self> {
        let (kms_texts, age_texts): (Vec<String>, Vec<String>) = seal_to
            .iter()
            .cloned()
            .partition(|t| crate::seal::kms::is_kms_arn(t.trim()));
        let kms = kms_texts
            .iter()
            .map(|t| crate::seal::kms::KmsKeyRef::parse(t, Setting::SealTo))
            .collect::<Result<Vec<_>>>()?;
        let recipients: Vec<SopsRecipient> = if age_texts.is_empty() && !kms.is_empty() {
            Vec::new()
        } else {
            agefmt::parse_recipient_lines(&age_texts)?
                .into_iter()
                .map(|(text, recipient)| SopsRecipient { text, recipient })
                .collect()
        };
        let kms_service = if kms.is_empty() {
            None
        } else {
            Some(std::sync::Arc::new(crate::seal::kms::KmsService::connect(
                &crate::aws::AwsSettings::default(),
            )?))
        };
        if kms.is_empty() && !recipients.iter().any(|r| r.text.starts_with("age1")) {
            return Err(Error::input(
                message!("{} sops {}", Setting::Seal, Setting::SealTo),
                "no age1... recipient: Flux's kustomize-controller decrypts SOPS only with age X25519 identities, never with SSH keys",
                message!(
                    "add {} age1... (the public half of the key in the cluster's sops-age Secret; `age-keygen -y KEYFILE` prints it); an ssh recipient may stay alongside for people. For a file only people open (a backup), pass {} age",
                    Setting::SealTo,
                    Setting::Seal
                ),
            ));
        }
        let encrypted_regex = encrypted_regex
            .unwrap_or(DEFAULT_ENCRYPTED_REGEX)
            .to_string();
        let rule = Rule::EncryptedRegex(compile(&encrypted_regex, Setting::EncryptedRegex)?);
        Ok(Self {
            recipients,
            encrypted_regex,
            rule,
            previous: Vec::new(),
            previous_plain: Vec::new(),
            lastmodified: None,
            keep_foreign: false,
            kms,
            kms_service,
            unencrypted_suffix: None,
        })
    }

    /// Selects values as sops's `unencrypted_suffix` does (every value whose key path has no
    /// key ending in `suffix` is encrypted) instead of `encrypted_regex`.
    pub fn with_unencrypted_suffix(mut self, suffix: &str) -> Self {
        self.rule = Rule::UnencryptedSuffix(suffix.to_string());
        self.unencrypted_suffix = Some(suffix.to_string());
        self
    }

    /// How many KMS calls sealing made so far (one per sealed document and KMS key).
    pub fn kms_calls(&self) -> usize {
        self.kms_service.as_ref().map_or(0, |s| s.calls())
    }

    /// Warnings for people (not errors): SSH recipients Flux cannot use.
    pub fn warnings(&self) -> Vec<String> {
        self.recipients
            .iter()
            .filter(|r| !r.text.starts_with("age1"))
            .map(|r| {
                format!(
                    "SOPS recipient {} is an SSH key: people can decrypt with it, Flux cannot (it uses the age1... recipients)",
                    short(&r.text)
                )
            })
            .collect()
    }

    /// Re-sealing: opens `previous` (a SOPS file sealkey or sops wrote) with `identities` and
    /// remembers, per object, its sealed form, data key and IVs, so an unchanged object comes out
    /// byte for byte as before (a changed one is sealed under a fresh data key).
    pub fn with_previous(
        mut self,
        previous: &str,
        what: &str,
        identities: &[Identity],
    ) -> Result<Self> {
        let docs = crate::yaml::parse_stream(previous, what)?;
        let (docs, plain) = open::split_plain(docs, what)?;
        self.previous_plain = plain
            .iter()
            .filter_map(|(_, d)| {
                let ours = d["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "sealkey";
                object_id(d).map(|id| (id, ours))
            })
            .collect();
        let sealed = docs.clone();
        let opened = open_stream(docs, what, identities, true, None)?;
        self.previous = opened
            .into_iter()
            .zip(sealed)
            .filter_map(|(mut o, sealed)| {
                let id = object_id(&o.plain);
                let ours =
                    o.plain["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "sealkey";
                Some(Previous {
                    id: id?,
                    ours,
                    sealed,
                    data_key: o.sops.data_key.clone(),
                    block: std::mem::take(&mut o.sops.block),
                    mac_hex: std::mem::take(&mut o.sops.mac_hex),
                    ivs: std::mem::take(&mut o.sops.ivs),
                })
            })
            .collect();
        Ok(self)
    }

    /// Refuse to re-seal over an object of the previous file that sealkey did not write (no
    /// `app.kubernetes.io/managed-by: sealkey` label): `create` would replace the user's object
    /// (their HelmRelease's chart version and values) with its own.
    pub fn keeping_foreign_objects(mut self) -> Self {
        self.keep_foreign = true;
        self
    }

    /// Fixes `lastmodified` (tests and reproducible output); by default it is the current time.
    pub fn with_lastmodified(mut self, ts: jiff::Timestamp) -> Self {
        self.lastmodified = Some(rfc3339(ts));
        self
    }

    /// How many objects of the previous file can be re-used.
    pub fn previous_objects(&self) -> usize {
        self.previous.len()
    }
}

use crate::seal::age::shorten as short;

fn compile(re: &str, what: Setting) -> Result<regex::Regex> {
    regex::Regex::new(re).map_err(|e| {
        Error::input(
            message!("{} {}", what, re.to_string()),
            format!("not a valid regular expression ({e})"),
            "write it as sops does, e.g. ^(data|stringData)$",
        )
        .caused_by(e)
    })
}

fn rfc3339(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A previously sealed object, opened for `--update`.
struct Previous {
    id: ObjectId,
    /// Written by sealkey (`app.kubernetes.io/managed-by: sealkey`).
    ours: bool,
    /// The object exactly as it was sealed in the previous file.
    sealed: Value,
    data_key: Zeroizing<[u8; 32]>,
    block: Map<String, Value>,
    mac_hex: String,
    ivs: HashMap<IvKey, [u8; 32]>,
}

/// `(apiVersion, kind, namespace, name)`: how `--update` pairs old and new objects.
type ObjectId = (String, String, String, String);

fn object_id(doc: &Value) -> Option<ObjectId> {
    let s = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let name = doc["metadata"]["name"].as_str()?;
    Some((
        s(&doc["apiVersion"]),
        s(&doc["kind"]),
        s(&doc["metadata"]["namespace"]),
        name.to_string(),
    ))
}

/// Seals each object of `docs` as its own SOPS document (own data key, own `sops` block and MAC)
/// and renders the YAML stream. An object other than a Secret of which the rule selects no value
/// is written as it is, without a `sops` block (see [`unseal`] for how such documents are read).
///
/// With a previous file (`--update`), an object's old data key is kept only when the re-sealed
/// object comes out byte for byte as before; any change gets a fresh data key, so a file whose
/// data key someone else knows cannot be used to learn a new value.
pub fn seal_documents(docs: &[Value], settings: &SopsSettings) -> Result<String> {
    let lastmodified = settings
        .lastmodified
        .clone()
        .unwrap_or_else(|| rfc3339(jiff::Timestamp::now()));
    let recipient_texts: Vec<&str> = settings
        .recipients
        .iter()
        .map(|r| r.text.as_str())
        .collect();
    let mut out_docs = Vec::with_capacity(docs.len());
    for (i, doc) in docs.iter().enumerate() {
        let label = doc_label(doc, i);
        let Some(map) = doc.as_object() else {
            return Err(Error::input(
                &label,
                "not a mapping",
                "SOPS seals Kubernetes objects (YAML mappings)",
            ));
        };
        if map.contains_key("sops") {
            return Err(Error::input(
                &label,
                "already has a top-level `sops` block",
                message!(
                    "unseal it first, or use `{} {} sops {} FILE` to re-seal a changed plaintext",
                    Command::Seal,
                    Setting::Seal,
                    Setting::Update
                ),
            ));
        }
        // A last-applied copy holds every value in clear outside `data`: it never travels.
        let stripped = match doc["metadata"].as_object() {
            Some(meta) if super::needs_strip(meta) => {
                let mut copy = WipeOnDrop(doc.clone());
                if let Some(meta) = copy.0["metadata"].as_object_mut() {
                    super::strip_metadata(meta);
                }
                Some(copy)
            }
            _ => None,
        };
        let doc = stripped.as_ref().map_or(doc, |c| &c.0);
        let previous = object_id(doc).and_then(|id| {
            settings.previous.iter().find(|p| {
                p.id == id
                    && block_recipients(&p.block) == recipient_texts
                    && p.block.get("encrypted_regex").and_then(Value::as_str)
                        == Some(settings.encrypted_regex.as_str())
            })
        });
        if settings.keep_foreign {
            let id = object_id(doc);
            let ours = id.as_ref().and_then(|id| {
                settings
                    .previous
                    .iter()
                    .find(|p| &p.id == id)
                    .map(|p| p.ours)
                    .or_else(|| {
                        settings
                            .previous_plain
                            .iter()
                            .find(|(p, _)| p == id)
                            .map(|(_, ours)| *ours)
                    })
            });
            if let Some(ours) = ours {
                if !ours {
                    return Err(Error::input(
                        &label,
                        "the file being updated holds this object, and sealkey did not write it: re-sealing would replace it with sealkey's (its other settings, values and comments lost)",
                        message!(
                            "keep your object and let sealkey own only its values: {} helmrelease {} FILE for a HelmRelease, or write sealkey's output to its own file",
                            Setting::Emit,
                            Setting::MergeInto
                        ),
                    ));
                }
            }
        }
        // Issue 21 item 6: an object the rule encrypts nothing of (a HelmRelease that only
        // names the Secret, a mount patch) is written as it is, without a `sops` block, so
        // people and bots (a Renovate chart bump) can edit it and Flux still applies it
        // (kustomize-controller decrypts only documents with a `sops` block). `unseal` passes
        // such documents through and says no MAC authenticates them. A Secret is always sealed.
        if doc["kind"] != "Secret" && !encrypts_any(doc, &settings.rule) {
            out_docs.push(doc.clone());
            continue;
        }
        if let Some(p) = previous {
            let again = seal_one(doc, settings, Some(p), &lastmodified)?;
            if again == p.sealed {
                out_docs.push(again);
                continue;
            }
        }
        out_docs.push(seal_one(doc, settings, None, &lastmodified)?);
    }
    Ok(crate::yaml::to_yaml_stream(&out_docs).to_string())
}

/// Seals one object: with `previous`, under its data key, re-using its IVs for unchanged values
/// and its block when the MAC is unchanged; without, under a fresh data key.
fn seal_one(
    doc: &Value,
    settings: &SopsSettings,
    previous: Option<&Previous>,
    lastmodified: &str,
) -> Result<Value> {
    let data_key: Zeroizing<[u8; 32]> = match previous {
        Some(p) => p.data_key.clone(),
        None => {
            let mut k = Zeroizing::new([0u8; 32]);
            OsRng.fill_bytes(&mut *k);
            k
        }
    };
    let cipher = SopsAes::new(GenericArray::from_slice(&*data_key));
    let mut walker = EncryptWalk {
        cipher: &cipher,
        rule: &settings.rule,
        mac: Sha512::new(),
        reuse: previous.map(|p| &p.ivs),
    };
    let mut path = Vec::new();
    let mut sealed = walker.walk(doc, &mut path)?;
    let mac_hex = hex::encode_upper(walker.mac.finalize());
    let block = match previous {
        // Nothing changed: the old block (same lastmodified, same MAC ciphertext) stays.
        Some(p) if p.mac_hex == mac_hex => Value::Object(p.block.clone()),
        Some(p) => new_block(
            &cipher,
            &mac_hex,
            lastmodified,
            p.block.get("age").cloned().unwrap_or_default(),
            &settings.encrypted_regex,
        )?,
        None => {
            let mut age_entries = Vec::with_capacity(settings.recipients.len());
            for r in &settings.recipients {
                let enc = agefmt::seal_text(&data_key[..], std::slice::from_ref(&r.recipient))?;
                age_entries.push(json!({ "recipient": r.text, "enc": enc }));
            }
            let block = new_block(
                &cipher,
                &mac_hex,
                lastmodified,
                Value::Array(age_entries),
                &settings.encrypted_regex,
            )?;
            with_kms_entries(block, settings, &data_key, lastmodified)?
        }
    };
    if let Value::Object(m) = &mut sealed {
        m.insert("sops".into(), block);
    }
    Ok(sealed)
}

/// A plaintext copy, wiped when dropped.
struct WipeOnDrop(Value);

impl Drop for WipeOnDrop {
    fn drop(&mut self) {
        wipe_value(&mut self.0);
    }
}

fn new_block(
    cipher: &SopsAes,
    mac_hex: &str,
    lastmodified: &str,
    age_entries: Value,
    encrypted_regex: &str,
) -> Result<Value> {
    let mut iv = [0u8; 32];
    OsRng.fill_bytes(&mut iv);
    let mac = encrypt_value(cipher, &iv, mac_hex.as_bytes(), lastmodified, "str")?;
    Ok(json!({
        "age": age_entries,
        "lastmodified": lastmodified,
        "mac": mac,
        "encrypted_regex": encrypted_regex,
        "version": FORMAT_VERSION,
    }))
}

/// Adds the `sops.kms` entries (one KMS Encrypt per key for this document's data key) first, as
/// sops orders its block, and drops an empty `age` list.
fn with_kms_entries(
    block: Value,
    settings: &SopsSettings,
    data_key: &[u8; 32],
    created_at: &str,
) -> Result<Value> {
    let block = match (&settings.unencrypted_suffix, block) {
        (Some(suffix), Value::Object(mut m)) => {
            m.remove("encrypted_regex");
            let version = m.remove("version");
            m.insert("unencrypted_suffix".into(), json!(suffix));
            if let Some(v) = version {
                m.insert("version".into(), v);
            }
            Value::Object(m)
        }
        (_, b) => b,
    };
    let (Some(service), false) = (&settings.kms_service, settings.kms.is_empty()) else {
        return Ok(block);
    };
    let mut entries = Vec::with_capacity(settings.kms.len());
    for k in &settings.kms {
        let enc = service.encrypt(k, &data_key[..])?;
        entries.push(k.to_entry(created_at, &enc));
    }
    let Value::Object(old) = block else {
        return Ok(block);
    };
    let mut m = Map::new();
    m.insert("kms".into(), Value::Array(entries));
    for (k, v) in old {
        if k == "age" && v.as_array().is_some_and(|a| a.is_empty()) {
            continue;
        }
        m.insert(k, v);
    }
    Ok(Value::Object(m))
}

fn block_recipients(block: &Map<String, Value>) -> Vec<&str> {
    // A block that also uses other key services cannot be re-wrapped from age alone.
    let other_services = ["kms", "pgp", "gcp_kms", "azure_kv", "hc_vault"]
        .iter()
        .any(|k| block.get(*k).is_some_and(|v| !v.is_null()));
    if other_services {
        return Vec::new();
    }
    block
        .get("age")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|e| e["recipient"].as_str()).collect())
        .unwrap_or_default()
}

struct EncryptWalk<'a> {
    cipher: &'a SopsAes,
    rule: &'a Rule,
    mac: Sha512,
    reuse: Option<&'a HashMap<IvKey, [u8; 32]>>,
}

impl EncryptWalk<'_> {
    fn walk(&mut self, v: &Value, path: &mut Vec<String>) -> Result<Value> {
        map_leaves(v, path, &mut |leaf, path| self.leaf(leaf, path))
    }

    fn leaf(&mut self, leaf: &Value, path: &[String]) -> Result<Value> {
        let (ty, bytes) = leaf_bytes(leaf).expect("scalars have bytes");
        self.mac.update(&bytes[..]);
        if !self.rule.should_encrypt(path) {
            return Ok(leaf.clone());
        }
        if bytes.is_empty() && ty == "str" {
            return Ok(Value::String(String::new()));
        }
        let aad = aad_of(path);
        let iv = self
            .reuse
            .and_then(|ivs| ivs.get(&iv_key(&aad, ty, &bytes)).copied())
            .unwrap_or_else(|| {
                let mut iv = [0u8; 32];
                OsRng.fill_bytes(&mut iv);
                iv
            });
        Ok(Value::String(encrypt_value(
            self.cipher,
            &iv,
            &bytes,
            &aad,
            ty,
        )?))
    }
}

/// Whether `rule` encrypts any value of `doc`.
fn encrypts_any(doc: &Value, rule: &Rule) -> bool {
    let mut any = false;
    let mut copy = map_leaves(doc, &mut Vec::new(), &mut |leaf, path| {
        any |= rule.should_encrypt(path);
        Ok(leaf.clone())
    })
    .unwrap_or(Value::Null);
    wipe_value(&mut copy);
    any
}

/// `document 2 (Secret dev/airflow-ssh-secret)`: names a document in messages, never its content.
pub(crate) fn doc_label(doc: &Value, index: usize) -> String {
    let kind = doc["kind"].as_str().unwrap_or("object");
    let name = doc["metadata"]["name"].as_str();
    let ns = doc["metadata"]["namespace"].as_str();
    match (name, ns) {
        (Some(n), Some(ns)) => format!("document {} ({kind} {ns}/{n})", index + 1),
        (Some(n), None) => format!("document {} ({kind} {n})", index + 1),
        _ => format!("document {} ({kind})", index + 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::AgeIdentityText;

    fn identity() -> (String, Vec<Identity>) {
        let id = ::age::x25519::Identity::generate();
        use ::age::secrecy::ExposeSecret;
        let text = AgeIdentityText::new(id.to_string().expose_secret().to_string());
        (
            id.to_public().to_string(),
            agefmt::parse_identities(&text, "id").unwrap(),
        )
    }

    fn secret() -> Value {
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s", "namespace": "dev", "labels": {"a": "b"}},
            "type": "Opaque",
            "data": {"k": "c2VjcmV0", "empty": "", "n": 5, "b": true, "l": ["x", "y"]},
        })
    }

    #[test]
    fn sealed_values_match_the_sops_format_and_open_again() {
        let (r, ids) = identity();
        let settings = SopsSettings::new(&[r], None).unwrap();
        let out = seal_documents(&[secret()], &settings).unwrap();
        assert!(!out.contains("c2VjcmV0"), "{out}");
        assert!(out.contains("k: ENC[AES256_GCM,data:"), "{out}");
        assert!(
            out.contains("type:int]") && out.contains("type:bool]"),
            "{out}"
        );
        assert!(out.contains("empty: \"\""), "{out}");
        assert!(
            out.contains("encrypted_regex: ^(data|stringData)$"),
            "{out}"
        );
        assert!(out.contains("name: s\n"), "metadata stays readable: {out}");
        let plain = unseal(&out, "t", &ids).unwrap();
        let back = crate::yaml::parse_stream(plain.expose_secret(), "t").unwrap();
        assert_eq!(back, vec![secret()]);
    }

    #[test]
    fn a_changed_value_or_mac_is_refused_naming_the_document() {
        let (r, ids) = identity();
        let out = seal_documents(&[secret()], &SopsSettings::new(&[r], None).unwrap()).unwrap();
        let flip = |needle: &str| {
            let at = out.find(needle).unwrap() + needle.len();
            let mut b = out.clone().into_bytes();
            b[at] = if b[at] == b'A' { b'B' } else { b'A' };
            String::from_utf8(b).unwrap()
        };
        for needle in ["k: ENC[AES256_GCM,data:", "mac: ENC[AES256_GCM,data:"] {
            let err = unseal(&flip(needle), "in.yaml", &ids).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            assert!(
                err.to_string().contains("document 1 (Secret dev/s)"),
                "{err}"
            );
        }
        // An unencrypted value changed: only the MAC can tell.
        let err = unseal(&out.replace("a: b", "a: c"), "in.yaml", &ids).unwrap_err();
        assert!(err.to_string().contains("MAC check failed"), "{err}");
    }

    #[test]
    fn ssh_only_recipients_are_refused_for_flux() {
        let key = crate::keygen::DeployKey::generate(crate::keygen::KeyType::Ed25519, "x").unwrap();
        let err = SopsSettings::new(&[key.public_openssh().to_string()], None).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("no age1... recipient"), "{err}");
        let (r, _) = identity();
        let s = SopsSettings::new(&[r, key.public_openssh().to_string()], None).unwrap();
        assert_eq!(s.warnings().len(), 1);
    }

    #[test]
    fn update_is_byte_identical_when_unchanged_and_rekeys_a_changed_object() {
        let (r, ids) = identity();
        let first = seal_documents(
            &[secret()],
            &SopsSettings::new(std::slice::from_ref(&r), None).unwrap(),
        )
        .unwrap();
        let again = SopsSettings::new(std::slice::from_ref(&r), None)
            .unwrap()
            .with_previous(&first, "old", &ids)
            .unwrap();
        assert_eq!(seal_documents(&[secret()], &again).unwrap(), first);
        let mut changed = secret();
        changed["data"]["n"] = json!(6);
        let second = seal_documents(&[changed.clone()], &again).unwrap();
        let line = |t: &str, k: &str| {
            t.lines()
                .find(|l| l.trim_start().starts_with(k))
                .unwrap_or_else(|| panic!("{k} in {t}"))
                .to_string()
        };
        // A fresh data key: even the unchanged value has new ciphertext.
        assert_ne!(line(&second, "k: "), line(&first, "k: "));
        assert_ne!(line(&second, "\"n\": "), line(&first, "\"n\": "));
        let plain = unseal(&second, "t", &ids).unwrap();
        assert_eq!(
            crate::yaml::parse_stream(plain.expose_secret(), "t").unwrap(),
            vec![changed]
        );
    }

    #[test]
    fn debug_of_settings_shows_no_key_material() {
        let (r, ids) = identity();
        let first = seal_documents(
            &[secret()],
            &SopsSettings::new(std::slice::from_ref(&r), None).unwrap(),
        )
        .unwrap();
        let s = SopsSettings::new(&[r], None)
            .unwrap()
            .with_previous(&first, "old", &ids)
            .unwrap();
        let dbg = format!("{s:?}");
        assert!(
            !dbg.contains("c2VjcmV0") && !dbg.contains("data_key"),
            "{dbg}"
        );
    }

    #[test]
    fn a_recipient_with_a_multibyte_character_at_the_cut_is_named_without_panicking() {
        // Found by the sops_reader fuzz target: `&s[..37]` cut inside 'Η' and panicked.
        let (_, ids) = identity();
        let text = "kind: Secret\nmetadata: {name: s}\ndata: {k: \"ENC[AES256_GCM,data:AA==,iv:AA==,tag:AA==,type:str]\"}\nsops:\n  age:\n    - recipient: \"age1henwn645drkd3fa34t27t2w2x0nsgw3w\\u0397\\u001b]0;x62gmg5x5xflyjpy38s5cncph\"\n      enc: x\n  mac: x\n  encrypted_regex: ^data$\n";
        let err = unseal(text, "t", &ids).unwrap_err().to_string();
        assert!(err.contains("none of the identities opens"), "{err}");
        assert!(!err.contains('\u{1b}'), "{err}");
    }
}
