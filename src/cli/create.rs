//! `sealkey create`: args -> CreateSettings -> generate -> register (with --register) -> seal -> write.

use super::cluster::ClusterArgs;
use super::common::{SealArgs, OK};
use super::github_args::{runtime, GithubArgs};
use super::Outcome;
use super::Ui;
use crate::create::{create, CreateSettings, CreateStep, Delivery, Registration};
use crate::emit::{Consumer, DocumentKind, EmitSettings, PatchKind};
use crate::error::Error;
use crate::github::title::key_title_at;
use crate::github::RepoKeys;
use crate::keygen::KeyType;
use crate::known_hosts::KnownHosts;
use crate::repo::RepoRef;
use crate::seal::{SealMethod, SealSettings};
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
    /// known_hosts file for the git host (default: GitHub's /meta with --register, else
    /// github.com's pinned host keys).
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// SSH host of the git server (default: github.com; with --register on GitHub Enterprise
    /// Server, the host of --api-url).
    #[arg(long, value_name = "HOST")]
    pub git_host: Option<String>,
    /// Full clone URL, overriding git@HOST:OWNER/REPO.git (e.g. ssh://git@host:2222/owner/repo.git).
    #[arg(long)]
    pub repo_url: Option<String>,
    /// Set sealkey's values (`dags.gitSync.sshKeySecret` and `knownHosts`) in this existing
    /// HelmRelease file, plain or SOPS-encrypted (then with --identity), changing no other line
    /// (comments, order, chart version, other values); the sealed Secret goes to --out or stdout.
    /// A file that cannot be merged safely is refused and left as it was. With --emit
    /// helmrelease.
    #[arg(
        long,
        value_name = "FILE",
        help_heading = "Airflow chart",
        conflicts_with = "apply"
    )]
    pub merge_into: Option<PathBuf>,
    /// Argo CD's `argocd-ssh-known-hosts-cm` ConfigMap file (your copy in git): the host keys
    /// it lacks are added to `ssh_known_hosts`, every other line kept, as `argocd cert add-ssh`
    /// adds them. sealkey never emits a whole ConfigMap (applying one would drop every other
    /// host Argo CD trusts). With --for argocd.
    #[arg(long, value_name = "FILE", conflicts_with = "apply")]
    pub argocd_known_hosts: Option<PathBuf>,
    #[command(flatten)]
    pub chart: ChartArgs,
    #[command(flatten)]
    pub workload: WorkloadArgs,
    #[command(flatten)]
    pub seal: SealArgs,
    /// Write the Secret straight into the cluster (server-side apply, field manager sealkey)
    /// instead of emitting manifests; nothing is printed or written to disk. With --register the
    /// key is registered first and deleted again if the apply fails.
    #[arg(long, conflicts_with_all = ["seal", "seal_to", "out"], help_heading = "Cluster")]
    pub apply: bool,
    #[command(flatten)]
    pub kube: ClusterArgs,
    #[command(flatten)]
    pub register: RegisterFlags,
    // issue 15: --store (AWS Secrets Manager + ExternalSecret); logic in cli/store.rs.
    #[command(flatten)]
    pub store: super::store::StoreArgs,
}

/// `--register`: put the public key on GitHub before any output is written.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "GitHub registration")]
pub struct RegisterFlags {
    /// Register the new public key as a deploy key on --repo (read-only), before any output is
    /// written; if sealing or writing fails afterwards, the key is deleted again. Host keys come
    /// from GitHub's /meta unless --known-hosts is given.
    #[arg(long)]
    pub register: bool,
    /// Let the deploy key push (only for consumers that write, e.g. Flux image automation).
    #[arg(long, requires = "register")]
    pub read_write: bool,
    /// Cluster name in the key title `sealkey CLUSTER/NAMESPACE/SECRET DATE`, so keys of
    /// different clusters never collide (default: the current kubeconfig context, else `default`).
    #[arg(long, value_name = "NAME", requires = "register")]
    pub cluster: Option<String>,
    /// Deploy key title, overriding the one above.
    #[arg(long, requires = "register")]
    pub title: Option<String>,
    #[command(flatten)]
    pub github: GithubArgs,
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
    /// HelmRelease (and Helm release) name [default: airflow]. With --emit helmrelease or
    /// extra-secrets, and --for airflow-git-bundle (its ConfigMap is RELEASE-git-bundle).
    #[arg(long)]
    pub release_name: Option<String>,
    /// Apache Airflow chart version, or a semver range Flux accepts [default: 1.18.0]. With
    /// --emit helmrelease or extra-secrets.
    #[arg(long)]
    pub chart_version: Option<String>,
    /// The Flux HelmRepository serving the chart, NAMESPACE/NAME [default:
    /// flux-system/apache-airflow]. With --emit helmrelease or extra-secrets.
    #[arg(long)]
    pub chart_source: Option<String>,
    /// Branch to sync [default: main]. With --emit helmrelease or extra-secrets, --for
    /// airflow-git-bundle, and --for git-sync --emit mount.
    #[arg(long)]
    pub branch: Option<String>,
    /// Directory in the repo that holds the DAGs (default: the repo root). With --emit
    /// helmrelease or extra-secrets, and --for airflow-git-bundle.
    #[arg(long)]
    pub sub_path: Option<String>,
    /// Airflow connection id [default: git_default]. With --for airflow-git-bundle, or
    /// --dag-bundle.
    #[arg(long)]
    pub conn_id: Option<String>,
    /// Airflow 3's GitDagBundle instead of git-sync: the values set
    /// `dagProcessor.dagBundleConfigList`, a `git` connection (file paths, host-key checking on)
    /// and the key Secret mounted read-only into every Airflow container. With --for
    /// airflow-chart --emit helmrelease, extra-secrets or values.
    #[arg(long)]
    pub dag_bundle: bool,
    /// Seconds between the DAG bundle's refreshes, its `refresh_interval` (default: Airflow's).
    /// With --dag-bundle.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=31_536_000))]
    pub bundle_refresh: Option<u64>,
}

