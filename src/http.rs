//! HTTP to the outside (GitHub's API, a Sealed Secrets controller's `/v1/cert.pem`) made safe
//! against hostile servers and proxies: which URLs may be used at all, clients that never follow a
//! redirect and never send loopback traffic through a proxy, bodies read under a byte cap, and
//! server text cleaned before anyone sees it.
//!
//! Proxies: only `https://` destinations are ever proxied, through `HTTPS_PROXY` (or
//! `https_proxy`, `ALL_PROXY`, `all_proxy`) as a CONNECT tunnel, so the proxy sees the host and
//! port but never a header. `HTTP_PROXY` is ignored: plain http is only allowed to this machine,
//! and loopback destinations are never proxied. `NO_PROXY`/`no_proxy` (host, `.domain`, IP,
//! CIDR, `*`) is honoured.

use crate::error::{Error, Result};
use reqwest::header::{HeaderMap, LOCATION};
use reqwest::Url;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::LazyLock;
use std::time::Duration;

/// The most characters of server text shown in a message.
pub const SHOWN_CHARS: usize = 300;

/// Whether `url` names this machine: any of 127.0.0.0/8, `::1` (also as `::ffff:127.x.y.z`) or
/// `localhost`. Requests to `localhost` are pinned to 127.0.0.1/::1, never resolved by DNS.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => is_loopback_ip(IpAddr::V6(ip)),
        Some(url::Host::Domain(d)) => is_localhost(d),
        None => false,
    }
}

fn is_loopback_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

fn is_localhost(domain: &str) -> bool {
    domain
        .strip_suffix('.')
        .unwrap_or(domain)
        .eq_ignore_ascii_case("localhost")
}

/// Whether a request (and a credential) may go to `url`: `https://` anywhere, plain `http://`
/// only to this machine (tests, `kubectl port-forward`, a local proxy). Checked for every URL
/// sealkey sends to, not just the first.
pub fn may_send_to(url: &Url) -> bool {
    match url.scheme() {
        "https" => url.host_str().is_some_and(|h| !h.is_empty()),
        "http" => is_loopback(url),
        _ => false,
    }
}

/// The proxy variables sealkey reads, captured once.
#[derive(Clone, Debug, Default)]
pub struct ProxyEnv {
    /// The variable that names the proxy for https destinations, and its value.
    https: Option<(&'static str, String)>,
    /// `NO_PROXY` entries.
    no_proxy: Vec<NoProxyEntry>,
}

#[derive(Clone, Debug, PartialEq)]
enum NoProxyEntry {
    All,
    Net(IpAddr, u8),
    Domain(String),
}

impl ProxyEnv {
    /// From the process environment.
    pub fn from_env() -> Self {
        Self::from_vars(|name| std::env::var(name).ok())
    }

    /// From any source of variables (`name -> value`); empty values count as unset.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let https = ["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]
            .into_iter()
            .find_map(|name| get(name).map(|v| (name, v.trim().to_string())));
        let no_proxy = get("NO_PROXY")
            .or_else(|| get("no_proxy"))
            .map(|list| parse_no_proxy(&list))
            .unwrap_or_default();
        Self { https, no_proxy }
    }

    /// The proxy a request to `url` goes through, if any. Plain http and loopback destinations
    /// are never proxied; https ones go through the https proxy unless `NO_PROXY` covers them.
    /// A proxy URL sealkey cannot use is an input error naming the variable.
    pub fn proxy_for(&self, url: &Url) -> Result<Option<Url>> {
        let Some((var, value)) = &self.https else {
            return Ok(None);
        };
        if url.scheme() != "https" || is_loopback(url) || self.bypassed(url) {
            return Ok(None);
        }
        // `host:port` without a scheme means an http proxy, as curl reads it.
        let text = if value.contains("://") {
            value.clone()
        } else {
            format!("http://{value}")
        };
        let bad = |problem: &str| {
            Error::input(
                *var,
                problem.to_string(),
                format!(
                    "set {var} to http://HOST:PORT (or https://), or list {} in NO_PROXY",
                    url.host_str().unwrap_or_default()
                ),
            )
        };
        let proxy = Url::parse(&text).map_err(|_| bad("not a proxy URL"))?;
        if !matches!(proxy.scheme(), "http" | "https") || proxy.host_str().is_none() {
            // The scheme alone: the value may hold a password.
            return Err(bad(&format!(
                "{}:// proxies are not supported (only http:// and https://)",
                proxy.scheme()
            )));
        }
        Ok(Some(proxy))
    }

