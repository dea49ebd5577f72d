//! `sealkey app create`: a GitHub App's key as the git credential. The key is proven against a
//! stateful fake GitHub on 127.0.0.1 (JWT -> GET /app -> installation -> a token narrowed to the
//! repository with contents: read -> GET /repos/OWNER/REPO) before anything is written; each
//! consumer gets the keys it reads (checked against the consumers' own source, cited below);
//! refusals exit 3 naming what failed, bad keys exit 2 naming the input; the key and the token
//! never reach stderr. The JWT is checked by PyJWT + cryptography, the connection by Airflow's
//! own GitHook.

mod support;

use rsa::pkcs1::{EncodeRsaPrivateKey, EncodeRsaPublicKey};
use rsa::pkcs8::EncodePrivateKey;
use serde_json::Value;
use std::path::{Path, PathBuf};
use support::fake_github::*;
use support::*;

struct App {
    fake: FakeGithub,
    key: rsa::RsaPrivateKey,
    dir: tempfile::TempDir,
    pem: PathBuf,
}

fn app() -> App {
    let fake = FakeGithub::start();
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    fake.state().app_public_pem = Some(
        key.to_public_key()
            .to_pkcs1_pem(Default::default())
            .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("app.TEST-ONLY.pem");
    write_private(
        &pem,
        key.to_pkcs1_pem(Default::default()).unwrap().as_bytes(),
    );
    App {
        fake,
        key,
        dir,
        pem,
    }
}

fn pkcs1(key: &rsa::RsaPrivateKey) -> String {
    key.to_pkcs1_pem(Default::default()).unwrap().to_string()
}

fn create(a: &App, consumer: &str, extra: &[&str]) -> std::process::Command {
    create_as(a, "1", consumer, extra)
}

fn create_as(a: &App, app_id: &str, consumer: &str, extra: &[&str]) -> std::process::Command {
    let mut c = sealkey();
    c.args([
        "app",
        "create",
        "--repo",
        "acme/dags",
        "--app-id",
        app_id,
        "--app-key",
        a.pem.to_str().unwrap(),
        "--for",
        consumer,
        "--api-url",
        &a.fake.url(),
    ])
    .args(extra);
    c
}

fn calls(fake: &FakeGithub) -> Vec<String> {
    fake.log()
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect()
}

/// GitHub's own recipe for the fingerprint its settings page shows (docs.github.com, "Verifying
/// private keys"): `openssl rsa -in KEY -pubout -outform DER | openssl sha256 -binary | openssl base64`.
fn openssl_fingerprint(pem: &Path) -> String {
    let der = tool(
        "openssl",
        &[
            "rsa",
            "-in",
            pem.to_str().unwrap(),
            "-pubout",
            "-outform",
            "DER",
        ],
        b"",
    );
    let digest = tool("openssl", &["sha256", "-binary"], &der);
    let b64 = tool("openssl", &["base64"], &digest);
    format!("SHA256:{}", text(&b64).trim())
}

fn assert_no_secret(a: &App, stream: &str, what: &str) {
    let pem = pkcs1(&a.key);
    let body_line = pem.lines().nth(1).unwrap();
    assert!(
        !stream.contains(body_line) && !stream.contains("PRIVATE KEY"),
        "{what} holds the App key:\n{stream}"
    );
    let token = a.fake.state().installation_token.clone();
    assert!(
        !stream.contains(&token),
        "{what} holds the token:\n{stream}"
    );
}

#[test]
fn app_create_proves_the_repository_then_emits_each_consumers_keys() {
    let a = app();
    let fingerprint = openssl_fingerprint(&a.pem);
    for consumer in ["flux", "git-sync", "argocd"] {
        a.fake.state().log.clear();
        let out = run_cmd(create(&a, consumer, &["--seal", "none"]), None);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{consumer}: {stderr}");
        assert!(
            stderr.contains(&fingerprint),
            "{consumer}: the fingerprint GitHub shows ({fingerprint}) is printed: {stderr}"
        );
        assert_no_secret(&a, &stderr, "stderr");
        // The proof, in order, before anything was written.
        assert_eq!(
            calls(&a.fake),
            [
                "GET /app",
                "GET /repos/acme/dags/installation",
                "POST /app/installations/77/access_tokens",
                "GET /repos/acme/dags",
            ],
            "{consumer}"
        );
        let narrowed = a.fake.log()[2].json();
        assert_eq!(
            narrowed,
            serde_json::json!({"repositories": ["dags"], "permissions": {"contents": "read"}})
        );
        let docs = yaml_docs(&out.stdout);
        let secret = &docs[0];
        assert_eq!(secret["kind"], "Secret");
        let data = secret["data"].as_object().unwrap();
        let keys: Vec<&str> = data.keys().map(String::as_str).collect();
        let pem_field = match consumer {
            // fluxcd/pkg runtime/secrets/secrets.go: KeyGitHubAppID, KeyGitHubAppInstallationID,
            // KeyGitHubAppPrivateKey (+ KeyGitHubAppBaseURL for GitHub Enterprise Server); exactly
            // one of githubAppInstallationOwner / githubAppInstallationID.
            "flux" => {
                // The fake is not api.github.com, so it is GitHub Enterprise Server to sealkey:
                // the consumer must ask the same API.
                assert_eq!(
                    keys,
                    [
                        "githubAppID",
                        "githubAppInstallationID",
                        "githubAppPrivateKey",
                        "githubAppBaseURL"
                    ]
                );
                assert_eq!(text(&b64d(&data["githubAppBaseURL"])), a.fake.url());
                let repo = &docs[1];
                assert_eq!(repo["kind"], "GitRepository");
                assert_eq!(repo["apiVersion"], "source.toolkit.fluxcd.io/v1");
                assert_eq!(repo["spec"]["provider"], "github");
                assert!(repo["spec"]["url"]
                    .as_str()
                    .unwrap()
                    .starts_with("https://"));
                assert_eq!(
                    repo["spec"]["secretRef"]["name"],
                    secret["metadata"]["name"]
                );
                "githubAppPrivateKey"
            }
            // Argo CD's repository Secret (declarative setup): type, url, githubAppID,
            // githubAppInstallationID, githubAppPrivateKey.
            "argocd" => {
                assert_eq!(
                    keys,
                    [
                        "type",
                        "url",
                        "githubAppID",
                        "githubAppInstallationID",
                        "githubAppPrivateKey",
                        "githubAppEnterpriseBaseUrl"
                    ]
                );
                assert_eq!(
                    secret["metadata"]["labels"]["argocd.argoproj.io/secret-type"],
                    "repository"
                );
                "githubAppPrivateKey"
            }
            // git-sync main.go: --github-app-private-key-file ($GITSYNC_GITHUB_APP_PRIVATE_KEY_FILE),
            // --github-app-application-id, --github-app-installation-id.
            "git-sync" => {
                assert_eq!(keys, ["github-app-private-key"]);
                let c = &docs[1]["spec"]["template"]["spec"]["containers"][0];
                let env: std::collections::BTreeMap<String, String> = c["env"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| {
                        (
                            e["name"].as_str().unwrap().to_string(),
                            e["value"].as_str().unwrap().to_string(),
                        )
                    })
                    .collect();
                assert_eq!(env["GITSYNC_GITHUB_APP_APPLICATION_ID"], "1");
                assert_eq!(env["GITSYNC_GITHUB_APP_INSTALLATION_ID"], "77");
                let mount = c["volumeMounts"][0]["mountPath"].as_str().unwrap();
                assert_eq!(
                    env["GITSYNC_GITHUB_APP_PRIVATE_KEY_FILE"],
                    format!("{mount}/github-app-private-key")
                );
                assert!(env["GITSYNC_REPO"].starts_with("https://"));
                assert_eq!(env["GITSYNC_GITHUB_BASE_URL"], format!("{}/", a.fake.url()));
                "github-app-private-key"
            }
            other => unreachable!("{other}"),
        };
        assert_eq!(
            text(&b64d(&data[pem_field])),
            pkcs1(&a.key),
            "{consumer}: the key as GitHub hands it out (PKCS#1)"
        );
        if let Some(user) = docs.get(1) {
            assert!(
                !user.to_string().contains("-----BEGIN"),
                "{consumer}: no key outside the Secret"
            );
        }
        for (k, v) in data {
            if k.starts_with("githubAppI") {
                let v = text(&b64d(v));
                assert!(v == "1" || v == "77", "{k}={v}");
            }
        }
    }
}

#[test]
fn app_key_from_stdin_as_pkcs8_is_sealed_and_opens_to_the_pkcs1_key() {
    let a = app();
    let (identity, recipient) = age_keypair(a.dir.path());
    let pkcs8 = a.key.to_pkcs8_pem(Default::default()).unwrap();
    // Two objects (Secret, GitRepository): a directory, one file each (sops opens one per file).
    let out_file = a.dir.path().join("flux");
    let mut c = sealkey();
    c.args([
        "app",
        "create",
        "--repo",
        "acme/dags",
        "--app-id",
        "1",
        "--app-key",
        "-",
        "--for",
        "flux",
        "--api-url",
        &a.fake.url(),
        "--seal",
        "sops",
        "--seal-to",
        &recipient,
        "--out",
        out_file.to_str().unwrap(),
    ]);
    let out = run_cmd(c, Some(pkcs8.as_str()));
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_no_secret(&a, &stderr, "stderr");
    let sealed: String = support::layout_files(&out_file)
        .iter()
        .map(|f| std::fs::read_to_string(f).unwrap())
        .collect();
    assert_no_secret(&a, &sealed, "the sealed files");
    let docs = npm_sops_decode(&out_file, &identity).unwrap();
    assert_eq!(
        text(&b64d(&docs[0]["data"]["githubAppPrivateKey"])),
        pkcs1(&a.key)
    );
}

#[test]
fn app_refusals_exit_3_name_the_cause_and_write_nothing() {
    let a = app();
    let out_file = a.dir.path().join("out.yaml");
    let attempt = |a: &App, app_id: &str| {
        let c = create_as(
            a,
            app_id,
            "flux",
            &[
                "--seal",
                "age",
                "--seal-to",
                AGE_RECIPIENT,
                "--out",
                out_file.to_str().unwrap(),
            ],
        );
        let out = run_cmd(c, None);
        let stderr = text(&out.stderr);
        assert_no_secret(a, &stderr, "stderr");
        assert!(!out_file.exists(), "nothing written: {stderr}");
        (out.status.code(), stderr)
    };
    // A key of another App: 401 at GET /app.
    let other = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let saved = a.fake.state().app_public_pem.clone();
    a.fake.state().app_public_pem = Some(
        other
            .to_public_key()
            .to_pkcs1_pem(Default::default())
            .unwrap(),
    );
    let (code, stderr) = attempt(&a, "1");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("401") && stderr.contains("--app-key"),
        "{stderr}"
    );
    a.fake.state().app_public_pem = saved;
    // The key is App 1's, the id says 2.
    let (code, stderr) = attempt(&a, "2");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("--app-id 1"), "{stderr}");
    // Not installed on the repository: 404 at the lookup.
    a.fake.state().app_not_on = vec!["acme/dags".into()];
    let (code, stderr) = attempt(&a, "1");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("not installed on acme/dags"), "{stderr}");
    assert!(stderr.contains("Configure"), "{stderr}");
    a.fake.state().app_not_on.clear();
    // Installed, but without the Contents permission.
    a.fake.state().app_permissions = Some(serde_json::json!({"administration": "write"}));
    let (code, stderr) = attempt(&a, "1");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("Contents"), "{stderr}");
    // Contents listed but the token request refused (a permission not accepted yet).
    a.fake.state().app_permissions =
        Some(serde_json::json!({"administration": "write", "contents": "none"}));
    let (code, stderr) = attempt(&a, "1");
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("Contents"), "{stderr}");
    a.fake.state().app_permissions = None;
    // An installation id that is not the App's.
    let mut c = create(&a, "flux", &["--seal", "none", "--installation-id", "5"]);
    c.stdout(std::process::Stdio::piped());
    let out = run_cmd(c, None);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("--installation-id"));
    assert!(out.stdout.is_empty());
}

