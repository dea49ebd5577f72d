//! Opening SOPS files: data keys from age identities or AWS KMS, every value decrypted and
//! authenticated with its path, every document's MAC checked; plaintext wiped on every path.

use super::*;

/// Whether `bytes` look like SOPS YAML (a top-level `sops:` key holding a MAC).
pub fn looks_like_sops(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(bytes);
    let has_top_sops = text.starts_with("sops:") || text.contains("\nsops:");
    // The original Python sops folds long values onto the next line (`mac: \n    ENC[...]`).
    let mac_yaml = text.match_indices("mac:").any(|(i, m)| {
        text[i + m.len()..]
            .trim_start()
            .starts_with("ENC[AES256_GCM")
    });
    has_top_sops && (mac_yaml || text.contains("\"mac\":"))
}

/// Opens every SOPS document of `text` with `identities`, verifying each MAC, and returns the
/// plaintext YAML stream of those documents. Documents without a `sops` block that hold nothing
/// the file's rule encrypts (how sealkey writes objects with nothing secret) are left out, since
/// no MAC authenticates them ([`plain_documents`] names them); any other is refused, as is a
/// document whose value or MAC was altered, naming it.
pub fn unseal(
    text: &str,
    what: &str,
    identities: &[Identity],
) -> Result<crate::secret::SecretText> {
    unseal_with_kms(text, what, identities, None)
}

/// Whether a SOPS text has `sops.kms` entries (so `unseal` can go through KMS without an identity).
pub fn has_kms_entries(text: &str) -> bool {
    crate::yaml::parse_stream(text, "input").is_ok_and(|docs| {
        docs.iter()
            .any(|d| d["sops"]["kms"].as_array().is_some_and(|a| !a.is_empty()))
    })
}

/// [`unseal`], opening data keys through AWS KMS (`sops.kms` entries) when no identity opens
/// an age entry: one KMS Decrypt per document.
pub fn unseal_with_kms(
    text: &str,
    what: &str,
    identities: &[Identity],
    kms: Option<&crate::seal::kms::KmsService>,
) -> Result<crate::secret::SecretText> {
    unseal_stream(text, what, identities, kms, false)
}

/// [`unseal_with_kms`], printing the documents without a `sops` block too, in their places and
/// as written (Flux applies them that way); only those `split_plain` lets through, and no MAC
/// vouches for them: the caller says so.
pub fn unseal_with_plain(
    text: &str,
    what: &str,
    identities: &[Identity],
    kms: Option<&crate::seal::kms::KmsService>,
) -> Result<crate::secret::SecretText> {
    unseal_stream(text, what, identities, kms, true)
}

fn unseal_stream(
    text: &str,
    what: &str,
    identities: &[Identity],
    kms: Option<&crate::seal::kms::KmsService>,
    with_plain: bool,
) -> Result<crate::secret::SecretText> {
    let docs = crate::yaml::parse_stream(text, what)?;
    if !docs
        .iter()
        .any(|d| d.get("sops").is_some_and(Value::is_object))
    {
        return Err(Error::input(
            what,
            "no SOPS document in it (no top-level `sops` block)",
            crate::message!(
                "pass a file written by `sealkey ... {} sops` or by sops",
                crate::error::Setting::Seal
            ),
        ));
    }
    // Documents without a `sops` block are left out: nothing printed is unauthenticated
    // ([`plain_documents`] names them for the front end to say so).
    let (docs, unauthenticated) = split_plain(docs, what)?;
    let opened = open_stream(docs, what, identities, false, kms)?;
    let opened: Vec<Value> = opened
        .into_iter()
        .map(|mut o| std::mem::take(&mut o.plain))
        .collect();
    let mut plain = if with_plain {
        with_plain_docs(opened, unauthenticated)
    } else {
        opened
    };
    let text = crate::yaml::to_yaml_stream(&plain);
    plain.iter_mut().for_each(wipe_value);
    Ok(crate::secret::SecretText::from(text))
}

/// [`unseal`], keeping the documents as a [`crate::emit::ManifestStream`] (wiped on drop) for
/// callers that change them and seal again (`rotate --gitops` of a HelmRelease). Documents
/// without a `sops` block stay in their places as written (sealing them again writes them
/// without a block again: nothing unauthenticated is ever sealed as if it had been).
pub fn unseal_documents(
    text: &str,
    what: &str,
    identities: &[Identity],
) -> Result<crate::emit::ManifestStream> {
    let docs = crate::yaml::parse_stream(text, what)?;
    let (docs, passed) = split_plain(docs, what)?;
    let opened = open_stream(docs, what, identities, false, None)?;
    Ok(crate::emit::ManifestStream::from_docs(with_plain_docs(
        opened
            .into_iter()
            .map(|mut o| std::mem::take(&mut o.plain))
            .collect(),
        passed,
    )))
}

