//! Where git runs: git-sync settings (SK005, SK010, SK015), host-key checking anywhere (SK011),
//! Argo CD repositories (SK012), Airflow git connections (SK013), Flux GitRepositories (SK014),
//! GitHub App settings of git-sync and Flux (SK017).

use super::*;

pub(super) fn is_git_sync(c: &Node) -> bool {
    c.str_at(&["image"]).is_some_and(|i| i.contains("git-sync"))
        || c.str_at(&["name"])
            .is_some_and(|n| n == "git-sync" || n == "git-sync-init")
}

/// git-sync's value for a setting: `--flag=v` / `--flag v` (also `-flag`) first, then the env
/// vars in git-sync's own order. Returns the value and the env var it came from.
pub(super) fn git_sync_setting(
    c: &Node,
    flag: &str,
    envs: &[&'static str],
) -> Option<(String, Option<&'static str>, u32)> {
    let args: Vec<&str> = ["command", "args"]
        .iter()
        .flat_map(|f| c.get_or_null(f).items())
        .filter_map(Node::as_str)
        .collect();
    let mut from_flag = None;
    for (i, a) in args.iter().enumerate() {
        let bare = a.trim_start_matches('-');
        if !a.starts_with('-') {
            continue;
        }
        if let Some(v) = bare.strip_prefix(flag) {
            if let Some(v) = v.strip_prefix('=') {
                from_flag = Some(v.to_string());
            } else if v.is_empty() {
                from_flag = Some(
                    args.get(i + 1)
                        .filter(|n| !n.starts_with('-'))
                        .map_or("true".to_string(), |n| n.to_string()),
                );
            }
        }
    }
    if let Some(v) = from_flag {
        return Some((v, None, c.line));
    }
    let vars = c.get_or_null("env").items();
    for name in envs {
        if let Some(var) = vars.iter().find(|v| v.str_at(&["name"]) == Some(name)) {
            if let Some(v) = var.str_at(&["value"]) {
                return Some((v.to_string(), Some(name), var.line));
            }
        }
    }
    None
}

pub(super) fn is_ssh_url(repo: &str) -> bool {
    let r = repo.trim();
    if r.starts_with("ssh://") || r.starts_with("git+ssh://") {
        return true;
    }
    // scp-like `user@host:path`
    !r.contains("://") && r.contains('@') && r.contains(':')
}

pub(super) fn audit_git_sync(
    c: &Node,
    cname: &str,
    volumes: &VolumesByName<'_, '_>,
    e: &mut Emitter<'_, '_>,
) {
    let repo = git_sync_setting(c, "repo", &["GITSYNC_REPO", "GIT_SYNC_REPO"]);
    let ssh_flag = git_sync_setting(c, "ssh", &["GITSYNC_SSH", "GIT_SYNC_SSH"])
        .and_then(|(v, _, _)| crate::audit::doc::parse_bool(&v))
        == Some(true);
    let key_file = git_sync_setting(
        c,
        "ssh-key-file",
        &[
            "GITSYNC_SSH_KEY_FILE",
            "GIT_SYNC_SSH_KEY_FILE",
            "GIT_SSH_KEY_FILE",
        ],
    );
    audit_git_sync_app(c, cname, e);
    let mounts = c.get_or_null("volumeMounts").items();
    let key_mounted = mounts.iter().any(|m| {
        m.str_at(&["mountPath"])
            .is_some_and(|p| p.starts_with("/etc/git-secret"))
            && m.str_at(&["name"]).is_some_and(|n| volumes.contains_key(n))
    });
    // git-sync 4 uses SSH exactly when the repo URL is an SSH one; the other signals only
    // count when the repo is not in the manifest.
    let uses_ssh = match &repo {
        Some((r, _, _)) => is_ssh_url(r),
        None => ssh_flag || key_file.is_some() || key_mounted,
    };
    if !uses_ssh {
        return;
    }
    let checking = git_sync_setting(
        c,
        "ssh-known-hosts",
        &[
            "GITSYNC_SSH_KNOWN_HOSTS",
            "GIT_SYNC_KNOWN_HOSTS",
            "GIT_KNOWN_HOSTS",
        ],
    );
    if let Some((value, env, line)) = &checking {
        if crate::audit::doc::parse_bool(value) == Some(false) {
            let by = env.map_or("--ssh-known-hosts=false".to_string(), |n| {
                format!("{n}=false")
            });
            e.emit(
                Rule::Sk005,
                Severity::Error,
                format!(
                    "git-sync container {cname} in {} has host-key checking switched off ({by})",
                    e.what()
                ),
                At {
                    line: *line,
                    container: Some(cname),
                    env: *env,
                    ..At::default()
                },
            );
            return;
        }
    }
    // git-sync appends `-o StrictHostKeyChecking=yes` to a GIT_SSH_COMMAND it finds, and ssh
    // keeps the first value of an option: the user's `=no` wins.
    let ssh_command = c
        .get_or_null("env")
        .items()
        .iter()
        .find(|v| v.str_at(&["name"]) == Some("GIT_SSH_COMMAND"));
    if let Some(var) = ssh_command {
        if var
            .str_at(&["value"])
            .is_some_and(|v| host_key_checking_off(v).is_some())
        {
            e.emit(
                Rule::Sk005,
                Severity::Error,
                format!(
                    "git-sync container {cname} in {} has host-key checking switched off (GIT_SSH_COMMAND)",
                    e.what()
                ),
                At {
                    line: var.line,
                    container: Some(cname),
                    env: Some("GIT_SSH_COMMAND"),
                    ..At::default()
                },
            );
            return;
        }
    }
    let file = git_sync_setting(
        c,
        "ssh-known-hosts-file",
        &[
            "GITSYNC_SSH_KNOWN_HOSTS_FILE",
            "GIT_SYNC_SSH_KNOWN_HOSTS_FILE",
            "GIT_SSH_KNOWN_HOSTS_FILE",
        ],
    )
    .map(|(v, _, _)| v)
    .unwrap_or_else(|| "/etc/git-secret/known_hosts".to_string());
    let covered = mounts.iter().any(|m| {
        m.str_at(&["mountPath"]).is_some_and(|p| {
            let p = p.trim_end_matches('/');
            file == p || file.starts_with(&format!("{p}/"))
        })
    });
    if !covered {
        e.emit(
            Rule::Sk010,
            Severity::Warning,
            format!(
                "git-sync container {cname} in {} checks host keys but mounts no known_hosts file at {file}: every sync will fail",
                e.what()
            ),
            At {
                line: c.line,
                container: Some(cname),
                ..At::default()
            },
        );
    }
}

/// Storage of Secrets the External Secrets Operator renders (issue 15).
pub const EXTERNAL_SECRET: &str = "external-secret";

/// A Secret owned by an ExternalSecret (as ESO writes it in the cluster).
pub(super) fn rendered_by_eso(obj: &Node) -> bool {
    obj.at(&["metadata", "ownerReferences"])
        .is_some_and(|refs| {
            refs.items()
                .iter()
                .any(|r| r.str_at(&["kind"]) == Some("ExternalSecret"))
        })
}

/// SK015: git-sync's password as an env var (a literal or from a Secret), not a file.
pub(super) fn audit_git_sync_password(c: &Node, cname: &str, e: &mut Emitter<'_, '_>) {
    for var in c.get_or_null("env").items() {
        let Some(vname) = var.str_at(&["name"]) else {
            continue;
        };
        if !matches!(vname, "GITSYNC_PASSWORD" | "GIT_SYNC_PASSWORD") {
            continue;
        }
        let set = var.str_at(&["value"]).is_some_and(|v| !v.is_empty())
            || var.get("valueFrom").is_some_and(|v| !v.is_null());
        if set {
            e.emit(
                Rule::Sk015,
                Severity::Warning,
                format!(
                    "git-sync container {cname} in {} takes its password from env {vname}, which never changes: use GITSYNC_PASSWORD_FILE",
                    e.what()
                ),
                At {
secret: var.str_at(&["valueFrom", "secretKeyRef", "name"]),
..At::env_var(var.line, cname, vname)
},
            );
        }
    }
}

/// Why an ssh option string turns host-key checking off (`StrictHostKeyChecking=no|off`,
/// `UserKnownHostsFile=/dev/null`), or `None`. Option names are case-insensitive in ssh, and
/// `-oName=value`, `-o Name=value`, `-o "Name value"` and ssh_config lines all count.
pub fn host_key_checking_off(text: &str) -> Option<&'static str> {
    let lower = text.to_ascii_lowercase();
    let value_after = |name: &str| -> Vec<String> {
        let mut values = Vec::new();
        let mut from = 0;
        while let Some(i) = lower[from..].find(name) {
            let rest = &lower[from + i + name.len()..];
            let rest = rest.trim_start_matches([' ', '\t', '"', '\'']);
            let rest = rest.strip_prefix('=').unwrap_or(rest);
            let rest = rest.trim_start_matches([' ', '\t', '"', '\'']);
            let v: String = rest
                .chars()
                .take_while(|c| !c.is_whitespace() && !matches!(c, '"' | '\'' | ';' | ')'))
                .collect();
            values.push(v);
            from += i + name.len();
        }
        values
    };
    if value_after("stricthostkeychecking")
        .iter()
        .any(|v| v == "no" || v == "off")
    {
        return Some("StrictHostKeyChecking=no");
    }
    if value_after("userknownhostsfile")
        .iter()
        .any(|v| v == "/dev/null")
    {
        return Some("UserKnownHostsFile=/dev/null");
    }
    None
}

