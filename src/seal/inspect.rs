//! What a sealed file holds, read without decrypting anything: the format, who can open it, which
//! objects and paths it carries, and sealkey's key fingerprint where its metadata names one. For
//! `sealkey inspect`, so a file can be checked before it is committed.

use crate::error::{Error, Result};
use base64::Engine as _;
use serde::Serialize;
use serde_json::Value;

/// The verdict for one file.
#[derive(Debug, Serialize)]
#[serde(rename_all = "snake_case", tag = "format")]
pub enum Inspection {
    /// An age file (armored or binary): one encrypted payload.
    Age {
        /// ASCII-armored (`-----BEGIN AGE ENCRYPTED FILE-----`).
        armored: bool,
        /// Recipient stanzas by type (`X25519`, `ssh-ed25519`, `ssh-rsa`, `scrypt`, ...).
        recipients: Vec<StanzaCount>,
        /// Size of the encrypted payload in bytes.
        payload_bytes: usize,
    },
    /// YAML documents: SOPS, SealedSecrets, or plain objects.
    Documents {
        /// One entry per document.
        documents: Vec<DocumentInfo>,
    },
}

/// How many stanzas of one type an age header has.
#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct StanzaCount {
    /// The stanza type.
    pub kind: String,
    /// How many.
    pub count: usize,
}

/// One YAML document.
#[derive(Debug, Serialize)]
pub struct DocumentInfo {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `metadata.namespace` (for a SealedSecret: of the object).
    pub namespace: Option<String>,
    /// `metadata.name`.
    pub name: Option<String>,
    /// How the document is protected: `sops`, `sealed-secret` or `none`.
    pub protection: &'static str,
    /// SOPS details when `protection` is `sops`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sops: Option<SopsInfo>,
    /// SealedSecret details when `protection` is `sealed-secret`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sealed_secret: Option<SealedSecretInfo>,
    /// sealkey's `sealkey.io/fingerprint` annotation: the deploy key the file's author *claims*
    /// it holds. Nothing authenticates it without opening the file: anyone can write any
    /// fingerprint there, and anyone with the recipients' public keys can build a validly MACed
    /// file around another key. `unseal` (with an identity) shows the key itself.
    pub fingerprint_claimed: Option<String>,
    /// Paths whose values are readable and hold a Secret value or key material: a sealed file
    /// should have none.
    pub readable_secret_paths: Vec<String>,
}

/// A document's `sops` block, summarised.
#[derive(Debug, Serialize)]
pub struct SopsInfo {
    /// age recipients (`age1...`, or SSH public keys) as the `sops` block lists them: a claim
    /// too (a stanza's recipient line is not checked against what it encrypts to).
    pub age_recipients: Vec<String>,
    /// Other key services present (`kms`, `pgp`, `gcp_kms`, `azure_kv`, `hc_vault`) and how many
    /// entries each.
    pub other_key_services: Vec<StanzaCount>,
    /// Paths whose values are `ENC[...]`.
    pub encrypted_paths: Vec<String>,
    /// The selection rule (`encrypted_regex: ^(data|stringData)$`).
    pub rule: Option<String>,
    /// A MAC is present (it is verified only when opened, with an identity).
    pub mac: bool,
    /// `lastmodified`.
    pub lastmodified: Option<String>,
}

/// A SealedSecret, summarised.
#[derive(Debug, Serialize)]
pub struct SealedSecretInfo {
    /// `strict`, `namespace-wide` or `cluster-wide`.
    pub scope: &'static str,
    /// The keys of `spec.encryptedData`.
    pub keys: Vec<String>,
}

/// Inspects `bytes` (`what` names them in errors).
pub fn inspect(bytes: &[u8], what: &str) -> Result<Inspection> {
    if super::age::is_age_file(bytes) {
        return inspect_age(bytes, what);
    }
    let text = std::str::from_utf8(bytes).map_err(|_| {
        Error::input(
            what,
            "neither an age file nor UTF-8 YAML",
            "pass a file sealkey, sops, age or kubeseal wrote",
        )
    })?;
    let docs = crate::yaml::parse_stream(text, what)?;
    if docs.is_empty() {
        return Err(Error::input(
            what,
            "no YAML documents",
            "pass a sealed file",
        ));
    }
    let guard = super::guard::Guard::for_plaintext(&docs);
    let documents = docs
        .iter()
        .map(|d| {
            let mut info = document(d);
            info.readable_secret_paths = readable_secret_paths(d, &guard);
            info
        })
        .collect();
    let mut docs = docs;
    docs.iter_mut().for_each(crate::secret::wipe_value);
    Ok(Inspection::Documents { documents })
}

