//! `sealkey completions` and `sealkey man`: shell completion scripts and the roff man page,
//! generated from the same clap definition as `--help`, and the `kubectl sealkey` plugin name.

use super::common::{write_stdout, OK};
use super::Outcome;
use super::Ui;
use anyhow::{Context, Result};
use clap::CommandFactory;

/// The name kubectl gives a plugin binary: `kubectl sealkey` runs `kubectl-sealkey` from PATH.
pub const KUBECTL_PLUGIN_BIN: &str = "kubectl-sealkey";

/// Print a shell completion script to stdout.
///
/// Examples:
///   sealkey completions bash > ~/.local/share/bash-completion/completions/sealkey
///   sealkey completions zsh > "${fpath[1]}/_sealkey"
///   sealkey completions fish > ~/.config/fish/completions/sealkey.fish
///   sealkey completions powershell >> $PROFILE
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to write the script for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Print a man page (roff) to stdout, or write them all into a directory.
///
/// Examples:
///   sealkey man | man -l -
///   sealkey man keys prune | man -l -
///   sealkey man --out-dir /usr/local/share/man/man1   (sealkey.1, sealkey-create.1, ...)
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// The command whose page to print, e.g. `rotate` or `keys list` (default: sealkey's own).
    #[arg(value_name = "COMMAND")]
    pub command: Vec<String>,
    /// Write every page (sealkey.1, sealkey-create.1, sealkey-keys-list.1, ...) into DIR, mode
    /// 0644, each through a temp file and a rename.
    #[arg(long, value_name = "DIR", conflicts_with = "command")]
    pub out_dir: Option<std::path::PathBuf>,
}

/// The clap command as the user invoked it: `kubectl sealkey` when run as the kubectl plugin.
pub fn command_for(argv0: Option<&std::ffi::OsStr>) -> clap::Command {
    let cmd = super::Cli::command();
    if invoked_as_kubectl_plugin(argv0) {
        cmd.bin_name("kubectl sealkey")
            .display_name("kubectl sealkey")
    } else {
        cmd
    }
}

/// Whether argv[0]'s file name is `kubectl-sealkey` (with `.exe` on Windows).
pub fn invoked_as_kubectl_plugin(argv0: Option<&std::ffi::OsStr>) -> bool {
    let Some(name) = argv0
        .map(std::path::Path::new)
        .and_then(|p| p.file_stem())
        .and_then(|s| s.to_str())
    else {
        return false;
    };
    name == KUBECTL_PLUGIN_BIN
}

pub fn run_completions(args: CompletionsArgs, _ui: &Ui) -> Result<Outcome> {
    let mut cmd = super::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "sealkey", &mut out);
    write_stdout(&out)?;
    Ok(OK)
}

/// The command tree as the man pages describe it: built, so every subcommand carries its
/// `sealkey-keys-list` page name, without the `help` pseudo-subcommand.
fn man_tree() -> clap::Command {
    let mut cmd = super::Cli::command().disable_help_subcommand(true);
    cmd.build();
    cmd
}

fn render(cmd: &clap::Command) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .source(format!("sealkey {}", env!("CARGO_PKG_VERSION")))
        .manual("sealkey manual")
        .render(&mut out)
        .context("failed to render the man page")?;
    Ok(out)
}

/// Every page in the tree: (file name, roff).
fn all_pages(cmd: &clap::Command, pages: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
    let name = cmd.get_display_name().unwrap_or(cmd.get_name());
    pages.push((format!("{name}.1"), render(cmd)?));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        all_pages(sub, pages)?;
    }
    Ok(())
}

pub fn run_man(args: ManArgs, ui: &Ui) -> Result<Outcome> {
    let tree = man_tree();
    if let Some(dir) = &args.out_dir {
        if !dir.is_dir() {
            return Err(crate::error::Error::input(
                format!("--out-dir {}", dir.display()),
                "not a directory",
                "create it first (mkdir -p), or pick an existing man1 directory",
            )
            .into());
        }
        let mut pages = Vec::new();
        all_pages(&tree, &mut pages)?;
        for (name, roff) in &pages {
            crate::output::write_atomic_public(&dir.join(name), roff)?;
        }
        ui.info(&format!(
            "wrote {} man pages into {} (sealkey.1, sealkey-create.1, ...)",
            pages.len(),
            dir.display()
        ));
        return Ok(OK);
    }
    let mut cmd = &tree;
    for (depth, word) in args.command.iter().enumerate() {
        cmd = match cmd.find_subcommand(word) {
            Some(sub) => sub,
            None => {
                let choices: Vec<&str> = cmd.get_subcommands().map(|s| s.get_name()).collect();
                let asked = args.command[..=depth].join(" ");
                return Err(crate::error::Error::input(
                    format!("sealkey man {asked}"),
                    format!("`{word}` is not a command here"),
                    if choices.is_empty() {
                        format!("`{}` has no subcommands", args.command[..depth].join(" "))
                    } else {
                        format!("pick one of: {}", choices.join(", "))
                    },
                )
                .into());
            }
        };
    }
    write_stdout(&render(cmd)?)?;
    Ok(OK)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn kubectl_plugin_name_is_recognised_from_argv0_file_name() {
        assert!(invoked_as_kubectl_plugin(Some(OsStr::new(
            "/usr/local/bin/kubectl-sealkey"
        ))));
        assert!(invoked_as_kubectl_plugin(Some(OsStr::new(
            "kubectl-sealkey.exe"
        ))));
        assert!(!invoked_as_kubectl_plugin(Some(OsStr::new(
            "/usr/bin/sealkey"
        ))));
        assert!(!invoked_as_kubectl_plugin(Some(OsStr::new(
            "kubectl-sealkey-old"
        ))));
        assert!(!invoked_as_kubectl_plugin(None));
    }

    #[test]
    fn plugin_usage_line_says_kubectl_sealkey() {
        let mut cmd = command_for(Some(OsStr::new("kubectl-sealkey")));
        let help = cmd.render_help().to_string();
        assert!(help.contains("Usage: kubectl sealkey"), "{help}");
    }
}
