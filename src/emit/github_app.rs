//! A GitHub App as the git credential: each consumer's Secret (the App's private key and ids, in
//! the keys that consumer reads) and the object that uses it, cloning over HTTPS.
//!
//! | consumer | Secret keys | the object that uses it |
//! |---|---|---|
//! | Flux (>= 2.5) | `githubAppID`, `githubAppInstallationID`, `githubAppPrivateKey` (+ `githubAppBaseURL`) | GitRepository, `provider: github`, https URL |
//! | git-sync (>= 4.3) | `github-app-private-key` (a file) | Deployment patch: `GITSYNC_GITHUB_APP_*` variables, the key mounted 0440 |
//! | Argo CD | `type`, `url`, `githubAppID`, `githubAppInstallationID`, `githubAppPrivateKey` (+ `githubAppEnterpriseBaseUrl`) | the `repository` Secret itself |
//! | Airflow git provider | `github-app-private-key` (a file) | ConfigMap: the `git` connection (`github_app_id`, `github_installation_id`, `key_file`) and the bundle list |

use super::{b64, check_branch, check_dns_name, keys, secret_value, ManifestStream};
use crate::error::{Error, Result, Setting};
use crate::github::app_credential::AppKey;
use crate::github::ApiUrl;
use crate::message;
use crate::repo::RepoRef;
use serde_json::{json, Map, Value};

/// The annotation holding the App key's `SHA256:` fingerprint (as GitHub's settings page shows it).
pub const APP_KEY_FINGERPRINT: &str = "sealkey.io/app-key-fingerprint";
/// The annotation holding the App id.
pub const APP_ID: &str = "sealkey.io/github-app-id";
/// The file name of the key inside the git-sync and Airflow Secrets.
pub const KEY_FILE: &str = "github-app-private-key";
/// Where git-sync finds the key.
pub const GIT_SYNC_KEY_DIR: &str = "/etc/git-secret/github-app";

/// Who reads the App's key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum AppConsumer {
    /// Flux source-controller: a Secret and a GitRepository with `provider: github`.
    Flux,
    /// A git-sync v4 (>= 4.3) container: a Secret and a Deployment patch.
    GitSync,
    /// Argo CD: a `repository` Secret with the App's fields.
    Argocd,
    /// Airflow 3's GitDagBundle (apache-airflow-providers-git): a Secret and the connection.
    AirflowGitBundle,
}

impl AppConsumer {
    /// The command-line name.
    pub fn as_str(self) -> &'static str {
        match self {
            AppConsumer::Flux => "flux",
            AppConsumer::GitSync => "git-sync",
            AppConsumer::Argocd => "argocd",
            AppConsumer::AirflowGitBundle => "airflow-git-bundle",
        }
    }

    /// The namespace used when none is given.
    pub fn default_namespace(self) -> &'static str {
        match self {
            AppConsumer::Flux => "flux-system",
            AppConsumer::Argocd => "argocd",
            _ => "default",
        }
    }
}

/// What to emit around an App key; no secrets in here.
#[derive(Debug, Clone)]
pub struct AppEmitSettings {
    /// The repository.
    pub repo: RepoRef,
    /// Who reads it.
    pub consumer: AppConsumer,
    /// Namespace of every object.
    pub namespace: String,
    /// The Secret's name (default `github-app-REPO`).
    pub secret_name: Option<String>,
    /// The App id as given (numeric App ID, or the `Iv...` client ID for git-sync).
    pub app_id: String,
    /// The numeric App ID (from `GET /app`), which Flux, Argo CD and Airflow need.
    pub numeric_app_id: u64,
    /// The installation that covers the repository.
    pub installation_id: u64,
    /// The API base URL (github.com or `https://HOST/api/v3`).
    pub api_url: ApiUrl,
    /// Branch to sync.
    pub branch: String,
    /// git-sync: the Deployment to patch and its container.
    pub workload: String,
    /// git-sync: the container.
    pub container: String,
    /// Airflow: the connection id.
    pub conn_id: String,
    /// Airflow: the release name (the ConfigMap is RELEASE-git-bundle).
    pub release_name: String,
    /// Creation time written into the annotations.
    pub created: jiff::Timestamp,
}

impl AppEmitSettings {
    /// The Secret's name.
    pub fn secret_name(&self) -> String {
        self.secret_name.clone().unwrap_or_else(|| {
            format!("github-app-{}", self.repo.name.to_ascii_lowercase()).replace(['_', '.'], "-")
        })
    }

