//! The Twilio REST client against a local server that plays Twilio's API: what it posts
//! (path, basic auth, every form parameter by Twilio's names), how it reads Twilio's
//! answers and errors, when it retries and when it must not, and that the auth token
//! never shows in a `Debug`, an error or a log.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Form;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use parley_shared::secrets::SecretString;
use parley_shared::twilio::rest::{
    ALL_STATUS_CALLBACK_EVENTS, CallResource, CreateCall, Credentials, RetryPolicy, TwilioClient,
    TwilioError,
};
use serde_json::json;

const ACCOUNT_SID: &str = "AC0123456789abcdef0123456789abcdef";
const AUTH_TOKEN: &str = "tok-9f8e7d6c5b4a-never-log-me";
const CALL_SID: &str = "CAfedcba9876543210fedcba9876543210";

fn credentials() -> Credentials {
    Credentials {
        account_sid: ACCOUNT_SID.into(),
        auth_token: SecretString::new(AUTH_TOKEN.into()),
    }
}

/// Short waits so retries cost milliseconds.
fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        attempts: 3,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(50),
    }
}

fn client(base_url: &str) -> TwilioClient {
    TwilioClient::new(base_url, Duration::from_secs(5))
        .unwrap()
        .with_retry_policy(fast_retries())
}

/// Everything a campaign dial sets.
fn full_call() -> CreateCall {
    CreateCall {
        to: "+14155550123".into(),
        from: "+14155550100".into(),
        url: "https://parley.example/twilio/voice?call=c1&leg=a b".into(),
        status_callback: Some("https://parley.example/twilio/status?call=c1".into()),
        status_callback_events: ALL_STATUS_CALLBACK_EVENTS.map(String::from).to_vec(),
        machine_detection: Some("DetectMessageEnd".into()),
        async_amd: true,
        async_amd_status_callback: Some("https://parley.example/twilio/amd?call=c1".into()),
        record: true,
        recording_status_callback: Some("https://parley.example/twilio/recording?call=c1".into()),
        timeout_secs: Some(25),
    }
}

fn minimal_call() -> CreateCall {
    CreateCall {
        to: "+14155550123".into(),
        from: "+14155550100".into(),
        url: "https://parley.example/twilio/voice".into(),
        ..CreateCall::default()
    }
}

/// One request as the fake Twilio saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    path: String,
    authorization: Option<String>,
    content_type: Option<String>,
    params: Vec<(String, String)>,
}

impl Seen {
    fn values(&self, name: &str) -> Vec<&str> {
        self.params
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }
}

/// What the fake answers one request with.
#[derive(Clone, Debug)]
enum Reply {
    /// The Call resource for the request (201 for a create, 200 for an update).
    Call,
    Raw {
        status: u16,
        headers: Vec<(&'static str, String)>,
        body: String,
    },
}

impl Reply {
    fn raw(status: u16, body: &str) -> Reply {
        Reply::Raw {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: body.into(),
        }
    }

    /// Twilio's documented error body.
    fn twilio_error(status: u16, code: u32, message: &str) -> Reply {
        let body = json!({
            "code": code,
            "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"),
            "status": status,
        });
        Reply::raw(status, &body.to_string())
    }

    fn with_header(self, name: &'static str, value: &str) -> Reply {
        match self {
            Reply::Raw {
                status,
                mut headers,
                body,
            } => {
                headers.push((name, value.into()));
                Reply::Raw {
                    status,
                    headers,
                    body,
                }
            }
            Reply::Call => Reply::Call,
        }
    }
}

#[derive(Default)]
struct Shared {
    seen: Mutex<Vec<Seen>>,
    /// Replies for the next requests in turn; once it runs out, every request gets
    /// [`Reply::Call`].
    script: Mutex<VecDeque<Reply>>,
}

/// A local server playing Twilio's REST API.
struct FakeTwilio {
    base_url: String,
    shared: Arc<Shared>,
}

