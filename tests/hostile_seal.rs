//! Hostile input to the sealing side (issue 11, classes 1-4, 9 and 12): settings and inputs that
//! would leave a key in clear in a sealed file, Unicode line breaks that inject YAML, an `--update`
//! file whose data key someone knows, unauthenticated documents in a SOPS file, an age header built
//! to be slow, and `--out` over something that is not a regular file. Every sealed output here is
//! opened by implementations we did not write (the `age` CLI, the npm SOPS decoders, PyYAML).

mod support;

use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};
use support::{age_keypair, run, run_in, ssh_keypair, tool, COMBOS};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn code(out: &Output) -> Option<i32> {
    out.status.code()
}

/// base64 of "-----BEGIN", at the alignment a base64'd PEM has.
const B64_BEGIN: &str = "LS0tLS1CRUdJTi";

/// What an independent YAML 1.1 parser (PyYAML, as kubectl's and Flux's yaml libraries read
/// Unicode line breaks) makes of a stream.
fn pyyaml(text: &[u8]) -> Vec<Value> {
    let out = tool(
        "python3",
        &[
            "-c",
            "import sys, json, yaml\nprint(json.dumps([d for d in yaml.safe_load_all(sys.stdin.buffer.read().decode()) if d is not None]))",
        ],
        text,
    );
    serde_json::from_slice(&out).unwrap()
}

fn npm_decode(file: &Path, identity: &Path) -> Result<Vec<Value>, String> {
    support::npm_sops_decode(file, identity)
}

fn yaml(docs: &[Value]) -> String {
    sealkey::yaml::to_yaml_stream(docs).to_string()
}

/// A fresh ed25519 private key in OpenSSH PEM, made by ssh-keygen.
fn pem(dir: &Path) -> String {
    let (path, _) = ssh_keypair(dir, "ed25519", "victim.TEST-ONLY");
    std::fs::read_to_string(path).unwrap()
}

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

// ---- class 1: no plaintext key in any sealed file ----

#[test]
fn sops_with_a_regex_that_selects_nothing_refuses_every_shape_and_writes_nothing() {
    // Was: exit 0 and `gitSshKey: LS0t...` in clear in f.yaml.
    let dir = tempfile::tempdir().unwrap();
    let (_, recipient) = age_keypair(dir.path());
    for (consumer, emit) in COMBOS {
        let out = run_in(
            dir.path(),
            &[
                "create",
                "--repo",
                "acme/dags",
                "-n",
                "dev",
                "--for",
                consumer,
                "--emit",
                emit,
                "--seal",
                "sops",
                "--seal-to",
                &recipient,
                "--encrypted-regex",
                "^nomatch$",
                "--out",
                "f",
            ],
            b"",
        );
        let err = stderr(&out);
        assert_eq!(code(&out), Some(2), "{consumer}/{emit}: {err}");
        assert!(
            !dir.path().join("f").exists(),
            "{consumer}/{emit}: a file was written"
        );
        assert!(
            err.contains("would hold private-key material in clear")
                || err.contains("would hold a Secret value of the input in clear"),
            "{consumer}/{emit}: {err}"
        );
        assert!(
            err.contains("document "),
            "{consumer}/{emit}: names no document: {err}"
        );
        assert!(
            !err.contains(B64_BEGIN) && !err.contains("PRIVATE KEY"),
            "{err}"
        );
        // Nothing but the public key ever reaches a temp file either.
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "only the identity"
        );
    }
}

#[test]
fn sops_refusal_names_the_document_and_path_of_the_clear_key() {
    let dir = tempfile::tempdir().unwrap();
    let (_, recipient) = age_keypair(dir.path());
    let out = run(
        &[
            "create",
            "--repo",
            "acme/dags",
            "-n",
            "dev",
            "--seal",
            "sops",
            "--seal-to",
            &recipient,
            "--encrypted-regex",
            "^nomatch$",
        ],
        b"",
    );
    let err = stderr(&out);
    assert_eq!(code(&out), Some(2), "{err}");
    assert!(
        err.contains("document 1 (Secret dev/airflow-ssh-secret) at data.gitSshKey"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "nothing on stdout either");
}

#[test]
fn sops_seal_drops_kubectls_last_applied_copy_of_the_values() {
    // Was: the annotation, holding the data in clear, was copied into the sealed file.
    let dir = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_keypair(dir.path());
    let key = pem(dir.path());
    let data = json!({"ssh": b64(&key)});
    let last_applied = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "git", "namespace": "dev"}, "data": data})
    .to_string();
    let input = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "git", "namespace": "dev", "uid": "1234-5678",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": last_applied, "team": "data"}},
        "data": data});
    let out = run(
        &["seal", "--seal", "sops", "--seal-to", &recipient],
        yaml(&[input]).as_bytes(),
    );
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let sealed = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(!sealed.contains("last-applied"), "{sealed}");
    assert!(!sealed.contains(B64_BEGIN), "{sealed}");
    let file = dir.path().join("s.yaml");
    std::fs::write(&file, &sealed).unwrap();
    let opened = npm_decode(&file, &identity).unwrap();
    assert_eq!(opened.len(), 1);
    assert_eq!(opened[0]["data"], data);
    assert_eq!(
        opened[0]["metadata"]["annotations"],
        json!({"team": "data"})
    );
    assert!(opened[0]["metadata"].get("uid").is_none());
}

