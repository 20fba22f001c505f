//! Exotel's REST API, as much of it as Parley needs: placing an outbound call through
//! `POST /v1/Accounts/<account_sid>/Calls/connect.json` ([`ExotelClient::connect_call`]),
//! either to another number (`To`) or, as Parley does, to a call flow (`Url`) whose
//! Voicebot applet streams the call to the media task.
//!
//! Each tenant brings its own Exotel account, so the [`Credentials`] (account SID, API
//! key and token, and the account's regional API host, its "subdomain") travel with
//! every request; one [`ExotelClient`] (one connection pool) serves every tenant.
//! Requests go to `https://<subdomain>` unless the client has a base URL of its own
//! ([`ExotelClient::with_base_url`]): a local server in tests and local runs.
//!
//! Requests are form posts with Exotel's parameter names, authenticated with HTTP basic
//! auth (API key and API token), sent as a header rather than in the URL so that no URL
//! Parley builds or logs holds them. [`Credentials`]' `Debug` shows `***` for both, and
//! neither errors nor logs carry them.
//!
//! Failures are retried with jittered exponential backoff ([`RetryPolicy`], the same
//! policy as Twilio's client) only where Exotel cannot have acted on the request or asks
//! us to come back: HTTP 429, HTTP 5xx (honouring `Retry-After`, capped) and failures to
//! connect. Any other 4xx is final and comes back as [`ExotelError::Api`] with Exotel's
//! `RestException` message and code. A timeout or a connection lost mid-request is not
//! retried: Exotel may already have placed the call, and placing it twice is worse than
//! reporting the doubt.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;

pub use crate::carrier_http::RetryPolicy;

use crate::carrier_http::{self, FormPost, Outcome, chain, is_retryable_status, snippet};
use crate::secrets::SecretString;
// For the tests below, which check the shared Retry-After reading through this module.
#[cfg(test)]
use crate::carrier_http::{MAX_MESSAGE_CHARS, parse_retry_after};
#[cfg(test)]
use chrono::{DateTime, Utc};

/// The API host of Exotel's Singapore cluster; Mumbai's is `api.in.exotel.com`.
pub const DEFAULT_SUBDOMAIN: &str = "api.exotel.com";

/// The status callback events Exotel can report (`StatusCallbackEvents`): `terminal`
/// (the call is over) and `answered`. Without any, Exotel posts only at the end.
pub const ALL_STATUS_CALLBACK_EVENTS: [&str; 2] = ["terminal", "answered"];

/// The `StatusCallbackContentType` that makes Exotel post callbacks as JSON (its
/// default is `multipart/form-data`).
pub const STATUS_CALLBACK_JSON: &str = "application/json";

/// The longest call Exotel allows (`TimeLimit`), in seconds: four hours.
pub const MAX_TIME_LIMIT_SECS: u32 = 14_400;

/// The longest account SID we accept (Exotel's are short words such as `acme1m`).
const MAX_SID_CHARS: usize = 64;
/// The longest API host we accept (a DNS name's limit).
const MAX_HOST_CHARS: usize = 253;

/// An Exotel account's credentials. `Debug` shows the account SID and subdomain, and
/// `***` for the API key and token.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// The account SID, which names the account in every API path.
    pub account_sid: String,
    /// The API key: the basic-auth user name.
    pub api_key: SecretString,
    /// The API token: the basic-auth password.
    pub api_token: SecretString,
    /// The account's regional API host, such as [`DEFAULT_SUBDOMAIN`] or
    /// `api.in.exotel.com` (a leading `@`, as Exotel's docs write it, is ignored).
    pub subdomain: String,
}

