//! Flux's real kustomize-controller (built by scripts/install-test-deps from the Go module proxy)
//! running out of cluster against a [`RealCluster`]: the Kustomization and GitRepository CRDs
//! from the controllers' own modules, the cluster's age key made and stored as docs/gitops.md
//! says (`age-keygen | kubectl create secret ... --from-file=age.agekey=/dev/stdin`), and in place
//! of source-controller a `.tar.gz` of a directory served on 127.0.0.1 with a GitRepository whose
//! status points at it (the pattern of kustomize-controller's own tests). The controller is killed
//! and the artifact server stopped on drop.
#![allow(dead_code)]

use super::real_cluster::{judge, RealCluster};
use serde_json::{json, Value};
use sha2::Digest as _;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The namespace the Flux objects live in, as in docs/gitops.md.
pub const FLUX_NS: &str = "flux-system";
/// The Kustomization's name, as in docs/gitops.md.
pub const KUSTOMIZATION: &str = "airflow";

/// A HelmRelease CRD without a schema (every field kept), so the controller can apply the
/// HelmReleases sealkey writes. helm-controller's own CRD is not reachable: the Go module proxy
/// refuses `github.com/fluxcd/helm-controller` and its `api` module carries no CRD; nothing here
/// runs helm-controller, so only the object the controller applied is checked.
pub const HELMRELEASE_CRD: &str = "\
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: helmreleases.helm.toolkit.fluxcd.io
spec:
  group: helm.toolkit.fluxcd.io
  names: {kind: HelmRelease, listKind: HelmReleaseList, plural: helmreleases, singular: helmrelease, shortNames: [hr]}
  scope: Namespaced
  versions:
  - name: v2
    served: true
    storage: true
    schema:
      openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}
    subresources: {status: {}}
";

/// Files served on 127.0.0.1: path -> bytes. Stops on drop.
struct ArtifactServer {
    port: u16,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    stop: Arc<AtomicBool>,
    /// How many requests were answered, per path.
    hits: Arc<Mutex<HashMap<String, u32>>>,
}

impl ArtifactServer {
    fn start() -> ArtifactServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let hits: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (f, h, s) = (files.clone(), hits.clone(), stop.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (f, h) = (f.clone(), h.clone());
                std::thread::spawn(move || serve_one(stream, &f, &h));
            }
        });
        ArtifactServer {
            port,
            files,
            stop,
            hits,
        }
    }
}

fn serve_one(
    mut stream: TcpStream,
    files: &Mutex<HashMap<String, Vec<u8>>>,
    hits: &Mutex<HashMap<String, u32>>,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 65536 {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head);
    let path = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("/")
        .to_string();
    *hits.lock().unwrap().entry(path.clone()).or_default() += 1;
    let body = files.lock().unwrap().get(&path).cloned();
    let (status, body) = match body {
        Some(b) => ("200 OK", b),
        None => ("404 Not Found", b"not found".to_vec()),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(&body);
}

impl Drop for ArtifactServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// What the Kustomization said about one revision.
#[derive(Debug)]
pub enum Outcome {
    /// Ready=True with this revision applied.
    Applied,
    /// Ready=False after trying this revision: the condition's reason and message.
    Failed { reason: String, message: String },
}

/// kustomize-controller reconciling a Kustomization in [`FLUX_NS`] over artifacts served here.
pub struct Flux<'a> {
    pub cluster: &'a RealCluster,
    controller: Child,
    server: ArtifactServer,
    /// The controller's log (JSON lines).
    pub log: PathBuf,
    /// The cluster's age recipient, as `age-keygen` printed it.
    pub recipient: String,
    revision: u32,
    kustomization_created: bool,
}

impl Drop for Flux<'_> {
    fn drop(&mut self) {
        let _ = self.controller.kill();
        let _ = self.controller.wait();
    }
}

fn crd(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(".judges/crds")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: run scripts/install-test-deps (it copies the CRD from the controller's module)",
            p.display()
        )
    })
}

