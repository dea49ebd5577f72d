//! Files and directories: directories are walked recursively and lazily (one directory listing
//! in memory per level), in sorted order, keeping `.yaml`, `.yml` and `.json` files. Hidden
//! entries and the `templates/` directory of a Helm chart (a directory with `Chart.yaml`) are
//! skipped: those are Go templates, not YAML (audit `helm template` output instead).
//!
//! The tree may be hostile (CI audits pull requests): symlinks are followed, but every directory
//! and every file is visited once by its (device, inode), so symlink loops end; only regular
//! files are read, and no more than the size limit of them ([`read_regular`]).
//!
//! Memory does not grow with the number of files: the walk remembers the (device, inode) of every
//! directory it enters, but of a file only when the file can be reached by a second path (see
//! [`Walk`]).

use crate::audit::Input;
use std::collections::HashSet;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The largest input read by default: 16 MiB (`--max-file-size`).
pub const DEFAULT_MAX_FILE_SIZE: u64 = 16 * 1024 * 1024;

/// Whether a file name is one the audit reads.
pub fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// Inputs from command-line paths (`-` is stdin, read by the caller).
///
/// Every directory is entered once (by its (device, inode)), so a file directly in one is listed
/// once; it has a second path only if it has more than one hard link, or a symlink (or a root
/// path) names it. So the walk remembers a file's (device, inode) only when the file is one of
/// those: one with several links, or one reached through a symlink or as a root whose own
/// directory has not been entered yet (when it has, the file was or will be handed out from that
/// directory's listing, so the link is skipped). A plain file is only looked up, never stored.
pub struct Walk {
    roots: std::vec::IntoIter<PathBuf>,
    stack: Vec<std::vec::IntoIter<PathBuf>>,
    /// (device, inode) of every directory entered and of every file handed out that can be
    /// reached by another path.
    seen: HashSet<(u64, u64)>,
    skipped: Option<std::sync::Arc<Skipped>>,
}

/// Files a directory walk passed over because they are not manifests (by extension), so a run
/// that audited nothing can say what it saw.
#[derive(Debug, Default)]
pub struct Skipped {
    count: std::sync::atomic::AtomicUsize,
    examples: std::sync::Mutex<Vec<String>>,
}

impl Skipped {
    fn note(&self, path: &Path) {
        self.count
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut ex = self.examples.lock().unwrap_or_else(|e| e.into_inner());
        if ex.len() < 5 {
            ex.push(path.display().to_string());
        }
    }

    /// How many files were passed over.
    pub fn count(&self) -> usize {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Up to five of them.
    pub fn examples(&self) -> Vec<String> {
        self.examples
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Walks `paths`: files are taken as given (whatever their extension), directories recursively.
/// A directory or file reached again (through a symlink or a hard link) is skipped.
pub fn walk(paths: Vec<PathBuf>) -> Walk {
    Walk {
        roots: paths.into_iter(),
        stack: Vec::new(),
        seen: HashSet::new(),
        skipped: None,
    }
}

/// [`walk`], noting every file it passes over in `skipped`.
pub fn walk_noting_skipped(paths: Vec<PathBuf>, skipped: std::sync::Arc<Skipped>) -> Walk {
    Walk {
        skipped: Some(skipped),
        ..walk(paths)
    }
}

/// Whether a directory listing keeps an entry of this name (hidden ones are skipped).
fn listed(name: &std::ffi::OsStr) -> bool {
    !name.to_string_lossy().starts_with('.')
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, std::io::Error> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| listed(&e.file_name()))
        .map(|e| e.path())
        .collect();
    // A Helm chart's templates are Go templates, not YAML: audit `helm template` output instead.
    if entries
        .iter()
        .any(|p| p.file_name().is_some_and(|n| n == "Chart.yaml"))
    {
        entries.retain(|p| p.file_name().is_none_or(|n| n != "templates"));
    }
    entries.sort();
    Ok(entries)
}

impl Iterator for Walk {
    type Item = Input;

    fn next(&mut self) -> Option<Input> {
        loop {
            let (path, from_dir) = match self.stack.last_mut() {
                Some(level) => match level.next() {
                    Some(p) => (p, true),
                    None => {
                        self.stack.pop();
                        continue;
                    }
                },
                None => (self.roots.next()?, false),
            };
            // lstat first: for anything but a symlink it is the stat the walk needs.
            let mut linked = false;
            let meta = match std::fs::symlink_metadata(&path) {
                Ok(m) if m.file_type().is_symlink() => {
                    linked = true;
                    std::fs::metadata(&path)
                }
                other => other,
            };
            let meta = match meta {
                Ok(m) => m,
                // A dangling link or a vanished entry the audit would not have read anyway.
                Err(_) if from_dir && !is_manifest(&path) => continue,
                Err(e) => {
                    return Some(Input::Unreadable(
                        path.display().to_string(),
                        format!("cannot read: {e}; {}", unreadable_hint(&e)),
                    ))
                }
            };
            let id = (meta.dev(), meta.ino());
            if meta.is_dir() {
                if !self.seen.insert(id) {
                    // Reached again through a symlink (or a loop of them): walked once.
                    continue;
                }
                match list_dir(&path) {
                    Ok(entries) => self.stack.push(entries.into_iter()),
                    Err(e) => {
                        return Some(Input::Unreadable(
                            path.display().to_string(),
                            format!("cannot list directory: {e}; {}", unreadable_hint(&e)),
                        ))
                    }
                }
                continue;
            }
            if from_dir && !is_manifest(&path) {
                if let Some(s) = &self.skipped {
                    s.note(&path);
                }
                continue;
            }
            // Non-regular files are refused (by the reader, with the reason) each time.
            if meta.is_file() {
                if self.seen.contains(&id) {
                    // Handed out before, through a link or another hard link.
                    continue;
                }
                if linked || !from_dir {
                    if self.listed_where_it_lives(&path) {
                        continue;
                    }
                    self.seen.insert(id);
                } else if meta.nlink() > 1 {
                    self.seen.insert(id);
                }
            }
            return Some(Input::Path(path));
        }
    }
}

impl Walk {
    /// Whether `path` (a symlink or a root naming a regular file) is also handed out from the
    /// listing of the directory the file really lives in: that directory has been entered
    /// (its listing was taken then) and keeps the file's name.
    fn listed_where_it_lives(&self, path: &Path) -> bool {
        let Ok(real) = std::fs::canonicalize(path) else {
            return false;
        };
        let (Some(dir), Some(name)) = (real.parent(), real.file_name()) else {
            return false;
        };
        listed(name)
            && is_manifest(&real)
            && std::fs::metadata(dir).is_ok_and(|m| self.seen.contains(&(m.dev(), m.ino())))
    }
}

/// What to do about a path the audit cannot open.
fn unreadable_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::NotFound => {
            "check the path (audit takes files, directories, or `-` for stdin)"
        }
        std::io::ErrorKind::PermissionDenied => {
            "run as a user who may read it, or leave it out of the paths"
        }
        _ => "check the path and its permissions",
    }
}

