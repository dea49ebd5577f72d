//! `sealkey audit` on hostile trees and input, as CI runs it on pull requests: alias bombs,
//! symlink loops, devices, FIFOs and sockets, oversized files, newline file names under
//! `--staged`, terminal escapes in names, and absurd numeric flags. Every case runs the real
//! binary under a watchdog (time and peak RSS), so a regression fails instead of hanging CI.

mod support;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// What a watched run did.
struct Watched {
    code: Option<i32>,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    elapsed: Duration,
    /// Peak resident set size (VmHWM), in KiB.
    peak_rss_kib: u64,
    /// Why the watchdog killed it, if it did.
    killed: Option<String>,
}

impl Watched {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.stdout)
            .unwrap_or_else(|e| panic!("{e}: stdout {}\nstderr {}", self.stdout(), self.stderr()))
    }
    fn summary(&self) -> String {
        format!(
            "exit {:?} after {:?}, peak RSS {} MiB, killed: {:?}\nstderr: {}",
            self.code,
            self.elapsed,
            self.peak_rss_kib / 1024,
            self.killed,
            self.stderr().chars().take(2000).collect::<String>()
        )
    }
}

fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs sealkey in `dir`, killing it after `timeout` or once its RSS passes `rss_limit_mib`
/// (so a regression costs seconds and a bounded amount of the machine, not an outage).
fn watch(dir: &Path, args: &[&str], timeout: Duration, rss_limit_mib: u64) -> Watched {
    let mut child = Command::new(support::sealkey_bin())
        .args(args)
        .current_dir(dir)
        .env("GIT_CEILING_DIRECTORIES", dir.parent().unwrap_or(dir))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            buf
        })
    };
    let out = drain(Box::new(child.stdout.take().unwrap()));
    let err = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let mut peak = 0;
    let mut killed = None;
    let status = loop {
        if let Some(kib) = peak_rss_kib(child.id()) {
            peak = peak.max(kib);
        }
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if killed.is_none() {
            if start.elapsed() > timeout {
                killed = Some(format!("still running after {timeout:?}"));
            } else if peak > rss_limit_mib * 1024 {
                killed = Some(format!("RSS over {rss_limit_mib} MiB"));
            }
            if killed.is_some() {
                let _ = child.kill();
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Watched {
        code: status.code(),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
        elapsed: start.elapsed(),
        peak_rss_kib: peak,
        killed,
    }
}

fn audit(dir: &Path, args: &[&str]) -> Watched {
    let mut all = vec!["audit"];
    all.extend_from_slice(args);
    watch(dir, &all, Duration::from_secs(10), 1024)
}

const PLAIN_SECRET: &str =
    "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: CANARY-hunter2}\n";

/// Findings of a JSON report as (file, rule).
fn findings(w: &Watched) -> Vec<(String, String)> {
    w.json()["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["file"].as_str().unwrap_or("").to_string(),
                f["rule"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn has_finding(w: &Watched, file_suffix: &str, rule: &str) -> bool {
    findings(w)
        .iter()
        .any(|(f, r)| f.ends_with(file_suffix) && r == rule)
}

/// A YAML alias bomb: a 64 KiB scalar aliased `inner` times in a list, that list aliased
/// `outer` times: a small file that expands to `inner * outer * 64 KiB`.
fn alias_bomb(inner: usize, outer: usize) -> String {
    let mut text = format!("s: &s \"{}\"\n", "x".repeat(64 * 1024));
    text.push_str("l: &l [");
    text.push_str(&vec!["*s"; inner].join(","));
    text.push_str("]\nm: [");
    text.push_str(&vec!["*l"; outer].join(","));
    text.push_str("]\n");
    text
}

// Was: 27 s and 12.9 GB for a 69 KB file (aliases were budgeted by node count only).
#[test]
fn alias_bomb_is_refused_in_bounded_time_and_memory_and_the_next_file_is_still_audited() {
    let dir = tempfile::tempdir().unwrap();
    let small = alias_bomb(100, 1000);
    assert!(small.len() < 72 * 1024, "{}", small.len());
    std::fs::write(dir.path().join("a-bomb.yaml"), &small).unwrap();
    // The 1 MB variant used to abort the process (allocation failure).
    let big = alias_bomb(20_000, 300_000);
    assert!(big.len() > 1_000_000, "{}", big.len());
    std::fs::write(dir.path().join("b-bomb.yaml"), big).unwrap();
    std::fs::write(dir.path().join("c-secret.yaml"), PLAIN_SECRET).unwrap();
    let w = audit(dir.path(), &[".", "--format", "json", "--threads", "2"]);
    assert!(w.killed.is_none(), "{}", w.summary());
    assert_eq!(w.code, Some(2), "{}", w.summary());
    let err = w.stderr();
    for name in ["a-bomb.yaml", "b-bomb.yaml"] {
        assert!(
            err.lines()
                .any(|l| l.contains(name) && l.contains("expand")),
            "{name} not refused by name: {}",
            w.summary()
        );
    }
    assert!(has_finding(&w, "c-secret.yaml", "SK006"), "{}", w.summary());
    assert!(w.elapsed < Duration::from_secs(8), "{}", w.summary());
    assert!(w.peak_rss_kib < 400 * 1024, "{}", w.summary());
    eprintln!("alias bombs: {}", w.summary());
}

// Was: `ln -s . d/l1; ln -s . d/l2` made the walk exponential (every path through the loops).
#[test]
fn symlink_loops_finish_and_each_real_file_is_audited_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    std::fs::create_dir_all(d.join("sub")).unwrap();
    std::fs::write(d.join("secret.yaml"), PLAIN_SECRET).unwrap();
    std::fs::write(d.join("sub/other.yaml"), PLAIN_SECRET).unwrap();
    for l in ["l1", "l2", "l3"] {
        std::os::unix::fs::symlink(".", d.join(l)).unwrap();
    }
    std::os::unix::fs::symlink("..", d.join("sub/up")).unwrap();
    // A symlinked directory outside the tree is walked once too.
    let outside = dir.path().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("out.yaml"), PLAIN_SECRET).unwrap();
    std::os::unix::fs::symlink(&outside, d.join("linked")).unwrap();
    std::os::unix::fs::symlink(&outside, d.join("sub/linked-again")).unwrap();
    let w = audit(dir.path(), &["d", "--format", "json"]);
    assert!(w.killed.is_none(), "{}", w.summary());
    assert_eq!(w.code, Some(1), "{}", w.summary());
    let files: Vec<String> = findings(&w).into_iter().map(|(f, _)| f).collect();
    let mut names: Vec<&str> = files
        .iter()
        .map(|f| Path::new(f).file_name().unwrap().to_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["other.yaml", "out.yaml", "secret.yaml"],
        "{files:?}"
    );
}

// The walk remembers a file only when it can be reached twice (issue 14, memory): a hard link,
// a symlink sorted after its target and one sorted before it must still give one finding each.
#[test]
fn a_hardlinked_and_a_symlinked_file_are_audited_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("d");
    std::fs::create_dir(&d).unwrap();
    std::fs::write(d.join("a.yaml"), PLAIN_SECRET).unwrap();
    std::fs::write(d.join("m.yaml"), PLAIN_SECRET).unwrap();
    std::fs::write(d.join("hard-1.yaml"), PLAIN_SECRET).unwrap();
    std::fs::hard_link(d.join("hard-1.yaml"), d.join("hard-2.yaml")).unwrap();
    std::os::unix::fs::symlink("a.yaml", d.join("b-link.yaml")).unwrap();
    std::os::unix::fs::symlink("m.yaml", d.join("0-link.yaml")).unwrap();
    let w = audit(dir.path(), &["d", "--format", "json"]);
    assert_eq!(w.code, Some(1), "{}", w.summary());
    let files: Vec<String> = findings(&w).into_iter().map(|(f, _)| f).collect();
    assert_eq!(
        files.len(),
        3,
        "three real files, one finding each: {files:?}"
    );
    assert_eq!(w.json()["stats"]["inputs"], 3, "{}", w.summary());
}

// Was: `x.yaml -> /dev/zero` read forever, a FIFO named y.yaml blocked in open(2).
#[test]
fn devices_fifos_and_sockets_are_refused_without_blocking_and_the_others_are_audited() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::os::unix::fs::symlink("/dev/zero", p.join("x.yaml")).unwrap();
    assert!(Command::new("mkfifo")
        .arg(p.join("y.yaml"))
        .status()
        .unwrap()
        .success());
    let _socket = std::os::unix::net::UnixListener::bind(p.join("z.yaml")).unwrap();
    std::fs::write(p.join("secret.yaml"), PLAIN_SECRET).unwrap();
    for args in [vec!["."], vec!["x.yaml", "y.yaml", "z.yaml", "secret.yaml"]] {
        let mut all = args.clone();
        all.extend(["--format", "json"]);
        let w = audit(p, &all);
        assert!(w.killed.is_none(), "{args:?}: {}", w.summary());
        assert_eq!(w.code, Some(2), "{args:?}: {}", w.summary());
        let err = w.stderr();
        for (name, why) in [
            ("x.yaml", "device"),
            ("y.yaml", "FIFO"),
            ("z.yaml", "socket"),
        ] {
            assert!(
                err.lines().any(|l| l.contains(name) && l.contains(why)),
                "{name} not refused as a {why}: {}",
                w.summary()
            );
        }
        assert!(has_finding(&w, "secret.yaml", "SK006"), "{}", w.summary());
        assert_eq!(w.json()["errors"].as_array().unwrap().len(), 3);
    }
}

// Was: any size was read whole into memory.
#[test]
fn files_over_the_size_cap_are_refused_by_name_and_the_cap_is_a_flag() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    // Sparse: 17 MiB of zeros on disk costs nothing; over the 16 MiB default.
    let big = std::fs::File::create(p.join("big.yaml")).unwrap();
    big.set_len(17 * 1024 * 1024).unwrap();
    std::fs::write(p.join("medium.yaml"), "# padding\n".repeat(300)).unwrap();
    std::fs::write(p.join("secret.yaml"), PLAIN_SECRET).unwrap();
    let w = audit(p, &[".", "--format", "json"]);
    assert_eq!(w.code, Some(2), "{}", w.summary());
    assert!(
        w.stderr().lines().any(|l| l.contains("big.yaml")
            && l.contains("16 MiB")
            && l.contains("--max-file-size")),
        "{}",
        w.summary()
    );
    assert!(!w.stderr().contains("medium.yaml"), "{}", w.summary());
    assert!(has_finding(&w, "secret.yaml", "SK006"), "{}", w.summary());

    let w = audit(p, &["medium.yaml", "secret.yaml", "--max-file-size", "1K"]);
    assert_eq!(w.code, Some(2), "{}", w.summary());
    assert!(
        w.stderr()
            .lines()
            .any(|l| l.contains("medium.yaml") && l.contains("1 KiB")),
        "{}",
        w.summary()
    );
    assert!(w.stdout().contains("SK006"), "{}", w.summary());
}

