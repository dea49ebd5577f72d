//! The library's error type and the exit code each kind of failure maps to.
//!
//! Messages name the input (flag, file, document, fingerprint) and say what to do next; they never
//! carry a secret value.

use std::path::PathBuf;

/// Exit codes shared by every command.
pub mod exit {
    /// Success.
    pub const OK: u8 = 0;
    /// An audit found problems at or above the threshold.
    pub const FINDINGS: u8 = 1;
    /// Usage or input error: nothing was changed.
    pub const INPUT: u8 = 2;
    /// A remote (GitHub, the cluster, a certificate URL) refused or failed.
    pub const REMOTE: u8 = 3;
}

/// Everything the library can fail with. New kinds may be added: match with a wildcard arm.
///
/// Failures of the libraries sealkey talks through (kube, reqwest) keep their error as the
/// `#[source]`, for programs that want the detail; the message itself is sealkey's, cleaned of
/// what a server could inject, and is what a person sees.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A flag, a file or standard input held something sealkey cannot use.
    #[error("{input}: {problem}; {hint}")]
    Input {
        /// What was wrong, as the user typed it: `--repo acme`, `recipients.txt line 3`.
        input: String,
        /// What is wrong with it.
        problem: String,
        /// What to do instead.
        hint: String,
    },

    /// Reading or writing a named file failed.
    #[error("cannot {action} {}: {source}; {}", path.display(), file_hint(source))]
    File {
        /// `read`, `write`, `rename`, ...
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },

    /// Plaintext secret material was about to go somewhere it must not (a terminal, a file).
    #[error("refusing to write {what} to {target}; {hint}")]
    PlaintextRefused {
        /// What would have been written, e.g. `the unsealed private key`.
        what: String,
        /// Where: `a terminal`, `a file`.
        target: String,
        /// What to do instead.
        hint: String,
    },

    /// Encryption or decryption failed: wrong identity, tampered ciphertext, bad MAC.
    #[error("{what}: {problem}; {hint}")]
    Crypto {
        /// The document or value concerned (never its content).
        what: String,
        /// What went wrong.
        problem: String,
        /// What to do next.
        hint: String,
    },

    /// A remote service (GitHub, the Kubernetes API, a certificate URL) refused or failed.
    #[error("{service}: {message}; {hint}")]
    Remote {
        /// `GitHub`, `Kubernetes API`, `https://host/v1/cert.pem`.
        service: String,
        /// What it answered, or why it could not be reached.
        message: String,
        /// What to do next.
        hint: String,
    },

    /// The Kubernetes API answered with an error status, or could not be reached.
    #[error("Kubernetes API: {message}; {hint}")]
    Kube {
        /// What was asked and what came back (`read Secret dev/x: 403 Forbidden: ...`).
        message: String,
        /// What to do next.
        hint: String,
        /// The HTTP status, when the server answered.
        status: Option<u16>,
        /// kube's error.
        #[source]
        source: Box<kube::Error>,
    },

    /// An HTTP request (GitHub, a certificate URL) got no answer: connection, TLS or timeout.
    #[error("{service}: {message}; {hint}")]
    Http {
        /// `GitHub`, `https://host/v1/cert.pem`.
        service: String,
        /// What failed, cleaned of anything the peer could inject.
        message: String,
        /// What to do next.
        hint: String,
        /// reqwest's error.
        #[source]
        source: Box<reqwest::Error>,
    },

    /// A step of a multi-step change (rotation, `create --apply --register`) failed; `undone`
    /// says what was rolled back and what state is left.
    #[error("step `{step}` failed; {undone}")]
    Rotation {
        /// `register new key`, `update Secret`, ...
        step: String,
        /// What was undone and where things stand now.
        undone: String,
        /// The failure itself; its kind decides the exit code.
        #[source]
        source: Box<Error>,
    },

    // --- issue 15 (AWS): variants below are the AWS store and KMS ones. ---
    /// The AWS SDK's credential chain found no credentials (or a configured source failed).
    #[error("AWS: no credentials (tried: {tried}); {hint}")]
    AwsNoCredentials {
        /// The sources the chain tried, in order.
        tried: String,
        /// How to set one.
        hint: String,
        /// The SDK's error, when it gave one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// An AWS call (Secrets Manager, KMS) was refused or failed (boxed: it names the action,
    /// resource, code and hint).
    #[error(transparent)]
    Aws(Box<crate::aws::AwsFailure>),
}

impl Error {
    /// Shorthand for [`Error::Input`].
    pub fn input(
        input: impl Into<String>,
        problem: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Error::Input {
            input: input.into(),
            problem: problem.into(),
            hint: hint.into(),
        }
    }

    /// Shorthand for [`Error::Crypto`].
    pub fn crypto(
        what: impl Into<String>,
        problem: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Error::Crypto {
            what: what.into(),
            problem: problem.into(),
            hint: hint.into(),
        }
    }

    /// Shorthand for [`Error::Remote`].
    pub fn remote(
        service: impl Into<String>,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) -> Self {
        Error::Remote {
            service: service.into(),
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// Shorthand for [`Error::File`].
    pub fn file(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::File {
            action,
            path: path.into(),
            source,
        }
    }

    /// Whether the failure is a closed pipe on output (somewhere in its chain of causes).
    pub fn is_broken_pipe(&self) -> bool {
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(self);
        while let Some(e) = cause {
            if e.downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            {
                return true;
            }
            cause = e.source();
        }
        false
    }

    /// The process exit code this error should end with (see [`exit`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Remote { .. } | Error::Kube { .. } | Error::Http { .. } => exit::REMOTE,
            Error::AwsNoCredentials { .. } | Error::Aws { .. } => exit::REMOTE,
            Error::Rotation { source, .. } => source.exit_code(),
            Error::Input { .. }
            | Error::File { .. }
            | Error::PlaintextRefused { .. }
            | Error::Crypto { .. } => exit::INPUT,
        }
    }
}

/// What to do about a file the operating system refused (the hint of [`Error::File`]).
fn file_hint(e: &std::io::Error) -> &'static str {
    match e.kind() {
        std::io::ErrorKind::NotFound => "check the path",
        std::io::ErrorKind::PermissionDenied => "check the file's permissions and owner",
        std::io::ErrorKind::AlreadyExists => "remove it or choose another path",
        std::io::ErrorKind::IsADirectory => "pass a file, not a directory",
        _ => "check the path, its permissions and free space",
    }
}

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
