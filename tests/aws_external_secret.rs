//! The ExternalSecret (and SecretStore/ClusterSecretStore) that `create --store` emits, judged
//! by ESO's published v1 CRD schemas (vendored in tests/fixtures/eso, checked field by field by
//! tests/support/eso_validate.py with PyPI jsonschema) and applied with the real kubectl to the
//! Kubernetes stand-in (kmock); its template renders the Secret sealkey emits without --store.

mod support;

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use support::moto::{sealkey_env, Moto};

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn yaml(bytes: &[u8]) -> Vec<Value> {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(std::str::from_utf8(bytes).unwrap()).unwrap();
    docs.into_iter().filter(|d| !d.is_null()).collect()
}

fn validate(file: &Path) -> Result<String, String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(support::moto::python())
        .arg(root.join("tests/support/eso_validate.py"))
        .arg(root.join("tests/fixtures/eso"))
        .arg(file)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(text)
    } else {
        Err(format!("{text}{}", stderr(&out)))
    }
}

#[test]
fn every_consumers_external_secret_and_store_match_esos_v1_schemas_field_by_field() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    for (i, (consumer, store_flag)) in [
        ("airflow-chart", None),
        ("git-sync", Some("--cluster-secret-store")),
        ("flux", None),
        ("argocd", Some("--cluster-secret-store")),
        ("generic", None),
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("aws-secrets-manager:test/{consumer}");
        let mut args = vec![
            "create",
            "--repo",
            "acme/dags",
            "-n",
            "dev",
            "--for",
            consumer,
            "--store",
            &name,
            "--store-service-account",
            "eso-reader",
        ];
        args.extend(store_flag);
        let out = sealkey_env(dir.path(), &args, &moto.env(), &["KUBECONFIG"]);
        assert!(out.status.success(), "{consumer}: {}", stderr(&out));
        let file = dir.path().join(format!("es-{i}.yaml"));
        std::fs::write(&file, &out.stdout).unwrap();
        let checked = validate(&file).unwrap_or_else(|e| panic!("{consumer}: {e}"));
        assert!(
            checked.contains("ExternalSecret") && checked.contains("SecretStore"),
            "{checked}"
        );
        // A misspelled field is caught: the check can fail.
        let typo = String::from_utf8(out.stdout.clone())
            .unwrap()
            .replace("secretStoreRef", "secretStorRef");
        std::fs::write(&file, typo).unwrap();
        assert!(validate(&file).is_err(), "{consumer}: a typo passed");
    }
}

#[test]
fn the_template_renders_the_secret_sealkey_emits_without_store_from_the_stored_fields() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    for consumer in ["airflow-chart", "git-sync", "flux", "argocd"] {
        let name = format!("test/{consumer}");
        let store = format!("aws-secrets-manager:{name}");
        let out = sealkey_env(
            dir.path(),
            &[
                "create",
                "--repo",
                "acme/dags",
                "-n",
                "dev",
                "--for",
                consumer,
                "--store",
                &store,
            ],
            &moto.env(),
            &["KUBECONFIG"],
        );
        assert!(out.status.success(), "{}", stderr(&out));
        let es = yaml(&out.stdout)
            .into_iter()
            .find(|d| d["kind"] == "ExternalSecret")
            .unwrap();
        let plain = sealkey_env(
            dir.path(),
            &[
                "create",
                "--repo",
                "acme/dags",
                "-n",
                "dev",
                "--for",
                consumer,
                "--seal",
                "none",
            ],
            &moto.env(),
            &["KUBECONFIG"],
        );
        assert!(plain.status.success(), "{}", stderr(&plain));
        let secret = yaml(&plain.stdout)
            .into_iter()
            .find(|d| d["kind"] == "Secret")
            .unwrap();
        let stored = moto.boto(&format!(
            "print(c('secretsmanager').get_secret_value(SecretId='{name}')['SecretString'])"
        ));
        // Render ESO's template the way its v2 engine does for `{{ index . "KEY" }}`.
        let t = &es["spec"]["target"]["template"];
        let mut rendered = serde_json::Map::new();
        for (k, tpl) in t["data"].as_object().unwrap() {
            let key = tpl
                .as_str()
                .unwrap()
                .trim_start_matches("{{ index . \"")
                .trim_end_matches("\" }}");
            let remote = es["spec"]["data"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["secretKey"] == key)
                .unwrap();
            rendered.insert(
                k.clone(),
                stored[remote["remoteRef"]["property"].as_str().unwrap()].clone(),
            );
        }
        let mut plain_keys: Vec<&String> = secret["data"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, _)| k)
            .chain(
                secret["stringData"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k),
            )
            .collect();
        plain_keys.sort();
        let mut rendered_keys: Vec<&String> = rendered.keys().collect();
        rendered_keys.sort();
        assert_eq!(rendered_keys, plain_keys, "{consumer}: same keys");
        assert_eq!(
            t["type"],
            secret["type"]
                .as_str()
                .map_or(Value::from("Opaque"), Value::from),
            "{consumer}: type"
        );
        assert_eq!(
            t["metadata"]["labels"], secret["metadata"]["labels"],
            "{consumer}: labels"
        );
        assert_eq!(
            es["spec"]["target"]["name"], secret["metadata"]["name"],
            "{consumer}: name"
        );
        let mut a = t["metadata"]["annotations"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>();
        let mut b = secret["metadata"]["annotations"]
            .as_object()
            .unwrap()
            .keys()
            .collect::<Vec<_>>();
        a.sort();
        b.sort();
        assert_eq!(a, b, "{consumer}: annotations");
        // Values that are not the key (known_hosts, url, type) are the same as without --store.
        use base64::Engine as _;
        for (k, v) in secret["data"].as_object().into_iter().flatten() {
            let clear = String::from_utf8(
                base64::engine::general_purpose::STANDARD
                    .decode(v.as_str().unwrap())
                    .unwrap(),
            )
            .unwrap();
            if clear.contains("PRIVATE KEY") {
                assert!(rendered[k].as_str().unwrap().contains("PRIVATE KEY"));
            } else if clear.starts_with("ssh-ed25519 ") {
                // Flux's identity.pub: the other run's key, same shape.
                assert!(
                    rendered[k].as_str().unwrap().starts_with("ssh-ed25519 "),
                    "{consumer}: {k}"
                );
            } else {
                assert_eq!(rendered[k], clear.as_str(), "{consumer}: {k}");
            }
        }
    }
}

