//! Scores `sealkey audit` against a generated corpus with ground truth: every planted finding
//! (every rule, in YAML, JSON, `kind: List`, HelmRelease values) is found at its file and line,
//! and nothing is reported on the benign look-alikes planted next to them.

mod support;

use corpus::Expected;
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use support::audit_corpus as corpus;

fn key(v: &serde_json::Value) -> Expected {
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    Expected {
        rule: s("rule").unwrap(),
        file: s("file").unwrap_or_default(),
        line: v.get("line").and_then(|l| l.as_u64()).unwrap_or(0) as u32,
        kind: s("kind").unwrap(),
        name: s("name").unwrap(),
        namespace: s("namespace"),
        container: s("container"),
        env: s("env"),
        secret: s("secret"),
        key: s("key"),
    }
}

#[test]
fn audit_finds_every_planted_usage_and_nothing_else_at_n_200() {
    let dir = tempfile::tempdir().unwrap();
    let truth = corpus::generate(dir.path(), 200, 7);
    let out = Command::new(support::sealkey_bin())
        .args(["audit", "--format", "json", "--fail-on", "none"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let found: Vec<Expected> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(key)
        .collect();
    let expected: BTreeSet<Expected> = truth.findings.iter().cloned().collect();
    let got: BTreeSet<Expected> = found.iter().cloned().collect();
    assert_eq!(found.len(), got.len(), "a finding was reported twice");

    let mut per_rule: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for e in &expected {
        let entry = per_rule.entry(e.rule.clone()).or_default();
        entry.0 += 1;
        if got.contains(e) {
            entry.1 += 1;
        }
    }
    let missed: Vec<&Expected> = expected.difference(&got).take(5).collect();
    let false_positives: Vec<&Expected> = got.difference(&expected).take(5).collect();
    for rule in [
        "SK001", "SK002", "SK003", "SK004", "SK005", "SK006", "SK007", "SK008", "SK009", "SK010",
        "SK011", "SK012", "SK013", "SK014", "SK015",
    ] {
        let (planted, recalled) = per_rule.get(rule).copied().unwrap_or_default();
        assert!(planted > 0, "the corpus plants no {rule}");
        assert_eq!(
            recalled, planted,
            "{rule}: recall {recalled}/{planted}; missed e.g. {missed:#?}"
        );
    }
    assert!(
        false_positives.is_empty(),
        "false positives: {false_positives:#?}"
    );
    assert_eq!(report["errors"].as_array().unwrap().len(), 0);
    assert_eq!(report["stats"]["inputs"], 200);
    assert!(truth.workloads > 400, "{}", truth.workloads);
    eprintln!(
        "planted per rule (planted, recalled): {per_rule:?}; {} workloads",
        truth.workloads
    );
}
