//! The library's error type and the exit code each kind of failure maps to.
//!
//! Messages name the input (setting, file, document, fingerprint) and say what to do next; they
//! never carry a secret value.
//!
//! The library does not know the command line. Where a message names a setting (`seal_to`) or
//! suggests a command (run the rotation's finish step), it holds a typed [`Setting`] or [`Command`] inside a
//! [`Message`], and the front end chooses the spelling: [`Error`]'s `Display` writes the library's
//! names, [`Error::render`] takes a [`Spelling`] (the CLI's writes `--seal-to`, `sealkey rotate`).

mod message;

#[doc(hidden)]
pub use message::plain_holes_only;
pub use message::{Command, LibrarySpelling, Message, Part, Setting, Spelling};
use std::fmt;
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
    Input {
        /// What was wrong, as the user gave it: `repo acme` (`--repo acme`), `recipients.txt line 3`.
        input: Message,
        /// What is wrong with it.
        problem: Message,
        /// What to do instead.
        hint: Message,
        /// The parser's or the operating system's error, when one said why.
        #[source]
        source: Option<Cause>,
    },

    /// Reading or writing a named file failed.
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
    PlaintextRefused {
        /// What would have been written, e.g. `the unsealed private key`.
        what: String,
        /// Where: `a terminal`, `a file`.
        target: String,
        /// What to do instead.
        hint: Message,
    },

    /// Encryption or decryption failed: wrong identity, tampered ciphertext, bad MAC.
    Crypto {
        /// The document or value concerned (never its content).
        what: Message,
        /// What went wrong.
        problem: Message,
        /// What to do next.
        hint: Message,
        /// The cryptography library's error, when one said why.
        #[source]
        source: Option<Cause>,
    },

    /// A remote service (GitHub, the Kubernetes API, a certificate URL) refused or failed.
    Remote {
        /// `GitHub`, `Kubernetes API`, `https://host/v1/cert.pem`.
        service: String,
        /// What it answered, or why it could not be reached.
        message: Message,
        /// What to do next.
        hint: Message,
        /// The underlying error, when there is one.
        #[source]
        source: Option<Cause>,
    },

    /// The Kubernetes API answered with an error status, or could not be reached.
    Kube {
        /// What was asked and what came back (`read Secret dev/x: 403 Forbidden: ...`).
        message: String,
        /// What to do next.
        hint: Message,
        /// The HTTP status, when the server answered.
        status: Option<u16>,
        /// kube's error.
        #[source]
        source: Box<kube::Error>,
    },

    /// An HTTP request (GitHub, a certificate URL) got no answer: connection, TLS or timeout.
    Http {
        /// `GitHub`, `https://host/v1/cert.pem`.
        service: String,
        /// What failed, cleaned of anything the peer could inject.
        message: String,
        /// What to do next.
        hint: Message,
        /// reqwest's error.
        #[source]
        source: Box<reqwest::Error>,
    },

    /// A step of a multi-step change (rotation, `create --apply --register`) failed; `undone`
    /// says what was rolled back and what state is left.
    Rotation {
        /// `register new key`, `update Secret`, ...
        step: String,
        /// What was undone and where things stand now.
        undone: Message,
        /// The failure itself; its kind decides the exit code.
        #[source]
        source: Box<Error>,
    },

    // --- issue 15 (AWS): variants below are the AWS store and KMS ones. ---
    /// The AWS SDK's credential chain found no credentials (or a configured source failed).
    AwsNoCredentials {
        /// The sources the chain tried, in order.
        tried: String,
        /// How to set one.
        hint: Message,
        /// The SDK's error, when it gave one.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },

    /// An AWS call (Secrets Manager, KMS) was refused or failed (boxed: it names the action,
    /// resource, code and hint).
    Aws(#[source] Box<crate::aws::AwsFailure>),
}

impl Error {
    /// Shorthand for [`Error::Input`].
    pub fn input(
        input: impl Into<Message>,
        problem: impl Into<Message>,
        hint: impl Into<Message>,
    ) -> Self {
        Error::Input {
            input: input.into(),
            problem: problem.into(),
            hint: hint.into(),
            source: None,
        }
    }

    /// Shorthand for [`Error::Crypto`].
    pub fn crypto(
        what: impl Into<Message>,
        problem: impl Into<Message>,
        hint: impl Into<Message>,
    ) -> Self {
        Error::Crypto {
            what: what.into(),
            problem: problem.into(),
            hint: hint.into(),
            source: None,
        }
    }

    /// Shorthand for [`Error::Remote`].
    pub fn remote(
        service: impl Into<String>,
        message: impl Into<Message>,
        hint: impl Into<Message>,
    ) -> Self {
        Error::Remote {
            service: service.into(),
            message: message.into(),
            hint: hint.into(),
            source: None,
        }
    }

    /// Keeps `cause` as the `#[source]` of an [`Error::Input`], [`Error::Crypto`] or
    /// [`Error::Remote`] (whose message already says what it means); other kinds keep theirs.
    pub fn caused_by(mut self, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        if let Error::Input { source, .. }
        | Error::Crypto { source, .. }
        | Error::Remote { source, .. } = &mut self
        {
            *source = Some(Box::new(cause));
        }
        self
    }

    /// Shorthand for [`Error::File`].
    pub fn file(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::File {
            action,
            path: path.into(),
            source,
        }
    }

    /// The message, with settings and commands written by `spelling` (the CLI passes one that
    /// writes flags). `Display` is `render(&LibrarySpelling)`. Sources are not included.
    pub fn render(&self, spelling: &dyn Spelling) -> String {
        self.text().render(spelling)
    }

    /// The message as [`Message`], its settings and commands not yet spelled.
    pub fn text(&self) -> Message {
        match self {
            Error::Input {
                input,
                problem,
                hint,
                ..
            } => crate::message!("{}: {}; {}", input, problem, hint),
            Error::File {
                action,
                path,
                source,
            } => format!(
                "cannot {action} {}: {source}; {}",
                path.display(),
                file_hint(source)
            )
            .into(),
            Error::PlaintextRefused { what, target, hint } => {
                crate::message!("refusing to write {} to {}; {}", what, target, hint)
            }
            Error::Crypto {
                what,
                problem,
                hint,
                ..
            } => crate::message!("{}: {}; {}", what, problem, hint),
            Error::Remote {
                service,
                message,
                hint,
                ..
            } => {
                crate::message!("{}: {}; {}", service, message, hint)
            }
            Error::Kube { message, hint, .. } => {
                crate::message!("Kubernetes API: {}; {}", message, hint)
            }
            Error::Http {
                service,
                message,
                hint,
                ..
            } => {
                crate::message!("{}: {}; {}", service, message, hint)
            }
            Error::Rotation { step, undone, .. } => {
                crate::message!("step `{}` failed; {}", step, undone)
            }
            Error::AwsNoCredentials { tried, hint, .. } => {
                crate::message!("AWS: no credentials (tried: {}); {}", tried, hint)
            }
            Error::Aws(failure) => failure.text(),
        }
    }

    /// Whether the message names `setting` (what was wrong, or what to change): for programs that
    /// point at the field to fix, and for tests.
    pub fn names(&self, setting: Setting) -> bool {
        let texts: Vec<&Message> = match self {
            Error::Input {
                input,
                problem,
                hint,
                ..
            } => vec![input, problem, hint],
            Error::Crypto {
                what,
                problem,
                hint,
                ..
            } => vec![what, problem, hint],
            Error::Remote { message, hint, .. } => vec![message, hint],
            Error::PlaintextRefused { hint, .. }
            | Error::Kube { hint, .. }
            | Error::Http { hint, .. }
            | Error::AwsNoCredentials { hint, .. } => vec![hint],
            Error::Rotation { undone, source, .. } => {
                return undone.names(setting) || source.names(setting)
            }
            Error::Aws(failure) => vec![&failure.hint],
            Error::File { .. } => vec![],
        };
        texts.into_iter().any(|t| t.names(setting))
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

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(&LibrarySpelling))
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

/// A foreign error kept as the `#[source]` of a library error.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The library's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    struct Shout;
    impl Spelling for Shout {
        fn setting(&self, s: Setting) -> Cow<'static, str> {
            Cow::Owned(format!("--{}", s.name().replace('_', "-")))
        }
        fn command(&self, c: Command) -> Cow<'static, str> {
            Cow::Owned(format!("tool {}", c.name()))
        }
    }

    #[test]
    fn text_keeps_settings_typed_until_a_front_end_spells_them() {
        let t = crate::message!(
            "pass {} FILE to `{} {{x}}`",
            Setting::SealTo,
            Command::Rotate
        );
        assert!(t.names(Setting::SealTo) && !t.names(Setting::Repo));
        assert_eq!(t.to_string(), "pass seal_to FILE to `rotate {x}`");
        assert_eq!(t.render(&Shout), "pass --seal-to FILE to `tool rotate {x}`");
    }

    #[test]
    fn only_plain_holes_pass_the_compile_time_check() {
        assert!(plain_holes_only("a {} b {{c}} {}"));
        assert!(!plain_holes_only("a {:?}"));
        assert!(!plain_holes_only("{name}"));
    }

    #[test]
    fn an_error_inside_a_message_is_spelled_with_the_message() {
        let inner = Error::input(
            Setting::ApiUrl,
            "not a URL",
            crate::message!("check {}", Setting::ApiUrl),
        );
        let outer = Error::remote(
            "GitHub",
            crate::message!("the rollback failed ({})", &inner),
            "delete the key by hand",
        );
        assert!(outer.names(Setting::ApiUrl));
        assert_eq!(
            outer.render(&Shout),
            "GitHub: the rollback failed (--api-url: not a URL; check --api-url); delete the key by hand"
        );
        assert!(!outer.to_string().contains("--"), "{outer}");
    }
}
