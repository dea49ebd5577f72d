//! `sealkey known-hosts`: known_hosts lines from GitHub's `/meta`, compared with the pinned keys.

use super::common::{write_stdout, OK};
use super::github_args::{runtime, ApiArgs};
use super::Outcome;
use super::Ui;
use crate::github::Auth;
use crate::known_hosts::GITHUB_COM_PINNED;
use anyhow::Result;

/// Print known_hosts lines for the git host from GitHub's /meta (warns when they differ from
/// the github.com keys pinned in sealkey).
///
/// Example: sealkey known-hosts > known_hosts
#[derive(Debug, clap::Args)]
pub struct KnownHostsArgs {
    /// Host name to write in front of each key (default: github.com, or the GitHub Enterprise
    /// Server host of --api-url).
    #[arg(long)]
    pub host: Option<String>,
    /// Print the github.com host keys compiled into this sealkey, offline (no request). Check
    /// them against GitHub's published fingerprints (`ssh-keygen -lf FILE`).
    #[arg(long, conflicts_with_all = ["host", "api_url"])]
    pub pinned: bool,
    #[command(flatten)]
    pub api: ApiArgs,
}

pub fn run(args: KnownHostsArgs, ui: &Ui) -> Result<Outcome> {
    if args.pinned {
        let text: String = GITHUB_COM_PINNED.iter().map(|l| format!("{l}\n")).collect();
        write_stdout(text.as_bytes())?;
        return Ok(OK);
    }
    let api_url = args.api.api_url()?;
    let host = args.host.clone().unwrap_or_else(|| api_url.git_host());
    // /meta needs no token; one from the environment only raises the rate limit.
    let auth = super::github_args::token_from_env()
        .map(Auth::Token)
        .unwrap_or(Auth::Anonymous);
    let client = args.api.client(auth, ui)?;
    let known_hosts = runtime()?
        .block_on(client.known_hosts(&host))
        .map_err(anyhow::Error::from)
        .map_err(|e| {
            // issue 21 item 14: offline, the github.com keys compiled in are the way.
            if host == "github.com" {
                e.context(
                    "could not read GitHub's /meta; offline, `sealkey known-hosts --pinned` prints the github.com host keys compiled into this sealkey (check them with `ssh-keygen -lf FILE` against GitHub's published fingerprints)",
                )
            } else {
                e
            }
        })?;
    if host == "github.com" {
        warn_if_not_pinned(known_hosts.lines(), ui);
    }
    write_stdout(known_hosts.to_text().as_bytes())?;
    Ok(OK)
}

/// Warns, line by line, where /meta and the pinned github.com keys disagree (/meta wins).
pub fn warn_if_not_pinned(lines: &[String], ui: &Ui) {
    let added: Vec<&String> = lines
        .iter()
        .filter(|l| !GITHUB_COM_PINNED.contains(&l.as_str()))
        .collect();
    let gone: Vec<&&str> = GITHUB_COM_PINNED
        .iter()
        .filter(|p| !lines.iter().any(|l| l == *p))
        .collect();
    if added.is_empty() && gone.is_empty() {
        return;
    }
    ui.warn("GitHub's /meta host keys differ from the github.com keys pinned in this sealkey build; using /meta's");
    for l in added {
        ui.warn(&format!("  new in /meta:        {}", abbreviate(l)));
    }
    for l in gone {
        ui.warn(&format!("  pinned, not in /meta: {}", abbreviate(l)));
    }
}

fn abbreviate(line: &str) -> String {
    let fp = line
        .split_once(' ')
        .and_then(|(_, key)| crate::keygen::fingerprint_of_public(key).ok())
        .unwrap_or_else(|| "unparseable".into());
    let kind = line.split_whitespace().nth(1).unwrap_or("?");
    format!("{kind} {fp}")
}
