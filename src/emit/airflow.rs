//! The Apache Airflow Helm chart (`dags.gitSync`) and Airflow 3's GitDagBundle connection.

use super::{b64, key_data, keys, mount, secret_object, secret_value, EmitSettings};
use crate::keygen::DeployKey;
use crate::known_hosts::KnownHosts;
use crate::secret::PrivateKeyPem;
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

/// The Secret the chart's `dags.gitSync.sshKeySecret` names; the chart requires key `gitSshKey`.
pub(crate) fn chart_secret(
    settings: &EmitSettings,
    key: &DeployKey,
    kh: &KnownHosts,
    pem: &PrivateKeyPem,
) -> Value {
    let data = key_data("gitSshKey", pem, None);
    secret_object(settings, key, kh, "Opaque", data)
}

/// `dags.gitSync` values: SSH repo URL, the key Secret and, always, `knownHosts` (without it the
/// chart sets GITSYNC_SSH_KNOWN_HOSTS=false and git-sync accepts any host key).
pub(crate) fn git_sync_values(settings: &EmitSettings, kh: &KnownHosts) -> Value {
    json!({
        "enabled": true,
        "repo": settings.repo_url(),
        "branch": settings.branch,
        // The chart's default subPath is "tests/dags" (Airflow's own repo): always say it.
        "subPath": settings.sub_path.clone().unwrap_or_default(),
        "sshKeySecret": settings.secret_name(),
        "knownHosts": kh.to_text(),
    })
}

/// A Flux `helm.toolkit.fluxcd.io/v2` HelmRelease for the chart; `extra` goes into `values`.
pub(crate) fn helm_release(
    settings: &EmitSettings,
    key: &DeployKey,
    kh: &KnownHosts,
    extra: Option<(&str, Value)>,
) -> Value {
    let (src_ns, src_name) = settings
        .chart_source
        .split_once('/')
        .unwrap_or(("flux-system", "apache-airflow"));
    let mut values = Map::new();
    if let Some((k, v)) = extra {
        values.insert(k.into(), v);
    }
    if settings.dag_bundle {
        if let Value::Object(m) = bundle_values(settings, kh).values() {
            values.extend(m);
        }
    } else {
        values.insert(
            "dags".into(),
            json!({ "gitSync": git_sync_values(settings, kh) }),
        );
    }
    json!({
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "metadata": settings.metadata(&settings.release_name, key, kh),
        "spec": {
            "interval": "5m",
            "releaseName": settings.release_name,
            "chart": { "spec": {
                "chart": "airflow",
                "version": settings.chart_version,
                "sourceRef": { "kind": "HelmRepository", "name": src_name, "namespace": src_ns },
            }},
            "values": Value::Object(values),
        },
    })
}

/// The seed's shape: the key inside `values.extraSecrets.NAME.data` (a string the chart renders
/// as the Secret's `data`), so the whole HelmRelease must be sealed.
pub(crate) fn extra_secrets_release(
    settings: &EmitSettings,
    key: &DeployKey,
    kh: &KnownHosts,
    pem: &PrivateKeyPem,
) -> Value {
    let encoded = b64(pem.expose_secret().as_bytes());
    let mut data = Zeroizing::new(String::with_capacity(encoded.len() + 16));
    data.push_str("gitSshKey: '");
    data.push_str(&encoded);
    data.push_str("'\n");
    let mut entry = Map::new();
    entry.insert("data".into(), secret_value(data));
    let mut secrets = Map::new();
    secrets.insert(settings.secret_name(), Value::Object(entry));
    let mut release = helm_release(
        settings,
        key,
        kh,
        Some(("extraSecrets", Value::Object(secrets))),
    );
    release["metadata"]["annotations"][keys::CONSUMER] = json!("airflow-chart/extra-secrets");
    release
}

/// Where the bundle's key and host keys are mounted in Airflow's containers.
pub(crate) const BUNDLE_SECRET_DIR: &str = "/opt/airflow/git-secret";

fn bundle_config_map_name(settings: &EmitSettings) -> String {
    format!("{}-git-bundle", settings.release_name)
}

/// The key Secret (`ssh`, `known_hosts`, mounted as files) and a ConfigMap holding the `git`
/// connection and the GitDagBundle list. The connection points at the mounted files with
/// `strict_host_key_checking: yes` (the provider's default is `no`), so no secret is in env.
pub(crate) fn git_bundle_objects(
    settings: &EmitSettings,
    key: &DeployKey,
    kh: &KnownHosts,
    pem: &PrivateKeyPem,
) -> Vec<Value> {
    let data = key_data("ssh", pem, Some(kh));
    let secret = secret_object(settings, key, kh, "Opaque", data);

    let conn = json!({
        "conn_type": "git",
        "host": settings.repo_url(),
        "extra": {
            "key_file": format!("{BUNDLE_SECRET_DIR}/ssh"),
            "known_hosts_file": format!("{BUNDLE_SECRET_DIR}/known_hosts"),
            "strict_host_key_checking": "yes",
        },
    });
    let mut kwargs = json!({ "git_conn_id": settings.conn_id, "tracking_ref": settings.branch });
    if let Some(sub) = &settings.sub_path {
        kwargs["subdir"] = json!(sub);
    }
    let bundles = json!([{
        "name": settings.repo.k8s_name(),
        "classpath": "airflow.providers.git.bundles.git.GitDagBundle",
        "kwargs": kwargs,
    }]);
    let env_name = format!("AIRFLOW_CONN_{}", settings.conn_id.to_ascii_uppercase());
    let mut cm_data = Map::new();
    cm_data.insert(env_name, json!(conn.to_string()));
    cm_data.insert(
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST".into(),
        json!(bundles.to_string()),
    );
    let cm = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": settings.metadata(&bundle_config_map_name(settings), key, kh),
        "data": Value::Object(cm_data),
    });
    vec![secret, cm]
}

/// Mounts the key Secret at /opt/airflow/git-secret and loads the connection ConfigMap with envFrom.
pub(crate) fn git_bundle_mount_patch(settings: &EmitSettings) -> Value {
    let mode = if settings.fs_group.is_some() {
        0o440
    } else {
        0o400
    };
    let mut patch = mount::patch(
        settings,
        &settings.secret_name(),
        "git-secret",
        BUNDLE_SECRET_DIR,
        mode,
        json!([]),
    );
    patch["spec"]["template"]["spec"]["containers"][0]["envFrom"] =
        json!([{ "configMapRef": { "name": bundle_config_map_name(settings) } }]);
    patch
}

/// The chart's GitDagBundle values for a fresh install: the chart's key Secret (`gitSshKey`),
/// known_hosts in a ConfigMap the chart makes, both mounted into every Airflow container.
pub(crate) fn bundle_values(
    settings: &EmitSettings,
    kh: &KnownHosts,
) -> super::dag_bundle::BundleValues {
    super::dag_bundle::BundleValues {
        bundle_name: settings.repo.k8s_name(),
        repo_url: settings.repo_url(),
        tracking_ref: settings.branch.clone(),
        subdir: settings.sub_path.clone(),
        refresh_interval: settings.refresh_interval,
        key_secret: settings.secret_name(),
        key_field: "gitSshKey".into(),
        known_hosts_config_map: format!("{}-known-hosts", settings.secret_name()),
        known_hosts: kh.to_text(),
        conn_id: settings.conn_id.clone(),
    }
}
