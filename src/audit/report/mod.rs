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
