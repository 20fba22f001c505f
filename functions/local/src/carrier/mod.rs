//! The simulated carrier: a phone network inside the local stack, so campaigns and
//! calls run end to end with no Twilio account.
//!
//! It speaks Twilio's REST API for calls (`POST …/Accounts/{sid}/Calls.json` to place
//! one, `GET` and `POST …/Calls/{sid}.json` to read or redirect it) under
//! [`BASE_PATH`], and Parley reaches it through its own Twilio client with that base
//! URL, for numbers whose carrier is `simulated`. Each placed call rings a simulated
//! callee ([`callee`]) who answers, is busy, does not answer or is a voicemail
//! machine, and speaks over the real media WebSocket in Twilio's protocol, with
//! Twilio-shaped webhooks signed with the account's token ([`leg`]).

pub mod callee;
pub mod leg;
pub mod phone;
pub mod speech;
pub mod twiml;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use parley_shared::backend::Ports;
use parley_shared::domain::{CallId, PhoneNumber};
use parley_shared::secrets::SecretString;
use serde_json::json;

use leg::{Leg, Request, Update};

/// Where the simulated carrier's REST API is mounted on the local stack.
pub const BASE_PATH: &str = "/simulated/twilio";

/// Where a phone of one's own (the browser page, `parley call`) dials in.
pub const PHONE_PATH: &str = "/simulated/phone";

/// How the simulated network behaves.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Seeds the mix of answers for callees whose lead does not choose.
    pub seed: u64,
    /// How long a phone rings before it is answered (or found busy).
    pub ring: Duration,
}

impl Settings {
    /// `PARLEY_SIMULATED_SEED` and `PARLEY_SIMULATED_RING_MS`, else the defaults.
    pub fn from_env() -> Settings {
        let read = |name: &str| {
            std::env::var(name)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        let default = Settings::default();
        Settings {
            seed: read("PARLEY_SIMULATED_SEED").unwrap_or(default.seed),
            ring: read("PARLEY_SIMULATED_RING_MS")
                .map(|ms| Duration::from_millis(ms.min(60_000)))
                .unwrap_or(default.ring),
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            seed: 0,
            ring: Duration::from_secs(2),
        }
    }
}

/// How many ended calls stay readable through `GET …/Calls/{sid}.json`.
const KEPT_CALLS: usize = 10_000;

/// The simulated carrier: its REST API and the calls in it.
#[derive(Clone)]
pub struct Simulator {
    inner: Arc<Inner>,
}

struct Inner {
    ports: Ports,
    /// Where Parley's webhooks are (its public URL).
    parley_url: String,
    http: reqwest::Client,
    settings: Settings,
    calls: Mutex<Calls>,
}

impl Inner {
    /// What each call needs of the network.
    fn network(&self) -> leg::Network {
        leg::Network {
            http: self.http.clone(),
            ring: self.settings.ring,
        }
    }
}

#[derive(Default)]
struct Calls {
    by_sid: HashMap<String, Arc<Leg>>,
    order: VecDeque<String>,
}

impl Simulator {
    /// The network for the Parley whose webhooks are at `parley_url`.
    pub fn new(
        ports: Ports,
        parley_url: &str,
        settings: Settings,
    ) -> Result<Simulator, reqwest::Error> {
        let http = reqwest::Client::builder()
            // Twilio waits 15 s for a webhook.
            .timeout(Duration::from_secs(15))
            .build()?;
        Ok(Simulator {
            inner: Arc::new(Inner {
                ports,
                parley_url: parley_url.trim_end_matches('/').to_owned(),
                http,
                settings,
                calls: Mutex::new(Calls::default()),
            }),
        })
    }

    /// The REST API's routes, to merge into the stack's router.
    pub fn routes(&self) -> Router {
        Router::new()
            .route(
                &format!("{BASE_PATH}/2010-04-01/Accounts/{{account}}/Calls.json"),
                post(create),
            )
            .route(
                &format!("{BASE_PATH}/2010-04-01/Accounts/{{account}}/Calls/{{file}}"),
                get(fetch).post(update),
            )
            .route(PHONE_PATH, get(phone::connect))
            .with_state(self.clone())
    }

    fn keep(&self, leg: Arc<Leg>) {
        let mut calls = match self.inner.calls.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        if calls.order.len() >= KEPT_CALLS
            && let Some(old) = calls.order.pop_front()
        {
            calls.by_sid.remove(&old);
        }
        calls.order.push_back(leg.sid.clone());
        calls.by_sid.insert(leg.sid.clone(), leg);
    }

