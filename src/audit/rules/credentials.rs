//! What a literal credential or private key looks like (names, formats, PEM, base64 PEM).

use super::*;

/// What a private key stored under `name` is, for messages: the names Flux, Argo CD, git-sync and
/// sealkey give a GitHub App's key say "GitHub App key", any other "private key".
pub fn private_key_noun(name: &str) -> &'static str {
    let n = name.to_ascii_lowercase().replace(['-', '_'], "");
    if n.contains("githubappprivatekey") {
        "GitHub App key"
    } else {
        "private key"
    }
}

/// PEM (or PuTTY) private key text.
pub fn is_private_key_text(s: &str) -> bool {
    (s.contains("-----BEGIN ") && s.contains("PRIVATE KEY-----"))
        || s.trim_start().starts_with("PuTTY-User-Key-File-")
}

/// Base64 of PEM private key text (Secret `data`, chart `extraSecrets` data).
pub fn is_private_key_base64(s: &str) -> bool {
    let t = s.trim_start();
    // "-----BEGIN" and "PuTTY-User" base64-encoded.
    if !(t.starts_with("LS0tLS1CRUdJT") || t.starts_with("UHVUVFktVXNlci")) {
        return false;
    }
    let compact: Zeroizing<Vec<u8>> =
        Zeroizing::new(t.bytes().filter(|b| !b.is_ascii_whitespace()).collect());
    match base64::engine::general_purpose::STANDARD.decode(&*compact) {
        Ok(bytes) => {
            let bytes = Zeroizing::new(bytes);
            std::str::from_utf8(&bytes).is_ok_and(is_private_key_text)
        }
        Err(_) => false,
    }
}

/// Why an env var's literal value is a credential, or `None`.
pub fn literal_credential(name: &str, value: &str) -> Option<&'static str> {
    let v = value.trim();
    if v.is_empty() || is_reference(v) || looks_like_path(v) {
        return None;
    }
    if let Some(kind) = known_token_format(v) {
        return Some(kind);
    }
    if url_with_password(v) {
        return Some("URL with a password");
    }
    // issue 21 item 12: a webhook URL is its own credential (the token is in its path), though
    // `*_URL` names are otherwise settings.
    if known_webhook_url(v) || (webhook_name(name) && url_with_secret_path(v)) {
        return Some("webhook URL");
    }
    if !credential_name(name) {
        return None;
    }
    if crate::audit::doc::parse_bool(v).is_some()
        || v.chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
    {
        return None;
    }
    Some("credential-like name")
}

/// Webhook URLs of chat and alerting services: whoever has one can post as the integration.
fn known_webhook_url(v: &str) -> bool {
    let Some(rest) = v.strip_prefix("https://") else {
        return false;
    };
    let host_and_path = rest.to_ascii_lowercase();
    [
        "hooks.slack.com/services/",
        "hooks.slack.com/workflows/",
        "discord.com/api/webhooks/",
        "discordapp.com/api/webhooks/",
        "outlook.office.com/webhook",
        "api.telegram.org/bot",
    ]
    .iter()
    .any(|p| host_and_path.starts_with(p))
        || host_and_path
            .split('/')
            .next()
            .is_some_and(|h| h.ends_with(".webhook.office.com"))
}

/// `SLACK_WEBHOOK_URL`, `ALERT_WEBHOOK`, `WEBHOOKURL`: names of webhook URLs.
fn webhook_name(name: &str) -> bool {
    name.to_ascii_uppercase()
        .split(['_', '-', '.'])
        .any(|w| w.contains("WEBHOOK"))
}

/// An http(s) URL whose path or query is long enough to carry a token (`http://localhost` or
/// `https://host/` is a setting, not a credential).
fn url_with_secret_path(v: &str) -> bool {
    let Some(rest) = v
        .strip_prefix("https://")
        .or_else(|| v.strip_prefix("http://"))
    else {
        return false;
    };
    let tail = rest.find(['/', '?']).map_or("", |i| &rest[i..]);
    !v.contains(char::is_whitespace) && tail.trim_matches(['/', '?']).len() >= 8
}

pub(super) fn is_reference(v: &str) -> bool {
    (v.starts_with("$(") && v.ends_with(')')) || (v.starts_with("${") && v.ends_with('}'))
}

