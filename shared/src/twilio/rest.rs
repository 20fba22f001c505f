//! Twilio's REST API, as much of it as Parley needs: placing an outbound call
//! ([`TwilioClient::create_call`]) and handing a live call new TwiML
//! ([`TwilioClient::update_call`], for transfers), both on the 2010-04-01 Calls resource.
//!
//! Each tenant brings its own Twilio account, so the [`Credentials`] travel with every
//! request rather than living in the client; one [`TwilioClient`] (one connection pool)
//! serves every tenant. The base URL is Twilio's ([`DEFAULT_BASE_URL`]) in production and
//! a local server in tests and local runs.
//!
//! Requests are form posts with Twilio's parameter names, authenticated with HTTP basic
//! auth (account SID and auth token). The token is only ever written into that header:
//! [`Credentials`]' `Debug` shows `***`, and neither errors nor logs carry it.
//!
//! Failures are retried with jittered exponential backoff ([`RetryPolicy`]) only where
//! Twilio cannot have acted on the request or asks us to come back: HTTP 429, HTTP 5xx
//! (honouring `Retry-After`, capped) and failures to connect. Any other 4xx is final and
//! comes back as [`TwilioError::Api`] with Twilio's error code. A timeout or a connection
//! lost mid-request is not retried: Twilio may already have placed the call, and placing
//! it twice is worse than reporting the doubt.

use std::time::Duration;

use reqwest::StatusCode;
use serde::Deserialize;

pub use crate::carrier_http::RetryPolicy;

use crate::carrier_http::{self, FormPost, Outcome, chain, is_retryable_status, snippet};
use crate::secrets::SecretString;
// For the tests below, which check the shared Retry-After reading through this module.
#[cfg(test)]
use crate::carrier_http::{MAX_MESSAGE_CHARS, parse_retry_after};
#[cfg(test)]
use chrono::{DateTime, Utc};

/// Twilio's REST API.
pub const DEFAULT_BASE_URL: &str = "https://api.twilio.com";

/// Every call progress event Twilio can report to a status callback, for
/// [`CreateCall::status_callback_events`].
pub const ALL_STATUS_CALLBACK_EVENTS: [&str; 4] = ["initiated", "ringing", "answered", "completed"];

/// Twilio error 21211: the `To` number is not a valid phone number.
pub const ERROR_INVALID_TO_NUMBER: u32 = 21211;
/// Twilio error 21217: the number called does not appear to be valid (also an invalid
/// number, reported for some outbound calls instead of 21211).
pub const ERROR_NUMBER_NOT_VALID: u32 = 21217;
/// Twilio error 21214: the `To` number cannot be reached.
pub const ERROR_TO_NUMBER_UNREACHABLE: u32 = 21214;
/// Twilio error 21215: the account's voice geographic permissions do not allow calling
/// this number. The tenant's Twilio settings are at fault, not the number, so this is not
/// [`TwilioError::is_unreachable`]; see [`TwilioError::is_geo_blocked`].
pub const ERROR_GEO_PERMISSIONS: u32 = 21215;

/// The method we ask Twilio to use for every callback: our webhooks take signed form
/// posts only.
const CALLBACK_METHOD: &str = "POST";
/// The longest SID we accept (Twilio's are 34 characters).
const MAX_SID_CHARS: usize = 64;

/// A Twilio account's credentials: its SID (`AC…`) and auth token. `Debug` shows the SID
/// and `***` for the token.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub account_sid: String,
    pub auth_token: SecretString,
}

