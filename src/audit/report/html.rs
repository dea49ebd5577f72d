//! HTML report: one self-contained page (inline CSS and JS, nothing fetched, works from
//! `file://`) with the counts, the Secrets x workloads matrix and the findings with filters.
//!
//! Findings are written as they arrive, so memory does not grow with them; CSS `order` puts the
//! counts and the matrix, written at the end, above them. The matrix keeps at most
//! [`MATRIX_USES`] uses (it says so when it drops any). Every name, path and message comes from
//! the input and is escaped with [`escape`] before it reaches the page.

use crate::audit::summary::Summary;
use crate::audit::{Finding, InputError, Report, Rule, Severity, Stats, Usage, Via};
use std::collections::BTreeMap;
use std::io::{self, Write};

/// Uses (container x Secret x way) kept for the matrix.
pub const MATRIX_USES: usize = 20_000;
/// Columns (workloads) drawn in the matrix; the rest are counted.
pub const MATRIX_WORKLOADS: usize = 60;
/// Rows (Secrets) drawn in the matrix; the rest are counted.
pub const MATRIX_SECRETS: usize = 300;

/// Where each rule's section lives (`#sk001` ...).
pub fn rule_url(rule: Rule) -> String {
    format!(
        "{}/blob/main/docs/audit-rules.md#{}",
        env!("CARGO_PKG_REPOSITORY"),
        rule.anchor()
    )
}

/// Text safe inside HTML elements and double- or single-quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            '`' => out.push_str("&#96;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

/// One cell of the matrix: a container's way of reading a Secret.
struct Cell {
    container: Option<String>,
    via: Via,
    detail: String,
    mode: Option<i64>,
    exposed: bool,
}

/// Writes the page.
pub struct HtmlReport<'w> {
    out: Box<dyn Write + 'w>,
    errors: Vec<InputError>,
    per_rule: BTreeMap<Rule, [u64; 3]>,
    /// (namespace, Secret) -> workload -> cells.
    matrix: BTreeMap<(Option<String>, String), BTreeMap<String, Vec<Cell>>>,
    workloads: Vec<String>,
    workload_index: std::collections::HashMap<String, usize>,
    kept_uses: usize,
    dropped_uses: u64,
}

