//! Pieces several subcommands share: sealing flags, and writing output where it is allowed to go.

use crate::error::Error;
use crate::seal::{self, SealMethod, SealSettings, SealedOutput};
use anyhow::Result;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

/// How to seal the output, and where it goes.
#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Sealing")]
pub struct SealArgs {
    /// Sealing method. Default with --seal-to: sops (one SOPS document per object, what Flux's
    /// kustomize-controller decrypts; needs an age1... recipient). `age` is one armored file for
    /// people and backups, which no GitOps controller decrypts.
    #[arg(long, value_enum)]
    pub seal: Option<SealMethod>,
    /// age recipient: `age1...`, an `ssh-ed25519`/`ssh-rsa` public key, or a file of them
    /// (one per line, `#` comments), as `age -R` reads it. Repeatable.
    #[arg(long = "seal-to", value_name = "RECIPIENT|FILE")]
    pub seal_to: Vec<String>,
    /// Write sealed output to FILE (mode 0600, atomically) instead of stdout. Never plaintext.
    /// SOPS output of several objects goes to a directory (sops opens one sealed object per
    /// file): one file per object and a kustomization.yaml listing them.
    #[arg(long, value_name = "FILE|DIR")]
    pub out: Option<PathBuf>,
    /// Replace an existing --out file (without it, an existing file is refused: it may hold the
    /// only sealed copy of a key that is still registered).
    #[arg(long)]
    pub force: bool,
    /// Allow `--seal none` output to a terminal (it lands in your scrollback).
    #[arg(long)]
    pub force_plaintext_to_tty: bool,
    /// Sealed Secrets: the controller's certificate, a PEM file or the https URL of its
    /// /v1/cert.pem (`kubeseal --fetch-cert > cert.pem` saves it). Implies --seal sealed-secrets.
    #[arg(long, value_name = "FILE|URL")]
    pub cert: Option<String>,
    /// Sealed Secrets: where the SealedSecret may be opened.
    #[arg(long, value_enum, default_value_t = seal::sealed_secrets::Scope::Strict)]
    pub scope: seal::sealed_secrets::Scope,
    /// SOPS: encrypt values whose path has a key matching this regex (sops's encrypted_regex).
    #[arg(long, value_name = "REGEX", default_value = seal::sops::DEFAULT_ENCRYPTED_REGEX)]
    pub encrypted_regex: String,
    /// SOPS: re-seal over FILE (sealed before): objects that did not change come out byte for
    /// byte as in FILE, changed ones get a fresh data key. Needs --identity to open FILE.
    #[arg(long, value_name = "FILE")]
    pub update: Option<PathBuf>,
    /// SOPS: age identity file (AGE-SECRET-KEY-1... lines) that opens the --update FILE (or a
    /// SOPS-encrypted `create --merge-into` FILE).
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
}

impl SealArgs {
    /// The method in effect: explicit; sealed-secrets with --cert; SOPS when recipients were
    /// given (a file for a GitOps repository must be one its controller decrypts: Flux decrypts
    /// SOPS per object, never an armored age file).
    pub fn method(&self) -> Result<SealMethod> {
        match (self.seal, self.seal_to.is_empty()) {
            (Some(m), _) => Ok(m),
            (None, true) if self.cert.is_some() => Ok(SealMethod::SealedSecrets),
            (None, false) => Ok(SealMethod::Sops),
            (None, true) => Err(Error::input(
                "--seal",
                "no sealing method and no recipients given",
                "add --seal-to age1... (or a recipients file), or --seal none to pipe plaintext into kubectl",
            )
            .into()),
        }
    }

    /// Checks the destination before any key exists: plaintext never goes to a file or terminal.
    pub fn check_destination(&self, method: SealMethod, what: &str) -> Result<()> {
        if method == SealMethod::None {
            if let Some(out) = &self.out {
                return Err(Error::PlaintextRefused {
                    what: what.into(),
                    target: format!("--out {}", out.display()),
                    hint: "plaintext is never written to a file; seal it (--seal age --seal-to ...) or pipe it: `... --seal none | kubectl create -f -`".into(),
                }
                .into());
            }
            check_plaintext_stdout(what, self.force_plaintext_to_tty)?;
        }
        self.check_flag_combinations(method)?;
        self.check_out_is_new()?;
        Ok(())
    }