/// Flags for `--emit mount` patches.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Mount patch")]
pub struct WorkloadArgs {
    /// Workload to patch [default: git-sync]. With --emit mount.
    #[arg(long)]
    pub workload: Option<String>,
    /// Its kind [default: deployment]. With --emit mount.
    #[arg(long, value_enum)]
    pub workload_kind: Option<PatchKind>,
    /// Container that reads the key [default: git-sync]. With --emit mount.
    #[arg(long)]
    pub container: Option<String>,
    /// Set the pod's fsGroup and mount the key 0440 instead of 0400. With --emit mount; for
    /// --for git-sync it defaults to 65533, git-sync's user, which cannot read a 0400 root-owned
    /// file. 0-2147483647, as Kubernetes accepts.
    #[arg(long, value_name = "GID", value_parser = clap::value_parser!(i64).range(0..=2_147_483_647))]
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
        s.git_host = self.git_host.clone().unwrap_or_else(|| "github.com".into());
        s.repo_url = self.repo_url.clone();
        let or = |v: &Option<String>, d: &str| v.clone().unwrap_or_else(|| d.to_string());
        s.release_name = or(&self.chart.release_name, "airflow");
        s.chart_version = or(&self.chart.chart_version, "1.18.0");
        s.chart_source = or(&self.chart.chart_source, "flux-system/apache-airflow");
        s.branch = or(&self.chart.branch, "main");
        s.sub_path = self.chart.sub_path.clone();
        s.conn_id = or(&self.chart.conn_id, "git_default");
        s.dag_bundle = self.chart.dag_bundle;
        s.refresh_interval = self.chart.bundle_refresh;
        s.workload = or(&self.workload.workload, "git-sync");
        s.workload_kind = self.workload.workload_kind.unwrap_or(PatchKind::Deployment);
        s.container = or(&self.workload.container, "git-sync");
        s.fs_group = self.workload.fs_group.or(
            // git-sync runs as uid 65533: a 0400 root-owned file is unreadable to it.
            (self.consumer == Consumer::GitSync && self.document == DocumentKind::Mount)
                .then_some(65533),
        );
        s
    }

    /// Refuses a git host whose keys nothing provides (no --known-hosts, no --register to read
    /// /meta, not github.com's pinned keys): host-key checking must stay on.
    pub fn require_host_keys(&self, emit: &EmitSettings) -> std::result::Result<(), Error> {
        if self.known_hosts.is_none() && !self.register.register && emit.git_host != "github.com" {
            return Err(Error::input(
                format!("--git-host {}", emit.git_host),
                "no host keys known for this host",
                "pass --known-hosts FILE with its keys (e.g. from `ssh-keyscan HOST`), or --register to read them from the API's /meta, so host-key checking stays on",
            ));
        }
        Ok(())
    }

    /// Refuses settings the chosen --for/--emit would silently ignore.
    pub fn check_unused_settings(&self) -> std::result::Result<(), Error> {
        let helm_release = self.consumer == Consumer::AirflowChart
            && matches!(
                self.document,
                DocumentKind::HelmRelease | DocumentKind::ExtraSecrets
            );
        let bundle = self.consumer == Consumer::AirflowGitBundle;
        let mount = self.document == DocumentKind::Mount;
        let git_sync_mount = self.consumer == Consumer::GitSync && mount;
        let values =
            self.consumer == Consumer::AirflowChart && self.document == DocumentKind::Values;
        let c = &self.chart;
        let w = &self.workload;
        let checks: [(&str, bool, bool, &str); 12] = [
            ("--release-name", c.release_name.is_some(), helm_release || bundle, "--emit helmrelease or extra-secrets, or --for airflow-git-bundle"),
            ("--chart-version", c.chart_version.is_some(), helm_release, "--emit helmrelease or extra-secrets"),
            ("--chart-source", c.chart_source.is_some(), helm_release, "--emit helmrelease or extra-secrets"),
            ("--branch", c.branch.is_some(), helm_release || values || bundle || git_sync_mount, "--emit helmrelease, extra-secrets or values, --for airflow-git-bundle, or --for git-sync --emit mount"),
            ("--sub-path", c.sub_path.is_some(), helm_release || values || bundle, "--emit helmrelease, extra-secrets or values, or --for airflow-git-bundle"),
            ("--conn-id", c.conn_id.is_some(), bundle || (c.dag_bundle && (helm_release || values)), "--for airflow-git-bundle, or --dag-bundle"),
            ("--dag-bundle", c.dag_bundle, helm_release || values, "--for airflow-chart --emit helmrelease, extra-secrets or values"),
            ("--bundle-refresh", c.bundle_refresh.is_some(), c.dag_bundle && (helm_release || values), "--dag-bundle"),
            ("--workload", w.workload.is_some(), mount, "--emit mount"),
            ("--workload-kind", w.workload_kind.is_some(), mount, "--emit mount"),
            ("--container", w.container.is_some(), mount, "--emit mount"),
            ("--fs-group", w.fs_group.is_some(), mount, "--emit mount"),
        ];
        for (flag, given, used, takes) in checks {
            if given && !used {
                return Err(Error::input(
                    format!(
                        "{flag} with --for {} --emit {}",
                        self.consumer.as_str(),
                        self.document.as_str()
                    ),
                    "this output does not use it, so it would be silently ignored",
                    format!("{flag} is read by {takes}; drop it or change --for/--emit"),
                ));
            }
        }
        Ok(())
    }
}

