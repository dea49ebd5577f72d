//! SOPS output checked by decoders we did not write (npm `sops-age`, and `sops-decoder` with its
//! MAC check, see tests/sops-js/decode.mjs), and `sealkey unseal` checked against a file the real
//! `sops` wrote (tests/fixtures/sops-flux, from Flux's own test data).

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod support;

use support::root;

use support::run;

fn fixture(name: &str) -> PathBuf {
    root().join("tests/fixtures/sops-flux").join(name)
}

/// A fresh age identity: (recipient, identity file in `dir`, identity text).
fn age_identity(dir: &Path, name: &str) -> (String, PathBuf, String) {
    use age::secrecy::ExposeSecret;
    let id = age::x25519::Identity::generate();
    let text = id.to_string().expose_secret().to_string();
    let path = dir.join(format!("{name}.TEST-ONLY.agekey"));
    std::fs::write(&path, format!("{text}\n")).unwrap();
    (id.to_public().to_string(), path, text)
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "sealkey failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Decrypts with the npm decoders; returns the documents as JSON.
fn npm_decode(file: &Path, identity_text: &str) -> Result<Vec<Value>, String> {
    let script = root().join("tests/sops-js/decode.mjs");
    assert!(
        root().join("tests/sops-js/node_modules/sops-age").is_dir(),
        "npm decoders missing: run scripts/install-test-deps"
    );
    let out = Command::new("node")
        .arg(&script)
        .arg(file)
        .env("SOPS_AGE_KEY", identity_text)
        .env("NODE_NO_WARNINGS", "1")
        .output()
        .expect("node runs (scripts/install-test-deps installs it)");
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap())
}

fn parse_yaml_stream(text: &str) -> Vec<Value> {
    sealkey::yaml::parse_stream(text, "test").unwrap()
}

fn b64d(s: &str) -> String {
    use base64::Engine as _;
    String::from_utf8(base64::engine::general_purpose::STANDARD.decode(s).unwrap()).unwrap()
}

#[test]
fn flux_secret_from_create_opens_in_npm_decoders() {
    let dir = tempfile::tempdir().unwrap();
    let (recipient, id_file, id_text) = age_identity(dir.path(), "flux");
    let sealed = ok(run(
        &[
            "create",
            "--repo",
            "acme/dags",
            "--for",
            "flux",
            "--seal",
            "sops",
            "--seal-to",
            &recipient,
            "-q",
        ],
        b"",
    ));
    // base64 of "-----BEGIN OPENSSH", as the Secret would carry the key in clear.
    assert!(
        !sealed.contains("LS0tLS1CRUdJTiBPUEVOU1NI"),
        "plaintext leaked:\n{sealed}"
    );
    let file = dir.path().join("secret.sops.yaml");
    std::fs::write(&file, &sealed).unwrap();
    let docs = npm_decode(&file, &id_text).unwrap();
    assert_eq!(docs.len(), 1);
    let secret = &docs[0];
    assert_eq!(secret["kind"], "Secret");
    assert_eq!(secret["metadata"]["name"], "dags-git-auth");
    let key = b64d(secret["data"]["identity"].as_str().unwrap());
    assert!(
        key.starts_with(sealkey::keygen::OPENSSH_PRIVATE_KEY_HEADER),
        "{key}"
    );
    assert!(
        b64d(secret["data"]["known_hosts"].as_str().unwrap()).contains("github.com ssh-ed25519")
    );
    // sealkey's own reader agrees with both npm decoders.
    let plain = ok(run(
        &[
            "unseal",
            "--identity",
            id_file.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
        b"",
    ));
    assert_eq!(parse_yaml_stream(&plain), docs);
}

#[test]
fn extra_secrets_helmrelease_is_encrypted_on_the_data_path_and_opens_in_npm_decoders() {
    let dir = tempfile::tempdir().unwrap();
    let (recipient, _, id_text) = age_identity(dir.path(), "flux");
    let sealed = ok(run(
        &[
            "create",
            "--repo",
            "acme/dags",
            "--namespace",
            "airflow",
            "--for",
            "airflow-chart",
            "--emit",
            "extra-secrets",
            "--seal",
            "sops",
            "--seal-to",
            &recipient,
            "-q",
        ],
        b"",
    ));
    // Only spec.values.extraSecrets.NAME.data is encrypted; the rest of the release stays
    // readable for review.
    let raw = &parse_yaml_stream(&sealed)[0];
    assert_eq!(raw["kind"], "HelmRelease");
    let data = raw["spec"]["values"]["extraSecrets"]["airflow-ssh-secret"]["data"]
        .as_str()
        .unwrap();
    assert!(data.starts_with("ENC[AES256_GCM,data:"), "{data}");
    assert_eq!(raw["spec"]["values"]["dags"]["gitSync"]["enabled"], true);
    assert_eq!(
        sealed.matches("ENC[AES256_GCM").count(),
        2,
        "data + mac only:\n{sealed}"
    );
    assert_eq!(raw["sops"]["encrypted_regex"], "^(data|stringData)$");

    let file = dir.path().join("release.sops.yaml");
    std::fs::write(&file, &sealed).unwrap();
    let docs = npm_decode(&file, &id_text).unwrap();
    let data = docs[0]["spec"]["values"]["extraSecrets"]["airflow-ssh-secret"]["data"]
        .as_str()
        .unwrap();
    let encoded = data
        .strip_prefix("gitSshKey: '")
        .and_then(|s| s.strip_suffix("'\n"))
        .unwrap_or_else(|| panic!("chart data shape: {data}"));
    assert!(b64d(encoded).starts_with(sealkey::keygen::OPENSSH_PRIVATE_KEY_HEADER));
}

fn multi_object_input() -> Vec<Value> {
    vec![
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "one", "namespace": "dev", "labels": {"team": "data"}},
            "type": "Opaque",
            "data": {"token": "c2VjcmV0LW9uZQ==", "empty": ""},
        }),
        json!({
            "apiVersion": "v1", "kind": "Secret",
            "metadata": {"name": "two", "namespace": "dev"},
            "stringData": {"password": "p@ss: word # not a comment", "port": 5432, "tls": true,
                            "ratio": 0.25, "multi": "line1\nline2\n"},
        }),
        json!({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "cfg", "namespace": "dev"},
            "data": {"a": "b"},
        }),
        json!({
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "patch", "namespace": "dev"},
            "spec": {"replicas": 1},
        }),
    ]
}

