//! Unit tests of the rules.
use super::*;
use crate::audit::doc::parse_all;

fn audit(text: &str) -> Vec<Finding> {
    let mut out = Collected::default();
    for doc in parse_all(text).unwrap() {
        audit_document(
            &doc,
            Origin {
                file: Some("t.yaml"),
                cluster: false,
            },
            RuleFilter::default(),
            &mut out,
        );
    }
    out.findings
}

#[test]
fn file_paths_and_references_are_not_credentials() {
    assert_eq!(
        literal_credential("DB_PASSWORD_FILE", "/run/secrets/db"),
        None
    );
    assert_eq!(literal_credential("DB_PASSWORD", "/run/secrets/db"), None);
    assert_eq!(
        literal_credential("DB_PASSWORD", "$(DB_PASS_FROM_SECRET)"),
        None
    );
    assert_eq!(literal_credential("TOKEN_TTL", "3600"), None);
    assert_eq!(
        literal_credential("DATABASE_URL", "postgres://db:5432/app"),
        None
    );
    assert!(literal_credential("DB_PASSWORD", "hunter2").is_some());
    assert!(literal_credential("AIRFLOW__CORE__FERNET_KEY", "x3Zs9").is_some());
    assert!(literal_credential("CONN", "postgresql://airflow:pw@db/airflow").is_some());
    assert!(literal_credential("ANYTHING", "ghp_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa").is_some());
}

#[test]
fn every_env_usage_is_its_own_finding() {
    let f = audit(
        "kind: Deployment\nmetadata: {name: web, namespace: prod}\nspec:\n  template:\n    spec:\n      containers:\n      - name: app\n        env:\n        - name: A\n          valueFrom: {secretKeyRef: {name: s1, key: a}}\n        - name: B\n          valueFrom: {secretKeyRef: {name: s1, key: b}}\n        envFrom:\n        - secretRef: {name: s2}\n",
    );
    let rules: Vec<_> = f
        .iter()
        .map(|f| (f.rule.id(), f.line, f.env.clone()))
        .collect();
    assert_eq!(
        rules,
        vec![
            ("SK001", Some(9), Some("A".into())),
            ("SK001", Some(11), Some("B".into())),
            ("SK002", Some(14), None)
        ]
    );
    assert_eq!(f[0].namespace.as_deref(), Some("prod"));
}

#[test]
fn suppression_annotation_drops_named_rules() {
    let f = audit(
        "kind: Pod\nmetadata:\n  name: p\n  annotations: {sealkey.io/ignore: \"SK001\"}\nspec:\n  containers:\n  - name: app\n    env:\n    - name: A\n      valueFrom: {secretKeyRef: {name: s1, key: a}}\n    envFrom:\n    - secretRef: {name: s2}\n",
    );
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].rule, Rule::Sk002);
}

#[test]
fn secret_volume_modes_follow_defaults_items_and_fs_group() {
    let pod = |vol: &str, fs: &str| {
        format!("kind: Pod\nmetadata: {{name: p}}\nspec:\n  {fs}\n  volumes:\n  - name: k\n    secret: {vol}\n  containers:\n  - name: a\n    volumeMounts: [{{name: k, mountPath: /k}}]\n  - name: b\n    volumeMounts: [{{name: k, mountPath: /k}}]\n")
    };
    let f = audit(&pod("{secretName: git-ssh}", "hostNetwork: false"));
    assert_eq!(f.len(), 2, "one per container");
    assert!(f.iter().all(|f| f.severity == Severity::Error));
    assert!(audit(&pod(
        "{secretName: s, defaultMode: 0400}",
        "hostNetwork: false"
    ))
    .is_empty());
    assert_eq!(
        audit(&pod(
            "{secretName: s, defaultMode: 0440}",
            "hostNetwork: false"
        ))
        .len(),
        2
    );
    assert!(audit(&pod(
        "{secretName: s, defaultMode: 0440}",
        "securityContext: {fsGroup: 65533}"
    ))
    .is_empty());
    let f = audit(&pod(
        "{secretName: app, defaultMode: 0400, items: [{key: a, path: a, mode: 0644}]}",
        "hostNetwork: false",
    ));
    assert_eq!(f.len(), 2);
    assert_eq!(f[0].severity, Severity::Warning);
}

