//! known_hosts content for emitted configurations: github.com's pinned host keys offline, or a
//! user-supplied file (GitHub Enterprise, tests). Host-key checking is always on.

use crate::error::{Error, Result, Setting};
use std::path::Path;

/// github.com's published SSH host keys (checked against GitHub's published fingerprints in tests).
/// Pinned keys go stale (the RSA key was replaced on 2023-03-23): `/meta` wins when reachable.
pub const GITHUB_COM_PINNED: &[&str] = &[
    "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl",
    "github.com ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg=",
    "github.com ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQCj7ndNxQowgcQnjshcLrqPEiiphnt+VTTvDP6mHBL9j1aNUkY4Ue1gvwnGLVlOhGeYrnZaMgRK6+PKCUXaDbC7qtbW8gIkhL7aGCsOr/C56SJMy/BCZfxd1nWzAOxSDPgVsmerOBYfNqltV9/hWCqBywINIR+5dIg6JTJ72pcEpEjcYgXkE2YEFXV1JHnsKgbLWNlhScqb2UmyRkQyytRLtL+38TGxkxCflmO+5Z8CSSNY7GidjMIZ7Q4zMjA2n1nGrlTDkzwDCsw+wqFPGQA179cnfGWOWRVruj16z6XyvxvjJwbz0wQZ75XK5tKSb7FNyeIEs4TT4jk+S4dhPeAUC5y+bDYirYgM4GC7uEnztnZyaVWQ7B381AK4Qdrwt51ZqExKbQpTUNn+EjqoTwvqNj4kqx5QUCI0ThS/YkOxJCXmPUWZbhjpCg56i+2aB6CmK2JGhn57K5mj0MNdBXA4/WnwH6XoPWJzK5Nyu2zB3nAZp+S5hpQs+p1vN1/wsjk=",
];

/// Where the host keys came from, recorded in annotations and shown to the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KnownHostsSource {
    /// The github.com keys compiled into sealkey.
    Pinned,
    /// A file given with `--known-hosts`.
    File(String),
    /// GitHub's `/meta` endpoint at this API URL.
    Meta(String),
}

/// A validated set of known_hosts lines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KnownHosts {
    lines: Vec<String>,
    source: KnownHostsSource,
}

impl KnownHosts {
    /// github.com's pinned keys.
    pub fn github_pinned() -> Self {
        Self {
            lines: GITHUB_COM_PINNED.iter().map(|s| s.to_string()).collect(),
            source: KnownHostsSource::Pinned,
        }
    }

    /// Reads and validates a known_hosts file (`--known-hosts FILE`).
    pub fn from_file(path: &Path) -> Result<Self> {
        let what = crate::message!("{} {}", Setting::KnownHosts, path.display().to_string());
        let bytes = crate::input_file::read_named_for(
            path,
            what.clone(),
            crate::input_file::KNOWN_HOSTS_MAX,
            "read known_hosts file",
        )?;
        let text = std::str::from_utf8(&bytes).map_err(|_| {
            Error::input(
                what.clone(),
                "not UTF-8 text",
                "pass a known_hosts file (HOST KEYTYPE BASE64 lines)",
            )
        })?;
        Self::parse(
            text,
            what,
            KnownHostsSource::File(path.display().to_string()),
        )
    }

