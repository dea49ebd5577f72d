//! `sealkey inspect`: what a sealed file holds, without decrypting it.

use super::common::{read_input, write_stdout, OK};
use super::Outcome;
use super::Ui;
use crate::seal::inspect::{inspect, DocumentInfo, Inspection};
use anyhow::Result;
use std::fmt::Write as _;
use std::path::PathBuf;

/// Show what a sealed file holds without decrypting it: the format, who can open it, which
/// objects and encrypted paths it carries, and the deploy key its author claims it holds
/// (sealkey's fingerprint annotation, which nothing verifies without opening the file). Exit 1
/// when a document holds a Secret value or key material in clear.
///
/// Example: sealkey inspect clusters/dev/airflow-dags.sops.yaml
#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// The file (default: stdin).
    #[arg(value_name = "FILE")]
    pub input: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value = "text")]
    pub format: InspectFormat,
}

/// `--format` of `inspect`.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum InspectFormat {
    /// For people.
    Text,
    /// One JSON object.
    Json,
}

pub fn run(args: InspectArgs, _ui: &Ui) -> Result<Outcome> {
    let (bytes, what) = read_input(args.input.as_deref())?;
    let found = inspect(&bytes, &what)?;
    drop(bytes);
    let leaks = match &found {
        Inspection::Documents { documents } => documents
            .iter()
            .any(|d| !d.readable_secret_paths.is_empty()),
        Inspection::Age { .. } => false,
    };
    let text = match args.format {
        InspectFormat::Json => {
            let mut s = serde_json::to_string_pretty(&found)?;
            s.push('\n');
            s
        }
        InspectFormat::Text => render(&what, &found),
    };
    write_stdout(text.as_bytes())?;
    Ok(if leaks { Outcome::Findings } else { OK })
}

/// Names from the file are shown escaped: a name holding a terminal escape prints as `\u{1b}`.
fn safe(s: &str) -> String {
    crate::audit::report::text::printable(s).into_owned()
}

fn render(what: &str, found: &Inspection) -> String {
    let mut out = String::new();
    match found {
        Inspection::Age {
            armored,
            recipients,
            payload_bytes,
        } => {
            let _ = writeln!(
                out,
                "{}: age file ({}), {payload_bytes} bytes encrypted",
                safe(what),
                if *armored { "armored" } else { "binary" }
            );
            let list: Vec<String> = recipients
                .iter()
                .map(|r| format!("{} x {}", r.count, safe(&r.kind)))
                .collect();
            let _ = writeln!(out, "  recipients: {}", list.join(", "));
            let _ = writeln!(out, "  no GitOps controller decrypts an age file; `sealkey unseal` or `age -d` opens it");
        }
        Inspection::Documents { documents } => {
            let _ = writeln!(out, "{}: {} document(s)", safe(what), documents.len());
            for (i, d) in documents.iter().enumerate() {
                document(&mut out, i, d);
            }
        }
    }
    out
}

fn document(out: &mut String, i: usize, d: &DocumentInfo) {
    let name = match (&d.namespace, &d.name) {
        (Some(ns), Some(n)) => format!("{}/{}", safe(ns), safe(n)),
        (None, Some(n)) => safe(n),
        _ => "(unnamed)".into(),
    };
    let _ = writeln!(
        out,
        "{}. {} {name} ({}): {}",
        i + 1,
        safe(&d.kind),
        safe(&d.api_version),
        d.protection
    );
    if let Some(fp) = &d.fingerprint_claimed {
        // An annotation anyone can write: shown as a claim, never as the key the file holds.
        let _ = writeln!(
            out,
            "   claimed deploy key: {} (the file's annotation, not verified; `sealkey unseal` with an identity shows the key itself)",
            safe(fp)
        );
    }
    if let Some(s) = &d.sops {
        let _ = writeln!(
            out,
            "   age recipients (as listed, not verified): {}",
            if s.age_recipients.is_empty() {
                "none".into()
            } else {
                s.age_recipients
                    .iter()
                    .map(|r| safe(r))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
        for k in &s.other_key_services {
            let _ = writeln!(
                out,
                "   {}: {} entr{}",
                safe(&k.kind),
                k.count,
                if k.count == 1 { "y" } else { "ies" }
            );
        }
        if let Some(rule) = &s.rule {
            let _ = writeln!(out, "   rule: {}", safe(rule));
        }
        let _ = writeln!(
            out,
            "   encrypted: {}",
            if s.encrypted_paths.is_empty() {
                "nothing".into()
            } else {
                s.encrypted_paths
                    .iter()
                    .map(|p| safe(p))
                    .collect::<Vec<_>>()
                    .join(", ")
            }
        );
        let _ = writeln!(
            out,
            "   MAC: {}; lastmodified {}",
            if s.mac {
                "present (not verified: checked only when opened with an identity)"
            } else {
                "MISSING"
            },
            s.lastmodified
                .as_deref()
                .map(safe)
                .unwrap_or_else(|| "-".into())
        );
    }
    if let Some(ss) = &d.sealed_secret {
        let _ = writeln!(
            out,
            "   scope: {}; keys: {}",
            ss.scope,
            ss.keys
                .iter()
                .map(|k| safe(k))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if !d.readable_secret_paths.is_empty() {
        let _ = writeln!(
            out,
            "   IN CLEAR: {} (a Secret value or key material anyone can read)",
            d.readable_secret_paths
                .iter()
                .map(|p| safe(p))
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}
