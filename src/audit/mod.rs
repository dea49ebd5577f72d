//! `sealkey audit`: how every workload consumes Secrets, one finding per usage, from files (in
//! parallel, streaming) or a live cluster (paginated), reported as a table, JSON or SARIF.
//!
//! Inputs are audited in parallel on all cores; results are handed to the report in input order,
//! so output is deterministic. Memory holds a bounded window of inputs in flight plus the
//! per-Secret summary: a row per consumed Secret (at most [`summary::WORKLOADS_LISTED`]
//! workloads named each) and the Secrets defined in the input, an exact set of which at most
//! [`summary::defined::RESIDENT`] are in memory (the rest in temporary files).
//!
//! Inputs may be hostile (CI audits pull requests). Each one is bounded by [`Limits`]: only
//! regular files are read, at most [`Limits::max_input_bytes`] of each, and parsing one may
//! expand anchors and aliases by at most [`doc::MAX_EXPANDED_BYTES`]. An input over a limit is
//! an input error naming it (exit 2); the other inputs are still audited and reported. Time is
//! linear in input size: no step compares every item with every other.

pub mod doc;
pub mod model;
pub mod report;
pub mod rules;
pub mod source;
pub mod summary;

pub use model::{Consumption, Finding, Rule, SecretDecl, Severity, Usage, Via};
pub use rules::{Origin, RuleFilter};

use rules::Collected;
use std::collections::BTreeMap;
use std::io;
use std::path::PathBuf;
use std::sync::mpsc;
use std::sync::Mutex;
use summary::Summary;
use zeroize::Zeroizing;

/// One input to audit.
#[derive(Debug)]
pub enum Input {
    /// A file, read by the worker that audits it.
    Path(PathBuf),
    /// Bytes already read (stdin, a staged blob), with the name to report.
    Bytes(String, Zeroizing<Vec<u8>>),
    /// An input that could not even be listed or read (named, with the reason).
    Unreadable(String, String),
}

/// An input that could not be audited (exit code 2): which one, where, and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct InputError {
    /// The file (or `stdin`).
    pub file: String,
    /// 1-based line, when the problem has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
    /// 1-based column, when the problem has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    /// What is wrong (never the content).
    pub problem: String,
}

impl std::fmt::Display for InputError {
    /// `FILE:LINE:COLUMN: PROBLEM`, safe for a terminal (see [`report::text::printable`]).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", report::text::printable(&self.file))?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ": {}", report::text::printable(&self.problem))
    }
}

/// Bounds on what one input may cost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest input read, in bytes (files, stdin, staged blobs); larger ones are refused.
    pub max_input_bytes: u64,
    /// What parsing one input may expand to (anchors and aliases).
    pub budget: doc::Budget,
}

impl Default for Limits {
    /// [`source::files::DEFAULT_MAX_FILE_SIZE`] and the default [`doc::Budget`].
    fn default() -> Self {
        Limits {
            max_input_bytes: source::files::DEFAULT_MAX_FILE_SIZE,
            budget: doc::Budget::default(),
        }
    }
}

/// Counts over a whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Inputs read (files, stdin, or object pages from the cluster).
    pub inputs: u64,
    /// YAML documents read.
    pub documents: u64,
    /// Kubernetes objects looked at.
    pub objects: u64,
    /// Findings reported (after `--ignore` and suppressions).
    pub findings: u64,
    /// Findings by severity: info, warning, error.
    pub info: u64,
    /// Warnings.
    pub warnings: u64,
    /// Errors.
    pub errors: u64,
    /// Inputs that could not be audited.
    pub input_errors: u64,
}

impl Stats {
    /// The worst severity found, if any.
    pub fn worst(&self) -> Option<Severity> {
        if self.errors > 0 {
            Some(Severity::Error)
        } else if self.warnings > 0 {
            Some(Severity::Warning)
        } else if self.info > 0 {
            Some(Severity::Info)
        } else {
            None
        }
    }
}

