//! Report writers: a table for people, JSON for scripts, SARIF 2.1.0 for code scanning. Each
//! writes findings as they arrive and the summary at the end, so the output is never held in
//! memory as a whole.

pub mod json;
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
    })
}
