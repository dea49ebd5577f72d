//! Workload discovery over manifests written the way people write them, and rollout status.

use super::*;
use k8s_openapi::api::apps::v1::Deployment;

fn from_yaml<T: serde::de::DeserializeOwned>(text: &str) -> T {
    serde_saphyr::from_str(text).unwrap()
}

fn deployment_workload(yaml: &str) -> Workload {
    let d: Deployment = from_yaml(yaml);
    workload(
        WorkloadKind::Deployment,
        "dev",
        d.metadata.name,
        d.spec.and_then(|s| s.template.spec),
    )
}

/// The Airflow chart mounts the key with subPath: such pods never see an update.
const SUBPATH: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: airflow-scheduler}
spec:
  selector: {matchLabels: {app: s}}
  template:
    metadata: {labels: {app: s}}
    spec:
      containers:
        - name: git-sync
          image: registry.k8s.io/git-sync/git-sync:v4.4.0
          volumeMounts:
            - {name: git-sync-ssh-key, mountPath: /etc/git-secret/ssh, subPath: gitSshKey, readOnly: true}
      volumes:
        - name: git-sync-ssh-key
          secret: {secretName: airflow-ssh-secret, defaultMode: 288}
"#;

const PLAIN: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: git-sync}
spec:
  selector: {matchLabels: {app: g}}
  template:
    metadata: {labels: {app: g}}
    spec:
      containers:
        - name: git-sync
          image: x
          volumeMounts: [{name: key, mountPath: /etc/git-secret}]
      volumes: [{name: key, secret: {secretName: airflow-ssh-secret}}]
"#;

const PROJECTED: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: projected}
spec:
  selector: {matchLabels: {app: p}}
  template:
    metadata: {labels: {app: p}}
    spec:
      containers:
        - name: main
          image: x
          volumeMounts: [{name: all, mountPath: /etc/all}]
      volumes:
        - name: all
          projected:
            sources:
              - configMap: {name: other}
              - secret: {name: airflow-ssh-secret, items: [{key: gitSshKey, path: key}]}
"#;

const ENV: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: env-reader}
spec:
  selector: {matchLabels: {app: e}}
  template:
    metadata: {labels: {app: e}}
    spec:
      containers:
        - name: main
          image: x
          env:
            - {name: PLAIN, value: "1"}
            - name: GIT_SSH_KEY
              valueFrom: {secretKeyRef: {name: airflow-ssh-secret, key: gitSshKey}}
"#;

const ENV_FROM: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: envfrom-reader}
spec:
  selector: {matchLabels: {app: f}}
  template:
    metadata: {labels: {app: f}}
    spec:
      containers:
        - name: main
          image: x
          envFrom: [{configMapRef: {name: airflow-ssh-secret}}, {secretRef: {name: airflow-ssh-secret}}]
"#;

const OTHER_SECRET: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: unrelated}
spec:
  selector: {matchLabels: {app: u}}
  template:
    metadata: {labels: {app: u}}
    spec:
      containers:
        - name: main
          image: x
          volumeMounts: [{name: key, mountPath: /k, subPath: k}]
          envFrom: [{secretRef: {name: other-secret}}]
      volumes: [{name: key, secret: {secretName: other-secret}}]
"#;

const CRONJOB: &str = r#"
apiVersion: batch/v1
kind: CronJob
metadata: {name: nightly}
spec:
  schedule: "0 3 * * *"
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never
          containers:
            - name: sync
              image: x
              volumeMounts: [{name: key, mountPath: /etc/key, subPath: gitSshKey}]
          volumes: [{name: key, secret: {secretName: airflow-ssh-secret}}]
"#;

#[test]
fn subpath_volume_consumer_needs_a_restart() {
    let c = consumers_of("airflow-ssh-secret", &[deployment_workload(SUBPATH)]);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].name, "airflow-scheduler");
    assert_eq!(c[0].action, ConsumerAction::Restart);
    assert_eq!(
        c[0].uses,
        vec![SecretUse::SubPath {
            container: "git-sync".into(),
            volume: "git-sync-ssh-key".into()
        }]
    );
}

#[test]
fn plain_volume_consumer_waits_for_kubelet_sync() {
    let c = consumers_of("airflow-ssh-secret", &[deployment_workload(PLAIN)]);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].action, ConsumerAction::WaitForSync);
}

#[test]
fn projected_volume_consumer_waits_for_kubelet_sync() {
    let c = consumers_of("airflow-ssh-secret", &[deployment_workload(PROJECTED)]);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].action, ConsumerAction::WaitForSync);
    assert_eq!(
        c[0].uses,
        vec![SecretUse::Volume {
            container: "main".into(),
            volume: "all".into()
        }]
    );
}

#[test]
fn env_var_consumer_needs_a_restart() {
    let c = consumers_of("airflow-ssh-secret", &[deployment_workload(ENV)]);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].action, ConsumerAction::Restart);
    assert_eq!(
        c[0].uses,
        vec![SecretUse::Env {
            container: "main".into(),
            var: "GIT_SSH_KEY".into()
        }]
    );
}