/// Where findings go as they are found. Implemented by the table, JSON and SARIF writers.
pub trait Report {
    /// One finding, in input order.
    fn finding(&mut self, finding: &Finding) -> io::Result<()>;
    /// An input that could not be audited.
    fn input_error(&mut self, error: &InputError) -> io::Result<()>;
    /// One workload's use of one Secret, with every way its containers read it (the HTML
    /// report draws its matrix from these; the others need only the summary).
    fn usage(&mut self, _usage: &Usage) -> io::Result<()> {
        Ok(())
    }
    /// Whether [`Report::finish`] reads the summary. A report that does not (SARIF) gets an
    /// empty one, and the run does not build it: no memory per consumed or defined Secret.
    fn wants_summary(&self) -> bool {
        true
    }
    /// The end: the Secret consumption summary and the counts.
    fn finish(&mut self, summary: &Summary, stats: &Stats) -> io::Result<()>;
}

/// What auditing one input produced.
#[derive(Debug, Default)]
pub struct InputResult {
    collected: Collected,
    documents: u64,
    error: Option<InputError>,
}

impl InputResult {
    /// The findings, in document order.
    pub fn findings(&self) -> &[Finding] {
        &self.collected.findings
    }

    /// Why the input (from some document on) could not be audited.
    pub fn error(&self) -> Option<&InputError> {
        self.error.as_ref()
    }

    /// Documents read.
    pub fn documents(&self) -> u64 {
        self.documents
    }
}

/// Audits one input's text (YAML or JSON, any number of documents) within `budget`. A malformed
/// document (or one over the budget) stops the input there; the documents before it are still
/// audited.
pub fn audit_text(
    name: &str,
    text: &str,
    origin: Origin<'_>,
    filter: RuleFilter,
    budget: doc::Budget,
) -> InputResult {
    let mut result = InputResult::default();
    for doc in doc::documents_within(text, budget) {
        match doc {
            Ok(node) => {
                result.documents += 1;
                rules::audit_document(&node, origin, filter, &mut result.collected);
            }
            Err(e) => {
                result.error = Some(InputError {
                    file: name.to_string(),
                    line: Some(e.line),
                    column: Some(e.column),
                    problem: if e.over_budget {
                        e.problem
                    } else {
                        format!(
                            "{}; fix it (`kubectl apply --dry-run=client -f FILE` shows the same place)",
                            e.problem
                        )
                    },
                });
            }
        }
    }
    result.collected.finish_input();
    result
}

/// Audits raw bytes within `limits`: UTF-8 is required (the line of the first bad byte is
/// reported otherwise).
pub fn audit_bytes(name: &str, bytes: &[u8], filter: RuleFilter, limits: &Limits) -> InputResult {
    if bytes.len() as u64 > limits.max_input_bytes {
        return unreadable(
            name.to_string(),
            source::files::too_large(limits.max_input_bytes),
        );
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => audit_text(
            name,
            text,
            Origin {
                file: Some(name),
                cluster: false,
            },
            filter,
            limits.budget,
        ),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let line = good.iter().filter(|b| **b == b'\n').count() + 1;
            InputResult {
                error: Some(InputError {
                    file: name.to_string(),
                    line: Some(line),
                    column: None,
                    problem: "not UTF-8 text; pass YAML or JSON".into(),
                }),
                ..InputResult::default()
            }
        }
    }
}

fn unreadable(file: String, problem: String) -> InputResult {
    InputResult {
        error: Some(InputError {
            file,
            line: None,
            column: None,
            problem,
        }),
        ..InputResult::default()
    }
}

fn audit_input(input: Input, filter: RuleFilter, limits: &Limits) -> InputResult {
    match input {
        Input::Path(path) => {
            let name = path.display().to_string();
            match source::files::read_regular(&path, limits.max_input_bytes) {
                Ok(bytes) => audit_bytes(&name, &bytes, filter, limits),
                Err(problem) => unreadable(name, problem),
            }
        }
        Input::Bytes(name, bytes) => audit_bytes(&name, &bytes, filter, limits),
        Input::Unreadable(name, problem) => unreadable(name, problem),
    }
}

