//! The files staged in git (`--staged`, for a pre-commit hook): their staged content, read
//! from the index, not the working tree.
//!
//! Everything git says goes through NUL-separated plumbing (`diff --cached --raw -z`,
//! `ls-files -s -z`) and blobs are read by object id (`cat-file --batch` is fed hex ids, one a
//! line), so no file name, whatever bytes it holds (a newline, say), can desynchronise what is
//! read from what is reported.

use crate::audit::report::text::printable;
use crate::audit::source::files;
use crate::audit::Input;
use crate::error::{Error, Result, Setting};
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};

/// One file to audit and where its content is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StagedFile {
    /// The name to report.
    pub name: String,
    /// Where the content is.
    pub source: StagedSource,
}

/// Where a staged file's content is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StagedSource {
    /// A blob in the index, by object id (hex).
    Blob(String),
    /// Not in the index: the working-tree file.
    WorkTree(PathBuf),
    /// In the index, but not as a regular file (why).
    Refused(String),
}

/// The repository around `dir`: its work tree root and `dir`'s path inside it (`sub/`, or
/// empty at the root). Outside a work tree this is one clear input error.
pub struct Repository {
    root: PathBuf,
    prefix: Vec<u8>,
}

/// Settings that make git run a program, or write, while it answers a plumbing question; each
/// is overridden on the command line, which beats every configuration file, so a repository's
/// own `.git/config` (anyone who can hand over a repository or a tarball writes it) runs
/// nothing. Filters and textconv never run: blobs are read with `cat-file --batch` (no
/// `--filters`, no `--textconv`), diffs are `--raw` with `--no-ext-diff`.
const NEUTRAL_CONFIG: &[&str] = &[
    // A hook script git runs to ask which files changed (`diff --cached`, `ls-files`).
    "core.fsmonitor=false",
    "core.untrackedCache=false",
    "core.hooksPath=/dev/null",
    "core.pager=cat",
    "diff.external=",
    // A partial clone fetches missing blobs, through `core.sshCommand` or a remote helper.
    "protocol.allow=never",
    "core.sshCommand=false",
];

/// git in `dir`, for reading only: the repository's configuration neutralised
/// ([`NEUTRAL_CONFIG`]), no pager, no optional lock (the index is not refreshed or rewritten),
/// and an environment holding nothing but what git needs ([`crate::child::GIT_ENV`]): no
/// token or cloud credential reaches it or anything it might start.
fn git(dir: &Path) -> Command {
    let mut c = crate::child::command("git", crate::child::GIT_ENV);
    c.env("GIT_OPTIONAL_LOCKS", "0")
        .env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_NO_LAZY_FETCH", "1")
        .env("GIT_PROTOCOL_FROM_USER", "0");
    c.arg("--no-pager");
    for setting in NEUTRAL_CONFIG {
        c.arg("-c").arg(setting);
    }
    c.arg("-C").arg(dir);
    c
}

/// git is not there (or cannot be started).
fn cannot_run_git(e: std::io::Error) -> Error {
    Error::input(
        Setting::Staged,
        format!("cannot run git: {e}"),
        crate::message!("install git, or pass files without {}", Setting::Staged),
    )
    .caused_by(e)
}

fn run_git(mut cmd: Command, what: &str) -> Result<Output> {
    let out = cmd.stdin(Stdio::null()).output().map_err(cannot_run_git)?;
    if !out.status.success() {
        // git's first line only (its usage text would bury the point), shown safely.
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        return Err(Error::input(
            Setting::Staged,
            format!("{what} failed: {}", printable(first.trim())),
            "run it inside a git work tree (the pre-commit hook does)",
        ));
    }
    Ok(out)
}

