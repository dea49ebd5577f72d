//! Rules on objects other than pod specs: Secrets, ConfigMaps, Airflow chart values.

use super::*;

pub(super) fn audit_secret(obj: &Node, sops: bool, e: &mut Emitter<'_, '_>) {
    let data = obj.get_or_null("data").entries();
    let string_data = obj.get_or_null("stringData").entries();
    e.note_definition(e.name, e.namespace, kind_line(obj));
    e.out.secrets.push(SecretDecl {
        namespace: e.namespace.map(str::to_string),
        name: e.name.to_string(),
        secret_type: obj.str_at(&["type"]).map(str::to_string),
        storage: if sops {
            "sops"
        } else if rendered_by_eso(obj) {
            EXTERNAL_SECRET
        } else {
            "plaintext"
        },
    });
    for (k, _) in data.iter().chain(string_data) {
        note_connection_env(k.as_str(), e);
    }
    // Key names stay readable in SOPS files and SealedSecrets; values do not.
    e.note_secret_keys(
        data.iter()
            .chain(string_data)
            .any(|(k, _)| k.as_str() == "known_hosts"),
    );
    if sops {
        return;
    }
    // Settings, not credentials: checked in files and in the cluster alike.
    audit_argocd_repository(obj, e);
    audit_airflow_connection_secret(obj, e);
    audit_secret_connections(obj, e);
    if e.origin.cluster {
        // Values in the cluster are where they belong.
        return;
    }
    let has_values = data
        .iter()
        .chain(string_data)
        .any(|(_, v)| v.as_str().is_some_and(|s| !s.is_empty()));
    if has_values && e.origin.file.is_some() {
        e.emit(
            Rule::Sk006,
            Severity::Error,
            format!(
                "{} is a plaintext Secret manifest ({} key(s), neither SOPS-encrypted nor sealed)",
                e.what(),
                data.len() + string_data.len()
            ),
            At {
                line: kind_line(obj),
                secret: Some(e.name),
                ..At::default()
            },
        );
    }
    let name = e.name;
    for (field, values, base64) in [("data", data, true), ("stringData", string_data, false)] {
        let holds_key = |s: &str| {
            if base64 {
                is_private_key_base64(s)
            } else {
                is_private_key_text(s)
            }
        };
        for (k, v) in values {
            if v.as_str().is_some_and(holds_key) {
                e.emit(
                    Rule::Sk007,
                    Severity::Error,
                    format!(
                        "{} holds an unsealed {} in {field}.{}",
                        e.what(),
                        private_key_noun(k.as_str()),
                        k.as_str()
                    ),
                    At {
                        line: v.line,
                        secret: Some(name),
                        key: Some(k.as_str()),
                        ..At::default()
                    },
                );
            }
        }
    }
}

/// A Secret value as text: `data` is base64 (undecodable or non-UTF-8 values are skipped),
/// `stringData` is plain.
pub(super) fn secret_value(v: &Node, base64_encoded: bool) -> Option<Zeroizing<String>> {
    let s = v.as_str()?;
    if !base64_encoded {
        return Some(Zeroizing::new(s.to_string()));
    }
    let compact: Zeroizing<Vec<u8>> =
        Zeroizing::new(s.bytes().filter(|b| !b.is_ascii_whitespace()).collect());
    let bytes = Zeroizing::new(
        base64::engine::general_purpose::STANDARD
            .decode(&*compact)
            .ok()?,
    );
    std::str::from_utf8(&bytes)
        .ok()
        .map(|t| Zeroizing::new(t.to_string()))
}

/// The `data` (base64) and `stringData` entries of a Secret with the key `wanted` accepts.
pub(super) fn secret_entries(
    obj: &Node,
    wanted: impl Fn(&str) -> bool,
) -> Vec<(&'static str, &str, &Node, Zeroizing<String>)> {
    let mut found = Vec::new();
    for (field, b64) in [("data", true), ("stringData", false)] {
        for (k, v) in obj.get_or_null(field).entries() {
            if !wanted(k.as_str()) {
                continue;
            }
            if let Some(text) = secret_value(v, b64) {
                found.push((field, k.as_str(), v, text));
            }
        }
    }
    found
}