    /// Refuses to replace an existing `--out` file unless `--force` (or `--update` names it: the
    /// re-seal of that very file). A sealkey file names its key (the fingerprint annotation sits
    /// in clear in SOPS and Sealed Secrets files), so the message can say what would be lost.
    fn check_out_is_new(&self) -> Result<()> {
        let Some(out) = &self.out else { return Ok(()) };
        let Ok(meta) = std::fs::symlink_metadata(out) else {
            return Ok(());
        };
        if meta.is_dir() && self.method().ok() == Some(SealMethod::Sops) {
            return self.check_out_directory_is_new(out);
        }
        // Never opened unless it is a regular file: reading a FIFO would block, a device could
        // be endless. write_atomic refuses such targets whatever --force says.
        if !meta.file_type().is_file() {
            crate::output::check_target(out, crate::error::Setting::Out)?;
        }
        if self.force {
            return Ok(());
        }
        if let Some(update) = &self.update {
            let same = |p: &std::path::Path| std::fs::canonicalize(p).ok();
            if same(update).is_some() && same(update) == same(out) {
                return Ok(());
            }
        }
        let holds = std::fs::File::open(out)
            .ok()
            .and_then(|f| {
                use std::io::Read;
                let mut head = Vec::new();
                // The annotation sits near the top of a sealkey file.
                f.take(256 * 1024).read_to_end(&mut head).ok()?;
                sealkey_fingerprint_in(&head)
            })
            .map(|fp| format!(" (a sealkey file holding key {fp}, which may still be registered)"))
            .unwrap_or_default();
        Err(Error::input(
            format!("--out {}", out.display()),
            format!("the file already exists{holds}"),
            "pass --force to replace it, --update FILE --identity ID to re-seal it (SOPS), or choose another path",
        )
        .into())
    }

