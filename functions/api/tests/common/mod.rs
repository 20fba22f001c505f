//! Shared by the API's tests: the router on a fresh embedded store, and requests as
//! a client sends them.

#![allow(dead_code)] // each test binary uses part of it

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use parley_api::{AppState, router};
use parley_shared::backend::Ports;
use parley_shared::clock::SystemClock;
use parley_shared::config::Config;
use parley_shared::embedded::Embedded;
use serde_json::{Value, json};
use tower::ServiceExt;

pub const ADMIN: &str = "admin-key-for-tests-0123456789";

pub struct Api {
    pub app: Router,
    pub ports: Ports,
    _dir: tempfile::TempDir,
}

impl Api {
    pub fn new() -> Self {
        Self::with_twilio("http://127.0.0.1:9")
    }

    /// The API with Twilio's REST API at `twilio`.
    pub fn with_twilio(twilio: &str) -> Self {
        Self::with_carriers(twilio, None)
    }

    /// The API with Twilio's REST API at `twilio` and Exotel's at `exotel`.
    pub fn with_carriers(twilio: &str, exotel: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let embedded = Embedded::open(
            dir.path(),
            Arc::new(SystemClock),
            "http://127.0.0.1:1".into(),
            5,
        )
        .unwrap();
        let ports = Ports::embedded(embedded);
        let config = Config::from_lookup(|name| match name {
            "PARLEY_ADMIN_KEY" => Some(ADMIN.into()),
            "PARLEY_PUBLIC_URL" => Some("https://parley.example.com".into()),
            "PARLEY_TWILIO_API_URL" => Some(twilio.into()),
            "PARLEY_EXOTEL_API_URL" => exotel.map(str::to_owned),
            _ => None,
        })
        .unwrap();
        let app = router(AppState::new(ports.clone(), &config).unwrap());
        Api {
            app,
            ports,
            _dir: dir,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let body = body.map(|b| ("application/json", b.to_string()));
        self.send(method, path, key, body).await
    }

    /// A request with a body of any type: `(content type, text)`.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<(&str, String)>,
    ) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        let request = match body {
            Some((content_type, body)) => request
                .header("content-type", content_type)
                .body(Body::from(body)),
            None => request.body(Body::empty()),
        }
        .unwrap();
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let json = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, json)
    }

    /// A new tenant and its API key.
    pub async fn tenant(&self, name: &str) -> (String, String) {
        let (status, body) = self
            .call(
                Method::POST,
                "/v1/tenants",
                Some(ADMIN),
                Some(json!({"name": name, "time_zone": "Europe/London"})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        (
            body["id"].as_str().unwrap().to_owned(),
            body["api_key"].as_str().unwrap().to_owned(),
        )
    }

    pub async fn agent(&self, key: &str, name: &str) -> String {
        let (status, body) = self
            .call(
                Method::POST,
                "/v1/agents",
                Some(key),
                Some(json!({"name": name})),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        body["id"].as_str().unwrap().to_owned()
    }
}

pub fn field(body: &Value) -> &str {
    body["error"]["field"].as_str().unwrap_or("<none>")
}