    /// The HTTPS clone URL on the git host of the API.
    pub fn clone_url(&self) -> String {
        format!(
            "https://{}/{}/{}.git",
            self.api_url.git_host(),
            self.repo.owner,
            self.repo.name
        )
    }

    /// The API base URL for GitHub Enterprise Server, `None` on github.com.
    fn enterprise_api(&self) -> Option<String> {
        (!self.api_url.is_github_com()).then(|| self.api_url.as_str().to_string())
    }

    /// Checks names and combinations before anything is read or asked.
    pub fn validate(&self) -> Result<()> {
        check_dns_name(Setting::Namespace, &self.namespace, 63)?;
        check_dns_name(Setting::SecretName, &self.secret_name(), 253)?;
        check_dns_name(Setting::Workload, &self.workload, 253)?;
        check_dns_name(Setting::Container, &self.container, 63)?;
        check_dns_name(Setting::ReleaseName, &self.release_name, 53)?;
        check_branch(&self.branch)?;
        if self.consumer == AppConsumer::AirflowGitBundle && !self.api_url.is_github_com() {
            // The provider's hook builds its GitHub client with the default base URL
            // (api.github.com) and has no setting for another.
            return Err(Error::input(
                message!(
                    "{} airflow-git-bundle {} {}",
                    Setting::Consumer,
                    Setting::ApiUrl,
                    self.api_url.as_str().to_string()
                ),
                "Airflow's git provider asks only api.github.com for App tokens",
                message!(
                    "on GitHub Enterprise Server give Airflow a deploy key instead (`create` with {} airflow-git-bundle)",
                    Setting::Consumer
                ),
            ));
        }
        Ok(())
    }

    fn metadata(&self, name: &str, key: &AppKey) -> Value {
        json!({
            "name": name,
            "namespace": self.namespace,
            "labels": { keys::MANAGED_BY: "sealkey" },
            "annotations": {
                APP_KEY_FINGERPRINT: key.fingerprint(),
                APP_ID: self.numeric_app_id.to_string(),
                keys::CREATED: self.created.strftime("%Y-%m-%dT%H:%M:%SZ").to_string(),
                keys::REPO: self.repo.slug(),
                keys::CONSUMER: format!("github-app/{}", self.consumer.as_str()),
            },
        })
    }

    fn secret(&self, key: &AppKey, data: Map<String, Value>) -> Value {
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": self.metadata(&self.secret_name(), key),
            "type": "Opaque",
            "data": Value::Object(data),
        })
    }
}

fn put(data: &mut Map<String, Value>, name: &str, value: &str) {
    data.insert(
        name.into(),
        Value::String(b64(value.as_bytes()).to_string()),
    );
}

/// The consumer's documents around `key`: its Secret first, then what uses it.
pub fn app_objects(settings: &AppEmitSettings, key: &AppKey) -> Result<ManifestStream> {
    settings.validate()?;
    let pem = key.expose_pkcs1_pem()?;
    let pem_b64 = || secret_value(b64(pem.as_bytes()));
    let app_id = settings.numeric_app_id.to_string();
    let installation = settings.installation_id.to_string();
    let mut data = Map::new();
    let docs = match settings.consumer {
        AppConsumer::Flux => {
            put(&mut data, "githubAppID", &app_id);
            put(&mut data, "githubAppInstallationID", &installation);
            data.insert("githubAppPrivateKey".into(), pem_b64());
            if let Some(api) = settings.enterprise_api() {
                put(&mut data, "githubAppBaseURL", &api);
            }
            let repo = json!({
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "GitRepository",
                "metadata": {
                    "name": settings.repo.name.to_ascii_lowercase().replace(['_', '.'], "-"),
                    "namespace": settings.namespace,
                    "labels": { keys::MANAGED_BY: "sealkey" },
                },
                "spec": {
                    "interval": "1m",
                    "url": settings.clone_url(),
                    "ref": { "branch": settings.branch },
                    "provider": "github",
                    "secretRef": { "name": settings.secret_name() },
                },
            });
            vec![settings.secret(key, data), repo]
        }
        AppConsumer::Argocd => {
            put(&mut data, "type", "git");
            put(&mut data, "url", &settings.clone_url());
            put(&mut data, "githubAppID", &app_id);
            put(&mut data, "githubAppInstallationID", &installation);
            data.insert("githubAppPrivateKey".into(), pem_b64());
            if let Some(api) = settings.enterprise_api() {
                put(&mut data, "githubAppEnterpriseBaseUrl", &api);
            }
            let mut secret = settings.secret(key, data);
            // `repository`, not `repo-creds`: repo-creds match by URL prefix, so credentials for
            // OWNER/dags would also serve OWNER/dags-archive.
            secret["metadata"]["labels"]["argocd.argoproj.io/secret-type"] = json!("repository");
            vec![secret]
        }
        AppConsumer::GitSync => {
            data.insert(KEY_FILE.into(), pem_b64());
            vec![settings.secret(key, data), git_sync_patch(settings)]
        }
        AppConsumer::AirflowGitBundle => {
            data.insert(KEY_FILE.into(), pem_b64());
            vec![
                settings.secret(key, data),
                airflow_config_map(settings, key),
            ]
        }
    };
    Ok(ManifestStream::from_docs(docs))
}

