//! `sealkey audit`: how workloads consume Secrets, from files, the git index or a live cluster.

use super::Outcome;
use super::Ui;
use crate::audit::report::text::printable;
use crate::audit::report::{self, Format};
use crate::audit::source::{cluster, files, staged};
use crate::audit::summary::Summary;
use crate::audit::{self, Finding, Input, InputError, Report, Rule, RuleFilter, Severity, Stats};
use crate::error::Error;
use anyhow::Result;
use std::io::Write;
use std::path::PathBuf;

/// Audit how workloads consume Secrets: one finding per usage (SK001-SK021).
///
/// Ends with a per-Secret consumption matrix (volume, env, envFrom, imagePullSecrets). Reads files and directories (recursively: .yaml, .yml, .json; `-` is stdin), the files
/// staged in git (--staged, for a pre-commit hook) or a live cluster (--cluster). Safe on
/// untrusted trees: symlink loops are walked once, only regular files are read (devices, FIFOs
/// and sockets are refused), each up to --max-file-size, and anchors/aliases expand by at most
/// 64 MiB per file. Exit codes: 0 clean, 1 findings at or above --fail-on, 2 an input could not
/// be read or was refused (the others are still audited and reported; 2 wins over 1), 3 the
/// cluster refused or failed. Rules: docs/audit-rules.md.
///
/// Example: sealkey audit deploy/ --format sarif > sealkey.sarif
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Files or directories to audit (default: the current directory); `-` reads stdin. With
    /// --staged: audit exactly these files as staged (what pre-commit passes), the working-tree
    /// file for those not in the index.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Audit the files staged in git, as staged (for a pre-commit hook): the staged changes, or
    /// the PATHs given.
    #[arg(long, conflicts_with = "cluster")]
    pub staged: bool,
    /// Audit the live cluster of the current kubeconfig context (or in-cluster config).
    #[arg(long, conflicts_with = "paths")]
    pub cluster: bool,
    /// With --cluster: only this namespace (default: all namespaces).
    #[arg(short = 'n', long, requires = "cluster")]
    pub namespace: Option<String>,
    /// With --cluster: do not list Secrets (the summary then has no Secret inventory). Lets the
    /// audit run without `list secrets`, which in Kubernetes RBAC also grants the values.
    #[arg(long, requires = "cluster")]
    pub skip_secrets: bool,
    /// With --cluster: kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then the
    /// in-cluster service account).
    #[arg(long, value_name = "FILE", requires = "cluster")]
    pub kubeconfig: Option<PathBuf>,
    /// With --cluster: kubeconfig context to use (default: the current context).
    #[arg(long, requires = "cluster")]
    pub context: Option<String>,
    /// With --cluster: objects per list request (1-500).
    #[arg(long, default_value_t = cluster::MAX_PAGE, value_parser = clap::value_parser!(u32).range(1..=500), requires = "cluster")]
    pub page_size: u32,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Exit 1 when a finding is at least this severe (`none`: never).
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    pub fail_on: FailOn,
    /// Switch rules off: `--ignore SK001,SK009` (repeatable). Per object, use the annotation
    /// `sealkey.io/ignore: "SK001,SK002"`.
    #[arg(long, value_name = "RULE", value_delimiter = ',')]
    pub ignore: Vec<String>,
    /// Worker threads for file input, 1-256 (default: all cores).
    #[arg(long, value_name = "N", value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..=audit::MAX_THREADS as u64))]
    pub threads: Option<usize>,
    /// Refuse inputs larger than this (files, stdin, staged blobs): bytes, or with K, M or G
    /// (KiB, MiB, GiB), from 1 byte to 1G.
    #[arg(long, value_name = "SIZE", default_value = "16M", value_parser = parse_size)]
    pub max_file_size: u64,
}

/// Largest `--max-file-size`: a file is read whole, and parsing it costs a multiple of its size.
const MAX_FILE_SIZE_LIMIT: u64 = 1 << 30;

/// Parses `--max-file-size`: `1048576`, `512K`, `16M`, `1G` (binary units), 1 byte to 1 GiB.
fn parse_size(text: &str) -> std::result::Result<u64, String> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let scale: u64 = match unit {
        "" | "B" => 1,
        "K" | "KiB" => 1 << 10,
        "M" | "MiB" => 1 << 20,
        "G" | "GiB" => 1 << 30,
        _ => {
            return Err(format!(
                "unknown unit in `{text}`; use bytes or K, M, G (e.g. 16M)"
            ))
        }
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|n| (1..=MAX_FILE_SIZE_LIMIT).contains(n))
        .ok_or_else(|| format!("`{text}` is not a size from 1 byte to 1G (e.g. 512K, 16M)"))
}

/// The `--fail-on` threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FailOn {
    /// Any finding.
    Info,
    /// Warnings and errors.
    Warning,
    /// Errors only.
    Error,
    /// Never exit 1 because of findings.
    None,
}

impl FailOn {
    fn threshold(self) -> Option<Severity> {
        match self {
            FailOn::Info => Some(Severity::Info),
            FailOn::Warning => Some(Severity::Warning),
            FailOn::Error => Some(Severity::Error),
            FailOn::None => None,
        }
    }
}

/// Forwards to the chosen report and also tells people on stderr about unreadable inputs.
struct WithStderr<'a, 'w> {
    inner: Box<dyn Report + 'w>,
    ui: &'a Ui,
}