impl Repository {
    /// Finds the work tree containing `dir`.
    pub fn around(dir: &Path) -> Result<Repository> {
        let mut cmd = git(dir);
        cmd.args([
            "rev-parse",
            "--is-inside-work-tree",
            "--show-toplevel",
            "--show-prefix",
        ]);
        let out = cmd.stdin(Stdio::null()).output().map_err(cannot_run_git)?;
        let stdout = out.stdout.strip_suffix(b"\n").unwrap_or(&out.stdout);
        let mut lines = stdout.split(|b| *b == b'\n');
        let inside = lines.next() == Some(b"true".as_slice());
        let root = lines.next().filter(|r| !r.is_empty());
        let (true, Some(root)) = (out.status.success() && inside, root) else {
            return Err(Error::input(
                Setting::Staged,
                "the current directory is not in a git repository's work tree",
                crate::message!("run it inside the repository (the pre-commit hook does), or pass files without {}", Setting::Staged),
            ));
        };
        Ok(Repository {
            root: PathBuf::from(OsStr::from_bytes(root)),
            prefix: lines.next().unwrap_or_default().to_vec(),
        })
    }

    /// The staged changes (added, copied, modified; renames count as added) to `.yaml`, `.yml`
    /// and `.json` files, as regular files in the index. Names are relative to the root.
    pub fn staged_changes(&self) -> Result<Vec<StagedFile>> {
        let mut cmd = git(&self.root);
        cmd.args([
            "diff",
            "--cached",
            "--raw",
            "-z",
            "--no-abbrev",
            "--no-renames",
            "--no-ext-diff",
            "--diff-filter=ACM",
        ]);
        let out = run_git(cmd, "git diff --cached")?;
        // `:OLDMODE NEWMODE OLDID NEWID STATUS\0PATH\0`, repeated.
        let mut fields = out.stdout.split(|b| *b == 0);
        let mut staged = Vec::new();
        while let (Some(meta), Some(path)) = (fields.next(), fields.next()) {
            let meta = String::from_utf8_lossy(meta);
            let parts: Vec<&str> = meta.trim_start_matches(':').split(' ').collect();
            let (Some(mode), Some(id)) = (parts.get(1), parts.get(3)) else {
                continue;
            };
            let path = Path::new(OsStr::from_bytes(path));
            if !files::is_manifest(path) || !is_regular_mode(mode) {
                continue;
            }
            staged.push(StagedFile {
                name: path.to_string_lossy().into_owned(),
                source: StagedSource::Blob(id.to_string()),
            });
        }
        Ok(staged)
    }

