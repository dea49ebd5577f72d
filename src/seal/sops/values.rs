//! SOPS values: which ones a rule encrypts, how a leaf becomes bytes, AES-256-GCM with the
//! path as AAD, and the walk over every leaf.

use super::*;

/// Which values a document encrypts (sops `shouldBeEncrypted`): a value is encrypted when a key
/// on its path matches (regex/suffix rules), or unless one does (the `un...` rules).
pub(super) enum Rule {
    EncryptedRegex(regex::Regex),
    UnencryptedRegex(regex::Regex),
    EncryptedSuffix(String),
    UnencryptedSuffix(String),
}

impl Rule {
    pub(super) fn should_encrypt(&self, path: &[String]) -> bool {
        match self {
            Rule::EncryptedRegex(re) => path.iter().any(|k| re.is_match(k)),
            Rule::UnencryptedRegex(re) => !path.iter().any(|k| re.is_match(k)),
            Rule::EncryptedSuffix(s) => path.iter().any(|k| k.ends_with(s.as_str())),
            Rule::UnencryptedSuffix(s) => !path.iter().any(|k| k.ends_with(s.as_str())),
        }
    }

    /// The rule a `sops` block declares (sops's default is `unencrypted_suffix: _unencrypted`).
    pub(super) fn from_block(block: &Map<String, Value>, label: &str) -> Result<Rule> {
        let get = |k: &str| {
            block
                .get(k)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
        };
        let bad = |k: &str, e: regex::Error| {
            Error::input(
                label,
                format!("sops.{k} is not a regular expression this reader supports ({e})"),
                "re-encrypt the file with a simpler rule",
            )
        };
        if let Some(re) = get("encrypted_regex") {
            return Ok(Rule::EncryptedRegex(
                regex::Regex::new(re).map_err(|e| bad("encrypted_regex", e))?,
            ));
        }
        if let Some(re) = get("unencrypted_regex") {
            return Ok(Rule::UnencryptedRegex(
                regex::Regex::new(re).map_err(|e| bad("unencrypted_regex", e))?,
            ));
        }
        if let Some(s) = get("encrypted_suffix") {
            return Ok(Rule::EncryptedSuffix(s.to_string()));
        }
        if block.contains_key("encrypted_comment_regex")
            || block.contains_key("unencrypted_comment_regex")
        {
            return Err(Error::input(
                label,
                "comment-based SOPS selection rules are not supported",
                "re-encrypt with encrypted_regex (what Flux users use)",
            ));
        }
        Ok(Rule::UnencryptedSuffix(
            get("unencrypted_suffix")
                .unwrap_or("_unencrypted")
                .to_string(),
        ))
    }
}

/// A value's place and content, without keeping the plaintext: `(aad, type, sha256(plaintext))`.
pub(super) type IvKey = (String, &'static str, [u8; 32]);

pub(super) fn iv_key(aad: &str, ty: &'static str, plain: &[u8]) -> IvKey {
    (aad.to_string(), ty, Sha256::digest(plain).into())
}

/// A leaf's type name and bytes, as sops's `ToBytes` and `Cipher.Encrypt` render them.
pub(super) fn leaf_bytes(v: &Value) -> Option<(&'static str, Zeroizing<Vec<u8>>)> {
    match v {
        Value::String(s) => Some(("str", Zeroizing::new(s.as_bytes().to_vec()))),
        Value::Bool(b) => Some((
            "bool",
            Zeroizing::new(if *b {
                b"True".to_vec()
            } else {
                b"False".to_vec()
            }),
        )),
        Value::Number(n) if n.is_f64() => Some((
            "float",
            Zeroizing::new(format_float(n.as_f64().unwrap_or_default()).into_bytes()),
        )),
        Value::Number(n) => Some(("int", Zeroizing::new(n.to_string().into_bytes()))),
        _ => None,
    }
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: shortest round-trip digits, never an exponent.
pub(super) fn format_float(v: f64) -> String {
    format!("{v}")
}

pub(super) fn aad_of(path: &[String]) -> String {
    let mut s = path.join(":");
    s.push(':');
    s
}

pub(super) fn encrypt_value(
    cipher: &SopsAes,
    iv: &[u8; 32],
    plain: &[u8],
    aad: &str,
    ty: &str,
) -> Result<String> {
    let mut buf = Zeroizing::new(plain.to_vec());
    let tag = cipher
        .encrypt_in_place_detached(GenericArray::from_slice(iv), aad.as_bytes(), &mut buf)
        .map_err(|_| Error::crypto(aad, "AES-GCM encryption failed", "report this as a bug"))?;
    Ok(format!(
        "ENC[AES256_GCM,data:{},iv:{},tag:{},type:{}]",
        B64.encode(&*buf),
        B64.encode(iv),
        B64.encode(tag),
        ty
    ))
}

pub(super) struct Encrypted {
    pub(super) data: Vec<u8>,
    pub(super) iv: [u8; 32],
    pub(super) tag: [u8; 16],
    pub(super) ty: String,
}

/// Parses `ENC[AES256_GCM,data:...,iv:...,tag:...,type:...]`.
pub(super) fn parse_encrypted(s: &str) -> Option<Encrypted> {
    let inner = s.strip_prefix("ENC[AES256_GCM,data:")?;
    let inner = inner.strip_suffix(']')?;
    let (data, rest) = inner.split_once(",iv:")?;
    let (iv, rest) = rest.split_once(",tag:")?;
    let (tag, ty) = rest.split_once(",type:")?;
    Some(Encrypted {
        data: B64.decode(data).ok()?,
        iv: B64.decode(iv).ok()?.try_into().ok()?,
        tag: B64.decode(tag).ok()?.try_into().ok()?,
        ty: ty.to_string(),
    })
}

pub(super) fn decrypt_value(
    cipher: &SopsAes,
    enc: &Encrypted,
    aad: &str,
) -> std::result::Result<Zeroizing<Vec<u8>>, ()> {
    let mut buf = Zeroizing::new(enc.data.clone());
    cipher
        .decrypt_in_place_detached(
            GenericArray::from_slice(&enc.iv),
            aad.as_bytes(),
            &mut buf,
            GenericArray::from_slice(&enc.tag),
        )
        .map_err(|_| ())?;
    Ok(buf)
}

/// Rebuilds `v`, handing every non-null scalar and its key path to `leaf`. List items share their
/// parent's path: sops adds no index to the AAD.
pub(super) fn map_leaves(
    v: &Value,
    path: &mut Vec<String>,
    leaf: &mut dyn FnMut(&Value, &[String]) -> Result<Value>,
) -> Result<Value> {
    match v {
        Value::Object(m) => {
            let mut out = Map::with_capacity(m.len());
            for (k, child) in m {
                path.push(k.clone());
                let mapped = map_leaves(child, path, leaf)?;
                path.pop();
                out.insert(k.clone(), mapped);
            }
            Ok(Value::Object(out))
        }
        Value::Array(a) => a
            .iter()
            .map(|item| map_leaves(item, path, leaf))
            .collect::<Result<Vec<_>>>()
            .map(Value::Array),
        Value::Null => Ok(Value::Null),
        scalar => leaf(scalar, path),
    }
}
