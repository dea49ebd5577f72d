//! SOPS with AWS KMS, judged by implementations sealkey did not write, against moto's KMS on
//! 127.0.0.1: npm `sops-decoder` (calls KMS Decrypt through the AWS SDK for JavaScript and checks
//! the MAC) and PyPI `sops` 1.18 (the original Python sops, boto3) open sealkey's files; sealkey
//! opens a file the Python sops encrypted with `--kms`. One KMS call per document, counted on
//! the server; bad ARNs and a disabled key refused.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use support::moto::{sealkey_env, Moto};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn seal(moto: &Moto, dir: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["create", "--repo", "acme/dags", "-n", "dev"];
    args.extend_from_slice(extra);
    sealkey_env(dir, &args, &moto.env(), &["KUBECONFIG"])
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

fn node_decode(moto: &Moto, file: &Path) -> Result<Vec<Value>, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/sops-js/decode-kms.mjs");
    let out = Command::new("node")
        .arg(script)
        .arg(file)
        .envs(moto.env())
        .output()
        .expect("node");
    if !out.status.success() {
        return Err(stderr(&out));
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap())
}

fn python_sops() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv-sops/bin/sops");
    assert!(
        p.exists(),
        "{} is missing: run scripts/install-test-deps",
        p.display()
    );
    p
}

fn py_sops(moto: &Moto, args: &[&str]) -> std::process::Output {
    Command::new(python_sops())
        .args(args)
        .envs(moto.env())
        .output()
        .expect("python sops")
}

fn private_key_of(docs: &[Value]) -> String {
    let secret = docs
        .iter()
        .find(|d| d["kind"] == "Secret")
        .expect("a Secret");
    let b64 = secret["data"]["gitSshKey"].as_str().expect("gitSshKey");
    use base64::Engine as _;
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(b64)
            .unwrap(),
    )
    .unwrap()
}

fn unseal(moto: &Moto, dir: &Path, file: &Path, extra: &[&str]) -> std::process::Output {
    let f = file.display().to_string();
    let mut args = vec!["unseal", f.as_str()];
    args.extend_from_slice(extra);
    sealkey_env(dir, &args, &moto.env(), &[])
}

fn yaml(bytes: &[u8]) -> Vec<Value> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(std::str::from_utf8(bytes).unwrap()).unwrap();
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

#[test]
fn sops_decoder_opens_sealkeys_kms_file_through_kms_and_gets_the_same_key() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let arn = moto.kms_key();
    let out = seal(&moto, dir.path(), &["--seal-to", &arn]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(text.contains("kms:") && text.contains(&arn) && text.contains("aws_profile: \"\""));
    let file = write(dir.path(), "secret.sops.yaml", &out.stdout);
    let decoded = node_decode(&moto, &file).expect("sops-decoder opens it");
    let mine = unseal(&moto, dir.path(), &file, &[]);
    assert!(mine.status.success(), "{}", stderr(&mine));
    let key = private_key_of(&decoded);
    assert!(key.contains("PRIVATE KEY"));
    assert_eq!(key, private_key_of(&yaml(&mine.stdout)));
    // Tampering is caught by the independent decoder's MAC check too.
    let tampered = text.replacen("name: airflow-ssh-secret", "name: airflow-ssh-secreT", 1);
    let bad = write(dir.path(), "tampered.sops.yaml", tampered.as_bytes());
    assert!(
        node_decode(&moto, &bad).is_err(),
        "sops-decoder refuses a changed document"
    );
}