#[test]
fn env_from_consumer_needs_a_restart_and_a_configmap_of_the_same_name_does_not_count() {
    let c = consumers_of("airflow-ssh-secret", &[deployment_workload(ENV_FROM)]);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].action, ConsumerAction::Restart);
    assert_eq!(
        c[0].uses,
        vec![SecretUse::EnvFrom {
            container: "main".into()
        }]
    );
}

#[test]
fn cronjob_template_consumer_is_found_and_left_to_its_next_run() {
    let cj: CronJob = from_yaml(CRONJOB);
    let w = workload(
        WorkloadKind::CronJob,
        "dev",
        cj.metadata.name,
        cj.spec
            .and_then(|s| s.job_template.spec)
            .and_then(|j| j.template.spec),
    );
    let c = consumers_of("airflow-ssh-secret", &[w]);
    assert_eq!(c.len(), 1);
    assert_eq!(c[0].kind, WorkloadKind::CronJob);
    assert_eq!(c[0].action, ConsumerAction::NextRun);
    assert!(matches!(c[0].uses[0], SecretUse::SubPath { .. }));
}

#[test]
fn workloads_reading_other_secrets_are_not_consumers() {
    let all = [deployment_workload(OTHER_SECRET)];
    assert!(consumers_of("airflow-ssh-secret", &all).is_empty());
    assert_eq!(
        consumers_of("other-secret", &all)[0].action,
        ConsumerAction::Restart
    );
}

#[test]
fn controlled_pods_are_covered_by_their_controller_and_bare_pods_need_a_manual_restart() {
    let pod: Pod = from_yaml(
        r#"
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
    - name: main
      image: x
      env: [{name: K, valueFrom: {secretKeyRef: {name: airflow-ssh-secret, key: k}}}]
"#,
    );
    let mut w = workload(WorkloadKind::Pod, "dev", pod.metadata.name, pod.spec);
    assert_eq!(
        consumers_of("airflow-ssh-secret", std::slice::from_ref(&w))[0].action,
        ConsumerAction::ManualRestart
    );
    w.controlled = true;
    assert!(consumers_of("airflow-ssh-secret", &[w]).is_empty());
}

#[test]
fn init_container_subpath_mount_counts() {
    let spec: PodSpec = from_yaml(
        r#"
initContainers:
  - name: clone
    image: x
    volumeMounts: [{name: k, mountPath: /k, subPathExpr: "$(POD)"}]
containers: [{name: main, image: x}]
volumes: [{name: k, secret: {secretName: s}}]
"#,
    );
    assert_eq!(
        secret_uses("s", &spec),
        vec![SecretUse::SubPath {
            container: "clone".into(),
            volume: "k".into()
        }]
    );
}

#[test]
fn deployment_rollout_is_done_only_when_all_replicas_are_updated_and_available() {
    let mut d: Deployment = from_yaml(
        r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: d, generation: 3}
spec: {replicas: 2, selector: {}, template: {}}
status: {observedGeneration: 3, replicas: 3, updatedReplicas: 2, availableReplicas: 2}
"#,
    );
    assert!(!deployment_status(&d).done, "an old replica is still there");
    d.status.as_mut().unwrap().replicas = Some(2);
    assert!(deployment_status(&d).done);
    d.metadata.generation = Some(4);
    assert!(
        !deployment_status(&d).done,
        "controller has not seen the new template"
    );
}

#[test]
fn live_secret_debug_shows_key_names_never_values() {
    let canary = "CANARY-live-secret-value";
    let b64 = base64::engine::general_purpose::STANDARD.encode(canary);
    let s = LiveSecret::from_json(serde_json::json!({
        "metadata": {"name": "s", "namespace": "dev", "resourceVersion": "7"},
        "data": {"gitSshKey": b64},
    }))
    .unwrap();
    let shown = format!("{s:?}");
    assert!(shown.contains("gitSshKey"));
    assert!(!shown.contains(canary) && !shown.contains(&b64));
    assert_eq!(
        s.value("gitSshKey").unwrap().expose_secret(),
        canary.as_bytes()
    );
    assert_eq!(s.resource_version.as_deref(), Some("7"));
}

/// The shared corpus of `crate::podspec`, through the typed `PodSpec` rotation reads: the same
/// reads as the audit finds, ephemeral containers included.
#[test]
fn secret_uses_agree_with_the_audits_walk_on_the_shared_corpus() {
    for (what, yaml, want) in crate::podspec::CASES {
        let spec: PodSpec = from_yaml(yaml);
        let got: Vec<String> = secret_uses("s", &spec)
            .into_iter()
            .map(|u| match u {
                SecretUse::Volume { container, volume } => format!("{container} volume {volume}"),
                SecretUse::SubPath { container, volume } => {
                    format!("{container} subPath {volume}")
                }
                SecretUse::Env { container, var } => format!("{container} env {var}"),
                SecretUse::EnvFrom { container } => format!("{container} envFrom"),
            })
            .collect();
        assert_eq!(got, *want, "{what}");
    }
}