#[test]
fn sk003_severity_follows_what_is_mounted_where_not_the_volume_name() {
    let pod = |volume: &str, secret: &str, path: &str| {
        format!("kind: Pod\nmetadata: {{name: p}}\nspec:\n  volumes:\n  - name: {volume}\n    secret: {{secretName: {secret}}}\n  containers:\n  - name: git-sync\n    image: example/x\n    volumeMounts: [{{name: {volume}, mountPath: {path}}}]\n")
    };
    let severity = |text: String| {
        let f = audit(&text);
        assert_eq!(f.len(), 1, "{f:?}");
        f[0].severity
    };
    // Same mount, mode 0644, two volume names: the same answer.
    assert_eq!(
        severity(pod("git-secret", "repo-auth", "/etc/git-secret")),
        Severity::Error
    );
    assert_eq!(
        severity(pod("git-creds", "repo-auth", "/etc/git-secret")),
        Severity::Error
    );
    assert_eq!(
        severity(pod("git-creds", "repo-auth", "/home/app/.ssh")),
        Severity::Error
    );
    // A volume called git-secret holding settings mounted elsewhere is not key material.
    assert_eq!(
        severity(pod("git-secret", "app-settings", "/etc/app")),
        Severity::Warning
    );
    assert_eq!(
        severity(pod("cfg", "deploy-key", "/etc/app")),
        Severity::Error
    );
}

#[test]
fn git_sync_checking_on_without_known_hosts_is_an_availability_warning_not_sk005() {
    let gs = |env: &str, mounts: &str| {
        format!("kind: Pod\nmetadata: {{name: p}}\nspec:\n  volumes: [{{name: k, secret: {{secretName: git-ssh, defaultMode: 0400}}}}]\n  containers:\n  - name: git-sync\n    image: registry.k8s.io/git-sync/git-sync:v4.4.0\n    env: [{{name: GITSYNC_REPO, value: \"git@github.com:a/b\"}}{env}]\n    volumeMounts: [{mounts}]\n")
    };
    let rules = |text: String| -> Vec<(&'static str, Severity)> {
        audit(&text)
            .iter()
            .map(|f| (f.rule.id(), f.severity))
            .collect()
    };
    let key_only = "{name: k, mountPath: /etc/git-secret/ssh, subPath: ssh}";
    let f = audit(&gs("", key_only));
    let missing: Vec<_> = f.iter().filter(|f| f.rule != Rule::Sk009).collect();
    assert_eq!(missing.len(), 1);
    assert_eq!(
        (missing[0].rule, missing[0].severity),
        (Rule::Sk010, Severity::Warning)
    );
    assert!(missing[0].message.contains("/etc/git-secret/known_hosts"));
    // Off, by each spelling git-sync reads: SK005, and no SK010 on top.
    for env in [
        ", {name: GITSYNC_SSH_KNOWN_HOSTS, value: \"false\"}",
        ", {name: GIT_SYNC_KNOWN_HOSTS, value: \"false\"}",
        ", {name: GIT_KNOWN_HOSTS, value: \"0\"}",
        ", {name: GIT_SSH_COMMAND, value: \"ssh -o StrictHostKeyChecking=no\"}",
    ] {
        assert_eq!(
            rules(gs(env, "{name: k, mountPath: /etc/git-secret}")),
            vec![("SK005", Severity::Error)],
            "{env}"
        );
    }
    // The file where --ssh-known-hosts-file points (v4 and v3 names) is what counts.
    for env in [
        ", {name: GITSYNC_SSH_KNOWN_HOSTS_FILE, value: /kh/known_hosts}",
        ", {name: GIT_SYNC_SSH_KNOWN_HOSTS_FILE, value: /kh/known_hosts}",
    ] {
        assert_eq!(
            rules(gs(env, "{name: k, mountPath: /etc/git-secret}")),
            vec![("SK010", Severity::Warning)],
            "{env}"
        );
        assert!(rules(gs(
            env,
            "{name: k, mountPath: /etc/git-secret}, {name: k, mountPath: /kh}"
        ))
        .is_empty());
    }
}