    /// Parses known_hosts text; every non-comment line must be `HOSTS KEYTYPE BASE64 [comment]`
    /// (an optional `@cert-authority`/`@revoked` marker first).
    pub fn parse(
        text: &str,
        what: impl Into<crate::error::Message>,
        source: KnownHostsSource,
    ) -> Result<Self> {
        let what = what.into();
        let line_of = |n: usize| {
            let mut t = what.clone();
            t.push(format!(" line {}", n + 1));
            t
        };
        let mut lines = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            // A line break or control character hidden in a comment (U+2028, U+0085, ESC...)
            // would end a line for YAML 1.1 parsers and terminals: refused, even in comments.
            if let Some(c) = raw
                .chars()
                .find(|&c| (c.is_control() && c != '\t') || crate::yaml::is_unsafe_char(c))
            {
                return Err(Error::input(
                    line_of(n),
                    format!("holds the control or line-break character U+{:04X}", c as u32),
                    "known_hosts lines are plain text: remove it (copy the line from `ssh-keyscan HOST` or GitHub's /meta)",
                ));
            }
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields: Vec<&str> = line.split_whitespace().collect();
            if fields.first().is_some_and(|f| f.starts_with('@')) {
                fields.remove(0);
            }
            if fields.len() < 3 {
                return Err(Error::input(
                    line_of(n),
                    "not a known_hosts entry",
                    "each line must be `HOST KEYTYPE BASE64`, e.g. from `ssh-keyscan HOST`",
                ));
            }
            let key = format!("{} {}", fields[1], fields[2]);
            ssh_key::PublicKey::from_openssh(&key).map_err(|e| {
                Error::input(
                    line_of(n),
                    format!("host key does not parse ({e})"),
                    "copy the line from `ssh-keyscan HOST` or GitHub's /meta",
                )
            })?;
            lines.push(line.to_string());
        }
        if lines.is_empty() {
            return Err(Error::input(
                what,
                "no host keys found",
                "host-key checking needs at least one `HOST KEYTYPE BASE64` line",
            ));
        }
        Ok(Self { lines, source })
    }

    /// Builds known_hosts from GitHub `/meta` `ssh_keys` entries for `host`.
    pub fn from_meta(host: &str, ssh_keys: &[String], api_url: &str) -> Result<Self> {
        // Each entry is exactly `KEYTYPE BASE64`: a newline or comment in a server's answer
        // must not add lines or text of its choosing.
        if let Some(i) = ssh_keys.iter().position(|k| {
            k.split(' ').count() != 2 || k.chars().any(|c| c.is_whitespace() && c != ' ')
        }) {
            return Err(Error::input(
                format!("{api_url}/meta ssh_keys[{i}]"),
                "not a `KEYTYPE BASE64` host key",
                crate::message!(
                    "check {} points at GitHub or GitHub Enterprise Server, or pass {} FILE",
                    Setting::ApiUrl,
                    Setting::KnownHosts
                ),
            ));
        }
        let text: String = ssh_keys.iter().map(|k| format!("{host} {k}\n")).collect();
        Self::parse(
            &text,
            format!("{api_url}/meta ssh_keys"),
            KnownHostsSource::Meta(api_url.to_string()),
        )
    }

    /// The lines, without line ends.
    pub fn lines(&self) -> &[String] {
        &self.lines
    }

    /// The file content: one entry per line, newline-terminated.
    pub fn to_text(&self) -> String {
        self.lines.iter().map(|l| format!("{l}\n")).collect()
    }

    /// Where these keys came from.
    pub fn source(&self) -> &KnownHostsSource {
        &self.source
    }

    /// A short label for annotations: `pinned`, `file`, `meta`.
    pub fn source_label(&self) -> &'static str {
        match self.source {
            KnownHostsSource::Pinned => "pinned",
            KnownHostsSource::File(_) => "file",
            KnownHostsSource::Meta(_) => "meta",
        }
    }

    /// Whether some (non-revoked) line's host patterns match `host` (as `[host]:port` when the
    /// port is not 22), the way ssh matches them: comma-separated patterns with `*`/`?`
    /// wildcards, `!` negation, and hashed `|1|SALT|HASH` entries (HMAC-SHA1).
    pub fn covers(&self, host: &str, port: Option<u16>) -> bool {
        let name = match port {
            Some(p) if p != 22 => format!("[{host}]:{p}"),
            _ => host.to_string(),
        };
        let name = name.to_ascii_lowercase();
        self.lines.iter().any(|line| {
            let mut fields = line.split_whitespace();
            let mut hosts = fields.next().unwrap_or_default();
            if hosts.starts_with('@') {
                if hosts == "@revoked" {
                    return false;
                }
                hosts = fields.next().unwrap_or_default();
            }
            let mut matched = false;
            for pattern in hosts.split(',') {
                if let Some(negated) = pattern.strip_prefix('!') {
                    if wildcard_match(&negated.to_ascii_lowercase(), &name) {
                        return false;
                    }
                } else if pattern.starts_with("|1|") {
                    matched |= hashed_match(pattern, &name);
                } else {
                    matched |= wildcard_match(&pattern.to_ascii_lowercase(), &name);
                }
            }
            matched
        })
    }

    /// Whether these lines match the pinned github.com keys exactly (order-insensitive).
    pub fn equals_pinned_github(&self) -> bool {
        let mut a: Vec<&str> = self.lines.iter().map(String::as_str).collect();
        let mut b: Vec<&str> = GITHUB_COM_PINNED.to_vec();
        a.sort_unstable();
        b.sort_unstable();
        a == b
    }
}

