//! Manifests for each consumer of a deploy key: the Apache Airflow chart, git-sync, Flux, Argo CD,
//! Airflow 3's GitDagBundle and plain `kubernetes.io/ssh-auth` Secrets.
//!
//! Every emitted configuration turns host-key checking on, carries `app.kubernetes.io/managed-by:
//! sealkey` and annotations naming the key's fingerprint, type, creation time and repository.

mod airflow;
pub mod argocd;
pub mod dag_bundle;
pub mod external_secrets;
mod flux;
mod git_sync;
pub mod github_app;
pub mod live;
pub mod merge;
mod mount;

use crate::error::{Error, Result, Setting};
use crate::keygen::DeployKey;
use crate::known_hosts::KnownHosts;
use crate::message;
use crate::repo::RepoRef;
use crate::secret::SecretText;
use base64::Engine as _;
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

/// Annotation and label keys sealkey writes and reads back (rotation finds its Secrets by them).
pub mod keys {
    /// `app.kubernetes.io/managed-by`.
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
    /// The key's `SHA256:...` fingerprint.
    pub const FINGERPRINT: &str = "sealkey.io/fingerprint";
    /// `ed25519`, `ecdsa-p256`, ...
    pub const KEY_TYPE: &str = "sealkey.io/key-type";
    /// RFC 3339 creation time.
    pub const CREATED: &str = "sealkey.io/created";
    /// `OWNER/REPO`.
    pub const REPO: &str = "sealkey.io/repo";
    /// Which consumer format the Secret is in (`airflow-chart`, `git-sync`, ...).
    pub const CONSUMER: &str = "sealkey.io/for";
    /// Where the known_hosts came from: `pinned`, `file`, `meta`.
    pub const KNOWN_HOSTS_SOURCE: &str = "sealkey.io/known-hosts-source";
    /// The fingerprint of the key the Secret held before `rotate --apply` replaced it.
    pub const PREVIOUS_FINGERPRINT: &str = "sealkey.io/previous-fingerprint";
    /// Annotations that copy an object's content, values included, in clear (kubectl's and
    /// kubecfg's last-applied copies): never carried into sealed output or a rotated Secret.
    pub const CONTENT_COPY_ANNOTATIONS: &[&str] = &[
        "kubectl.kubernetes.io/last-applied-configuration",
        "kubecfg.ksonnet.io/last-applied-configuration",
    ];
}

/// Who reads the Secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Consumer {
    /// The Apache Airflow Helm chart's git-sync (`dags.gitSync.sshKeySecret`, key `gitSshKey`).
    AirflowChart,
    /// A git-sync v4 container you manage yourself (keys `ssh`, `known_hosts`).
    GitSync,
    /// A Flux GitRepository (keys `identity`, `identity.pub`, `known_hosts`).
    Flux,
    /// An Argo CD repository Secret (plus `argocd-ssh-known-hosts-cm` for hosts other than github.com).
    Argocd,
    /// Airflow 3's GitDagBundle: a `git` connection that reads the key from a mounted file.
    AirflowGitBundle,
    /// A `kubernetes.io/ssh-auth` Secret (`ssh-privatekey`) for anything else.
    Generic,
}

impl Consumer {
    /// The command-line name.
    pub fn as_str(self) -> &'static str {
        match self {
            Consumer::AirflowChart => "airflow-chart",
            Consumer::GitSync => "git-sync",
            Consumer::Flux => "flux",
            Consumer::Argocd => "argocd",
            Consumer::AirflowGitBundle => "airflow-git-bundle",
            Consumer::Generic => "generic",
        }
    }

    /// The Secret name used when `--secret-name` is not given.
    pub fn default_secret_name(self, repo: &RepoRef) -> String {
        match self {
            Consumer::AirflowChart => "airflow-ssh-secret".into(),
            Consumer::GitSync => "git-creds".into(),
            Consumer::Flux => format!("{}-git-auth", repo.k8s_name()),
            Consumer::Argocd => format!("repo-{}", repo.k8s_name()),
            Consumer::AirflowGitBundle => "airflow-git-ssh".into(),
            Consumer::Generic => format!("{}-deploy-key", repo.k8s_name()),
        }
    }

    /// The namespace used when `--namespace` is not given.
    pub fn default_namespace(self) -> &'static str {
        match self {
            Consumer::Flux => "flux-system",
            Consumer::Argocd => "argocd",
            _ => "default",
        }
    }

    /// The documents this consumer can be emitted as.
    pub fn documents(self) -> &'static [DocumentKind] {
        match self {
            Consumer::AirflowChart => &[
                DocumentKind::Secret,
                DocumentKind::HelmRelease,
                DocumentKind::ExtraSecrets,
                DocumentKind::Values,
            ],
            Consumer::GitSync | Consumer::AirflowGitBundle | Consumer::Generic => {
                &[DocumentKind::Secret, DocumentKind::Mount]
            }
            Consumer::Flux | Consumer::Argocd => &[DocumentKind::Secret],
        }
    }

    /// The Secret data key that holds the private key (used by rotation to find it again).
    pub fn private_key_field(self) -> &'static str {
        match self {
            Consumer::AirflowChart => "gitSshKey",
            Consumer::GitSync | Consumer::AirflowGitBundle => "ssh",
            Consumer::Flux => "identity",
            Consumer::Argocd => "sshPrivateKey",
            Consumer::Generic => "ssh-privatekey",
        }
    }
}

