//! SealedSecrets opened by an unsealer we did not write (PyPI `kubesealpy`, driven by
//! tests/sealed-secrets-py/unseal.py) with the private key of a certificate made at test time by
//! `openssl req`; bad certificates and URLs refused with the right exit code.

use serde_json::{json, Value};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

mod support;

use support::root;

use support::run;

/// One RSA-4096 controller key pair for the whole test binary, made with `openssl req` (the
/// controller's own key is RSA 4096).
fn controller() -> &'static (PathBuf, PathBuf) {
    static PAIR: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    PAIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap().keep();
        let (key, cert) = (dir.join("key.TEST-ONLY.pem"), dir.join("cert.pem"));
        openssl_cert(&key, &cert, &["-newkey", "rsa:4096"]);
        (key, cert)
    })
}

fn openssl_cert(key: &Path, cert: &Path, newkey: &[&str]) {
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/O=sealed-secret/CN=sealed-secret",
        ])
        .args(newkey)
        .arg("-keyout")
        .arg(key)
        .arg("-out")
        .arg(cert)
        .output()
        .expect("openssl (Debian package openssl)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "sealkey failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn kubesealpy(key: &Path, file: &Path, extra: &[&str]) -> Output {
    Command::new(support::venv_python())
        .arg(root().join("tests/sealed-secrets-py/unseal.py"))
        .arg(key)
        .arg(file)
        .args(extra)
        .output()
        .unwrap()
}

/// Unseals every SealedSecret of `sealed` with kubesealpy; one JSON object per document.
fn unseal_with_kubesealpy(sealed: &str) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sealed.yaml");
    std::fs::write(&file, sealed).unwrap();
    let out = kubesealpy(&controller().0, &file, &[]);
    assert!(
        out.status.success(),
        "kubesealpy: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

const SECRET: &str = "apiVersion: v1
kind: Secret
metadata:
  name: git-creds
  namespace: dags
  labels:
    app.kubernetes.io/managed-by: sealkey
  annotations:
    sealkey.io/repo: acme/dags
type: kubernetes.io/ssh-auth
data:
  ssh-privatekey: ZmFrZS1rZXktbWF0ZXJpYWwK
stringData:
  known_hosts: github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl
";

fn seal(scope: &str) -> String {
    let cert = controller().1.to_str().unwrap().to_string();
    ok(run(
        &[
            "seal",
            "--seal",
            "sealed-secrets",
            "--cert",
            &cert,
            "--scope",
            scope,
        ],
        SECRET.as_bytes(),
    ))
}

#[test]
fn every_scope_opens_in_kubesealpy_with_the_secrets_type_labels_and_annotations() {
    for (scope, annotation) in [
        ("strict", None),
        (
            "namespace-wide",
            Some("sealedsecrets.bitnami.com/namespace-wide"),
        ),
        (
            "cluster-wide",
            Some("sealedsecrets.bitnami.com/cluster-wide"),
        ),
    ] {
        let sealed = seal(scope);
        assert!(
            !sealed.contains("ZmFrZS1rZXktbWF0ZXJpYWwK"),
            "{scope}: plaintext leaked"
        );
        let raw = &sealkey::yaml::parse_stream(&sealed, "t").unwrap()[0];
        assert_eq!(raw["apiVersion"], "bitnami.com/v1alpha1");
        assert_eq!(raw["kind"], "SealedSecret");
        assert_eq!(raw["spec"]["template"]["type"], "kubernetes.io/ssh-auth");
        assert_eq!(
            raw["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/managed-by"],
            "sealkey"
        );
        assert_eq!(
            raw["spec"]["template"]["metadata"]["annotations"]["sealkey.io/repo"],
            "acme/dags"
        );
        match annotation {
            Some(a) => assert_eq!(raw["metadata"]["annotations"][a], "true", "{scope}"),
            None => assert!(raw["metadata"].get("annotations").is_none(), "{scope}"),
        }

        let opened = unseal_with_kubesealpy(&sealed);
        let secret = &opened[0];
        assert_eq!(secret["metadata"]["name"], "git-creds", "{scope}");
        assert_eq!(secret["type"], "kubernetes.io/ssh-auth");
        assert_eq!(
            secret["metadata"]["labels"],
            json!({"app.kubernetes.io/managed-by": "sealkey"})
        );
        // `data` came in base64 and is sealed as raw bytes; `stringData` as its text.
        assert_eq!(secret["data"]["ssh-privatekey"], "ZmFrZS1rZXktbWF0ZXJpYWwK");
        use base64::Engine as _;
        let kh = base64::engine::general_purpose::STANDARD
            .decode(secret["data"]["known_hosts"].as_str().unwrap())
            .unwrap();
        assert!(kh.starts_with(b"github.com ssh-ed25519 AAAA"), "{scope}");
    }
}

#[test]
fn strict_scope_values_do_not_open_under_another_name_or_namespace() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sealed.yaml");
    std::fs::write(&file, seal("strict")).unwrap();
    let key = &controller().0;
    // The right name opens (proves the probe can succeed) ...
    let out = kubesealpy(key, &file, &["--as", "dags/git-creds"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // ... another name or namespace does not.
    for other in ["dags/other-name", "other-ns/git-creds"] {
        let out = kubesealpy(key, &file, &["--as", other]);
        assert!(
            out.status.success(),
            "{other}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("\"refused\""));
    }
}

#[test]
fn create_emits_a_sealed_secret_and_passes_other_objects_through() {
    let cert = controller().1.to_str().unwrap().to_string();
    // A HelmRelease comes along with the Secret. (Argo CD's known-hosts ConfigMap no longer
    // does: sealkey adds host keys to the user's ConfigMap, never emits a whole one.)
    let sealed = ok(run(
        &[
            "create",
            "--repo",
            "acme/dags",
            "--for",
            "airflow-chart",
            "--emit",
            "helmrelease",
            "--seal",
            "sealed-secrets",
            "--cert",
            &cert,
            "-q",
        ],
        b"",
    ));
    let docs = sealkey::yaml::parse_stream(&sealed, "t").unwrap();
    assert!(docs.iter().any(|d| d["kind"] == "SealedSecret"));
    // The HelmRelease holds no secret: passed through as it is.
    let hr = docs
        .iter()
        .find(|d| d["kind"] == "HelmRelease")
        .expect("the HelmRelease passes through");
    assert!(hr["spec"]["values"]["dags"]["gitSync"]["knownHosts"]
        .as_str()
        .unwrap()
        .starts_with("github.com "));
    assert!(
        !sealed.contains("LS0tLS1CRUdJTiBPUEVOU1NI"),
        "base64 of the key header leaked"
    );
    let opened = unseal_with_kubesealpy(&sealed);
    let secret = opened.iter().find(|d| d.get("data").is_some()).unwrap();
    use base64::Engine as _;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(secret["data"]["gitSshKey"].as_str().unwrap())
        .unwrap();
    assert!(pem.starts_with(sealkey::keygen::OPENSSH_PRIVATE_KEY_HEADER.as_bytes()));
    // The Secret the HelmRelease's sshKeySecret names.
    assert_eq!(
        secret["metadata"]["name"],
        hr["spec"]["values"]["dags"]["gitSync"]["sshKeySecret"]
    );
}

fn assert_exit(out: &Output, code: i32, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{err}");
    assert!(out.stdout.is_empty(), "output written despite the error");
    for n in needles {
        assert!(err.contains(n), "expected {n:?} in: {err}");
    }
}

#[test]
fn expired_malformed_and_non_rsa_certificates_exit_2_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(support::venv_python())
        .arg(root().join("tests/sealed-secrets-py/unseal.py"))
        .args(["expired-cert", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expired = dir.path().join("expired.pem");
    let ec = dir.path().join("ec.pem");
    openssl_cert(
        &dir.path().join("ec.key"),
        &ec,
        &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
    );
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(
        &garbage,
        "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let cases: [(&Path, &[&str]); 4] = [
        (&expired, &["expired.pem", "expired at 2020-01-31"]),
        (&ec, &["ec.pem", "not RSA"]),
        (
            &garbage,
            &["garbage.pem", "not a readable X.509 certificate"],
        ),
        (
            Path::new("/nonexistent/cert.pem"),
            &["/nonexistent/cert.pem"],
        ),
    ];
    for (cert, needles) in cases {
        let out = run(
            &[
                "seal",
                "--seal",
                "sealed-secrets",
                "--cert",
                cert.to_str().unwrap(),
            ],
            SECRET.as_bytes(),
        );
        assert_exit(&out, 2, needles);
    }
}

#[test]
fn unreachable_cert_url_exits_3() {
    // Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    let out = run(
        &[
            "seal",
            "--seal",
            "sealed-secrets",
            "--cert",
            "https://127.0.0.1:9/v1/cert.pem",
        ],
        SECRET.as_bytes(),
    );
    assert_exit(
        &out,
        3,
        &[
            "https://127.0.0.1:9/v1/cert.pem",
            "cannot fetch the certificate",
        ],
    );
    // Plain http to another host is refused before any connection.
    let out = run(
        &[
            "seal",
            "--seal",
            "sealed-secrets",
            "--cert",
            "http://example.invalid/v1/cert.pem",
        ],
        SECRET.as_bytes(),
    );
    assert_exit(&out, 2, &["only accepted to this machine"]);
}

/// Serves `body` once over plain HTTP on 127.0.0.1 (what `kubectl port-forward` gives).
fn serve_once(status: &'static str, body: Vec<u8>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        listener.set_nonblocking(false).unwrap();
        if let Ok((mut conn, _)) = listener.accept() {
            conn.set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let mut buf = [0u8; 4096];
            let _ = conn.read(&mut buf);
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Type: application/x-pem-file\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&body);
        }
    });
    format!("http://127.0.0.1:{port}/v1/cert.pem")
}

