//! The no-disk promise, checked from outside the process: under `strace -f`, no command opens a
//! file for writing except an explicit `--out` (through its same-directory temp file); after
//! each run no file under the working directory, TMPDIR or HOME holds the key (PEM body or its
//! base64), and stderr never does either.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use support::*;

struct Sandbox {
    _root: tempfile::TempDir,
    work: PathBuf,
    tmp: PathBuf,
    home: PathBuf,
    keys: PathBuf,
}

impl Sandbox {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let [work, tmp, home, keys] = ["work", "tmp", "home", "keys"].map(|d| {
            let p = root.path().join(d);
            std::fs::create_dir(&p).unwrap();
            p
        });
        Self {
            _root: root,
            work,
            tmp,
            home,
            keys,
        }
    }

    /// Runs sealkey under strace; returns (stdout, stderr, files opened for writing).
    fn traced(&self, args: &[&str], stdin: &[u8]) -> (Vec<u8>, String, Vec<String>) {
        use std::io::Write;
        let trace = self.keys.join("strace.out");
        let _ = std::fs::remove_file(&trace);
        let mut child = Command::new("strace")
            .args(["-f", "-qq", "-e", "trace=open,openat,openat2,creat,rename,renameat,renameat2,link,linkat,truncate,mknodat", "-o"])
            .arg(&trace)
            .arg(sealkey_bin())
            .args(args)
            .current_dir(&self.work)
            .env("TMPDIR", &self.tmp)
            .env("HOME", &self.home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("strace (Debian package strace; scripts/install-test-deps installs it)");
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{args:?} failed: {stderr}");
        let trace = std::fs::read_to_string(&trace).unwrap();
        assert!(
            trace.contains("openat("),
            "strace recorded nothing: is ptrace allowed here?\n{trace}"
        );
        (out.stdout, stderr, writes_in(&trace))
    }
}

/// Paths a successful syscall in the trace opened for writing, created, renamed or linked.
fn writes_in(trace: &str) -> Vec<String> {
    let mut paths = Vec::new();
    for line in trace.lines() {
        let Some(result) = line.rsplit(" = ").next() else {
            continue;
        };
        if result.trim_start().starts_with('-') {
            continue; // failed call: nothing was written
        }
        let is_open =
            line.contains("open(") || line.contains("openat(") || line.contains("openat2(");
        let writes = ["O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC"]
            .iter()
            .any(|f| line.contains(f));
        let mutating = line.contains("creat(")
            || line.contains("rename")
            || line.contains("link(")
            || line.contains("linkat(")
            || line.contains("truncate(")
            || line.contains("mknodat(");
        if (is_open && writes) || (!is_open && mutating) {
            for quoted in line.split('"').skip(1).step_by(2) {
                paths.push(quoted.to_string());
            }
        }
    }
    paths
}

