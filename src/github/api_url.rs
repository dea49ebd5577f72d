//! The API base URL: `https://api.github.com`, a GitHub Enterprise Server `https://HOST/api/v3`,
//! or plain `http://` to a loopback address (tests, local proxies) and nowhere else.

use crate::error::{Error, Message, Result, Setting};
use reqwest::Url;

/// A checked API base URL, without a trailing slash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiUrl {
    url: Url,
}

impl ApiUrl {
    /// github.com's API.
    pub const GITHUB_COM: &'static str = "https://api.github.com";

    /// Parses and checks `--api-url`: https anywhere, http only to 127.0.0.0/8, ::1 or localhost,
    /// no credentials, query or fragment in it.
    pub fn parse(text: &str) -> Result<Self> {
        let bad = |problem: &str, hint: Message| {
            Error::input(
                crate::message!("{} {}", Setting::ApiUrl, text.to_string()),
                problem.to_string(),
                hint,
            )
        };
        let url = Url::parse(text.trim()).map_err(|e| {
            bad(
                &format!("not a URL ({e})"),
                "use https://api.github.com or https://HOST/api/v3 for GitHub Enterprise Server"
                    .into(),
            )
        })?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(bad(
                "credentials in the URL",
                crate::message!(
                    "drop user:password@ from the URL; pass the token with GITHUB_TOKEN or {}",
                    Setting::TokenStdin
                ),
            ));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(bad(
                "query or fragment in the URL",
                "give just the base URL".into(),
            ));
        }
        match url.scheme() {
            "https" => {}
            "http" if crate::http::may_send_to(&url) => {}
            "http" => {
                return Err(bad(
                    "plain http:// would send the token unencrypted",
                    "use https:// (http:// is accepted only for 127.0.0.1, ::1 and localhost)"
                        .into(),
                ))
            }
            other => {
                return Err(bad(
                    &format!("unsupported scheme {other}"),
                    "use https://api.github.com or https://HOST/api/v3".into(),
                ))
            }
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(bad("no host", "use https://HOST/api/v3".into()));
        }
        let mut url = url;
        let path = url.path().trim_end_matches('/').to_string();
        url.set_path(&path);
        Ok(Self { url })
    }

    /// `https://api.github.com`.
    pub fn github_com() -> Self {
        Self::parse(Self::GITHUB_COM).expect("constant URL parses")
    }

    /// The base URL as text, without a trailing slash.
    pub fn as_str(&self) -> &str {
        self.url.as_str().trim_end_matches('/')
    }

    /// The base URL.
    pub(crate) fn url(&self) -> &Url {
        &self.url
    }

    /// The full URL for an API path such as `/repos/acme/dags/keys`.
    pub fn join(&self, path: &str) -> Result<Url> {
        Url::parse(&format!("{}{path}", self.as_str())).map_err(|e| {
            Error::input(
                crate::message!("{} {}", Setting::ApiUrl, self.as_str().to_string()),
                format!("cannot build a request URL ({e})"),
                "check the base URL",
            )
        })
    }

    /// Whether `other` may receive our credentials: same scheme, host and port, under our path.
    /// Pagination `Link` URLs that point elsewhere are refused.
    pub fn owns(&self, other: &Url) -> bool {
        other.scheme() == self.url.scheme()
            && other.host_str() == self.url.host_str()
            && other.port_or_known_default() == self.url.port_or_known_default()
            && other
                .path()
                .starts_with(self.url.path().trim_end_matches('/'))
    }

    /// Whether this is github.com's API.
    pub fn is_github_com(&self) -> bool {
        self.url.host_str() == Some("api.github.com")
    }

    /// The SSH host git clones from: `github.com` for api.github.com, else the API host
    /// (GitHub Enterprise Server serves git and the API on one host).
    pub fn git_host(&self) -> String {
        if self.is_github_com() {
            "github.com".into()
        } else {
            self.url.host_str().unwrap_or_default().to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn https_and_loopback_http_are_accepted() {
        for ok in [
            "https://api.github.com",
            "https://ghe.example.com/api/v3/",
            "http://127.0.0.1:8080",
            "http://[::1]:9000/api/v3",
            "http://localhost:1",
            "http://127.8.9.10:80",
            "http://[::ffff:127.0.0.1]:1",
        ] {
            let u = ApiUrl::parse(ok).unwrap();
            assert!(!u.as_str().ends_with('/'), "{ok}");
        }
        let ghes = ApiUrl::parse("https://ghe.example.com/api/v3/").unwrap();
        assert_eq!(
            ghes.join("/meta").unwrap().as_str(),
            "https://ghe.example.com/api/v3/meta"
        );
        assert_eq!(ghes.git_host(), "ghe.example.com");
        assert_eq!(ApiUrl::github_com().git_host(), "github.com");
    }

    #[test]
    fn plain_http_elsewhere_is_refused_with_exit_2() {
        for bad in [
            "http://api.github.com",
            "http://10.0.0.1",
            "http://127.0.0.1.example.com",
            "ftp://x",
            "https://user:pw@h",
            "nonsense",
        ] {
            let err = ApiUrl::parse(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad}");
            assert!(err.names(Setting::ApiUrl), "{err}");
        }
    }

    #[test]
    fn link_urls_elsewhere_are_not_owned() {
        let base = ApiUrl::parse("https://ghe.example.com/api/v3").unwrap();
        assert!(base.owns(&Url::parse("https://ghe.example.com/api/v3/x?page=2").unwrap()));
        assert!(!base.owns(&Url::parse("https://evil.example.com/api/v3/x").unwrap()));
        assert!(!base.owns(&Url::parse("http://ghe.example.com/api/v3/x").unwrap()));
        assert!(!base.owns(&Url::parse("https://ghe.example.com/other").unwrap()));
    }
}
