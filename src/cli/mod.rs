//! The command line: clap types (their doc comments are `--help`) and one thin adapter per
//! subcommand. Only this module prints or reads the terminal.

mod app;
mod audit;
mod cluster;
mod common;
mod create;
mod dag_bundle;
mod github_args;
mod inspect;
mod interrupt;
mod keygen;
mod keys;
mod known_hosts;
mod register;
mod rotate;
mod seal;
mod ship;
mod sops_config;
pub mod spelling;
mod store;
mod ui;
mod unseal;

use crate::error::{exit, Error};
use clap::{FromArgMatches, Parser, Subcommand};
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
    #[arg(
        short,
        long,
        global = true,
        conflicts_with = "verbose",
        help_heading = "Global options"
    )]
    pub quiet: bool,
    /// Explain each step on stderr.
    #[arg(short, long, global = true, help_heading = "Global options")]
    pub verbose: bool,
    /// Never show step progress (it is shown only when stderr is a terminal).
    #[arg(long, global = true, help_heading = "Global options")]
    pub no_progress: bool,
}

#[derive(Debug, Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process
enum Command {
    /// Generate a deploy key and emit its consumer's manifests, sealed (the main job).
    Create(Box<create::CreateArgs>),
    /// Generate a key; print its public half and fingerprint (and the private half, sealed).
    Keygen(keygen::KeygenArgs),
    /// Seal YAML read from stdin (e.g. `kubectl create secret ... --dry-run=client -o yaml`).
    ///
    /// YAML comments: `--seal age` keeps the input byte for byte, comments included. `--seal
    /// sops` and `--seal sealed-secrets` write each object without its comments (the sops CLI
    /// would keep them, encrypted); keep notes in `metadata.annotations`, which SOPS files hold in
    /// clear, or next to the file.
    Seal(seal::SealCmdArgs),
    /// Decrypt age or SOPS output with an age identity (MAC checked); plaintext only to a pipe.
    Unseal(unseal::UnsealArgs),
    /// Show what a sealed file holds (format, recipients, objects, encrypted paths, claimed key)
    /// without decrypting it.
    Inspect(inspect::InspectArgs),
    /// A GitHub App's key as the git credential (Flux, git-sync, Argo CD, Airflow), proven
    /// against GitHub before it is written.
    App(app::AppArgs),
    /// Register an existing public key (e.g. Flux's identity.pub) as a read-only deploy key.
    Register(register::RegisterArgs),
    /// List, audit and prune a repository's (or an organisation's) deploy keys.
    Keys(keys::KeysArgs),
    /// Print known_hosts lines for GitHub from its /meta endpoint.
    KnownHosts(known_hosts::KnownHostsArgs),
    /// Replace a deploy key without downtime (cluster or GitOps), rolling back on any failure.
    Rotate(rotate::RotateArgs),
    // The about text comes from `AuditArgs`' doc comment (it has the exit codes).
    Audit(audit::AuditArgs),
    // The about text comes from `DagBundleArgs`' doc comment.
    ToDagBundle(dag_bundle::DagBundleArgs),
    /// Print a shell completion script (bash, zsh, fish, powershell) to stdout.
    Completions(ship::CompletionsArgs),
    /// Print the man page (roff) to stdout.
    Man(ship::ManArgs),
}

/// Parses the command line, runs the command and maps the outcome to an exit code.
pub fn main() -> ExitCode {
    // First, before argv is parsed or any key, token or Secret value can be in memory: no core
    // dumps, no ptrace by same-user peers. Every command, so the promise needs no per-command care.
    let hardening_problems = crate::harden::protect_process();
    // Before clap sees argv: its errors echo values raw to the terminal. `audit` is exempt: it
    // takes the file names a tree holds (pre-commit passes them), which may hold anything, and
    // prints every name escaped.
    let argv: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let is_audit = argv
        .iter()
        .find(|a| !a.to_string_lossy().starts_with('-'))
        .is_some_and(|a| a == "audit");
    if !is_audit {
        if let Err(err) = check_argv(argv.into_iter()) {
            eprintln!("error: {}", spelling::show(&err));
            return ExitCode::from(exit::INPUT);
        }
    }
    let cli = parse_cli();
    let ui = Ui::new(&cli.global);
    for problem in &hardening_problems {
        ui.detail(problem);
    }
    let result = match cli.command {
        Command::Create(args) => create::run(*args, &ui),
        Command::Keygen(args) => keygen::run(args, &ui),
        Command::Seal(args) => seal::run(args, &ui),
        Command::Unseal(args) => unseal::run(args, &ui),
        Command::Inspect(args) => inspect::run(args, &ui),
        Command::App(args) => app::run(args, &ui),
        Command::Register(args) => register::run(args, &ui),
        Command::Keys(args) => keys::run(args, &ui),
        Command::KnownHosts(args) => known_hosts::run(args, &ui),
        Command::Rotate(args) => rotate::run(args, &ui),
        Command::Audit(args) => audit::run(args, &ui),
        Command::ToDagBundle(args) => dag_bundle::run(args, &ui),
        Command::Completions(args) => ship::run_completions(args, &ui),
        Command::Man(args) => ship::run_man(args, &ui),
    };
    let code = match result {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(err) if is_broken_pipe(&err) => ExitCode::from(exit::OK),
        Err(err) => {
            ui.error(&err);
            if let Some(hint) = flag_hint(&err) {
                ui.hint(hint);
            }
            ExitCode::from(exit_code_of(&err))
        }
    };
    // The secrets this run sent, kept to redact server echoes until the last message is out.
    crate::sent::forget_all();
    code
}