    fn find(&self, sid: &str) -> Option<Arc<Leg>> {
        let calls = match self.inner.calls.lock() {
            Ok(c) => c,
            Err(poisoned) => poisoned.into_inner(),
        };
        calls.by_sid.get(sid).cloned()
    }
}

/// Twilio's error answer: `{"code", "message", "status"}`.
pub(crate) struct Fault {
    status: StatusCode,
    code: u32,
    message: &'static str,
}

impl IntoResponse for Fault {
    fn into_response(self) -> Response {
        let body =
            json!({"code": self.code, "message": self.message, "status": self.status.as_u16()});
        (self.status, Json(body)).into_response()
    }
}

pub(crate) fn error(status: StatusCode, code: u32, message: &'static str) -> Fault {
    Fault {
        status,
        code,
        message,
    }
}

/// The account SID and token of a request's basic auth, if it is for `account`.
fn credentials(headers: &HeaderMap, account: &str) -> Result<(String, SecretString), Fault> {
    let unauthorized = || error(StatusCode::UNAUTHORIZED, 20003, "Authenticate");
    let raw = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .ok_or_else(unauthorized)?;
    let decoded = STANDARD.decode(raw.trim()).map_err(|_| unauthorized())?;
    let decoded = String::from_utf8(decoded).map_err(|_| unauthorized())?;
    let (sid, token) = decoded.split_once(':').ok_or_else(unauthorized)?;
    if sid != account || token.is_empty() || !sid.starts_with("AC") {
        return Err(unauthorized());
    }
    Ok((sid.to_owned(), SecretString::new(token.to_owned())))
}

/// A form body's pairs, repeats kept (`StatusCallbackEvent` comes once per event).
/// A body that is not a form reads as no pairs, so the missing field is named.
fn form(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

fn first<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .filter(|v| !v.is_empty())
}

fn resource(leg: &Leg) -> serde_json::Value {
    let status = leg.status();
    json!({
        "sid": leg.sid,
        "account_sid": leg.account_sid,
        "to": leg.to,
        "from": leg.from,
        "direction": "outbound-api",
        "status": status.status,
        "duration": status.duration.map(|d| d.to_string()),
        "api_version": "2010-04-01",
    })
}

/// `POST …/Calls.json`: places a call.
async fn create(
    State(sim): State<Simulator>,
    Path(account): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let (account_sid, token) = match credentials(&headers, &account) {
        Ok(c) => c,
        Err(fault) => return fault.into_response(),
    };
    let params = form(&body);
    let Some(to) = first(&params, "To") else {
        return error(
            StatusCode::BAD_REQUEST,
            21201,
            "No 'To' number is specified",
        )
        .into_response();
    };
    let Ok(to) = PhoneNumber::parse(to) else {
        return error(
            StatusCode::BAD_REQUEST,
            21211,
            "The 'To' number is not a valid phone number.",
        )
        .into_response();
    };
    let Some(from) = first(&params, "From") else {
        return error(
            StatusCode::BAD_REQUEST,
            21603,
            "A 'From' phone number is required.",
        )
        .into_response();
    };
    let Some(url) = first(&params, "Url") else {
        return error(StatusCode::BAD_REQUEST, 21205, "Url parameter is required.").into_response();
    };
    let request = Request {
        url: url.to_owned(),
        status_callback: first(&params, "StatusCallback").map(str::to_owned),
        events: params
            .iter()
            .filter(|(k, _)| k == "StatusCallbackEvent")
            .flat_map(|(_, v)| v.split_whitespace().map(str::to_owned))
            .collect(),
        amd_callback: first(&params, "MachineDetection")
            .and(first(&params, "AsyncAmdStatusCallback"))
            .map(str::to_owned),
        timeout_secs: first(&params, "Timeout")
            .and_then(|t| t.parse().ok())
            .unwrap_or(60),
    };
    // Parley names its own call in the URL; the callee's lead is found through it.
    let call_id = reqwest::Url::parse(url).ok().and_then(|u| {
        u.query_pairs()
            .find(|(k, _)| k == "call_id")
            .and_then(|(_, v)| CallId::parse(&v).ok())
    });
    let (leg, updates) = Leg::new(
        account_sid,
        token,
        to.as_str().to_owned(),
        from.to_owned(),
        request,
    );
    let leg = Arc::new(leg);
    sim.keep(leg.clone());
    let body = resource(&leg);
    tracing::info!(call_sid = %leg.sid, "simulated carrier: call placed");
    let inner = sim.inner.clone();
    tokio::spawn(async move {
        let settings = &inner.settings;
        let callee = callee::for_call(&inner.ports, settings.seed, call_id.as_ref(), &leg.to).await;
        let net = inner.network();
        leg::run(net, leg, callee, updates).await;
    });
    (StatusCode::CREATED, Json(body)).into_response()
}

/// The call a `…/Calls/{sid}.json` path names, if this account placed it.
fn owned(
    sim: &Simulator,
    account: &str,
    file: &str,
    headers: &HeaderMap,
) -> Result<Arc<Leg>, Fault> {
    let (sid, token) = credentials(headers, account)?;
    let not_found = || {
        error(
            StatusCode::NOT_FOUND,
            20404,
            "The requested resource was not found",
        )
    };
    let call_sid = file.strip_suffix(".json").ok_or_else(not_found)?;
    let leg = sim.find(call_sid).ok_or_else(not_found)?;
    if !leg.placed_with(&sid, &token) {
        return Err(not_found());
    }
    Ok(leg)
}

/// `GET …/Calls/{sid}.json`: the call as it is now.
async fn fetch(
    State(sim): State<Simulator>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match owned(&sim, &account, &file, &headers) {
        Ok(leg) => Json(resource(&leg)).into_response(),
        Err(fault) => fault.into_response(),
    }
}

/// `POST …/Calls/{sid}.json`: new TwiML or URL for a live call, or `Status=completed`.
async fn update(
    State(sim): State<Simulator>,
    Path((account, file)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let leg = match owned(&sim, &account, &file, &headers) {
        Ok(leg) => leg,
        Err(fault) => return fault.into_response(),
    };
    let params = form(&body);
    let change = if let Some(xml) = first(&params, "Twiml") {
        Update::Twiml(xml.to_owned())
    } else if let Some(url) = first(&params, "Url") {
        Update::Url(url.to_owned())
    } else if matches!(first(&params, "Status"), Some("completed" | "canceled")) {
        Update::HangUp
    } else {
        return error(
            StatusCode::BAD_REQUEST,
            21218,
            "Twiml, Url or Status is required.",
        )
        .into_response();
    };
    if !leg.update(change).await {
        return error(
            StatusCode::BAD_REQUEST,
            21220,
            "Call is not in-progress. Cannot redirect.",
        )
        .into_response();
    }
    Json(resource(&leg)).into_response()
}
