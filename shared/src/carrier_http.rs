//! What the carriers' REST clients ([`crate::twilio::rest`], [`crate::exotel::rest`])
//! share: the HTTP client's settings, and posting a form with HTTP basic auth, retried
//! with jittered exponential backoff ([`RetryPolicy`]) only where the carrier cannot
//! have acted on the request or asks us to come back: HTTP 429, HTTP 5xx (honouring
//! `Retry-After`, capped) and failures to connect. A timeout or a connection lost
//! mid-request is not retried: the carrier may already have placed the call, and placing
//! it twice is worse than reporting the doubt.
//!
//! [`post_form`] says how the request ended as an [`Outcome`]; each client turns that
//! into its own error type and reads its own carrier's bodies.

use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use reqwest::StatusCode;
use reqwest::header::RETRY_AFTER;
use serde::Serialize;

/// A carrier's answers are a few kilobytes; anything far larger is not the carrier.
const MAX_BODY_BYTES: usize = 1 << 20;

/// How often and how patiently a request is retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1 is made).
    pub attempts: u32,
    /// The wait before the first retry; it doubles for each retry after that, and each
    /// wait is jittered to between half and all of it.
    pub base_delay: Duration,
    /// The longest wait between attempts, also the cap on a `Retry-After`.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    /// Three attempts, waiting about 200 ms then 400 ms; `Retry-After` honoured up to 5 s.
    fn default() -> Self {
        RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The jittered wait before retry number `retry` (1 for the first retry).
    pub fn backoff(&self, retry: u32) -> Duration {
        let doublings = retry.saturating_sub(1).min(20);
        let ceiling = self
            .base_delay
            .saturating_mul(1 << doublings)
            .min(self.max_delay);
        // Equal jitter: clients that failed together spread out, yet none retries at once.
        let half = ceiling / 2;
        let spread = u64::try_from((ceiling - half).as_nanos()).unwrap_or(u64::MAX);
        half + Duration::from_nanos(rand::random_range(0..=spread))
    }

    /// The wait before retry number `retry`, given the server's `Retry-After`, if any.
    pub(crate) fn delay(&self, retry: u32, retry_after: Option<Duration>) -> Duration {
        match retry_after {
            Some(wait) => wait.min(self.max_delay),
            None => self.backoff(retry),
        }
    }
}

/// An HTTP client for a carrier's API: `timeout` on connecting and on each whole
/// request, no redirects (a redirected POST would become a GET, or take the credentials
/// elsewhere), Parley's user agent.
pub(crate) fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("parley/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A form post to a carrier, authenticated with HTTP basic auth. Not `Debug`: it holds
/// the password.
pub(crate) struct FormPost<'a, P: ?Sized> {
    /// The carrier's name, for the retry warnings (`Twilio`, `Exotel`).
    pub carrier: &'static str,
    /// What the request does (`create_call`), for the retry warnings.
    pub operation: &'static str,
    /// The tenant's account at the carrier (its SID), for the retry warnings.
    pub account: &'a str,
    pub url: &'a str,
    /// The basic-auth user name and password. Neither ever reaches a log or an outcome.
    pub user: &'a str,
    pub password: &'a str,
    /// The form's name-value pairs, in order.
    pub params: &'a P,
    /// A GET of `url` (reading a resource) instead of a form POST; `params` unused.
    pub get: bool,
}

/// How a [`post_form`] ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// The carrier's final answer: any status but 429 and 5xx, its whole body.
    Answered { status: StatusCode, body: Vec<u8> },
    /// A final answer whose body is over the size limit (`detail` says so).
    TooLarge { status: StatusCode, detail: String },
    /// No complete answer within the client's timeout; the request may have been
    /// carried out, so it was not retried.
    Timeout,
    /// The connection failed after the request may have been sent; not retried.
    Transport { detail: String },
    /// Busy, failing or unreachable on every attempt (429, 5xx, or no connection).
    Unavailable {
        attempts: u32,
        /// The last attempt's HTTP status, `None` if it could not connect.
        status: Option<u16>,
        detail: String,
        /// The carrier's last `Retry-After`, uncapped.
        retry_after: Option<Duration>,
    },
}

