//! The Apache Airflow chart on Airflow 3's GitDagBundle instead of its git-sync sidecar: the
//! values a fresh install sets, and the move of an existing HelmRelease off `dags.gitSync`.
//!
//! What the chart does with the values (chart 1.x `values.yaml` and `templates/`, checked for
//! 1.17-1.22): `dagProcessor.dagBundleConfigList` is rendered as JSON into
//! `[dag_processor] dag_bundle_config_list` of the chart's `airflow.cfg` ConfigMap, which every
//! Airflow container mounts; the top-level `volumes`, `volumeMounts` and `extraEnv` are added to
//! every Airflow container (scheduler, dag-processor, triggerer, workers, api-server, and the
//! KubernetesExecutor pod template); `extraConfigMaps` are ConfigMaps the chart creates.
//!
//! Which components clone the bundle: the dag-processor (it clones and parses the DAGs), every
//! worker and KubernetesExecutor task pod (a task runs the bundle version its DAG run recorded, so
//! the task process clones that version itself), and the triggerer (it runs task code for
//! deferred tasks). The scheduler and api-server read DAGs from the database, but they build the
//! same bundle manager from the same config; sealkey mounts the key into every Airflow container
//! through the top-level values so that no component the chart adds later misses it.
//!
//! The `git` connection holds no secret: it names the mounted files (`key_file`,
//! `known_hosts_file`) and turns host-key checking on (`strict_host_key_checking: yes`); the key
//! itself is only in the Secret, mounted read-only (mode 0440: the Airflow user, uid 50000, is in
//! group 0, the group the chart's pods run with).

use super::merge::Owned;
use crate::error::{Error, Result};
use crate::known_hosts::{KnownHosts, KnownHostsSource};
use serde_json::{json, Map, Value};

/// Where the key and known_hosts are mounted in every Airflow container.
pub const MOUNT_DIR: &str = super::airflow::BUNDLE_SECRET_DIR;

/// The name of the volume sealkey adds to `values.volumes`.
pub const VOLUME_NAME: &str = "git-bundle-ssh";

/// The GitDagBundle class.
pub const GIT_DAG_BUNDLE: &str = "airflow.providers.git.bundles.git.GitDagBundle";

/// Mode of the mounted files: readable by owner root and group 0 (the Airflow user's group).
pub const FILE_MODE: u32 = 0o440;

/// Everything the chart values for one GitDagBundle need. No secret in here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BundleValues {
    /// The bundle's name (shown in the UI as the DAGs' source).
    pub bundle_name: String,
    /// The clone URL (the connection's `host`).
    pub repo_url: String,
    /// Branch, tag or full commit SHA.
    pub tracking_ref: String,
    /// Sub-directory of the repository holding the DAGs.
    pub subdir: Option<String>,
    /// Seconds between refreshes (Airflow's default when `None`).
    pub refresh_interval: Option<u64>,
    /// The Secret holding the private key.
    pub key_secret: String,
    /// Its data key holding the private key.
    pub key_field: String,
    /// The ConfigMap (created by the chart from `extraConfigMaps`) holding `known_hosts`.
    pub known_hosts_config_map: String,
    /// The known_hosts text.
    pub known_hosts: String,
    /// The Airflow connection id.
    pub conn_id: String,
}

impl BundleValues {
    /// The environment variable Airflow reads the connection from.
    pub fn env_name(&self) -> String {
        format!("AIRFLOW_CONN_{}", self.conn_id.to_ascii_uppercase())
    }

    /// The `git` connection (JSON form): files under [`MOUNT_DIR`], host-key checking on.
    pub fn connection(&self) -> Value {
        json!({
            "conn_type": "git",
            "host": self.repo_url,
            "extra": {
                "key_file": format!("{MOUNT_DIR}/ssh"),
                "known_hosts_file": format!("{MOUNT_DIR}/known_hosts"),
                "strict_host_key_checking": "yes",
            },
        })
    }

    /// One `dagBundleConfigList` entry.
    pub fn bundle(&self) -> Value {
        let mut kwargs = Map::new();
        kwargs.insert("git_conn_id".into(), json!(self.conn_id));
        kwargs.insert("tracking_ref".into(), json!(self.tracking_ref));
        if let Some(s) = &self.subdir {
            kwargs.insert("subdir".into(), json!(s));
        }
        if let Some(r) = self.refresh_interval {
            kwargs.insert("refresh_interval".into(), json!(r));
        }
        json!({ "name": self.bundle_name, "classpath": GIT_DAG_BUNDLE, "kwargs": kwargs })
    }

