//! Every path argument sealkey reads (`--app-key`, `--identity`, `--known-hosts`, `--seal-to`
//! recipients files, `--cert`, `--merge-into`, `--update`, `--key-file`, `--repos-file`,
//! `--kubeconfig`, the inputs of `unseal` and `inspect`) and standard input, given what an
//! attacker or a slip would give: `/dev/zero`, a FIFO nobody writes to, a file over the cap, a
//! private key others can read. Each run is watched (time and peak RSS): exit 2 naming the flag,
//! quickly, in bounded memory.

mod support;

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

struct Watched {
    code: Option<i32>,
    stderr: String,
    peak_rss_mib: u64,
    killed: Option<String>,
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs sealkey in `dir` with `stdin` as its standard input, killed after 10 s or past 512 MiB.
fn watch(dir: &Path, args: &[&str], stdin: Stdio) -> Watched {
    let mut child = Command::new(support::sealkey_bin())
        .args(args)
        .current_dir(dir)
        .env_remove("GITHUB_TOKEN")
        .env_remove("GH_TOKEN")
        .env("KUBECONFIG", dir.join("no-kubeconfig"))
        .stdin(stdin)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = child.stderr.take().unwrap();
    let drain = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let start = Instant::now();
    let mut peak = 0;
    let mut killed = None;
    loop {
        if let Some(kib) = peak_rss_kib(child.id()) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            return Watched {
                code: status.code(),
                stderr: String::from_utf8_lossy(&drain.join().unwrap()).into_owned(),
                peak_rss_mib: peak / 1024,
                killed,
            };
        }
        if killed.is_none() {
            if start.elapsed() > Duration::from_secs(10) {
                killed = Some("still running after 10 s".to_string());
            } else if peak > 512 * 1024 {
                killed = Some("RSS over 512 MiB".to_string());
            }
            if killed.is_some() {
                let _ = child.kill();
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

const RECIPIENT: &str = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

/// Command lines reading `BAD` through the flag they are listed with.
fn cases(identity: &str) -> Vec<(&'static str, Vec<String>)> {
    let v = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    vec![
        (
            "--app-key",
            v(&[
                "keys",
                "list",
                "--repo",
                "a/b",
                "--app-id",
                "1",
                "--app-key",
                "BAD",
                "--api-url",
                "http://127.0.0.1:9",
            ]),
        ),
        ("--identity", v(&["unseal", "--identity", "BAD", "in.age"])),
        (
            "--known-hosts",
            v(&[
                "create",
                "--repo",
                "a/b",
                "-n",
                "d",
                "--seal-to",
                RECIPIENT,
                "--known-hosts",
                "BAD",
            ]),
        ),
        (
            "--seal-to",
            v(&["create", "--repo", "a/b", "-n", "d", "--seal-to", "BAD"]),
        ),
        (
            "--cert",
            v(&[
                "create",
                "--repo",
                "a/b",
                "-n",
                "d",
                "--seal",
                "sealed-secrets",
                "--cert",
                "BAD",
            ]),
        ),
        (
            "--merge-into",
            v(&[
                "create",
                "--repo",
                "a/b",
                "-n",
                "d",
                "--for",
                "airflow-chart",
                "--emit",
                "helmrelease",
                "--seal-to",
                RECIPIENT,
                "--merge-into",
                "BAD",
            ]),
        ),
        (
            "--update",
            v(&[
                "seal",
                "--seal",
                "sops",
                "--seal-to",
                RECIPIENT,
                "--identity",
                identity,
                "--update",
                "BAD",
            ]),
        ),
        (
            "--key-file",
            v(&[
                "register",
                "--repo",
                "a/b",
                "--key-file",
                "BAD",
                "--api-url",
                "http://127.0.0.1:9",
            ]),
        ),
        (
            "--repos-file",
            v(&[
                "keys",
                "list",
                "--repos-file",
                "BAD",
                "--api-url",
                "http://127.0.0.1:9",
            ]),
        ),
        (
            "--kubeconfig",
            v(&["audit", "--cluster", "--kubeconfig", "BAD"]),
        ),
        ("BAD", v(&["unseal", "BAD"])),
        ("BAD", v(&["inspect", "BAD"])),
    ]
}

// Was: `--app-key /dev/zero` (and every other path flag) read until memory ran out, and a FIFO
// given as `--identity` blocked forever; a 100 MiB file was read whole.
#[test]
fn every_path_argument_refuses_devices_fifos_and_oversized_files_with_exit_2_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let fifo = p.join("fifo");
    rustix::fs::mkfifoat(
        rustix::fs::CWD,
        &fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
    )
    .unwrap();
    let big = p.join("big.yaml");
    let f = std::fs::File::create(&big).unwrap();
    f.set_len(100 << 20).unwrap();
    drop(f);
    std::fs::set_permissions(&big, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let identity = p.join("id.TEST-ONLY.txt");
    {
        use age::secrecy::ExposeSecret;
        let id = age::x25519::Identity::generate();
        std::fs::write(&identity, id.to_string().expose_secret()).unwrap();
    }
    let mut failures = Vec::new();
    for (bad, expect) in [
        ("/dev/zero", "character device"),
        (fifo.to_str().unwrap(), "FIFO"),
        (big.to_str().unwrap(), "larger than"),
    ] {
        for (flag, args) in cases(identity.to_str().unwrap()) {
            let args: Vec<String> = args
                .into_iter()
                .map(|a| if a == "BAD" { bad.to_string() } else { a })
                .collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let w = watch(p, &args, Stdio::null());
            let named = if flag == "BAD" { bad } else { flag };
            if w.code != Some(2)
                || w.killed.is_some()
                || !w.stderr.contains(named)
                || !w.stderr.contains(expect)
            {
                failures.push(format!(
                    "{args:?}: exit {:?}, killed {:?}, peak {} MiB: {}",
                    w.code, w.killed, w.peak_rss_mib, w.stderr
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
}

// Was: `seal < /dev/zero` (and `unseal`, `inspect`) read standard input until memory ran out.
#[test]
fn endless_standard_input_is_cut_at_the_cap_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        vec!["seal", "--seal", "age", "--seal-to", RECIPIENT],
        vec!["inspect"],
    ] {
        let zero = std::fs::File::open("/dev/zero").unwrap();
        let w = watch(dir.path(), &args, Stdio::from(zero));
        assert_eq!(w.code, Some(2), "{args:?}: {:?} {}", w.killed, w.stderr);
        assert!(w.stderr.contains("larger than the 64 MiB"), "{}", w.stderr);
        assert!(w.peak_rss_mib < 400, "{args:?}: {} MiB", w.peak_rss_mib);
    }
}

// Was: a 0644 App private key was used silently (issue 22); ssh refuses such a key.
#[test]
fn an_app_key_other_users_can_read_is_refused_with_the_chmod_hint() {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    let dir = tempfile::tempdir().unwrap();
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let pem = dir.path().join("app.TEST-ONLY.pem");
    std::fs::File::create(&pem)
        .unwrap()
        .write_all(key.to_pkcs1_pem(Default::default()).unwrap().as_bytes())
        .unwrap();
    for mode in [0o644, 0o640, 0o604] {
        std::fs::set_permissions(&pem, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
        let w = watch(
            dir.path(),
            &[
                "keys",
                "list",
                "--repo",
                "a/b",
                "--app-id",
                "1",
                "--app-key",
                pem.to_str().unwrap(),
                "--api-url",
                "http://127.0.0.1:9",
            ],
            Stdio::null(),
        );
        assert_eq!(w.code, Some(2), "{mode:o}: {}", w.stderr);
        assert!(w.stderr.contains("--app-key"), "{}", w.stderr);
        assert!(w.stderr.contains("chmod 600"), "{}", w.stderr);
        assert!(!w.stderr.contains("BEGIN"), "{}", w.stderr);
    }
    // 0600 passes the file checks: the run goes on to GitHub (nothing listens: exit 3).
    std::fs::set_permissions(&pem, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    let w = watch(
        dir.path(),
        &[
            "keys",
            "list",
            "--repo",
            "a/b",
            "--app-id",
            "1",
            "--app-key",
            pem.to_str().unwrap(),
            "--api-url",
            "http://127.0.0.1:9",
            "--deadline",
            "5s",
        ],
        Stdio::null(),
    );
    assert_eq!(w.code, Some(3), "{}", w.stderr);
}
