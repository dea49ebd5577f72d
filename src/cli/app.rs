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
    /// Replace the App key the consumer holds with a new one (made in the App's settings page):
    /// prove the new key, write the consumer's Secret again (sealed file, store or pipe), then
    /// say which old key to delete, by fingerprint.
    ///
    /// Runbook: generate a second key in the App's settings page; run this with it; commit and
    /// let the consumer sync; delete the old key in the settings page; then run
    /// `sealkey app finish-rotation` with the old key to confirm GitHub refuses it.
    Rotate(Box<AppRotateArgs>),
    /// Confirm a rotation is over: GitHub must refuse the old App key (deleted in the settings
    /// page). Exit 3 while it still authenticates.
    FinishRotation(FinishRotationArgs),
    /// List (dry run, the default) or delete with --delete the deploy keys sealkey made for a
    /// repository whose consumers now use the App; the App must open the repository first.
    ///
    /// The keys are listed and deleted with GITHUB_TOKEN or GH_TOKEN when set (Administration:
    /// read and write), else with the App itself (then it needs Administration: write too).
    RetireDeployKeys(RetireArgs),
}

/// `sealkey app retire-deploy-keys` flags.
#[derive(Debug, clap::Args)]
pub struct RetireArgs {
    /// The repository, OWNER/REPO.
    #[arg(long, value_name = "OWNER/REPO")]
    pub repo: String,
    /// The App's ID.
    #[arg(long, value_name = "ID")]
    pub app_id: String,
    /// The App's private key (.pem, or - for stdin).
    #[arg(long, value_name = "FILE|-")]
    pub app_key: PathBuf,
    /// Delete the keys (without it, only list what would be deleted).
    #[arg(long)]
    pub delete: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

/// `sealkey app rotate` flags: those of `app create` (with the new key) and the old key's
/// fingerprint.
#[derive(Debug, clap::Args)]
pub struct AppRotateArgs {
    #[command(flatten)]
    pub create: AppCreateArgs,
    /// The fingerprint of the key being replaced (SHA256:..., as the settings page shows it).
    /// Default: the one recorded in the --out file (sealkey.io/app-key-fingerprint, in clear in
    /// SOPS and Sealed Secrets files).
    #[arg(long, value_name = "SHA256:...")]
    pub old_fingerprint: Option<String>,
}

/// `sealkey app finish-rotation` flags.
#[derive(Debug, clap::Args)]
pub struct FinishRotationArgs {
    /// The App's ID.
    #[arg(long, value_name = "ID")]
    pub app_id: String,
    /// The old private key (a .pem file, or - for stdin, e.g. from `sealkey unseal` of the
    /// previous sealed file).
    #[arg(long, value_name = "FILE|-")]
    pub old_key: PathBuf,
    #[command(flatten)]
    pub api: ApiArgs,
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
    #[command(flatten)]
    pub store: super::store::StoreArgs,
    /// Write the Secret straight into the cluster (server-side apply, field manager sealkey)
    /// instead of sealing it; the consumer's other objects (GitRepository, Deployment patch,
    /// ConfigMap), which hold no secret, are printed to stdout. With `app rotate` this swaps the
    /// Secret in place.
    #[arg(long, conflicts_with_all = ["seal", "seal_to", "out", "cert", "store"], help_heading = "Cluster")]
    pub apply: bool,
    #[command(flatten)]
    pub kube: super::cluster::ClusterArgs,
}

/// Runs `sealkey app ...`.
pub fn run(args: AppArgs, ui: &Ui) -> Result<Outcome> {
    match args.command {
        AppCommand::Create(args) => create(*args, ui).map(|_| OK),
        AppCommand::Rotate(args) => rotate(*args, ui),
        AppCommand::FinishRotation(args) => finish_rotation(args, ui),
        AppCommand::RetireDeployKeys(args) => retire(args, ui),
    }
}

fn retire(args: RetireArgs, ui: &Ui) -> Result<Outcome> {
    let repo = RepoRef::parse(&args.repo)?;
    let key = read_app_key(&args.app_key)?;
    let prover = args.api.client(Auth::Anonymous, ui)?;
    let auth = match super::github_args::token_from_env() {
        Some(token) => Auth::Token(token),
        None => Auth::App(Box::new(key.credentials(&args.app_id, &args.app_key)?)),
    };
    let keys_client = args.api.client(auth, ui)?;
    let app = key.credentials(&args.app_id, &args.app_key)?;
    let rt = runtime()?;
    let (access, keys) = rt.block_on(async {
        // The App first: no deploy key goes before the App is proven to open the repository.
        let access = prove_access(&prover, &app, &repo, None).await?;
        let keys = keys_client.list_deploy_keys(&repo).await?;
        Ok::<_, crate::error::Error>((access, keys))
    })?;
    ui.info(&format!(
        "App {} (installation {}) opens {} with contents: read",
        access.app_slug,
        access.installation_id,
        repo.slug()
    ));
    let ours: Vec<_> = keys
        .iter()
        .filter(|k| crate::github::title::sealkey_slot(&k.title).is_some())
        .collect();
    let others = keys.len() - ours.len();
    let mut listing = String::new();
    for k in &ours {
        listing.push_str(&format!(
            "{}\t{}\t{}\tlast used {}\n",
            k.id,
            k.fingerprint(),
            crate::audit::report::text::printable(&k.title),
            k.last_used.as_deref().unwrap_or("never")
        ));
    }
    super::common::write_stdout(listing.as_bytes())?;
    if others > 0 {
        ui.info(&format!(
            "{others} other deploy key(s) on {} were not made by sealkey and are left alone",
            repo.slug()
        ));
    }
    if !args.delete {
        ui.result(&format!(
            "dry run: {} deploy key(s) sealkey made for {} would be deleted; pass --delete once every consumer uses the App",
            ours.len(),
            repo.slug()
        ));
        return Ok(OK);
    }
    let deleted = rt.block_on(async {
        let mut n = 0;
        for k in &ours {
            if keys_client.delete_deploy_key(&repo, k.id).await? {
                n += 1;
            }
        }
        Ok::<_, crate::error::Error>(n)
    })?;
    ui.result(&format!(
        "deleted {deleted} deploy key(s) from {}; the App is now its only sealkey credential",
        repo.slug()
    ));
    Ok(OK)
}

fn rotate(mut args: AppRotateArgs, ui: &Ui) -> Result<Outcome> {
    let old = match &args.old_fingerprint {
        Some(fp) if fp.starts_with("SHA256:") => Some(fp.clone()),
        Some(fp) => {
            return Err(Error::input(
                format!("--old-fingerprint {fp}"),
                "not a SHA256:... fingerprint",
                "copy it from the App's settings page (Private keys), or leave it out to read it from --out",
            )
            .into())
        }
        None => args
            .create
            .seal
            .out
            .as_deref()
            .and_then(recorded_fingerprint),
    };
    // The file being rotated is replaced: that is the point.
    if args.create.seal.out.as_deref().is_some_and(|p| p.exists()) {
        args.create.seal.force = true;
    }
    let new = create(args.create, ui)?;
    if old.as_deref() == Some(new.fingerprint.as_str()) {
        ui.warn(&format!(
            "the new key is the old one ({}): nothing was rotated; generate a new key in the App's settings page",
            new.fingerprint
        ));
        return Ok(OK);
    }
    let old_text = old
        .map(|fp| format!("the old key {fp}"))
        .unwrap_or_else(|| "the old key (its fingerprint is in the previous file's sealkey.io/app-key-fingerprint annotation)".into());
    ui.result(&format!(
        "new key {} is in place. Next: commit/apply it and wait until the consumer has synced with it; then delete {old_text} in {}; then confirm with `sealkey app finish-rotation --app-id {} --old-key OLD.pem`",
        new.fingerprint, new.settings_page, new.app_id
    ));
    Ok(OK)
}

/// The App-key fingerprint a sealkey file records in clear, if any.
fn recorded_fingerprint(path: &std::path::Path) -> Option<String> {
    // A directory (several objects, one file each): its objects' files as one stream.
    let text = if path.is_dir() {
        crate::seal::sops::layout::read_directory(path, crate::input_file::DOCUMENT_MAX)
            .ok()?
            .to_vec()
    } else {
        std::fs::read(path).ok()?
    };
    let text = String::from_utf8_lossy(&text);
    let label = crate::emit::github_app::APP_KEY_FINGERPRINT;
    let at = text.find(&format!("{label}:"))? + label.len() + 1;
    let fp: String = text[at..]
        .trim_start()
        .trim_start_matches(['"', '\''])
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "+/=:".contains(*c))
        .collect();
    fp.starts_with("SHA256:").then_some(fp)
}

