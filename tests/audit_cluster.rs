//! `sealkey audit --cluster` against kmock's Kubernetes emulator (PyPI `kmock`, started on
//! 127.0.0.1 by this test, with `limit`/`continue` pagination added by
//! tests/support/kube_standin.py, `--list-log`): 10,000 Pods plus other workloads, listed in pages of at
//! most 500, give exactly the findings that file mode gives on the same objects, and no Secret
//! value reaches the output.

mod support;

use std::process::Command;
use std::time::Instant;
use support::audit_corpus as corpus;
use support::kmock::Kmock;

/// The fields that must agree between file and cluster mode (file mode adds file and line).
fn comparable(report: &serde_json::Value) -> Vec<String> {
    let mut v: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let fields = [
                "rule",
                "severity",
                "message",
                "namespace",
                "kind",
                "name",
                "container",
                "env",
                "secret",
                "key",
            ];
            fields.map(|k| f[k].to_string()).join(" | ")
        })
        .collect();
    v.sort();
    v
}

#[test]
fn cluster_findings_equal_file_findings_on_10000_pods_listed_in_pages_of_500() {
    let dir = tempfile::tempdir().unwrap();
    let mut objects = corpus::cluster_objects(10_000, 600, 21);
    // Secrets with canary values: listed for the summary, never read into output.
    const CANARY: &str = "sealkey-canary-secret-value";
    use base64::Engine as _;
    let canary_b64 = base64::engine::general_purpose::STANDARD.encode(CANARY);
    for i in 0..40 {
        objects.push(serde_json::json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": format!("shared-secret-{i}"), "namespace": format!("team-{}", i % 7)},
            "data": {"password": canary_b64}, "stringData": {"token": CANARY}}));
    }
    let workloads: Vec<&serde_json::Value> =
        objects.iter().filter(|o| o["kind"] != "Secret").collect();

    // File mode: the same workloads, 100 per file.
    let files = dir.path().join("files");
    std::fs::create_dir(&files).unwrap();
    for (i, chunk) in workloads.chunks(100).enumerate() {
        let docs: Vec<serde_json::Value> = chunk.iter().map(|v| (*v).clone()).collect();
        std::fs::write(
            files.join(format!("w{i:04}.yaml")),
            &*sealkey::yaml::to_yaml_stream(&docs),
        )
        .unwrap();
    }
    let file_run = Command::new(support::sealkey_bin())
        .args(["audit", "--format", "json", "--fail-on", "none"])
        .arg(&files)
        .output()
        .unwrap();
    assert_eq!(file_run.status.code(), Some(0));
    let file_report: serde_json::Value = serde_json::from_slice(&file_run.stdout).unwrap();

    // Cluster mode against kmock.
    let objects_path = dir.path().join("objects.json");
    std::fs::write(&objects_path, serde_json::to_vec(&objects).unwrap()).unwrap();
    let log = dir.path().join("requests.jsonl");
    let server = Kmock::start_paginated(&objects_path, &log);
    let port = server.port;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kmock\n  cluster: {{server: \"http://127.0.0.1:{port}\"}}\ncontexts:\n- name: kmock\n  context: {{cluster: kmock, user: test}}\ncurrent-context: kmock\nusers:\n- name: test\n  user: {{token: not-a-real-token}}\n"
        ),
    )
    .unwrap();
    let started = Instant::now();
    let cluster_run = Command::new(support::sealkey_bin())
        .env("KUBECONFIG", &kubeconfig)
        .args([
            "audit",
            "--cluster",
            "--format",
            "json",
            "--fail-on",
            "none",
        ])
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(
        cluster_run.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&cluster_run.stderr)
    );
    let stdout = String::from_utf8(cluster_run.stdout.clone()).unwrap();
    assert!(
        !stdout.contains(CANARY) && !stdout.contains(&canary_b64),
        "a Secret value reached the output"
    );
    let cluster_report: serde_json::Value = serde_json::from_str(&stdout).unwrap();

    let from_files = comparable(&file_report);
    let from_cluster = comparable(&cluster_report);
    assert!(from_files.len() > 10_000, "{} findings", from_files.len());
    assert_eq!(from_files.len(), from_cluster.len());
    let first_diff = from_files.iter().zip(&from_cluster).find(|(a, b)| a != b);
    assert!(
        first_diff.is_none(),
        "file and cluster findings differ: {first_diff:#?}"
    );
    assert_eq!(cluster_report["stats"]["objects"], workloads.len());

    // Every list request was paginated (limit <= 500), and the Pods took 20+ pages via continue.
    let requests: Vec<serde_json::Value> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(requests.iter().all(|r| r["limit"]
        .as_str()
        .and_then(|l| l.parse::<u32>().ok())
        .is_some_and(|l| l <= 500)));
    let pod_pages = requests
        .iter()
        .filter(|r| r["path"] == "/api/v1/pods")
        .count();
    assert_eq!(pod_pages, 20, "10,000 Pods in pages of 500");
    assert!(requests.iter().any(|r| r["path"] == "/api/v1/secrets"));

    // The summary knows the Secrets' types from the listing.
    let summary = cluster_report["summary"].as_array().unwrap();
    assert!(summary.iter().any(|r| r["storage"] == "cluster"
        && r["type"] == "Opaque"
        && r["volume"].as_u64() > Some(0)));
    eprintln!(
        "{} findings equal in both modes; cluster audit of {} objects took {elapsed:?}",
        from_files.len(),
        workloads.len()
    );
}

