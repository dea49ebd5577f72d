//! The Secrets defined in the input, as an exact set in bounded memory: each distinct
//! (namespace, name) once, with the kind of its last definition.
//!
//! The most recent [`RESIDENT`] distinct definitions are held in memory; past that they are
//! appended to anonymous temporary files (unlinked from the start, so nothing is left behind),
//! one of [`BUCKETS`] chosen by a hash of the name. At the end each bucket is read back on its own
//! and deduplicated by comparing names exactly; the hash only spreads names over buckets (it is
//! keyed per run, so input cannot aim names at one bucket), it never decides whether two names
//! are the same. A bucket larger than [`RESIDENT`] is split again the same way, a few levels deep
//! at most. Memory is therefore about [`RESIDENT`] names plus the write buffers, whatever the
//! number of Secrets; disk holds the names (namespaces and names, never values). The files are
//! 0600 whatever the umask. When no temporary file can be created, or writing one fails (a full
//! disk, the file size limit of `ulimit -f`), the audit fails with a message saying so: a wrong
//! count, or memory growing with the input, would break the promise above. The file size limit
//! is checked before each write, so the kernel never has to stop the process with SIGXFSZ.

use std::collections::HashMap;
use std::fs::File;
use std::hash::{BuildHasher, RandomState};
use std::io::{self, BufReader, BufWriter, Read, Seek, Write};

/// Distinct definitions held in memory before they are spilled (and the largest bucket read
/// back at once).
pub const RESIDENT: usize = 2_048;
/// Temporary files the spilled definitions are spread over.
pub const BUCKETS: usize = 16;
/// Write buffer per bucket file.
const BUFFER: usize = 4 * 1024;
/// How many times an oversized bucket is split again before it is read into memory as it is.
const MAX_DEPTH: u32 = 4;
/// Length prefix of an absent namespace.
const NO_NAMESPACE: u64 = u64::MAX;

/// A (namespace, name) as one allocation: the namespace's length (or [`NO_NAMESPACE`]) as 8
/// bytes, the namespace, then the name.
type Key = Box<[u8]>;

fn key(namespace: Option<&str>, name: &str) -> Key {
    let ns = namespace.unwrap_or("");
    let mut k = Vec::with_capacity(8 + ns.len() + name.len());
    let len = namespace.map_or(NO_NAMESPACE, |ns| ns.len() as u64);
    k.extend_from_slice(&len.to_le_bytes());
    k.extend_from_slice(ns.as_bytes());
    k.extend_from_slice(name.as_bytes());
    k.into_boxed_slice()
}

// Keys are made by `key` from `str`s: the slices are in bounds and UTF-8.
fn text(b: &[u8]) -> &str {
    std::str::from_utf8(b).unwrap_or_default()
}

/// The (namespace, name) of a [`key`].
fn split(key: &[u8]) -> (Option<&str>, &str) {
    let (len, rest) = key.split_at(8.min(key.len()));
    let len = u64::from_le_bytes(len.try_into().unwrap_or([0xff; 8]));
    if len == NO_NAMESPACE {
        (None, text(rest))
    } else {
        let (ns, name) = rest.split_at(usize::try_from(len).unwrap_or(0).min(rest.len()));
        (Some(text(ns)), text(name))
    }
}

/// One temporary file of spilled definitions: records of kind (2 bytes), key length (8 bytes),
/// key, in the order they were spilled.
struct Bucket {
    file: BufWriter<File>,
    records: u64,
    /// Bytes written so far (the file's size once flushed).
    bytes: u64,
    /// The file size limit (`ulimit -f`), if any.
    size_limit: Option<u64>,
}

/// An anonymous temporary file in the temporary directory, readable by its owner only: opened
/// `O_TMPFILE` with mode 0600 (tempfile's default mode there is 0666 & ~umask), or, where the
/// file system has no `O_TMPFILE`, created 0600 under a random name and unlinked at once.
fn spill_file() -> io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    let dir = std::env::temp_dir();
    match rustix::fs::open(
        &dir,
        OFlags::RDWR | OFlags::TMPFILE | OFlags::CLOEXEC,
        Mode::RUSR | Mode::WUSR,
    ) {
        Ok(fd) => Ok(File::from(fd)),
        Err(rustix::io::Errno::OPNOTSUPP | rustix::io::Errno::ISDIR | rustix::io::Errno::NOENT) => {
            use std::os::unix::fs::PermissionsExt;
            // `into_file` unlinks the name, keeps the open file.
            tempfile::Builder::new()
                .permissions(std::fs::Permissions::from_mode(0o600))
                .tempfile_in(&dir)
                .map(tempfile::NamedTempFile::into_file)
        }
        Err(e) => Err(e.into()),
    }
    .map_err(|e: io::Error| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot create a temporary file in {} for the list of defined Secrets (more than \
                 {RESIDENT} distinct ones: past that they are counted on disk): {e}; set TMPDIR \
                 to a writable directory",
                dir.display()
            ),
        )
    })
}

