//! The one support tree for integration tests (`mod support;` in a test file brings it all):
//! run the sealkey binary, make throwaway keys with the real tools (age-keygen, ssh-keygen), parse
//! YAML output; and, as submodules, what tests talk to on 127.0.0.1: a fake GitHub
//! ([`fake_github`]), the real Kubernetes control plane ([`real_cluster`]) with the real
//! controllers ([`real_flux`], [`real_eso`]), a fault-injecting proxy ([`fault_proxy`]), a real
//! sshd serving a git repository ([`git_server`]), plus generators ([`yaml_gen`],
//! [`audit_corpus`]; the fuzz target and the bench include those two by path, so they stay
//! self-contained). The Python helper beside this file is the pseudo-terminal runner
//! (`with_tty.py`, through [`with_tty`]).
#![allow(dead_code)]

pub mod audit_corpus;
pub mod fake_github;
pub mod fault_proxy;
pub mod git_http;
pub mod git_server;
pub mod git_sync;
pub mod hostile_aws;
pub mod moto;
pub mod real_cluster;
pub mod real_eso;
pub mod real_flux;
pub mod rollouts;
pub mod watchdog;
pub mod yaml_gen;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The sealkey binary under test.
pub fn sealkey_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_sealkey"))
}

/// The sealkey binary with a clean environment: no GitHub token, a kubeconfig that does not
/// exist, stdin from /dev/null.
pub fn sealkey() -> Command {
    let mut c = Command::new(sealkey_bin());
    c.env_remove("GITHUB_TOKEN")
        .env_remove("GH_TOKEN")
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .stdin(Stdio::null());
    c
}

/// Runs `cmd` to the end and collects its output; feeds `stdin` through a pipe if given (else
/// the command's own stdin setting stands). A run that has not ended after 120 s is killed and
/// fails the test, so a hang can never stall the suite.
pub fn output_of(cmd: &mut Command, stdin: Option<&[u8]>) -> Output {
    if stdin.is_some() {
        cmd.stdin(Stdio::piped());
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let writer = stdin.map(|input| {
        let input = input.to_vec();
        let mut si = child.stdin.take().unwrap();
        std::thread::spawn(move || {
            let _ = si.write_all(&input);
        })
    });
    let read = |mut r: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out = read(Box::new(child.stdout.take().unwrap()));
    let err = read(Box::new(child.stderr.take().unwrap()));
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the child") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} still running after 120 s: killed");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    Output {
        status,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    }
}

/// Runs a prepared command (often [`sealkey()`] with arguments), feeding `stdin` if given.
pub fn run_cmd(mut cmd: Command, stdin: Option<&str>) -> Output {
    output_of(&mut cmd, stdin.map(str::as_bytes))
}

/// Runs sealkey with `args`, feeding `stdin`, in `cwd`; stdout is a pipe.
pub fn run_in(cwd: &Path, args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = Command::new(sealkey_bin());
    cmd.args(args).current_dir(cwd);
    output_of(&mut cmd, Some(stdin))
}

/// The repository's root (where Cargo.toml is).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The repo's `.venv` Python (jsonschema, pre-commit, moto, boto3, kubesealpy); a missing one
/// fails the test.
pub fn venv_python() -> PathBuf {
    let p = root().join(".venv/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run scripts/install-test-deps (it installs PyPI jsonschema, moto, ... into .venv)",
        p.display()
    );
    p
}

/// The `.venv-airflow` Python (PyPI apache-airflow-providers-git); a missing one fails the test.
pub fn airflow_python() -> PathBuf {
    let p = root().join(".venv-airflow/bin/python");
    assert!(
        p.exists(),
        "{} is missing: run scripts/install-test-deps (it installs PyPI apache-airflow-providers-git there)",
        p.display()
    );
    p
}

/// Which of a command's streams [`with_tty`] puts on the pseudo-terminal.
#[derive(Clone, Copy, Debug)]
pub enum Tty {
    /// stdout on the terminal, stderr passed through.
    Stdout,
    /// stderr on the terminal, stdout to /dev/null.
    Stderr,
}

/// `python3 tests/support/with_tty.py`: add the program and its arguments (and any env); the
/// output's stdout is what the terminal showed, its exit code the program's.
pub fn with_tty(which: Tty) -> Command {
    let mut c = Command::new("python3");
    c.arg(root().join("tests/support/with_tty.py"));
    if let Tty::Stderr = which {
        c.arg("--stderr");
    }
    c
}

