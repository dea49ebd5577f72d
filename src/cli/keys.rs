//! `sealkey keys list|audit|prune`: deploy keys of one repository or many (an organisation).

use super::common::{write_stdout, OK};
use super::github_args::{duration_within, runtime, GithubArgs, DAY};
use super::Outcome;
use super::Ui;
use crate::error::Error;
use crate::github::hygiene::{self, HygieneSettings, KeyFinding};
use crate::github::{DeployKeyInfo, GithubClient};
use crate::repo::RepoRef;
use anyhow::Result;
use std::path::PathBuf;
use std::time::Duration;

/// Deploy keys on GitHub: list, audit, prune.
#[derive(Debug, clap::Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
}

#[derive(Debug, clap::Subcommand)]
enum KeysCommand {
    /// List the deploy keys of one or more repositories.
    List(ListArgs),
    /// Flag risky deploy keys: write access, too old, unused, disabled, not made by sealkey,
    /// duplicates. Exits 1 when anything is flagged.
    Audit(AuditArgs),
    /// Delete every deploy key except the fingerprints given with --keep.
    Prune(PruneArgs),
}

/// Which repositories: `--repo` (repeatable) and/or `--repos-file`.
#[derive(Debug, clap::Args)]
pub struct RepoSelection {
    /// A repository, OWNER/REPO; repeat for several.
    #[arg(long = "repo", value_name = "OWNER/REPO")]
    pub repos: Vec<String>,
    /// A file with one OWNER/REPO per line (`#` comments), for an organisation-wide run.
    #[arg(long, value_name = "FILE")]
    pub repos_file: Option<PathBuf>,
}

/// `--format` of `keys list` and `keys audit`.
#[derive(Debug, clap::Args)]
struct FormatArg {
    /// Output format (`--format`, as in `audit` and `inspect`; `-o`/`--output` also work).
    #[arg(
        long = "format",
        short = 'o',
        visible_alias = "output",
        value_name = "FORMAT",
        value_enum,
        default_value = "table"
    )]
    output: OutputFormat,
}

/// Table or JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// Aligned columns for people.
    Table,
    /// JSON for scripts.
    Json,
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    #[command(flatten)]
    repos: RepoSelection,
    #[command(flatten)]
    format: FormatArg,
    #[command(flatten)]
    github: GithubArgs,
}

#[derive(Debug, clap::Args)]
struct AuditArgs {
    #[command(flatten)]
    repos: RepoSelection,
    /// Flag keys created longer ago than this (1s to 36500d).
    #[arg(long, value_name = "DURATION", default_value = "90d", value_parser = duration_within(1, 36_500 * DAY))]
    max_age: Duration,
    /// Flag keys last used longer ago than this (or never used and older than this; 1s to
    /// 36500d).
    #[arg(long, value_name = "DURATION", default_value = "30d", value_parser = duration_within(1, 36_500 * DAY))]
    unused_for: Duration,
    #[command(flatten)]
    format: FormatArg,
    #[command(flatten)]
    github: GithubArgs,
}

#[derive(Debug, clap::Args)]
struct PruneArgs {
    #[command(flatten)]
    repos: RepoSelection,
    /// Fingerprint (SHA256:...) of a key to keep; repeatable. Every other key is deleted.
    #[arg(
        long,
        value_name = "FINGERPRINT",
        required_unless_present = "retire",
        conflicts_with = "retire"
    )]
    keep: Vec<String>,
    /// Fingerprint (SHA256:...) of a key to delete; repeatable. Only these keys are deleted,
    /// every other stays (e.g. the old key a migration or `create --force` named).
    #[arg(long, value_name = "FINGERPRINT")]
    retire: Vec<String>,
    /// A sealkey file (SOPS, Sealed Secrets, plain) whose key must stay: the key its
    /// `sealkey.io/fingerprint` annotation names is never deleted (asking to retire it is
    /// refused); repeatable.
    #[arg(long, value_name = "FILE")]
    held_by: Vec<std::path::PathBuf>,
    /// Show what would be deleted; delete nothing.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    github: GithubArgs,
}

