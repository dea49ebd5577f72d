//! Shipping the CLI: completion scripts for every shell (checked by bash, zsh and fish themselves),
//! the man pages (rendered by groff) and the `kubectl sealkey` plugin run through the real kubectl.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use support::required_tool;

const SUBCOMMANDS: &[&str] = &[
    "create",
    "keygen",
    "seal",
    "unseal",
    "inspect",
    "register",
    "keys",
    "known-hosts",
    "rotate",
    "audit",
    "to-dag-bundle",
    "completions",
    "man",
];

fn sealkey(args: &[&str]) -> Output {
    support::output_of(
        Command::new(support::sealkey_bin())
            .args(args)
            .stdin(Stdio::null()),
        None,
    )
}

fn stdout_of(args: &[&str]) -> String {
    let out = sealkey(args);
    assert!(
        out.status.success(),
        "sealkey {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

fn run_with_stdin(cmd: &mut Command, input: &str) -> Output {
    use std::io::Write;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn the_subcommand_list_these_tests_check_is_clap_s() {
    use clap::CommandFactory;
    let clap_names: Vec<String> = sealkey::cli::Cli::command()
        .get_subcommands()
        .map(|c| c.get_name().to_string())
        .filter(|n| n != "help")
        .collect();
    assert_eq!(
        clap_names, SUBCOMMANDS,
        "a command was added or renamed: update SUBCOMMANDS so completions and man pages are checked for it"
    );
}

/// The text of `script` from `start` up to the next `end` (both markers must be there).
fn section<'a>(shell: &str, script: &'a str, start: &str, end: &str) -> &'a str {
    let from = script
        .find(start)
        .unwrap_or_else(|| panic!("{shell}: no section starting with {start:?}"));
    let len = script[from + start.len()..]
        .find(end)
        .unwrap_or_else(|| panic!("{shell}: section {start:?} has no end {end:?}"));
    &script[from..from + start.len() + len]
}

/// Where each shell's script offers a word as a subcommand candidate, and the markers around the
/// root command's, `create`'s and `keys`' sections. A bare `contains(sub)` could not fail for
/// `seal` (every script says `sealkey`) or `man` (`command`): these patterns name the candidate.
struct ShellShape {
    /// The candidate line for subcommand `{}` of the root command.
    offers: fn(&str) -> String,
    /// `create`'s flag `--seal-to` as that shell offers it.
    seal_to: &'static str,
    /// `keys`' nested subcommand `prune` as that shell offers it.
    prune: &'static str,
    /// (start, end) of the root command's section, of `create`'s, of `keys`'.
    root: (&'static str, &'static str),
    create: (&'static str, &'static str),
    keys: (&'static str, &'static str),
}

fn shape(shell: &str) -> ShellShape {
    match shell {
        "bash" => ShellShape {
            offers: |sub| format!("sealkey,{sub})\n"),
            seal_to: " --seal-to ",
            prune: " prune ",
            root: ("\n        sealkey)\n", "\n        sealkey__subcmd__"),
            create: ("\n        sealkey__subcmd__create)\n", "\n        sealkey__subcmd__"),
            keys: ("\n        sealkey__subcmd__keys)\n", "\n        sealkey__subcmd__"),
        },
        "zsh" => ShellShape {
            offers: |sub| format!("\n'{sub}:"),
            seal_to: "\n'*--seal-to=[",
            prune: "\n'prune:",
            root: ("_sealkey() {", "(create)"),
            create: ("(create)\n", "(keygen)\n"),
            keys: ("_sealkey__subcmd__keys_commands() {", "\n}"),
        },
        "fish" => ShellShape {
            offers: |sub| format!("-n \"__fish_sealkey_needs_command\" -f -a \"{sub}\" -d "),
            seal_to: " -l seal-to ",
            prune: " -f -a \"prune\" -d ",
            root: ("-n \"__fish_sealkey_needs_command\" ", "\n"),
            create: ("-n \"__fish_sealkey_using_subcommand create\" -l seal-to ", "\n"),
            keys: ("-n \"__fish_sealkey_using_subcommand keys; and not __fish_seen_subcommand_from list audit prune help\" -f -a \"prune\"", "\n"),
        },
        "powershell" => ShellShape {
            offers: |sub| {
                format!("[CompletionResult]::new('{sub}', '{sub}', [CompletionResultType]::ParameterValue")
            },
            seal_to: "[CompletionResult]::new('--seal-to', '--seal-to', [CompletionResultType]::ParameterName",
            prune: "[CompletionResult]::new('prune', 'prune', [CompletionResultType]::ParameterValue",
            root: ("'sealkey' {", "'sealkey;create' {"),
            create: ("'sealkey;create' {", "'sealkey;keygen' {"),
            keys: ("'sealkey;keys' {", "'sealkey;keys;list' {"),
        },
        "elvish" => ShellShape {
            offers: |sub| format!("cand {sub} '"),
            seal_to: "cand --seal-to '",
            prune: "cand prune '",
            root: ("&'sealkey'= {", "&'sealkey;create'= {"),
            create: ("&'sealkey;create'= {", "&'sealkey;keygen'= {"),
            keys: ("&'sealkey;keys'= {", "&'sealkey;keys;list'= {"),
        },
        other => panic!("no shape for {other}"),
    }
}

#[test]
fn completions_for_every_shell_offer_every_subcommand_and_create_flags_under_create() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let script = stdout_of(&["completions", shell]);
        let shape = shape(shell);
        // Fish has no root section: its root candidates are the lines with this condition.
        let root: String = if shell == "fish" {
            let lines: Vec<&str> = script
                .lines()
                .filter(|l| l.contains(shape.root.0))
                .collect();
            assert!(
                lines.len() > SUBCOMMANDS.len(),
                "fish: root lines {lines:?}"
            );
            lines.join("\n")
        } else {
            section(shell, &script, shape.root.0, shape.root.1).to_string()
        };
        for sub in SUBCOMMANDS {
            let candidate = (shape.offers)(sub);
            assert!(
                script.contains(&candidate),
                "{shell} completions do not offer `{sub}` (looked for {candidate:?})"
            );
        }
        // `--seal-to` is offered after `sealkey create`, and not at the top level.
        let create = section(shell, &script, shape.create.0, shape.create.1);
        assert!(
            create.contains(shape.seal_to),
            "{shell}: `sealkey create` does not offer --seal-to:\n{create}"
        );
        assert!(
            !root.contains(shape.seal_to),
            "{shell}: --seal-to is offered at the top level:\n{root}"
        );
        // Nested subcommands are completed under their parent: `sealkey keys pr<TAB>`.
        let keys = section(shell, &script, shape.keys.0, shape.keys.1);
        assert!(
            keys.contains(shape.prune),
            "{shell}: `sealkey keys` does not offer prune:\n{keys}"
        );
    }
}

