//! The rules: one pass over each object, one finding per usage (see `docs/audit-rules.md`).
//!
//! Objects come from files (with lines) or from the cluster (without); both go through the same
//! code, so the two modes find the same things on the same objects. No finding carries a value.

use super::doc::{documents_within, Budget, Node};
use super::model::{Finding, Rule, SecretDecl, Severity, Usage, Via};
use base64::Engine as _;
use std::collections::{BTreeMap, HashMap, HashSet};
use zeroize::Zeroizing;

/// Where objects come from, which decides two things: whether files are "meant for commit"
/// (SK006) and whether Pods and ReplicaSets owned by a controller are skipped (the cluster holds
/// both the Deployment and its Pods; files normally hold only the Deployment).
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    /// The file, for file input.
    pub file: Option<&'a str>,
    /// Objects read from a live cluster.
    pub cluster: bool,
}

/// Rules switched off with `--ignore`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RuleFilter {
    ignored: u16,
}

impl RuleFilter {
    /// Switches a rule off.
    pub fn ignore(&mut self, rule: Rule) {
        self.ignored |= 1 << (rule as u16);
    }

    /// Whether a rule is on.
    pub fn enabled(&self, rule: Rule) -> bool {
        self.ignored & (1 << (rule as u16)) == 0
    }
}

/// What auditing one input produced.
#[derive(Debug, Default)]
pub struct Collected {
    /// Findings, in input order.
    pub findings: Vec<Finding>,
    /// Secret consumption, one entry per (workload, Secret).
    pub usages: Vec<Usage>,
    /// Secrets defined in the input.
    pub secrets: Vec<SecretDecl>,
    /// Kubernetes objects looked at.
    pub objects: u64,
}

/// Audits one document (an object, a `List`, or Airflow chart values).
pub fn audit_document(doc: &Node, origin: Origin<'_>, filter: RuleFilter, out: &mut Collected) {
    let kind = doc.str_at(&["kind"]).unwrap_or("");
    if let Some(items) = doc.get("items").filter(|_| kind.ends_with("List")) {
        for item in items.items() {
            audit_document(item, origin, filter, out);
        }
        return;
    }
    audit_object(doc, origin, filter, out);
}

const WORKLOAD_TEMPLATE_KINDS: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "ReplicationController",
    "Rollout",
];

const CONTROLLERS: &[&str] = &[
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "ReplicaSet",
    "Job",
    "CronJob",
    "ReplicationController",
    "Rollout",
];