#[test]
fn app_keys_that_are_short_foreign_or_open_to_others_exit_2_before_github_is_asked() {
    let a = app();
    let short = a.dir.path().join("short.TEST-ONLY.pem");
    let k1024 = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 1024).unwrap();
    write_private(&short, pkcs1(&k1024).as_bytes());
    // An ed25519 key made at test time by ssh-keygen: a private key, but not RSA.
    let (ed, _) = support::ssh_keypair(a.dir.path(), "ed25519", "ed.TEST-ONLY");
    let open = a.dir.path().join("open.TEST-ONLY.pem");
    std::fs::write(&open, pkcs1(&a.key)).unwrap();
    std::fs::set_permissions(&open, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    for (path, needle) in [
        (&short, "1024 bits"),
        (&ed, "not an RSA private key"),
        (&open, "open.TEST-ONLY.pem"),
    ] {
        let mut c = sealkey();
        c.args([
            "app",
            "create",
            "--repo",
            "acme/dags",
            "--app-id",
            "1",
            "--app-key",
            path.to_str().unwrap(),
            "--for",
            "flux",
            "--seal",
            "none",
            "--api-url",
            &a.fake.url(),
        ]);
        let out = run_cmd(c, None);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("--app-key"), "{stderr}");
        assert!(stderr.contains(needle), "{needle}: {stderr}");
    }
    assert!(a.fake.log().is_empty(), "GitHub was not asked");
}