pub fn run(mut args: CreateArgs, ui: &Ui) -> Result<Outcome> {
    // .sops.yaml creation_rules (see cli/sops_config.rs).
    let sops_rule = if args.store.store.is_none() {
        super::sops_config::apply(&mut args.seal, ui)?
    } else {
        Default::default()
    };
    // 1. Validate every input before a key exists.
    let repo = RepoRef::parse(&args.repo)?;
    let mut emit = args.emit_settings(repo.clone());
    let api_url = if args.register.register {
        Some(args.register.github.api.api_url()?)
    } else {
        None
    };
    if let Some(api) = &api_url {
        // GitHub Enterprise Server serves git on the API host.
        if args.git_host.is_none() && !api.is_github_com() {
            emit.git_host = api.git_host();
        }
    }
    if let (Some(path), true) = (&args.merge_into, args.chart.dag_bundle) {
        return Err(Error::input(
            format!("--merge-into {} with --dag-bundle", path.display()),
            "merging sets the git-sync values; moving an existing HelmRelease to a DAG bundle is its own reviewed change",
            format!("run `sealkey to-dag-bundle {}` (it keeps the key Secret), or drop --dag-bundle", path.display()),
        )
        .into());
    }
    // Issue 21 item 7: the repository in the HelmRelease decides which host keys it needs.
    if let Some(path) = &args.merge_into {
        if let Some(url) = repo_in_merge_target(path)? {
            follow_repo_of_file(&args, &mut emit, &repo, path, &url)?;
            if let Some(api) = &api_url {
                let (host, _) = emit.ssh_endpoint();
                if host != api.git_host() {
                    return Err(Error::input(
                        format!("--merge-into {} with --register", path.display()),
                        format!("its repository is on {host}, but the key would be registered through the API of {}", api.git_host()),
                        format!("pass --api-url https://{host}/api/v3 (GitHub Enterprise Server) so the key lands where git-sync connects, or drop --register and register it there"),
                    )
                    .into());
                }
            }
        }
    }
    if args.argocd_known_hosts.is_some() && args.consumer != Consumer::Argocd {
        return Err(Error::input(
            "--argocd-known-hosts",
            "it adds host keys to Argo CD's known-hosts ConfigMap",
            "use it with --for argocd, or drop it",
        )
        .into());
    }
    args.check_unused_settings()?;
    let mut paths = args.seal.named_paths();
    if let Some(p) = &args.merge_into {
        paths.push(("--merge-into", p.clone()));
    }
    if let Some(p) = &args.known_hosts {
        paths.push(("--known-hosts", p.clone()));
    }
    super::common::refuse_shared_paths(&paths)?;
    if args.seal.identity.is_some() && args.seal.update.is_none() && args.merge_into.is_none() {
        return Err(Error::input(
            "--identity",
            "it opens the file of --update or a SOPS --merge-into, and neither was given",
            "drop --identity, or add --update FILE / --merge-into FILE",
        )
        .into());
    }
    emit.validate()?;
    // The key goes to an external store; see cli/store.rs.
    if args.store.store.is_some() {
        return super::store::run_create(args, emit, ui);
    }
    let apply = args.apply;
    let method = if apply {
        check_apply_flags(&args)?;
        SealMethod::None
    } else {
        if args.kube.dry_run || args.kube.kubeconfig.is_some() || args.kube.context.is_some() {
            return Err(Error::input(
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
        if let Some(out) = &args.seal.out {
            check_out_directory(out)?;
        }
        method
    };
    let seal = if apply {
        SealSettings::None
    } else {
        match super::sops_config::finish(args.seal.settings(method, ui)?, &sops_rule) {
            // create writes whole objects: over a user's own object it would replace it.
            SealSettings::Sops(s) => SealSettings::Sops(s.keeping_foreign_objects()),
            other => other,
        }
    };
    args.require_host_keys(&emit)?;
    let client = if args.register.register {
        Some(args.register.github.client(ui)?)
    } else {
        None
    };
    // Steps: [cluster], [/meta], generate, [register], seal or apply.
    let uses_meta =
        client.is_some() && args.known_hosts.is_none() && (!apply || emit.git_host != "github.com");
    let total = 2 + usize::from(apply) + usize::from(uses_meta) + usize::from(client.is_some());
    let step_no = std::cell::Cell::new(0);
    let step = |what: &str| {
        step_no.set(step_no.get() + 1);
        ui.step(&format!("[{}/{total}] {what}", step_no.get()));
    };
    // Issue 21 item 8: the key of the file --force replaces, read before it is gone.
    let replaced = args.seal.replaced_key();
    let rt = runtime()?;
    let (created, settings, merged_hr, values_fragment, title) = rt.block_on(async {
        let cluster = if apply {
            step("connecting to the cluster");
            let notices = ui.clone();
            let c = crate::cluster::Cluster::connect(&args.kube.settings())
                .await?
                .on_wait(move |n| super::cluster::tell_wait(&notices, n));
            ui.detail(&format!("API server {}", c.server()));
            Some(c)
        } else {
            None
        };
        let known_hosts = match (&args.known_hosts, &client) {
            (Some(path), _) => KnownHosts::from_file(path)?,
            (None, Some(c)) if uses_meta => {
                step("reading host keys from the API's /meta");
                let kh = c.known_hosts(&emit.git_host).await?;
                if emit.git_host == "github.com" {
                    super::known_hosts::warn_if_not_pinned(kh.lines(), ui);
                }
                kh
            }
            _ => KnownHosts::github_pinned(),
        };
        check_known_hosts_cover(&known_hosts, &emit, args.known_hosts.as_deref())?;
        // Issue 21 item 9: with --apply, Argo CD learns the host's keys too, added to its live
        // list (planned and conflict-checked before a key exists).
        let argocd_hosts = match &cluster {
            Some(c) if emit.consumer == Consumer::Argocd && !known_hosts.equals_pinned_github() => {
                Some(c.plan_argocd_known_hosts(&emit.namespace, &known_hosts).await?)
            }
            _ => None,
        };
        if let Some(path) = &args.argocd_known_hosts {
            plan_argocd_known_hosts(path, &known_hosts)?;
        }
        // --merge-into and --emit values: planned (and refused) before a key exists; the sealed
        // stream then holds only the Secret.
        let merged_hr = match &args.merge_into {
            Some(path) => Some(plan_merge(path, &args, &emit, &known_hosts)?),
            None => None,
        };
        if args.document == DocumentKind::Values && args.seal.out.is_none() {
            return Err(Error::input(
                "--emit values",
                "the values fragment goes to stdout, so the sealed Secret needs a file",
                "add --out FILE for the Secret (`sealkey create ... --emit values --out secret.sops.yaml > values.yaml`)",
            )
            .into());
        }
        let values_fragment = (args.document == DocumentKind::Values)
            .then(|| crate::yaml::to_yaml(&crate::emit::chart_values(&emit, &known_hosts)));
        if merged_hr.is_some() || args.document == DocumentKind::Values {
            emit.document = DocumentKind::Secret;
        }
        let context = args.register.cluster.clone().unwrap_or_else(|| match &cluster {
            Some(c) => c.context().to_string(),
            None => current_context(),
        });
        // The cluster's identity (kube-system's UID) in the title, as rotate reads it.
        let uid = match (&cluster, &args.register.title) {
            // An unreachable API server is reported by the apply step, named.
            (Some(c), None) => c.kube_system_uid().await.ok().flatten(),
            _ => None,
        };
        let context = crate::github::title::cluster_part(&context, uid.as_deref());
        let title = args.register.title.clone().unwrap_or_else(|| {
            key_title_at(&context, &emit.namespace, &emit.secret_name(), emit.created)
        });
        refuse_several_objects_into_a_file(&args, &seal, &emit, &known_hosts)?;
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
        let registry = client.as_ref().map(|c| RepoKeys::new(c, repo.clone()));
        let registration = registry.as_ref().map(|r| Registration {
            registry: r,
            title: title.clone(),
            read_only: !args.register.read_write,
        });
        let delivery = match &cluster {
            Some(c) => Delivery::Apply(c),
            None => Delivery::Write(Box::new(|out: &crate::seal::SealedOutput| {
                args.seal.write_output(out)
            })),
        };
        // What a signal would have to undo: a key registered under the title sealkey made (its
        // moment to the millisecond makes it this run's; a --title given by hand may not be).
        let journal = super::interrupt::Journal::default();
        let undo_title = args.register.title.is_none().then(|| title.clone());
        let progress = |s: CreateStep| match s {
            CreateStep::Register => {
                journal.registering(None, undo_title.as_deref());
                step(&format!(
                    "registering the deploy key on {} as \"{title}\"",
                    repo.slug()
                ))
            }
            CreateStep::Seal | CreateStep::Apply => {
                journal.delivering();
                match s {
                    CreateStep::Seal => step(&format!("sealing with {}", method.as_str())),
                    _ => step(&format!(
                        "applying Secret {}/{}",
                        settings.emit.namespace,
                        settings.emit.secret_name()
                    )),
                }
            }
            CreateStep::Generate => step(&format!(
                "generating {} key in memory",
                settings.key_type.as_str()
            )),
            // The store delivery runs through cli/store.rs.
            CreateStep::Check | CreateStep::Store => {}
        };
        let created = tokio::select! {
            created = create(&settings, registration, delivery, &progress) => created?,
            signal = super::interrupt::signalled() => {
                let stopped = match &registry {
                    Some(r) => {
                        let retire = format!(
                            "delete it under the repository's Deploy keys (titled \"{title}\"), or with `sealkey keys prune --repo {} --retire FINGERPRINT`",
                            repo.slug()
                        );
                        let then = "if the sealed file was written (or the Secret applied) it holds the key: keep it; if not, delete the key titled as above".to_string();
                        super::interrupt::undo_after(signal, &journal, r, &retire, &then).await
                    }
                    None => super::interrupt::Interrupted {
                        signal,
                        said: "nothing was registered".into(),
                    },
                };
                return Err(anyhow::Error::new(stopped));
            }
        };
        if let (Some(c), Some(plan)) = (&cluster, &argocd_hosts) {
            c.add_argocd_known_hosts(plan).await?;
            let dry = if args.kube.dry_run { " (server-side dry run: nothing stored)" } else { "" };
            if plan.missing.is_empty() {
                ui.info(&format!("ConfigMap {}/argocd-ssh-known-hosts-cm already trusts these host keys", plan.namespace));
            } else {
                ui.info(&format!(
                    "added {} host key line(s) to ConfigMap {}/argocd-ssh-known-hosts-cm, every other line kept{dry}",
                    plan.missing.len(),
                    plan.namespace
                ));
            }
        }
        Ok::<_, anyhow::Error>((created, settings, merged_hr, values_fragment, title))
    })?;
    if let Some(out) = &args.seal.out {
        ui.info(&format!("wrote {} (mode 0600)", out.display()));
    }
    if let Some(merge) = &merged_hr {
        crate::output::write_atomic_with_mode(
            &merge.path,
            merge.text.as_bytes(),
            merge.mode,
            crate::error::Setting::MergeInto,
        )?;
        let removed = if merge.removed.is_empty() {
            String::new()
        } else {
            let names: Vec<String> = merge
                .removed
                .iter()
                .map(|e| format!("values.extraSecrets.{}", e.name))
                .collect();
            format!(" and removed {}", names.join(", "))
        };
        ui.info(&format!(
            "set dags.gitSync.sshKeySecret and knownHosts{removed} in {} ({} line(s) changed, nothing else)",
            merge.path.display(),
            merge.changed_lines
        ));
        tell_about_removed_entries(merge, &settings.emit, &repo, ui);
    }
    if let Some(path) = &args.argocd_known_hosts {
        match plan_argocd_known_hosts(path, &settings.known_hosts)? {
            Some((text, added)) => {
                crate::output::write_atomic_with_mode(
                    path,
                    text.as_bytes(),
                    file_mode(path),
                    crate::error::Setting::ArgocdKnownHosts,
                )?;
                ui.info(&format!(
                    "added {} host key line(s) to {} (argocd-ssh-known-hosts-cm), every other line kept: {}",
                    added.len(),
                    path.display(),
                    added.join("; ")
                ));
            }
            None => ui.info(&format!(
                "{} already trusts these host keys: nothing added",
                path.display()
            )),
        }
    } else if settings.emit.consumer == Consumer::Argocd
        && !settings.known_hosts.equals_pinned_github()
        && !apply
    {
        ui.info(&format!(
            "known hosts: Argo CD must trust {}'s host keys and sealkey never emits a whole argocd-ssh-known-hosts-cm (applying one drops every other host): add them with `argocd cert add-ssh --batch < known_hosts`, or to your ConfigMap file with --argocd-known-hosts FILE",
            settings.emit.ssh_endpoint().0
        ));
    }
    if let Some(values) = &values_fragment {
        super::common::write_stdout(values.as_bytes())?;
    }
    if let Some(method) = created.method {
        let how = match method {
            crate::cluster::WriteMethod::Apply => "server-side apply",
            crate::cluster::WriteMethod::Create => "create (the server has no apply)",
            crate::cluster::WriteMethod::PreconditionedPatch => "patch (the server has no apply)",
        };
        let dry = if args.kube.dry_run {
            " (server-side dry run: nothing stored)"
        } else {
            ""
        };
        for s in &created.applied {
            ui.info(&format!("applied Secret {s} by {how}{dry}"));
        }
    }
    let key = &created.key;
    ui.result(&format!("public key:  {}", key.public_openssh()));
    ui.result(&format!("fingerprint: {}", key.fingerprint()));
    if args.consumer == Consumer::AirflowChart && args.document == DocumentKind::Secret && !apply {
        ui.info("known hosts: the chart reads them from the HelmRelease, not this Secret: set dags.gitSync.knownHosts (`--emit values` prints it), or the chart turns host-key checking off");
    }
    if settings.emit.consumer == Consumer::Argocd && settings.known_hosts.equals_pinned_github() {
        ui.info("known hosts: Argo CD's default argocd-ssh-known-hosts-cm already trusts github.com's keys, so no ConfigMap was emitted (one would replace Argo CD's whole list)");
    }
    if let Some(old) = replaced.as_deref().filter(|fp| *fp != key.fingerprint()) {
        tell_about_replaced_key(old, &args, client.as_ref(), &repo, &rt, ui);
    }
    match &created.registered {
        Some(k) => ui.info(&format!(
            "registered deploy key {} on {} ({}): {}",
            k.id,
            repo.slug(),
            if k.read_only { "read-only" } else { "read-write" },
            k.title
        )),
        None if apply || method != SealMethod::None => ui.info(&format!(
            "next: register THIS key (running again would make a second one): `echo 'PUBLIC KEY ABOVE' | sealkey register --repo {slug} --title '{title}'`, or add it on GitHub as a read-only deploy key titled '{title}' (Settings > Deploy keys; leave \"Allow write access\" unticked)",
            slug = repo.slug()
        )),
        None => {}
    }
    Ok(OK)
}

/// `--apply` writes only the Secret, read-only.
fn check_apply_flags(args: &CreateArgs) -> Result<()> {
    if args.document != DocumentKind::Secret {
        return Err(Error::input(
            format!("--apply --emit {}", args.document.as_str()),
            "--apply writes only the Secret",
            "drop --emit (or use --emit secret); emit other documents without --apply",
        )
        .into());
    }
    if args.register.read_write {
        return Err(Error::input(
            "--apply --register --read-write",
            "keys sealkey writes into the cluster are registered read-only",
            "drop --read-write, or emit the manifests (without --apply) and register with write access",
        )
        .into());
    }
    Ok(())
}

/// `--out`'s directory must exist before a key is made (and registered).
/// A HelmRelease file with sealkey's values set, ready to be written over the original.
struct MergedHelmRelease {
    path: PathBuf,
    text: String,
    mode: u32,
    changed_lines: usize,
    /// `extraSecrets` entries taken out (they held a deploy key for the Secret sealkey now writes).
    removed: Vec<crate::emit::merge::ClearKeyEntry>,
}

fn plan_merge(
    path: &std::path::Path,
    args: &CreateArgs,
    emit: &EmitSettings,
    known_hosts: &KnownHosts,
) -> Result<MergedHelmRelease> {
    let what = format!("--merge-into {}", path.display());
    if args.consumer != Consumer::AirflowChart || args.document != DocumentKind::HelmRelease {
        return Err(Error::input(
            &what,
            format!("it merges the Airflow chart's dags.gitSync values, not --for {} --emit {}", args.consumer.as_str(), args.document.as_str()),
            "use it with --for airflow-chart --emit helmrelease (the key stays in its own sealed Secret)",
        )
        .into());
    }
    // Read first: a device or FIFO is refused naming this flag, never opened.
    let (bytes, meta) = crate::input_file::read_named_with_metadata(
        path,
        what.clone(),
        crate::input_file::DOCUMENT_MAX,
    )?;
    crate::output::check_target(path, crate::error::Setting::MergeInto)?;
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    let text = String::from_utf8(bytes.to_vec())
        .map_err(|_| Error::input(&what, "not UTF-8 text", "pass the HelmRelease YAML file"))?;
    let owned = crate::emit::merge::git_sync_owned(&emit.secret_name(), &known_hosts.to_text());
    let (merged, removed) = if crate::seal::sops::looks_like_sops(text.as_bytes()) {
        // A SOPS-encrypted HelmRelease: opened with --identity, the owned values set (encrypted
        // where the file's rule says so), the MAC renewed; every other line kept.
        let Some(identity) = &args.seal.identity else {
            return Err(Error::input(
                &what,
                "it is SOPS-encrypted: merging needs its data key (to encrypt owned values its rule encrypts, and to renew its MAC)",
                "add --identity FILE with an age identity of one of its recipients",
            )
            .into());
        };
        let ids = super::common::read_identity_file(identity)?;
        crate::seal::sops::merge_into_sealed_helm_release(
            &text,
            &what,
            &ids,
            &owned,
            &emit.secret_name(),
            jiff::Timestamp::now(),
        )?
    } else {
        crate::emit::merge::migrate_helm_release(&text, &what, &owned, &emit.secret_name())?
    };
    let old: std::collections::HashSet<&str> = text.lines().collect();
    let changed_lines = merged.lines().filter(|l| !old.contains(l)).count();
    Ok(MergedHelmRelease {
        path: path.to_path_buf(),
        text: merged,
        mode,
        changed_lines,
        removed,
    })
}

/// Issue 21 item 4: what a migration off a clear `extraSecrets` entry leaves to do.
fn tell_about_removed_entries(
    merge: &MergedHelmRelease,
    emit: &EmitSettings,
    repo: &RepoRef,
    ui: &Ui,
) {
    let new_secret = emit.secret_name();
    for e in &merge.removed {
        let held = e
            .fingerprint
            .as_deref()
            .unwrap_or("(not an OpenSSH key sealkey reads)");
        ui.info(&format!(
            "removed values.extraSecrets.{} from {}: it held deploy key {held}; the new key is only in its sealed Secret {new_secret}, so one writer owns it",
            e.name,
            merge.path.display()
        ));
        ui.info("the old key stays in the git history of this repository (every commit that held it) and in any clone: treat it as exposed; rewriting history does not recall copies");
        match &e.fingerprint {
            Some(fp) => ui.info(&format!(
                "once the cluster uses the new key (DAGs sync after Flux applied this commit), revoke the old one on GitHub: `sealkey keys prune --repo {} --retire {fp}` (add --held-by FILE for sealed files that must keep their key)",
                repo.slug()
            )),
            None => ui.info(&format!(
                "once the cluster uses the new key, delete the old one under {}'s Settings > Deploy keys (`sealkey keys list --repo {}` shows fingerprints)",
                repo.slug(),
                repo.slug()
            )),
        }
        if e.name != new_secret {
            ui.info(&format!(
                "the chart made Secret {ns}/{name} as a Helm hook, and Helm never deletes hook objects: once nothing mounts it, `kubectl -n {ns} delete secret {name}`",
                ns = emit.namespace,
                name = e.name
            ));
        }
    }
}

/// Issue 21 item 8: `--force` replaced a file that named a key; say which, and how to retire it.
fn tell_about_replaced_key(
    old: &str,
    args: &CreateArgs,
    client: Option<&crate::github::GithubClient>,
    repo: &RepoRef,
    rt: &tokio::runtime::Runtime,
    ui: &Ui,
) {
    let out = args
        .seal
        .out
        .as_ref()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    ui.info(&format!(
        "replaced {out}, which held key {old} (as its sealkey.io/fingerprint annotation claims): if that key is registered it still opens the repository"
    ));
    if let Some(c) = client {
        match rt.block_on(c.list_deploy_keys(repo)) {
            Ok(keys) => {
                let found: Vec<String> = keys
                    .iter()
                    .filter(|k| crate::github::hygiene::same_fingerprint(old, &k.fingerprint()))
                    .map(|k| {
                        format!(
                            "deploy key {} \"{}\" ({})",
                            k.id,
                            k.title,
                            if k.read_only {
                                "read-only"
                            } else {
                                "read-write"
                            }
                        )
                    })
                    .collect();
                if found.is_empty() {
                    ui.info(&format!(
                        "no deploy key on {} has that fingerprint",
                        repo.slug()
                    ));
                } else {
                    ui.info(&format!("on {}: {}", repo.slug(), found.join(", ")));
                }
            }
            Err(e) => ui.warn(&format!(
                "could not list the deploy keys of {}: {e}",
                repo.slug()
            )),
        }
    }
    ui.info(&format!(
        "once the cluster uses the new key, retire the old one: `sealkey keys prune --repo {} --retire {old}`",
        repo.slug()
    ));
}

/// `spec.values.dags.gitSync.repo` of the HelmRelease in `path`, when it can be read in clear.
fn repo_in_merge_target(path: &std::path::Path) -> Result<Option<String>> {
    // Bounded and regular-file only, as plan_merge reads it: a FIFO or /dev/zero is refused by
    // name here, before anything else reads it.
    let bytes = match crate::input_file::read_regular(path, crate::input_file::DOCUMENT_MAX) {
        Ok((bytes, _)) => bytes,
        Err(crate::input_file::Unreadable::Io(_)) => return Ok(None), // plan_merge reports it
        Err(e) => {
            return Err(crate::input_file::refusal(
                path,
                format!("--merge-into {}", path.display()),
                crate::input_file::DOCUMENT_MAX,
                e,
            )
            .into())
        }
    };
    let Ok(text) = std::str::from_utf8(&bytes) else {
        return Ok(None);
    };
    let Ok(docs) = crate::yaml::parse_stream(text, "--merge-into") else {
        return Ok(None);
    };
    let url = docs
        .iter()
        .find(|d| d["kind"] == "HelmRelease")
        .and_then(|d| d["spec"]["values"]["dags"]["gitSync"]["repo"].as_str())
        .filter(|u| !u.starts_with("ENC["))
        .map(str::to_string);
    Ok(url)
}

/// The HelmRelease's repository decides the SSH endpoint (and so the host keys): refuses an
/// HTTPS repo (git-sync would never use the key), another repository than --repo, and a
/// --git-host/--repo-url naming another host; else makes the emitted settings follow it.
fn follow_repo_of_file(
    args: &CreateArgs,
    emit: &mut EmitSettings,
    repo: &RepoRef,
    path: &std::path::Path,
    url: &str,
) -> Result<()> {
    let what = format!("--merge-into {}", path.display());
    let lower = url.to_ascii_lowercase();
    if lower.starts_with("https://") || lower.starts_with("http://") {
        return Err(Error::input(
            &what,
            format!("its dags.gitSync.repo is {url}: git-sync clones that over HTTPS and would never use a deploy key"),
            format!("change it to the SSH form first (git@HOST:{}.git), then run this again; nothing was written", repo.slug()),
        )
        .into());
    }
    let mut probe = EmitSettings::new(repo.clone(), "x", emit.consumer, emit.document);
    probe.repo_url = Some(url.to_string());
    let (host, port) = probe.ssh_endpoint();
    let path_part = match url::Url::parse(url) {
        Ok(u) if u.host_str().is_some() => u.path().to_string(),
        _ => url
            .split_once(':')
            .map(|(_, p)| p.to_string())
            .unwrap_or_default(),
    };
    let slug = path_part
        .trim_matches('/')
        .trim_end_matches(".git")
        .to_ascii_lowercase();
    if slug != repo.slug().to_ascii_lowercase() {
        return Err(Error::input(
            &what,
            format!(
                "its dags.gitSync.repo ({url}) is {slug}, not --repo {}",
                repo.slug()
            ),
            "pass the --repo the HelmRelease syncs, or fix its repo first; nothing was written",
        )
        .into());
    }
    if args.git_host.is_some() || args.repo_url.is_some() {
        let given = emit.ssh_endpoint();
        if given != (host.clone(), port) {
            return Err(Error::input(
                &what,
                format!("its dags.gitSync.repo ({url}) is on {host}, but --git-host/--repo-url say {}", given.0),
                "the repository in the file decides the host: drop --git-host/--repo-url, or fix the file's repo; nothing was written",
            )
            .into());
        }
    } else {
        emit.repo_url = Some(url.to_string());
        emit.git_host = host;
    }
    Ok(())
}

/// The user's Argo CD known-hosts ConfigMap with the missing host keys added (`None`: nothing
/// to add); checked before a key exists, written after.
fn plan_argocd_known_hosts(
    path: &std::path::Path,
    kh: &KnownHosts,
) -> Result<Option<(String, Vec<String>)>> {
    crate::output::check_target(path, crate::error::Setting::ArgocdKnownHosts)?;
    let what = format!("--argocd-known-hosts {}", path.display());
    let bytes = std::fs::read(path).map_err(|e| Error::file("read", path, e))?;
    let text = String::from_utf8(bytes)
        .map_err(|_| Error::input(&what, "not UTF-8 text", "pass the ConfigMap's YAML file"))?;
    Ok(crate::emit::argocd::add_known_hosts(&text, &what, kh)?)
}

fn file_mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.permissions().mode() & 0o777)
        .unwrap_or(0o644)
}

/// With host-key checking on, git refuses a host no known_hosts line names: refuse now (exit 2)
/// rather than emit a configuration that fails at runtime.
fn check_known_hosts_cover(
    kh: &KnownHosts,
    emit: &EmitSettings,
    file: Option<&std::path::Path>,
) -> Result<()> {
    let (host, port) = emit.ssh_endpoint();
    if kh.covers(&host, port) {
        return Ok(());
    }
    let name = match port {
        Some(p) => format!("[{host}]:{p}"),
        None => host.clone(),
    };
    let scan = match port {
        Some(p) => format!("ssh-keyscan -p {p} {host}"),
        None => format!("ssh-keyscan {host}"),
    };
    Err(Error::input(
        match file {
            Some(f) => format!("--known-hosts {}", f.display()),
            None => "known_hosts".to_string(),
        },
        format!("no entry for {name}, the host the repository URL points at: git would refuse to connect with host-key checking on"),
        format!("add its keys (`{scan}`, checked against the server's published fingerprints), or set --git-host/--repo-url to the host this file is for"),
    )
    .into())
}

fn check_out_directory(out: &std::path::Path) -> Result<()> {
    let dir = match out.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    if !dir.is_dir() {
        return Err(Error::input(
            format!("--out {}", out.display()),
            format!("directory {} does not exist", dir.display()),
            "create it first or choose another path",
        )
        .into());
    }
    Ok(())
}

/// sops opens one sealed object per file: a SOPS output of several objects for an `--out` file
/// path is refused before a key exists (the shape is emitted once around a throwaway key, never
/// shown or kept), rather than after registering one.
fn refuse_several_objects_into_a_file(
    args: &CreateArgs,
    seal: &SealSettings,
    emit: &crate::emit::EmitSettings,
    known_hosts: &KnownHosts,
) -> Result<()> {
    let (SealSettings::Sops(_), Some(out)) = (seal, &args.seal.out) else {
        return Ok(());
    };
    let probe = crate::keygen::DeployKey::generate(crate::keygen::KeyType::Ed25519, "probe")?;
    let n = crate::emit::emit(emit, &probe, known_hosts)?
        .expose_docs()
        .len();
    if let crate::seal::sops::layout::Target::File(file) = crate::seal::sops::layout::target(out, n)
    {
        if n > 1 {
            return Err(crate::seal::sops::layout::several_objects_for_a_file(
                &file,
                n,
                crate::error::Setting::Out,
            )
            .into());
        }
    }
    Ok(())
}

/// The current kubeconfig context, for key titles and store tags; `default` when there is none.
pub(super) fn current_context() -> String {
    kube::config::Kubeconfig::read()
        .ok()
        .and_then(|k| k.current_context)
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "default".into())
}