fn audit_object(obj: &Node, origin: Origin<'_>, filter: RuleFilter, out: &mut Collected) {
    if !obj.is_map() {
        return;
    }
    let kind = obj.str_at(&["kind"]).unwrap_or("");
    let meta = obj.get_or_null("metadata");
    let name = meta
        .str_at(&["name"])
        .or_else(|| meta.str_at(&["generateName"]))
        .unwrap_or("<unnamed>");
    let namespace = meta.str_at(&["namespace"]);
    let mut suppressed = suppressions(meta);
    if origin.cluster && is_controlled(meta) {
        return;
    }
    let sops = obj.get("sops").is_some_and(Node::is_map);
    let (pod_spec, template_meta) = match kind {
        "Pod" => (obj.get("spec"), None),
        k if WORKLOAD_TEMPLATE_KINDS.contains(&k) => (
            obj.at(&["spec", "template", "spec"]),
            obj.at(&["spec", "template", "metadata"]),
        ),
        "CronJob" => (
            obj.at(&["spec", "jobTemplate", "spec", "template", "spec"]),
            obj.at(&["spec", "jobTemplate", "spec", "template", "metadata"]),
        ),
        "PodTemplate" => (
            obj.at(&["template", "spec"]),
            obj.at(&["template", "metadata"]),
        ),
        _ => (None, None),
    };
    if let Some(tm) = template_meta {
        suppressed |= suppressions(tm);
    }
    let display_kind = if kind.is_empty() { "values" } else { kind };
    let mut e = Emitter {
        origin,
        filter,
        suppressed,
        kind: display_kind,
        name,
        namespace,
        out,
    };
    if let Some(spec) = pod_spec {
        e.out.objects += 1;
        audit_pod_spec(spec, &mut e);
        return;
    }
    match kind {
        "Secret" => {
            e.out.objects += 1;
            audit_secret(obj, sops, &mut e);
        }
        "ConfigMap" => {
            e.out.objects += 1;
            if !sops {
                audit_config_map(obj, &mut e);
            }
        }
        "SealedSecret" => {
            e.out.objects += 1;
            e.out.secrets.push(SecretDecl {
                namespace: namespace.map(str::to_string),
                name: name.to_string(),
                secret_type: obj
                    .str_at(&["spec", "template", "type"])
                    .map(str::to_string),
                storage: "sealed-secret",
            });
        }
        // issue 15: the External Secrets Operator renders this Secret from a store; nothing
        // secret is in the manifest.
        "ExternalSecret"
            if obj
                .str_at(&["apiVersion"])
                .is_some_and(|a| a.starts_with("external-secrets.io/")) =>
        {
            e.out.objects += 1;
            e.out.secrets.push(SecretDecl {
                namespace: namespace.map(str::to_string),
                name: obj
                    .str_at(&["spec", "target", "name"])
                    .unwrap_or(name)
                    .to_string(),
                secret_type: obj
                    .str_at(&["spec", "target", "template", "type"])
                    .map(str::to_string),
                storage: EXTERNAL_SECRET,
            });
        }
        "HelmRelease" => {
            e.out.objects += 1;
            if !sops {
                if let Some(values) = obj.at(&["spec", "values"]) {
                    audit_airflow_values(values, &mut e);
                }
            }
        }
        "" if !sops
            && (obj.at(&["dags", "gitSync"]).is_some() || obj.get("extraSecrets").is_some()) =>
        {
            // A bare values file for the Apache Airflow chart.
            e.out.objects += 1;
            audit_airflow_values(obj, &mut e);
        }
        _ => {}
    }
}

fn is_controlled(meta: &Node) -> bool {
    meta.get_or_null("ownerReferences").items().iter().any(|r| {
        r.get("controller").and_then(Node::as_bool) == Some(true)
            && r.str_at(&["kind"])
                .is_some_and(|k| CONTROLLERS.contains(&k))
    })
}

/// `sealkey.io/ignore: "SK001,SK002"` (or `all`) as a bit set.
fn suppressions(meta: &Node) -> u16 {
    let Some(list) = meta.str_at(&["annotations", "sealkey.io/ignore"]) else {
        return 0;
    };
    let mut bits = 0;
    for part in list.split([',', ' ']).filter(|p| !p.is_empty()) {
        if part.eq_ignore_ascii_case("all") || part == "*" {
            return u16::MAX;
        }
        if let Some(rule) = Rule::parse(part) {
            bits |= 1 << (rule as u16);
        }
    }
    bits
}

/// The optional parts of a finding.
#[derive(Default)]
struct At<'n> {
    line: u32,
    container: Option<&'n str>,
    env: Option<&'n str>,
    secret: Option<&'n str>,
    key: Option<&'n str>,
}

struct Emitter<'a, 'o> {
    origin: Origin<'a>,
    filter: RuleFilter,
    suppressed: u16,
    kind: &'a str,
    name: &'a str,
    namespace: Option<&'a str>,
    out: &'o mut Collected,
}

impl Emitter<'_, '_> {
    fn on(&self, rule: Rule) -> bool {
        self.filter.enabled(rule) && self.suppressed & (1 << (rule as u16)) == 0
    }

    fn emit(&mut self, rule: Rule, severity: Severity, message: String, at: At<'_>) {
        if !self.on(rule) {
            return;
        }
        let file = self.origin.file;
        self.out.findings.push(Finding {
            rule,
            severity,
            message,
            hint: rule.hint(),
            file: file.map(str::to_string),
            line: file.map(|_| at.line),
            namespace: self.namespace.map(str::to_string),
            kind: self.kind.to_string(),
            name: self.name.to_string(),
            container: at.container.map(str::to_string),
            env: at.env.map(str::to_string),
            secret: at.secret.map(str::to_string),
            key: at.key.map(str::to_string),
        });
    }