/// SK011: any env value, arg or command word turning ssh host-key checking off. In a git-sync
/// container GIT_SSH_COMMAND is SK005's.
pub(super) fn audit_host_key_settings(
    c: &Node,
    cname: &str,
    git_sync: bool,
    e: &mut Emitter<'_, '_>,
) {
    for var in c.get_or_null("env").items() {
        let vname = var.str_at(&["name"]).unwrap_or("<unnamed>");
        if git_sync && vname == "GIT_SSH_COMMAND" {
            continue;
        }
        let Some(why) = var.str_at(&["value"]).and_then(host_key_checking_off) else {
            continue;
        };
        e.emit(
            Rule::Sk011,
            Severity::Error,
            format!(
                "env {vname} of container {cname} in {} turns SSH host-key checking off ({why})",
                e.what()
            ),
            At::env_var(var.line, cname, vname),
        );
    }
    for field in ["command", "args"] {
        for (i, word) in c.get_or_null(field).items().iter().enumerate() {
            let Some(text) = word.as_str() else { continue };
            // `-o` `StrictHostKeyChecking=no` as two words: the second one carries it.
            let Some(why) = host_key_checking_off(text) else {
                continue;
            };
            let key = format!("{field}[{i}]");
            e.emit(
                Rule::Sk011,
                Severity::Error,
                format!(
                    "{key} of container {cname} in {} turns SSH host-key checking off ({why})",
                    e.what()
                ),
                At {
                    line: word.line,
                    container: Some(cname),
                    key: Some(&key),
                    ..At::default()
                },
            );
        }
    }
}

