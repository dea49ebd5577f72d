//! `sealkey audit --format sarif` is valid SARIF 2.1.0: checked against the OASIS schema
//! (tests/fixtures/sarif-schema-2.1.0.json) by Python's `jsonschema`, a validator we did not
//! write, on a corpus with every rule plus a malformed file (a tool execution notification).

mod support;

use std::path::Path;
use std::process::Command;
use support::audit_corpus as corpus;

const VALIDATE: &str = r#"
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
log = json.load(open(sys.argv[2]))
cls = jsonschema.validators.validator_for(schema)
cls.check_schema(schema)
errors = sorted(cls(schema).iter_errors(log), key=lambda e: list(e.path))
for e in errors[:10]:
    print("/".join(map(str, e.path)), e.message[:300])
print(f"{len(errors)} schema errors, {len(log['runs'][0]['results'])} results")
sys.exit(1 if errors else 0)
"#;

#[test]
fn sarif_output_validates_against_the_sarif_2_1_0_schema() {
    let dir = tempfile::tempdir().unwrap();
    let truth = corpus::generate(&dir.path().join("corpus"), 40, 11);
    std::fs::write(
        dir.path().join("corpus/broken file.yaml"),
        "kind: Pod\nspec: [unclosed\n",
    )
    .unwrap();
    let out = Command::new(support::sealkey_bin())
        .current_dir(dir.path())
        .args(["audit", "--format", "sarif", "corpus"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "malformed input exits 2");
    let sarif_path = dir.path().join("out.sarif");
    std::fs::write(&sarif_path, &out.stdout).unwrap();

    let schema =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sarif-schema-2.1.0.json");
    let check = Command::new(support::venv_python())
        .arg("-c")
        .arg(VALIDATE)
        .arg(&schema)
        .arg(&sarif_path)
        .output()
        .expect("python3 with jsonschema (scripts/install-test-deps installs it)");
    let report = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success(),
        "schema validation failed:\n{report}\n{}",
        String::from_utf8_lossy(&check.stderr)
    );

    let log: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let run = &log["runs"][0];
    assert_eq!(
        run["results"].as_array().unwrap().len(),
        truth.findings.len()
    );
    assert_eq!(
        run["tool"]["driver"]["rules"].as_array().unwrap().len(),
        sealkey::audit::Rule::ALL.len()
    );
    assert_eq!(sealkey::audit::Rule::ALL.len(), 21);
    let first = &run["results"][0];
    let rule_index = first["ruleIndex"].as_u64().unwrap() as usize;
    assert_eq!(
        run["tool"]["driver"]["rules"][rule_index]["id"],
        first["ruleId"]
    );
    let uri = first["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
        .as_str()
        .unwrap();
    assert!(uri.starts_with("corpus/ns"), "relative to %SRCROOT%: {uri}");
    let notes = &run["invocations"][0];
    assert_eq!(notes["executionSuccessful"], false);
    let note = &notes["toolExecutionNotifications"][0];
    assert_eq!(
        note["locations"][0]["physicalLocation"]["artifactLocation"]["uri"],
        "corpus/broken%20file.yaml"
    );
    assert_eq!(
        note["locations"][0]["physicalLocation"]["region"]["startLine"],
        2
    );
}
