//! Every `sealkey` command line in the documentation parses: the shell blocks of README.md,
//! docs/**/*.md, deploy/README.md and SECURITY.md are scanned, and each `sealkey ...` (or
//! `kubectl sealkey ...`) in them is parsed with sealkey's own clap definition, so a renamed or
//! removed flag cannot linger in the docs. Synopsis lines (`[OPTIONAL]`, `...` for elided
//! arguments) are skipped; they are not meant to be run as written.

use clap::Parser;
use std::path::{Path, PathBuf};

fn markdown_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![
        root.join("README.md"),
        root.join("SECURITY.md"),
        root.join("deploy/README.md"),
    ];
    let mut dirs = vec![root.join("docs")];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "md") {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

/// (line number, command line) for each shell line in fenced blocks, continuations joined.
fn shell_lines(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_block = false;
    let mut shell = false;
    let mut pending: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        if let Some(lang) = line.trim_start().strip_prefix("```") {
            in_block = !in_block;
            // `sh offline` blocks (run by tests/quickstart.rs) are shell too.
            let lang = lang.split_whitespace().next().unwrap_or_default();
            shell = in_block && matches!(lang, "" | "sh" | "bash" | "console" | "shell");
            continue;
        }
        if !(in_block && shell) {
            continue;
        }
        let (start, mut joined) = pending.take().unwrap_or((i + 1, String::new()));
        joined.push_str(line.trim_start_matches("$ "));
        if let Some(stripped) = joined.strip_suffix('\\') {
            pending = Some((start, format!("{} ", stripped.trim_end())));
        } else {
            out.push((start, joined));
        }
    }
    out
}

/// The sealkey invocations in one shell line: argv without the program name.
fn invocations(line: &str) -> Vec<Vec<String>> {
    let line = match line.find(" #") {
        Some(i) if !line[..i].contains('\'') => &line[..i],
        _ => line,
    };
    let line = line.trim_start_matches("# ");
    let mut found = Vec::new();
    for segment in line.split(['|', ';']).flat_map(|s| s.split("&&")) {
        let words = split_words(segment.trim());
        let start = match words.first().map(String::as_str) {
            Some("sealkey") => 1,
            Some("kubectl") if words.get(1).map(String::as_str) == Some("sealkey") => 2,
            _ => continue,
        };
        let mut argv = Vec::new();
        let mut skip_next = false;
        for w in &words[start..] {
            if skip_next {
                skip_next = false;
                continue;
            }
            if matches!(w.as_str(), ">" | ">>" | "<" | "2>" | "2>&1") {
                skip_next = w != "2>&1";
                continue;
            }
            if w.starts_with('>') || w.starts_with('<') || w.starts_with("2>") {
                continue;
            }
            argv.push(w.clone());
        }
        found.push(argv);
    }
    found
}

/// Whitespace split that keeps single- and double-quoted words together (quotes removed).
fn split_words(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in s.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, c) if c.is_whitespace() => {
                if !cur.is_empty() || any {
                    words.push(std::mem::take(&mut cur));
                }
                any = false;
            }
            (None, c) => cur.push(c),
        }
    }
    if !cur.is_empty() || any {
        words.push(cur);
    }
    words
}

#[test]
fn every_sealkey_command_in_the_docs_parses() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (line_no, line) in shell_lines(&text) {
            for argv in invocations(&line) {
                // Synopsis lines, not commands: optional parts in brackets, elided arguments.
                if argv.iter().any(|w| w.starts_with('[') || w == "...") {
                    continue;
                }
                checked += 1;
                let full = std::iter::once("sealkey".to_string()).chain(argv.iter().cloned());
                if let Err(e) = sealkey::cli::Cli::try_parse_from(full) {
                    if matches!(
                        e.kind(),
                        clap::error::ErrorKind::DisplayHelp
                            | clap::error::ErrorKind::DisplayVersion
                    ) {
                        continue;
                    }
                    let first = e.to_string().lines().next().unwrap_or_default().to_string();
                    failures.push(format!(
                        "{}:{line_no}: sealkey {}\n    {first}",
                        file.display(),
                        argv.join(" ")
                    ));
                }
            }
        }
    }
    assert!(
        checked >= 20,
        "found only {checked} documented commands: is the scanner broken?"
    );
    assert!(
        failures.is_empty(),
        "{} of {checked} documented commands do not parse:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn scanner_finds_commands_across_continuations_pipes_and_comments() {
    let md = "text sealkey create --nope\n```sh\nkubectl get x | sealkey seal --seal-to age1x \\\n  --out f > /dev/null   # note\n$ kubectl sealkey rotate --repo a/b --secret-name s --apply\n```\n```yaml\nsealkey: not a command\n```\n";
    let lines = shell_lines(md);
    assert_eq!(lines.len(), 2, "{lines:?}");
    assert_eq!(lines[0].0, 3);
    let all: Vec<Vec<String>> = lines.iter().flat_map(|(_, l)| invocations(l)).collect();
    assert_eq!(
        all,
        [
            vec!["seal", "--seal-to", "age1x", "--out", "f"],
            vec!["rotate", "--repo", "a/b", "--secret-name", "s", "--apply"],
        ]
    );
    // And a stale flag is caught by the parse the real test does.
    let stale = ["sealkey", "create", "--repo", "a/b", "--no-such-flag"];
    assert!(sealkey::cli::Cli::try_parse_from(stale).is_err());
}

// issue 21 item 14: the README linked `kubectl-sealkey` into `~/.local/bin` and ran `kubectl
// sealkey` at once, which fails where that directory is not on PATH.
#[test]
fn the_kubectl_plugin_link_says_how_to_check_and_add_local_bin_to_path() {
    let readme =
        std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
            .unwrap();
    assert!(readme.contains("~/.local/bin/kubectl-sealkey"));
    assert!(readme.contains("kubectl plugin list"), "no way to check");
    assert!(
        readme.contains("export PATH=\"$HOME/.local/bin:$PATH\""),
        "no way to add it"
    );
}