#[test]
fn host_key_checking_off_reads_every_ssh_option_spelling_and_nothing_else() {
    for off in [
        "ssh -o StrictHostKeyChecking=no",
        "ssh -oStrictHostKeyChecking=no -i k",
        "-o 'StrictHostKeyChecking no'",
        "stricthostkeychecking = off",
        "ssh -o UserKnownHostsFile=/dev/null",
        "Host *\n  StrictHostKeyChecking no\n",
    ] {
        assert!(host_key_checking_off(off).is_some(), "{off}");
    }
    for on in [
        "ssh -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/etc/ssh/known_hosts",
        "StrictHostKeyChecking=accept-new",
        "StrictHostKeyChecking=no-questions",
        "UserKnownHostsFile=/dev/nullish",
        "",
    ] {
        assert!(host_key_checking_off(on).is_none(), "{on}");
    }
}

#[test]
fn airflow_git_connections_follow_githook_extras() {
    let sev = |v: &str| airflow_git_connection(v).map(|(s, _)| s);
    assert_eq!(
        sev(
            r#"{"conn_type": "git", "host": "git@github.com:a/b.git", "extra": {"strict_host_key_checking": "no"}}"#
        ),
        Some(Severity::Error)
    );
    assert_eq!(
        sev("git://git%40github.com%3Aa%2Fb.git?strict_host_key_checking=off"),
        Some(Severity::Error)
    );
    // GitHook's default is accept-new: trust on first use.
    assert_eq!(
        sev("git://git%40github.com%3Aa%2Fb.git"),
        Some(Severity::Warning)
    );
    assert_eq!(
        sev(
            r#"{"conn_type": "git", "host": "https://h/r.git", "extra": "{\"key_file\": \"/k\"}"}"#
        ),
        Some(Severity::Warning)
    );
    assert_eq!(
        sev(
            "git://git%40github.com%3Aa%2Fb.git?strict_host_key_checking=yes&known_hosts_file=%2Fk"
        ),
        None
    );
    // Not SSH, not git.
    assert_eq!(
        sev(r#"{"conn_type": "git", "host": "https://github.com/a/b.git"}"#),
        None
    );
    assert_eq!(sev("ssh://user@box?strict_host_key_checking=no"), None);
    assert_eq!(sev("postgresql://u:p@db/airflow"), None);
}

const CLEAR_EXTRA_SECRETS: &str = "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: airflow, namespace: dev}\nspec:\n  values:\n    extraSecrets:\n      alerts:\n        stringData: |\n          SLACK_WEBHOOK_URL: https://hooks.slack.com/services/T0000/B0000/CANARYwebhook\n          SMTP_PASSWORD: CANARYsmtp\n      empty:\n        stringData: \"\"\n";

// issue 21 item 12: a clear webhook URL or SMTP password in `extraSecrets` was no finding.
#[test]
fn clear_extra_secrets_values_that_are_not_keys_are_a_plaintext_secret_finding() {
    let f = audit(CLEAR_EXTRA_SECRETS);
    let sk006: Vec<_> = f.iter().filter(|f| f.rule == Rule::Sk006).collect();
    assert_eq!(sk006.len(), 1, "{f:#?}");
    assert_eq!(sk006[0].secret.as_deref(), Some("alerts"));
    assert!(
        sk006[0].message.contains("SLACK_WEBHOOK_URL"),
        "{}",
        sk006[0].message
    );
    assert!(
        sk006[0].message.contains("SMTP_PASSWORD"),
        "{}",
        sk006[0].message
    );
    assert_eq!(sk006[0].line, Some(8));
    assert!(
        !format!("{f:?}").contains("CANARY"),
        "a value leaked: {f:?}"
    );
}

// issue 21 item 12: a webhook URL and a `*PASSWORD*` literal in env were not flagged, in pods
// or in the Airflow chart's `env` values.
#[test]
fn literal_webhook_urls_and_password_names_in_env_are_credentials() {
    assert!(literal_credential(
        "SLACK_WEBHOOK_URL",
        "https://hooks.slack.com/services/T0000/B0000/XXXXXXXX"
    )
    .is_some());
    assert!(
        literal_credential("ALERT_WEBHOOK_URL", "https://example.org/hook/abcdef123456").is_some()
    );
    assert!(literal_credential(
        "ANY",
        "https://hooks.slack.com/services/T0000/B0000/XXXXXXXX"
    )
    .is_some());
    assert!(literal_credential("PGPASSWORD", "hunter2").is_some());
    assert!(literal_credential("SMTPPASSWD", "hunter2").is_some());
    // Not credentials: an empty webhook, a reference, a password file, a non-URL setting.
    assert_eq!(literal_credential("SLACK_WEBHOOK_URL", "$(HOOK)"), None);
    assert_eq!(
        literal_credential("PGPASSWORD_FILE", "/run/secrets/pg"),
        None
    );
    assert_eq!(literal_credential("WEBHOOK_TIMEOUT", "30"), None);
    assert_eq!(literal_credential("WEBHOOK_URL", "http://localhost"), None);

    let f = audit("kind: HelmRelease\nmetadata: {name: airflow}\nspec:\n  values:\n    env:\n    - name: AIRFLOW__SMTP__SMTP_PASSWORD\n      value: CANARYpw\n    - name: SLACK_WEBHOOK_URL\n      value: https://hooks.slack.com/services/T0000/B0000/CANARY\n    - name: AIRFLOW__CORE__LOAD_EXAMPLES\n      value: \"False\"\n");
    let sk004: Vec<_> = f
        .iter()
        .filter(|f| f.rule == Rule::Sk004)
        .map(|f| (f.env.as_deref(), f.line))
        .collect();
    assert_eq!(
        sk004,
        [
            (Some("AIRFLOW__SMTP__SMTP_PASSWORD"), Some(6)),
            (Some("SLACK_WEBHOOK_URL"), Some(8))
        ],
        "{f:#?}"
    );
    assert!(!format!("{f:?}").contains("CANARY"));
}

// issue 21 item 12: clear `extraSecrets` and a sealed Secret of the same name gave two writers
// of one Secret, and nothing said so.
#[test]
fn a_secret_defined_twice_in_one_input_is_reported() {
    let mut out = Collected::default();
    let text = format!("{CLEAR_EXTRA_SECRETS}---\napiVersion: bitnami.com/v1alpha1\nkind: SealedSecret\nmetadata: {{name: alerts, namespace: dev}}\nspec:\n  encryptedData: {{SMTP_PASSWORD: AgB}}\n---\nkind: Secret\nmetadata: {{name: other, namespace: dev}}\n---\nkind: Secret\nmetadata: {{name: other, namespace: prod}}\n");
    for doc in parse_all(&text).unwrap() {
        audit_document(
            &doc,
            Origin {
                file: Some("t.yaml"),
                cluster: false,
            },
            RuleFilter::default(),
            &mut out,
        );
    }
    out.finish_input();
    let dup: Vec<_> = out
        .findings
        .iter()
        .filter(|f| f.rule == Rule::Sk016)
        .collect();
    assert_eq!(dup.len(), 1, "{:#?}", out.findings);
    assert_eq!(dup[0].secret.as_deref(), Some("alerts"));
    assert_eq!(dup[0].kind, "SealedSecret");
    assert!(
        dup[0].message.contains("HelmRelease/airflow"),
        "{}",
        dup[0].message
    );
    // The clear entry is a Secret defined in the input (the HTML grid's "stored" column).
    assert!(out
        .secrets
        .iter()
        .any(|s| s.name == "alerts" && s.storage == "plaintext"));
}

#[test]
fn dag_bundle_connections_and_chart_values_on_git_sync_are_reported() {
    let rules = |text: &str| -> Vec<(Rule, Severity)> {
        audit(text)
            .into_iter()
            .map(|f| (f.rule, f.severity))
            .collect()
    };
    // What `create --for airflow-git-bundle` and `--dag-bundle` emit: nothing to report.
    let good = r#"{"conn_type":"git","host":"git@github.com:acme/dags.git","extra":{"key_file":"/k/ssh","known_hosts_file":"/k/known_hosts","strict_host_key_checking":"yes"}}"#;
    let cm = |v: &str| {
        format!(
            "kind: ConfigMap\nmetadata: {{name: c}}\ndata:\n  AIRFLOW_CONN_GIT_DEFAULT: '{v}'\n"
        )
    };
    assert_eq!(rules(&cm(good)), []);
    // In a ConfigMap (envFrom): checking off is SK013, as in env and Secrets.
    let off = good.replace("\"yes\"", "\"no\"");
    assert_eq!(rules(&cm(&off)), [(Rule::Sk013, Severity::Error)]);
    let tofu = good.replace("\"yes\"", "\"accept-new\"");
    assert_eq!(rules(&cm(&tofu)), [(Rule::Sk013, Severity::Warning)]);
    // Checking on without known_hosts_file: SK017.
    let no_file = good.replace(",\"known_hosts_file\":\"/k/known_hosts\"", "");
    assert_eq!(rules(&cm(&no_file)), [(Rule::Sk017, Severity::Warning)]);
    // The key inline: SK018 (error in a ConfigMap or env value, warning in a Secret).
    let inline = good.replace("\"key_file\":\"/k/ssh\"", "\"private_key\":\"KEY\"");
    assert_eq!(rules(&cm(&inline)), [(Rule::Sk018, Severity::Error)]);
    let secret = format!("kind: Secret\nmetadata: {{name: s}}\nstringData:\n  AIRFLOW_CONN_GIT_DEFAULT: '{inline}'\n");
    let found = rules(&secret);
    assert!(
        found.contains(&(Rule::Sk018, Severity::Warning)),
        "{found:?}"
    );
    let env = format!("kind: Deployment\nmetadata: {{name: d}}\nspec:\n  template:\n    spec:\n      containers:\n      - name: c\n        env:\n        - name: AIRFLOW_CONN_GIT_DEFAULT\n          value: '{no_file}'\n");
    assert_eq!(rules(&env), [(Rule::Sk017, Severity::Warning)]);
    // Chart values: extraEnv (a YAML string) is read; dags.gitSync on is SK019 (info).
    let hr = format!("kind: HelmRelease\nmetadata: {{name: airflow}}\nspec:\n  values:\n    extraEnv: |\n      - name: AIRFLOW_CONN_GIT_DEFAULT\n        value: '{off}'\n    dags:\n      gitSync:\n        enabled: true\n        repo: git@github.com:acme/dags.git\n        sshKeySecret: k\n        knownHosts: 'github.com ssh-ed25519 AAAA'\n");
    assert_eq!(
        rules(&hr),
        [
            (Rule::Sk013, Severity::Error),
            (Rule::Sk019, Severity::Info)
        ]
    );
    let migrated = hr.replace("enabled: true", "enabled: false");
    assert_eq!(rules(&migrated), [(Rule::Sk013, Severity::Error)]);
}

#[test]
fn a_dag_bundle_whose_connection_nothing_defines_is_reported_at_the_end_of_the_input() {
    let audit_input = |text: &str| -> Vec<(Rule, String)> {
        let mut out = Collected::default();
        for doc in parse_all(text).unwrap() {
            audit_document(
                &doc,
                Origin {
                    file: Some("t.yaml"),
                    cluster: false,
                },
                RuleFilter::default(),
                &mut out,
            );
        }
        out.finish_input();
        out.findings
            .into_iter()
            .filter(|f| f.rule == Rule::Sk020)
            .map(|f| (f.rule, f.message))
            .collect()
    };
    let hr = "kind: HelmRelease\nmetadata: {name: airflow}\nspec:\n  values:\n    dagProcessor:\n      dagBundleConfigList:\n      - name: dags\n        classpath: airflow.providers.git.bundles.git.GitDagBundle\n        kwargs: {git_conn_id: git_dags, tracking_ref: main}\n      - name: local\n        classpath: airflow.dag_processing.bundles.local.LocalDagBundle\n";
    let found = audit_input(hr);
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].1.contains("AIRFLOW_CONN_GIT_DAGS"), "{found:?}");
    // Defined by the chart's extraEnv, its `secret` list, a Secret key or a ConfigMap key of the
    // same input: nothing to report.
    let defined = [
        hr.replace("    dagProcessor:", "    extraEnv: |\n      - name: AIRFLOW_CONN_GIT_DAGS\n        value: x\n    dagProcessor:"),
        hr.replace("    dagProcessor:", "    secret:\n    - {envName: AIRFLOW_CONN_GIT_DAGS, secretName: s, secretKey: k}\n    dagProcessor:"),
        format!("{hr}---\nkind: Secret\nmetadata: {{name: s}}\ndata: {{AIRFLOW_CONN_GIT_DAGS: 'ENC[x]'}}\nsops: {{mac: x}}\n"),
        format!("{hr}---\nkind: ConfigMap\nmetadata: {{name: c}}\ndata: {{AIRFLOW_CONN_GIT_DAGS: 'x'}}\n"),
    ];
    for text in &defined {
        assert_eq!(audit_input(text), [], "{text}");
    }
    // The env form (a ConfigMap loaded with envFrom), git_conn_id unset: git_default.
    let cm = "kind: ConfigMap\nmetadata: {name: c}\ndata:\n  AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST: '[{\"name\": \"d\", \"classpath\": \"airflow.providers.git.bundles.git.GitDagBundle\", \"kwargs\": {}}]'\n";
    let found = audit_input(cm);
    assert!(
        found.len() == 1 && found[0].1.contains("AIRFLOW_CONN_GIT_DEFAULT"),
        "{found:?}"
    );
}

