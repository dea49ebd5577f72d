//! `sealkey audit --format markdown`: the pull-request comment. Counts per rule and severity
//! equal the JSON report's, every table row has its header's columns, and a huge input stays
//! under GitHub's 65,536-character comment limit and says it was truncated.

#[path = "support/audit_corpus.rs"]
mod corpus;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn sealkey(args: &[&str], dir: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_sealkey"))
        .args(args)
        .arg(dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Cells of a GitHub table row (`\|` is a literal bar, not a separator).
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                out.last_mut().unwrap().push(c);
                if let Some(n) = chars.next() {
                    out.last_mut().unwrap().push(n);
                }
            }
            '|' => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out.into_iter().map(|c| c.trim().to_string()).collect()
}

/// Checks every table: a header, a delimiter row, rows with the header's column count.
fn tables(comment: &str) -> Vec<Vec<Vec<String>>> {
    let mut found = Vec::new();
    let lines: Vec<&str> = comment.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].starts_with('|') {
            let head = cells(lines[i]);
            let delim = cells(lines[i + 1]);
            assert!(
                delim
                    .iter()
                    .all(|c| c.trim_matches(':').chars().all(|c| c == '-') && c.len() >= 3),
                "{}",
                lines[i + 1]
            );
            assert_eq!(delim.len(), head.len());
            let mut rows = vec![head.clone()];
            i += 2;
            while i < lines.len() && lines[i].starts_with('|') {
                let row = cells(lines[i]);
                assert_eq!(row.len(), head.len(), "row {:?} under {head:?}", lines[i]);
                rows.push(row);
                i += 1;
            }
            found.push(rows);
        } else {
            i += 1;
        }
    }
    found
}

#[test]
fn markdown_counts_per_rule_and_severity_equal_the_json_report() {
    let dir = tempfile::tempdir().unwrap();
    corpus::generate(dir.path(), 8, 3);
    let json: serde_json::Value = serde_json::from_str(&sealkey(
        &["audit", "--format", "json", "--fail-on", "none"],
        dir.path(),
    ))
    .unwrap();
    let comment = sealkey(
        &["audit", "--format", "markdown", "--fail-on", "none"],
        dir.path(),
    );
    let mut want: BTreeMap<String, [u64; 3]> = BTreeMap::new();
    for f in json["findings"].as_array().unwrap() {
        let i = match f["severity"].as_str().unwrap() {
            "error" => 0,
            "warning" => 1,
            _ => 2,
        };
        want.entry(f["rule"].as_str().unwrap().to_string())
            .or_default()[i] += 1;
    }
    let t = tables(&comment);
    assert_eq!(t.len(), 2, "{comment}");
    let mut got: BTreeMap<String, [u64; 3]> = BTreeMap::new();
    for row in &t[0][1..] {
        let rule = row[0][1..6].to_string(); // [SK001](...)
        got.insert(
            rule,
            [
                row[1].parse().unwrap(),
                row[2].parse().unwrap(),
                row[3].parse().unwrap(),
            ],
        );
    }
    assert_eq!(got, want);
    let findings = json["findings"].as_array().unwrap().len();
    assert_eq!(t[1].len() - 1, findings, "a small run lists every finding");
    // Most severe first.
    let sev: Vec<&str> = t[1][1..].iter().map(|r| r[0].as_str()).collect();
    let rank = |s: &str| {
        ["error", "warning", "info"]
            .iter()
            .position(|x| *x == s)
            .unwrap()
    };
    assert!(sev.windows(2).all(|w| rank(w[0]) <= rank(w[1])), "{sev:?}");
    assert!(!comment.contains("Truncated"));
}

#[test]
fn a_huge_audit_stays_under_githubs_comment_limit_and_says_it_truncated() {
    let dir = tempfile::tempdir().unwrap();
    corpus::generate(dir.path(), 150, 5);
    // Long names make long rows.
    let long = "n".repeat(2000);
    std::fs::write(
        dir.path().join("long.yaml"),
        format!("kind: Pod\nmetadata: {{name: {long}}}\nspec:\n  containers:\n  - name: {long}\n    envFrom: [{{secretRef: {{name: {long}}}}}]\n"),
    )
    .unwrap();
    let json: serde_json::Value = serde_json::from_str(&sealkey(
        &["audit", "--format", "json", "--fail-on", "none"],
        dir.path(),
    ))
    .unwrap();
    let total = json["findings"].as_array().unwrap().len();
    let comment = sealkey(
        &["audit", "--format", "markdown", "--fail-on", "none"],
        dir.path(),
    );
    let chars = comment.chars().count();
    assert!(chars <= 65_536, "{chars} characters");
    assert!(chars > 50_000, "uses the room it has: {chars}");
    let t = tables(&comment);
    let listed = t[1].len() - 1;
    assert!(listed < total);
    assert!(
        comment.contains(&format!("Truncated: {listed} of {total} shown")),
        "{}",
        &comment[comment.len() - 400..]
    );
    // The per-rule counts are complete even when the list is cut.
    let counted: u64 = t[0][1..]
        .iter()
        .map(|r| {
            r[1..4]
                .iter()
                .map(|c| c.parse::<u64>().unwrap())
                .sum::<u64>()
        })
        .sum();
    assert_eq!(counted, total as u64);
}
