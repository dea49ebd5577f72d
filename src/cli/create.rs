//! `sealkey create`: args -> CreateSettings -> create() -> sealed output.

use super::cluster::{runtime, ClusterArgs};
use super::common::{SealArgs, OK};
use super::Ui;
use crate::create::{create, CreateSettings};
use crate::emit::{Consumer, DocumentKind, EmitSettings, WorkloadKind};
use crate::keygen::KeyType;
use crate::known_hosts::KnownHosts;
use crate::repo::RepoRef;
use crate::seal::SealMethod;
use anyhow::Result;
use std::path::PathBuf;

/// Generate a deploy key for a repository and emit its consumer's manifests, sealed.
///
/// Example (offline, no token, no cluster):
///   sealkey create --repo acme/dags --namespace dev --for airflow-chart --emit helmrelease \
///     --seal age --seal-to examples/age-recipients.txt
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The GitHub repository the key is for, OWNER/REPO.
    #[arg(long, value_name = "OWNER/REPO")]
    pub repo: String,
    /// Namespace of the emitted objects (default: flux-system for flux, argocd for argocd, else default).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Who reads the key.
    #[arg(
        long = "for",
        value_enum,
        default_value = "airflow-chart",
        value_name = "CONSUMER"
    )]
    pub consumer: Consumer,
    /// What to emit for that consumer.
    #[arg(
        long = "emit",
        value_enum,
        default_value = "secret",
        value_name = "DOCUMENT"
    )]
    pub document: DocumentKind,
    /// Name of the Secret (default depends on --for: airflow-ssh-secret, git-creds, ...).
    #[arg(long)]
    pub secret_name: Option<String>,
    #[command(flatten)]
    pub key: KeyArgs,
    /// known_hosts file for the git host (default: github.com's pinned host keys).
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// SSH host of the git server (GitHub Enterprise: its host name).
    #[arg(long, default_value = "github.com")]
    pub git_host: String,
    /// Full clone URL, overriding git@HOST:OWNER/REPO.git (e.g. ssh://git@host:2222/owner/repo.git).
    #[arg(long)]
    pub repo_url: Option<String>,
    #[command(flatten)]
    pub chart: ChartArgs,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    #[command(flatten)]
    pub seal: SealArgs,
    /// Write the Secret straight into the cluster (server-side apply, field manager sealkey)
    /// instead of emitting manifests; nothing is printed or written to disk.
    #[arg(long, conflicts_with_all = ["seal", "seal_to", "out"], help_heading = "Cluster")]
    pub apply: bool,
    #[command(flatten)]
    pub cluster: ClusterArgs,
}

/// Key generation flags.
#[derive(Debug, clap::Args)]
pub struct KeyArgs {
    /// Key algorithm.
    #[arg(long, value_enum, default_value = "ed25519")]
    pub key_type: KeyType,
    /// Comment stored in the key (default sealkey:OWNER/REPO).
    #[arg(long)]
    pub comment: Option<String>,
}

/// Apache Airflow chart and HelmRelease flags.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Airflow chart")]
pub struct ChartArgs {
    /// HelmRelease (and Helm release) name.
    #[arg(long, default_value = "airflow")]
    pub release_name: String,
    /// Apache Airflow chart version.
    #[arg(long, default_value = "1.18.0")]
    pub chart_version: String,
    /// The Flux HelmRepository serving the chart, NAMESPACE/NAME.
    #[arg(long, default_value = "flux-system/apache-airflow")]
    pub chart_source: String,
    /// Branch to sync.
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// Directory in the repo that holds the DAGs (default: the repo root).
    #[arg(long)]
    pub sub_path: Option<String>,
    /// Airflow connection id for --for airflow-git-bundle.
    #[arg(long, default_value = "git_default")]
    pub conn_id: String,
}

/// Flags for `--emit mount` patches.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Mount patch")]
pub struct WorkloadArgs {
    /// Workload to patch.
    #[arg(long, default_value = "git-sync")]
    pub workload: String,
    /// Its kind.
    #[arg(long, value_enum, default_value = "deployment")]
    pub workload_kind: WorkloadKind,
    /// Container that reads the key.
    #[arg(long, default_value = "git-sync")]
    pub container: String,
    /// Set the pod's fsGroup (65533 for git-sync) and mount the key 0440 instead of 0400.
    #[arg(long, value_name = "GID")]
    pub fs_group: Option<i64>,
}

impl CreateArgs {
    /// Turns flags into emit settings (validated later, before any key exists).
    pub fn emit_settings(&self, repo: RepoRef) -> EmitSettings {
        let ns = self
            .namespace
            .clone()
            .unwrap_or_else(|| self.consumer.default_namespace().to_string());
        let mut s = EmitSettings::new(repo, &ns, self.consumer, self.document);
        s.secret_name = self.secret_name.clone();
        s.git_host = self.git_host.clone();
        s.repo_url = self.repo_url.clone();
        s.release_name = self.chart.release_name.clone();
        s.chart_version = self.chart.chart_version.clone();
        s.chart_source = self.chart.chart_source.clone();
        s.branch = self.chart.branch.clone();
        s.sub_path = self.chart.sub_path.clone();
        s.conn_id = self.chart.conn_id.clone();
        s.workload = self.workload.workload.clone();
        s.workload_kind = self.workload.workload_kind;
        s.container = self.workload.container.clone();
        s.fs_group = self.workload.fs_group;
        s
    }
}