    fn what(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
}

/// A Secret a pod mounts as a volume (directly or in a projected volume).
struct SecretVolume<'n> {
    /// The line of the volume (`- name: VOLUME`), where the mode is fixed.
    line: u32,
    volume: &'n str,
    secret: &'n str,
    /// OR of every file's mode.
    mode: i64,
    /// Names that hint at key material: secret name, keys, paths.
    key_material: bool,
    /// The single key, when items name exactly one.
    single_key: Option<&'n str>,
}

const DEFAULT_MODE: i64 = 0o644;

fn secret_volumes(spec: &Node) -> Vec<SecretVolume<'_>> {
    let mut found = Vec::new();
    for vol in spec.get_or_null("volumes").items() {
        let Some(vname) = vol.str_at(&["name"]) else {
            continue;
        };
        if let Some(sec) = vol.get("secret").filter(|s| s.is_map()) {
            let Some(secret) = sec.str_at(&["secretName"]) else {
                continue;
            };
            let default = sec
                .get("defaultMode")
                .and_then(Node::as_int)
                .unwrap_or(DEFAULT_MODE);
            found.push(describe_volume(vol.line, sec, vname, secret, default));
        }
        if let Some(proj) = vol.get("projected").filter(|p| p.is_map()) {
            let default = proj
                .get("defaultMode")
                .and_then(Node::as_int)
                .unwrap_or(DEFAULT_MODE);
            for source in proj.get_or_null("sources").items() {
                if let Some(sec) = source.get("secret").filter(|s| s.is_map()) {
                    let Some(secret) = sec.str_at(&["name"]) else {
                        continue;
                    };
                    found.push(describe_volume(vol.line, sec, vname, secret, default));
                }
            }
        }
    }
    found
}

fn describe_volume<'n>(
    line: u32,
    sec: &'n Node,
    volume: &'n str,
    secret: &'n str,
    default: i64,
) -> SecretVolume<'n> {
    let items = sec.get_or_null("items").items();
    let mut key_material = looks_like_key_material(secret) || looks_like_key_material(volume);
    let mode = if items.is_empty() {
        default
    } else {
        let mut mode = 0;
        for item in items {
            mode |= item.get("mode").and_then(Node::as_int).unwrap_or(default);
            for field in ["key", "path"] {
                key_material |= item.str_at(&[field]).is_some_and(looks_like_key_material);
            }
        }
        mode
    };
    SecretVolume {
        line,
        volume,
        secret,
        mode,
        key_material,
        single_key: match items {
            [one] => one.str_at(&["key"]),
            _ => None,
        },
    }
}

/// Names of Secrets, keys, paths and volumes that hold SSH or TLS private keys.
fn looks_like_key_material(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    [
        "ssh",
        "id_rsa",
        "id_ed25519",
        "id_ecdsa",
        "identity",
        "tls",
        "private",
        "deploy-key",
        "deploy_key",
        "deploykey",
        ".key",
        ".pem",
        "privkey",
        "git-secret",
    ]
    .iter()
    .any(|p| n.contains(p))
}

const CONTAINER_LISTS: [&str; 3] = ["initContainers", "containers", "ephemeralContainers"];

/// Secret volumes by volume name, in spec order: mounts are matched by name without scanning
/// every volume for every mount (a pod with many of both would take quadratic time).
type VolumesByName<'v, 'n> = HashMap<&'n str, Vec<&'v SecretVolume<'n>>>;

fn audit_pod_spec(spec: &Node, e: &mut Emitter<'_, '_>) {
    let all_volumes = secret_volumes(spec);
    let mut volumes: VolumesByName<'_, '_> = HashMap::new();
    for v in &all_volumes {
        volumes.entry(v.volume).or_default().push(v);
    }
    let fs_group = spec
        .at(&["securityContext", "fsGroup"])
        .is_some_and(|n| !n.is_null());
    let mut usage: BTreeMap<&str, u8> = BTreeMap::new();

    for list in CONTAINER_LISTS {
        for c in spec.get_or_null(list).items() {
            let cname = c.str_at(&["name"]).unwrap_or("<unnamed>");
            audit_env(c, cname, e, &mut usage);
            audit_mounts(c, cname, &volumes, fs_group, e, &mut usage);
            if is_git_sync(c) {
                audit_git_sync(c, cname, &volumes, e);
            }
        }
    }
    for ips in spec.get_or_null("imagePullSecrets").items() {
        if let Some(name) = ips.str_at(&["name"]) {
            *usage.entry(name).or_default() |= Via::ImagePullSecrets.bit();
        }
    }
    let workload = e.what();
    for (secret, via) in usage {
        e.out.usages.push(Usage {
            namespace: e.namespace.map(str::to_string),
            secret: secret.to_string(),
            workload: workload.clone(),
            via,
        });
    }
}

