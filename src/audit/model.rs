//! What an audit reports: rules, severities, findings, and how workloads consume Secrets.

use serde::Serialize;

/// How bad a finding is; ordered, so `--fail-on warning` means warning or worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing.
    Info,
    /// Risky; fix when you can.
    Warning,
    /// A secret is exposed or unprotected.
    Error,
}

impl Severity {
    /// `info`, `warning`, `error`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    /// The SARIF `level` (`note`, `warning`, `error`).
    pub fn sarif_level(self) -> &'static str {
        match self {
            Severity::Info => "note",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// The audit's rules. `docs/audit-rules.md` explains each with an example and a fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rule {
    /// Env var from `secretKeyRef`.
    Sk001,
    /// `envFrom` `secretRef`.
    Sk002,
    /// Secret volume files readable by group or others.
    Sk003,
    /// Literal credential in an env value.
    Sk004,
    /// git-sync without host-key checking.
    Sk005,
    /// Plaintext Secret manifest in files meant for commit.
    Sk006,
    /// Private key material unsealed.
    Sk007,
    /// Airflow chart git-sync over SSH without `knownHosts`.
    Sk008,
    /// Secret mounted with `subPath`.
    Sk009,
    /// git-sync checks host keys but no known_hosts file is mounted where it reads it.
    Sk010,
    /// A container turns SSH host-key checking off (env, args or command).
    Sk011,
    /// Argo CD repository Secret with `insecure` / `insecureIgnoreHostKey`.
    Sk012,
    /// Airflow git connection with host-key checking off or trust-on-first-use.
    Sk013,
    /// Flux GitRepository over SSH whose Secret has no `known_hosts`.
    Sk014,
    /// git-sync password passed as an env value instead of a file.
    Sk015,
    /// One Secret defined more than once in one input (two writers of one object).
    Sk016,
    /// Airflow git connection over SSH without `known_hosts_file`.
    Sk017,
    /// Airflow git connection with `private_key` inline in an environment variable.
    Sk018,
    /// Airflow chart values still on the git-sync sidecar.
    Sk019,
    /// A DAG bundle whose git connection no object of the input defines.
    Sk020,
    /// A GitHub App credential that cannot work: git-sync App flags without a key, a Flux
    /// GitRepository with `provider: github` over SSH.
    Sk021,
}

impl Serialize for Rule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.id())
    }
}

impl Rule {
    /// Every rule, in order.
    pub const ALL: [Rule; 21] = [
        Rule::Sk001,
        Rule::Sk002,
        Rule::Sk003,
        Rule::Sk004,
        Rule::Sk005,
        Rule::Sk006,
        Rule::Sk007,
        Rule::Sk008,
        Rule::Sk009,
        Rule::Sk010,
        Rule::Sk011,
        Rule::Sk012,
        Rule::Sk013,
        Rule::Sk014,
        Rule::Sk015,
        Rule::Sk016,
        Rule::Sk017,
        Rule::Sk018,
        Rule::Sk019,
        Rule::Sk020,
        Rule::Sk021,
    ];

