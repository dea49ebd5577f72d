//! `sealkey audit` on the command line: exit codes, malformed input, stdin, `--ignore`,
//! `--fail-on`, the suppression annotation, and `--staged` reading the git index (not the
//! working tree) in a real git repository.

mod support;

use std::path::Path;
use std::process::{Command, Output};
use support::run_in;

const ENV_SECRET: &str = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - name: app\n    env:\n    - name: TOKEN\n      valueFrom: {secretKeyRef: {name: s, key: t}}\n";
const PLAIN_SECRET: &str =
    "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: CANARY-hunter2}\n";

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn malformed_file_exits_2_naming_file_and_line_and_the_others_are_still_audited() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.yaml"), ENV_SECRET).unwrap();
    std::fs::write(
        dir.path().join("b.yaml"),
        "kind: Pod\nspec: {containers: [\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("c.json"), "{\"kind\": \"Secret\",, }").unwrap();
    std::fs::write(dir.path().join("d.yml"), PLAIN_SECRET).unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not yaml: [").unwrap();
    // A Helm chart's templates are Go templates: skipped (audit `helm template` output instead).
    std::fs::create_dir_all(dir.path().join("chart/templates")).unwrap();
    std::fs::write(
        dir.path().join("chart/Chart.yaml"),
        "apiVersion: v2\nname: x\nversion: 0.1.0\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("chart/templates/s.yaml"),
        "{{- if .Values.x }}\nkind: Secret\n{{- end }}\n",
    )
    .unwrap();
    let out = run_in(dir.path(), &["audit", ".", "--format", "json"], b"");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("./b.yaml:2:"), "{stderr}");
    assert!(stderr.contains("./c.json:1"), "{stderr}");
    assert!(
        !stderr.contains("notes.txt:"),
        "only .yaml/.yml/.json are read from directories"
    );
    assert!(
        stderr.contains("skipped 1 file(s)") && stderr.contains("notes.txt"),
        "what was skipped is said: {stderr}"
    );
    let report = json(&out);
    let rules: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert_eq!(rules, ["SK001", "SK006"], "a.yaml and d.yml were audited");
    assert_eq!(report["errors"].as_array().unwrap().len(), 2);
    assert!(!String::from_utf8_lossy(&out.stdout).contains("CANARY"));
}

#[test]
fn fail_on_sets_the_exit_code_and_ignore_drops_rules() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.yaml"), ENV_SECRET).unwrap();
    let code = |args: &[&str]| {
        let mut all = vec!["audit", "p.yaml"];
        all.extend_from_slice(args);
        run_in(dir.path(), &all, b"").status.code()
    };
    assert_eq!(
        code(&[]),
        Some(0),
        "a warning is below the default --fail-on error"
    );
    assert_eq!(code(&["--fail-on", "warning"]), Some(1));
    assert_eq!(code(&["--fail-on", "info"]), Some(1));
    assert_eq!(
        code(&["--fail-on", "warning", "--ignore", "SK001"]),
        Some(0)
    );
    let bad = run_in(dir.path(), &["audit", "p.yaml", "--ignore", "SK042"], b"");
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--ignore SK042"));
}

#[test]
fn stdin_is_read_with_dash_and_the_annotation_suppresses_per_object() {
    let dir = tempfile::tempdir().unwrap();
    let suppressed = ENV_SECRET.replace(
        "metadata: {name: p}",
        "metadata: {name: p, annotations: {sealkey.io/ignore: \"SK001\"}}",
    );
    let text = format!(
        "{ENV_SECRET}---\n{}",
        suppressed.replace("name: p,", "name: q,")
    );
    let out = run_in(
        dir.path(),
        &["audit", "-", "--format", "json"],
        text.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(0));
    let report = json(&out);
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1);
    assert_eq!(findings[0]["name"], "p");
    assert_eq!(findings[0]["file"], "stdin");
    assert_eq!(findings[0]["line"], 8);
}

fn git(dir: &Path, args: &[&str]) {
    let st = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.email=t@example.invalid", "-c", "user.name=t"])
        .args(args)
        .status()
        .unwrap();
    assert!(st.success(), "git {args:?}");
}

