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

/// Cells of a GitHub table row (`\|` is a literal bar, not a separator), split as cmark-gfm does.
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|').trim_end_matches('|');
    let mut out = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            // As GitHub's table scanner reads a row: `\|` is a bar inside the cell, whatever
            // precedes it (`\\|` too); any other backslash is just a character here.
            '\\' if chars.peek() == Some(&'|') => {
                out.last_mut().unwrap().push(c);
                out.last_mut().unwrap().push(chars.next().unwrap());
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

/// GitHub's renderer (cmark-gfm with its extensions) as a PR comment is rendered; `--unsafe`
/// keeps raw HTML, so a tag that got through shows up (GitHub sanitises it, after linking).
fn cmark_gfm(markdown: &str) -> String {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = Command::new("cmark-gfm")
        .args([
            "--unsafe",
            "-e",
            "autolink",
            "-e",
            "table",
            "-e",
            "strikethrough",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cmark-gfm ({e}): run scripts/install-test-deps"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(markdown.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// Every form of link GFM knows: extended autolinks (schemes, `www.`, emails, `mailto:`, `xmpp:`
/// and the delimiters allowed before them), angle autolinks, inline links and images, and text
/// built to break out of a code span or a table cell first.
const AUTOLINK_FORMS: &[&str] = &[
    "https://evil.example/login",
    "http://evil.example",
    "ftp://evil.example/f",
    "HTTPS://EVIL.EXAMPLE/UP",
    "www.phish.example",
    "WWW.PHISH.EXAMPLE",
    "www.evil.example@x.yaml",
    "user@evil.example",
    "user.name+tag@evil.example",
    "mailto:user@evil.example",
    "xmpp:user@evil.example/r",
    "<https://evil.example/angle>",
    "<user@evil.example>",
    "[click](https://evil.example/inline)",
    "![img](https://evil.example/i.png)",
    "(www.evil.example)",
    "*www.evil.example*",
    "_www.evil.example_",
    "~www.evil.example~",
    "x https://evil.example/space",
    "`a` www.evil.example `b`",
    "``` www.evil.example ```",
    "`",
    "a|www.evil.example|b",
    "a\\|www.evil.example",
    "\\`www.evil.example",
    "&#104;ttps://evil.example/entity",
    "javascript:alert(1)",
];

#[test]
fn hostile_names_never_become_links_in_the_comment_as_github_renders_it() {
    // Before: `https://evil.example/login`, `www.phish.example` and `www.evil.example\@x.yaml`
    // rendered as links (and `user\@evil.example` as a mailto: link) despite the escaping.
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for (i, h) in AUTOLINK_FORMS.iter().enumerate() {
        let q = serde_json::to_string(h).unwrap();
        text.push_str(&format!(
            "---\nkind: Pod\nmetadata: {{name: {q}, namespace: {q}}}\nspec:\n  volumes: [{{name: v{i}, secret: {{secretName: {q}}}}}]\n  containers:\n  - name: {q}\n    env:\n    - name: {q}\n      valueFrom: {{secretKeyRef: {{name: {q}, key: {q}}}}}\n    volumeMounts: [{{name: v{i}, mountPath: {q}, subPath: {q}}}]\n"
        ));
    }
    std::fs::write(dir.path().join("pods.yaml"), &text).unwrap();
    // File names in every form a path can take.
    for name in [
        "www.evil.example@x.yaml",
        "user@evil.example.yaml",
        "www.phish.example",
    ] {
        std::fs::write(
            dir.path().join(name),
            "kind: Secret\nmetadata: {name: s}\nstringData: {password: CANARY-hunter2}\n",
        )
        .unwrap();
    }
    let sub = dir.path().join("https:").join("www.evil.example");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(
        sub.join("login.yaml"),
        "kind: Secret\nmetadata: {name: t}\nstringData: {password: CANARY-hunter2}\n",
    )
    .unwrap();
    let comment = sealkey(
        &["audit", "--format", "markdown", "--fail-on", "none"],
        dir.path(),
    );
    assert!(
        comment.contains("evil.example"),
        "the names are shown: {comment}"
    );
    let html = cmark_gfm(&comment);
    let rules = format!(
        "{}/blob/main/docs/audit-rules.md#",
        env!("CARGO_PKG_REPOSITORY")
    );
    let links: Vec<&str> = html
        .match_indices("<a ")
        .map(|(i, _)| &html[i..(i + 120).min(html.len())])
        .collect();
    assert!(!links.is_empty(), "the rule links are there: {html}");
    for l in &links {
        assert!(
            l.starts_with(&format!("<a href=\"{rules}")),
            "a link from a name: {l}\n{comment}"
        );
    }
    // No other element or link target either (the names themselves are shown, as text).
    for bad in [
        "<img",
        "<script",
        "href=\"mailto",
        "href=\"xmpp",
        "href=\"http://www",
        "src=",
    ] {
        assert!(!html.contains(bad), "{bad} in {html}");
    }
    assert!(html.contains("www.evil.example@x.yaml</code>:1"), "{html}");
    // Every table row kept its header's columns: no cell was split by a name.
    assert_eq!(tables(&comment).len(), 2, "{comment}");
    for table in html.split("<table>").skip(1) {
        let table = &table[..table.find("</table>").unwrap()];
        let head = table.split("</thead>").next().unwrap();
        let cols = head.matches("<th>").count() + head.matches("<th ").count();
        for row in table
            .split("</thead>")
            .nth(1)
            .unwrap()
            .split("<tr>")
            .skip(1)
        {
            assert_eq!(
                row.matches("<td").count(),
                cols,
                "a row split by a name: {row}"
            );
        }
    }
}