#[test]
fn multi_object_stream_gets_one_sops_block_per_object_and_opens_to_the_original_values() {
    let dir = tempfile::tempdir().unwrap();
    let (recipient, id_file, id_text) = age_identity(dir.path(), "flux");
    let input = multi_object_input();
    let text = sealkey::yaml::to_yaml_stream(&input);
    let sealed = ok(run(
        &["seal", "--seal", "sops", "--seal-to", &recipient],
        text.as_bytes(),
    ));
    let raw = parse_yaml_stream(&sealed);
    assert_eq!(raw.len(), 4);
    // Every object with a selected value has its own block, data key and MAC. The patch, with
    // nothing selected, is written as it is, without a block, so people and bots can edit it
    // (issue 21 item 6); unseal never prints it as authenticated (see below).
    let macs: Vec<&str> = raw[..3]
        .iter()
        .map(|d| d["sops"]["mac"].as_str().unwrap())
        .collect();
    let distinct: std::collections::BTreeSet<&str> = macs.iter().copied().collect();
    assert_eq!(distinct.len(), 3);
    let encs: std::collections::BTreeSet<&str> = raw[..3]
        .iter()
        .map(|d| d["sops"]["age"][0]["enc"].as_str().unwrap())
        .collect();
    assert_eq!(encs.len(), 3);
    assert_eq!(raw[3], input[3]);
    assert!(!sealed.contains("c2VjcmV0LW9uZQ") && !sealed.contains("p@ss"));

    let file = dir.path().join("stream.sops.yaml");
    std::fs::write(&file, &sealed).unwrap();
    assert_eq!(npm_decode(&file, &id_text).unwrap(), input);
    let plain = ok(run(
        &[
            "unseal",
            "--identity",
            id_file.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
        b"",
    ));
    // The authenticated objects only; the patch is named on stderr as not authenticated.
    assert_eq!(parse_yaml_stream(&plain), input[..3]);
}

#[test]
fn custom_encrypted_regex_selects_other_keys() {
    let dir = tempfile::tempdir().unwrap();
    let (recipient, _, id_text) = age_identity(dir.path(), "flux");
    let input = json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "c"}, "data": {"password": "x", "user": "y"}});
    let text = sealkey::yaml::to_yaml_stream(std::slice::from_ref(&input));
    let sealed = ok(run(
        &[
            "seal",
            "--seal",
            "sops",
            "--seal-to",
            &recipient,
            "--encrypted-regex",
            "^password$",
        ],
        text.as_bytes(),
    ));
    let raw = &parse_yaml_stream(&sealed)[0];
    assert_eq!(raw["data"]["user"], "y");
    assert!(raw["data"]["password"]
        .as_str()
        .unwrap()
        .starts_with("ENC["));
    assert_eq!(raw["sops"]["encrypted_regex"], "^password$");
    let file = dir.path().join("c.yaml");
    std::fs::write(&file, &sealed).unwrap();
    assert_eq!(npm_decode(&file, &id_text).unwrap(), vec![input]);
}

