//! `create --store` and `rotate --store`: the key goes to AWS Secrets Manager, the External
//! Secrets Operator renders the Secret; sealkey emits the ExternalSecret instead of a sealed Secret.

use super::create::{current_context, CreateArgs};
use super::github_args::runtime;
use super::Ui;
use crate::audit::report::text::printable;
use crate::create::CreateSettings;
use crate::create::{create, CreateStep, Delivery, Registration, StoreDelivery};
use crate::emit::external_secrets::{ExternalSecretSettings, StoreKind};
use crate::emit::EmitSettings;
use crate::error::Error;
use crate::known_hosts::KnownHosts;
use crate::store::{StoreSettings, StoreTarget};
use anyhow::Result;

/// Where the key is kept instead of a sealed file.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "External secret store (AWS)")]
pub struct StoreArgs {
    /// Keep the key in this store and emit an ExternalSecret (external-secrets.io/v1) that
    /// renders the Secret, instead of a sealed Secret: aws-secrets-manager:NAME. AWS
    /// credentials and region come from the SDK's standard chain (environment, profile,
    /// IRSA, container or instance metadata).
    #[arg(long, value_name = "aws-secrets-manager:NAME")]
    pub store: Option<String>,
    /// KMS key (id, ARN or alias) that encrypts a new secret (default: aws/secretsmanager).
    #[arg(long, value_name = "KEY", requires = "store")]
    pub kms_key_id: Option<String>,
    /// Take over a secret of that name that sealkey did not create (it gets a new version).
    #[arg(long, requires = "store")]
    pub adopt: bool,
    /// AWS region (default: AWS_REGION, then the profile's).
    #[arg(long, value_name = "REGION", requires = "store")]
    pub region: Option<String>,
    /// Name of the SecretStore the ExternalSecret uses [default: sealkey-aws].
    #[arg(long, value_name = "NAME", requires = "store")]
    pub secret_store: Option<String>,
    /// The store is a ClusterSecretStore, not a namespaced SecretStore.
    #[arg(long, requires = "store")]
    pub cluster_secret_store: bool,
    /// Also emit the SecretStore for AWS Secrets Manager, authenticating with IRSA as this
    /// ServiceAccount (annotated eks.amazonaws.com/role-arn) in --namespace.
    #[arg(long, value_name = "SERVICE_ACCOUNT", requires = "store")]
    pub store_service_account: Option<String>,
    /// How often ESO re-reads the store [default: 1h].
    #[arg(long, value_name = "DURATION", requires = "store")]
    pub refresh_interval: Option<String>,
}

impl StoreArgs {
    /// The ExternalSecret settings for `region`.
    pub fn external_secret(&self, target: &StoreTarget, region: &str) -> ExternalSecretSettings {
        ExternalSecretSettings {
            remote_name: target.name.clone(),
            store_name: self
                .secret_store
                .clone()
                .unwrap_or_else(|| "sealkey-aws".into()),
            store_kind: if self.cluster_secret_store {
                StoreKind::ClusterSecretStore
            } else {
                StoreKind::SecretStore
            },
            refresh_interval: self.refresh_interval.clone().unwrap_or_else(|| "1h".into()),
            region: region.into(),
            irsa_service_account: self.store_service_account.clone(),
        }
    }
}