pub fn run(args: KeysArgs, ui: &Ui) -> Result<Outcome> {
    match args.command {
        KeysCommand::List(a) => list(a, ui),
        KeysCommand::Audit(a) => audit_cmd(a, ui),
        KeysCommand::Prune(a) => prune(a, ui),
    }
}

impl RepoSelection {
    /// The repositories, parsed and de-duplicated, in the order given.
    pub fn resolve(&self) -> Result<Vec<RepoRef>> {
        let mut out: Vec<RepoRef> = Vec::new();
        for r in &self.repos {
            out.push(RepoRef::parse(r)?);
        }
        if let Some(path) = &self.repos_file {
            let bytes = crate::input_file::read_named(
                path,
                format!("--repos-file {}", path.display()),
                crate::input_file::LIST_MAX,
            )?;
            let text = String::from_utf8_lossy(&bytes);
            for (n, line) in text.lines().enumerate() {
                let line = line.split('#').next().unwrap_or("").trim();
                if line.is_empty() {
                    continue;
                }
                out.push(RepoRef::parse(line).map_err(|_| {
                    Error::input(
                        format!("{} line {}", path.display(), n + 1),
                        format!("`{line}` is not OWNER/REPO"),
                        "write one repository per line, e.g. acme/dags",
                    )
                })?);
            }
        }
        let mut seen = std::collections::HashSet::new();
        out.retain(|r| seen.insert(r.slug()));
        if out.is_empty() {
            return Err(Error::input(
                "--repo",
                "no repository given",
                "pass --repo OWNER/REPO (repeatable) or --repos-file FILE",
            )
            .into());
        }
        Ok(out)
    }
}

/// One repository's keys, or why they could not be read.
type Listing = (RepoRef, Result<Vec<DeployKeyInfo>, Error>);

/// Lists every repository's keys; an error on one repository is kept and the rest go on.
fn fetch_all(client: &GithubClient, repos: &[RepoRef], ui: &Ui) -> Result<Vec<Listing>> {
    let rt = runtime()?;
    Ok(repos
        .iter()
        .enumerate()
        .map(|(i, repo)| {
            ui.step(&format!(
                "[{}/{}] listing {}",
                i + 1,
                repos.len(),
                repo.slug()
            ));
            (repo.clone(), rt.block_on(client.list_deploy_keys(repo)))
        })
        .collect())
}

fn list(args: ListArgs, ui: &Ui) -> Result<Outcome> {
    let repos = args.repos.resolve()?;
    let client = args.github.client(ui)?;
    let results = fetch_all(&client, &repos, ui)?;
    let mut failed = Vec::new();
    let mut rows = Vec::new();
    let mut json = Vec::new();
    for (repo, result) in results {
        match result {
            Ok(keys) => {
                for k in keys {
                    rows.push(vec![
                        repo.slug(),
                        k.id.to_string(),
                        access(&k).into(),
                        date_of(&k.created_at),
                        k.last_used
                            .as_deref()
                            .map(date_of)
                            .unwrap_or_else(|| "never".into()),
                        k.fingerprint(),
                        k.title.clone(),
                    ]);
                    let mut v = serde_json::to_value(&k)?;
                    v["repo"] = repo.slug().into();
                    v["fingerprint"] = k.fingerprint().into();
                    json.push(v);
                }
            }
            Err(e) => failed.push((repo, e)),
        }
    }
    match args.format.output {
        OutputFormat::Json => {
            write_stdout(format!("{}\n", serde_json::to_string_pretty(&json)?).as_bytes())?
        }
        OutputFormat::Table => write_stdout(
            table(
                &[
                    "REPO",
                    "ID",
                    "ACCESS",
                    "CREATED",
                    "LAST USED",
                    "FINGERPRINT",
                    "TITLE",
                ],
                &rows,
            )
            .as_bytes(),
        )?,
    }
    finish_with_failures(failed, OK, ui)
}

