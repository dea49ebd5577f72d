//! `sealkey rotate`: args -> RotateSettings -> rotate_in_cluster / rotate_gitops / finish.

use super::cluster::ClusterArgs;
use super::common::{SealArgs, OK};
use super::github_args::{duration_within, runtime, GithubArgs, DAY};
use super::Outcome;
use super::Ui;
use crate::cluster::{Cluster, ConsumerAction};
use crate::emit::Consumer;
use crate::error::Error;
use crate::github::RepoKeys;
use crate::keygen::KeyType;
use crate::repo::RepoRef;
use crate::rotate::{self, RotateSettings, Step};
use crate::seal::SealMethod;
use anyhow::Result;
use std::path::PathBuf;
use std::time::Duration;

/// Replace a deploy key without downtime: register a new read-only key, swap it into the Secret,
/// restart what reads it, then delete the old key. Any failure leaves the key in the Secret
/// registered on GitHub and no key of the failed run behind.
#[derive(Debug, clap::Args)]
#[command(after_long_help = "\
Modes (one is required):
  --apply          straight into the cluster; old keys deleted at the end
  --gitops FILE    write the sealed Secret to FILE for your GitOps repo; the old key stays
  --finish         after the live Secret holds FILE's key (Flux applied it): restart its
                   subPath/env readers, wait --sync-wait for volume readers, then delete the old
                   keys (--wait 10m polls until it does)

Examples:
  GITHUB_TOKEN=... sealkey rotate --repo acme/dags -n airflow \\
    --secret-name airflow-ssh-secret --apply
  sealkey rotate --repo acme/dags -n airflow --secret-name airflow-ssh-secret \\
    --gitops airflow-ssh-secret.sops.yaml --seal-to age1... \\
    --update airflow-ssh-secret.sops.yaml --identity team.agekey
  sealkey rotate --repo acme/dags -n airflow --secret-name airflow-ssh-secret --finish --wait 10m

  A HelmRelease that holds the key in values.extraSecrets (the chart renders a Helm-owned
  Secret): rotate the HelmRelease itself, sealed with SOPS:
  sealkey rotate --repo acme/dags -n airflow --secret-name airflow-ssh-secret \\
    --gitops airflow.sops.yaml --update airflow.sops.yaml --identity team.agekey --seal-to age1...

Runbook and fault matrix: docs/rotation.md")]
pub struct RotateArgs {
    /// The GitHub repository the key is for, OWNER/REPO.
    #[arg(long, value_name = "OWNER/REPO")]
    pub repo: String,
    /// Namespace of the Secret (default: the kubeconfig context's namespace).
    #[arg(long, short = 'n')]
    pub namespace: Option<String>,
    /// The Secret holding the deploy key.
    #[arg(long)]
    pub secret_name: String,
    /// How the Secret is laid out (default: its sealkey.io/for annotation, else any known key field).
    #[arg(long = "for", value_enum, value_name = "CONSUMER")]
    pub consumer: Option<Consumer>,
    /// Update the Secret in the cluster, restart its readers, delete the old keys.
    #[arg(long, group = "mode", help_heading = "Mode")]
    pub apply: bool,
    /// Write the sealed Secret with the new key to FILE (for a GitOps repository); the old key
    /// stays registered until --finish.
    #[arg(long, value_name = "FILE", group = "mode", help_heading = "Mode")]
    pub gitops: Option<PathBuf>,
    /// Delete the old keys once the live Secret holds the new one (after --gitops, or after an
    /// --apply that kept them), after bringing its readers onto it as --apply does (restart
    /// subPath/env readers, wait --sync-wait for volume readers).
    #[arg(long, group = "mode", help_heading = "Mode")]
    pub finish: bool,
    /// With --finish: wait up to this long for the live Secret to hold the new key (Flux or
    /// Argo CD applying the commit, helm-controller upgrading the release), polling every 2 s,
    /// instead of failing at once (e.g. 10m; 1s to 1d).
    #[arg(long, value_name = "DURATION", requires = "finish", value_parser = duration_within(1, DAY), help_heading = "Mode")]
    pub wait: Option<Duration>,
    /// Algorithm of the new key (default: the old key's).
    #[arg(long, value_enum)]
    pub key_type: Option<KeyType>,
    /// Restart workloads that read the key through subPath mounts or env vars, which never see
    /// an updated Secret, and wait for their rollouts (the default).
    #[arg(long, overrides_with = "no_restart", help_heading = "Mode")]
    pub restart: bool,
    /// Leave those restarts to you; the old key then stays registered until --finish.
    #[arg(long, overrides_with = "restart", help_heading = "Mode")]
    pub no_restart: bool,
    /// How long to wait for restarted workloads to roll out (e.g. 300s, 10m; 1s to 1d).
    #[arg(long, default_value = "5m", value_parser = duration_within(1, DAY), help_heading = "Mode")]
    pub timeout: Duration,
    /// How long to wait for kubelets to update Secret volumes mounted without subPath (0s to 1h).
    #[arg(long, default_value = "90s", value_parser = duration_within(0, 3_600), help_heading = "Mode")]
    pub sync_wait: Duration,
    /// Keep the old keys registered (delete them later with --finish).
    #[arg(long, help_heading = "Mode")]
    pub keep_old: bool,
    /// Rotate although an earlier --gitops rotation is pending (its key registered, its file not
    /// applied): that key is deleted. Only once the commit carrying it was reverted.
    #[arg(long, conflicts_with = "finish", help_heading = "Mode")]
    pub abandon_pending: bool,
    /// Cluster name in key titles `sealkey CLUSTER/NAMESPACE/SECRET DATE` (default: the
    /// kubeconfig context, else `default`).
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
    #[command(flatten)]
    pub kube: ClusterArgs,
    #[command(flatten)]
    pub github: GithubArgs,
    #[command(flatten)]
    pub seal: SealArgs,
    // issue 15: rotate --store (AWS Secrets Manager + ESO); logic in cli/store.rs.
    #[command(flatten)]
    pub store: super::store::RotateStoreArgs,
}

