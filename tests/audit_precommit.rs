//! The pre-commit integrations, run by the real `pre-commit` (PyPI, in the repo's `.venv`): the
//! `.pre-commit-config.yaml` snippet from docs/audit-rules.md blocks `git commit` of an unsealed
//! key and lets a sealed file through, and this repository's `.pre-commit-hooks.yaml` works
//! through `pre-commit try-repo`; both also under `pre-commit run --all-files` (CI's mode), where
//! nothing is staged and the hook audits the files pre-commit names. Everything is local: no
//! network.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PLAIN_SECRET: &str = "apiVersion: v1\nkind: Secret\nmetadata: {name: git-creds}\nstringData:\n  ssh: not-a-real-key\n";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn pre_commit() -> PathBuf {
    let p = root().join(".venv/bin/pre-commit");
    assert!(
        p.exists(),
        "{} is missing: run scripts/install-test-deps",
        p.display()
    );
    p
}

/// PATH with the sealkey under test first, as an installed binary would be.
fn path_with_sealkey() -> String {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_sealkey")).parent().unwrap();
    format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

fn run(dir: &Path, program: &Path, args: &[&str], cache: &Path) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("PATH", path_with_sealkey())
        .env("PRE_COMMIT_HOME", cache)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .unwrap()
}

fn git(dir: &Path, args: &[&str], cache: &Path) -> Output {
    run(dir, Path::new("git"), args, cache)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The first ```yaml block after the pre-commit heading of docs/audit-rules.md.
fn documented_config() -> String {
    let doc = std::fs::read_to_string(root().join("docs/audit-rules.md")).unwrap();
    let after = doc
        .split("With the [pre-commit](https://pre-commit.com) framework")
        .nth(1)
        .expect("docs/audit-rules.md documents the pre-commit framework");
    let block = after.split("```yaml\n").nth(1).unwrap();
    block.split("```").next().unwrap().to_string()
}

#[test]
fn documented_pre_commit_config_blocks_an_unsealed_key_and_passes_sealed_files() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, cache) = (dir.path().join("repo"), dir.path().join("cache"));
    std::fs::create_dir(&repo).unwrap();
    assert!(git(&repo, &["init", "-q"], &cache).status.success());
    std::fs::write(repo.join(".pre-commit-config.yaml"), documented_config()).unwrap();
    let install = run(&repo, &pre_commit(), &["install"], &cache);
    assert!(install.status.success(), "{}", text(&install));

    // A plaintext Secret: the hook fails and the commit does not happen.
    std::fs::write(repo.join("secret.yaml"), PLAIN_SECRET).unwrap();
    git(&repo, &["add", "."], &cache);
    let blocked = git(&repo, &["commit", "-q", "-m", "add secret"], &cache);
    let out = text(&blocked);
    assert!(!blocked.status.success(), "commit went through:\n{out}");
    assert!(
        out.contains("SK006") && out.contains("secret.yaml"),
        "{out}"
    );
    assert!(
        !out.contains("not-a-real-key"),
        "the hook printed the value:\n{out}"
    );
    let head = git(&repo, &["rev-parse", "--verify", "-q", "HEAD"], &cache);
    assert!(!head.status.success(), "a commit exists");

    // The same Secret sealed with sealkey: committed.
    let sealed = Command::new(env!("CARGO_BIN_EXE_sealkey"))
        .args(["seal", "--seal", "sops", "--seal-to"])
        .arg("age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(PLAIN_SECRET.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    assert!(sealed.status.success());
    std::fs::remove_file(repo.join("secret.yaml")).unwrap();
    std::fs::write(repo.join("secret.sops.yaml"), &sealed.stdout).unwrap();
    git(&repo, &["add", "-A"], &cache);
    let ok = git(&repo, &["commit", "-q", "-m", "add sealed secret"], &cache);
    assert!(ok.status.success(), "{}", text(&ok));
    assert!(
        text(&ok).contains("sealkey audit"),
        "the hook ran: {}",
        text(&ok)
    );
}

#[test]
fn this_repository_publishes_a_hook_that_pre_commit_try_repo_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, cache) = (dir.path().join("repo"), dir.path().join("cache"));
    std::fs::create_dir(&repo).unwrap();
    assert!(git(&repo, &["init", "-q"], &cache).status.success());
    std::fs::write(repo.join("secret.yaml"), PLAIN_SECRET).unwrap();
    git(&repo, &["add", "."], &cache);
    let out = run(
        &repo,
        &pre_commit(),
        &["try-repo", root().to_str().unwrap(), "sealkey-audit"],
        &cache,
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("sealkey audit (secrets in staged manifests)") && all.contains("Failed"),
        "{all}"
    );
    assert!(all.contains("SK006"), "{all}");
    // Nothing staged that the hook cares about: skipped, exit 0.
    git(&repo, &["rm", "-q", "--cached", "secret.yaml"], &cache);
    std::fs::write(repo.join("README.md"), "hello\n").unwrap();
    git(&repo, &["add", "README.md"], &cache);
    let out = run(
        &repo,
        &pre_commit(),
        &["try-repo", root().to_str().unwrap(), "sealkey-audit"],
        &cache,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

// Was: `pass_filenames: false` with `--staged` audited only the staged changes, so under
// `pre-commit run --all-files` (nothing staged) a committed plaintext Secret passed.
#[test]
fn pre_commit_run_all_files_catches_a_committed_plaintext_secret() {
    let dir = tempfile::tempdir().unwrap();
    let (repo, cache) = (dir.path().join("repo"), dir.path().join("cache"));
    std::fs::create_dir_all(repo.join("deploy")).unwrap();
    assert!(git(&repo, &["init", "-q"], &cache).status.success());
    std::fs::write(repo.join(".pre-commit-config.yaml"), documented_config()).unwrap();
    std::fs::write(repo.join("deploy/secret.yaml"), PLAIN_SECRET).unwrap();
    std::fs::write(
        repo.join("deploy/-dash.yaml"),
        "kind: ConfigMap\nmetadata: {name: c}\n",
    )
    .unwrap();
    git(&repo, &["add", "."], &cache);
    // Committed without the hook: the Secret is in history and nothing is staged.
    let commit = git(
        &repo,
        &["commit", "-q", "--no-verify", "-m", "old secret"],
        &cache,
    );
    assert!(commit.status.success(), "{}", text(&commit));

    let out = run(&repo, &pre_commit(), &["run", "--all-files"], &cache);
    let all = text(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "documented config passed:\n{all}"
    );
    assert!(
        all.contains("SK006") && all.contains("deploy/secret.yaml"),
        "{all}"
    );
    assert!(
        !all.contains("not-a-real-key"),
        "the hook printed the value:\n{all}"
    );

    // The published hook, the same way.
    let out = run(
        &repo,
        &pre_commit(),
        &[
            "try-repo",
            root().to_str().unwrap(),
            "sealkey-audit",
            "--all-files",
        ],
        &cache,
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "published hook passed:\n{all}");
    assert!(
        all.contains("SK006") && all.contains("deploy/secret.yaml"),
        "{all}"
    );
}
