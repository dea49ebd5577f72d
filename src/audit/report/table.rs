//! Table report for people: one line per finding, then the Secret consumption matrix.
//!
//! Everything from the input (file, object, container, Secret and key names, namespaces, and
//! the messages that quote them) goes through [`printable`]: a name cannot move the cursor,
//! retitle the terminal, forge a line or reorder what is shown.

use super::text::printable;
use crate::audit::summary::Summary;
use crate::audit::{Finding, InputError, Report, Stats};
use std::io::{self, Write};

/// Writes findings as `file:line  severity  SK00N  message` lines.
pub struct TableReport<'w> {
    out: Box<dyn Write + 'w>,
    errors: Vec<InputError>,
}

impl<'w> TableReport<'w> {
    /// A table writer.
    pub fn new(out: Box<dyn Write + 'w>) -> Self {
        TableReport {
            out,
            errors: Vec::new(),
        }
    }
}

fn location(f: &Finding) -> String {
    let at = match (&f.file, f.line, &f.namespace) {
        (Some(file), Some(line), _) => format!("{file}:{line}"),
        (Some(file), None, _) => file.clone(),
        (None, _, Some(ns)) => format!("{ns}/{}/{}", f.kind, f.name),
        (None, _, None) => format!("{}/{}", f.kind, f.name),
    };
    printable(&at).into_owned()
}

impl Report for TableReport<'_> {
    fn finding(&mut self, f: &Finding) -> io::Result<()> {
        writeln!(
            self.out,
            "{}  {:<7}  {}  {}\n    hint: {}",
            location(f),
            f.severity.as_str(),
            f.rule.id(),
            printable(&f.message),
            printable(f.hint)
        )
    }

    fn input_error(&mut self, error: &InputError) -> io::Result<()> {
        self.errors.push(error.clone());
        Ok(())
    }

    fn finish(&mut self, summary: &Summary, stats: &Stats) -> io::Result<()> {
        for e in &self.errors {
            // InputError's Display is printable already.
            writeln!(self.out, "{e}")?;
        }
        if !summary.is_empty() {
            let name_of = |r: &crate::audit::summary::SecretUse| {
                let name = match &r.namespace {
                    Some(ns) => format!("{ns}/{}", r.secret),
                    None => r.secret.clone(),
                };
                printable(&name).into_owned()
            };
            let width = summary
                .rows()
                .map(|r| name_of(r).chars().count())
                .max()
                .unwrap_or(6)
                .max(6);
            writeln!(
                self.out,
                "\nSecret consumption (workloads per way; volume is the recommended one)\n{:<width$}  {:>6}  {:>6}  {:>7}  {:>9}  {:<12}  workloads",
                "SECRET", "VOLUME", "ENV", "ENVFROM", "IMAGEPULL", "STORED"
            )?;
            for r in summary.rows() {
                let name = name_of(r);
                let mut workloads: Vec<String> = r
                    .workloads
                    .iter()
                    .map(|w| printable(w.workload).into_owned())
                    .collect();
                if r.more_workloads > 0 {
                    workloads.push(format!("+{} more", r.more_workloads));
                }
                writeln!(
                    self.out,
                    "{name:<width$}  {:>6}  {:>6}  {:>7}  {:>9}  {:<12}  {}",
                    r.volume,
                    r.env,
                    r.env_from,
                    r.image_pull_secrets,
                    r.storage.unwrap_or("-"),
                    workloads.join(", ")
                )?;
            }
        }
        if summary.unconsumed() > 0 {
            let (mut labels, more) = summary.unconsumed_labels();
            for l in &mut labels {
                *l = printable(l).into_owned();
            }
            if more > 0 {
                labels.push(format!("+{more} more"));
            }
            writeln!(
                self.out,
                "{} Secret(s) defined in the input are consumed by none of its workloads: {}",
                summary.unconsumed(),
                labels.join(", ")
            )?;
        }
        writeln!(
            self.out,
            "\n{} finding(s): {} error, {} warning, {} info; {} input(s), {} object(s){}",
            stats.findings,
            stats.errors,
            stats.warnings,
            stats.info,
            stats.inputs,
            stats.objects,
            if stats.input_errors > 0 {
                format!("; {} input(s) could not be audited", stats.input_errors)
            } else {
                String::new()
            }
        )?;
        self.out.flush()
    }
}
