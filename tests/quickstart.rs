//! docs/quickstart.md runs (issue 12, J): every ```` ```sh offline ```` block of the page, in order,
//! in one bash session with a fresh HOME and working directory, `sealkey` on PATH and `kubectl`
//! replaced by a recorder (the page's last step pipes into `kubectl apply --server-side -f -`). Then the end state
//! is checked the way its consumers would check it: Flux's view of the committed file (the npm
//! SOPS decoders), the key matching the printed public key (ssh-keygen), and what kubectl got.
//! A page edit that breaks a step, or a binary change that breaks the page, fails here.

mod support;

use support::root;

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `sh offline` blocks, in page order.
fn offline_blocks(md: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in md.lines() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut current, fence) {
            (None, Some(lang)) if lang.trim() == "sh offline" => current = Some(String::new()),
            (Some(_), Some(_)) => blocks.push(current.take().unwrap()),
            (Some(block), None) => {
                block.push_str(line);
                block.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

fn write_exec(path: &Path, text: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn the_quickstarts_offline_steps_run_in_order_and_leave_what_they_promise() {
    let md = std::fs::read_to_string(root().join("docs/quickstart.md")).unwrap();
    let blocks = offline_blocks(&md);
    assert!(blocks.len() >= 4, "found {} offline blocks", blocks.len());
    let tmp = tempfile::tempdir().unwrap();
    let (home, work, bin) = (
        tmp.path().join("home"),
        tmp.path().join("work"),
        tmp.path().join("bin"),
    );
    for d in [&home, &work, &bin] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::os::unix::fs::symlink(support::sealkey_bin(), bin.join("sealkey")).unwrap();
    let applied = tmp.path().join("kubectl-applied.yaml");
    write_exec(
        &bin.join("kubectl"),
        &format!("#!/bin/sh\n# Only forms that keep no clear copy of the Secret in last-applied-configuration (issue 21.11).\ncase \"$*\" in \"create -f -\"|\"apply --server-side -f -\") ;; *) echo \"kubectl stand-in: $*\" >&2; exit 2;; esac\ncat > '{}'\n", applied.display()),
    );
    support::required_tool("age-keygen");
    // One bash session, so variables (RECIPIENT) carry from block to block; a marker line after
    // each block records that it ran, and `set -e -o pipefail` stops at the first failing step.
    let mut script = String::from("set -euo pipefail\n");
    for (i, b) in blocks.iter().enumerate() {
        script.push_str(b);
        script.push_str(&format!("echo '--- step {} done' >&2\n", i + 1));
    }
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(&work)
        .env_clear()
        .env("HOME", &home)
        .env("PATH", path)
        .env("TMPDIR", tmp.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the quickstart stopped:\n{stderr}");
    for i in 1..=blocks.len() {
        assert!(stderr.contains(&format!("--- step {i} done")), "{stderr}");
    }

    // Step: the identity exists where the page says, 0600 as age-keygen writes it.
    let identity = home.join(".config/sealkey/age-identity.txt");
    let file = work.join("clusters/dev/airflow-dags");
    let docs = support::npm_sops_decode(&file, &identity)
        .unwrap_or_else(|e| panic!("Flux could not decrypt: {e}"));
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["HelmRelease", "Secret"]);
    // The key in it is the one whose public half the page told the user to register.
    let printed = support::printed_public_key(&out.stderr);
    let key = support::private_key_in(&docs);
    assert_eq!(
        support::bare(&support::ssh_public_of(tmp.path(), &key)),
        support::bare(&printed)
    );
    // Step: inspect printed the objects and the deploy key without decrypting.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("HelmRelease dev/airflow") && stdout.contains("encrypted: data.gitSshKey"),
        "{stdout}"
    );
    let fp = stderr
        .lines()
        .find_map(|l| l.strip_prefix("fingerprint: "))
        .unwrap();
    assert!(stdout.contains(&format!("deploy key: {fp}")), "{stdout}");
    // Step: unseal handed kubectl exactly the decrypted objects.
    let applied = std::fs::read(&applied).expect("kubectl apply got the unsealed stream");
    assert_eq!(support::yaml_docs(&applied), docs);
    // Nothing but the sealed file and the identity was written.
    let mut written: Vec<PathBuf> = walk(&work);
    written.sort();
    let mut expected: Vec<PathBuf> = [
        "helmrelease-airflow.yaml",
        "kustomization.yaml",
        "secret-airflow-ssh-secret.sops.yaml",
    ]
    .iter()
    .map(|f| file.join(f))
    .collect();
    expected.sort();
    assert_eq!(written, expected, "files under the working directory");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}
