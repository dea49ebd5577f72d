//! The Kubernetes API stand-in on 127.0.0.1 for one test: tests/support/kube_standin.py (kmock's
//! KubernetesEmulator, in the repo's `.venv`, which scripts/install-test-deps makes) in one of its
//! modes: seeded emulator, paginating emulator, behind a kubectl shim, or discovery only. Stopped
//! on drop. Objects are read back with curl, not with sealkey's own client.
#![allow(dead_code)]

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Kmock {
    child: Child,
    pub port: u16,
    pub dir: tempfile::TempDir,
}

impl Drop for Kmock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Kmock {
    /// Starts the emulator with `seed` (a list of objects, POSTed as if created) and waits up to
    /// 20 s for it to listen.
    pub fn start(seed: &[serde_json::Value]) -> Kmock {
        let dir = tempfile::tempdir().unwrap();
        let seed_path = dir.path().join("seed.json");
        std::fs::write(&seed_path, serde_json::to_vec(seed).unwrap()).unwrap();
        let args = [OsStr::new("--seed"), seed_path.as_os_str()];
        Self::spawn(dir, &args, 300, Duration::from_secs(20))
    }

    /// Starts the emulator with `objects` (a JSON list, stored without POSTs: fast for 10,000
    /// Pods), `limit`/`continue` pagination and every list request logged to `list_log`; waits up
    /// to 60 s for it to listen.
    pub fn start_paginated(objects: &Path, list_log: &Path) -> Kmock {
        let dir = tempfile::tempdir().unwrap();
        let args = [
            OsStr::new("--preload"),
            objects.as_os_str(),
            OsStr::new("--list-log"),
            list_log.as_os_str(),
        ];
        Self::spawn(dir, &args, 300, Duration::from_secs(60))
    }

    /// Starts the emulator behind the shim that lets the real kubectl `apply` to it.
    pub fn start_for_kubectl() -> Kmock {
        let dir = tempfile::tempdir().unwrap();
        let args = [OsStr::new("--mode"), OsStr::new("kubectl")];
        Self::spawn(dir, &args, 120, Duration::from_secs(20))
    }

    /// Starts the discovery-only stand-in (no objects, every GET 404s), all that
    /// `kubectl apply --dry-run=client` needs.
    pub fn start_discovery_only() -> Kmock {
        let dir = tempfile::tempdir().unwrap();
        let args = [OsStr::new("--mode"), OsStr::new("discovery")];
        Self::spawn(dir, &args, 120, Duration::from_secs(20))
    }

    /// Runs tests/support/kube_standin.py with `args`; it exits by itself after `lifetime`
    /// seconds. Waits up to `timeout` for the port it writes.
    fn spawn(dir: tempfile::TempDir, args: &[&OsStr], lifetime: u32, timeout: Duration) -> Kmock {
        let portfile = dir.path().join("port");
        let errfile = dir.path().join("stderr");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/kube_standin.py");
        let mut child = Command::new(super::venv_python())
            .arg(script)
            .arg(&portfile)
            .args(args)
            .args(["--lifetime", &lifetime.to_string()])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&errfile).unwrap())
            .spawn()
            .expect("start kube_standin.py");
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(text) = std::fs::read_to_string(&portfile) {
                if let Ok(port) = text.trim().parse() {
                    return Kmock { child, port, dir };
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                let err = std::fs::read_to_string(&errfile).unwrap_or_default();
                panic!("kube_standin.py {args:?} exited with {status}: {err}");
            }
            assert!(
                Instant::now() < deadline,
                "kube_standin.py {args:?} did not start within {timeout:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// A kubeconfig pointing at `server` (default: this emulator), context `kmock`, namespace `ns`.
    pub fn kubeconfig_for(&self, server: &str, ns: &str) -> PathBuf {
        let path = self
            .dir
            .path()
            .join(format!("kubeconfig-{}", server.replace([':', '/'], "_")));
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kmock\n  cluster:\n    server: {server}\n\
             users:\n- name: tester\n  user:\n    token: test-token-not-secret\n\
             contexts:\n- name: kmock\n  context:\n    cluster: kmock\n    user: tester\n    namespace: {ns}\n\
             current-context: kmock\n"
        );
        std::fs::write(&path, text).unwrap();
        path
    }

    pub fn kubeconfig(&self, ns: &str) -> PathBuf {
        self.kubeconfig_for(&self.url(), ns)
    }

    /// GET a path with curl; `None` on 404.
    pub fn get(&self, path: &str) -> Option<serde_json::Value> {
        let out = Command::new("curl")
            .args([
                "-sS",
                "-w",
                "\n%{http_code}",
                &format!("{}{}", self.url(), path),
            ])
            .output()
            .expect("curl");
        let text = String::from_utf8(out.stdout).unwrap();
        let (body, code) = text.rsplit_once('\n').unwrap();
        match code {
            "200" => Some(serde_json::from_str(body).unwrap()),
            "404" => None,
            other => panic!("GET {path}: {other} {body}"),
        }
    }

    pub fn secret(&self, ns: &str, name: &str) -> Option<serde_json::Value> {
        self.get(&format!("/api/v1/namespaces/{ns}/secrets/{name}"))
    }
}
