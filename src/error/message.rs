//! Message text whose settings and commands a front end spells: [`Message`], [`Setting`],
//! [`Command`], [`Spelling`] and the [`message!`](crate::message) macro.

use super::Error;
use std::borrow::Cow;
use std::fmt;

/// A setting given to sealkey (a field of a settings type; a flag on the command line), named by
/// errors so a front end can spell it its own way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
#[allow(missing_docs)] // each variant is the setting of the same name (see `Setting::name`)
pub enum Setting {
    AbandonPending,
    Adopt,
    ApiUrl,
    ArgocdKnownHosts,
    Apply,
    AppId,
    AppKey,
    Branch,
    Cert,
    ChartSource,
    ChartVersion,
    Cluster,
    Consumer,
    ConnId,
    Container,
    Context,
    Deadline,
    Emit,
    EncryptedRegex,
    Finish,
    GitHost,
    Gitops,
    Identity,
    Installation,
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
    RepoUrl,
    Scope,
    Seal,
    SealTo,
    SecretName,
    Staged,
    Store,
    SubPath,
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
        Setting::ArgocdKnownHosts,
        Setting::Apply,
        Setting::AppId,
        Setting::AppKey,
        Setting::Branch,
        Setting::Cert,
        Setting::ChartSource,
        Setting::ChartVersion,
        Setting::Cluster,
        Setting::Consumer,
        Setting::ConnId,
        Setting::Container,
        Setting::Context,
        Setting::Deadline,
        Setting::Emit,
        Setting::EncryptedRegex,
        Setting::Finish,
        Setting::GitHost,
        Setting::Gitops,
        Setting::Identity,
        Setting::Installation,
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
        Setting::RepoUrl,
        Setting::Scope,
        Setting::Seal,
        Setting::SealTo,
        Setting::SecretName,
        Setting::Staged,
        Setting::Store,
        Setting::SubPath,
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
            Setting::ArgocdKnownHosts => "argocd_known_hosts",
            Setting::Apply => "apply",
            Setting::AppId => "app_id",
            Setting::AppKey => "app_key",
            Setting::Branch => "branch",
            Setting::Cert => "cert",
            Setting::ChartSource => "chart_source",
            Setting::ChartVersion => "chart_version",
            Setting::Cluster => "cluster",
            Setting::Consumer => "consumer",
            Setting::ConnId => "conn_id",
            Setting::Container => "container",
            Setting::Context => "context",
            Setting::Deadline => "deadline",
            Setting::Emit => "emit",
            Setting::EncryptedRegex => "encrypted_regex",
            Setting::Finish => "finish",
            Setting::GitHost => "git_host",
            Setting::Gitops => "gitops",
            Setting::Identity => "identity",
            Setting::Installation => "installation",
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
            Setting::RepoUrl => "repo_url",
            Setting::Scope => "scope",
            Setting::Seal => "seal",
            Setting::SealTo => "seal_to",
            Setting::SecretName => "secret_name",
            Setting::Staged => "staged",
            Setting::Store => "store",
            Setting::SubPath => "sub_path",
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

/// Whether every `{` of `template` opens a plain `{}` hole or is escaped as `{{` (what
/// [`message!`](crate::message) checks at compile time; `{:?}` would not be filled).
#[doc(hidden)]
pub const fn plain_holes_only(template: &str) -> bool {
    let b = template.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'{' {
            if i + 1 < b.len() && (b[i + 1] == b'{' || b[i + 1] == b'}') {
                i += 2;
                continue;
            }
            return false;
        }
        i += 1;
    }
    true
}

/// A [`Message`] from a `format!`-style template whose `{}` holes take anything that converts into
/// a [`Message`]: a [`Setting`], a [`Command`], a `String`, a `&str`, another `Message`, an `&Error`
/// (its message, spelled later with the rest). Checked at compile time like `format!`.
///
/// ```
/// use sealkey::error::{LibrarySpelling, Setting};
/// let m = sealkey::message!("pass {} FILE", Setting::Identity);
/// assert_eq!(m.render(&LibrarySpelling), "pass identity FILE");
/// ```
///
/// A hole with a format spec is refused when the crate is built (it would not be filled):
///
/// ```compile_fail
/// let _ = sealkey::message!("{:?}", "x");
/// ```
#[macro_export]
macro_rules! message {
    ($template:literal $(, $arg:expr)* $(,)?) => {{
        const {
            assert!(
                $crate::error::plain_holes_only($template),
                "message! takes plain holes only: format a value first for a debug or width spec"
            )
        };
        if false {
            // Arity check only; never runs.
            let _ = format!($template $(, &$arg)*);
        }
        $crate::error::Message::template($template, vec![$($crate::error::Message::from($arg)),*])
    }};
}