/// The documents of a SOPS file that have no `sops` block (labels such as `document 1
/// (HelmRelease dev/airflow)`): [`unseal`] leaves them out, since no MAC authenticates them, and
/// a front end says so.
pub fn plain_documents(text: &str, what: &str) -> Vec<String> {
    let Ok(docs) = crate::yaml::parse_stream(text, what) else {
        return Vec::new();
    };
    if docs.len() < 2 {
        return Vec::new();
    }
    docs.iter()
        .enumerate()
        .filter(|(_, d)| d.get("sops").is_none())
        .map(|(i, d)| doc_label(d, i))
        .collect()
}

/// Splits a stream of several documents into those with a `sops` block and those without
/// (with their positions). A document without one passes only when it is not a Secret and holds
/// no value the rule of the file's sealed documents would encrypt: that is how sealkey writes
/// objects with nothing secret (issue 21 item 6), editable by people and bots, and what Flux
/// applies without decrypting. Anything else is refused as before: a Secret or a secret value
/// in clear added to a sealed file.
pub(super) fn split_plain(docs: Vec<Value>, what: &str) -> Result<(Vec<Value>, Vec<Positioned>)> {
    let first_block = docs
        .iter()
        .find_map(|d| d.get("sops").and_then(Value::as_object))
        .cloned();
    let Some(block) = first_block else {
        return Ok((docs, Vec::new()));
    };
    let rule = Rule::from_block(&block, what)?;
    let mut sealed = Vec::with_capacity(docs.len());
    let mut plain = Vec::new();
    for (i, doc) in docs.into_iter().enumerate() {
        if doc.get("sops").is_some() {
            sealed.push(doc);
        } else if doc["kind"] != "Secret" && !super::encrypts_any(&doc, &rule) {
            plain.push((i, doc));
        } else {
            let label = format!("{what} {}", doc_label(&doc, i));
            let mut doc = doc;
            wipe_value(&mut doc);
            return Err(Error::crypto(
                label,
                "has no `sops` block, so no MAC authenticates it, and it holds values the file's rule encrypts",
                "every document with secret values must be sealed: remove what was added after sealing, or re-seal the whole file",
            ));
        }
    }
    Ok((sealed, plain))
}

/// A document and its position in the stream.
pub(super) type Positioned = (usize, Value);

/// Puts the passed-through documents back at their places among the opened ones.
fn with_plain_docs(opened: Vec<Value>, passed: Vec<Positioned>) -> Vec<Value> {
    let mut out = opened;
    for (i, doc) in passed {
        out.insert(i.min(out.len()), doc);
    }
    out
}

/// One document, opened.
pub(super) struct Opened {
    pub(super) plain: Value,
    pub(super) sops: OpenedSops,
}

/// Whatever happens after a document was opened (a later one fails its MAC, an error), its
/// plaintext is wiped.
impl Drop for Opened {
    fn drop(&mut self) {
        wipe_value(&mut self.plain);
    }
}

pub(super) struct OpenedSops {
    pub(super) data_key: Zeroizing<[u8; 32]>,
    pub(super) block: Map<String, Value>,
    pub(super) mac_hex: String,
    pub(super) ivs: HashMap<IvKey, [u8; 32]>,
}