// Was: a pod's volume mounts were matched against its volumes pairwise (quadratic), and `<<`
// merges compared every key with every key.
#[test]
fn audit_time_is_linear_in_input_size() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let pod = |n: usize| {
        let mut t =
            String::from("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  volumes:\n");
        for i in 0..n {
            t.push_str(&format!(
                "  - {{name: v{i}, secret: {{secretName: s{i}}}}}\n"
            ));
        }
        t.push_str("  containers:\n  - name: c\n    volumeMounts:\n");
        for i in 0..n {
            t.push_str(&format!("    - {{name: v{i}, mountPath: /m/{i}}}\n"));
        }
        t.push_str("---\nbase: &b\n");
        for i in 0..n {
            t.push_str(&format!("  k{i}: v\n"));
        }
        t.push_str("m:\n");
        for i in 0..n {
            t.push_str(&format!("  o{i}: v\n"));
        }
        t.push_str("  <<: *b\n");
        t
    };
    let time = |n: usize| {
        let name = format!("pod-{n}.yaml");
        std::fs::write(p.join(&name), pod(n)).unwrap();
        let w = watch(
            p,
            &["audit", &name, "--format", "json", "--fail-on", "none"],
            Duration::from_secs(20),
            1024,
        );
        assert!(w.killed.is_none() && w.code == Some(0), "{}", w.summary());
        w.elapsed
    };
    time(500); // warm the page cache and the binary
    let small = time(2_000);
    let large = time(20_000);
    eprintln!("N=2000: {small:?}, 10N=20000: {large:?}");
    // Linear is ~10x; quadratic would be ~100x. Leave room for a busy machine.
    assert!(
        large < small * 30,
        "10x the input took {:.1}x the time ({small:?} -> {large:?})",
        large.as_secs_f64() / small.as_secs_f64()
    );
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

