//! Unit tests for the emitters: shapes each consumer relies on.

use super::*;
use crate::keygen::KeyType;

fn key() -> DeployKey {
    DeployKey::generate(KeyType::Ed25519, "sealkey:acme/dags").unwrap()
}

fn settings(c: Consumer, d: DocumentKind) -> EmitSettings {
    EmitSettings::new(RepoRef::parse("acme/dags").unwrap(), "dev", c, d)
}

fn decode(v: &Value) -> String {
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap(),
    )
    .unwrap()
}

#[test]
fn airflow_helmrelease_turns_host_key_checking_on_and_names_the_secret() {
    let k = key();
    let s = emit(
        &settings(Consumer::AirflowChart, DocumentKind::HelmRelease),
        &k,
        &KnownHosts::github_pinned(),
    )
    .unwrap();
    let docs = s.expose_docs();
    assert_eq!(docs.len(), 2);
    assert_eq!(docs[0]["apiVersion"], "helm.toolkit.fluxcd.io/v2");
    let gs = &docs[0]["spec"]["values"]["dags"]["gitSync"];
    assert_eq!(gs["enabled"], true);
    assert_eq!(gs["repo"], "git@github.com:acme/dags.git");
    assert_eq!(gs["sshKeySecret"], "airflow-ssh-secret");
    assert!(gs["knownHosts"]
        .as_str()
        .unwrap()
        .starts_with("github.com ssh-ed25519 "));
    assert_eq!(docs[1]["kind"], "Secret");
    assert!(decode(&docs[1]["data"]["gitSshKey"])
        .starts_with(crate::keygen::OPENSSH_PRIVATE_KEY_HEADER));
    assert_eq!(
        docs[1]["metadata"]["annotations"][keys::FINGERPRINT],
        k.fingerprint()
    );
    assert_eq!(docs[1]["metadata"]["labels"][keys::MANAGED_BY], "sealkey");
    assert!(!s.key_inline_in_values());
}

#[test]
fn extra_secrets_puts_the_key_in_values_and_marks_the_stream() {
    let s = emit(
        &settings(Consumer::AirflowChart, DocumentKind::ExtraSecrets),
        &key(),
        &KnownHosts::github_pinned(),
    )
    .unwrap();
    assert_eq!(s.expose_docs().len(), 1);
    let data = s.expose_docs()[0]["spec"]["values"]["extraSecrets"]["airflow-ssh-secret"]["data"]
        .as_str()
        .unwrap();
    let quoted = data
        .strip_prefix("gitSshKey: '")
        .and_then(|d| d.strip_suffix("'\n"))
        .unwrap();
    assert!(decode(&Value::String(quoted.into()))
        .starts_with(crate::keygen::OPENSSH_PRIVATE_KEY_HEADER));
    assert!(s.key_inline_in_values());
    assert!(s.expose_docs()[0]["spec"]["values"]["dags"]["gitSync"]["knownHosts"].is_string());
}

#[test]
fn git_sync_mount_patch_uses_0400_or_0440_with_fs_group() {
    let mut st = settings(Consumer::GitSync, DocumentKind::Mount);
    let s = emit(&st, &key(), &KnownHosts::github_pinned()).unwrap();
    let spec = &s.expose_docs()[1]["spec"]["template"]["spec"];
    assert_eq!(spec["volumes"][0]["secret"]["defaultMode"], 0o400);
    assert!(spec.get("securityContext").is_none());
    let env = spec["containers"][0]["env"].as_array().unwrap();
    assert!(env
        .iter()
        .any(|e| e["name"] == "GITSYNC_SSH_KNOWN_HOSTS" && e["value"] == "true"));
    assert_eq!(spec["containers"][0]["volumeMounts"][0]["readOnly"], true);
    assert!(spec["containers"][0]["volumeMounts"][0]
        .get("subPath")
        .is_none());
    st.fs_group = Some(65533);
    let s = emit(&st, &key(), &KnownHosts::github_pinned()).unwrap();
    let spec = &s.expose_docs()[1]["spec"]["template"]["spec"];
    assert_eq!(spec["volumes"][0]["secret"]["defaultMode"], 0o440);
    assert_eq!(spec["securityContext"]["fsGroup"], 65533);
}