/// Opens documents. Each carries its own MAC, except a multi-document file written by `sops`
/// itself, which repeats one `sops` block in every document with one MAC over all of them.
pub(super) fn open_stream(
    docs: Vec<Value>,
    what: &str,
    identities: &[Identity],
    collect_ivs: bool,
    kms: Option<&crate::seal::kms::KmsService>,
) -> Result<Vec<Opened>> {
    let shared_block = docs.len() > 1
        && docs
            .iter()
            .all(|d| d.get("sops").is_some_and(Value::is_object))
        && docs.windows(2).all(|w| w[0]["sops"] == w[1]["sops"]);
    if shared_block {
        let label = format!("{what} (one sops block over {} documents)", docs.len());
        let block = docs[0]["sops"].as_object().cloned().unwrap_or_default();
        let data_key = open_data_key(&block, &label, identities, kms)?;
        let rule = Rule::from_block(&block, &label)?;
        let mut mac = mac_hasher(&block);
        let mut out = Vec::with_capacity(docs.len());
        for (i, doc) in docs.into_iter().enumerate() {
            let label = format!("{what} {}", doc_label(&doc, i));
            out.push(open_doc(
                doc,
                &label,
                &data_key,
                &rule,
                &block,
                &mut mac,
                collect_ivs,
            )?);
        }
        let mac_hex = check_mac(&block, &data_key, mac, &label)?;
        for o in &mut out {
            o.sops.mac_hex = mac_hex.clone();
        }
        return Ok(out);
    }
    let mut out = Vec::with_capacity(docs.len());
    for (i, doc) in docs.into_iter().enumerate() {
        let label = format!("{what} {}", doc_label(&doc, i));
        let Some(block) = doc.get("sops").and_then(Value::as_object).cloned() else {
            // Nothing authenticates such a document: appended to a sealed file, it would be
            // printed (and applied) as if it had been sealed.
            let mut doc = doc;
            wipe_value(&mut doc);
            return Err(Error::crypto(
                label,
                "has no `sops` block, so no MAC authenticates it",
                "every document of a SOPS file must be sealed: remove what was added after sealing, or re-seal the whole file",
            ));
        };
        let data_key = open_data_key(&block, &label, identities, kms)?;
        let rule = Rule::from_block(&block, &label)?;
        let mut mac = mac_hasher(&block);
        let mut opened = open_doc(doc, &label, &data_key, &rule, &block, &mut mac, collect_ivs)?;
        opened.sops.mac_hex = check_mac(&block, &data_key, mac, &label)?;
        out.push(opened);
    }
    Ok(out)
}

/// Decrypts one document (feeding its values to `mac`) into an [`Opened`] at once, so its
/// plaintext is wiped whatever fails next (the MAC check included). The MAC is left to the caller.
fn open_doc(
    doc: Value,
    label: &str,
    data_key: &Zeroizing<[u8; 32]>,
    rule: &Rule,
    block: &Map<String, Value>,
    mac: &mut Sha512,
    collect_ivs: bool,
) -> Result<Opened> {
    let mut ivs = HashMap::new();
    let plain = decrypt_doc(
        doc,
        label,
        data_key,
        rule,
        block,
        mac,
        collect_ivs.then_some(&mut ivs),
    )?;
    Ok(Opened {
        plain,
        sops: OpenedSops {
            data_key: data_key.clone(),
            block: block.clone(),
            mac_hex: String::new(),
            ivs,
        },
    })
}

fn mac_only_encrypted(block: &Map<String, Value>) -> bool {
    block.get("mac_only_encrypted") == Some(&Value::Bool(true))
}

pub(super) fn mac_hasher(block: &Map<String, Value>) -> Sha512 {
    let mut h = Sha512::new();
    if mac_only_encrypted(block) {
        h.update(hex::decode(MAC_ONLY_ENCRYPTED_INIT).expect("constant hex"));
    }
    h
}

/// Recovers the 32-byte data key from the first `sops.age` entry an identity opens.
fn open_data_key(
    block: &Map<String, Value>,
    label: &str,
    identities: &[Identity],
    kms: Option<&crate::seal::kms::KmsService>,
) -> Result<Zeroizing<[u8; 32]>> {
    // issue 15: with a KMS service, an age identity is tried first, then each kms entry.
    if let Some(service) = kms {
        let age_opens = identities.iter().len() > 0
            && block
                .get("age")
                .and_then(Value::as_array)
                .is_some_and(|a| !a.is_empty());
        if !age_opens {
            return open_kms_data_key(block, label, service);
        }
        if let Ok(k) = open_data_key(block, label, identities, None) {
            return Ok(k);
        }
        return open_kms_data_key(block, label, service);
    }
    let entries = block
        .get("age")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if entries.is_empty() {
        let others: Vec<&str> = ["kms", "pgp", "gcp_kms", "azure_kv", "hc_vault"]
            .into_iter()
            .filter(|k| block.get(*k).is_some_and(|v| !v.is_null()))
            .collect();
        return Err(Error::input(
            label,
            format!(
                "its data key is not sealed to any age recipient{}",
                if others.is_empty() {
                    String::new()
                } else {
                    format!(" (only {})", others.join(", "))
                }
            ),
            "decrypt it with sops and the matching key service",
        ));
    }
    for entry in &entries {
        let Some(enc) = entry["enc"].as_str() else {
            continue;
        };
        if let Ok(key) = agefmt::unseal(enc.as_bytes(), identities, label) {
            let bytes = key.expose_secret();
            if bytes.len() == 32 {
                let mut k = Zeroizing::new([0u8; 32]);
                k.copy_from_slice(bytes);
                return Ok(k);
            }
        }
    }
    let recipients: Vec<String> = entries
        .iter()
        .filter_map(|e| e["recipient"].as_str().map(short))
        .collect();
    Err(Error::crypto(
        label,
        format!(
            "none of the identities opens its data key (sealed to: {})",
            recipients.join(", ")
        ),
        crate::message!(
            "pass {} with the age identity of one of those recipients",
            crate::error::Setting::Identity
        ),
    ))
}

