//! Setting sealkey's values in a SOPS-encrypted HelmRelease, changing only their lines.
//!
//! SOPS encrypts leaf values in place and leaves the YAML around them (keys, order, comments) as
//! text, so a merge can keep every other line byte for byte: the owned values are set with the
//! same text edit as for a plain HelmRelease (encrypted under the file's data key with their path
//! as AAD when the file's rule encrypts that path), and the `sops` block gets a new MAC (over
//! the document as it now reads, in its order, as sops computes it) and `lastmodified`. The data
//! key is kept: no secret value changes, so nothing new is protected by it (a key rotation
//! re-seals under a fresh one). Proof before anything is written: the result opens with the
//! identity, every MAC holds, and it decrypts to the original with exactly the owned values set.

use super::open::{decrypt_doc, mac_hasher, open_stream};
use super::{aad_of, encrypt_value, rfc3339, Rule, SopsAes};
use crate::emit::merge::{
    clear_entries_to_remove, merge_lines, removal_paths, remove_path, ClearKeyEntry, Owned,
};
use crate::error::{Error, Result};
use crate::seal::age::Identity;
use crate::secret::wipe_value;
use aes_gcm::aead::generic_array::GenericArray;
use aes_gcm::aead::KeyInit;
use rand_core::{OsRng, RngCore};
use serde_json::Value;
use sha2::Digest;

/// Sets `owned` in the one SOPS-encrypted HelmRelease of `text`, opened with `identities`; every
/// line outside the owned keys and the `sops` block's `mac` and `lastmodified` stays byte for
/// byte. `what` names the file in errors. A file that cannot be merged safely is refused.
/// The `values.extraSecrets` entries that hold a deploy key for `new_secret` (or for the Secret
/// `dags.gitSync.sshKeySecret` names today) are taken out, as
/// [`crate::emit::merge::migrate_helm_release`] does, and returned.
pub fn merge_into_sealed_helm_release(
    text: &str,
    what: &str,
    identities: &[Identity],
    owned: &[Owned],
    new_secret: &str,
    now: jiff::Timestamp,
) -> Result<MergedText> {
    merge_sealed(text, what, identities, owned, Some(new_secret), now)
}

/// [`merge_into_sealed_helm_release`] that sets `owned` and takes nothing out (the DAG bundle
/// migration keeps the key where it is, `values.extraSecrets` included).
pub fn set_in_sealed_helm_release(
    text: &str,
    what: &str,
    identities: &[Identity],
    owned: &[Owned],
    now: jiff::Timestamp,
) -> Result<String> {
    merge_sealed(text, what, identities, owned, None, now).map(|(text, _)| text)
}

type MergedText = (String, Vec<ClearKeyEntry>);

fn merge_sealed(
    text: &str,
    what: &str,
    identities: &[Identity],
    owned: &[Owned],
    new_secret: Option<&str>,
    now: jiff::Timestamp,
) -> Result<MergedText> {
    let refuse = |why: &str| {
        Error::input(
            what,
            format!("cannot merge sealkey's values into this SOPS file safely: {why}"),
            crate::message!(
                "nothing was written; set the values with `sops edit` (`{} values` prints them)",
                crate::error::Setting::Emit
            ),
        )
    };
    let docs = crate::yaml::parse_stream(text, what)?;
    let [doc] = &docs[..] else {
        return Err(refuse("it must hold exactly one document, the HelmRelease"));
    };
    if doc["kind"] != "HelmRelease" {
        return Err(refuse("its document is not a HelmRelease"));
    }
    let Some(block) = doc.get("sops").and_then(Value::as_object).cloned() else {
        return Err(refuse("it has no `sops` block"));
    };
    // Opened (the MAC checked) for the data key and the plaintext the proof compares with.
    let mut before = open_stream(docs.clone(), what, identities, false, None)?;
    let data_key = before[0].sops.data_key.clone();
    let entries = match new_secret {
        Some(name) => clear_entries_to_remove(&before[0].plain, name, what)?,
        None => Vec::new(),
    };
    let removed = removal_paths(Some(&before[0].plain), &entries);
    let rule = Rule::from_block(&block, what)?;
    let cipher = SopsAes::new(GenericArray::from_slice(&*data_key));
    let mut rendered = Vec::with_capacity(owned.len());
    for o in owned {
        let mut path = o.path.clone();
        let value = seal_owned(&o.value, &mut path, &rule, &cipher)
            .ok_or_else(|| refuse("an owned value the file's rule encrypts is not a string"))??;
        rendered.push(Owned {
            path: o.path.clone(),
            value,
        });
    }
    let merged = merge_lines(text, what, &rendered, &removed, true)?;

    // The new MAC: every value of the document as it now reads, in its order.
    let mut merged_doc = crate::yaml::parse_stream(&merged, what)?.remove(0);
    let mut mac = mac_hasher(&block);
    let label = format!("{what} (merged)");
    let mut plain = decrypt_doc(
        std::mem::take(&mut merged_doc),
        &label,
        &data_key,
        &rule,
        &block,
        &mut mac,
        None,
    )?;
    wipe_value(&mut plain);
    let mac_hex = hex::encode_upper(mac.finalize());
    let lastmodified = rfc3339(now);
    let mut iv = [0u8; 32];
    OsRng.fill_bytes(&mut iv);
    let mac_enc = encrypt_value(&cipher, &iv, mac_hex.as_bytes(), &lastmodified, "str")?;
    let out = replace_block_line(&merged, "lastmodified", &format!("\"{lastmodified}\""))
        .ok_or_else(|| refuse("its sops block has no single `lastmodified:` line"))?;
    let out = replace_block_line(&out, "mac", &mac_enc)
        .ok_or_else(|| refuse("its sops block has no single `mac:` line"))?;

    // The proof: it opens, the MAC holds, and it is the original with the owned values set.
    let mut after = open_stream(
        crate::yaml::parse_stream(&out, what)?,
        what,
        identities,
        false,
        None,
    )
    .map_err(|_| refuse("the edited file would not open with its own MAC"))?;
    let mut expected = std::mem::take(&mut before[0].plain);
    for path in &removed {
        remove_path(&mut expected, path);
    }
    for o in owned {
        crate::emit::merge::set_path(&mut expected, &o.path, o.value.clone());
    }
    let same = after[0].plain == expected;
    wipe_value(&mut expected);
    wipe_value(&mut after[0].plain);
    if !same {
        return Err(refuse(
            "the edited file would not decrypt to the same objects",
        ));
    }
    Ok((out, entries))
}

