//! Writing results: atomic `--out` files (mode 0600, temp file + rename in the same directory).

use crate::error::{Error, Result, Setting};
use crate::message;
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` with mode 0600 via a temporary file in the same directory and a
/// rename, so a crash or a full disk never leaves a half-written file in place.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_mode(path, bytes, 0o600, Setting::Out)
}

/// Like [`write_atomic`], mode 0644: for files meant to be read by everyone (man pages). Never
/// for anything derived from a secret.
pub fn write_atomic_public(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_mode(path, bytes, 0o644, Setting::Out)
}

/// Like [`write_atomic`] with the given mode: for replacing a user's own file (a HelmRelease
/// sealkey merged into) with the mode it had. Never for anything holding a secret. `setting` is
/// the one that named `path`, for errors.
pub fn write_atomic_with_mode(
    path: &Path,
    bytes: &[u8],
    mode: u32,
    setting: Setting,
) -> Result<()> {
    write_atomic_mode(path, bytes, mode, setting)
}

fn write_atomic_mode(path: &Path, bytes: &[u8], mode: u32, setting: Setting) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let file_name = path.file_name().ok_or_else(|| {
        Error::input(
            message!("{} {}", setting, path.display().to_string()),
            "not a file name",
            "give a file path such as sealed.yaml.age",
        )
    })?;
    check_target(path, setting)?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(file_name);
    tmp_name.push(format!(".sealkey-{}.tmp", std::process::id()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = open_new(&tmp, mode)?;
        f.write_all(bytes)
            .map_err(|e| Error::file("write", &tmp, e))?;
        f.sync_all().map_err(|e| Error::file("sync", &tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| Error::file("rename into place", path, e))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Refuses a target that exists and is not a regular file: the rename would replace whatever is
/// there, so a device node (`--out /dev/sda`), a FIFO, a directory's entry or a symlink (not what
/// it points to) would silently become this file. `setting` is the one that named `path`.
pub fn check_target(path: &Path, setting: Setting) -> Result<()> {
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if !meta.file_type().is_file() {
            let kind = describe(&meta.file_type());
            return Err(Error::input(
                message!("{} {}", setting, path.display().to_string()),
                format!("exists and is {kind}, not a regular file"),
                "write to a new path or over a regular file (give a symlink's target path itself)",
            ));
        }
    }
    Ok(())
}

fn describe(t: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if t.is_char_device() || t.is_block_device() {
            return "a device";
        }
        if t.is_fifo() {
            return "a FIFO";
        }
        if t.is_socket() {
            return "a socket";
        }
    }
    if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symlink"
    } else {
        "not a regular file"
    }
}

fn open_new(path: &Path, mode: u32) -> Result<std::fs::File> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
    #[cfg(not(unix))]
    let _ = mode;
    opts.open(path).map_err(|e| Error::file("create", path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_0600_and_replaces_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("out.age");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read(&p).unwrap(), b"two");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(
                std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn missing_directory_fails_without_leaving_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("nope/out.age");
        assert_eq!(write_atomic(&p, b"x").unwrap_err().exit_code(), 2);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