impl FakeTwilio {
    async fn start(script: Vec<Reply>) -> FakeTwilio {
        let shared = Arc::new(Shared {
            seen: Mutex::default(),
            script: Mutex::new(script.into()),
        });
        let app = Router::new()
            .fallback(answer)
            .with_state(Arc::clone(&shared));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        FakeTwilio { base_url, shared }
    }

    fn requests(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }
}

async fn answer(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Form(params): Form<Vec<(String, String)>>,
) -> Response {
    let header = |name: &str| headers.get(name).map(|v| v.to_str().unwrap().to_owned());
    let seen = Seen {
        method,
        path: uri.path().to_owned(),
        authorization: header("authorization"),
        content_type: header("content-type"),
        params,
    };
    shared.seen.lock().unwrap().push(seen.clone());
    let reply = shared
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or(Reply::Call);
    match reply {
        Reply::Call => call_resource(&seen),
        Reply::Raw {
            status,
            headers,
            body,
        } => {
            let mut response = (StatusCode::from_u16(status).unwrap(), body).into_response();
            for (name, value) in headers {
                response.headers_mut().insert(name, value.parse().unwrap());
            }
            response
        }
    }
}

/// A Call resource shaped like Twilio's, with the many fields the client ignores.
fn call_resource(seen: &Seen) -> Response {
    let account = seen.path.split('/').nth(3).unwrap_or_default().to_owned();
    let (status, sid, call_status) = match seen.path.rsplit_once("/Calls/") {
        Some((_, rest)) => (
            StatusCode::OK,
            rest.trim_end_matches(".json").to_owned(),
            "in-progress",
        ),
        None => (
            StatusCode::CREATED,
            "CA00000000000000000000000000000001".to_owned(),
            "queued",
        ),
    };
    let first = |name: &str| seen.values(name).first().map(|v| v.to_string());
    let body = json!({
        "account_sid": account,
        "annotation": null,
        "answered_by": null,
        "api_version": "2010-04-01",
        "caller_name": null,
        "date_created": null,
        "date_updated": null,
        "direction": "outbound-api",
        "duration": null,
        "end_time": null,
        "forwarded_from": null,
        "from": first("From").unwrap_or_else(|| "+14155550100".into()),
        "from_formatted": "(415) 555-0100",
        "group_sid": null,
        "parent_call_sid": null,
        "phone_number_sid": "PN0123456789abcdef0123456789abcdef",
        "price": null,
        "price_unit": "USD",
        "queue_time": "0",
        "sid": sid,
        "start_time": null,
        "status": call_status,
        "subresource_uris": {
            "notifications": format!("/2010-04-01/Accounts/{account}/Calls/{sid}/Notifications.json"),
            "recordings": format!("/2010-04-01/Accounts/{account}/Calls/{sid}/Recordings.json"),
        },
        "to": first("To").unwrap_or_else(|| "+14155550123".into()),
        "to_formatted": "(415) 555-0123",
        "trunk_sid": null,
        "uri": format!("/2010-04-01/Accounts/{account}/Calls/{sid}.json"),
    });
    (status, axum::Json(body)).into_response()
}

fn expected_authorization() -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"))
    )
}

fn sorted(params: &[(String, String)]) -> Vec<(String, String)> {
    let mut params = params.to_vec();
    params.sort();
    params
}

fn pairs(params: &[(&str, &str)]) -> Vec<(String, String)> {
    sorted(
        &params
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect::<Vec<_>>(),
    )
}

