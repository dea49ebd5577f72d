//! deploy/'s least privilege judged by the real RBAC authorizer: `kubectl apply -k deploy/` (and
//! the aws overlay) onto a real kube-apiserver + etcd (scripts/dev-cluster); each CronJob's own
//! command runs with its ServiceAccount's token from the real TokenRequest API, and the server's
//! audit log shows every call it made was allowed; a table of calls outside each role is refused
//! (403) by the real authorizer.

mod support;

use serde_json::Value;
use std::path::Path;
use std::process::{Command, Stdio};
use support::fake_github::FakeGithub;
use support::real_cluster::RealCluster;
use support::{b64d, bare, ssh_keypair, ssh_public_of};

/// A cluster with deploy/ (and optionally the aws overlay) applied, namespace `airflow` with the
/// Secret the rotation job rotates (an ssh-keygen key) and a Deployment that mounts it as a volume.
struct World {
    cluster: RealCluster,
    dir: tempfile::TempDir,
    old_public: String,
}

fn deploy_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy"))
}

fn world(overlays: &[&str]) -> World {
    let cluster = RealCluster::start();
    cluster.kubectl_ok(&["create", "namespace", "airflow"]);
    for dir in overlays {
        let out = cluster.kubectl(&[
            "apply",
            "--server-side",
            "-k",
            deploy_dir().join(dir).to_str().unwrap(),
        ]);
        assert!(
            out.status.success(),
            "kubectl apply -k deploy/{dir} onto the real server failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let (key, old_public) = ssh_keypair(dir.path(), "ed25519", "old.TEST-ONLY");
    use base64::Engine as _;
    let pem = base64::engine::general_purpose::STANDARD.encode(std::fs::read(key).unwrap());
    cluster.apply(&format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: airflow-ssh-secret\n  namespace: airflow\n\
         type: Opaque\ndata:\n  gitSshKey: {pem}\n---\n\
         apiVersion: v1\nkind: Secret\nmetadata:\n  name: other\n  namespace: airflow\n\
         type: Opaque\nstringData:\n  password: not-for-sealkey\n---\n\
         apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: airflow-dag-processor\n  namespace: airflow\n\
         spec:\n  replicas: 1\n  selector: {{matchLabels: {{app: dp}}}}\n  template:\n    metadata: {{labels: {{app: dp}}}}\n\
         \x20   spec:\n      containers:\n      - name: git-sync\n        image: registry.k8s.io/git-sync/git-sync:v4.4.0\n\
         \x20       volumeMounts: [{{name: key, mountPath: /etc/git-secret, readOnly: true}}]\n\
         \x20     volumes: [{{name: key, secret: {{secretName: airflow-ssh-secret, defaultMode: 0400}}}}]\n---\n\
         apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\n  namespace: default\n\
         spec:\n  replicas: 1\n  selector: {{matchLabels: {{app: web}}}}\n  template:\n    metadata: {{labels: {{app: web}}}}\n\
         \x20   spec:\n      containers:\n      - name: web\n        image: nginx\n"
    ));
    World {
        cluster,
        dir,
        old_public,
    }
}

/// The rendered CronJob `name`'s container arguments with every `$(VAR)` expanded from the
/// ConfigMap the real server holds, as the kubelet would.
fn cronjob_args(c: &RealCluster, name: &str) -> Vec<String> {
    let cj: Value = serde_json::from_str(&c.kubectl_ok(&[
        "get",
        "cronjob",
        name,
        "-n",
        "sealkey-system",
        "-o",
        "json",
    ]))
    .unwrap();
    let container = &cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0];
    let mut vars = std::collections::BTreeMap::new();
    for e in container["env"].as_array().into_iter().flatten() {
        let r = &e["valueFrom"]["configMapKeyRef"];
        let cm: Value = serde_json::from_str(&c.kubectl_ok(&[
            "get",
            "configmap",
            r["name"].as_str().unwrap(),
            "-n",
            "sealkey-system",
            "-o",
            "json",
        ]))
        .unwrap();
        vars.insert(
            e["name"].as_str().unwrap().to_string(),
            cm["data"][r["key"].as_str().unwrap()]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let mut a = a.as_str().unwrap().to_string();
            for (k, v) in &vars {
                a = a.replace(&format!("$({k})"), v);
            }
            a
        })
        .collect()
}

