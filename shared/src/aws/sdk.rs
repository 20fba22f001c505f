//! The AWS SDK configuration every adapter is built from, and the one mapping of SDK
//! failures into [`StoreError`].
//!
//! The SDK crates are built without their default features, which would pull in aws-lc
//! (a large C build); the HTTPS client is made here explicitly with rustls over ring.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::{BehaviorVersion, ConfigLoader, SdkConfig};
use aws_sdk_dynamodb::config::SharedHttpClient;
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_smithy_http_client::tls::{self, rustls_provider::CryptoMode};

use crate::error::StoreError;

/// Attempts per call, the first included, before a throttled or failing call is given
/// up and reported.
pub const MAX_ATTEMPTS: u32 = 5;

/// The HTTPS client all SDK clients use: hyper with rustls and the ring provider. Plain
/// `http://` endpoints (emulators) work too.
pub fn http_client() -> SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(CryptoMode::Ring))
        .build_https()
}

/// The SDK's standard retry mode: it retries throttling, time-outs and 5xx itself, with
/// exponential back-off and jitter (1 s base, 20 s cap), up to [`MAX_ATTEMPTS`]. The
/// adapters report what is left after that.
pub fn retry_config() -> RetryConfig {
    RetryConfig::standard()
        .with_max_attempts(MAX_ATTEMPTS)
        .with_initial_backoff(Duration::from_secs(1))
        .with_max_backoff(Duration::from_secs(20))
}

/// The default configuration chain (environment, profile, container and instance
/// credentials, `AWS_REGION`, `AWS_ENDPOINT_URL` and `AWS_ENDPOINT_URL_<SERVICE>`) with
/// Parley's HTTPS client and retry policy. Tests add explicit overrides before `load`.
pub fn config_loader() -> ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .retry_config(retry_config())
}

/// The SDK configuration for the running environment.
pub async fn sdk_config() -> SdkConfig {
    config_loader().load().await
}

/// An S3 client for `config`. When an endpoint is overridden (an emulator such as moto
/// or MinIO on 127.0.0.1), buckets are addressed by path, since such hosts cannot serve
/// `<bucket>.<host>` names.
pub fn s3_client(config: &SdkConfig) -> aws_sdk_s3::Client {
    let env_set = |name: &str| std::env::var_os(name).is_some_and(|v| !v.is_empty());
    let custom_endpoint = config.endpoint_url().is_some()
        || env_set("AWS_ENDPOINT_URL")
        || env_set("AWS_ENDPOINT_URL_S3");
    let conf = aws_sdk_s3::config::Builder::from(config)
        .force_path_style(custom_endpoint)
        .build();
    aws_sdk_s3::Client::from_conf(conf)
}

/// Error codes that mean "slow down", across DynamoDB, SQS and S3.
const THROTTLING_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "Throttling",
    "ThrottledException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "TooManyRequestsException",
    "SlowDown",
    "AWS.SimpleQueueService.RequestThrottled",
];

/// Error codes that mean the table, queue or bucket does not exist.
const MISSING_CODES: &[&str] = &[
    "ResourceNotFoundException",
    "NoSuchBucket",
    "QueueDoesNotExist",
    "AWS.SimpleQueueService.NonExistentQueue",
];

/// Error codes of transient server-side failures, whatever status they came with.
const TRANSIENT_CODES: &[&str] = &[
    "InternalServerError",
    "InternalFailure",
    "InternalError",
    "ServiceUnavailable",
    "RequestTimeout",
    "RequestTimeoutException",
];

/// Maps what the SDK returns after its own retries into the port's error. `what` names
/// the table, queue URL or bucket.
pub(crate) fn sdk_error<E>(what: &str, err: SdkError<E, HttpResponse>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let detail = DisplayErrorContext(&err).to_string();
    match &err {
        SdkError::ServiceError(ctx) => classify(
            what,
            ctx.err().code(),
            ctx.err().message(),
            Some(ctx.raw().status().as_u16()),
            detail,
        ),
        // A response came but could not be read: 4xx will not change on a retry; a 2xx
        // or 5xx cut short might.
        SdkError::ResponseError(ctx) => {
            let status = ctx.raw().status().as_u16();
            if matches!(status, 429 | 503) {
                StoreError::Throttled {
                    what: what.to_owned(),
                    detail,
                }
            } else {
                backend(what, detail, !(400..500).contains(&status))
            }
        }
        SdkError::TimeoutError(_) => backend(what, detail, true),
        // A "user" connector error is a bad request (e.g. an invalid endpoint URL): it
        // fails the same way every time.
        SdkError::DispatchFailure(ctx) => backend(what, detail, !ctx.is_user()),
        // Construction failures (a missing required field, no region) and any variant a
        // newer SDK adds.
        _ => backend(what, detail, false),
    }
}

/// Classifies an error response by its code and HTTP status.
pub(crate) fn classify(
    what: &str,
    code: Option<&str>,
    message: Option<&str>,
    status: Option<u16>,
    detail: String,
) -> StoreError {
    let code_in = |codes: &[&str]| code.is_some_and(|c| codes.contains(&c));
    if code_in(THROTTLING_CODES) || matches!(status, Some(429 | 503)) {
        let detail = match (code, message) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            _ => detail,
        };
        return StoreError::Throttled {
            what: what.to_owned(),
            detail,
        };
    }
    if code_in(MISSING_CODES) {
        return StoreError::Missing {
            what: what.to_owned(),
        };
    }
    let retryable = code_in(TRANSIENT_CODES) || status.is_some_and(|s| s >= 500);
    backend(what, detail, retryable)
}

pub(crate) fn backend(what: &str, detail: impl Into<String>, retryable: bool) -> StoreError {
    StoreError::Backend {
        what: what.to_owned(),
        detail: detail.into(),
        retryable,
    }
}

/// The error code of a service error response, if the call got that far.
pub(crate) fn error_code<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Option<&str> {
    match err {
        SdkError::ServiceError(ctx) => ctx.err().code(),
        _ => None,
    }
}

/// The HTTP status of the response an error came with, if any.
pub(crate) fn error_status<E>(err: &SdkError<E, HttpResponse>) -> Option<u16> {
    err.raw_response().map(|r| r.status().as_u16())
}

/// Rounds a duration up to whole seconds for APIs that take seconds, so nothing becomes
/// visible or expires earlier than asked.
pub(crate) fn ceil_secs(d: Duration) -> i32 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    i32::try_from(secs).unwrap_or(i32::MAX)
}
