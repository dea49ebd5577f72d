//! What people and scripts see: JSON output, quiet mode, help text, and the shipped examples.

mod support;

use support::*;

#[test]
fn keygen_json_has_public_key_fingerprint_and_sealed_private_key() {
    let dir = tempfile::tempdir().unwrap();
    let (age_id, recipient) = age_keypair(dir.path());
    let out = run_in(
        dir.path(),
        &[
            "keygen",
            "--key-type",
            "ecdsa-p256",
            "--repo",
            "acme/dags",
            "--seal",
            "age",
            "--seal-to",
            &recipient,
            "--output",
            "json",
        ],
        b"",
    );
    let v: serde_json::Value = serde_json::from_slice(&ok(&out)).unwrap();
    assert_eq!(v["key_type"], "ecdsa-p256");
    assert_eq!(v["comment"], "sealkey:acme/dags");
    assert!(v["public_key"]
        .as_str()
        .unwrap()
        .starts_with("ecdsa-sha2-nistp256 "));
    assert!(v["fingerprint"].as_str().unwrap().starts_with("SHA256:"));
    let pem = tool(
        "age",
        &["-d", "-i", age_id.to_str().unwrap()],
        v["sealed_private_key"].as_str().unwrap().as_bytes(),
    );
    assert_eq!(
        bare(&ssh_public_of(dir.path(), &pem)),
        bare(v["public_key"].as_str().unwrap())
    );
    // Without --seal-to, only the public half exists anywhere.
    let v: serde_json::Value =
        serde_json::from_slice(&ok(&run(&["keygen", "--output", "json"], b""))).unwrap();
    assert!(v.get("sealed_private_key").is_none());
}

#[test]
fn quiet_create_prints_data_and_the_key_to_register_only() {
    let out = run(
        &[
            "-q",
            "create",
            "--repo",
            "acme/dags",
            "--seal",
            "age",
            "--seal-to",
            "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
        ],
        b"",
    );
    assert!(ok(&out).starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"));
    // The public key and fingerprint are the result (what to register), not chatter: -q keeps
    // them and drops everything else.
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 2, "{stderr}");
    assert!(
        lines[0].starts_with("public key:  ssh-ed25519 "),
        "{stderr}"
    );
    assert!(lines[1].starts_with("fingerprint: SHA256:"), "{stderr}");
}

#[test]
fn create_out_writes_a_0600_file_and_says_so() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(
        dir.path(),
        &[
            "create",
            "--repo",
            "acme/dags",
            "--seal",
            "age",
            "--seal-to",
            "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p",
            "--out",
            "s.age",
        ],
        b"",
    );
    assert!(ok(&out).is_empty(), "nothing on stdout with --out");
    let meta = std::fs::metadata(dir.path().join("s.age")).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrote s.age (mode 0600)"));
}

#[test]
fn create_help_documents_every_consumer_document_and_seal_flag() {
    let help = String::from_utf8(ok(&run(&["create", "--help"], b""))).unwrap();
    // Each as a listed possible value (`- NAME:`), not as a bare substring: `age` alone is in
    // "Usage", `--seal` in `--seal-to`.
    for value in [
        "airflow-chart",
        "git-sync",
        "flux",
        "argocd",
        "airflow-git-bundle",
        "generic",
        "extra-secrets",
        "age",
        "sops",
    ] {
        assert!(
            help.contains(&format!("- {value}:")),
            "create --help does not list the value {value}"
        );
    }
    for flag in ["--seal", "--seal-to", "--known-hosts"] {
        assert!(
            help.contains(&format!("{flag} <")),
            "create --help does not document {flag}"
        );
    }
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(readme.contains("scripts/test"));
    assert!(readme.contains("--seal-to examples/age-recipients.txt"));
}

/// The README's exit-code table: (code, meaning) rows after the line saying "Exit codes:".
fn readme_exit_codes() -> Vec<(u8, String)> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let after = &readme[readme
        .find("Exit codes:")
        .expect("README has an exit-code table")..];
    after
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .filter_map(|row| {
            let cells: Vec<&str> = row.trim_matches('|').split('|').map(str::trim).collect();
            Some((cells[0].parse().ok()?, cells[1].to_string()))
        })
        .collect()
}