/// The data key from the first `sops.kms` entry KMS opens; the last error otherwise.
fn open_kms_data_key(
    block: &Map<String, Value>,
    label: &str,
    service: &crate::seal::kms::KmsService,
) -> Result<Zeroizing<[u8; 32]>> {
    let entries = block
        .get("kms")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut last = Error::input(
        label,
        "its data key is sealed to no KMS key",
        crate::message!(
            "pass {} with an age identity of one of its recipients",
            crate::error::Setting::Identity
        ),
    );
    for entry in &entries {
        let key = match crate::seal::kms::KmsKeyRef::from_entry(entry, label) {
            Ok(k) => k,
            Err(e) => {
                last = e;
                continue;
            }
        };
        match service.decrypt(&key, entry["enc"].as_str().unwrap_or_default(), label) {
            Ok(k) => return Ok(k),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// Decrypts one document's values (feeding the MAC) and drops its `sops` block.
pub(super) fn decrypt_doc(
    doc: Value,
    label: &str,
    data_key: &[u8; 32],
    rule: &Rule,
    block: &Map<String, Value>,
    mac: &mut Sha512,
    ivs: Option<&mut HashMap<IvKey, [u8; 32]>>,
) -> Result<Value> {
    let cipher = SopsAes::new(GenericArray::from_slice(data_key));
    let mut walker = DecryptWalk {
        cipher: &cipher,
        rule,
        mac,
        mac_only_encrypted: mac_only_encrypted(block),
        ivs,
        label,
    };
    let mut doc = doc;
    if let Value::Object(m) = &mut doc {
        m.shift_remove("sops");
    }
    let mut path = Vec::new();
    let result = walker.walk(&doc, &mut path);
    wipe_value(&mut doc);
    result
}

/// `lastmodified` as sops authenticates it: parsed and formatted again by Go's RFC 3339 layout
/// (`Z` for a zero offset, no fractional seconds), so the same instant spelled `+00:00` or with
/// `.000` opens as it does in sops, and a MAC sealed under the raw spelling fails as it does
/// there. Text that is no RFC 3339 timestamp is used as written.
pub(super) fn as_sops_formats_it(lastmodified: &str) -> std::borrow::Cow<'_, str> {
    use std::borrow::Cow;
    let b = lastmodified.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let shape = b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19);
    if !shape {
        return Cow::Borrowed(lastmodified);
    }
    let mut rest = &lastmodified[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return Cow::Borrowed(lastmodified);
        }
        rest = &frac[n..];
    }
    let zone = match rest {
        "Z" => "Z",
        "+00:00" | "-00:00" => "Z",
        z if z.len() == 6
            && (z.starts_with('+') || z.starts_with('-'))
            && z.as_bytes()[3] == b':'
            && z[1..3]
                .bytes()
                .chain(z[4..].bytes())
                .all(|c| c.is_ascii_digit()) =>
        {
            z
        }
        _ => return Cow::Borrowed(lastmodified),
    };
    let formatted = format!("{}{zone}", &lastmodified[..19]);
    if formatted == lastmodified {
        Cow::Borrowed(lastmodified)
    } else {
        Cow::Owned(formatted)
    }
}

/// Compares the computed MAC with the document's `sops.mac`; returns the MAC hex.
fn check_mac(
    block: &Map<String, Value>,
    data_key: &[u8; 32],
    mac: Sha512,
    label: &str,
) -> Result<String> {
    let computed = hex::encode_upper(mac.finalize());
    let tampered = |why: &str| {
        Error::crypto(
            label,
            format!("MAC check failed: {why}"),
            "the document was altered after it was sealed; restore it from git history or re-seal it",
        )
    };
    let Some(stored) = block.get("mac").and_then(Value::as_str) else {
        return Err(tampered("it has no sops.mac"));
    };
    let lastmodified = block
        .get("lastmodified")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let enc =
        parse_encrypted(stored).ok_or_else(|| tampered("sops.mac is not an ENC[...] value"))?;
    let cipher = SopsAes::new(GenericArray::from_slice(data_key));
    let plain = decrypt_value(&cipher, &enc, &as_sops_formats_it(lastmodified))
        .map_err(|_| tampered("sops.mac does not authenticate (it or lastmodified was changed)"))?;
    if !plain.eq_ignore_ascii_case(computed.as_bytes()) {
        return Err(tampered("the values do not match sops.mac"));
    }
    Ok(computed)
}