/// What to emit for the consumer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DocumentKind {
    /// The Secret alone (plus a ConfigMap where the consumer needs one).
    Secret,
    /// A Flux HelmRelease for the Apache Airflow chart with `dags.gitSync`, then the Secret.
    #[value(name = "helmrelease")]
    HelmRelease,
    /// The seed's shape: the key inside the HelmRelease's `values.extraSecrets` (sealed only).
    ExtraSecrets,
    /// The Secret plus a strategic-merge patch that mounts it into a workload.
    Mount,
    /// The sealed Secret to --out, and on stdout just the chart's `dags.gitSync` values
    /// fragment (no secret in it) for people who template their own HelmRelease.
    Values,
}

impl DocumentKind {
    /// The command-line name.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentKind::Secret => "secret",
            DocumentKind::HelmRelease => "helmrelease",
            DocumentKind::ExtraSecrets => "extra-secrets",
            DocumentKind::Mount => "mount",
            DocumentKind::Values => "values",
        }
    }
}

/// The kind of workload a mount patch targets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
pub enum PatchKind {
    /// `apps/v1` Deployment.
    Deployment,
    /// `apps/v1` StatefulSet.
    #[value(name = "statefulset")]
    StatefulSet,
}

/// Everything an emitter needs besides the key itself. No secrets in here.
#[derive(Clone, Debug)]
pub struct EmitSettings {
    /// The repository the key is for.
    pub repo: RepoRef,
    /// Namespace of every emitted object.
    pub namespace: String,
    /// Who reads the Secret.
    pub consumer: Consumer,
    /// What to emit.
    pub document: DocumentKind,
    /// The Secret's name (`None`: the consumer's default).
    pub secret_name: Option<String>,
    /// SSH host of the git server (`github.com`, a GHES host).
    pub git_host: String,
    /// Full clone URL, overriding `git@HOST:OWNER/REPO.git` (e.g. `ssh://git@host:2222/x.git`).
    pub repo_url: Option<String>,
    /// HelmRelease name (and Helm release name).
    pub release_name: String,
    /// Apache Airflow chart version.
    pub chart_version: String,
    /// The Flux HelmRepository holding the chart, `NAMESPACE/NAME`.
    pub chart_source: String,
    /// Branch git-sync follows.
    pub branch: String,
    /// Sub-directory of the repo holding the DAGs.
    pub sub_path: Option<String>,
    /// Workload a mount patch targets.
    pub workload: String,
    /// Its kind.
    pub workload_kind: PatchKind,
    /// Container in it that reads the key.
    pub container: String,
    /// `fsGroup` to set in the pod (makes a 0440 key readable by git-sync's uid 65533).
    pub fs_group: Option<i64>,
    /// Airflow connection id for the GitDagBundle.
    pub conn_id: String,
    /// The Airflow chart's values use a GitDagBundle (`dagProcessor.dagBundleConfigList`, the
    /// key mounted into every Airflow container) instead of `dags.gitSync`.
    pub dag_bundle: bool,
    /// Seconds between the bundle's refreshes (`None`: Airflow's default).
    pub refresh_interval: Option<u64>,
    /// Creation time written into annotations.
    pub created: jiff::Timestamp,
}

impl EmitSettings {
    /// Settings with every optional value at its default.
    pub fn new(repo: RepoRef, namespace: &str, consumer: Consumer, document: DocumentKind) -> Self {
        Self {
            repo,
            namespace: namespace.to_string(),
            consumer,
            document,
            secret_name: None,
            git_host: "github.com".into(),
            repo_url: None,
            release_name: "airflow".into(),
            chart_version: "1.18.0".into(),
            chart_source: "flux-system/apache-airflow".into(),
            branch: "main".into(),
            sub_path: None,
            workload: "git-sync".into(),
            workload_kind: PatchKind::Deployment,
            container: "git-sync".into(),
            fs_group: None,
            conn_id: "git_default".into(),
            dag_bundle: false,
            refresh_interval: None,
            created: jiff::Timestamp::now(),
        }
    }