fn inspect_age(bytes: &[u8], what: &str) -> Result<Inspection> {
    use std::io::Read;
    let armored = bytes
        .trim_ascii_start()
        .starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----");
    let mut binary = Vec::new();
    ::age::armor::ArmoredReader::new(bytes.trim_ascii_start())
        .read_to_end(&mut binary)
        .map_err(|e| {
            Error::input(
                what,
                format!("not a readable age file ({e})"),
                "pass the file as age or sealkey wrote it",
            )
        })?;
    let mut recipients: Vec<StanzaCount> = Vec::new();
    let mut payload_bytes = 0;
    for (line, end) in super::age::header_lines(&binary) {
        if let Some(rest) = line.strip_prefix(b"-> ") {
            let kind = String::from_utf8_lossy(
                rest.split(|&b| b == b' ' || b == b'\n')
                    .next()
                    .unwrap_or_default(),
            )
            .into_owned();
            // age adds random "grease" stanzas that no identity opens: not recipients.
            if kind.ends_with("-grease") {
                continue;
            }
            match recipients.iter_mut().find(|s| s.kind == kind) {
                Some(s) => s.count += 1,
                None => recipients.push(StanzaCount { kind, count: 1 }),
            }
        } else if line.starts_with(b"---") {
            payload_bytes = binary.len() - end;
        }
    }
    Ok(Inspection::Age {
        armored,
        recipients,
        payload_bytes,
    })
}

fn document(d: &Value) -> DocumentInfo {
    let s = |v: &Value| v.as_str().map(str::to_string);
    let mut info = DocumentInfo {
        api_version: s(&d["apiVersion"]).unwrap_or_default(),
        kind: s(&d["kind"]).unwrap_or_default(),
        namespace: s(&d["metadata"]["namespace"]),
        name: s(&d["metadata"]["name"]),
        protection: "none",
        sops: None,
        sealed_secret: None,
        fingerprint_claimed: s(&d["metadata"]["annotations"]["sealkey.io/fingerprint"]),
        readable_secret_paths: Vec::new(),
    };
    if let Some(block) = d.get("sops").and_then(Value::as_object) {
        let mut encrypted_paths = Vec::new();
        collect_encrypted(d, &mut Vec::new(), &mut encrypted_paths);
        let other_key_services = ["kms", "pgp", "gcp_kms", "azure_kv", "hc_vault"]
            .into_iter()
            .filter_map(|k| {
                let n = block.get(k).and_then(Value::as_array).map_or(0, Vec::len);
                (n > 0).then(|| StanzaCount {
                    kind: k.to_string(),
                    count: n,
                })
            })
            .collect();
        let rule = [
            "encrypted_regex",
            "unencrypted_regex",
            "encrypted_suffix",
            "unencrypted_suffix",
        ]
        .into_iter()
        .find_map(|k| {
            block
                .get(k)
                .and_then(Value::as_str)
                .map(|v| format!("{k}: {v}"))
        });
        info.protection = "sops";
        info.sops = Some(SopsInfo {
            age_recipients: block
                .get("age")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|e| s(&e["recipient"])).collect())
                .unwrap_or_default(),
            other_key_services,
            encrypted_paths,
            rule,
            mac: block
                .get("mac")
                .and_then(Value::as_str)
                .is_some_and(|m| m.starts_with("ENC[")),
            lastmodified: block.get("lastmodified").and_then(s),
        });
        // The fingerprint of a sealed object sits in its clear metadata, or (SealedSecret) in
        // its template.
    } else if info.kind == "SealedSecret" {
        let annotations = &d["metadata"]["annotations"];
        let scope = if annotations["sealedsecrets.bitnami.com/cluster-wide"] == "true" {
            "cluster-wide"
        } else if annotations["sealedsecrets.bitnami.com/namespace-wide"] == "true" {
            "namespace-wide"
        } else {
            "strict"
        };
        info.protection = "sealed-secret";
        info.sealed_secret = Some(SealedSecretInfo {
            scope,
            keys: d["spec"]["encryptedData"]
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default(),
        });
        if info.fingerprint_claimed.is_none() {
            info.fingerprint_claimed =
                s(&d["spec"]["template"]["metadata"]["annotations"]["sealkey.io/fingerprint"]);
        }
    }
    info
}

fn collect_encrypted(v: &Value, path: &mut Vec<String>, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                if path.is_empty() && k == "sops" {
                    continue;
                }
                path.push(k.clone());
                collect_encrypted(child, path, out);
                path.pop();
            }
        }
        Value::Array(a) => a.iter().for_each(|x| collect_encrypted(x, path, out)),
        Value::String(s) if s.starts_with("ENC[") => {
            let p = path.join(".");
            if !out.contains(&p) {
                out.push(p);
            }
        }
        _ => {}
    }
}