#[test]
fn unseal_decrypts_and_mac_verifies_the_file_written_by_real_sops() {
    let plain = ok(run(
        &[
            "unseal",
            "--identity",
            fixture("age-global.TEST-ONLY.txt").to_str().unwrap(),
            fixture("secret.yaml").to_str().unwrap(),
        ],
        b"",
    ));
    let docs = parse_yaml_stream(&plain);
    assert_eq!(docs[0]["stringData"]["key"], "global-value");
    assert!(docs[0].get("sops").is_none());
}

/// Every `ENC[` value (each value and the MAC) with one base64 character of its data changed.
fn flipped_variants(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (at, _) in text.match_indices("ENC[AES256_GCM,data:") {
        let i = at + "ENC[AES256_GCM,data:".len() + 2;
        let mut bytes = text.as_bytes().to_vec();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let line = text[..at]
            .lines()
            .last()
            .unwrap_or_default()
            .trim()
            .to_string();
        out.push((line, String::from_utf8(bytes).unwrap()));
    }
    out
}

fn assert_refused(file: &Path, identity: &Path, expect_doc: &str, case: &str) {
    let out = run(
        &[
            "unseal",
            "--identity",
            identity.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
        b"",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{case}: {err}");
    assert!(out.stdout.is_empty(), "{case}: plaintext printed");
    assert!(err.contains(expect_doc), "{case}: {err}");
}

#[test]
fn a_flipped_byte_in_any_value_or_the_mac_makes_unseal_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    // The real sops file.
    let original = std::fs::read_to_string(fixture("secret.yaml")).unwrap();
    let variants = flipped_variants(&original);
    assert_eq!(variants.len(), 2, "one value and the MAC");
    for (line, text) in variants {
        let f = dir.path().join("t.yaml");
        std::fs::write(&f, text).unwrap();
        assert_refused(
            &f,
            &fixture("age-global.TEST-ONLY.txt"),
            "document 1 (Secret default/global-age-secret)",
            &line,
        );
    }
    // An unencrypted value changed: only the MAC notices.
    let f = dir.path().join("t.yaml");
    std::fs::write(
        &f,
        original.replace("type: Opaque", "type: kubernetes.io/ssh-auth"),
    )
    .unwrap();
    assert_refused(
        &f,
        &fixture("age-global.TEST-ONLY.txt"),
        "MAC check failed",
        "type",
    );

    // sealkey's own multi-object output: each value of each object.
    let (recipient, id_file, _) = age_identity(dir.path(), "flux");
    let text = sealkey::yaml::to_yaml_stream(&multi_object_input());
    let sealed = ok(run(
        &["seal", "--seal", "sops", "--seal-to", &recipient],
        text.as_bytes(),
    ));
    let variants = flipped_variants(&sealed);
    // Values and MACs of the three sealed objects (the patch, with nothing encrypted, is
    // written without a block since issue 21 item 6).
    assert_eq!(variants.len(), 2 + 6 + 2, "values and MACs");
    for (line, text) in variants {
        std::fs::write(&f, text).unwrap();
        assert_refused(&f, &id_file, "document ", &line);
    }
}

#[test]
fn wrong_identity_exits_2_naming_the_document_and_its_recipients() {
    let dir = tempfile::tempdir().unwrap();
    let (_, other, _) = age_identity(dir.path(), "other");
    let out = run(
        &[
            "unseal",
            "--identity",
            other.to_str().unwrap(),
            fixture("secret.yaml").to_str().unwrap(),
        ],
        b"",
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("document 1 (Secret default/global-age-secret)"),
        "{err}"
    );
    assert!(
        err.contains("none of the identities opens its data key"),
        "{err}"
    );
    assert!(err.contains("age1henwn645drkd3fa34t27t2w2x0nsgw"), "{err}");
}

#[test]
fn ssh_recipient_alone_is_refused_and_beside_an_age_key_is_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let key =
        sealkey::keygen::DeployKey::generate(sealkey::keygen::KeyType::Ed25519, "me").unwrap();
    let ssh = key.public_openssh().to_string();
    let input = b"apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\ndata:\n  k: eA==\n";
    let out = run(&["seal", "--seal", "sops", "--seal-to", &ssh], input);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("Flux"), "{err}");
    assert!(err.contains("age1"), "{err}");

    let (recipient, _, id_text) = age_identity(dir.path(), "flux");
    let out = run(
        &[
            "seal",
            "--seal",
            "sops",
            "--seal-to",
            &recipient,
            "--seal-to",
            &ssh,
        ],
        input,
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let sealed = ok(out);
    assert!(err.contains("Flux cannot"), "{err}");
    let f = dir.path().join("s.yaml");
    std::fs::write(&f, &sealed).unwrap();
    assert_eq!(npm_decode(&f, &id_text).unwrap()[0]["data"]["k"], "eA==");
    assert_eq!(
        parse_yaml_stream(&sealed)[0]["sops"]["age"][1]["recipient"],
        json!(ssh)
    );
}