/// Folds results into the report and the summary, in order.
pub struct Run<'r> {
    report: &'r mut dyn Report,
    summary: Summary,
    /// [`Report::wants_summary`], asked once.
    summarize: bool,
    stats: Stats,
}

impl<'r> Run<'r> {
    /// Starts a run writing to `report`.
    pub fn new(report: &'r mut dyn Report) -> Self {
        Run {
            summarize: report.wants_summary(),
            report,
            summary: Summary::default(),
            stats: Stats::default(),
        }
    }

    /// Hands one input's results to the report.
    pub fn absorb(&mut self, result: InputResult) -> io::Result<()> {
        self.stats.inputs += 1;
        self.stats.documents += result.documents;
        self.absorb_collected(result.collected)?;
        if let Some(e) = result.error {
            self.stats.input_errors += 1;
            self.report.input_error(&e)?;
        }
        Ok(())
    }

    /// Hands findings, usages and Secrets to the report and summary.
    pub fn absorb_collected(&mut self, c: Collected) -> io::Result<()> {
        self.stats.objects += c.objects;
        for f in &c.findings {
            self.stats.findings += 1;
            match f.severity {
                Severity::Info => self.stats.info += 1,
                Severity::Warning => self.stats.warnings += 1,
                Severity::Error => self.stats.errors += 1,
            }
            self.report.finding(f)?;
        }
        for u in c.usages {
            self.report.usage(&u)?;
            if self.summarize {
                self.summary.add_usage(u);
            }
        }
        if self.summarize {
            for s in c.secrets {
                self.summary.add_secret(s)?;
            }
        }
        Ok(())
    }

    /// Hands one page of cluster objects to the report and summary.
    pub fn absorb_page(&mut self, c: Collected) -> io::Result<()> {
        self.stats.inputs += 1;
        self.absorb_collected(c)
    }

    /// Writes the summary and closing counts.
    pub fn finish(mut self) -> io::Result<Stats> {
        self.summary.finalize()?;
        self.report.finish(&self.summary, &self.stats)?;
        Ok(self.stats)
    }
}

/// How many inputs may be in flight (read, audited, waiting to be reported) per worker. Enough
/// to keep workers busy behind a slow input or a slow writer; more only raises the memory the
/// window holds when it fills (issue 14: at 64, a 10,000-file SARIF run's peak RSS was 0.7-1 MiB
/// above a 1,000-file run's with a flat heap, the window being full more often in a longer run).
const IN_FLIGHT_PER_WORKER: usize = 16;

/// Most worker threads: more only cost memory (each holds up to `IN_FLIGHT_PER_WORKER`
/// inputs in flight, each up to [`Limits::max_input_bytes`]).
pub const MAX_THREADS: usize = 256;