// Was: the newline split the `:path` request to `git cat-file --batch` in two, every later
// answer was read as the wrong file's, and the staged Secret was never audited (exit 0).
#[test]
fn a_staged_file_named_with_a_newline_does_not_hide_a_staged_plaintext_secret() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    std::fs::write(
        repo.join("a\nb.yaml"),
        "kind: ConfigMap\nmetadata: {name: c}\n",
    )
    .unwrap();
    std::fs::write(repo.join("secret.yaml"), PLAIN_SECRET).unwrap();
    git(&repo, &["add", "."]);
    let w = audit(&repo, &["--staged", "--format", "json"]);
    assert!(w.killed.is_none(), "{}", w.summary());
    assert_eq!(w.code, Some(1), "{}", w.summary());
    assert!(has_finding(&w, "secret.yaml", "SK006"), "{}", w.stdout());
    assert_eq!(w.json()["stats"]["inputs"], 2, "{}", w.stdout());
    assert!(!w.stdout().contains("CANARY"));
    // The same files named (as pre-commit passes them), one by one or as a directory.
    for named in [vec!["a\nb.yaml", "secret.yaml"], vec!["."]] {
        let mut args = vec!["--staged", "--format", "json", "--"];
        args.extend(named.iter());
        let w = audit(&repo, &args);
        assert_eq!(w.code, Some(1), "{named:?}: {}", w.summary());
        assert!(has_finding(&w, "secret.yaml", "SK006"), "{}", w.stdout());
        assert_eq!(w.json()["stats"]["inputs"], 2, "{named:?}: {}", w.stdout());
    }
}