/// Secrets the Apache Airflow chart's values name: (values path, how the chart consumes it).
pub(super) const AIRFLOW_VALUES_SECRETS: [(&[&str], Via); 9] = [
    (&["dags", "gitSync", "sshKeySecret"], Via::Volume),
    (&["dags", "gitSync", "credentialsSecret"], Via::Env),
    (&["fernetKeySecretName"], Via::Env),
    (&["webserverSecretKeySecretName"], Via::Env),
    (&["apiSecretKeySecretName"], Via::Env),
    (&["jwtSecretName"], Via::Env),
    (&["data", "metadataSecretName"], Via::Env),
    (&["data", "resultBackendSecretName"], Via::Env),
    (&["data", "brokerUrlSecretName"], Via::Env),
];

/// HelmRelease (or values file) references to Secrets count as consumers in the summary.
///
/// The chart's pods run in the release namespace (`release_ns`), which a HelmRelease's
/// `targetNamespace` may set apart from its own.
pub(super) fn airflow_values_usages<'a>(
    values: &Node,
    release_ns: Option<&'a str>,
    e: &mut Emitter<'a, '_>,
) {
    let mut usage: Uses<'_> = BTreeMap::new();
    for (path, via) in AIRFLOW_VALUES_SECRETS {
        if let Some(name) = values.str_at(path).filter(|n| !n.trim().is_empty()) {
            record(
                &mut usage,
                name,
                via,
                None,
                format!("values {}", path.join(".")),
                None,
            );
        }
    }
    // `secret: [{envName, secretName, secretKey}]`: one env var each.
    for item in values.get_or_null("secret").items() {
        if let Some(name) = item.str_at(&["secretName"]) {
            let detail = format!(
                "values secret[] env {}",
                item.str_at(&["envName"]).unwrap_or("?")
            );
            record(&mut usage, name, Via::Env, None, detail, None);
        }
    }
    if let Some(name) = values.str_at(&["registry", "secretName"]) {
        record(
            &mut usage,
            name,
            Via::ImagePullSecrets,
            None,
            "values registry.secretName".into(),
            None,
        );
    }
    let own = e.namespace;
    e.namespace = release_ns;
    push_usages(usage, e);
    e.namespace = own;
}

pub(super) fn audit_config_map(obj: &Node, e: &mut Emitter<'_, '_>) {
    for (k, v) in obj.get_or_null("data").entries() {
        note_connection_env(k.as_str(), e);
        if let ("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", Some(list)) =
            (k.as_str(), v.as_str())
        {
            audit_bundle_list_json(list, v.line, e);
        }
    }
    audit_config_map_connections(obj, e);
    for (field, check) in [
        ("data", is_private_key_text as fn(&str) -> bool),
        ("binaryData", is_private_key_base64),
    ] {
        for (k, v) in obj.get_or_null(field).entries() {
            if v.as_str()
                .is_some_and(|s| check(s) || is_private_key_base64(s))
            {
                e.emit(
                    Rule::Sk007,
                    Severity::Error,
                    format!(
                        "{} holds a {} in {field}.{}",
                        e.what(),
                        private_key_noun(k.as_str()),
                        k.as_str()
                    ),
                    At {
                        line: v.line,
                        key: Some(k.as_str()),
                        ..At::default()
                    },
                );
            }
        }
    }
}

/// Key names named in a finding about several keys; the rest are counted.
const KEYS_NAMED: usize = 10;

