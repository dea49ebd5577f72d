//! deploy/aws (issue 15): the `rotate --store` CronJob with an IRSA-annotated ServiceAccount,
//! rendered by the real kubectl; its arguments parse; its Role names exactly the Secret (read-only)
//! and ExternalSecret (patch) it rotates; deploy/aws/iam-policy.json grants exactly the Secrets
//! Manager actions `rotate --store` calls (as src/store names them), on one secret, no wildcard
//! action, and KMS only through Secrets Manager. ESO's side (issue 21 item 13): the ServiceAccount,
//! permission and trust policies in deploy/aws/eso-* match the SecretStore `create --store` emits.

use clap::Parser as _;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn render() -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/aws");
    let out = Command::new("kubectl")
        .arg("kustomize")
        .arg(&dir)
        .output()
        .expect("kubectl");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sealkey::yaml::parse_stream(&String::from_utf8(out.stdout).unwrap(), "deploy/aws").unwrap()
}

fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind}"))
}

#[test]
fn the_store_rotation_cronjob_runs_as_an_irsa_service_account_with_args_sealkey_accepts() {
    let docs = render();
    let sa = find(&docs, "ServiceAccount");
    let _: k8s_openapi::api::core::v1::ServiceAccount = serde_json::from_value(sa.clone()).unwrap();
    assert!(sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws:iam::"));
    let cj = find(&docs, "CronJob");
    let typed: k8s_openapi::api::batch::v1::CronJob = serde_json::from_value(cj.clone()).unwrap();
    let pod = typed
        .spec
        .unwrap()
        .job_template
        .spec
        .unwrap()
        .template
        .spec
        .unwrap();
    assert_eq!(
        pod.service_account_name.as_deref(),
        sa["metadata"]["name"].as_str()
    );
    let c = &pod.containers[0];
    let cm = find(&docs, "ConfigMap");
    let args: Vec<String> = c
        .args
        .clone()
        .unwrap()
        .into_iter()
        .map(|mut a| {
            for (k, v) in cm["data"].as_object().unwrap() {
                a = a.replace(&format!("$({k})"), v.as_str().unwrap());
            }
            assert!(!a.contains("$("), "{a}");
            a
        })
        .collect();
    let argv = std::iter::once("sealkey".to_string()).chain(args.clone());
    if let Err(e) = sealkey::cli::Cli::try_parse_from(argv) {
        panic!("sealkey rejects {args:?}: {e}");
    }
    assert!(args
        .iter()
        .any(|a| a.starts_with("--store=aws-secrets-manager:")));
    // No AWS key in the pod: credentials come from the web identity token IRSA mounts.
    for e in c.env.iter().flatten() {
        assert!(
            !e.name.starts_with("AWS_ACCESS_KEY") && !e.name.starts_with("AWS_SECRET"),
            "{}",
            e.name
        );
    }
    let value = |flag: &str| {
        args.iter()
            .find_map(|a| a.strip_prefix(&format!("{flag}=")))
            .unwrap()
            .to_string()
    };
    // The Role: exactly this Secret, read-only; exactly this ExternalSecret, patch only.
    let role = find(&docs, "Role");
    assert_eq!(role["metadata"]["namespace"], value("--namespace").as_str());
    let rules = role["rules"].as_array().unwrap();
    let secret_rule = rules
        .iter()
        .find(|r| r["resources"] == serde_json::json!(["secrets"]))
        .unwrap();
    assert_eq!(
        secret_rule["resourceNames"],
        serde_json::json!([value("--secret-name")])
    );
    assert_eq!(secret_rule["verbs"], serde_json::json!(["get"]));
    let es_rule = rules
        .iter()
        .find(|r| r["resources"] == serde_json::json!(["externalsecrets"]))
        .unwrap();
    assert_eq!(
        es_rule["resourceNames"],
        serde_json::json!([value("--secret-name")])
    );
    assert_eq!(es_rule["verbs"], serde_json::json!(["patch"]));
    for r in rules {
        assert!(!r.to_string().contains("\"*\""), "wildcard in {r}");
    }
}

#[test]
fn the_iam_policy_grants_exactly_the_actions_rotate_store_calls_on_one_secret() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let policy: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("deploy/aws/iam-policy.json")).unwrap(),
    )
    .unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    let sm = statements
        .iter()
        .find(|s| s["Sid"] == "RotateTheDeployKeySecret")
        .unwrap();
    let mut granted: Vec<&str> = sm["Action"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    granted.sort();
    // What rotate --store calls: src/store/rotate.rs -> SecretsManagerStore::{check_writable
    // (DescribeSecret), put on an existing secret (PutSecretValue, TagResource), undo
    // (UpdateSecretVersionStage, TagResource)}. Each must be a call src/store/aws.rs makes.
    let calls = std::fs::read_to_string(root.join("src/store/aws.rs")).unwrap();
    let expected = [
        "secretsmanager:DescribeSecret",
        "secretsmanager:PutSecretValue",
        "secretsmanager:TagResource",
        "secretsmanager:UpdateSecretVersionStage",
    ];
    assert_eq!(granted, expected);
    for a in &granted {
        let action = a.strip_prefix("secretsmanager:").unwrap();
        assert!(
            calls.contains(&format!("sdk_error(SM, \"{action}\"")),
            "{action} is not a call sealkey makes"
        );
    }
    // Resource-scoped: one secret ARN (AWS appends 6 random characters), no wildcard action.
    let resource = sm["Resource"].as_str().unwrap();
    assert!(
        resource.starts_with("arn:aws:secretsmanager:") && resource.ends_with("-??????"),
        "{resource}"
    );
    for s in statements {
        assert!(
            !s["Action"].to_string().contains('*'),
            "wildcard action in {s}"
        );
        assert_ne!(s["Resource"], "*", "unscoped resource in {s}");
    }
    let kms = statements
        .iter()
        .find(|s| s["Action"].to_string().contains("kms:"))
        .unwrap();
    assert_eq!(kms["Action"], serde_json::json!(["kms:GenerateDataKey"]));
    assert!(kms["Condition"]["StringEquals"]["kms:ViaService"]
        .as_str()
        .unwrap()
        .starts_with("secretsmanager."));
}