#[test]
#[ignore = "needs .venv-airflow (scripts/install-test-deps): PyJWT and cryptography"]
fn the_app_jwt_passes_pyjwt_with_githubs_rules() {
    let a = app();
    let out = run_cmd(create(&a, "flux", &["--seal", "none"]), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let auth = a.fake.log()[0].header("authorization").unwrap().to_string();
    let jwt = auth.strip_prefix("Bearer ").unwrap();
    let public = a
        .key
        .to_public_key()
        .to_pkcs1_pem(Default::default())
        .unwrap();
    let script = r#"
import json, sys, time, jwt
from cryptography.hazmat.primitives.serialization import load_pem_public_key
token, public = sys.stdin.read().split("\n", 1)
key = load_pem_public_key(public.encode())
claims = jwt.decode(token, key, algorithms=["RS256"], options={"require": ["iat", "exp", "iss"]})
header = jwt.get_unverified_header(token)
now = int(time.time())
print(json.dumps({"claims": claims, "alg": header["alg"], "now": now}))
"#;
    let mut c = std::process::Command::new(airflow_python());
    c.args(["-c", script]);
    let out = run_cmd(c, Some(&format!("{jwt}\n{public}")));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["alg"], "RS256");
    assert_eq!(v["claims"]["iss"], 1, "iss is the App id");
    let (iat, exp, now) = (
        v["claims"]["iat"].as_i64().unwrap(),
        v["claims"]["exp"].as_i64().unwrap(),
        v["now"].as_i64().unwrap(),
    );
    assert!(
        iat <= now - 30,
        "iat in the past for clock drift: {iat} vs {now}"
    );
    assert!(exp - iat <= 600, "GitHub allows at most 10 minutes");
    // A JWT signed by another key fails the same verifier.
    let other = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let other_public = other
        .to_public_key()
        .to_pkcs1_pem(Default::default())
        .unwrap();
    let mut c = std::process::Command::new(airflow_python());
    c.args(["-c", script]);
    let out = run_cmd(c, Some(&format!("{jwt}\n{other_public}")));
    assert_ne!(out.status.code(), Some(0));
}

