//! The rules: one pass over each object, one finding per usage (see `docs/audit-rules.md`).
//!
//! Objects come from files (with lines) or from the cluster (without); both go through the same
//! code, so the two modes find the same things on the same objects. No finding carries a value.

use super::doc::{documents_within, Budget, Node};
use super::model::{Consumption, Finding, Rule, SecretDecl, Severity, Usage, Via};
use crate::podspec::How;
use base64::Engine as _;
use std::collections::{BTreeMap, HashMap};
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
    /// Flux GitRepositories over SSH, waiting for the end of the input to learn whether their
    /// Secret is in it (SK014).
    flux_pending: Vec<(Option<String>, String, Finding)>,
    /// Secrets (and SealedSecrets) in this input by name: (namespace, has a `known_hosts` key).
    secret_keys: HashMap<String, Vec<(Option<String>, bool)>>,
}

impl Collected {
    /// Ends one input: resolves what needed every document of it (SK014).
    pub fn finish_input(&mut self) {
        for (ns, secret, finding) in std::mem::take(&mut self.flux_pending) {
            let Some(decls) = self.secret_keys.get(&secret) else {
                continue;
            };
            // Namespaces often come later (kustomize, `-n`): an unset one matches any.
            let mut matching = decls
                .iter()
                .filter(|d| d.0.is_none() || ns.is_none() || d.0 == ns)
                .peekable();
            if matching.peek().is_some() && !matching.any(|d| d.1) {
                self.findings.push(finding);
            }
        }
        self.secret_keys.clear();
    }
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
            let keys = obj
                .get_or_null("spec")
                .get_or_null("encryptedData")
                .entries();
            e.note_secret_keys(keys.iter().any(|(k, _)| k.as_str() == "known_hosts"));
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
        "GitRepository" => {
            e.out.objects += 1;
            audit_flux_git_repository(obj, &mut e);
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
        if let Some(f) = self.finding(rule, severity, message, at) {
            self.out.findings.push(f);
        }
    }

    /// The finding, unless the rule is off or suppressed here.
    fn finding(
        &self,
        rule: Rule,
        severity: Severity,
        message: String,
        at: At<'_>,
    ) -> Option<Finding> {
        if !self.on(rule) {
            return None;
        }
        let file = self.origin.file;
        Some(Finding {
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
        })
    }

    fn what(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }

    /// Remembers this Secret (or SealedSecret) for SK014, which resolves at the end of the input.
    fn note_secret_keys(&mut self, known_hosts: bool) {
        self.out
            .secret_keys
            .entry(self.name.to_string())
            .or_default()
            .push((self.namespace.map(str::to_string), known_hosts));
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

fn secret_volumes(spec: &Node) -> Vec<SecretVolume<'_>> {
    crate::podspec::secret_volumes(spec)
        .into_iter()
        .map(|v| {
            // What is mounted (the Secret, its keys and file names), not what the volume is
            // called.
            let key_material = looks_like_key_material(v.secret)
                || v.items.iter().any(|item| {
                    ["key", "path"]
                        .iter()
                        .any(|f| item.str_at(&[f]).is_some_and(looks_like_key_material))
                });
            SecretVolume {
                line: v.line,
                volume: v.volume,
                secret: v.secret,
                mode: v.mode,
                key_material,
                single_key: match v.items {
                    [one] => one.str_at(&["key"]),
                    _ => None,
                },
            }
        })
        .collect()
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

/// Secrets a pod (or chart values) reads, each with how: the bits of [`Via`] and every use.
type Uses<'n> = BTreeMap<&'n str, (u8, Vec<Consumption>)>;

fn record<'n>(
    uses: &mut Uses<'n>,
    secret: &'n str,
    via: Via,
    container: Option<&str>,
    detail: String,
    mode: Option<i64>,
) {
    let entry = uses.entry(secret).or_default();
    entry.0 |= via.bit();
    entry.1.push(Consumption {
        container: container.map(str::to_string),
        via,
        detail,
        mode,
        fs_group: false,
    });
}

fn push_usages(uses: Uses<'_>, e: &mut Emitter<'_, '_>) {
    let workload = e.what();
    for (secret, (via, uses)) in uses {
        e.out.usages.push(Usage {
            namespace: e.namespace.map(str::to_string),
            secret: secret.to_string(),
            workload: workload.clone(),
            via,
            uses,
        });
    }
}

use crate::podspec::CONTAINER_LISTS;

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
    let mut usage: Uses<'_> = BTreeMap::new();