struct DecryptWalk<'a> {
    cipher: &'a SopsAes,
    rule: &'a Rule,
    mac: &'a mut Sha512,
    mac_only_encrypted: bool,
    ivs: Option<&'a mut HashMap<IvKey, [u8; 32]>>,
    label: &'a str,
}

impl DecryptWalk<'_> {
    fn walk(&mut self, v: &Value, path: &mut Vec<String>) -> Result<Value> {
        map_leaves(v, path, &mut |leaf, path| self.leaf(leaf, path))
    }

    fn leaf(&mut self, leaf: &Value, path: &[String]) -> Result<Value> {
        let encrypted = self.rule.should_encrypt(path);
        let plain = if encrypted {
            self.decrypt_leaf(leaf, path)?
        } else {
            leaf.clone()
        };
        if !self.mac_only_encrypted || encrypted {
            if let Some((_, bytes)) = leaf_bytes(&plain) {
                self.mac.update(&bytes[..]);
            }
        }
        Ok(plain)
    }

    fn decrypt_leaf(&mut self, leaf: &Value, path: &[String]) -> Result<Value> {
        let at = format!("{} value at {}", self.label, path.join("."));
        let Some(s) = leaf.as_str() else {
            return Err(Error::input(
                &at,
                "the rule says this value is encrypted, but it is not an ENC[...] string",
                "the document was altered after it was sealed; restore or re-seal it",
            ));
        };
        if s.is_empty() {
            return Ok(Value::String(String::new()));
        }
        let enc = parse_encrypted(s).ok_or_else(|| {
            Error::crypto(
                &at,
                "not a readable ENC[AES256_GCM,...] value",
                "the document was altered after it was sealed; restore or re-seal it",
            )
        })?;
        let aad = aad_of(path);
        let plain = decrypt_value(self.cipher, &enc, &aad).map_err(|_| {
            Error::crypto(
                &at,
                "the value does not authenticate (altered, moved to another key, or sealed with another data key)",
                "restore the document from git history or re-seal it",
            )
        })?;
        let bad_type = || {
            Error::crypto(
                &at,
                format!("the decrypted value is not a valid {}", enc.ty),
                "re-seal the document",
            )
        };
        let text = std::str::from_utf8(&plain).map_err(|_| bad_type())?;
        let value = match enc.ty.as_str() {
            "str" | "bytes" => Value::String(text.to_string()),
            "int" | "int64" => Value::from(text.parse::<i64>().map_err(|_| bad_type())?),
            "float" => serde_json::Number::from_f64(text.parse::<f64>().map_err(|_| bad_type())?)
                .map(Value::Number)
                .ok_or_else(bad_type)?,
            "bool" => Value::Bool(match text {
                "1" | "t" | "T" | "TRUE" | "true" | "True" => true,
                "0" | "f" | "F" | "FALSE" | "false" | "False" => false,
                _ => return Err(bad_type()),
            }),
            other => {
                return Err(Error::crypto(
                    &at,
                    format!("unknown SOPS value type `{other}`"),
                    "re-seal the document",
                ))
            }
        };
        if let Some(ivs) = self.ivs.as_deref_mut() {
            if let Some((ty, bytes)) = leaf_bytes(&value) {
                ivs.insert(iv_key(&aad, ty, &bytes), enc.iv);
            }
        }
        Ok(value)
    }
}

#[cfg(test)]
mod lastmodified_tests {
    use super::as_sops_formats_it as f;

    #[test]
    fn lastmodified_is_formatted_as_gos_rfc3339_layout() {
        assert_eq!(f("2026-12-06T04:20:25Z"), "2026-12-06T04:20:25Z");
        assert_eq!(f("2026-12-06T04:20:25+00:00"), "2026-12-06T04:20:25Z");
        assert_eq!(f("2026-12-06T04:20:25.123Z"), "2026-12-06T04:20:25Z");
        assert_eq!(f("2026-12-06T04:20:25+02:00"), "2026-12-06T04:20:25+02:00");
        assert_eq!(f("yesterday"), "yesterday");
        assert_eq!(f(""), "");
    }
}
