//! Snapshots (insta, under tests/snapshots/) of what people read: `--help` of every command and
//! subcommand, enumerated from clap so a new command cannot be missed, and the error message and
//! exit code of at least one bad input per command (missing required flag, invalid value,
//! nonexistent file, ...). Fast tier: needs no installed tool, no network.
//!
//! A changed text fails the test; with `CI=true` (or `INSTA_UPDATE=no`) nothing is written. To
//! accept an intended change: `INSTA_UPDATE=always cargo test --test cli_snapshots`, then review
//! `git diff tests/snapshots/` (or `cargo insta review` if cargo-insta is installed).

mod support;

use clap::CommandFactory;
use std::process::Output;
use support::{run_cmd, sealkey, text};

/// Filters for what changes between runs: temp paths, fingerprints, dates, keys, random bytes.
fn settings(tmp: &std::path::Path) -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    let tmp = regex::escape(&tmp.display().to_string());
    s.add_filter(&tmp, "[TMP]");
    s.add_filter(r"/tmp/\.tmp[A-Za-z0-9]+", "[TMP]");
    s.add_filter(r"SHA256:[A-Za-z0-9+/]{43}", "SHA256:[FINGERPRINT]");
    s.add_filter(
        r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:\d{2})?)?",
        "[DATE]",
    );
    s.add_filter(r"AGE-SECRET-KEY-1[0-9A-Z]+", "[AGE-SECRET-KEY]");
    s.add_filter(r"age1[0-9a-z]{58}", "[AGE-RECIPIENT]");
    s.add_filter(r"[A-Za-z0-9+/]{40,}={0,2}", "[BASE64]");
    s.add_filter(r"127\.0\.0\.1:\d+", "127.0.0.1:[PORT]");
    s.add_filter(r"sealkey \d+\.\d+\.\d+\S*", "sealkey [VERSION]");
    s
}

/// Runs sealkey (clean environment: no token, no kubeconfig, stdin /dev/null unless given) in
/// `dir`, with a fixed terminal width so help wraps the same everywhere.
fn sealkey_in(dir: &std::path::Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut cmd = sealkey();
    cmd.args(args)
        .current_dir(dir)
        .env("COLUMNS", "100")
        .env_remove("SEALKEY_DEADLINE")
        .env("NO_COLOR", "1");
    run_cmd(cmd, stdin)
}

/// Every command path clap knows, root first: `[]`, `["create"]`, `["keys", "list"]`, ...
/// (clap's generated `help` subcommand left out).
fn command_paths() -> Vec<Vec<String>> {
    fn walk(cmd: &clap::Command, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
        out.push(prefix.clone());
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let mut path = prefix.clone();
            path.push(sub.get_name().to_string());
            walk(sub, path, out);
        }
    }
    let mut out = Vec::new();
    walk(&sealkey::cli::Cli::command(), Vec::new(), &mut out);
    out
}

#[test]
fn clap_enumerates_every_command_and_subcommand() {
    let paths: Vec<String> = command_paths().iter().map(|p| p.join(" ")).collect();
    // A guard on the enumeration itself: if it found nothing, the snapshot test below would
    // snapshot nothing and pass.
    for expected in [
        "",
        "create",
        "keys",
        "keys list",
        "keys audit",
        "keys prune",
        "man",
    ] {
        assert!(
            paths.iter().any(|p| p == expected),
            "`{expected}` not enumerated: {paths:?}"
        );
    }
    assert!(paths.len() >= 15, "{paths:?}");
}

#[test]
fn help_of_every_command_matches_its_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path());
    for path in command_paths() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let out = sealkey_in(dir.path(), &args, None);
        assert_eq!(
            out.status.code(),
            Some(0),
            "sealkey {args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            out.stderr.is_empty(),
            "sealkey {args:?}: {}",
            text(&out.stderr)
        );
        let name = if path.is_empty() {
            "help".to_string()
        } else {
            format!("help__{}", path.join("__"))
        };
        settings.bind(|| {
            insta::assert_snapshot!(
                name,
                format!("$ sealkey {}\n{}", args.join(" "), text(&out.stdout))
            );
        });
    }
}

/// One bad input: snapshot name, arguments, stdin.
struct Bad {
    name: &'static str,
    args: &'static [&'static str],
    stdin: Option<&'static str>,
}