/// The soft file size limit (`ulimit -f`, RLIMIT_FSIZE), if there is one.
fn file_size_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Fsize).current
}

impl Bucket {
    fn new() -> io::Result<Self> {
        Ok(Bucket {
            file: BufWriter::with_capacity(BUFFER, spill_file()?),
            records: 0,
            bytes: 0,
            size_limit: file_size_limit(),
        })
    }

    fn push(&mut self, key: &[u8], kind: u16) -> io::Result<()> {
        // Past the file size limit the kernel would kill the process with SIGXFSZ, silently:
        // refuse the write before it happens instead.
        let size = 2 + 8 + key.len() as u64;
        if let Some(limit) = self.size_limit {
            if self.bytes.saturating_add(size) > limit {
                return Err(io::Error::new(
                    io::ErrorKind::FileTooLarge,
                    format!(
                        "the file size limit (ulimit -f) of {limit} bytes is reached; raise it"
                    ),
                ));
            }
        }
        self.bytes += size;
        self.file.write_all(&kind.to_le_bytes())?;
        self.file.write_all(&(key.len() as u64).to_le_bytes())?;
        self.file.write_all(key)?;
        self.records += 1;
        Ok(())
    }

    /// Reads the records back, in order.
    fn read(self, mut each: impl FnMut(Key, u16) -> io::Result<()>) -> io::Result<()> {
        let mut file = self.file.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        let mut r = BufReader::with_capacity(BUFFER, file);
        for _ in 0..self.records {
            let mut kind = [0u8; 2];
            let mut len = [0u8; 8];
            r.read_exact(&mut kind)?;
            r.read_exact(&mut len)?;
            let kind = u16::from_le_bytes(kind);
            let len = usize::try_from(u64::from_le_bytes(len))
                .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "corrupt spill record"))?;
            let mut k = vec![0u8; len];
            r.read_exact(&mut k)?;
            each(k.into_boxed_slice(), kind)?;
        }
        Ok(())
    }
}

/// [`BUCKETS`] bucket files and the hash that picks one.
struct Spill {
    buckets: Vec<Bucket>,
    hash: RandomState,
}

impl Spill {
    fn new() -> io::Result<Self> {
        Ok(Spill {
            buckets: (0..BUCKETS)
                .map(|_| Bucket::new())
                .collect::<io::Result<_>>()?,
            hash: RandomState::new(),
        })
    }

    fn push(&mut self, key: &[u8], kind: u16) -> io::Result<()> {
        let i = (self.hash.hash_one(key) % BUCKETS as u64) as usize;
        self.buckets[i].push(key, kind)
    }
}

/// Why spilling failed: the count would no longer be exact, so the run fails with this.
fn spill_error(e: io::Error) -> io::Error {
    let hint = if e.kind() == io::ErrorKind::FileTooLarge {
        ""
    } else {
        "; set TMPDIR to a writable directory with free space"
    };
    io::Error::new(
        e.kind(),
        format!("cannot write the list of defined Secrets to a temporary file: {e}{hint}"),
    )
}

/// The set of defined Secrets (see the module documentation).
#[derive(Default)]
pub struct Defined {
    recent: HashMap<Key, u16>,
    spill: Option<Spill>,
    resident: usize,
}

impl std::fmt::Debug for Defined {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Defined")
            .field("resident", &self.recent.len())
            .field("spilled", &self.spill.is_some())
            .finish()
    }
}

impl Defined {
    /// A set holding at most `resident` distinct definitions in memory (0: [`RESIDENT`]).
    pub fn with_resident(resident: usize) -> Self {
        Defined {
            resident,
            ..Defined::default()
        }
    }

    fn limit(&self) -> usize {
        if self.resident == 0 {
            RESIDENT
        } else {
            self.resident
        }
    }

    /// Definitions held in memory now.
    pub fn resident(&self) -> usize {
        self.recent.len()
    }

    /// Records a definition; a later one of the same (namespace, name) replaces its kind.
    pub fn insert(&mut self, namespace: Option<&str>, name: &str, kind: u16) -> io::Result<()> {
        self.recent.insert(key(namespace, name), kind);
        if self.recent.len() >= self.limit() {
            if self.spill.is_none() {
                // No silent fallback to memory: it would grow with the input (see the module
                // documentation). The error says which directory and what to set.
                self.spill = Some(Spill::new()?);
            }
            self.drain_recent().map_err(spill_error)?;
        }
        Ok(())
    }

    /// Appends `recent` to the bucket files (after everything spilled before: last one wins).
    fn drain_recent(&mut self) -> io::Result<()> {
        if let Some(spill) = &mut self.spill {
            // drain() keeps the table's capacity for the next round.
            for (k, kind) in self.recent.drain() {
                spill.push(&k, kind)?;
            }
        }
        Ok(())
    }

