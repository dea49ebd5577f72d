//! `sealkey to-dag-bundle`: moves an Apache Airflow chart HelmRelease off `dags.gitSync` to a
//! GitDagBundle that uses the same key Secret.

use super::common::{write_stdout, OK};
use super::{Outcome, Ui};
use crate::emit::dag_bundle::{line_diff, migrate_text, MigrateOptions};
use anyhow::Result;
use std::path::PathBuf;

/// Move an Airflow chart HelmRelease from git-sync to Airflow 3's GitDagBundle, in place.
///
/// Reads `dags.gitSync` (repo, branch/ref/rev, subPath, sshKeySecret, knownHosts, period/wait)
/// and sets `dagProcessor.dagBundleConfigList`, a `git` connection in `extraEnv` (file paths
/// only, host-key checking on), the known_hosts as a chart-made ConfigMap, the key Secret mounted
/// read-only into every Airflow container, and `dags.gitSync.enabled: false`. The key Secret is
/// used as it is. No other line changes. git-sync settings without an equivalent are named; ones
/// that would change what is synced are refused (exit 2, nothing written).
///
/// Example: sealkey to-dag-bundle releases/airflow.yaml --dry-run
#[derive(Debug, clap::Args)]
pub struct DagBundleArgs {
    /// The HelmRelease file (plain, or SOPS-encrypted with --identity). Rewritten in place.
    pub file: PathBuf,
    /// Print the diff and what would change; write nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// age identity file for a SOPS-encrypted HelmRelease.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// known_hosts for the git host, used when dags.gitSync.knownHosts is unset (github.com's
    /// pinned keys otherwise).
    #[arg(long, value_name = "FILE")]
    pub known_hosts: Option<PathBuf>,
    /// Airflow connection id [default: git_default].
    #[arg(long, default_value = "git_default")]
    pub conn_id: String,
    /// Bundle name [default: the repository's name].
    #[arg(long)]
    pub bundle_name: Option<String>,
}

pub fn run(args: DagBundleArgs, ui: &Ui) -> Result<Outcome> {
    let what = args.file.display().to_string();
    if !args
        .conn_id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_')
        || args.conn_id.is_empty()
    {
        return Err(crate::error::Error::input(
            format!("--conn-id {}", args.conn_id),
            "not a connection id Airflow can read from the environment",
            "use letters, digits and '_', e.g. --conn-id git_default",
        )
        .into());
    }
    if let Some(name) = &args.bundle_name {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(crate::error::Error::input(
                format!("--bundle-name {name}"),
                "not a bundle name",
                "use letters, digits, '-', '_' and '.'",
            )
            .into());
        }
    }
    // Rewritten in place: a symlink would be replaced by a regular file, its target untouched.
    if std::fs::symlink_metadata(&args.file).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(crate::error::Error::input(
            &what,
            "is a symlink; the file is rewritten in place",
            "pass the path of the file it points to",
        )
        .into());
    }
    let (bytes, meta) = crate::input_file::read_named_with_metadata(
        &args.file,
        what.clone(),
        crate::input_file::DOCUMENT_MAX,
    )?;
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o777;
    let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
        crate::error::Error::input(&what, "not UTF-8 text", "pass the HelmRelease YAML file")
    })?;
    let known_hosts = match &args.known_hosts {
        Some(p) => Some(crate::known_hosts::KnownHosts::from_file(p)?),
        None => None,
    };
    let ids = match &args.identity {
        Some(p) => super::common::read_identity_file(p)?,
        None => Vec::new(),
    };
    let opts = MigrateOptions {
        conn_id: args.conn_id.clone(),
        bundle_name: args.bundle_name.clone(),
        known_hosts,
    };
    let (new_text, plan) = migrate_text(&text, &what, &opts, &ids, jiff::Timestamp::now())?;
    let r = &plan.report;
    if args.dry_run {
        write_stdout(line_diff(&text, &new_text).as_bytes())?;
    } else {
        crate::output::check_target(&args.file, crate::error::Setting::Out)?;
        crate::output::write_atomic_with_mode(
            &args.file,
            new_text.as_bytes(),
            mode,
            crate::error::Setting::Out,
        )?;
    }
    let verb = if args.dry_run { "would set" } else { "set" };
    ui.result(&format!(
        "{what}: {verb} bundle {} (tracking_ref {}, connection {}) on Secret {}",
        plan.bundle.bundle_name,
        plan.bundle.tracking_ref,
        plan.bundle.conn_id,
        plan.bundle.key_secret
    ));
    for line in &r.changed {
        ui.info(&format!("{verb} values.{line}"));
    }
    for line in &r.reported {
        ui.warn(line);
    }
    for line in &r.checks {
        ui.info(&format!("check: {line}"));
    }
    for line in &r.rollback {
        ui.info(&format!("roll back: {line}"));
    }
    if args.dry_run {
        ui.info("dry run: nothing was written");
    }
    Ok(OK)
}