    for list in CONTAINER_LISTS {
        for c in spec.get_or_null(list).items() {
            let cname = c.str_at(&["name"]).unwrap_or("<unnamed>");
            let git_sync = is_git_sync(c);
            audit_env(c, cname, e);
            audit_mounts(c, cname, &volumes, fs_group, e);
            audit_host_key_settings(c, cname, git_sync, e);
            if git_sync {
                audit_git_sync(c, cname, &volumes, e);
                audit_git_sync_password(c, cname, e);
            }
        }
    }
    // Who reads which Secret, and how: the walk rotation uses too.
    for r in crate::podspec::secret_reads(spec) {
        let (via, detail, mode) = match r.how {
            How::Env { var, key } => (
                Via::Env,
                format!("env {var} (key {})", key.unwrap_or("?")),
                None,
            ),
            How::EnvFrom { prefix } => (
                Via::EnvFrom,
                match prefix {
                    Some(p) => format!("envFrom, prefix {p}"),
                    None => "envFrom (every key)".to_string(),
                },
                None,
            ),
            How::Volume {
                mount_path,
                sub_path,
                mode,
                projected,
                single_key,
                ..
            } => (
                Via::Volume,
                format!(
                    "{}file{} at {}{}",
                    if projected { "projected " } else { "" },
                    if single_key { "" } else { "s" },
                    mount_path.unwrap_or("?"),
                    sub_path.map_or(String::new(), |p| format!(", subPath {p}"))
                ),
                Some(mode & 0o7777),
            ),
            How::ImagePull => (Via::ImagePullSecrets, "image pull".to_string(), None),
        };
        record(&mut usage, r.secret, via, r.container, detail, mode);
        if via == Via::Volume {
            if let Some(u) = usage.get_mut(r.secret).and_then(|u| u.1.last_mut()) {
                u.fs_group = fs_group;
            }
        }
    }
    push_usages(usage, e);
}

