//! The last check before sealed output is written: no string in it may hold private-key material
//! or one of the plaintext's Secret values in clear. Whatever the seal method, selection rule or
//! input shape, a sealed file that would leak is refused (exit 2), naming the document and path.
//!
//! Two kinds of needle, searched in one Aho-Corasick pass over the rendered output:
//! - markers of private keys whatever their origin: PEM `PRIVATE KEY-----` armour, the binary
//!   OpenSSH key magic, PKCS#8 headers of ed25519, RSA and EC keys, age secret keys; each as text,
//!   as base64 at all three alignments, and as base64 of that base64 at all three alignments (a
//!   PEM inside a Secret's `data` inside a HelmRelease's `extraSecrets` string);
//! - the plaintext's own Secret values (`data` as written and decoded, `stringData`), unless the
//!   value is public by content (known_hosts lines, SSH public keys, certificates).

use crate::error::{Error, Result};
use aho_corasick::AhoCorasick;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde_json::Value;
use zeroize::Zeroizing;

/// Shortest Secret value searched for: shorter ones (`true`, `5432`, `admin`) occur everywhere.
const MIN_VALUE_LEN: usize = 8;

/// Byte strings that only occur inside private keys.
const KEY_MARKERS: &[&[u8]] = &[
    b"PRIVATE KEY-----",
    b"openssh-key-v1\0",
    b"AGE-SECRET-KEY-1",
    // PKCS#8 PrivateKeyInfo: version 0, then the algorithm identifier.
    // ed25519 (RFC 8410): SEQUENCE { INTEGER 0, SEQUENCE { OID 1.3.101.112 }, OCTET STRING ...
    b"\x02\x01\x00\x30\x05\x06\x03\x2b\x65\x70\x04",
    // rsaEncryption with NULL parameters.
    b"\x02\x01\x00\x30\x0d\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x01\x01\x05\x00\x04",
    // id-ecPublicKey followed by a named curve.
    b"\x02\x01\x00\x30\x13\x06\x07\x2a\x86\x48\xce\x3d\x02\x01\x06",
];

/// Where a leak was found, for the error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exposure {
    /// `document 2 (Secret dev/x)`.
    pub document: String,
    /// `metadata.annotations.kubectl.kubernetes.io/last-applied-configuration`.
    pub path: String,
    /// `private-key material` or `a Secret value of the input`.
    pub what: &'static str,
}

/// The needles for one sealing run. Holds plaintext Secret values: wiped on drop, no `Clone`.
pub struct Guard {
    needles: Vec<Zeroizing<Vec<u8>>>,
    /// How many of the needles (from the front) are key markers; the rest are Secret values.
    markers: usize,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("markers", &self.markers)
            .field("values", &(self.needles.len() - self.markers))
            .finish()
    }
}

impl Guard {
    /// Only the private-key markers (for output whose plaintext was never parsed, e.g. age).
    pub fn key_markers() -> Self {
        let mut needles = Vec::new();
        for m in KEY_MARKERS {
            push_encodings(&mut needles, m);
        }
        let markers = needles.len();
        Self { needles, markers }
    }

    /// Key markers plus every Secret value of `plain` (the documents before sealing).
    pub fn for_plaintext(plain: &[Value]) -> Self {
        let mut guard = Self::key_markers();
        for doc in plain {
            if doc["kind"] != "Secret" {
                continue;
            }
            for field in ["data", "stringData"] {
                let Some(map) = doc[field].as_object() else {
                    continue;
                };
                for v in map.values() {
                    let Some(s) = v.as_str() else { continue };
                    let decoded = if field == "data" {
                        B64.decode(s.trim()).ok().map(Zeroizing::new)
                    } else {
                        None
                    };
                    let public = match &decoded {
                        Some(d) => is_public(d),
                        None => is_public(s.as_bytes()),
                    };
                    if public {
                        continue;
                    }
                    if s.len() >= MIN_VALUE_LEN {
                        guard.needles.push(Zeroizing::new(s.as_bytes().to_vec()));
                    }
                    match &decoded {
                        Some(d) => push_value_encodings(&mut guard.needles, d),
                        None => push_value_encodings(&mut guard.needles, s.as_bytes()),
                    }
                }
            }
        }
        guard
    }

    fn searcher(&self) -> AhoCorasick {
        AhoCorasick::new(self.needles.iter().map(|n| n.as_slice()))
            .expect("needles are short enough for an automaton")
    }

