//! `sealkey audit --cluster` against the real kube-apiserver + etcd (tests/support/real_cluster.rs):
//! thousands of Pods plus other workloads, created as objects (nothing runs them) and listed by
//! sealkey in pages of at most 500 following the server's own `continue` tokens, give exactly the
//! findings that file mode gives on the same objects, and no Secret value reaches the output. The
//! server's audit log shows each list request sealkey made.

mod support;

use std::process::Command;
use std::time::Instant;
use support::audit_corpus as corpus;
use support::real_cluster::RealCluster;

/// Makes the corpus objects ones the real server accepts: a Job's (and a CronJob's) pod template
/// must say `restartPolicy: Never` or `OnFailure` (the API server refuses the default, `Always`).
fn valid_for_the_server(objects: &mut [serde_json::Value]) {
    for o in objects.iter_mut() {
        let template = match o["kind"].as_str() {
            Some("Job") => &mut o["spec"]["template"]["spec"],
            Some("CronJob") => &mut o["spec"]["jobTemplate"]["spec"]["template"]["spec"],
            _ => continue,
        };
        if template.get("restartPolicy").is_none() {
            template["restartPolicy"] = "Never".into();
        }
    }
}

/// Creates `objects` on the server with `kubectl create`, in lists of up to 250 objects of one
/// namespace (kubectl refuses a list whose objects name another namespace than `-n`), four
/// lists at a time.
fn create_in_chunks(cluster: &RealCluster, objects: &[serde_json::Value]) {
    let mut by_ns: std::collections::BTreeMap<&str, Vec<serde_json::Value>> = Default::default();
    for o in objects {
        let ns = o["metadata"]["namespace"].as_str().expect("a namespace");
        by_ns.entry(ns).or_default().push(o.clone());
    }
    let chunks: Vec<(&str, &[serde_json::Value])> = by_ns
        .iter()
        .flat_map(|(ns, objs)| objs.chunks(250).map(move |c| (*ns, c)))
        .collect();
    for group in chunks.chunks(4) {
        std::thread::scope(|s| {
            for (ns, chunk) in group {
                s.spawn(|| cluster.create(ns, chunk));
            }
        });
    }
}

/// The list requests in `calls` for `path` (no query): each one's query parameters.
fn lists_of(calls: &[(String, String, u16)], path: &str) -> Vec<Vec<(String, String)>> {
    calls
        .iter()
        .filter(|(verb, uri, _)| verb == "list" && uri.split('?').next() == Some(path))
        .map(|(_, uri, code)| {
            assert_eq!(*code, 200, "{uri}");
            uri.split_once('?')
                .map(|(_, q)| q)
                .unwrap_or("")
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (k.to_string(), v.to_string())
                })
                .collect()
        })
        .collect()
}

fn param<'a>(query: &'a [(String, String)], name: &str) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

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

/// Pods enough for three pages at the audit's default page size (500).
const PODS: usize = 1_100;