impl RotateArgs {
    /// The rotation settings these flags ask for, with the namespace and cluster name defaulting
    /// to the kubeconfig context's.
    pub fn settings(&self, cluster: &Cluster, repo: &RepoRef) -> RotateSettings {
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| cluster.default_namespace().to_string());
        let context = self
            .cluster
            .clone()
            .unwrap_or_else(|| cluster.context().to_string());
        let mut settings = RotateSettings::new(
            &context,
            &namespace,
            &self.secret_name,
            &format!("sealkey:{}", repo.slug()),
        );
        settings.consumer = self.consumer;
        settings.key_type = self.key_type;
        settings.restart = !self.no_restart;
        settings.keep_old = self.keep_old;
        settings.timeout = self.timeout;
        settings.sync_wait = self.sync_wait;
        settings.dry_run = self.kube.dry_run;
        settings.abandon_pending = self.abandon_pending;
        settings.wait_for_live = self.wait;
        settings
    }

    /// Puts the cluster's identity into the title slot (`NAME#UID8`, from the kube-system
    /// namespace's UID). A cluster that cannot be identified and is named `default` (every
    /// in-pod run, k3s's kubeconfig) without `--cluster` is refused: two such clusters would
    /// share one slot, and rotating one would delete the other's live key.
    pub async fn identify_cluster(
        &self,
        cluster: &Cluster,
        settings: &mut RotateSettings,
    ) -> crate::error::Result<()> {
        // An unreachable API server is reported by the first step that needs it, named.
        let uid = cluster.kube_system_uid().await.ok().flatten();
        if uid.is_none() && self.cluster.is_none() && settings.context == "default" {
            return Err(crate::error::Error::input(
                "kubeconfig context `default`",
                "cannot tell this cluster from other clusters named `default`: its kube-system namespace could not be read (deploy key titles name the cluster, and rotation deletes the old keys titled for it)",
                crate::message!(
                    "allow `get` on namespace kube-system, or pass {} NAME with a name unique to this cluster (the same on every run)",
                    crate::error::Setting::Cluster
                ),
            ));
        }
        settings.context = crate::github::title::cluster_part(&settings.context, uid.as_deref());
        Ok(())
    }
}

/// The `--finish` to run after a `--gitops` file is committed. A HelmRelease's `extraSecrets`
/// reach the cluster through two controllers (kustomize-controller applies the HelmRelease,
/// helm-controller upgrades the release), so its `--finish` waits for the change as
/// docs/consumers/airflow-chart.md says (issue 21 item 14: the hint said a bare `--finish`).
fn finish_command(repo: &str, namespace: &str, secret: &str, helm_release: bool) -> String {
    format!(
        "sealkey rotate --repo {repo} -n {namespace} --secret-name {secret} --finish{}",
        if helm_release { " --wait 15m" } else { "" }
    )
}