/// A fake GitHub that knows the App (RSA key written to `dir`) and holds the live key under
/// the title the job's cluster name gives it.
fn github_with_app(w: &World, cluster_name: &str) -> (FakeGithub, std::path::PathBuf) {
    use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey};
    let fake = FakeGithub::start();
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    fake.state().app_public_pem = Some(
        key.to_public_key()
            .to_pkcs1_pem(Default::default())
            .unwrap(),
    );
    let pem = w.dir.path().join("app.TEST-ONLY.pem");
    support::write_private(
        &pem,
        key.to_pkcs1_pem(Default::default()).unwrap().as_bytes(),
    );
    fake.add_key(
        "acme/dags",
        &bare(&w.old_public),
        &format!("sealkey {cluster_name}/airflow/airflow-ssh-secret 2026-01-01"),
        true,
        "2026-01-01T00:00:00Z",
        None,
    );
    (fake, pem)
}

/// Runs sealkey with `args` as the pod would: the ServiceAccount's token in its kubeconfig.
fn run_as(kubeconfig: &Path, args: &[String]) -> std::process::Output {
    let mut c = Command::new(support::sealkey_bin());
    c.args(args)
        .env("KUBECONFIG", kubeconfig)
        .env_remove("GITHUB_TOKEN")
        .env_remove("GH_TOKEN")
        .stdin(Stdio::null());
    support::output_of(&mut c, None)
}

fn user(sa: &str) -> String {
    format!("system:serviceaccount:sealkey-system:{sa}")
}

/// Every call `sa` made was allowed, and there was at least one.
fn assert_all_allowed(c: &RealCluster, sa: &str) -> Vec<(String, String, u16)> {
    let calls = c.calls_by(&user(sa));
    assert!(!calls.is_empty(), "{sa} made no call the server saw");
    let refused: Vec<_> = calls.iter().filter(|(_, _, code)| *code == 403).collect();
    assert!(
        refused.is_empty(),
        "the real authorizer refused {sa}'s own job: {refused:#?}"
    );
    calls
}

/// A call outside a role: (what, method, path, optional (content type, body)).
type Call<'a> = (&'a str, &'a str, &'a str, Option<(&'a str, &'a str)>);

