//! `create --store aws-secrets-manager:NAME` against moto (real Secrets Manager wire protocol) on
//! 127.0.0.1: boto3 reads back exactly the key sealkey stored, the tags say whose it is, a
//! re-run makes one new version (old one AWSPREVIOUS), a foreign secret is refused without
//! --adopt, and every failure (no credentials, AccessDenied, throttling past the bound, a bad
//! region or name) leaves nothing stored or registered.

mod support;

use serde_json::Value;
use support::moto::{sealkey_env, Moto};

const NAME: &str = "dev/airflow-ssh";

fn create(moto: &Moto, extra: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let mut args = vec!["create", "--repo", "acme/dags", "-n", "dev", "--store"];
    let store = format!("aws-secrets-manager:{NAME}");
    args.push(&store);
    args.extend_from_slice(extra);
    sealkey_env(dir.path(), &args, &moto.env(), &["KUBECONFIG"])
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn printed(out: &std::process::Output, label: &str) -> String {
    stderr(out)
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no `{label}` line in {}", stderr(out)))
        .trim()
        .to_string()
}

/// boto3: the secret's current value, its public key (derived by `cryptography` from the stored
/// private key), its tags and version stages.
fn read_back(moto: &Moto) -> Value {
    moto.boto(&format!(
        r#"
from cryptography.hazmat.primitives import serialization
sm = c('secretsmanager')
v = sm.get_secret_value(SecretId='{NAME}')
fields = json.loads(v['SecretString'])
key = serialization.load_pem_private_key(fields['gitSshKey'].encode(), password=None) if fields['gitSshKey'].startswith('-----BEGIN PRIVATE') else serialization.load_ssh_private_key(fields['gitSshKey'].encode(), password=None)
pub = key.public_key().public_bytes(serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH).decode()
d = sm.describe_secret(SecretId='{NAME}')
print(json.dumps({{'fields': sorted(fields), 'public': pub, 'fingerprint_field': fields.get('sealkey.io/fingerprint'), 'version': v['VersionId'],
  'tags': {{t['Key']: t['Value'] for t in d.get('Tags', [])}},
  'stages': {{k: sorted(s) for k, s in d['VersionIdsToStages'].items()}},
  'kms': d.get('KmsKeyId')}}))
"#
    ))
}

fn secret_exists(moto: &Moto) -> bool {
    moto.boto(&format!(
        "sm = c('secretsmanager')\nprint(json.dumps(any(s['Name'] == '{NAME}' for s in sm.list_secrets()['SecretList'])))"
    ))
    .as_bool()
    .unwrap()
}

#[test]
fn boto3_reads_back_exactly_the_key_sealkey_stored_with_its_tags_and_an_external_secret_is_printed()
{
    let moto = Moto::start();
    let out = create(&moto, &["--store-service-account", "external-secrets"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let public = printed(&out, "public key:");
    let fingerprint = printed(&out, "fingerprint:");
    let back = read_back(&moto);
    // The stored private key is the one whose public half sealkey printed.
    let bare = |s: &str| s.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    assert_eq!(bare(back["public"].as_str().unwrap()), bare(&public));
    assert_eq!(
        back["fields"],
        serde_json::json!([
            "gitSshKey",
            "sealkey.io/created",
            "sealkey.io/fingerprint",
            "sealkey.io/key-type"
        ])
    );
    assert_eq!(back["tags"]["sealkey:managed-by"], "sealkey");
    assert_eq!(back["tags"]["sealkey:fingerprint"], fingerprint.as_str());
    assert_eq!(back["tags"]["sealkey:repo"], "acme/dags");
    assert_eq!(back["tags"]["sealkey:cluster"], "default");
    // The output: a SecretStore and an ExternalSecret, with no key material in it.
    let text = String::from_utf8(out.stdout.clone()).unwrap();
    assert!(!text.contains("PRIVATE KEY"), "key material in the output");
    let docs = common_yaml(&out.stdout);
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["SecretStore", "ExternalSecret"]);
    assert_eq!(docs[1]["spec"]["data"][0]["remoteRef"]["key"], NAME);
    // Per-key annotations come from the store, so a rotation updates them.
    assert_eq!(
        docs[1]["spec"]["target"]["template"]["metadata"]["annotations"]["sealkey.io/fingerprint"],
        "{{ index . \"sealkey.io-fingerprint\" }}"
    );
    assert_eq!(back["fingerprint_field"], fingerprint.as_str());
}

fn common_yaml(bytes: &[u8]) -> Vec<Value> {
    let s = std::str::from_utf8(bytes).unwrap();
    let docs: Vec<Value> = serde_saphyr::from_multiple(s).unwrap();
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

#[test]
fn a_second_run_makes_one_new_version_and_the_first_becomes_awsprevious() {
    let moto = Moto::start();
    assert!(create(&moto, &[]).status.success());
    let first = read_back(&moto);
    let out = create(&moto, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let second = read_back(&moto);
    assert_ne!(first["public"], second["public"]);
    assert_eq!(
        second["stages"][first["version"].as_str().unwrap()],
        serde_json::json!(["AWSPREVIOUS"])
    );
    assert_eq!(
        second["stages"][second["version"].as_str().unwrap()],
        serde_json::json!(["AWSCURRENT"])
    );
    assert_eq!(
        second["tags"]["sealkey:fingerprint"],
        printed(&out, "fingerprint:").as_str()
    );
    assert_eq!(moto.count("secretsmanager.PutSecretValue"), 1);
}

#[test]
fn a_secret_sealkey_did_not_create_is_refused_unless_adopt() {
    let moto = Moto::start();
    moto.boto(&format!(
        "c('secretsmanager').create_secret(Name='{NAME}', SecretString='someone-elses')\nprint('null')"
    ));
    let out = create(&moto, &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--adopt"), "{}", stderr(&out));
    let value = moto.boto(&format!(
        "print(json.dumps(c('secretsmanager').get_secret_value(SecretId='{NAME}')['SecretString']))"
    ));
    assert_eq!(value, "someone-elses", "the foreign value was left alone");
    let out = create(&moto, &["--adopt"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(read_back(&moto)["tags"]["sealkey:managed-by"], "sealkey");
}

#[test]
fn kms_key_id_encrypts_the_new_secret() {
    let moto = Moto::start();
    let arn = moto.kms_key();
    let out = create(&moto, &["--kms-key-id", &arn]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(read_back(&moto)["kms"], arn.as_str());
}

#[test]
fn no_credentials_exits_3_naming_the_sources_tried_and_how_to_set_one() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let env: Vec<(String, String)> = moto
        .env()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("AWS_ACCESS_KEY") && !k.starts_with("AWS_SECRET"))
        .chain([("HOME".to_string(), dir.path().display().to_string())])
        .collect();
    let out = sealkey_env(
        dir.path(),
        &[
            "create",
            "--repo",
            "acme/dags",
            "-n",
            "dev",
            "--store",
            &format!("aws-secrets-manager:{NAME}"),
        ],
        &env,
        &[
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        ],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    for source in [
        "AWS_ACCESS_KEY_ID",
        "AWS_PROFILE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "instance metadata",
    ] {
        assert!(err.contains(source), "{source} not named: {err}");
    }
    assert!(err.contains("aws configure"), "{err}");
    assert!(out.stdout.is_empty());
    assert!(!secret_exists(&moto));
}

#[test]
fn access_denied_exits_3_naming_the_action_and_resource_and_stores_nothing() {
    let moto = Moto::start();
    moto.fault(
        "secretsmanager.CreateSecret",
        "AccessDeniedException",
        400,
        -1,
    );
    let out = create(&moto, &[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("CreateSecret") && err.contains(NAME), "{err}");
    assert!(
        err.contains("secretsmanager:CreateSecret"),
        "the permission is named: {err}"
    );
    assert!(out.stdout.is_empty(), "no ExternalSecret printed");
    assert!(!secret_exists(&moto));
}

#[test]
fn throttling_is_retried_and_gives_up_after_a_bounded_number_of_attempts() {
    let moto = Moto::start();
    moto.fault("secretsmanager.CreateSecret", "ThrottlingException", 400, 2);
    let out = create(&moto, &[]);
    assert!(
        out.status.success(),
        "two throttled answers are retried: {}",
        stderr(&out)
    );
    assert_eq!(moto.count("secretsmanager.CreateSecret"), 3);

    let moto = Moto::start();
    moto.fault(
        "secretsmanager.CreateSecret",
        "ThrottlingException",
        400,
        -1,
    );
    let started = std::time::Instant::now();
    let out = create(&moto, &[]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(stderr(&out).contains("throttl"), "{}", stderr(&out));
    assert_eq!(
        moto.count("secretsmanager.CreateSecret"),
        sealkey::aws::MAX_ATTEMPTS as u64
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    assert!(!secret_exists(&moto));
}

#[test]
fn a_bad_region_or_store_name_exits_2_before_any_call() {
    let moto = Moto::start();
    for extra in [
        &["--region", "moon-east-1"][..],
        &["--region", "us-east"][..],
    ] {
        let out = create(&moto, extra);
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("region"), "{}", stderr(&out));
    }
    let dir = tempfile::tempdir().unwrap();
    let out = sealkey_env(
        dir.path(),
        &[
            "create",
            "--repo",
            "acme/dags",
            "--store",
            "aws-secrets-manager:bad name",
        ],
        &moto.env(),
        &[],
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert_eq!(moto.calls(), serde_json::json!({}), "no AWS call was made");
}

#[test]
fn a_failed_store_deletes_the_deploy_key_registered_moments_before() {
    let moto = Moto::start();
    let fake = support::fake_github::FakeGithub::start();
    moto.fault(
        "secretsmanager.CreateSecret",
        "AccessDeniedException",
        400,
        -1,
    );
    let dir = tempfile::tempdir().unwrap();
    let mut env = moto.env();
    env.push(("GITHUB_TOKEN".into(), support::fake_github::TOKEN.into()));
    let api = fake.url();
    let out = sealkey_env(
        dir.path(),
        &[
            "create",
            "--repo",
            "acme/dags",
            "-n",
            "dev",
            "--store",
            &format!("aws-secrets-manager:{NAME}"),
            "--register",
            "--cluster",
            "prod-eu",
            "--api-url",
            &api,
        ],
        &env,
        &["KUBECONFIG"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(err.contains("deleted the new key"), "{err}");
    assert!(fake.keys("acme/dags").is_empty(), "no key left registered");
    assert!(!secret_exists(&moto));
    assert!(out.stdout.is_empty());
}

#[test]
fn a_register_then_store_run_tags_the_cluster_and_registers_read_only() {
    let moto = Moto::start();
    let fake = support::fake_github::FakeGithub::start();
    let dir = tempfile::tempdir().unwrap();
    let mut env = moto.env();
    env.push(("GITHUB_TOKEN".into(), support::fake_github::TOKEN.into()));
    let api = fake.url();
    let out = sealkey_env(
        dir.path(),
        &[
            "create",
            "--repo",
            "acme/dags",
            "-n",
            "dev",
            "--store",
            &format!("aws-secrets-manager:{NAME}"),
            "--register",
            "--cluster",
            "prod-eu",
            "--api-url",
            &api,
        ],
        &env,
        &["KUBECONFIG"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let keys = fake.keys("acme/dags");
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0]["read_only"], true);
    let back = read_back(&moto);
    assert_eq!(back["tags"]["sealkey:cluster"], "prod-eu");
    let bare = |s: &str| s.split_whitespace().take(2).collect::<Vec<_>>().join(" ");
    assert_eq!(
        bare(keys[0]["key"].as_str().unwrap()),
        bare(back["public"].as_str().unwrap())
    );
}

#[test]
fn a_lost_put_answer_is_retried_with_the_same_request_token_and_makes_one_version() {
    let moto = Moto::start();
    assert!(create(&moto, &[]).status.success());
    // PutSecretValue is carried out, then answered 500: the SDK retries with the same
    // ClientRequestToken, which AWS (and moto) treat as the same request.
    moto.fault_after("secretsmanager.PutSecretValue", "InternalFailure", 500, 1);
    let out = create(&moto, &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(moto.count("secretsmanager.PutSecretValue"), 2, "one retry");
    let back = read_back(&moto);
    assert_eq!(
        back["stages"].as_object().unwrap().len(),
        2,
        "two versions, not three: {back}"
    );
    assert_eq!(
        back["tags"]["sealkey:fingerprint"],
        printed(&out, "fingerprint:").as_str()
    );
}