#[test]
fn readme_exit_code_table_matches_error_exit_and_every_code_is_produced() {
    use sealkey::error::exit;
    let table = readme_exit_codes();
    // Every constant in `sealkey::error::exit`, each with a word its README row must use.
    let constants = [
        (exit::OK, "ok"),
        (exit::FINDINGS, "found problems"),
        (exit::INPUT, "input error"),
        (exit::REMOTE, "remote"),
    ];
    assert_eq!(
        table.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
        constants.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
        "README exit-code rows {table:?} differ from sealkey::error::exit"
    );
    for ((code, meaning), (_, word)) in table.iter().zip(constants) {
        assert!(
            meaning.contains(word),
            "README row for exit {code} ({meaning:?}) does not say {word:?}"
        );
    }

    // Each documented code is what some command really exits with.
    let dir = tempfile::tempdir().unwrap();
    let code = |out: &std::process::Output| out.status.code().expect("exited, not killed");
    let ok_run = run_in(dir.path(), &["keygen"], b"");
    let plaintext_secret =
        b"apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: CANARY}\n";
    let findings = run_in(dir.path(), &["audit", "-"], plaintext_secret);
    let usage = run_in(dir.path(), &["create"], b"");
    // A GitHub that refuses every request (401) on 127.0.0.1: no retry, exit 3 at once.
    let port = support::fake_github::serve(|_| {
        Some(support::fake_github::Response::json(
            401,
            serde_json::json!({"message": "Bad credentials"}),
        ))
    });
    let remote = run_cmd(
        {
            let mut c = sealkey();
            c.args([
                "known-hosts",
                "--api-url",
                &format!("http://127.0.0.1:{port}"),
            ]);
            c
        },
        None,
    );
    let produced = [
        (code(&ok_run), "keygen"),
        (code(&findings), "audit of a plaintext Secret"),
        (code(&usage), "create without --repo"),
        (code(&remote), "known-hosts against a GitHub answering 401"),
    ];
    for ((documented, _), (got, what)) in table.iter().zip(produced) {
        assert_eq!(
            got, *documented as i32,
            "{what} exited {got}, README row says {documented}"
        );
    }
}

#[test]
fn readme_example_runs_offline_and_prints_sealed_output() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = run_in(
        root,
        &[
            "create",
            "--repo",
            "acme/dags",
            "--namespace",
            "dev",
            "--for",
            "airflow-chart",
            "--emit",
            "helmrelease",
            "--seal",
            "age",
            "--seal-to",
            "examples/age-recipients.txt",
        ],
        b"",
    );
    let sealed = String::from_utf8(ok(&out)).unwrap();
    assert!(
        sealed.starts_with("-----BEGIN AGE ENCRYPTED FILE-----\n")
            && sealed.ends_with("-----END AGE ENCRYPTED FILE-----\n")
    );
    // The shipped recipients file holds a public recipient and no identity.
    let recipients = std::fs::read_to_string(root.join("examples/age-recipients.txt")).unwrap();
    assert!(recipients.lines().any(|l| l.starts_with("age1")));
    assert!(!recipients.contains("AGE-SECRET-KEY"));
}

#[test]
fn git_sync_deploy_example_reads_the_secret_sealkey_emits() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    // kustomize (as `kubectl apply -k` would) renders it; YAML 1.1 octal 0440 becomes 288.
    let text = tool(
        "kubectl",
        &[
            "kustomize",
            root.join("deploy/examples/git-sync").to_str().unwrap(),
        ],
        b"",
    );
    let docs = yaml_docs(&text);
    let d: k8s_openapi::api::apps::v1::Deployment =
        serde_json::from_value(docs[0].clone()).unwrap();
    let pod = d.spec.unwrap().template.spec.unwrap();
    let secret = pod
        .volumes
        .unwrap()
        .into_iter()
        .find_map(|v| v.secret)
        .unwrap();
    assert_eq!(secret.default_mode, Some(0o440));
    let emitted = yaml_docs(&ok(&run(
        &[
            "create",
            "--repo",
            "acme/dags",
            "--for",
            "git-sync",
            "--seal",
            "none",
        ],
        b"",
    )));
    assert_eq!(
        secret.secret_name.as_deref(),
        emitted[0]["metadata"]["name"].as_str()
    );
    let env: Vec<(String, String)> = pod.containers[0]
        .env
        .clone()
        .unwrap()
        .into_iter()
        .map(|e| (e.name, e.value.unwrap_or_default()))
        .collect();
    assert!(env.contains(&("GITSYNC_SSH_KNOWN_HOSTS".into(), "true".into())));
    assert!(
        emitted[0]["data"].get("ssh").is_some() && emitted[0]["data"].get("known_hosts").is_some()
    );
}