pub(super) fn audit_airflow_values<'a>(
    values: &Node,
    release_ns: Option<&'a str>,
    e: &mut Emitter<'a, '_>,
) {
    airflow_values_usages(values, release_ns, e);
    // The chart's `env: [{name, value}]` goes into every Airflow container.
    audit_env(values, "(chart values env)", e);
    audit_chart_bundle_values(values, e);
    audit_chart_bundle_list(values, e);
    let git_sync = values.at(&["dags", "gitSync"]);
    if let Some(gs) = git_sync {
        if let Some(key) = gs.get("sshKey").filter(|k| {
            k.as_str()
                .is_some_and(|s| !s.trim().is_empty() && !s.starts_with("ENC["))
        }) {
            e.emit(
                Rule::Sk007,
                Severity::Error,
                format!(
                    "{} carries an inline SSH key in dags.gitSync.sshKey",
                    e.what()
                ),
                At {
                    line: key.line,
                    key: Some("dags.gitSync.sshKey"),
                    ..At::default()
                },
            );
        }
        let enabled = gs.get("enabled").and_then(Node::as_bool) == Some(true);
        let ssh = gs.str_at(&["repo"]).is_some_and(is_ssh_url)
            || gs.str_at(&["sshKeySecret"]).is_some_and(|s| !s.is_empty())
            || gs.str_at(&["sshKey"]).is_some_and(|s| !s.is_empty());
        let known_hosts = gs
            .str_at(&["knownHosts"])
            .is_some_and(|s| !s.trim().is_empty());
        if enabled && ssh && !known_hosts {
            e.emit(
                Rule::Sk008,
                Severity::Error,
                format!(
                    "{}: dags.gitSync uses SSH without knownHosts, so the chart turns host-key checking off",
                    e.what()
                ),
                At {
                    line: gs.line,
                    secret: gs.str_at(&["sshKeySecret"]),
                    ..At::default()
                },
            );
        }
    }
    for (sname, spec) in values.get_or_null("extraSecrets").entries() {
        // The chart makes a Secret of each entry: one defined in the input, stored in clear.
        e.note_definition(sname.as_str(), release_ns, spec.line);
        e.out.secrets.push(SecretDecl {
            namespace: release_ns.map(str::to_string),
            name: sname.as_str().to_string(),
            secret_type: spec.str_at(&["type"]).map(str::to_string),
            storage: "plaintext",
        });
        for (field, b64) in [("data", true), ("stringData", false)] {
            let Some(text) = spec.str_at(&[field]) else {
                continue;
            };
            // The chart takes these as a YAML string of `key: value` lines. Its budget is
            // proportional to its length: the same scalar may be an alias copied many times.
            let Ok(inner) =
                documents_within(text, Budget::for_nested(text)).collect::<Result<Vec<_>, _>>()
            else {
                continue;
            };
            let clear_keys: Vec<&str> = inner
                .iter()
                .flat_map(|doc| doc.entries())
                .filter(|(_, v)| v.as_str().is_some_and(is_clear_value))
                .map(|(k, _)| k.as_str())
                .collect();
            if !clear_keys.is_empty() && e.origin.file.is_some() {
                let mut named = clear_keys
                    .iter()
                    .take(KEYS_NAMED)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ");
                if clear_keys.len() > KEYS_NAMED {
                    named.push_str(&format!(", +{} more", clear_keys.len() - KEYS_NAMED));
                }
                e.emit(
                    Rule::Sk006,
                    Severity::Error,
                    format!(
                        "{} defines Secret {} in clear in extraSecrets.{}.{field} (key(s) {named}), neither SOPS-encrypted nor sealed",
                        e.what(),
                        sname.as_str(),
                        sname.as_str(),
                    ),
                    At {
                        line: spec.get_or_null(field).line,
                        secret: Some(sname.as_str()),
                        ..At::default()
                    },
                );
            }
            for doc in &inner {
                for (k, v) in doc.entries() {
                    let hit = v.as_str().is_some_and(|s| {
                        if b64 {
                            is_private_key_base64(s)
                        } else {
                            is_private_key_text(s)
                        }
                    });
                    if hit {
                        let path =
                            format!("extraSecrets.{}.{field}.{}", sname.as_str(), k.as_str());
                        e.emit(
                            Rule::Sk007,
                            Severity::Error,
                            format!(
                                "{} holds an unsealed {} in {path}",
                                e.what(),
                                private_key_noun(k.as_str())
                            ),
                            At {
                                line: spec.get_or_null(field).line,
                                secret: Some(sname.as_str()),
                                key: Some(k.as_str()),
                                ..At::default()
                            },
                        );
                    }
                }
            }
        }
    }
}

/// A value in chart `extraSecrets` that is readable as committed: not empty, not SOPS-encrypted
/// and not a Helm template expression (the chart renders these with `tpl`).
fn is_clear_value(s: &str) -> bool {
    let t = s.trim();
    let template = t.starts_with("{{") && t.ends_with("}}");
    !(t.is_empty() || t.starts_with("ENC[") || template)
}