    /// The `values.volumes` entry: the key (as `ssh`) and known_hosts in one read-only directory.
    pub fn volume(&self) -> Value {
        json!({
            "name": VOLUME_NAME,
            "projected": {
                "defaultMode": FILE_MODE,
                "sources": [
                    { "secret": { "name": self.key_secret,
                                  "items": [{ "key": self.key_field, "path": "ssh" }] } },
                    { "configMap": { "name": self.known_hosts_config_map,
                                     "items": [{ "key": "known_hosts", "path": "known_hosts" }] } },
                ],
            },
        })
    }

    /// The `values.volumeMounts` entry (no `subPath`: those never see a rotated key).
    pub fn volume_mount(&self) -> Value {
        json!({ "name": VOLUME_NAME, "mountPath": MOUNT_DIR, "readOnly": true })
    }

    /// The `values.extraEnv` item (the chart takes extraEnv as a YAML string).
    pub fn env_item(&self) -> Value {
        json!({ "name": self.env_name(), "value": self.connection().to_string() })
    }

    /// The `values.extraConfigMaps` entry (its `data` is a YAML string, as the chart takes it).
    pub fn known_hosts_entry(&self) -> Value {
        let data = crate::yaml::to_yaml(&json!({ "known_hosts": self.known_hosts }));
        json!({ "data": data.as_str() })
    }

    /// The values fragment of a fresh install: git-sync off, the bundle, the connection, the
    /// known_hosts ConfigMap and the mount.
    pub fn values(&self) -> Value {
        let mut cms = Map::new();
        cms.insert(
            self.known_hosts_config_map.clone(),
            self.known_hosts_entry(),
        );
        json!({
            "dags": { "gitSync": { "enabled": false } },
            "dagProcessor": { "dagBundleConfigList": [self.bundle()] },
            "extraEnv": extra_env_text(&[self.env_item()]),
            "extraConfigMaps": cms,
            "volumes": [self.volume()],
            "volumeMounts": [self.volume_mount()],
        })
    }
}

fn extra_env_text(items: &[Value]) -> String {
    crate::yaml::to_yaml(&Value::Array(items.to_vec())).to_string()
}

/// What a migration found, as lines for the user.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MigrationReport {
    /// `values.X`: what was set, one line each.
    pub changed: Vec<String>,
    /// git-sync settings that have no bundle equivalent or were translated with a caveat, by name.
    pub reported: Vec<String>,
    /// What the user must check before and after rolling it out.
    pub checks: Vec<String>,
    /// How to roll back.
    pub rollback: Vec<String>,
}

/// A planned migration: the values to set (for the line-preserving merge) and the report.
#[derive(Clone, Debug)]
pub struct Migration {
    /// The bundle as translated from `dags.gitSync`.
    pub bundle: BundleValues,
    /// The values to set, each a path from the HelmRelease's root.
    pub owned: Vec<Owned>,
    /// What to tell the user.
    pub report: MigrationReport,
}

/// How to migrate: the choices a user may make.
#[derive(Clone, Debug)]
pub struct MigrateOptions {
    /// Airflow connection id.
    pub conn_id: String,
    /// Bundle name (`None`: the repository's name).
    pub bundle_name: Option<String>,
    /// Host keys to use when `dags.gitSync.knownHosts` is unset (and to check it against).
    pub known_hosts: Option<KnownHosts>,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        Self {
            conn_id: "git_default".into(),
            bundle_name: None,
            known_hosts: None,
        }
    }
}