/// An outbound call to place: the parameters of Twilio's "create a Call" request that we
/// use. Optional settings left `None` (or `false`, or empty) are not sent, so Twilio's
/// defaults apply.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CreateCall {
    /// The number to call, E.164 (`To`).
    pub to: String,
    /// The caller ID, one of the account's numbers, E.164 (`From`).
    pub from: String,
    /// Where Twilio fetches the call's TwiML once it is answered (`Url`).
    pub url: String,
    /// Where Twilio posts call progress (`StatusCallback`, with `StatusCallbackMethod=POST`).
    pub status_callback: Option<String>,
    /// Which progress events to post (`StatusCallbackEvent`, repeated): some of
    /// [`ALL_STATUS_CALLBACK_EVENTS`]. Twilio posts only `completed` when this is empty.
    pub status_callback_events: Vec<String>,
    /// Answering machine detection (`MachineDetection`): `Enable` or `DetectMessageEnd`.
    pub machine_detection: Option<String>,
    /// Run answering machine detection in the background (`AsyncAmd=true`) and post its
    /// verdict to `async_amd_status_callback` instead of holding the call's TwiML until
    /// it is known. Needs `machine_detection`.
    pub async_amd: bool,
    /// Where Twilio posts the asynchronous verdict (`AsyncAmdStatusCallback`, with
    /// `AsyncAmdStatusCallbackMethod=POST`); sent only with `async_amd`.
    pub async_amd_status_callback: Option<String>,
    /// Record the call (`Record=true`).
    pub record: bool,
    /// Where Twilio posts the recording's status (`RecordingStatusCallback`, with
    /// `RecordingStatusCallbackMethod=POST`).
    pub recording_status_callback: Option<String>,
    /// Seconds to let the call ring before giving up (`Timeout`); Twilio's default is 60.
    pub timeout_secs: Option<u32>,
}

impl CreateCall {
    /// The form parameters Twilio receives, in order, repeated names included.
    pub fn form_params(&self) -> Vec<(&'static str, String)> {
        let mut params = vec![
            ("To", self.to.clone()),
            ("From", self.from.clone()),
            ("Url", self.url.clone()),
        ];
        if let Some(callback) = &self.status_callback {
            params.push(("StatusCallback", callback.clone()));
            params.push(("StatusCallbackMethod", CALLBACK_METHOD.into()));
        }
        for event in &self.status_callback_events {
            params.push(("StatusCallbackEvent", event.clone()));
        }
        if let Some(detection) = &self.machine_detection {
            params.push(("MachineDetection", detection.clone()));
        }
        if self.async_amd {
            params.push(("AsyncAmd", "true".into()));
            if let Some(callback) = &self.async_amd_status_callback {
                params.push(("AsyncAmdStatusCallback", callback.clone()));
                params.push(("AsyncAmdStatusCallbackMethod", CALLBACK_METHOD.into()));
            }
        }
        if self.record {
            params.push(("Record", "true".into()));
        }
        if let Some(callback) = &self.recording_status_callback {
            params.push(("RecordingStatusCallback", callback.clone()));
            params.push(("RecordingStatusCallbackMethod", CALLBACK_METHOD.into()));
        }
        if let Some(secs) = self.timeout_secs {
            params.push(("Timeout", secs.to_string()));
        }
        params
    }
}

/// A Call resource as Twilio returns it: the fields we use. Others are ignored.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct CallResource {
    /// The call's SID (`CA…`).
    pub sid: String,
    /// `queued`, `ringing`, `in-progress`, `canceled`, `completed`, `failed`, `busy` or
    /// `no-answer`. Kept as text so a status Twilio adds later still reads.
    pub status: String,
    #[serde(default)]
    pub account_sid: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    /// `outbound-api` for calls we place.
    #[serde(default)]
    pub direction: Option<String>,
    /// The call's length in seconds, once it ended (Twilio writes it as text).
    #[serde(default)]
    pub duration: Option<String>,
}

