//! GitHub flags shared by `create --register`, `register`, `keys` and `known-hosts`, and how
//! they become a client: API URL, credentials (env, stdin, prompt, GitHub App), rate-limit bound.

use super::Ui;
use crate::error::Error;
use crate::github::{ApiUrl, AppCredentials, Auth, ClientSettings, GithubClient};
use crate::secret::GithubToken;
use anyhow::Result;
use std::io::{BufRead, IsTerminal};
use std::path::PathBuf;
use std::time::Duration;
use zeroize::Zeroizing;

/// Where the API is and how long to wait for rate limits.
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "GitHub")]
pub struct ApiArgs {
    /// GitHub API base URL; GitHub Enterprise Server: https://HOST/api/v3. http:// only for
    /// loopback addresses.
    #[arg(long, value_name = "URL", default_value = ApiUrl::GITHUB_COM)]
    pub api_url: String,
    /// Longest total wait for GitHub rate limits before giving up (e.g. 90s, 10m, 1h; 0s to 1d).
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = duration_within(0, DAY))]
    pub max_wait: Duration,
    /// Longest total time for all of this run's GitHub requests (pages, retries and back-offs;
    /// rate-limit waits count against --max-wait instead). Stops a server or proxy that answers
    /// at a trickle (1s to 1d).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "5m",
        env = "SEALKEY_DEADLINE",
        value_parser = duration_within(1, DAY)
    )]
    pub deadline: Duration,
}

/// Credentials. The token never comes from argv: GITHUB_TOKEN or GH_TOKEN, --token-stdin, a
/// no-echo prompt on a terminal, or a GitHub App (--app-id with --app-key).
#[derive(Debug, Clone, clap::Args)]
#[command(next_help_heading = "GitHub")]
pub struct GithubArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// Read the token from the first line of standard input. Without it the token comes from
    /// GITHUB_TOKEN or GH_TOKEN in the environment, else a no-echo prompt on a terminal (never
    /// from an argument). Fine-grained: Administration read/write on the repository.
    #[arg(long)]
    pub token_stdin: bool,
    /// Authenticate as this GitHub App (App ID or client ID); its installation on the
    /// repository is found automatically. Needs --app-key.
    #[arg(
        long,
        value_name = "ID",
        requires = "app_key",
        conflicts_with = "token_stdin"
    )]
    pub app_id: Option<String>,
    /// The GitHub App's private key (.pem, as downloaded from the App's settings).
    #[arg(long, value_name = "FILE", requires = "app_id")]
    pub app_key: Option<PathBuf>,
}

impl ApiArgs {
    /// The checked API URL.
    pub fn api_url(&self) -> Result<ApiUrl> {
        Ok(ApiUrl::parse(&self.api_url)?)
    }

    /// A client with `auth`, telling the user on stderr whenever it waits.
    pub fn client(&self, auth: Auth, ui: &Ui) -> Result<GithubClient> {
        let mut settings = ClientSettings::new(self.api_url()?);
        settings.max_wait = self.max_wait;
        settings.deadline = self.deadline;
        let ui = ui.clone();
        Ok(GithubClient::new(settings, auth)?.on_wait(move |notice| {
            ui.info(&format!(
                "waiting {:.1} s: {}",
                notice.wait.as_secs_f64(),
                notice.reason
            ))
        }))
    }
}

impl GithubArgs {
    /// Resolves the credentials (before anything else happens, so a missing token fails early).
    pub fn auth(&self) -> Result<Auth> {
        if let (Some(id), Some(key)) = (&self.app_id, &self.app_key) {
            return Ok(Auth::App(Box::new(AppCredentials::from_file(id, key)?)));
        }
        if self.token_stdin {
            return Ok(Auth::Token(token_from_stdin()?));
        }
        if let Some(token) = token_from_env() {
            return Ok(Auth::Token(token));
        }
        if std::io::stdin().is_terminal() && std::io::stderr().is_terminal() {
            let typed = Zeroizing::new(
                rpassword::prompt_password("GitHub token (input hidden): ")
                    .map_err(|e| Error::file("read the token from", "/dev/tty", e))?,
            );
            let trimmed = typed.trim();
            if !trimmed.is_empty() {
                return Ok(Auth::Token(GithubToken::new(trimmed.to_string())));
            }
        }
        Err(no_token().into())
    }