// git-sync settings: translated, without equivalent (reported), or refused.
const TRANSLATED: &[&str] = &[
    "enabled",
    "repo",
    "branch",
    "ref",
    "rev",
    "subPath",
    "sshKeySecret",
    "knownHosts",
    "period",
    "wait",
];
const NO_EQUIVALENT: &[&str] = &[
    "depth",
    "maxFailures",
    "containerName",
    "uid",
    "securityContext",
    "securityContexts",
    "containerLifecycleHooks",
    "resources",
    "extraVolumeMounts",
    "emptyDirConfig",
    "livenessProbe",
    "readinessProbe",
    "startupProbe",
    "httpPort",
    "timeout",
];
const REFUSED: &[(&str, &str)] = &[
    ("sshKey", "the key is inline in the values; move it to its own Secret (sealed) and name it in sshKeySecret first"),
    ("credentialsSecret", "HTTPS credentials; this migration moves SSH deploy keys (put the token in a `git` connection's login/password by hand)"),
    ("env", "custom git-sync environment (e.g. GITSYNC_SUBMODULES) has no bundle equivalent"),
    ("envFrom", "custom git-sync environment has no bundle equivalent"),
    ("extraContainers", "a custom git-sync container has no bundle equivalent"),
    ("submodules", "GitDagBundle does not check out submodules the way git-sync does"),
    ("recurseSubmodules", "GitDagBundle does not check out submodules the way git-sync does"),
];

fn refuse(what: &str, problem: String) -> Error {
    Error::input(
        what,
        problem,
        "nothing was written; change the HelmRelease by hand for this setting, or remove it and run the migration again",
    )
}