/// Refuses arguments holding control characters, Unicode line or paragraph separators or bidi
/// overrides: no legitimate name, path or value has them, and each would reach a terminal (error
/// messages, the printed public key) or a file's text (YAML escapes them, key comments do not).
pub fn check_argv(
    args: impl Iterator<Item = std::ffi::OsString>,
) -> std::result::Result<(), Error> {
    for (i, arg) in args.enumerate() {
        let text = arg.to_string_lossy();
        let Some(c) = text.chars().find(|&c| {
            c.is_control()
                || crate::yaml::is_unsafe_char(c)
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        }) else {
            continue;
        };
        let name = match text.strip_prefix("--") {
            Some(rest) => format!("--{}", rest.split('=').next().unwrap_or_default()),
            None => format!("argument {}", i + 1),
        };
        let name: String = name
            .chars()
            .filter(|c| !c.is_control() && !crate::yaml::is_unsafe_char(*c))
            .collect();
        return Err(Error::input(
            name,
            format!(
                "holds the control or line-break character U+{:04X}",
                c as u32
            ),
            "remove it: names, paths and values never need one",
        ));
    }
    Ok(())
}

/// Parses argv; run as `kubectl-sealkey`, help and usage say `kubectl sealkey`.
fn parse_cli() -> Cli {
    let argv0 = std::env::args_os().next();
    let matches = ship::command_for(argv0.as_deref()).get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

/// How a command ended when it did not fail. Exit codes are chosen here and in [`exit_code_of`]
/// only; commands never pick numbers themselves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Did what it was asked (exit 0).
    Done,
    /// Ran to the end and found problems at or above the threshold (`audit`, `keys audit`,
    /// `inspect` of a file with a clear key) (exit 1).
    Findings,
    /// Reported what it could, but some input could not be read: the result is incomplete and
    /// must not pass (exit 2, as an input error).
    Incomplete,
}

impl Outcome {
    /// The process exit code.
    pub fn exit_code(self) -> u8 {
        match self {
            Outcome::Done => exit::OK,
            Outcome::Findings => exit::FINDINGS,
            Outcome::Incomplete => exit::INPUT,
        }
    }
}

/// The flag that fixes a library error, added here at the edge: the library names what went
/// wrong, the CLI knows which flag sets it (as uv does).
pub fn flag_hint(err: &anyhow::Error) -> Option<&'static str> {
    let lib = err.chain().find_map(|e| e.downcast_ref::<Error>())?;
    let mut e = lib;
    while let Error::Rotation { source, .. } = e {
        e = source;
    }
    match e {
        Error::Kube { status: None, .. } => {
            Some("choose the cluster with --kubeconfig FILE and --context NAME (as kubectl)")
        }
        Error::Http { service, .. } if service == "GitHub" => Some(
            "set the API with --api-url (GitHub Enterprise Server: --api-url https://HOST/api/v3)",
        ),
        Error::Http { .. } => Some("pass a saved certificate instead: --cert cert.pem"),
        _ => None,
    }
}

/// The exit code for an error: the library's classification if there is one, else 2.
pub fn exit_code_of(err: &anyhow::Error) -> u8 {
    if let Some(i) = err.downcast_ref::<interrupt::Interrupted>() {
        return i.signal.exit_code();
    }
    err.chain()
        .find_map(|e| e.downcast_ref::<Error>())
        .map(Error::exit_code)
        .unwrap_or(exit::INPUT)
}

pub(crate) fn is_broken_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
