//! `sealkey audit` knows ExternalSecret-fed Secrets (issue 15): the summary says they come from
//! an external store, no plaintext finding, and one no workload in the input reads (its reader may
//! be a HelmRelease's values) is not counted as unconsumed. A Secret manifest with values stays a
//! plaintext finding even when an ExternalSecret of that name exists.

use std::process::Command;

const ES: &str = r#"apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata: {name: git-creds, namespace: dev}
spec:
  secretStoreRef: {name: sealkey-aws, kind: SecretStore}
  target:
    name: git-creds
    template: {type: Opaque, data: {ssh: "{{ index . \"ssh\" }}"}}
  data:
  - secretKey: ssh
    remoteRef: {key: dev/git-sync, property: ssh}
"#;

const DEPLOYMENT: &str = "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: git-sync, namespace: dev}\nspec:\n  template:\n    spec:\n      volumes: [{name: k, secret: {secretName: git-creds, defaultMode: 0400}}]\n      containers: [{name: c, image: x, volumeMounts: [{name: k, mountPath: /etc/git-secret}]}]\n";

fn audit(files: &[(&str, &str)]) -> (Option<i32>, serde_json::Value) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let out = Command::new(env!("CARGO_BIN_EXE_sealkey"))
        .args(["audit", "--format", "json"])
        .arg(dir.path())
        .output()
        .unwrap();
    (
        out.status.code(),
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr))),
    )
}

#[test]
fn an_external_secret_read_by_a_workload_is_summarised_as_external_with_no_finding() {
    let (code, report) = audit(&[("es.yaml", ES), ("deploy.yaml", DEPLOYMENT)]);
    assert_eq!(code, Some(0), "{report}");
    let row = &report["summary"][0];
    assert_eq!(row["secret"], "git-creds");
    assert_eq!(row["storage"], "external-secret");
    assert_eq!(report["findings"], serde_json::json!([]));
}

#[test]
fn an_external_secret_no_workload_reads_is_not_counted_as_unconsumed() {
    let (_, report) = audit(&[("es.yaml", ES)]);
    assert_eq!(report["unconsumedSecrets"], 0, "{report}");
    // The same without the ExternalSecret's kind would count: the check can fail.
    let plain =
        "apiVersion: v1\nkind: Secret\nmetadata: {name: other, namespace: dev}\ntype: Opaque\n";
    let (_, report) = audit(&[("s.yaml", plain)]);
    assert_eq!(report["unconsumedSecrets"], 1, "{report}");
}

#[test]
fn a_plaintext_secret_manifest_beside_its_external_secret_is_still_a_finding() {
    let secret = "apiVersion: v1\nkind: Secret\nmetadata: {name: git-creds, namespace: dev, ownerReferences: [{kind: ExternalSecret, name: git-creds, apiVersion: external-secrets.io/v1, uid: x}]}\nstringData: {ssh: not-really-a-key-but-a-value}\n";
    let (code, report) = audit(&[("es.yaml", ES), ("secret.yaml", secret)]);
    assert_eq!(code, Some(1), "{report}");
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "SK006" || f["id"] == "SK006" || f.to_string().contains("SK006")),
        "{report}"
    );
}
