//! Airflow 3 DAG bundles: git connections where the chart and Airflow read them (SK013 in
//! ConfigMaps and in the chart's extraEnv, SK017, SK018) and chart values still on git-sync
//! (SK019).

use super::*;

/// Where a connection value was found, for messages and severities.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ConnPlace {
    /// A literal env value of a container (SK013 is checked by the env rule itself).
    EnvValue,
    /// An `AIRFLOW_CONN_*` key of a Secret (SK013 is checked by the Secret rule itself).
    SecretKey,
    /// An `AIRFLOW_CONN_*` key of a ConfigMap (loaded through envFrom).
    ConfigMapKey,
    /// An item of the chart's `env` or `extraEnv` values.
    ChartValues,
}

/// SK017 and SK018 for one `AIRFLOW_CONN_*` value (and SK013 where no other rule looks).
pub(super) fn audit_git_connection(
    value: &str,
    place: ConnPlace,
    described: &str,
    conn_id: &str,
    at: At<'_>,
    e: &mut Emitter<'_, '_>,
) {
    let Some(conn) = git_connection(value) else {
        return;
    };
    if !conn.ssh {
        return;
    }
    let id = conn_id.to_ascii_lowercase();
    if matches!(place, ConnPlace::ConfigMapKey | ConnPlace::ChartValues) {
        if let Some((severity, why)) = airflow_git_connection(value) {
            e.emit(
                Rule::Sk013,
                severity,
                format!("{described}: Airflow git connection {id} {why}"),
                at.clone(),
            );
        }
    }
    let strict = conn.extra("strict_host_key_checking");
    let checking = !matches!(strict, None | Some("no" | "off" | "accept-new"));
    if checking && conn.extra("known_hosts_file").is_none() {
        e.emit(
            Rule::Sk017,
            Severity::Warning,
            format!("{described}: Airflow git connection {id} checks host keys but names no known_hosts_file, so ssh reads the Airflow user's ~/.ssh/known_hosts (empty in the official image)"),
            at.clone(),
        );
    }
    if conn.extra("private_key").is_some() {
        let severity = if place == ConnPlace::SecretKey {
            Severity::Warning
        } else {
            Severity::Error
        };
        e.emit(
            Rule::Sk018,
            severity,
            format!("{described}: Airflow git connection {id} carries the private key inline (private_key), so it is in the environment of every process that reads the connection"),
            at,
        );
    }
}

/// SK017/SK018 on `AIRFLOW_CONN_*` keys of a Secret (read through envFrom).
pub(super) fn audit_secret_connections(obj: &Node, e: &mut Emitter<'_, '_>) {
    let name = e.name;
    for (field, key, v, text) in secret_entries(obj, |k| k.starts_with("AIRFLOW_CONN_")) {
        let described = format!("{} {field}.{key}", e.what());
        audit_git_connection(
            &text,
            ConnPlace::SecretKey,
            &described,
            &key["AIRFLOW_CONN_".len()..],
            At {
                line: v.line,
                secret: Some(name),
                key: Some(key),
                ..At::default()
            },
            e,
        );
    }
}

/// SK013/SK017/SK018 on `AIRFLOW_CONN_*` keys of a ConfigMap (loaded with envFrom).
pub(super) fn audit_config_map_connections(obj: &Node, e: &mut Emitter<'_, '_>) {
    for (k, v) in obj.get_or_null("data").entries() {
        let key = k.as_str();
        let (Some(id), Some(text)) = (key.strip_prefix("AIRFLOW_CONN_"), v.as_str()) else {
            continue;
        };
        let described = format!("{} data.{key}", e.what());
        audit_git_connection(
            text,
            ConnPlace::ConfigMapKey,
            &described,
            id,
            At {
                line: v.line,
                key: Some(key),
                ..At::default()
            },
            e,
        );
    }
}

/// The chart's values: connections in the `extraEnv` string (SK013, SK017, SK018; `env` items
/// go through the env rule) and `dags.gitSync` still enabled (SK019).
pub(super) fn audit_chart_bundle_values(values: &Node, e: &mut Emitter<'_, '_>) {
    if let Some(extra) = values.get("extraEnv") {
        if let Some(text) = extra.as_str().filter(|t| !t.contains("{{")) {
            if let Ok(docs) = crate::yaml::parse_stream(text, "values.extraEnv") {
                for item in docs.iter().filter_map(|d| d.as_array()).flatten() {
                    let (Some(name), Some(value)) = (item["name"].as_str(), item["value"].as_str())
                    else {
                        continue;
                    };
                    if let Some(id) = name.strip_prefix("AIRFLOW_CONN_") {
                        let described = format!("{} values extraEnv {name}", e.what());
                        audit_git_connection(
                            value,
                            ConnPlace::ChartValues,
                            &described,
                            id,
                            At {
                                line: extra.line,
                                key: Some("extraEnv"),
                                ..At::default()
                            },
                            e,
                        );
                    }
                }
            }
        }
    }
    if let Some(gs) = values.at(&["dags", "gitSync"]) {
        let enabled = gs.get("enabled").is_some_and(|v| {
            v.as_bool() == Some(true) || v.as_str().is_some_and(|s| s.eq_ignore_ascii_case("true"))
        });
        if enabled {
            e.emit(
                Rule::Sk019,
                Severity::Info,
                format!("{}: dags.gitSync is on; the chart plans to remove the git-sync sidecar in 2.0 for Airflow 3's GitDagBundle (`to-dag-bundle` moves it, keeping the key Secret)", e.what()),
                At {
                    line: gs.line,
                    secret: gs.str_at(&["sshKeySecret"]),
                    ..At::default()
                },
            );
        }
    }
}

