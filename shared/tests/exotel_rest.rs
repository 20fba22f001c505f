//! The Exotel REST client against a local server that plays Exotel's API: what it posts
//! (path, basic auth, every form parameter by Exotel's names), how it reads Exotel's
//! answers and `RestException` errors, when it retries and when it must not, and that
//! the API key and token never show in a `Debug`, an error or a log.

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
use parley_shared::domain::CallId;
use parley_shared::exotel::rest::{
    ALL_STATUS_CALLBACK_EVENTS, CallResource, ConnectCall, Credentials, ExotelClient, ExotelError,
    RetryPolicy, STATUS_CALLBACK_JSON,
};
use parley_shared::exotel::{call_id_from_custom_field, custom_field};
use parley_shared::secrets::SecretString;
use serde_json::json;

const ACCOUNT_SID: &str = "acmerealty1m";
const API_KEY: &str = "key-5a4b3c2d1e0f-never-log-me";
const API_TOKEN: &str = "tok-9f8e7d6c5b4a-never-log-me";
const CALL_SID: &str = "b6cfaf0c3fa9b6a4c2b1b0b0b0b0b19c";
const FLOW: &str = "http://my.exotel.com/acmerealty1m/exoml/start_voice/926";

fn credentials() -> Credentials {
    Credentials {
        account_sid: ACCOUNT_SID.into(),
        api_key: SecretString::new(API_KEY.into()),
        api_token: SecretString::new(API_TOKEN.into()),
        subdomain: "api.in.exotel.com".into(),
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

fn client(base_url: &str) -> ExotelClient {
    ExotelClient::new(Duration::from_secs(5))
        .unwrap()
        .with_base_url(base_url)
        .unwrap()
        .with_retry_policy(fast_retries())
}

/// Everything a campaign dial to the tenant's Voicebot flow sets.
fn full_call(call_id: &CallId) -> ConnectCall {
    ConnectCall {
        from: "+919876543210".into(),
        to: None,
        caller_id: "08047491899".into(),
        url: Some(FLOW.into()),
        call_type: Some("trans".into()),
        time_limit_secs: Some(1800),
        timeout_secs: Some(30),
        record: true,
        recording_channels: Some("dual".into()),
        custom_field: Some(custom_field(call_id)),
        status_callback: Some(
            "https://parley.example/webhooks/exotel/t1/s3cr3t/status?x=a b&y=1".into(),
        ),
        status_callback_events: ALL_STATUS_CALLBACK_EVENTS.map(String::from).to_vec(),
        status_callback_content_type: Some(STATUS_CALLBACK_JSON.into()),
    }
}

fn minimal_call() -> ConnectCall {
    ConnectCall {
        from: "+919876543210".into(),
        caller_id: "08047491899".into(),
        url: Some(FLOW.into()),
        ..ConnectCall::default()
    }
}

/// One request as the fake Exotel saw it.
#[derive(Clone, Debug)]
struct Seen {
    method: Method,
    path: String,
    query: Option<String>,
    authorization: Option<String>,
    content_type: Option<String>,
    params: Vec<(String, String)>,
}

impl Seen {
    fn value(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// What the fake answers one request with.
#[derive(Clone, Debug)]
enum Reply {
    /// The call, as Exotel's JSON answer to a connect.
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

    /// Exotel's documented error body.
    fn exotel_error(status: u16, code: serde_json::Value, message: &str) -> Reply {
        let body = json!({
            "RestException": { "Status": status, "Message": message, "Code": code }
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

/// A local server playing Exotel's REST API.
struct FakeExotel {
    base_url: String,
    shared: Arc<Shared>,
}

impl FakeExotel {
    async fn start(script: Vec<Reply>) -> FakeExotel {
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
        FakeExotel { base_url, shared }
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
        query: uri.query().map(str::to_owned),
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

/// The call shaped like Exotel's answer, with the many fields the client ignores.
fn call_resource(seen: &Seen) -> Response {
    let account = seen.path.split('/').nth(3).unwrap_or_default().to_owned();
    let body = json!({
        "Call": {
            "Sid": CALL_SID,
            "ParentCallSid": null,
            "DateCreated": "2024-01-15 14:25:10",
            "DateUpdated": "2024-01-15 14:25:10",
            "AccountSid": account,
            "To": seen.value("To").or(seen.value("CallerId")),
            "From": seen.value("From"),
            "PhoneNumberSid": seen.value("CallerId"),
            "Status": "in-progress",
            "StartTime": "2024-01-15 14:25:10",
            "EndTime": null,
            "Duration": null,
            "Price": null,
            "Direction": "outbound-api",
            "AnsweredBy": null,
            "ForwardedFrom": null,
            "CallerName": null,
            "Uri": format!("/v1/Accounts/{account}/Calls/{CALL_SID}.json"),
            "RecordingUrl": null,
        }
    });
    (StatusCode::OK, axum::Json(body)).into_response()
}

fn expected_authorization() -> String {
    format!(
        "Basic {}",
        STANDARD.encode(format!("{API_KEY}:{API_TOKEN}"))
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
async fn connect_posts_every_parameter_by_exotels_names() {
    let exotel = FakeExotel::start(vec![]).await;
    let call_id = CallId::new();
    let call = client(&exotel.base_url)
        .connect_call(&credentials(), &full_call(&call_id))
        .await
        .unwrap();

    assert_eq!(
        call,
        CallResource {
            sid: CALL_SID.into(),
            status: Some("in-progress".into()),
            account_sid: Some(ACCOUNT_SID.into()),
            to: Some("08047491899".into()),
            from: Some("+919876543210".into()),
            direction: Some("outbound-api".into()),
            date_created: Some("2024-01-15 14:25:10".into()),
        }
    );
    let requests = exotel.requests();
    assert_eq!(requests.len(), 1);
    let seen = &requests[0];
    assert_eq!(seen.method, Method::POST);
    assert_eq!(
        seen.path,
        format!("/v1/Accounts/{ACCOUNT_SID}/Calls/connect.json")
    );
    assert_eq!(
        seen.query, None,
        "credentials and parameters stay out of the URL"
    );
    assert_eq!(
        seen.authorization.as_deref(),
        Some(expected_authorization().as_str())
    );
    assert_eq!(
        seen.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    let custom = custom_field(&call_id);
    assert_eq!(
        sorted(&seen.params),
        pairs(&[
            ("From", "+919876543210"),
            ("CallerId", "08047491899"),
            ("Url", FLOW),
            ("CallType", "trans"),
            ("TimeLimit", "1800"),
            ("TimeOut", "30"),
            ("Record", "true"),
            ("RecordingChannels", "dual"),
            ("CustomField", &custom),
            (
                "StatusCallback",
                "https://parley.example/webhooks/exotel/t1/s3cr3t/status?x=a b&y=1"
            ),
            ("StatusCallbackEvents[0]", "terminal"),
            ("StatusCallbackEvents[1]", "answered"),
            ("StatusCallbackContentType", "application/json"),
        ])
    );
    // The call id survives the trip through Exotel's CustomField.
    assert_eq!(
        seen.value("CustomField")
            .and_then(call_id_from_custom_field),
        Some(call_id.clone())
    );
    // What the client says it sends is what it sends.
    assert_eq!(
        sorted(&seen.params),
        sorted(&full_call(&call_id).form_params())
    );
}

#[tokio::test]
async fn unset_options_are_not_sent() {
    let exotel = FakeExotel::start(vec![]).await;
    // A trailing slash on the base URL does not double the path's.
    let base = format!("{}/", exotel.base_url);
    client(&base)
        .connect_call(&credentials(), &minimal_call())
        .await
        .unwrap();
    // A call between two numbers, with recording channels but no recording.
    let two_numbers = ConnectCall {
        to: Some("+919812345678".into()),
        url: None,
        recording_channels: Some("dual".into()),
        ..minimal_call()
    };
    client(&base)
        .connect_call(&credentials(), &two_numbers)
        .await
        .unwrap();
    let requests = exotel.requests();
    assert_eq!(
        requests[0].path,
        format!("/v1/Accounts/{ACCOUNT_SID}/Calls/connect.json")
    );
    assert_eq!(
        sorted(&requests[0].params),
        pairs(&[
            ("From", "+919876543210"),
            ("CallerId", "08047491899"),
            ("Url", FLOW),
        ])
    );
    assert_eq!(
        sorted(&requests[1].params),
        pairs(&[
            ("From", "+919876543210"),
            ("To", "+919812345678"),
            ("CallerId", "08047491899"),
        ])
    );
}

#[tokio::test]
async fn requests_exotel_would_refuse_are_refused_unsent() {
    let exotel = FakeExotel::start(vec![]).await;
    let client = client(&exotel.base_url);
    let mut bad_sid = credentials();
    bad_sid.account_sid = "acme/../Calls".into();
    let err = client
        .connect_call(&bad_sid, &minimal_call())
        .await
        .unwrap_err();
    assert!(matches!(err, ExotelError::Invalid { .. }), "{err:?}");
    for bad in [
        ConnectCall {
            url: None,
            ..minimal_call()
        },
        ConnectCall {
            to: Some("+919812345678".into()),
            ..minimal_call()
        },
        ConnectCall {
            from: " ".into(),
            ..minimal_call()
        },
        ConnectCall {
            caller_id: String::new(),
            ..minimal_call()
        },
        ConnectCall {
            time_limit_secs: Some(14_401),
            ..minimal_call()
        },
        ConnectCall {
            time_limit_secs: Some(0),
            ..minimal_call()
        },
        ConnectCall {
            custom_field: Some("x".repeat(129)),
            ..minimal_call()
        },
    ] {
        let err = client.connect_call(&credentials(), &bad).await.unwrap_err();
        assert!(
            matches!(err, ExotelError::Invalid { .. }),
            "{bad:?}: {err:?}"
        );
        assert!(!err.is_retryable());
    }
    assert!(exotel.requests().is_empty());

    // Without a base URL the subdomain is the host, so it must be one.
    let direct = ExotelClient::new(Duration::from_secs(1)).unwrap();
    assert_eq!(direct.base_url(), None);
    for subdomain in [
        "",
        "https://api.exotel.com",
        "evil.example/x?",
        "api.exotel.com:8443",
    ] {
        let mut creds = credentials();
        creds.subdomain = subdomain.into();
        let err = direct
            .connect_call(&creds, &minimal_call())
            .await
            .unwrap_err();
        assert!(
            matches!(err, ExotelError::Invalid { .. }),
            "{subdomain:?}: {err:?}"
        );
    }
}

#[tokio::test]
async fn retries_a_503_then_succeeds() {
    let unavailable = Reply::exotel_error(503, json!(503), "Service Unavailable");
    let exotel = FakeExotel::start(vec![unavailable.clone(), unavailable]).await;
    let call = client(&exotel.base_url)
        .connect_call(&credentials(), &full_call(&CallId::new()))
        .await
        .unwrap();
    assert_eq!(call.sid, CALL_SID);
    let requests = exotel.requests();
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
    let failing = Reply::raw(502, "<html>Bad Gateway</html>");
    let exotel = FakeExotel::start(vec![failing; 10]).await;
    let err = client(&exotel.base_url)
        .connect_call(&credentials(), &minimal_call())
        .await
        .unwrap_err();
    match &err {
        ExotelError::Unavailable {
            attempts,
            status,
            detail,
            ..
        } => {
            assert_eq!(*attempts, 3);
            assert_eq!(*status, Some(502));
            assert!(detail.contains("Bad Gateway"), "{detail}");
        }
        other => panic!("expected Unavailable, got {other:?}"),
    }
    assert!(err.is_retryable());
    assert_eq!(exotel.requests().len(), 3);
}

#[tokio::test]
async fn honours_retry_after_on_429() {
    let busy =
        Reply::exotel_error(429, json!(429), "Too Many Requests").with_header("retry-after", "1");
    let exotel = FakeExotel::start(vec![busy]).await;
    // Backoff alone would wait a millisecond; only Retry-After makes it a second.
    let client = client(&exotel.base_url).with_retry_policy(RetryPolicy {
        attempts: 3,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_secs(5),
    });
    let started = Instant::now();
    client
        .connect_call(&credentials(), &minimal_call())
        .await
        .unwrap();
    let waited = started.elapsed();
    assert_eq!(exotel.requests().len(), 2);
    assert!(waited >= Duration::from_millis(950), "{waited:?}");
    assert!(waited < Duration::from_secs(4), "{waited:?}");
}

#[tokio::test]
async fn a_bad_request_is_refused_once_with_exotels_message() {
    let message = "To number is not a valid phone number";
    let exotel = FakeExotel::start(vec![Reply::exotel_error(400, json!(34001), message)]).await;
    let err = client(&exotel.base_url)
        .connect_call(&credentials(), &minimal_call())
        .await
        .unwrap_err();
    match &err {
        ExotelError::Api {
            status,
            code,
            message: got,
        } => {
            assert_eq!(*status, 400);
            assert_eq!(code.as_deref(), Some("34001"));
            assert_eq!(got, message);
        }
        other => panic!("expected Api, got {other:?}"),
    }
    assert!(!err.is_retryable());
    assert!(err.to_string().contains(message), "{err}");
    // Never retried: exactly one request.
    assert_eq!(exotel.requests().len(), 1);
}

#[tokio::test]
async fn other_client_errors_are_never_retried() {
    for (reply, code) in [
        (
            Reply::exotel_error(401, json!("UNAUTHORIZED"), "Authentication failed."),
            Some("UNAUTHORIZED"),
        ),
        (
            Reply::exotel_error(402, json!(402), "Payment Required"),
            Some("402"),
        ),
        (Reply::raw(404, "not found"), None),
        (Reply::raw(403, "\u{0}\u{1}{{{"), None),
    ] {
        let exotel = FakeExotel::start(vec![reply; 5]).await;
        let err = client(&exotel.base_url)
            .connect_call(&credentials(), &minimal_call())
            .await
            .unwrap_err();
        assert!(matches!(err, ExotelError::Api { .. }), "{err:?}");
        assert_eq!(err.code(), code);
        assert!(!err.is_retryable(), "{err:?}");
        assert_eq!(exotel.requests().len(), 1, "{err:?}");
    }
}

#[tokio::test]
async fn a_body_that_is_not_a_call_is_a_bad_response() {
    for reply in [
        Reply::raw(200, "\u{0}\u{1}garbage{{{"),
        Reply::raw(200, r#"{"Status": "in-progress"}"#),
        Reply::raw(200, r#"{"Call": {"Sid": "", "Status": "in-progress"}}"#),
        Reply::raw(200, r#"{"Call": {"Sid": null}}"#),
        Reply::raw(200, r#"{"Call": "b6cf"}"#),
        Reply::raw(200, r#"[1, 2, 3]"#),
        Reply::raw(
            200,
            "<?xml version=\"1.0\"?><TwilioResponse><Call/></TwilioResponse>",
        ),
        Reply::raw(200, ""),
    ] {
        let exotel = FakeExotel::start(vec![reply.clone()]).await;
        let err = client(&exotel.base_url)
            .connect_call(&credentials(), &minimal_call())
            .await
            .unwrap_err();
        assert!(
            matches!(err, ExotelError::BadResponse { .. }),
            "{reply:?}: {err:?}"
        );
        assert!(!err.is_retryable());
        assert_eq!(exotel.requests().len(), 1);
    }
    // An error wearing a 200 is still an error, with its own status.
    let exotel = FakeExotel::start(vec![Reply::raw(
        200,
        r#"{"RestException": {"Status": 400, "Message": "CallerId is not an ExoPhone", "Code": 34010}}"#,
    )])
    .await;
    let err = client(&exotel.base_url)
        .connect_call(&credentials(), &minimal_call())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ExotelError::Api { status: 400, message, .. } if message == "CallerId is not an ExoPhone"),
        "{err:?}"
    );
    assert_eq!(exotel.requests().len(), 1);
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
    let client = ExotelClient::new(Duration::from_millis(300))
        .unwrap()
        .with_base_url(base_url)
        .unwrap()
        .with_retry_policy(fast_retries());
    let started = Instant::now();
    let err = client
        .connect_call(&credentials(), &minimal_call())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ExotelError::Timeout { after } if after == Duration::from_millis(300)),
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
        .connect_call(&credentials(), &minimal_call())
        .await
        .unwrap_err();
    match &err {
        ExotelError::Unavailable {
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
    assert!(matches!(
        ExotelClient::new(Duration::ZERO),
        Err(ExotelError::Invalid { .. })
    ));
    for base in [
        "",
        "api.exotel.com",
        "ftp://api.exotel.com",
        "https://x/?a=1",
        "https://key:token@api.exotel.com",
    ] {
        let built = ExotelClient::new(Duration::from_secs(1))
            .unwrap()
            .with_base_url(base);
        match built {
            Err(ExotelError::Invalid { detail }) => assert!(!detail.contains("token@"), "{detail}"),
            other => panic!("{base:?}: {other:?}"),
        }
    }
    let client = ExotelClient::new(Duration::from_secs(1))
        .unwrap()
        .with_base_url("http://127.0.0.1:8080/exotel/")
        .unwrap();
    assert_eq!(client.base_url(), Some("http://127.0.0.1:8080/exotel"));
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
async fn the_api_key_and_token_never_show() {
    let creds = credentials();
    for shown in [format!("{creds:?}"), format!("{creds:#?}")] {
        assert!(shown.contains(ACCOUNT_SID), "{shown}");
        assert!(!shown.contains(API_KEY), "{shown}");
        assert!(!shown.contains(API_TOKEN), "{shown}");
    }

    // The test runtime is single-threaded, so this subscriber sees the client's logs.
    let logs = LogBuffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let unavailable = Reply::exotel_error(503, json!(503), "Service Unavailable");
    let exotel = FakeExotel::start(vec![
        unavailable.clone(),
        unavailable.clone(),
        unavailable,
        Reply::exotel_error(401, json!("UNAUTHORIZED"), "Authentication failed."),
        Reply::raw(200, "garbage"),
    ])
    .await;
    let client = client(&exotel.base_url);
    let mut errors = Vec::new();
    for _ in 0..3 {
        errors.push(
            client
                .connect_call(&creds, &minimal_call())
                .await
                .unwrap_err(),
        );
    }
    let never = ExotelClient::new(Duration::from_secs(1))
        .unwrap()
        .with_base_url(format!("http://127.0.0.1:{}", {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        }))
        .unwrap()
        .with_retry_policy(fast_retries());
    errors.push(
        never
            .connect_call(&creds, &minimal_call())
            .await
            .unwrap_err(),
    );
    assert!(matches!(errors[0], ExotelError::Unavailable { .. }));
    assert!(matches!(errors[1], ExotelError::Api { .. }));
    assert!(matches!(errors[2], ExotelError::BadResponse { .. }));
    assert!(matches!(errors[3], ExotelError::Unavailable { .. }));
    let encoded = STANDARD.encode(format!("{API_KEY}:{API_TOKEN}"));
    for err in &errors {
        for shown in [format!("{err:?}"), err.to_string()] {
            assert!(!shown.contains(API_KEY), "{shown}");
            assert!(!shown.contains(API_TOKEN), "{shown}");
            assert!(!shown.contains(&encoded), "{shown}");
        }
    }
    assert!(!format!("{client:?}").contains(API_TOKEN));

    // Each retry was logged as a warning naming the account and the status.
    let text = logs.text();
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains("WARN")).collect();
    assert_eq!(warnings.len(), 4, "{text}");
    assert!(warnings[0].contains(ACCOUNT_SID), "{text}");
    assert!(warnings[0].contains("status=503"), "{text}");
    for secret in [API_KEY, API_TOKEN, encoded.as_str()] {
        assert!(!text.contains(secret), "{text}");
    }
}