/// `create --store`: refuses what does not apply, then store, register, emit.
pub fn run_create(args: CreateArgs, emit: EmitSettings, ui: &Ui) -> Result<super::Outcome> {
    let target = StoreTarget::parse(args.store.store.as_deref().unwrap_or_default())?;
    let refused: [(&str, bool); 6] = [
        ("--seal", args.seal.seal.is_some()),
        ("--seal-to", !args.seal.seal_to.is_empty()),
        ("--cert", args.seal.cert.is_some()),
        ("--update", args.seal.update.is_some()),
        ("--merge-into", args.merge_into.is_some()),
        ("--apply", args.apply),
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
    }
    args.require_host_keys(&emit)?;
    let github = if args.register.register {
        Some(args.register.github.client(ui)?)
    } else {
        None
    };
    let rt = runtime()?;
    let aws_settings = crate::aws::AwsSettings {
        region: args.store.region.clone(),
    };
    let cluster = args
        .register
        .cluster
        .clone()
        .unwrap_or_else(current_context);
    let result = rt.block_on(async {
        ui.step("[1/5] loading AWS credentials and region");
        let conf = crate::aws::load(&aws_settings).await?;
        let region = crate::aws::region_of(&conf);
        ui.detail(&format!("AWS region {region}"));
        let store = crate::store::aws::SecretsManagerStore::new(&conf);
        let known_hosts = match (&args.known_hosts, &github) {
            (Some(path), _) => KnownHosts::from_file(path)?,
            (None, Some(c)) => c.known_hosts(&emit.git_host).await?,
            (None, None) => KnownHosts::github_pinned(),
        };
        let settings = CreateSettings {
            key_type: args.key.key_type,
            comment: args
                .key
                .comment
                .clone()
                .unwrap_or_else(|| format!("sealkey:{}", emit.repo.slug())),
            emit: emit.clone(),
            known_hosts,
            seal: crate::seal::SealSettings::None,
        };
        let store_settings = StoreSettings {
            target: target.clone(),
            kms_key_id: args.store.kms_key_id.clone(),
            adopt: args.store.adopt,
            cluster: cluster.clone(),
            external_secret: args.store.external_secret(&target, &region),
        };
        let registry = github
            .as_ref()
            .map(|c| crate::github::RepoKeys::new(c, emit.repo.clone()));
        let title = args.register.title.clone().unwrap_or_else(|| {
            crate::github::title::key_title_at(
                &cluster,
                &emit.namespace,
                &emit.secret_name(),
                emit.created,
            )
        });
        let registration = registry.as_ref().map(|r| Registration {
            registry: r,
            title: title.clone(),
            read_only: true,
        });
        let out = args.seal.out.clone();
        let delivery = Delivery::Store(StoreDelivery {
            store: &store,
            settings: &store_settings,
            write: Box::new(move |yaml: &str| match &out {
                Some(path) => crate::output::write_atomic(path, yaml.as_bytes()),
                None => {
                    use std::io::Write as _;
                    let mut o = std::io::stdout().lock();
                    o.write_all(yaml.as_bytes())
                        .and_then(|()| o.flush())
                        .map_err(|e| Error::file("write", "standard output", e))
                }
            }),
        });
        // What a signal would have to undo (see cli/interrupt.rs): a key registered under
        // sealkey's own title whose private half is not stored yet.
        let journal = super::interrupt::Journal::default();
        let undo_title = args.register.title.is_none().then(|| title.clone());
        let progress = |step: CreateStep| match step {
            CreateStep::Register | CreateStep::Store => {
                if step == CreateStep::Register {
                    journal.registering(None, undo_title.as_deref());
                    ui.step(&format!(
                        "[4/5] registering the deploy key on {}",
                        emit.repo.slug()
                    ))
                } else {
                    journal.delivering();
                    ui.step(&format!(
                        "[5/5] storing the key as secret {} (AWSCURRENT) and writing the ExternalSecret",
                        target.name
                    ))
                }
            }
            CreateStep::Check => ui.step(&format!(
                "[2/5] checking secret {} in Secrets Manager",
                target.name
            )),
            CreateStep::Generate => ui.step("[3/5] generating the key in memory"),
            CreateStep::Seal | CreateStep::Apply => {}
        };
        let created = tokio::select! {
            created = create(&settings, registration, delivery, &progress) => created?,
            signal = super::interrupt::signalled() => {
                let stopped = match &registry {
                    Some(r) => {
                        let retire = format!(
                            "delete the key titled \"{title}\" under the repository's Deploy keys (or `sealkey keys prune --repo {} --retire FINGERPRINT`)",
                            emit.repo.slug()
                        );
                        let then = format!("if secret {} has a new AWSCURRENT version it holds the key: keep it; if not, delete the key titled as above", target.name);
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
        Ok::<_, anyhow::Error>((created, region, title))
    });
    let (created, region, title) = result?;
    if let Some(out) = &args.seal.out {
        ui.info(&format!("wrote {}", out.display()));
    }
    ui.result(&format!("public key:  {}", created.key.public_openssh()));
    ui.result(&format!("fingerprint: {}", created.key.fingerprint()));
    let stored = created
        .stored
        .as_ref()
        .expect("the store delivery stored the key");
    ui.info(&format!(
        "stored as {} version {} in {region}{}",
        printable(&stored.stored.arn),
        printable(&stored.stored.version_id),
        if stored.replaced {
            " (the previous version is AWSPREVIOUS)"
        } else {
            ""
        }
    ));
    match created.registered.as_ref().map(|k| k.id) {
        Some(id) => ui.info(&format!(
            "registered as read-only deploy key {id} on {}",
            emit.repo.slug()
        )),
        None => ui.info(&format!(
            "next: register THIS key: `echo 'PUBLIC KEY ABOVE' | sealkey register --repo {} --title '{title}'`",
            emit.repo.slug()
        )),
    }
    Ok(super::common::OK)
}

/// `rotate --store`: the flags.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "External secret store (AWS)")]
pub struct RotateStoreArgs {
    /// Rotate a key kept in this store and rendered by the External Secrets Operator:
    /// aws-secrets-manager:NAME. Puts a new version (AWSCURRENT), annotates the ExternalSecret
    /// with force-sync, waits for the live Secret, restarts readers, deletes the old key; any
    /// failure before the Secret holds the new key is rolled back. Takes the place of a mode.
    #[arg(long, value_name = "aws-secrets-manager:NAME", conflicts_with_all = ["apply", "gitops", "finish"])]
    pub store: Option<String>,
    /// AWS region (default: AWS_REGION, then the profile's).
    #[arg(long, value_name = "REGION", requires = "store")]
    pub region: Option<String>,
    /// The ExternalSecret's name [default: --secret-name].
    #[arg(long, value_name = "NAME", requires = "store")]
    pub external_secret: Option<String>,
    /// How long to wait for ESO to write the new key into the Secret (1s to 1h).
    #[arg(long, default_value = "2m", value_parser = super::github_args::duration_within(1, 3_600), requires = "store")]
    pub store_sync_timeout: std::time::Duration,
}

/// `rotate --store`.
pub fn run_rotate(args: super::rotate::RotateArgs, ui: &Ui) -> Result<super::Outcome> {
    use crate::store::rotate::{KubeExternalSecrets, StoreRotationStep};
    let repo = crate::repo::RepoRef::parse(&args.repo)?;
    let target = StoreTarget::parse(args.store.store.as_deref().unwrap_or_default())?;
    if args.kube.dry_run {
        return Err(Error::input(
            "rotate --store --dry-run",
            "a store rotation has no dry run",
            "drop --dry-run",
        )
        .into());
    }
    let client = args.github.client(ui)?;
    let rt = runtime()?;
    let aws_settings = crate::aws::AwsSettings {
        region: args.store.region.clone(),
    };
    let done = rt.block_on(async {
        let conf = crate::aws::load(&aws_settings).await?;
        let store = crate::store::aws::SecretsManagerStore::new(&conf);
        let notices = ui.clone();
        let cluster = crate::cluster::Cluster::connect(&args.kube.settings())
            .await?
            .on_wait(move |n| super::cluster::tell_wait(&notices, n));
        let kube_client = cluster.clone().into_client();
        let mut rotate = args.settings(&cluster, &repo);
        args.identify_cluster(&cluster, &mut rotate).await?;
        rotate.poll_interval = std::time::Duration::from_millis(500);
        let settings = crate::store::StoreRotationSettings {
            rotate,
            target: target.clone(),
            external_secret: args
                .store
                .external_secret
                .clone()
                .unwrap_or_else(|| args.secret_name.clone()),
            sync_timeout: args.store.store_sync_timeout,
        };
        let registry = crate::github::RepoKeys::new(&client, repo.clone());
        let es_cluster = KubeExternalSecrets {
            cluster,
            client: kube_client,
        };
        let journal = super::interrupt::Journal::default();
        let progress = |step: StoreRotationStep, detail: &str| {
            match step {
                // The new key's fingerprint first, then `as "TITLE"`.
                StoreRotationStep::Register => journal.registering(
                    detail.split_whitespace().next().filter(|t| t.starts_with("SHA256:")),
                    detail.split('"').nth(1),
                ),
                StoreRotationStep::Store => journal.delivering(),
                _ => {}
            }
            let n = match step {
                StoreRotationStep::Read => 1,
                StoreRotationStep::Register => 2,
                StoreRotationStep::Store => 3,
                StoreRotationStep::Sync => 4,
                StoreRotationStep::Restart => 5,
                StoreRotationStep::DeleteOld => 6,
            };
            ui.step(&format!("[{n}/6] {detail}"));
        };
        let done = tokio::select! {
            done = crate::store::rotate_with_store(&settings, &store, &es_cluster, &registry, &progress) => done?,
            signal = super::interrupt::signalled() => {
                let again = format!(
                    "sealkey rotate --repo {} -n NAMESPACE --secret-name {} --store ...",
                    repo.slug(),
                    args.secret_name
                );
                let retire = format!(
                    "delete it with `sealkey keys prune --repo {} --retire FINGERPRINT` (the next rotation also names it as pending)",
                    repo.slug()
                );
                let then = format!("if the store's AWSCURRENT version holds it, run `{again} --finish` once ESO synced it; if not, `{again} --abandon-pending` deletes it");
                let stopped =
                    super::interrupt::undo_after(signal, &journal, &registry, &retire, &then).await;
                return Err(anyhow::Error::new(stopped));
            }
        };
        Ok::<_, anyhow::Error>(done)
    })?;
    ui.result(&format!("old key:     {}", done.old_fingerprint));
    ui.result(&format!("new key:     {}", done.new_fingerprint));
    ui.info(&format!(
        "stored as version {} (AWSCURRENT) of {}; registered as deploy key {}; deleted old key(s) {:?}; restarted {:?}",
        printable(&done.version_id), target.name, done.new_key_id, done.deleted, done.restarted
    ));
    if let Some(why) = &done.kept_because {
        ui.info(&format!(
            "old key(s) kept: {}",
            why.render(&super::spelling::Flags)
        ));
    }
    Ok(super::common::OK)
}