fn audit_cmd(args: AuditArgs, ui: &Ui) -> Result<Outcome> {
    let repos = args.repos.resolve()?;
    let client = args.github.client(ui)?;
    let results = fetch_all(&client, &repos, ui)?;
    let mut failed = Vec::new();
    let mut fetched = Vec::new();
    for (repo, result) in results {
        match result {
            Ok(keys) => fetched.push((repo, keys)),
            Err(e) => failed.push((repo, e)),
        }
    }
    let settings = HygieneSettings {
        max_age: args.max_age,
        unused_for: args.unused_for,
        now: jiff::Timestamp::now(),
    };
    let findings = hygiene::check(&fetched, &settings);
    let summary: Vec<serde_json::Value> = fetched
        .iter()
        .map(|(repo, keys)| {
            let flagged: std::collections::HashSet<u64> = findings
                .iter()
                .filter(|f| f.repo == repo.slug())
                .map(|f| f.key_id)
                .collect();
            serde_json::json!({
                "repo": repo.slug(),
                "keys": keys.len(),
                "flagged_keys": flagged.len(),
                "findings": findings.iter().filter(|f| f.repo == repo.slug()).count(),
            })
        })
        .collect();
    match args.format.output {
        OutputFormat::Json => {
            let errors: Vec<serde_json::Value> = failed
                .iter()
                .map(|(r, e)| {
                    serde_json::json!({"repo": r.slug(), "error": super::spelling::show(e)})
                })
                .collect();
            let doc =
                serde_json::json!({"summary": summary, "findings": findings, "errors": errors});
            write_stdout(format!("{}\n", serde_json::to_string_pretty(&doc)?).as_bytes())?;
        }
        OutputFormat::Table => {
            let mut out = String::new();
            if !findings.is_empty() {
                out.push_str(&findings_table(&findings));
                out.push('\n');
            }
            let mut rows: Vec<Vec<String>> = summary
                .iter()
                .map(|s| {
                    vec![
                        s["repo"].as_str().unwrap_or_default().to_string(),
                        s["keys"].to_string(),
                        s["flagged_keys"].to_string(),
                        s["findings"].to_string(),
                    ]
                })
                .collect();
            rows.extend(failed.iter().map(|(r, _)| {
                vec![
                    r.slug(),
                    "-".into(),
                    "-".into(),
                    "error (see stderr)".into(),
                ]
            }));
            out.push_str(&table(&["REPO", "KEYS", "FLAGGED KEYS", "FINDINGS"], &rows));
            write_stdout(out.as_bytes())?;
        }
    }
    let code = if findings.is_empty() {
        OK
    } else {
        Outcome::Findings
    };
    if failed.is_empty() {
        ui.info(&format!(
            "{} finding(s) on {} key(s) in {} repositories",
            findings.len(),
            fetched.iter().map(|(_, k)| k.len()).sum::<usize>(),
            fetched.len()
        ));
    }
    finish_with_failures(failed, code, ui)
}

fn prune(args: PruneArgs, ui: &Ui) -> Result<Outcome> {
    let repos = args.repos.resolve()?;
    let held = held_fingerprints(&args.held_by)?;
    for fp in &args.retire {
        if let Some((file, _)) = held.iter().find(|(_, h)| hygiene::same_fingerprint(fp, h)) {
            return Err(Error::input(
                format!("--retire {fp}"),
                format!("{file} still holds this key (its sealkey.io/fingerprint annotation)"),
                "retire a key only once no sealed file and no live Secret holds it; nothing was deleted",
            )
            .into());
        }
    }
    for fp in args.keep.iter().chain(&args.retire) {
        let body = fp.trim().strip_prefix("SHA256:").unwrap_or(fp.trim());
        if body.len() != 43
            || !body
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '+' || c == '/')
        {
            return Err(Error::input(
                format!(
                    "{} {fp}",
                    if args.retire.is_empty() {
                        "--keep"
                    } else {
                        "--retire"
                    }
                ),
                "not a SHA256 key fingerprint",
                "copy it from `sealkey keys list` or `ssh-keygen -l -f KEY.pub` (SHA256:...)",
            )
            .into());
        }
    }
    let client = args.github.client(ui)?;
    let rt = runtime()?;
    let mut listed = Vec::new();
    for repo in &repos {
        listed.push((repo.clone(), rt.block_on(client.list_deploy_keys(repo))?));
    }
    // A --keep or --retire that matches nothing is most likely a typo: stop before deleting anything.
    for fp in args.keep.iter().chain(&args.retire) {
        let found = listed
            .iter()
            .flat_map(|(_, keys)| keys)
            .any(|k| hygiene::same_fingerprint(fp, &k.fingerprint()));
        if !found {
            return Err(Error::input(
                if args.retire.is_empty() {
                    format!("--keep {fp}")
                } else {
                    format!("--retire {fp}")
                },
                "no deploy key with this fingerprint on the given repositories",
                "check the fingerprint with `sealkey keys list`; nothing was deleted",
            )
            .into());
        }
    }
    let mut rows = Vec::new();
    for (repo, keys) in &listed {
        let plan = if args.retire.is_empty() {
            let mut keep = args.keep.clone();
            keep.extend(held.iter().map(|(_, fp)| fp.clone()));
            hygiene::prune_plan(keys, &keep)
        } else {
            hygiene::retire_plan(keys, &args.retire)
        };
        for key in plan {
            let action = if args.dry_run {
                "would delete".to_string()
            } else if rt.block_on(client.delete_deploy_key(repo, key.id))? {
                "deleted".to_string()
            } else {
                "already gone".to_string()
            };
            rows.push(vec![
                action,
                repo.slug(),
                key.id.to_string(),
                key.fingerprint(),
                key.title.clone(),
            ]);
        }
    }
    if rows.is_empty() {
        ui.info("nothing to prune: every key is kept");
    } else {
        write_stdout(table(&["ACTION", "REPO", "ID", "FINGERPRINT", "TITLE"], &rows).as_bytes())?;
    }
    Ok(OK)
}