#[test]
fn cert_url_of_a_port_forwarded_controller_is_fetched_and_used() {
    let pem = std::fs::read(&controller().1).unwrap();
    let url = serve_once("200 OK", pem);
    let sealed = ok(run(
        &["seal", "--seal", "sealed-secrets", "--cert", &url],
        SECRET.as_bytes(),
    ));
    assert_eq!(
        unseal_with_kubesealpy(&sealed)[0]["metadata"]["name"],
        "git-creds"
    );

    let url = serve_once("404 Not Found", b"no".to_vec());
    let out = run(
        &["seal", "--seal", "sealed-secrets", "--cert", &url],
        SECRET.as_bytes(),
    );
    assert_exit(&out, 3, &["HTTP 404"]);
}

#[test]
fn stdin_objects_other_than_secrets_are_refused_for_sealed_secrets() {
    let cert = controller().1.to_str().unwrap().to_string();
    let out = run(
        &["seal", "--seal", "sealed-secrets", "--cert", &cert],
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\ndata:\n  a: b\n",
    );
    assert_exit(&out, 2, &["document 1 (ConfigMap)", "only v1 Secrets"]);
    let out = run(
        &[
            "create",
            "--repo",
            "acme/dags",
            "--emit",
            "extra-secrets",
            "--seal",
            "sealed-secrets",
            "--cert",
            &cert,
        ],
        b"",
    );
    assert_exit(&out, 2, &["--seal sops"]);
}