    /// A SOPS `--out DIR` that already holds sealed files (or a kustomization) is replaced only
    /// with `--force` or as the `--update` of that very directory, as a file is.
    fn check_out_directory_is_new(&self, out: &std::path::Path) -> Result<()> {
        if self.force {
            return Ok(());
        }
        if let Some(update) = &self.update {
            let same = |p: &std::path::Path| std::fs::canonicalize(p).ok();
            if same(update).is_some() && same(update) == same(out) {
                return Ok(());
            }
        }
        let taken = std::fs::read_dir(out)
            .map(|entries| {
                entries.filter_map(|e| e.ok()).any(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name == seal::sops::layout::KUSTOMIZATION || name.ends_with(".sops.yaml")
                })
            })
            .unwrap_or(false);
        if !taken {
            return Ok(());
        }
        Err(Error::input(
            format!("--out {}", out.display()),
            "the directory already holds sealed files or a kustomization.yaml",
            "pass --update DIR --identity ID to re-seal it (SOPS), --force to replace its files, or choose another directory",
        )
        .into())
    }

    /// The key `--force` is about to replace: the fingerprint the existing `--out` file's
    /// sealkey annotation claims (a claim: nothing here decrypts the file).
    pub fn replaced_key(&self) -> Option<String> {
        let out = self.out.as_ref().filter(|_| self.force)?;
        if !std::fs::symlink_metadata(out).ok()?.file_type().is_file() {
            return None;
        }
        use std::io::Read;
        let mut head = Vec::new();
        std::fs::File::open(out)
            .ok()?
            .take(256 * 1024)
            .read_to_end(&mut head)
            .ok()?;
        sealkey_fingerprint_in(&head)
    }

    /// Refuses flags that belong to another method, so a typo never silently changes the output.
    fn check_flag_combinations(&self, method: SealMethod) -> Result<()> {
        let refuse = |flag: &str, only: &str| -> Result<()> {
            Err(Error::input(
                format!("{flag} with --seal {}", method.as_str()),
                format!("{flag} only applies to --seal {only}"),
                format!("drop {flag}, or use --seal {only}"),
            )
            .into())
        };
        if method != SealMethod::SealedSecrets {
            if self.cert.is_some() {
                refuse("--cert", "sealed-secrets")?;
            }
            if self.scope != seal::sealed_secrets::Scope::Strict {
                refuse("--scope", "sealed-secrets")?;
            }
        }
        if method != SealMethod::Sops {
            if self.update.is_some() {
                refuse("--update", "sops")?;
            }
            if self.encrypted_regex != seal::sops::DEFAULT_ENCRYPTED_REGEX {
                refuse("--encrypted-regex", "sops")?;
            }
        }
        if method == SealMethod::SealedSecrets {
            if !self.seal_to.is_empty() {
                return Err(Error::input(
                    "--seal sealed-secrets --seal-to",
                    "Sealed Secrets seals to the controller's certificate, not to age recipients",
                    "drop --seal-to and pass --cert FILE|URL",
                )
                .into());
            }
            if self.cert.is_none() {
                return Err(Error::input(
                    "--seal sealed-secrets",
                    "no controller certificate given",
                    "add --cert cert.pem (`kubeseal --fetch-cert > cert.pem`) or --cert https://HOST/v1/cert.pem",
                )
                .into());
            }
        }
        if method == SealMethod::Sops && self.update.is_some() && self.identity.is_none() {
            return Err(Error::input(
                "--update",
                "re-using ciphertext needs the data keys of the previous file",
                "add --identity FILE with an age identity of one of its recipients",
            )
            .into());
        }
        Ok(())
    }

    /// Parses recipients (or fetches the certificate) and builds the sealing settings. Warnings
    /// (recipients Flux cannot use) go to `ui`.
    pub fn settings(&self, method: SealMethod, ui: &super::Ui) -> Result<SealSettings> {
        self.check_flag_combinations(method)?;
        Ok(match method {
            SealMethod::Age => SealSettings::Age(seal::age::parse_recipients(&self.seal_to)?),
            SealMethod::Sops => {
                let mut settings =
                    seal::sops::SopsSettings::new(&self.seal_to, Some(&self.encrypted_regex))?;
                for w in settings.warnings() {
                    ui.warn(&w);
                }
                if let (Some(update), Some(identity)) = (&self.update, &self.identity) {
                    let ids = read_identity_file(identity)?;
                    let what = format!("--update {}", update.display());
                    let old = seal::sops::layout::read_previous(
                        update,
                        crate::error::Setting::Update,
                        crate::input_file::DOCUMENT_MAX,
                    )?;
                    let old = into_text(old, &what)?;
                    if let Some(out) = &self.out {
                        refuse_stream_into_file(old.expose_secret(), update, out, "--out")?;
                    }
                    settings = settings.with_previous(old.expose_secret(), &what, &ids)?;
                    ui.detail(&format!(
                        "re-using data keys and IVs of {} object(s) in {what}",
                        settings.previous_objects()
                    ));
                }
                SealSettings::Sops(settings)
            }
            SealMethod::SealedSecrets => {
                let cert = self.cert.as_deref().unwrap_or_default();
                let (pem, source) = if seal::sealed_secrets::is_url(cert) {
                    ui.detail(&format!("fetching the controller certificate from {cert}"));
                    let rt = super::github_args::runtime()?;
                    (
                        rt.block_on(seal::sealed_secrets::fetch_cert_pem(cert))?,
                        cert.to_string(),
                    )
                } else {
                    let pem = crate::input_file::read_named_for(
                        std::path::Path::new(cert),
                        format!("--cert {cert}"),
                        crate::input_file::PUBLIC_KEY_MAX,
                        "read certificate",
                    )?
                    .to_vec();
                    (pem, format!("--cert {cert}"))
                };
                let cert = seal::sealed_secrets::ControllerCert::from_pem(
                    &pem,
                    &source,
                    jiff::Timestamp::now(),
                )?;
                ui.detail(&format!(
                    "controller certificate valid until {}",
                    cert.not_after()
                ));
                SealSettings::SealedSecrets(seal::sealed_secrets::SealedSecretsSettings {
                    cert,
                    scope: self.scope,
                })
            }
            SealMethod::None => {
                if !self.seal_to.is_empty() {
                    return Err(Error::input(
                        "--seal none --seal-to",
                        "recipients given but sealing is off",
                        "drop --seal none to seal with age",
                    )
                    .into());
                }
                SealSettings::None
            }
        })
    }

    /// Writes the output to `--out` or stdout.
    pub fn write(&self, output: &SealedOutput) -> Result<()> {
        Ok(self.write_output(output)?)
    }

    /// [`Self::write`] with the library's error (the create pipeline's writer).
    pub fn write_output(&self, output: &SealedOutput) -> crate::error::Result<()> {
        match &self.out {
            Some(path) => {
                if output.is_plaintext() {
                    // check_destination already refused this; keep the invariant local too.
                    return Err(Error::PlaintextRefused {
                        what: "plaintext".into(),
                        target: "a file".into(),
                        hint: "seal it".into(),
                    });
                }
                if self.method().ok() == Some(SealMethod::Sops) {
                    // sops opens one sealed object per file: several go to a directory.
                    let text = String::from_utf8_lossy(output.expose_bytes());
                    return seal::sops::layout::write(path, &text, crate::error::Setting::Out)
                        .map(|_| ());
                }
                crate::output::write_atomic(path, output.expose_bytes())
            }
            None => {
                let mut out = std::io::stdout().lock();
                out.write_all(output.expose_bytes())
                    .and_then(|()| out.flush())
                    .map_err(|e| Error::file("write", "standard output", e))
            }
        }
    }
}