/// git-sync's id variable: the client id when one was given, else the numeric App ID.
fn git_sync_id(settings: &AppEmitSettings) -> (&'static str, String) {
    if settings.app_id.chars().all(|c| c.is_ascii_digit()) {
        (
            "GITSYNC_GITHUB_APP_APPLICATION_ID",
            settings.numeric_app_id.to_string(),
        )
    } else {
        ("GITSYNC_GITHUB_APP_CLIENT_ID", settings.app_id.clone())
    }
}

/// A strategic-merge patch for the git-sync Deployment: the key mounted read-only (0440, group
/// 65533, git-sync's user) and the App variables; no secret in env.
fn git_sync_patch(settings: &AppEmitSettings) -> Value {
    let (id_var, id) = git_sync_id(settings);
    let mut env = vec![
        json!({"name": "GITSYNC_REPO", "value": settings.clone_url()}),
        json!({"name": "GITSYNC_REF", "value": settings.branch}),
        json!({"name": "GITSYNC_GITHUB_APP_PRIVATE_KEY_FILE", "value": format!("{GIT_SYNC_KEY_DIR}/{KEY_FILE}")}),
        json!({"name": id_var, "value": id}),
        json!({"name": "GITSYNC_GITHUB_APP_INSTALLATION_ID", "value": settings.installation_id.to_string()}),
    ];
    if let Some(api) = settings.enterprise_api() {
        env.push(json!({"name": "GITSYNC_GITHUB_BASE_URL", "value": format!("{api}/")}));
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": { "name": settings.workload, "namespace": settings.namespace },
        "spec": { "template": { "spec": {
            "securityContext": { "fsGroup": 65533 },
            "volumes": [{
                "name": "github-app-key",
                "secret": { "secretName": settings.secret_name(), "defaultMode": 0o440 },
            }],
            "containers": [{
                "name": settings.container,
                "env": env,
                "volumeMounts": [{
                    "name": "github-app-key",
                    "mountPath": GIT_SYNC_KEY_DIR,
                    "readOnly": true,
                }],
            }],
        }}},
    })
}