    fn bypassed(&self, url: &Url) -> bool {
        let ip = match url.host() {
            Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
            Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
            _ => None,
        };
        let host = url
            .host_str()
            .unwrap_or_default()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        self.no_proxy.iter().any(|entry| match entry {
            NoProxyEntry::All => true,
            NoProxyEntry::Net(net, bits) => ip.is_some_and(|ip| in_net(ip, *net, *bits)),
            NoProxyEntry::Domain(d) => {
                host == *d
                    || host
                        .strip_suffix(d.as_str())
                        .is_some_and(|rest| rest.ends_with('.'))
            }
        })
    }
}

/// `NO_PROXY` as curl reads it: comma- or space-separated hosts (`example.com` and
/// `.example.com` both cover the domain and its subdomains, `*.` too), IPs, CIDR blocks, `*`.
/// A `:port` suffix is ignored (the entry then covers every port).
fn parse_no_proxy(list: &str) -> Vec<NoProxyEntry> {
    list.split([',', ' ', '\t'])
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .filter_map(|entry| {
            if entry == "*" {
                return Some(NoProxyEntry::All);
            }
            let (addr, bits) = match entry.split_once('/') {
                Some((a, b)) => (a, b.parse::<u8>().ok()),
                None => (entry, None),
            };
            let addr = addr.trim_start_matches('[');
            let addr = addr.split_once(']').map_or(addr, |(a, _)| a);
            if let Ok(ip) = addr.parse::<IpAddr>() {
                let full = if ip.is_ipv4() { 32 } else { 128 };
                return Some(NoProxyEntry::Net(ip, bits.unwrap_or(full).min(full)));
            }
            let host = match entry.rsplit_once(':') {
                Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h,
                _ => entry,
            };
            let host = host.trim_start_matches("*.").trim_start_matches('.');
            let host = host.trim_end_matches('.').to_ascii_lowercase();
            (!host.is_empty()).then_some(NoProxyEntry::Domain(host))
        })
        .collect()
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(ip) & mask == u128::from(net) & mask
        }
        _ => false,
    }
}

/// A client for requests to `destination` (and URLs like it): no redirects, proxies as
/// [`ProxyEnv`] decides, `localhost` pinned to loopback addresses, rustls with ring.
/// `service` names the remote in errors. Per-request and overall time limits are the caller's.
pub fn client(
    service: &str,
    destination: &Url,
    headers: HeaderMap,
    connect_timeout: Duration,
) -> Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let env = ProxyEnv::from_env();
    // Surfaces a bad proxy variable now, as an input error, rather than as a failed request.
    env.proxy_for(destination)?;
    let proxy = reqwest::Proxy::custom(move |url| env.proxy_for(url).ok().flatten());
    reqwest::Client::builder()
        .default_headers(headers)
        .connect_timeout(connect_timeout)
        // A redirect could carry the Authorization header, or lead a certificate fetch, to
        // another host; every answer is taken as it is and a 3xx reported.
        .redirect(reqwest::redirect::Policy::none())
        // Only our decision applies (reqwest would read HTTP_PROXY for loopback otherwise).
        .no_proxy()
        .proxy(proxy)
        .resolve_to_addrs(
            "localhost",
            &[
                SocketAddr::new(Ipv4Addr::LOCALHOST.into(), 0),
                SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 0),
            ],
        )
        .build()
        .map_err(|e| {
            Error::remote(
                service,
                format!("cannot set up the HTTP client ({e})"),
                "report it",
            )
        })
}

/// Why reading a body stopped.
#[derive(Debug)]
pub enum BodyError {
    /// The body is (or announced itself as) longer than the cap, in bytes.
    TooLarge(usize),
    /// The connection broke while reading.
    Transport(reqwest::Error),
}

impl BodyError {
    /// The error for a too-large body from `service` at `url`.
    pub fn too_large(service: &str, url: &Url, cap: usize) -> Error {
        Error::remote(
            service,
            format!(
                "answer from {} larger than {cap} bytes; stopped reading",
                host_port(url)
            ),
            "check the URL points at the right server; a proxy or server on the way may be misbehaving",
        )
    }
}