impl SealArgs {
    /// The file paths these flags name (`--seal-to` entries only when they are files).
    pub fn named_paths(&self) -> Vec<(&'static str, std::path::PathBuf)> {
        let mut paths = Vec::new();
        if let Some(p) = &self.out {
            paths.push(("--out", p.clone()));
        }
        if let Some(p) = &self.update {
            paths.push(("--update", p.clone()));
        }
        if let Some(p) = &self.identity {
            paths.push(("--identity", p.clone()));
        }
        if let Some(c) = self.cert.as_deref().filter(|c| !c.contains("://")) {
            paths.push(("--cert", c.into()));
        }
        for r in &self.seal_to {
            if std::path::Path::new(r).is_file() {
                paths.push(("--seal-to", r.into()));
            }
        }
        paths
    }
}

/// What makes two paths one file: (device, inode) when it exists (symlinks followed, so hard
/// links, symlinks, `./` and `..` all meet), else the canonical directory plus the name.
#[derive(PartialEq, Eq)]
enum FileIdentity {
    Inode(u64, u64),
    Name(std::path::PathBuf),
}

fn file_identity(path: &std::path::Path) -> Option<FileIdentity> {
    use std::os::unix::fs::MetadataExt;
    if let Ok(m) = std::fs::metadata(path) {
        return Some(FileIdentity::Inode(m.dev(), m.ino()));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => std::path::Path::new("."),
    };
    let name = path.file_name()?;
    Some(FileIdentity::Name(
        std::fs::canonicalize(dir).ok()?.join(name),
    ))
}

