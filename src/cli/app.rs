//! `sealkey app create`: a GitHub App's private key as the git credential of Flux, git-sync, Argo
//! CD or Airflow. args -> key (file or stdin) -> proof against GitHub -> emit -> seal -> write.

use super::common::{SealArgs, OK};
use super::github_args::{runtime, ApiArgs};
use super::Outcome;
use super::Ui;
use crate::emit::github_app::{app_objects, AppConsumer, AppEmitSettings};
use crate::error::Error;
use crate::github::app_credential::{prove_access, AppKey};
use crate::github::Auth;
use crate::repo::RepoRef;
use crate::seal;
use anyhow::Result;
use std::path::PathBuf;

/// A GitHub App as the git credential (for organisations where deploy keys are switched off).
#[derive(Debug, clap::Args)]
pub struct AppArgs {
    #[command(subcommand)]
    command: AppCommand,
}

#[derive(Debug, clap::Subcommand)]
enum AppCommand {
    /// Prove a GitHub App's key opens a repository, then emit the consumer's Secret (sealed) and
    /// the object that uses it.
    ///
    /// Example:
    ///   sealkey app create --repo acme/dags --app-id 123456 --app-key app.pem \
    ///     --for flux --seal-to age1...
    Create(Box<AppCreateArgs>),
}

/// `sealkey app create` flags.
#[derive(Debug, clap::Args)]
pub struct AppCreateArgs {
    /// The GitHub repository the consumer clones, OWNER/REPO.
    #[arg(long, value_name = "OWNER/REPO")]
    pub repo: String,
    /// The App's ID (a number, from its settings page), or for git-sync its client ID (Iv...).
    #[arg(long, value_name = "ID")]
    pub app_id: String,
    /// The App's private key: the .pem file from its settings page (PKCS#1 or PKCS#8, RSA of
    /// at least 2048 bits), or `-` to read it from stdin. Never an argument's value.
    #[arg(long, value_name = "FILE|-")]
    pub app_key: PathBuf,
    /// The installation that covers the repository (default: looked up from the repository).
    #[arg(long, value_name = "ID")]
    pub installation_id: Option<u64>,
    /// Who reads the key.
    #[arg(long = "for", value_enum, value_name = "CONSUMER")]
    pub consumer: AppConsumer,
    /// Namespace of the emitted objects (default: flux-system for flux, argocd for argocd,
    /// else default).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// Name of the Secret [default: github-app-REPO].
    #[arg(long)]
    pub secret_name: Option<String>,
    /// Branch to sync.
    #[arg(long, default_value = "main")]
    pub branch: String,
    /// git-sync: the Deployment to patch.
    #[arg(long, default_value = "git-sync")]
    pub workload: String,
    /// git-sync: the container that clones.
    #[arg(long, default_value = "git-sync")]
    pub container: String,
    /// Airflow: the connection id.
    #[arg(long, default_value = "git_default")]
    pub conn_id: String,
    /// Airflow: the release name (the ConfigMap is RELEASE-git-bundle).
    #[arg(long, default_value = "airflow")]
    pub release_name: String,
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(flatten)]
    pub seal: SealArgs,
}

/// Runs `sealkey app ...`.
pub fn run(args: AppArgs, ui: &Ui) -> Result<Outcome> {
    match args.command {
        AppCommand::Create(args) => create(*args, ui),
    }
}

fn create(mut args: AppCreateArgs, ui: &Ui) -> Result<Outcome> {
    // 1. Every input checked before the key is read or GitHub asked.
    let sops_rule = super::sops_config::apply(&mut args.seal, ui)?;
    let repo = RepoRef::parse(&args.repo)?;
    let api_url = args.api.api_url()?;
    let mut settings = AppEmitSettings {
        repo: repo.clone(),
        consumer: args.consumer,
        namespace: args
            .namespace
            .clone()
            .unwrap_or_else(|| args.consumer.default_namespace().to_string()),
        secret_name: args.secret_name.clone(),
        app_id: args.app_id.clone(),
        numeric_app_id: 0,
        installation_id: args.installation_id.unwrap_or(0),
        api_url,
        branch: args.branch.clone(),
        workload: args.workload.clone(),
        container: args.container.clone(),
        conn_id: args.conn_id.clone(),
        release_name: args.release_name.clone(),
        created: jiff::Timestamp::now(),
    };
    settings.validate()?;
    super::common::refuse_shared_paths(&args.seal.named_paths())?;
    let method = args.seal.method()?;
    args.seal
        .check_destination(method, "the Secret holding the App's private key")?;
    let seal_settings =
        super::sops_config::finish(args.seal.settings(method, ui)?, &sops_rule);

    // 2. The key, from a file or stdin (never argv).
    let key = read_app_key(&args.app_key)?;
    ui.result(&format!(
        "App key {} (RSA {} bits): GitHub shows this fingerprint under the App's Private keys",
        key.fingerprint(),
        key.bits()
    ));

    // 3. The proof, before anything is written.
    let app = key.credentials(&args.app_id, &args.app_key)?;
    let client = args.api.client(Auth::Anonymous, ui)?;
    let access = runtime()?.block_on(prove_access(
        &client,
        &app,
        &repo,
        args.installation_id,
    ))?;
    ui.info(&format!(
        "App {} (installation {}) opens {} with contents: read",
        access.app_slug,
        access.installation_id,
        repo.slug()
    ));
    settings.numeric_app_id = access.app_id;
    settings.installation_id = access.installation_id;

    // 4. Emit, seal, write.
    let stream = app_objects(&settings, &key)?;
    let output = seal::seal_stream(&stream, &seal_settings)?;
    args.seal.write(&output)?;
    if args.consumer == AppConsumer::GitSync {
        ui.info("apply the Deployment patch with `kubectl patch deployment --type strategic --patch-file`, or keep it in your kustomization");
    }
    Ok(OK)
}

/// Reads the App's key from `path` (or stdin for `-`): a regular file of at most 64 KiB kept from
/// other users, as for ssh keys.
fn read_app_key(path: &std::path::Path) -> Result<AppKey> {
    if path.as_os_str() == "-" {
        let bytes = super::common::read_stdin("--app-key - (stdin)")?;
        return Ok(AppKey::from_pem(&bytes, "--app-key - (stdin)")?);
    }
    let what = format!("--app-key {}", path.display());
    let (pem, meta) = crate::input_file::read_named_with_metadata(
        path,
        what.clone(),
        crate::input_file::PRIVATE_KEY_MAX,
    )
    .map_err(|e| match e {
        Error::File { source, .. } => Error::input(
            what.clone(),
            format!("cannot read the App's private key ({source})"),
            "pass the .pem file downloaded from the App's settings (Private keys > Generate a private key), or - for stdin",
        )
        .caused_by(source),
        other => other,
    })?;
    crate::input_file::refuse_open_permissions(path, what.clone(), &meta)?;
    Ok(AppKey::from_pem(&pem, &what)?)
}