#[test]
#[ignore = "needs the judges (scripts/install-test-deps)"]
fn cluster_findings_equal_file_findings_on_1100_pods_listed_in_pages_of_500() {
    // A control plane of its own: the audit lists every namespace, and a shared one would hold
    // the other tests' objects too.
    let cluster = RealCluster::start();
    let dir = tempfile::tempdir().unwrap();
    let mut objects = corpus::cluster_objects(PODS, 300, 21);
    valid_for_the_server(&mut objects);
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

    // Cluster mode: the objects created on the real server (the test's own step: without a
    // controller manager nothing runs them, which the audit does not need).
    for i in 0..7 {
        cluster.kubectl_ok(&["create", "namespace", &format!("team-{i}")]);
    }
    let created = Instant::now();
    create_in_chunks(&cluster, &objects);
    eprintln!(
        "created {} objects in {:?}",
        objects.len(),
        created.elapsed()
    );
    let pods_listed = cluster.kubectl_ok(&["get", "pods", "-A", "--no-headers", "-o", "name"]);
    assert_eq!(pods_listed.lines().count(), PODS);
    let before = cluster.calls_by("admin").len();
    let started = Instant::now();
    let cluster_run = Command::new(support::sealkey_bin())
        .env("KUBECONFIG", cluster.kubeconfig())
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
    assert!(from_files.len() > PODS, "{} findings", from_files.len());
    assert_eq!(from_files.len(), from_cluster.len());
    let first_diff = from_files.iter().zip(&from_cluster).find(|(a, b)| a != b);
    assert!(
        first_diff.is_none(),
        "file and cluster findings differ: {first_diff:#?}"
    );
    assert_eq!(cluster_report["stats"]["objects"], workloads.len());

    // The server's audit log: every list request was paginated (limit <= 500); the Pods took
    // three pages, each after the first carrying the continue token the server handed out (each
    // token used once), and the Secrets were listed.
    let calls = cluster.calls_by("admin").split_off(before);
    let all_lists: Vec<&(String, String, u16)> =
        calls.iter().filter(|(verb, _, _)| verb == "list").collect();
    assert!(!all_lists.is_empty());
    for (_, uri, _) in &all_lists {
        let limit = uri
            .split(['?', '&'])
            .find_map(|p| p.strip_prefix("limit="))
            .and_then(|l| l.parse::<u32>().ok());
        assert!(limit.is_some_and(|l| l <= 500), "unpaginated: {uri}");
    }
    let pod_pages = lists_of(&calls, "/api/v1/pods");
    assert_eq!(pod_pages.len(), PODS.div_ceil(500), "{pod_pages:?}");
    assert_eq!(param(&pod_pages[0], "continue"), None);
    let mut tokens = std::collections::BTreeSet::new();
    for page in &pod_pages[1..] {
        let token = param(page, "continue").expect("a later page carries continue");
        assert!(
            tokens.insert(token.to_string()),
            "continue {token} used twice"
        );
    }
    assert!(!lists_of(&calls, "/api/v1/secrets").is_empty());

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
#[ignore = "needs the judges (scripts/install-test-deps)"]
fn skip_secrets_never_lists_secrets_and_keeps_every_workload_finding() {
    let cluster = RealCluster::shared();
    let ns = cluster.namespace("skip");
    let mut objects = corpus::cluster_objects(200, 60, 7);
    valid_for_the_server(&mut objects);
    objects.push(
        serde_json::json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "shared"}, "data": {"password": "cGFzcw=="}}),
    );
    // All in this test's namespace (the cluster is shared): the audit lists only it.
    for o in &mut objects {
        o["metadata"]["namespace"] = ns.clone().into();
    }
    create_in_chunks(cluster, &objects);
    let kubeconfig = cluster.kubeconfig_in(&ns);
    let in_ns = |calls: Vec<(String, String, u16)>| -> Vec<String> {
        calls
            .into_iter()
            .filter(|(verb, uri, _)| {
                verb == "list"
                    && ["/api/v1", "/apis/apps/v1", "/apis/batch/v1"]
                        .iter()
                        .any(|g| uri.starts_with(&format!("{g}/namespaces/{ns}/")))
            })
            .map(|(_, uri, _)| uri)
            .collect()
    };
    let audit = |extra: &[&str]| {
        let before = cluster.calls_by("admin").len();
        let out = Command::new(support::sealkey_bin())
            .env("KUBECONFIG", &kubeconfig)
            .args([
                "audit",
                "--cluster",
                "-n",
                &ns,
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
        let report = serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap();
        (report, in_ns(cluster.calls_by("admin").split_off(before)))
    };
    let (full, requests) = audit(&[]);
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with(&format!("/api/v1/namespaces/{ns}/secrets?"))),
        "{requests:?}"
    );
    let (skipped, requests) = audit(&["--skip-secrets"]);
    assert!(
        requests
            .iter()
            .any(|r| r.starts_with(&format!("/api/v1/namespaces/{ns}/pods?"))),
        "{requests:?}"
    );
    assert!(
        !requests.iter().any(|r| r.contains("/secrets")),
        "--skip-secrets still listed Secrets: {requests:?}"
    );
    assert!(!comparable(&full).is_empty());
    assert_eq!(comparable(&full), comparable(&skipped));
}

/// `sealkey create --seal none | kubectl apply -f -` leaves the private key in
/// clear in `kubectl.kubernetes.io/last-applied-configuration`, and after a rotation the old key
/// stays there. `audit --cluster` reports it (SK007, naming the annotation and data key), and the
/// report never carries the key.
#[test]
#[ignore = "needs the judges (scripts/install-test-deps)"]
fn a_private_key_in_a_secrets_last_applied_annotation_is_reported_without_its_value() {
    use base64::Engine;
    let cluster = RealCluster::shared();
    let ns = cluster.namespace("last-applied");
    let dir = tempfile::tempdir().unwrap();
    let (key_path, _) = support::ssh_keypair(dir.path(), "ed25519", "last-applied.TEST-ONLY");
    let pem = std::fs::read_to_string(&key_path).unwrap();
    // A run of the key's body that only the key holds.
    let body = pem.lines().nth(2).unwrap().to_string();
    let b64 = base64::engine::general_purpose::STANDARD.encode(pem);
    // The real kubectl writes the copy: a client-side `kubectl apply` of the plain Secret.
    let applied = serde_json::json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "airflow-ssh-secret", "namespace": ns},
        "data": {"gitSshKey": b64}});
    let out = cluster.kubectl_with(
        &cluster.kubeconfig(),
        &["apply", "-f", "-"],
        Some(applied.to_string().as_bytes()),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let live = cluster.secret(&ns, "airflow-ssh-secret").unwrap();
    assert!(
        live["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"]
            .as_str()
            .is_some_and(|a| a.contains(&b64))
    );
    // Created with `kubectl create`: no copy, no finding.
    cluster.create(
        &ns,
        &[
            serde_json::json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": "clean"},
            "data": {"gitSshKey": b64}}),
        ],
    );
    let kubeconfig = cluster.kubeconfig_in(&ns);
    let out = Command::new(support::sealkey_bin())
        .env("KUBECONFIG", &kubeconfig)
        .args([
            "audit",
            "--cluster",
            "-n",
            &ns,
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
