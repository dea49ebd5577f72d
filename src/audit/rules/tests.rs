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