/// Paths of one document whose readable values hold key material or, in a plain Secret, any
/// non-public value: what a sealed file must not have.
fn readable_secret_paths(d: &Value, guard: &super::guard::Guard) -> Vec<String> {
    let mut out = Vec::new();
    if d["kind"] == "Secret" && d.get("sops").is_none() {
        for field in ["data", "stringData"] {
            if let Some(m) = d[field].as_object() {
                for (k, v) in m {
                    let clear = v.as_str().is_some_and(|s| {
                        !s.is_empty() && !s.starts_with("ENC[") && !public_value(field, s)
                    });
                    if clear {
                        out.push(format!("{field}.{k}"));
                    }
                }
            }
        }
    }
    if d.get("sops").is_none() {
        extra_secrets_paths(d, &mut out);
    }
    for p in guard.paths_in(d) {
        if !out.contains(&p) {
            out.push(p);
        }
    }
    out
}

/// issue 21 item 12: the Apache Airflow chart's `extraSecrets.<name>.data|stringData` (a YAML
/// string of `key: value` lines) of a HelmRelease's `spec.values` or a bare values file: each
/// readable, non-public value's path, down to its key. A text that is not YAML counts whole.
fn extra_secrets_paths(d: &Value, out: &mut Vec<String>) {
    let (prefix, extra) = match d["spec"]["values"]["extraSecrets"].as_object() {
        Some(m) if d["kind"] == "HelmRelease" => ("spec.values.extraSecrets", m),
        _ => match d["extraSecrets"].as_object() {
            Some(m) if d.get("kind").is_none() => ("extraSecrets", m),
            _ => return,
        },
    };
    for (name, spec) in extra {
        for field in ["data", "stringData"] {
            let Some(text) = spec[field].as_str() else {
                continue;
            };
            let Ok(mut inner) = crate::yaml::parse_stream(text, "extraSecrets") else {
                if !text.trim().is_empty() {
                    out.push(format!("{prefix}.{name}.{field}"));
                }
                continue;
            };
            for doc in &inner {
                for (k, v) in doc.as_object().into_iter().flatten() {
                    let clear = v.as_str().is_some_and(|s| {
                        let t = s.trim();
                        let template = t.starts_with("{{") && t.ends_with("}}");
                        let hidden = t.is_empty() || t.starts_with("ENC[") || template;
                        !hidden && !public_value(field, t)
                    });
                    if clear {
                        out.push(format!("{prefix}.{name}.{field}.{k}"));
                    }
                }
            }
            inner.iter_mut().for_each(crate::secret::wipe_value);
        }
    }
}

fn public_value(field: &str, s: &str) -> bool {
    let decoded = if field == "data" {
        base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
    } else {
        Some(s.to_string())
    };
    decoded.is_some_and(|t| super::guard::is_public(t.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_secret_is_reported_with_its_readable_paths_and_no_values() {
        let text =
            "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  k: c2VjcmV0LXZhbHVl\n";
        let Inspection::Documents { documents } = inspect(text.as_bytes(), "t").unwrap() else {
            panic!("not documents")
        };
        assert_eq!(documents[0].protection, "none");
        assert_eq!(documents[0].readable_secret_paths, ["data.k"]);
        let json = serde_json::to_string(&documents).unwrap();
        assert!(!json.contains("c2VjcmV0"), "{json}");
    }

    // issue 21 item 12: a clear webhook URL or password in a HelmRelease's `extraSecrets` did
    // not make `inspect` exit 1.
    #[test]
    fn clear_extra_secrets_of_chart_values_are_readable_secret_paths() {
        let text = "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: airflow}\nspec:\n  values:\n    extraSecrets:\n      alerts:\n        stringData: |\n          SLACK_WEBHOOK_URL: https://hooks.slack.com/services/T0/B0/CANARY\n        data: |\n          SMTP_PASSWORD: Q0FOQVJZ\n      sealed:\n        stringData: |\n          K: ENC[AES256_GCM,data:x,type:str]\n";
        let Inspection::Documents { documents } = inspect(text.as_bytes(), "t").unwrap() else {
            panic!("not documents")
        };
        assert_eq!(
            documents[0].readable_secret_paths,
            [
                "spec.values.extraSecrets.alerts.data.SMTP_PASSWORD",
                "spec.values.extraSecrets.alerts.stringData.SLACK_WEBHOOK_URL"
            ]
        );
        let json = serde_json::to_string(&documents).unwrap();
        assert!(
            !json.contains("CANARY") && !json.contains("Q0FOQVJZ"),
            "{json}"
        );
    }
}