// Was: git's own `git diff --no-index` usage text, many lines.
#[test]
fn staged_outside_a_git_repository_is_one_clear_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    let w = audit(&plain, &["--staged"]);
    assert_eq!(w.code, Some(2), "{}", w.summary());
    let err = w.stderr();
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{err}");
    assert!(lines[0].contains("git repository"), "{err}");
    assert!(!err.contains("usage"), "{err}");
}

// `--staged FILES...` (what pre-commit passes): the index content of exactly those files, the
// working tree only for files the index does not hold.
#[test]
fn staged_with_paths_audits_the_index_content_of_those_paths_only() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir_all(repo.join("sub")).unwrap();
    git(&repo, &["init", "-q"]);
    std::fs::write(repo.join("sub/staged.yaml"), PLAIN_SECRET).unwrap();
    std::fs::write(repo.join("not-named.yaml"), PLAIN_SECRET).unwrap();
    git(&repo, &["add", "."]);
    // The working tree no longer holds the Secret; the index still does.
    std::fs::write(repo.join("sub/staged.yaml"), "kind: ConfigMap\n").unwrap();
    std::fs::write(repo.join("untracked.yaml"), PLAIN_SECRET).unwrap();
    let w = audit(
        &repo,
        &[
            "--staged",
            "--format",
            "json",
            "--",
            "sub/staged.yaml",
            "./untracked.yaml",
        ],
    );
    assert_eq!(w.code, Some(1), "{}", w.summary());
    let mut files: Vec<String> = findings(&w).into_iter().map(|(f, _)| f).collect();
    files.sort();
    assert_eq!(
        files,
        ["./untracked.yaml", "sub/staged.yaml"],
        "{}",
        w.stdout()
    );
}