fn step_number(step: Step, gitops: bool, finish: bool) -> (usize, usize) {
    let order: &[Step] = if gitops {
        &[
            Step::ReadSecret,
            Step::ListKeys,
            Step::DeleteOld, // only with --abandon-pending
            Step::Register,
            Step::WriteManifest,
        ]
    } else if finish {
        &[
            Step::ReadSecret,
            Step::ListKeys,
            Step::WaitLive,
            Step::FindConsumers,
            Step::Restart,
            Step::SyncWait,
            Step::DeleteOld,
        ]
    } else {
        &[
            Step::ReadSecret,
            Step::ListKeys,
            Step::Register,
            Step::UpdateSecret,
            Step::FindConsumers,
            Step::Restart,
            Step::SyncWait,
            Step::DeleteOld,
        ]
    };
    let n = order.iter().position(|s| *s == step).map_or(0, |i| i + 1);
    (n, order.len())
}

pub fn run(args: RotateArgs, ui: &Ui) -> Result<Outcome> {
    // issue 15: the key lives in a store that ESO renders; see cli/store.rs.
    if args.store.store.is_some() {
        return super::store::run_rotate(args, ui);
    }
    // Everything that can be checked offline, before the cluster or GitHub is asked anything.
    let repo = RepoRef::parse(&args.repo)?;
    if !(args.apply || args.finish || args.gitops.is_some()) {
        return Err(Error::input(
            "sealkey rotate",
            "no mode given",
            "add --apply (straight into the cluster), --gitops FILE (sealed manifest for your GitOps repo) or --finish",
        )
        .into());
    }
    let gitops_seal = match &args.gitops {
        Some(_) => {
            let method = args.seal.method()?;
            if method == SealMethod::None {
                return Err(Error::PlaintextRefused {
                    what: "the rotated Secret".into(),
                    target: "--gitops FILE".into(),
                    hint: "seal it: --seal-to RECIPIENT (age)".into(),
                }
                .into());
            }
            if args.seal.out.is_some() {
                return Err(Error::input(
                    "--out",
                    "--gitops FILE already names where the sealed Secret goes",
                    "drop --out",
                )
                .into());
            }
            Some(args.seal.settings(method, ui)?)
        }
        None => {
            if args.seal.seal.is_some() || !args.seal.seal_to.is_empty() || args.seal.out.is_some()
            {
                return Err(Error::input(
                    "--seal/--seal-to/--out",
                    "only --gitops writes a sealed manifest",
                    "drop them, or use --gitops FILE",
                )
                .into());
            }
            None
        }
    };
    if args.seal.identity.is_some() && args.seal.update.is_none() {
        return Err(Error::input(
            "--identity",
            "it opens the file of --update, which was not given",
            "drop --identity, or add --update FILE",
        )
        .into());
    }
    // --update of a SOPS file: its plaintext, in case it is a HelmRelease with extraSecrets.
    let hr_docs = match (
        &args.gitops,
        &args.seal.update,
        &args.seal.identity,
        &gitops_seal,
    ) {
        (Some(_), Some(update), Some(identity), Some(crate::seal::SealSettings::Sops(_))) => {
            let ids = super::common::read_identity_file(identity)?;
            let what = format!("--update {}", update.display());
            let old = crate::seal::sops::layout::read_previous(
                update,
                crate::error::Setting::Update,
                crate::input_file::DOCUMENT_MAX,
            )?;
            let old = super::common::into_text(old, &what)?;
            if let Some(path) = &args.gitops {
                super::common::refuse_stream_into_file(
                    old.expose_secret(),
                    update,
                    path,
                    "--gitops",
                )?;
            }
            Some(crate::seal::sops::unseal_documents(
                old.expose_secret(),
                &what,
                &ids,
            )?)
        }
        _ => None,
    };
    if args.kube.dry_run && !args.apply {
        return Err(Error::input(
            "--dry-run",
            "a server-side dry run only applies to --apply",
            "use --apply --dry-run to see what rotation would do",
        )
        .into());
    }
    let client = args.github.client(ui)?;
    let rt = runtime()?;
    let gitops = args.gitops.is_some();
    let finish = args.finish;
    // What a signal would have to undo: the new key between its registration and its delivery.
    let journal = super::interrupt::Journal::default();
    let progress = |step: Step, detail: &str| {
        match step {
            // The library reports the new key's fingerprint first, then `as "TITLE"`.
            Step::Register => journal.registering(
                detail
                    .split_whitespace()
                    .next()
                    .filter(|t| t.starts_with("SHA256:")),
                detail.split('"').nth(1),
            ),
            Step::UpdateSecret | Step::WriteManifest => journal.delivering(),
            _ => {}
        }
        let (n, total) = step_number(step, gitops, finish);
        ui.step(&format!("[{n}/{total}] {}: {detail}", step.as_str()));
    };
    rt.block_on(async {
        let work = async {
        let notices = ui.clone();
        let cluster = Cluster::connect(&args.kube.settings())
            .await?
            .on_wait(move |n| super::cluster::tell_wait(&notices, n));
        let mut settings = args.settings(&cluster, &repo);
        args.identify_cluster(&cluster, &mut settings).await?;
        let namespace = settings.namespace.clone();
        let registry = RepoKeys::new(&client, repo.clone());
        let secret_ref = format!("{namespace}/{}", args.secret_name);
        if let (Some(path), Some(seal)) = (&args.gitops, &gitops_seal) {
            // A HelmRelease whose extraSecrets holds this Secret (the Airflow chart renders it
            // as a Helm hook): the new key goes into that entry, not into a Secret file.
            let release = match &hr_docs {
                Some(docs) => crate::emit::live::extra_secret_release(docs.expose_docs(), &args.secret_name),
                None => None,
            };
            if release.is_some() && settings.consumer.is_none() {
                settings.consumer = Some(Consumer::AirflowChart);
            }
            let now = jiff::Timestamp::now();
            let done = rotate::rotate_gitops(
                &settings,
                &cluster,
                &registry,
                |new| {
                    let sealed = match (release, &hr_docs) {
                        (Some(index), Some(docs)) => {
                            let docs = crate::emit::live::with_rotated_extra_secret(
                                docs.expose_docs(),
                                index,
                                &args.secret_name,
                                new.field,
                                new.key,
                                now,
                            )?;
                            crate::seal::seal_stream(&docs, seal)?
                        }
                        _ => crate::seal::seal_stream(new.secret, seal)?,
                    };
                    match seal.method() {
                        // sops opens one sealed object per file: several go to a directory.
                        crate::seal::SealMethod::Sops => crate::seal::sops::layout::write(
                            path,
                            &String::from_utf8_lossy(sealed.expose_bytes()),
                            crate::error::Setting::Gitops,
                        )
                        .map(|_| ()),
                        _ => crate::output::write_atomic(path, sealed.expose_bytes()),
                    }
                },
                &progress,
            )
            .await?;
            if release.is_some() {
                ui.info(&format!(
                    "set the new key in values.extraSecrets.{} of the HelmRelease (every other value kept; that object sealed under a fresh data key)",
                    args.secret_name
                ));
            }
            ui.info(&format!(
                "registered new key {} (id {}) on {}; the old key {} stays registered",
                done.new_fingerprint,
                done.new_key_id,
                repo.slug(),
                done.old_fingerprint
            ));
            ui.info(&format!("wrote {} (sealed)", path.display()));
            ui.info(&format!(
                "next: git add {p} && git commit -m \"Rotate deploy key of {secret_ref} to {fp}\" && git push",
                p = path.display(),
                fp = done.new_fingerprint
            ));
            let applied_by = match seal.method() {
                crate::seal::SealMethod::Sops => "once Flux's kustomize-controller decrypted and applied it (Argo CD needs a SOPS plugin)",
                crate::seal::SealMethod::SealedSecrets => "once the Sealed Secrets controller unsealed it",
                // No controller decrypts an armored age file: someone applies it by hand.
                _ => "once it is applied (no GitOps controller decrypts an age file: `sealkey unseal FILE | kubectl apply --server-side -f -`)",
            };
            ui.info(&format!(
                "then, {applied_by}: {}",
                finish_command(&repo.slug(), &namespace, &args.secret_name, release.is_some())
            ));
        } else if args.finish {
            let done = rotate::finish(&settings, &cluster, &registry, &progress).await?;
            let waited = if done.waited.as_secs() >= 1 {
                format!(" (after waiting {}s for it)", done.waited.as_secs())
            } else {
                String::new()
            };
            for r in &done.restarted {
                ui.info(&format!("{r}: restarted"));
            }
            ui.info(&format!(
                "{secret_ref} holds {} (registered){waited}; deleted {} old key(s)",
                done.live_fingerprint,
                done.deleted.len()
            ));
            if let Some(why) = &done.kept_because {
                ui.info(&format!(
                    "old key(s) kept: {}",
                    why.render(&super::spelling::Flags)
                ));
            }
            for k in &done.left_alone {
                let retire = rotate::plan::fingerprint(k)
                    .map(|fp| {
                        format!(
                            "; if it really was this Secret's and no other cluster uses it: sealkey keys prune --repo {} --retire {fp} --dry-run, then without --dry-run",
                            repo.slug()
                        )
                    })
                    .unwrap_or_default();
                ui.warn(&format!(
                    "key {} (\"{}\") left registered: named by the Secret's sealkey.io/previous-fingerprint annotation but titled for something else, or titled without this cluster's identity (made offline, e.g. by create --store or --out with --register, or before sealkey identified clusters; another cluster of the same name may use it){retire}",
                    k.id,
                    crate::http::sanitize_server_text(&k.title, &[])
                ));
            }
        } else {
            let done = rotate::rotate_in_cluster(&settings, &cluster, &registry, &progress).await?;
            if !done.old_was_registered {
                ui.warn(&format!(
                    "the old key {} was not a deploy key of {} when rotation started",
                    done.old_fingerprint,
                    repo.slug()
                ));
            }
            for c in &done.consumers {
                let what = match c.action {
                    ConsumerAction::Restart if settings.restart => "restarted",
                    ConsumerAction::Restart => "needs a restart (--no-restart)",
                    ConsumerAction::WaitForSync => "files update in place",
                    ConsumerAction::NextRun => "next run reads the new key",
                    ConsumerAction::ManualRestart => "bare pod: recreate it yourself",
                };
                // The name comes from the cluster's answer.
                ui.info(&format!(
                    "{}/{}: {what}",
                    c.kind.as_str(),
                    crate::audit::report::text::printable(&c.name)
                ));
            }
            let dry = if settings.dry_run { " (dry run: nothing registered, stored, restarted or deleted)" } else { "" };
            ui.info(&format!(
                "{secret_ref} now holds {}{dry}",
                done.new_fingerprint
            ));
            ui.info(&format!("public key:  {}", done.new_public));
            if !done.deleted.is_empty() {
                let ids: Vec<String> = done.deleted.iter().map(|k| k.id.to_string()).collect();
                ui.info(&format!("deleted old key(s) {}", ids.join(", ")));
            }
            if let Some(why) = &done.kept_because {
                ui.info(&format!(
                    "old key(s) kept: {}",
                    why.render(&super::spelling::Flags)
                ));
            }
        }
        Ok::<_, anyhow::Error>(())
        };
        tokio::select! {
            done = work => done,
            signal = super::interrupt::signalled() => {
                let registry = RepoKeys::new(&client, repo.clone());
                let again = format!(
                    "sealkey rotate --repo {} -n NAMESPACE --secret-name {}",
                    repo.slug(),
                    args.secret_name
                );
                let retire = format!(
                    "delete it with `sealkey keys prune --repo {} --retire FINGERPRINT` (the next rotation also names it as pending)",
                    repo.slug()
                );
                let then = if gitops {
                    format!("if the file holds it, commit it and run `{again} --finish` once Flux applied it; if not, `{again} --apply --abandon-pending` (or --gitops again with --abandon-pending) deletes it")
                } else {
                    format!("run `{again} --finish` (it deletes the old key once the Secret holds the new one and readers use it), or `{again} --apply --abandon-pending` if the Secret kept the old key")
                };
                let stopped =
                    super::interrupt::undo_after(signal, &journal, &registry, &retire, &then).await;
                Err(anyhow::Error::new(stopped))
            }
        }
    })?;
    Ok(OK)
}

#[cfg(test)]
mod tests {
    use super::finish_command;

    // issue 21 item 14: after `--gitops` on a HelmRelease's extraSecrets the hint said
    // `--finish`, the docs `--finish --wait 15m`.
    #[test]
    fn the_extra_secrets_finish_hint_waits_as_the_docs_say() {
        let hr = finish_command("acme/dags", "airflow", "airflow-ssh-secret", true);
        assert!(hr.ends_with("--finish --wait 15m"), "{hr}");
        let doc = std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("docs/consumers/airflow-chart.md"),
        )
        .unwrap();
        assert!(
            doc.contains(&hr),
            "docs/consumers/airflow-chart.md does not show: {hr}"
        );
        let plain = finish_command("acme/dags", "airflow", "s", false);
        assert!(plain.ends_with("--finish"), "{plain}");
    }
}