/// A call to place: the parameters of Exotel's `Calls/connect` request that we use.
/// Optional settings left `None` (or `false`, or empty) are not sent, so Exotel's
/// defaults apply. Exactly one of `to` and `url` must be set.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConnectCall {
    /// The number Exotel calls first (`From`); for a call to a flow, the customer.
    pub from: String,
    /// The number connected once `from` answers (`To`), for a call between two numbers.
    pub to: Option<String>,
    /// The caller ID, one of the account's ExoPhones (`CallerId`).
    pub caller_id: String,
    /// The call flow to run once `from` answers (`Url`):
    /// `http://my.exotel.com/<account_sid>/exoml/start_voice/<app_id>`.
    pub url: Option<String>,
    /// `trans` for a transactional call (`CallType`).
    pub call_type: Option<String>,
    /// The longest the call may last, in seconds (`TimeLimit`), at most
    /// [`MAX_TIME_LIMIT_SECS`].
    pub time_limit_secs: Option<u32>,
    /// Seconds to ring each leg before giving up (`TimeOut`).
    pub timeout_secs: Option<u32>,
    /// Record the call (`Record=true`); the recording's URL comes with the status
    /// callback.
    pub record: bool,
    /// `single` or `dual` (`RecordingChannels`); sent only with `record`.
    pub recording_channels: Option<String>,
    /// Any text of the application's (`CustomField`, at most
    /// [`super::MAX_CUSTOM_FIELD_CHARS`] characters), handed back in the status callback
    /// and to the flow's applets: Parley's is [`super::custom_field`].
    pub custom_field: Option<String>,
    /// Where Exotel posts the call's status (`StatusCallback`).
    pub status_callback: Option<String>,
    /// Which events to post (`StatusCallbackEvents[0]`, `[1]`, …): some of
    /// [`ALL_STATUS_CALLBACK_EVENTS`].
    pub status_callback_events: Vec<String>,
    /// How to post them (`StatusCallbackContentType`): [`STATUS_CALLBACK_JSON`] or
    /// `multipart/form-data`.
    pub status_callback_content_type: Option<String>,
}

impl ConnectCall {
    /// The form parameters Exotel receives, in order.
    pub fn form_params(&self) -> Vec<(String, String)> {
        let mut params = vec![("From".to_owned(), self.from.clone())];
        let mut push = |name: &str, value: &Option<String>| {
            if let Some(value) = value {
                params.push((name.to_owned(), value.clone()));
            }
        };
        push("To", &self.to);
        push("CallerId", &Some(self.caller_id.clone()));
        push("Url", &self.url);
        push("CallType", &self.call_type);
        push("TimeLimit", &self.time_limit_secs.map(|s| s.to_string()));
        push("TimeOut", &self.timeout_secs.map(|s| s.to_string()));
        if self.record {
            push("Record", &Some("true".into()));
            push("RecordingChannels", &self.recording_channels);
        }
        push("CustomField", &self.custom_field);
        push("StatusCallback", &self.status_callback);
        for (i, event) in self.status_callback_events.iter().enumerate() {
            // Exotel reads an array from indexed form names.
            push(&format!("StatusCallbackEvents[{i}]"), &Some(event.clone()));
        }
        push(
            "StatusCallbackContentType",
            &self.status_callback_content_type,
        );
        params
    }

    /// Refuses a request Exotel would refuse, before anything is sent.
    fn validate(&self) -> Result<(), ExotelError> {
        if self.from.trim().is_empty() {
            return Err(invalid("from (From) must not be empty"));
        }
        if self.caller_id.trim().is_empty() {
            return Err(invalid("caller_id (CallerId) must not be empty"));
        }
        match (&self.to, &self.url) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(invalid(
                    "exactly one of to (To, another number) and url (Url, a call flow) must be set",
                ));
            }
            _ => {}
        }
        if self
            .time_limit_secs
            .is_some_and(|s| s == 0 || s > MAX_TIME_LIMIT_SECS)
        {
            return Err(invalid(format!(
                "time_limit_secs (TimeLimit) must be 1 to {MAX_TIME_LIMIT_SECS}"
            )));
        }
        if self
            .custom_field
            .as_ref()
            .is_some_and(|f| f.chars().count() > super::MAX_CUSTOM_FIELD_CHARS)
        {
            return Err(invalid(format!(
                "custom_field (CustomField) must be at most {} characters",
                super::MAX_CUSTOM_FIELD_CHARS
            )));
        }
        Ok(())
    }
}

/// A call as Exotel returns it (`{"Call": {…}}`): the fields we use. Others are ignored,
/// and a field that is missing, null or not text is `None`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallResource {
    /// The call's SID (`Sid`), which its status callbacks carry as `CallSid`.
    pub sid: String,
    /// `queued`, `in-progress` and so on (`Status`), kept as text so a status Exotel adds
    /// later still reads; see [`super::call_status`].
    pub status: Option<String>,
    pub account_sid: Option<String>,
    pub to: Option<String>,
    pub from: Option<String>,
    /// `outbound-api` for calls we place.
    pub direction: Option<String>,
    /// When Exotel created the call (`DateCreated`), see [`super::carrier_time`].
    pub date_created: Option<String>,
}

