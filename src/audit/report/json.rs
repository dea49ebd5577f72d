//! JSON report: findings streamed into one object with errors, summary and counts after them.

use crate::audit::summary::Summary;
use crate::audit::{Finding, InputError, Report, Stats};
use std::io::{self, Write};

/// Writes `{"findings": [...], "errors": [...], "summary": [...], "unconsumedSecrets": N,
/// "unconsumedSecretNames": [the first 20],
/// "stats": {...}}`.
pub struct JsonReport<'w> {
    out: Box<dyn Write + 'w>,
    first: bool,
    errors: Vec<InputError>,
}

impl<'w> JsonReport<'w> {
    /// Starts the document.
    pub fn new(mut out: Box<dyn Write + 'w>) -> io::Result<Self> {
        out.write_all(b"{\"findings\": [")?;
        Ok(JsonReport {
            out,
            first: true,
            errors: Vec::new(),
        })
    }
}

impl Report for JsonReport<'_> {
    fn finding(&mut self, finding: &Finding) -> io::Result<()> {
        self.out
            .write_all(if self.first { b"\n  " } else { b",\n  " })?;
        self.first = false;
        serde_json::to_writer(&mut self.out, finding)?;
        Ok(())
    }

    fn input_error(&mut self, error: &InputError) -> io::Result<()> {
        self.errors.push(error.clone());
        Ok(())
    }

    fn finish(&mut self, summary: &Summary, stats: &Stats) -> io::Result<()> {
        self.out.write_all(b"\n],\n\"errors\": ")?;
        serde_json::to_writer(&mut self.out, &self.errors)?;
        self.out.write_all(b",\n\"summary\": [")?;
        for (i, row) in summary.rows().enumerate() {
            self.out
                .write_all(if i == 0 { b"\n  " } else { b",\n  " })?;
            serde_json::to_writer(&mut self.out, row)?;
        }
        write!(
            self.out,
            "\n],\n\"unconsumedSecrets\": {},\n\"unconsumedSecretNames\": ",
            summary.unconsumed()
        )?;
        serde_json::to_writer(&mut self.out, &summary.unconsumed_labels().0)?;
        self.out.write_all(b",\n\"stats\": ")?;
        serde_json::to_writer(&mut self.out, stats)?;
        self.out.write_all(b"}\n")?;
        self.out.flush()
    }
}
