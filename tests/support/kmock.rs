//! A kmock KubernetesEmulator on 127.0.0.1 for one test: started from tests/support/kmock_server.py
//! in the repo's `.venv` (scripts/install-test-deps makes it), seeded with objects, stopped on drop.
//! Objects are read back with curl, not with sealkey's own client.
#![allow(dead_code)]

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
    /// Starts the emulator with `seed` (a list of objects) and waits up to 20 s for it to listen.
    pub fn start(seed: &[serde_json::Value]) -> Kmock {
        let dir = tempfile::tempdir().unwrap();
        let seed_path = dir.path().join("seed.json");
        std::fs::write(&seed_path, serde_json::to_vec(seed).unwrap()).unwrap();
        let portfile = dir.path().join("port");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/kmock_server.py");
        let mut child = Command::new(super::venv_python())
            .arg(script)
            .arg(&portfile)
            .arg("--seed")
            .arg(&seed_path)
            .args(["--lifetime", "300"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start kmock");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(text) = std::fs::read_to_string(&portfile) {
                if let Ok(port) = text.trim().parse() {
                    return Kmock { child, port, dir };
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                let mut err = String::new();
                use std::io::Read;
                child
                    .stderr
                    .take()
                    .unwrap()
                    .read_to_string(&mut err)
                    .unwrap();
                panic!("kmock exited with {status}: {err}");
            }
            assert!(Instant::now() < deadline, "kmock did not start within 20 s");
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
