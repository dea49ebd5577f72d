//! Files and directories: directories are walked recursively and lazily (one directory listing
//! in memory per level), in sorted order, keeping `.yaml`, `.yml` and `.json` files. Hidden
//! entries and the `templates/` directory of a Helm chart (a directory with `Chart.yaml`) are
//! skipped: those are Go templates, not YAML (audit `helm template` output instead).
//!
//! The tree may be hostile (CI audits pull requests): symlinks are followed, but every directory
//! and every file is visited once by its (device, inode), so symlink loops end; only regular
//! files are read, and no more than the size limit of them ([`read_regular`]).

use crate::audit::Input;
use std::collections::HashSet;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
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
pub struct Walk {
    roots: std::vec::IntoIter<PathBuf>,
    stack: Vec<std::vec::IntoIter<PathBuf>>,
    /// (device, inode) of every directory and regular file handed out so far.
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
            if meta.is_file() && !self.seen.insert(id) {
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

/// What kind of non-regular file a file type is, for the refusal message.
fn not_regular(t: std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Sizes in messages: `16 MiB`, `1 KiB`, `300 bytes`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if bytes >= size && bytes.is_multiple_of(size) {
            return format!("{} {unit}", bytes / size);
        }
    }
    for (unit, size) in UNITS {
        if bytes >= size {
            return format!("{:.1} {unit}", bytes as f64 / size as f64);
        }
    }
    format!("{bytes} bytes")
}

pub(crate) fn too_large(max: u64) -> String {
    format!(
        "refused: larger than the {} limit; audit it with a larger --max-file-size if it is \
         meant to be this big",
        human_size(max)
    )
}

/// Reads a regular file of at most `max` bytes, into a buffer wiped on drop. Anything else is
/// refused with the reason, without blocking: the path is stat'ed first (a device, FIFO or
/// socket is never opened), then opened non-blocking and checked again on the open descriptor
/// (it may have been swapped in between), and the read stops at `max + 1` bytes whatever the
/// size said (files in /proc say 0).
pub fn read_regular(path: &Path, max: u64) -> Result<Zeroizing<Vec<u8>>, String> {
    let cannot = |e: std::io::Error| format!("cannot read: {e}; {}", unreadable_hint(&e));
    let meta = std::fs::metadata(path).map_err(cannot)?;
    if !meta.is_file() {
        return Err(refused(path, meta.file_type()));
    }
    if meta.len() > max {
        return Err(too_large(max));
    }
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| cannot(e.into()))?;
    let file = std::fs::File::from(fd);
    let meta = file.metadata().map_err(cannot)?;
    if !meta.is_file() {
        return Err(refused(path, meta.file_type()));
    }
    if meta.len() > max {
        return Err(too_large(max));
    }
    read_limited(file, max, meta.len()).map_err(|e| match e {
        Limited::TooLarge => too_large(max),
        Limited::Io(e) => cannot(e),
    })
}

fn refused(path: &Path, t: std::fs::FileType) -> String {
    let link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    format!(
        "refused: {}{}, not a regular file (audit reads regular files only)",
        if link { "a symlink to " } else { "" },
        not_regular(t)
    )
}

/// Why [`read_limited`] stopped.
#[derive(Debug)]
pub enum Limited {
    /// More than the limit.
    TooLarge,
    /// A read failed.
    Io(std::io::Error),
}

/// Reads at most `max` bytes (`TooLarge` if there are more) into a buffer wiped on drop,
/// growing it by copying into a fresh one and wiping the old (`Vec`'s own growth would leave
/// copies of the input in freed memory). `hint` is the expected size.
pub fn read_limited(mut r: impl Read, max: u64, hint: u64) -> Result<Zeroizing<Vec<u8>>, Limited> {
    let max = usize::try_from(max).unwrap_or(usize::MAX);
    let first = usize::try_from(hint)
        .unwrap_or(0)
        .min(max)
        .saturating_add(1)
        .max(8 * 1024);
    let mut buf = Zeroizing::new(Vec::with_capacity(first));
    loop {
        if buf.len() == buf.capacity() {
            let mut bigger = Zeroizing::new(Vec::with_capacity(buf.capacity().saturating_mul(2)));
            bigger.extend_from_slice(&buf);
            buf = bigger;
        }
        let len = buf.len();
        let capacity = buf.capacity();
        buf.resize(capacity, 0); // within capacity: no reallocation
        match r.read(&mut buf[len..]) {
            Ok(0) => {
                buf.truncate(len);
                return Ok(buf);
            }
            Ok(n) => {
                buf.truncate(len + n);
                if buf.len() > max {
                    return Err(Limited::TooLarge);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => buf.truncate(len),
            Err(e) => return Err(Limited::Io(e)),
        }
    }
}
