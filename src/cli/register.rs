//! `sealkey register`: an existing public key (e.g. Flux's `identity.pub`) -> deploy key.

use super::common::OK;
use super::github_args::{runtime, GithubArgs};
use super::Outcome;
use super::Ui;
use crate::error::Error;
use crate::github::{NewDeployKey, RegistrationOutcome};
use crate::repo::RepoRef;
use anyhow::Result;
use std::io::Read;
use std::path::PathBuf;

/// Register an existing public key as a deploy key (read-only unless --read-write).
///
/// Example: sealkey register --repo acme/dags --key-file identity.pub
///
/// Idempotent: registering a key that is already a deploy key of the repository succeeds and
/// prints the existing key's id. Prints the registered key as JSON on stdout.
#[derive(Debug, clap::Args)]
pub struct RegisterArgs {
    /// The repository, OWNER/REPO.
    #[arg(long, value_name = "OWNER/REPO")]
    pub repo: String,
    /// Deploy key title (default: `sealkey COMMENT YYYY-MM-DD`).
    #[arg(long)]
    pub title: Option<String>,
    /// Let the key push. Leave it off unless the consumer really writes (Flux image automation).
    #[arg(long)]
    pub read_write: bool,
    /// The public key file (default: read from standard input).
    #[arg(long, value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    #[command(flatten)]
    pub github: GithubArgs,
}

pub fn run(args: RegisterArgs, ui: &Ui) -> Result<Outcome> {
    let repo = RepoRef::parse(&args.repo)?;
    if args.github.token_stdin && args.key_file.is_none() {
        return Err(Error::input(
            "--token-stdin",
            "standard input cannot carry both the token and the public key",
            "pass the key with --key-file FILE",
        )
        .into());
    }
    let (text, what) = match &args.key_file {
        // Wiped on drop: a private key passed by mistake must not linger.
        Some(path) => (
            zeroize::Zeroizing::new(
                String::from_utf8(
                    super::common::read_flag_file(
                        "--key-file",
                        path,
                        crate::input_file::PUBLIC_KEY_MAX,
                    )?
                    .to_vec(),
                )
                .map_err(|_| {
                    Error::input(
                        format!("--key-file {}", path.display()),
                        "not UTF-8 text",
                        "pass the .pub file",
                    )
                })?,
            ),
            format!("--key-file {}", path.display()),
        ),
        None => {
            if std::io::IsTerminal::is_terminal(&std::io::stdin()) {
                return Err(Error::input(
                    "public key",
                    "none given",
                    "pass --key-file FILE.pub, or pipe the key in (`sealkey register ... < identity.pub`)",
                )
                .into());
            }
            // Pre-sized for the 64 KiB cap: no reallocation leaves a copy in freed memory.
            let mut text = zeroize::Zeroizing::new(String::with_capacity(64 * 1024 + 1));
            std::io::stdin()
                .lock()
                .take(64 * 1024)
                .read_to_string(&mut text)
                .map_err(|e| Error::file("read", "standard input", e))?;
            (text, "standard input".to_string())
        }
    };
    let line = public_key_line(&text, &what)?;
    let fingerprint = crate::keygen::fingerprint_of_public(&line).map_err(|_| {
        Error::input(
            &what,
            "not an OpenSSH public key",
            "pass one line like `ssh-ed25519 AAAA... comment` (the .pub file)",
        )
    })?;
    let comment = line.split_whitespace().nth(2).unwrap_or("");
    let today = jiff::Zoned::now()
        .with_time_zone(jiff::tz::TimeZone::UTC)
        .date();
    let title = args.title.clone().unwrap_or_else(|| {
        let label = if comment.is_empty() {
            repo.slug()
        } else {
            comment.to_string()
        };
        crate::github::title::label_title(&label, today)
    });
    let client = args.github.client(ui)?;
    let new = NewDeployKey {
        title,
        key: line,
        read_only: !args.read_write,
    };
    let registered = runtime()?.block_on(client.register_deploy_key(&repo, &new))?;
    let key = &registered.key;
    let access = if key.read_only {
        "read-only"
    } else {
        "read-write"
    };
    match registered.outcome {
        RegistrationOutcome::Created => ui.info(&format!(
            "registered deploy key {} on {} ({access}), {fingerprint}",
            key.id,
            repo.slug()
        )),
        RegistrationOutcome::AlreadyRegistered => ui.info(&format!(
            "already registered: deploy key {} on {} ({access}, title \"{}\"), {fingerprint}",
            key.id,
            repo.slug(),
            key.title
        )),
    }
    if key.read_only != new.read_only {
        ui.warn(&format!(
            "the existing key is {access}, not what was asked; delete it (`sealkey keys prune`) and register again to change that"
        ));
    }
    let json = serde_json::json!({
        "repo": repo.slug(),
        "id": key.id,
        "title": key.title,
        "read_only": key.read_only,
        "fingerprint": fingerprint,
        "outcome": registered.outcome,
    });
    super::common::write_stdout(format!("{json}\n").as_bytes())?;
    Ok(OK)
}

/// The one public key line in `text`; refuses private keys outright.
fn public_key_line(text: &str, what: &str) -> Result<String> {
    if text.contains("PRIVATE KEY") {
        return Err(Error::input(
            what,
            "this is a private key",
            "register the public half (the .pub file, or `ssh-keygen -y -f KEY`); a private key never goes to GitHub",
        )
        .into());
    }
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    match lines.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(Error::input(what, "no public key found", "pass the .pub file").into()),
        _ => Err(Error::input(
            what,
            "more than one line",
            "pass exactly one public key (one deploy key per call)",
        )
        .into()),
    }
}
