//! The browser call page, `GET /call`: talk to an agent with the microphone and hear
//! it answer, over the simulated carrier's phone WebSocket
//! ([`PHONE_PATH`](crate::carrier::PHONE_PATH)), with the conversation's live
//! transcript. One static file (`call.html`), compiled in: no build step, nothing
//! fetched from elsewhere.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

/// The page, as served.
pub const PAGE: &str = include_str!("call.html");

/// What the page may load and reach: its own inline script and style, the audio
/// worklet it makes from a Blob, and sockets to the host that served it.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline' blob:; \
     style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; \
     form-action 'none'; frame-ancestors 'none'";

/// `GET /call`.
pub fn routes() -> Router {
    Router::new().route("/call", get(page))
}

async fn page() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        PAGE,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        for outside in ["src=\"http", "href=\"http", "@import", "url(http", "<link"] {
            assert!(!PAGE.contains(outside), "{outside}");
        }
        assert!(PAGE.contains("window.parleyCall"));
        assert!(PAGE.contains(crate::carrier::PHONE_PATH));
    }
}
