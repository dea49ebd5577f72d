//! Which containers of a pod spec read which Secrets, and how: the one walk shared by the audit
//! (its consumption summary and HTML matrix) and rotation (which workloads must restart,
//! [`crate::cluster::secret_uses`]).
//!
//! Every container list counts: `initContainers`, `containers` and `ephemeralContainers` (an
//! ephemeral debug container that takes a Secret in its environment keeps the old value like any
//! other). A volume counts only where a container mounts it.

use crate::audit::doc::Node;

/// The pod spec's container lists, in the order the kubelet starts them.
pub const CONTAINER_LISTS: [&str; 3] = ["initContainers", "containers", "ephemeralContainers"];

/// Files in a Secret volume get this mode unless `defaultMode` or `items[].mode` say otherwise.
pub const DEFAULT_MODE: i64 = 0o644;

/// A Secret in the pod's volumes (a `secret` volume, or one source of a `projected` volume).
#[derive(Debug)]
pub struct SecretVolume<'n> {
    /// The line of the volume (`- name: VOLUME`), where the mode is set.
    pub line: u32,
    /// The volume's name.
    pub volume: &'n str,
    /// The Secret's name.
    pub secret: &'n str,
    /// OR of every file's mode.
    pub mode: i64,
    /// `items`, when the volume picks keys.
    pub items: &'n [Node],
    /// Part of a projected volume.
    pub projected: bool,
}

/// How a container reads a Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum How<'n> {
    /// `env[].valueFrom.secretKeyRef`.
    Env {
        /// The variable.
        var: &'n str,
        /// The key, when set.
        key: Option<&'n str>,
    },
    /// `envFrom[].secretRef`.
    EnvFrom {
        /// `prefix`, when set.
        prefix: Option<&'n str>,
    },
    /// A mount of a volume holding the Secret.
    Volume {
        /// The volume.
        volume: &'n str,
        /// Where.
        mount_path: Option<&'n str>,
        /// `subPath` or `subPathExpr`, when set (the file then never updates).
        sub_path: Option<&'n str>,
        /// The files' mode.
        mode: i64,
        /// From a projected volume.
        projected: bool,
        /// A single key (`items` names exactly one).
        single_key: bool,
    },
    /// `imagePullSecrets` (the kubelet's, no container's).
    ImagePull,
}

/// One read of one Secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRead<'n> {
    /// The Secret.
    pub secret: &'n str,
    /// The container (none for `imagePullSecrets`).
    pub container: Option<&'n str>,
    /// How.
    pub how: How<'n>,
}

/// The Secrets in a pod spec's volumes, in spec order.
pub fn secret_volumes(spec: &Node) -> Vec<SecretVolume<'_>> {
    let mut found = Vec::new();
    for vol in spec.get_or_null("volumes").items() {
        let Some(vname) = vol.str_at(&["name"]) else {
            continue;
        };
        if let Some(sec) = vol.get("secret").filter(|s| s.is_map()) {
            if let Some(secret) = sec.str_at(&["secretName"]) {
                let default = sec
                    .get("defaultMode")
                    .and_then(Node::as_int)
                    .unwrap_or(DEFAULT_MODE);
                found.push(volume(vol.line, sec, vname, secret, default, false));
            }
        }
        if let Some(proj) = vol.get("projected").filter(|p| p.is_map()) {
            let default = proj
                .get("defaultMode")
                .and_then(Node::as_int)
                .unwrap_or(DEFAULT_MODE);
            for source in proj.get_or_null("sources").items() {
                if let Some(sec) = source.get("secret").filter(|s| s.is_map()) {
                    if let Some(secret) = sec.str_at(&["name"]) {
                        found.push(volume(vol.line, sec, vname, secret, default, true));
                    }
                }
            }
        }
    }
    found
}

fn volume<'n>(
    line: u32,
    sec: &'n Node,
    volume: &'n str,
    secret: &'n str,
    default: i64,
    projected: bool,
) -> SecretVolume<'n> {
    let items = sec.get_or_null("items").items();
    let mode = if items.is_empty() {
        default
    } else {
        items
            .iter()
            .map(|i| i.get("mode").and_then(Node::as_int).unwrap_or(default))
            .fold(0, |a, m| a | m)
    };
    SecretVolume {
        line,
        volume,
        secret,
        mode,
        items,
        projected,
    }
}

