//! `sealkey audit --format html` judged by a browser we did not write: Debian's headless
//! Chromium renders the page from `file://` (nothing may be fetched), runs its script, and the
//! DOM's counts must equal the JSON report's; its screenshot must not be blank.

#[path = "support/audit_corpus.rs"]
mod corpus;

use std::path::Path;
use std::process::Command;

fn sealkey(args: &[&str], dir: &Path) -> Vec<u8> {
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
    out.stdout
}

/// Runs Debian's `chromium` headless (no sandbox: tests may run as root), bounded in time.
fn chromium(args: &[&str]) -> Vec<u8> {
    let profile = tempfile::tempdir().unwrap();
    let out = Command::new("timeout")
        .arg("120")
        .arg("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--disable-extensions",
            "--window-size=1400,1600",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .output()
        .expect("chromium is needed (scripts/install-test-deps installs it)");
    assert!(
        out.status.success(),
        "chromium {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn attr(dom: &str, id: &str, name: &str) -> u64 {
    let at = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id}"));
    let tag_end = at + dom[at..].find('>').unwrap();
    let tag = &dom[..tag_end];
    let start = tag.rfind('<').unwrap();
    let tag = &dom[start..tag_end];
    let key = format!("{name}=\"");
    let v = &tag[tag
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} on #{id}: {tag}"))
        + key.len()..];
    v[..v.find('"').unwrap()].parse().unwrap()
}

fn shown(dom: &str) -> u64 {
    let at = dom.find("id=\"shown\">").expect("#shown") + "id=\"shown\">".len();
    dom[at..at + dom[at..].find('<').unwrap()].parse().unwrap()
}

#[test]
fn chromium_renders_the_html_report_from_file_and_its_dom_counts_equal_the_json_report() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus");
    corpus::generate(&corpus, 12, 11);
    let json: serde_json::Value = serde_json::from_slice(&sealkey(
        &["audit", "--format", "json", "--fail-on", "none"],
        &corpus,
    ))
    .unwrap();
    let html = sealkey(&["audit", "--format", "html", "--fail-on", "none"], &corpus);
    let page_path = dir.path().join("report.html");
    std::fs::write(&page_path, &html).unwrap();
    let page = String::from_utf8(html).unwrap();

    // Self-contained: nothing to fetch (links to the rules are plain anchors).
    for fetch in ["src=", "<link", "@import", "url(", "<iframe", "<object"] {
        assert!(!page.contains(fetch), "{fetch} in the page");
    }

    let findings = json["findings"].as_array().unwrap();
    let count = |sev: &str| findings.iter().filter(|f| f["severity"] == sev).count() as u64;
    let (errors, warnings, info) = (count("error"), count("warning"), count("info"));
    assert!(errors > 0 && warnings > 0 && info > 0);
    assert_eq!(json["stats"]["findings"], findings.len() as u64);

    let url = format!("file://{}", page_path.display());
    let dom = String::from_utf8(chromium(&["--dump-dom", &url])).unwrap();
    // Rows in the DOM, and the counts the page's own script took from them.
    assert_eq!(
        dom.matches("<tr class=\"finding").count(),
        findings.len(),
        "finding rows"
    );
    assert_eq!(attr(&dom, "dom-counts", "data-rows"), findings.len() as u64);
    assert_eq!(attr(&dom, "dom-counts", "data-errors"), errors);
    assert_eq!(attr(&dom, "dom-counts", "data-warnings"), warnings);
    assert_eq!(attr(&dom, "dom-counts", "data-info"), info);
    assert_eq!(attr(&dom, "stats", "data-findings"), findings.len() as u64);
    assert_eq!(shown(&dom), findings.len() as u64, "every finding shown");
    // The matrix has a row per Secret of the JSON summary.
    let secrets = json["summary"].as_array().unwrap().len();
    assert_eq!(dom.matches("<tr class=\"secret\"").count(), secrets);
    // Each finding links to its rule's section.
    for f in findings.iter().take(50) {
        let anchor = format!(
            "docs/audit-rules.md#{}",
            f["rule"].as_str().unwrap().to_ascii_lowercase()
        );
        assert!(dom.contains(&anchor), "{anchor}");
    }

    // The severity filter, run by the page's script.
    let errors_only =
        String::from_utf8(chromium(&["--dump-dom", &format!("{url}#severity=error")])).unwrap();
    assert_eq!(shown(&errors_only), errors);
    assert_eq!(
        errors_only.matches("<tr class=\"finding hidden\"").count() as u64,
        warnings + info
    );

    // The screenshot is a page, not a blank: many colours, a good part of it not white.
    let png = dir.path().join("report.png");
    chromium(&[&format!("--screenshot={}", png.display()), &url]);
    let stats = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/png_stats.py"
        ))
        .arg(&png)
        .output()
        .unwrap();
    assert!(
        stats.status.success(),
        "{}",
        String::from_utf8_lossy(&stats.stderr)
    );
    let stats: serde_json::Value = serde_json::from_slice(&stats.stdout).unwrap();
    let pixels = stats["width"].as_u64().unwrap() * stats["height"].as_u64().unwrap();
    assert!(stats["colors"].as_u64().unwrap() > 50, "{stats}");
    assert!(
        stats["non_white"].as_u64().unwrap() * 20 > pixels,
        "{stats}"
    );
}