#[test]
fn skip_secrets_never_lists_secrets_and_keeps_every_workload_finding() {
    let dir = tempfile::tempdir().unwrap();
    let mut objects = corpus::cluster_objects(200, 60, 7);
    objects.push(
        serde_json::json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "shared", "namespace": "team-0"}, "data": {"password": "cGFzcw=="}}),
    );
    let objects_path = dir.path().join("objects.json");
    std::fs::write(&objects_path, serde_json::to_vec(&objects).unwrap()).unwrap();
    let log = dir.path().join("requests.jsonl");
    let server = Kmock::start_paginated(&objects_path, &log);
    let port = server.port;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kmock\n  cluster: {{server: \"http://127.0.0.1:{port}\"}}\ncontexts:\n- name: kmock\n  context: {{cluster: kmock, user: test}}\ncurrent-context: kmock\nusers:\n- name: test\n  user: {{token: not-a-real-token}}\n"
        ),
    )
    .unwrap();
    let audit = |extra: &[&str]| {
        let out = Command::new(support::sealkey_bin())
            .env("KUBECONFIG", &kubeconfig)
            .args([
                "audit",
                "--cluster",
                "--format",
                "json",
                "--fail-on",
                "none",
            ])
            .args(extra)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let full = audit(&[]);
    assert!(std::fs::read_to_string(&log)
        .unwrap()
        .contains("/api/v1/secrets"));
    std::fs::write(&log, "").unwrap();
    let skipped = audit(&["--skip-secrets"]);
    let requests = std::fs::read_to_string(&log).unwrap();
    assert!(requests.contains("/api/v1/pods"), "{requests}");
    assert!(
        !requests.contains("secrets"),
        "--skip-secrets still listed Secrets: {requests}"
    );
    assert!(!comparable(&full).is_empty());
    assert_eq!(comparable(&full), comparable(&skipped));
}

/// Issue 21.11: `sealkey create --seal none | kubectl apply -f -` leaves the private key in
/// clear in `kubectl.kubernetes.io/last-applied-configuration`, and after a rotation the old key
/// stays there. `audit --cluster` reports it (SK007, naming the annotation and data key), and the
/// report never carries the key.
#[test]
fn a_private_key_in_a_secrets_last_applied_annotation_is_reported_without_its_value() {
    use base64::Engine;
    let dir = tempfile::tempdir().unwrap();
    let (key_path, _) = support::ssh_keypair(dir.path(), "ed25519", "last-applied.TEST-ONLY");
    let pem = std::fs::read_to_string(&key_path).unwrap();
    // A run of the key's body that only the key holds.
    let body = pem.lines().nth(2).unwrap().to_string();
    let b64 = base64::engine::general_purpose::STANDARD.encode(pem);
    let applied = serde_json::json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "airflow-ssh-secret", "namespace": "airflow"},
        "data": {"gitSshKey": b64}});
    let objects = vec![
        serde_json::json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "airflow-ssh-secret", "namespace": "airflow",
                "annotations": {"kubectl.kubernetes.io/last-applied-configuration": applied.to_string()}},
            "data": {"gitSshKey": b64}}),
        // Created with `kubectl create`: no copy, no finding.
        serde_json::json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "clean", "namespace": "airflow"},
            "data": {"gitSshKey": b64}}),
    ];
    let objects_path = dir.path().join("objects.json");
    std::fs::write(&objects_path, serde_json::to_vec(&objects).unwrap()).unwrap();
    let log = dir.path().join("requests.jsonl");
    let server = Kmock::start_paginated(&objects_path, &log);
    let port = server.port;
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kmock\n  cluster: {{server: \"http://127.0.0.1:{port}\"}}\ncontexts:\n- name: kmock\n  context: {{cluster: kmock, user: test}}\ncurrent-context: kmock\nusers:\n- name: test\n  user: {{token: not-a-real-token}}\n"
        ),
    )
    .unwrap();
    let out = Command::new(support::sealkey_bin())
        .env("KUBECONFIG", &kubeconfig)
        .args([
            "audit",
            "--cluster",
            "--format",
            "json",
            "--fail-on",
            "none",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!stdout.contains(&body) && !stdout.contains(&b64[..40]));
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let hits: Vec<&serde_json::Value> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "SK007")
        .collect();
    assert_eq!(hits.len(), 1, "{hits:#?}");
    assert_eq!(hits[0]["name"], "airflow-ssh-secret");
    let key = hits[0]["key"].as_str().unwrap();
    assert!(
        key.contains("last-applied-configuration") && key.contains("gitSshKey"),
        "{key}"
    );
}