#[test]
fn a_key_outside_the_selection_in_a_helmrelease_is_refused_for_every_seal() {
    // Was (sops): exit 0 and no `sops` block at all, the key in clear under spec.values.
    let dir = tempfile::tempdir().unwrap();
    let (_, recipient) = age_keypair(dir.path());
    let key = pem(dir.path());
    let cert = support::controller_cert(dir.path());
    for (label, value) in [
        ("pem", Value::String(key.clone())),
        ("base64 pem", Value::String(b64(&key))),
        (
            "base64 of yaml of base64",
            Value::String(b64(&format!("gitSshKey: '{}'\n", b64(&key)))),
        ),
    ] {
        let hr = json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": "airflow", "namespace": "dev"},
            "spec": {"values": {"executor": "CeleryExecutor", "git": {"sshKey": value}}}});
        for seal in [
            vec!["--seal", "sops", "--seal-to", recipient.as_str()],
            vec!["--seal", "sealed-secrets", "--cert", cert.to_str().unwrap()],
        ] {
            let mut args = vec!["seal"];
            args.extend(seal.iter().copied());
            let out = run(&args, yaml(std::slice::from_ref(&hr)).as_bytes());
            let err = stderr(&out);
            assert_eq!(code(&out), Some(2), "{label} {seal:?}: {err}");
            assert!(out.stdout.is_empty(), "{label} {seal:?}");
            if seal[1] == "sealed-secrets" {
                // `seal --seal sealed-secrets` takes Secrets only (create's HelmRelease is
                // checked by the create matrix below).
                continue;
            }
            assert!(
                err.contains("document 1 (HelmRelease dev/airflow) at spec.values.git.sshKey"),
                "{label} {seal:?}: {err}"
            );
        }
    }
}

#[test]
fn a_secret_value_copied_into_another_object_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (_, recipient) = age_keypair(dir.path());
    let docs = [
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
            "stringData": {"password": "correct-horse-battery"}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
            "data": {"dsn": "postgres://app:correct-horse-battery@db/app"}}),
    ];
    let out = run(
        &[
            "seal",
            "--seal",
            "sops",
            "--seal-to",
            &recipient,
            "--encrypted-regex",
            "^stringData$",
        ],
        yaml(&docs).as_bytes(),
    );
    let err = stderr(&out);
    assert_eq!(code(&out), Some(2), "{err}");
    assert!(
        err.contains("document 2 (ConfigMap cfg) at data.dsn"),
        "{err}"
    );
    assert!(err.contains("a Secret value of the input"), "{err}");
    assert!(!err.contains("correct-horse"), "{err}");
}

// ---- class 2: YAML injection through Unicode line breaks ----

const INJECTED: &str = "---\u{2028}apiVersion: rbac.authorization.k8s.io/v1\u{2028}kind: ClusterRoleBinding\u{2028}metadata: {name: pwned}\u{2028}roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\u{2028}subjects: [{kind: Group, name: system:authenticated, apiGroup: rbac.authorization.k8s.io}]";