/// Refuses (exit 2) when two of one command's paths name the same file by any path: an output
/// written over an input, or two outputs where the second replaces the first (`--out F
/// --merge-into F` lost the only sealed copy of a registered key). `--out` over `--update` is the
/// one pair allowed: re-sealing that very file is what `--update` is for. Call it before a key
/// exists.
pub fn refuse_shared_paths(paths: &[(&'static str, std::path::PathBuf)]) -> Result<()> {
    let ids: Vec<Option<FileIdentity>> = paths.iter().map(|(_, p)| file_identity(p)).collect();
    for (i, (flag_a, a)) in paths.iter().enumerate() {
        for (j, (flag_b, b)) in paths.iter().enumerate().skip(i + 1) {
            let pair = [*flag_a, *flag_b];
            if pair.contains(&"--out") && pair.contains(&"--update") {
                continue;
            }
            if *flag_a == *flag_b && *flag_a == "--seal-to" {
                continue;
            }
            if ids[i].is_some() && ids[i] == ids[j] {
                return Err(Error::input(
                    format!("{flag_a} {} and {flag_b} {}", a.display(), b.display()),
                    "they name the same file; writing one would destroy the other",
                    "give each its own file (nothing was generated or written)",
                )
                .into());
            }
        }
    }
    Ok(())
}

/// The key fingerprint in a sealkey file's clear metadata (`sealkey.io/fingerprint: SHA256:...`).
fn sealkey_fingerprint_in(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let at = text.find("sealkey.io/fingerprint:")? + "sealkey.io/fingerprint:".len();
    let fp: String = text[at..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || "+/=:".contains(*c))
        .collect();
    fp.starts_with("SHA256:").then_some(fp)
}

/// What standard output is connected to.
#[derive(Debug, PartialEq, Eq)]
pub enum StdoutKind {
    /// A terminal.
    Terminal,
    /// A regular file (`> file`).
    File,
    /// A pipe, socket or character device such as /dev/null.
    Pipe,
}

/// Classifies stdout.
pub fn stdout_kind() -> StdoutKind {
    let stdout = std::io::stdout();
    if stdout.is_terminal() {
        return StdoutKind::Terminal;
    }
    match rustix::fs::fstat(&stdout) {
        Ok(st) => match rustix::fs::FileType::from_raw_mode(st.st_mode) {
            rustix::fs::FileType::RegularFile | rustix::fs::FileType::BlockDevice => {
                StdoutKind::File
            }
            _ => StdoutKind::Pipe,
        },
        Err(_) => StdoutKind::Pipe,
    }
}

/// Refuses plaintext secrets on a terminal (unless forced) and in a redirected file.
pub fn check_plaintext_stdout(what: &str, force_tty: bool) -> Result<()> {
    // `unseal` output is already what was sealed: advising to seal it again would be circular.
    let unsealing = what.contains("unsealed plaintext");
    match stdout_kind() {
        StdoutKind::Pipe => Ok(()),
        StdoutKind::Terminal if force_tty => Ok(()),
        StdoutKind::Terminal => Err(Error::PlaintextRefused {
            what: what.into(),
            target: "a terminal".into(),
            hint: if unsealing {
                "pipe it where it is used (`| kubectl create -f -`, `| kubectl diff -f -`), or pass --force-plaintext-to-tty to read it (it stays in your scrollback)".into()
            } else {
                "pipe it (`| kubectl create -f -`), seal it (--seal-to ...), or pass --force-plaintext-to-tty".into()
            },
        }
        .into()),
        StdoutKind::File => Err(Error::PlaintextRefused {
            what: what.into(),
            target: "a file (stdout is redirected to one)".into(),
            hint: if unsealing {
                "plaintext is never written to a file: keep the sealed file and pipe `sealkey unseal` where it is used (`| kubectl apply --server-side -f -`); `sealkey inspect FILE` shows what it holds without decrypting".into()
            } else {
                "plaintext is never written to a file; seal it (--seal-to ...) or pipe it into kubectl".into()
            },
        }
        .into()),
    }
}

/// Writes everything to stdout and flushes.
pub fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)?;
    out.flush()?;
    Ok(())
}

/// Reads all of stdin into a buffer that is wiped on drop.
pub fn read_stdin(what: &str) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    read_wiped(&mut std::io::stdin().lock(), what)
}

/// Reads to the end, at most [`crate::input_file::DOCUMENT_MAX`] bytes, into a buffer wiped on
/// drop (see [`crate::secret::read_limited`]: it never leaves a copy of the input in freed
/// memory).
fn read_wiped(r: &mut impl std::io::Read, what: &str) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    let max = crate::input_file::DOCUMENT_MAX;
    crate::secret::read_limited(r, max, 64 * 1024).map_err(|e| match e {
        crate::secret::Limited::Io(e) => Error::file("read", what, e).into(),
        crate::secret::Limited::TooLarge => Error::input(
            what,
            format!(
                "larger than the {} this input may hold",
                crate::input_file::human_size(max)
            ),
            "check that it is the right input",
        )
        .into(),
    })
}

/// Reads the regular file a flag names (`--update FILE`), at most `max` bytes, into a buffer
/// wiped on drop; anything else (a FIFO, `/dev/zero`, a file over the cap) is exit 2 naming the
/// flag.
pub fn read_flag_file(
    flag: &str,
    path: &std::path::Path,
    max: u64,
) -> Result<zeroize::Zeroizing<Vec<u8>>> {
    Ok(crate::input_file::read_named(
        path,
        format!("{flag} {}", path.display()),
        max,
    )?)
}