/// SK012: Argo CD repository / repo-creds Secrets that skip verification.
pub(super) fn audit_argocd_repository(obj: &Node, e: &mut Emitter<'_, '_>) {
    let Some(kind) = obj.str_at(&["metadata", "labels", "argocd.argoproj.io/secret-type"]) else {
        return;
    };
    if !kind.starts_with("repo") {
        return;
    }
    let entries = secret_entries(obj, |k| k == "insecure" || k == "insecureIgnoreHostKey");
    for (field, key, v, text) in entries {
        if crate::audit::doc::parse_bool(text.trim()) != Some(true) {
            continue;
        }
        let what = if key == "insecure" {
            "skips TLS and SSH host-key verification"
        } else {
            "accepts any SSH host key"
        };
        let name = e.name;
        e.emit(
            Rule::Sk012,
            Severity::Error,
            format!(
                "Argo CD {kind} Secret {} {what} ({field}.{key}: true)",
                e.what()
            ),
            At {
                line: v.line,
                secret: Some(name),
                key: Some(key),
                ..At::default()
            },
        );
    }
}

/// SK013: `AIRFLOW_CONN_*` keys of a Secret (read by Airflow through envFrom or its secrets
/// backend) holding a git connection.
pub(super) fn audit_airflow_connection_secret(obj: &Node, e: &mut Emitter<'_, '_>) {
    let entries = secret_entries(obj, |k| k.starts_with("AIRFLOW_CONN_"));
    for (field, key, v, text) in entries {
        let Some((severity, why)) = airflow_git_connection(&text) else {
            continue;
        };
        let name = e.name;
        e.emit(
            Rule::Sk013,
            severity,
            format!(
                "{} {field}.{key}: Airflow git connection {} {why}",
                e.what(),
                key["AIRFLOW_CONN_".len()..].to_ascii_lowercase()
            ),
            At {
                line: v.line,
                secret: Some(name),
                key: Some(key),
                ..At::default()
            },
        );
    }
}

