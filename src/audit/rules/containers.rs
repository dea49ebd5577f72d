//! Per-container rules: how env vars and mounts read Secrets (SK001-SK004, SK006-SK009).

use super::*;

pub(super) fn audit_env<'n>(c: &'n Node, cname: &'n str, e: &mut Emitter<'_, '_>) {
    for var in c.get_or_null("env").items() {
        let vname = var.str_at(&["name"]).unwrap_or("<unnamed>");
        note_connection_env(vname, e);
        if let ("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", Some(list)) =
            (vname, var.str_at(&["value"]))
        {
            audit_bundle_list_json(list, var.line, e);
        }
        if let Some(r) = var.at(&["valueFrom", "secretKeyRef"]) {
            let secret = r.str_at(&["name"]).unwrap_or("<unnamed>");
            let key = r.str_at(&["key"]);
            e.emit(
                Rule::Sk001,
                Severity::Warning,
                format!(
                    "env {vname} of container {cname} in {} takes key {} of Secret {secret}",
                    e.what(),
                    key.unwrap_or("?")
                ),
                At {
                    secret: Some(secret),
                    key,
                    ..At::env_var(var.line, cname, vname)
                },
            );
        } else if let Some(value) = var.str_at(&["value"]) {
            if let Some(conn) = vname.strip_prefix("AIRFLOW_CONN_") {
                if let Some((severity, why)) = airflow_git_connection(value) {
                    e.emit(
                        Rule::Sk013,
                        severity,
                        format!(
                            "env {vname} of container {cname} in {}: Airflow git connection {} {why}",
                            e.what(),
                            conn.to_ascii_lowercase()
                        ),
                        At::env_var(var.line, cname, vname),
                    );
                }
                let described = format!("env {vname} of container {cname} in {}", e.what());
                audit_git_connection(
                    value,
                    ConnPlace::EnvValue,
                    &described,
                    conn,
                    At::env_var(var.line, cname, vname),
                    e,
                );
            }
            if is_private_key_text(value) || is_private_key_base64(value) {
                e.emit(
                    Rule::Sk007,
                    Severity::Error,
                    format!(
                        "env {vname} of container {cname} in {} holds a {}",
                        e.what(),
                        private_key_noun(vname)
                    ),
                    At::env_var(var.line, cname, vname),
                );
            } else if let Some(why) = literal_credential(vname, value) {
                e.emit(
                    Rule::Sk004,
                    Severity::Error,
                    format!(
                        "env {vname} of container {cname} in {} holds a literal credential ({why})",
                        e.what()
                    ),
                    At::env_var(var.line, cname, vname),
                );
            }
        }
    }
    for from in c.get_or_null("envFrom").items() {
        if let Some(r) = from.get("secretRef") {
            let secret = r.str_at(&["name"]).unwrap_or("<unnamed>");

            e.emit(
                Rule::Sk002,
                Severity::Warning,
                format!(
                    "container {cname} in {} puts every key of Secret {secret} into its environment",
                    e.what()
                ),
                At {
                    line: from.line,
                    container: Some(cname),
                    secret: Some(secret),
                    ..At::default()
                },
            );
        }
    }
}

pub(super) fn audit_mounts<'n>(
    c: &'n Node,
    cname: &'n str,
    volumes: &VolumesByName<'_, 'n>,
    fs_group: bool,
    e: &mut Emitter<'_, '_>,
) {
    // One SK003 per (volume, Secret) per container; its severity follows every place the
    // container mounts it (a key file at /etc/git-secret is key material whatever the volume
    // is called).
    let mut exposed_mounts: Vec<(&SecretVolume<'n>, bool)> = Vec::new();
    for mount in c.get_or_null("volumeMounts").items() {
        let Some(mname) = mount.str_at(&["name"]) else {
            continue;
        };
        for v in volumes.get(mname).into_iter().flatten() {
            let sub_path_node = ["subPath", "subPathExpr"]
                .iter()
                .filter_map(|k| mount.get(k))
                .find(|n| n.as_str().is_some_and(|s| !s.is_empty()));
            let sub_path = sub_path_node.and_then(Node::as_str);
            if let Some(sp) = sub_path_node {
                e.emit(
                    Rule::Sk009,
                    Severity::Info,
                    format!(
                        "container {cname} in {} mounts Secret {} with subPath: rotations never reach it",
                        e.what(),
                        v.secret
                    ),
                    At {
                        line: sp.line,
                        container: Some(cname),
                        secret: Some(v.secret),
                        key: sub_path,
                        ..At::default()
                    },
                );
            }
            let here = mount
                .str_at(&["mountPath"])
                .is_some_and(looks_like_key_material)
                || sub_path.is_some_and(looks_like_key_material);
            match exposed_mounts
                .iter_mut()
                .find(|(seen, _)| seen.volume == v.volume && seen.secret == v.secret)
            {
                Some((_, key)) => *key |= here,
                None => exposed_mounts.push((v, v.key_material || here)),
            }
        }
    }
    // Group-readable is the documented way to share a key with a non-root container when the
    // pod sets fsGroup (the files then belong to that group).
    let exposed = if fs_group { 0o004 } else { 0o044 };
    for (v, key_material) in exposed_mounts {
        if v.mode & exposed == 0 {
            continue;
        }
        let severity = if key_material {
            Severity::Error
        } else {
            Severity::Warning
        };
        e.emit(
            Rule::Sk003,
            severity,
            format!(
                "container {cname} in {} mounts Secret {} with file mode {:04o}: readable by {}",
                e.what(),
                v.secret,
                v.mode & 0o7777,
                match (v.mode & 0o040 != 0 && !fs_group, v.mode & 0o004 != 0) {
                    (true, true) => "group and others",
                    (false, true) => "others",
                    _ => "group",
                }
            ),
            At {
                line: v.line,
                container: Some(cname),
                secret: Some(v.secret),
                key: v.single_key,
                ..At::default()
            },
        );
    }
}