/// What went wrong talking to Twilio. No variant carries the auth token.
#[derive(Debug, thiserror::Error)]
pub enum TwilioError {
    /// Twilio refused the request (a 4xx other than 429, or a 3xx), with its error code
    /// and message when the body was Twilio's error JSON.
    #[error("Twilio refused the request (HTTP {status}{}): {message}", code_suffix(*.code))]
    Api {
        status: u16,
        code: Option<u32>,
        message: String,
        more_info: Option<String>,
    },
    /// Twilio was busy, failing or unreachable on every attempt (429, 5xx, or no
    /// connection). Safe to try again later; `retry_after` is Twilio's last hint.
    #[error("Twilio unavailable after {attempts} attempts: {detail}")]
    Unavailable {
        attempts: u32,
        /// The last attempt's HTTP status, `None` if it could not connect.
        status: Option<u16>,
        detail: String,
        retry_after: Option<Duration>,
    },
    /// No complete answer within the client's timeout. The request may have been carried
    /// out (a call placed), so it is not retried.
    #[error("no answer from Twilio within {after:?}")]
    Timeout { after: Duration },
    /// The connection failed after the request may have been sent.
    #[error("talking to Twilio failed: {detail}")]
    Transport { detail: String },
    /// Twilio answered success (or an error) with a body that is not what it documents.
    #[error("unexpected response from Twilio (HTTP {status}): {detail}")]
    BadResponse { status: u16, detail: String },
    /// The client's settings or the request's arguments are unusable; nothing was sent.
    #[error("invalid Twilio request: {detail}")]
    Invalid { detail: String },
}

fn code_suffix(code: Option<u32>) -> String {
    code.map(|c| format!(", error {c}")).unwrap_or_default()
}

impl TwilioError {
    /// Twilio's error code, for [`TwilioError::Api`].
    pub fn code(&self) -> Option<u32> {
        match self {
            TwilioError::Api { code, .. } => *code,
            _ => None,
        }
    }

    /// The number called is not a valid phone number (21211, 21217): calling it again
    /// will never work.
    pub fn is_invalid_number(&self) -> bool {
        matches!(
            self.code(),
            Some(ERROR_INVALID_TO_NUMBER | ERROR_NUMBER_NOT_VALID)
        )
    }

    /// The number called cannot be reached (21214).
    pub fn is_unreachable(&self) -> bool {
        self.code() == Some(ERROR_TO_NUMBER_UNREACHABLE)
    }

    /// The account's geographic permissions forbid calling this number (21215): the
    /// tenant must change its Twilio settings.
    pub fn is_geo_blocked(&self) -> bool {
        self.code() == Some(ERROR_GEO_PERMISSIONS)
    }

    /// Trying the same request again later is safe and may succeed: Twilio was
    /// unavailable or rate-limiting. A timeout or a broken connection is not retryable
    /// here, because the first request may have taken effect.
    pub fn is_retryable(&self) -> bool {
        match self {
            TwilioError::Unavailable { .. } => true,
            TwilioError::Api { status, .. } => is_retryable_status(*status),
            _ => false,
        }
    }
}

/// A client for Twilio's REST API. Cheap to clone (clones share the connection pool).
#[derive(Clone, Debug)]
pub struct TwilioClient {
    http: reqwest::Client,
    base_url: String,
    timeout: Duration,
    retry: RetryPolicy,
}

impl TwilioClient {
    /// A client for the API at `base_url` (normally [`DEFAULT_BASE_URL`]; a local server
    /// in tests), giving up on any one attempt after `timeout`, with the default
    /// [`RetryPolicy`].
    pub fn new(
        base_url: impl Into<String>,
        timeout: Duration,
    ) -> Result<TwilioClient, TwilioError> {
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        check_base_url(&base_url)?;
        if timeout.is_zero() {
            return Err(invalid("the timeout must be longer than zero"));
        }
        let http = carrier_http::http_client(timeout)
            .map_err(|e| invalid(format!("could not build the HTTP client: {}", chain(&e))))?;
        Ok(TwilioClient {
            http,
            base_url,
            timeout,
            retry: RetryPolicy::default(),
        })
    }