/// `(file, fingerprint)` for every `sealkey.io/fingerprint` annotation in the `--held-by` files.
fn held_fingerprints(files: &[std::path::PathBuf]) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).map_err(|e| Error::file("read", f, e))?;
        let before = out.len();
        for (at, m) in text.match_indices("sealkey.io/fingerprint:") {
            let fp: String = text[at + m.len()..]
                .trim_start()
                .trim_start_matches(['"', '\''])
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || "+/=:".contains(*c))
                .collect();
            if fp.starts_with("SHA256:") {
                out.push((f.display().to_string(), fp));
            }
        }
        if out.len() == before {
            return Err(Error::input(
                format!("--held-by {}", f.display()),
                "it names no key (no sealkey.io/fingerprint annotation)",
                "pass a file sealkey wrote, or check the live Secret's key with `sealkey inspect`; nothing was deleted",
            )
            .into());
        }
    }
    Ok(out)
}

/// Reports per-repository failures on stderr; any failure makes the exit code 3.
fn finish_with_failures(failed: Vec<(RepoRef, Error)>, code: Outcome, ui: &Ui) -> Result<Outcome> {
    if failed.is_empty() {
        return Ok(code);
    }
    if failed.len() == 1 {
        return Err(failed.into_iter().next().expect("one").1.into());
    }
    for (repo, e) in &failed {
        ui.warn(&format!("{}: {e}", repo.slug()));
    }
    Err(Error::remote(
        "GitHub",
        format!("{} repositories could not be read", failed.len()),
        "see the warnings above",
    )
    .into())
}

fn findings_table(findings: &[KeyFinding]) -> String {
    let rows: Vec<Vec<String>> = findings
        .iter()
        .map(|f| {
            vec![
                f.repo.clone(),
                f.key_id.to_string(),
                f.rule.as_str().into(),
                f.detail.clone(),
                f.title.clone(),
            ]
        })
        .collect();
    table(&["REPO", "ID", "RULE", "DETAIL", "TITLE"], &rows)
}

fn access(k: &DeployKeyInfo) -> &'static str {
    if k.read_only {
        "read-only"
    } else {
        "READ-WRITE"
    }
}

fn date_of(ts: &str) -> String {
    ts.get(..10).unwrap_or(ts).to_string()
}

/// Left-aligned columns separated by two spaces; the last column is not padded. Cells come from
/// GitHub (key titles, who added a key): controls, line breaks and bidi characters in them are
/// shown escaped, never sent to the terminal.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| crate::audit::report::text::printable(c).into_owned())
                .collect()
        })
        .collect();
    let rows = &rows;
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let n = cells.len();
        for (i, cell) in cells.into_iter().enumerate() {
            out.push_str(cell);
            if i + 1 < n {
                out.push_str(&" ".repeat(widths[i] - cell.chars().count() + 2));
            }
        }
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}
