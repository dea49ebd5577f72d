//! Files the user names as input (`--app-key`, `--identity`, `--known-hosts`, recipients files,
//! `--cert`, `--merge-into`, `--update`, the files `seal`, `unseal` and `inspect` read, the
//! files `audit` walks): read only when they are regular files, and never past a size cap.
//!
//! A path can name anything: `/dev/zero` (endless), a FIFO (blocks until someone writes), a
//! terminal, `/proc/kcore`. [`read_regular`] stats the path first (a device, FIFO or socket is
//! never opened), opens it non-blocking without taking a controlling terminal, checks the open
//! descriptor again (the path may have been swapped in between), and stops reading at
//! `max + 1` bytes whatever the size said (files in /proc say 0). [`read_named`] is the same for
//! one setting, as an input error (exit 2) that names it.

use crate::error::{Error, Message, Result};
use crate::secret::{read_limited, Limited};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;
use zeroize::Zeroizing;

const KIB: u64 = 1024;
const MIB: u64 = 1024 * KIB;

/// A private key file (`--app-key`): an RSA-4096 PEM is about 3.3 KiB.
pub const PRIVATE_KEY_MAX: u64 = 64 * KIB;
/// An identity file (`--identity`): age identities or an OpenSSH private key, a few per file.
pub const IDENTITY_MAX: u64 = MIB;
/// A public key (`register --key-file`) or a controller certificate (`--cert`).
pub const PUBLIC_KEY_MAX: u64 = 64 * KIB;
/// A list of short lines: recipients files, repositories files, `.sops.yaml`.
pub const LIST_MAX: u64 = MIB;
/// A known_hosts file: thousands of hosts.
pub const KNOWN_HOSTS_MAX: u64 = 16 * MIB;
/// A kubeconfig (`--kubeconfig`).
pub const KUBECONFIG_MAX: u64 = 16 * MIB;
/// A manifest or sealed file (`seal`/`unseal`/`inspect` input, standard input, `--update`,
/// `--merge-into`).
pub const DOCUMENT_MAX: u64 = 64 * MIB;

/// Why a named file was not read.
#[derive(Debug)]
pub enum Unreadable {
    /// It is not a regular file: what it is (`a FIFO (named pipe)`), and whether the path was a
    /// symlink to it.
    NotRegular {
        /// `a directory`, `a character device`, ...
        kind: &'static str,
        /// The path itself was a symlink.
        through_symlink: bool,
    },
    /// More than the cap.
    TooLarge,
    /// Opening or reading it failed.
    Io(std::io::Error),
}

/// What kind of non-regular file a file type is, for messages.
pub fn kind_of(t: std::fs::FileType) -> &'static str {
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

/// Reads a regular file of at most `max` bytes, into a buffer wiped on drop, with the metadata
/// of the descriptor it was read from. Never blocks, never opens anything but a regular file.
pub fn read_regular(
    path: &Path,
    max: u64,
) -> std::result::Result<(Zeroizing<Vec<u8>>, std::fs::Metadata), Unreadable> {
    let refused = |t: std::fs::FileType| Unreadable::NotRegular {
        kind: kind_of(t),
        through_symlink: std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()),
    };
    let meta = std::fs::metadata(path).map_err(Unreadable::Io)?;
    if !meta.is_file() {
        return Err(refused(meta.file_type()));
    }
    if meta.len() > max {
        return Err(Unreadable::TooLarge);
    }
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::NOCTTY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| Unreadable::Io(e.into()))?;
    let file = std::fs::File::from(fd);
    let meta = file.metadata().map_err(Unreadable::Io)?;
    if !meta.is_file() {
        return Err(refused(meta.file_type()));
    }
    if meta.len() > max {
        return Err(Unreadable::TooLarge);
    }
    let bytes = read_limited(file, max, meta.len()).map_err(|e| match e {
        Limited::TooLarge => Unreadable::TooLarge,
        Limited::Io(e) => Unreadable::Io(e),
    })?;
    Ok((bytes, meta))
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

/// [`read_regular`] for the file a setting names: a refusal is an input error (exit 2) naming
/// `what` (the setting and the path: `message!("{} {}", Setting::AppKey, path)`); a failed
/// open or read is a file error naming the path.
pub fn read_named(path: &Path, what: impl Into<Message>, max: u64) -> Result<Zeroizing<Vec<u8>>> {
    read_named_with_metadata(path, what, max).map(|(bytes, _)| bytes)
}