    /// The Secret name in effect.
    pub fn secret_name(&self) -> String {
        self.secret_name
            .clone()
            .unwrap_or_else(|| self.consumer.default_secret_name(&self.repo))
    }

    /// The clone URL in effect.
    pub fn repo_url(&self) -> String {
        self.repo_url
            .clone()
            .unwrap_or_else(|| self.repo.ssh_url(&self.git_host))
    }

    /// The SSH host and port (when not 22) git will connect to: from --repo-url
    /// (`ssh://git@host:2222/...` or scp-like `git@host:path`), else --git-host.
    pub fn ssh_endpoint(&self) -> (String, Option<u16>) {
        let Some(url) = &self.repo_url else {
            return (self.git_host.clone(), None);
        };
        if let Ok(parsed) = url::Url::parse(url) {
            if let Some(host) = parsed.host_str() {
                let host = host
                    .trim_start_matches('[')
                    .trim_end_matches(']')
                    .to_string();
                return (host, parsed.port().filter(|p| *p != 22));
            }
        }
        // scp-like: [user@]host:path
        let rest = url.split_once('@').map_or(url.as_str(), |(_, r)| r);
        let host = rest.split(':').next().unwrap_or(rest);
        (host.to_string(), None)
    }

    /// Checks names and combinations before any key is generated or registered.
    pub fn validate(&self) -> Result<()> {
        if !self.consumer.documents().contains(&self.document) {
            let allowed: Vec<&str> = self
                .consumer
                .documents()
                .iter()
                .map(|d| d.as_str())
                .collect();
            return Err(Error::input(
                message!(
                    "{} {} {} {}",
                    Setting::Consumer,
                    self.consumer.as_str(),
                    Setting::Emit,
                    self.document.as_str()
                ),
                "this consumer cannot be emitted as that document",
                message!("use {} {}", Setting::Emit, allowed.join(" | ")),
            ));
        }
        check_dns_name(Setting::Namespace, &self.namespace, 63)?;
        check_dns_name(Setting::SecretName, &self.secret_name(), 253)?;
        check_dns_name(Setting::ReleaseName, &self.release_name, 53)?;
        check_dns_name(Setting::Workload, &self.workload, 253)?;
        check_dns_name(Setting::Container, &self.container, 63)?;
        check_branch(&self.branch)?;
        check_chart_version(&self.chart_version)?;
        check_no_template_action(Setting::Branch, &self.branch)?;
        if let Some(sub) = &self.sub_path {
            check_no_template_action(Setting::SubPath, sub)?;
        }
        check_no_template_action(Setting::ConnId, &self.conn_id)?;
        if let Some(url) = &self.repo_url {
            check_no_template_action(Setting::RepoUrl, url)?;
        }
        check_no_template_action(Setting::ChartSource, &self.chart_source)?;
        if !self.chart_source.contains('/') {
            return Err(Error::input(
                message!("{} {}", Setting::ChartSource, &self.chart_source),
                "not NAMESPACE/NAME",
                message!("e.g. {} flux-system/apache-airflow", Setting::ChartSource),
            ));
        }
        if self.git_host.is_empty() || self.git_host.contains(['/', ' ', '@']) {
            return Err(Error::input(
                message!("{} {}", Setting::GitHost, &self.git_host),
                "not a host name",
                message!("e.g. {} github.example.com", Setting::GitHost),
            ));
        }
        Ok(())
    }

    fn labels(&self) -> Value {
        json!({ keys::MANAGED_BY: "sealkey" })
    }

    fn annotations(&self, key: &DeployKey, kh: &KnownHosts) -> Value {
        json!({
            keys::FINGERPRINT: key.fingerprint(),
            keys::KEY_TYPE: key.key_type().as_str(),
            keys::CREATED: self.created.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
            keys::REPO: self.repo.slug(),
            keys::CONSUMER: self.consumer.as_str(),
            keys::KNOWN_HOSTS_SOURCE: kh.source_label(),
        })
    }

    /// `metadata` for an object of ours.
    fn metadata(&self, name: &str, key: &DeployKey, kh: &KnownHosts) -> Value {
        json!({
            "name": name,
            "namespace": self.namespace,
            "labels": self.labels(),
            "annotations": self.annotations(key, kh),
        })
    }
}