#[test]
fn bash_completion_script_is_valid_bash_and_completes_subcommands() {
    let script = stdout_of(&["completions", "bash"]);
    let syntax = run_with_stdin(Command::new("bash").arg("-n"), &script);
    assert!(
        syntax.status.success(),
        "bash -n rejected the script: {}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    // Source it in a real bash and ask the completion function for `sealkey ro<TAB>`.
    let probe = format!(
        "{script}\nCOMP_WORDS=(sealkey ro); COMP_CWORD=1; COMP_LINE='sealkey ro'; COMP_POINT=10;\n\
         _sealkey sealkey ro sealkey; printf '%s\\n' \"${{COMPREPLY[@]}}\"\n"
    );
    let out = run_with_stdin(&mut Command::new("bash"), &probe);
    let replies = String::from_utf8_lossy(&out.stdout);
    assert!(
        replies.lines().any(|l| l == "rotate"),
        "bash completion of `sealkey ro` gave {replies:?} (stderr: {})",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn zsh_script_parses_and_registers_its_completion_function() {
    let zsh = required_tool("zsh");
    let script = stdout_of(&["completions", "zsh"]);
    let syntax = run_with_stdin(Command::new(&zsh).arg("-n"), &script);
    assert!(
        syntax.status.success(),
        "zsh -n rejected the script: {}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    // Load it after compinit, as a user's .zshrc would: `sealkey` must map to `_sealkey`.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("_sealkey");
    std::fs::write(&file, &script).unwrap();
    let probe = format!(
        "autoload -U compinit && compinit -u -d {}/zcompdump; source {}; print -r -- $_comps[sealkey]; whence -w _sealkey",
        dir.path().display(),
        file.display()
    );
    let out = Command::new(&zsh)
        .args(["-f", "-c", &probe])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout.lines().collect::<Vec<_>>(),
        ["_sealkey", "_sealkey: function"],
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn fish_script_parses_and_completes_subcommands_and_flags() {
    let fish = required_tool("fish");
    let script = stdout_of(&["completions", "fish"]);
    let syntax = run_with_stdin(Command::new(&fish).arg("--no-execute"), &script);
    assert!(
        syntax.status.success(),
        "fish rejected the script: {}",
        String::from_utf8_lossy(&syntax.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sealkey.fish");
    std::fs::write(&file, &script).unwrap();
    // `complete -C` asks fish what it would offer at the end of the given command line.
    let probe = format!(
        "source {}; complete -C 'sealkey ro'; echo ---; complete -C 'sealkey create --seal-'; echo ---; complete -C 'sealkey keys p'",
        file.display()
    );
    let out = Command::new(&fish)
        .args(["--no-config", "-c", &probe])
        .env("HOME", dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let parts: Vec<Vec<&str>> = stdout
        .split("---\n")
        .map(|p| p.lines().map(|l| l.split('\t').next().unwrap()).collect())
        .collect();
    assert_eq!(parts.len(), 3, "{stdout}");
    assert_eq!(parts[0], ["rotate"], "{stdout}");
    assert!(parts[1].contains(&"--seal-to"), "{stdout}");
    assert_eq!(parts[2], ["prune"], "{stdout}");
}

#[test]
fn unknown_shell_is_a_usage_error_listing_the_choices() {
    let out = sealkey(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("possible values"), "{err}");
    assert!(err.contains("powershell"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn man_page_has_a_th_header_and_lists_every_subcommand() {
    let page = stdout_of(&["man"]);
    let th = page
        .lines()
        .find(|l| l.starts_with(".TH "))
        .expect("a .TH line");
    assert!(th.starts_with(".TH sealkey 1"), "{th}");
    assert!(page.contains(".SH SUBCOMMANDS"), "no SUBCOMMANDS section");
    for sub in SUBCOMMANDS {
        let roff_name = sub.replace('-', "\\-");
        assert!(
            page.contains(&format!("sealkey\\-{roff_name}")),
            "man page does not list `{sub}`"
        );
    }
}

#[test]
fn man_page_renders_with_groff_without_warnings() {
    let groff = required_tool("groff");
    let page = stdout_of(&["man"]);
    // -ww: all warnings on; groff prints them on stderr.
    let out = run_with_stdin(Command::new(groff).args(["-man", "-Tutf8", "-ww"]), &page);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "groff failed: {stderr}");
    assert!(stderr.trim().is_empty(), "groff warnings: {stderr}");
    let text = String::from_utf8_lossy(&out.stdout);
    // Rendered text: bold/overstrike sequences may be interleaved, so look for plain words
    // with SGR escapes and backspace overstrikes removed.
    let plain: String = strip_terminal_formatting(&text);
    assert!(plain.contains("NAME"), "{plain}");
    assert!(plain.contains("SUBCOMMANDS"), "{plain}");
    assert!(plain.contains("sealkey-rotate(1)"), "{plain}");
    assert!(plain.contains("--no-progress"), "{plain}");
}

fn strip_terminal_formatting(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI ... final byte in @..~
                for n in chars.by_ref() {
                    if ('@'..='~').contains(&n) && n != '[' {
                        break;
                    }
                }
            }
            '\u{8}' => {
                out.pop();
            }
            '\u{2010}' | '\u{2212}' => out.push('-'),
            _ => out.push(c),
        }
    }
    out
}

#[test]
fn kubectl_sealkey_help_runs_the_plugin_through_kubectl() {
    let kubectl = required_tool("kubectl");
    let dir = tempfile::tempdir().unwrap();
    let plugin = dir.path().join("kubectl-sealkey");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_sealkey"), &plugin).unwrap();
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run = |args: &[&str]| {
        Command::new(&kubectl)
            .args(args)
            .env("PATH", &path)
            .env("KUBECONFIG", dir.path().join("no-kubeconfig"))
            .stdin(Stdio::null())
            .output()
            .expect("run kubectl")
    };

    let out = run(&["sealkey", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "kubectl sealkey --help failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        help.contains("Usage: kubectl sealkey [OPTIONS] <COMMAND>"),
        "{help}"
    );
    assert!(help.contains("rotate"), "{help}");

    let out = run(&["sealkey", "keygen", "--help"]);
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("Usage: kubectl sealkey keygen"), "{help}");

    // Errors name the plugin the way the user typed it, and the plugin's exit code passes through.
    let out = run(&["sealkey", "no-such-command"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("kubectl sealkey"), "{err}");

    // kubectl's plugin list finds it.
    let out = run(&["plugin", "list"]);
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(list.contains("kubectl-sealkey"), "{list}");
}

#[test]
fn plain_binary_name_is_unchanged() {
    let help = stdout_of(&["--help"]);
    assert!(
        help.contains("Usage: sealkey [OPTIONS] <COMMAND>"),
        "{help}"
    );
}

#[test]
fn krew_manifest_template_covers_linux_and_darwin_on_amd64_and_arm64() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/krew/sealkey.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let docs = sealkey::yaml::parse_stream(&text, "deploy/krew/sealkey.yaml").unwrap();
    assert_eq!(docs.len(), 1);
    let plugin = &docs[0];
    assert_eq!(
        plugin["apiVersion"],
        "krew.googlecontainertools.github.com/v1alpha2"
    );
    assert_eq!(plugin["kind"], "Plugin");
    assert_eq!(plugin["metadata"]["name"], "sealkey");
    let platforms = plugin["spec"]["platforms"].as_array().unwrap();
    let mut seen = Vec::new();
    for p in platforms {
        let labels = &p["selector"]["matchLabels"];
        let (os, arch) = (
            labels["os"].as_str().unwrap(),
            labels["arch"].as_str().unwrap(),
        );
        let suffix = format!("{}_{}", os.to_uppercase(), arch.to_uppercase());
        assert_eq!(p["uri"], format!("{{{{URI_{suffix}}}}}"));
        assert_eq!(p["sha256"], format!("{{{{SHA256_{suffix}}}}}"));
        // krew runs `bin`; kubectl finds it as `kubectl-sealkey`, which is what makes clap say
        // `kubectl sealkey` (tested above through the real kubectl).
        assert_eq!(p["bin"], "kubectl-sealkey");
        seen.push(format!("{os}/{arch}"));
    }
    seen.sort();
    assert_eq!(
        seen,
        ["darwin/amd64", "darwin/arm64", "linux/amd64", "linux/arm64"]
    );
    assert!(plugin["spec"]["shortDescription"]
        .as_str()
        .is_some_and(|s| !s.is_empty() && s.len() <= 80));
}

/// Runs sealkey with stderr on a pseudo-terminal (stdout piped); returns (stdout, terminal text).
fn with_stderr_tty(args: &[&str]) -> (Output, String) {
    const SCRIPT: &str = r#"
import os, pty, subprocess, sys, select, time
master, slave = pty.openpty()
proc = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stderr=slave)
os.close(slave)
chunks = []
deadline = time.time() + 60
while time.time() < deadline:
    r, _, _ = select.select([master], [], [], 0.1)
    if r:
        try:
            data = os.read(master, 65536)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    elif proc.poll() is not None:
        break
code = proc.wait(timeout=60)
sys.stderr.buffer.write(b"".join(chunks))
sys.exit(code)
"#;
    let out = Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(env!("CARGO_BIN_EXE_sealkey"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let tty = String::from_utf8_lossy(&out.stderr).replace("\r\n", "\n");
    (out, tty)
}

#[test]
fn step_progress_shows_on_a_terminal_and_honours_no_progress_and_quiet() {
    // An age recipient whose identity was discarded (examples/age-recipients.txt).
    let recipients = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/age-recipients.txt");
    let base = [
        "create",
        "--repo",
        "acme/dags",
        "--seal",
        "age",
        "--seal-to",
        recipients,
    ];

    let (out, tty) = with_stderr_tty(&base);
    assert_eq!(out.status.code(), Some(0), "{tty}");
    assert!(
        tty.contains("[1/2] generating ed25519 key in memory"),
        "{tty}"
    );
    assert!(tty.contains("[2/2] sealing with age"), "{tty}");
    assert!(
        tty.contains("SHA256:"),
        "the fingerprint to register: {tty}"
    );

    let (out, tty) = with_stderr_tty(&[&base[..], &["--no-progress"]].concat());
    assert_eq!(out.status.code(), Some(0));
    assert!(!tty.contains("[1/2]"), "--no-progress showed steps: {tty}");
    assert!(
        tty.contains("SHA256:"),
        "--no-progress hid information: {tty}"
    );

    let (out, tty) = with_stderr_tty(&[&base[..], &["-q"]].concat());
    assert_eq!(out.status.code(), Some(0));
    // -q keeps only the result: the public key and fingerprint to register.
    let lines: Vec<&str> = tty.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(
        lines.len() == 2
            && lines[0].starts_with("public key:")
            && lines[1].starts_with("fingerprint:"),
        "-q printed: {tty}"
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("BEGIN AGE ENCRYPTED FILE"));

    // Not a terminal: no steps even without --no-progress.
    let out = sealkey(&base);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("[1/2]"), "{err}");
}

#[test]
fn quiet_and_verbose_together_are_refused_with_a_usage_error() {
    let out = sealkey(&["-q", "-v", "keygen"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--quiet") && err.contains("--verbose"),
        "{err}"
    );
}

#[test]
fn missing_file_errors_say_what_to_do_next() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.yaml");
    let missing = missing.to_str().unwrap();

    let out = sealkey(&["audit", missing]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(missing) && err.contains("check the path"),
        "{err}"
    );

    // Identity file: stdout must be a pipe for unseal, which Output gives it.
    let out = sealkey(&["unseal", "--identity", missing]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read identity file") && err.contains("check the path"),
        "{err}"
    );
}

#[test]
fn man_out_dir_writes_a_page_per_command_that_groff_renders_cleanly() {
    let groff = required_tool("groff");
    let dir = tempfile::tempdir().unwrap();
    let out = sealkey(&["man", "--out-dir", dir.path().to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut expected: Vec<String> = SUBCOMMANDS
        .iter()
        .map(|s| format!("sealkey-{s}.1"))
        .chain(["sealkey.1".to_string()])
        .chain(["list", "audit", "prune"].map(|k| format!("sealkey-keys-{k}.1")))
        .collect();
    expected.sort();
    assert_eq!(names, expected, "one page per command, no temp files left");
    for name in &names {
        let path = dir.path().join(name);
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o644,
            "{name}"
        );
        let page = std::fs::read_to_string(&path).unwrap();
        let stem = name.trim_end_matches(".1");
        assert!(
            page.contains(&format!(".TH {stem} 1 ")) && page.contains("sealkey 0."),
            "{name}: title line names the page and sealkey's version"
        );
        let rendered = run_with_stdin(Command::new(&groff).args(["-man", "-Tutf8", "-ww"]), &page);
        let stderr = String::from_utf8_lossy(&rendered.stderr);
        assert!(
            rendered.status.success() && stderr.trim().is_empty(),
            "{name}: groff: {stderr}"
        );
    }
    // `sealkey man keys prune` prints the same page.
    let printed = stdout_of(&["man", "keys", "prune"]);
    assert_eq!(
        printed,
        std::fs::read_to_string(dir.path().join("sealkey-keys-prune.1")).unwrap()
    );
    assert!(
        printed.contains("\\-\\-keep"),
        "the prune page documents --keep"
    );
}

#[test]
fn man_for_an_unknown_command_or_a_missing_dir_exits_2_with_the_choices() {
    let out = sealkey(&["man", "rotat"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sealkey man rotat") && err.contains("rotate"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("man1");
    let out = sealkey(&["man", "--out-dir", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("mkdir -p"));
    assert!(!missing.exists());
}

#[test]
fn krew_package_fills_the_manifest_with_real_checksums_of_reproducible_archives() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().unwrap();
    let bins = dir.path().join("bin");
    std::fs::create_dir(&bins).unwrap();
    // Stand-ins for the four release builds (a debug binary is 250+ MB; gzip on it is slow): for
    // linux-amd64 a wrapper that runs this build under the name it is called by, for the others
    // small distinct files.
    std::fs::write(
        bins.join("sealkey-linux-amd64"),
        format!(
            "#!/bin/bash\nexec -a \"$0\" {} \"$@\"\n",
            env!("CARGO_BIN_EXE_sealkey")
        ),
    )
    .unwrap();
    for p in ["linux-arm64", "darwin-amd64", "darwin-arm64"] {
        std::fs::write(
            bins.join(format!("sealkey-{p}")),
            format!("stand-in for {p}\n"),
        )
        .unwrap();
    }
    let package = |out: &Path| {
        std::fs::create_dir(out).unwrap();
        Command::new(root.join("scripts/krew-package"))
            .args(["v0.1.0", "https://example.invalid/releases/v0.1.0/"])
            .arg(&bins)
            .arg(out)
            .output()
            .unwrap()
    };
    let out_a = dir.path().join("a");
    let run = package(&out_a);
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let text = std::fs::read_to_string(out_a.join("sealkey.yaml")).unwrap();
    assert!(!text.contains("{{"), "placeholders left:\n{text}");
    let plugin = &sealkey::yaml::parse_stream(&text, "sealkey.yaml").unwrap()[0];
    assert_eq!(plugin["spec"]["version"], "v0.1.0");
    for p in plugin["spec"]["platforms"].as_array().unwrap() {
        let uri = p["uri"].as_str().unwrap();
        let name = uri.rsplit('/').next().unwrap();
        assert_eq!(
            uri,
            format!("https://example.invalid/releases/v0.1.0/{name}")
        );
        let archive = out_a.join(name);
        let sha = String::from_utf8(
            Command::new("sha256sum")
                .arg(&archive)
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        assert_eq!(
            p["sha256"],
            sha.split_whitespace().next().unwrap(),
            "{name}"
        );
        // The archive holds exactly what `files` copies, at its top level.
        let listing = String::from_utf8(
            Command::new("tar")
                .arg("-tzf")
                .arg(&archive)
                .output()
                .unwrap()
                .stdout,
        )
        .unwrap();
        let mut listed: Vec<&str> = listing.lines().collect();
        listed.sort();
        let mut from: Vec<&str> = p["files"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["from"].as_str().unwrap())
            .collect();
        from.sort();
        assert_eq!(listed, from, "{name}");
        assert_eq!(listed, ["LICENSE", "kubectl-sealkey"]);
    }
    // The linux-amd64 archive's binary runs and introduces itself as the kubectl plugin.
    let x = dir.path().join("x");
    std::fs::create_dir(&x).unwrap();
    let st = Command::new("tar")
        .arg("-xzf")
        .arg(out_a.join("sealkey-v0.1.0-linux-amd64.tar.gz"))
        .arg("-C")
        .arg(&x)
        .status()
        .unwrap();
    assert!(st.success());
    let help = Command::new(x.join("kubectl-sealkey"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("Usage: kubectl sealkey"));
    assert!(std::fs::read_to_string(x.join("LICENSE"))
        .unwrap()
        .contains("Apache License"));
    // Reproducible: a second run makes byte-identical archives.
    let out_b = dir.path().join("b");
    assert!(package(&out_b).status.success());
    for e in std::fs::read_dir(&out_a).unwrap() {
        let name = e.unwrap().file_name();
        assert_eq!(
            std::fs::read(out_a.join(&name)).unwrap(),
            std::fs::read(out_b.join(&name)).unwrap(),
            "{name:?} differs between runs"
        );
    }
    // A missing platform binary: exit 2 naming it, nothing written.
    std::fs::remove_file(bins.join("sealkey-darwin-arm64")).unwrap();
    let out_c = dir.path().join("c");
    let run = package(&out_c);
    assert_eq!(run.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&run.stderr).contains("sealkey-darwin-arm64"));
    assert_eq!(std::fs::read_dir(&out_c).unwrap().count(), 0);
}