#[test]
#[ignore = "needs .venv-airflow (scripts/install-test-deps): apache-airflow-providers-git"]
fn airflows_git_hook_reads_the_emitted_app_connection() {
    let a = app();
    // Airflow's provider asks only api.github.com for tokens, so sealkey refuses any other API
    // for this consumer (the fake included): the documents come from the library instead.
    let out = run_cmd(create(&a, "airflow-git-bundle", &["--seal", "none"]), None);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("api.github.com"));
    let key = sealkey::github::app_credential::AppKey::from_pem(pkcs1(&a.key).as_bytes(), "test")
        .unwrap();
    let settings = sealkey::emit::github_app::AppEmitSettings {
        repo: sealkey::repo::RepoRef::parse("acme/dags").unwrap(),
        consumer: sealkey::emit::github_app::AppConsumer::AirflowGitBundle,
        namespace: "airflow".into(),
        secret_name: None,
        app_id: "1".into(),
        numeric_app_id: 1,
        installation_id: 77,
        api_url: sealkey::github::ApiUrl::github_com(),
        branch: "main".into(),
        workload: "git-sync".into(),
        container: "git-sync".into(),
        conn_id: "git_default".into(),
        release_name: "airflow".into(),
        created: jiff::Timestamp::now(),
    };
    let stream = sealkey::emit::github_app::app_objects(&settings, &key).unwrap();
    let docs = stream.expose_docs().to_vec();
    // The test stands in for the volume mount: the Secret's file goes to a temp dir.
    let secret_dir = a.dir.path().join("git-secret");
    std::fs::create_dir(&secret_dir).unwrap();
    write_private(
        &secret_dir.join("github-app-private-key"),
        &b64d(&docs[0]["data"]["github-app-private-key"]),
    );
    let home = a.dir.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let script = r#"
import json
from airflow.providers.git.hooks.git import GitHook
h = GitHook(git_conn_id="git_default")
print(json.dumps({"app": h.uses_github_app_auth, "url": h.repo_url,
                  "id": h.github_app_id, "inst": h.github_installation_id,
                  "pem": h.private_key.splitlines()[0].endswith("RSA PRIVATE KEY-----")}))
"#;
    let mut c = std::process::Command::new(airflow_python());
    c.args(["-c", script])
        .env("AIRFLOW_HOME", &home)
        .env("HOME", &home)
        .env("AIRFLOW__CORE__LOAD_EXAMPLES", "False");
    for (k, v) in docs[1]["data"].as_object().unwrap() {
        c.env(
            k,
            v.as_str()
                .unwrap()
                .replace("/opt/airflow/git-secret", secret_dir.to_str().unwrap()),
        );
    }
    let out = run_cmd(c, None);
    let stdout = text(&out.stdout);
    let line = stdout
        .lines()
        .rev()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("{stdout}\n{}", text(&out.stderr)));
    let v: Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["app"], true, "{v}");
    assert_eq!(v["url"], "https://github.com/acme/dags.git");
    assert_eq!(v["id"], "1");
    assert_eq!(v["inst"], "77");
    assert_eq!(v["pem"], true, "the hook read the key from key_file");
}