#[test]
fn sealkeys_own_sealed_outputs_pass_its_audit_and_plaintext_ones_do_not() {
    let dir = tempfile::tempdir().unwrap();
    let (_, recipient) = age_keypair(dir.path());
    // The git-sync HelmReleases get SK019 (info: still on git-sync, which the chart plans to
    // drop); with --dag-bundle they pass with every rule on.
    for (emit, bundle, ignore) in [
        ("secret", false, "SK009"),
        ("helmrelease", false, "SK019"),
        ("extra-secrets", false, "SK019"),
        ("helmrelease", true, "SK009"),
        ("extra-secrets", true, "SK009"),
    ] {
        let mut args = vec![
            "create",
            "--repo",
            "acme/dags",
            "-n",
            "dev",
            "--emit",
            emit,
            "--seal",
            "sops",
            "--seal-to",
            &recipient,
        ];
        if bundle {
            args.push("--dag-bundle");
        }
        let sealed = ok(&run_in(dir.path(), &args, b""));
        let audit = run_in(
            dir.path(),
            &[
                "audit",
                "--format",
                "json",
                "--fail-on",
                "info",
                "--ignore",
                ignore,
                "-",
            ],
            &sealed,
        );
        assert_eq!(
            audit.status.code(),
            Some(0),
            "--emit {emit} (bundle {bundle}): {}",
            String::from_utf8_lossy(&audit.stdout)
        );
    }
    let plain = ok(&run_in(
        dir.path(),
        &[
            "create",
            "--repo",
            "acme/dags",
            "-n",
            "dev",
            "--for",
            "git-sync",
            "--emit",
            "mount",
            "--fs-group",
            "65533",
            "--seal",
            "none",
        ],
        b"",
    ));
    let audit = run_in(
        dir.path(),
        &["audit", "--format", "json", "--fail-on", "warning", "-"],
        &plain,
    );
    assert_eq!(
        audit.status.code(),
        Some(1),
        "an unsealed key must be flagged"
    );
    let report = String::from_utf8_lossy(&audit.stdout);
    assert!(
        report.contains("SK006") && report.contains("SK007"),
        "{report}"
    );
    assert!(
        !report.contains("SK003") && !report.contains("SK005") && !report.contains("SK009"),
        "the mount patch itself is clean: {report}"
    );
}

#[test]
fn argocd_output_for_github_com_leaves_argo_cds_default_known_hosts_alone() {
    // Argo CD's own default list (tests/fixtures/README-argocd-known-hosts.md) already holds
    // every github.com key sealkey pins: emitting the ConfigMap would only drop GitLab & co.
    let upstream = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/argocd-ssh-known-hosts-cm.upstream.yaml"
    ))
    .unwrap();
    let cm = &yaml_docs(upstream.as_bytes())[0];
    let argo_lines: Vec<&str> = cm["data"]["ssh_known_hosts"]
        .as_str()
        .unwrap()
        .lines()
        .collect();
    for pinned in sealkey::known_hosts::GITHUB_COM_PINNED {
        assert!(
            argo_lines.contains(pinned),
            "Argo CD's default list lacks {pinned}"
        );
    }
    let out = run(
        &[
            "create",
            "--repo",
            "acme/dags",
            "--for",
            "argocd",
            "--seal",
            "none",
        ],
        b"",
    );
    let docs = yaml_docs(&ok(&out));
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["Secret"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("no ConfigMap was emitted"));

    // Another host (GitHub Enterprise Server): still no ConfigMap (issue 21 item 9: one would
    // replace Argo CD's whole list); stderr says how to add the host's keys instead.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("known_hosts"),
        "ghe.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n",
    )
    .unwrap();
    let out = run_in(
        dir.path(),
        &[
            "create",
            "--repo",
            "acme/dags",
            "--for",
            "argocd",
            "--seal",
            "none",
            "--git-host",
            "ghe.example.com",
            "--known-hosts",
            "known_hosts",
        ],
        b"",
    );
    let docs = yaml_docs(&ok(&out));
    assert!(docs.iter().all(|d| d["kind"] != "ConfigMap"), "{docs:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("argocd cert add-ssh"));
}
