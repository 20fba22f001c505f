//! What the end-to-end tests share: a tenant with an agent, a Twilio number and
//! credentials, and a campaign of leads, set up through the API of a local stack whose
//! clock the test turns; and a local server playing Twilio's REST API.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::post;
use chrono::{DateTime, Utc};
use parley_shared::backend::Ports;
use parley_shared::clock::{Clock, ManualClock};
use parley_shared::embedded::Embedded;
use serde_json::{Value, json};

pub const TOKEN: &str = "e2e-twilio-auth-token-4242";
pub const ADMIN: &str = "e2e-admin-key-0123456789";

/// A call the simulated Twilio was asked to place.
#[derive(Clone, Debug)]
pub struct Placed {
    pub at: DateTime<Utc>,
    pub to: String,
    /// Parley's call id, from the status callback URL.
    pub call_id: String,
    pub form: Vec<(String, String)>,
}

pub fn param(form: &[(String, String)], name: &str) -> String {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

/// A Twilio that places every call (status `queued`) and calls nobody back.
pub struct QuietTwilio {
    pub clock: Arc<dyn Clock>,
    pub placed: Mutex<Vec<Placed>>,
}

pub async fn quiet_create(
    State(twilio): State<Arc<QuietTwilio>>,
    Path(account): Path<String>,
    body: axum::body::Bytes,
) -> axum::response::Response {
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let mut placed = twilio.placed.lock().unwrap();
    let sid = format!("CA{:032x}", placed.len() + 1);
    placed.push(Placed {
        at: twilio.clock.now(),
        to: param(&form, "To"),
        call_id: param(&form, "StatusCallback")
            .split("call_id=")
            .nth(1)
            .unwrap_or_default()
            .to_owned(),
        form,
    });
    let call = json!({"sid": sid, "account_sid": account, "status": "queued"});
    (StatusCode::CREATED, axum::Json(call)).into_response()
}

/// Serves `router` on a loopback port; its base URL.
pub async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    url
}

pub async fn quiet_twilio(clock: Arc<dyn Clock>) -> (Arc<QuietTwilio>, String) {
    let twilio = Arc::new(QuietTwilio {
        clock,
        placed: Mutex::new(Vec::new()),
    });
    let router = axum::Router::new()
        .route(
            "/2010-04-01/Accounts/{account}/Calls.json",
            post(quiet_create),
        )
        .with_state(twilio.clone());
    let url = serve(router).await;
    (twilio, url)
}

/// A local stack (routes served; scheduler and dialer turned by the test) with a
/// tenant ready to run campaigns.
pub struct Scene {
    pub dir: tempfile::TempDir,
    pub base: String,
    pub http: reqwest::Client,
    pub ports: Ports,
    pub stack: parley::Stack,
    pub key: String,
    pub tenant_id: String,
    pub agent_id: String,
}

impl Scene {
    /// `clock`: the stack's clock; `twilio_url`: where the carrier's REST API is;
    /// `max_receives`: the dial queue's deliveries before the dead-letter queue.
    pub async fn new(clock: Arc<dyn Clock>, twilio_url: &str, max_receives: u32) -> Scene {
        let dir = tempfile::tempdir().unwrap();
        let listener = parley::bind("127.0.0.1:0".parse().unwrap()).await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let config = parley_shared::config::Config::from_lookup(|name| match name {
            "PARLEY_PUBLIC_URL" => Some(base.clone()),
            "PARLEY_ADMIN_KEY" => Some(ADMIN.into()),
            "PARLEY_TWILIO_API_URL" => Some(twilio_url.to_owned()),
            _ => None,
        })
        .unwrap();
        let ports =
            Ports::embedded(Embedded::open(dir.path(), clock, base.clone(), max_receives).unwrap());
        let stack = parley::Stack::new(ports.clone(), &config).await.unwrap();
        let app = parley::app(stack.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let mut scene = Scene {
            dir,
            base,
            http: reqwest::Client::new(),
            ports,
            stack,
            key: String::new(),
            tenant_id: String::new(),
            agent_id: String::new(),
        };
        let tenant = scene
            .send(
                reqwest::Method::POST,
                "/v1/tenants",
                ADMIN,
                json!({"name": "Acme Realty", "time_zone": "America/New_York"}),
            )
            .await;
        scene.key = tenant["api_key"].as_str().unwrap().to_owned();
        scene.tenant_id = tenant["id"].as_str().unwrap().to_owned();
        let agent = scene
            .call(
                reqwest::Method::POST,
                "/v1/agents",
                json!({"name": "Riley", "status": "active"}),
            )
            .await;
        scene.agent_id = agent["id"].as_str().unwrap().to_owned();
        scene
            .call(
                reqwest::Method::POST,
                "/v1/phone-numbers",
                json!({"number": "+14155550100", "agent_id": scene.agent_id, "carrier": "twilio"}),
            )
            .await;
        let creds = scene
            .http
            .put(format!(
                "{}/v1/tenants/{}/carriers/twilio",
                scene.base, scene.tenant_id
            ))
            .bearer_auth(&scene.key)
            .json(
                &json!({"account_sid": "AC00000000000000000000000000000e2e", "auth_token": TOKEN}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(creds.status(), 204);
        scene
    }

    /// A request with `key`; the JSON answer (null for none), after checking success.
    pub async fn send(&self, method: reqwest::Method, path: &str, key: &str, body: Value) -> Value {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(key);
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// The text of a GET with the tenant's key, after checking success.
    pub async fn text(&self, path: &str) -> String {
        let response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.text().await.unwrap()
    }

    /// A request with the tenant's key.
    pub async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        self.send(method, path, &self.key.clone(), body).await
    }

    /// A campaign (settings merged over the defaults) with leads from `csv`, started.
    pub async fn campaign(&self, settings: Value, csv: String) -> String {
        let mut body = json!({"name": "Spring listings", "agent_id": self.agent_id, "time_zone": "America/New_York"});
        if let (Some(b), Some(s)) = (body.as_object_mut(), settings.as_object()) {
            b.extend(s.clone());
        }
        let campaign = self
            .call(reqwest::Method::POST, "/v1/campaigns", body)
            .await;
        let id = campaign["id"].as_str().unwrap().to_owned();
        let imported: Value = self
            .http
            .post(format!("{}/v1/campaigns/{id}/leads", self.base))
            .bearer_auth(&self.key)
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(imported["imported"].as_u64().unwrap() > 0, "{imported}");
        self.call(
            reqwest::Method::POST,
            &format!("/v1/campaigns/{id}/start"),
            Value::Null,
        )
        .await;
        id
    }
}

/// A clock for the stack: the manual clock the test turns, as the stack sees it.
pub fn manual(at: DateTime<Utc>) -> (ManualClock, Arc<dyn Clock>) {
    let clock = ManualClock::new(at);
    (clock.clone(), Arc::new(clock))
}