pub use crate::input_file::human_size;

pub(crate) fn too_large(max: u64) -> String {
    format!(
        "refused: larger than the {} limit; audit it with a larger --max-file-size if it is \
         meant to be this big",
        human_size(max)
    )
}

/// Reads a regular file of at most `max` bytes, into a buffer wiped on drop; anything else is
/// refused with the reason, without blocking ([`crate::input_file::read_regular`], the one
/// opener for every file sealkey is told to read).
pub fn read_regular(path: &Path, max: u64) -> Result<Zeroizing<Vec<u8>>, String> {
    use crate::input_file::Unreadable;
    crate::input_file::read_regular(path, max)
        .map(|(bytes, _)| bytes)
        .map_err(|e| match e {
            Unreadable::NotRegular {
                kind,
                through_symlink,
            } => format!(
                "refused: {}{kind}, not a regular file (audit reads regular files only)",
                if through_symlink { "a symlink to " } else { "" },
            ),
            Unreadable::TooLarge => too_large(max),
            Unreadable::Io(e) => format!("cannot read: {e}; {}", unreadable_hint(&e)),
        })
}

pub use crate::secret::{read_limited, Limited};

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn handed_out(walk: &mut Walk) -> Vec<PathBuf> {
        walk.by_ref()
            .map(|i| match i {
                Input::Path(p) => p,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    /// Memory: a tree of plain files costs the walk one remembered (device, inode) per
    /// directory, none per file. (Was one per file: 10,000 files, 0.27 MiB.)
    #[test]
    fn plain_files_are_not_remembered_only_directories() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("sub")).unwrap();
        for i in 0..40 {
            fs::write(dir.path().join(format!("f{i}.yaml")), "a: 1\n").unwrap();
            fs::write(dir.path().join(format!("sub/g{i}.yaml")), "a: 1\n").unwrap();
        }
        let mut w = walk(vec![dir.path().to_path_buf()]);
        assert_eq!(handed_out(&mut w).len(), 80);
        assert_eq!(w.seen.len(), 2, "the two directories only");
    }

    /// Each real file is handed out once whichever path comes first: a symlink sorted after its
    /// target, one sorted before it, a hard link pair, a symlink to a hard link, a symlink to a
    /// file in a directory entered later, and a root naming a file inside a root directory.
    #[test]
    fn a_hardlinked_and_a_symlinked_file_are_handed_out_once_whichever_comes_first() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().join("d");
        fs::create_dir_all(d.join("z-later")).unwrap();
        for f in ["a.yaml", "m.yaml", "hard-1.yaml", "z-later/t.yaml"] {
            fs::write(d.join(f), f).unwrap();
        }
        fs::hard_link(d.join("hard-1.yaml"), d.join("hard-2.yaml")).unwrap();
        let link = |target: &str, name: &str| {
            std::os::unix::fs::symlink(target, d.join(name)).unwrap();
        };
        link("a.yaml", "b-after-target.yaml");
        link("m.yaml", "0-before-target.yaml");
        link("hard-2.yaml", "c-to-hard-link.yaml");
        link("z-later/t.yaml", "1-into-later-dir.yaml");
        // Kept only through the link: the listing skips hidden files and other extensions.
        fs::write(d.join(".hidden.yaml"), "h").unwrap();
        fs::write(d.join("notes.txt"), "n").unwrap();
        link(".hidden.yaml", "h-link.yaml");
        link("notes.txt", "n-link.yaml");
        for roots in [
            vec![d.clone()],
            vec![d.clone(), d.join("a.yaml")],
            vec![d.join("m.yaml"), d.clone()],
        ] {
            let mut w = walk(roots.clone());
            let out = handed_out(&mut w);
            let mut real: Vec<PathBuf> = out.iter().map(|p| fs::canonicalize(p).unwrap()).collect();
            real.sort();
            let mut names: Vec<String> = real
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect();
            names.dedup();
            assert_eq!(
                names.len(),
                real.len(),
                "{roots:?}: a file twice in {out:?}"
            );
            // hard-1 and hard-2 are one file: whichever name was handed out.
            let files: Vec<&str> = names
                .iter()
                .map(|n| if n.starts_with("hard-") { "hard" } else { n })
                .collect();
            assert_eq!(
                files,
                [
                    ".hidden.yaml",
                    "a.yaml",
                    "hard",
                    "m.yaml",
                    "notes.txt",
                    "t.yaml"
                ],
                "{roots:?}: {out:?}"
            );
        }
    }
}