#[test]
fn known_hosts_with_a_unicode_line_break_or_control_is_refused() {
    // Was: exit 0, and PyYAML read a ClusterRoleBinding out of the (even SOPS-sealed) output.
    let dir = tempfile::tempdir().unwrap();
    let (_, recipient) = age_keypair(dir.path());
    let good = sealkey::known_hosts::GITHUB_COM_PINNED[0];
    for (name, bad) in [
        ("u2028", format!("{good} c\u{2028}{INJECTED}\n")),
        ("u2029", format!("{good} c\u{2029}x\n")),
        ("nel", format!("{good} c\u{85}x\n")),
        ("esc", format!("{good} \u{1b}]0;pwned\u{7}\n")),
        ("cr", format!("{good} c\rx\n")),
        (
            "in a comment line",
            format!("# c\u{2028}{INJECTED}\n{good}\n"),
        ),
    ] {
        let kh = dir.path().join("known_hosts");
        std::fs::write(&kh, &bad).unwrap();
        let out = run(
            &[
                "create",
                "--repo",
                "acme/dags",
                "-n",
                "dev",
                "--emit",
                "helmrelease",
                "--seal",
                "sops",
                "--seal-to",
                &recipient,
                "--known-hosts",
                kh.to_str().unwrap(),
            ],
            b"",
        );
        let err = stderr(&out);
        assert_eq!(code(&out), Some(2), "{name}: {err}");
        assert!(
            err.contains("known_hosts line") && err.contains("U+"),
            "{name}: {err}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn seal_and_unseal_write_unicode_line_breaks_escaped_so_yaml_1_1_parsers_see_one_object() {
    // Was: an escaped "\u2028" in the input came out raw in both the sealed file's clear
    // metadata and unseal's output, and PyYAML read two objects (the second a ClusterRoleBinding).
    let dir = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_keypair(dir.path());
    let input = json!({"apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "s", "annotations": {"note": format!("c\u{2028}{INJECTED}"),
            "nel": "a\u{85}b", "ctl": "\u{1b}[2J\u{7f}\u{9b}"}},
        "stringData": {"k": "value-value"}});
    // The input as a user would have it: double-quoted with escapes (valid for every parser).
    let input_text = format!(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  annotations:\n    note: {}\n    nel: \"a\\u0085b\"\n    ctl: \"\\e[2J\\x7f\\x9b\"\nstringData:\n  k: value-value\n",
        // JSON leaves U+2028 raw; the user's file has it escaped.
        serde_json::to_string(input["metadata"]["annotations"]["note"].as_str().unwrap())
            .unwrap()
            .replace('\u{2028}', "\\u2028")
    );
    assert_eq!(pyyaml(input_text.as_bytes()), vec![input.clone()]);
    let out = run(
        &["seal", "--seal", "sops", "--seal-to", &recipient],
        input_text.as_bytes(),
    );
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    let sealed = String::from_utf8(out.stdout.clone()).unwrap();
    for c in [
        '\u{2028}', '\u{2029}', '\u{85}', '\u{1b}', '\u{7f}', '\u{9b}',
    ] {
        assert!(
            !sealed.contains(c),
            "raw U+{:04X} in sealed output",
            c as u32
        );
    }
    let docs = pyyaml(sealed.as_bytes());
    assert_eq!(docs.len(), 1, "PyYAML sees {} objects", docs.len());
    assert_eq!(docs[0]["metadata"], input["metadata"]);
    let file = dir.path().join("s.yaml");
    std::fs::write(&file, &sealed).unwrap();
    assert_eq!(npm_decode(&file, &identity).unwrap(), vec![input.clone()]);

    let out = run(
        &[
            "unseal",
            "--identity",
            identity.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
        b"",
    );
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains('\u{2028}'));
    assert_eq!(pyyaml(&out.stdout), vec![input]);
}

// ---- class 3: --update never seals a new value under a data key from the old file ----

/// The data key of every document: the `sops.age` entries opened by the `age` CLI.
fn data_keys(sealed: &str, identity: &Path) -> Vec<Vec<u8>> {
    support::yaml_docs(sealed.as_bytes())
        .iter()
        .map(|d| {
            tool(
                "age",
                &["-d", "-i", identity.to_str().unwrap()],
                d["sops"]["age"][0]["enc"].as_str().unwrap().as_bytes(),
            )
        })
        .collect()
}