/// Audits inputs in parallel on `threads` workers (1 to [`MAX_THREADS`]), within `limits` per
/// input, reporting in input order.
pub fn audit_inputs<I>(
    inputs: I,
    filter: RuleFilter,
    threads: usize,
    limits: &Limits,
    report: &mut dyn Report,
) -> io::Result<Stats>
where
    I: Iterator<Item = Input> + Send,
{
    let threads = threads.clamp(1, MAX_THREADS);
    let mut run = Run::new(report);
    let source = Mutex::new(inputs.enumerate());
    // A bounded channel plus a bounded reorder window keep memory flat whatever the input count.
    let window = threads * IN_FLIGHT_PER_WORKER;
    let (tx, rx) = mpsc::sync_channel::<(usize, InputResult)>(window);
    let permits = std::sync::Arc::new((Mutex::new(0usize), std::sync::Condvar::new()));
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| -> io::Result<Stats> {
        for _ in 0..threads {
            let tx = tx.clone();
            let source = &source;
            let permits = permits.clone();
            let stop = &stop;
            scope.spawn(move || loop {
                // Wait until the reorder window has room.
                {
                    let (lock, cvar) = &*permits;
                    let mut in_flight = lock.lock().unwrap_or_else(|p| p.into_inner());
                    while *in_flight >= window {
                        in_flight = cvar.wait(in_flight).unwrap_or_else(|p| p.into_inner());
                    }
                    *in_flight += 1;
                }
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                let next = source.lock().unwrap_or_else(|p| p.into_inner()).next();
                let Some((index, input)) = next else {
                    let (lock, cvar) = &*permits;
                    *lock.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
                    cvar.notify_all();
                    break;
                };
                let result = audit_input(input, filter, limits);
                if tx.send((index, result)).is_err() {
                    break;
                }
            });
        }
        drop(tx);
        let mut pending: BTreeMap<usize, InputResult> = BTreeMap::new();
        let mut next = 0usize;
        let mut failure: Option<io::Error> = None;
        for (index, result) in rx.iter() {
            pending.insert(index, result);
            while let Some(result) = pending.remove(&next) {
                next += 1;
                if failure.is_none() {
                    if let Err(e) = run.absorb(result) {
                        failure = Some(e);
                    }
                }
                let (lock, cvar) = &*permits;
                *lock.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
                cvar.notify_all();
            }
            if failure.is_some() {
                // Stop the workers: they see the closed channel on their next send.
                break;
            }
        }
        drop(rx);
        if let Some(e) = failure {
            // Release any worker waiting for a permit so the scope can end.
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            let (lock, cvar) = &*permits;
            *lock.lock().unwrap_or_else(|p| p.into_inner()) = 0;
            cvar.notify_all();
            return Err(e);
        }
        run.finish()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A short, deterministic stand-in for the cargo-fuzz target (fuzz/), run in CI: mutated
    /// manifests never panic, and every error names a line.
    #[test]
    fn mutated_manifests_never_panic_and_errors_name_a_line() {
        let seed = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: w, annotations: {sealkey.io/ignore: SK009}}\nspec:\n  template:\n    spec:\n      volumes:\n      - name: k\n        secret: {secretName: git-ssh, defaultMode: 0644, items: [{key: a, path: a, mode: 0400}]}\n      containers:\n      - name: git-sync\n        image: git-sync\n        args: [--repo=git@h:r, --ssh-known-hosts]\n        env:\n        - {name: DB_PASSWORD, value: x}\n        - {name: A, valueFrom: {secretKeyRef: {name: s, key: k}}}\n        envFrom: [{secretRef: {name: e}}]\n        volumeMounts: [{name: k, mountPath: /etc/git-secret/ssh, subPath: ssh}]\n---\nkind: List\nitems: [{kind: Secret, metadata: {name: s}, data: {k: LS0tLS1CRUdJTiBSU0EgUFJJVkFURSBLRVktLS0tLQo=}}]\n---\nkind: HelmRelease\nspec: {values: {dags: {gitSync: {enabled: true, repo: git@h:r, sshKey: abc}}, extraSecrets: {x: {data: \"k: v\"}}}}\n---\nbase: &b {a: [1, 2]}\nm: {<<: *b, c: *b}\n";
        let bytes = seed.as_bytes();
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet = b" \n:-[]{}&*!|>'\"#%@`,?<0123456789abcdefSK";
        for _ in 0..4000 {
            let mut m = bytes.to_vec();
            for _ in 0..(1 + next() % 6) {
                let at = (next() as usize) % m.len().max(1);
                match next() % 4 {
                    0 => m[at] = alphabet[(next() as usize) % alphabet.len()],
                    1 => m.insert(at, alphabet[(next() as usize) % alphabet.len()]),
                    2 => {
                        m.remove(at);
                    }
                    _ => {
                        let len = (next() as usize % 40).min(m.len() - at);
                        let chunk: Vec<u8> = m[at..at + len].to_vec();
                        m.splice(at..at, chunk);
                    }
                }
                if m.is_empty() {
                    m.push(b'a');
                }
            }
            let result = audit_bytes("fuzz.yaml", &m, RuleFilter::default(), &Limits::default());
            if let Some(e) = result.error() {
                assert!(e.line.is_some_and(|l| l >= 1), "{e}");
            }
        }
    }

    /// Records what `finish` was given.
    struct SummaryProbe {
        wants: bool,
        rows: Option<(usize, u64)>,
    }

    impl Report for SummaryProbe {
        fn finding(&mut self, _: &Finding) -> io::Result<()> {
            Ok(())
        }
        fn input_error(&mut self, _: &InputError) -> io::Result<()> {
            Ok(())
        }
        fn wants_summary(&self) -> bool {
            self.wants
        }
        fn finish(&mut self, summary: &Summary, _: &Stats) -> io::Result<()> {
            self.rows = Some((summary.len(), summary.unconsumed()));
            Ok(())
        }
    }

    /// A report that does not read the summary (SARIF) gets an empty one: the run never built it.
    #[test]
    fn a_report_that_does_not_want_the_summary_is_spared_building_it() {
        let yaml = "kind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: c\n    envFrom: [{secretRef: {name: used}}]\n---\nkind: Secret\nmetadata: {name: unused}\n";
        for (wants, expected) in [(true, (1, 1)), (false, (0, 0))] {
            let mut probe = SummaryProbe { wants, rows: None };
            let input = Input::Bytes("p.yaml".into(), Zeroizing::new(yaml.as_bytes().to_vec()));
            audit_inputs(
                std::iter::once(input),
                RuleFilter::default(),
                1,
                &Limits::default(),
                &mut probe,
            )
            .unwrap();
            assert_eq!(probe.rows, Some(expected), "wants_summary {wants}");
        }
    }

    /// Counts inputs the workers have taken against inputs the report has received.
    struct SlowReport {
        pulled: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        reported: usize,
        widest: usize,
    }

    impl Report for SlowReport {
        fn finding(&mut self, _: &Finding) -> io::Result<()> {
            self.reported += 1;
            let pulled = self.pulled.load(std::sync::atomic::Ordering::SeqCst);
            self.widest = self.widest.max(pulled - self.reported);
            // A slow writer: the workers run ahead until the window is full.
            std::thread::sleep(std::time::Duration::from_millis(2));
            Ok(())
        }
        fn input_error(&mut self, e: &InputError) -> io::Result<()> {
            panic!("{e}")
        }
        fn finish(&mut self, _: &Summary, _: &Stats) -> io::Result<()> {
            Ok(())
        }
    }

    /// Behind a slow writer, at most 16 inputs per worker are read, audited and waiting (issue
    /// 14: 64 per worker held up to 128 results at once on two cores, about 1 MiB of a
    /// 10,000-file run's peak RSS).
    #[test]
    fn inputs_in_flight_behind_a_slow_report_are_at_most_sixteen_per_worker() {
        let pulled = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = pulled.clone();
        let inputs = (0..300).map(move |i| {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let yaml =
                format!("kind: Secret\nmetadata: {{name: s{i}}}\nstringData: {{password: x}}\n");
            Input::Bytes(format!("{i}.yaml"), Zeroizing::new(yaml.into_bytes()))
        });
        let mut report = SlowReport {
            pulled,
            reported: 0,
            widest: 0,
        };
        audit_inputs(
            inputs,
            RuleFilter::default(),
            2,
            &Limits::default(),
            &mut report,
        )
        .unwrap();
        assert_eq!(report.reported, 300);
        assert!(
            report.widest > 8,
            "the workers never ran ahead: {}",
            report.widest
        );
        assert!(
            report.widest <= 2 * 16,
            "{} inputs in flight",
            report.widest
        );
    }
}