/// A branch name git accepts (`git check-ref-format --branch`): what git-sync, the chart and
/// Airflow's bundle will ask the server for.
fn check_branch(branch: &str) -> Result<()> {
    let bad = branch.is_empty()
        || branch.starts_with(['-', '/', '.'])
        || branch.ends_with(['/', '.'])
        || branch.ends_with(".lock")
        || branch.contains("..")
        || branch.contains("@{")
        || branch.contains("//")
        || branch == "@"
        || branch.contains("/.")
        || branch
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || "~^:?*[\\".contains(c));
    if bad {
        return Err(Error::input(
            message!("{} {}", Setting::Branch, format!("{branch:?}")),
            "not a branch name git accepts",
            message!(
                "pass the branch as `git branch --list` shows it, e.g. {} main",
                Setting::Branch
            ),
        ));
    }
    Ok(())
}

/// Charts run values through Helm's `tpl`: the Airflow chart does for each `extraSecrets` name
/// and body and for every `config` value (where a DAG bundle's settings go). A `{{` in a string
/// sealkey writes into values would run there as a template action, so it is refused.
fn check_no_template_action(setting: Setting, value: &str) -> Result<()> {
    if value.contains("{{") {
        return Err(Error::input(
            message!("{} {}", setting, format!("{value:?}")),
            "contains `{{`, which Helm runs as a template action where a chart passes values through `tpl` (the Airflow chart does for its config and extraSecrets)",
            message!("give {} without template braces", setting),
        ));
    }
    Ok(())
}

/// A chart version Flux's HelmRelease accepts: a semver version or range (`1.18.0`, `1.x`,
/// `>=1.15.0 <2.0.0`, `*`), not a tag name such as `latest`.
fn check_chart_version(version: &str) -> Result<()> {
    let v = version.trim();
    let ok = !v.is_empty()
        && v.len() <= 128
        && (v == "*" || v.chars().any(|c| c.is_ascii_digit()))
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || " .-+*^~<>=|,".contains(c))
        && v.starts_with(|c: char| c.is_ascii_digit() || "vV^~<>=*".contains(c));
    if !ok {
        return Err(Error::input(
            message!("{} {}", Setting::ChartVersion, format!("{version:?}")),
            "not a semver version or range (Flux resolves the chart version with semver)",
            message!(
                "e.g. {} 1.18.0, or a range such as '1.x' or '>=1.15.0 <2.0.0'",
                Setting::ChartVersion
            ),
        ));
    }
    Ok(())
}

fn check_dns_name(setting: Setting, value: &str, max: usize) -> Result<()> {
    let ok = !value.is_empty()
        && value.len() <= max
        && value
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && value.starts_with(|c: char| c.is_ascii_alphanumeric())
        && value.ends_with(|c: char| c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(Error::input(
            message!("{} {}", setting, value.to_string()),
            "not a valid Kubernetes name",
            format!("use lowercase letters, digits, '-' and '.', at most {max} characters, starting and ending with a letter or digit"),
        ))
    }
}

/// The emitted documents. They hold the private key in clear, so every string in them is wiped
/// when the stream is dropped, and there is no `Clone`, `Serialize` or `Display`.
pub struct ManifestStream {
    docs: Vec<Value>,
    key_inline_in_values: bool,
}

impl std::fmt::Debug for ManifestStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kinds: Vec<&str> = self
            .docs
            .iter()
            .map(|d| d["kind"].as_str().unwrap_or("?"))
            .collect();
        f.debug_struct("ManifestStream")
            .field("kinds", &kinds)
            .field("values", &"<redacted>")
            .finish()
    }
}

impl Drop for ManifestStream {
    fn drop(&mut self) {
        for d in &mut self.docs {
            crate::secret::wipe_value(d);
        }
    }
}

impl ManifestStream {
    /// Wraps documents (taking ownership: they are wiped on drop).
    pub fn from_docs(docs: Vec<Value>) -> Self {
        Self {
            docs,
            key_inline_in_values: false,
        }
    }

    /// The documents, in output order, with the private key in clear.
    pub fn expose_docs(&self) -> &[Value] {
        &self.docs
    }

    /// Document `index`, to change in place (it stays wiped on drop).
    pub(crate) fn doc_mut(&mut self, index: usize) -> &mut Value {
        &mut self.docs[index]
    }

    /// Whether the private key sits inside a non-Secret object (the extra-secrets HelmRelease),
    /// which must never be written unsealed to anything but a pipe.
    pub fn key_inline_in_values(&self) -> bool {
        self.key_inline_in_values
    }