pub(super) fn looks_like_path(v: &str) -> bool {
    (v.starts_with('/') || v.starts_with("./") || v.starts_with("~/") || v.starts_with("file://"))
        && !v.contains(char::is_whitespace)
}

pub(super) fn url_with_password(v: &str) -> bool {
    let Some((_, rest)) = v.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let Some((userinfo, _host)) = authority.rsplit_once('@') else {
        return false;
    };
    match userinfo.split_once(':') {
        Some((_, pass)) => !pass.is_empty() && !is_reference(pass) && !pass.starts_with("$("),
        None => false,
    }
}

pub(super) fn known_token_format(v: &str) -> Option<&'static str> {
    let alnum = |s: &str, n: usize| {
        s.len() >= n && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    for p in ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"] {
        if let Some(rest) = v.strip_prefix(p) {
            if rest.len() >= 36 && alnum(rest, 36) {
                return Some("GitHub token");
            }
        }
    }
    if v.strip_prefix("github_pat_").is_some_and(|r| alnum(r, 22)) {
        return Some("GitHub token");
    }
    if v.strip_prefix("glpat-").is_some_and(|r| r.len() >= 20) {
        return Some("GitLab token");
    }
    if (v.starts_with("AKIA") || v.starts_with("ASIA"))
        && v.len() == 20
        && v.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    {
        return Some("AWS access key id");
    }
    if ["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxs-"]
        .iter()
        .any(|p| v.starts_with(p) && v.len() > 20)
    {
        return Some("Slack token");
    }
    if (v.starts_with("sk_live_") || v.starts_with("rk_live_")) && v.len() > 20 {
        return Some("Stripe key");
    }
    None
}

/// Env var names that hold credentials, and not a path to one or a setting about one.
pub(super) fn credential_name(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let words: Vec<&str> = upper
        .split(['_', '-', '.'])
        .filter(|w| !w.is_empty())
        .collect();
    let Some(last) = words.last() else {
        return false;
    };
    const NOT_A_VALUE: &[&str] = &[
        "FILE",
        "FILES",
        "FILENAME",
        "PATH",
        "DIR",
        "DIRECTORY",
        "LOCATION",
        "NAME",
        "ID",
        "TTL",
        "TIMEOUT",
        "EXPIRY",
        "EXPIRATION",
        "EXPIRES",
        "LENGTH",
        "LEN",
        "ENABLED",
        "DISABLED",
        "ENABLE",
        "HEADER",
        "TYPE",
        "URL",
        "URI",
        "ENDPOINT",
        "REF",
        "MODE",
        "POLICY",
        "VERSION",
        "COUNT",
        "SIZE",
        "LIMIT",
        "PROVIDER",
        "METHOD",
        "FORMAT",
        "ALGORITHM",
        "ALG",
        "SECONDS",
        "DURATION",
        "ISSUER",
        "AUDIENCE",
        "SCOPE",
        "SCOPES",
        "KEY_ID",
        "USER",
        "USERNAME",
        "HOST",
        "PORT",
        "REQUIRED",
        "MIN",
        "MAX",
        "REGEX",
        "PATTERN",
        "INTERVAL",
        "BACKEND",
        "STORE",
        "LOGIN",
        "FIELD",
        "PARAM",
        "PREFIX",
        "SUFFIX",
        "HASH",
        "AGE",
        "DAYS",
    ];
    if NOT_A_VALUE.contains(last) {
        return false;
    }
    words.iter().enumerate().any(|(i, w)| {
        let next = words.get(i + 1).copied();
        // `PGPASSWORD`, `SMTPPASSWD`: run together with a prefix.
        if w.contains("PASSWORD") || w.contains("PASSWD") {
            return true;
        }
        matches!(
            *w,
            "PASSWORD"
                | "PASSWD"
                | "PASS"
                | "PWD"
                | "SECRET"
                | "TOKEN"
                | "APIKEY"
                | "CREDENTIAL"
                | "CREDENTIALS"
                | "PASSPHRASE"
        ) || (matches!(
            *w,
            "API" | "ACCESS" | "PRIVATE" | "FERNET" | "AUTH" | "SIGNING" | "ENCRYPTION"
        ) && next == Some("KEY"))
    })
}
