//! The library's error type and the exit code each kind of failure maps to.
//!
//! Messages name the input (setting, file, document, fingerprint) and say what to do next; they
//! never carry a secret value.
//!
//! The library does not know the command line. Where a message names a setting (`seal_to`) or
//! suggests a command (`rotate --finish`), it holds a typed [`Setting`] or [`Command`] inside a
//! [`Message`], and the front end chooses the spelling: [`Error`]'s `Display` writes the library's
//! names, [`Error::render`] takes a [`Spelling`] (the CLI's writes `--seal-to`, `sealkey rotate`).

use std::borrow::Cow;
use std::fmt;
use std::path::PathBuf;

/// A setting given to sealkey (a field of a settings type; a flag on the command line), named by
/// errors so a front end can spell it its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)] // each variant is the setting of the same name (see `Setting::name`)
pub enum Setting {
    AbandonPending,
    Adopt,
    ApiUrl,
    Apply,
    AppId,
    AppKey,
    Branch,
    Cert,
    ChartSource,
    ChartVersion,
    Cluster,
    Consumer,
    Container,
    Context,
    Deadline,
    Emit,
    EncryptedRegex,
    Finish,
    GitHost,
    Gitops,
    Identity,
    KeepOld,
    Keep,
    KeyType,
    KnownHosts,
    Kubeconfig,
    MaxFileSize,
    MaxWait,
    MergeInto,
    Namespace,
    NoRestart,
    Out,
    Region,
    ReleaseName,
    Repo,
    Scope,
    Seal,
    SealTo,
    SecretName,
    Staged,
    Store,
    TokenStdin,
    Update,
    Wait,
    Workload,
}

impl Setting {
    /// Every setting, for front ends that check their spelling covers each one.
    pub const ALL: &'static [Setting] = &[
        Setting::AbandonPending,
        Setting::Adopt,
        Setting::ApiUrl,
        Setting::Apply,
        Setting::AppId,
        Setting::AppKey,
        Setting::Branch,
        Setting::Cert,
        Setting::ChartSource,
        Setting::ChartVersion,
        Setting::Cluster,
        Setting::Consumer,
        Setting::Container,
        Setting::Context,
        Setting::Deadline,
        Setting::Emit,
        Setting::EncryptedRegex,
        Setting::Finish,
        Setting::GitHost,
        Setting::Gitops,
        Setting::Identity,
        Setting::KeepOld,
        Setting::Keep,
        Setting::KeyType,
        Setting::KnownHosts,
        Setting::Kubeconfig,
        Setting::MaxFileSize,
        Setting::MaxWait,
        Setting::MergeInto,
        Setting::Namespace,
        Setting::NoRestart,
        Setting::Out,
        Setting::Region,
        Setting::ReleaseName,
        Setting::Repo,
        Setting::Scope,
        Setting::Seal,
        Setting::SealTo,
        Setting::SecretName,
        Setting::Staged,
        Setting::Store,
        Setting::TokenStdin,
        Setting::Update,
        Setting::Wait,
        Setting::Workload,
    ];

    /// The library's name for it (the settings field, in snake case).
    pub fn name(self) -> &'static str {
        match self {
            Setting::AbandonPending => "abandon_pending",
            Setting::Adopt => "adopt",
            Setting::ApiUrl => "api_url",
            Setting::Apply => "apply",
            Setting::AppId => "app_id",
            Setting::AppKey => "app_key",
            Setting::Branch => "branch",
            Setting::Cert => "cert",
            Setting::ChartSource => "chart_source",
            Setting::ChartVersion => "chart_version",
            Setting::Cluster => "cluster",
            Setting::Consumer => "consumer",
            Setting::Container => "container",
            Setting::Context => "context",
            Setting::Deadline => "deadline",
            Setting::Emit => "emit",
            Setting::EncryptedRegex => "encrypted_regex",
            Setting::Finish => "finish",
            Setting::GitHost => "git_host",
            Setting::Gitops => "gitops",
            Setting::Identity => "identity",
            Setting::KeepOld => "keep_old",
            Setting::Keep => "keep",
            Setting::KeyType => "key_type",
            Setting::KnownHosts => "known_hosts",
            Setting::Kubeconfig => "kubeconfig",
            Setting::MaxFileSize => "max_file_size",
            Setting::MaxWait => "max_wait",
            Setting::MergeInto => "merge_into",
            Setting::Namespace => "namespace",
            Setting::NoRestart => "no_restart",
            Setting::Out => "out",
            Setting::Region => "region",
            Setting::ReleaseName => "release_name",
            Setting::Repo => "repo",
            Setting::Scope => "scope",
            Setting::Seal => "seal",
            Setting::SealTo => "seal_to",
            Setting::SecretName => "secret_name",
            Setting::Staged => "staged",
            Setting::Store => "store",
            Setting::TokenStdin => "token_stdin",
            Setting::Update => "update",
            Setting::Wait => "wait",
            Setting::Workload => "workload",
        }
    }
}

/// An operation a message suggests running next (a subcommand on the command line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)] // each variant is the operation of the same name
pub enum Command {
    Audit,
    Create,
    KeysPrune,
    Rotate,
    Seal,
}