    /// `SK001` ...
    pub fn id(self) -> &'static str {
        match self {
            Rule::Sk001 => "SK001",
            Rule::Sk002 => "SK002",
            Rule::Sk003 => "SK003",
            Rule::Sk004 => "SK004",
            Rule::Sk005 => "SK005",
            Rule::Sk006 => "SK006",
            Rule::Sk007 => "SK007",
            Rule::Sk008 => "SK008",
            Rule::Sk009 => "SK009",
            Rule::Sk010 => "SK010",
            Rule::Sk011 => "SK011",
            Rule::Sk012 => "SK012",
            Rule::Sk013 => "SK013",
            Rule::Sk014 => "SK014",
            Rule::Sk015 => "SK015",
            Rule::Sk016 => "SK016",
            Rule::Sk017 => "SK017",
            Rule::Sk018 => "SK018",
            Rule::Sk019 => "SK019",
            Rule::Sk020 => "SK020",
            Rule::Sk021 => "SK021",
        }
    }

    /// Parses `SK001` (any case).
    pub fn parse(s: &str) -> Option<Rule> {
        Rule::ALL
            .into_iter()
            .find(|r| r.id().eq_ignore_ascii_case(s.trim()))
    }

    /// A short kebab-case name (SARIF `name`).
    pub fn name(self) -> &'static str {
        match self {
            Rule::Sk001 => "secret-in-env-var",
            Rule::Sk002 => "secret-in-env-from",
            Rule::Sk003 => "secret-volume-file-mode",
            Rule::Sk004 => "literal-credential-in-env",
            Rule::Sk005 => "git-sync-without-host-key-checking",
            Rule::Sk006 => "plaintext-secret-manifest",
            Rule::Sk007 => "private-key-unsealed",
            Rule::Sk008 => "airflow-git-sync-without-known-hosts",
            Rule::Sk009 => "secret-mounted-with-subpath",
            Rule::Sk010 => "git-sync-known-hosts-not-mounted",
            Rule::Sk011 => "ssh-host-key-checking-off",
            Rule::Sk012 => "argocd-repository-insecure",
            Rule::Sk013 => "airflow-git-connection-host-key",
            Rule::Sk014 => "flux-git-repository-without-known-hosts",
            Rule::Sk015 => "git-sync-password-in-env",
            Rule::Sk016 => "secret-defined-twice",
            Rule::Sk017 => "airflow-git-connection-without-known-hosts-file",
            Rule::Sk018 => "airflow-git-connection-private-key-in-env",
            Rule::Sk019 => "airflow-chart-still-on-git-sync",
            Rule::Sk020 => "dag-bundle-connection-undefined",
            Rule::Sk021 => "github-app-credential-unusable",
        }
    }

    /// The severity findings of this rule usually have (SK003 is raised to error for key
    /// material; SK013 is a warning for trust-on-first-use, an error when checking is off).
    pub fn default_severity(self) -> Severity {
        match self {
            Rule::Sk001
            | Rule::Sk002
            | Rule::Sk003
            | Rule::Sk010
            | Rule::Sk014
            | Rule::Sk015
            | Rule::Sk017
            | Rule::Sk020 => Severity::Warning,
            Rule::Sk009 | Rule::Sk019 => Severity::Info,
            Rule::Sk004
            | Rule::Sk005
            | Rule::Sk006
            | Rule::Sk007
            | Rule::Sk008
            | Rule::Sk011
            | Rule::Sk012
            | Rule::Sk013
            | Rule::Sk016
            | Rule::Sk018
            | Rule::Sk021 => Severity::Error,
        }
    }

    /// The rule's section in docs/audit-rules.md (`sk001` ...).
    pub fn anchor(self) -> String {
        self.id().to_ascii_lowercase()
    }

    /// One sentence: what the rule finds.
    pub fn title(self) -> &'static str {
        match self {
            Rule::Sk001 => "Secret value exposed as an environment variable (secretKeyRef)",
            Rule::Sk002 => {
                "Every key of a Secret exposed as environment variables (envFrom secretRef)"
            }
            Rule::Sk003 => "Secret volume files readable by group or others",
            Rule::Sk004 => "Literal credential in an environment variable value",
            Rule::Sk005 => "git-sync with SSH host-key checking switched off",
            Rule::Sk006 => "Plaintext Secret manifest (neither SOPS-encrypted nor a SealedSecret)",
            Rule::Sk007 => "Private key material stored unsealed",
            Rule::Sk008 => "Airflow chart git-sync over SSH without knownHosts",
            Rule::Sk009 => "Secret mounted with subPath is never updated on rotation",
            Rule::Sk010 => "git-sync checks host keys but no known_hosts file is mounted where it reads it: every sync fails",
            Rule::Sk011 => "SSH host-key checking turned off in a container's env, args or command",
            Rule::Sk012 => "Argo CD repository Secret skips TLS or SSH host-key verification",
            Rule::Sk013 => "Airflow git connection with SSH host-key checking off or trust-on-first-use",
            Rule::Sk014 => "Flux GitRepository over SSH whose Secret has no known_hosts",
            Rule::Sk015 => "git-sync password passed as an env value instead of a file",
            Rule::Sk016 => "One Secret defined more than once in the same input",
            Rule::Sk017 => "Airflow git connection over SSH without known_hosts_file",
            Rule::Sk018 => "Airflow git connection with the private key inline in an environment variable",
            Rule::Sk019 => "Airflow chart values still on the git-sync sidecar",
            Rule::Sk020 => "DAG bundle names a git connection that no object defines",
            Rule::Sk021 => "GitHub App credential that cannot work (git-sync App flags without an App key, Flux provider: github over SSH)",
        }
    }

    /// What to do about it.
    pub fn hint(self) -> &'static str {
        match self {
            Rule::Sk001 | Rule::Sk002 => "mount the Secret as a read-only volume (defaultMode: 0400) and point the program at the file (e.g. *_FILE variables)",
            Rule::Sk003 => "set defaultMode (and items[].mode) to 0400, or 0440 with the pod's securityContext.fsGroup",
            Rule::Sk004 => "move the value into a Secret, mount it as a file and pass the path instead",
            Rule::Sk005 => "remove the setting that turns checking off, mount a known_hosts file (e.g. from `sealkey create`) at /etc/git-secret/known_hosts and keep GITSYNC_SSH_KNOWN_HOSTS=true",
            Rule::Sk006 => "seal it before committing: `sealkey seal`, SOPS, or a Bitnami SealedSecret",
            Rule::Sk007 => "remove the key, rotate it (it is exposed), and commit only a sealed Secret (`sealkey create --seal-to ...`)",
            Rule::Sk008 => "set dags.gitSync.knownHosts (e.g. `sealkey create --for airflow-chart --emit helmrelease` emits it)",
            Rule::Sk009 => "mount the whole Secret volume (no subPath) so rotated keys reach the pod without a restart",
            Rule::Sk010 => "mount a known_hosts file (e.g. the known_hosts key of the Secret from `sealkey create`) at /etc/git-secret/known_hosts, or where --ssh-known-hosts-file points",
            Rule::Sk011 => "remove StrictHostKeyChecking=no / UserKnownHostsFile=/dev/null, mount a known_hosts file and use StrictHostKeyChecking=yes with UserKnownHostsFile pointing at it",
            Rule::Sk012 => "remove insecure / insecureIgnoreHostKey and put the server's host key in the argocd-ssh-known-hosts-cm ConfigMap (TLS: argocd-tls-certs-cm)",
            Rule::Sk013 => "set strict_host_key_checking to \"yes\" and known_hosts_file to a mounted known_hosts file in the connection's extra",
            Rule::Sk014 => "add a known_hosts key to the Secret (`sealkey create --for flux` emits one)",
            Rule::Sk015 => "put the password in a Secret mounted as a file and pass GITSYNC_PASSWORD_FILE (git-sync re-reads it on every sync)",
            Rule::Sk016 => "keep one definition: after moving a Secret out of the chart's extraSecrets into a sealed Secret, delete the extraSecrets entry (and revoke what it held: it stays in git history)",
            Rule::Sk017 => "mount a known_hosts file (from the key's Secret or a ConfigMap) and set known_hosts_file to it, with strict_host_key_checking \"yes\"",
            Rule::Sk018 => "mount the key's Secret as a read-only file and use the key_file extra instead of private_key (`sealkey create --for airflow-git-bundle` or `--dag-bundle` emits that)",
            Rule::Sk019 => "move to a GitDagBundle on the same key Secret with the `to-dag-bundle` command (it shows the diff with --dry-run)",
            Rule::Sk020 => "define the connection (AIRFLOW_CONN_<ID> in the chart's extraEnv, a Secret or ConfigMap loaded with envFrom), or fix git_conn_id; ignore the finding if the connection lives in Airflow's database or a secrets backend",
            Rule::Sk021 => "give git-sync the App key as a file (--github-app-private-key-file, mounted from a Secret; `sealkey app create --for git-sync`), and give a Flux GitRepository with provider: github an https:// URL",
        }
    }

    /// A longer explanation for SARIF `fullDescription`.
    pub fn rationale(self) -> &'static str {
        match self {
            Rule::Sk001 => "Environment variables are inherited by child processes, shown by `kubectl describe`, copied into crash reports and readable in /proc/PID/environ; they are never updated when the Secret rotates.",
            Rule::Sk002 => "envFrom puts every key of the Secret, including keys added later, into the environment of the container and all its child processes.",
            Rule::Sk003 => "Secret volume files default to mode 0644. Keys readable by other users or groups leak to any process in the pod, and OpenSSH refuses private keys that are readable by others.",
            Rule::Sk004 => "A credential written into a manifest is committed with it, visible to everyone who can read the repository or the workload, and cannot be rotated without a commit.",
            Rule::Sk005 => "With host-key checking switched off (GITSYNC_SSH_KNOWN_HOSTS=false, --ssh-known-hosts=false, or a GIT_SSH_COMMAND with StrictHostKeyChecking=no), git-sync accepts any server key: a man-in-the-middle can serve arbitrary DAGs or code.",
            Rule::Sk006 => "data in a Kubernetes Secret is only base64-encoded. A Secret manifest committed as is publishes its values to everyone with read access to the repository, forever.",
            Rule::Sk007 => "A private key in a Secret, ConfigMap, Helm values or an env value that is not sealed is readable by anyone who can read the file or object.",
            Rule::Sk008 => "When dags.gitSync.knownHosts is unset, the Apache Airflow chart sets GITSYNC_SSH_KNOWN_HOSTS=false: git-sync then does no host-key checking.",
            Rule::Sk009 => "Files mounted with subPath are copied once at container start and never updated: a rotated key does not reach the pod until it restarts.",
            Rule::Sk010 => "With checking on (the default), git-sync runs ssh with StrictHostKeyChecking=yes and UserKnownHostsFile=/etc/git-secret/known_hosts (or --ssh-known-hosts-file). When no file is there, git-sync 4.0 refuses to start (can't access SSH known_hosts file) and later versions fail every fetch (Host key verification failed): an availability problem, not an accepted key.",
            Rule::Sk011 => "StrictHostKeyChecking=no (or off) and UserKnownHostsFile=/dev/null make ssh accept any server key: a man-in-the-middle can serve arbitrary code to git, which then runs.",
            Rule::Sk012 => "insecureIgnoreHostKey makes Argo CD accept any SSH host key and insecure skips TLS and host-key verification: a man-in-the-middle can serve the manifests Argo CD applies to the cluster.",
            Rule::Sk013 => "The git provider's GitHook builds ssh -o StrictHostKeyChecking from the extra strict_host_key_checking: no or off accepts any key (with UserKnownHostsFile=/dev/null), and the default accept-new trusts whatever key the first connection sees.",
            Rule::Sk014 => "Flux's source-controller needs the known_hosts key in the Secret of an ssh:// GitRepository; without it it refuses to connect and the source never becomes ready.",
            Rule::Sk015 => "git-sync re-reads GITSYNC_PASSWORD_FILE on every sync; a password in an env var is fixed at container start, so the credential cannot rotate without a restart, and it is visible wherever the environment is.",
            Rule::Sk016 => "Two definitions of one Secret (a chart's extraSecrets and a sealed Secret, or two manifests) are two writers of one object: Helm and the GitOps controller overwrite each other on every reconcile, so which value pods read changes under them, and the clear one stays committed.",
            Rule::Sk017 => "With strict_host_key_checking yes and no known_hosts_file, ssh checks the server against the Airflow user's ~/.ssh/known_hosts: empty in the official image, so every clone fails, or whatever an image build put there, which nobody reviews with the connection.",
            Rule::Sk018 => "The private_key extra puts the key itself into the connection, so an AIRFLOW_CONN_* variable carries it into the environment of every Airflow process and its children, kubectl describe and crash reports, and it cannot rotate without a restart.",
            Rule::Sk019 => "The Apache Airflow chart's documentation plans to remove the git-sync sidecar in chart 2.0 in favour of Airflow 3's GitDagBundle; moving is one reviewed change of the HelmRelease.",
            Rule::Sk020 => "A GitDagBundle clones through the git connection its git_conn_id names (git_default when unset); when nothing defines it, the dag-processor fails to build the bundle and no DAG of it is parsed.",
            Rule::Sk021 => "A GitHub App authenticates over HTTPS with tokens bought with the App key: git-sync refuses to start with App ids but no key, and Flux uses the App only for https:// URLs, so either the sync never runs or it silently falls back to another credential.",
        }
    }
}