const fn bad(name: &'static str, args: &'static [&'static str]) -> Bad {
    Bad {
        name,
        args,
        stdin: None,
    }
}

/// At least one bad input for every command (the root, each subcommand, each `keys` subcommand).
const BAD_INPUTS: &[Bad] = &[
    bad("root__no_command", &[]),
    bad("root__unknown_command", &["frobnicate"]),
    bad("create__missing_repo", &["create"]),
    bad(
        "create__repo_not_owner_slash_repo",
        &["create", "--repo", "acme"],
    ),
    bad(
        "create__invalid_key_type",
        &["create", "--repo", "acme/dags", "--key-type", "dsa"],
    ),
    bad(
        "create__recipients_file_missing",
        &[
            "create",
            "--repo",
            "acme/dags",
            "--seal-to",
            "no-such-recipients.txt",
        ],
    ),
    bad("keygen__unknown_flag", &["keygen", "--type", "ed25519"]),
    bad(
        "keygen__seal_without_recipients",
        &["keygen", "--seal", "age"],
    ),
    bad("seal__invalid_recipient", &["seal", "--seal-to", "age1bad"]),
    Bad {
        name: "unseal__nonexistent_identity_file",
        args: &["unseal", "--identity", "no-such-identity.txt"],
        stdin: Some("hello\n"),
    },
    // `{TMP}` is the test's temp dir: the message names the absolute path, filtered to [TMP].
    bad(
        "inspect__nonexistent_file",
        &["inspect", "{TMP}/no-such-file.yaml"],
    ),
    bad("register__missing_repo", &["register"]),
    bad(
        "register__no_public_key",
        &["register", "--repo", "acme/dags"],
    ),
    bad("keys__missing_subcommand", &["keys"]),
    bad("keys_list__no_repo", &["keys", "list"]),
    bad(
        "keys_list__no_token",
        &["keys", "list", "--repo", "acme/dags"],
    ),
    bad(
        "keys_audit__repo_not_owner_slash_repo",
        &["keys", "audit", "--repo", "acme"],
    ),
    bad(
        "keys_prune__missing_keep",
        &["keys", "prune", "--repo", "acme/dags"],
    ),
    bad(
        "known_hosts__plain_http_to_a_remote_host",
        &["known-hosts", "--api-url", "http://example.com"],
    ),
    bad("rotate__missing_required", &["rotate"]),
    bad(
        "rotate__no_mode",
        &["rotate", "--repo", "acme/dags", "--secret-name", "s"],
    ),
    bad("audit__nonexistent_path", &["audit", "no-such-dir"]),
    bad(
        "audit__invalid_fail_on",
        &["audit", "--fail-on", "bogus", "."],
    ),
    bad(
        "to_dag_bundle__nonexistent_file",
        &["to-dag-bundle", "{TMP}/no-such-file.yaml"],
    ),
    bad("completions__unknown_shell", &["completions", "tcsh"]),
    bad("man__unknown_command", &["man", "nosuch"]),
    bad("app__missing_subcommand", &["app"]),
    bad(
        "app_create__missing_key_file",
        &[
            "app",
            "create",
            "--repo",
            "acme/dags",
            "--app-id",
            "1",
            "--app-key",
            "{TMP}/no-such-app.pem",
            "--for",
            "flux",
            "--seal",
            "none",
        ],
    ),
    bad(
        "app_rotate__old_fingerprint_not_sha256",
        &[
            "app",
            "rotate",
            "--repo",
            "acme/dags",
            "--app-id",
            "1",
            "--app-key",
            "app.pem",
            "--for",
            "flux",
            "--old-fingerprint",
            "MD5:aa:bb",
        ],
    ),
    bad(
        "app_finish_rotation__missing_old_key",
        &["app", "finish-rotation", "--app-id", "1"],
    ),
    bad(
        "app_retire_deploy_keys__repo_not_owner_slash_repo",
        &[
            "app",
            "retire-deploy-keys",
            "--repo",
            "acme",
            "--app-id",
            "1",
            "--app-key",
            "app.pem",
        ],
    ),
];

#[test]
fn every_command_has_a_bad_input_case() {
    for path in command_paths() {
        let prefix = if path.is_empty() {
            "root".to_string()
        } else {
            path.join("_").replace('-', "_")
        };
        assert!(
            BAD_INPUTS.iter().any(|b| b
                .name
                .strip_prefix(&prefix)
                .is_some_and(|r| r.starts_with("__"))),
            "no bad-input snapshot for `sealkey {}`",
            path.join(" ")
        );
    }
}

#[test]
fn error_messages_and_exit_codes_of_bad_inputs_match_their_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let settings = settings(dir.path());
    for case in BAD_INPUTS {
        let tmp = dir.path().display().to_string();
        let args: Vec<String> = case.args.iter().map(|a| a.replace("{TMP}", &tmp)).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = sealkey_in(dir.path(), &args, case.stdin);
        let code = out.status.code().expect("exited, not killed by a signal");
        assert_ne!(code, 0, "{}: sealkey {:?} succeeded", case.name, case.args);
        assert!(
            !out.stderr.is_empty(),
            "{}: sealkey {:?} failed without a message",
            case.name,
            case.args
        );
        let shown = format!(
            "$ sealkey {}\nexit code: {code}\n--- stdout\n{}--- stderr\n{}",
            args.join(" "),
            text(&out.stdout),
            text(&out.stderr)
        );
        settings.bind(|| {
            insta::assert_snapshot!(format!("error__{}", case.name), shown);
        });
    }
}
