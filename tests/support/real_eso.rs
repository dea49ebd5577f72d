//! The real External Secrets Operator (built by scripts/install-test-deps from the Go module
//! proxy) against a [`RealCluster`]: ESO's CRDs from its own module (`.judges/crds/external-secrets.yaml`),
//! the controller run out of cluster with the admin's kubeconfig (no leader election, no webhook
//! or certificate controller, metrics on a free loopback port, one reconcile at a time), its AWS
//! provider pointed at moto through the endpoint variables it reads (`AWS_SECRETSMANAGER_ENDPOINT`,
//! `AWS_STS_ENDPOINT`). The controller gets no AWS credentials of its own: a SecretStore reads
//! fake static ones from a Secret (`auth.secretRef`), as a cluster without IRSA does. Killed on drop.
#![allow(dead_code)]

use super::moto::Moto;
use super::real_cluster::{judge, RealCluster};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// The ESO controller process; killed on drop.
pub struct RealEso {
    child: Option<Child>,
    kubeconfig: PathBuf,
    endpoint: String,
    /// Where the controller logs (appended to across restarts).
    pub log: PathBuf,
}

impl Drop for RealEso {
    fn drop(&mut self) {
        self.stop();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Applies ESO's CRDs (from its module zip, copied by scripts/install-test-deps) to `c` and waits
/// until the ones the controller watches are established.
pub fn install_crds(c: &RealCluster) {
    let crds = Path::new(env!("CARGO_MANIFEST_DIR")).join(".judges/crds/external-secrets.yaml");
    let text = std::fs::read_to_string(&crds).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: run scripts/install-test-deps (it copies the CRDs from the judge's module)",
            crds.display()
        )
    });
    c.apply(&text);
    c.kubectl_ok(&[
        "wait",
        "--for",
        "condition=Established",
        "--timeout",
        "60s",
        "crd/externalsecrets.external-secrets.io",
        "crd/secretstores.external-secrets.io",
        "crd/clustersecretstores.external-secrets.io",
    ]);
}

/// A namespaced SecretStore `name` in `ns` for moto's Secrets Manager in `region`, with static
/// credentials (moto accepts any) in the Secret `aws-credentials` of the same namespace.
pub fn static_credentials_store(ns: &str, name: &str, region: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: aws-credentials\n  namespace: {ns}\n\
         stringData:\n  access-key-id: testing\n  secret-access-key: testing\n\
         ---\napiVersion: external-secrets.io/v1\nkind: SecretStore\nmetadata:\n  name: {name}\n  namespace: {ns}\n\
         spec:\n  provider:\n    aws:\n      service: SecretsManager\n      region: {region}\n      auth:\n        secretRef:\n\
         \x20         accessKeyIDSecretRef:\n            name: aws-credentials\n            key: access-key-id\n\
         \x20         secretAccessKeySecretRef:\n            name: aws-credentials\n            key: secret-access-key\n"
    )
}

impl RealEso {
    /// Starts the controller against `c` (CRDs installed first with [`install_crds`]) with its
    /// AWS endpoints at `moto`.
    pub fn start(c: &RealCluster, moto: &Moto) -> RealEso {
        judge("external-secrets");
        let mut eso = RealEso {
            child: None,
            kubeconfig: c.kubeconfig(),
            endpoint: moto.url(),
            log: c.dir.path().join("external-secrets.log"),
        };
        eso.restart();
        eso
    }

    /// Stops the controller (an ESO that is down); [`RealEso::restart`] brings it back.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// (Re)starts the controller.
    pub fn restart(&mut self) {
        self.stop();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let metrics = format!("127.0.0.1:{}", free_port());
        let child = Command::new(judge("external-secrets"))
            .args([
                "--metrics-addr",
                &metrics,
                "--enable-leader-election=false",
                "--concurrent",
                "1",
                "--enable-push-secret-reconciler=false",
                "--enable-cluster-push-secret-reconciler=false",
                "--enable-cluster-external-secret-reconciler=false",
                "--loglevel",
                "debug",
            ])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", "/nonexistent/sealkey-test")
            .env("KUBECONFIG", &self.kubeconfig)
            .env("AWS_SECRETSMANAGER_ENDPOINT", &self.endpoint)
            .env("AWS_STS_ENDPOINT", &self.endpoint)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/nonexistent/sealkey-test/config")
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                "/nonexistent/sealkey-test/credentials",
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start external-secrets");
        self.child = Some(child);
    }

    /// Whether the controller is running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// The last lines of the controller's log, for failure messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}