    /// Exactly the files named (relative to the current directory, as pre-commit passes them):
    /// the index content of those it holds, the working-tree file for the others (pre-commit
    /// stashes unstaged changes, so the two are the same then). A directory selects the
    /// manifests under it.
    pub fn named(&self, paths: &[PathBuf]) -> Result<Vec<StagedFile>> {
        // Each path as a root-relative key; `None` when it is outside the work tree.
        let keys: Vec<Option<Vec<u8>>> = paths.iter().map(|p| self.key_of(p)).collect();
        // The whole index, streamed, keeping only the entries named (or under a directory
        // named): linear in the index, where pathspecs would match every entry against every
        // name (pre-commit passes thousands under --all-files). `MODE ID STAGE\tPATH\0`.
        let wanted: std::collections::HashSet<&[u8]> =
            keys.iter().flatten().map(Vec::as_slice).collect();
        let mut index: Vec<(Vec<u8>, String, String)> = Vec::new();
        if !wanted.is_empty() {
            let mut child = git(&self.root)
                .args(["ls-files", "-s", "-z", "--full-name"])
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .map_err(cannot_run_git)?;
            let stderr = child.stderr.take().map(|mut e| {
                std::thread::spawn(move || {
                    let mut buf = Vec::new();
                    let _ = e.read_to_end(&mut buf);
                    buf
                })
            });
            if let Some(stdout) = child.stdout.take() {
                let mut stdout = BufReader::new(stdout);
                let mut record = Vec::new();
                while matches!(stdout.read_until(0, &mut record), Ok(n) if n > 0) {
                    if record.last() == Some(&0) {
                        record.pop();
                    }
                    if let Some(entry) = index_entry(&record, &wanted) {
                        index.push(entry);
                    }
                    record.clear();
                }
            }
            let status = child.wait().map_err(|e| {
                Error::input(
                    Setting::Staged,
                    format!("git ls-files failed: {e}"),
                    "report it",
                )
            })?;
            let stderr = stderr.and_then(|t| t.join().ok()).unwrap_or_default();
            if !status.success() {
                let stderr = String::from_utf8_lossy(&stderr);
                let first = stderr.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
                return Err(Error::input(
                    Setting::Staged,
                    format!("git ls-files failed: {}", printable(first.trim())),
                    "run it inside a git work tree (the pre-commit hook does)",
                ));
            }
            index.sort();
        }
        let mut out = Vec::new();
        let mut taken = std::collections::HashSet::new();
        for (path, key) in paths.iter().zip(&keys) {
            let name = path.to_string_lossy().into_owned();
            let Some(key) = key else {
                out.push(StagedFile {
                    name,
                    source: StagedSource::WorkTree(path.clone()),
                });
                continue;
            };
            let exact = index.binary_search_by(|(p, _, _)| p.as_slice().cmp(key));
            if let Ok(i) = exact {
                let (_, mode, id) = &index[i];
                if taken.insert(i) {
                    out.push(StagedFile {
                        name,
                        source: source_of(mode, id),
                    });
                }
                continue;
            }
            // A directory: the manifests under it, in index order.
            let mut dir = key.clone();
            if !dir.is_empty() {
                dir.push(b'/');
            }
            let start = index.partition_point(|(p, _, _)| p.as_slice() < dir.as_slice());
            let mut found = false;
            for (i, (p, mode, id)) in index.iter().enumerate().skip(start) {
                let Some(rest) = p.strip_prefix(dir.as_slice()) else {
                    break;
                };
                found = true;
                if files::is_manifest(Path::new(OsStr::from_bytes(p))) && taken.insert(i) {
                    out.push(StagedFile {
                        name: path
                            .join(OsStr::from_bytes(rest))
                            .to_string_lossy()
                            .into_owned(),
                        source: source_of(mode, id),
                    });
                }
            }
            if !found {
                out.push(StagedFile {
                    name,
                    source: StagedSource::WorkTree(path.clone()),
                });
            }
        }
        Ok(out)
    }

    /// `path` (relative to the current directory, or absolute) relative to the root, resolved
    /// lexically; `None` outside the work tree.
    fn key_of(&self, path: &Path) -> Option<Vec<u8>> {
        let relative: PathBuf = if path.is_absolute() {
            let root = self
                .root
                .canonicalize()
                .unwrap_or_else(|_| self.root.clone());
            let abs = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
            abs.strip_prefix(&root).ok()?.to_path_buf()
        } else {
            Path::new(OsStr::from_bytes(&self.prefix)).join(path)
        };
        let mut parts: Vec<&OsStr> = Vec::new();
        for c in relative.components() {
            match c {
                Component::Normal(p) => parts.push(p),
                Component::CurDir => {}
                Component::ParentDir => {
                    parts.pop()?;
                }
                Component::RootDir | Component::Prefix(_) => return None,
            }
        }
        // Empty: the root itself.
        Some(parts.join(OsStr::new("/")).as_bytes().to_vec())
    }

