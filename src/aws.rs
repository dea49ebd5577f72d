//! The AWS SDK set up the way sealkey uses it: the standard credential chain and region
//! resolution (environment, shared profile, web identity/IRSA, container and instance
//! metadata), rustls with ring, bounded retries and timeouts, and AWS errors turned into
//! sealkey's (the action and resource named, what to do next). `AWS_ENDPOINT_URL` (read by the
//! SDK itself) points every client at another endpoint, e.g. a test server.
//!
//! No SigV4 or credential chain is written here: the SDK does both. Its debug logging goes
//! through `tracing`, which sealkey never subscribes to, so request bodies are never logged.

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
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https();
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
        Ok(_) => Ok(()),
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
        code,
        message: truncate(&message, 300),
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
    /// AWS's message (answers carry no secret value; requests do, and are never logged).
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

fn truncate(s: &str, max: usize) -> String {
    let cleaned: String = s.chars().filter(|c| !c.is_control()).take(max).collect();
    cleaned
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
