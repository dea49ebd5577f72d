//! `sealkey create --apply` against kmock's stateful Kubernetes emulator on 127.0.0.1: the Secret
//! lands in the cluster with a key ssh-keygen accepts, an existing keyed Secret is refused, and a
//! cluster that cannot be reached exits 3 with nothing written. State is read back with curl.

mod support;

use serde_json::json;
use support::kmock::Kmock;
use support::*;

fn sealkey(args: &[&str]) -> std::process::Output {
    run(args, b"")
}

#[test]
fn create_apply_writes_a_secret_whose_key_ssh_keygen_reads_and_prints_nothing_secret() {
    let k = Kmock::start(&[]);
    let kc = k.kubeconfig("dev");
    let out = sealkey(&[
        "create",
        "--repo",
        "acme/dags",
        "--namespace",
        "dev",
        "--for",
        "airflow-chart",
        "--apply",
        "--kubeconfig",
        kc.to_str().unwrap(),
    ]);
    ok(&out);
    assert!(out.stdout.is_empty(), "--apply prints no manifest");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("PRIVATE KEY"), "{stderr}");
    let public = printed_public_key(&out.stderr);

    let secret = k
        .secret("dev", "airflow-ssh-secret")
        .expect("Secret created");
    let dir = tempfile::tempdir().unwrap();
    let pem = b64d(&secret["data"]["gitSshKey"]);
    assert_eq!(bare(&ssh_public_of(dir.path(), &pem)), bare(&public));
    assert_eq!(
        secret["metadata"]["labels"]["app.kubernetes.io/managed-by"],
        "sealkey"
    );
    let fp = String::from_utf8_lossy(&tool("ssh-keygen", &["-l", "-f", "-"], public.as_bytes()))
        .to_string();
    let annotated = secret["metadata"]["annotations"]["sealkey.io/fingerprint"]
        .as_str()
        .unwrap();
    assert!(
        fp.contains(annotated),
        "ssh-keygen -l says {fp}, annotation {annotated}"
    );
    assert_eq!(
        secret["metadata"]["annotations"]["sealkey.io/for"],
        "airflow-chart"
    );
}

#[test]
fn create_apply_for_git_sync_writes_key_and_known_hosts() {
    let k = Kmock::start(&[]);
    let kc = k.kubeconfig("dev");
    let out = sealkey(&[
        "create",
        "--repo",
        "acme/dags",
        "--namespace",
        "dev",
        "--for",
        "git-sync",
        "--apply",
        "--kubeconfig",
        kc.to_str().unwrap(),
    ]);
    ok(&out);
    let secret = k.secret("dev", "git-creds").expect("Secret created");
    let kh = String::from_utf8(b64d(&secret["data"]["known_hosts"])).unwrap();
    assert!(kh.starts_with("github.com ssh-"), "{kh}");
    let dir = tempfile::tempdir().unwrap();
    let pem = b64d(&secret["data"]["ssh"]);
    assert_eq!(
        bare(&ssh_public_of(dir.path(), &pem)),
        bare(&printed_public_key(&out.stderr))
    );
}

#[test]
fn create_apply_refuses_a_secret_that_already_holds_a_key_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (key_path, _) = ssh_keypair(dir.path(), "ed25519", "existing.TEST-ONLY");
    let pem = std::fs::read(&key_path).unwrap();
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(&pem);
    let k = Kmock::start(&[json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "airflow-ssh-secret", "namespace": "dev", "labels": {"team": "data"}},
        "data": {"gitSshKey": b64},
    })]);
    let kc = k.kubeconfig("dev");
    let out = sealkey(&[
        "create",
        "--repo",
        "acme/dags",
        "--namespace",
        "dev",
        "--apply",
        "--kubeconfig",
        kc.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("already exists") && stderr.contains("sealkey rotate"),
        "{stderr}"
    );
    let secret = k.secret("dev", "airflow-ssh-secret").unwrap();
    assert_eq!(secret["data"]["gitSshKey"], b64, "the Secret was changed");
}

#[test]
fn create_apply_without_cluster_access_exits_3_and_writes_nothing() {
    let k = Kmock::start(&[]);
    // A port nobody listens on: bind and drop.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kc = k.kubeconfig_for(&format!("http://127.0.0.1:{port}"), "dev");
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(
        dir.path(),
        &[
            "create",
            "--repo",
            "acme/dags",
            "--namespace",
            "dev",
            "--apply",
            "--kubeconfig",
            kc.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("Kubernetes API") && stderr.contains("reachable"),
        "{stderr}"
    );
    assert!(!stderr.contains("PRIVATE KEY"));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        0,
        "a file was written"
    );
}

#[test]
fn create_apply_with_an_unreadable_kubeconfig_exits_2() {
    let out = sealkey(&[
        "create",
        "--repo",
        "acme/dags",
        "--apply",
        "--kubeconfig",
        "/nonexistent/kubeconfig",
    ]);
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("--kubeconfig /nonexistent/kubeconfig"));
}

#[test]
fn context_flag_picks_the_context_like_kubectl_and_its_namespace_is_not_forced() {
    let k = Kmock::start(&[]);
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kc = k.dir.path().join("two-contexts");
    std::fs::write(
        &kc,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n\
             - name: dead\n  cluster:\n    server: http://127.0.0.1:{dead}\n\
             - name: live\n  cluster:\n    server: {}\n\
             users:\n- name: u\n  user:\n    token: test-token-not-secret\n\
             contexts:\n- name: dead\n  context: {{cluster: dead, user: u}}\n\
             - name: live\n  context: {{cluster: live, user: u, namespace: ops}}\n\
             current-context: dead\n",
            k.url()
        ),
    )
    .unwrap();
    let kc = kc.to_str().unwrap();
    let base = [
        "create",
        "--repo",
        "acme/dags",
        "--namespace",
        "dev",
        "--apply",
        "--kubeconfig",
        kc,
    ];
    let current = sealkey(&base);
    assert_eq!(
        current.status.code(),
        Some(3),
        "the current context points nowhere"
    );
    let out = sealkey(&[&base[..], &["--context", "live"]].concat());
    ok(&out);
    assert!(k.secret("dev", "airflow-ssh-secret").is_some());
    let missing = sealkey(&[&base[..], &["--context", "nope"]].concat());
    assert_eq!(
        missing.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--context nope"));
}
