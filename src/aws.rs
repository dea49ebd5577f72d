//! The AWS SDK set up the way sealkey uses it: the standard credential chain and region
//! resolution (environment, shared profile, web identity/IRSA, container and instance
//! metadata), rustls with ring, bounded retries and timeouts, and AWS errors turned into
//! sealkey's (the action and resource named, what to do next). `AWS_ENDPOINT_URL` (read by the
//! SDK itself) points every client at another endpoint, e.g. a test server.
//!
//! No SigV4 or credential chain is written here: the SDK does both. Its debug logging goes
//! through `tracing`, which sealkey never subscribes to, so request bodies are never logged.
//!
//! Every request of every client the SDK makes (Secrets Manager, KMS, STS, and the credential
//! providers' own: web identity, SSO, container, instance metadata) goes through one HTTP client
//! wrapper, [`GuardedHttp`]: its URL must pass [`crate::http::may_send_to`] (https anywhere, plain
//! http to loopback only; the SDK's fixed link-local metadata and container addresses excepted),
//! its credentials are registered for redaction ([`crate::sent`]), and its answer body is read
//! under [`MAX_ANSWER_BYTES`]. The endpoints configured for the services sealkey calls are also
//! checked when the configuration loads, so a bad one is refused (exit 2, naming the variable
//! or profile setting) before any key exists. AWS's text reaches people only through
//! [`crate::http::sanitize_server_text`].

use crate::error::{Error, Message, Result, Setting};
use crate::message;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_smithy_http_client::tls;
use std::time::Duration;

pub use aws_config::SdkConfig as AwsConfig;

/// How many attempts the SDK makes for one call (throttling and transient errors are retried
/// with exponential backoff in between; a refusal such as AccessDenied is not).
pub const MAX_ATTEMPTS: u32 = 4;

/// Where sealkey's AWS calls go and as whom; nothing secret in here.
#[derive(Clone, Debug, Default)]
pub struct AwsSettings {
    /// `--region`: overrides `AWS_REGION` and the profile's region.
    pub region: Option<String>,
}

/// Whether `region` looks like an AWS region name (`us-east-1`, `eu-central-2`,
/// `us-gov-west-1`, `cn-north-1`, `us-isob-east-1`); anything else is refused before a call.
pub fn is_region_name(region: &str) -> bool {
    static RE: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    RE.get_or_init(|| {
        regex::Regex::new(r"^(af|ap|ca|cn|eu|il|me|mx|sa|us)(-gov|-iso[a-z]?)?-(north|south|east|west|central|northeast|northwest|southeast|southwest)-[0-9]{1,2}$")
            .expect("region regex")
    })
    .is_match(region)
}

/// Loads the SDK configuration and checks, before anything else happens, that a region and
/// credentials are there: no key is generated or registered without them.
pub async fn load(settings: &AwsSettings) -> Result<SdkConfig> {
    load_inner(settings, true).await
}

/// As [`load`], for callers that take the region from each resource's ARN (KMS keys): a
/// missing default region is fine.
pub async fn load_any_region(settings: &AwsSettings) -> Result<SdkConfig> {
    load_inner(settings, false).await
}

async fn load_inner(settings: &AwsSettings, need_region: bool) -> Result<SdkConfig> {
    if let Some(r) = &settings.region {
        check_region(r, Setting::Region.into())?;
    }
    let http = GuardedHttp::new(
        aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https(),
    );
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(MAX_ATTEMPTS)
                .with_initial_backoff(Duration::from_millis(200))
                .with_max_backoff(Duration::from_secs(5)),
        )
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_attempt_timeout(Duration::from_secs(20))
                .operation_timeout(Duration::from_secs(60))
                .build(),
        );
    if let Some(r) = &settings.region {
        loader = loader.region(Region::new(r.clone()));
    }
    let conf = loader.load().await;
    match conf.region() {
        None if !need_region => {}
        None => {
            return Err(Error::input(
                "AWS region",
                "none set",
                message!(
                    "pass {} REGION, or set AWS_REGION (or `region` in your AWS profile)",
                    Setting::Region
                ),
            ))
        }
        Some(r) => check_region(r.as_ref(), "AWS_REGION".into())?,
    }
    check_endpoints(&conf)?;
    check_credentials(&conf).await?;
    Ok(conf)
}