/// Calls that `token` must not be allowed to make: each answered 403 by the real authorizer.
fn assert_refused(c: &RealCluster, sa: &str, token: &str, table: &[Call]) {
    let mut wrong = vec![];
    for (what, method, path, body) in table {
        let code = c.status_as(token, method, path, *body);
        if code != 403 {
            wrong.push(format!(
                "{sa}: {what} ({method} {path}) answered {code}, not 403"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

const MERGE: &str = "application/merge-patch+json";

#[test]
#[ignore = "needs the judges etcd and kube-apiserver (scripts/install-test-deps)"]
fn the_rotate_cronjob_rotates_with_its_own_token_and_the_real_authorizer_allows_every_call() {
    let w = world(&["."]);
    let args = cronjob_args(&w.cluster, "sealkey-rotate");
    let cluster_name = args
        .iter()
        .find_map(|a| a.strip_prefix("--cluster="))
        .expect("the job names its cluster")
        .to_string();
    let (github, app_key) = github_with_app(&w, &cluster_name);
    let token = w.cluster.token_for("sealkey-system", "sealkey-rotate");
    let kc = w
        .cluster
        .kubeconfig_for_token("sealkey-rotate", &token, "airflow");

    // The job's own arguments; only the App key's path (mounted in the pod), the GitHub API (the
    // fake on 127.0.0.1) and the kubelet sync wait (no kubelet here) are the test's.
    let mut argv: Vec<String> = args
        .iter()
        .map(|a| match a.strip_prefix("--app-key=") {
            Some(_) => format!("--app-key={}", app_key.display()),
            None => a.clone(),
        })
        .collect();
    argv.extend([
        "--api-url".into(),
        github.url(),
        "--sync-wait".into(),
        "0s".into(),
    ]);
    let out = run_as(&kc, &argv);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the rotate job failed: {stderr}");
    let calls = assert_all_allowed(&w.cluster, "sealkey-rotate");
    // It did rotate: the Secret (read by the admin) holds a new key, the one GitHub holds.
    let secret: Value = serde_json::from_str(&w.cluster.kubectl_ok(&[
        "get",
        "secret",
        "airflow-ssh-secret",
        "-n",
        "airflow",
        "-o",
        "json",
    ]))
    .unwrap();
    let live = bare(&ssh_public_of(
        w.dir.path(),
        &b64d(&secret["data"]["gitSshKey"]),
    ));
    assert_ne!(live, bare(&w.old_public), "the key did not change");
    let keys = github.keys("acme/dags");
    assert_eq!(keys.len(), 1, "{keys:#?}");
    assert_eq!(bare(keys[0]["key"].as_str().unwrap()), live);
    assert!(
        calls.iter().any(|(verb, uri, _)| verb == "patch"
            && uri.starts_with("/api/v1/namespaces/airflow/secrets/airflow-ssh-secret")),
        "no write of the Secret in {calls:#?}"
    );

    assert_refused(
        &w.cluster,
        "sealkey-rotate",
        &token,
        &[
            (
                "read another Secret in its namespace",
                "GET",
                "/api/v1/namespaces/airflow/secrets/other",
                None,
            ),
            (
                "list Secrets in its namespace",
                "GET",
                "/api/v1/namespaces/airflow/secrets",
                None,
            ),
            (
                "list Secrets in another namespace",
                "GET",
                "/api/v1/namespaces/default/secrets",
                None,
            ),
            ("list Secrets cluster-wide", "GET", "/api/v1/secrets", None),
            (
                "read its own App key Secret",
                "GET",
                "/api/v1/namespaces/sealkey-system/secrets/sealkey-github-app",
                None,
            ),
            (
                "delete the Secret it rotates",
                "DELETE",
                "/api/v1/namespaces/airflow/secrets/airflow-ssh-secret",
                None,
            ),
            (
                "create a Secret",
                "POST",
                "/api/v1/namespaces/airflow/secrets",
                Some((
                    "application/json",
                    r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"x"}}"#,
                )),
            ),
            (
                "patch a Deployment in another namespace",
                "PATCH",
                "/apis/apps/v1/namespaces/default/deployments/web",
                Some((MERGE, r#"{"metadata":{"annotations":{"x":"y"}}}"#)),
            ),
            (
                "create a ClusterRoleBinding",
                "POST",
                "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
                Some((
                    "application/json",
                    r#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"pwn"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"},"subjects":[{"kind":"ServiceAccount","name":"sealkey-rotate","namespace":"sealkey-system"}]}"#,
                )),
            ),
            (
                "bind itself a Role",
                "POST",
                "/apis/rbac.authorization.k8s.io/v1/namespaces/airflow/rolebindings",
                Some((
                    "application/json",
                    r#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"pwn"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"admin"},"subjects":[{"kind":"ServiceAccount","name":"sealkey-rotate","namespace":"sealkey-system"}]}"#,
                )),
            ),
            (
                "exec into a pod",
                "POST",
                "/api/v1/namespaces/airflow/pods/x/exec",
                None,
            ),
        ],
    );
}

#[test]
#[ignore = "needs the judges etcd and kube-apiserver (scripts/install-test-deps)"]
fn the_audit_cronjob_audits_with_its_own_token_and_cannot_read_or_change_anything_else() {
    let w = world(&["."]);
    let args = cronjob_args(&w.cluster, "sealkey-audit");
    let token = w.cluster.token_for("sealkey-system", "sealkey-audit");
    let kc = w
        .cluster
        .kubeconfig_for_token("sealkey-audit", &token, "sealkey-system");
    let out = run_as(&kc, &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    // 0 (nothing found) or 1 (findings): the audit ran; 2 or 3 would be a refusal or an error.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "the audit job failed ({:?}): {stderr}",
        out.status.code()
    );
    let report: Value = serde_json::from_slice(&out.stdout).expect("JSON report on stdout");
    assert!(
        report.to_string().contains("airflow-dag-processor"),
        "the audit did not see the Deployment: {report}"
    );
    let calls = assert_all_allowed(&w.cluster, "sealkey-audit");
    assert!(
        !calls.iter().any(|(_, uri, _)| uri.contains("/secrets")),
        "--skip-secrets, yet the audit job touched Secrets: {calls:#?}"
    );
    assert_refused(
        &w.cluster,
        "sealkey-audit",
        &token,
        &[
            (
                "read a Secret",
                "GET",
                "/api/v1/namespaces/airflow/secrets/airflow-ssh-secret",
                None,
            ),
            ("list Secrets cluster-wide", "GET", "/api/v1/secrets", None),
            (
                "patch a Deployment",
                "PATCH",
                "/apis/apps/v1/namespaces/airflow/deployments/airflow-dag-processor",
                Some((MERGE, r#"{"metadata":{"annotations":{"x":"y"}}}"#)),
            ),
            (
                "delete a Pod",
                "DELETE",
                "/api/v1/namespaces/airflow/pods/x",
                None,
            ),
            (
                "read ConfigMaps",
                "GET",
                "/api/v1/namespaces/sealkey-system/configmaps/sealkey-rotate",
                None,
            ),
            (
                "create a ClusterRoleBinding",
                "POST",
                "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
                Some((
                    "application/json",
                    r#"{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding","metadata":{"name":"pwn"},"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"},"subjects":[{"kind":"ServiceAccount","name":"sealkey-audit","namespace":"sealkey-system"}]}"#,
                )),
            ),
        ],
    );
}

#[test]
#[ignore = "needs the judges etcd and kube-apiserver (scripts/install-test-deps)"]
fn the_aws_overlay_role_may_read_the_secret_and_patch_its_externalsecret_but_never_write_the_secret(
) {
    let w = world(&[".", "aws"]);
    let token = w.cluster.token_for("sealkey-system", "sealkey-rotate-aws");
    // Allowed: what `rotate --store` does on the cluster side.
    let read = w.cluster.status_as(
        &token,
        "GET",
        "/api/v1/namespaces/airflow/secrets/airflow-ssh-secret",
        None,
    );
    assert_eq!(read, 200, "the aws job cannot read the Secret it rotates");
    let list = w.cluster.status_as(
        &token,
        "GET",
        "/apis/apps/v1/namespaces/airflow/deployments",
        None,
    );
    assert_eq!(list, 200, "the aws job cannot list the readers");
    assert_refused(
        &w.cluster,
        "sealkey-rotate-aws",
        &token,
        &[
            (
                "patch the Secret (the store writes it, through ESO)",
                "PATCH",
                "/api/v1/namespaces/airflow/secrets/airflow-ssh-secret",
                Some((MERGE, r#"{"metadata":{"annotations":{"x":"y"}}}"#)),
            ),
            (
                "update the Secret",
                "PUT",
                "/api/v1/namespaces/airflow/secrets/airflow-ssh-secret",
                Some((
                    "application/json",
                    r#"{"apiVersion":"v1","kind":"Secret","metadata":{"name":"airflow-ssh-secret","namespace":"airflow"}}"#,
                )),
            ),
            (
                "read another Secret",
                "GET",
                "/api/v1/namespaces/airflow/secrets/other",
                None,
            ),
            (
                "patch another ExternalSecret",
                "PATCH",
                "/apis/external-secrets.io/v1/namespaces/airflow/externalsecrets/other",
                Some((MERGE, r#"{"metadata":{"annotations":{"x":"y"}}}"#)),
            ),
            ("list Secrets cluster-wide", "GET", "/api/v1/secrets", None),
            (
                "patch a Deployment in another namespace",
                "PATCH",
                "/apis/apps/v1/namespaces/default/deployments/web",
                Some((MERGE, r#"{"metadata":{"annotations":{"x":"y"}}}"#)),
            ),
        ],
    );
}

#[test]
#[ignore = "needs the judges (scripts/install-test-deps)"]
fn the_shared_cluster_gives_each_test_a_namespace_and_kubectl_proxy_serves_it_over_plain_http() {
    let cluster = RealCluster::shared();
    let a = cluster.namespace("shared");
    let b = cluster.namespace("shared");
    assert_ne!(a, b);
    cluster.create(
        &a,
        &[serde_json::json!({"apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "s"}, "stringData": {"k": "v"}})],
    );
    assert!(cluster.secret(&a, "s").is_some());
    assert!(cluster.secret(&b, "s").is_none());
    // Through kubectl proxy, with the admin's token, over plain HTTP; a wrong token is refused
    // (kubectl proxy passes the client's Authorization on).
    let proxy = cluster.plain_http();
    let curl = |token: &str| {
        std::process::Command::new("curl")
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}", "-H"])
            .arg(format!("Authorization: Bearer {token}"))
            .arg(format!("{}/api/v1/namespaces/{a}/secrets/s", proxy.url()))
            .output()
            .unwrap()
    };
    assert_eq!(String::from_utf8_lossy(&curl("dummy").stdout), "401");
    let admin = cluster.admin_token();
    let out = std::process::Command::new("curl")
        .args(["-sS", "-H"])
        .arg(format!("Authorization: Bearer {admin}"))
        .arg(format!("{}/api/v1/namespaces/{a}/secrets/s", proxy.url()))
        .output()
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["data"]["k"], "dg==", "{body}");
    // sealkey's own client works through it, with the kubeconfig a fault proxy would use.
    let kc = cluster.kubeconfig_via(&proxy.url(), &a);
    let out = std::process::Command::new("kubectl")
        .env("KUBECONFIG", &kc)
        .args(["get", "secret", "s", "-o", "name"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "secret/s");
}
