//! `sealkey completions` and `sealkey man`: shell completion scripts and the roff man page,
//! generated from the same clap definition as `--help`, and the `kubectl sealkey` plugin name.

use super::common::{write_stdout, OK};
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

/// Print sealkey's man page (roff) to stdout.
///
/// Example: sealkey man > /usr/local/share/man/man1/sealkey.1 (or: sealkey man | man -l -)
#[derive(Debug, clap::Args)]
pub struct ManArgs {}

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

pub fn run_completions(args: CompletionsArgs, _ui: &Ui) -> Result<u8> {
    let mut cmd = super::Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "sealkey", &mut out);
    write_stdout(&out)?;
    Ok(OK)
}

pub fn run_man(_args: ManArgs, _ui: &Ui) -> Result<u8> {
    let cmd = super::Cli::command();
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut out)
        .context("failed to render the man page")?;
    write_stdout(&out)?;
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
