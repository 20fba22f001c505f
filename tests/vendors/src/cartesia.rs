//! A local Cartesia: `POST /tts/bytes` with `Authorization: Bearer <key>`, a dated
//! `Cartesia-Version` header and a JSON body (`model_id`, `transcript`,
//! `voice: {mode: "id", id}`, `output_format: {container, encoding, sample_rate}`,
//! `language`, `generation_config.speed`), answering with the raw audio streamed in
//! chunks.
//!
//! It speaks the `raw` container in `pcm_mulaw` and `pcm_s16le`; the audio is
//! [`crate::speech::audio`]'s tone. Errors are Cartesia's structured objects
//! (`error_code`, `title`, `message`, `request_id`), as from version 2026-03-01.

use std::sync::atomic::{AtomicU64, Ordering};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};

use crate::speech::{self, Encoding, Shared, SpeechServer};

/// The key the server accepts unless told otherwise.
pub const DEFAULT_KEY: &str = "sk_car_test-cartesia-key";

/// The API versions the server answers to.
pub const VERSIONS: [&str; 4] = ["2024-06-10", "2024-11-13", "2025-04-16", "2026-03-01"];

/// Starts a server on a loopback port that accepts [`DEFAULT_KEY`].
pub async fn start() -> std::io::Result<SpeechServer> {
    start_with_key(DEFAULT_KEY).await
}

pub async fn start_with_key(key: &str) -> std::io::Result<SpeechServer> {
    SpeechServer::start(key, "", 800, |shared| {
        Router::new()
            .route("/tts/bytes", post(bytes))
            .with_state(shared)
    })
    .await
}

fn error(code: Option<&str>, title: &str, message: &str) -> Value {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    json!({
        "error_code": code,
        "title": title,
        "message": message,
        "request_id": format!("00000000-0000-4000-8000-{n:012x}"),
    })
}

fn bad_request(message: &str) -> Value {
    error(Some("invalid_request"), "Invalid request", message)
}

/// The text field `name` of `value`, or the error naming it.
fn text_field<'v>(value: &'v Value, pointer: &str, name: &str) -> Result<&'v str, Value> {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .ok_or_else(|| bad_request(&format!("{name} is required")))
}

struct Request<'v> {
    transcript: &'v str,
    encoding: Encoding,
    rate: u32,
    speed: f64,
}

fn validate(request: &Value) -> Result<Request<'_>, Value> {
    text_field(request, "/model_id", "model_id")?;
    let transcript = text_field(request, "/transcript", "transcript")?;
    if transcript.trim().is_empty() {
        return Err(bad_request("transcript must not be empty"));
    }
    if text_field(request, "/voice/mode", "voice.mode")? != "id" {
        return Err(bad_request(
            "this local server takes only voice.mode \"id\"",
        ));
    }
    text_field(request, "/voice/id", "voice.id")?;
    if text_field(
        request,
        "/output_format/container",
        "output_format.container",
    )? != "raw"
    {
        return Err(bad_request(
            "this local server streams only the raw container",
        ));
    }
    let encoding = match text_field(request, "/output_format/encoding", "output_format.encoding")? {
        "pcm_mulaw" => Encoding::Mulaw,
        "pcm_s16le" => Encoding::Linear16,
        _ => {
            return Err(bad_request(
                "this local server streams only pcm_mulaw and pcm_s16le",
            ));
        }
    };
    let rate = request
        .pointer("/output_format/sample_rate")
        .and_then(Value::as_u64)
        .and_then(|r| u32::try_from(r).ok())
        .filter(|r| [8_000, 16_000, 22_050, 24_000, 44_100, 48_000].contains(r))
        .ok_or_else(|| {
            bad_request("output_format.sample_rate is required and must be a supported rate")
        })?;
    let speed = match request.pointer("/generation_config/speed") {
        None | Some(Value::Null) => 1.0,
        Some(speed) => speed
            .as_f64()
            .filter(|s| (0.6..=1.5).contains(s))
            .ok_or_else(|| bad_request("generation_config.speed must be between 0.6 and 1.5"))?,
    };
    Ok(Request {
        transcript,
        encoding,
        rate,
        speed,
    })
}

async fn bytes(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let index = shared.record(&uri, &headers, &body);
    if speech::bearer(&headers) != Some(shared.key()) {
        return shared.error(
            index,
            401,
            error(None, "Unauthorized", "Invalid or missing API key"),
        );
    }
    match speech::header_str(&headers, "cartesia-version") {
        Some(version) if VERSIONS.contains(&version) => {}
        _ => {
            return shared.error(
                index,
                400,
                bad_request("Cartesia-Version header is required and must be a valid API version"),
            );
        }
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return shared.error(index, 400, bad_request("the body is not valid JSON"));
    };
    let request = match validate(&request) {
        Ok(request) => request,
        Err(body) => return shared.error(index, 400, body),
    };
    if let Some(status) = shared.take_failure() {
        let body = match status {
            429 => error(
                Some("concurrency_limited"),
                "Too many concurrent requests",
                "You have exceeded your plan's concurrency limit.",
            ),
            _ => error(
                None,
                "Internal server error",
                "The server failed on purpose.",
            ),
        };
        return shared.error(index, status, body);
    }
    let content_type = match request.encoding {
        Encoding::Mulaw => "audio/basic",
        Encoding::Linear16 => "audio/pcm",
    };
    let audio = speech::audio(
        request.transcript,
        request.encoding,
        request.rate,
        request.speed,
    );
    shared.stream(index, audio, content_type)
}