/// The extras of apache-airflow-providers-git's GitHook that imply SSH (its
/// `_uses_ssh_transport_options`).
pub(super) const AIRFLOW_GIT_SSH_EXTRAS: [&str; 7] = [
    "key_file",
    "private_key",
    "private_key_passphrase",
    "known_hosts_file",
    "ssh_config_file",
    "host_proxy_cmd",
    "ssh_port",
];

pub(super) fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// An Airflow connection (URI or JSON) of type git over SSH whose host-key checking is off
/// (error) or left at GitHook's trust-on-first-use default `accept-new` (warning); `None` for
/// other connections and for `yes` / `ask`.
pub fn airflow_git_connection(value: &str) -> Option<(Severity, String)> {
    let conn = git_connection(value)?;
    if !conn.ssh {
        return None;
    }
    match conn.extra("strict_host_key_checking") {
        Some(x @ ("no" | "off")) => Some((
            Severity::Error,
            format!("turns SSH host-key checking off (strict_host_key_checking: {x})"),
        )),
        None => Some((
            Severity::Warning,
            "leaves strict_host_key_checking unset: GitHook's default accept-new trusts the first host key it sees".to_string(),
        )),
        Some("accept-new") => Some((
            Severity::Warning,
            "trusts the first host key it sees (strict_host_key_checking: accept-new)".to_string(),
        )),
        Some(_) => None,
    }
}

/// An Airflow `git` connection (URI or JSON form) as GitHook reads it.
pub(super) struct GitConnection {
    extras: Vec<(String, String)>,
    /// Whether GitHook uses SSH for it.
    pub ssh: bool,
}

