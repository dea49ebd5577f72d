//! moto (PyPI `moto[server]`: real Secrets Manager, KMS and STS wire protocols) on 127.0.0.1 for
//! one test, started from tests/support/moto_server.py in the repo's `.venv`, stopped on drop.
//! Its call counter and fault injector are that script's; boto3 in the same `.venv` is the
//! independent judge that reads back what sealkey stored.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const REGION: &str = "eu-west-1";

pub struct Moto {
    child: Child,
    pub port: u16,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn python() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run scripts/install-test-deps (it installs PyPI moto[server] and boto3 into .venv)",
        p.display()
    );
    p
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Moto {
    /// Starts moto and waits up to 60 s for it to answer.
    pub fn start() -> Moto {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/moto_server.py");
        let port = free_port();
        let child = Command::new(python())
            .arg(script)
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto");
        let mut moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if moto.http("GET", "/_sealkey/calls", "").is_some() {
                return moto;
            }
            if let Ok(Some(status)) = moto.child.try_wait() {
                panic!("moto exited with {status}");
            }
            assert!(Instant::now() < deadline, "moto did not start within 60 s");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn http(&self, method: &str, path: &str, body: &str) -> Option<String> {
        let out = Command::new("curl")
            .args([
                "-sf",
                "--max-time",
                "10",
                "-X",
                method,
                "-H",
                "Content-Type: application/json",
            ])
            .args(if body.is_empty() {
                vec![]
            } else {
                vec!["--data-binary", body]
            })
            .arg(format!("{}{path}", self.url()))
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Requests seen per X-Amz-Target (`TrentService.Encrypt`, `secretsmanager.PutSecretValue`).
    pub fn calls(&self) -> serde_json::Value {
        serde_json::from_str(&self.http("GET", "/_sealkey/calls", "").expect("moto calls")).unwrap()
    }

    pub fn count(&self, target: &str) -> u64 {
        self.calls()[target].as_u64().unwrap_or(0)
    }

    /// The next `count` requests for `action` (X-Amz-Target) fail with AWS error `code` (-1: all).
    pub fn fault(&self, action: &str, code: &str, status: u16, count: i64) {
        let spec = serde_json::json!({"action": action, "code": code, "status": status, "count": count,
            "message": format!("User: arn:aws:iam::123456789012:user/test is not authorized to perform: {action}")});
        self.http("POST", "/_sealkey/fault", &spec.to_string())
            .expect("moto fault");
    }

    /// Like [`Moto::fault`], but moto carries the request out first (the answer is lost).
    pub fn fault_after(&self, action: &str, code: &str, status: u16, count: i64) {
        let spec = serde_json::json!({"action": action, "code": code, "status": status, "count": count, "after": true});
        self.http("POST", "/_sealkey/fault", &spec.to_string())
            .expect("moto fault");
    }

    /// Environment for a client of this server: fake static credentials, region, no IMDS, no
    /// profile files from the machine.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ENDPOINT_URL", self.url()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", REGION.into()),
            ("AWS_DEFAULT_REGION", REGION.into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
            ("AWS_CONFIG_FILE", "/nonexistent/sealkey-test/config".into()),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/sealkey-test/credentials".into(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Runs a boto3 script (it sees `c = boto3.client` and `json`); returns its stdout parsed as JSON.
    pub fn boto(&self, script: &str) -> serde_json::Value {
        let code = format!("import boto3, json, sys\nc = boto3.client\n{script}");
        let out = Command::new(python())
            .args(["-c", &code])
            .envs(self.env())
            .output()
            .expect("run boto3");
        assert!(
            out.status.success(),
            "boto3 script failed: {}\n{script}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null)
    }

    /// A new symmetric KMS key's ARN.
    pub fn kms_key(&self) -> String {
        self.boto("print(json.dumps(c('kms').create_key()['KeyMetadata']['Arn']))")
            .as_str()
            .unwrap()
            .to_string()
    }
}

/// Runs sealkey with `env` added (and `remove` taken out of the inherited environment) in `cwd`;
/// killed and failed after 120 s.
pub fn sealkey_env(cwd: &Path, args: &[&str], env: &[(String, String)], remove: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sealkey"));
    cmd.args(args)
        .current_dir(cwd)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for r in remove {
        cmd.env_remove(r);
    }
    let child = cmd.spawn().expect("spawn sealkey");
    let id = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(out) => out.expect("sealkey output"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(id.to_string()).status();
            panic!("sealkey {args:?} still running after 120 s: killed");
        }
    }
}