/// Reads `dags.gitSync` of HelmRelease `doc` (plaintext) and plans the move to a GitDagBundle
/// that uses the same key Secret. Settings without an equivalent are named in the report;
/// settings that would change what is synced are refused (exit 2, nothing planned).
pub fn plan_migration(doc: &Value, what: &str, opts: &MigrateOptions) -> Result<Migration> {
    let values = &doc["spec"]["values"];
    let gs = &values["dags"]["gitSync"];
    let Some(gs_map) = gs.as_object() else {
        return Err(refuse(
            what,
            "has no spec.values.dags.gitSync: there is nothing to migrate".into(),
        ));
    };
    if !truthy(&gs["enabled"]) {
        return Err(refuse(
            what,
            "spec.values.dags.gitSync.enabled is not true: git-sync is not in use, there is nothing to migrate".into(),
        ));
    }
    let mut report = MigrationReport::default();
    for (k, v) in gs_map {
        if TRANSLATED.contains(&k.as_str()) {
            continue;
        }
        if let Some((_, why)) = REFUSED.iter().find(|(n, _)| n == k) {
            if is_set(v) {
                return Err(refuse(what, format!("dags.gitSync.{k} is set: {why}")));
            }
            continue;
        }
        if NO_EQUIVALENT.contains(&k.as_str()) {
            if is_set(v) {
                report.reported.push(format!(
                    "dags.gitSync.{k}: no bundle equivalent (it tuned the git-sync container); it stays in the file and no longer has an effect"
                ));
            }
            continue;
        }
        return Err(refuse(
            what,
            format!("dags.gitSync.{k} is a setting this migration does not know; it would be dropped silently"),
        ));
    }
    let repo = gs["repo"]
        .as_str()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| refuse(what, "dags.gitSync.repo is not set".into()))?;
    let key_secret = gs["sshKeySecret"]
        .as_str()
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            refuse(
                what,
                "dags.gitSync.sshKeySecret is not set: this migration moves an SSH deploy key, and there is none (a public HTTPS repository needs no connection: set repo_url in the bundle by hand)".into(),
            )
        })?;
    if !is_ssh_url(repo) {
        return Err(refuse(
            what,
            format!(
                "dags.gitSync.repo {repo:?} is not an SSH URL, but sshKeySecret names an SSH key"
            ),
        ));
    }

    // What git-sync followed, as one tracking_ref.
    let text = |k: &str| gs[k].as_str().map(str::trim).filter(|s| !s.is_empty());
    let tracking_ref = match (text("ref"), text("branch")) {
        (Some(r), Some(b)) if r != b => {
            return Err(refuse(
                what,
                format!("dags.gitSync.ref ({r}) and dags.gitSync.branch ({b}) differ: which one git-sync followed depends on its version; set one"),
            ))
        }
        (Some(r), _) => r.to_string(),
        (None, Some(b)) => b.to_string(),
        (None, None) => {
            return Err(refuse(
                what,
                "neither dags.gitSync.branch nor dags.gitSync.ref is set: the chart's default branch is Airflow's own; say which branch the DAGs are on".into(),
            ))
        }
    };
    let tracking_ref = match text("rev") {
        None | Some("HEAD") => tracking_ref,
        Some(rev) if rev.len() == 40 && rev.chars().all(|c| c.is_ascii_hexdigit()) => {
            report.reported.push(format!(
                "dags.gitSync.rev {rev}: a commit pin; tracking_ref is set to it instead of {tracking_ref} (changing a pinned tracking_ref needs the dag-processor restarted)"
            ));
            rev.to_string()
        }
        Some(rev) => {
            return Err(refuse(
                what,
                format!("dags.gitSync.rev {rev:?} is neither HEAD nor a full commit SHA: a bundle cannot pin it"),
            ))
        }
    };
    check_ref(&tracking_ref, what)?;

    let subdir = match gs.get("subPath") {
        Some(Value::String(s)) => {
            let s = s.trim_matches('/');
            (!s.is_empty() && s != ".").then(|| s.to_string())
        }
        Some(Value::Null) | None => {
            report.reported.push(
                "dags.gitSync.subPath is not set: the chart's default (tests/dags) was in effect; subdir is set to tests/dags as well".into(),
            );
            Some("tests/dags".into())
        }
        Some(other) => {
            return Err(refuse(
                what,
                format!("dags.gitSync.subPath is not a string ({other})"),
            ))
        }
    };
    if let Some(s) = &subdir {
        if s.split('/').any(|p| p == "..") || s.chars().any(char::is_control) {
            return Err(refuse(
                what,
                format!("dags.gitSync.subPath {s:?} leaves the repository"),
            ));
        }
    }

    let refresh_interval = match (text("period"), gs.get("wait").filter(|v| is_set(v))) {
        (Some(p), _) => {
            let secs = go_duration_secs(p).ok_or_else(|| {
                refuse(
                    what,
                    format!("dags.gitSync.period {p:?} is not a Go duration such as 5s or 1m30s"),
                )
            })?;
            if gs.get("wait").is_some_and(is_set) {
                report.reported.push(
                    "dags.gitSync.wait: ignored, period is set (git-sync v4 reads period)".into(),
                );
            }
            Some(secs)
        }
        (None, Some(w)) => {
            let secs = w
                .as_u64()
                .or_else(|| w.as_str().and_then(|s| s.trim().parse().ok()))
                .ok_or_else(|| {
                    refuse(
                        what,
                        format!("dags.gitSync.wait {w} is not a number of seconds"),
                    )
                })?;
            report.reported.push(format!(
                "dags.gitSync.wait {secs}: git-sync v3's seconds between syncs; refresh_interval is set to {secs}"
            ));
            Some(secs.max(1))
        }
        (None, None) => None,
    };

    // Host keys: the file's own when set (checked to cover the repository's host), else given.
    let (host, port) = ssh_endpoint(repo);
    let known_hosts = match text("knownHosts") {
        Some(kh) => {
            let parsed = KnownHosts::parse(
                kh,
                format!("{what} dags.gitSync.knownHosts"),
                KnownHostsSource::File("dags.gitSync.knownHosts".into()),
            )?;
            if !parsed.covers(&host, port) {
                return Err(refuse(
                    what,
                    format!("dags.gitSync.knownHosts has no line for {host}, the repository's host: git would refuse it"),
                ));
            }
            parsed.to_text()
        }
        None => {
            let given = opts
                .known_hosts
                .clone()
                .or_else(|| (host == "github.com").then(KnownHosts::github_pinned));
            let Some(kh) = given.filter(|k| k.covers(&host, port)) else {
                return Err(Error::input(
                    what,
                    format!("dags.gitSync.knownHosts is not set (git-sync checked no host key) and sealkey has no host keys for {host}"),
                    crate::message!("give them with {} FILE (e.g. from `ssh-keyscan {}`); nothing was written", crate::error::Setting::KnownHosts, host.clone()),
                ));
            };
            report.reported.push(format!(
                "dags.gitSync.knownHosts was not set, so git-sync accepted any host key; the bundle checks against {} host keys ({})",
                host,
                kh.source_label()
            ));
            kh.to_text()
        }
    };

    let bundle_name = match &opts.bundle_name {
        Some(n) => n.clone(),
        None => repo_name(repo).unwrap_or_else(|| "dags".into()),
    };
    let bundle = BundleValues {
        bundle_name,
        repo_url: repo.to_string(),
        tracking_ref,
        subdir,
        refresh_interval,
        key_secret: key_secret.to_string(),
        key_field: "gitSshKey".into(),
        known_hosts_config_map: format!("{key_secret}-known-hosts"),
        known_hosts,
        conn_id: opts.conn_id.clone(),
    };
    // git-sync's settings were quoted into its container; the bundle's go into `config`, which
    // the chart runs through Helm's `tpl`: a `{{` there would run as a template action.
    for (setting, value) in [
        ("dags.gitSync.repo", Some(&bundle.repo_url)),
        (
            "dags.gitSync.branch / ref / rev",
            Some(&bundle.tracking_ref),
        ),
        ("dags.gitSync.subPath", bundle.subdir.as_ref()),
    ] {
        if value.is_some_and(|v| v.contains("{{")) {
            return Err(refuse(
                what,
                format!("{setting} contains `{{{{`: the bundle's settings go into the chart's config, which Helm runs through `tpl`, so it would run as a template action (git-sync's container only quoted it)"),
            ));
        }
    }
    let owned = owned_values(values, &bundle, what, &mut report)?;

    let airflow = values["airflowVersion"]
        .as_str()
        .or(values["defaultAirflowTag"].as_str());
    match airflow.and_then(|v| v.trim_start_matches('v').split('.').next()?.parse::<u32>().ok()) {
        Some(major) if major < 3 => {
            return Err(refuse(
                what,
                format!("airflowVersion {} is before Airflow 3: DAG bundles are an Airflow 3 feature", airflow.unwrap_or_default()),
            ))
        }
        Some(_) => {}
        None => report.checks.push("airflowVersion is not set in the values: make sure the chart deploys Airflow 3 (DAG bundles are an Airflow 3 feature)".into()),
    }
    if truthy(&values["dags"]["persistence"]["enabled"]) {
        report.reported.push("dags.persistence.enabled is true: bundles do not need the shared DAG volume; left as is (turn it off when nothing else uses it)".into());
    }
    report.checks.extend([
        "every Airflow component restarts (the chart's config changes); roll out when a restart is acceptable".to_string(),
        "the Airflow image must hold apache-airflow-providers-git and the git binary (official images from 3.0.2 have git)".to_string(),
        "DAG file paths change: git-sync's /opt/airflow/dags/repo/<subPath> becomes the bundle's own checkout; code that reads files by absolute path, and the fileloc of existing DAGs, change".to_string(),
        format!("after the rollout: the dag-processor log shows bundle {} cloned, and DAGs list {} as their bundle", bundle.bundle_name, bundle.bundle_name),
        format!("the key Secret {} is used as it is (key {}); it must exist in the release's namespace", bundle.key_secret, bundle.key_field),
    ]);
    report.rollback.extend([
        "before committing: restore the file from git (git checkout -- FILE); after: git revert the commit".to_string(),
        "the old settings are still under dags.gitSync: setting dags.gitSync.enabled back to true and removing the values listed as set brings git-sync back".to_string(),
        "the key Secret was not changed, so rolling back needs no new key".to_string(),
    ]);
    Ok(Migration {
        bundle,
        owned,
        report,
    })
}

