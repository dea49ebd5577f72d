//! Corpus generator for `sealkey audit`: N files of Kubernetes YAML/JSON with planted usages of
//! every rule, benign look-alikes next to them, and the ground truth (every finding the audit
//! must report, with its line). Used by `tests/audit_corpus.rs` (scoring) and
//! `benches/audit_corpus_gen.rs` (the benchmark corpora in docs/benchmarks.md).
//!
//! Private keys here are fake PEM text (a header, a line of filler, a footer): enough for a
//! detector, useless to anyone else.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::fmt::Write as _;
use std::path::Path;

/// A planted finding: the audit must report exactly this.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Expected {
    pub rule: String,
    pub file: String,
    pub line: u32,
    pub kind: String,
    pub name: String,
    pub namespace: Option<String>,
    pub container: Option<String>,
    pub env: Option<String>,
    pub secret: Option<String>,
    pub key: Option<String>,
}

/// What a corpus holds.
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct GroundTruth {
    pub files: usize,
    pub workloads: usize,
    pub objects: usize,
    pub findings: Vec<Expected>,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn word(&mut self, len: usize) -> String {
        const A: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
        (0..len)
            .map(|_| A[self.below(A.len() as u64) as usize] as char)
            .collect()
    }
}

// Obviously fake PEM blocks; the headers are spelled in two parts so that leak scanners grepping
// the repository only find real keys.
const FAKE_PEM: &str = concat!(
    "-----BEGIN OPENSSH ",
    "PRIVATE KEY-----\nFAKEFAKEFAKE-sealkey-corpus-not-a-key\n-----END OPENSSH ",
    "PRIVATE KEY-----\n"
);
const FAKE_RSA_PEM: &str = concat!(
    "-----BEGIN RSA ",
    "PRIVATE KEY-----\nFAKEFAKEFAKE-sealkey-corpus-not-a-key\n-----END RSA ",
    "PRIVATE KEY-----\n"
);
const CERT_PEM: &str =
    "-----BEGIN CERTIFICATE-----\nMIIBFAKECERTIFICATEsealkeycorpus\n-----END CERTIFICATE-----\n";
const PUBLIC_KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
const KNOWN_HOSTS: &str =
    "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n";

fn b64(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// One document being written, with markers to find lines by.
struct Doc {
    value: Value,
    /// (rule, marker text that starts the finding's line, finding fields)
    planted: Vec<(String, Expected)>,
    workload: bool,
}

fn exp(rule: &str, kind: &str, name: &str, ns: &str) -> Expected {
    Expected {
        rule: rule.into(),
        file: String::new(),
        line: 0,
        kind: kind.into(),
        name: name.into(),
        namespace: Some(ns.into()),
        container: None,
        env: None,
        secret: None,
        key: None,
    }
}

impl Expected {
    fn c(mut self, c: &str) -> Self {
        self.container = Some(c.into());
        self
    }
    fn e(mut self, e: &str) -> Self {
        self.env = Some(e.into());
        self
    }
    fn s(mut self, s: &str) -> Self {
        self.secret = Some(s.into());
        self
    }
    fn k(mut self, k: &str) -> Self {
        self.key = Some(k.into());
        self
    }
}

fn workload(
    kind: &str,
    name: &str,
    ns: &str,
    pod_spec: Value,
    annotations: Option<Value>,
) -> Value {
    let mut meta = json!({"name": name, "namespace": ns});
    if let Some(a) = annotations {
        meta["annotations"] = a;
    }
    let template = json!({"metadata": {"labels": {"app": name}}, "spec": pod_spec});
    match kind {
        "Pod" => {
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template["spec"]})
        }
        "CronJob" => json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta,
            "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": template}}}}),
        "Job" => {
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": {"template": template}})
        }
        k => json!({"apiVersion": "apps/v1", "kind": k, "metadata": meta,
            "spec": {"selector": {"matchLabels": {"app": name}}, "template": template}}),
    }
}

const WORKLOAD_KINDS: [&str; 6] = [
    "Deployment",
    "StatefulSet",
    "DaemonSet",
    "Job",
    "CronJob",
    "Pod",
];

/// Markers: every planted finding's line holds a unique string (`name: VAR`, `name: vol`, ...);
/// the generator finds the line by searching for it after the object is written.
fn gen_doc(rng: &mut Rng, id: usize, secrets: &[String]) -> Doc {
    let variant = rng.below(18);
    gen_variant(
        rng,
        id,
        secrets,
        WORKLOAD_KINDS[id % WORKLOAD_KINDS.len()],
        variant,
    )
}

/// Variants that are a single workload (what a cluster listing returns).
pub const WORKLOAD_VARIANTS: [u64; 11] = [0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 15];