/// kmock behind tests/support/kube_standin.py --mode kubectl --eso, on 127.0.0.1; killed on drop.
struct Kmock(std::process::Child, u16);

impl Drop for Kmock {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn kmock_for_kubectl(dir: &Path) -> Kmock {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let portfile = dir.join("port");
    let mut k = Kmock(
        Command::new(support::moto::python())
            .arg(root.join("tests/support/kube_standin.py"))
            .arg(&portfile)
            .args(["--mode", "kubectl", "--eso", "--lifetime", "120"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start kmock"),
        0,
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        if let Some(p) = std::fs::read_to_string(&portfile)
            .ok()
            .and_then(|t| t.trim().parse().ok())
        {
            k.1 = p;
            return k;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "kmock did not start within 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

#[test]
fn kubectl_applies_the_external_secret_and_store_to_the_stand_in_and_reads_them_back() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let out = sealkey_env(
        dir.path(),
        &[
            "create",
            "--repo",
            "acme/dags",
            "-n",
            "dev",
            "--for",
            "git-sync",
            "--store",
            "aws-secrets-manager:dev/git-sync",
            "--store-service-account",
            "eso-reader",
        ],
        &moto.env(),
        &["KUBECONFIG"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let file = dir.path().join("es.yaml");
    std::fs::write(&file, &out.stdout).unwrap();
    let k = kmock_for_kubectl(dir.path());
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: kmock\n  cluster:\n    server: http://127.0.0.1:{}\n\
             users:\n- name: tester\n  user:\n    token: test-token-not-secret\n\
             contexts:\n- name: kmock\n  context:\n    cluster: kmock\n    user: tester\n\
             current-context: kmock\n",
            k.1
        ),
    )
    .unwrap();
    let kubectl = |args: &[&str]| {
        Command::new("kubectl")
            .env("KUBECONFIG", &kubeconfig)
            .args(args)
            .output()
            .unwrap()
    };
    // kmock serves no OpenAPI schema: the schema check is the test above.
    let applied = kubectl(&["apply", "--validate=false", "-f", file.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&applied.stdout).into_owned();
    assert!(applied.status.success(), "{}{text}", stderr(&applied));
    assert_eq!(text.matches(" created").count(), 2, "{text}");
    let got = kubectl(&[
        "get",
        "externalsecret",
        "git-creds",
        "-n",
        "dev",
        "-o",
        "json",
    ]);
    assert!(got.status.success(), "{}", stderr(&got));
    let live: Value = serde_json::from_slice(&got.stdout).unwrap();
    let sent = yaml(&out.stdout)
        .into_iter()
        .find(|d| d["kind"] == "ExternalSecret")
        .unwrap();
    assert_eq!(live["spec"], sent["spec"]);
    let store = kubectl(&[
        "get",
        "secretstore",
        "sealkey-aws",
        "-n",
        "dev",
        "-o",
        "json",
    ]);
    let store: Value = serde_json::from_slice(&store.stdout).unwrap();
    assert_eq!(
        store["spec"]["provider"]["aws"]["auth"]["jwt"]["serviceAccountRef"]["name"],
        "eso-reader"
    );
}