#[test]
fn app_create_store_keeps_the_key_in_secrets_manager_and_emits_only_an_external_secret() {
    let a = app();
    let moto = support::moto::Moto::start();
    let out = support::moto::sealkey_env(
        a.dir.path(),
        &[
            "app",
            "create",
            "--repo",
            "acme/dags",
            "--app-id",
            "1",
            "--app-key",
            a.pem.to_str().unwrap(),
            "--for",
            "flux",
            "--api-url",
            &a.fake.url(),
            "--store",
            "aws-secrets-manager:flux/github-app",
        ],
        &moto.env(),
        &["KUBECONFIG", "GITHUB_TOKEN", "GH_TOKEN"],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_no_secret(&a, &stderr, "stderr");
    let stdout = text(&out.stdout);
    assert_no_secret(&a, &stdout, "the ExternalSecret output");
    let docs = yaml_docs(&out.stdout);
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert!(
        kinds.contains(&"ExternalSecret") && kinds.contains(&"GitRepository"),
        "{kinds:?}"
    );
    assert!(!kinds.contains(&"Secret"), "{kinds:?}");
    let back = moto.boto(
        r#"
sm = c('secretsmanager')
v = json.loads(sm.get_secret_value(SecretId='flux/github-app')['SecretString'])
d = sm.describe_secret(SecretId='flux/github-app')
print(json.dumps({'fields': v, 'tags': {t['Key']: t['Value'] for t in d.get('Tags', [])}}))
"#,
    );
    assert_eq!(back["fields"]["githubAppPrivateKey"], pkcs1(&a.key));
    assert_eq!(back["fields"]["githubAppInstallationID"], "77");
    assert_eq!(
        back["tags"]["sealkey:fingerprint"],
        openssl_fingerprint(&a.pem)
    );
}

#[test]
fn app_rotate_swaps_the_key_names_the_old_one_and_finishes_only_once_github_refuses_it() {
    let a = app();
    let (identity, recipient) = age_keypair(a.dir.path());
    let file = a.dir.path().join("flux-app");
    let sealed_args = [
        "--seal",
        "sops",
        "--seal-to",
        &recipient,
        "--out",
        file.to_str().unwrap(),
    ];
    let out = run_cmd(create(&a, "flux", &sealed_args), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let old_fp = openssl_fingerprint(&a.pem);

    // A second key, made in the settings page: both authenticate for now.
    let new_key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let new_pem = a.dir.path().join("app-new.TEST-ONLY.pem");
    write_private(&new_pem, pkcs1(&new_key).as_bytes());
    a.fake.state().app_more_public_pems = vec![new_key
        .to_public_key()
        .to_pkcs1_pem(Default::default())
        .unwrap()];
    let mut c = sealkey();
    c.args([
        "app",
        "rotate",
        "--repo",
        "acme/dags",
        "--app-id",
        "1",
        "--app-key",
        new_pem.to_str().unwrap(),
        "--for",
        "flux",
        "--api-url",
        &a.fake.url(),
    ])
    .args(sealed_args);
    let out = run_cmd(c, None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains(&openssl_fingerprint(&new_pem)), "{stderr}");
    assert!(
        stderr.contains(&format!("delete the old key {old_fp}")),
        "the old key is named by the fingerprint GitHub shows: {stderr}"
    );
    assert!(
        stderr.contains("https://127.0.0.1/organizations/acme/settings/apps/sealkey-test"),
        "{stderr}"
    );
    let docs = npm_sops_decode(&file, &identity).unwrap();
    assert_eq!(
        text(&b64d(&docs[0]["data"]["githubAppPrivateKey"])),
        pkcs1(&new_key),
        "the file now holds the new key"
    );

    // The old key still authenticates: not finished (exit 3), from a file and from stdin.
    let finish = |stdin: Option<&str>| {
        let mut c = sealkey();
        c.args([
            "app",
            "finish-rotation",
            "--app-id",
            "1",
            "--api-url",
            &a.fake.url(),
        ]);
        match stdin {
            Some(_) => c.args(["--old-key", "-"]),
            None => c.args(["--old-key", a.pem.to_str().unwrap()]),
        };
        let out = run_cmd(c, stdin);
        let stderr = text(&out.stderr);
        assert_no_secret(&a, &stderr, "stderr");
        (out.status.code(), stderr)
    };
    let (code, stderr) = finish(None);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(
        stderr.contains("still authenticates") && stderr.contains(&old_fp),
        "{stderr}"
    );
    // Deleted in the settings page: done.
    {
        let mut st = a.fake.state();
        st.app_public_pem = st.app_more_public_pems.pop();
    }
    let old_pem = pkcs1(&a.key);
    let (code, stderr) = finish(Some(&old_pem));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("rotation is complete"), "{stderr}");
}

#[test]
fn retire_deploy_keys_is_a_dry_run_by_default_and_deletes_only_sealkeys_keys_after_the_proof() {
    let a = app();
    let ours = a.fake.add_key(
        "acme/dags",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
        "sealkey prod-eu/airflow/airflow-ssh-secret 2026-11-26",
        true,
        "2026-11-26T12:00:00Z",
        Some("2026-12-01T00:00:00Z"),
    );
    a.fake.add_key(
        "acme/dags",
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB1111111111111111111111111111111111111111111",
        "ci deploy key",
        true,
        "2026-01-01T00:00:00Z",
        None,
    );
    let retire = |extra: &[&str]| {
        let mut c = sealkey();
        c.env("GITHUB_TOKEN", TOKEN)
            .args([
                "app",
                "retire-deploy-keys",
                "--repo",
                "acme/dags",
                "--app-id",
                "1",
                "--app-key",
                a.pem.to_str().unwrap(),
                "--api-url",
                &a.fake.url(),
            ])
            .args(extra);
        let out = run_cmd(c, None);
        let stderr = text(&out.stderr);
        assert_no_secret(&a, &stderr, "stderr");
        assert!(!stderr.contains(TOKEN));
        (out.status.code(), text(&out.stdout), stderr)
    };
    let (code, stdout, stderr) = retire(&[]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stdout.starts_with(&format!("{ours}\t")), "{stdout}");
    assert_eq!(stdout.lines().count(), 1, "only sealkey's key: {stdout}");
    assert!(stderr.contains("dry run"), "{stderr}");
    assert_eq!(a.fake.keys("acme/dags").len(), 2, "nothing deleted");
    // The App not on the repository: refused before any key is touched.
    a.fake.state().app_not_on = vec!["acme/dags".into()];
    let (code, _, stderr) = retire(&["--delete"]);
    assert_eq!(code, Some(3), "{stderr}");
    assert_eq!(a.fake.keys("acme/dags").len(), 2, "nothing deleted");
    a.fake.state().app_not_on.clear();
    let (code, _, stderr) = retire(&["--delete"]);
    assert_eq!(code, Some(0), "{stderr}");
    let left = a.fake.keys("acme/dags");
    assert_eq!(left.len(), 1, "{left:?}");
    assert_eq!(left[0]["title"], "ci deploy key");
}

/// Runs Flux's own GitHub App client on a Secret's `data`.
fn flux_probe(data: &Value) -> Value {
    let bin = root().join(".judges/bin/flux-githubapp");
    assert!(
        bin.exists(),
        "{} is missing: run scripts/install-test-deps",
        bin.display()
    );
    let mut c = std::process::Command::new(bin);
    c.env_remove("HTTPS_PROXY").env_remove("HTTP_PROXY");
    let out = run_cmd(c, Some(&data.to_string()));
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}\n{}", text(&out.stdout), text(&out.stderr)))
}