    /// Checks rendered sealed output: its bytes, and (when it is YAML) every key and value as
    /// the YAML reads, since the emitter writes a value holding a line break, a quote or a
    /// backslash escaped, so its bytes differ from the value. A hit is named by document and
    /// path where it can be; the error never carries the value.
    pub fn check_text(&self, sealed: &str, what: &str) -> Result<()> {
        let ac = self.searcher();
        let hit = ac.find(sealed.as_bytes());
        let located = crate::yaml::parse_stream(sealed, what)
            .ok()
            .and_then(|docs| locate(&docs, &ac, self));
        if let Some(exposure) = located {
            return Err(refusal(what, &exposure));
        }
        match hit {
            None => Ok(()),
            Some(hit) => Err(refusal(
                what,
                &Exposure {
                    document: what.to_string(),
                    path: format!("byte {}", hit.start()),
                    what: self.kind_of(hit.pattern().as_usize()),
                },
            )),
        }
    }

    /// Checks sealed documents before they are rendered.
    pub fn check_docs(&self, sealed: &[Value], what: &str) -> Result<()> {
        match locate(sealed, &self.searcher(), self) {
            None => Ok(()),
            Some(exposure) => Err(refusal(what, &exposure)),
        }
    }

    /// Every path of `doc` (keys and values) holding a needle, outside `ENC[...]` values.
    pub(crate) fn paths_in(&self, doc: &Value) -> Vec<String> {
        fn walk(v: &Value, path: &mut Vec<String>, ac: &AhoCorasick, out: &mut Vec<String>) {
            match v {
                Value::String(s) if !s.starts_with("ENC[") && ac.is_match(s.as_bytes()) => {
                    out.push(path.join("."));
                }
                Value::Object(m) => {
                    for (k, child) in m {
                        path.push(shown_key(k, ac));
                        if ac.is_match(k.as_bytes()) {
                            out.push(path.join("."));
                        }
                        walk(child, path, ac, out);
                        path.pop();
                    }
                }
                Value::Array(a) => {
                    for (i, item) in a.iter().enumerate() {
                        path.push(i.to_string());
                        walk(item, path, ac, out);
                        path.pop();
                    }
                }
                _ => {}
            }
        }
        let mut out = Vec::new();
        walk(doc, &mut Vec::new(), &self.searcher(), &mut out);
        out
    }

    fn kind_of(&self, pattern: usize) -> &'static str {
        if pattern < self.markers {
            "private-key material"
        } else {
            "a Secret value of the input"
        }
    }
}

fn refusal(what: &str, e: &Exposure) -> Error {
    Error::input(
        format!("{what}: {} at {}", e.document, e.path),
        format!("the sealed output would hold {} in clear", e.what),
        crate::message!(
            "nothing was written; make the sealing cover that value (for SOPS, an {} that matches a key on its path, e.g. ^(data|stringData)$), or remove it from the input",
            crate::error::Setting::EncryptedRegex
        ),
    )
}

/// A mapping key as a path shows it: a key that itself holds a needle (a Secret value or key
/// material used as a key) is replaced, so the refusal never prints the value.
fn shown_key(k: &str, ac: &AhoCorasick) -> String {
    if ac.is_match(k.as_bytes()) {
        "<key holding the value>".into()
    } else {
        k.to_string()
    }
}

/// Finds the first string (map key or value) holding a needle.
fn locate(docs: &[Value], ac: &AhoCorasick, guard: &Guard) -> Option<Exposure> {
    fn walk(
        v: &Value,
        path: &mut Vec<String>,
        ac: &AhoCorasick,
        guard: &Guard,
    ) -> Option<(String, &'static str)> {
        match v {
            Value::String(s) => ac
                .find(s.as_bytes())
                .map(|m| (path.join("."), guard.kind_of(m.pattern().as_usize()))),
            Value::Object(m) => {
                for (k, child) in m {
                    path.push(shown_key(k, ac));
                    if let Some(m) = ac.find(k.as_bytes()) {
                        let found = (path.join("."), guard.kind_of(m.pattern().as_usize()));
                        path.pop();
                        return Some(found);
                    }
                    let found = walk(child, path, ac, guard);
                    path.pop();
                    if found.is_some() {
                        return found;
                    }
                }
                None
            }
            Value::Array(a) => a.iter().enumerate().find_map(|(i, item)| {
                path.push(i.to_string());
                let found = walk(item, path, ac, guard);
                path.pop();
                found
            }),
            _ => None,
        }
    }
    docs.iter().enumerate().find_map(|(i, doc)| {
        walk(doc, &mut Vec::new(), ac, guard).map(|(path, what)| Exposure {
            document: super::sops::doc_label(doc, i),
            path: if path.is_empty() {
                "the document root".into()
            } else {
                path
            },
            what,
        })
    })
}