/// [`read_named`], with `action` naming what failed when opening or reading does (`read identity
/// file`: "cannot read identity file PATH: ...").
pub fn read_named_for(
    path: &Path,
    what: impl Into<Message>,
    max: u64,
    action: &'static str,
) -> Result<Zeroizing<Vec<u8>>> {
    read_named(path, what, max).map_err(|e| match e {
        Error::File { path, source, .. } => Error::file(action, path, source),
        other => other,
    })
}

/// [`read_named`], also handing back the metadata of the descriptor read (its mode, owner).
pub fn read_named_with_metadata(
    path: &Path,
    what: impl Into<Message>,
    max: u64,
) -> Result<(Zeroizing<Vec<u8>>, std::fs::Metadata)> {
    read_regular(path, max).map_err(|e| refusal(path, what, max, e))
}

/// The error [`read_named`] gives for `e`.
pub fn refusal(path: &Path, what: impl Into<Message>, max: u64, e: Unreadable) -> Error {
    match e {
        Unreadable::NotRegular {
            kind,
            through_symlink,
        } => Error::input(
            what,
            format!(
                "{}{kind}, not a regular file",
                if through_symlink { "a symlink to " } else { "" }
            ),
            "pass a regular file (a device, FIFO or socket could block or never end)",
        ),
        Unreadable::TooLarge => Error::input(
            what,
            format!("larger than the {} this input may hold", human_size(max)),
            "check that it is the right file",
        ),
        Unreadable::Io(e) => Error::file("read", path, e),
    }
}

/// Refuses a private key file that other users may read or write, as ssh does: when it belongs
/// to the user running sealkey and its mode grants anything to group or others.
pub fn refuse_open_permissions(
    path: &Path,
    what: impl Into<Message>,
    meta: &std::fs::Metadata,
) -> Result<()> {
    let mode = meta.mode() & 0o777;
    if meta.uid() == rustix::process::getuid().as_raw() && mode & 0o077 != 0 {
        return Err(Error::input(
            what,
            format!("permissions {mode:04o} are too open: other users can read the private key"),
            format!("run `chmod 600 {}`", path.display()),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn devices_fifos_and_directories_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        rustix::fs::mkfifoat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
        )
        .unwrap();
        let link = dir.path().join("zero");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        for (path, kind) in [
            (Path::new("/dev/zero"), "a character device"),
            (fifo.as_path(), "a FIFO (named pipe)"),
            (dir.path(), "a directory"),
            (link.as_path(), "a symlink to a character device"),
        ] {
            let e = read_named(path, "input", 10).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{e}");
            assert!(e.to_string().contains(kind), "{path:?}: {e}");
        }
    }

    #[test]
    fn a_file_over_the_cap_is_refused_and_one_at_the_cap_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        std::fs::write(&p, [b'x'; 11]).unwrap();
        let e = read_named(&p, "input", 10).unwrap_err();
        assert!(e.to_string().contains("larger than the 10 bytes"), "{e}");
        assert_eq!(e.exit_code(), 2);
        assert_eq!(read_named(&p, "input", 11).unwrap().len(), 11);
        // /proc files say 0 bytes: the read itself stops at the cap.
        let e = read_named(Path::new("/proc/self/environ"), "input", 0);
        assert!(e.is_err() || e.is_ok_and(|b| b.is_empty()));
    }

    #[test]
    fn a_private_key_readable_by_others_is_refused_with_the_chmod_hint() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key.pem");
        std::fs::write(&p, "x").unwrap();
        for (mode, ok) in [
            (0o644, false),
            (0o640, false),
            (0o602, false),
            (0o600, true),
            (0o400, true),
        ] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            let (_, meta) = read_named_with_metadata(&p, "key", 10).unwrap();
            let r = refuse_open_permissions(&p, "key", &meta);
            assert_eq!(r.is_ok(), ok, "{mode:o}: {r:?}");
            if let Err(e) = r {
                assert!(e.to_string().contains("chmod 600"), "{e}");
                assert_eq!(e.exit_code(), 2);
            }
        }
    }
}