#[test]
fn flux_argocd_generic_and_bundle_have_their_keys() {
    let k = key();
    let kh = KnownHosts::github_pinned();
    let flux = emit(&settings(Consumer::Flux, DocumentKind::Secret), &k, &kh).unwrap();
    let data = &flux.expose_docs()[0]["data"];
    assert_eq!(decode(&data["identity.pub"]).trim(), k.public_openssh());
    assert_eq!(decode(&data["known_hosts"]), kh.to_text());
    let argo = emit(&settings(Consumer::Argocd, DocumentKind::Secret), &k, &kh).unwrap();
    assert_eq!(
        argo.expose_docs()[0]["metadata"]["labels"]["argocd.argoproj.io/secret-type"],
        "repository"
    );
    assert_eq!(
        decode(&argo.expose_docs()[0]["data"]["url"]),
        "git@github.com:acme/dags.git"
    );
    // github.com's pinned keys are in Argo CD's default list: no ConfigMap to replace it.
    assert_eq!(argo.expose_docs().len(), 1);
    let ghes = KnownHosts::parse(
        "ghe.example.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n",
        "test",
        crate::known_hosts::KnownHostsSource::File("test".into()),
    )
    .unwrap();
    // Issue 21 item 9: no whole ConfigMap for another host either (applying it would drop
    // every host Argo CD trusts); its lines are added to the user's ConfigMap instead.
    let argo = emit(&settings(Consumer::Argocd, DocumentKind::Secret), &k, &ghes).unwrap();
    assert_eq!(argo.expose_docs().len(), 1);
    let cm = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: argocd-ssh-known-hosts-cm\ndata:\n  ssh_known_hosts: |\n    gitlab.com ssh-ed25519 AAAAgitlab\n";
    let (merged, added) = super::argocd::add_known_hosts(cm, "cm.yaml", &ghes)
        .unwrap()
        .unwrap();
    assert_eq!(added.len(), 1);
    assert!(merged.starts_with(cm), "{merged}");
    assert!(super::argocd::add_known_hosts(&merged, "cm.yaml", &ghes)
        .unwrap()
        .is_none());
    let conflicting = cm.replace(
        "gitlab.com ssh-ed25519 AAAAgitlab",
        "ghe.example.com ssh-ed25519 AAAAother",
    );
    assert!(super::argocd::add_known_hosts(&conflicting, "cm.yaml", &ghes).is_err());
    let generic = emit(&settings(Consumer::Generic, DocumentKind::Secret), &k, &kh).unwrap();
    assert_eq!(generic.expose_docs()[0]["type"], "kubernetes.io/ssh-auth");
    let bundle = emit(
        &settings(Consumer::AirflowGitBundle, DocumentKind::Mount),
        &k,
        &kh,
    )
    .unwrap();
    let conn: Value = serde_json::from_str(
        bundle.expose_docs()[1]["data"]["AIRFLOW_CONN_GIT_DEFAULT"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(conn["extra"]["strict_host_key_checking"], "yes");
    assert!(
        conn["extra"].get("private_key").is_none(),
        "the key stays in a mounted file, not in env"
    );
    assert_eq!(
        bundle.expose_docs()[2]["spec"]["template"]["spec"]["containers"][0]["envFrom"][0]
            ["configMapRef"]["name"],
        "airflow-git-bundle"
    );
}

#[test]
fn unsupported_document_for_consumer_is_an_input_error() {
    let err = emit(
        &settings(Consumer::Flux, DocumentKind::HelmRelease),
        &key(),
        &KnownHosts::github_pinned(),
    )
    .unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.names(crate::error::Setting::Emit), "{err}");
    let shown = err.render(&crate::cli::spelling::Flags);
    assert!(shown.contains("use --emit secret"), "{shown}");
}

#[test]
fn bad_names_are_rejected() {
    let mut s = settings(Consumer::AirflowChart, DocumentKind::Secret);
    s.secret_name = Some("Bad_Name".into());
    let err = s.validate().unwrap_err();
    assert!(err.to_string().contains("secret_name Bad_Name"), "{err}");
    let shown = err.render(&crate::cli::spelling::Flags);
    assert!(shown.contains("--secret-name Bad_Name"), "{shown}");
}

#[test]
fn debug_of_stream_and_settings_hides_the_key() {
    let k = key();
    let s = emit(
        &settings(Consumer::GitSync, DocumentKind::Secret),
        &k,
        &KnownHosts::github_pinned(),
    )
    .unwrap();
    let b64_key = s.expose_docs()[0]["data"]["ssh"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(!format!("{s:?}").contains(&b64_key[..40]));
    assert!(
        !format!("{:?}", settings(Consumer::GitSync, DocumentKind::Secret))
            .contains(&b64_key[..40])
    );
}