#[test]
fn reseal_with_update_is_byte_identical_when_unchanged_and_takes_a_fresh_data_key_on_change() {
    let dir = tempfile::tempdir().unwrap();
    let (recipient, id_file, id_text) = age_identity(dir.path(), "flux");
    let v1 = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: git\n  namespace: dev\ntype: Opaque\ndata:\n  known_hosts: Z2l0aHViLmNvbSBrZXk=\n  ssh: b2xkLWtleQ==\n";
    let first = ok(run(
        &["seal", "--seal", "sops", "--seal-to", &recipient],
        v1.as_bytes(),
    ));
    let old = dir.path().join("git.sops.yaml");
    std::fs::write(&old, &first).unwrap();
    let update = [
        "seal",
        "--seal",
        "sops",
        "--seal-to",
        &recipient,
        "--update",
        old.to_str().unwrap(),
        "--identity",
        id_file.to_str().unwrap(),
    ];
    // Unchanged input: the file comes out byte for byte the same (git sees no change).
    let again = ok(run(&update, v1.as_bytes()));
    assert_eq!(again, first);
    let new_file = dir.path().join("again.yaml");
    std::fs::write(&new_file, &again).unwrap();
    let diff = Command::new("diff")
        .arg(&old)
        .arg(&new_file)
        .output()
        .unwrap();
    assert!(
        diff.status.success(),
        "{}",
        String::from_utf8_lossy(&diff.stdout)
    );

    // One value rotated: the object gets a fresh data key (a file someone else prepared could
    // carry a data key they know; issue 11), so every encrypted value and the age entry change,
    // and nothing readable does.
    let v2 = v1.replace("b2xkLWtleQ==", "bmV3LWtleQ==");
    let second = ok(run(&update, v2.as_bytes()));
    std::fs::write(&new_file, &second).unwrap();
    let (a, b) = (
        &parse_yaml_stream(&first)[0],
        &parse_yaml_stream(&second)[0],
    );
    for readable in ["apiVersion", "kind", "metadata", "type"] {
        assert_eq!(a[readable], b[readable], "{readable}");
    }
    for k in ["known_hosts", "ssh"] {
        assert_ne!(a["data"][k], b["data"][k], "{k} under the old data key");
    }
    assert_ne!(a["sops"]["age"][0]["enc"], b["sops"]["age"][0]["enc"]);
    assert_ne!(a["sops"]["mac"], b["sops"]["mac"]);
    assert_eq!(
        npm_decode(&new_file, &id_text).unwrap()[0]["data"]["ssh"],
        "bmV3LWtleQ=="
    );

    // Without the identity there is no data key to re-use: a clear error, not new ciphertext.
    let out = run(
        &[
            "seal",
            "--seal",
            "sops",
            "--seal-to",
            &recipient,
            "--update",
            old.to_str().unwrap(),
        ],
        v1.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--identity"));
}

// Regression: `keygen --seal sops` printed only the public key and silently dropped the private one.
#[test]
fn keygen_offers_and_takes_only_the_seals_it_does_instead_of_dropping_the_key() {
    for method in ["sops", "sealed-secrets"] {
        let out = run(&["keygen", "--seal", method], b"");
        assert_eq!(out.status.code(), Some(2), "{method}");
        assert!(out.stdout.is_empty(), "{method}: key material printed");
        // clap refuses the value and lists what keygen takes; the help says where SOPS and
        // Sealed Secrets live.
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("possible values: age, none"), "{err}");
    }
    let help = run(&["keygen", "--help"], b"");
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(
        help.contains("for SOPS or Sealed Secrets use `sealkey create`"),
        "{help}"
    );
    {}
}