/// Whether a Secret value is public by content: every line a known_hosts entry or an SSH public
/// key, or only PEM public keys and certificates.
pub(crate) fn is_public(bytes: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return false;
    };
    if text.contains("-----BEGIN") {
        return !text.contains("PRIVATE")
            && text
                .lines()
                .filter(|l| l.starts_with("-----BEGIN"))
                .all(|l| l.contains("CERTIFICATE-----") || l.contains("PUBLIC KEY-----"));
    }
    let mut any = false;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let public_key_at = |i: usize| {
            fields.len() > i + 1
                && ssh_key::PublicKey::from_openssh(&format!("{} {}", fields[i], fields[i + 1]))
                    .is_ok()
        };
        let start = usize::from(fields.first().is_some_and(|f| f.starts_with('@')));
        if !(public_key_at(start) || public_key_at(start + 1)) {
            return false;
        }
        any = true;
    }
    any
}

/// Pushes a Secret value (at least [`MIN_VALUE_LEN`] bytes) in the forms a copy-paste produces:
/// as is, reversed, hex (lower and upper case), base64 (standard and URL-safe alphabets, at the
/// three alignments, so with or without padding and inside any surrounding text),
/// percent-encoded (upper and lower case hex, `+` for a space as forms write it) and
/// JSON-escaped. The forms equal to the value itself add nothing and are skipped.
fn push_value_encodings(out: &mut Vec<Zeroizing<Vec<u8>>>, value: &[u8]) {
    if value.len() < MIN_VALUE_LEN {
        return;
    }
    let mut forms: Vec<Zeroizing<Vec<u8>>> = vec![Zeroizing::new(value.to_vec())];
    let mut reversed = Zeroizing::new(value.to_vec());
    reversed.reverse();
    forms.push(reversed);
    let hex = Zeroizing::new(hex::encode(value).into_bytes());
    forms.push(Zeroizing::new(hex.to_ascii_uppercase()));
    forms.push(hex);
    for b64 in aligned_base64(value) {
        let b64 = Zeroizing::new(b64);
        let url: Vec<u8> = b64
            .iter()
            .map(|&c| match c {
                b'+' => b'-',
                b'/' => b'_',
                c => c,
            })
            .collect();
        forms.push(Zeroizing::new(url));
        forms.push(b64);
    }
    let mut pct = Zeroizing::new(Vec::with_capacity(value.len() * 3));
    for &b in value {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            pct.push(b);
        } else {
            pct.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
    let mut lower = Zeroizing::new(Vec::with_capacity(value.len() * 3));
    for &b in value {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            lower.push(b);
        } else {
            lower.extend_from_slice(format!("%{b:02x}").as_bytes());
        }
    }
    forms.push(lower);
    let mut form = Zeroizing::new(Vec::with_capacity(pct.len()));
    let mut i = 0;
    while i < pct.len() {
        if pct[i..].starts_with(b"%20") {
            form.push(b'+');
            i += 3;
        } else {
            form.push(pct[i]);
            i += 1;
        }
    }
    forms.push(form);
    forms.push(pct);
    if let Ok(text) = std::str::from_utf8(value) {
        let json = Zeroizing::new(serde_json::to_string(text).unwrap_or_default());
        if json.len() >= 2 {
            forms.push(Zeroizing::new(json.as_bytes()[1..json.len() - 1].to_vec()));
        }
    }
    out.extend(forms);
}

/// Pushes `marker`, its base64 at the three alignments, and the base64 of each of those at the
/// three alignments.
fn push_encodings(out: &mut Vec<Zeroizing<Vec<u8>>>, marker: &[u8]) {
    if marker.iter().all(|b| b.is_ascii_graphic() || *b == b' ') {
        out.push(Zeroizing::new(marker.to_vec()));
    }
    for once in aligned_base64(marker) {
        for twice in aligned_base64(&once) {
            out.push(Zeroizing::new(twice));
        }
        out.push(Zeroizing::new(once));
    }
}

