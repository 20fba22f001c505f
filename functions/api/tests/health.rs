//! The API router answers as a Lambda would: driven through tower, no server.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use parley_api::{AppState, router};
use parley_shared::backend::Ports;
use parley_shared::clock::SystemClock;
use parley_shared::embedded::Embedded;
use tower::ServiceExt;

/// The API on a fresh embedded data directory (kept while the guard lives).
fn app() -> (axum::Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let embedded = Embedded::open(
        dir.path(),
        Arc::new(SystemClock),
        "http://127.0.0.1:1".into(),
        5,
    )
    .unwrap();
    let config = parley_shared::config::Config::from_lookup(|_| None).unwrap();
    let app = router(AppState::new(Ports::embedded(embedded), &config).unwrap());
    (app, dir)
}

#[tokio::test]
async fn health_reports_the_backend() {
    let (app, _dir) = app();
    let response = app
        .oneshot(Request::get("/health").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json["status"], "ok");
    assert_eq!(json["backend"], "embedded");
}

/// The sample in `events/` is a real API Gateway v2 payload the router answers, as it
/// would under `cargo lambda invoke`.
#[tokio::test]
async fn the_sample_lambda_event_is_answered() {
    let (app, _dir) = app();
    let payload = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../events/api/health.json"
    ))
    .unwrap();
    let request = lambda_http::request::from_str(&payload).unwrap();
    assert_eq!(request.uri().path(), "/health");
    let response = app.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
