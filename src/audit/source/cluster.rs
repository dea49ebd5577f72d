//! A live cluster (`--cluster`): workloads and Secrets listed page by page (`limit` +
//! `continue`), each page audited and dropped before the next is fetched, so memory stays flat
//! whatever the cluster's size. Secrets are read as names, types and key names only: their
//! values are skipped while the response is parsed and never held.
//!
//! The requests go through [`crate::cluster::Cluster`]'s client, so answers are capped, retries
//! bounded and told, listings bounded ([`Pages`]), and server text shown only through
//! [`crate::cluster::kube_error`], as for `create` and `rotate`.

use crate::audit::doc::from_json;
use crate::audit::rules::{audit_document, Collected};
use crate::audit::{Finding, Origin, Rule, RuleFilter, Run, SecretDecl, Severity};
use crate::cluster::{Cluster, Pages};
use crate::error::{Error, Result};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, DynamicObject, ListParams};
use kube::core::ApiResource;
use serde::Deserialize;
use std::borrow::Cow;
use std::path::PathBuf;

/// The largest page the audit asks for.
pub const MAX_PAGE: u32 = 500;

/// What to list.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// One namespace, or all.
    pub namespace: Option<String>,
    /// Objects per list request (at most [`MAX_PAGE`]).
    pub page_size: u32,
    /// Also list Secrets (names, types, key names) for the summary. Listing Secrets needs
    /// `list secrets`, which in RBAC also grants their values, so least-privilege service
    /// accounts turn this off.
    pub list_secrets: bool,
}

/// A Secret as the audit reads it from the API: metadata, type and key names, never values.
#[derive(Debug, Clone, Deserialize)]
pub struct SecretShape {
    #[serde(default)]
    metadata: ObjectMeta,
    #[serde(default, rename = "type")]
    secret_type: Option<String>,
    #[serde(default, rename = "data", deserialize_with = "keys_only")]
    keys: Vec<String>,
}

fn keys_only<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Vec<String>, D::Error> {
    let map: Option<std::collections::BTreeMap<String, serde::de::IgnoredAny>> =
        Option::deserialize(d)?;
    Ok(map.map(|m| m.into_keys().collect()).unwrap_or_default())
}

impl SecretShape {
    /// The Secret's key names.
    pub fn keys(&self) -> &[String] {
        &self.keys
    }
}

impl kube::Resource for SecretShape {
    type DynamicType = ();
    type Scope = k8s_openapi::NamespaceResourceScope;

    fn kind(_: &()) -> Cow<'_, str> {
        "Secret".into()
    }
    fn group(_: &()) -> Cow<'_, str> {
        "".into()
    }
    fn version(_: &()) -> Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> Cow<'_, str> {
        "secrets".into()
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

fn listing(cluster: &Cluster, what: &str, e: kube::Error) -> Error {
    crate::cluster::kube_error(cluster.server(), &format!("list {what}"), e)
}

fn unreadable(what: &str, e: serde_json::Error) -> Error {
    Error::remote(
        "Kubernetes API",
        format!("listing {what}: an object could not be read back ({e})"),
        "report this as a bug",
    )
}

fn workload_resources() -> Vec<ApiResource> {
    vec![
        ApiResource::erase::<Pod>(&()),
        ApiResource::erase::<Deployment>(&()),
        ApiResource::erase::<StatefulSet>(&()),
        ApiResource::erase::<DaemonSet>(&()),
        ApiResource::erase::<ReplicaSet>(&()),
        ApiResource::erase::<Job>(&()),
        ApiResource::erase::<CronJob>(&()),
    ]
}

/// Connects like kubectl (and `sealkey rotate`): `--kubeconfig`, else `KUBECONFIG` /
/// `~/.kube/config`, else the in-cluster service account; `--context` picks a context.
pub async fn connect(kubeconfig: Option<PathBuf>, context: Option<String>) -> Result<Cluster> {
    let settings = crate::cluster::ConnectSettings {
        kubeconfig,
        context,
        dry_run: false,
    };
    Cluster::connect(&settings).await
}

