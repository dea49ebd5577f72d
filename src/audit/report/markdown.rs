//! Markdown report: a compact summary for a pull-request comment (counts per rule and severity,
//! the most severe findings), never longer than GitHub's comment limit.
//!
//! Memory is bounded: counts, and the [`TOP_FINDINGS`] most severe findings seen so far.

use crate::audit::summary::Summary;
use crate::audit::{Finding, InputError, Report, Rule, Severity, Stats};
use std::collections::BTreeMap;
use std::io::{self, Write};

/// GitHub refuses comments longer than this many characters.
pub const GITHUB_COMMENT_LIMIT: usize = 65_536;
/// Findings listed (most severe first, then input order).
pub const TOP_FINDINGS: usize = 1_000;
/// Longest name, path or message shown in one cell; longer ones are cut with `…`.
const CELL_CHARS: usize = 300;

/// Writes the summary at the end (findings are counted and the top ones kept as they arrive).
pub struct MarkdownReport<'w> {
    out: Box<dyn Write + 'w>,
    limit: usize,
    per_rule: BTreeMap<Rule, [u64; 3]>,
    /// (severity rank, arrival) -> finding; the least severe, latest one is dropped first.
    top: BTreeMap<(std::cmp::Reverse<Severity>, u64), Finding>,
    seen: u64,
    errors: Vec<InputError>,
}

impl<'w> MarkdownReport<'w> {
    /// A report that stays under GitHub's comment limit.
    pub fn new(out: Box<dyn Write + 'w>) -> Self {
        Self::with_limit(out, GITHUB_COMMENT_LIMIT)
    }

    /// A report that stays under `limit` characters.
    pub fn with_limit(out: Box<dyn Write + 'w>, limit: usize) -> Self {
        MarkdownReport {
            out,
            limit,
            per_rule: BTreeMap::new(),
            top: BTreeMap::new(),
            seen: 0,
            errors: Vec::new(),
        }
    }
}

/// Text that renders as itself in GitHub Markdown, inside a table cell: markup characters are
/// backslash-escaped, HTML is spelled as entities, newlines become spaces, long text is cut.
///
/// Only for sealkey's own text (rule titles): escaping cannot stop GitHub's extended autolinks
/// (`www.`, `https:`, e-mail addresses are found in the rendered text), so anything a file or a
/// cluster controls goes through [`code`].
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(CELL_CHARS * 2));
    for (n, c) in s.chars().enumerate() {
        if n == CELL_CHARS {
            out.push('…');
            break;
        }
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            // Emphasis, code, links, tables, strikethrough, mentions and issue references.
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '|' | '~' | '@' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Input-controlled text (names, paths, messages holding them) as an inert code span inside a
/// table cell: nothing in a code span is markup, a link or an autolink, and HTML in it is shown,
/// not parsed. The fence is one backtick longer than the longest run inside; content that starts
/// or ends with a backtick or a space is padded so the fence stays a fence; `|` is escaped,
/// which GitHub's table parser undoes before the span is read; controls and line breaks become
/// spaces; long text is cut with `…`. Empty text stays empty.
pub fn code(s: &str) -> String {
    let mut body = String::with_capacity(s.len().min(CELL_CHARS * 2));
    for (n, c) in s.chars().enumerate() {
        if n == CELL_CHARS {
            body.push('…');
            break;
        }
        match c {
            '|' => body.push_str("\\|"),
            // Line and paragraph separators and controls would end the row or the span.
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => body.push(' '),
            c => body.push(c),
        }
    }
    if body.trim().is_empty() {
        return String::new();
    }
    let mut longest = 0;
    let mut run = 0;
    for c in body.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest + 1);
    let pad = if body.starts_with(['`', ' ']) || body.ends_with(['`', ' ']) {
        " "
    } else {
        ""
    };
    format!("{fence}{pad}{body}{pad}{fence}")
}

fn severity_index(s: Severity) -> usize {
    match s {
        Severity::Error => 0,
        Severity::Warning => 1,
        Severity::Info => 2,
    }
}