#[test]
fn update_with_a_changed_value_seals_it_under_a_fresh_data_key() {
    // Was: the data key of the FILE being updated was kept, so whoever prepared that file (and
    // knows its data key) could read the new value.
    let dir = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_keypair(dir.path());
    let doc = |v: &str| {
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "namespace": "dev"},
            "stringData": {"k": v, "other": "unchanged-value"}})
    };
    let first = run(
        &["seal", "--seal", "sops", "--seal-to", &recipient],
        yaml(&[doc("one-value")]).as_bytes(),
    );
    let first = String::from_utf8(support::ok(&first)).unwrap();
    let file = dir.path().join("s.yaml");
    std::fs::write(&file, &first).unwrap();
    let update = |v: &str| {
        let out = run(
            &[
                "seal",
                "--seal",
                "sops",
                "--seal-to",
                &recipient,
                "--update",
                file.to_str().unwrap(),
                "--identity",
                identity.to_str().unwrap(),
            ],
            yaml(&[doc(v)]).as_bytes(),
        );
        String::from_utf8(support::ok(&out)).unwrap()
    };
    // Same plaintext: byte for byte the same file, same data key.
    assert_eq!(update("one-value"), first);
    // A changed value: a fresh data key, and it opens to the new value.
    let second = update("two-value");
    assert_ne!(data_keys(&second, &identity), data_keys(&first, &identity));
    let f2 = dir.path().join("s2.yaml");
    std::fs::write(&f2, &second).unwrap();
    assert_eq!(npm_decode(&f2, &identity).unwrap(), vec![doc("two-value")]);
}

// ---- class 4: unseal prints only what a MAC authenticated ----

#[test]
fn unseal_never_prints_documents_no_mac_covers() {
    // Was: an appended document, or one whose `sops` key was renamed, printed with exit 0.
    let dir = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_keypair(dir.path());
    let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
        "stringData": {"k": "value-value"}});
    let sealed = String::from_utf8(support::ok(&run(
        &["seal", "--seal", "sops", "--seal-to", &recipient],
        yaml(&[secret]).as_bytes(),
    )))
    .unwrap();
    let crb = "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRoleBinding\nmetadata:\n  name: pwned\n";
    // Issue 21 item 6: objects with nothing secret are written without a `sops` block (so people
    // and bots can edit them); unseal opens such a file but never prints what no MAC covers: an
    // added object is left out and named on stderr.
    for (name, text) in [
        ("appended", format!("{sealed}---\n{crb}")),
        ("prepended", format!("{crb}---\n{sealed}")),
    ] {
        let f = dir.path().join("t.yaml");
        std::fs::write(&f, &text).unwrap();
        let out = run(
            &[
                "unseal",
                "--identity",
                identity.to_str().unwrap(),
                f.to_str().unwrap(),
            ],
            b"",
        );
        let err = stderr(&out);
        assert_eq!(code(&out), Some(0), "{name}: {err}");
        let printed = String::from_utf8_lossy(&out.stdout);
        assert!(!printed.contains("pwned"), "{name}: printed {printed}");
        assert!(printed.contains("kind: Secret"), "{name}: {printed}");
        assert!(
            err.contains("ClusterRoleBinding pwned") && err.contains("not authenticated"),
            "{name}: {err}"
        );
    }
    let clear_secret =
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: added\nstringData:\n  k: v\n";
    let clear_data = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: added\ndata:\n  k: v\n";
    for (name, text) in [
        ("sops renamed", sealed.replace("\nsops:", "\nsops_:")),
        ("secret appended", format!("{sealed}---\n{clear_secret}")),
        (
            "selected values appended",
            format!("{clear_data}---\n{sealed}"),
        ),
    ] {
        let f = dir.path().join("t.yaml");
        std::fs::write(&f, &text).unwrap();
        let out = run(
            &[
                "unseal",
                "--identity",
                identity.to_str().unwrap(),
                f.to_str().unwrap(),
            ],
            b"",
        );
        let err = stderr(&out);
        assert_eq!(code(&out), Some(2), "{name}: {err}");
        assert!(
            out.stdout.is_empty(),
            "{name}: printed {}",
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            err.contains("no MAC authenticates it")
                || err.contains("neither an age file nor SOPS YAML"),
            "{name}: {err}"
        );
    }
}

#[test]
fn a_mount_patch_with_nothing_to_encrypt_is_written_without_a_sops_block_and_flux_reads_both() {
    // Issue 21 item 6: a `sops` block on an object with nothing secret made it uneditable
    // (any edit broke its MAC and Flux stalled); now only the Secret carries one.
    let dir = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_keypair(dir.path());
    let out = run_in(
        dir.path(),
        &[
            "create",
            "--repo",
            "acme/dags",
            "-n",
            "dev",
            "--for",
            "git-sync",
            "--emit",
            "mount",
            "--workload",
            "dags",
            "--seal",
            "sops",
            "--seal-to",
            &recipient,
            "--out",
            "f/",
        ],
        b"",
    );
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    // Two objects: a directory, one file each (the patch kept out of the kustomization's resources).
    let file = dir.path().join("f");
    let mut text = String::new();
    for f in support::layout_files(&file) {
        text.push_str("---\n");
        text.push_str(&std::fs::read_to_string(f).unwrap());
    }
    let raw = support::yaml_docs(text.as_bytes());
    assert_eq!(raw.len(), 2);
    for d in &raw {
        assert_eq!(
            d["kind"] == "Secret",
            d["sops"]["mac"].is_string(),
            "{text}"
        );
    }
    assert_eq!(npm_decode(&file, &identity).unwrap().len(), 2);
}

