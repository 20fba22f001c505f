//! The API's own description: an OpenAPI 3.1 document, written by hand in
//! `functions/api/openapi.json` and served as-is. `tests/openapi.rs` fails when it and
//! the routes of [`crate::router`] drift apart.

use axum::http::header;
use axum::response::IntoResponse;

/// The document, as written.
const DOCUMENT: &str = include_str!("../openapi.json");

/// `GET /openapi.json`: needs no key, like `/health`.
pub async fn document() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], DOCUMENT)
}
