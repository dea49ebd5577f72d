//! The Kubernetes side: a client configured the way kubectl is (kubeconfig, context, in-cluster),
//! Secrets read and written with server-side apply (field manager `sealkey`), and the workloads of
//! a namespace listed for rotation (which pods read a Secret) and audit.
//!
//! Secret values never leave this module as plain strings: a read Secret becomes a [`LiveSecret`]
//! whose values are [`SecretBytes`], and every JSON tree that held a value is wiped after use.

use crate::error::{Error, Result, Setting};
use crate::message;
use crate::secret::wipe_value;
use crate::secret::SecretBytes;
use base64::Engine as _;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{Pod, PodSpec, Secret};
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// The field manager sealkey's writes are recorded under.
pub const FIELD_MANAGER: &str = "sealkey";

/// The pod-template annotation `kubectl rollout restart` sets; sealkey sets the same one.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

const SERVICE: &str = "Kubernetes API";

/// How to reach the cluster, as kubectl's flags say it.
#[derive(Clone, Debug, Default)]
pub struct ConnectSettings {
    /// `--kubeconfig`: this file instead of `$KUBECONFIG` / `~/.kube/config`.
    pub kubeconfig: Option<PathBuf>,
    /// `--context`: this context instead of the current one.
    pub context: Option<String>,
    /// `--dry-run`: every write is sent with `dryRun=All` (the server validates, stores nothing).
    pub dry_run: bool,
}

/// A connected client.
#[derive(Clone)]
pub struct Cluster {
    client: kube::Client,
    shared: std::sync::Arc<transport::Shared>,
    context: String,
    default_namespace: String,
    server: String,
    dry_run: bool,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("server", &self.server)
            .field("context", &self.context)
            .field("default_namespace", &self.default_namespace)
            .field("dry_run", &self.dry_run)
            .finish()
    }
}

/// How a Secret write reached the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMethod {
    /// Server-side apply.
    Apply,
    /// The server has no apply for Secrets: created with POST.
    Create,
    /// The server has no apply for Secrets: merge patch carrying `metadata.resourceVersion`.
    PreconditionedPatch,
}