#[tokio::test]
async fn create_call_posts_every_parameter_by_twilios_names() {
    let twilio = FakeTwilio::start(vec![]).await;
    let call = client(&twilio.base_url)
        .create_call(&credentials(), &full_call())
        .await
        .unwrap();

    assert_eq!(
        call,
        CallResource {
            sid: "CA00000000000000000000000000000001".into(),
            status: "queued".into(),
            account_sid: Some(ACCOUNT_SID.into()),
            to: Some("+14155550123".into()),
            from: Some("+14155550100".into()),
            direction: Some("outbound-api".into()),
            duration: None,
        }
    );
    let requests = twilio.requests();
    assert_eq!(requests.len(), 1);
    let seen = &requests[0];
    assert_eq!(seen.method, Method::POST);
    assert_eq!(
        seen.path,
        format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json")
    );
    assert_eq!(
        seen.authorization.as_deref(),
        Some(expected_authorization().as_str())
    );
    assert_eq!(
        seen.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        sorted(&seen.params),
        pairs(&[
            ("To", "+14155550123"),
            ("From", "+14155550100"),
            ("Url", "https://parley.example/twilio/voice?call=c1&leg=a b"),
            (
                "StatusCallback",
                "https://parley.example/twilio/status?call=c1"
            ),
            ("StatusCallbackMethod", "POST"),
            ("StatusCallbackEvent", "initiated"),
            ("StatusCallbackEvent", "ringing"),
            ("StatusCallbackEvent", "answered"),
            ("StatusCallbackEvent", "completed"),
            ("MachineDetection", "DetectMessageEnd"),
            ("AsyncAmd", "true"),
            (
                "AsyncAmdStatusCallback",
                "https://parley.example/twilio/amd?call=c1"
            ),
            ("AsyncAmdStatusCallbackMethod", "POST"),
            ("Record", "true"),
            (
                "RecordingStatusCallback",
                "https://parley.example/twilio/recording?call=c1"
            ),
            ("RecordingStatusCallbackMethod", "POST"),
            ("Timeout", "25"),
        ])
    );
    assert_eq!(
        seen.values("StatusCallbackEvent"),
        ["initiated", "ringing", "answered", "completed"]
    );
    // What the client says it sends is what it sends.
    assert_eq!(
        sorted(&seen.params),
        sorted(
            &full_call()
                .form_params()
                .into_iter()
                .map(|(n, v)| (n.to_owned(), v))
                .collect::<Vec<_>>()
        )
    );
}

#[tokio::test]
async fn unset_options_are_not_sent() {
    let twilio = FakeTwilio::start(vec![]).await;
    // A trailing slash on the base URL does not double the path's.
    let base = format!("{}/", twilio.base_url);
    client(&base)
        .create_call(&credentials(), &minimal_call())
        .await
        .unwrap();
    let seen = &twilio.requests()[0];
    assert_eq!(
        seen.path,
        format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls.json")
    );
    assert_eq!(
        sorted(&seen.params),
        pairs(&[
            ("To", "+14155550123"),
            ("From", "+14155550100"),
            ("Url", "https://parley.example/twilio/voice"),
        ])
    );
}

#[tokio::test]
async fn update_call_posts_twiml_to_the_call() {
    let twilio = FakeTwilio::start(vec![]).await;
    let twiml = r#"<?xml version="1.0" encoding="UTF-8"?><Response><Dial callerId="+14155550100">+14155550199</Dial><Say>Tom &amp; "Jerry"</Say></Response>"#;
    let call = client(&twilio.base_url)
        .update_call(&credentials(), CALL_SID, twiml)
        .await
        .unwrap();
    assert_eq!(call.sid, CALL_SID);
    assert_eq!(call.status, "in-progress");
    let requests = twilio.requests();
    assert_eq!(requests.len(), 1);
    let seen = &requests[0];
    assert_eq!(seen.method, Method::POST);
    assert_eq!(
        seen.path,
        format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/{CALL_SID}.json")
    );
    assert_eq!(
        seen.authorization.as_deref(),
        Some(expected_authorization().as_str())
    );
    assert_eq!(sorted(&seen.params), pairs(&[("Twiml", twiml)]));
}

#[tokio::test]
async fn sids_that_would_bend_the_path_are_refused_unsent() {
    let twilio = FakeTwilio::start(vec![]).await;
    let client = client(&twilio.base_url);
    let err = client
        .update_call(&credentials(), "../../Accounts/ACx", "<Response/>")
        .await
        .unwrap_err();
    assert!(matches!(err, TwilioError::Invalid { .. }), "{err:?}");
    let mut creds = credentials();
    creds.account_sid = "AC1/Calls".into();
    let err = client
        .create_call(&creds, &minimal_call())
        .await
        .unwrap_err();
    assert!(matches!(err, TwilioError::Invalid { .. }), "{err:?}");
    assert!(twilio.requests().is_empty());
}