/// What went wrong talking to Exotel. No variant carries the API key or token.
#[derive(Debug, thiserror::Error)]
pub enum ExotelError {
    /// Exotel refused the request (a 4xx other than 429, a 3xx, or a `RestException`
    /// in a success), with its message and code when the body was Exotel's error JSON.
    #[error("Exotel refused the request (HTTP {status}{}): {message}", code_suffix(.code.as_deref()))]
    Api {
        status: u16,
        /// `RestException.Code`: a number or a word (`UNAUTHORIZED`), as text.
        code: Option<String>,
        message: String,
    },
    /// Exotel was busy, failing or unreachable on every attempt (429, 5xx, or no
    /// connection). Safe to try again later; `retry_after` is Exotel's last hint.
    #[error("Exotel unavailable after {attempts} attempts: {detail}")]
    Unavailable {
        attempts: u32,
        /// The last attempt's HTTP status, `None` if it could not connect.
        status: Option<u16>,
        detail: String,
        retry_after: Option<Duration>,
    },
    /// No complete answer within the client's timeout. The call may have been placed,
    /// so it is not retried.
    #[error("no answer from Exotel within {after:?}")]
    Timeout { after: Duration },
    /// The connection failed after the request may have been sent.
    #[error("talking to Exotel failed: {detail}")]
    Transport { detail: String },
    /// Exotel answered success with a body that is not what it documents.
    #[error("unexpected response from Exotel (HTTP {status}): {detail}")]
    BadResponse { status: u16, detail: String },
    /// The client's settings or the request's arguments are unusable; nothing was sent.
    #[error("invalid Exotel request: {detail}")]
    Invalid { detail: String },
}

fn code_suffix(code: Option<&str>) -> String {
    code.map(|c| format!(", code {c}")).unwrap_or_default()
}

