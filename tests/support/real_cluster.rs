//! A real Kubernetes control plane for one test: etcd + kube-apiserver from `.judges/bin`
//! (built by scripts/install-test-deps from the Go module proxy), started and stopped through
//! `scripts/dev-cluster`, RBAC on. Objects are created and read back with the real kubectl or
//! curl, never with sealkey's own client.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// A running control plane; stopped on drop.
pub struct RealCluster {
    /// The directory `scripts/dev-cluster` works in (kubeconfig, logs, tokens).
    pub dir: tempfile::TempDir,
    /// The API server's port on 127.0.0.1.
    pub port: u16,
}

fn dev_cluster() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/dev-cluster")
}

/// The judges' directory (`.judges/bin`); a missing judge fails the test with a pointer to the
/// script that builds it.
pub fn judge(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".judges/bin")
        .join(name);
    assert!(
        p.is_file(),
        "{} is missing: run scripts/install-test-deps (it builds the judges)",
        p.display()
    );
    p
}

impl Drop for RealCluster {
    fn drop(&mut self) {
        let _ = Command::new(dev_cluster())
            .arg("stop")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

static SHARED: std::sync::OnceLock<RealCluster> = std::sync::OnceLock::new();
static NAMESPACES: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl RealCluster {
    /// Starts etcd and kube-apiserver and waits (bounded by the script: 120 s) for `/readyz`.
    pub fn start() -> RealCluster {
        Self::start_with(&[])
    }

    /// The one control plane this test binary shares between its tests (each test works in its
    /// own namespace: [`RealCluster::namespace`]). Started on first use (about 5 s); a watcher
    /// left by `scripts/dev-cluster` stops it and removes its directory when the test binary
    /// exits, since a static is never dropped.
    pub fn shared() -> &'static RealCluster {
        SHARED.get_or_init(|| {
            let pid = std::process::id().to_string();
            Self::start_with(&[
                ("DEV_CLUSTER_OWNER_PID", pid.as_str()),
                ("DEV_CLUSTER_REMOVE_DIR", "1"),
            ])
        })
    }

    fn start_with(env: &[(&str, &str)]) -> RealCluster {
        judge("etcd");
        judge("kube-apiserver");
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new(dev_cluster())
            .arg("start")
            .arg(dir.path())
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .expect("run scripts/dev-cluster");
        assert!(
            out.status.success(),
            "scripts/dev-cluster start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = std::fs::read_to_string(dir.path().join("port"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        RealCluster { dir, port }
    }

    /// A new namespace named `prefix-N` (unique in this test binary), created as the admin.
    /// Namespaces are never deleted: without kube-controller-manager a deleted one stays
    /// Terminating, and the cluster goes when the test binary ends.
    pub fn namespace(&self, prefix: &str) -> String {
        let n = NAMESPACES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("{prefix}-{n}");
        assert!(name.len() <= 63, "namespace {name} is longer than 63");
        self.kubectl_ok(&["create", "namespace", &name]);
        name
    }

    /// The admin's token.
    pub fn admin_token(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("admin.token"))
            .unwrap()
            .trim()
            .to_string()
    }

    /// The admin kubeconfig whose context's namespace is `ns`.
    pub fn kubeconfig_in(&self, ns: &str) -> PathBuf {
        self.kubeconfig_for_token(&format!("admin-{ns}"), &self.admin_token(), ns)
    }

    /// Creates `objects` in namespace `ns` (as the admin, `kubectl create -n`; an object naming
    /// another namespace is refused by kubectl).
    pub fn create(&self, ns: &str, objects: &[serde_json::Value]) {
        if objects.is_empty() {
            return;
        }
        let list = serde_json::json!({"apiVersion": "v1", "kind": "List", "items": objects});
        let text = serde_json::to_vec(&list).unwrap();
        let out = self.kubectl_with(
            &self.kubeconfig(),
            &["create", "-n", ns, "-f", "-"],
            Some(&text),
        );
        assert!(
            out.status.success(),
            "kubectl create failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// GET `path` on the server as the admin (kubectl get --raw); `None` on 404.
    pub fn get(&self, path: &str) -> Option<serde_json::Value> {
        let out = self.kubectl(&["get", "--raw", path]);
        if out.status.success() {
            return Some(serde_json::from_slice(&out.stdout).unwrap());
        }
        let err = String::from_utf8_lossy(&out.stderr);
        if err.contains("NotFound") || err.contains("not found") {
            return None;
        }
        panic!("GET {path}: {err}");
    }

    /// Secret `ns/name` as the server holds it; `None` when there is none.
    pub fn secret(&self, ns: &str, name: &str) -> Option<serde_json::Value> {
        self.get(&format!("/api/v1/namespaces/{ns}/secrets/{name}"))
    }

    /// The real server behind plain HTTP on 127.0.0.1 (`kubectl proxy` with the admin's
    /// credentials), for a fault proxy to stand in front of: see [`KubectlProxy`].
    pub fn plain_http(&self) -> KubectlProxy {
        KubectlProxy::start(self)
    }

    /// A kubeconfig for a plain-HTTP `server` on loopback (a fault proxy in front of
    /// [`RealCluster::plain_http`]) that authenticates as the admin (`kubectl proxy` passes a
    /// client's own `Authorization` on).
    pub fn kubeconfig_via(&self, server: &str, ns: &str) -> PathBuf {
        let file = format!("kubeconfig-via-{}-{ns}", server.replace([':', '/'], "_"));
        self.write_kubeconfig(
            &file,
            (server, None),
            "dev",
            "admin",
            &self.admin_token(),
            ns,
        )
    }

    /// Writes a kubeconfig named `file` into the cluster's directory: one cluster (`server`,
    /// verified with `ca` when given), one user `user` with `token`, one context `context` (the
    /// current one) in `ns`.
    fn write_kubeconfig(
        &self,
        file: &str,
        (server, ca): (&str, Option<&Path>),
        context: &str,
        user: &str,
        token: &str,
        ns: &str,
    ) -> PathBuf {
        use base64::Engine as _;
        let ca = ca
            .map(|p| {
                let pem = std::fs::read(p).unwrap();
                format!(
                    "    certificate-authority-data: {}\n",
                    base64::engine::general_purpose::STANDARD.encode(pem)
                )
            })
            .unwrap_or_default();
        let path = self.dir.path().join(file);
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: dev\n  cluster:\n    server: {server}\n{ca}\
             users:\n- name: {user}\n  user:\n    token: {token}\n\
             contexts:\n- name: {context}\n  context:\n    cluster: dev\n    user: {user}\n    namespace: {ns}\n\
             current-context: {context}\n"
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    /// The admin kubeconfig (system:masters).
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The CA bundle that verifies the server's certificate.
    pub fn ca(&self) -> PathBuf {
        self.dir.path().join("certs/apiserver.crt")
    }

    /// kubectl as the admin.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_with(&self.kubeconfig(), args, None)
    }

    /// kubectl as the admin; fails the test unless it succeeds; returns stdout.
    pub fn kubectl_ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// kubectl with a given kubeconfig and optional stdin.
    pub fn kubectl_with(&self, kubeconfig: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut c = Command::new(super::required_tool("kubectl"));
        c.env("KUBECONFIG", kubeconfig).args(args);
        super::output_of(&mut c, stdin)
    }

    /// Applies YAML (stdin) as the admin with server-side apply.
    pub fn apply(&self, yaml: &str) {
        let out = self.kubectl_with(
            &self.kubeconfig(),
            &["apply", "--server-side", "-f", "-"],
            Some(yaml.as_bytes()),
        );
        assert!(
            out.status.success(),
            "kubectl apply failed: {}\n{yaml}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A token for ServiceAccount `ns/name` from the real TokenRequest API.
    pub fn token_for(&self, ns: &str, name: &str) -> String {
        self.kubectl_ok(&["create", "token", name, "-n", ns, "--duration", "1h"])
            .trim()
            .to_string()
    }

    /// A kubeconfig (written into the cluster's directory) that authenticates with `token`, as a
    /// pod's in-cluster configuration would.
    pub fn kubeconfig_for_token(&self, name: &str, token: &str, namespace: &str) -> PathBuf {
        let file = format!("kubeconfig-{name}");
        self.write_kubeconfig(
            &file,
            (&self.url(), Some(&self.ca())),
            name,
            name,
            token,
            namespace,
        )
    }

    /// Starts `program` as if it ran in a pod of namespace `namespace` with `token`: the
    /// in-cluster environment client-go reads (KUBERNETES_SERVICE_HOST/PORT, and the token, CA
    /// and namespace files under /var/run/secrets/kubernetes.io/serviceaccount), laid out in a
    /// private mount namespace (`unshare -m`, a tmpfs over /run) so the machine's files are
    /// untouched. Output goes to `log`. Killed when the returned guard drops.
    pub fn run_in_cluster(
        &self,
        program: &Path,
        args: &[&str],
        namespace: &str,
        token: &str,
        log: &Path,
    ) -> InClusterProcess {
        let sa = self.dir.path().join(format!("sa-{namespace}"));
        std::fs::create_dir_all(&sa).unwrap();
        std::fs::write(sa.join("token"), token).unwrap();
        std::fs::copy(self.ca(), sa.join("ca.crt")).unwrap();
        std::fs::write(sa.join("namespace"), namespace).unwrap();
        let script = "mount -t tmpfs tmpfs /run && d=/var/run/secrets/kubernetes.io/serviceaccount && mkdir -p $d && cp \"$SA\"/* $d/ && exec \"$@\"";
        let out = std::fs::File::create(log).unwrap();
        let child = Command::new(super::required_tool("unshare"))
            .args(["-m", "--propagation", "private", "sh", "-c", script, "sh"])
            .arg(program)
            .args(args)
            .env("SA", &sa)
            .env("KUBERNETES_SERVICE_HOST", "127.0.0.1")
            .env("KUBERNETES_SERVICE_PORT", self.port.to_string())
            .env("POD_NAMESPACE", namespace)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("start the in-cluster program");
        InClusterProcess(child)
    }

    /// Every request `user` made, from the server's own audit log: (verb, request URI, status).
    pub fn calls_by(&self, user: &str) -> Vec<(String, String, u16)> {
        let log = std::fs::read_to_string(self.dir.path().join("audit.log")).unwrap_or_default();
        log.lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["stage"] == "ResponseComplete" && e["user"]["username"] == user)
            .map(|e| {
                (
                    e["verb"].as_str().unwrap_or("").to_string(),
                    e["requestURI"].as_str().unwrap_or("").to_string(),
                    e["responseStatus"]["code"].as_u64().unwrap_or(0) as u16,
                )
            })
            .collect()
    }

    /// The HTTP status the real server answers to `method path` with `token` (and an optional
    /// JSON or apply-patch body), read with curl.
    pub fn status_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<(&str, &str)>,
    ) -> u16 {
        let mut c = Command::new(super::required_tool("curl"));
        c.args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "20",
        ])
        .arg("--cacert")
        .arg(self.ca())
        .args(["-X", method, "-H"])
        .arg(format!("Authorization: Bearer {token}"));
        if let Some((content_type, data)) = body {
            c.args([
                "-H",
                &format!("Content-Type: {content_type}"),
                "--data-binary",
                data,
            ]);
        }
        c.arg(format!("{}{path}", self.url()));
        let out = c.output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .unwrap_or_else(|_| {
                panic!(
                    "curl {method} {path}: {}",
                    String::from_utf8_lossy(&out.stderr)
                )
            })
    }
}

/// A program started by [`RealCluster::run_in_cluster`]; killed on drop.
pub struct InClusterProcess(std::process::Child);

impl Drop for InClusterProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl InClusterProcess {
    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.0.try_wait(), Ok(None))
    }
}

/// `kubectl proxy` on a free 127.0.0.1 port in front of a [`RealCluster`] (plain HTTP in, the
/// admin's TLS connection out); killed on drop.
pub struct KubectlProxy {
    child: std::process::Child,
    pub port: u16,
}

impl Drop for KubectlProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl KubectlProxy {
    fn start(cluster: &RealCluster) -> KubectlProxy {
        use std::io::BufRead as _;
        let mut child = Command::new(super::required_tool("kubectl"))
            .env("KUBECONFIG", cluster.kubeconfig())
            .args(["proxy", "--address", "127.0.0.1", "--port", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start kubectl proxy");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            // "Starting to serve on 127.0.0.1:PORT"
            let mut lines = std::io::BufReader::new(stdout).lines();
            if let Some(Ok(line)) = lines.next() {
                let _ = tx.send(line);
            }
            for _ in lines {}
        });
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .expect("kubectl proxy did not say where it serves within 20 s");
        let port = line
            .rsplit(':')
            .next()
            .and_then(|p| p.trim().parse().ok())
            .unwrap_or_else(|| panic!("kubectl proxy said: {line}"));
        KubectlProxy { child, port }
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}