fn audit_env<'n>(c: &'n Node, cname: &'n str, e: &mut Emitter<'_, '_>) {
    for var in c.get_or_null("env").items() {
        let vname = var.str_at(&["name"]).unwrap_or("<unnamed>");
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
                    line: var.line,
                    container: Some(cname),
                    env: Some(vname),
                    secret: Some(secret),
                    key,
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
                        At {
                            line: var.line,
                            container: Some(cname),
                            env: Some(vname),
                            ..At::default()
                        },
                    );
                }
            }
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
    // git-sync 4 uses SSH exactly when the repo URL is an SSH one; the other signals only
    // count when the repo is not in the manifest.
    let uses_ssh = match &repo {
        Some((r, _, _)) => is_ssh_url(r),
        None => ssh_flag || key_file.is_some() || key_mounted,
    };
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
    // git-sync appends `-o StrictHostKeyChecking=yes` to a GIT_SSH_COMMAND it finds, and ssh
    // keeps the first value of an option: the user's `=no` wins.
    let ssh_command = c
        .get_or_null("env")
        .items()
        .iter()
        .find(|v| v.str_at(&["name"]) == Some("GIT_SSH_COMMAND"));
    if let Some(var) = ssh_command {
        if var
            .str_at(&["value"])
            .is_some_and(|v| host_key_checking_off(v).is_some())
        {
            e.emit(
                Rule::Sk005,
                Severity::Error,
                format!(
                    "git-sync container {cname} in {} has host-key checking switched off (GIT_SSH_COMMAND)",
                    e.what()
                ),
                At {
                    line: var.line,
                    container: Some(cname),
                    env: Some("GIT_SSH_COMMAND"),
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
            "GIT_SYNC_SSH_KNOWN_HOSTS_FILE",
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
            Rule::Sk010,
            Severity::Warning,
            format!(
                "git-sync container {cname} in {} checks host keys but mounts no known_hosts file at {file}: every sync will fail",
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

/// SK015: git-sync's password as an env var (a literal or from a Secret), not a file.
fn audit_git_sync_password(c: &Node, cname: &str, e: &mut Emitter<'_, '_>) {
    for var in c.get_or_null("env").items() {
        let Some(vname) = var.str_at(&["name"]) else {
            continue;
        };
        if !matches!(vname, "GITSYNC_PASSWORD" | "GIT_SYNC_PASSWORD") {
            continue;
        }
        let set = var.str_at(&["value"]).is_some_and(|v| !v.is_empty())
            || var.get("valueFrom").is_some_and(|v| !v.is_null());
        if set {
            e.emit(
                Rule::Sk015,
                Severity::Warning,
                format!(
                    "git-sync container {cname} in {} takes its password from env {vname}, which never changes: use GITSYNC_PASSWORD_FILE",
                    e.what()
                ),
                At {
                    line: var.line,
                    container: Some(cname),
                    env: Some(vname),
                    secret: var.str_at(&["valueFrom", "secretKeyRef", "name"]),
                    ..At::default()
                },
            );
        }
    }
}

/// Why an ssh option string turns host-key checking off (`StrictHostKeyChecking=no|off`,
/// `UserKnownHostsFile=/dev/null`), or `None`. Option names are case-insensitive in ssh, and
/// `-oName=value`, `-o Name=value`, `-o "Name value"` and ssh_config lines all count.
pub fn host_key_checking_off(text: &str) -> Option<&'static str> {
    let lower = text.to_ascii_lowercase();
    let value_after = |name: &str| -> Vec<String> {
        let mut values = Vec::new();
        let mut from = 0;
        while let Some(i) = lower[from..].find(name) {
            let rest = &lower[from + i + name.len()..];
            let rest = rest.trim_start_matches([' ', '\t', '"', '\'']);
            let rest = rest.strip_prefix('=').unwrap_or(rest);
            let rest = rest.trim_start_matches([' ', '\t', '"', '\'']);
            let v: String = rest
                .chars()
                .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '\'' | ';' | ')'))
                .collect();
            values.push(v);
            from += i + name.len();
        }
        values
    };
    if value_after("stricthostkeychecking")
        .iter()
        .any(|v| v == "no" || v == "off")
    {
        return Some("StrictHostKeyChecking=no");
    }
    if value_after("userknownhostsfile")
        .iter()
        .any(|v| v == "/dev/null")
    {
        return Some("UserKnownHostsFile=/dev/null");
    }
    None
}

/// SK011: any env value, arg or command word turning ssh host-key checking off. In a git-sync
/// container GIT_SSH_COMMAND is SK005's.
fn audit_host_key_settings(c: &Node, cname: &str, git_sync: bool, e: &mut Emitter<'_, '_>) {
    for var in c.get_or_null("env").items() {
        let vname = var.str_at(&["name"]).unwrap_or("<unnamed>");
        if git_sync && vname == "GIT_SSH_COMMAND" {
            continue;
        }
        let Some(why) = var.str_at(&["value"]).and_then(host_key_checking_off) else {
            continue;
        };
        e.emit(
            Rule::Sk011,
            Severity::Error,
            format!(
                "env {vname} of container {cname} in {} turns SSH host-key checking off ({why})",
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
    for field in ["command", "args"] {
        for (i, word) in c.get_or_null(field).items().iter().enumerate() {
            let Some(text) = word.as_str() else { continue };
            // `-o` `StrictHostKeyChecking=no` as two words: the second one carries it.
            let Some(why) = host_key_checking_off(text) else {
                continue;
            };
            let key = format!("{field}[{i}]");
            e.emit(
                Rule::Sk011,
                Severity::Error,
                format!(
                    "{key} of container {cname} in {} turns SSH host-key checking off ({why})",
                    e.what()
                ),
                At {
                    line: word.line,
                    container: Some(cname),
                    key: Some(&key),
                    ..At::default()
                },
            );
        }
    }
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

/// A Secret value as text: `data` is base64 (undecodable or non-UTF-8 values are skipped),
/// `stringData` is plain.
fn secret_value(v: &Node, base64_encoded: bool) -> Option<Zeroizing<String>> {
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
fn secret_entries(
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

/// SK012: Argo CD repository / repo-creds Secrets that skip verification.
fn audit_argocd_repository(obj: &Node, e: &mut Emitter<'_, '_>) {
    let Some(kind) = obj.str_at(&["metadata", "labels", "argocd.argoproj.io/secret-type"]) else {
        return;
    };
    if !kind.starts_with("repo") {
        return;
    }
    let entries = secret_entries(obj, |k| k == "insecure" || k == "insecureIgnoreHostKey");
    for (field, key, v, text) in entries {
        if super::doc::parse_bool(text.trim()) != Some(true) {
            continue;
        }
        let what = if key == "insecure" {
            "skips TLS and SSH host-key verification"
        } else {
            "accepts any SSH host key"
        };
        let name = e.name;
        e.emit(
            Rule::Sk012,
            Severity::Error,
            format!(
                "Argo CD {kind} Secret {} {what} ({field}.{key}: true)",
                e.what()
            ),
            At {
                line: v.line,
                secret: Some(name),
                key: Some(key),
                ..At::default()
            },
        );
    }
}

/// SK013: `AIRFLOW_CONN_*` keys of a Secret (read by Airflow through envFrom or its secrets
/// backend) holding a git connection.
fn audit_airflow_connection_secret(obj: &Node, e: &mut Emitter<'_, '_>) {
    let entries = secret_entries(obj, |k| k.starts_with("AIRFLOW_CONN_"));
    for (field, key, v, text) in entries {
        let Some((severity, why)) = airflow_git_connection(&text) else {
            continue;
        };
        let name = e.name;
        e.emit(
            Rule::Sk013,
            severity,
            format!(
                "{} {field}.{key}: Airflow git connection {} {why}",
                e.what(),
                key["AIRFLOW_CONN_".len()..].to_ascii_lowercase()
            ),
            At {
                line: v.line,
                secret: Some(name),
                key: Some(key),
                ..At::default()
            },
        );
    }
}

/// The extras of apache-airflow-providers-git's GitHook that imply SSH (its
/// `_uses_ssh_transport_options`).
const AIRFLOW_GIT_SSH_EXTRAS: [&str; 7] = [
    "key_file",
    "private_key",
    "private_key_passphrase",
    "known_hosts_file",
    "ssh_config_file",
    "host_proxy_cmd",
    "ssh_port",
];

fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// An Airflow connection (URI or JSON) of type git over SSH whose host-key checking is off
/// (error) or left at GitHook's trust-on-first-use default `accept-new` (warning); `None` for
/// other connections and for `yes` / `ask`.
pub fn airflow_git_connection(value: &str) -> Option<(Severity, String)> {
    let v = value.trim();
    let (host, extras): (String, Vec<(String, String)>) = if v.starts_with('{') {
        let json: serde_json::Value = serde_json::from_str(v).ok()?;
        let conn_type = json.get("conn_type").and_then(|t| t.as_str())?;
        if conn_type != "git" {
            return None;
        }
        let host = json
            .get("host")
            .and_then(|h| h.as_str())
            .unwrap_or("")
            .to_string();
        let extra = match json.get("extra") {
            Some(serde_json::Value::String(s)) => serde_json::from_str(s).ok()?,
            Some(other) => other.clone(),
            None => serde_json::Value::Null,
        };
        let extras = extra
            .as_object()
            .map(|o| {
                o.iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| {
                        let text = match v {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (k.clone(), text)
                    })
                    .collect()
            })
            .unwrap_or_default();
        (host, extras)
    } else {
        let rest = v.strip_prefix("git://")?;
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        // `login:password@host/schema`: the repo URL is the percent-encoded host.
        let host_part = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = percent_decode(host_part.split('/').next().unwrap_or(""));
        let mut extras: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if let Some((_, json)) = extras.iter().find(|(k, _)| k == "__extra__").cloned() {
            if let Ok(serde_json::Value::Object(o)) = serde_json::from_str(&json) {
                for (k, v) in o {
                    let text = match v {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    extras.push((k, text));
                }
            }
        }
        (host, extras)
    };
    let extra = |name: &str| {
        extras
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    };
    let ssh = AIRFLOW_GIT_SSH_EXTRAS.iter().any(|k| extra(k).is_some()) || is_ssh_url(&host);
    if !ssh {
        return None;
    }
    match extra("strict_host_key_checking") {
        Some(x @ ("no" | "off")) => Some((
            Severity::Error,
            format!("turns SSH host-key checking off (strict_host_key_checking: {x})"),
        )),
        None => Some((
            Severity::Warning,
            "leaves strict_host_key_checking unset: GitHook's default accept-new trusts the first host key it sees".to_string(),
        )),
        Some("accept-new") => Some((
            Severity::Warning,
            "trusts the first host key it sees (strict_host_key_checking: accept-new)".to_string(),
        )),
        Some(_) => None,
    }
}

/// SK014: a Flux GitRepository over SSH; resolved against the input's Secrets at its end.
fn audit_flux_git_repository(obj: &Node, e: &mut Emitter<'_, '_>) {
    let Some(url) = obj.str_at(&["spec", "url"]) else {
        return;
    };
    if !url.trim_start().starts_with("ssh://") {
        return;
    }
    let Some(secret_ref) = obj.at(&["spec", "secretRef"]) else {
        return;
    };
    let Some(secret) = secret_ref.str_at(&["name"]) else {
        return;
    };
    if let Some(f) = e.finding(
        Rule::Sk014,
        Severity::Warning,
        format!(
            "{} fetches {} over SSH but its Secret {secret} has no known_hosts: Flux will not connect",
            e.what(),
            printable_url(url)
        ),
        At {
            line: secret_ref.line,
            secret: Some(secret),
            key: Some("known_hosts"),
            ..At::default()
        },
    ) {
        e.out.flux_pending.push((
            e.namespace.map(str::to_string),
            secret.to_string(),
            f,
        ));
    }
}

/// A URL without its password, for messages.
fn printable_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "the repository".to_string(),
    }
}

/// Secrets the Apache Airflow chart's values name: (values path, how the chart consumes it).
const AIRFLOW_VALUES_SECRETS: [(&[&str], Via); 9] = [
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
fn airflow_values_usages(values: &Node, e: &mut Emitter<'_, '_>) {
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
    push_usages(usage, e);
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
    airflow_values_usages(values, e);
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

    #[test]
    fn sk003_severity_follows_what_is_mounted_where_not_the_volume_name() {
        let pod = |volume: &str, secret: &str, path: &str| {
            format!("kind: Pod\nmetadata: {{name: p}}\nspec:\n  volumes:\n  - name: {volume}\n    secret: {{secretName: {secret}}}\n  containers:\n  - name: git-sync\n    image: example/x\n    volumeMounts: [{{name: {volume}, mountPath: {path}}}]\n")
        };
        let severity = |text: String| {
            let f = audit(&text);
            assert_eq!(f.len(), 1, "{f:?}");
            f[0].severity
        };
        // Same mount, mode 0644, two volume names: the same answer.
        assert_eq!(
            severity(pod("git-secret", "repo-auth", "/etc/git-secret")),
            Severity::Error
        );
        assert_eq!(
            severity(pod("git-creds", "repo-auth", "/etc/git-secret")),
            Severity::Error
        );
        assert_eq!(
            severity(pod("git-creds", "repo-auth", "/home/app/.ssh")),
            Severity::Error
        );
        // A volume called git-secret holding settings mounted elsewhere is not key material.
        assert_eq!(
            severity(pod("git-secret", "app-settings", "/etc/app")),
            Severity::Warning
        );
        assert_eq!(
            severity(pod("cfg", "deploy-key", "/etc/app")),
            Severity::Error
        );
    }

    #[test]
    fn git_sync_checking_on_without_known_hosts_is_an_availability_warning_not_sk005() {
        let gs = |env: &str, mounts: &str| {
            format!("kind: Pod\nmetadata: {{name: p}}\nspec:\n  volumes: [{{name: k, secret: {{secretName: git-ssh, defaultMode: 0400}}}}]\n  containers:\n  - name: git-sync\n    image: registry.k8s.io/git-sync/git-sync:v4.4.0\n    env: [{{name: GITSYNC_REPO, value: \"git@github.com:a/b\"}}{env}]\n    volumeMounts: [{mounts}]\n")
        };
        let rules = |text: String| -> Vec<(&'static str, Severity)> {
            audit(&text)
                .iter()
                .map(|f| (f.rule.id(), f.severity))
                .collect()
        };
        let key_only = "{name: k, mountPath: /etc/git-secret/ssh, subPath: ssh}";
        let f = audit(&gs("", key_only));
        let missing: Vec<_> = f.iter().filter(|f| f.rule != Rule::Sk009).collect();
        assert_eq!(missing.len(), 1);
        assert_eq!(
            (missing[0].rule, missing[0].severity),
            (Rule::Sk010, Severity::Warning)
        );
        assert!(missing[0].message.contains("/etc/git-secret/known_hosts"));
        // Off, by each spelling git-sync reads: SK005, and no SK010 on top.
        for env in [
            ", {name: GITSYNC_SSH_KNOWN_HOSTS, value: \"false\"}",
            ", {name: GIT_SYNC_KNOWN_HOSTS, value: \"false\"}",
            ", {name: GIT_KNOWN_HOSTS, value: \"0\"}",
            ", {name: GIT_SSH_COMMAND, value: \"ssh -o StrictHostKeyChecking=no\"}",
        ] {
            assert_eq!(
                rules(gs(env, "{name: k, mountPath: /etc/git-secret}")),
                vec![("SK005", Severity::Error)],
                "{env}"
            );
        }
        // The file where --ssh-known-hosts-file points (v4 and v3 names) is what counts.
        for env in [
            ", {name: GITSYNC_SSH_KNOWN_HOSTS_FILE, value: /kh/known_hosts}",
            ", {name: GIT_SYNC_SSH_KNOWN_HOSTS_FILE, value: /kh/known_hosts}",
        ] {
            assert_eq!(
                rules(gs(env, "{name: k, mountPath: /etc/git-secret}")),
                vec![("SK010", Severity::Warning)],
                "{env}"
            );
            assert!(rules(gs(
                env,
                "{name: k, mountPath: /etc/git-secret}, {name: k, mountPath: /kh}"
            ))
            .is_empty());
        }
    }

    #[test]
    fn host_key_checking_off_reads_every_ssh_option_spelling_and_nothing_else() {
        for off in [
            "ssh -o StrictHostKeyChecking=no",
            "ssh -oStrictHostKeyChecking=no -i k",
            "-o 'StrictHostKeyChecking no'",
            "stricthostkeychecking = off",
            "ssh -o UserKnownHostsFile=/dev/null",
            "Host *\n  StrictHostKeyChecking no\n",
        ] {
            assert!(host_key_checking_off(off).is_some(), "{off}");
        }
        for on in [
            "ssh -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/etc/ssh/known_hosts",
            "StrictHostKeyChecking=accept-new",
            "StrictHostKeyChecking=no-questions",
            "UserKnownHostsFile=/dev/nullish",
            "",
        ] {
            assert!(host_key_checking_off(on).is_none(), "{on}");
        }
    }

    #[test]
    fn airflow_git_connections_follow_githook_extras() {
        let sev = |v: &str| airflow_git_connection(v).map(|(s, _)| s);
        assert_eq!(
            sev(
                r#"{"conn_type": "git", "host": "git@github.com:a/b.git", "extra": {"strict_host_key_checking": "no"}}"#
            ),
            Some(Severity::Error)
        );
        assert_eq!(
            sev("git://git%40github.com%3Aa%2Fb.git?strict_host_key_checking=off"),
            Some(Severity::Error)
        );
        // GitHook's default is accept-new: trust on first use.
        assert_eq!(
            sev("git://git%40github.com%3Aa%2Fb.git"),
            Some(Severity::Warning)
        );
        assert_eq!(
            sev(
                r#"{"conn_type": "git", "host": "https://h/r.git", "extra": "{\"key_file\": \"/k\"}"}"#
            ),
            Some(Severity::Warning)
        );
        assert_eq!(
            sev("git://git%40github.com%3Aa%2Fb.git?strict_host_key_checking=yes&known_hosts_file=%2Fk"),
            None
        );
        // Not SSH, not git.
        assert_eq!(
            sev(r#"{"conn_type": "git", "host": "https://github.com/a/b.git"}"#),
            None
        );
        assert_eq!(sev("ssh://user@box?strict_host_key_checking=no"), None);
        assert_eq!(sev("postgresql://u:p@db/airflow"), None);
    }
}