/// One finding: one usage of a secret, at one place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule.
    pub rule: Rule,
    /// How bad.
    pub severity: Severity,
    /// What was found, with names (never values).
    pub message: String,
    /// What to do.
    pub hint: &'static str,
    /// The file (file input).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// 1-based line in the file (file input).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
    /// The object's namespace, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The object's kind.
    pub kind: String,
    /// The object's name.
    pub name: String,
    /// The container, when one is involved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// The environment variable, when one is involved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// The Secret's name, when one is involved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// The key within the Secret (or values path), when one is involved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// How a workload consumes a Secret (the columns of the consumption matrix).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Via {
    /// Mounted as files (recommended).
    Volume,
    /// One key as an env var (`secretKeyRef`).
    Env,
    /// Every key as env vars (`envFrom`).
    EnvFrom,
    /// Registry credentials for the kubelet.
    ImagePullSecrets,
}

impl Via {
    /// Every way, in column order.
    pub const ALL: [Via; 4] = [Via::Volume, Via::Env, Via::EnvFrom, Via::ImagePullSecrets];

    /// Bit for a set of ways.
    pub fn bit(self) -> u8 {
        1 << (self as u8)
    }

    /// The JSON / column name.
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Volume => "volume",
            Via::Env => "env",
            Via::EnvFrom => "envFrom",
            Via::ImagePullSecrets => "imagePullSecrets",
        }
    }
}

