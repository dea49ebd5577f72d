//! Child processes: the one way sealkey starts a program, with only the environment it needs.
//!
//! sealkey's own environment holds credentials (`GITHUB_TOKEN`, `GH_TOKEN`, the AWS variables,
//! a kubeconfig's location). A child inherits none of it: [`command`] clears the environment and
//! passes back only the variables a program needs to run at all (where programs are, the user's
//! home, locale, time zone, temporary directory) plus the names its caller lists, such as
//! [`GIT_ENV`] for git. A unit test keeps every `Command::new` in this file.

use std::ffi::OsStr;
use std::process::Command;

/// What every child gets, when sealkey has it: where programs are, the home directory (git reads
/// the user's own configuration there), locale and time zone, the temporary directory.
const BASE_ENV: &[&str] = &["PATH", "HOME", "LANG", "LANGUAGE", "TZ", "TMPDIR"];

/// What git needs beyond `BASE_ENV` to find the repository a hook runs in: a pre-commit hook
/// under `git commit -a` or `git commit FILE` runs with `GIT_INDEX_FILE` naming a temporary
/// index, and worktrees and `--git-dir` set the others. Never `GIT_CONFIG_PARAMETERS`,
/// `GIT_CONFIG_COUNT` or `GIT_SSH*`: configuration and programs come from sealkey, not from a
/// variable.
pub const GIT_ENV: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_COMMON_DIR",
    "GIT_CEILING_DIRECTORIES",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_SYSTEM",
    "GIT_CONFIG_NOSYSTEM",
];

/// The GitHub credentials sealkey reads from its environment: a program that must inherit an
/// environment (a kubeconfig's exec plugin needs its cloud's variables) still never gets these.
pub const GITHUB_CREDENTIALS: &[&str] = &["GITHUB_TOKEN", "GH_TOKEN"];

/// `program`, to be started with an empty environment plus `BASE_ENV`, the `LC_*` locale
/// variables and the variables named in `extra`, each only when sealkey's own environment has it.
pub fn command(program: impl AsRef<OsStr>, extra: &[&str]) -> Command {
    let mut cmd = Command::new(program);
    cmd.env_clear();
    for (name, value) in std::env::vars_os() {
        let Some(text) = name.to_str() else {
            continue;
        };
        if BASE_ENV.contains(&text) || text.starts_with("LC_") || extra.contains(&text) {
            cmd.env(&name, value);
        }
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_gets_the_allowlist_and_nothing_else() {
        // The test process's own environment: whatever it holds, nothing outside the lists
        // reaches the command.
        let mut cmd = command("true", GIT_ENV);
        let passed: Vec<String> = cmd
            .get_envs()
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        for name in &passed {
            assert!(
                BASE_ENV.contains(&name.as_str())
                    || GIT_ENV.contains(&name.as_str())
                    || name.starts_with("LC_"),
                "{name} passed"
            );
        }
        let out = cmd.output().expect("true runs");
        assert!(out.status.success());
    }

    /// Every child process goes through [`command`]: no `Command::new` (std's or tokio's)
    /// anywhere else in `src/`.
    #[test]
    fn every_child_process_is_started_here() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut stack = vec![root.clone()];
        let mut offenders = Vec::new();
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "rs")
                    && path != root.join("child.rs")
                {
                    let text = std::fs::read_to_string(&path).unwrap();
                    for (n, line) in text.lines().enumerate() {
                        let code = line.split("//").next().unwrap_or("");
                        if code.contains("Command::new(") {
                            offenders.push(format!("{}:{}: {line}", path.display(), n + 1));
                        }
                    }
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "start children with crate::child::command:\n{}",
            offenders.join("\n")
        );
    }
}