// ---- class 9: age headers cost linear time and are bounded ----

/// An age file for `recipient` with `extra` junk X25519 stanzas in front of the real one. The
/// header MAC no longer matches: only for the refusal, which comes before any MAC check.
fn age_with_stanzas(recipient: &str, extra: usize) -> Vec<u8> {
    let real = tool("age", &["-r", recipient], b"payload");
    let first_nl = real.iter().position(|&b| b == b'\n').unwrap() + 1;
    let mut out = real[..first_nl].to_vec();
    let stanza = b"-> X25519 TEiF0ypqr+bpvcqXNyCVJpL7OuwPdVwPL7KQEbFDOCc\nEmECAEcKN+n/Vs9SbWiV+Hu0r+E8R77DdWYyd83nw7U\n";
    for _ in 0..extra {
        out.extend_from_slice(stanza);
    }
    out.extend_from_slice(&real[first_nl..]);
    out
}

fn timed_unseal(dir: &Path, identity: &Path, bytes: &[u8]) -> (Output, Duration) {
    let f = dir.join("big.age");
    std::fs::write(&f, bytes).unwrap();
    let start = Instant::now();
    let mut child = Command::new(support::sealkey_bin())
        .args([
            "unseal",
            "--identity",
            identity.to_str().unwrap(),
            f.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: a quadratic header parse (64 s for 20,000 stanzas) is killed and fails the test.
    let deadline = start + Duration::from_secs(60);
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (out, start.elapsed())
}

#[test]
fn an_age_header_with_20000_stanzas_is_refused_before_any_is_tried() {
    // Was: 64 s of header parsing (quadratic), then every stanza tried.
    let dir = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_keypair(dir.path());
    let (out, took) = timed_unseal(dir.path(), &identity, &age_with_stanzas(&recipient, 20_000));
    let err = stderr(&out);
    assert_eq!(code(&out), Some(2), "after {took:?}: {err}");
    assert!(err.contains("more than 1024 recipient stanzas"), "{err}");
}

#[test]
fn an_age_header_at_the_bound_still_opens() {
    // A valid file the age CLI wrote for 1,024 recipients (ours last): every stanza before ours
    // is tried and fails, ours opens it.
    let dir = tempfile::tempdir().unwrap();
    let (identity, recipient) = age_keypair(dir.path());
    let mut recipients: String = (0..1023)
        .map(|_| format!("{}\n", age::x25519::Identity::generate().to_public()))
        .collect();
    recipients.push_str(&format!("{recipient}\n"));
    let rfile = dir.path().join("recipients.txt");
    std::fs::write(&rfile, recipients).unwrap();
    let bytes = tool("age", &["-R", rfile.to_str().unwrap()], b"payload");
    let (out, _) = timed_unseal(dir.path(), &identity, &bytes);
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
    assert_eq!(out.stdout, b"payload");
}

// ---- class 12: --out never replaces something that is not a regular file ----

#[test]
fn out_over_a_fifo_a_device_a_directory_or_a_symlink_is_refused_and_left_alone() {
    // Was: the atomic rename replaced a device node (or FIFO) with the sealed file.
    use std::os::unix::fs::FileTypeExt;
    let dir = tempfile::tempdir().unwrap();
    let (_, recipient) = age_keypair(dir.path());
    let d = dir.path();
    assert!(Command::new("mkfifo")
        .arg(d.join("fifo"))
        .status()
        .unwrap()
        .success());
    std::fs::create_dir(d.join("dir")).unwrap();
    std::fs::write(d.join("target.yaml"), "keep").unwrap();
    std::os::unix::fs::symlink(d.join("target.yaml"), d.join("link")).unwrap();
    let mut targets = vec!["fifo", "dir", "link"];
    // A character device like /dev/null, made in the temp dir (root only).
    if Command::new("mknod")
        .arg(d.join("null"))
        .args(["c", "1", "3"])
        .status()
        .is_ok_and(|s| s.success())
    {
        targets.push("null");
    }
    for t in &targets {
        let out = run_in(
            d,
            &[
                "create",
                "--repo",
                "acme/dags",
                "--seal-to",
                &recipient,
                "--seal",
                "age",
                "--out",
                t,
            ],
            b"",
        );
        let err = stderr(&out);
        assert_eq!(code(&out), Some(2), "{t}: {err}");
        assert!(err.contains("not a regular file"), "{t}: {err}");
    }
    assert!(std::fs::symlink_metadata(d.join("fifo"))
        .unwrap()
        .file_type()
        .is_fifo());
    assert!(std::fs::symlink_metadata(d.join("link"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(
        std::fs::read_to_string(d.join("target.yaml")).unwrap(),
        "keep"
    );
    if targets.contains(&"null") {
        assert!(std::fs::symlink_metadata(d.join("null"))
            .unwrap()
            .file_type()
            .is_char_device());
    }
    // No temp file left behind.
    assert!(std::fs::read_dir(d).unwrap().all(|e| !e
        .unwrap()
        .file_name()
        .to_string_lossy()
        .contains(".sealkey-")));
}

// ---- issue 20 item 7: one file named as two of a command's paths ----

const PLAIN_HELM_RELEASE: &str = "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: airflow\n  namespace: airflow\nspec:\n  values:\n    executor: CeleryExecutor\n    dags:\n      gitSync:\n        enabled: true\n        repo: git@github.com:acme/dags.git\n";

fn create_merge(dir: &Path, recipient: &str, out: &str, merge: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "create",
        "--repo",
        "acme/dags",
        "-n",
        "airflow",
        "--emit",
        "helmrelease",
        "--seal-to",
        recipient,
        "--out",
        out,
        "--merge-into",
        merge,
        "--force",
    ];
    args.extend_from_slice(extra);
    run_in(dir, &args, b"")
}

#[test]
fn out_and_merge_into_naming_one_file_by_any_path_are_refused_before_a_key_exists() {
    // Was: `--out F --merge-into F --force` wrote the sealed key to F, then replaced F with the
    // merged HelmRelease: the only sealed copy of the key was lost.
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_, recipient) = age_keypair(d);
    std::fs::write(d.join("hr.yaml"), PLAIN_HELM_RELEASE).unwrap();
    std::fs::hard_link(d.join("hr.yaml"), d.join("hard.yaml")).unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    std::os::unix::fs::symlink(d.join("hr.yaml"), d.join("sub/link.yaml")).unwrap();
    let abs = d.join("hr.yaml").display().to_string();
    let pairs: [(&str, &str); 6] = [
        ("hr.yaml", "hr.yaml"),
        ("./hr.yaml", "hr.yaml"),
        ("sub/../hr.yaml", "./hr.yaml"),
        (&abs, "hr.yaml"),
        ("hard.yaml", "hr.yaml"),
        ("hr.yaml", "hard.yaml"),
    ];
    for (out, merge) in pairs {
        let run = create_merge(d, &recipient, out, merge, &[]);
        let err = stderr(&run);
        assert_eq!(
            code(&run),
            Some(2),
            "--out {out} --merge-into {merge}: {err}"
        );
        assert!(
            err.contains("--out") && err.contains("--merge-into") && err.contains("same file"),
            "{out} {merge}: {err}"
        );
        assert!(
            !err.contains("fingerprint: SHA256"),
            "a key was made: {err}"
        );
        assert_eq!(
            std::fs::read_to_string(d.join("hr.yaml")).unwrap(),
            PLAIN_HELM_RELEASE
        );
    }
    // Any other pair of one command's paths: the known_hosts file read, the identity.
    std::fs::write(d.join("kh"), "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n").unwrap();
    let run = create_merge(d, &recipient, "kh", "hr.yaml", &["--known-hosts", "./kh"]);
    let err = stderr(&run);
    assert_eq!(code(&run), Some(2), "{err}");
    assert!(
        err.contains("--known-hosts") && err.contains("same file"),
        "{err}"
    );
    assert!(std::fs::read_to_string(d.join("kh"))
        .unwrap()
        .starts_with("github.com"));
    // The symlink refusal names the flag that gave the symlink.
    let run = create_merge(d, &recipient, "new.sops.yaml", "sub/link.yaml", &[]);
    let err = stderr(&run);
    assert_eq!(code(&run), Some(2), "{err}");
    assert!(err.contains("--merge-into sub/link.yaml"), "{err}");
    assert!(!err.contains("--out sub/link.yaml"), "{err}");
    assert!(!d.join("new.sops.yaml").exists());
}

// ---- issue 20 item 8: Secret values in the encodings a copy-paste produces ----

fn encodings_of(value: &[u8]) -> Vec<(String, String)> {
    use base64::Engine as _;
    let e = base64::engine::general_purpose::STANDARD;
    let u = base64::engine::general_purpose::URL_SAFE;
    let n = base64::engine::general_purpose::STANDARD_NO_PAD;
    let mut out = Vec::new();
    for prefix in ["", "k", "ke", "key", "key=", "key=x"] {
        let mut p = prefix.as_bytes().to_vec();
        p.extend_from_slice(value);
        out.push((format!("base64 after {prefix:?}"), e.encode(&p)));
        out.push((format!("base64url after {prefix:?}"), u.encode(&p)));
        out.push((format!("base64 no pad after {prefix:?}"), n.encode(&p)));
    }
    let hex: String = value.iter().map(|b| format!("{b:02x}")).collect();
    out.push(("hex".into(), hex.clone()));
    out.push(("HEX".into(), hex.to_uppercase()));
    let mut rev = value.to_vec();
    rev.reverse();
    out.push(("reversed".into(), String::from_utf8(rev).unwrap()));
    let pct: String = value
        .iter()
        .map(|&b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    out.push(("url-encoded".into(), pct.clone()));
    out.push(("url-encoded lower".into(), pct.to_lowercase()));
    out.push(("form-encoded".into(), pct.replace("%20", "+")));
    let json = serde_json::to_string(std::str::from_utf8(value).unwrap()).unwrap();
    out.push(("json-escaped".into(), json[1..json.len() - 1].to_string()));
    out
}

#[test]
fn secret_values_in_any_copy_paste_encoding_are_refused_and_short_values_are_not() {
    // Was: the base64 (and hex, and reversed) of a stringData value in a ConfigMap annotation
    // passed the guard; only the plain value was a needle.
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let (_, recipient) = age_keypair(dir.path());
    let string_value = "correct horse/battery+\"staple\"\n!";
    let data_value = "s3cr3t d@ta?&=value\t";
    for (field, value) in [("stringData", string_value), ("data", data_value)] {
        let stored = if field == "data" {
            base64::engine::general_purpose::STANDARD.encode(value)
        } else {
            value.to_string()
        };
        for (form, enc) in encodings_of(value.as_bytes()) {
            let docs = [
                json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
                    field: {"password": stored, "flag": "dHJ1ZQ=="}}),
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg",
                    "annotations": {"note": format!("copied: {enc} (from db)")}}}),
            ];
            let out = run(
                &[
                    "seal",
                    "--seal",
                    "sops",
                    "--seal-to",
                    &recipient,
                    "--encrypted-regex",
                    "^(data|stringData)$",
                ],
                yaml(&docs).as_bytes(),
            );
            let err = stderr(&out);
            assert_eq!(
                code(&out),
                Some(2),
                "{field} as {form} ({enc:?}) passed: {err}"
            );
            assert!(
                err.contains("ConfigMap cfg) at metadata.annotations.note"),
                "{form}: {err}"
            );
        }
    }
    // Short values are not needles: `true` in any encoding seals fine.
    let docs = [
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
            "stringData": {"flag": "true", "port": "5432"}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
            "data": {"a": "true", "b": "dHJ1ZQ==", "c": "74727565", "d": "eurt", "e": "5432"}}),
    ];
    let out = run(
        &[
            "seal",
            "--seal",
            "sops",
            "--seal-to",
            &recipient,
            "--encrypted-regex",
            "^(data|stringData)$",
        ],
        yaml(&docs).as_bytes(),
    );
    assert_eq!(code(&out), Some(0), "{}", stderr(&out));
}