#[test]
#[ignore = "needs the judges (scripts/install-test-deps)"]
fn fluxs_own_github_app_client_trades_the_emitted_secret_for_an_installation_token() {
    // GitHub Enterprise Server shape: Flux puts /api/v3 on any API host but api.github.com.
    let fake = FakeGithub::start_with_prefix("/api/v3");
    let key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    fake.state().app_public_pem = Some(
        key.to_public_key()
            .to_pkcs1_pem(Default::default())
            .unwrap(),
    );
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("app.TEST-ONLY.pem");
    write_private(&pem, pkcs1(&key).as_bytes());
    let mut c = sealkey();
    c.args([
        "app",
        "create",
        "--repo",
        "acme/dags",
        "--app-id",
        "1",
        "--app-key",
        pem.to_str().unwrap(),
        "--for",
        "flux",
        "--seal",
        "none",
        "--api-url",
        &fake.url(),
    ]);
    let out = run_cmd(c, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let docs = yaml_docs(&out.stdout);
    let data = docs[0]["data"].clone();
    fake.state().log.clear();
    let got = flux_probe(&data);
    let token = fake.state().installation_token.clone();
    assert_eq!(got["username"], "x-access-token", "{got}");
    assert_eq!(got["password"], token.as_str(), "{got}");
    let calls = calls(&fake);
    assert_eq!(
        calls,
        ["POST /api/v3/app/installations/77/access_tokens"],
        "Flux's client signed a JWT the fake accepted"
    );
    // A Secret without the installation id is refused by Flux before any request.
    fake.state().log.clear();
    let got = flux_probe(&serde_json::json!({
        "githubAppID": data["githubAppID"],
        "githubAppPrivateKey": data["githubAppPrivateKey"],
        "githubAppBaseURL": data["githubAppBaseURL"],
    }));
    assert!(
        got["error"]
            .as_str()
            .is_some_and(|e| e.contains("installation")),
        "{got}"
    );
    assert!(fake.log().is_empty());
}

#[test]
#[ignore = "needs the judges (scripts/install-test-deps)"]
fn git_sync_itself_clones_with_the_emitted_app_secret_and_patch() {
    let bin = root().join(".judges/bin/git-sync");
    if !bin.exists() {
        // The git-sync judge is built by another line of tests/judges/versions; without it
        // there is nothing to run.
        eprintln!("{} is missing: skipped", bin.display());
        return;
    }
    let a = app();
    let out = run_cmd(create(&a, "git-sync", &["--seal", "none"]), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let docs = yaml_docs(&out.stdout);
    let token = a.fake.state().installation_token.clone();
    let server = support::git_http::GitHttp::start(a.dir.path(), &token);
    // The test stands in for the volume mount and for the repository's host.
    let key_dir = a.dir.path().join("github-app");
    std::fs::create_dir(&key_dir).unwrap();
    write_private(
        &key_dir.join("github-app-private-key"),
        &b64d(&docs[0]["data"]["github-app-private-key"]),
    );
    let container = &docs[1]["spec"]["template"]["spec"]["containers"][0];
    let mount = container["volumeMounts"][0]["mountPath"].as_str().unwrap();
    let home = a.dir.path().join("home");
    let sync_root = a.dir.path().join("root");
    std::fs::create_dir_all(&home).unwrap();
    let mut c = std::process::Command::new(&bin);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("HOME", &home)
        .env("GITSYNC_ROOT", &sync_root)
        .env("GITSYNC_ONE_TIME", "true");
    for e in container["env"].as_array().unwrap() {
        let (name, value) = (e["name"].as_str().unwrap(), e["value"].as_str().unwrap());
        let value = match name {
            "GITSYNC_REPO" => server.url(),
            _ => value.replace(mount, key_dir.to_str().unwrap()),
        };
        c.env(name, value);
    }
    let out = run_cmd(c, None);
    assert_eq!(
        out.status.code(),
        Some(0),
        "git-sync failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        sync_root.join("dags.git").join("dag.py").exists()
            || std::fs::read_dir(&sync_root)
                .unwrap()
                .flatten()
                .any(|d| d.path().join("dag.py").exists()),
        "no dag.py under {}",
        sync_root.display()
    );
    let (users, refused) = server.seen.lock().unwrap().clone();
    assert!(!users.is_empty(), "git-sync fetched with the token");
    eprintln!("git-sync: user names {users:?}, {refused} unauthenticated requests refused");
    // git-sync asked the fake for the token itself, with its own JWT.
    assert!(calls(&a.fake)
        .iter()
        .any(|c| c == "POST /app/installations/77/access_tokens"));
}

#[test]
#[ignore = "needs the judges (scripts/install-test-deps)"]
fn app_create_apply_writes_the_secret_prints_only_the_rest_and_rotate_apply_swaps_it() {
    let a = app();
    let k = support::real_cluster::RealCluster::shared();
    // `app create --for flux` writes into flux-system, Flux's namespace: the only test of this
    // binary that uses it.
    let ns = "flux-system".to_string();
    k.kubectl_ok(&["create", "namespace", &ns]);
    let kc = k.kubeconfig_in(&ns);
    let apply = ["--apply", "--kubeconfig", kc.to_str().unwrap()];
    let out = run_cmd(create(&a, "flux", &apply), None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_no_secret(&a, &stderr, "stderr");
    assert_no_secret(&a, &text(&out.stdout), "stdout");
    let docs = yaml_docs(&out.stdout);
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0]["kind"], "GitRepository");
    let secret = k.secret(&ns, "github-app-dags").expect("Secret applied");
    assert_eq!(
        text(&b64d(&secret["data"]["githubAppPrivateKey"])),
        pkcs1(&a.key)
    );

    let new_key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let new_pem = a.dir.path().join("app-new.TEST-ONLY.pem");
    write_private(&new_pem, pkcs1(&new_key).as_bytes());
    a.fake.state().app_more_public_pems = vec![new_key
        .to_public_key()
        .to_pkcs1_pem(Default::default())
        .unwrap()];
    let old_fp = openssl_fingerprint(&a.pem);
    let mut c = sealkey();
    c.args([
        "app",
        "rotate",
        "--repo",
        "acme/dags",
        "--app-id",
        "1",
        "--app-key",
        new_pem.to_str().unwrap(),
        "--for",
        "flux",
        "--api-url",
        &a.fake.url(),
        "--old-fingerprint",
        &old_fp,
    ])
    .args(apply);
    let out = run_cmd(c, None);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("delete the old key {old_fp}")),
        "{stderr}"
    );
    let secret = k.secret(&ns, "github-app-dags").unwrap();
    assert_eq!(
        text(&b64d(&secret["data"]["githubAppPrivateKey"])),
        pkcs1(&new_key),
        "swapped in place"
    );
}