/// Reads a named input (`-` is stdin) into a buffer that is wiped on drop.
pub fn read_input(path: Option<&std::path::Path>) -> Result<(zeroize::Zeroizing<Vec<u8>>, String)> {
    match path {
        None => Ok((read_stdin("stdin")?, "stdin".into())),
        Some(p) if p.as_os_str() == "-" => Ok((read_stdin("stdin")?, "stdin".into())),
        // A directory sealkey wrote SOPS output to: its objects' files as one stream.
        Some(p) if p.is_dir() => Ok((
            seal::sops::layout::read_directory(p, crate::input_file::DOCUMENT_MAX)?,
            p.display().to_string(),
        )),
        Some(p) => {
            let name = p.display().to_string();
            let bytes =
                crate::input_file::read_named(p, name.clone(), crate::input_file::DOCUMENT_MAX)?;
            Ok((bytes, name))
        }
    }
}

/// UTF-8 text from bytes, in a wiped buffer.
pub fn into_text(
    mut bytes: zeroize::Zeroizing<Vec<u8>>,
    what: &str,
) -> Result<crate::secret::SecretText> {
    // Moved out, not copied: the bytes live on in the SecretText (wiped when it drops).
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(s) => Ok(crate::secret::SecretText::new(s)),
        Err(e) => {
            let mut v = e.into_bytes();
            zeroize::Zeroize::zeroize(&mut v);
            Err(Error::input(what, "not UTF-8 text", "pass YAML or JSON").into())
        }
    }
}

/// Reads and parses an age identity file (`AGE-SECRET-KEY-1...` lines or an ssh private key).
pub fn read_identity_file(path: &std::path::Path) -> Result<Vec<seal::age::Identity>> {
    let (text, name) = identity_text_from_file(path)?;
    Ok(seal::age::parse_identities(&text, &name)?)
}

/// The text of an identity file (wiped on drop) and the name errors give it (`--identity FILE`).
pub fn identity_text_from_file(
    path: &std::path::Path,
) -> Result<(crate::secret::AgeIdentityText, String)> {
    let name = format!("--identity {}", path.display());
    let bytes = crate::input_file::read_named_for(
        path,
        name.clone(),
        crate::input_file::IDENTITY_MAX,
        "read identity file",
    )?;
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        Error::input(
            &name,
            "not a text file",
            "pass an age identity file or an OpenSSH private key",
        )
    })?;
    Ok((crate::secret::AgeIdentityText::new(text.to_string()), name))
}

/// A command that did what it was asked, for adapters.
pub const OK: super::Outcome = super::Outcome::Done;

/// An older sealkey wrote several objects into one SOPS file (which sops cannot open): the
/// `--update` of such a file may write to a directory, never to one file again. `out_flag` names
/// the destination's flag. Checked before a key exists.
pub fn refuse_stream_into_file(
    old: &str,
    update: &std::path::Path,
    out: &std::path::Path,
    out_flag: &str,
) -> Result<()> {
    let n = seal::sops::layout::count(old);
    if n < 2 || update.is_dir() {
        return Ok(());
    }
    if let seal::sops::layout::Target::File(file) = seal::sops::layout::target(out, n) {
        let u = update.display();
        return Err(Error::input(
            format!("--update {u} {out_flag} {}", file.display()),
            format!("{u} holds {n} objects in one SOPS file (an older sealkey's layout), which sops cannot open (one data key and MAC per file)"),
            format!("move it to the layout every sops reader opens first: `sealkey unseal --with-plain --identity ID {u} | sealkey seal --seal sops --seal-to RECIPIENT --update {u} --identity ID --out DIR` writes one file per object and a kustomization.yaml listing them (unchanged objects keep their bytes); delete {u}, list DIR where it was listed, then use DIR (nothing was written)"),
        )
        .into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out its input a few bytes at a time, with an interruption, like a slow pipe.
    struct Trickle<'a>(&'a [u8], bool);

    impl std::io::Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            self.1 = !self.1;
            if self.1 {
                return Err(std::io::ErrorKind::Interrupted.into());
            }
            let n = self.0.len().min(out.len()).min(40_000);
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn read_wiped_reads_everything_across_growth_and_interruptions() {
        let input: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let got = read_wiped(&mut Trickle(&input, false), "test").unwrap();
        assert_eq!(*got, input);
        let empty = read_wiped(&mut Trickle(&[], false), "test").unwrap();
        assert!(empty.is_empty());
    }
}