#[test]
fn the_python_sops_opens_sealkeys_kms_file_when_every_value_is_encrypted() {
    // Python sops 1.18 predates encrypted_regex: it MACs only the values it decrypts, so it
    // checks sealkey's MAC only over a file where every value is encrypted.
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let arn = moto.kms_key();
    let out = seal(
        &moto,
        dir.path(),
        &["--seal-to", &arn, "--encrypted-regex", "."],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let file = write(dir.path(), "all.sops.yaml", &out.stdout);
    let py = py_sops(&moto, &["-d", file.to_str().unwrap()]);
    assert!(py.status.success(), "python sops: {}", stderr(&py));
    let mine = unseal(&moto, dir.path(), &file, &[]);
    assert_eq!(
        private_key_of(&yaml(&py.stdout)),
        private_key_of(&yaml(&mine.stdout))
    );
}

#[test]
fn sealkey_opens_a_file_the_python_sops_encrypted_with_kms() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let arn = moto.kms_key();
    let plain = write(
        dir.path(),
        "plain.yaml",
        b"apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\nstringData:\n  token: opened-by-sealkey\n",
    );
    let py = py_sops(&moto, &["-e", "--kms", &arn, plain.to_str().unwrap()]);
    assert!(py.status.success(), "python sops: {}", stderr(&py));
    assert!(String::from_utf8_lossy(&py.stdout).contains("kms:"));
    let file = write(dir.path(), "py.sops.yaml", &py.stdout);
    let mine = unseal(&moto, dir.path(), &file, &[]);
    assert!(mine.status.success(), "{}", stderr(&mine));
    assert_eq!(
        yaml(&mine.stdout)[0]["stringData"]["token"],
        "opened-by-sealkey"
    );
    // A changed ciphertext is refused by sealkey's MAC check.
    let text = String::from_utf8(py.stdout.clone()).unwrap();
    let at = text.find("data:").unwrap() + 5;
    let mut bytes = text.into_bytes();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    let bad = write(dir.path(), "bad.sops.yaml", &bytes);
    let out = unseal(&moto, dir.path(), &bad, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
}

#[test]
fn one_kms_encrypt_per_document_not_per_value() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let arn = moto.kms_key();
    let before = moto.count("TrentService.Encrypt");
    // HelmRelease + Secret: two SOPS documents, many values.
    let out = seal(
        &moto,
        dir.path(),
        &[
            "--emit",
            "helmrelease",
            "--seal-to",
            &arn,
            "--encrypted-regex",
            ".",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let docs = yaml(&out.stdout);
    let values = count_enc(&Value::Array(docs.clone()));
    assert_eq!(docs.len(), 2);
    assert!(values > 10, "many values encrypted ({values})");
    assert_eq!(moto.count("TrentService.Encrypt") - before, 2);
    let file = write(dir.path(), "hr.sops.yaml", &out.stdout);
    let d0 = moto.count("TrentService.Decrypt");
    assert!(unseal(&moto, dir.path(), &file, &[]).status.success());
    assert_eq!(moto.count("TrentService.Decrypt") - d0, 2);
}

fn count_enc(v: &Value) -> usize {
    match v {
        Value::String(s) => s.starts_with("ENC[AES256_GCM") as usize,
        Value::Array(a) => a.iter().map(count_enc).sum(),
        Value::Object(m) => m
            .iter()
            .filter(|(k, _)| *k != "sops")
            .map(|(_, v)| count_enc(v))
            .sum(),
        _ => 0,
    }
}

#[test]
fn an_alias_arn_beside_an_age_recipient_opens_with_either() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let arn = moto.kms_key();
    let key_id = arn.rsplit('/').next().unwrap();
    moto.boto(&format!(
        "c('kms').create_alias(AliasName='alias/sops', TargetKeyId='{key_id}')\nprint('null')"
    ));
    let alias = "arn:aws:kms:eu-west-1:123456789012:alias/sops";
    let identity = dir.path().join("age.TEST-ONLY.txt");
    assert!(Command::new("age-keygen")
        .arg("-o")
        .arg(&identity)
        .output()
        .unwrap()
        .status
        .success());
    let id_text = std::fs::read_to_string(&identity).unwrap();
    let recipient = id_text
        .lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap();
    let out = seal(
        &moto,
        dir.path(),
        &["--seal-to", alias, "--seal-to", recipient],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(text.contains(alias) && text.contains(recipient));
    let file = write(dir.path(), "both.sops.yaml", &out.stdout);
    let kms = unseal(&moto, dir.path(), &file, &[]);
    assert!(kms.status.success(), "{}", stderr(&kms));
    let age = unseal(
        &moto,
        dir.path(),
        &file,
        &["--identity", identity.to_str().unwrap()],
    );
    assert!(age.status.success(), "{}", stderr(&age));
    assert_eq!(
        private_key_of(&yaml(&kms.stdout)),
        private_key_of(&yaml(&age.stdout))
    );
}

#[test]
fn a_malformed_arn_exits_2_and_a_disabled_key_exits_3_writing_nothing() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    for bad in [
        "arn:aws:kms:eu-west-1:1234:key/abc",
        "arn:aws:kms:atlantis-9:123456789012:key/abc",
        "arn:aws:kms:eu-west-1:123456789012:bucket/abc",
    ] {
        let out = seal(&moto, dir.path(), &["--seal-to", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", stderr(&out));
        assert!(out.stdout.is_empty());
    }
    let arn = moto.kms_key();
    let key_id = arn.rsplit('/').next().unwrap();
    moto.boto(&format!(
        "c('kms').disable_key(KeyId='{key_id}')\nprint('null')"
    ));
    let out_file = dir.path().join("out.sops.yaml");
    let out = seal(
        &moto,
        dir.path(),
        &["--seal-to", &arn, "--out", out_file.to_str().unwrap()],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("Encrypt") && err.contains(&arn), "{err}");
    assert!(
        err.contains("enable-key") || err.contains("disabled"),
        "{err}"
    );
    assert!(!out_file.exists(), "nothing written");
}

#[test]
fn kms_throttling_is_retried_and_access_denied_names_the_action_and_key() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let arn = moto.kms_key();
    moto.fault("TrentService.Encrypt", "ThrottlingException", 400, 2);
    let out = seal(&moto, dir.path(), &["--seal-to", &arn]);
    assert!(
        out.status.success(),
        "two throttled answers are retried: {}",
        stderr(&out)
    );
    assert_eq!(moto.count("TrentService.Encrypt"), 3);
    moto.fault("TrentService.Encrypt", "AccessDeniedException", 400, -1);
    let out_file = dir.path().join("denied.sops.yaml");
    let out = seal(
        &moto,
        dir.path(),
        &["--seal-to", &arn, "--out", out_file.to_str().unwrap()],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("kms:Encrypt") && err.contains(&arn), "{err}");
    assert!(!out_file.exists());
    assert_eq!(
        moto.count("TrentService.Encrypt"),
        4,
        "AccessDenied is not retried"
    );
}

#[test]
fn an_encryption_context_set_by_the_python_sops_is_passed_to_kms_and_an_altered_one_refused() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let arn = moto.kms_key();
    let plain = write(
        dir.path(),
        "plain.yaml",
        b"apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\nstringData:\n  token: bound-to-its-context\n",
    );
    let py = py_sops(
        &moto,
        &[
            "-e",
            "--kms",
            &arn,
            "--encryption-context",
            "app:airflow,env:prod",
            plain.to_str().unwrap(),
        ],
    );
    assert!(py.status.success(), "python sops: {}", stderr(&py));
    let text = String::from_utf8(py.stdout.clone()).unwrap();
    assert!(
        text.contains("context:") && text.contains("env: prod"),
        "{text}"
    );
    let file = write(dir.path(), "ctx.sops.yaml", text.as_bytes());
    let mine = unseal(&moto, dir.path(), &file, &[]);
    assert!(mine.status.success(), "{}", stderr(&mine));
    assert_eq!(
        yaml(&mine.stdout)[0]["stringData"]["token"],
        "bound-to-its-context"
    );
    let bad = write(
        dir.path(),
        "ctx-bad.sops.yaml",
        text.replace("env: prod", "env: dev").as_bytes(),
    );
    let out = unseal(&moto, dir.path(), &bad, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("InvalidCiphertextException") && stderr(&out).contains("context"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());
}