pub fn run(args: CreateArgs, ui: &Ui) -> Result<u8> {
    let repo = RepoRef::parse(&args.repo)?;
    let emit = args.emit_settings(repo.clone());
    emit.validate()?;
    if args.apply {
        return run_apply(args, emit, ui);
    }
    if args.cluster.dry_run || args.cluster.kubeconfig.is_some() || args.cluster.context.is_some() {
        return Err(crate::error::Error::input(
            "--dry-run/--kubeconfig/--context",
            "these only matter with --apply",
            "add --apply to write the Secret into the cluster",
        )
        .into());
    }
    let method = args.seal.method()?;
    let what = if args.document == DocumentKind::ExtraSecrets {
        "a HelmRelease with the private key in values.extraSecrets"
    } else {
        "the unsealed private key"
    };
    args.seal.check_destination(method, what)?;
    let seal = args.seal.settings(method, ui)?;
    let known_hosts = match &args.known_hosts {
        Some(path) => KnownHosts::from_file(path)?,
        None => KnownHosts::github_pinned(),
    };
    if args.known_hosts.is_none() && args.git_host != "github.com" {
        return Err(crate::error::Error::input(
            format!("--git-host {}", args.git_host),
            "no host keys known for this host",
            "pass --known-hosts FILE with its keys (e.g. from `ssh-keyscan HOST`), so host-key checking stays on",
        )
        .into());
    }
    if args.consumer == Consumer::GitSync
        && args.document == DocumentKind::Mount
        && args.workload.fs_group.is_none()
    {
        ui.warn("git-sync runs as uid 65533: without --fs-group 65533 (or a pod fsGroup) it cannot read a 0400 root-owned key file");
    }
    for problem in crate::harden::protect_process() {
        ui.detail(&problem);
    }
    let settings = CreateSettings {
        key_type: args.key.key_type,
        comment: args
            .key
            .comment
            .clone()
            .unwrap_or_else(|| format!("sealkey:{}", repo.slug())),
        emit,
        known_hosts,
        seal,
    };
    ui.step(&format!(
        "[1/2] generating {} key in memory",
        settings.key_type.as_str()
    ));
    let created = create(&settings)?;
    ui.step(&format!("[2/2] sealing with {}", method.as_str()));
    args.seal.write(&created.output)?;
    if let Some(out) = &args.seal.out {
        ui.info(&format!("wrote {} (mode 0600)", out.display()));
    }
    ui.info(&format!("public key:  {}", created.key.public_openssh()));
    ui.info(&format!("fingerprint: {}", created.key.fingerprint()));
    if method != SealMethod::None {
        ui.info(&format!(
            "next: add the public key to {} as a read-only deploy key (Settings > Deploy keys; leave \"Allow write access\" unticked)",
            repo.slug()
        ));
    }
    Ok(OK)
}

fn known_hosts_for(args: &CreateArgs) -> Result<KnownHosts> {
    if args.known_hosts.is_none() && args.git_host != "github.com" {
        return Err(crate::error::Error::input(
            format!("--git-host {}", args.git_host),
            "no host keys known for this host",
            "pass --known-hosts FILE with its keys (e.g. from `ssh-keyscan HOST`), so host-key checking stays on",
        )
        .into());
    }
    Ok(match &args.known_hosts {
        Some(path) => KnownHosts::from_file(path)?,
        None => KnownHosts::github_pinned(),
    })
}

/// `create --apply`: the Secret goes into the cluster, nothing to stdout or disk.
fn run_apply(args: CreateArgs, emit: crate::emit::EmitSettings, ui: &Ui) -> Result<u8> {
    if args.document != DocumentKind::Secret {
        return Err(crate::error::Error::input(
            format!("--apply --emit {}", args.document.as_str()),
            "--apply writes only the Secret",
            "drop --emit (or use --emit secret); emit other documents without --apply",
        )
        .into());
    }
    let known_hosts = known_hosts_for(&args)?;
    for problem in crate::harden::protect_process() {
        ui.detail(&problem);
    }
    let settings = CreateSettings {
        key_type: args.key.key_type,
        comment: args
            .key
            .comment
            .clone()
            .unwrap_or_else(|| format!("sealkey:{}", emit.repo.slug())),
        emit,
        known_hosts,
        seal: crate::seal::SealSettings::None,
    };
    let rt = runtime()?;
    let applied = rt.block_on(async {
        ui.step("[1/2] connecting to the cluster");
        let cluster = crate::cluster::Cluster::connect(&args.cluster.settings()).await?;
        ui.detail(&format!("API server {}", cluster.server()));
        ui.step(&format!(
            "[2/2] generating a {} key and applying Secret {}/{}",
            settings.key_type.as_str(),
            settings.emit.namespace,
            settings.emit.secret_name()
        ));
        crate::create::apply(&settings, &cluster).await
    })?;
    let how = match applied.method {
        crate::cluster::WriteMethod::Apply => "server-side apply",
        crate::cluster::WriteMethod::Create => "create (the server has no apply)",
        crate::cluster::WriteMethod::PreconditionedPatch => "patch (the server has no apply)",
    };
    let dry = if args.cluster.dry_run {
        " (server-side dry run: nothing stored)"
    } else {
        ""
    };
    for s in &applied.secrets {
        ui.info(&format!("applied Secret {s} by {how}{dry}"));
    }
    ui.info(&format!("public key:  {}", applied.key.public_openssh()));
    ui.info(&format!("fingerprint: {}", applied.key.fingerprint()));
    ui.info(&format!(
        "next: add the public key to {} as a read-only deploy key (Settings > Deploy keys; leave \"Allow write access\" unticked)",
        settings.emit.repo.slug()
    ));
    Ok(OK)
}
