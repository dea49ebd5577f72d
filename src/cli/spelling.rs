//! How the command line writes what library messages name: a [`Setting`] as its flag, a
//! [`Command`] as the subcommand to run. The library never spells a flag; this table is the one
//! place that does (a new [`Setting`] does not compile until it has a row), and a test checks
//! each flag here exists on some subcommand.

use crate::error::{Command, Error, Setting, Spelling};
use std::borrow::Cow;

/// The CLI's [`Spelling`]: `--seal-to`, `sealkey rotate`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Flags;

impl Spelling for Flags {
    fn setting(&self, setting: Setting) -> Cow<'static, str> {
        Cow::Borrowed(flag(setting))
    }

    fn command(&self, command: Command) -> Cow<'static, str> {
        Cow::Borrowed(match command {
            Command::Audit => "sealkey audit",
            Command::Create => "sealkey create",
            Command::KeysPrune => "sealkey keys prune",
            Command::Rotate => "sealkey rotate",
            Command::Seal => "sealkey seal",
        })
    }
}

/// The flag that sets `setting`.
pub fn flag(setting: Setting) -> &'static str {
    match setting {
        Setting::AbandonPending => "--abandon-pending",
        Setting::Adopt => "--adopt",
        Setting::ApiUrl => "--api-url",
        Setting::ArgocdKnownHosts => "--argocd-known-hosts",
        Setting::Apply => "--apply",
        Setting::AppId => "--app-id",
        Setting::AppKey => "--app-key",
        Setting::Branch => "--branch",
        Setting::Cert => "--cert",
        Setting::ChartSource => "--chart-source",
        Setting::ChartVersion => "--chart-version",
        Setting::Cluster => "--cluster",
        Setting::Consumer => "--for",
        Setting::ConnId => "--conn-id",
        Setting::Container => "--container",
        Setting::Context => "--context",
        Setting::Deadline => "--deadline",
        Setting::Emit => "--emit",
        Setting::EncryptedRegex => "--encrypted-regex",
        Setting::Finish => "--finish",
        Setting::GitHost => "--git-host",
        Setting::Gitops => "--gitops",
        Setting::Identity => "--identity",
        Setting::Installation => "--installation-id",
        Setting::KeepOld => "--keep-old",
        Setting::Keep => "--keep",
        Setting::KeyType => "--key-type",
        Setting::KnownHosts => "--known-hosts",
        Setting::Kubeconfig => "--kubeconfig",
        Setting::MaxFileSize => "--max-file-size",
        Setting::MaxWait => "--max-wait",
        Setting::MergeInto => "--merge-into",
        Setting::Namespace => "--namespace",
        Setting::NoRestart => "--no-restart",
        Setting::Out => "--out",
        Setting::Region => "--region",
        Setting::ReleaseName => "--release-name",
        Setting::Repo => "--repo",
        Setting::RepoUrl => "--repo-url",
        Setting::Scope => "--scope",
        Setting::Seal => "--seal",
        Setting::SealTo => "--seal-to",
        Setting::SecretName => "--secret-name",
        Setting::Staged => "--staged",
        Setting::Store => "--store",
        Setting::SubPath => "--sub-path",
        Setting::TokenStdin => "--token-stdin",
        Setting::Update => "--update",
        Setting::Wait => "--wait",
        Setting::Workload => "--workload",
    }
}