/// SK007 for each private key a Secret keeps in a content-copy annotation (`kubectl apply`'s
/// `last-applied-configuration` holds every value of the applied manifest, and keeps a key that
/// rotation replaced). Names the annotation and the data key, never the value; the annotation's
/// text is wiped once read.
fn key_copies(s: &mut SecretShape) -> Vec<Finding> {
    use zeroize::Zeroize;
    let mut found = Vec::new();
    let name = s.metadata.name.clone().unwrap_or_default();
    let namespace = s.metadata.namespace.clone();
    let Some(annotations) = s.metadata.annotations.as_mut() else {
        return found;
    };
    for copy in crate::emit::keys::CONTENT_COPY_ANNOTATIONS {
        let Some(text) = annotations.get_mut(*copy) else {
            continue;
        };
        let parsed: Option<serde_json::Value> = serde_json::from_str(text).ok();
        text.zeroize();
        let Some(mut parsed) = parsed else { continue };
        for (field, base64) in [("data", true), ("stringData", false)] {
            let Some(values) = parsed.get(field).and_then(serde_json::Value::as_object) else {
                continue;
            };
            for (k, v) in values {
                let holds_key = v.as_str().is_some_and(|v| {
                    if base64 {
                        crate::audit::rules::is_private_key_base64(v)
                    } else {
                        crate::audit::rules::is_private_key_text(v)
                    }
                });
                if holds_key {
                    found.push(Finding {
                        rule: Rule::Sk007,
                        severity: Severity::Error,
                        message: format!(
                            "Secret {}{name} keeps a copy of the private key {field}.{k} in annotation {copy} (written by `kubectl apply`; it stays there after the key is rotated)",
                            namespace.as_deref().map(|n| format!("{n}/")).unwrap_or_default()
                        ),
                        hint: "remove the annotation (`kubectl annotate secret NAME kubectl.kubernetes.io/last-applied-configuration-`), rotate the key if others could read it, and create such Secrets with `kubectl create -f -` or `kubectl apply --server-side` instead",
                        file: None,
                        line: None,
                        namespace: namespace.clone(),
                        kind: "Secret".into(),
                        name: name.clone(),
                        container: None,
                        env: None,
                        secret: Some(name.clone()),
                        key: Some(format!("{copy}:{field}.{k}")),
                    });
                }
            }
        }
        crate::secret::wipe_value(&mut parsed);
    }
    found
}

/// Lists and audits every workload kind, then the Secrets, page by page.
pub async fn audit_cluster(
    cluster: &Cluster,
    settings: &ClusterSettings,
    filter: RuleFilter,
    run: &mut Run<'_>,
) -> Result<()> {
    let client = cluster.client();
    let page = settings.page_size.clamp(1, MAX_PAGE);
    for ar in workload_resources() {
        let api: Api<DynamicObject> = match &settings.namespace {
            Some(ns) => Api::namespaced_with(client.clone(), ns, &ar),
            None => Api::all_with(client.clone(), &ar),
        };
        let mut token: Option<String> = None;
        let mut pages = Pages::new(ar.plural.clone());
        loop {
            let mut lp = ListParams::default().limit(page);
            if let Some(t) = &token {
                lp = lp.continue_token(t);
            }
            let list = api
                .list(&lp)
                .await
                .map_err(|e| listing(cluster, &ar.plural, e))?;
            let mut collected = Collected::default();
            for obj in list.items {
                let mut value =
                    serde_json::to_value(&obj).map_err(|e| unreadable(&ar.plural, e))?;
                // List items carry no kind of their own.
                if let Some(map) = value.as_object_mut() {
                    map.insert("kind".into(), ar.kind.clone().into());
                    map.insert("apiVersion".into(), ar.api_version.clone().into());
                }
                audit_document(
                    &from_json(&value),
                    Origin {
                        file: None,
                        cluster: true,
                    },
                    filter,
                    &mut collected,
                );
            }
            run.absorb_page(collected)
                .map_err(|e| Error::file("write", "stdout", e))?;
            token = pages.next(list.metadata.continue_)?;
            if token.is_none() {
                break;
            }
        }
    }
    if !settings.list_secrets {
        return Ok(());
    }
    let secrets: Api<SecretShape> = match &settings.namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let mut token: Option<String> = None;
    let mut pages = Pages::new("secrets");
    loop {
        let mut lp = ListParams::default().limit(page);
        if let Some(t) = &token {
            lp = lp.continue_token(t);
        }
        let list = secrets
            .list(&lp)
            .await
            .map_err(|e| listing(cluster, "secrets", e))?;
        let mut collected = Collected::default();
        for mut s in list.items {
            if filter.enabled(Rule::Sk007) {
                collected.findings.extend(key_copies(&mut s));
            }
            collected.secrets.push(SecretDecl {
                namespace: s.metadata.namespace.clone(),
                name: s.metadata.name.clone().unwrap_or_default(),
                secret_type: s.secret_type.clone(),
                storage: "cluster",
            });
        }
        run.absorb_page(collected)
            .map_err(|e| Error::file("write", "stdout", e))?;
        token = pages.next(list.metadata.continue_)?;
        if token.is_none() {
            break;
        }
    }
    Ok(())
}
