//! Pieces several subcommands share: sealing flags, and writing output where it is allowed to go.

use crate::error::{exit, Error};
use crate::seal::{self, SealMethod, SealSettings, SealedOutput};
use anyhow::Result;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

/// How to seal the output, and where it goes.
#[derive(Debug, clap::Args)]
pub struct SealArgs {
    /// Sealing method (default: age when --seal-to is given).
    #[arg(long, value_enum)]
    pub seal: Option<SealMethod>,
    /// age recipient: `age1...`, an `ssh-ed25519`/`ssh-rsa` public key, or a file of them
    /// (one per line, `#` comments), as `age -R` reads it. Repeatable.
    #[arg(long = "seal-to", value_name = "RECIPIENT|FILE")]
    pub seal_to: Vec<String>,
    /// Write sealed output to FILE (mode 0600, atomically) instead of stdout. Never plaintext.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Allow `--seal none` output to a terminal (it lands in your scrollback).
    #[arg(long)]
    pub force_plaintext_to_tty: bool,
}

impl SealArgs {
    /// The method in effect: explicit, or age when recipients were given.
    pub fn method(&self) -> Result<SealMethod> {
        match (self.seal, self.seal_to.is_empty()) {
            (Some(m), _) => Ok(m),
            (None, false) => Ok(SealMethod::Age),
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
                    hint: "plaintext is never written to a file; seal it (--seal age --seal-to ...) or pipe it: `... --seal none | kubectl apply -f -`".into(),
                }
                .into());
            }
            check_plaintext_stdout(what, self.force_plaintext_to_tty)?;
        }
        Ok(())
    }

    /// Parses recipients and builds the sealing settings.
    pub fn settings(&self, method: SealMethod) -> Result<SealSettings> {
        Ok(match method {
            SealMethod::Age => SealSettings::Age(seal::age::parse_recipients(&self.seal_to)?),
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
        match &self.out {
            Some(path) => {
                if output.is_plaintext() {
                    // check_destination already refused this; keep the invariant local too.
                    return Err(Error::PlaintextRefused {
                        what: "plaintext".into(),
                        target: "a file".into(),
                        hint: "seal it".into(),
                    }
                    .into());
                }
                crate::output::write_atomic(path, output.as_bytes())?;
                Ok(())
            }
            None => write_stdout(output.as_bytes()),
        }
    }
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
    match stdout_kind() {
        StdoutKind::Pipe => Ok(()),
        StdoutKind::Terminal if force_tty => Ok(()),
        StdoutKind::Terminal => Err(Error::PlaintextRefused {
            what: what.into(),
            target: "a terminal".into(),
            hint: "pipe it (`| kubectl apply -f -`), seal it (--seal-to ...), or pass --force-plaintext-to-tty".into(),
        }
        .into()),
        StdoutKind::File => Err(Error::PlaintextRefused {
            what: what.into(),
            target: "a file (stdout is redirected to one)".into(),
            hint: "plaintext is never written to a file; seal it (--seal-to ...) or pipe it into kubectl".into(),
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
    use std::io::Read;
    let mut buf = zeroize::Zeroizing::new(Vec::with_capacity(64 * 1024));
    std::io::stdin()
        .lock()
        .read_to_end(&mut buf)
        .map_err(|e| Error::file("read", what, e))?;
    Ok(buf)
}

/// Reads a named input (`-` is stdin) into a buffer that is wiped on drop.
pub fn read_input(path: Option<&std::path::Path>) -> Result<(zeroize::Zeroizing<Vec<u8>>, String)> {
    match path {
        None => Ok((read_stdin("stdin")?, "stdin".into())),
        Some(p) if p.as_os_str() == "-" => Ok((read_stdin("stdin")?, "stdin".into())),
        Some(p) => {
            let bytes = std::fs::read(p).map_err(|e| Error::file("read", p, e))?;
            Ok((zeroize::Zeroizing::new(bytes), p.display().to_string()))
        }
    }
}

/// UTF-8 text from bytes, in a wiped buffer.
pub fn into_text(
    bytes: zeroize::Zeroizing<Vec<u8>>,
    what: &str,
) -> Result<crate::secret::SecretText> {
    match String::from_utf8(bytes.to_vec()) {
        Ok(s) => Ok(crate::secret::SecretText::new(s)),
        Err(e) => {
            let mut v = e.into_bytes();
            zeroize::Zeroize::zeroize(&mut v);
            Err(Error::input(what, "not UTF-8 text", "pass YAML or JSON").into())
        }
    }
}

/// Exit code 0, for adapters.
pub const OK: u8 = exit::OK;