/// Moves the one HelmRelease of `text` off `dags.gitSync`: plain, or SOPS-encrypted (opened with
/// `identities`, owned values encrypted where the file's rule says, MAC renewed). Every line
/// outside the set values stays byte for byte; the result is proven to read back as the original
/// with exactly those values set, or nothing is returned. Returns the new text and the plan.
pub fn migrate_text(
    text: &str,
    what: &str,
    opts: &MigrateOptions,
    identities: &[crate::seal::age::Identity],
    now: jiff::Timestamp,
) -> Result<(String, Migration)> {
    if crate::seal::sops::looks_like_sops(text.as_bytes()) {
        if identities.is_empty() {
            return Err(Error::input(
                what,
                "it is SOPS-encrypted: the migration needs its data key (to read dags.gitSync, encrypt what its rule encrypts and renew its MAC)",
                crate::message!("add {} FILE with an age identity of one of its recipients", crate::error::Setting::Identity),
            ));
        }
        let plain = crate::seal::sops::unseal(text, what, identities)?;
        let mut docs = crate::yaml::parse_stream(plain.expose_secret(), what)?;
        let planned = match docs.iter().find(|d| d["kind"] == "HelmRelease") {
            Some(hr) => plan_migration(hr, what, opts),
            None => Err(refuse(what, "holds no HelmRelease".into())),
        };
        for d in &mut docs {
            crate::secret::wipe_value(d);
        }
        let plan = planned?;
        let out = crate::seal::sops::set_in_sealed_helm_release(
            text,
            what,
            identities,
            &plan.owned,
            now,
        )?;
        Ok((out, plan))
    } else {
        let docs = crate::yaml::parse_stream(text, what)?;
        let hrs: Vec<&Value> = docs.iter().filter(|d| d["kind"] == "HelmRelease").collect();
        let [hr] = hrs[..] else {
            return Err(refuse(
                what,
                format!("holds {} HelmRelease objects, not one", hrs.len()),
            ));
        };
        let plan = plan_migration(hr, what, opts)?;
        let out = super::merge::merge_lines(text, what, &plan.owned, &[], false)?;
        Ok((out, plan))
    }
}