/// Lossy UTF-8 text of an output stream.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A public age recipient (its identity is not needed where this is used: the flows only check
/// GitHub traffic, or that sealing happened).
pub const AGE_RECIPIENT: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

/// Runs sealkey in a fresh temp dir.
pub fn run(args: &[&str], stdin: &[u8]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    run_in(dir.path(), args, stdin)
}

/// Asserts success and returns stdout.
pub fn ok(out: &Output) -> Vec<u8> {
    assert!(
        out.status.success(),
        "sealkey failed with {:?}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout.clone()
}

/// Runs an external tool and returns its stdout, failing the test with its stderr otherwise.
pub fn tool(cmd: &str, args: &[&str], stdin: &[u8]) -> Vec<u8> {
    let mut child = Command::new(cmd)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{cmd} is needed (scripts/install-test-deps installs it): {e}"));
    {
        let mut si = child.stdin.take().unwrap();
        let _ = si.write_all(stdin);
    }
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// An age X25519 identity made by the real `age-keygen`: (identity file, recipient).
pub fn age_keypair(dir: &Path) -> (PathBuf, String) {
    let path = dir.join("age-identity.TEST-ONLY.txt");
    let st = Command::new("age-keygen")
        .arg("-o")
        .arg(&path)
        .output()
        .expect("age-keygen");
    assert!(st.status.success());
    let text = std::fs::read_to_string(&path).unwrap();
    let recipient = text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_string();
    (path, recipient)
}

/// An ssh key made by the real `ssh-keygen`: (private key file, public key line).
pub fn ssh_keypair(dir: &Path, kind: &str, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", kind, "-N", "", "-C", "test", "-f"])
        .arg(&path)
        .output()
        .expect("ssh-keygen");
    assert!(
        st.status.success(),
        "{}",
        String::from_utf8_lossy(&st.stderr)
    );
    let public = std::fs::read_to_string(path.with_extension("pub"))
        .unwrap_or_else(|_| std::fs::read_to_string(format!("{}.pub", path.display())).unwrap());
    (path, public.trim().to_string())
}

/// Parses a YAML stream (documents separated by `---`) with serde-saphyr, an independent parser.
pub fn yaml_docs(text: &[u8]) -> Vec<serde_json::Value> {
    let s = std::str::from_utf8(text).unwrap();
    let docs: Vec<serde_json::Value> = serde_saphyr::from_multiple(s).unwrap();
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

/// Decodes a base64 Secret data value.
pub fn b64d(v: &serde_json::Value) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().expect("base64 string"))
        .expect("valid base64")
}

/// The `public key:` line sealkey prints on stderr.
pub fn printed_public_key(stderr: &[u8]) -> String {
    String::from_utf8_lossy(stderr)
        .lines()
        .find_map(|l| l.strip_prefix("public key:").map(|s| s.trim().to_string()))
        .expect("sealkey printed a public key")
}

/// `ssh-keygen -y` on a private key given as bytes (written 0600 into `dir`).
pub fn ssh_public_of(dir: &Path, pem: &[u8]) -> String {
    let p = dir.join("key.TEST-ONLY");
    write_private(&p, pem);
    let out = tool("ssh-keygen", &["-y", "-f", p.to_str().unwrap()], b"");
    String::from_utf8(out).unwrap().trim().to_string()
}

/// Writes a key file with mode 0600, as ssh requires.
pub fn write_private(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::OpenOptionsExt;
    let _ = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    f.write_all(bytes).unwrap();
}

/// The first two fields of an OpenSSH public key line (type and base64), comment dropped.
pub fn bare(public: &str) -> String {
    public
        .split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

/// The Secret data keys that hold the private key in sealkey's consumer formats.
pub const KEY_FIELDS: [&str; 5] = [
    "gitSshKey",
    "ssh",
    "identity",
    "sshPrivateKey",
    "ssh-privatekey",
];

/// Finds the private key in a decrypted stream, whatever the consumer format (a Secret's data,
/// or the Secret inside a HelmRelease's `extraSecrets`).
pub fn private_key_in(docs: &[serde_json::Value]) -> Vec<u8> {
    for d in docs {
        if d["kind"] == "Secret" {
            if let Some(v) = KEY_FIELDS.iter().find_map(|f| d["data"].get(*f)) {
                return b64d(v);
            }
        }
        if d["kind"] == "HelmRelease" {
            if let Some(extra) = d["spec"]["values"]["extraSecrets"].as_object() {
                let data = extra.values().next().unwrap()["data"].as_str().unwrap();
                let inner: serde_json::Value = serde_saphyr::from_str(data).unwrap();
                return b64d(&inner["gitSshKey"]);
            }
        }
    }
    panic!("no private key found in {docs:#?}");
}

/// A tool that scripts/install-test-deps installs: a judge of that name in `.judges/bin` (kubectl
/// is one) first, else from PATH; a missing one fails the test.
pub fn required_tool(name: &str) -> PathBuf {
    let judges = Path::new(env!("CARGO_MANIFEST_DIR")).join(".judges/bin");
    std::iter::once(judges)
        .chain(
            std::env::var_os("PATH")
                .iter()
                .flat_map(std::env::split_paths),
        )
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is missing: run scripts/install-test-deps"))
}

/// Every `--for`/`--emit` pair `create` accepts.
pub const COMBOS: [(&str, &str); 11] = [
    ("airflow-chart", "secret"),
    ("airflow-chart", "helmrelease"),
    ("airflow-chart", "extra-secrets"),
    ("git-sync", "secret"),
    ("git-sync", "mount"),
    ("flux", "secret"),
    ("argocd", "secret"),
    ("airflow-git-bundle", "secret"),
    ("airflow-git-bundle", "mount"),
    ("generic", "secret"),
    ("generic", "mount"),
];

/// The `AGE-SECRET-KEY-1...` line of an age identity file.
pub fn age_secret_of(identity: &Path) -> String {
    std::fs::read_to_string(identity)
        .unwrap()
        .lines()
        .find(|l| l.starts_with("AGE-SECRET-KEY-"))
        .expect("an age identity file")
        .to_string()
}

/// Opens a SOPS file the way Flux would, with decoders we did not write (tests/sops-js: npm
/// `sops-age`, and `sops-decoder` with its MAC check): every document must carry a `sops` block
/// whose MAC verifies. Returns the decrypted documents, or the decoders' complaint.
pub fn npm_sops_decode(file: &Path, identity: &Path) -> Result<Vec<serde_json::Value>, String> {
    npm_sops_decode_with_key(file, &age_secret_of(identity))
}

/// [`npm_sops_decode`] with the age identity given as text (`AGE-SECRET-KEY-1...`, or a whole
/// identity file's text), as Flux's `SOPS_AGE_KEY` takes it.
pub fn npm_sops_decode_with_key(
    file: &Path,
    age_key: &str,
) -> Result<Vec<serde_json::Value>, String> {
    // A directory sealkey wrote (one object per file, kustomization.yaml): each sealed file
    // decoded on its own, plain files read as they are, in the kustomization's order.
    if file.is_dir() {
        let mut docs = Vec::new();
        for f in layout_files(file) {
            if f.to_string_lossy().ends_with(".sops.yaml") {
                docs.extend(npm_sops_decode_with_key(&f, age_key)?);
            } else {
                docs.extend(yaml_docs(&std::fs::read(&f).unwrap()));
            }
        }
        return Ok(docs);
    }
    let root = root();
    assert!(
        root.join("tests/sops-js/node_modules/sops-age").is_dir(),
        "npm decoders missing: run scripts/install-test-deps"
    );
    let out = Command::new("node")
        .arg(root.join("tests/sops-js/decode.mjs"))
        .arg(file)
        .env("SOPS_AGE_KEY", age_key)
        .env("NODE_NO_WARNINGS", "1")
        .output()
        .expect("node (scripts/install-test-deps installs it)");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap())
}

/// A Sealed Secrets controller certificate made by `openssl req` (RSA 2048, 30 days) in `dir`;
/// its private key, `ctl.TEST-ONLY.key`, stays beside it.
pub fn controller_cert(dir: &Path) -> PathBuf {
    let cert = dir.join("cert.pem");
    let out = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-nodes",
            "-days",
            "30",
            "-subj",
            "/CN=sealed-secret",
        ])
        .args(["-newkey", "rsa:2048", "-keyout"])
        .arg(dir.join("ctl.TEST-ONLY.key"))
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl (Debian package openssl)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    cert
}

/// The object files of a SOPS layout directory sealkey wrote: its kustomization.yaml's
/// `resources`, then the workload patches beside them (`patch-*.yaml`).
pub fn layout_files(dir: &Path) -> Vec<PathBuf> {
    let k = std::fs::read(dir.join("kustomization.yaml")).expect("kustomization.yaml");
    let k = yaml_docs(&k);
    let mut out: Vec<PathBuf> = k[0]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| dir.join(r.as_str().unwrap()))
        .collect();
    let mut patches: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("patch-")
        })
        .collect();
    patches.sort();
    out.extend(patches);
    out
}
