//! Files and directories: directories are walked recursively and lazily (one directory listing
//! in memory per level), in sorted order, keeping `.yaml`, `.yml` and `.json` files. Hidden
//! entries and the `templates/` directory of a Helm chart (a directory with `Chart.yaml`) are
//! skipped: those are Go templates, not YAML (audit `helm template` output instead).

use crate::audit::Input;
use std::path::{Path, PathBuf};

/// Whether a file name is one the audit reads.
pub fn is_manifest(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

/// Inputs from command-line paths (`-` is stdin, read by the caller).
pub struct Walk {
    roots: std::vec::IntoIter<PathBuf>,
    stack: Vec<std::vec::IntoIter<PathBuf>>,
}

/// Walks `paths`: files are taken as given (whatever their extension), directories recursively.
pub fn walk(paths: Vec<PathBuf>) -> Walk {
    Walk {
        roots: paths.into_iter(),
        stack: Vec::new(),
    }
}

fn list_dir(dir: &Path) -> Result<Vec<PathBuf>, std::io::Error> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
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
            let meta = match std::fs::metadata(&path) {
                Ok(m) => m,
                Err(e) => {
                    return Some(Input::Unreadable(
                        path.display().to_string(),
                        format!("cannot read: {e}; {}", unreadable_hint(&e)),
                    ))
                }
            };
            if meta.is_dir() {
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
                continue;
            }
            return Some(Input::Path(path));
        }
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