/// The values to set: git-sync off, the bundle, the env item, the ConfigMap, the mount. Lists
/// and strings the file already has are kept and extended (reported as rewritten).
fn owned_values(
    values: &Value,
    b: &BundleValues,
    what: &str,
    report: &mut MigrationReport,
) -> Result<Vec<Owned>> {
    fn p<'a>(k: &[&'a str]) -> Vec<&'a str> {
        [&["spec", "values"][..], k].concat()
    }
    let mut owned = vec![Owned::new(
        &p(&["dags", "gitSync", "enabled"]),
        Value::Bool(false),
    )];
    report
        .changed
        .push("dags.gitSync.enabled: false (its other settings stay, for a rollback)".into());

    let mut list = existing_list(values, &["dagProcessor", "dagBundleConfigList"], what)?;
    if list.iter().any(|e| e["name"] == b.bundle_name.as_str()) {
        return Err(refuse(
            what,
            format!(
                "dagProcessor.dagBundleConfigList already has a bundle named {}",
                b.bundle_name
            ),
        ));
    }
    if list.is_empty() {
        report.changed.push(format!("dagProcessor.dagBundleConfigList: bundle {} (GitDagBundle; replaces the chart's default dags-folder bundle, which read git-sync's checkout)", b.bundle_name));
    } else {
        report.changed.push(format!("dagProcessor.dagBundleConfigList: bundle {} added after the {} already there (the list is rewritten)", b.bundle_name, list.len()));
    }
    list.push(b.bundle());
    owned.push(Owned::new(
        &p(&["dagProcessor", "dagBundleConfigList"]),
        Value::Array(list),
    ));

    let mut env_items = match &values["extraEnv"] {
        Value::Null => Vec::new(),
        Value::String(s) if s.trim().is_empty() => Vec::new(),
        Value::String(s) => match crate::yaml::parse_stream(s, "values.extraEnv")?.as_slice() {
            [Value::Array(items)] => items.clone(),
            _ => {
                return Err(refuse(
                    what,
                    "values.extraEnv is not a YAML list of env items (it may be templated): add the connection by hand".into(),
                ))
            }
        },
        _ => {
            return Err(refuse(
                what,
                "values.extraEnv is not a string (the chart takes a YAML string)".into(),
            ))
        }
    };
    if values["extraEnv"]
        .as_str()
        .is_some_and(|s| s.contains("{{"))
    {
        return Err(refuse(
            what,
            "values.extraEnv is templated: add the connection by hand".into(),
        ));
    }
    let env_name = b.env_name();
    let defined_elsewhere = |v: &Value| {
        v.as_array()
            .is_some_and(|a| a.iter().any(|e| e["name"] == env_name.as_str()))
    };
    if defined_elsewhere(&Value::Array(env_items.clone())) || defined_elsewhere(&values["env"]) {
        return Err(refuse(
            what,
            format!("{env_name} is already defined in values.env or values.extraEnv: pick another connection id"),
        ));
    }
    report.changed.push(if env_items.is_empty() {
        format!("extraEnv: {env_name}, the git connection (file paths and strict_host_key_checking yes; no key)")
    } else {
        format!("extraEnv: {env_name} added after the {} items already there (the string is rewritten)", env_items.len())
    });
    env_items.push(b.env_item());
    owned.push(Owned::new(
        &p(&["extraEnv"]),
        Value::String(extra_env_text(&env_items)),
    ));

    if values["extraConfigMaps"]
        .get(&b.known_hosts_config_map)
        .is_some()
    {
        return Err(refuse(
            what,
            format!(
                "values.extraConfigMaps already has {}",
                b.known_hosts_config_map
            ),
        ));
    }
    owned.push(Owned::new(
        &p(&["extraConfigMaps", &b.known_hosts_config_map]),
        b.known_hosts_entry(),
    ));
    report.changed.push(format!(
        "extraConfigMaps.{}: the known_hosts the bundle checks host keys against",
        b.known_hosts_config_map
    ));

    for (key, item) in [("volumes", b.volume()), ("volumeMounts", b.volume_mount())] {
        let mut list = existing_list(values, &[key], what)?;
        if list.iter().any(|e| e["name"] == VOLUME_NAME) {
            return Err(refuse(
                what,
                format!("values.{key} already has an entry named {VOLUME_NAME}"),
            ));
        }
        report.changed.push(if list.is_empty() && key == "volumes" {
            format!("{key}: {VOLUME_NAME} (Secret {} key {} as ssh, and known_hosts, mode 0440) for every Airflow container", b.key_secret, b.key_field)
        } else if list.is_empty() {
            format!("{key}: {VOLUME_NAME} read-only at {MOUNT_DIR} in every Airflow container")
        } else {
            format!("{key}: {VOLUME_NAME} added after the {} entries already there (the list is rewritten)", list.len())
        });
        list.push(item);
        owned.push(Owned::new(&p(&[key]), Value::Array(list)));
    }
    Ok(owned)
}