/// The README's EKS `create --store` command, continuation lines joined, split into words.
fn readme_store_command() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let section = readme
        .split("## EKS: keep it out of git")
        .nth(1)
        .expect("README has the EKS section");
    let joined = section.replace("\\\n", " ");
    let line = joined
        .lines()
        .find(|l| l.starts_with("sealkey create") && l.contains("--store-service-account"))
        .expect("README's EKS section runs create --store --store-service-account");
    line.split_whitespace().map(str::to_string).collect()
}

fn flag<'a>(words: &'a [String], names: &[&str]) -> &'a str {
    let i = words
        .iter()
        .position(|w| names.contains(&w.as_str()))
        .unwrap_or_else(|| panic!("{names:?} in {words:?}"));
    &words[i + 1]
}

/// issue 21 item 13: the SecretStore sealkey emits for EKS authenticates as an IRSA
/// ServiceAccount that nothing provided, and ESO's role had no policy. Before: no
/// deploy/aws/eso-serviceaccount.yaml, eso-iam-policy.json or eso-iam-trust-policy.json.
#[test]
fn esos_service_account_and_iam_role_match_the_secret_store_sealkey_emits() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let words = readme_store_command();
    if let Err(e) = sealkey::cli::Cli::try_parse_from(&words) {
        panic!("sealkey rejects the README's {words:?}: {e}");
    }
    let namespace = flag(&words, &["-n", "--namespace"]);
    let sa_name = flag(&words, &["--store-service-account"]);
    let remote = flag(&words, &["--store"])
        .strip_prefix("aws-secrets-manager:")
        .unwrap();
    let settings = sealkey::emit::external_secrets::ExternalSecretSettings {
        remote_name: remote.into(),
        store_name: "sealkey-aws".into(),
        store_kind: sealkey::emit::external_secrets::StoreKind::SecretStore,
        refresh_interval: "1h".into(),
        region: "eu-west-1".into(),
        irsa_service_account: Some(sa_name.into()),
    };
    let store = sealkey::emit::external_secrets::secret_store(namespace, &settings).unwrap();

    // The ServiceAccount: the one the store names, in the store's namespace, with a role.
    let text = std::fs::read_to_string(root.join("deploy/aws/eso-serviceaccount.yaml")).unwrap();
    let docs = sealkey::yaml::parse_stream(&text, "eso-serviceaccount.yaml").unwrap();
    let sa = find(&docs, "ServiceAccount");
    let _: k8s_openapi::api::core::v1::ServiceAccount = serde_json::from_value(sa.clone()).unwrap();
    assert_eq!(
        sa["metadata"]["name"],
        store["spec"]["provider"]["aws"]["auth"]["jwt"]["serviceAccountRef"]["name"]
    );
    assert_eq!(sa["metadata"]["namespace"], store["metadata"]["namespace"]);
    let role_arn = sa["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
        .as_str()
        .unwrap();
    assert!(role_arn.starts_with("arn:aws:iam::"), "{role_arn}");

    // The role's permission policy: what ESO's AWS provider calls for sealkey's ExternalSecret
    // (remoteRef key + property, no version: GetSecretValue of AWSCURRENT; DescribeSecret for
    // the secret's metadata), on the one secret, nothing more: no ListSecrets (sealkey's
    // ExternalSecret has no dataFrom.find), no write (no PushSecret).
    let policy: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("deploy/aws/eso-iam-policy.json")).unwrap(),
    )
    .unwrap();
    let statements = policy["Statement"].as_array().unwrap();
    let sm = statements
        .iter()
        .find(|s| s["Action"].to_string().contains("secretsmanager:"))
        .unwrap();
    assert_eq!(
        sm["Action"],
        serde_json::json!([
            "secretsmanager:DescribeSecret",
            "secretsmanager:GetSecretValue"
        ])
    );
    let resource = sm["Resource"].as_str().unwrap();
    assert!(
        resource.starts_with("arn:aws:secretsmanager:")
            && resource.ends_with(&format!(":secret:{remote}-??????")),
        "{resource} is the one secret {remote}"
    );
    // The same secret the rotation CronJob rotates.
    let cj = find(&render(), "CronJob").to_string();
    assert!(
        cj.contains(&format!("--store=aws-secrets-manager:{remote}")),
        "{cj}"
    );
    for s in statements {
        assert_eq!(s["Effect"], "Allow");
        assert!(!s["Action"].to_string().contains('*'), "wildcard in {s}");
        assert_ne!(s["Resource"], "*", "unscoped resource in {s}");
    }
    let kms: Vec<&Value> = statements
        .iter()
        .filter(|s| s["Action"].to_string().contains("kms:"))
        .collect();
    assert_eq!(
        kms.len(),
        1,
        "one KMS statement, for a customer-managed key"
    );
    assert_eq!(kms[0]["Action"], serde_json::json!(["kms:Decrypt"]));
    assert!(kms[0]["Resource"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws:kms:"));
    assert!(kms[0]["Condition"]["StringEquals"]["kms:ViaService"]
        .as_str()
        .unwrap()
        .starts_with("secretsmanager."));
    assert_eq!(statements.len(), 2);

    // The trust policy: only this ServiceAccount's web identity token, for STS.
    let trust: Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("deploy/aws/eso-iam-trust-policy.json")).unwrap(),
    )
    .unwrap();
    let t = &trust["Statement"].as_array().unwrap()[0];
    assert_eq!(t["Action"], "sts:AssumeRoleWithWebIdentity");
    let conditions = t["Condition"]["StringEquals"].as_object().unwrap();
    let sub = conditions
        .iter()
        .find(|(k, _)| k.ends_with(":sub"))
        .unwrap()
        .1;
    assert_eq!(
        sub.as_str().unwrap(),
        format!("system:serviceaccount:{namespace}:{sa_name}")
    );
    let aud = conditions
        .iter()
        .find(|(k, _)| k.ends_with(":aud"))
        .unwrap()
        .1;
    assert_eq!(aud, "sts.amazonaws.com");
    assert!(t["Principal"]["Federated"]
        .as_str()
        .unwrap()
        .contains(":oidc-provider/oidc.eks."));
    // Both READMEs point at the files.
    for doc in ["README.md", "deploy/README.md"] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        for f in ["eso-serviceaccount.yaml", "eso-iam-policy.json"] {
            assert!(text.contains(f), "{doc} names {f}");
        }
    }
}