fn check_region(region: &str, what: Message) -> Result<()> {
    if is_region_name(region) {
        return Ok(());
    }
    Err(Error::input(
        message!("{} {}", what, region),
        "not an AWS region name",
        "use a region such as us-east-1 or eu-west-1 (`aws ec2 describe-regions` lists them)",
    ))
}

/// The sources the SDK's default chain tries, in order, as people set them.
pub const CREDENTIAL_SOURCES: &str = "environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY), shared profile (AWS_PROFILE in ~/.aws/credentials or ~/.aws/config), web identity/IRSA (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN), container (AWS_CONTAINER_CREDENTIALS_FULL_URI/RELATIVE_URI), instance metadata (IMDS)";

async fn check_credentials(conf: &SdkConfig) -> Result<()> {
    use aws_credential_types::provider::{error::CredentialsError, ProvideCredentials};
    let Some(provider) = conf.credentials_provider() else {
        return Err(no_credentials(None));
    };
    match provider.provide_credentials().await {
        Ok(creds) => {
            // Held, never sent (only signatures are): still never shown from an answer.
            crate::sent::register(creds.secret_access_key().as_bytes());
            if let Some(token) = creds.session_token() {
                crate::sent::register(token.as_bytes());
            }
            Ok(())
        }
        Err(e) if guard_error(&e).is_some() => Err(guard_error(&e).expect("checked")),
        Err(e @ CredentialsError::CredentialsNotLoaded(_)) => Err(no_credentials(Some(e))),
        Err(e) => Err(Error::AwsNoCredentials {
            tried: CREDENTIAL_SOURCES.into(),
            hint: "a credential source is configured but failed: check it (the cause follows)"
                .into(),
            source: Some(Box::new(e)),
        }),
    }
}

fn no_credentials(
    source: Option<aws_credential_types::provider::error::CredentialsError>,
) -> Error {
    Error::AwsNoCredentials {
        tried: CREDENTIAL_SOURCES.into(),
        hint: "set one: `aws configure` or AWS_PROFILE, AWS_ACCESS_KEY_ID with AWS_SECRET_ACCESS_KEY, or run in a pod whose ServiceAccount has an IRSA role (eks.amazonaws.com/role-arn)".into(),
        source: source.map(|e| Box::new(e) as _),
    }
}

/// The region of the loaded configuration.
pub fn region_of(conf: &SdkConfig) -> String {
    conf.region().map(|r| r.to_string()).unwrap_or_default()
}

/// Turns an SDK error into sealkey's, naming the service, action and resource; AccessDenied
/// says which permission is missing, a disabled KMS key says how to enable it.
pub fn sdk_error<E, R>(
    service: &'static str,
    action: &'static str,
    resource: &str,
    err: aws_smithy_runtime_api::client::result::SdkError<E, R>,
) -> Error
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata
        + std::error::Error
        + Send
        + Sync
        + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    use aws_smithy_runtime_api::client::result::SdkError;
    if let Some(e) = guard_error(&err) {
        return e;
    }
    let (code, message) = match &err {
        SdkError::ServiceError(se) => (
            se.err().code().unwrap_or("unknown").to_string(),
            se.err().message().unwrap_or("").to_string(),
        ),
        SdkError::TimeoutError(_) => ("Timeout".into(), "no answer in time".into()),
        SdkError::DispatchFailure(d) => (
            "DispatchFailure".into(),
            if d.is_io() {
                "the endpoint could not be reached".into()
            } else {
                "the request could not be sent".into()
            },
        ),
        _ => ("unknown".into(), String::new()),
    };
    let permission = format!("{}:{action}", service_prefix(service));
    let hint = match code.as_str() {
        "AccessDeniedException" | "AccessDenied" | "UnrecognizedClientException"
        | "InvalidSignatureException" | "IncompleteSignature" => format!(
            "the AWS identity needs {permission} on {resource} (deploy/iam-policy.json lists exactly what sealkey calls)"
        ),
        "DisabledException" | "KMSInvalidStateException" => format!(
            "the KMS key is disabled or pending deletion: enable it (`aws kms enable-key --key-id {resource}`) or pick another"
        ),
        "InvalidCiphertextException" => format!(
            "KMS did not accept the entry's ciphertext for {resource}: its `enc` or `context` was altered, or it was made for another key; restore the file from git"
        ),
        "NotFoundException" | "ResourceNotFoundException" => {
            format!("check the name or ARN {resource} and the region")
        }
        "ThrottlingException" | "Throttling" | "TooManyRequestsException" => format!(
            "AWS kept throttling after {MAX_ATTEMPTS} attempts: try again later"
        ),
        "DispatchFailure" | "Timeout" => {
            "check the network, the region and AWS_ENDPOINT_URL if set".into()
        }
        _ => "see the AWS message".into(),
    };
    let hint = Message::from(hint);
    Error::Aws(Box::new(AwsFailure {
        service,
        action,
        resource: resource.to_string(),
        code: crate::http::sanitize_server_text(&code, &[]),
        message: crate::http::sanitize_server_text(&message, &[]),
        hint,
        source: Box::new(err),
    }))
}