/// Every read of every Secret in a pod spec: per container (init, regular, ephemeral), its
/// mounts, then `env`, then `envFrom`; then `imagePullSecrets`.
pub fn secret_reads(spec: &Node) -> Vec<SecretRead<'_>> {
    let volumes = secret_volumes(spec);
    let mut by_name: std::collections::HashMap<&str, Vec<&SecretVolume<'_>>> =
        std::collections::HashMap::new();
    for v in &volumes {
        by_name.entry(v.volume).or_default().push(v);
    }
    let mut reads = Vec::new();
    for list in CONTAINER_LISTS {
        for c in spec.get_or_null(list).items() {
            let cname = c.str_at(&["name"]).unwrap_or("<unnamed>");
            for m in c.get_or_null("volumeMounts").items() {
                let Some(mname) = m.str_at(&["name"]) else {
                    continue;
                };
                let sub_path = ["subPath", "subPathExpr"]
                    .iter()
                    .filter_map(|k| m.str_at(&[k]))
                    .find(|s| !s.is_empty());
                for v in by_name.get(mname).into_iter().flatten() {
                    reads.push(SecretRead {
                        secret: v.secret,
                        container: Some(cname),
                        how: How::Volume {
                            volume: v.volume,
                            mount_path: m.str_at(&["mountPath"]),
                            sub_path,
                            mode: v.mode,
                            projected: v.projected,
                            single_key: v.items.len() == 1,
                        },
                    });
                }
            }
            for var in c.get_or_null("env").items() {
                if let Some(r) = var.at(&["valueFrom", "secretKeyRef"]) {
                    reads.push(SecretRead {
                        secret: r.str_at(&["name"]).unwrap_or("<unnamed>"),
                        container: Some(cname),
                        how: How::Env {
                            var: var.str_at(&["name"]).unwrap_or("<unnamed>"),
                            key: r.str_at(&["key"]),
                        },
                    });
                }
            }
            for from in c.get_or_null("envFrom").items() {
                if let Some(r) = from.get("secretRef") {
                    reads.push(SecretRead {
                        secret: r.str_at(&["name"]).unwrap_or("<unnamed>"),
                        container: Some(cname),
                        how: How::EnvFrom {
                            prefix: from.str_at(&["prefix"]),
                        },
                    });
                }
            }
        }
    }
    for ips in spec.get_or_null("imagePullSecrets").items() {
        if let Some(name) = ips.str_at(&["name"]) {
            reads.push(SecretRead {
                secret: name,
                container: None,
                how: How::ImagePull,
            });
        }
    }
    reads
}

/// The shared test corpus: pod specs and, for Secret `s`, every read as
/// `container how [volume|var]`. `crate::cluster`'s tests run the same cases through
/// [`crate::cluster::secret_uses`] on the typed `PodSpec`.
#[cfg(test)]
pub(crate) const CASES: &[(&str, &str, &[&str])] = &[
    (
        "env, envFrom and a volume in one container",
        "containers:\n- name: app\n  image: x\n  env:\n  - {name: A, valueFrom: {secretKeyRef: {name: s, key: a}}}\n  - {name: B, valueFrom: {secretKeyRef: {name: other, key: b}}}\n  envFrom: [{secretRef: {name: s}}]\n  volumeMounts: [{name: k, mountPath: /k}]\nvolumes: [{name: k, secret: {secretName: s}}]\n",
        &["app volume k", "app env A", "app envFrom"],
    ),
    (
        "init containers and subPath",
        "initContainers:\n- name: clone\n  image: x\n  volumeMounts: [{name: k, mountPath: /k, subPathExpr: \"$(POD)\"}]\ncontainers: [{name: main, image: x}]\nvolumes: [{name: k, secret: {secretName: s}}]\n",
        &["clone subPath k"],
    ),
    (
        "ephemeral containers read Secrets too",
        "containers: [{name: main, image: x}]\nephemeralContainers:\n- name: debugger\n  image: busybox\n  env: [{name: T, valueFrom: {secretKeyRef: {name: s, key: t}}}]\n  envFrom: [{secretRef: {name: s}}]\n",
        &["debugger env T", "debugger envFrom"],
    ),
    (
        "projected volumes, and volumes nobody mounts",
        "containers:\n- name: app\n  image: x\n  volumeMounts: [{name: p, mountPath: /p}]\nvolumes:\n- {name: p, projected: {sources: [{configMap: {name: c}}, {secret: {name: s}}]}}\n- {name: unused, secret: {secretName: s}}\n",
        &["app volume p"],
    ),
    (
        "other Secrets only",
        "containers:\n- name: app\n  image: x\n  envFrom: [{secretRef: {name: t}}]\nimagePullSecrets: [{name: s}]\n",
        &[],
    ),
];

/// A read as the corpus spells it (image pulls are the kubelet's, not a container's: skipped).
#[cfg(test)]
pub(crate) fn describe(r: &SecretRead<'_>) -> Option<String> {
    let c = r.container?;
    Some(match &r.how {
        How::Env { var, .. } => format!("{c} env {var}"),
        How::EnvFrom { .. } => format!("{c} envFrom"),
        How::Volume {
            volume, sub_path, ..
        } => format!(
            "{c} {} {volume}",
            if sub_path.is_some() {
                "subPath"
            } else {
                "volume"
            }
        ),
        How::ImagePull => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_container_list_and_every_way_of_reading_is_found_once() {
        for (what, yaml, want) in CASES {
            let spec = crate::audit::doc::parse_all(yaml).unwrap().remove(0);
            let got: Vec<String> = secret_reads(&spec)
                .iter()
                .filter(|r| r.secret == "s")
                .filter_map(describe)
                .collect();
            assert_eq!(got, *want, "{what}");
        }
    }

    #[test]
    fn modes_follow_default_mode_and_items() {
        let spec = crate::audit::doc::parse_all(
            "volumes:\n- {name: a, secret: {secretName: s}}\n- {name: b, secret: {secretName: s, defaultMode: 0400, items: [{key: k, path: k, mode: 0440}, {key: j, path: j}]}}\n- {name: c, projected: {defaultMode: 0400, sources: [{secret: {name: s}}]}}\n",
        )
        .unwrap()
        .remove(0);
        let modes: Vec<(i64, bool)> = secret_volumes(&spec)
            .iter()
            .map(|v| (v.mode, v.projected))
            .collect();
        assert_eq!(modes, vec![(0o644, false), (0o440, false), (0o400, true)]);
    }
}