fn audit_env<'n>(
    c: &'n Node,
    cname: &'n str,
    e: &mut Emitter<'_, '_>,
    usage: &mut BTreeMap<&'n str, u8>,
) {
    for var in c.get_or_null("env").items() {
        let vname = var.str_at(&["name"]).unwrap_or("<unnamed>");
        if let Some(r) = var.at(&["valueFrom", "secretKeyRef"]) {
            let secret = r.str_at(&["name"]).unwrap_or("<unnamed>");
            let key = r.str_at(&["key"]);
            *usage.entry(secret).or_default() |= Via::Env.bit();
            e.emit(
                Rule::Sk001,
                Severity::Warning,
                format!(
                    "env {vname} of container {cname} in {} takes key {} of Secret {secret}",
                    e.what(),
                    key.unwrap_or("?")
                ),
                At {
                    line: var.line,
                    container: Some(cname),
                    env: Some(vname),
                    secret: Some(secret),
                    key,
                },
            );
        } else if let Some(value) = var.str_at(&["value"]) {
            if is_private_key_text(value) || is_private_key_base64(value) {
                e.emit(
                    Rule::Sk007,
                    Severity::Error,
                    format!(
                        "env {vname} of container {cname} in {} holds a private key",
                        e.what()
                    ),
                    At {
                        line: var.line,
                        container: Some(cname),
                        env: Some(vname),
                        ..At::default()
                    },
                );
            } else if let Some(why) = literal_credential(vname, value) {
                e.emit(
                    Rule::Sk004,
                    Severity::Error,
                    format!(
                        "env {vname} of container {cname} in {} holds a literal credential ({why})",
                        e.what()
                    ),
                    At {
                        line: var.line,
                        container: Some(cname),
                        env: Some(vname),
                        ..At::default()
                    },
                );
            }
        }
    }
    for from in c.get_or_null("envFrom").items() {
        if let Some(r) = from.get("secretRef") {
            let secret = r.str_at(&["name"]).unwrap_or("<unnamed>");
            *usage.entry(secret).or_default() |= Via::EnvFrom.bit();
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

fn audit_mounts<'n>(
    c: &'n Node,
    cname: &'n str,
    volumes: &VolumesByName<'_, 'n>,
    fs_group: bool,
    e: &mut Emitter<'_, '_>,
    usage: &mut BTreeMap<&'n str, u8>,
) {
    let mut reported: HashSet<(&str, &str)> = HashSet::new();
    for mount in c.get_or_null("volumeMounts").items() {
        let Some(mname) = mount.str_at(&["name"]) else {
            continue;
        };
        for v in volumes.get(mname).into_iter().flatten() {
            *usage.entry(v.secret).or_default() |= Via::Volume.bit();
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
            if !reported.insert((v.volume, v.secret)) {
                continue;
            }
            // Group-readable is the documented way to share a key with a non-root container
            // when the pod sets fsGroup (the files then belong to that group).
            let exposed = if fs_group { 0o004 } else { 0o044 };
            if v.mode & exposed != 0 {
                let severity = if v.key_material {
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
    }
}

fn is_git_sync(c: &Node) -> bool {
    c.str_at(&["image"]).is_some_and(|i| i.contains("git-sync"))
        || c.str_at(&["name"])
            .is_some_and(|n| n == "git-sync" || n == "git-sync-init")
}

/// git-sync's value for a setting: `--flag=v` / `--flag v` (also `-flag`) first, then the env
/// vars in git-sync's own order. Returns the value and the env var it came from.
fn git_sync_setting(
    c: &Node,
    flag: &str,
    envs: &[&'static str],
) -> Option<(String, Option<&'static str>, u32)> {
    let args: Vec<&str> = ["command", "args"]
        .iter()
        .flat_map(|f| c.get_or_null(f).items())
        .filter_map(Node::as_str)
        .collect();
    let mut from_flag = None;
    for (i, a) in args.iter().enumerate() {
        let bare = a.trim_start_matches('-');
        if !a.starts_with('-') {
            continue;
        }
        if let Some(v) = bare.strip_prefix(flag) {
            if let Some(v) = v.strip_prefix('=') {
                from_flag = Some(v.to_string());
            } else if v.is_empty() {
                from_flag = Some(
                    args.get(i + 1)
                        .filter(|n| !n.starts_with('-'))
                        .map_or("true".to_string(), |n| n.to_string()),
                );
            }
        }
    }
    if let Some(v) = from_flag {
        return Some((v, None, c.line));
    }
    let vars = c.get_or_null("env").items();
    for name in envs {
        if let Some(var) = vars.iter().find(|v| v.str_at(&["name"]) == Some(name)) {
            if let Some(v) = var.str_at(&["value"]) {
                return Some((v.to_string(), Some(name), var.line));
            }
        }
    }
    None
}

fn is_ssh_url(repo: &str) -> bool {
    let r = repo.trim();
    if r.starts_with("ssh://") || r.starts_with("git+ssh://") {
        return true;
    }
    // scp-like `user@host:path`
    !r.contains("://") && r.contains('@') && r.contains(':')
}

fn audit_git_sync(c: &Node, cname: &str, volumes: &VolumesByName<'_, '_>, e: &mut Emitter<'_, '_>) {
    let repo = git_sync_setting(c, "repo", &["GITSYNC_REPO", "GIT_SYNC_REPO"]);
    let ssh_flag = git_sync_setting(c, "ssh", &["GITSYNC_SSH", "GIT_SYNC_SSH"])
        .and_then(|(v, _, _)| super::doc::parse_bool(&v))
        == Some(true);
    let key_file = git_sync_setting(
        c,
        "ssh-key-file",
        &[
            "GITSYNC_SSH_KEY_FILE",
            "GIT_SYNC_SSH_KEY_FILE",
            "GIT_SSH_KEY_FILE",
        ],
    );
    let mounts = c.get_or_null("volumeMounts").items();
    let key_mounted = mounts.iter().any(|m| {
        m.str_at(&["mountPath"])
            .is_some_and(|p| p.starts_with("/etc/git-secret"))
            && m.str_at(&["name"]).is_some_and(|n| volumes.contains_key(n))
    });
    let uses_ssh = repo.as_ref().is_some_and(|(r, _, _)| is_ssh_url(r))
        || ssh_flag
        || key_file.is_some()
        || key_mounted;
    if !uses_ssh {
        return;
    }
    let checking = git_sync_setting(
        c,
        "ssh-known-hosts",
        &[
            "GITSYNC_SSH_KNOWN_HOSTS",
            "GIT_SYNC_KNOWN_HOSTS",
            "GIT_KNOWN_HOSTS",
        ],
    );
    if let Some((value, env, line)) = &checking {
        if super::doc::parse_bool(value) == Some(false) {
            let by = env.map_or("--ssh-known-hosts=false".to_string(), |n| {
                format!("{n}=false")
            });
            e.emit(
                Rule::Sk005,
                Severity::Error,
                format!(
                    "git-sync container {cname} in {} has host-key checking switched off ({by})",
                    e.what()
                ),
                At {
                    line: *line,
                    container: Some(cname),
                    env: *env,
                    ..At::default()
                },
            );
            return;
        }
    }
    let file = git_sync_setting(
        c,
        "ssh-known-hosts-file",
        &[
            "GITSYNC_SSH_KNOWN_HOSTS_FILE",
            "GIT_SYNC_KNOWN_HOSTS_FILE",
            "GIT_SSH_KNOWN_HOSTS_FILE",
        ],
    )
    .map(|(v, _, _)| v)
    .unwrap_or_else(|| "/etc/git-secret/known_hosts".to_string());
    let covered = mounts.iter().any(|m| {
        m.str_at(&["mountPath"]).is_some_and(|p| {
            let p = p.trim_end_matches('/');
            file == p || file.starts_with(&format!("{p}/"))
        })
    });
    if !covered {
        e.emit(
            Rule::Sk005,
            Severity::Error,
            format!(
                "git-sync container {cname} in {} uses SSH but mounts no known_hosts file at {file}",
                e.what()
            ),
            At {
                line: c.line,
                container: Some(cname),
                ..At::default()
            },
        );
    }
}

/// Storage of Secrets the External Secrets Operator renders (issue 15).
pub const EXTERNAL_SECRET: &str = "external-secret";

/// A Secret owned by an ExternalSecret (as ESO writes it in the cluster).
fn rendered_by_eso(obj: &Node) -> bool {
    obj.at(&["metadata", "ownerReferences"])
        .is_some_and(|refs| {
            refs.items()
                .iter()
                .any(|r| r.str_at(&["kind"]) == Some("ExternalSecret"))
        })
}

fn audit_secret(obj: &Node, sops: bool, e: &mut Emitter<'_, '_>) {
    let data = obj.get_or_null("data").entries();
    let string_data = obj.get_or_null("stringData").entries();
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
    if sops || e.origin.cluster {
        // Values in the cluster are where they belong; SOPS values are encrypted.
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
                line: obj.get("kind").map_or(obj.line, |k| k.line),
                secret: Some(e.name),
                ..At::default()
            },
        );
    }
    let name = e.name;
    for (k, v) in data {
        if v.as_str().is_some_and(is_private_key_base64) {
            e.emit(
                Rule::Sk007,
                Severity::Error,
                format!(
                    "{} holds an unsealed private key in data.{}",
                    e.what(),
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
    for (k, v) in string_data {
        if v.as_str().is_some_and(is_private_key_text) {
            e.emit(
                Rule::Sk007,
                Severity::Error,
                format!(
                    "{} holds an unsealed private key in stringData.{}",
                    e.what(),
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

fn audit_config_map(obj: &Node, e: &mut Emitter<'_, '_>) {
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
                    format!("{} holds a private key in {field}.{}", e.what(), k.as_str()),
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

fn audit_airflow_values(values: &Node, e: &mut Emitter<'_, '_>) {
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
                            format!("{} holds an unsealed private key in {path}", e.what()),
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

/// PEM (or PuTTY) private key text.
pub fn is_private_key_text(s: &str) -> bool {
    (s.contains("-----BEGIN ") && s.contains("PRIVATE KEY-----"))
        || s.trim_start().starts_with("PuTTY-User-Key-File-")
}

/// Base64 of PEM private key text (Secret `data`, chart `extraSecrets` data).
pub fn is_private_key_base64(s: &str) -> bool {
    let t = s.trim_start();
    // "-----BEGIN" and "PuTTY-User" base64-encoded.
    if !(t.starts_with("LS0tLS1CRUdJT") || t.starts_with("UHVUVFktVXNlci")) {
        return false;
    }
    let compact: Zeroizing<Vec<u8>> =
        Zeroizing::new(t.bytes().filter(|b| !b.is_ascii_whitespace()).collect());
    match base64::engine::general_purpose::STANDARD.decode(&*compact) {
        Ok(bytes) => {
            let bytes = Zeroizing::new(bytes);
            std::str::from_utf8(&bytes).is_ok_and(is_private_key_text)
        }
        Err(_) => false,
    }
}

/// Why an env var's literal value is a credential, or `None`.
pub fn literal_credential(name: &str, value: &str) -> Option<&'static str> {
    let v = value.trim();
    if v.is_empty() || is_reference(v) || looks_like_path(v) {
        return None;
    }
    if let Some(kind) = known_token_format(v) {
        return Some(kind);
    }
    if url_with_password(v) {
        return Some("URL with a password");
    }
    if !credential_name(name) {
        return None;
    }
    if super::doc::parse_bool(v).is_some()
        || v.chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
    {
        return None;
    }
    Some("credential-like name")
}

fn is_reference(v: &str) -> bool {
    (v.starts_with("$(") && v.ends_with(')')) || (v.starts_with("${") && v.ends_with('}'))
}

fn looks_like_path(v: &str) -> bool {
    (v.starts_with('/') || v.starts_with("./") || v.starts_with("~/") || v.starts_with("file://"))
        && !v.contains(char::is_whitespace)
}

fn url_with_password(v: &str) -> bool {
    let Some((_, rest)) = v.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let Some((userinfo, _host)) = authority.rsplit_once('@') else {
        return false;
    };
    match userinfo.split_once(':') {
        Some((_, pass)) => !pass.is_empty() && !is_reference(pass) && !pass.starts_with("$("),
        None => false,
    }
}

fn known_token_format(v: &str) -> Option<&'static str> {
    let alnum = |s: &str, n: usize| {
        s.len() >= n && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    for p in ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"] {
        if let Some(rest) = v.strip_prefix(p) {
            if rest.len() >= 36 && alnum(rest, 36) {
                return Some("GitHub token");
            }
        }
    }
    if v.strip_prefix("github_pat_").is_some_and(|r| alnum(r, 22)) {
        return Some("GitHub token");
    }
    if v.strip_prefix("glpat-").is_some_and(|r| r.len() >= 20) {
        return Some("GitLab token");
    }
    if (v.starts_with("AKIA") || v.starts_with("ASIA"))
        && v.len() == 20
        && v.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return Some("AWS access key id");
    }
    if ["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-"]
        .iter()
        .any(|p| v.starts_with(p) && v.len() > 20)
    {
        return Some("Slack token");
    }
    if (v.starts_with("sk_live_") || v.starts_with("rk_live_")) && v.len() > 20 {
        return Some("Stripe key");
    }
    None
}

/// Env var names that hold credentials, and not a path to one or a setting about one.
fn credential_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let words: Vec<&str> = upper
        .split(['_', '-', '.'])
        .filter(|w| !w.is_empty())
        .collect();
    let Some(last) = words.last() else {
        return false;
    };
    const NOT_A_VALUE: &[&str] = &[
        "FILE",
        "FILES",
        "FILENAME",
        "PATH",
        "DIR",
        "DIRECTORY",
        "LOCATION",
        "NAME",
        "ID",
        "TTL",
        "TIMEOUT",
        "EXPIRY",
        "EXPIRATION",
        "EXPIRES",
        "LENGTH",
        "LEN",
        "ENABLED",
        "DISABLED",
        "ENABLE",
        "HEADER",
        "TYPE",
        "URL",
        "URI",
        "ENDPOINT",
        "REF",
        "MODE",
        "POLICY",
        "VERSION",
        "COUNT",
        "SIZE",
        "LIMIT",
        "PROVIDER",
        "METHOD",
        "FORMAT",
        "ALGORITHM",
        "ALG",
        "SECONDS",
        "DURATION",
        "ISSUER",
        "AUDIENCE",
        "SCOPE",
        "SCOPES",
        "KEY_ID",
        "USER",
        "USERNAME",
        "HOST",
        "PORT",
        "REQUIRED",
        "MIN",
        "MAX",
        "REGEX",
        "PATTERN",
        "INTERVAL",
        "BACKEND",
        "STORE",
        "LOGIN",
        "FIELD",
        "PARAM",
        "PREFIX",
        "SUFFIX",
        "HASH",
        "AGE",
        "DAYS",
    ];
    if NOT_A_VALUE.contains(last) {
        return false;
    }
    words.iter().enumerate().any(|(i, w)| {
        let next = words.get(i + 1).copied();
        matches!(
            *w,
            "PASSWORD"
                | "PASSWD"
                | "PASS"
                | "PWD"
                | "SECRET"
                | "TOKEN"
                | "APIKEY"
                | "CREDENTIAL"
                | "CREDENTIALS"
                | "PASSPHRASE"
        ) || (matches!(
            *w,
            "API" | "ACCESS" | "PRIVATE" | "FERNET" | "AUTH" | "SIGNING" | "ENCRYPTION"
        ) && next == Some("KEY"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::doc::parse_all;

    fn audit(text: &str) -> Vec<Finding> {
        let mut out = Collected::default();
        for doc in parse_all(text).unwrap() {
            audit_document(
                &doc,
                Origin {
                    file: Some("t.yaml"),
                    cluster: false,
                },
                RuleFilter::default(),
                &mut out,
            );
        }
        out.findings
    }

    #[test]
    fn file_paths_and_references_are_not_credentials() {
        assert_eq!(
            literal_credential("DB_PASSWORD_FILE", "/run/secrets/db"),
            None
        );
        assert_eq!(literal_credential("DB_PASSWORD", "/run/secrets/db"), None);
        assert_eq!(
            literal_credential("DB_PASSWORD", "$(DB_PASS_FROM_SECRET)"),
            None
        );
        assert_eq!(literal_credential("TOKEN_TTL", "3600"), None);
        assert_eq!(
            literal_credential("DATABASE_URL", "postgres://db:5432/app"),
            None
        );
        assert!(literal_credential("DB_PASSWORD", "hunter2").is_some());
        assert!(literal_credential("AIRFLOW__CORE__FERNET_KEY", "x3Zs9").is_some());
        assert!(literal_credential("CONN", "postgresql://airflow:pw@db/airflow").is_some());
        assert!(
            literal_credential("ANYTHING", "ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").is_some()
        );
    }

    #[test]
    fn every_env_usage_is_its_own_finding() {
        let f = audit(
            "kind: Deployment\nmetadata: {name: web, namespace: prod}\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        env:\n        - name: A\n          valueFrom: {secretKeyRef: {name: s1, key: a}}\n        - name: B\n          valueFrom: {secretKeyRef: {name: s1, key: b}}\n        envFrom:\n        - secretRef: {name: s2}\n",
        );
        let rules: Vec<_> = f
            .iter()
            .map(|f| (f.rule.id(), f.line, f.env.clone()))
            .collect();
        assert_eq!(
            rules,
            vec![
                ("SK001", Some(9), Some("A".into())),
                ("SK001", Some(11), Some("B".into())),
                ("SK002", Some(14), None)
            ]
        );
        assert_eq!(f[0].namespace.as_deref(), Some("prod"));
    }

    #[test]
    fn suppression_annotation_drops_named_rules() {
        let f = audit(
            "kind: Pod\nmetadata:\n  name: p\n  annotations: {sealkey.io/ignore: \"SK001\"}\nspec:\n  containers:\n  - name: app\n    env:\n    - name: A\n      valueFrom: {secretKeyRef: {name: s1, key: a}}\n    envFrom:\n    - secretRef: {name: s2}\n",
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].rule, Rule::Sk002);
    }

    #[test]
    fn secret_volume_modes_follow_defaults_items_and_fs_group() {
        let pod = |vol: &str, fs: &str| {
            format!("kind: Pod\nmetadata: {{name: p}}\nspec:\n  {fs}\n  volumes:\n  - name: k\n    secret: {vol}\n  containers:\n  - name: a\n    volumeMounts: [{{name: k, mountPath: /k}}]\n  - name: b\n    volumeMounts: [{{name: k, mountPath: /k}}]\n")
        };
        let f = audit(&pod("{secretName: git-ssh}", "hostNetwork: false"));
        assert_eq!(f.len(), 2, "one per container");
        assert!(f.iter().all(|f| f.severity == Severity::Error));
        assert!(audit(&pod(
            "{secretName: s, defaultMode: 0400}",
            "hostNetwork: false"
        ))
        .is_empty());
        assert_eq!(
            audit(&pod(
                "{secretName: s, defaultMode: 0440}",
                "hostNetwork: false"
            ))
            .len(),
            2
        );
        assert!(audit(&pod(
            "{secretName: s, defaultMode: 0440}",
            "securityContext: {fsGroup: 65533}"
        ))
        .is_empty());
        let f = audit(&pod(
            "{secretName: app, defaultMode: 0400, items: [{key: a, path: a, mode: 0644}]}",
            "hostNetwork: false",
        ));
        assert_eq!(f.len(), 2);
        assert_eq!(f[0].severity, Severity::Warning);
    }
}