/// An AWS call that was refused or failed ([`Error::Aws`]).
#[derive(Debug, thiserror::Error)]
pub struct AwsFailure {
    /// `Secrets Manager`, `KMS`.
    pub service: &'static str,
    /// The API action, e.g. `PutSecretValue`.
    pub action: &'static str,
    /// The secret name or key ARN.
    pub resource: String,
    /// AWS's error code, e.g. `AccessDeniedException`.
    pub code: String,
    /// AWS's message, through [`crate::http::sanitize_server_text`]: a server may echo what
    /// was sent (a secret value, a data key) or a credential, and those are redacted.
    pub message: String,
    /// What to do next.
    pub hint: crate::error::Message,
    /// The SDK's error.
    #[source]
    pub source: Box<dyn std::error::Error + Send + Sync + 'static>,
}

impl AwsFailure {
    /// The message, with the settings in the hint written by `spelling` (see [`Error::render`]).
    pub fn render(&self, spelling: &dyn crate::error::Spelling) -> String {
        self.text().render(spelling)
    }

    /// The message as [`Message`], its settings not yet spelled.
    pub fn text(&self) -> Message {
        let message = if self.message.is_empty() {
            String::new()
        } else {
            format!(" ({})", self.message)
        };
        message!(
            "{}; {}",
            format!(
                "AWS {} {} on {}: {}{message}",
                self.service, self.action, self.resource, self.code
            ),
            &self.hint
        )
    }
}

impl std::fmt::Display for AwsFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.render(&crate::error::LibrarySpelling))
    }
}

fn service_prefix(service: &str) -> &'static str {
    match service {
        "KMS" => "kms",
        "STS" => "sts",
        _ => "secretsmanager",
    }
}

/// The largest answer body accepted from AWS (a Secrets Manager or KMS answer is a few KiB;
/// GitHub's cap).
pub const MAX_ANSWER_BYTES: usize = 4 << 20;

/// The SDK's own plain-http credential endpoints: instance metadata (IMDS) and the ECS/EKS
/// container credential addresses, link-local by design (the SDK itself limits
/// `AWS_CONTAINER_CREDENTIALS_FULL_URI` over http to loopback and these).
fn is_aws_metadata_address(url: &url::Url) -> bool {
    use std::net::{Ipv4Addr, Ipv6Addr};
    match url.host() {
        Some(url::Host::Ipv4(ip)) => [
            Ipv4Addr::new(169, 254, 169, 254),
            Ipv4Addr::new(169, 254, 170, 2),
            Ipv4Addr::new(169, 254, 170, 23),
        ]
        .contains(&ip),
        Some(url::Host::Ipv6(ip)) => [
            Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254),
            Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23),
        ]
        .contains(&ip),
        _ => false,
    }
}

/// The variables that can point the SDK at an endpoint, most specific first.
const ENDPOINT_VARIABLES: [&str; 8] = [
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_ENDPOINT_URL_KMS",
    "AWS_ENDPOINT_URL_STS",
    "AWS_ENDPOINT_URL_SSO",
    "AWS_ENDPOINT_URL_SSO_OIDC",
    "AWS_ENDPOINT_URL",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
];

/// Which setting names `url`: the first variable whose value is that URL (same scheme, host and
/// port), else the profile's `endpoint_url` (top level or a `services` section).
fn endpoint_source(url: &url::Url) -> String {
    let same = |v: &str| {
        url::Url::parse(v.trim()).is_ok_and(|u| {
            u.scheme() == url.scheme()
                && u.host_str() == url.host_str()
                && u.port_or_known_default() == url.port_or_known_default()
        })
    };
    ENDPOINT_VARIABLES
        .iter()
        .find(|name| std::env::var(name).is_ok_and(|v| same(&v)))
        .map(|name| name.to_string())
        .unwrap_or_else(|| {
            "endpoint_url in the AWS profile (AWS_CONFIG_FILE or ~/.aws/config, top level or a `services` section)".into()
        })
}