impl Command {
    /// Every command, for front ends that check their spelling covers each one.
    pub const ALL: &'static [Command] = &[
        Command::Audit,
        Command::Create,
        Command::KeysPrune,
        Command::Rotate,
        Command::Seal,
    ];

    /// The library's name for it (its module).
    pub fn name(self) -> &'static str {
        match self {
            Command::Audit => "audit",
            Command::Create => "create",
            Command::KeysPrune => "keys prune",
            Command::Rotate => "rotate",
            Command::Seal => "seal",
        }
    }
}

impl fmt::Display for Setting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a front end writes the settings and commands a message names.
pub trait Spelling {
    /// How `setting` is written, e.g. `--seal-to` (CLI) or `seal_to` (library).
    fn setting(&self, setting: Setting) -> Cow<'static, str>;
    /// How `command` is written, e.g. `sealkey rotate` (CLI) or `rotate` (library).
    fn command(&self, command: Command) -> Cow<'static, str>;
}

/// The library's own spelling: [`Setting::name`] and [`Command::name`].
#[derive(Debug, Clone, Copy, Default)]
pub struct LibrarySpelling;

impl Spelling for LibrarySpelling {
    fn setting(&self, setting: Setting) -> Cow<'static, str> {
        Cow::Borrowed(setting.name())
    }
    fn command(&self, command: Command) -> Cow<'static, str> {
        Cow::Borrowed(command.name())
    }
}

/// One piece of a [`Message`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Part {
    /// Words, written as they are.
    Words(Cow<'static, str>),
    /// A setting, written as the front end spells it.
    Setting(Setting),
    /// A command, written as the front end spells it.
    Command(Command),
}

/// Message text whose settings and commands the front end spells (see [`Spelling`]). Made with
/// [`message!`](crate::message) when it names one, or from a `String`/`&str` when it does not.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Message(Vec<Part>);

impl Message {
    /// A message from its parts, in order.
    pub fn from_parts(parts: Vec<Part>) -> Self {
        Message(parts)
    }

    /// A template's `{}` holes filled with `args` in order (what [`message!`](crate::message) expands to).
    #[doc(hidden)]
    pub fn template(template: &'static str, args: Vec<Message>) -> Self {
        let mut parts = Vec::with_capacity(args.len() * 2 + 1);
        let mut args = args.into_iter();
        let mut pieces = template.split("{}").peekable();
        while let Some(piece) = pieces.next() {
            if piece.contains("{{") || piece.contains("}}") {
                parts.push(Part::Words(Cow::Owned(
                    piece.replace("{{", "{").replace("}}", "}"),
                )));
            } else if !piece.is_empty() {
                debug_assert!(
                    !piece.contains('{'),
                    "message! takes only {{}} holes: {template}"
                );
                parts.push(Part::Words(Cow::Borrowed(piece)));
            }
            if pieces.peek().is_some() {
                parts.extend(args.next().into_iter().flat_map(|t| t.0));
            }
        }
        Message(parts)
    }

    /// Appends `more`.
    pub fn push(&mut self, more: impl Into<Message>) {
        self.0.extend(more.into().0);
    }

    /// The parts, for front ends and tests.
    pub fn parts(&self) -> &[Part] {
        &self.0
    }

    /// Whether it names `setting`.
    pub fn names(&self, setting: Setting) -> bool {
        self.0.contains(&Part::Setting(setting))
    }

    /// The text, written with `spelling`.
    pub fn render(&self, spelling: &dyn Spelling) -> String {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Words(w) => out.push_str(w),
                Part::Setting(s) => out.push_str(&spelling.setting(*s)),
                Part::Command(c) => out.push_str(&spelling.command(*c)),
            }
        }
        out
    }
}

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.render(&LibrarySpelling))
    }
}

impl From<String> for Message {
    fn from(s: String) -> Self {
        Message(vec![Part::Words(Cow::Owned(s))])
    }
}
impl From<&String> for Message {
    fn from(s: &String) -> Self {
        Message(vec![Part::Words(Cow::Owned(s.clone()))])
    }
}
impl From<&Message> for Message {
    fn from(t: &Message) -> Self {
        t.clone()
    }
}
impl From<&str> for Message {
    fn from(s: &str) -> Self {
        Message(vec![Part::Words(Cow::Owned(s.to_owned()))])
    }
}
impl From<Setting> for Message {
    fn from(s: Setting) -> Self {
        Message(vec![Part::Setting(s)])
    }
}
impl From<Command> for Message {
    fn from(c: Command) -> Self {
        Message(vec![Part::Command(c)])
    }
}
impl From<&Error> for Message {
    fn from(e: &Error) -> Self {
        e.text()
    }
}

/// A [`Message`] from a `format!`-style template whose `{}` holes take anything that converts into
/// a [`Message`]: a [`Setting`], a [`Command`], a `String`, a `&str`, another `Message`, an `&Error`
/// (its message, spelled later with the rest). Checked at compile time like `format!`.
#[macro_export]
macro_rules! message {
    ($template:literal $(, $arg:expr)* $(,)?) => {{
        if false {
            // Arity and placeholder check only; never runs.
            let _ = format!($template $(, &$arg)*);
        }
        $crate::error::Message::template($template, vec![$($crate::error::Message::from($arg)),*])
    }};
}

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