    /// A client with resolved credentials.
    pub fn client(&self, ui: &Ui) -> Result<GithubClient> {
        let auth = self.auth()?;
        self.api.client(auth, ui)
    }
}

/// The token in `GITHUB_TOKEN`, else `GH_TOKEN` (gh's name), trimmed; `None` when both are unset
/// or blank. The environment's copy cannot be wiped; ours is.
pub fn token_from_env() -> Option<GithubToken> {
    ["GITHUB_TOKEN", "GH_TOKEN"].iter().find_map(|var| {
        let value = Zeroizing::new(std::env::var(var).ok()?);
        let trimmed = value.trim();
        (!trimmed.is_empty()).then(|| GithubToken::new(trimmed.to_string()))
    })
}

fn no_token() -> Error {
    Error::input(
        "GitHub token",
        "none given (GITHUB_TOKEN and GH_TOKEN are unset and standard input is not a terminal)",
        "export GITHUB_TOKEN (fine-grained, Administration: read and write on the repository), pipe it with --token-stdin, or use a GitHub App with --app-id and --app-key",
    )
}

fn token_from_stdin() -> Result<GithubToken> {
    // Pre-sized so that reading never reallocates (which would leave a copy in freed memory);
    // GitHub tokens are well under 1 KiB.
    let mut line = Zeroizing::new(String::with_capacity(4096));
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| Error::file("read the token from", "standard input", e))?;
    let trimmed = line.trim();
    if trimmed.is_empty() {
        return Err(Error::input(
            "--token-stdin",
            "standard input was empty",
            "pipe the token in, e.g. `gh auth token | sealkey ... --token-stdin`",
        )
        .into());
    }
    Ok(GithubToken::new(trimmed.to_string()))
}

/// Parses `90d`, `12h`, `10m`, `45s`, `2w` or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let (digits, unit) = t.split_at(t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len()));
    let n: u64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is not a duration; use e.g. 90d, 12h, 10m or 45s"))?;
    let secs = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 604_800,
        _ => return Err(format!("unknown unit in `{text}`; use s, m, h, d or w")),
    };
    n.checked_mul(secs)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("`{text}` is too long"))
}

/// Seconds in a day, for [`duration_within`] ranges.
pub const DAY: u64 = 86_400;

/// A clap value parser: [`parse_duration`], then a range check (in seconds, inclusive) whose
/// error names the accepted range, so no flag hands a duration that overflows a deadline
/// (`Instant + Duration` panics) to the code behind it.
pub fn duration_within(
    min_secs: u64,
    max_secs: u64,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |text: &str| {
        let d = parse_duration(text)?;
        if (min_secs..=max_secs).contains(&d.as_secs()) {
            Ok(d)
        } else {
            Err(format!(
                "`{text}` is out of range: use {} to {}",
                show_secs(min_secs),
                show_secs(max_secs)
            ))
        }
    }
}

/// `86400` as `1d`, `90` as `90s`: the largest unit that divides it.
fn show_secs(secs: u64) -> String {
    for (unit, size) in [("d", DAY), ("h", 3_600), ("m", 60)] {
        if secs > 0 && secs.is_multiple_of(size) {
            return format!("{}{unit}", secs / size);
        }
    }
    format!("{secs}s")
}

/// The one way the CLI starts its I/O runtime: a failure (the OS refused threads, epoll or a
/// timer) exits 3 from every command.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            Error::remote(
                "sealkey",
                format!("cannot start the I/O runtime ({e})"),
                "report it",
            )
        })?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(
            parse_duration("90d").unwrap(),
            Duration::from_secs(90 * 86_400)
        );
        assert_eq!(parse_duration("10m").unwrap(), Duration::from_secs(600));
        assert_eq!(parse_duration("5").unwrap(), Duration::from_secs(5));
        assert!(parse_duration("ten").is_err());
        assert!(parse_duration("5y").is_err());
    }

    #[test]
    fn duration_ranges_refuse_values_outside_and_name_the_range() {
        let day = duration_within(1, DAY);
        assert_eq!(day("1d").unwrap(), Duration::from_secs(DAY));
        assert!(day("0").unwrap_err().contains("1s to 1d"));
        assert!(day("18446744073709551615")
            .unwrap_err()
            .contains("1s to 1d"));
        assert!(day("2d").is_err());
    }
}