impl GitConnection {
    /// A non-empty extra.
    pub fn extra(&self, name: &str) -> Option<&str> {
        self.extras
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

/// The connection in `value` when it is of type git; `None` otherwise.
pub(super) fn git_connection(value: &str) -> Option<GitConnection> {
    let v = value.trim();
    let (host, extras): (String, Vec<(String, String)>) = if v.starts_with('{') {
        let json: serde_json::Value = serde_json::from_str(v).ok()?;
        let conn_type = json.get("conn_type").and_then(|t| t.as_str())?;
        if conn_type != "git" {
            return None;
        }
        let host = json
            .get("host")
            .and_then(|h| h.as_str())
            .unwrap_or("")
            .to_string();
        let extra = match json.get("extra") {
            Some(serde_json::Value::String(s)) => serde_json::from_str(s).ok()?,
            Some(other) => other.clone(),
            None => serde_json::Value::Null,
        };
        let extras = extra
            .as_object()
            .map(|o| {
                o.iter()
                    .filter(|(_, v)| !v.is_null())
                    .map(|(k, v)| {
                        let text = match v {
                            serde_json::Value::String(s) => s.clone(),
                            other => other.to_string(),
                        };
                        (k.clone(), text)
                    })
                    .collect()
            })
            .unwrap_or_default();
        (host, extras)
    } else {
        let rest = v.strip_prefix("git://")?;
        let (authority, query) = rest.split_once('?').unwrap_or((rest, ""));
        // `login:password@host/schema`: the repo URL is the percent-encoded host.
        let host_part = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        let host = percent_decode(host_part.split('/').next().unwrap_or(""));
        let mut extras: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        if let Some((_, json)) = extras.iter().find(|(k, _)| k == "__extra__").cloned() {
            if let Ok(serde_json::Value::Object(o)) = serde_json::from_str(&json) {
                for (k, v) in o {
                    let text = match v {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    extras.push((k, text));
                }
            }
        }
        (host, extras)
    };
    let mut conn = GitConnection { extras, ssh: false };
    conn.ssh = AIRFLOW_GIT_SSH_EXTRAS
        .iter()
        .any(|k| conn.extra(k).is_some())
        || is_ssh_url(&host);
    Some(conn)
}

/// SK021: git-sync told to authenticate as a GitHub App (an application or client id) without
/// the App key (`--github-app-private-key-file` or `GITSYNC_GITHUB_APP_PRIVATE_KEY`): git-sync
/// refuses to start.
fn audit_git_sync_app(c: &Node, cname: &str, e: &mut Emitter<'_, '_>) {
    let id = git_sync_setting(
        c,
        "github-app-application-id",
        &["GITSYNC_GITHUB_APP_APPLICATION_ID"],
    )
    .or_else(|| git_sync_setting(c, "github-app-client-id", &["GITSYNC_GITHUB_APP_CLIENT_ID"]));
    let Some((_, env, line)) = id else {
        return;
    };
    let key_file = git_sync_setting(
        c,
        "github-app-private-key-file",
        &["GITSYNC_GITHUB_APP_PRIVATE_KEY_FILE"],
    );
    let key_env = c
        .get_or_null("env")
        .items()
        .iter()
        .any(|v| v.str_at(&["name"]) == Some("GITSYNC_GITHUB_APP_PRIVATE_KEY"));
    if key_file.is_some() || key_env {
        return;
    }
    e.emit(
        Rule::Sk021,
        Severity::Error,
        format!(
            "git-sync container {cname} in {} is set to use a GitHub App but is given no App key (--github-app-private-key-file): git-sync will not start",
            e.what()
        ),
        At {
            line,
            container: Some(cname),
            env,
            ..At::default()
        },
    );
}

/// SK014: a Flux GitRepository over SSH; resolved against the input's Secrets at its end.
/// SK021: `provider: github` (a GitHub App) with an SSH URL, which the App cannot serve.
pub(super) fn audit_flux_git_repository(obj: &Node, e: &mut Emitter<'_, '_>) {
    let Some(url) = obj.str_at(&["spec", "url"]) else {
        return;
    };
    if obj.str_at(&["spec", "provider"]) == Some("github") && is_ssh_url(url) {
        e.emit(
            Rule::Sk021,
            Severity::Error,
            format!(
                "{} uses provider: github (a GitHub App key) but fetches {} over SSH: App tokens work only over https://",
                e.what(),
                printable_url(url)
            ),
            At {
                line: obj.at(&["spec", "provider"]).map_or(obj.line, |n| n.line),
                ..At::default()
            },
        );
    }
    if !url.trim_start().starts_with("ssh://") {
        return;
    }
    let Some(secret_ref) = obj.at(&["spec", "secretRef"]) else {
        return;
    };
    let Some(secret) = secret_ref.str_at(&["name"]) else {
        return;
    };
    if let Some(f) = e.finding(
        Rule::Sk014,
        Severity::Warning,
        format!(
            "{} fetches {} over SSH but its Secret {secret} has no known_hosts: Flux will not connect",
            e.what(),
            printable_url(url)
        ),
        At {
            line: secret_ref.line,
            secret: Some(secret),
            key: Some("known_hosts"),
            ..At::default()
        },
    ) {
        e.out.flux_pending.push((
            e.namespace.map(str::to_string),
            secret.to_string(),
            f,
        ));
    }
}

/// A URL without its password, for messages.
pub(super) fn printable_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) => {
            let _ = u.set_password(None);
            u.to_string()
        }
        Err(_) => "the repository".to_string(),
    }
}
