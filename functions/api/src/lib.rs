//! The REST API function. Its routes are an axum [`Router`], served by `lambda_http` on
//! AWS (see `main.rs`) and mounted as-is into the local stack (`parley dev`), so both run
//! the same code.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use parley_shared::backend::Ports;
use serde::Serialize;

/// What every handler of the API can reach.
#[derive(Clone)]
pub struct AppState {
    pub ports: Ports,
}

/// The API's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .with_state(state)
}

#[derive(Debug, Serialize)]
struct Health {
    status: &'static str,
    version: &'static str,
    backend: &'static str,
}

async fn health(State(state): State<AppState>) -> Json<Health> {
    Json(Health {
        status: "ok",
        version: env!("CARGO_PKG_VERSION"),
        backend: state.ports.kind(),
    })
}