/// A Secret as it is in the cluster. Values are secret bytes; `Debug` shows only the key names.
pub struct LiveSecret {
    /// `metadata.name`.
    pub name: String,
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.resourceVersion` (servers that keep none, like some stand-ins, give `None`).
    pub resource_version: Option<String>,
    /// `metadata.labels`.
    pub labels: BTreeMap<String, String>,
    /// `metadata.annotations`.
    pub annotations: BTreeMap<String, String>,
    /// `type`.
    pub type_: Option<String>,
    /// `metadata.ownerReferences[].kind` (e.g. `ExternalSecret`, `SealedSecret`).
    pub owner_kinds: Vec<String>,
    /// `data`, decoded.
    pub data: BTreeMap<String, SecretBytes>,
}

impl std::fmt::Debug for LiveSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LiveSecret")
            .field("namespace", &self.namespace)
            .field("name", &self.name)
            .field("resource_version", &self.resource_version)
            .field("labels", &self.labels)
            .field("annotations", &self.annotations)
            .field("owner_kinds", &self.owner_kinds)
            .field("data_keys", &self.data.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl LiveSecret {
    /// Builds it from a Secret's JSON (as read from the server), wiping the JSON's values.
    pub fn from_json(mut obj: Value) -> Result<Self> {
        let meta = &obj["metadata"];
        let strings = |v: &Value| -> BTreeMap<String, String> {
            v.as_object()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                        .collect()
                })
                .unwrap_or_default()
        };
        let name = meta["name"].as_str().unwrap_or_default().to_string();
        let namespace = meta["namespace"].as_str().unwrap_or_default().to_string();
        let mut secret = LiveSecret {
            resource_version: meta["resourceVersion"].as_str().map(str::to_string),
            labels: strings(&meta["labels"]),
            annotations: strings(&meta["annotations"]),
            type_: obj["type"].as_str().map(str::to_string),
            owner_kinds: meta["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|r| r["kind"].as_str().map(str::to_string))
                .collect(),
            data: BTreeMap::new(),
            name,
            namespace,
        };
        let mut bad_key = None;
        if let Some(data) = obj.get("data").and_then(Value::as_object) {
            for (k, v) in data {
                let bytes = v
                    .as_str()
                    .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok());
                match bytes {
                    Some(bytes) => {
                        secret.data.insert(k.clone(), SecretBytes::new(bytes));
                    }
                    None => {
                        bad_key = Some(k.clone());
                        break;
                    }
                }
            }
        }
        if let Some(k) = bad_key {
            wipe_value(&mut obj);
            return Err(Error::remote(
                SERVICE,
                format!(
                    "Secret {}/{} key {k} is not base64",
                    secret.namespace, secret.name
                ),
                "the server returned a malformed Secret; check it with kubectl get secret -o yaml",
            ));
        }
        wipe_value(&mut obj);
        Ok(secret)
    }

    /// The value of one data key.
    pub fn value(&self, key: &str) -> Option<&SecretBytes> {
        self.data.get(key)
    }
}

/// The kinds of object whose pods can read a Secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum WorkloadKind {
    /// `apps/v1` Deployment.
    Deployment,
    /// `apps/v1` StatefulSet.
    StatefulSet,
    /// `apps/v1` DaemonSet.
    DaemonSet,
    /// `batch/v1` CronJob (its job template's pods).
    CronJob,
    /// `v1` Pod.
    Pod,
}

impl WorkloadKind {
    /// The `kubectl` name (`deployment`, `statefulset`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            WorkloadKind::Deployment => "deployment",
            WorkloadKind::StatefulSet => "statefulset",
            WorkloadKind::DaemonSet => "daemonset",
            WorkloadKind::CronJob => "cronjob",
            WorkloadKind::Pod => "pod",
        }
    }
}

/// A workload and the pod spec its pods run with.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Its kind.
    pub kind: WorkloadKind,
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The pod spec (template for controllers, job template for CronJobs, the spec for Pods).
    pub pod_spec: Option<PodSpec>,
    /// For Pods: whether a controller (ReplicaSet, Job, ...) owns it, so restarting the
    /// controller covers it.
    pub controlled: bool,
}

/// Where a rollout stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RolloutStatus {
    /// Every replica runs the current template and is available.
    pub done: bool,
    /// What kubectl would say (`2 of 3 updated replicas are available`).
    pub detail: String,
}

impl Cluster {
    /// Connects like kubectl: `--kubeconfig` file, else `$KUBECONFIG` / `~/.kube/config`, else the
    /// in-cluster service account; `--context` picks a context. Nothing is sent yet.
    pub async fn connect(settings: &ConnectSettings) -> Result<Self> {
        let options = KubeConfigOptions {
            context: settings.context.clone(),
            ..Default::default()
        };
        let mut context = settings.context.clone();
        let config = match &settings.kubeconfig {
            Some(path) => {
                // A regular file of sane size first: a FIFO or /dev/zero is refused by name.
                crate::input_file::read_named(
                    path,
                    message!("{} {}", Setting::Kubeconfig, path.display().to_string()),
                    crate::input_file::KUBECONFIG_MAX,
                )
                .map_err(|e| match e {
                    Error::File { source, .. } => Error::input(
                        message!("{} {}", Setting::Kubeconfig, path.display().to_string()),
                        format!("cannot read it: {source}"),
                        "pass a readable kubeconfig file (the one kubectl uses)",
                    ),
                    other => other,
                })?;
                let kc = Kubeconfig::read_from(path).map_err(|e| {
                    Error::input(
                        message!("{} {}", Setting::Kubeconfig, path.display().to_string()),
                        format!("cannot load it: {e}"),
                        "pass a readable kubeconfig file (the one kubectl uses)",
                    )
                    .caused_by(e)
                })?;
                context = context.or_else(|| kc.current_context.clone());
                kube::Config::from_custom_kubeconfig(kc, &options)
                    .await
                    .map_err(|e| context_error(settings, e.to_string()))?
            }
            None if settings.context.is_some() => kube::Config::from_kubeconfig(&options)
                .await
                .map_err(|e| context_error(settings, e.to_string()))?,
            None => kube::Config::infer().await.map_err(|e| {
                Error::input(
                    "kubeconfig",
                    format!("no cluster configured: {e}"),
                    message!(
                        "pass {} FILE, set KUBECONFIG, or run inside a pod with a service account",
                        Setting::Kubeconfig
                    ),
                )
                .caused_by(e)
            })?,
        };
        if context.is_none() {
            context = Kubeconfig::read().ok().and_then(|k| k.current_context);
        }
        let mut cluster = Self::from_config(config, settings.dry_run)?;
        if let Some(c) = context.filter(|c| !c.is_empty()) {
            cluster.context = c;
        }
        Ok(cluster)
    }

    /// A client for an explicit configuration (tests point it at a local stand-in). Every
    /// request goes through `transport`: answers capped in bytes and time, bounded retries.
    pub fn from_config(mut config: kube::Config, dry_run: bool) -> Result<Self> {
        // An exec plugin (`aws eks get-token`, `gke-gcloud-auth-plugin`) inherits sealkey's
        // environment, which it needs for its cloud's credentials, but never the GitHub token.
        if let Some(exec) = config.auth_info.exec.as_mut() {
            exec.drop_env.get_or_insert_with(Vec::new).extend(
                crate::child::GITHUB_CREDENTIALS
                    .iter()
                    .map(|name| name.to_string()),
            );
        }
        // Held credentials: never shown back from an answer ([`crate::sent`]).
        {
            use secrecy::ExposeSecret as _;
            let auth = &config.auth_info;
            for held in [&auth.token, &auth.password].into_iter().flatten() {
                crate::sent::register(held.expose_secret().as_bytes());
            }
        }
        config.connect_timeout = Some(Duration::from_secs(10));
        config.read_timeout = Some(Duration::from_secs(60));
        config.write_timeout = Some(Duration::from_secs(60));
        // kube's own retries wait up to 1,000 s each, silently; transport's are bounded and told.
        config.default_retry = false;
        let server = config.cluster_url.to_string();
        let default_namespace = config.default_namespace.clone();
        let inner = transport::kube_client(config).map_err(|e| {
            Error::input(
                "kubeconfig",
                format!(
                    "cannot build a client for {server}: {}",
                    transport::redact(&e.to_string())
                ),
                "check the cluster's certificate-authority and the user's credentials in the kubeconfig",
            )
        })?;
        let shared = std::sync::Arc::new(transport::Shared::default());
        let client = transport::guarded(inner, shared.clone(), default_namespace.clone());
        Ok(Self {
            client,
            shared,
            context: "default".into(),
            default_namespace,
            server,
            dry_run,
        })
    }

    /// The underlying client, for read-only listing elsewhere (`audit --cluster`).
    pub fn into_client(self) -> kube::Client {
        self.client
    }

    /// The underlying client, borrowed.
    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// Calls `f` before every wait for a retry (the server answered 429, 503 or 504).
    pub fn on_wait(self, f: impl Fn(&WaitNotice) + Send + Sync + 'static) -> Self {
        self.shared.set_notify(std::sync::Arc::new(f));
        self
    }

    /// The namespace of the kubeconfig context (or the pod's own), like kubectl's default.
    pub fn default_namespace(&self) -> &str {
        &self.default_namespace
    }

    /// The kubeconfig context in use (`default` when there is none, e.g. in a pod); deploy key
    /// titles carry it.
    pub fn context(&self) -> &str {
        &self.context
    }

    /// The cluster's identity for deploy key titles: the UID of its `kube-system` namespace,
    /// the same from every kubeconfig and in-pod config of one cluster and different between
    /// clusters (context names are not: every in-pod run and k3s's kubeconfig say `default`).
    /// `None` when it cannot be read (no RBAC `get` on that namespace, or no such namespace).
    pub async fn kube_system_uid(&self) -> Result<Option<String>> {
        let api: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client.clone());
        match api.get("kube-system").await {
            Ok(ns) => Ok(ns.metadata.uid.filter(|u| !u.is_empty())),
            Err(kube::Error::Api(s)) if matches!(s.code, 401 | 403 | 404) => Ok(None),
            Err(e) => Err(self.kube_error("get namespace kube-system", e)),
        }
    }

    /// The API server's URL.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Whether writes are server-side dry runs.
    pub fn dry_run(&self) -> bool {
        self.dry_run
    }

    fn secrets(&self, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(
            self.client.clone(),
            namespace,
            &ApiResource::erase::<Secret>(&()),
        )
    }

    /// Reads a Secret; `None` when it does not exist.
    pub async fn get_secret(&self, namespace: &str, name: &str) -> Result<Option<LiveSecret>> {
        let what = format!("get Secret {namespace}/{name}");
        // By status code, not kube's get_opt (which also wants reason "NotFound"): stand-ins and
        // proxies do not always send the reason.
        match self.secrets(namespace).get(name).await {
            Ok(mut obj) => {
                let value = serde_json::to_value(&obj);
                // The values are now in `value` (wiped by from_json); wipe the client's copy.
                wipe_value(&mut obj.data);
                let value = value.map_err(|e| {
                    Error::remote(SERVICE, format!("{what}: {e}"), "report this as a bug")
                })?;
                LiveSecret::from_json(value).map(Some)
            }
            Err(kube::Error::Api(st)) if st.code == 404 => Ok(None),
            Err(e) => Err(self.kube_error(&what, e)),
        }
    }

    /// Writes a Secret (a full `v1` Secret document) with server-side apply, field manager
    /// `sealkey`, forcing ownership of the fields it names. If the document carries
    /// `metadata.resourceVersion`, the server refuses (409) when the Secret changed since.
    ///
    /// Servers without apply for Secrets (404/405/415 on the apply patch) get a create when the
    /// Secret is missing, else a merge patch that carries `metadata.resourceVersion` (the read
    /// one unless the document brings its own) as the precondition.
    pub async fn write_secret(&self, doc: &Value) -> Result<WriteMethod> {
        let namespace = doc["metadata"]["namespace"].as_str().unwrap_or_default();
        let name = doc["metadata"]["name"].as_str().unwrap_or_default();
        if namespace.is_empty() || name.is_empty() {
            return Err(Error::input(
                "Secret document",
                "has no metadata.name or metadata.namespace",
                "report this as a bug",
            ));
        }
        register_sent_values(doc);
        let api = self.secrets(namespace);
        let what = format!("apply Secret {namespace}/{name}");
        let mut params = PatchParams::apply(FIELD_MANAGER).force();
        params.dry_run = self.dry_run;
        match api.patch(name, &params, &Patch::Apply(doc)).await {
            Ok(mut obj) => {
                wipe_value(&mut obj.data);
                return Ok(WriteMethod::Apply);
            }
            Err(kube::Error::Api(s)) if matches!(s.code, 404 | 405 | 415) => {}
            Err(e) => return Err(self.kube_error(&what, e)),
        }
        // No server-side apply here: fall back to create, or a preconditioned merge patch.
        let existing = self.get_secret(namespace, name).await?;
        match existing {
            None => {
                let what = format!("create Secret {namespace}/{name}");
                let mut obj: DynamicObject = serde_json::from_value(doc.clone()).map_err(|e| {
                    Error::input("Secret document", e.to_string(), "report this as a bug")
                })?;
                obj.metadata.resource_version = None;
                let params = PostParams {
                    dry_run: self.dry_run,
                    field_manager: Some(FIELD_MANAGER.into()),
                };
                let result = api.create(&params, &obj).await;
                wipe_value(&mut obj.data);
                match result {
                    Ok(mut created) => {
                        wipe_value(&mut created.data);
                        Ok(WriteMethod::Create)
                    }
                    Err(e) => Err(self.kube_error(&what, e)),
                }
            }
            Some(live) => {
                let what = format!("patch Secret {namespace}/{name}");
                let mut patch = doc.clone();
                if patch["metadata"].get("resourceVersion").is_none() {
                    if let Some(rv) = &live.resource_version {
                        patch["metadata"]["resourceVersion"] = json!(rv);
                    }
                }
                let params = PatchParams {
                    dry_run: self.dry_run,
                    field_manager: Some(FIELD_MANAGER.into()),
                    ..Default::default()
                };
                let result = api.patch(name, &params, &Patch::Merge(&patch)).await;
                wipe_value(&mut patch);
                match result {
                    Ok(mut obj) => {
                        wipe_value(&mut obj.data);
                        Ok(WriteMethod::PreconditionedPatch)
                    }
                    Err(e) => Err(self.kube_error(&what, e)),
                }
            }
        }
    }

    /// Every Deployment, StatefulSet, DaemonSet, CronJob and Pod in `namespace`, read page by
    /// page (250 objects a request).
    pub async fn list_workloads(&self, namespace: &str) -> Result<Vec<Workload>> {
        let mut out = Vec::new();
        for d in self
            .list_all::<Deployment>(namespace, "deployments")
            .await?
        {
            out.push(workload(
                WorkloadKind::Deployment,
                namespace,
                d.metadata.name,
                d.spec.and_then(|s| s.template.spec),
            ));
        }
        for s in self
            .list_all::<StatefulSet>(namespace, "statefulsets")
            .await?
        {
            out.push(workload(
                WorkloadKind::StatefulSet,
                namespace,
                s.metadata.name,
                s.spec.and_then(|s| s.template.spec),
            ));
        }
        for d in self.list_all::<DaemonSet>(namespace, "daemonsets").await? {
            out.push(workload(
                WorkloadKind::DaemonSet,
                namespace,
                d.metadata.name,
                d.spec.and_then(|s| s.template.spec),
            ));
        }
        for c in self.list_all::<CronJob>(namespace, "cronjobs").await? {
            out.push(workload(
                WorkloadKind::CronJob,
                namespace,
                c.metadata.name,
                c.spec
                    .and_then(|s| s.job_template.spec)
                    .and_then(|j| j.template.spec),
            ));
        }
        for p in self.list_all::<Pod>(namespace, "pods").await? {
            let controlled = p
                .metadata
                .owner_references
                .iter()
                .flatten()
                .any(|o| o.controller == Some(true));
            let mut w = workload(WorkloadKind::Pod, namespace, p.metadata.name, p.spec);
            w.controlled = controlled;
            out.push(w);
        }
        Ok(out)
    }

    async fn list_all<K>(&self, namespace: &str, plural: &str) -> Result<Vec<K>>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let api: Api<K> = Api::namespaced(self.client.clone(), namespace);
        let mut items = Vec::new();
        let mut token: Option<String> = None;
        // Bounded: a server that keeps handing out continue tokens (new or repeated) cannot keep
        // us here forever, nor make us return a partial list.
        let mut pages = Pages::new(format!("{plural} in {namespace}"));
        loop {
            let mut lp = ListParams::default().limit(250);
            if let Some(t) = &token {
                lp = lp.continue_token(t);
            }
            let page = api
                .list(&lp)
                .await
                .map_err(|e| self.kube_error(&format!("list {plural} in {namespace}"), e))?;
            items.extend(page.items);
            token = pages.next(page.metadata.continue_)?;
            if token.is_none() {
                return Ok(items);
            }
        }
    }

    /// `kubectl rollout restart`: sets the pod template's `restartedAt` annotation to `at`.
    pub async fn restart(
        &self,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
        at: &str,
    ) -> Result<()> {
        let patch =
            json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: at}}}}});
        let params = PatchParams {
            dry_run: self.dry_run,
            field_manager: Some(FIELD_MANAGER.into()),
            ..Default::default()
        };
        let what = format!("restart {} {namespace}/{name}", kind.as_str());
        let p = Patch::Merge(&patch);
        let result = match kind {
            WorkloadKind::Deployment => {
                Api::<Deployment>::namespaced(self.client.clone(), namespace)
                    .patch(name, &params, &p)
                    .await
                    .map(drop)
            }
            WorkloadKind::StatefulSet => {
                Api::<StatefulSet>::namespaced(self.client.clone(), namespace)
                    .patch(name, &params, &p)
                    .await
                    .map(drop)
            }
            WorkloadKind::DaemonSet => Api::<DaemonSet>::namespaced(self.client.clone(), namespace)
                .patch(name, &params, &p)
                .await
                .map(drop),
            WorkloadKind::CronJob | WorkloadKind::Pod => {
                return Err(Error::input(
                    what,
                    "this kind has no rollout",
                    "CronJobs pick up the Secret on their next run; restart bare Pods yourself",
                ))
            }
        };
        result.map_err(|e| self.kube_error(&what, e))
    }

    /// Where the rollout of a restarted workload stands (the checks of `kubectl rollout status`).
    pub async fn rollout_status(
        &self,
        kind: WorkloadKind,
        namespace: &str,
        name: &str,
    ) -> Result<RolloutStatus> {
        let what = format!("read {} {namespace}/{name}", kind.as_str());
        let err = |e| self.kube_error(&what, e);
        Ok(match kind {
            WorkloadKind::Deployment => {
                let d = Api::<Deployment>::namespaced(self.client.clone(), namespace)
                    .get(name)
                    .await
                    .map_err(err)?;
                deployment_status(&d)
            }
            WorkloadKind::StatefulSet => {
                let s = Api::<StatefulSet>::namespaced(self.client.clone(), namespace)
                    .get(name)
                    .await
                    .map_err(err)?;
                statefulset_status(&s)
            }
            WorkloadKind::DaemonSet => {
                let d = Api::<DaemonSet>::namespaced(self.client.clone(), namespace)
                    .get(name)
                    .await
                    .map_err(err)?;
                daemonset_status(&d)
            }
            WorkloadKind::CronJob | WorkloadKind::Pod => RolloutStatus {
                done: true,
                detail: "no rollout".into(),
            },
        })
    }

    fn kube_error(&self, what: &str, e: kube::Error) -> Error {
        kube_error(&self.server, what, e)
    }
}

fn workload(
    kind: WorkloadKind,
    namespace: &str,
    name: Option<String>,
    pod_spec: Option<PodSpec>,
) -> Workload {
    Workload {
        kind,
        namespace: namespace.to_string(),
        name: name.unwrap_or_default(),
        pod_spec,
        controlled: false,
    }
}

fn context_error(settings: &ConnectSettings, e: String) -> Error {
    let input = match (&settings.kubeconfig, &settings.context) {
        (Some(p), Some(c)) => message!(
            "{} {} {} {}",
            Setting::Kubeconfig,
            p.display().to_string(),
            Setting::Context,
            c
        ),
        (Some(p), None) => message!("{} {}", Setting::Kubeconfig, p.display().to_string()),
        (None, Some(c)) => message!("{} {}", Setting::Context, c),
        (None, None) => "kubeconfig".into(),
    };
    Error::input(
        input,
        format!("cannot use it: {e}"),
        "check the names with `kubectl config get-contexts`",
    )
}

/// Registers the values a Secret document carries (`data` as sent and decoded, `stringData`) so
/// that no answer can show them back ([`crate::sent`]).
fn register_sent_values(doc: &Value) {
    if let Some(data) = doc["data"].as_object() {
        for b64 in data.values().filter_map(Value::as_str) {
            crate::sent::register(b64.as_bytes());
            if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b64) {
                crate::sent::register(&zeroize::Zeroizing::new(raw));
            }
        }
    }
    if let Some(data) = doc["stringData"].as_object() {
        for text in data.values().filter_map(Value::as_str) {
            crate::sent::register(text.as_bytes());
        }
    }
}

/// Maps a client error to [`Error::Kube`] with a hint for the usual causes. Every piece of
/// server text in it goes through [`redact`] (terminal controls out, credentials, the
/// kubeconfig's included, redacted): the one path for what the API server says.
pub fn kube_error(server: &str, what: &str, e: kube::Error) -> Error {
    let server = redact(server);
    if let Some(cut) = answer_cut(&e) {
        let hint = match cut {
            AnswerCut::TooLarge(_) => "check that the kubeconfig's server is the API server; a proxy or server on the way may be misbehaving",
            AnswerCut::TooSlow(_) => "check that the cluster is reachable and answering (`kubectl get ns` with the same kubeconfig and context)",
        };
        return Error::Kube {
            message: format!("{what}: {cut} (from {server})"),
            hint: hint.into(),
            status: None,
            source: Box::new(e),
        };
    }
    let (message, hint, status) = match &e {
        kube::Error::Api(s) => {
            let hint = match s.code {
                401 => "the credentials were rejected: log in again (kubectl get ns should work)",
                403 => "the credentials lack RBAC permission for this; ask for get/list/patch/create on secrets and get/list/patch on workloads in the namespace",
                404 => "check the namespace and name (kubectl get -n NAMESPACE ...)",
                409 => "the object changed while sealkey was working on it; nothing was overwritten, run the command again",
                422 => "the server rejected the object; report this as a bug with the message",
                429 => "the API server kept answering 429 Too Many Requests after sealkey's retries; try again later",
                c if c >= 500 => "the API server failed; try again later",
                _ => "see the message",
            };
            let said = redact(&format!("{}: {}", s.reason, s.message));
            (format!("{what}: {} {said}", s.code), hint, Some(s.code))
        }
        other => (
            format!(
                "{what}: no answer from {server}: {}",
                redact(&other.to_string())
            ),
            "check that the cluster is reachable (`kubectl get ns` with the same kubeconfig and context)",
            None,
        ),
    };
    Error::Kube {
        message,
        hint: hint.into(),
        status,
        source: Box::new(e),
    }
}

mod consumers;
mod known_hosts_cm;
mod rollout;
mod transport;
pub use consumers::*;
pub use known_hosts_cm::KnownHostsAddition;
pub use rollout::*;
pub use transport::{
    answer_cut, redact, AnswerCut, Pages, WaitNotice, ANSWER_TIME, MAX_LIST_PAGE_BYTES,
    MAX_OBJECT_BYTES, MAX_RETRIES,
};

#[cfg(test)]
mod tests;