/// A workload's use of one Secret, in every way it uses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage {
    /// The Secret's namespace (the workload's), when known.
    pub namespace: Option<String>,
    /// The Secret's name.
    pub secret: String,
    /// The workload, `Kind/name`.
    pub workload: String,
    /// Bits of [`Via`].
    pub via: u8,
    /// Each way it is read, per container (what the HTML report's matrix shows).
    pub uses: Vec<Consumption>,
}

/// One way one container (or the pod, or chart values) reads a Secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Consumption {
    /// The container, when one reads it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// How.
    pub via: Via,
    /// Where: the env var and key, the mount path, `subPath`, `projected`; never a value.
    pub detail: String,
    /// The files' mode, for volumes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<i64>,
    /// The pod sets `securityContext.fsGroup`: the files' group is the pod's own.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub fs_group: bool,
}

impl Consumption {
    /// Files readable by users other than the owner (and the pod's own group under fsGroup).
    pub fn files_exposed(&self) -> bool {
        let exposed = if self.fs_group { 0o004 } else { 0o044 };
        self.via == Via::Volume && self.mode.is_some_and(|m| m & exposed != 0)
    }
}

/// A Secret seen in the input: its name and type, never its values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretDecl {
    /// Namespace, when set.
    pub namespace: Option<String>,
    /// Name.
    pub name: String,
    /// `type`, e.g. `kubernetes.io/ssh-auth`.
    pub secret_type: Option<String>,
    /// How it is stored: `plaintext`, `sops`, `sealed-secret`, `cluster`.
    pub storage: &'static str,
}