fn existing_list(values: &Value, path: &[&str], what: &str) -> Result<Vec<Value>> {
    let mut v = values;
    for k in path {
        v = &v[*k];
    }
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(a) => Ok(a.clone()),
        _ => Err(refuse(
            what,
            format!("values.{} is not a list", path.join(".")),
        )),
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Bool(b) => *b,
        Value::String(s) => matches!(s.to_ascii_lowercase().as_str(), "true" | "yes" | "on"),
        _ => false,
    }
}

fn is_set(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.trim().is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
        _ => true,
    }
}

fn is_ssh_url(url: &str) -> bool {
    url.starts_with("ssh://") || (!url.contains("://") && url.contains('@') && url.contains(':'))
}

/// Host and port (when not 22) of an SSH clone URL.
fn ssh_endpoint(url: &str) -> (String, Option<u16>) {
    if let Ok(parsed) = url::Url::parse(url) {
        if let Some(host) = parsed.host_str() {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            return (host.to_string(), parsed.port().filter(|p| *p != 22));
        }
    }
    let rest = url.split_once('@').map_or(url, |(_, r)| r);
    (rest.split(':').next().unwrap_or(rest).to_string(), None)
}

/// `acme/dags.git` -> `dags`, as a Kubernetes-style name.
fn repo_name(url: &str) -> Option<String> {
    let last = url.trim_end_matches('/').rsplit(['/', ':']).next()?;
    let name: String = last
        .trim_end_matches(".git")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    (!name.is_empty()).then_some(name)
}

fn check_ref(r: &str, what: &str) -> Result<()> {
    let bad = r.starts_with(['-', '/', '.'])
        || r.contains("..")
        || r.contains("@{")
        || r.chars()
            .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c));
    if bad {
        return Err(refuse(what, format!("{r:?} is not a ref git accepts")));
    }
    Ok(())
}

/// Seconds in a Go duration (`5s`, `1m30s`, `2h`, `500ms`: rounded up to whole seconds, at
/// least 1).
pub fn go_duration_secs(text: &str) -> Option<u64> {
    let mut rest = text.trim();
    if rest.is_empty() {
        return None;
    }
    if rest == "0" {
        return Some(1);
    }
    let mut total_ms: u128 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if digits == 0 {
            return None;
        }
        let number: f64 = rest[..digits].parse().ok()?;
        rest = &rest[digits..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ns" => 1e-6,
            "us" | "µs" => 1e-3,
            "ms" => 1.0,
            "s" => 1e3,
            "m" => 60e3,
            "h" => 3600e3,
            _ => return None,
        };
        rest = &rest[unit_len..];
        total_ms += (number * factor).ceil() as u128;
    }
    Some(total_ms.div_ceil(1000).max(1) as u64)
}