/// A running git-sync, killed on drop.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// git-sync's counters from its /metrics: (syncs ok or with nothing new, syncs failed, token
/// refreshes failed).
fn git_sync_counts(port: u16) -> (u64, u64, u64) {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return (0, 0, 0);
    };
    let _ = s.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    let _ = s.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
    let mut body = String::new();
    let _ = s.read_to_string(&mut body);
    let value = |prefix: &str| -> u64 {
        body.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    };
    (
        value("git_sync_count_total{status=\"success\"}")
            + value("git_sync_count_total{status=\"noop\"}"),
        value("git_sync_count_total{status=\"error\"}"),
        value("git_sync_refresh_github_app_token_count{status=\"error\"}"),
    )
}

#[test]
#[ignore = "needs the judges (scripts/install-test-deps)"]
fn git_sync_keeps_syncing_through_an_app_key_rotation() {
    let bin = root().join(".judges/bin/git-sync");
    if !bin.exists() {
        eprintln!("{} is missing: skipped", bin.display());
        return;
    }
    let a = app();
    // Tokens said to last 1 s: git-sync buys a new one, with a new JWT, on every sync.
    a.fake.state().token_lifetime_secs = Some(1);
    let out = run_cmd(create(&a, "git-sync", &["--seal", "none"]), None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let docs = yaml_docs(&out.stdout);
    let token = a.fake.state().installation_token.clone();
    let server = support::git_http::GitHttp::start(a.dir.path(), &token);
    let key_dir = a.dir.path().join("github-app");
    std::fs::create_dir(&key_dir).unwrap();
    let key_file = key_dir.join("github-app-private-key");
    // As the kubelet updates a Secret volume: the new content appears at once (a rename).
    let put_key = |secret: &Value| {
        let tmp = key_dir.join(".tmp");
        write_private(&tmp, &b64d(&secret["data"]["github-app-private-key"]));
        std::fs::rename(&tmp, &key_file).unwrap();
    };
    put_key(&docs[0]);
    let container = &docs[1]["spec"]["template"]["spec"]["containers"][0];
    let mount = container["volumeMounts"][0]["mountPath"].as_str().unwrap();
    let metrics = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let home = a.dir.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let mut c = std::process::Command::new(&bin);
    c.env_clear()
        .env("PATH", std::env::var("PATH").unwrap())
        .env("HOME", &home)
        .env("GITSYNC_ROOT", a.dir.path().join("root"))
        .env("GITSYNC_PERIOD", "300ms")
        .env("GITSYNC_HTTP_BIND", format!("127.0.0.1:{metrics}"))
        .env("GITSYNC_HTTP_METRICS", "true")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for e in container["env"].as_array().unwrap() {
        let (name, value) = (e["name"].as_str().unwrap(), e["value"].as_str().unwrap());
        let value = match name {
            "GITSYNC_REPO" => server.url(),
            _ => value.replace(mount, key_dir.to_str().unwrap()),
        };
        c.env(name, value);
    }
    let _git_sync = Running(c.spawn().unwrap());
    let wait_for_syncs = |more: u64| {
        let start = git_sync_counts(metrics).0;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let (ok, failed, refresh_failed) = git_sync_counts(metrics);
            assert_eq!((failed, refresh_failed), (0, 0), "a sync failed");
            if ok >= start + more {
                return ok;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "git-sync stalled at {ok} syncs"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    wait_for_syncs(3);

    // 1. A second key in the settings page; 2. sealkey rotates the consumer's Secret.
    let new_key = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let new_pem = a.dir.path().join("app-new.TEST-ONLY.pem");
    write_private(&new_pem, pkcs1(&new_key).as_bytes());
    a.fake.state().app_more_public_pems = vec![new_key
        .to_public_key()
        .to_pkcs1_pem(Default::default())
        .unwrap()];
    let mut c = sealkey();
    c.args([
        "app",
        "rotate",
        "--repo",
        "acme/dags",
        "--app-id",
        "1",
        "--app-key",
        new_pem.to_str().unwrap(),
        "--for",
        "git-sync",
        "--seal",
        "none",
        "--api-url",
        &a.fake.url(),
    ]);
    let out = run_cmd(c, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // 3. The consumer reads the new key.
    put_key(&yaml_docs(&out.stdout)[0]);
    wait_for_syncs(3);
    // 4. The old key is deleted in the settings page: syncs go on with the new one.
    {
        let mut st = a.fake.state();
        st.app_public_pem = st.app_more_public_pems.pop();
        st.log.clear();
    }
    let ok = wait_for_syncs(5);
    assert!(
        calls(&a.fake)
            .iter()
            .filter(|c| c.ends_with("/access_tokens"))
            .count()
            >= 3,
        "git-sync bought tokens with the new key after the old one was deleted"
    );
    // 5. The finishing step: GitHub refuses the old key.
    let mut c = sealkey();
    c.args([
        "app",
        "finish-rotation",
        "--app-id",
        "1",
        "--old-key",
        a.pem.to_str().unwrap(),
        "--api-url",
        &a.fake.url(),
    ]);
    let out = run_cmd(c, None);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let (_, failed, refresh_failed) = git_sync_counts(metrics);
    assert_eq!((failed, refresh_failed), (0, 0));
    eprintln!("git-sync: {ok} syncs through the rotation, 0 failed");
}