    /// The YAML stream (`---` between documents).
    pub fn to_yaml(&self) -> SecretText {
        SecretText::from(crate::yaml::to_yaml_stream(&self.docs))
    }
}

/// Builds the documents for `settings` around `key`, with host-key checking on against `known_hosts`.
pub fn emit(
    settings: &EmitSettings,
    key: &DeployKey,
    known_hosts: &KnownHosts,
) -> Result<ManifestStream> {
    settings.validate()?;
    let pem = key.private_pem()?;
    let mut inline = false;
    let docs = match settings.consumer {
        Consumer::AirflowChart => match settings.document {
            DocumentKind::ExtraSecrets => {
                inline = true;
                vec![airflow::extra_secrets_release(
                    settings,
                    key,
                    known_hosts,
                    &pem,
                )]
            }
            DocumentKind::HelmRelease => {
                vec![
                    airflow::helm_release(settings, key, known_hosts, None),
                    airflow::chart_secret(settings, key, known_hosts, &pem),
                ]
            }
            _ => vec![airflow::chart_secret(settings, key, known_hosts, &pem)],
        },
        Consumer::GitSync => {
            let mut docs = vec![git_sync::secret(settings, key, known_hosts, &pem)];
            if settings.document == DocumentKind::Mount {
                docs.push(git_sync::mount_patch(settings));
            }
            docs
        }
        Consumer::Flux => vec![flux::secret(settings, key, known_hosts, &pem)],
        Consumer::Argocd => argocd::objects(settings, key, known_hosts, &pem),
        Consumer::AirflowGitBundle => {
            let mut docs = airflow::git_bundle_objects(settings, key, known_hosts, &pem);
            if settings.document == DocumentKind::Mount {
                docs.push(airflow::git_bundle_mount_patch(settings));
            }
            docs
        }
        Consumer::Generic => {
            let mut docs = vec![generic_secret(settings, key, known_hosts, &pem)];
            if settings.document == DocumentKind::Mount {
                docs.push(mount::patch(
                    settings,
                    &settings.secret_name(),
                    "ssh-key",
                    "/etc/ssh-key",
                    settings.fs_group.map(|_| 0o440).unwrap_or(0o400),
                    json!([]),
                ));
            }
            docs
        }
    };
    Ok(ManifestStream {
        docs,
        key_inline_in_values: inline,
    })
}

/// The chart values sealkey sets (`dags.gitSync`), as a values fragment: no secret in it.
pub fn chart_values(settings: &EmitSettings, known_hosts: &KnownHosts) -> Value {
    if settings.dag_bundle {
        return airflow::bundle_values(settings, known_hosts).values();
    }
    json!({ "dags": { "gitSync": airflow::git_sync_values(settings, known_hosts) } })
}

/// Base64 of `bytes` in a buffer that is wiped on drop.
pub(crate) fn b64(bytes: &[u8]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::with_capacity(bytes.len() * 4 / 3 + 4));
    base64::engine::general_purpose::STANDARD.encode_string(bytes, &mut out);
    out
}

/// Moves a zeroizing buffer into a JSON string without copying it.
pub(crate) fn secret_value(mut text: Zeroizing<String>) -> Value {
    Value::String(std::mem::take(&mut *text))
}

/// Secret `data` holding the private key (base64, in a wiped buffer) under `key_field` and, when
/// given, the host keys under `known_hosts`.
pub(crate) fn key_data(
    key_field: &str,
    pem: &crate::secret::PrivateKeyPem,
    known_hosts: Option<&KnownHosts>,
) -> Map<String, Value> {
    let mut data = Map::new();
    data.insert(
        key_field.into(),
        secret_value(b64(pem.expose_secret().as_bytes())),
    );
    if let Some(kh) = known_hosts {
        data.insert(
            "known_hosts".into(),
            Value::String(b64(kh.to_text().as_bytes()).to_string()),
        );
    }
    data
}

/// A `v1` Secret with `data` (values base64-encoded by the caller).
pub(crate) fn secret_object(
    settings: &EmitSettings,
    key: &DeployKey,
    kh: &KnownHosts,
    type_: &str,
    data: Map<String, Value>,
) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": settings.metadata(&settings.secret_name(), key, kh),
        "type": type_,
        "data": Value::Object(data),
    })
}

fn generic_secret(
    settings: &EmitSettings,
    key: &DeployKey,
    kh: &KnownHosts,
    pem: &crate::secret::PrivateKeyPem,
) -> Value {
    let data = key_data("ssh-privatekey", pem, Some(kh));
    secret_object(settings, key, kh, "kubernetes.io/ssh-auth", data)
}

#[cfg(test)]
mod tests;