/// `value` at `path` as the file's rule stores it: strings it encrypts become `ENC[...]` (their
/// path as AAD), mappings are walked key by key. `None` where the rule encrypts something that is
/// not a string, or anything inside a list (refused: sealkey does not write those encrypted).
fn seal_owned(
    value: &Value,
    path: &mut Vec<String>,
    rule: &Rule,
    cipher: &SopsAes,
) -> Option<Result<Value>> {
    match value {
        Value::String(plain) if rule.should_encrypt(path) => {
            let mut iv = [0u8; 32];
            OsRng.fill_bytes(&mut iv);
            Some(
                encrypt_value(cipher, &iv, plain.as_bytes(), &aad_of(path), "str")
                    .map(Value::String),
            )
        }
        Value::Object(m) => {
            let mut out = serde_json::Map::new();
            for (k, v) in m {
                path.push(k.clone());
                let sealed = seal_owned(v, path, rule, cipher);
                path.pop();
                match sealed? {
                    Ok(v) => {
                        out.insert(k.clone(), v);
                    }
                    Err(e) => return Some(Err(e)),
                }
            }
            Some(Ok(Value::Object(out)))
        }
        Value::Array(items) => {
            let mut p = path.clone();
            let inside = |p: &mut Vec<String>, v: &Value| -> bool {
                match v {
                    Value::Object(m) => m.iter().all(|(k, v)| {
                        p.push(k.clone());
                        let ok = !rule.should_encrypt(p) || !matches!(v, Value::String(_));
                        let ok = ok && !(v.is_object() && rule.should_encrypt(p));
                        p.pop();
                        ok
                    }),
                    _ => !rule.should_encrypt(p),
                }
            };
            items
                .iter()
                .all(|v| inside(&mut p, v))
                .then(|| Ok(value.clone()))
        }
        _ if rule.should_encrypt(path) => None,
        _ => Some(Ok(value.clone())),
    }
}

/// Replaces the line `KEY: ...` directly under the top-level `sops:` (and any continuation lines
/// of its value, as Python sops folds the MAC) with `KEY: VALUE`. `None` unless exactly one.
fn replace_block_line(text: &str, key: &str, value: &str) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let start = lines.iter().position(|l| l.trim_end() == "sops:")?;
    let indent_of = |l: &str| l.len() - l.trim_start_matches(' ').len();
    let body: Vec<usize> = (start + 1..lines.len())
        .take_while(|&i| lines[i].trim().is_empty() || indent_of(lines[i]) > 0)
        .collect();
    let first = body.iter().find(|&&i| !lines[i].trim().is_empty())?;
    let indent = indent_of(lines[*first]);
    let prefix = format!("{key}:");
    let hits: Vec<usize> = body
        .iter()
        .copied()
        .filter(|&i| {
            indent_of(lines[i]) == indent && {
                let t = lines[i].trim_start_matches(' ');
                t.starts_with(&prefix) && t[prefix.len()..].starts_with([' ', '\n', '\r'])
                    || t.trim_end() == prefix
            }
        })
        .collect();
    let [at] = hits[..] else {
        return None;
    };
    let mut end = at + 1;
    while end < lines.len()
        && body.contains(&end)
        && !lines[end].trim().is_empty()
        && indent_of(lines[end]) > indent
    {
        end += 1;
    }
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    // The replaced line's own ending: a CRLF file stays CRLF.
    let eol = if lines[at].ends_with("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    out.splice(
        at..end,
        [format!("{}{key}: {value}{eol}", " ".repeat(indent))],
    );
    Some(out.concat())
}

#[cfg(test)]
mod tests {
    use super::replace_block_line;

    #[test]
    fn only_the_block_line_and_its_folded_continuation_are_replaced() {
        let text = "spec:\n  mac: keep\nsops:\n    lastmodified: \"x\"\n    mac:\n        ENC[old]\n    version: 3.9.0\n";
        let out = replace_block_line(text, "mac", "ENC[new]").unwrap();
        assert_eq!(
            out,
            "spec:\n  mac: keep\nsops:\n    lastmodified: \"x\"\n    mac: ENC[new]\n    version: 3.9.0\n"
        );
        assert!(replace_block_line("sops:\n  a: 1\n", "mac", "x").is_none());
    }

    #[test]
    fn a_crlf_block_line_is_replaced_with_crlf() {
        // Was: the new `mac:` line ended in a bare LF inside a CRLF file.
        let text = "spec: {}\r\nsops:\r\n    lastmodified: \"x\"\r\n    mac: ENC[old]\r\n    version: 3.9.0\r\n";
        let out = replace_block_line(text, "mac", "ENC[new]").unwrap();
        assert_eq!(
            out,
            "spec: {}\r\nsops:\r\n    lastmodified: \"x\"\r\n    mac: ENC[new]\r\n    version: 3.9.0\r\n"
        );
    }
}