// Was: object and container names reached the table raw: `\e]0;pwned\a` retitled the terminal,
// `\e[2J` cleared it; file names and input errors too.
#[test]
fn terminal_escapes_in_names_never_reach_stdout_or_stderr_raw() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    let evil = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: \"web\\e]0;pwned\\a\", namespace: \"ns\\e[2J\\u202E\"}\nspec:\n  template:\n    spec:\n      volumes:\n      - {name: \"v\\x9b\", secret: {secretName: \"key\\e[31m\\u2028\"}}\n      containers:\n      - name: \"c\\e[2J\"\n        image: \"img\\e]8;;http://x\\a\"\n        volumeMounts: [{name: \"v\\x9b\", mountPath: /k}]\n        env:\n        - name: \"DB_PASSWORD\\e[1A\"\n          value: x\n        - name: T\n          valueFrom: {secretKeyRef: {name: \"s\\e[2J\\u2066\", key: \"k\\x7f\"}}\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: \"sec\\e]0;pwned\\a\"}\nstringData: {\"k\\e[2J\": v}\n";
    std::fs::write(p.join("evil\x1b[2J.yaml"), evil).unwrap();
    std::fs::write(p.join("bad\x1b]0;pwned\x07.yaml"), "a: [unclosed\n").unwrap();
    for format in ["table", "json", "sarif"] {
        let w = audit(p, &[".", "--format", format, "--fail-on", "none"]);
        assert_eq!(w.code, Some(2), "{format}: {}", w.summary());
        assert!(w.stdout.len() > 100, "{format}: {}", w.stdout());
        for (stream, bytes) in [("stdout", &w.stdout), ("stderr", &w.stderr)] {
            assert!(
                !bytes.contains(&0x1b) && !bytes.contains(&0x07),
                "{format} {stream} holds a raw ESC/BEL: {}",
                String::from_utf8_lossy(bytes).escape_debug()
            );
        }
        if format == "table" {
            let text = format!("{}{}", w.stdout(), w.stderr());
            for c in ['\u{9b}', '\u{7f}', '\u{202e}', '\u{2028}', '\u{2066}'] {
                assert!(
                    !text.contains(c),
                    "{format} holds {c:?}: {}",
                    text.escape_debug()
                );
            }
            assert!(
                text.contains("pwned"),
                "names are escaped, not dropped: {text}"
            );
        }
    }
}