#[test]
fn a_secret_value_used_as_a_mapping_key_is_never_printed_in_the_refusal() {
    // Was: the refusal named the path `data.correct-horse-battery-staple`: the value itself.
    let dir = tempfile::tempdir().unwrap();
    let (_, recipient) = age_keypair(dir.path());
    let value = "correct-horse-battery-staple";
    for key_doc in [
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
            "data": {value: "x"}}),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "cfg"},
            "data": {format!("pre-{value}-post"): {"nested": "x"}}}),
    ] {
        let docs = [
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "db"},
                "stringData": {"password": value}}),
            key_doc,
        ];
        let out = run(
            &[
                "seal",
                "--seal",
                "sops",
                "--seal-to",
                &recipient,
                "--encrypted-regex",
                "^stringData$",
            ],
            yaml(&docs).as_bytes(),
        );
        let err = stderr(&out);
        assert_eq!(code(&out), Some(2), "{err}");
        assert!(err.contains("document 2 (ConfigMap cfg) at data."), "{err}");
        assert!(!err.contains("horse"), "the value was printed: {err}");
    }
}

// ---- issue 20 item 9: inspect shows what it cannot verify as claimed ----

#[test]
fn inspect_labels_the_fingerprint_annotation_as_claimed_in_text_and_json() {
    // Was: `deploy key: SHA256:<whatever the file's author wrote>` as fact, exit 0.
    let dir = tempfile::tempdir().unwrap();
    let (_, recipient) = age_keypair(dir.path());
    let made = run_in(
        dir.path(),
        &[
            "create",
            "--repo",
            "acme/dags",
            "--seal",
            "sops",
            "--seal-to",
            &recipient,
            "--out",
            "f.sops.yaml",
        ],
        b"",
    );
    assert_eq!(code(&made), Some(0), "{}", stderr(&made));
    let text = std::fs::read_to_string(dir.path().join("f.sops.yaml")).unwrap();
    let forged = "SHA256:FORGEDFORGEDFORGEDFORGEDFORGEDFORGEDFORGED0";
    let at = text.find("sealkey.io/fingerprint: ").unwrap() + "sealkey.io/fingerprint: ".len();
    let end = at + text[at..].find('\n').unwrap();
    let text = format!("{}{forged}{}", &text[..at], &text[end..]);
    std::fs::write(dir.path().join("f.sops.yaml"), text).unwrap();
    let out = run_in(dir.path(), &["inspect", "f.sops.yaml"], b"");
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        shown.contains(&format!("claimed deploy key: {forged}")),
        "{shown}"
    );
    assert!(
        !shown
            .lines()
            .any(|l| l.trim_start().starts_with("deploy key:")),
        "stated as fact: {shown}"
    );
    assert!(shown.contains("not verified"), "{shown}");
    let out = run_in(
        dir.path(),
        &["inspect", "f.sops.yaml", "--format", "json"],
        b"",
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let docs = v["documents"].as_array().unwrap();
    assert!(
        docs.iter().any(|d| d["fingerprint_claimed"] == forged),
        "{v}"
    );
    assert!(
        docs.iter().all(|d| d.get("sealkey_fingerprint").is_none()),
        "{v}"
    );
}