/// Reads `resp`'s body, at most `cap` bytes; a longer body (announced or actual) is refused
/// without reading the rest.
pub async fn read_capped(
    resp: &mut reqwest::Response,
    cap: usize,
) -> std::result::Result<Vec<u8>, BodyError> {
    let announced = resp.content_length().unwrap_or(0);
    if announced > cap as u64 {
        return Err(BodyError::TooLarge(cap));
    }
    // Sized up front when the length is known, so the buffer is not reallocated (copies of a
    // token in an access-token answer would be left in freed memory).
    let mut body = Vec::with_capacity(announced as usize);
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Transport)? {
        if body.len() + chunk.len() > cap {
            return Err(BodyError::TooLarge(cap));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// `host[:port]` of a 3xx answer's `Location` (resolved against `base`), for the error that
/// reports the redirect instead of following it.
pub fn redirect_target(base: &Url, headers: &HeaderMap) -> String {
    let location = headers.get(LOCATION).and_then(|v| v.to_str().ok());
    match location.and_then(|l| base.join(l).ok()) {
        Some(url) => sanitize_server_text(&host_port(&url), &[]),
        None => "an unreadable Location".into(),
    }
}

/// `host` or `host:port` of `url`.
pub fn host_port(url: &Url) -> String {
    match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    }
}

static BEARER: LazyLock<regex::Regex> = LazyLock::new(|| {
    // `Basic` only capitalised, as in a header: "a basic mistake" stays readable.
    regex::Regex::new(r"\b((?i:bearer)|Basic)(\s+|%20|\+)[A-Za-z0-9._~+/=-]+").expect("regex")
});
static GITHUB_TOKEN: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"(gh[pousr]_|github_pat_)[A-Za-z0-9_]{4,}").expect("regex")
});
static JWT: LazyLock<regex::Regex> = LazyLock::new(|| {
    regex::Regex::new(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*").expect("regex")
});

static SIGV4: LazyLock<regex::Regex> = LazyLock::new(|| {
    // SigV4 in a header (`Credential=AKID/date/region/service/aws4_request, Signature=hex`), in a
    // presigned query (`X-Amz-Credential=`, `X-Amz-Signature=`) and the session token header.
    regex::Regex::new(
        r"(?i)((?:x-amz-)?(?:credential|signature|security-token)\s*[=:]\s*)[^\s,;&]+",
    )
    .expect("regex")
});
static AWS_KEY_ID: LazyLock<regex::Regex> =
    LazyLock::new(|| regex::Regex::new(r"\b(AKIA|ASIA)[A-Z0-9]{16}\b").expect("regex"));

/// Server text made fit to show, the one path for every remote's words (GitHub, AWS,
/// Kubernetes, certificate URLs): terminal controls removed (C0, DEL, C1, line and paragraph
/// separators, bidi and zero-width characters; tabs and line breaks become spaces), credentials
/// replaced by `[redacted]` (every secret this run sent or holds, see [`crate::sent`], and each
/// of `secrets`, in any encoding and any slice of [`crate::sent::WINDOW`] characters or more;
/// `Bearer`/`Basic` values, GitHub token shapes, JWTs, SigV4 credentials, signatures and
/// session tokens, AWS access key ids), then cut to [`SHOWN_CHARS`] characters.
pub fn sanitize_server_text(text: &str, secrets: &[&str]) -> String {
    // Controls go first: a token split by an escape sequence is whole again afterwards.
    let clean: String = text
        .chars()
        .filter_map(|c| match c {
            '\t' | '\n' | '\r' => Some(' '),
            c if c.is_control() || is_invisible(c) => None,
            c => Some(c),
        })
        .collect();
    // Everything this run sent as a secret or holds as a credential, in any encoding and any
    // long enough slice (`crate::sent`), plus the caller's own.
    let clean = crate::sent::redact(&clean, secrets);
    let clean = BEARER.replace_all(&clean, "$1 [redacted]");
    let clean = GITHUB_TOKEN.replace_all(&clean, "[redacted]");
    let clean = JWT.replace_all(&clean, "[redacted]");
    let clean = SIGV4.replace_all(&clean, "$1[redacted]");
    let clean = AWS_KEY_ID.replace_all(&clean, "[redacted]");
    let clean = clean.trim();
    if clean.chars().count() > SHOWN_CHARS {
        let mut cut: String = clean.chars().take(SHOWN_CHARS).collect();
        cut.push_str("...");
        cut
    } else {
        clean.to_string()
    }
}

/// Characters that change how a terminal shows text without being controls themselves.
fn is_invisible(c: char) -> bool {
    matches!(c,
        '\u{2028}' | '\u{2029}'              // line and paragraph separators
        | '\u{200b}'..='\u{200f}'            // zero-width, LRM, RLM
        | '\u{202a}'..='\u{202e}'            // bidi embeddings and overrides
        | '\u{2060}'..='\u{2064}'            // word joiner, invisible operators
        | '\u{2066}'..='\u{2069}'            // bidi isolates
        | '\u{feff}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn loopback_is_all_of_127_8_and_ipv6_and_localhost() {
        for yes in [
            "http://127.0.0.1:1",
            "http://127.1.2.3/",
            "http://127.255.255.254",
            "http://[::1]:9",
            "http://[::ffff:127.0.0.2]/",
            "http://localhost:8080",
            "http://LOCALHOST.",
        ] {
            assert!(is_loopback(&url(yes)), "{yes}");
            assert!(may_send_to(&url(yes)), "{yes}");
        }
        for no in [
            "http://128.0.0.1",
            "http://10.0.0.1",
            "http://[::2]",
            "http://localhost.example.com",
            "http://127.0.0.1.example.com",
            "http://0.0.0.0",
        ] {
            assert!(!is_loopback(&url(no)), "{no}");
            assert!(!may_send_to(&url(no)), "{no}");
        }
        assert!(may_send_to(&url("https://api.github.com")));
        assert!(!may_send_to(&url("ftp://127.0.0.1")));
    }

    fn env(vars: &[(&str, &str)]) -> ProxyEnv {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        ProxyEnv::from_vars(|name| vars.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()))
    }

    fn proxied(e: &ProxyEnv, u: &str) -> Option<String> {
        e.proxy_for(&url(u)).unwrap().map(|p| p.to_string())
    }

    #[test]
    fn only_https_non_loopback_destinations_are_proxied() {
        let e = env(&[
            ("HTTP_PROXY", "http://10.1.1.1:3128"),
            ("HTTPS_PROXY", "http://10.2.2.2:3128"),
        ]);
        assert_eq!(
            proxied(&e, "https://api.github.com/meta").as_deref(),
            Some("http://10.2.2.2:3128/")
        );
        for direct in [
            "http://127.0.0.1:8080/",
            "http://localhost/",
            "https://127.0.0.5/",
            "https://[::1]:443/",
            "https://localhost:8443/",
        ] {
            assert_eq!(proxied(&e, direct), None, "{direct}");
        }
        // HTTP_PROXY alone is never used: plain http only goes to loopback.
        let e = env(&[("HTTP_PROXY", "http://10.1.1.1:3128")]);
        assert_eq!(proxied(&e, "https://api.github.com/"), None);
        // ALL_PROXY and lower-case names count; a bare host:port is an http proxy.
        let e = env(&[("all_proxy", "10.3.3.3:8080")]);
        assert_eq!(
            proxied(&e, "https://ghe.example.com/").as_deref(),
            Some("http://10.3.3.3:8080/")
        );
    }

    #[test]
    fn no_proxy_covers_hosts_domains_ips_cidrs_and_star() {
        let proxy = ("HTTPS_PROXY", "http://10.2.2.2:3128");
        for (list, host) in [
            ("ghe.example.com", "https://ghe.example.com/api/v3"),
            ("example.com", "https://ghe.example.com/"),
            (".example.com", "https://ghe.example.com/"),
            ("*.example.com", "https://ghe.example.com/"),
            ("other.org, example.com:443", "https://ghe.example.com/"),
            ("10.0.0.0/8", "https://10.9.8.7/"),
            ("10.9.8.7", "https://10.9.8.7/"),
            ("fd00::/8", "https://[fd00::1]/"),
            ("*", "https://api.github.com/"),
        ] {
            for var in ["NO_PROXY", "no_proxy"] {
                let e = env(&[proxy, (var, list)]);
                assert_eq!(proxied(&e, host), None, "{var}={list} for {host}");
            }
        }
        for (list, host) in [
            ("example.com", "https://notexample.com/"),
            ("ghe.example.com", "https://example.com/"),
            ("10.0.0.0/8", "https://11.0.0.1/"),
            ("", "https://api.github.com/"),
        ] {
            let e = env(&[proxy, ("NO_PROXY", list)]);
            assert!(proxied(&e, host).is_some(), "{list} for {host}");
        }
    }

    #[test]
    fn unusable_proxy_is_an_input_error_without_its_password() {
        let e = env(&[("HTTPS_PROXY", "socks5://user:s3cret@10.0.0.1:1080")]);
        let err = e.proxy_for(&url("https://api.github.com/")).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        let shown = err.to_string();
        assert!(
            shown.contains("HTTPS_PROXY") && shown.contains("socks5"),
            "{shown}"
        );
        assert!(!shown.contains("s3cret"), "{shown}");
        // Not consulted at all for loopback destinations.
        assert_eq!(e.proxy_for(&url("http://127.0.0.1:1/")).unwrap(), None);
    }

    #[test]
    fn server_text_loses_controls_and_credentials() {
        let token = "not-shaped-like-a-token-42";
        let b64 = base64::engine::general_purpose::STANDARD.encode(token);
        let text = format!(
            "Bad\u{1b}]0;pwned\u{7} credentials\u{1b}[2J\u{9b}1m for bEARER abc.def-ghi and {token} \
             ({b64}) to\u{1b}ken Basic dXNlcjpwYXNz a basic mistake gho_{}\u{2028}ghs_x{} \u{202e}github_pat_11AB_cd \
             eyJhbGciOiJub25lIn0.eyJzdWIiOiIxIn0. \u{7f}end\r\nline",
            "a".repeat(36),
            "b".repeat(35),
        );
        let shown = sanitize_server_text(&text, &[token]);
        for gone in [
            "\u{1b}",
            "\u{7}",
            "\u{9b}",
            "\u{2028}",
            "\u{202e}",
            "\u{7f}",
            "\r",
            "\n",
            token,
            &b64[..20],
            "abc.def",
            "dXNlcjpwYXNz",
            "gho_",
            "ghs_",
            "github_pat_",
            "eyJ",
        ] {
            assert!(!shown.contains(gone), "{gone:?} in {shown:?}");
        }
        assert!(
            shown.starts_with("Bad]0;pwned credentials[2J1m for bEARER [redacted]"),
            "{shown}"
        );
        assert!(
            shown.contains("Basic [redacted] a basic mistake"),
            "{shown}"
        );
        assert!(shown.ends_with("end  line"), "{shown}");
    }

    #[test]
    fn aws_credentials_signatures_and_sent_secrets_are_redacted_from_server_text() {
        // Issue 20: an AWS error echoed the session token, the SigV4 header and a slice of the
        // SecretString; only C0/C1 controls were removed.
        let key = crate::keygen::DeployKey::generate(crate::keygen::KeyType::Ed25519, "t").unwrap();
        let pem = key.private_pem().unwrap();
        let sent = serde_json::json!({ "gitSshKey": pem.expose_secret() }).to_string();
        crate::sent::register(sent.as_bytes());
        let text = format!(
            "bad Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20261206/eu-west-1/kms/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef \
             X-Amz-Security-Token: FwoGZXIvYXdzEXAMPLEtoken== key ASIAEXAMPLEEXAMPLE12 \u{200b}value {}",
            &sent[41..]
        );
        let shown = sanitize_server_text(&text, &[]);
        for gone in [
            "AKIAIOSFODNN7EXAMPLE",
            "0123456789abcdef",
            "FwoGZXIvYXdz",
            "ASIAEXAMPLEEXAMPLE12",
            "\u{200b}",
            "b3BlbnNzaC1rZXkt",
        ] {
            assert!(!shown.contains(gone), "{gone:?} in {shown:?}");
        }
        assert!(shown.contains("Signature=[redacted]"), "{shown}");
        assert!(shown.ends_with("value [redacted]"), "{shown}");
    }

    #[test]
    fn server_text_is_cut_to_300_characters() {
        let shown = sanitize_server_text(&"é".repeat(1000), &[]);
        assert_eq!(shown.chars().count(), SHOWN_CHARS + 3);
        assert_eq!(sanitize_server_text("  Not Found ", &[]), "Not Found");
    }
}