/// An error of the chain as the CLI shows it: sealkey's own errors with flags, others as they
/// display themselves.
pub fn show(cause: &(dyn std::error::Error + 'static)) -> String {
    if let Some(e) = cause.downcast_ref::<Error>() {
        return e.render(&Flags);
    }
    if let Some(e) = cause.downcast_ref::<Box<Error>>() {
        return e.render(&Flags);
    }
    if let Some(e) = cause.downcast_ref::<crate::aws::AwsFailure>() {
        return e.render(&Flags);
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn all_long_flags(cmd: &clap::Command, out: &mut std::collections::BTreeSet<String>) {
        for a in cmd.get_arguments() {
            if let Some(l) = a.get_long() {
                out.insert(format!("--{l}"));
            }
        }
        for sub in cmd.get_subcommands() {
            all_long_flags(sub, out);
        }
    }

    #[test]
    fn every_setting_is_spelled_as_a_flag_that_exists() {
        let mut flags = Default::default();
        all_long_flags(&crate::cli::Cli::command(), &mut flags);
        for &s in Setting::ALL {
            let f = flag(s);
            assert!(
                flags.contains(f),
                "{s:?} is spelled {f}, which no subcommand takes"
            );
        }
    }

    #[test]
    fn every_command_is_spelled_as_a_subcommand_that_exists() {
        let root = crate::cli::Cli::command();
        for &c in Command::ALL {
            let spelled = Flags.command(c);
            let mut cmd = &root;
            for word in spelled.split(' ').skip(1) {
                cmd = cmd
                    .find_subcommand(word)
                    .unwrap_or_else(|| panic!("{c:?} is spelled `{spelled}`: no `{word}` there"));
            }
        }
    }

    #[test]
    fn library_errors_name_settings_and_the_cli_writes_them_as_flags() {
        let e = crate::repo::RepoRef::parse("not-a-slug").unwrap_err();
        let library = e.to_string();
        let cli = show(&e);
        assert!(library.starts_with("repo not-a-slug:"), "{library}");
        assert!(!library.contains("--"), "{library}");
        assert!(cli.starts_with("--repo not-a-slug:"), "{cli}");
        assert!(cli.contains("e.g. --repo acme/dags"), "{cli}");
    }
}

#[cfg(test)]
mod no_flags_in_the_library {
    use clap::CommandFactory;
    use std::path::Path;

    /// Text outside `src/cli/` that may spell a sealkey flag, and why: product copy read next to
    /// the CLI (audit fix texts, the markdown report's footer, the note on an input too large to
    /// audit), and other tools' command lines that happen to share a flag name.
    const ALLOWED: &[(&str, &str)] = &[
        (
            "audit/model.rs",
            "rule fix texts are product copy: `sealkey create --for flux`",
        ),
        (
            "audit/report/markdown.rs",
            "the PR comment's footer: run `sealkey audit --format json`",
        ),
        (
            "audit/source/files.rs",
            "a report entry: audit it with a larger --max-file-size",
        ),
        (
            "audit/rules/git.rs",
            "git-sync's own --ssh-known-hosts flag",
        ),
        (
            "--dry-run=client",
            "kubectl's flag in `kubectl apply --dry-run=client`",
        ),
        ("--list", "git's flag in `git branch --list`"),
        ("--fetch-cert", "kubeseal's flag"),
        ("--secret-id", "the aws CLI's flag"),
        ("--key-id", "the aws CLI's flag"),
        ("--batch", "git's flag in `git cat-file --batch`"),
    ];

    fn rs_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                if !p.ends_with("cli") && !p.ends_with("tests") {
                    rs_files(&p, out);
                }
            } else if p.extension().is_some_and(|e| e == "rs")
                && p.file_name().is_none_or(|n| n != "tests.rs")
            {
                out.push(p);
            }
        }
    }

    #[test]
    fn library_code_outside_the_cli_spells_no_flag_or_command() {
        let mut flags = std::collections::BTreeSet::new();
        fn walk(c: &clap::Command, out: &mut std::collections::BTreeSet<String>) {
            for a in c.get_arguments() {
                if let Some(l) = a.get_long() {
                    out.insert(format!("--{l}"));
                }
            }
            c.get_subcommands().for_each(|s| walk(s, out));
        }
        walk(&crate::cli::Cli::command(), &mut flags);
        let subcommands: Vec<String> = crate::cli::Cli::command()
            .get_subcommands()
            .map(|c| format!("sealkey {}", c.get_name()))
            .collect();
        let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        rs_files(&src, &mut files);
        let mut found = Vec::new();
        for f in files {
            let rel = f
                .strip_prefix(&src)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            if ALLOWED.iter().any(|(a, _)| *a == rel) {
                continue;
            }
            let text = std::fs::read_to_string(&f).unwrap();
            // Production code only: a file's unit tests start at its `#[cfg(test)]`.
            let text = text.split("#[cfg(test)]").next().unwrap_or_default();
            for (n, line) in text.lines().enumerate() {
                let code = line.trim_start();
                if code.starts_with("//") {
                    continue; // documentation may name the flag a setting comes from
                }
                if let Some(cmd) = subcommands.iter().find(|c| line.contains(&format!("`{c}"))) {
                    found.push(format!("src/{rel}:{}: {cmd}: {}", n + 1, line.trim()));
                }
                for (i, _) in line.match_indices("--") {
                    let word: String = line[i..]
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '=')
                        .collect();
                    let flag = word.split('=').next().unwrap_or_default();
                    let allowed = ALLOWED.iter().any(|(a, _)| *a == word || *a == flag);
                    if flags.contains(flag) && !allowed {
                        found.push(format!("src/{rel}:{}: {}", n + 1, line.trim()));
                    }
                }
            }
        }
        assert!(
            found.is_empty(),
            "library code spells CLI flags or commands (name a Setting or Command in a message!):\n{}",
            found.join("\n")
        );
    }
}
