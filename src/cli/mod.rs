//! The command line: clap types (their doc comments are `--help`) and one thin adapter per
//! subcommand. Only this module prints or reads the terminal.

mod audit;
mod common;
mod create;
mod keygen;
mod seal;
mod ui;
mod unseal;

use crate::error::{exit, Error};
use clap::{Parser, Subcommand};
use std::process::ExitCode;
pub use ui::Ui;

/// SSH deploy keys and Kubernetes Secrets for GitOps and git-sync, never on disk unsealed.
///
/// Generates deploy keys in memory, seals them (age, SOPS, Sealed Secrets) and emits what the
/// Apache Airflow chart, git-sync, Flux or Argo CD need, with host-key checking always on.
#[derive(Debug, Parser)]
#[command(
    name = "sealkey",
    version,
    propagate_version = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Options every command takes.
#[derive(Debug, clap::Args)]
pub struct GlobalArgs {
    /// Print only data and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Explain each step on stderr.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Never show step progress (it is shown only when stderr is a terminal).
    #[arg(long, global = true)]
    pub no_progress: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate a deploy key and emit its consumer's manifests, sealed (the main job).
    Create(create::CreateArgs),
    /// Generate a key; print its public half and fingerprint (and the private half, sealed).
    Keygen(keygen::KeygenArgs),
    /// Seal YAML read from stdin (e.g. `kubectl create secret ... --dry-run=client -o yaml`).
    Seal(seal::SealCmdArgs),
    /// Decrypt sealed output with an age identity; plaintext goes only to a pipe.
    Unseal(unseal::UnsealArgs),
    // The about text comes from `AuditArgs`' doc comment (it has the exit codes).
    Audit(audit::AuditArgs),
}

/// Parses the command line, runs the command and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let ui = Ui::new(&cli.global);
    let result = match cli.command {
        Command::Create(args) => create::run(args, &ui),
        Command::Keygen(args) => keygen::run(args, &ui),
        Command::Seal(args) => seal::run(args, &ui),
        Command::Unseal(args) => unseal::run(args, &ui),
        Command::Audit(args) => audit::run(args, &ui),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(err) => {
            if is_broken_pipe(&err) {
                return ExitCode::from(exit::OK);
            }
            ui.error(&err);
            ExitCode::from(exit_code_of(&err))
        }
    }
}

/// The exit code for an error: the library's classification if there is one, else 2.
pub fn exit_code_of(err: &anyhow::Error) -> u8 {
    err.chain()
        .find_map(|e| e.downcast_ref::<Error>())
        .map(Error::exit_code)
        .unwrap_or(exit::INPUT)
}

fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