// ---- issue 20 "also": a .sops.yaml above the repository root or home ----

#[test]
fn a_sops_yaml_above_the_stop_point_is_never_used_even_under_quiet() {
    // Was: a `.sops.yaml` planted in /tmp chose the recipients of `create --out
    // /tmp/work/x.sops.yaml -q` silently (no repository, so the walk went up to /).
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (_, planted) = age_keypair(d);
    std::fs::write(
        d.join(".sops.yaml"),
        format!("creation_rules:\n  - age: {planted}\n"),
    )
    .unwrap();
    let home = d.join("home");
    let work = d.join("work/clusters");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    let mut cmd = support::sealkey();
    cmd.current_dir(&work).env("HOME", &home).args([
        "-q",
        "create",
        "--repo",
        "acme/dags",
        "--out",
        "x.sops.yaml",
    ]);
    let out = support::output_of(&mut cmd, None);
    let err = stderr(&out);
    assert_eq!(
        code(&out),
        Some(2),
        "the planted file chose the recipients: {err}"
    );
    assert!(!work.join("x.sops.yaml").exists());
    // Inside a repository, the repository's own file is still used, and named.
    std::fs::create_dir(d.join("work/.git")).unwrap();
    let (_, own) = age_keypair(&home);
    std::fs::write(
        d.join("work/.sops.yaml"),
        format!("creation_rules:\n  - age: {own}\n"),
    )
    .unwrap();
    let mut cmd = support::sealkey();
    cmd.current_dir(&work).env("HOME", &home).args([
        "create",
        "--repo",
        "acme/dags",
        "--out",
        "x.sops.yaml",
    ]);
    let out = support::output_of(&mut cmd, None);
    let err = stderr(&out);
    assert_eq!(code(&out), Some(0), "{err}");
    assert!(
        err.contains(&d.join("work/.sops.yaml").display().to_string()),
        "{err}"
    );
    let sealed = std::fs::read_to_string(work.join("x.sops.yaml")).unwrap();
    assert!(
        sealed.contains(&own) && !sealed.contains(&planted),
        "{sealed}"
    );
}
