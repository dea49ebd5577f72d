//! The rules: one pass over each object, one finding per usage (see `docs/audit-rules.md`).
//!
//! Objects come from files (with lines) or from the cluster (without); both go through the same
//! code, so the two modes find the same things on the same objects. No finding carries a value.

use crate::audit::doc::{documents_within, Budget, Node};
use crate::audit::model::{Consumption, Finding, Rule, SecretDecl, Severity, Usage, Via};
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
    // One bit per rule (`Rule as u32`): room for 32.
    ignored: u32,
}

impl RuleFilter {
    /// Switches a rule off.
    pub fn ignore(&mut self, rule: Rule) {
        self.ignored |= 1 << (rule as u32);
    }

    /// Whether a rule is on.
    pub fn enabled(&self, rule: Rule) -> bool {
        self.ignored & (1 << (rule as u32)) == 0
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
    /// Secrets defined in this input (file input only) by name, in input order: (namespace,
    /// `Kind/name` of what defines it, the SK016 finding should it be a second definition).
    definitions: BTreeMap<String, Vec<Definition>>,
    /// Airflow connection ids (upper case) this input defines, and the SK020 findings of DAG
    /// bundles naming one, resolved at the end of the input.
    connections_defined: std::collections::HashSet<String>,
    bundle_connections: Vec<(String, Finding)>,
}

/// One definition of a Secret in an input (SK016).
#[derive(Debug)]
struct Definition {
    namespace: Option<String>,
    by: String,
    finding: Option<Finding>,
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
        // SK020: a bundle's connection that nothing in this input defines.
        let defined = std::mem::take(&mut self.connections_defined);
        for (id, finding) in std::mem::take(&mut self.bundle_connections) {
            if !defined.contains(&id) {
                self.findings.push(finding);
            }
        }
        // SK016: a definition after one of the same name in a matching namespace.
        for (name, mut defs) in std::mem::take(&mut self.definitions) {
            for j in 1..defs.len() {
                let ns = defs[j].namespace.clone();
                let Some(i) = (0..j).find(|&i| {
                    let other = &defs[i].namespace;
                    other.is_none() || ns.is_none() || *other == ns
                }) else {
                    continue;
                };
                let earlier = defs[i].by.clone();
                if let Some(mut f) = defs[j].finding.take() {
                    f.message = format!(
                        "{} defines Secret {name} again: {earlier} defines it earlier in this input, so two writers own one Secret",
                        defs[j].by
                    );
                    self.findings.push(f);
                }
            }
        }
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
            for (k, _) in keys {
                note_connection_env(k.as_str(), &mut e);
            }
            e.note_definition(name, namespace, kind_line(obj));
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
            let target = obj.str_at(&["spec", "target", "name"]).unwrap_or(name);
            e.note_definition(target, namespace, kind_line(obj));
            e.out.secrets.push(SecretDecl {
                namespace: namespace.map(str::to_string),
                name: target.to_string(),
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
                    // Helm installs the chart's objects in the release namespace.
                    let release_ns = obj.str_at(&["spec", "targetNamespace"]).or(namespace);
                    audit_airflow_values(values, release_ns, &mut e);
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
            audit_airflow_values(obj, None, &mut e);
        }
        _ => {}
    }
}

/// The line of an object's `kind`, where findings about the whole object point.
fn kind_line(obj: &Node) -> u32 {
    obj.get("kind").map_or(obj.line, |k| k.line)
}

fn is_controlled(meta: &Node) -> bool {
    meta.get_or_null("ownerReferences").items().iter().any(|r| {
        r.get("controller").and_then(Node::as_bool) == Some(true)
            && r.str_at(&["kind"])
                .is_some_and(|k| CONTROLLERS.contains(&k))
    })
}

/// `sealkey.io/ignore: "SK001,SK002"` (or `all`) as a bit set.
fn suppressions(meta: &Node) -> u32 {
    let Some(list) = meta.str_at(&["annotations", "sealkey.io/ignore"]) else {
        return 0;
    };
    let mut bits = 0;
    for part in list.split([',', ' ']).filter(|p| !p.is_empty()) {
        if part.eq_ignore_ascii_case("all") || part == "*" {
            return u32::MAX;
        }
        if let Some(rule) = Rule::parse(part) {
            bits |= 1 << (rule as u32);
        }
    }
    bits
}

/// The optional parts of a finding.
#[derive(Default, Clone)]
struct At<'n> {
    line: u32,
    container: Option<&'n str>,
    env: Option<&'n str>,
    secret: Option<&'n str>,
    key: Option<&'n str>,
}

impl<'n> At<'n> {
    /// An env var `env` of container `container`, at `line`.
    fn env_var(line: u32, container: &'n str, env: &'n str) -> Self {
        At {
            line,
            container: Some(container),
            env: Some(env),
            ..At::default()
        }
    }
}

struct Emitter<'a, 'o> {
    origin: Origin<'a>,
    filter: RuleFilter,
    suppressed: u32,
    kind: &'a str,
    name: &'a str,
    namespace: Option<&'a str>,
    out: &'o mut Collected,
}

impl Emitter<'_, '_> {
    fn on(&self, rule: Rule) -> bool {
        self.filter.enabled(rule) && self.suppressed & (1 << (rule as u32)) == 0
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

    /// Remembers that this object defines Secret `secret` (at `line`) for SK016, which resolves
    /// at the end of the input. Files only: in a cluster, a HelmRelease's `extraSecrets` and
    /// the Secret Helm made from them are one definition.
    fn note_definition(&mut self, secret: &str, namespace: Option<&str>, line: u32) {
        if self.origin.file.is_none() || self.origin.cluster {
            return;
        }
        let finding = self.finding(
            Rule::Sk016,
            Severity::Error,
            String::new(),
            At {
                line,
                secret: Some(secret),
                ..At::default()
            },
        );
        let by = self.what();
        self.out
            .definitions
            .entry(secret.to_string())
            .or_default()
            .push(Definition {
                namespace: namespace.map(str::to_string),
                by,
                finding,
            });
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

mod bundle;
mod containers;
mod credentials;
mod git;
mod objects;
use containers::*;
pub use credentials::{
    is_private_key_base64, is_private_key_text, literal_credential, private_key_noun,
};

use bundle::*;
use git::*;
pub use git::{airflow_git_connection, host_key_checking_off, EXTERNAL_SECRET};
use objects::*;

#[cfg(test)]
mod tests;