/// Posts `post`'s form, retrying as `retry` allows. A retried attempt's detail is
/// `describe(status, body)` (the carrier's error, as its client words it) when the body
/// could be read; each retry is logged as a warning naming the carrier, the operation and
/// the account, never the credentials.
pub(crate) async fn post_form<P>(
    http: &reqwest::Client,
    retry: RetryPolicy,
    post: &FormPost<'_, P>,
    describe: impl Fn(StatusCode, &[u8]) -> String,
) -> Outcome
where
    P: Serialize + ?Sized,
{
    let attempts = retry.attempts.max(1);
    let mut attempt = 1;
    loop {
        let (status, detail, retry_after) = match attempt_once(http, post, &describe).await {
            Attempt::Done(outcome) => return outcome,
            Attempt::Failed {
                status,
                detail,
                retry_after,
            } => (status, detail, retry_after),
        };
        if attempt >= attempts {
            return Outcome::Unavailable {
                attempts,
                status,
                detail,
                retry_after,
            };
        }
        let delay = retry.delay(attempt, retry_after);
        // The account SID identifies the tenant's account; the credentials never reach a log.
        tracing::warn!(
            operation = post.operation,
            account_sid = %post.account,
            status,
            attempt,
            attempts,
            delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            detail = %detail,
            "{} request failed; retrying",
            post.carrier,
        );
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
}

/// The outcome of one request: final, or worth another attempt.
enum Attempt {
    Done(Outcome),
    Failed {
        status: Option<u16>,
        detail: String,
        retry_after: Option<Duration>,
    },
}

/// One request and its outcome.
async fn attempt_once<P>(
    http: &reqwest::Client,
    post: &FormPost<'_, P>,
    describe: &impl Fn(StatusCode, &[u8]) -> String,
) -> Attempt
where
    P: Serialize + ?Sized,
{
    let request = match post.get {
        true => http.get(post.url),
        false => http.post(post.url).form(post.params),
    };
    let sent = request
        .basic_auth(post.user, Some(post.password))
        .send()
        .await;
    let response = match sent {
        Ok(response) => response,
        // Checked before the timeout: a connection never made carried no request.
        Err(e) if e.is_connect() => {
            return Attempt::Failed {
                status: None,
                detail: format!("could not connect: {}", chain(&e)),
                retry_after: None,
            };
        }
        Err(e) => return Attempt::Done(transport_error(&e)),
    };
    let status = response.status();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, Utc::now()));
    let body = read_body(response).await;

    if is_retryable_status(status.as_u16()) {
        // Whatever the body says (or fails to), this attempt is over; the next decides.
        let detail = match &body {
            Ok(body) => describe(status, body),
            Err(e) => format!("HTTP {status}, body unreadable: {e}"),
        };
        return Attempt::Failed {
            status: Some(status.as_u16()),
            detail,
            retry_after,
        };
    }
    match body {
        Ok(body) => Attempt::Done(Outcome::Answered { status, body }),
        Err(BodyError::Http(e)) => Attempt::Done(transport_error(&e)),
        Err(e @ BodyError::TooLarge) => Attempt::Done(Outcome::TooLarge {
            status,
            detail: e.to_string(),
        }),
    }
}

fn transport_error(e: &reqwest::Error) -> Outcome {
    if e.is_timeout() {
        Outcome::Timeout
    } else {
        Outcome::Transport { detail: chain(e) }
    }
}

#[derive(Debug)]
enum BodyError {
    Http(reqwest::Error),
    TooLarge,
}

impl fmt::Display for BodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BodyError::Http(e) => f.write_str(&chain(e)),
            BodyError::TooLarge => write!(f, "the body is over {MAX_BODY_BYTES} bytes"),
        }
    }
}

/// The response body, refused past [`MAX_BODY_BYTES`].
async fn read_body(mut response: reqwest::Response) -> Result<Vec<u8>, BodyError> {
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(BodyError::Http)? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(BodyError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// HTTP 429 or 5xx: the carrier is busy or failing, and asks (or may be asked) again.
pub(crate) fn is_retryable_status(status: u16) -> bool {
    status == 429 || (500..600).contains(&status)
}

/// A `Retry-After` value: seconds, or an HTTP date (a date past is no wait).
pub(crate) fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = DateTime::parse_from_rfc2822(value).ok()?;
    Some(
        (when.with_timezone(&Utc) - now)
            .to_std()
            .unwrap_or(Duration::ZERO),
    )
}

/// An error and its causes, one line (reqwest's own message hides the cause).
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// The most characters of a carrier's error body quoted in an error message.
pub(crate) const MAX_MESSAGE_CHARS: usize = 300;

/// The start of a response body as one line of text, for error messages.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut out: String = text
        .trim()
        .chars()
        .take(MAX_MESSAGE_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.trim().chars().count() > MAX_MESSAGE_CHARS {
        out.push('…');
    }
    out
}

/// An absolute http(s) URL with no credentials, query or fragment of its own; the
/// reason otherwise.
pub(crate) fn check_base_url(base_url: &str) -> Result<(), String> {
    let url =
        reqwest::Url::parse(base_url).map_err(|e| format!("the base URL is not a URL: {e}"))?;
    // Checked before the URL is ever shown, so credentials in it are never echoed.
    if !url.username().is_empty() || url.password().is_some() {
        return Err("the base URL must not carry credentials (they belong in Credentials)".into());
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("the base URL {base_url:?} is not http or https"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "the base URL {base_url:?} must not have a query or fragment"
        ));
    }
    Ok(())
}