    /// Reads the files' content: blobs by id from one `git cat-file --batch`, working-tree
    /// files as regular files; each at most `max_bytes`.
    pub fn blobs(&self, files: Vec<StagedFile>, max_bytes: u64) -> Result<StagedBlobs> {
        let mut child = git(&self.root)
            .args(["cat-file", "--batch"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(cannot_run_git)?;
        let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(Error::input(
                Setting::Staged,
                "git cat-file has no pipes",
                "report it",
            ));
        };
        let requests: Vec<String> = files
            .iter()
            .filter_map(|f| match &f.source {
                StagedSource::Blob(id) => Some(format!("{id}\n")),
                _ => None,
            })
            .collect();
        let writer = std::thread::spawn(move || {
            for r in requests {
                if stdin.write_all(r.as_bytes()).is_err() {
                    break;
                }
            }
        });
        Ok(StagedBlobs {
            child,
            stdout: BufReader::new(stdout),
            files: files.into_iter(),
            writer: Some(writer),
            max_bytes,
        })
    }
}

/// An `ls-files -s` record as (path, mode, id) when it is at stage 0 and its path, or a
/// directory above it, is wanted (the empty key is the root).
fn index_entry(
    record: &[u8],
    wanted: &std::collections::HashSet<&[u8]>,
) -> Option<(Vec<u8>, String, String)> {
    let tab = record.iter().position(|b| *b == b'\t')?;
    let path = &record[tab + 1..];
    let selected = wanted.contains(path)
        || wanted.contains(b"".as_slice())
        || path
            .iter()
            .enumerate()
            .any(|(i, b)| *b == b'/' && wanted.contains(&path[..i]));
    if !selected {
        return None;
    }
    let meta = String::from_utf8_lossy(&record[..tab]);
    let parts: Vec<&str> = meta.split(' ').collect();
    match parts[..] {
        [mode, id, "0"] => Some((path.to_vec(), mode.to_string(), id.to_string())),
        _ => None,
    }
}

fn is_regular_mode(mode: &str) -> bool {
    matches!(mode, "100644" | "100755")
}

fn source_of(mode: &str, id: &str) -> StagedSource {
    if is_regular_mode(mode) {
        StagedSource::Blob(id.to_string())
    } else {
        StagedSource::Refused(format!(
            "refused: staged as {}, not a regular file (audit reads regular files only)",
            match mode {
                "120000" => "a symlink",
                "160000" => "a submodule",
                _ => "something else",
            }
        ))
    }
}

/// Staged files' content, read one at a time.
pub struct StagedBlobs {
    child: Child,
    stdout: BufReader<ChildStdout>,
    files: std::vec::IntoIter<StagedFile>,
    writer: Option<std::thread::JoinHandle<()>>,
    max_bytes: u64,
}

impl StagedBlobs {
    /// The next blob from `git cat-file`, which answers requests in order.
    fn read_blob(&mut self, name: String, id: &str) -> Input {
        let mut header = Vec::new();
        if !matches!(self.stdout.read_until(b'\n', &mut header), Ok(n) if n > 0) {
            return Input::Unreadable(name, "git cat-file ended early".into());
        }
        let header = String::from_utf8_lossy(&header);
        let parts: Vec<&str> = header.split_whitespace().collect();
        let size = match parts[..] {
            [got, "blob", size] if got == id => size.parse::<u64>().ok(),
            _ => None,
        };
        let Some(size) = size else {
            return Input::Unreadable(name, "not a blob in the git index".into());
        };
        if size > self.max_bytes {
            // Skip it (and its newline) unread, so the next answer starts where it should.
            let skipped =
                std::io::copy(&mut (&mut self.stdout).take(size + 1), &mut std::io::sink());
            if !matches!(skipped, Ok(n) if n == size + 1) {
                return Input::Unreadable(name, "git cat-file ended early".into());
            }
            return Input::Unreadable(name, super::files::too_large(self.max_bytes));
        }
        let content = files::read_limited((&mut self.stdout).take(size + 1), size + 1, size);
        match content {
            Ok(mut content) if content.len() as u64 == size + 1 => {
                content.truncate(size as usize);
                Input::Bytes(name, content)
            }
            _ => Input::Unreadable(name, "git cat-file ended early".into()),
        }
    }
}

impl Iterator for StagedBlobs {
    type Item = Input;

    fn next(&mut self) -> Option<Input> {
        let file = self.files.next()?;
        Some(match file.source {
            StagedSource::Blob(id) => self.read_blob(file.name, &id),
            StagedSource::WorkTree(path) => Input::Path(path),
            StagedSource::Refused(why) => Input::Unreadable(file.name, why),
        })
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
