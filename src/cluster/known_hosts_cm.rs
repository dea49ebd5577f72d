//! Argo CD's `argocd-ssh-known-hosts-cm` in a cluster: host keys added to the live list, never a
//! list replaced (issue 21 item 9). The write is a merge patch of `data.ssh_known_hosts` carrying
//! the resourceVersion that was read, so a concurrent change makes it fail (409) rather than be
//! overwritten.

use super::Cluster;
use crate::emit::argocd::{missing_known_hosts, KNOWN_HOSTS_CONFIG_MAP};
use crate::error::{Error, Result, Setting};
use crate::known_hosts::KnownHosts;
use crate::message;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

/// The live ConfigMap as read, and the lines of the wanted host keys it lacks.
#[derive(Debug)]
pub struct KnownHostsAddition {
    /// Argo CD's namespace.
    pub namespace: String,
    /// `metadata.resourceVersion` as read: the write's precondition.
    pub resource_version: Option<String>,
    /// `data.ssh_known_hosts` as read.
    pub existing: String,
    /// The lines to add (empty: nothing to do).
    pub missing: Vec<String>,
}

impl Cluster {
    /// Reads `argocd-ssh-known-hosts-cm` in `namespace` and works out which lines of `kh` it
    /// lacks; refuses a line for the same host and key type with another key, and a cluster
    /// without the ConfigMap (Argo CD is not in that namespace).
    pub async fn plan_argocd_known_hosts(
        &self,
        namespace: &str,
        kh: &KnownHosts,
    ) -> Result<KnownHostsAddition> {
        let what = format!("ConfigMap {namespace}/{KNOWN_HOSTS_CONFIG_MAP}");
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        let cm = match api.get(KNOWN_HOSTS_CONFIG_MAP).await {
            Ok(cm) => cm,
            Err(kube::Error::Api(st)) if st.code == 404 => {
                return Err(Error::input(
                    what,
                    "not found: Argo CD keeps its trusted host keys there",
                    message!(
                        "pass the namespace Argo CD runs in ({}); nothing was changed",
                        Setting::Namespace
                    ),
                ))
            }
            Err(e) => return Err(self.kube_error(&format!("get {what}"), e)),
        };
        let existing = cm
            .data
            .as_ref()
            .and_then(|d| d.get("ssh_known_hosts"))
            .cloned()
            .unwrap_or_default();
        let missing = missing_known_hosts(&existing, kh, &what)?;
        Ok(KnownHostsAddition {
            namespace: namespace.to_string(),
            resource_version: cm.metadata.resource_version,
            existing,
            missing,
        })
    }

    /// Adds the planned lines to the live ConfigMap (a merge patch of `data.ssh_known_hosts`
    /// with the read resourceVersion as precondition); every line already there is kept.
    pub async fn add_argocd_known_hosts(&self, plan: &KnownHostsAddition) -> Result<()> {
        if plan.missing.is_empty() {
            return Ok(());
        }
        let mut text = plan.existing.clone();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        for l in &plan.missing {
            text.push_str(l);
            text.push('\n');
        }
        let mut patch = json!({ "data": { "ssh_known_hosts": text } });
        if let Some(rv) = &plan.resource_version {
            patch["metadata"] = json!({ "resourceVersion": rv });
        }
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &plan.namespace);
        let params = PatchParams {
            dry_run: self.dry_run,
            field_manager: Some(super::FIELD_MANAGER.into()),
            ..Default::default()
        };
        api.patch(KNOWN_HOSTS_CONFIG_MAP, &params, &Patch::Merge(&patch))
            .await
            .map(|_| ())
            .map_err(|e| {
                self.kube_error(
                    &format!(
                        "add host keys to ConfigMap {}/{KNOWN_HOSTS_CONFIG_MAP}",
                        plan.namespace
                    ),
                    e,
                )
            })
    }
}