impl Report for MarkdownReport<'_> {
    fn finding(&mut self, f: &Finding) -> io::Result<()> {
        self.per_rule.entry(f.rule).or_default()[severity_index(f.severity)] += 1;
        self.top
            .insert((std::cmp::Reverse(f.severity), self.seen), f.clone());
        self.seen += 1;
        if self.top.len() > TOP_FINDINGS {
            self.top.pop_last();
        }
        Ok(())
    }

    fn input_error(&mut self, error: &InputError) -> io::Result<()> {
        if self.errors.len() < 100 {
            self.errors.push(error.clone());
        }
        Ok(())
    }

    fn finish(&mut self, summary: &Summary, stats: &Stats) -> io::Result<()> {
        let mut head = String::new();
        head.push_str("### sealkey audit\n\n");
        head.push_str(&format!(
            "**{}** error(s), **{}** warning(s), **{}** info in {} input(s); {} Secret(s) consumed, {} defined but consumed by none.",
            stats.errors,
            stats.warnings,
            stats.info,
            stats.inputs,
            summary.len(),
            summary.unconsumed()
        ));
        if summary.unconsumed() > 0 {
            let (labels, more) = summary.unconsumed_labels();
            let mut named: Vec<String> = labels.iter().map(|l| code(l)).collect();
            if more > 0 {
                named.push(format!("+{more} more"));
            }
            head.push_str(&format!(" Consumed by none: {}.", named.join(", ")));
        }
        if stats.input_errors > 0 {
            head.push_str(&format!(
                " **{} input(s) could not be audited** (the run is incomplete).",
                stats.input_errors
            ));
        }
        head.push_str("\n\n");
        if !self.per_rule.is_empty() {
            head.push_str("| rule | errors | warnings | info | what |\n|---|---:|---:|---:|---|\n");
            for (rule, [e, w, i]) in &self.per_rule {
                head.push_str(&format!(
                    "| [{id}]({url}) | {e} | {w} | {i} | {} |\n",
                    escape(rule.title()),
                    id = rule.id(),
                    url = super::html::rule_url(*rule),
                ));
            }
            head.push('\n');
        }

        let mut rows = Vec::new();
        for e in &self.errors {
            rows.push(format!(
                "| not audited | | {} | {} |\n",
                code(&e.file),
                code(&e.problem)
            ));
        }
        for f in self.top.values() {
            let place = match (&f.file, f.line) {
                (Some(file), Some(line)) => format!("{}:{line}", code(file)),
                _ => code(f.namespace.as_deref().unwrap_or("")),
            };
            rows.push(format!(
                "| {} | [{}]({}) | {} | {} |\n",
                f.severity.as_str(),
                f.rule.id(),
                super::html::rule_url(f.rule),
                place,
                code(&f.message)
            ));
        }
        let listed_total = stats.findings + stats.input_errors;
        let table_head = "| severity | rule | where | finding |\n|---|---|---|---|\n";
        // Room for the closing note, whatever it says.
        let note_room = 400;
        let mut body = String::new();
        let mut used = head.chars().count() + table_head.chars().count() + note_room;
        let mut shown = 0usize;
        let mut cut = false;
        for row in &rows {
            let n = row.chars().count();
            if used + n > self.limit {
                cut = true;
                break;
            }
            used += n;
            body.push_str(row);
            shown += 1;
        }
        let mut text = head;
        if !rows.is_empty() {
            text.push_str(if (rows.len() as u64) < listed_total {
                "Most severe findings:\n\n"
            } else {
                "Findings:\n\n"
            });
            text.push_str(table_head);
            text.push_str(&body);
            text.push('\n');
        }
        if cut {
            text.push_str(&format!(
                "_Truncated: {shown} of {listed_total} shown to stay under GitHub's {} character comment limit; run `sealkey audit --format json` or see the SARIF upload for all of them._\n",
                self.limit
            ));
        } else if (shown as u64) < listed_total {
            text.push_str(&format!(
                "_{shown} of {listed_total} shown; run `sealkey audit --format json` or see the SARIF upload for all of them._\n"
            ));
        }
        // The head alone (16 rules at most, escaped titles) is far below the limit; this is the
        // last guard for a tiny custom limit.
        if text.chars().count() > self.limit {
            text = text.chars().take(self.limit.saturating_sub(1)).collect();
            text.push('…');
        }
        self.out.write_all(text.as_bytes())?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralises_markdown_and_html_and_cuts_long_text() {
        let e = escape("<img src=x onerror=alert(1)> | **bold** [link](http://x)\n# h");
        assert!(!e.contains('<') && !e.contains('\n'));
        assert!(e.contains("\\|") && e.contains("\\*\\*") && e.contains("\\[link\\]"));
        assert!(escape(&"a".repeat(10_000)).chars().count() <= CELL_CHARS + 1);
    }

    #[test]
    fn code_spans_are_fenced_past_any_backtick_run_and_keep_the_row() {
        assert_eq!(code("www.evil.example"), "`www.evil.example`");
        assert_eq!(code("a``b"), "```a``b```");
        assert_eq!(code("`x"), "`` `x ``");
        assert_eq!(code("a|b\nc"), "`a\\|b c`");
        assert_eq!(code(""), "");
        assert!(code(&"a".repeat(10_000)).chars().count() <= CELL_CHARS + 3);
    }
}