/// Remembers that env var `name` defines an Airflow connection (SK020).
pub(super) fn note_connection_env(name: &str, e: &mut Emitter<'_, '_>) {
    if let Some(id) = name.strip_prefix("AIRFLOW_CONN_") {
        e.out.connections_defined.insert(id.to_ascii_uppercase());
    }
}

/// The git connection a bundle entry clones through: `kwargs.git_conn_id`, GitDagBundle's
/// default `git_default` when unset; `None` for other bundle classes.
fn bundle_connection(entry: &serde_json::Value) -> Option<(String, String)> {
    let classpath = entry["classpath"].as_str()?;
    if !classpath.ends_with(".GitDagBundle") {
        return None;
    }
    let name = entry["name"].as_str().unwrap_or("?").to_string();
    let id = entry["kwargs"]["git_conn_id"]
        .as_str()
        .unwrap_or("git_default")
        .to_string();
    Some((name, id))
}

fn pend_bundle_connection(bundle: &str, id: &str, line: u32, e: &mut Emitter<'_, '_>) {
    let env = format!("AIRFLOW_CONN_{}", id.to_ascii_uppercase());
    if let Some(f) = e.finding(
        Rule::Sk020,
        Severity::Warning,
        format!(
            "{}: DAG bundle {bundle} clones through connection {id}, and nothing in this input defines {env}",
            e.what()
        ),
        At {
            line,
            ..At::default()
        },
    ) {
        e.out
            .bundle_connections
            .push((id.to_ascii_uppercase(), f));
    }
}

/// SK020 for a `dag_bundle_config_list` JSON value (env var or ConfigMap key).
pub(super) fn audit_bundle_list_json(text: &str, line: u32, e: &mut Emitter<'_, '_>) {
    let Ok(serde_json::Value::Array(list)) = serde_json::from_str(text) else {
        return;
    };
    for entry in &list {
        if let Some((name, id)) = bundle_connection(entry) {
            pend_bundle_connection(&name, &id, line, e);
        }
    }
}

/// The chart's values: connections its env, extraEnv and `secret` entries define, and the
/// bundles of `dagProcessor.dagBundleConfigList` (SK020).
pub(super) fn audit_chart_bundle_list(values: &Node, e: &mut Emitter<'_, '_>) {
    for item in values.get_or_null("secret").items() {
        if let Some(name) = item.str_at(&["envName"]) {
            note_connection_env(name, e);
        }
    }
    if let Some(text) = values.str_at(&["extraEnv"]).filter(|t| !t.contains("{{")) {
        if let Ok(docs) = crate::yaml::parse_stream(text, "values.extraEnv") {
            for item in docs.iter().filter_map(|d| d.as_array()).flatten() {
                if let Some(name) = item["name"].as_str() {
                    note_connection_env(name, e);
                }
            }
        }
    }
    // extraEnvFrom / extraSecrets: connections named by keys of the chart's extraSecrets.
    for (_, spec) in values.get_or_null("extraSecrets").entries() {
        for field in ["data", "stringData"] {
            if let Some(text) = spec.str_at(&[field]) {
                for line in text.lines() {
                    if let Some((k, _)) = line.trim_start().split_once(':') {
                        note_connection_env(k.trim().trim_matches(['\'', '"']), e);
                    }
                }
            }
        }
    }
    let Some(list) = values.at(&["dagProcessor", "dagBundleConfigList"]) else {
        return;
    };
    for item in list.items() {
        let classpath = item.str_at(&["classpath"]).unwrap_or("");
        if !classpath.ends_with(".GitDagBundle") {
            continue;
        }
        let name = item.str_at(&["name"]).unwrap_or("?");
        let id = item
            .str_at(&["kwargs", "git_conn_id"])
            .unwrap_or("git_default");
        pend_bundle_connection(name, id, item.line, e);
    }
}