/// A request the guard refused to send: plain http to a host that is not this machine.
#[derive(Debug, thiserror::Error)]
#[error("plain http to {host} refused (set by {source_name})")]
pub struct EndpointRefused {
    /// `host[:port]` of the request.
    pub host: String,
    /// The variable or profile setting that named it.
    pub source_name: String,
}

impl EndpointRefused {
    fn of(url: &url::Url) -> Self {
        Self {
            host: crate::http::sanitize_server_text(&crate::http::host_port(url), &[]),
            source_name: endpoint_source(url),
        }
    }

    fn into_error(self) -> Error {
        Error::input(
            message!(
                "AWS endpoint http://{} ({})",
                self.host,
                self.source_name.clone()
            ),
            "plain http to a host other than this machine: the request (a key, a data key, signed credentials) would cross the network in clear",
            message!(
                "use https://, or http only to 127.0.0.1/localhost (a local test server); fix or unset {}",
                self.source_name
            ),
        )
    }
}

/// An answer body longer than [`MAX_ANSWER_BYTES`] (announced or read).
#[derive(Debug, thiserror::Error)]
#[error("answer from {host} larger than {cap} bytes")]
pub struct AnswerTooLarge {
    /// `host[:port]` that answered.
    pub host: String,
    /// The cap, in bytes.
    pub cap: usize,
}

/// The guard's refusal somewhere in `err`'s causes, as sealkey's error.
fn guard_error(err: &(dyn std::error::Error + 'static)) -> Option<Error> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cause {
        if let Some(r) = e.downcast_ref::<EndpointRefused>() {
            return Some(
                EndpointRefused {
                    host: r.host.clone(),
                    source_name: r.source_name.clone(),
                }
                .into_error(),
            );
        }
        if let Some(t) = e.downcast_ref::<AnswerTooLarge>() {
            return Some(Error::remote(
                "AWS",
                format!(
                    "answer from {} larger than {} bytes; stopped reading",
                    t.host, t.cap
                ),
                "check AWS_ENDPOINT_URL (and the profile's endpoint_url) points at AWS or a real test server; a proxy or server on the way may be misbehaving",
            ));
        }
        cause = e.source();
    }
    None
}

/// Refuses, before any call, an endpoint configured for a service sealkey calls (Secrets
/// Manager, KMS, STS) that [`crate::http::may_send_to`] refuses, naming where it was set.
fn check_endpoints(conf: &SdkConfig) -> Result<()> {
    use aws_types::service_config::ServiceConfigKey;
    let mut urls: Vec<String> = conf
        .endpoint_url()
        .map(str::to_string)
        .into_iter()
        .collect();
    if let Some(services) = conf.service_config() {
        for service in ["Secrets Manager", "KMS", "STS"] {
            let key = ServiceConfigKey::builder()
                .service_id(service)
                .env("AWS_ENDPOINT_URL")
                .profile("endpoint_url")
                .build()
                .expect("every field set");
            urls.extend(services.load_config(key));
        }
    }
    for url in urls {
        let parsed = url::Url::parse(url.trim()).map_err(|_| {
            Error::input(
                message!(
                    "AWS endpoint {}",
                    crate::http::sanitize_server_text(&url, &[])
                ),
                "not a URL",
                "set AWS_ENDPOINT_URL (or the profile's endpoint_url) to https://HOST[:PORT]",
            )
        })?;
        if !crate::http::may_send_to(&parsed) {
            return Err(EndpointRefused::of(&parsed).into_error());
        }
    }
    Ok(())
}

/// The SDK's HTTP client with sealkey's rules around every request (see the module docs).
#[derive(Debug)]
pub struct GuardedHttp {
    inner: aws_smithy_runtime_api::client::http::SharedHttpClient,
}

impl GuardedHttp {
    /// Wraps `inner`.
    pub fn new(inner: aws_smithy_runtime_api::client::http::SharedHttpClient) -> Self {
        Self { inner }
    }
}

