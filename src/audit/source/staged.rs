//! The files staged in git (`--staged`, for a pre-commit hook): their staged content, read
//! from the index with `git cat-file --batch`, not the working tree.

use crate::audit::Input;
use crate::error::{Error, Result};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use zeroize::Zeroizing;

/// Lists staged `.yaml`/`.yml`/`.json` files (added, copied, modified, renamed) in the
/// repository containing `dir`. Paths are relative to the repository root.
pub fn staged_paths(dir: &Path) -> Result<Vec<String>> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args([
            "diff",
            "--cached",
            "--name-only",
            "-z",
            "--diff-filter=ACMR",
        ])
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| {
            Error::input(
                "--staged",
                format!("cannot run git: {e}"),
                "install git, or pass files instead of --staged",
            )
        })?;
    if !out.status.success() {
        return Err(Error::input(
            "--staged",
            format!(
                "git diff --cached failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            "run it inside a git repository (the pre-commit hook does)",
        ));
    }
    Ok(out
        .stdout
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .filter(|p| super::files::is_manifest(Path::new(p)))
        .collect())
}

/// Staged blobs, read one at a time.
pub struct StagedBlobs {
    child: Child,
    stdout: BufReader<ChildStdout>,
    names: std::vec::IntoIter<String>,
    writer: Option<std::thread::JoinHandle<()>>,
}

/// Starts `git cat-file --batch` over the staged paths.
pub fn staged_blobs(dir: &Path, paths: Vec<String>) -> Result<StagedBlobs> {
    let root = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["rev-parse", "--show-toplevel"])
        .output()
        .map_err(|e| Error::input("--staged", format!("cannot run git: {e}"), "install git"))?;
    let root = String::from_utf8_lossy(&root.stdout).trim().to_string();
    let mut child = Command::new("git")
        .arg("-C")
        .arg(&root)
        .args(["cat-file", "--batch"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| Error::input("--staged", format!("cannot run git: {e}"), "install git"))?;
    let mut stdin = child.stdin.take().expect("piped stdin");
    let requests: Vec<String> = paths.iter().map(|p| format!(":{p}\n")).collect();
    let writer = std::thread::spawn(move || {
        for r in requests {
            if stdin.write_all(r.as_bytes()).is_err() {
                break;
            }
        }
    });
    let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    Ok(StagedBlobs {
        child,
        stdout,
        names: paths.into_iter(),
        writer: Some(writer),
    })
}

impl Iterator for StagedBlobs {
    type Item = Input;

    fn next(&mut self) -> Option<Input> {
        let name = self.names.next()?;
        let mut header = String::new();
        if self.stdout.read_line(&mut header).ok()? == 0 {
            return Some(Input::Unreadable(name, "git cat-file ended early".into()));
        }
        let size = header
            .split_whitespace()
            .nth(2)
            .and_then(|s| s.parse::<usize>().ok());
        let Some(size) = size.filter(|_| header.split_whitespace().nth(1) == Some("blob")) else {
            return Some(Input::Unreadable(name, "not in the git index".into()));
        };
        let mut content = Zeroizing::new(vec![0u8; size + 1]);
        if self.stdout.read_exact(&mut content).is_err() {
            return Some(Input::Unreadable(name, "git cat-file ended early".into()));
        }
        content.truncate(size);
        Some(Input::Bytes(name, content))
    }
}

impl Drop for StagedBlobs {
    fn drop(&mut self) {
        // Kill first: a writer blocked on a full pipe then fails and ends.
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}