impl<'a> Flux<'a> {
    /// Applies the CRDs, makes the cluster's age key as docs/gitops.md step 1 says, and starts
    /// the controller. `namespaces` are created for the objects the files will hold.
    pub fn start(cluster: &'a RealCluster, namespaces: &[&str]) -> Flux<'a> {
        let bin = judge("kustomize-controller");
        cluster.apply(&crd("kustomizations.yaml"));
        // All of source-controller's kinds: the controller watches each and will not start
        // without them.
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(".judges/crds");
        let mut sources: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map(|d| d.filter_map(|e| e.ok().map(|e| e.path())).collect())
            .unwrap_or_default();
        sources.retain(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("source.toolkit.fluxcd.io_"))
        });
        sources.sort();
        assert!(
            sources
                .iter()
                .any(|p| p.ends_with("source.toolkit.fluxcd.io_gitrepositories.yaml")),
            "{}: no source-controller CRDs: run scripts/install-test-deps",
            dir.display()
        );
        for p in &sources {
            cluster.apply(&std::fs::read_to_string(p).unwrap());
        }
        cluster.apply(HELMRELEASE_CRD);
        cluster.kubectl_ok(&[
            "wait",
            "--for",
            "condition=Established",
            "crd",
            "--all",
            "--timeout",
            "60s",
        ]);
        for ns in std::iter::once(&FLUX_NS).chain(namespaces) {
            cluster.kubectl_ok(&["create", "namespace", ns]);
        }
        // docs/gitops.md, "An age key for the cluster": the identity goes straight into the
        // cluster; the recipient is read from age-keygen's stderr.
        let out = Command::new("sh")
            .args([
                "-c",
                "age-keygen | kubectl -n flux-system create secret generic sops-age --from-file=age.agekey=/dev/stdin",
            ])
            .env("KUBECONFIG", cluster.kubeconfig())
            .env("PATH", path_with_kubectl())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "the documented age key step: {err}");
        let recipient = err
            .lines()
            .find_map(|l| l.strip_prefix("Public key: "))
            .unwrap_or_else(|| panic!("age-keygen printed no recipient: {err}"))
            .trim()
            .to_string();

        let server = ArtifactServer::start();
        let log = cluster.dir.path().join("kustomize-controller.log");
        let logfile = std::fs::File::create(&log).unwrap();
        let controller = Command::new(bin)
            .args([
                "--metrics-addr=127.0.0.1:0",
                "--health-addr=127.0.0.1:0",
                "--events-addr=",
                "--enable-leader-election=false",
                "--watch-all-namespaces=true",
                "--concurrent=2",
                "--requeue-dependency=2s",
                "--http-retry=1",
            ])
            .env("KUBECONFIG", cluster.kubeconfig())
            .env("RUNTIME_NAMESPACE", FLUX_NS)
            .stdin(Stdio::null())
            .stdout(logfile.try_clone().unwrap())
            .stderr(logfile)
            .spawn()
            .expect("start kustomize-controller");
        Flux {
            cluster,
            controller,
            server,
            log,
            recipient,
            revision: 0,
            kustomization_created: false,
        }
    }

    /// The Secret holding the cluster's age identity (for the npm decoders, which take a file).
    pub fn age_identity(&self, dir: &Path) -> PathBuf {
        let out = self.cluster.kubectl_ok(&[
            "-n",
            FLUX_NS,
            "get",
            "secret",
            "sops-age",
            "-o",
            "jsonpath={.data.age\\.agekey}",
        ]);
        let path = dir.join("cluster.agekey.TEST-ONLY");
        super::write_private(&path, &super::b64d(&Value::String(out)));
        path
    }

    /// Publishes `dir` (the repository a user commits) as a new revision: a `.tar.gz` of it
    /// served on 127.0.0.1, the GitRepository's status pointing at it with its sha256 digest;
    /// the Kustomization (created on the first call) reconciles `path` inside it. Returns the
    /// revision.
    pub fn publish(&mut self, dir: &Path, path: &str) -> String {
        self.revision += 1;
        let n = self.revision;
        let out = Command::new(super::required_tool("tar"))
            .arg("-C")
            .arg(dir)
            .args([
                "--exclude=*.TEST-ONLY*",
                "--exclude=./.git",
                "-czf",
                "-",
                ".",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "tar: {:?}", out);
        let tarball = out.stdout;
        let digest = hex(&sha2::Sha256::digest(&tarball));
        let file = format!("/gitrepository/{FLUX_NS}/config/{digest}.tar.gz");
        let size = tarball.len();
        self.server
            .files
            .lock()
            .unwrap()
            .insert(file.clone(), tarball);
        // A commit per publication, even of the same tree (a revert is a new commit).
        let commit = hex(&sha2::Sha256::digest(format!("{n}:{digest}").as_bytes()));
        let revision = format!("main@sha1:{}", &commit[..40]);
        if n == 1 {
            self.cluster.apply(&format!(
                "apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: config\n  namespace: {FLUX_NS}\n\
                 spec:\n  interval: 1h\n  url: https://github.com/acme/config\n  ref:\n    branch: main\n"
            ));
        }
        let now = "2026-12-01T00:00:00Z";
        let status = json!({"status": {
            "observedGeneration": 1,
            "artifact": {
                "path": file.trim_start_matches('/'),
                "url": format!("http://127.0.0.1:{}{file}", self.server.port),
                "revision": revision,
                "digest": format!("sha256:{digest}"),
                "lastUpdateTime": now,
                "size": size,
            },
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "Succeeded", "message": format!("stored artifact for revision '{revision}'"), "lastTransitionTime": now, "observedGeneration": 1},
                {"type": "ArtifactInStorage", "status": "True", "reason": "Succeeded", "message": "stored", "lastTransitionTime": now, "observedGeneration": 1},
            ],
        }});
        self.cluster.kubectl_ok(&[
            "-n",
            FLUX_NS,
            "patch",
            "gitrepository",
            "config",
            "--subresource=status",
            "--type=merge",
            "-p",
            &status.to_string(),
        ]);
        if !self.kustomization_created {
            // docs/gitops.md, "Let the Kustomization decrypt", with a short interval and no
            // health checks (nothing here runs Pods).
            self.cluster.apply(&format!(
                "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata:\n  name: {KUSTOMIZATION}\n  namespace: {FLUX_NS}\n\
                 spec:\n  interval: 5s\n  retryInterval: 2s\n  timeout: 60s\n  path: {path}\n  prune: true\n  wait: false\n\
                 \x20 sourceRef:\n    kind: GitRepository\n    name: config\n\
                 \x20 decryption:\n    provider: sops\n    secretRef:\n      name: sops-age\n"
            ));
            self.kustomization_created = true;
        }
        revision
    }

    /// The Kustomization as the server holds it.
    pub fn kustomization(&self) -> Value {
        serde_json::from_str(&self.cluster.kubectl_ok(&[
            "-n",
            FLUX_NS,
            "get",
            "kustomization",
            KUSTOMIZATION,
            "-o",
            "json",
        ]))
        .unwrap()
    }

    /// Waits (up to 120 s) until the Kustomization applied `revision` (Ready=True) or failed on
    /// it (Ready=False with `lastAttemptedRevision` = `revision`).
    pub fn outcome(&mut self, revision: &str) -> Outcome {
        let began = Instant::now();
        loop {
            let k = self.kustomization();
            let st = &k["status"];
            let ready = st["conditions"]
                .as_array()
                .and_then(|c| c.iter().find(|c| c["type"] == "Ready"))
                .cloned()
                .unwrap_or(Value::Null);
            if st["lastAppliedRevision"] == revision && ready["status"] == "True" {
                return Outcome::Applied;
            }
            if st["lastAttemptedRevision"] == revision
                && ready["status"] == "False"
                && ready["reason"] != "Progressing"
            {
                return Outcome::Failed {
                    reason: ready["reason"].as_str().unwrap_or_default().to_string(),
                    message: ready["message"].as_str().unwrap_or_default().to_string(),
                };
            }
            if let Ok(Some(status)) = self.controller.try_wait() {
                panic!(
                    "kustomize-controller exited ({status}):\n{}",
                    self.log_tail()
                );
            }
            assert!(
                began.elapsed() < Duration::from_secs(120),
                "revision {revision} neither applied nor failed in 120 s; Kustomization status:\n{st:#}\ncontroller log:\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Publishes `dir` and waits until it is applied; fails the test otherwise.
    pub fn publish_applied(&mut self, dir: &Path, path: &str) -> String {
        let revision = self.publish(dir, path);
        match self.outcome(&revision) {
            Outcome::Applied => revision,
            Outcome::Failed { reason, message } => panic!(
                "kustomize-controller refused {revision}: {reason}: {message}\n{}",
                self.log_tail()
            ),
        }
    }

    /// The last 40 lines of the controller's log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// An object on the server as JSON, or None when it does not exist.
    pub fn object(&self, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        let out = self
            .cluster
            .kubectl(&["-n", namespace, "get", kind, name, "-o", "json"]);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).unwrap())
    }
}

/// PATH with the directory of the kubectl the other helpers use first, so the documented
/// command runs the same kubectl.
fn path_with_kubectl() -> std::ffi::OsString {
    let kubectl = super::required_tool("kubectl");
    let dirs = std::iter::once(kubectl.parent().unwrap().to_path_buf()).chain(
        std::env::var_os("PATH")
            .iter()
            .flat_map(std::env::split_paths)
            .collect::<Vec<_>>(),
    );
    std::env::join_paths(dirs).unwrap()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `ssh-keygen -lf` on a private key given as bytes: its `SHA256:...` fingerprint.
pub fn fingerprint_of(dir: &Path, pem: &[u8]) -> String {
    let p = dir.join("fp.TEST-ONLY");
    super::write_private(&p, pem);
    let out = super::tool("ssh-keygen", &["-lf", p.to_str().unwrap()], b"");
    let _ = std::fs::remove_file(&p);
    String::from_utf8(out)
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}