    /// The same client with another retry policy (tests use short waits).
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> TwilioClient {
        self.retry = retry;
        self
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// Places an outbound call: `POST /2010-04-01/Accounts/{AccountSid}/Calls.json`.
    pub async fn create_call(
        &self,
        creds: &Credentials,
        req: &CreateCall,
    ) -> Result<CallResource, TwilioError> {
        check_sid("account_sid", &creds.account_sid)?;
        let url = format!(
            "{}/2010-04-01/Accounts/{}/Calls.json",
            self.base_url, creds.account_sid
        );
        self.request("create_call", creds, &url, &req.form_params(), false)
            .await
    }

    /// Replaces a live call's instructions with `twiml` (a transfer, say):
    /// `POST /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json` with `Twiml`.
    pub async fn update_call(
        &self,
        creds: &Credentials,
        call_sid: &str,
        twiml: &str,
    ) -> Result<CallResource, TwilioError> {
        let url = self.call_url(creds, call_sid)?;
        self.request(
            "update_call",
            creds,
            &url,
            &[("Twiml", twiml.to_owned())],
            false,
        )
        .await
    }

    /// The call as Twilio has it now (its status, and its length once ended):
    /// `GET /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`. What a lost status
    /// callback would have said.
    pub async fn fetch_call(
        &self,
        creds: &Credentials,
        call_sid: &str,
    ) -> Result<CallResource, TwilioError> {
        let url = self.call_url(creds, call_sid)?;
        self.request("fetch_call", creds, &url, &[], true).await
    }

    /// The URL of one call, `/2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json`,
    /// once both ids are checked.
    fn call_url(&self, creds: &Credentials, call_sid: &str) -> Result<String, TwilioError> {
        check_sid("account_sid", &creds.account_sid)?;
        check_sid("call_sid", call_sid)?;
        Ok(format!(
            "{}/2010-04-01/Accounts/{}/Calls/{call_sid}.json",
            self.base_url, creds.account_sid
        ))
    }

    /// Posts `params` to `url` (or, with `get`, reads `url`), retrying as the
    /// [`RetryPolicy`] allows.
    async fn request(
        &self,
        operation: &'static str,
        creds: &Credentials,
        url: &str,
        params: &[(&'static str, String)],
        get: bool,
    ) -> Result<CallResource, TwilioError> {
        let post = FormPost {
            get,
            carrier: "Twilio",
            operation,
            account: &creds.account_sid,
            url,
            user: &creds.account_sid,
            password: creds.auth_token.expose(),
            params,
        };
        let describe = |status, body: &[u8]| api_error(status, body).to_string();
        match carrier_http::post_form(&self.http, self.retry, &post, describe).await {
            Outcome::Answered { status, body } if status.is_success() => parse_call(status, &body),
            Outcome::Answered { status, body } => Err(api_error(status, &body)),
            Outcome::TooLarge { status, detail } => Err(TwilioError::BadResponse {
                status: status.as_u16(),
                detail,
            }),
            Outcome::Timeout => Err(TwilioError::Timeout {
                after: self.timeout,
            }),
            Outcome::Transport { detail } => Err(TwilioError::Transport { detail }),
            Outcome::Unavailable {
                attempts,
                status,
                detail,
                retry_after,
            } => Err(TwilioError::Unavailable {
                attempts,
                status,
                detail,
                retry_after,
            }),
        }
    }
}

/// A successful answer's Call resource.
fn parse_call(status: StatusCode, body: &[u8]) -> Result<CallResource, TwilioError> {
    let bad = |detail: String| TwilioError::BadResponse {
        status: status.as_u16(),
        detail,
    };
    let call: CallResource =
        serde_json::from_slice(body).map_err(|e| bad(format!("not a Call resource: {e}")))?;
    if call.sid.is_empty() {
        return Err(bad("the Call resource has an empty sid".into()));
    }
    Ok(call)
}

/// An error answer as [`TwilioError::Api`]: Twilio's documented error JSON
/// (`{"code", "message", "more_info", "status"}`) when the body is that, else the start
/// of the body, else the status's reason.
fn api_error(status: StatusCode, body: &[u8]) -> TwilioError {
    let json = serde_json::from_slice::<serde_json::Value>(body).ok();
    let field = |name: &str| {
        json.as_ref()
            .and_then(|j| j.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let code = json
        .as_ref()
        .and_then(|j| j.get("code"))
        .and_then(|v| v.as_u64())
        .and_then(|c| u32::try_from(c).ok());
    let message = field("message")
        .filter(|m| !m.trim().is_empty())
        .or_else(|| {
            let text = snippet(body);
            (!text.is_empty()).then_some(text)
        })
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("no reason").to_owned());
    TwilioError::Api {
        status: status.as_u16(),
        code,
        message,
        more_info: field("more_info"),
    }
}

fn invalid(detail: impl Into<String>) -> TwilioError {
    TwilioError::Invalid {
        detail: detail.into(),
    }
}

/// A SID goes into the URL path, so it must be plain letters and digits. The value is not
/// echoed: a token pasted into the wrong field must not end up in an error.
fn check_sid(field: &str, sid: &str) -> Result<(), TwilioError> {
    if sid.is_empty()
        || sid.len() > MAX_SID_CHARS
        || !sid.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return Err(invalid(format!(
            "{field} must be 1 to {MAX_SID_CHARS} letters and digits (a Twilio SID)"
        )));
    }
    Ok(())
}

fn check_base_url(base_url: &str) -> Result<(), TwilioError> {
    carrier_http::check_base_url(base_url).map_err(invalid)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = DateTime::parse_from_rfc2822("Wed, 21 Oct 2015 07:28:00 GMT")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let policy = RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_millis(700),
        };
        for _ in 0..200 {
            let first = policy.backoff(1);
            assert!((100..=200).contains(&first.as_millis()), "{first:?}");
            let second = policy.backoff(2);
            assert!((200..=400).contains(&second.as_millis()), "{second:?}");
            let capped = policy.backoff(3);
            assert!((350..=700).contains(&capped.as_millis()), "{capped:?}");
            assert!(policy.backoff(u32::MAX) <= policy.max_delay);
        }
        assert_eq!(
            policy.delay(1, Some(Duration::from_secs(60))),
            policy.max_delay
        );
        assert_eq!(
            policy.delay(1, Some(Duration::from_millis(10))),
            Duration::from_millis(10)
        );
    }

    #[test]
    fn error_bodies_are_read_tolerantly() {
        let error = api_error(
            StatusCode::BAD_REQUEST,
            br#"{"code": 21211, "message": "The 'To' number 123 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#,
        );
        assert!(error.is_invalid_number());
        assert_eq!(
            error.to_string(),
            "Twilio refused the request (HTTP 400, error 21211): \
             The 'To' number 123 is not a valid phone number."
        );
        let html = api_error(StatusCode::NOT_FOUND, b"<html>\n<b>nope</b></html>");
        assert!(matches!(
            &html,
            TwilioError::Api { status: 404, code: None, message, .. } if message == "<html> <b>nope</b></html>"
        ));
        let empty = api_error(StatusCode::FORBIDDEN, b"");
        assert!(matches!(&empty, TwilioError::Api { message, .. } if message == "Forbidden"));
        let odd = api_error(StatusCode::BAD_REQUEST, br#"{"code": "x", "message": 7}"#);
        assert_eq!(odd.code(), None);
        let long = snippet("é".repeat(1000).as_bytes());
        assert_eq!(long.chars().count(), MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn sids_and_base_urls_are_checked() {
        check_sid("call_sid", "CA0123456789abcdef0123456789abcdef").unwrap();
        for bad in ["", "CA../x", "CA 1", "CA/1", &"C".repeat(65)] {
            assert!(check_sid("call_sid", bad).is_err(), "{bad:?}");
        }
        check_base_url("https://api.twilio.com").unwrap();
        check_base_url("http://127.0.0.1:8080/twilio").unwrap();
        let err = check_base_url("https://AC1:tok3n@api.twilio.com").unwrap_err();
        assert!(!format!("{err:?} {err}").contains("tok3n"));
        for bad in [
            "api.twilio.com",
            "ftp://x",
            "https://x/?a=b",
            "https://x/#f",
        ] {
            assert!(check_base_url(bad).is_err(), "{bad:?}");
        }
    }
}