fn finish_rotation(args: FinishRotationArgs, ui: &Ui) -> Result<Outcome> {
    let key = read_app_key(&args.old_key)?;
    let app = key.credentials(&args.app_id, &args.old_key)?;
    let client = args.api.client(Auth::Anonymous, ui)?;
    let alive = runtime()?.block_on(crate::github::app_credential::key_still_authenticates(
        &client, &app,
    ))?;
    if alive {
        return Err(Error::remote(
            "GitHub",
            format!(
                "the old key {} of App {} still authenticates",
                key.fingerprint(),
                args.app_id
            ),
            "delete it in the App's settings page (Private keys: the row with this fingerprint > Delete), then run this again",
        )
        .into());
    }
    ui.result(&format!(
        "done: GitHub refuses the old key {} (401); the rotation is complete",
        key.fingerprint()
    ));
    Ok(OK)
}

/// What `create` made, for `rotate`'s message.
struct Made {
    fingerprint: String,
    app_id: u64,
    settings_page: String,
}

fn create(mut args: AppCreateArgs, ui: &Ui) -> Result<Made> {
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
    let store = match &args.store.store {
        Some(text) => Some(check_store_flags(&args, text)?),
        None => None,
    };
    let seal_settings = if store.is_some() || args.apply {
        crate::seal::SealSettings::None
    } else {
        let method = args.seal.method()?;
        args.seal
            .check_destination(method, "the Secret holding the App's private key")?;
        super::sops_config::finish(args.seal.settings(method, ui)?, &sops_rule)
    };

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
    let access = runtime()?.block_on(prove_access(&client, &app, &repo, args.installation_id))?;
    ui.info(&format!(
        "App {} (installation {}) opens {} with contents: read",
        access.app_slug,
        access.installation_id,
        repo.slug()
    ));
    settings.numeric_app_id = access.app_id;
    settings.installation_id = access.installation_id;

    // 4. Emit, then seal and write, or store and write the ExternalSecret.
    let stream = app_objects(&settings, &key)?;
    match store {
        Some(target) => to_store(&args, &settings, &key, &stream, target, ui)?,
        None if args.apply => to_cluster(&args, &stream, ui)?,
        None => {
            let output = seal::seal_stream(&stream, &seal_settings)?;
            args.seal.write(&output)?;
        }
    }
    if args.consumer == AppConsumer::GitSync {
        ui.info("apply the Deployment patch with `kubectl patch deployment --type strategic --patch-file`, or keep it in your kustomization");
    }
    Ok(Made {
        fingerprint: key.fingerprint().to_string(),
        app_id: access.app_id,
        settings_page: format!("{} (Private keys)", access.settings_page),
    })
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

/// `--store`: nothing is sealed, so the sealing flags are refused.
fn check_store_flags(args: &AppCreateArgs, text: &str) -> Result<crate::store::StoreTarget> {
    let target = crate::store::StoreTarget::parse(text)?;
    let refused: [(&str, bool); 4] = [
        ("--seal", args.seal.seal.is_some()),
        ("--seal-to", !args.seal.seal_to.is_empty()),
        ("--cert", args.seal.cert.is_some()),
        ("--update", args.seal.update.is_some()),
    ];
    for (flag, given) in refused {
        if given {
            return Err(Error::input(
                format!("--store with {flag}"),
                "with --store the key goes to the store and only an ExternalSecret is emitted: nothing is sealed",
                format!("drop {flag}, or drop --store to seal the Secret"),
            )
            .into());
        }
    }
    if let Some(out) = &args.seal.out {
        crate::output::check_target(out, crate::error::Setting::Out)?;
        if out.exists() && !args.seal.force {
            return Err(Error::input(
                format!("--out {}", out.display()),
                "the file exists",
                "pass --force to replace it, or another --out",
            )
            .into());
        }
    }
    Ok(target)
}

/// Puts the consumer's Secret into AWS Secrets Manager (a new AWSCURRENT version) and writes the
/// ExternalSecret with the consumer's other documents.
fn to_store(
    args: &AppCreateArgs,
    settings: &AppEmitSettings,
    key: &AppKey,
    stream: &crate::emit::ManifestStream,
    target: crate::store::StoreTarget,
    ui: &Ui,
) -> Result<()> {
    use crate::store::aws::tags;
    let rt = runtime()?;
    rt.block_on(async {
        let conf = crate::aws::load(&crate::aws::AwsSettings {
            region: args.store.region.clone(),
        })
        .await?;
        let region = crate::aws::region_of(&conf);
        let store = crate::store::aws::SecretsManagerStore::new(&conf);
        let existing = store.check_writable(&target.name, args.store.adopt).await?;
        let es = args.store.external_secret(&target, &region);
        let (value, _docs, yaml) =
            crate::store::externalized_output(stream, &settings.secret_name(), &es)?;
        let new_tags = vec![
            (tags::MANAGED_BY.to_string(), "sealkey".to_string()),
            (tags::FINGERPRINT.to_string(), key.fingerprint().to_string()),
            (tags::REPO.to_string(), settings.repo.slug()),
            (tags::CLUSTER.to_string(), super::create::current_context()),
        ];
        let stored = store
            .put(
                &target.name,
                existing.as_ref(),
                &value,
                key.fingerprint(),
                args.store.kms_key_id.as_deref(),
                &new_tags,
            )
            .await?;
        let written = match &args.seal.out {
            Some(path) => crate::output::write_atomic(path, yaml.as_bytes()),
            None => {
                use std::io::Write as _;
                let mut o = std::io::stdout().lock();
                o.write_all(yaml.as_bytes())
                    .and_then(|()| o.flush())
                    .map_err(|e| Error::file("write", "standard output", e))
            }
        };
        if let Err(e) = written {
            // The value is stored but nothing refers to it yet: take the version back.
            let undone = store.undo(&target.name, &stored).await;
            ui.warn(&undone);
            return Err(anyhow::Error::from(e));
        }
        ui.info(&format!(
            "stored the App key as {} (version {}, AWSCURRENT) in {region}",
            target.name, stored.version_id
        ));
        Ok::<(), anyhow::Error>(())
    })
}

/// `--apply`: the Secret into the cluster, the other objects (no secret in them) to stdout.
fn to_cluster(args: &AppCreateArgs, stream: &crate::emit::ManifestStream, ui: &Ui) -> Result<()> {
    let rt = runtime()?;
    let (secret, rest): (Vec<&serde_json::Value>, Vec<&serde_json::Value>) = stream
        .expose_docs()
        .iter()
        .partition(|d| d["kind"] == "Secret");
    let method = rt.block_on(async {
        let ui2 = ui.clone();
        let cluster = crate::cluster::Cluster::connect(&args.kube.settings())
            .await?
            .on_wait(move |n| super::cluster::tell_wait(&ui2, n));
        let mut method = None;
        for doc in &secret {
            method = Some(cluster.write_secret(doc).await?);
        }
        Ok::<_, crate::error::Error>(method)
    })?;
    for doc in &secret {
        ui.info(&format!(
            "applied Secret {}/{}{}",
            doc["metadata"]["namespace"].as_str().unwrap_or_default(),
            doc["metadata"]["name"].as_str().unwrap_or_default(),
            match method {
                Some(crate::cluster::WriteMethod::Apply) | None => "",
                Some(_) => " (the server has no apply for Secrets: written without it)",
            }
        ));
    }
    if !rest.is_empty() {
        let docs: Vec<serde_json::Value> = rest.into_iter().cloned().collect();
        let yaml = crate::yaml::to_yaml_stream(&docs);
        super::common::write_stdout(yaml.as_bytes())?;
    }
    Ok(())
}