/// A unified-style diff of two texts (`-`/`+` lines with one line of context), for `--dry-run`.
pub fn line_diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // Common prefix and suffix first: the merge edits few places, so the LCS table stays small.
    let pre = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suf = a[pre..]
        .iter()
        .rev()
        .zip(b[pre..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (am, bm) = (&a[pre..a.len() - suf], &b[pre..b.len() - suf]);
    let mut ops: Vec<(char, &str)> = a[..pre].iter().map(|l| (' ', *l)).collect();
    if am.len().saturating_mul(bm.len()) <= 4_000_000 {
        let (n, m) = (am.len(), bm.len());
        let mut t = vec![vec![0u32; m + 1]; n + 1];
        for i in (0..n).rev() {
            for j in (0..m).rev() {
                t[i][j] = if am[i] == bm[j] {
                    t[i + 1][j + 1] + 1
                } else {
                    t[i + 1][j].max(t[i][j + 1])
                };
            }
        }
        let (mut i, mut j) = (0, 0);
        while i < n || j < m {
            if i < n && j < m && am[i] == bm[j] {
                ops.push((' ', am[i]));
                i += 1;
                j += 1;
            } else if i < n && (j == m || t[i + 1][j] >= t[i][j + 1]) {
                ops.push(('-', am[i]));
                i += 1;
            } else {
                ops.push(('+', bm[j]));
                j += 1;
            }
        }
    } else {
        ops.extend(am.iter().map(|l| ('-', *l)));
        ops.extend(bm.iter().map(|l| ('+', *l)));
    }
    ops.extend(a[a.len() - suf..].iter().map(|l| (' ', *l)));
    let mut out = String::new();
    let mut line_no = 0;
    let mut last_printed: Option<usize> = None;
    for (k, (op, text)) in ops.iter().enumerate() {
        let near = |d: isize| {
            ops.get((k as isize + d).max(0) as usize)
                .is_some_and(|(o, _)| *o != ' ')
        };
        if *op != ' ' || near(1) || near(-1) {
            if last_printed.is_none_or(|p| p + 1 != k) {
                out.push_str(&format!("@@ line {} @@\n", line_no + 1));
            }
            out.push(*op);
            out.push_str(text);
            out.push('\n');
            last_printed = Some(k);
        }
        if *op != '+' {
            line_no += 1;
        }
    }
    if out.is_empty() {
        out.push_str("(no change)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations_become_whole_seconds() {
        assert_eq!(go_duration_secs("5s"), Some(5));
        assert_eq!(go_duration_secs("1m30s"), Some(90));
        assert_eq!(go_duration_secs("2h"), Some(7200));
        assert_eq!(go_duration_secs("500ms"), Some(1));
        assert_eq!(go_duration_secs("1.5s"), Some(2));
        assert_eq!(go_duration_secs("5"), None);
        assert_eq!(go_duration_secs("soon"), None);
        assert_eq!(go_duration_secs(""), None);
    }

    #[test]
    fn repo_names() {
        assert_eq!(
            repo_name("git@github.com:acme/dags.git").as_deref(),
            Some("dags")
        );
        assert_eq!(
            repo_name("ssh://git@127.0.0.1:2222/srv/My.Dags.git").as_deref(),
            Some("my-dags")
        );
    }

    #[test]
    fn the_diff_shows_only_changed_lines_with_context() {
        let d = line_diff("a\nb\nc\nd\n", "a\nb\nX\nd\ne\n");
        assert_eq!(d, "@@ line 2 @@\n b\n-c\n+X\n d\n+e\n", "{d}");
        let d = line_diff("a\nb\nc\nd\ne\nf\n", "A\nb\nc\nd\ne\nF\n");
        assert_eq!(
            d, "@@ line 1 @@\n-a\n+A\n b\n@@ line 5 @@\n e\n-f\n+F\n",
            "{d}"
        );
    }
}