#[tokio::test]
async fn retries_a_503_then_succeeds() {
    let unavailable = Reply::twilio_error(503, 20503, "Service Unavailable");
    let twilio = FakeTwilio::start(vec![unavailable.clone(), unavailable]).await;
    let call = client(&twilio.base_url)
        .create_call(&credentials(), &full_call())
        .await
        .unwrap();
    assert_eq!(call.status, "queued");
    let requests = twilio.requests();
    assert_eq!(requests.len(), 3);
    // Every attempt is the same request.
    for seen in &requests {
        assert_eq!(sorted(&seen.params), sorted(&requests[0].params));
        assert_eq!(
            seen.authorization.as_deref(),
            Some(expected_authorization().as_str())
        );
    }
}

#[tokio::test]
async fn gives_up_as_unavailable_after_the_last_attempt() {
    let failing = Reply::raw(500, "<html>Internal Server Error</html>");
    let twilio = FakeTwilio::start(vec![failing; 10]).await;
    let err = client(&twilio.base_url)
        .create_call(&credentials(), &minimal_call())
        .await
        .unwrap_err();
    match &err {
        TwilioError::Unavailable {
            attempts,
            status,
            detail,
            ..
        } => {
            assert_eq!(*attempts, 3);
            assert_eq!(*status, Some(500));
            assert!(detail.contains("Internal Server Error"), "{detail}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(err.is_retryable());
    assert_eq!(twilio.requests().len(), 3);
}

#[tokio::test]
async fn honours_retry_after_on_429() {
    let busy = Reply::twilio_error(429, 20429, "Too Many Requests").with_header("retry-after", "1");
    let twilio = FakeTwilio::start(vec![busy]).await;
    // Backoff alone would wait a millisecond; only Retry-After makes it a second.
    let client = client(&twilio.base_url).with_retry_policy(RetryPolicy {
        attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_secs(5),
    });
    let started = Instant::now();
    let call = client
        .create_call(&credentials(), &minimal_call())
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(call.status, "queued");
    assert_eq!(twilio.requests().len(), 2);
    assert!(waited >= Duration::from_millis(950), "{waited:?}");
    assert!(waited < Duration::from_secs(4), "{waited:?}");
}

#[tokio::test]
async fn caps_a_long_retry_after() {
    let busy =
        Reply::twilio_error(429, 20429, "Too Many Requests").with_header("retry-after", "3600");
    let twilio = FakeTwilio::start(vec![busy.clone(), busy.clone(), busy]).await;
    let client = client(&twilio.base_url).with_retry_policy(RetryPolicy {
        attempts: 2,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(150),
    });
    let started = Instant::now();
    let err = client
        .create_call(&credentials(), &minimal_call())
        .await
        .unwrap_err();
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(140), "{waited:?}");
    assert!(waited < Duration::from_secs(3), "{waited:?}");
    match &err {
        TwilioError::Unavailable {
            attempts,
            status,
            retry_after,
            detail,
        } => {
            assert_eq!(*attempts, 2);
            assert_eq!(*status, Some(429));
            // The hint is passed on uncapped, for whoever schedules the next try.
            assert_eq!(*retry_after, Some(Duration::from_secs(3600)));
            assert!(detail.contains("20429"), "{detail}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert_eq!(twilio.requests().len(), 2);
}

#[tokio::test]
async fn an_invalid_number_is_refused_once_with_twilios_code() {
    let message = "The 'To' number +1415555 is not a valid phone number.";
    let twilio = FakeTwilio::start(vec![Reply::twilio_error(400, 21211, message)]).await;
    let err = client(&twilio.base_url)
        .create_call(&credentials(), &minimal_call())
        .await
        .unwrap_err();
    match &err {
        TwilioError::Api {
            status,
            code,
            message: got,
            more_info,
        } => {
            assert_eq!(*status, 400);
            assert_eq!(*code, Some(21211));
            assert_eq!(got, message);
            assert_eq!(
                more_info.as_deref(),
                Some("https://www.twilio.com/docs/errors/21211")
            );
        }
        other => panic!("expected Api, got {other:?}"),
    }
    assert!(err.is_invalid_number());
    assert!(!err.is_unreachable());
    assert!(!err.is_retryable());
    assert!(err.to_string().contains("21211"), "{err}");
    assert!(err.to_string().contains(message), "{err}");
    // Never retried: exactly one request.
    assert_eq!(twilio.requests().len(), 1);
}

#[tokio::test]
async fn an_unreachable_number_is_refused_once() {
    let twilio = FakeTwilio::start(vec![Reply::twilio_error(
        400,
        21214,
        "'To' phone number cannot be reached",
    )])
    .await;
    let err = client(&twilio.base_url)
        .create_call(&credentials(), &minimal_call())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(21214));
    assert!(err.is_unreachable());
    assert!(!err.is_invalid_number());
    assert!(!err.is_retryable());
    assert_eq!(twilio.requests().len(), 1);
}

#[tokio::test]
async fn other_client_errors_are_never_retried() {
    for (reply, code) in [
        (Reply::twilio_error(401, 20003, "Authenticate"), Some(20003)),
        (
            Reply::twilio_error(400, 21215, "Account not authorized to call +88212345678."),
            Some(21215),
        ),
        (Reply::raw(404, "not found"), None),
    ] {
        let twilio = FakeTwilio::start(vec![reply; 5]).await;
        let err = client(&twilio.base_url)
            .create_call(&credentials(), &minimal_call())
            .await
            .unwrap_err();
        assert!(matches!(err, TwilioError::Api { .. }), "{err:?}");
        assert_eq!(err.code(), code);
        assert!(!err.is_retryable(), "{err:?}");
        assert_eq!(err.is_geo_blocked(), code == Some(21215));
        assert_eq!(twilio.requests().len(), 1, "{err:?}");
    }
}

#[tokio::test]
async fn a_body_that_is_not_a_call_is_a_bad_response() {
    for reply in [
        Reply::raw(200, "\u{0}\u{1}garbage{{{"),
        Reply::raw(201, r#"{"status": "queued"}"#),
        Reply::raw(201, r#"{"sid": "", "status": "queued"}"#),
        Reply::raw(201, r#"[1, 2, 3]"#),
        Reply::raw(200, ""),
    ] {
        let twilio = FakeTwilio::start(vec![reply]).await;
        let err = client(&twilio.base_url)
            .create_call(&credentials(), &minimal_call())
            .await
            .unwrap_err();
        assert!(matches!(err, TwilioError::BadResponse { .. }), "{err:?}");
        assert!(!err.is_retryable());
        assert_eq!(twilio.requests().len(), 1);
    }
}

#[tokio::test]
async fn a_server_that_never_answers_times_out_without_retrying() {
    // Accepts connections and reads nothing, answers nothing.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(Mutex::new(0));
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            *counter.lock().unwrap() += 1;
            held.push(socket);
        }
    });
    let client = TwilioClient::new(base_url, Duration::from_millis(300))
        .unwrap()
        .with_retry_policy(fast_retries());
    let started = Instant::now();
    let err = client
        .create_call(&credentials(), &minimal_call())
        .await
        .unwrap_err();
    assert!(
        matches!(err, TwilioError::Timeout { after } if after == Duration::from_millis(300)),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(3));
    // The call may have been placed, so it was not tried again.
    assert_eq!(*accepted.lock().unwrap(), 1);
}

#[tokio::test]
async fn a_refused_connection_is_retried_then_unavailable() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let started = Instant::now();
    let err = client(&format!("http://127.0.0.1:{port}"))
        .create_call(&credentials(), &minimal_call())
        .await
        .unwrap_err();
    match &err {
        TwilioError::Unavailable {
            attempts, status, ..
        } => {
            assert_eq!(*attempts, 3);
            assert_eq!(*status, None);
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(err.is_retryable());
    assert!(started.elapsed() < Duration::from_secs(3));
}

#[test]
fn bad_settings_are_refused() {
    for base in [
        "",
        "api.twilio.com",
        "ftp://api.twilio.com",
        "https://x/?a=1",
    ] {
        assert!(
            matches!(
                TwilioClient::new(base, Duration::from_secs(1)),
                Err(TwilioError::Invalid { .. })
            ),
            "{base:?}"
        );
    }
    assert!(matches!(
        TwilioClient::new("https://api.twilio.com", Duration::ZERO),
        Err(TwilioError::Invalid { .. })
    ));
    let client = TwilioClient::new("https://api.twilio.com/", Duration::from_secs(1)).unwrap();
    assert_eq!(client.base_url(), "https://api.twilio.com");
    assert_eq!(client.retry_policy(), RetryPolicy::default());
}

/// Collects what a tracing subscriber writes.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogBuffer {
    type Writer = LogBuffer;

    fn make_writer(&'a self) -> LogBuffer {
        self.clone()
    }
}

#[tokio::test]
async fn the_auth_token_never_shows() {
    let creds = credentials();
    for shown in [format!("{creds:?}"), format!("{creds:#?}")] {
        assert!(shown.contains(ACCOUNT_SID), "{shown}");
        assert!(!shown.contains(AUTH_TOKEN), "{shown}");
    }

    // The test runtime is single-threaded, so this subscriber sees the client's logs.
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let unavailable = Reply::twilio_error(503, 20503, "Service Unavailable");
    let twilio = FakeTwilio::start(vec![
        unavailable.clone(),
        unavailable.clone(),
        unavailable,
        Reply::twilio_error(400, 21211, "The 'To' number 1 is not a valid phone number."),
        Reply::raw(200, "garbage"),
    ])
    .await;
    let client = client(&twilio.base_url);
    let mut errors = Vec::new();
    for _ in 0..3 {
        errors.push(
            client
                .create_call(&creds, &minimal_call())
                .await
                .unwrap_err(),
        );
    }
    let never = TwilioClient::new(
        format!("http://127.0.0.1:{}", {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        }),
        Duration::from_secs(1),
    )
    .unwrap()
    .with_retry_policy(fast_retries());
    errors.push(
        never
            .create_call(&creds, &minimal_call())
            .await
            .unwrap_err(),
    );
    assert!(matches!(errors[0], TwilioError::Unavailable { .. }));
    assert!(matches!(errors[1], TwilioError::Api { .. }));
    assert!(matches!(errors[2], TwilioError::BadResponse { .. }));
    assert!(matches!(errors[3], TwilioError::Unavailable { .. }));
    for err in &errors {
        for shown in [format!("{err:?}"), err.to_string()] {
            assert!(!shown.contains(AUTH_TOKEN), "{shown}");
        }
    }
    assert!(!format!("{client:?}").contains(AUTH_TOKEN));

    // Each retry was logged as a warning naming the account and the status.
    let text = logs.text();
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 4, "{text}");
    assert!(warnings[0].contains(ACCOUNT_SID), "{text}");
    assert!(warnings[0].contains("status=503"), "{text}");
    assert!(!text.contains(AUTH_TOKEN), "{text}");
    assert!(!text.contains(&STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"))));
}

#[tokio::test]
async fn fetch_call_gets_the_call_and_reads_its_length() {
    let body = json!({
        "sid": "CA00000000000000000000000000000009",
        "account_sid": ACCOUNT_SID,
        "status": "completed",
        "duration": "42",
    });
    let twilio = FakeTwilio::start(vec![Reply::raw(200, &body.to_string())]).await;
    let call = client(&twilio.base_url)
        .fetch_call(&credentials(), "CA00000000000000000000000000000009")
        .await
        .unwrap();
    assert_eq!(call.status, "completed");
    assert_eq!(call.duration.as_deref(), Some("42"));
    let requests = twilio.requests();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].method, Method::GET);
    assert_eq!(
        requests[0].path,
        format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Calls/CA00000000000000000000000000000009.json")
    );
    // A SID with a path in it never reaches the URL.
    let refused = client(&twilio.base_url)
        .fetch_call(&credentials(), "../Calls")
        .await;
    assert!(refused.is_err());
    assert_eq!(twilio.requests().len(), 1);
}