#[test]
fn github_app_settings_that_cannot_work_and_app_keys_in_the_clear_are_findings() {
    // A private key made at test time (any PEM private key is key text to the audit; the
    // field name makes it an App key), indented into the YAML block.
    let pem = crate::keygen::DeployKey::generate(crate::keygen::KeyType::Ed25519, "test")
        .unwrap()
        .private_pem()
        .unwrap();
    let key: String = pem
        .expose_secret()
        .lines()
        .map(|l| format!("    {l}\n"))
        .collect();
    let text = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: sync, namespace: dev}
spec:
  template:
    spec:
      containers:
        - name: git-sync
          image: registry.k8s.io/git-sync/git-sync:v4.4.0
          env:
            - {name: GITSYNC_REPO, value: "https://github.com/acme/dags.git"}
            - {name: GITSYNC_GITHUB_APP_APPLICATION_ID, value: "123"}
            - {name: GITSYNC_GITHUB_APP_INSTALLATION_ID, value: "77"}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: sync-ok, namespace: dev}
spec:
  template:
    spec:
      containers:
        - name: git-sync
          image: registry.k8s.io/git-sync/git-sync:v4.4.0
          args: ["--repo=https://github.com/acme/dags.git", "--github-app-client-id=Iv1.abc",
                 "--github-app-installation-id=77",
                 "--github-app-private-key-file=/etc/git-secret/github-app/github-app-private-key"]
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: dags, namespace: flux-system}
spec:
  interval: 1m
  url: ssh://git@github.com/acme/dags
  provider: github
  secretRef: {name: github-app}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata: {name: dags-https, namespace: flux-system}
spec:
  interval: 1m
  url: https://github.com/acme/dags.git
  provider: github
  secretRef: {name: github-app}
---
apiVersion: v1
kind: Secret
metadata: {name: github-app, namespace: flux-system}
stringData:
  githubAppID: "123"
  githubAppPrivateKey: |
KEY
"#
    .replace("KEY\n", &key);
    let findings = audit(&text);
    let sk021: Vec<&Finding> = findings.iter().filter(|f| f.rule == Rule::Sk021).collect();
    assert_eq!(sk021.len(), 2, "{findings:#?}");
    assert!(
        sk021[0].message.contains("git-sync container git-sync"),
        "{}",
        sk021[0].message
    );
    assert!(
        sk021[0].message.contains("no App key"),
        "{}",
        sk021[0].message
    );
    assert!(
        sk021[1].message.contains("over SSH"),
        "{}",
        sk021[1].message
    );
    let key = findings
        .iter()
        .find(|f| f.rule == Rule::Sk007)
        .expect("the App key in the clear");
    assert!(
        key.message
            .contains("unsealed GitHub App key in stringData.githubAppPrivateKey"),
        "{}",
        key.message
    );
}