impl Report for WithStderr<'_, '_> {
    fn finding(&mut self, finding: &Finding) -> std::io::Result<()> {
        self.inner.finding(finding)
    }
    fn input_error(&mut self, error: &InputError) -> std::io::Result<()> {
        // Display escapes terminal controls in the file name and problem.
        self.ui.problem(&error.to_string());
        self.inner.input_error(error)
    }
    fn usage(&mut self, usage: &audit::Usage) -> std::io::Result<()> {
        self.inner.usage(usage)
    }
    fn wants_summary(&self) -> bool {
        self.inner.wants_summary()
    }
    fn finish(&mut self, summary: &Summary, stats: &Stats) -> std::io::Result<()> {
        self.inner.finish(summary, stats)
    }
}

fn rule_filter(ignore: &[String]) -> Result<RuleFilter> {
    let mut filter = RuleFilter::default();
    for name in ignore.iter().filter(|n| !n.trim().is_empty()) {
        let rule = Rule::parse(name).ok_or_else(|| {
            Error::input(
                format!("--ignore {}", printable(name)),
                "no such rule",
                "use SK001 ... SK021 (see docs/audit-rules.md)",
            )
        })?;
        filter.ignore(rule);
    }
    Ok(filter)
}

pub fn run(args: AuditArgs, ui: &Ui) -> Result<Outcome> {
    let filter = rule_filter(&args.ignore)?;
    let limits = audit::Limits {
        max_input_bytes: args.max_file_size,
        ..audit::Limits::default()
    };
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let stdout = std::io::stdout();
    let out: Box<dyn Write> = Box::new(std::io::BufWriter::with_capacity(64 * 1024, stdout.lock()));
    let mut report = WithStderr {
        inner: report::writer(args.format, out)?,
        ui,
    };

    let skipped = std::sync::Arc::new(files::Skipped::default());
    let stats = if args.cluster {
        let settings = cluster::ClusterSettings {
            namespace: args.namespace.clone(),
            page_size: args.page_size,
            list_secrets: !args.skip_secrets,
        };
        let runtime = super::github_args::runtime()?;
        let mut run = audit::Run::new(&mut report);
        runtime.block_on(async {
            let notices = ui.clone();
            let client = cluster::connect(args.kubeconfig.clone(), args.context.clone())
                .await?
                .on_wait(move |n| super::cluster::tell_wait(&notices, n));
            ui.step(if settings.list_secrets {
                "listing workloads and Secrets"
            } else {
                "listing workloads (not Secrets: --skip-secrets)"
            });
            cluster::audit_cluster(&client, &settings, filter, &mut run).await
        })?;
        run.finish()?
    } else if args.staged {
        let cwd = std::env::current_dir()?;
        let repo = staged::Repository::around(&cwd)?;
        let files = if args.paths.is_empty() {
            repo.staged_changes()?
        } else {
            repo.named(&args.paths)?
        };
        ui.detail(&format!("{} staged manifest(s)", files.len()));
        let blobs = repo.blobs(files, limits.max_input_bytes)?;
        audit::audit_inputs(blobs, filter, threads, &limits, &mut report)?
    } else {
        let mut paths = args.paths.clone();
        if paths.is_empty() {
            paths.push(PathBuf::from("."));
        }
        let stdin_count = paths.iter().filter(|p| p.as_os_str() == "-").count();
        if stdin_count > 1 {
            return Err(Error::input("-", "stdin given more than once", "pass `-` once").into());
        }
        let mut stdin_input = None;
        if stdin_count == 1 {
            let read = files::read_limited(std::io::stdin().lock(), limits.max_input_bytes, 0);
            stdin_input = Some(match read {
                Ok(bytes) => Input::Bytes("stdin".into(), bytes),
                Err(files::Limited::TooLarge) => Input::Unreadable(
                    "stdin".into(),
                    format!(
                        "refused: larger than the {} limit; audit it with a larger --max-file-size if it is meant to be this big",
                        files::human_size(limits.max_input_bytes)
                    ),
                ),
                Err(files::Limited::Io(e)) => {
                    return Err(Error::file("read", "stdin", e).into())
                }
            });
        }
        let noted = skipped.clone();
        let inputs = paths.into_iter().flat_map(move |p| {
            if p.as_os_str() == "-" {
                Box::new(stdin_input.take().into_iter()) as Box<dyn Iterator<Item = Input> + Send>
            } else {
                Box::new(files::walk_noting_skipped(vec![p], noted.clone()))
            }
        });
        audit::audit_inputs(inputs, filter, threads, &limits, &mut report)?
    };

    if skipped.count() > 0 {
        let examples: Vec<String> = skipped
            .examples()
            .iter()
            .map(|e| printable(e).into_owned())
            .collect();
        ui.info(&format!(
            "skipped {} file(s) in directories that are not manifests (.yaml, .yml, .json), e.g. {}; name a file directly to audit it whatever its extension",
            skipped.count(),
            examples.join(", ")
        ));
    }
    // Nothing audited at all is not a clean bill of health.
    if stats.inputs == 0 && !args.cluster && !args.staged {
        return Err(Error::input(
            "audit",
            if skipped.count() > 0 {
                format!("no input was audited: the {} file(s) found are not manifests", skipped.count())
            } else {
                "no input was audited: no manifest found".to_string()
            },
            "pass directories holding .yaml/.yml/.json manifests, files by name, or `-` for stdin (sealed files such as .age cannot be audited: audit the manifests before sealing, or `sealkey inspect` them)",
        )
        .into());
    }

    // An input that could not be audited wins over findings: the run is incomplete, and a
    // hostile file must not turn a failing audit into a passing one by hiding the rest.
    if stats.input_errors > 0 {
        return Ok(Outcome::Incomplete);
    }
    Ok(match (args.fail_on.threshold(), stats.worst()) {
        (Some(threshold), Some(worst)) if worst >= threshold => Outcome::Findings,
        _ => Outcome::Done,
    })
}