    /// Calls `each(namespace, name, kind)` once per distinct defined Secret, with the kind of
    /// its last definition, in no particular order.
    pub fn settle(mut self, mut each: impl FnMut(Option<&str>, &str, u16)) -> io::Result<()> {
        if self.spill.is_none() {
            for (k, kind) in &self.recent {
                let (ns, name) = split(k);
                each(ns, name, *kind);
            }
            return Ok(());
        }
        self.drain_recent().map_err(spill_error)?;
        let limit = self.limit();
        let Some(spill) = self.spill.take() else {
            return Ok(());
        };
        for bucket in spill.buckets {
            settle_bucket(bucket, limit, 1, &mut each).map_err(spill_error)?;
        }
        Ok(())
    }
}

/// Deduplicates one bucket in memory, or splits it first when it is larger than `limit`.
fn settle_bucket(
    bucket: Bucket,
    limit: usize,
    depth: u32,
    each: &mut impl FnMut(Option<&str>, &str, u16),
) -> io::Result<()> {
    if bucket.records > limit as u64 && depth < MAX_DEPTH {
        let mut finer = Spill::new()?;
        bucket.read(|k, kind| finer.push(&k, kind))?;
        for b in finer.buckets {
            settle_bucket(b, limit, depth + 1, each)?;
        }
        return Ok(());
    }
    let mut distinct: HashMap<Key, u16> = HashMap::new();
    bucket.read(|k, kind| {
        distinct.insert(k, kind);
        Ok(())
    })?;
    for (k, kind) in &distinct {
        let (ns, name) = split(k);
        each(ns, name, *kind);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    // Was: tempfile's O_TMPFILE files are 0666 & ~umask (0644 here); unlinked, but reachable
    // through /proc/PID/fd by anyone allowed to open it.
    #[test]
    fn spill_files_are_readable_by_their_owner_only() {
        use std::os::unix::fs::MetadataExt;
        let bucket = Bucket::new().unwrap();
        let mode = bucket.file.get_ref().metadata().unwrap().mode() & 0o777;
        assert_eq!(mode, 0o600, "{mode:o}");
    }

    #[test]
    fn a_bucket_refuses_to_grow_past_the_file_size_limit_instead_of_being_killed() {
        let mut bucket = Bucket::new().unwrap();
        bucket.size_limit = Some(100);
        let key = key(Some("ns"), "name");
        let mut pushed = 0;
        let err = loop {
            match bucket.push(&key, 1) {
                Ok(()) => pushed += 1,
                Err(e) => break e,
            }
            assert!(pushed < 100, "never refused");
        };
        assert_eq!(err.kind(), io::ErrorKind::FileTooLarge);
        assert!(err.to_string().contains("ulimit -f"), "{err}");
        assert!(bucket.bytes <= 100);
    }

    #[test]
    fn keys_round_trip_with_and_without_a_namespace() {
        for (ns, name) in [
            (None, "db"),
            (Some(""), "db"),
            (Some("prod"), ""),
            (Some("a\u{0}b"), "c\u{0}"),
            (None, ""),
        ] {
            assert_eq!(split(&key(ns, name)), (ns, name));
        }
        assert_ne!(key(None, "x"), key(Some(""), "x"));
        assert_ne!(key(Some("ab"), "c"), key(Some("a"), "bc"));
    }

    /// The spilled set gives the same distinct Secrets and last kinds as a plain map, with at
    /// most `resident` definitions in memory at any time: duplicates across spills, a
    /// redefinition with another kind, names differing only in namespace, and buckets large
    /// enough to be split again.
    #[test]
    fn the_spilled_set_is_exact_and_keeps_at_most_the_resident_limit_in_memory() {
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for (resident, definitions, names) in [
            (8, 5_000, 3_000),
            (64, 20_000, 900),
            (4, 300, 10),
            (16, 0, 1),
        ] {
            let mut set = Defined::with_resident(resident);
            let mut model: BTreeMap<(Option<String>, String), u16> = BTreeMap::new();
            for _ in 0..definitions {
                let n = next() % names;
                let ns = match n % 3 {
                    0 => None,
                    1 => Some(String::new()),
                    _ => Some(format!("team-{}", n % 7)),
                };
                let name = format!("secret-{n}");
                let kind = (next() % 5) as u16;
                set.insert(ns.as_deref(), &name, kind).unwrap();
                assert!(set.resident() <= resident, "{} resident", set.resident());
                model.insert((ns, name), kind);
            }
            let mut seen = BTreeMap::new();
            set.settle(|ns, name, kind| {
                let old = seen.insert((ns.map(String::from), name.to_string()), kind);
                assert!(old.is_none(), "{ns:?}/{name} settled twice");
            })
            .unwrap();
            assert_eq!(
                seen, model,
                "resident {resident}, {definitions} definitions"
            );
        }
    }
}