/// Workload objects only, for the cluster test: `pods` Pods, then `others` objects of the other
/// workload kinds, each with a planted variant.
pub fn cluster_objects(pods: usize, others: usize, seed: u64) -> Vec<Value> {
    let mut rng = Rng(seed | 1);
    let secrets: Vec<String> = (0..40).map(|i| format!("shared-secret-{i}")).collect();
    (0..pods + others)
        .map(|id| {
            let kind = if id < pods {
                "Pod"
            } else {
                WORKLOAD_KINDS[id % (WORKLOAD_KINDS.len() - 1)]
            };
            let variant = WORKLOAD_VARIANTS[rng.below(WORKLOAD_VARIANTS.len() as u64) as usize];
            gen_variant(&mut rng, id, &secrets, kind, variant).value
        })
        .collect()
}

fn gen_variant(rng: &mut Rng, id: usize, secrets: &[String], kind: &str, variant: u64) -> Doc {
    let ns = format!("team-{}", id % 7);
    let name = format!("w{id}");
    let pick = |rng: &mut Rng| secrets[rng.below(secrets.len() as u64) as usize].clone();
    let mut planted: Vec<(String, Expected)> = Vec::new();
    let value = match variant {
        // SK001 x2, SK002, with benign env look-alikes and a 0400 volume.
        0 => {
            let (s1, s2, s3) = (pick(rng), pick(rng), pick(rng));
            let (v1, v2) = (format!("SK001_A_{id}"), format!("SK001_B_{id}"));
            planted.push((
                format!("name: {v1}"),
                exp("SK001", kind, &name, &ns)
                    .c("app")
                    .e(&v1)
                    .s(&s1)
                    .k("password"),
            ));
            planted.push((
                format!("name: {v2}"),
                exp("SK001", kind, &name, &ns)
                    .c("app")
                    .e(&v2)
                    .s(&s2)
                    .k("token"),
            ));
            planted.push((
                format!("prefix: {s3}-from-{id}"),
                exp("SK002", kind, &name, &ns).c("app").s(&s3),
            ));
            let spec = json!({
                "volumes": [{"name": "creds", "secret": {"secretName": pick(rng), "defaultMode": 256}}],
                "containers": [{"name": "app", "image": "example/app:1",
                    "env": [
                        {"name": v1, "valueFrom": {"secretKeyRef": {"name": s1, "key": "password"}}},
                        {"name": v2, "valueFrom": {"secretKeyRef": {"name": s2, "key": "token"}}},
                        {"name": "DB_PASSWORD_FILE", "value": "/run/secrets/db/password"},
                        {"name": "API_TOKEN", "value": "$(TOKEN_FROM_FILE)"},
                        {"name": "TOKEN_TTL", "value": "3600"},
                        {"name": "CFG", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "x"}}}
                    ],
                    "envFrom": [{"prefix": format!("{s3}-from-{id}"), "secretRef": {"name": s3}}, {"configMapRef": {"name": "cfg"}}],
                    "volumeMounts": [{"name": "creds", "mountPath": "/run/secrets/db", "readOnly": true}]}]
            });
            workload(kind, &name, &ns, spec, None)
        }
        // SK003 (two containers, key material = error) + SK009 + SK003 on the init container.
        1 => {
            let s = format!("git-ssh-{}", rng.below(50));
            let vol = format!("sshkey{id}");
            for c in ["init", "app", "sidecar"] {
                planted.push((
                    format!("name: {vol}\n"),
                    exp("SK003", kind, &name, &ns).c(c).s(&s),
                ));
            }
            planted.push((
                format!("subPath: idkey{id}"),
                exp("SK009", kind, &name, &ns)
                    .c("init")
                    .s(&s)
                    .k(&format!("idkey{id}")),
            ));
            let spec = json!({
                "volumes": [{"name": vol, "secret": {"secretName": s}}],
                "initContainers": [{"name": "init", "image": "busybox", "volumeMounts": [{"name": vol, "mountPath": "/key", "subPath": format!("idkey{id}")}]}],
                "containers": [
                    {"name": "app", "image": "example/app:1", "volumeMounts": [{"name": vol, "mountPath": "/etc/keys"}, {"name": vol, "mountPath": "/etc/keys2"}]},
                    {"name": "sidecar", "image": "example/side:1", "volumeMounts": [{"name": vol, "mountPath": "/etc/keys"}]},
                    {"name": "other", "image": "example/other:1"}
                ]
            });
            workload(kind, &name, &ns, spec, None)
        }
        // SK003 as a warning (items with mode 0644, not key material) and benign 0440 + fsGroup.
        2 => {
            let s = format!("app-config-{}", rng.below(50));
            let vol = format!("cfgvol{id}");
            planted.push((
                format!("name: {vol}\n"),
                exp("SK003", kind, &name, &ns).c("app").s(&s).k("settings"),
            ));
            let spec = json!({
                "volumes": [
                    {"name": vol, "secret": {"secretName": s, "defaultMode": 256, "items": [{"key": "settings", "path": "settings.ini", "mode": 420}]}},
                    {"name": "proj", "projected": {"defaultMode": 288, "sources": [{"secret": {"name": pick(rng)}}]}}
                ],
                "securityContext": {"fsGroup": 65533},
                "containers": [{"name": "app", "image": "example/app:1", "volumeMounts": [
                    {"name": vol, "mountPath": "/etc/app"}, {"name": "proj", "mountPath": "/etc/proj"}]}]
            });
            workload(kind, &name, &ns, spec, None)
        }
        // SK004: literal credentials; benign look-alikes.
        3 => {
            let (v1, v2) = (format!("DB_PASSWORD_{id}"), format!("SQL_CONN_{id}"));
            planted.push((
                format!("name: {v1}"),
                exp("SK004", kind, &name, &ns).c("app").e(&v1),
            ));
            planted.push((
                format!("name: {v2}"),
                exp("SK004", kind, &name, &ns).c("app").e(&v2),
            ));
            let spec = json!({"containers": [{"name": "app", "image": "example/app:1", "env": [
                {"name": v1, "value": rng.word(16)},
                {"name": v2, "value": format!("postgresql://airflow:{}@db:5432/airflow", rng.word(12))},
                {"name": "DATABASE_URL", "value": "postgres://db:5432/app"},
                {"name": "PASSWORD_MIN_LENGTH", "value": "12"},
                {"name": "SECRET_NAME", "value": "db-credentials"},
                {"name": "GITSYNC_PASSWORD_FILE", "value": "/etc/git-secret/password"},
                {"name": "AUTH_ENABLED", "value": "true"},
                {"name": "SSH_PUBLIC_KEY", "value": PUBLIC_KEY}
            ]}]});
            workload(kind, &name, &ns, spec, None)
        }
        // SK005 (host-key checking off) and SK007 (private key in env).
        4 => {
            let s = format!("git-ssh-{}", rng.below(50));
            let key_env = format!("GIT_KEY_{id}");
            planted.push((
                "name: GITSYNC_SSH_KNOWN_HOSTS".into(),
                exp("SK005", kind, &name, &ns)
                    .c("git-sync")
                    .e("GITSYNC_SSH_KNOWN_HOSTS"),
            ));
            planted.push((
                format!("name: {key_env}"),
                exp("SK007", kind, &name, &ns).c("helper").e(&key_env),
            ));
            let spec = json!({
                "volumes": [{"name": "git-secret", "secret": {"secretName": s, "defaultMode": 256}}],
                "containers": [
                    {"name": "git-sync", "image": "registry.k8s.io/git-sync/git-sync:v4.4.0", "env": [
                        {"name": "GITSYNC_REPO", "value": "git@github.com:acme/dags.git"},
                        {"name": "GITSYNC_SSH_KNOWN_HOSTS", "value": "false"}],
                     "volumeMounts": [{"name": "git-secret", "mountPath": "/etc/git-secret", "readOnly": true}]},
                    {"name": "helper", "image": "example/helper:1", "env": [{"name": key_env, "value": FAKE_PEM}]}
                ]
            });
            workload(kind, &name, &ns, spec, None)
        }
        // SK010 (ssh, checking on, no known_hosts mounted); benign git-sync with known_hosts and
        // over https.
        5 => {
            let s = format!("git-ssh-{}", rng.below(50));
            planted.push((
                "name: git-sync\n".into(),
                exp("SK010", kind, &name, &ns).c("git-sync"),
            ));
            let spec = json!({
                "volumes": [
                    {"name": "key", "secret": {"secretName": s, "defaultMode": 256}},
                    {"name": "kh", "configMap": {"name": "known-hosts"}}
                ],
                "containers": [
                    {"name": "git-sync", "image": "registry.k8s.io/git-sync/git-sync:v4.4.0",
                     "args": ["--repo=ssh://git@github.com/acme/dags.git", "--ssh-key-file=/etc/git-secret/ssh"],
                     "volumeMounts": [{"name": "key", "mountPath": "/etc/git-secret/ssh", "subPath": "ssh"}]},
                    {"name": "git-sync-ok", "image": "registry.k8s.io/git-sync/git-sync:v4.4.0",
                     "args": ["--repo=git@github.com:acme/dags.git"],
                     "volumeMounts": [{"name": "key", "mountPath": "/etc/git-secret"}, {"name": "kh", "mountPath": "/etc/git-secret/known_hosts", "subPath": "known_hosts"}]},
                    {"name": "git-sync-https", "image": "registry.k8s.io/git-sync/git-sync:v4.4.0",
                     "env": [{"name": "GITSYNC_REPO", "value": "https://github.com/acme/dags.git"}]}
                ]
            });
            planted.push((
                "subPath: ssh".into(),
                exp("SK009", kind, &name, &ns).c("git-sync").s(&s).k("ssh"),
            ));
            workload(kind, &name, &ns, spec, None)
        }
        // SK006 + SK007 (data and stringData) in a plaintext Secret.
        6 => {
            let sname = format!("deploy-key-{id}");
            planted.push((
                "kind: Secret".into(),
                exp("SK006", "Secret", &sname, &ns).s(&sname),
            ));
            planted.push((
                "identity: ".into(),
                exp("SK007", "Secret", &sname, &ns).s(&sname).k("identity"),
            ));
            planted.push((
                "rsa.pem: ".into(),
                exp("SK007", "Secret", &sname, &ns).s(&sname).k("rsa.pem"),
            ));
            json!({"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
                "metadata": {"name": sname, "namespace": ns},
                "data": {"identity": b64(FAKE_PEM), "known_hosts": b64(KNOWN_HOSTS), "identity.pub": b64(PUBLIC_KEY)},
                "stringData": {"rsa.pem": FAKE_RSA_PEM}})
        }
        // Benign Secrets: SOPS-encrypted and a SealedSecret; SK007 in a ConfigMap with a benign
        // certificate and public key next to it.
        7 => {
            let cm = format!("cm-{id}");
            planted.push((
                "leaked.key: ".into(),
                exp("SK007", "ConfigMap", &cm, &ns).k("leaked.key"),
            ));
            return Doc {
                value: json!([
                    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": format!("sops-{id}"), "namespace": ns},
                     "data": {"identity": "ENC[AES256_GCM,data:Zm9v,iv:YmFy,tag:YmF6,type:str]"},
                     "sops": {"age": [{"recipient": "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p", "enc": "x"}],
                              "lastmodified": "2026-01-01T00:00:00Z", "mac": "ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]", "version": "3.9.0"}},
                    {"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret", "metadata": {"name": format!("sealed-{id}"), "namespace": ns},
                     "spec": {"encryptedData": {"identity": "AgBy3i4OJSWK+PiTySYZZA=="}, "template": {"type": "kubernetes.io/ssh-auth"}}},
                    {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": cm, "namespace": ns},
                     "data": {"ca.crt": CERT_PEM, "id.pub": PUBLIC_KEY, "leaked.key": FAKE_PEM}}
                ]),
                planted,
                workload: false,
            };
        }
        // Airflow HelmRelease: SK008, SK007 in extraSecrets and dags.gitSync.sshKey, SK006 for
        // the clear extraSecrets entry (issue 21 item 12).
        8 => {
            let hr = format!("airflow-{id}");
            planted.push(("gitSync:".into(), exp("SK008", "HelmRelease", &hr, &ns)));
            // Still on git-sync: SK019 (info) names the move to a DAG bundle.
            planted.push(("gitSync:".into(), exp("SK019", "HelmRelease", &hr, &ns)));
            planted.push((
                "sshKey: ".into(),
                exp("SK007", "HelmRelease", &hr, &ns).k("dags.gitSync.sshKey"),
            ));
            planted.push((
                "    data: ".into(),
                exp("SK007", "HelmRelease", &hr, &ns)
                    .s("airflow-ssh-secret")
                    .k("gitSshKey"),
            ));
            planted.push((
                "    data: ".into(),
                exp("SK006", "HelmRelease", &hr, &ns).s("airflow-ssh-secret"),
            ));
            json!({"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease",
            "metadata": {"name": hr, "namespace": ns},
            "spec": {"chart": {"spec": {"chart": "airflow", "sourceRef": {"kind": "HelmRepository", "name": "apache-airflow"}}},
              "values": {
                "dags": {"gitSync": {"enabled": true, "repo": "git@github.com:acme/dags.git", "branch": "main", "sshKey": b64(FAKE_PEM)}},
                "extraSecrets": {"airflow-ssh-secret": {"data": format!("gitSshKey: '{}'\n", b64(FAKE_PEM))}}
              }}})
        }
        // Airflow HelmRelease with knownHosts + sshKeySecret (only SK019: still on git-sync);
        // SK002 inside a `kind: List`.
        9 => {
            let s = pick(rng);
            planted.push((
                "gitSync:".into(),
                exp("SK019", "HelmRelease", &format!("airflow-ok-{id}"), &ns)
                    .s("airflow-ssh-secret"),
            ));
            planted.push((
                format!("prefix: {s}-list-{id}"),
                exp("SK002", "Pod", &format!("listed-{id}"), &ns)
                    .c("app")
                    .s(&s),
            ));
            return Doc {
                value: json!([
                    {"apiVersion": "helm.toolkit.fluxcd.io/v2", "kind": "HelmRelease", "metadata": {"name": format!("airflow-ok-{id}"), "namespace": ns},
                     "spec": {"values": {"dags": {"gitSync": {"enabled": true, "repo": "git@github.com:acme/dags.git",
                        "sshKeySecret": "airflow-ssh-secret", "knownHosts": KNOWN_HOSTS}}}}},
                    {"apiVersion": "v1", "kind": "List", "items": [
                        {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": format!("listed-{id}"), "namespace": ns},
                         "spec": {"containers": [{"name": "app", "image": "example/app:1",
                            "envFrom": [{"prefix": format!("{s}-list-{id}"), "secretRef": {"name": s}}]}]}}
                    ]}
                ]),
                planted,
                workload: true,
            };
        }
        // Suppressed by annotation: nothing to report (SK001 and SK002 ignored; image pull secret).
        10 => {
            let spec = json!({"imagePullSecrets": [{"name": "regcred"}], "containers": [{"name": "app", "image": "example/app:1",
                "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": pick(rng), "key": "x"}}}],
                "envFrom": [{"secretRef": {"name": pick(rng)}}]}]});
            workload(
                kind,
                &name,
                &ns,
                spec,
                Some(json!({"sealkey.io/ignore": "SK001,SK002"})),
            )
        }
        // Projected secret volume readable by others (SK003), and a clean pod.
        11 => {
            let s = pick(rng);
            let vol = format!("projvol{id}");
            planted.push((
                format!("name: {vol}\n"),
                exp("SK003", kind, &name, &ns).c("app").s(&s),
            ));
            let spec = json!({
                "volumes": [{"name": vol, "projected": {"sources": [{"secret": {"name": s}}, {"configMap": {"name": "cfg"}}]}}],
                "containers": [{"name": "app", "image": "example/app:1", "volumeMounts": [{"name": vol, "mountPath": "/etc/all"}]}]
            });
            workload(kind, &name, &ns, spec, None)
        }
        // SK011: host-key checking off in env (Bitnami chart style), args and command; benign
        // look-alikes that keep checking on.
        12 => {
            let (v1, v2) = (format!("GIT_SSH_COMMAND_{id}"), format!("SSH_OPTIONS_{id}"));
            planted.push((
                format!("name: {v1}"),
                exp("SK011", kind, &name, &ns).c("clone").e(&v1),
            ));
            planted.push((
                format!("name: {v2}"),
                exp("SK011", kind, &name, &ns).c("clone").e(&v2),
            ));
            planted.push((
                format!("~core.sshCommand=ssh{id}"),
                exp("SK011", kind, &name, &ns).c("clone").k("args[2]"),
            ));
            planted.push((
                format!("~clone-{id} -o StrictHostKeyChecking"),
                exp("SK011", kind, &name, &ns).c("fetch").k("command[2]"),
            ));
            let spec = json!({"containers": [
                {"name": "clone", "image": "bitnami/git:2", "command": ["git"],
                 "args": ["-c", "http.sslVerify=true", format!("core.sshCommand=ssh{id} -o UserKnownHostsFile=/dev/null"), "clone", "git@github.com:acme/dags.git"],
                 "env": [
                    {"name": v1, "value": "ssh -i /opt/bitnami/airflow/.ssh/id_rsa -o StrictHostKeyChecking=no"},
                    {"name": v2, "value": "-oStrictHostKeyChecking off"},
                    {"name": "GIT_SSH_COMMAND", "value": "ssh -o StrictHostKeyChecking=yes -o UserKnownHostsFile=/etc/ssh/known_hosts"},
                    {"name": "SSH_NEW", "value": "ssh -o StrictHostKeyChecking=accept-new"},
                    {"name": "NOTE", "value": "never use StrictHostKeyChecking=no-questions-asked"}]},
                {"name": "fetch", "image": "alpine/git:2", "command": ["/bin/sh", "-c", format!("ssh clone-{id} -o StrictHostKeyChecking=no true")],
                 "args": ["-o", "UserKnownHostsFile=/etc/known_hosts"]}
            ]});
            workload(kind, &name, &ns, spec, None)
        }
        // SK005 through git-sync's GIT_SSH_COMMAND; SK015 (+ SK004 / SK001) for passwords in env;
        // benign git-sync over https with a password file at /etc/git-secret.
        13 => {
            let s = format!("repo-creds-{}", rng.below(50));
            let pw = format!("git-pw-{}", rng.below(50));
            planted.push((
                "name: GIT_SSH_COMMAND".into(),
                exp("SK005", kind, &name, &ns)
                    .c("git-sync")
                    .e("GIT_SSH_COMMAND"),
            ));
            planted.push((
                "name: GITSYNC_PASSWORD\n".into(),
                exp("SK015", kind, &name, &ns)
                    .c("git-sync-https")
                    .e("GITSYNC_PASSWORD"),
            ));
            planted.push((
                "name: GITSYNC_PASSWORD\n".into(),
                exp("SK004", kind, &name, &ns)
                    .c("git-sync-https")
                    .e("GITSYNC_PASSWORD"),
            ));
            planted.push((
                "name: GIT_SYNC_PASSWORD\n".into(),
                exp("SK015", kind, &name, &ns)
                    .c("git-sync-v3")
                    .e("GIT_SYNC_PASSWORD")
                    .s(&pw),
            ));
            planted.push((
                "name: GIT_SYNC_PASSWORD\n".into(),
                exp("SK001", kind, &name, &ns)
                    .c("git-sync-v3")
                    .e("GIT_SYNC_PASSWORD")
                    .s(&pw)
                    .k("password"),
            ));
            let spec = json!({
                "volumes": [{"name": "git-creds", "secret": {"secretName": s, "defaultMode": 256}}],
                "containers": [
                    {"name": "git-sync", "image": "registry.k8s.io/git-sync/git-sync:v4.4.0", "env": [
                        {"name": "GITSYNC_REPO", "value": "git@github.com:acme/dags.git"},
                        {"name": "GIT_SSH_COMMAND", "value": "ssh -o StrictHostKeyChecking=no"}],
                     "volumeMounts": [{"name": "git-creds", "mountPath": "/etc/git-secret", "readOnly": true}]},
                    {"name": "git-sync-https", "image": "registry.k8s.io/git-sync/git-sync:v4.4.0", "env": [
                        {"name": "GITSYNC_REPO", "value": "https://github.com/acme/dags.git"},
                        {"name": "GITSYNC_USERNAME", "value": "bot"},
                        {"name": "GITSYNC_PASSWORD", "value": rng.word(20)}]},
                    {"name": "git-sync-v3", "image": "k8s.gcr.io/git-sync/git-sync:v3.6.9", "env": [
                        {"name": "GIT_SYNC_REPO", "value": "https://github.com/acme/dags.git"},
                        {"name": "GIT_SYNC_USERNAME", "value": "bot"},
                        {"name": "GIT_SYNC_PASSWORD", "valueFrom": {"secretKeyRef": {"name": pw, "key": "password"}}}]},
                    {"name": "git-sync-file", "image": "registry.k8s.io/git-sync/git-sync:v4.4.0", "env": [
                        {"name": "GITSYNC_REPO", "value": "https://github.com/acme/dags.git"},
                        {"name": "GITSYNC_USERNAME", "value": "bot"},
                        {"name": "GITSYNC_PASSWORD_FILE", "value": "/etc/git-secret/password"},
                        {"name": "GITSYNC_PASSWORD", "value": ""}],
                     "volumeMounts": [{"name": "git-creds", "mountPath": "/etc/git-secret", "readOnly": true}]},
                    {"name": "app", "image": "example/app:1", "env": [{"name": "APP_PASSWORD_FILE", "value": "/run/pw"}]}
                ]
            });
            workload(kind, &name, &ns, spec, None)
        }
        // SK012: Argo CD repository Secrets (stringData and base64 data); benign look-alikes.
        14 => {
            let (r1, r2, r3, r4) = (
                format!("argocd-repo-{id}"),
                format!("argocd-creds-{id}"),
                format!("argocd-ok-{id}"),
                format!("not-argocd-{id}"),
            );
            for (i, n) in [&r1, &r2, &r3, &r4].iter().enumerate() {
                planted.push((
                    format!("{i}@@kind: Secret"),
                    exp("SK006", "Secret", n, "argocd").s(n),
                ));
            }
            planted.push((
                "insecureIgnoreHostKey: ".into(),
                exp("SK012", "Secret", &r1, "argocd")
                    .s(&r1)
                    .k("insecureIgnoreHostKey"),
            ));
            planted.push((
                "insecure: ".into(),
                exp("SK012", "Secret", &r2, "argocd").s(&r2).k("insecure"),
            ));
            let label = |t: &str| json!({"argocd.argoproj.io/secret-type": t});
            return Doc {
                value: json!([
                    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": r1, "namespace": "argocd", "labels": label("repository")},
                     "stringData": {"type": "git", "url": "git@github.com:acme/apps.git", "insecureIgnoreHostKey": "true"}},
                    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": r2, "namespace": "argocd", "labels": label("repo-creds")},
                     "data": {"url": b64("https://github.com/acme"), "insecure": b64("true")}},
                    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": r3, "namespace": "argocd", "labels": label("repository")},
                     "stringData": {"url": "git@github.com:acme/apps.git", "insecure": "false", "insecureOCIForceHttp": "true"}},
                    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": r4, "namespace": "argocd", "labels": label("cluster")},
                     "stringData": {"server": "https://k8s.example", "insecure": "true"}},
                    {"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret", "metadata": {"name": format!("argocd-sealed-{id}"), "namespace": "argocd"},
                     "spec": {"encryptedData": {"insecureIgnoreHostKey": "AgBy3i4OJSWK+PiTySYZZA=="},
                              "template": {"metadata": {"labels": label("repository")}}}}
                ]),
                planted,
                workload: false,
            };
        }
        // SK013: Airflow git connections in env, as JSON and URI; benign look-alikes.
        15 => {
            let (c1, c2, c3) = (
                format!("AIRFLOW_CONN_GIT_OFF_{id}"),
                format!("AIRFLOW_CONN_GIT_TOFU_{id}"),
                format!("AIRFLOW_CONN_GIT_NEW_{id}"),
            );
            for (c, v) in [(&c1, "scheduler"), (&c2, "scheduler"), (&c3, "worker")] {
                planted.push((
                    format!("name: {c}"),
                    exp("SK013", kind, &name, &ns).c(v).e(c),
                ));
            }
            let spec = json!({"containers": [
                {"name": "scheduler", "image": "apache/airflow:3.1.0", "env": [
                    {"name": c1, "value": json!({"conn_type": "git", "host": "git@github.com:acme/dags.git",
                        "extra": {"key_file": "/opt/airflow/keys/id", "strict_host_key_checking": "no"}}).to_string()},
                    {"name": c2, "value": "git://git%40github.com%3Aacme%2Fdags.git?key_file=%2Fopt%2Fairflow%2Fkeys%2Fid"},
                    {"name": "AIRFLOW_CONN_GIT_PINNED", "value": "git://git%40github.com%3Aacme%2Fdags.git?key_file=%2Fk%2Fid&strict_host_key_checking=yes&known_hosts_file=%2Fk%2Fknown_hosts"},
                    {"name": "AIRFLOW_CONN_GIT_HTTPS", "value": json!({"conn_type": "git", "host": "https://github.com/acme/dags.git"}).to_string()},
                    {"name": "AIRFLOW_CONN_SSH_BOX", "value": json!({"conn_type": "ssh", "host": "box", "extra": {"no_host_key_check": false}}).to_string()}]},
                {"name": "worker", "image": "apache/airflow:3.1.0", "env": [
                    {"name": c3, "value": json!({"conn_type": "git", "host": "ssh://git@github.com/acme/dags.git",
                        "extra": json!({"strict_host_key_checking": "accept-new"}).to_string()}).to_string()},
                    {"name": "AIRFLOW_CONN_METADATA_URI", "value": "postgresql://db:5432/airflow"}]}
            ]});
            workload(kind, &name, &ns, spec, None)
        }
        // SK013 in connection Secrets (envFrom'd by Airflow), data and stringData; benign ones.
        16 => {
            let sname = format!("airflow-connections-{id}");
            planted.push((
                "kind: Secret".into(),
                exp("SK006", "Secret", &sname, &ns).s(&sname),
            ));
            planted.push((
                "AIRFLOW_CONN_GIT_DAGS: ".into(),
                exp("SK013", "Secret", &sname, &ns)
                    .s(&sname)
                    .k("AIRFLOW_CONN_GIT_DAGS"),
            ));
            planted.push((
                "AIRFLOW_CONN_GIT_PLUGINS: ".into(),
                exp("SK013", "Secret", &sname, &ns)
                    .s(&sname)
                    .k("AIRFLOW_CONN_GIT_PLUGINS"),
            ));
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": sname, "namespace": ns},
                "data": {
                    "AIRFLOW_CONN_GIT_DAGS": b64("git://git%40github.com%3Aacme%2Fdags.git?key_file=%2Fk%2Fid&strict_host_key_checking=off"),
                    "AIRFLOW_CONN_GIT_OK": b64(&json!({"conn_type": "git", "host": "git@github.com:acme/ok.git",
                        "extra": {"key_file": "/k/id", "strict_host_key_checking": "yes", "known_hosts_file": "/k/known_hosts"}}).to_string())},
                "stringData": {
                    "AIRFLOW_CONN_GIT_PLUGINS": json!({"conn_type": "git", "host": "git@github.com:acme/plugins.git",
                        "extra": {"private_key_passphrase": "x"}}).to_string(),
                    "AIRFLOW_CONN_POSTGRES": "postgres://db:5432/airflow",
                    "AIRFLOW_CONN_GIT_TOKEN": json!({"conn_type": "git", "host": "https://github.com/acme/dags.git"}).to_string()}})
        }
        // SK014: Flux GitRepository over SSH whose Secret (in the same input) has no known_hosts;
        // benign: a SealedSecret with known_hosts, an https repository, a Secret not in the input.
        _ => {
            let (bad, ok) = (format!("flux-ssh-{id}"), format!("flux-ok-{id}"));
            planted.push((
                "secretRef:".into(),
                exp(
                    "SK014",
                    "GitRepository",
                    &format!("dags-{id}"),
                    "flux-system",
                )
                .s(&bad)
                .k("known_hosts"),
            ));
            planted.push((
                "kind: Secret".into(),
                exp("SK006", "Secret", &bad, "flux-system").s(&bad),
            ));
            let repo = |name: String, url: &str, secret: &str| {
                json!({"apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                    "metadata": {"name": name, "namespace": "flux-system"},
                    "spec": {"interval": "1m", "url": url, "ref": {"branch": "main"}, "secretRef": {"name": secret}}})
            };
            return Doc {
                value: json!([
                    repo(format!("dags-{id}"), "ssh://git@github.com/acme/dags.git", &bad),
                    repo(format!("ok-{id}"), "ssh://git@github.com/acme/ok.git", &ok),
                    repo(format!("https-{id}"), "https://github.com/acme/dags.git", &bad),
                    repo(format!("elsewhere-{id}"), "ssh://git@github.com/acme/x.git", "defined-elsewhere"),
                    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": bad, "namespace": "flux-system"},
                     "stringData": {"identity.pub": PUBLIC_KEY}},
                    {"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret", "metadata": {"name": ok, "namespace": "flux-system"},
                     "spec": {"encryptedData": {"identity": "AgBy3i4OJSWK+PiTySYZZA==", "known_hosts": "AgBy3i4OJSWK+PiTySYZZB=="}}}
                ]),
                planted,
                workload: false,
            };
        }
    };
    let is_workload = !matches!(variant, 6 | 8 | 16);
    Doc {
        value,
        planted,
        workload: is_workload,
    }
}