/// Every numeric flag of every command with values that make no sense: exit 2 from the
/// argument parser naming the flag, never a panic (101) or an abort (134).
// Was: `audit --threads 18446744073709551615` panicked; other values aborted.
#[test]
fn every_numeric_flag_refuses_absurd_values_with_exit_2_and_no_panic() {
    let dir = tempfile::tempdir().unwrap();
    let max = "18446744073709551615";
    let cases: Vec<(&str, Vec<&str>)> = vec![
        ("--threads", vec!["audit", "--threads", max, "."]),
        ("--threads", vec!["audit", "--threads", "0", "."]),
        ("--threads", vec!["audit", "--threads", "4294967296", "."]),
        ("--threads", vec!["audit", "--threads", "100000", "."]),
        (
            "--page-size",
            vec!["audit", "--cluster", "--page-size", max],
        ),
        (
            "--page-size",
            vec!["audit", "--cluster", "--page-size", "0"],
        ),
        (
            "--max-file-size",
            vec!["audit", "--max-file-size", max, "."],
        ),
        (
            "--max-file-size",
            vec!["audit", "--max-file-size", "0", "."],
        ),
        (
            "--max-file-size",
            vec!["audit", "--max-file-size", "99999999G", "."],
        ),
        (
            "--fs-group",
            vec!["create", "--repo", "a/b", "-n", "d", "--fs-group", max],
        ),
        (
            "--fs-group",
            vec!["create", "--repo", "a/b", "-n", "d", "--fs-group=-1"],
        ),
        (
            "--fs-group",
            vec![
                "create",
                "--repo",
                "a/b",
                "-n",
                "d",
                "--fs-group",
                "9223372036854775807",
            ],
        ),
        (
            "--max-wait",
            vec![
                "known-hosts",
                "--api-url",
                "http://127.0.0.1:9",
                "--max-wait",
                max,
            ],
        ),
        (
            "--max-wait",
            vec!["register", "--repo", "a/b", "--max-wait", "3000000w"],
        ),
        (
            "--max-age",
            vec!["keys", "audit", "--repo", "a/b", "--max-age", max],
        ),
        (
            "--max-age",
            vec!["keys", "audit", "--repo", "a/b", "--max-age", "0"],
        ),
        (
            "--unused-for",
            vec!["keys", "audit", "--repo", "a/b", "--unused-for", max],
        ),
        (
            "--timeout",
            vec![
                "rotate",
                "-n",
                "d",
                "--secret-name",
                "s",
                "--repo",
                "a/b",
                "--apply",
                "--timeout",
                max,
            ],
        ),
        (
            "--timeout",
            vec![
                "rotate",
                "-n",
                "d",
                "--secret-name",
                "s",
                "--repo",
                "a/b",
                "--apply",
                "--timeout",
                "0",
            ],
        ),
        (
            "--sync-wait",
            vec![
                "rotate",
                "-n",
                "d",
                "--secret-name",
                "s",
                "--repo",
                "a/b",
                "--apply",
                "--sync-wait",
                max,
            ],
        ),
        // Was: no upper bound (`--deadline 18446744073709551615` was accepted).
        (
            "--deadline",
            vec![
                "known-hosts",
                "--api-url",
                "http://127.0.0.1:9",
                "--deadline",
                max,
            ],
        ),
        (
            "--deadline",
            vec!["keys", "list", "--repo", "a/b", "--deadline", "3000000w"],
        ),
        (
            "--deadline",
            vec!["register", "--repo", "a/b", "--deadline", "0"],
        ),
        (
            "--deadline",
            vec![
                "known-hosts",
                "--api-url",
                "http://127.0.0.1:9",
                "--deadline",
                "25h",
            ],
        ),
    ];
    let mut failures = Vec::new();
    for (flag, args) in &cases {
        let w = watch(dir.path(), args, Duration::from_secs(10), 1024);
        let err = w.stderr();
        let ok = w.code == Some(2)
            && err.contains(flag)
            && !err.contains("panicked")
            && !err.contains("RUST_BACKTRACE");
        if !ok {
            failures.push(format!("{args:?}: {}", w.summary()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n---\n"));
}

// Regression: `audit DIR` holding only sealed files said "0 inputs" and exited 0, as if clean.
#[test]
fn a_directory_with_nothing_to_audit_says_what_it_skipped_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("secret.yaml.age"),
        "-----BEGIN AGE ENCRYPTED FILE-----\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("notes.txt"), "hello\n").unwrap();
    let out = support::run_in(dir.path(), &["audit", "."], b"");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("skipped 2 file(s)") && err.contains("secret.yaml.age"),
        "{err}"
    );
    assert!(err.contains("no input was audited"), "{err}");
    // With a manifest beside them: audited, the skipped ones still named, exit 0.
    std::fs::write(
        dir.path().join("cm.yaml"),
        "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\n",
    )
    .unwrap();
    let out = support::run_in(dir.path(), &["audit", "."], b"");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(err.contains("skipped 2 file(s)"), "{err}");
}

/// Names, paths and values that try to break out of HTML text, attributes, `<style>` and
/// `<script>`: each one reaches the HTML report only as inert text, and the Markdown summary
/// neither opens a tag nor breaks its table.
#[test]
fn markup_in_names_paths_and_values_is_inert_in_html_and_markdown_reports() {
    let dir = tempfile::tempdir().unwrap();
    let hostile = [
        "<script>alert(1)</script>",
        "</style><img src=x onerror=alert(2)>",
        "\"><svg onload=alert(3)>",
        "' onmouseover='alert(4)",
        "</script><script>alert(5)</script>",
        "<!--",
        "a|b`c`[d](javascript:alert(6))",
    ];
    let mut text = String::new();
    for (i, h) in hostile.iter().enumerate() {
        let q = serde_json::to_string(h).unwrap();
        text.push_str(&format!(
            "---\nkind: Pod\nmetadata: {{name: {q}, namespace: {q}}}\nspec:\n  volumes: [{{name: v{i}, secret: {{secretName: {q}}}}}]\n  containers:\n  - name: {q}\n    env:\n    - name: {q}\n      valueFrom: {{secretKeyRef: {{name: {q}, key: {q}}}}}\n    - {{name: GIT_SSH_COMMAND, value: {sq}}}\n    volumeMounts: [{{name: v{i}, mountPath: {q}, subPath: {q}}}]\n",
            sq = serde_json::to_string(&format!("ssh -o StrictHostKeyChecking=no {h}")).unwrap(),
        ));
    }
    // A file name that is markup too.
    std::fs::write(dir.path().join("<b>x<\\b>.yaml"), &text).unwrap();
    let html = audit(dir.path(), &["--format", "html", "--fail-on", "none", "."]);
    assert_eq!(html.code, Some(0), "{}", html.summary());
    let page = html.stdout();
    for h in hostile {
        assert!(!page.contains(h), "{h:?} reached the page raw");
    }
    for tag in ["<script", "</script", "<style", "</style"] {
        assert_eq!(
            page.matches(tag).count(),
            1,
            "{tag} count: the report's own only"
        );
    }
    for bad in ["<img", "<svg", "<!--", "<b>x"] {
        assert!(!page.contains(bad), "{bad} in the page");
    }
    let md = audit(
        dir.path(),
        &["--format", "markdown", "--fail-on", "none", "."],
    );
    assert_eq!(md.code, Some(0), "{}", md.summary());
    let comment = md.stdout();
    // Names sit in code spans: shown as text by GitHub's renderer, never parsed as HTML.
    let rendered = cmark_gfm(&comment);
    for bad in ["<script", "</style", "<img", "<svg", "<!--", "<b>"] {
        assert!(
            !rendered.contains(bad),
            "{bad} as HTML in the rendered comment: {rendered}"
        );
    }
    for line in comment.lines().filter(|l| l.starts_with("| ")) {
        // Every row of every table has the columns of its header: no `|` from the input.
        let cells = line.replace("\\|", "").matches('|').count();
        assert!(cells == 5 || cells == 6, "{cells} bars: {line}");
    }
}

/// The Markdown comment as GitHub renders it (cmark-gfm with its extensions).
fn cmark_gfm(markdown: &str) -> String {
    use std::io::Write as _;
    let mut child = std::process::Command::new("cmark-gfm")
        .args([
            "--unsafe",
            "-e",
            "autolink",
            "-e",
            "table",
            "-e",
            "strikethrough",
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cmark-gfm ({e}): run scripts/install-test-deps"));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(markdown.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout).unwrap()
}

/// A repository whose `.git/config` names a program in every setting git might run while
/// `audit --staged` reads the index; each program leaves a marker.
fn repository_with_hostile_config(root: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let repo = root.join("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    let markers = root.join("markers");
    std::fs::create_dir(&markers).unwrap();
    let script = root.join("hostile.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$0 $*\" >> '{}/ran'\ncat >/dev/null 2>&1 </dev/null\nexit 0\n",
            markers.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(repo.join("secret.yaml"), PLAIN_SECRET).unwrap();
    std::fs::write(
        repo.join(".gitattributes"),
        "*.yaml filter=evil diff=evil\n",
    )
    .unwrap();
    git(&repo, &["add", "."]);
    let s = script.display().to_string();
    for (key, value) in [
        ("core.fsmonitor", s.as_str()),
        ("core.hooksPath", root.to_str().unwrap()),
        ("core.pager", s.as_str()),
        ("diff.external", s.as_str()),
        ("diff.evil.textconv", s.as_str()),
        ("filter.evil.process", s.as_str()),
        ("filter.evil.smudge", s.as_str()),
        ("filter.evil.clean", s.as_str()),
        ("core.sshCommand", s.as_str()),
    ] {
        git(&repo, &["config", key, value]);
    }
    (repo, markers.join("ran"))
}

// Was: `git diff --cached` and `git ls-files` ran the repository's `core.fsmonitor` program
// (anyone who hands over a repository or a tarball chooses it): code execution on `audit --staged`.
#[test]
fn staged_audit_runs_nothing_a_repositorys_own_git_config_names() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, marker) = repository_with_hostile_config(dir.path());
    for args in [
        vec!["--staged", "--format", "json"],
        vec!["--staged", "--format", "json", "--", "secret.yaml"],
        vec!["--staged", "--format", "json", "--", "."],
    ] {
        let w = audit(&repo, &args);
        assert_eq!(w.code, Some(1), "{args:?}: {}", w.summary());
        assert!(has_finding(&w, "secret.yaml", "SK006"), "{}", w.stdout());
        assert!(
            !marker.exists(),
            "{args:?}: the repository's config ran: {}",
            std::fs::read_to_string(&marker).unwrap_or_default()
        );
    }
}

// Was: git (and whatever git starts) inherited sealkey's whole environment: the GitHub token
// and the AWS credentials reached a `git` on PATH.
#[test]
fn git_started_by_audit_staged_sees_no_token_or_cloud_credential() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    std::fs::write(repo.join("secret.yaml"), PLAIN_SECRET).unwrap();
    git(&repo, &["add", "."]);
    let real_git = support::required_tool("git");
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let dump = dir.path().join("env-seen");
    std::fs::write(
        bin.join("git"),
        format!(
            "#!/bin/sh\nenv >> '{}'\nexec '{}' \"$@\"\n",
            dump.display(),
            real_git.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(bin.join("git"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let canaries = [
        ("GITHUB_TOKEN", "ghp_CANARYgithubtoken000000000000000000"),
        ("GH_TOKEN", "gho_CANARYghtoken0000000000000000000000"),
        ("AWS_ACCESS_KEY_ID", "AKIACANARYACCESSKEY0"),
        (
            "AWS_SECRET_ACCESS_KEY",
            "CANARYsecretaccesskey/0000000000000000000",
        ),
        ("AWS_SESSION_TOKEN", "CANARYsessiontoken000000000000"),
        ("SEALKEY_DEADLINE", "7m"),
        ("KUBECONFIG", "/CANARY/kubeconfig"),
    ];
    let out = Command::new(support::sealkey_bin())
        .args(["audit", "--staged", "--format", "json"])
        .current_dir(&repo)
        .env("PATH", &path)
        .env("GIT_CEILING_DIRECTORIES", dir.path())
        .envs(canaries)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let seen = std::fs::read_to_string(&dump).expect("the fake git ran");
    for (name, value) in canaries {
        assert!(
            !seen.contains(value) && !seen.lines().any(|l| l.starts_with(&format!("{name}="))),
            "{name} reached git:\n{seen}"
        );
    }
    // What git needs still arrives.
    assert!(seen.contains(&format!("PATH={path}")), "{seen}");
}

/// A file defining `n` distinct Secrets (no values: nothing to find in them).
fn many_secrets(n: usize) -> String {
    (0..n)
        .map(|i| format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: s-{i}, namespace: ns}}\ntype: Opaque\n---\n"))
        .collect()
}

// Was: with no writable TMPDIR the defined Secrets silently stayed in memory (growing with the
// input, against the documented bound), exit 0.
#[test]
fn audit_that_cannot_make_a_spill_file_fails_naming_tmpdir() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("many.yaml"), many_secrets(3_000)).unwrap();
    let out = Command::new(support::sealkey_bin())
        .args(["audit", "many.yaml", "--format", "json"])
        .current_dir(dir.path())
        .env("TMPDIR", dir.path().join("no-such-dir"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("TMPDIR"), "{err}");
    assert!(err.contains("no-such-dir"), "{err}");
}

// Was: under `ulimit -f` the spill write killed sealkey with SIGXFSZ: no message, no exit code.
#[test]
fn audit_under_a_file_size_limit_says_so_instead_of_dying_by_sigxfsz() {
    let prlimit = support::required_tool("prlimit");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("many.yaml"), many_secrets(6_000)).unwrap();
    let out = Command::new(prlimit)
        .arg("--fsize=2048")
        .arg("--")
        .arg(support::sealkey_bin())
        .args(["audit", "many.yaml", "--format", "json"])
        .current_dir(dir.path())
        .env("TMPDIR", dir.path())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{:?}: {err}", out.status);
    assert!(err.contains("ulimit -f"), "{err}");
}

// Was: a kubeconfig's exec plugin (`aws eks get-token` and the like) inherited GITHUB_TOKEN
// and GH_TOKEN with the rest of sealkey's environment.
#[test]
fn a_kubeconfig_exec_plugin_never_sees_the_github_token() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("env-seen");
    let plugin = dir.path().join("plugin.sh");
    std::fs::write(
        &plugin,
        format!(
            "#!/bin/sh\nenv >> '{}'\necho '{{\"apiVersion\":\"client.authentication.k8s.io/v1beta1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"t\"}}}}'\n",
            dump.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&plugin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters: [{{name: c, cluster: {{server: 'https://127.0.0.1:9'}}}}]\nusers: [{{name: u, user: {{exec: {{apiVersion: client.authentication.k8s.io/v1beta1, command: '{}', interactiveMode: Never}}}}}}]\ncontexts: [{{name: x, context: {{cluster: c, user: u}}}}]\ncurrent-context: x\n",
            plugin.display()
        ),
    )
    .unwrap();
    let out = Command::new(support::sealkey_bin())
        .args(["audit", "--cluster", "--kubeconfig"])
        .arg(&kubeconfig)
        .current_dir(dir.path())
        .env("GITHUB_TOKEN", "ghp_CANARYgithubtoken000000000000000000")
        .env("GH_TOKEN", "gho_CANARYghtoken0000000000000000000000")
        .env("AWS_PROFILE", "the-plugin-needs-this")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let seen = std::fs::read_to_string(&dump).unwrap_or_else(|_| {
        panic!(
            "the plugin never ran: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        !seen.contains("CANARY"),
        "a GitHub token reached the plugin:\n{seen}"
    );
    // It keeps what it needs for its own cloud.
    assert!(seen.contains("AWS_PROFILE=the-plugin-needs-this"), "{seen}");
}