/// The Airflow connection and bundle list, in a ConfigMap (no secret: the connection points at
/// the mounted key file, as the deploy-key bundle does).
fn airflow_config_map(settings: &AppEmitSettings, key: &AppKey) -> Value {
    let conn = json!({
        "conn_type": "git",
        "host": settings.clone_url(),
        "extra": {
            "github_app_id": settings.numeric_app_id.to_string(),
            "github_installation_id": settings.installation_id.to_string(),
            "key_file": format!("{}/{KEY_FILE}", super::airflow::BUNDLE_SECRET_DIR),
        },
    });
    let bundles = json!([{
        "name": settings.repo.name,
        "classpath": "airflow.providers.git.bundles.git.GitDagBundle",
        "kwargs": { "git_conn_id": settings.conn_id, "tracking_ref": settings.branch },
    }]);
    let mut cm = Map::new();
    cm.insert(
        format!("AIRFLOW_CONN_{}", settings.conn_id.to_ascii_uppercase()),
        json!(conn.to_string()),
    );
    cm.insert(
        "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST".into(),
        json!(bundles.to_string()),
    );
    json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": settings.metadata(&format!("{}-git-bundle", settings.release_name), key),
        "data": Value::Object(cm),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs1::EncodeRsaPrivateKey;

    fn settings(consumer: AppConsumer, api: &str) -> AppEmitSettings {
        AppEmitSettings {
            repo: RepoRef::parse("acme/dags").unwrap(),
            consumer,
            namespace: consumer.default_namespace().into(),
            secret_name: None,
            app_id: "123".into(),
            numeric_app_id: 123,
            installation_id: 77,
            api_url: ApiUrl::parse(api).unwrap(),
            branch: "main".into(),
            workload: "git-sync".into(),
            container: "git-sync".into(),
            conn_id: "git_default".into(),
            release_name: "airflow".into(),
            created: jiff::Timestamp::from_second(1_800_000_000).unwrap(),
        }
    }

    fn key() -> (AppKey, String) {
        let k = rsa::RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let pem = k.to_pkcs1_pem(Default::default()).unwrap().to_string();
        (AppKey::from_pem(pem.as_bytes(), "k").unwrap(), pem)
    }

    fn data_keys(doc: &Value) -> Vec<String> {
        doc["data"].as_object().unwrap().keys().cloned().collect()
    }

    fn decoded(doc: &Value, k: &str) -> String {
        use base64::Engine;
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(doc["data"][k].as_str().unwrap())
                .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn each_consumer_gets_its_own_keys_and_enterprise_url_only_on_ghes() {
        let (key, pem) = key();
        let gh = "https://api.github.com";
        let ghes = "https://ghe.example.com/api/v3";
        let flux = app_objects(&settings(AppConsumer::Flux, gh), &key).unwrap();
        let docs = flux.expose_docs();
        assert_eq!(
            data_keys(&docs[0]),
            [
                "githubAppID",
                "githubAppInstallationID",
                "githubAppPrivateKey"
            ]
        );
        assert_eq!(decoded(&docs[0], "githubAppPrivateKey"), pem);
        assert_eq!(docs[1]["spec"]["provider"], "github");
        assert_eq!(docs[1]["spec"]["url"], "https://github.com/acme/dags.git");
        let flux = app_objects(&settings(AppConsumer::Flux, ghes), &key).unwrap();
        assert_eq!(decoded(&flux.expose_docs()[0], "githubAppBaseURL"), ghes);
        assert_eq!(
            flux.expose_docs()[1]["spec"]["url"],
            "https://ghe.example.com/acme/dags.git"
        );

        let argo = app_objects(&settings(AppConsumer::Argocd, ghes), &key).unwrap();
        let s = &argo.expose_docs()[0];
        assert_eq!(
            s["metadata"]["labels"]["argocd.argoproj.io/secret-type"],
            "repository"
        );
        assert_eq!(decoded(s, "githubAppEnterpriseBaseUrl"), ghes);
        assert_eq!(decoded(s, "type"), "git");

        let gs = app_objects(&settings(AppConsumer::GitSync, gh), &key).unwrap();
        let docs = gs.expose_docs();
        assert_eq!(data_keys(&docs[0]), [KEY_FILE]);
        let env = docs[1]["spec"]["template"]["spec"]["containers"][0]["env"].to_string();
        assert!(env.contains("GITSYNC_GITHUB_APP_APPLICATION_ID"), "{env}");
        assert!(!env.contains("GITSYNC_GITHUB_BASE_URL"), "{env}");
        assert!(!env.contains("BEGIN"), "no key in env: {env}");

        let mut client_id = settings(AppConsumer::GitSync, ghes);
        client_id.app_id = "Iv1.abc123".into();
        let gs = app_objects(&client_id, &key).unwrap();
        let env =
            gs.expose_docs()[1]["spec"]["template"]["spec"]["containers"][0]["env"].to_string();
        assert!(env.contains("GITSYNC_GITHUB_APP_CLIENT_ID") && env.contains("Iv1.abc123"));
        assert!(env.contains("https://ghe.example.com/api/v3/"), "{env}");

        let af = app_objects(&settings(AppConsumer::AirflowGitBundle, gh), &key).unwrap();
        let conn: Value = serde_json::from_str(
            af.expose_docs()[1]["data"]["AIRFLOW_CONN_GIT_DEFAULT"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(conn["extra"]["github_app_id"], "123");
        assert_eq!(conn["extra"]["github_installation_id"], "77");
        assert!(!af.expose_docs()[1].to_string().contains("BEGIN"));
        let err = app_objects(&settings(AppConsumer::AirflowGitBundle, ghes), &key).unwrap_err();
        assert_eq!(err.exit_code(), 2);
    }
}