/// Distinctive pieces of a private key: a PEM body line and a slice of the PEM's base64.
fn needles(pem: &[u8]) -> Vec<String> {
    use base64::Engine as _;
    let text = String::from_utf8(pem.to_vec()).unwrap();
    let body_line = text.lines().nth(2).unwrap().to_string();
    let b64 = base64::engine::general_purpose::STANDARD.encode(pem);
    vec![body_line, b64[100..160].to_string()]
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

fn assert_no_key_on_disk(sb: &Sandbox, pem: &[u8], stderr: &str, what: &str) {
    let needles = needles(pem);
    let mut files = Vec::new();
    for d in [&sb.work, &sb.tmp, &sb.home] {
        files_under(d, &mut files);
    }
    for f in files {
        let content = String::from_utf8_lossy(&std::fs::read(&f).unwrap()).into_owned();
        for n in &needles {
            assert!(
                !content.contains(n.as_str()),
                "{what}: {} holds key material",
                f.display()
            );
        }
    }
    for n in &needles {
        assert!(
            !stderr.contains(n.as_str()),
            "{what}: stderr holds key material"
        );
    }
}

fn assert_only_writes(writes: &[String], allowed: &[&str], what: &str) {
    for w in writes {
        let ok = allowed.iter().any(|a| w == a || w.ends_with(a))
            || w == "/dev/null"
            || allowed.iter().any(|a| {
                // write_atomic's temp file: `.NAME.sealkey-PID.tmp` beside NAME.
                let name = Path::new(a)
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                w.contains(&format!(".{name}.sealkey-")) && w.ends_with(".tmp")
            });
        assert!(ok, "{what}: opened {w} for writing (allowed: {allowed:?})");
    }
}

fn key_from_docs(plain: &[u8]) -> Vec<u8> {
    let docs = yaml_docs(plain);
    for d in &docs {
        if let Some(data) = d["data"].as_object() {
            for f in [
                "gitSshKey",
                "ssh",
                "identity",
                "sshPrivateKey",
                "ssh-privatekey",
            ] {
                if let Some(v) = data.get(f) {
                    return b64d(v);
                }
            }
        }
        if let Some(extra) = d["spec"]["values"]["extraSecrets"].as_object() {
            let inner: serde_json::Value =
                serde_saphyr::from_str(extra.values().next().unwrap()["data"].as_str().unwrap())
                    .unwrap();
            return b64d(&inner["gitSshKey"]);
        }
    }
    panic!("no key in output");
}

#[test]
fn no_command_writes_a_file_or_leaves_the_key_on_disk() {
    let sb = Sandbox::new();
    let (age_id, recipient) = age_keypair(&sb.keys);
    let decrypt = |sealed: &[u8]| tool("age", &["-d", "-i", age_id.to_str().unwrap()], sealed);

    // keygen, sealed and piped.
    let (stdout, stderr, writes) = sb.traced(&["keygen", "--seal-to", &recipient], b"");
    assert_only_writes(&writes, &[], "keygen --seal-to");
    let sealed: String = String::from_utf8(stdout)
        .unwrap()
        .lines()
        .skip(2)
        .map(|l| format!("{l}\n"))
        .collect();
    assert_no_key_on_disk(
        &sb,
        &decrypt(sealed.as_bytes()),
        &stderr,
        "keygen --seal-to",
    );
    let (stdout, stderr, writes) = sb.traced(&["keygen", "--seal", "none"], b"");
    assert_only_writes(&writes, &[], "keygen --seal none");
    let pem: Vec<u8> = String::from_utf8(stdout)
        .unwrap()
        .lines()
        .skip(2)
        .flat_map(|l| format!("{l}\n").into_bytes())
        .collect();
    assert_no_key_on_disk(&sb, &pem, &stderr, "keygen --seal none");

    // create with every consumer and document, sealed to stdout.
    for (consumer, emit) in [
        ("airflow-chart", "secret"),
        ("airflow-chart", "helmrelease"),
        ("airflow-chart", "extra-secrets"),
        ("git-sync", "mount"),
        ("flux", "secret"),
        ("argocd", "secret"),
        ("airflow-git-bundle", "mount"),
        ("generic", "mount"),
    ] {
        let what = format!("create --for {consumer} --emit {emit}");
        let (stdout, stderr, writes) = sb.traced(
            &[
                "create",
                "--repo",
                "acme/dags",
                "--for",
                consumer,
                "--emit",
                emit,
                "--seal-to",
                &recipient,
                "-v",
            ],
            b"",
        );
        assert_only_writes(&writes, &[], &what);
        assert_no_key_on_disk(&sb, &key_from_docs(&decrypt(&stdout)), &stderr, &what);
    }

    // create --out: the only file written is the sealed one (via its temp sibling).
    let (_, stderr, writes) = sb.traced(
        &[
            "create",
            "--repo",
            "acme/dags",
            "--emit",
            "helmrelease",
            "--seal-to",
            &recipient,
            "--out",
            "sealed.yaml.age",
        ],
        b"",
    );
    assert!(!writes.is_empty(), "--out must show up in the trace");
    assert_only_writes(&writes, &["sealed.yaml.age"], "create --out");
    let sealed = std::fs::read(sb.work.join("sealed.yaml.age")).unwrap();
    let plain = decrypt(&sealed);
    assert_no_key_on_disk(&sb, &key_from_docs(&plain), &stderr, "create --out");

    // create --seal none into a pipe.
    let (stdout, stderr, writes) = sb.traced(
        &[
            "create",
            "--repo",
            "acme/dags",
            "--for",
            "git-sync",
            "--seal",
            "none",
        ],
        b"",
    );
    assert_only_writes(&writes, &[], "create --seal none");
    assert_no_key_on_disk(&sb, &key_from_docs(&stdout), &stderr, "create --seal none");

    // seal: a Secret made elsewhere, from stdin; then unseal it back into a pipe.
    let (stdout, _, _) = sb.traced(
        &[
            "create",
            "--repo",
            "acme/dags",
            "--for",
            "generic",
            "--seal",
            "none",
        ],
        b"",
    );
    let key = key_from_docs(&stdout);
    let (sealed, stderr, writes) = sb.traced(&["seal", "--seal-to", &recipient], &stdout);
    assert_only_writes(&writes, &[], "seal");
    assert_no_key_on_disk(&sb, &key, &stderr, "seal");
    let (plain, stderr, writes) =
        sb.traced(&["unseal", "--identity", age_id.to_str().unwrap()], &sealed);
    assert_only_writes(&writes, &[], "unseal");
    assert_eq!(key_from_docs(&plain), key);
    assert_no_key_on_disk(&sb, &key, &stderr, "unseal");
}

#[test]
fn core_dumps_are_off_while_an_identity_is_held() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let (age_id, _) = age_keypair(dir.path());
    // unseal loads the identity, then blocks reading stdin: inspect it from outside meanwhile.
    let mut child = Command::new(sealkey_bin())
        .args(["unseal", "--identity", age_id.to_str().unwrap()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let limits_path = format!("/proc/{}/limits", child.id());
    let mut core_line = String::new();
    for _ in 0..100 {
        let limits = std::fs::read_to_string(&limits_path).unwrap_or_default();
        core_line = limits
            .lines()
            .find(|l| l.starts_with("Max core file size"))
            .unwrap_or_default()
            .to_string();
        if core_line.split_whitespace().skip(4).take(2).eq(["0", "0"]) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.stdin.take().unwrap().write_all(b"not age").unwrap();
    let _ = child.wait_with_output();
    let fields: Vec<&str> = core_line.split_whitespace().collect();
    assert_eq!(
        &fields[4..6],
        &["0", "0"],
        "soft and hard RLIMIT_CORE must be 0: {core_line}"
    );
}