/// The part of base64(prefix + bytes + suffix) that depends only on `bytes`, for each of the
/// three offsets `bytes` can start at within a 3-byte group.
pub(crate) fn aligned_base64(bytes: &[u8]) -> Vec<Vec<u8>> {
    (0..3)
        .filter_map(|offset| {
            let mut padded = vec![0u8; offset];
            padded.extend_from_slice(bytes);
            let encoded = B64.encode(&padded);
            // Characters covering a prefix byte: the first 4*offset/3 rounded up; characters
            // covering the incomplete last group (and `=`) depend on what follows.
            let skip = (offset * 4).div_ceil(3);
            let full_groups = padded.len() / 3;
            let keep = full_groups * 4;
            (keep > skip + 4).then(|| encoded.as_bytes()[skip..keep].to_vec())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pem() -> String {
        let key = crate::keygen::DeployKey::generate(crate::keygen::KeyType::Ed25519, "t").unwrap();
        key.private_pem().unwrap().expose_secret().to_string()
    }

    #[test]
    fn aligned_base64_matches_inside_any_surrounding_text() {
        let marker = b"openssh-key-v1\0";
        let needles = aligned_base64(marker);
        assert_eq!(needles.len(), 3);
        for prefix in 0..6 {
            for suffix in 0..4 {
                let mut data = vec![b'x'; prefix];
                data.extend_from_slice(marker);
                data.extend(std::iter::repeat_n(b'y', suffix));
                let text = B64.encode(&data);
                assert!(
                    needles
                        .iter()
                        .any(|n| text.as_bytes().windows(n.len()).any(|w| w == n.as_slice())),
                    "prefix {prefix} suffix {suffix}: {text}"
                );
            }
        }
    }

    #[test]
    fn a_key_in_any_encoding_anywhere_is_found_and_named() {
        let pem = pem();
        let once = B64.encode(pem.as_bytes());
        let twice = B64.encode(format!("gitSshKey: '{once}'\n").as_bytes());
        let body: String = pem.lines().nth(1).unwrap().to_string();
        let guard = Guard::key_markers();
        for (label, value) in [
            ("pem", pem.clone()),
            ("base64", once.clone()),
            ("base64 of yaml of base64", twice),
            ("first body line", format!("x{body}")),
        ] {
            let docs = vec![
                json!({"kind": "ConfigMap", "metadata": {"name": "c", "annotations": {"a": value}}}),
            ];
            let err = guard.check_docs(&docs, "out.yaml").unwrap_err();
            assert_eq!(err.exit_code(), 2, "{label}");
            let msg = err.to_string();
            assert!(
                msg.contains("document 1 (ConfigMap c) at metadata.annotations.a"),
                "{label}: {msg}"
            );
            assert!(
                !msg.contains(&once[..20]),
                "{label}: the value leaked into {msg}"
            );
        }
    }

    #[test]
    fn secret_values_are_needles_but_public_host_keys_are_not() {
        let plain = vec![json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
            "data": {
                "password": B64.encode("hunter2hunter2"),
                "known_hosts": B64.encode(crate::known_hosts::KnownHosts::github_pinned().to_text()),
            },
            "stringData": {"token": "tok_0123456789", "short": "abc"},
        })];
        let guard = Guard::for_plaintext(&plain);
        let kh = crate::known_hosts::KnownHosts::github_pinned().to_text();
        let ok = vec![
            json!({"kind": "HelmRelease", "spec": {"values": {"knownHosts": kh, "x": "abc"}}}),
        ];
        guard.check_docs(&ok, "o").unwrap();
        for leaked in [
            "hunter2hunter2",
            "tok_0123456789",
            &B64.encode("hunter2hunter2"),
        ] {
            let docs =
                vec![json!({"kind": "ConfigMap", "data": {"k": format!("pre {leaked} post")}})];
            let err = guard.check_docs(&docs, "o").unwrap_err().to_string();
            assert!(err.contains("a Secret value of the input"), "{err}");
            assert!(!err.contains(leaked), "{err}");
        }
    }

    #[test]
    fn check_text_names_the_path_in_rendered_yaml() {
        let pem = pem();
        let doc = json!({"kind": "Secret", "metadata": {"name": "s", "namespace": "dev",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": format!("{{\"k\":\"{}\"}}", B64.encode(&pem))}}});
        let text = crate::yaml::to_yaml(&doc);
        let err = Guard::key_markers()
            .check_text(&text, "f.yaml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("document 1 (Secret dev/s) at metadata.annotations.kubectl.kubernetes.io/last-applied-configuration"),
            "{err}"
        );
    }
}