#[test]
fn staged_audits_the_index_not_the_working_tree() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    git(d, &["init", "-q"]);
    std::fs::create_dir(d.join("deploy")).unwrap();
    std::fs::write(d.join("deploy/secret.yaml"), PLAIN_SECRET).unwrap();
    std::fs::write(d.join("deploy/pod.yaml"), ENV_SECRET).unwrap();
    git(d, &["add", "deploy/secret.yaml"]);
    // The working tree no longer holds the Secret, the index still does.
    std::fs::write(
        d.join("deploy/secret.yaml"),
        "kind: ConfigMap\nmetadata: {name: x}\n",
    )
    .unwrap();
    let out = run_in(
        &d.join("deploy"),
        &["audit", "--staged", "--format", "json"],
        b"",
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "SK006 is an error: the hook blocks the commit"
    );
    let report = json(&out);
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "pod.yaml is not staged");
    assert_eq!(findings[0]["rule"], "SK006");
    assert_eq!(findings[0]["file"], "deploy/secret.yaml");
    assert_eq!(findings[0]["line"], 2);

    git(d, &["add", "deploy/secret.yaml"]);
    let clean = run_in(d, &["audit", "--staged"], b"");
    assert_eq!(clean.status.code(), Some(0));
}

#[test]
fn secrets_named_by_airflow_helmrelease_values_count_as_consumed() {
    let dir = tempfile::tempdir().unwrap();
    let input = "apiVersion: v1\nkind: Secret\nmetadata: {name: airflow-ssh-secret, namespace: airflow}\ntype: Opaque\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: git-creds, namespace: airflow}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: fernet, namespace: airflow}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: unused, namespace: airflow}\n---\napiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: airflow, namespace: airflow}\nspec:\n  values:\n    fernetKeySecretName: fernet\n    dags:\n      gitSync:\n        enabled: true\n        repo: git@github.com:acme/dags.git\n        sshKeySecret: airflow-ssh-secret\n        credentialsSecret: git-creds\n        knownHosts: \"github.com ssh-ed25519 AAAA\"\n";
    let out = run_in(
        dir.path(),
        &["audit", "--format", "json", "--fail-on", "none", "-"],
        input.as_bytes(),
    );
    let report = json(&out);
    let rows = report["summary"].as_array().unwrap();
    let consumer = |name: &str| {
        rows.iter()
            .find(|r| r["secret"] == name)
            .unwrap_or_else(|| panic!("{name} not in the summary: {rows:#?}"))["workloads"][0]
            ["workload"]
            .clone()
    };
    assert_eq!(consumer("airflow-ssh-secret"), "HelmRelease/airflow");
    assert_eq!(consumer("git-creds"), "HelmRelease/airflow");
    assert_eq!(consumer("fernet"), "HelmRelease/airflow");
    assert_eq!(
        report["unconsumedSecrets"], 1,
        "only `unused` is unconsumed"
    );
}

/// The seed's HelmRelease: the deploy key once in clear under `extraSecrets`, plus a webhook.
const SEED_HELMRELEASE: &str = "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: airflow, namespace: flux-system}\nspec:\n  targetNamespace: dev\n  values:\n    dags:\n      gitSync:\n        enabled: true\n        repo: https://github.com/o/dags.git\n        sshKeySecret: private-dags-repo\n    extraSecrets:\n      private-dags-repo:\n        data: |\n          gitSshKey: Q0FOQVJZ\n      alerts:\n        stringData: |\n          SLACK_WEBHOOK_URL: https://hooks.slack.com/services/T0/B0/CANARY\n";

// issue 21 item 12: the HTML grid said "not in input" for a Secret the same input defines in
// clear under `extraSecrets`, and "N consumed by none" named none of them.
#[test]
fn a_secret_defined_in_clear_extra_secrets_is_plaintext_in_the_grid_and_unconsumed_ones_are_named()
{
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hr.yaml"), SEED_HELMRELEASE).unwrap();
    let out = run_in(dir.path(), &["audit", "hr.yaml", "--format", "html"], b"");
    let html = String::from_utf8_lossy(&out.stdout);
    let row = html
        .split("<tr class=\"secret\">")
        .find(|r| r.contains("dev/private-dags-repo"))
        .unwrap_or_else(|| panic!("no grid row: {html}"));
    assert!(
        row.contains("<td class=\"st\">plaintext</td>"),
        "{}",
        &row[..row.len().min(300)]
    );
    assert!(html.contains("title=\"dev/alerts\""), "unconsumed card");

    let out = run_in(dir.path(), &["audit", "hr.yaml"], b"");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "1 Secret(s) defined in the input are consumed by none of its workloads: dev/alerts"
        ),
        "{stdout}"
    );
    let report = json(&run_in(
        dir.path(),
        &["audit", "hr.yaml", "--format", "json"],
        b"",
    ));
    assert_eq!(
        report["unconsumedSecretNames"],
        serde_json::json!(["dev/alerts"])
    );
    let rules: Vec<(&str, &str)> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule"].as_str().unwrap(),
                f["secret"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(rules.contains(&("SK006", "private-dags-repo")), "{rules:?}");
    assert!(rules.contains(&("SK006", "alerts")), "{rules:?}");
    assert!(!report.to_string().contains("CANARY"));
}