impl ExotelError {
    /// Exotel's error code, for [`ExotelError::Api`].
    pub fn code(&self) -> Option<&str> {
        match self {
            ExotelError::Api { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// Trying the same request again later is safe and may succeed: Exotel was
    /// unavailable or rate-limiting. A timeout or a broken connection is not retryable
    /// here, because the first request may have taken effect.
    pub fn is_retryable(&self) -> bool {
        match self {
            ExotelError::Unavailable { .. } => true,
            ExotelError::Api { status, .. } => is_retryable_status(*status),
            _ => false,
        }
    }
}

/// A client for Exotel's REST API. Cheap to clone (clones share the connection pool).
#[derive(Clone, Debug)]
pub struct ExotelClient {
    http: reqwest::Client,
    /// Used instead of `https://<subdomain>` when set.
    base_url: Option<String>,
    timeout: Duration,
    retry: RetryPolicy,
}

impl ExotelClient {
    /// A client for each account's own API host, giving up on any one attempt after
    /// `timeout`, with the default [`RetryPolicy`].
    pub fn new(timeout: Duration) -> Result<ExotelClient, ExotelError> {
        if timeout.is_zero() {
            return Err(invalid("the timeout must be longer than zero"));
        }
        let http = carrier_http::http_client(timeout)
            .map_err(|e| invalid(format!("could not build the HTTP client: {}", chain(&e))))?;
        Ok(ExotelClient {
            http,
            base_url: None,
            timeout,
            retry: RetryPolicy::default(),
        })
    }

    /// The same client sending every request to `base_url` (a local server) instead of
    /// `https://<subdomain>`.
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Result<Self, ExotelError> {
        let base_url = base_url.into().trim_end_matches('/').to_owned();
        check_base_url(&base_url)?;
        self.base_url = Some(base_url);
        Ok(self)
    }

    /// The same client with another retry policy (tests use short waits).
    pub fn with_retry_policy(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// The base URL that replaces `https://<subdomain>`, if any.
    pub fn base_url(&self) -> Option<&str> {
        self.base_url.as_deref()
    }

    pub fn retry_policy(&self) -> RetryPolicy {
        self.retry
    }

    /// Places a call: `POST /v1/Accounts/<account_sid>/Calls/connect.json`.
    pub async fn connect_call(
        &self,
        creds: &Credentials,
        req: &ConnectCall,
    ) -> Result<CallResource, ExotelError> {
        check_sid(&creds.account_sid)?;
        req.validate()?;
        let url = format!(
            "{}/v1/Accounts/{}/Calls/connect.json",
            self.origin(creds)?,
            creds.account_sid
        );
        self.post("connect_call", creds, &url, &req.form_params())
            .await
    }

    /// Where `creds`' requests go: the base URL, or the account's API host over HTTPS.
    fn origin(&self, creds: &Credentials) -> Result<String, ExotelError> {
        match &self.base_url {
            Some(base) => Ok(base.clone()),
            None => {
                let host = creds.subdomain.trim().trim_start_matches('@');
                check_host(host)?;
                Ok(format!("https://{host}"))
            }
        }
    }

    /// Posts `params` to `url`, retrying as the [`RetryPolicy`] allows.
    async fn post(
        &self,
        operation: &'static str,
        creds: &Credentials,
        url: &str,
        params: &[(String, String)],
    ) -> Result<CallResource, ExotelError> {
        let post = FormPost {
            get: false,
            carrier: "Exotel",
            operation,
            account: &creds.account_sid,
            url,
            user: creds.api_key.expose(),
            password: creds.api_token.expose(),
            params,
        };
        let describe = |status, body: &[u8]| api_error(status, body).to_string();
        match carrier_http::post_form(&self.http, self.retry, &post, describe).await {
            Outcome::Answered { status, body } if status.is_success() => parse_call(status, &body),
            Outcome::Answered { status, body } => Err(api_error(status, &body)),
            Outcome::TooLarge { status, detail } => Err(ExotelError::BadResponse {
                status: status.as_u16(),
                detail,
            }),
            Outcome::Timeout => Err(ExotelError::Timeout {
                after: self.timeout,
            }),
            Outcome::Transport { detail } => Err(ExotelError::Transport { detail }),
            Outcome::Unavailable {
                attempts,
                status,
                detail,
                retry_after,
            } => Err(ExotelError::Unavailable {
                attempts,
                status,
                detail,
                retry_after,
            }),
        }
    }
}

/// A JSON value as text: a string as is, a number as written; nothing else.
fn text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// A successful answer's call. Exotel has been seen to answer an error with HTTP 200, so
/// a `RestException` there is an error too.
fn parse_call(status: StatusCode, body: &[u8]) -> Result<CallResource, ExotelError> {
    let bad = |detail: String| ExotelError::BadResponse {
        status: status.as_u16(),
        detail,
    };
    let json: Value = serde_json::from_slice(body).map_err(|e| bad(format!("not JSON: {e}")))?;
    if json.get("RestException").is_some() {
        return Err(api_error(status, body));
    }
    let call = json
        .get("Call")
        .filter(|c| c.is_object())
        .ok_or_else(|| bad("no Call object in the answer".into()))?;
    let field = |name: &str| text(call.get(name));
    let sid = field("Sid").ok_or_else(|| bad("the Call has no Sid".into()))?;
    Ok(CallResource {
        sid,
        status: field("Status"),
        account_sid: field("AccountSid"),
        to: field("To"),
        from: field("From"),
        direction: field("Direction"),
        date_created: field("DateCreated"),
    })
}

/// An error answer as [`ExotelError::Api`]: Exotel's documented error JSON
/// (`{"RestException": {"Status", "Message", "Code"}}`) when the body is that, else the
/// start of the body, else the status's reason.
fn api_error(status: StatusCode, body: &[u8]) -> ExotelError {
    let json = serde_json::from_slice::<Value>(body).ok();
    let exception = json.as_ref().and_then(|j| j.get("RestException"));
    let message = exception
        .and_then(|e| text(e.get("Message")))
        .or_else(|| {
            let text = snippet(body);
            (!text.is_empty()).then_some(text)
        })
        .unwrap_or_else(|| status.canonical_reason().unwrap_or("no reason").to_owned());
    // A refusal inside a success carries its real status in the body.
    let reported = exception
        .and_then(|e| text(e.get("Status")))
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|s| (400..600).contains(s));
    let status = match reported {
        Some(reported) if status.is_success() => reported,
        _ => status.as_u16(),
    };
    ExotelError::Api {
        status,
        code: exception
            .and_then(|e| text(e.get("Code")))
            .map(|c| c.chars().take(64).collect()),
        message,
    }
}

fn invalid(detail: impl Into<String>) -> ExotelError {
    ExotelError::Invalid {
        detail: detail.into(),
    }
}

/// The account SID goes into the URL path, so it must be plain. The value is not
/// echoed: a token pasted into the wrong field must not end up in an error.
fn check_sid(sid: &str) -> Result<(), ExotelError> {
    if sid.is_empty()
        || sid.len() > MAX_SID_CHARS
        || !sid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(invalid(format!(
            "account_sid must be 1 to {MAX_SID_CHARS} letters, digits, - or _ (an Exotel account SID)"
        )));
    }
    Ok(())
}

/// The subdomain becomes the URL's host, so it must be a plain host name (no scheme,
/// credentials, port or path). Not echoed, like the SID.
fn check_host(host: &str) -> Result<(), ExotelError> {
    let ok = !host.is_empty()
        && host.len() <= MAX_HOST_CHARS
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        && !host.starts_with(['.', '-'])
        && !host.ends_with(['.', '-'])
        && !host.contains("..");
    if !ok {
        return Err(invalid(
            "subdomain must be a host name such as api.exotel.com",
        ));
    }
    Ok(())
}

fn check_base_url(base_url: &str) -> Result<(), ExotelError> {
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
        assert_eq!(parse_retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }

    #[test]
    fn error_bodies_are_read_tolerantly() {
        let error = api_error(
            StatusCode::BAD_REQUEST,
            br#"{"RestException": {"Status": 400, "Message": "To number is invalid", "Code": 34001}}"#,
        );
        assert_eq!(error.code(), Some("34001"));
        assert_eq!(
            error.to_string(),
            "Exotel refused the request (HTTP 400, code 34001): To number is invalid"
        );
        let word = api_error(
            StatusCode::UNAUTHORIZED,
            br#"{"RestException": {"Status": "401", "Message": "Authentication failed.", "Code": "UNAUTHORIZED"}}"#,
        );
        assert!(
            matches!(&word, ExotelError::Api { status: 401, code: Some(c), .. } if c == "UNAUTHORIZED")
        );
        let html = api_error(StatusCode::NOT_FOUND, b"<html>\n<b>nope</b></html>");
        assert!(matches!(
            &html,
            ExotelError::Api { status: 404, code: None, message } if message == "<html> <b>nope</b></html>"
        ));
        let empty = api_error(StatusCode::FORBIDDEN, b"");
        assert!(matches!(&empty, ExotelError::Api { message, .. } if message == "Forbidden"));
        let odd = api_error(
            StatusCode::BAD_REQUEST,
            br#"{"RestException": {"Code": {"x": 1}, "Message": 7}}"#,
        );
        assert!(matches!(&odd, ExotelError::Api { code: None, message, .. } if message == "7"));
        let long = snippet("é".repeat(1000).as_bytes());
        assert_eq!(long.chars().count(), MAX_MESSAGE_CHARS + 1);
    }

    #[test]
    fn a_refusal_inside_a_success_is_an_error() {
        let err = parse_call(
            StatusCode::OK,
            br#"{"RestException": {"Status": 403, "Message": "Not allowed", "Code": 1}}"#,
        )
        .unwrap_err();
        assert!(
            matches!(err, ExotelError::Api { status: 403, .. }),
            "{err:?}"
        );
        let call = parse_call(
            StatusCode::OK,
            br#"{"Call": {"Sid": "b6cf", "Status": "in-progress", "To": null, "From": 919876543210}}"#,
        )
        .unwrap();
        assert_eq!(call.sid, "b6cf");
        assert_eq!(call.to, None);
        assert_eq!(call.from.as_deref(), Some("919876543210"));
    }

    #[test]
    fn sids_hosts_and_base_urls_are_checked() {
        check_sid("acme1m").unwrap();
        check_sid("exotel_test-1").unwrap();
        for bad in ["", "acme/Calls", "a b", "a..b/", &"a".repeat(65)] {
            assert!(check_sid(bad).is_err(), "{bad:?}");
        }
        check_host("api.exotel.com").unwrap();
        check_host("api.in.exotel.com").unwrap();
        for bad in [
            "",
            "https://api.exotel.com",
            "key:token@api.exotel.com",
            "api.exotel.com/v1",
            "api.exotel.com:443",
            ".api.exotel.com",
            "api..exotel.com",
            "api.exotel.com.",
        ] {
            assert!(check_host(bad).is_err(), "{bad:?}");
        }
        let err = check_base_url("https://key:t0ken@api.exotel.com").unwrap_err();
        assert!(!format!("{err:?} {err}").contains("t0ken"));
        for bad in [
            "api.exotel.com",
            "ftp://x",
            "https://x/?a=b",
            "https://x/#f",
        ] {
            assert!(check_base_url(bad).is_err(), "{bad:?}");
        }
    }
}