const STYLE: &str = r#"
:root{--err:#b3261e;--warn:#a15c00;--info:#245f9e;--ok:#1b6e3a;--bg:#fff;--fg:#1d1d1f;--mute:#666;--line:#ddd}
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
main{display:flex;flex-direction:column;padding:20px 28px;gap:18px}
#head{order:1}#counts{order:2}#matrix-section{order:3}#findings-section{order:4}#errors-section{order:5}
h1{font-size:20px;margin:0}h2{font-size:16px;margin:0 0 8px}.mute{color:var(--mute)}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{border:1px solid var(--line);border-radius:8px;padding:10px 14px;min-width:120px}
.card b{display:block;font-size:22px}.card.error b{color:var(--err)}.card.warning b{color:var(--warn)}.card.info b{color:var(--info)}
table{border-collapse:collapse;width:100%}th,td{border:1px solid var(--line);padding:4px 6px;text-align:left;vertical-align:top}
th{background:#f5f5f7;font-weight:600}.wrap{overflow:auto;max-height:70vh}
.matrix th.w{writing-mode:vertical-rl;transform:rotate(180deg);white-space:nowrap;font-weight:500;max-height:220px}
.matrix td{font-size:12px;min-width:24px}.matrix td.sec{white-space:nowrap;font-weight:500}
.use{display:block;white-space:nowrap;border-radius:4px;padding:1px 4px;margin:1px 0}
.use.env,.use.envFrom{background:#fde7e6}.use.file-open{background:#fff1d6}.use.file-ok{background:#e3f4e8}.use.imagePullSecrets,.use.values{background:#eef}
.sev{font-weight:600;text-transform:uppercase;font-size:11px;border-radius:4px;padding:1px 5px;color:#fff}
.sev.error{background:var(--err)}.sev.warning{background:var(--warn)}.sev.info{background:var(--info)}
.filters{display:flex;gap:14px;align-items:center;margin-bottom:8px;flex-wrap:wrap}.filters input[type=search]{padding:4px 8px;min-width:260px}
tr.finding.hidden{display:none}td.msg{max-width:640px}code{font-size:12px}
.legend .use{display:inline-block;margin-right:10px}
.matrix.few th.w{writing-mode:horizontal-tb;transform:none;white-space:normal;max-height:none;min-width:150px}
.matrix td{max-width:300px}.matrix:not(.few) td{white-space:nowrap}.matrix:not(.few) .use{white-space:nowrap;font-size:11px}.matrix .use{white-space:normal;overflow-wrap:anywhere}.matrix td.st{white-space:nowrap}
"#;

const SCRIPT: &str = r#"
(function(){
  var rows=[].slice.call(document.querySelectorAll('tr.finding'));
  var boxes=[].slice.call(document.querySelectorAll('input.sev-filter'));
  var rule=document.getElementById('rule-filter');
  var q=document.getElementById('text-filter');
  var shown=document.getElementById('shown');
  function apply(){
    var on={};boxes.forEach(function(b){on[b.value]=b.checked;});
    var r=rule.value,t=q.value.toLowerCase(),n=0;
    rows.forEach(function(row){
      var ok=on[row.getAttribute('data-severity')]&&(!r||row.getAttribute('data-rule')===r)&&(!t||row.textContent.toLowerCase().indexOf(t)>=0);
      row.classList.toggle('hidden',!ok);if(ok)n++;
    });
    shown.textContent=String(n);
  }
  // `#severity=error,warning` in the URL preselects the filters (links from CI, and the tests).
  var m=/severity=([a-z,]+)/.exec(location.hash);
  if(m){var want=m[1].split(',');boxes.forEach(function(b){b.checked=want.indexOf(b.value)>=0;});}
  boxes.forEach(function(b){b.addEventListener('change',apply);});
  rule.addEventListener('change',apply);q.addEventListener('input',apply);
  var counts={error:0,warning:0,info:0};
  rows.forEach(function(row){counts[row.getAttribute('data-severity')]++;});
  document.getElementById('dom-counts').setAttribute('data-rows',String(rows.length));
  document.getElementById('dom-counts').setAttribute('data-errors',String(counts.error));
  document.getElementById('dom-counts').setAttribute('data-warnings',String(counts.warning));
  document.getElementById('dom-counts').setAttribute('data-info',String(counts.info));
  apply();
})();
"#;

impl<'w> HtmlReport<'w> {
    /// Writes the page's head and opens the findings table.
    pub fn new(mut out: Box<dyn Write + 'w>) -> io::Result<Self> {
        write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>sealkey audit</title><style>{STYLE}</style></head><body><main>\n\
             <section id=\"head\"><h1>sealkey audit</h1><p class=\"mute\">How every workload reads Secrets, and what to fix. Rules: \
             <a href=\"{}\">docs/audit-rules.md</a></p></section>\n\
             <section id=\"findings-section\"><h2>Findings <span class=\"mute\">(<span id=\"shown\">0</span> shown)</span></h2>\
             <div class=\"filters\"><label><input type=\"checkbox\" class=\"sev-filter\" value=\"error\" checked> errors</label>\
             <label><input type=\"checkbox\" class=\"sev-filter\" value=\"warning\" checked> warnings</label>\
             <label><input type=\"checkbox\" class=\"sev-filter\" value=\"info\" checked> info</label>\
             <select id=\"rule-filter\"><option value=\"\">every rule</option>",
            escape(&format!(
                "{}/blob/main/docs/audit-rules.md",
                env!("CARGO_PKG_REPOSITORY")
            ))
        )?;
        for rule in Rule::ALL {
            write!(
                out,
                "<option value=\"{id}\">{id} {}</option>",
                escape(rule.title()),
                id = rule.id()
            )?;
        }
        out.write_all(
            b"</select><input type=\"search\" id=\"text-filter\" placeholder=\"filter: name, file, Secret...\"></div>\
              <div class=\"wrap\"><table id=\"findings\"><thead><tr><th>severity</th><th>rule</th><th>where</th><th>object</th><th>message</th></tr></thead><tbody>\n",
        )?;
        Ok(HtmlReport {
            out,
            errors: Vec::new(),
            per_rule: BTreeMap::new(),
            matrix: BTreeMap::new(),
            workloads: Vec::new(),
            workload_index: std::collections::HashMap::new(),
            kept_uses: 0,
            dropped_uses: 0,
        })
    }
}

/// The unconsumed Secrets' names for the card's tooltip (the first 20, then a count).
fn unconsumed_title(summary: &Summary) -> String {
    let (mut labels, more) = summary.unconsumed_labels();
    if more > 0 {
        labels.push(format!("+{more} more"));
    }
    labels.join(", ")
}

fn severity_index(s: Severity) -> usize {
    match s {
        Severity::Error => 0,
        Severity::Warning => 1,
        Severity::Info => 2,
    }
}

impl Report for HtmlReport<'_> {
    fn finding(&mut self, f: &Finding) -> io::Result<()> {
        self.per_rule.entry(f.rule).or_default()[severity_index(f.severity)] += 1;
        let place = match (&f.file, f.line) {
            (Some(file), Some(line)) => format!("{}:{line}", escape(file)),
            (Some(file), None) => escape(file),
            _ => escape(f.namespace.as_deref().unwrap_or("")),
        };
        let mut object = format!("{}/{}", escape(&f.kind), escape(&f.name));
        for (label, value) in [
            ("container", &f.container),
            ("env", &f.env),
            ("Secret", &f.secret),
            ("key", &f.key),
        ] {
            if let Some(v) = value {
                object.push_str(&format!(
                    "<br><span class=\"mute\">{label}</span> {}",
                    escape(v)
                ));
            }
        }
        writeln!(
            self.out,
            "<tr class=\"finding\" data-severity=\"{sev}\" data-rule=\"{id}\"><td><span class=\"sev {sev}\">{sev}</span></td>\
             <td><a href=\"{url}\" title=\"{title}\">{id}</a></td><td><code>{place}</code></td><td>{object}</td>\
             <td class=\"msg\">{msg}<br><span class=\"mute\">fix: {hint}</span></td></tr>",
            sev = f.severity.as_str(),
            id = f.rule.id(),
            url = escape(&rule_url(f.rule)),
            title = escape(f.rule.title()),
            msg = escape(&f.message),
            hint = escape(f.hint),
        )
    }

    fn input_error(&mut self, error: &InputError) -> io::Result<()> {
        self.errors.push(error.clone());
        Ok(())
    }

    fn usage(&mut self, u: &Usage) -> io::Result<()> {
        if self.kept_uses + u.uses.len() > MATRIX_USES {
            self.dropped_uses += u.uses.len() as u64;
            return Ok(());
        }
        if !self.workload_index.contains_key(&u.workload) {
            self.workload_index
                .insert(u.workload.clone(), self.workloads.len());
            self.workloads.push(u.workload.clone());
        }
        self.kept_uses += u.uses.len();
        let cells = self
            .matrix
            .entry((u.namespace.clone(), u.secret.clone()))
            .or_default()
            .entry(u.workload.clone())
            .or_default();
        for c in &u.uses {
            cells.push(Cell {
                container: c.container.clone(),
                via: c.via,
                detail: c.detail.clone(),
                mode: c.mode,
                exposed: c.files_exposed(),
            });
        }
        Ok(())
    }

    fn finish(&mut self, summary: &Summary, stats: &Stats) -> io::Result<()> {
        self.out.write_all(b"</tbody></table></div></section>\n")?;

        // Counts (drawn first by CSS order).
        write!(
            self.out,
            "<section id=\"counts\"><div id=\"stats\" data-findings=\"{}\" data-errors=\"{}\" data-warnings=\"{}\" data-info=\"{}\" \
             data-inputs=\"{}\" data-secrets=\"{}\" data-input-errors=\"{}\"></div><div id=\"dom-counts\"></div>\
             <div class=\"cards\"><div class=\"card error\"><b>{}</b>errors</div><div class=\"card warning\"><b>{}</b>warnings</div>\
             <div class=\"card info\"><b>{}</b>info</div><div class=\"card\"><b>{}</b>Secrets consumed</div>\
             <div class=\"card\" title=\"{}\"><b>{}</b>Secrets consumed by none</div><div class=\"card\"><b>{}</b>inputs ({} objects)</div>",
            stats.findings,
            stats.errors,
            stats.warnings,
            stats.info,
            stats.inputs,
            summary.len(),
            stats.input_errors,
            stats.errors,
            stats.warnings,
            stats.info,
            summary.len(),
            escape(&unconsumed_title(summary)),
            summary.unconsumed(),
            stats.inputs,
            stats.objects,
        )?;
        if stats.input_errors > 0 {
            write!(
                self.out,
                "<div class=\"card error\"><b>{}</b>inputs not audited</div>",
                stats.input_errors
            )?;
        }
        self.out.write_all(b"</div>")?;
        if !self.per_rule.is_empty() {
            self.out.write_all(b"<h2 style=\"margin-top:14px\">By rule</h2><table class=\"rules\"><thead><tr><th>rule</th><th>errors</th><th>warnings</th><th>info</th><th>what</th></tr></thead><tbody>")?;
            for (rule, [e, w, i]) in &self.per_rule {
                write!(
                    self.out,
                    "<tr><td><a href=\"{}\">{}</a></td><td>{e}</td><td>{w}</td><td>{i}</td><td>{}</td></tr>",
                    escape(&rule_url(*rule)),
                    rule.id(),
                    escape(rule.title())
                )?;
            }
            self.out.write_all(b"</tbody></table>")?;
        }
        self.out.write_all(b"</section>\n")?;

        // The matrix.
        // When everything does not fit, draw the densest part: the workloads that read the most
        // Secrets, and the Secrets they read (a sparse matrix of the first names says little).
        let columns: Vec<&String> = if self.workloads.len() <= MATRIX_WORKLOADS {
            self.workloads.iter().collect()
        } else {
            let mut reads = vec![0usize; self.workloads.len()];
            for by_workload in self.matrix.values() {
                for w in by_workload.keys() {
                    reads[self.workload_index[w]] += 1;
                }
            }
            let mut order: Vec<usize> = (0..self.workloads.len()).collect();
            order.sort_by_key(|&i| (std::cmp::Reverse(reads[i]), i));
            order.truncate(MATRIX_WORKLOADS);
            order.sort_unstable();
            order.iter().map(|&i| &self.workloads[i]).collect()
        };
        let compact = columns.len() > 6;
        let shown: std::collections::HashSet<&str> = columns.iter().map(|w| w.as_str()).collect();
        let rows: Vec<_> = self
            .matrix
            .iter()
            .filter(|(_, by_workload)| by_workload.keys().any(|w| shown.contains(w.as_str())))
            .take(MATRIX_SECRETS)
            .collect();
        self.out.write_all(
            b"<section id=\"matrix-section\"><h2>Who reads which Secret, and how</h2>\
              <p class=\"legend mute\"><span class=\"use env\">env / envFrom: risky</span><span class=\"use file-open\">file readable by group/others</span>\
              <span class=\"use file-ok\">file, owner only</span><span class=\"use values\">chart values / image pull</span></p>",
        )?;
        write!(
            self.out,
            "<div class=\"wrap\"><table class=\"matrix{}\" data-secrets=\"{}\" data-workloads=\"{}\"><thead><tr><th>Secret</th><th>stored</th>",
            if compact { "" } else { " few" },
            self.matrix.len(),
            self.workloads.len()
        )?;
        for w in &columns {
            write!(self.out, "<th class=\"w\">{}</th>", escape(w))?;
        }
        self.out.write_all(b"</tr></thead><tbody>")?;
        let storage: std::collections::HashMap<(Option<&str>, &str), &'static str> = summary
            .rows()
            .filter_map(|r| {
                r.storage
                    .map(|s| ((r.namespace.as_deref(), r.secret.as_str()), s))
            })
            .collect();
        for ((ns, secret), by_workload) in &rows {
            let label = match ns {
                Some(ns) => format!("{}/{}", escape(ns), escape(secret)),
                None => escape(secret),
            };
            write!(
                self.out,
                "<tr class=\"secret\"><td class=\"sec\">{label}</td><td class=\"st\">{}</td>",
                storage
                    .get(&(ns.as_deref(), secret.as_str()))
                    .copied()
                    .unwrap_or("not in input")
            )?;
            for w in &columns {
                self.out.write_all(b"<td>")?;
                for c in by_workload.get(*w).into_iter().flatten() {
                    let class = match c.via {
                        _ if c.container.is_none() => "values",
                        Via::Volume if c.exposed => "file-open",
                        Via::Volume => "file-ok",
                        v => v.as_str(),
                    };
                    let mode = c
                        .mode
                        .map(|m| format!(", mode {m:04o}"))
                        .unwrap_or_default();
                    let who = c
                        .container
                        .as_deref()
                        .map(|n| format!("{}: ", escape(n)))
                        .unwrap_or_default();
                    let full = format!("{who}{}{mode}", escape(&c.detail));
                    if compact {
                        // Narrow columns: a short label, the whole story on hover.
                        let short = match (c.via, c.mode) {
                            (_, _) if c.container.is_none() && c.via != Via::ImagePullSecrets => {
                                "values".to_string()
                            }
                            (Via::Volume, Some(m)) => format!("file {m:04o}"),
                            (Via::ImagePullSecrets, _) => "pull".to_string(),
                            (v, _) => v.as_str().to_string(),
                        };
                        write!(
                            self.out,
                            "<span class=\"use {class}\" title=\"{full}\">{short}</span>"
                        )?;
                    } else {
                        write!(self.out, "<span class=\"use {class}\">{full}</span>")?;
                    }
                }
                self.out.write_all(b"</td>")?;
            }
            self.out.write_all(b"</tr>\n")?;
        }
        self.out.write_all(b"</tbody></table></div>")?;
        if rows.len() < self.matrix.len()
            || columns.len() < self.workloads.len()
            || self.dropped_uses > 0
        {
            write!(
                self.out,
                "<p class=\"mute\">Showing {} of {} Secrets and {} of {} workloads{}; the JSON report's summary has every Secret and counts every workload.</p>",
                rows.len(),
                self.matrix.len(),
                columns.len(),
                self.workloads.len(),
                if self.dropped_uses > 0 {
                    format!(" ({} uses past the first {MATRIX_USES} not drawn)", self.dropped_uses)
                } else {
                    String::new()
                }
            )?;
        }
        self.out.write_all(b"</section>\n")?;

        if !self.errors.is_empty() {
            self.out
                .write_all(b"<section id=\"errors-section\"><h2>Inputs not audited</h2><ul>")?;
            for e in &self.errors {
                write!(self.out, "<li><code>{}</code></li>", escape(&e.to_string()))?;
            }
            self.out.write_all(b"</ul></section>\n")?;
        }
        writeln!(self.out, "</main><script>{SCRIPT}</script></body></html>")?;
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_leaves_no_markup_or_quote_from_the_input() {
        let hostile = "</style><script>alert('x')</script>\"onmouseover=`y`&amp;\u{7}";
        let e = escape(hostile);
        for bad in ['<', '>', '"', '\'', '`', '\u{7}'] {
            assert!(!e.contains(bad), "{bad:?} in {e}");
        }
        assert!(e.contains("&amp;amp;"));
    }
}