/// Writes `value` as YAML (JSON for `.json` files) and resolves each planted marker to a line.
fn place(
    text: &str,
    start: usize,
    planted: Vec<(String, Expected)>,
    file: &str,
    out: &mut Vec<Expected>,
) {
    let mut from = start;
    for (marker, mut e) in planted {
        // `N@@marker`: the marker's Nth occurrence (0-based); `~marker`: the same text in JSON.
        let (nth, marker) = match marker.split_once("@@") {
            Some((n, m)) => (n.parse::<usize>().expect("occurrence"), m.to_string()),
            None => (0, marker),
        };
        let marker = marker.trim_start_matches('~');
        let at = text[start..]
            .match_indices(marker)
            .nth(nth)
            .map(|(i, _)| i + start)
            .unwrap_or_else(|| panic!("marker {marker:?} not in generated text"));
        from = from.max(at);
        e.line = (text[..at].matches('\n').count() + 1) as u32;
        e.file = file.to_string();
        out.push(e);
    }
}

/// Writes `files` files into `dir` (about four objects each), returns the ground truth.
pub fn generate(dir: &Path, files: usize, seed: u64) -> GroundTruth {
    std::fs::create_dir_all(dir).expect("corpus dir");
    let mut rng = Rng(seed | 1);
    let secrets: Vec<String> = (0..40).map(|i| format!("shared-secret-{i}")).collect();
    let mut truth = GroundTruth {
        files,
        ..GroundTruth::default()
    };
    let mut id = 0usize;
    for f in 0..files {
        let sub = format!("ns{}", f % 10);
        std::fs::create_dir_all(dir.join(&sub)).expect("subdir");
        let json_file = f % 9 == 8;
        let rel = format!("{sub}/f{f:06}.{}", if json_file { "json" } else { "yaml" });
        let file_name = dir.join(&rel).display().to_string();
        let n = 3 + (rng.below(3) as usize);
        let mut text = String::with_capacity(8 * 1024);
        let mut items = Vec::new();
        for d in 0..n {
            let doc = gen_doc(&mut rng, id, &secrets);
            id += 1;
            if doc.workload {
                truth.workloads += 1;
            }
            let docs: Vec<Value> = match doc.value {
                Value::Array(a) => a,
                v => vec![v],
            };
            truth.objects += docs.len();
            if json_file {
                items.push((docs, doc.planted));
            } else {
                if d > 0 {
                    text.push_str("---\n");
                }
                let start = text.len();
                let mut docs_text = String::new();
                for (i, v) in docs.iter().enumerate() {
                    if i > 0 {
                        docs_text.push_str("---\n");
                    }
                    docs_text.push_str(&sealkey::yaml::to_yaml(v));
                }
                let _ = write!(text, "{docs_text}");
                place(&text, start, doc.planted, &file_name, &mut truth.findings);
            }
        }
        if json_file {
            // A JSON `kind: List` holding every object, pretty-printed (one key per line).
            text = String::from(
                "{\n  \"apiVersion\": \"v1\",\n  \"kind\": \"List\",\n  \"items\": [\n",
            );
            let mut first = true;
            for (docs, planted) in items {
                let start = text.len();
                for v in &docs {
                    if !first {
                        text.push_str(",\n");
                    }
                    first = false;
                    let pretty = serde_json::to_string_pretty(v).unwrap();
                    let indented: Vec<String> =
                        pretty.lines().map(|l| format!("    {l}")).collect();
                    text.push_str(&indented.join("\n"));
                }
                let json_planted = planted
                    .into_iter()
                    .map(|(m, e)| (json_marker(&m), e))
                    .collect();
                place(&text, start, json_planted, &file_name, &mut truth.findings);
            }
            text.push_str("\n  ]\n}\n");
        }
        std::fs::write(dir.join(&rel), text).expect("write corpus file");
    }
    truth
}

/// The JSON spelling of a YAML marker (`name: X` -> `"name": "X"`).
fn json_marker(m: &str) -> String {
    if let Some((n, rest)) = m.split_once("@@") {
        return format!("{n}@@{}", json_marker(rest));
    }
    if m.starts_with('~') {
        return m.to_string();
    }
    let m = m.trim_end_matches('\n');
    let m = m.trim_start();
    match m.split_once(": ") {
        Some((k, v)) if !v.is_empty() => format!("\"{k}\": \"{v}\""),
        Some((k, _)) => format!("\"{k}\": "),
        None => format!("\"{}\"", m.trim_end_matches(':')),
    }
}
