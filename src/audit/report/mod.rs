//! Report writers: a table for people, JSON for scripts, SARIF 2.1.0 for code scanning, a
//! self-contained HTML page, and a Markdown summary for pull-request comments. The table, JSON,
//! SARIF and HTML writers write findings as they arrive and the summary at the end, so the output
//! is never held in memory as a whole; the Markdown summary keeps counts and a bounded list.

pub mod html;
pub mod json;
pub mod markdown;
pub mod sarif;
pub mod table;
pub mod text;

/// The output format (`--format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Findings, then the Secret consumption matrix, for people.
    Table,
    /// `{"findings": [...], "errors": [...], "summary": [...], "unconsumedSecrets": N, "stats": {...}}`.
    Json,
    /// SARIF 2.1.0, for GitHub code scanning.
    Sarif,
    /// One self-contained HTML page: counts, the Secrets x workloads matrix, findings with filters.
    Html,
    /// A Markdown summary for a pull-request comment (under GitHub's 65,536-character limit).
    Markdown,
}

/// Builds the writer for a format.
pub fn writer<'w>(
    format: Format,
    out: Box<dyn std::io::Write + 'w>,
) -> std::io::Result<Box<dyn super::Report + 'w>> {
    Ok(match format {
        Format::Table => Box::new(table::TableReport::new(out)),
        Format::Json => Box::new(json::JsonReport::new(out)?),
        Format::Sarif => Box::new(sarif::SarifReport::new(out)?),
        Format::Html => Box::new(html::HtmlReport::new(out)?),
        Format::Markdown => Box::new(markdown::MarkdownReport::new(out)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Finding, Rule, Severity};
    use std::sync::{Arc, Mutex};

    /// A writer the test can read while the report still holds it.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Shared {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn finding(name: &str) -> Finding {
        Finding {
            rule: Rule::Sk001,
            severity: Severity::Warning,
            message: format!("message about {name}"),
            hint: Rule::Sk001.hint(),
            file: Some("f.yaml".into()),
            line: Some(1),
            namespace: None,
            kind: "Pod".into(),
            name: name.into(),
            container: None,
            env: None,
            secret: None,
            key: None,
        }
    }

    /// JSON, SARIF and HTML hand each finding to the writer when it is found: memory does not
    /// grow with the number of findings.
    #[test]
    fn json_sarif_and_html_write_each_finding_before_the_run_ends() {
        for format in [Format::Json, Format::Sarif, Format::Html] {
            let sink = Shared::default();
            let mut report = writer(format, Box::new(sink.clone())).unwrap();
            for i in 0..3 {
                let name = format!("streamed-{i}");
                report.finding(&finding(&name)).unwrap();
                let written = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
                assert!(
                    written.contains(&name),
                    "{format:?}: {name} not written yet"
                );
            }
            report
                .finish(
                    &crate::audit::summary::Summary::default(),
                    &Default::default(),
                )
                .unwrap();
        }
    }

    /// SARIF has no place for the consumption summary, so a SARIF run builds none (issue 14:
    /// its memory grew with every consumed and defined Secret); every other format renders it.
    #[test]
    fn only_sarif_goes_without_the_summary() {
        for format in [
            Format::Table,
            Format::Json,
            Format::Sarif,
            Format::Html,
            Format::Markdown,
        ] {
            let report = writer(format, Box::new(std::io::sink())).unwrap();
            assert_eq!(
                report.wants_summary(),
                format != Format::Sarif,
                "{format:?}"
            );
        }
    }
}