/// ssh's `*`/`?` pattern match, linear-time (greedy with one backtrack point).
fn wildcard_match(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// `|1|base64(salt)|base64(HMAC-SHA1(salt, name))`, as `ssh-keygen -H` writes.
fn hashed_match(pattern: &str, name: &str) -> bool {
    use base64::Engine as _;
    use hmac::Mac as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut parts = pattern.trim_start_matches("|1|").split('|');
    let (Some(salt), Some(hash)) = (parts.next(), parts.next()) else {
        return false;
    };
    let (Ok(salt), Ok(hash)) = (b64.decode(salt), b64.decode(hash)) else {
        return false;
    };
    let Ok(mut mac) = hmac::Hmac::<sha1::Sha1>::new_from_slice(&salt) else {
        return false;
    };
    mac.update(name.as_bytes());
    mac.verify_slice(&hash).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// GitHub's published fingerprints (docs "GitHub's SSH key fingerprints").
    const PUBLISHED: &[(&str, &str)] = &[
        (
            "ssh-ed25519",
            "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU",
        ),
        (
            "ecdsa-sha2-nistp256",
            "SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM",
        ),
        (
            "ssh-rsa",
            "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s",
        ),
    ];

    #[test]
    fn pinned_github_keys_match_githubs_published_fingerprints() {
        assert_eq!(GITHUB_COM_PINNED.len(), PUBLISHED.len());
        for (line, (kind, fp)) in GITHUB_COM_PINNED.iter().zip(PUBLISHED) {
            let key = line.strip_prefix("github.com ").unwrap();
            assert!(key.starts_with(kind));
            assert_eq!(&crate::keygen::fingerprint_of_public(key).unwrap(), fp);
        }
    }

    #[test]
    fn malformed_line_names_file_and_line() {
        let err = KnownHosts::parse(
            "# c\ngithub.com ssh-ed25519\n",
            "kh",
            KnownHostsSource::Pinned,
        )
        .unwrap_err();
        assert!(err.to_string().contains("kh line 2"), "{err}");
        let err = KnownHosts::parse("h ssh-ed25519 AAAAnot\n", "kh", KnownHostsSource::Pinned)
            .unwrap_err();
        assert!(err.to_string().contains("does not parse"), "{err}");
        assert!(KnownHosts::parse("# only comments\n", "kh", KnownHostsSource::Pinned).is_err());
    }

    #[test]
    fn meta_entries_become_host_lines() {
        let keys: Vec<String> = GITHUB_COM_PINNED
            .iter()
            .map(|l| l.strip_prefix("github.com ").unwrap().to_string())
            .collect();
        let kh = KnownHosts::from_meta("github.com", &keys, "https://api.github.com").unwrap();
        assert!(kh.equals_pinned_github());
        assert_eq!(kh.source_label(), "meta");
    }

    #[test]
    fn covers_matches_hosts_as_ssh_does() {
        let kh = |text: &str| KnownHosts::parse(text, "t", KnownHostsSource::Pinned).unwrap();
        let key =
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl";
        assert!(KnownHosts::github_pinned().covers("github.com", None));
        assert!(!KnownHosts::github_pinned().covers("ghe.example.com", None));
        assert!(kh(&format!("ghe.example.com,10.0.0.1 {key}")).covers("GHE.example.com", None));
        assert!(kh(&format!("*.example.com {key}")).covers("ghe.example.com", None));
        assert!(
            !kh(&format!("*.example.com,!ghe.example.com {key}")).covers("ghe.example.com", None)
        );
        assert!(kh(&format!("[git.example.com]:2222 {key}")).covers("git.example.com", Some(2222)));
        assert!(!kh(&format!("git.example.com {key}")).covers("git.example.com", Some(2222)));
        assert!(kh(&format!("git.example.com {key}")).covers("git.example.com", Some(22)));
        assert!(!kh(&format!("@revoked github.com {key}")).covers("github.com", None));
        assert!(kh(&format!("@cert-authority *.example.com {key}")).covers("a.example.com", None));
        // `ssh-keygen -H` of "github.com" with this salt (computed by OpenSSH's algorithm:
        // HMAC-SHA1 keyed by the salt).
        let hashed = {
            use base64::Engine as _;
            use hmac::Mac as _;
            let salt = [7u8; 20];
            let mut mac = hmac::Hmac::<sha1::Sha1>::new_from_slice(&salt).unwrap();
            mac.update(b"github.com");
            let b64 = base64::engine::general_purpose::STANDARD;
            format!(
                "|1|{}|{}",
                b64.encode(salt),
                b64.encode(mac.finalize().into_bytes())
            )
        };
        assert!(kh(&format!("{hashed} {key}")).covers("github.com", None));
        assert!(!kh(&format!("{hashed} {key}")).covers("gitlab.com", None));
    }
}