impl aws_smithy_runtime_api::client::http::HttpClient for GuardedHttp {
    fn http_connector(
        &self,
        settings: &aws_smithy_runtime_api::client::http::HttpConnectorSettings,
        components: &aws_smithy_runtime_api::client::runtime_components::RuntimeComponents,
    ) -> aws_smithy_runtime_api::client::http::SharedHttpConnector {
        aws_smithy_runtime_api::client::http::SharedHttpConnector::new(GuardedConnector {
            inner: self.inner.http_connector(settings, components),
        })
    }
}

#[derive(Debug)]
struct GuardedConnector {
    inner: aws_smithy_runtime_api::client::http::SharedHttpConnector,
}

impl aws_smithy_runtime_api::client::http::HttpConnector for GuardedConnector {
    fn call(
        &self,
        request: aws_smithy_runtime_api::client::orchestrator::HttpRequest,
    ) -> aws_smithy_runtime_api::client::http::HttpConnectorFuture {
        use aws_smithy_runtime_api::client::http::HttpConnectorFuture;
        use aws_smithy_runtime_api::client::result::ConnectorError;
        let url = match url::Url::parse(request.uri()) {
            Ok(u) if crate::http::may_send_to(&u) || is_aws_metadata_address(&u) => u,
            Ok(u) => {
                return HttpConnectorFuture::ready(Err(ConnectorError::other(
                    Box::new(EndpointRefused::of(&u)),
                    None,
                )))
            }
            Err(_) => {
                return HttpConnectorFuture::ready(Err(ConnectorError::other(
                    "the request URL does not parse".into(),
                    None,
                )))
            }
        };
        // Credentials on the wire (a session token, SigV4's signature) are never shown back.
        let headers = request.headers();
        if let Some(token) = headers.get("x-amz-security-token") {
            crate::sent::register(token.as_bytes());
        }
        if let Some(auth) = headers.get("authorization") {
            if let Some(sig) = auth.split("Signature=").nth(1) {
                crate::sent::register(sig.trim().as_bytes());
            }
        }
        let host = crate::http::host_port(&url);
        let answer = self.inner.call(request);
        HttpConnectorFuture::new(async move {
            let mut resp = answer.await?;
            let too_large = || AnswerTooLarge {
                host: host.clone(),
                cap: MAX_ANSWER_BYTES,
            };
            let announced = resp
                .headers()
                .get("content-length")
                .and_then(|v| v.trim().parse::<u64>().ok());
            if announced.is_some_and(|n| n > MAX_ANSWER_BYTES as u64) {
                return Err(ConnectorError::other(Box::new(too_large()), None));
            }
            let body = resp.take_body();
            *resp.body_mut() = aws_smithy_types::body::SdkBody::from_body_1_x(CappedBody {
                inner: body,
                read: 0,
                too_large: Some(too_large()),
            });
            Ok(resp)
        })
    }
}

/// A body that fails once more than [`MAX_ANSWER_BYTES`] have come through.
struct CappedBody {
    inner: aws_smithy_types::body::SdkBody,
    read: usize,
    too_large: Option<AnswerTooLarge>,
}

impl http_body::Body for CappedBody {
    type Data = bytes::Bytes;
    type Error = aws_smithy_runtime_api::box_error::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<std::result::Result<http_body::Frame<Self::Data>, Self::Error>>>
    {
        use std::task::Poll;
        let frame = http_body::Body::poll_frame(std::pin::Pin::new(&mut self.inner), cx);
        if let Poll::Ready(Some(Ok(f))) = &frame {
            if let Some(data) = f.data_ref() {
                self.read = self.read.saturating_add(data.len());
                if self.read > MAX_ANSWER_BYTES {
                    let err = self.too_large.take().unwrap_or(AnswerTooLarge {
                        host: String::new(),
                        cap: MAX_ANSWER_BYTES,
                    });
                    return Poll::Ready(Some(Err(Box::new(err))));
                }
            }
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        http_body::Body::is_end_stream(&self.inner)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::Body::size_hint(&self.inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names_are_recognised_and_typos_refused() {
        for ok in [
            "us-east-1",
            "eu-central-2",
            "us-gov-west-1",
            "ap-southeast-4",
            "cn-north-1",
        ] {
            assert!(is_region_name(ok), "{ok}");
        }
        for bad in [
            "us-east",
            "moon-east-1",
            "US-EAST-1",
            "us-east-1; rm",
            "",
            "us-middle-1",
        ] {
            assert!(!is_region_name(bad), "{bad}");
        }
    }
}
