//! A local ElevenLabs: `POST /v1/text-to-speech/{voice_id}/stream?output_format=...`
//! with the `xi-api-key` header and a JSON body (`text`, `model_id`,
//! `voice_settings.speed`), answering with the raw audio streamed in chunks.
//!
//! It speaks `ulaw_8000` and `pcm_<rate>`; the audio is [`crate::speech::audio`]'s tone.
//! Errors take ElevenLabs' shapes: `{"detail": {"status", "message"}}`, and for a body
//! that fails validation, a 422 with FastAPI's list of `{"loc", "msg", "type"}`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};

use crate::speech::{self, Encoding, Shared, SpeechServer};

/// The key the server accepts unless told otherwise.
pub const DEFAULT_KEY: &str = "test-elevenlabs-key";

/// Starts a server on a loopback port that accepts [`DEFAULT_KEY`].
pub async fn start() -> std::io::Result<SpeechServer> {
    start_with_key(DEFAULT_KEY).await
}

pub async fn start_with_key(key: &str) -> std::io::Result<SpeechServer> {
    SpeechServer::start(key, "", 800, |shared| {
        Router::new()
            .route("/v1/text-to-speech/{voice_id}/stream", post(stream))
            .with_state(shared)
    })
    .await
}

fn detail(status: &str, message: &str) -> Value {
    json!({ "detail": { "status": status, "message": message } })
}

fn invalid(loc: &str, msg: &str, kind: &str) -> Value {
    json!({ "detail": [{ "type": kind, "loc": ["body", loc], "msg": msg, "input": null }] })
}

/// `ulaw_8000` or `pcm_<rate>`; ElevenLabs' default (MP3) is not something this
/// server can make.
fn output_format(query: Option<&str>) -> Option<(Encoding, u32)> {
    let format = speech::query_param(query, "output_format").unwrap_or("mp3_44100_128");
    if format == "ulaw_8000" {
        return Some((Encoding::Mulaw, 8_000));
    }
    let rate: u32 = format.strip_prefix("pcm_")?.parse().ok()?;
    [8_000, 16_000, 22_050, 24_000, 44_100, 48_000]
        .contains(&rate)
        .then_some((Encoding::Linear16, rate))
}

async fn stream(
    State(shared): State<Shared>,
    Path(_voice_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let index = shared.record(&uri, &headers, &body);
    match speech::header_str(&headers, "xi-api-key") {
        Some(key) if key == shared.key() => {}
        Some(_) => {
            return shared.error(index, 401, detail("invalid_api_key", "Invalid API key"));
        }
        None => {
            return shared.error(
                index,
                401,
                detail(
                    "needs_authorization",
                    "Neither authorization header nor xi-api-key received, please provide one.",
                ),
            );
        }
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return shared.error(
            index,
            422,
            invalid("0", "JSON decode error", "json_invalid"),
        );
    };
    let Some(text) = request.get("text").and_then(Value::as_str) else {
        return shared.error(index, 422, invalid("text", "Field required", "missing"));
    };
    let speed = match request.pointer("/voice_settings/speed") {
        None | Some(Value::Null) => 1.0,
        Some(speed) => match speed.as_f64() {
            Some(s) if (0.7..=1.2).contains(&s) => s,
            _ => {
                return shared.error(
                    index,
                    400,
                    detail(
                        "invalid_voice_settings",
                        "speed must be between 0.7 and 1.2",
                    ),
                );
            }
        },
    };
    let Some((encoding, rate)) = output_format(uri.query()) else {
        return shared.error(
            index,
            400,
            detail(
                "invalid_output_format",
                "This local server streams only ulaw_8000 and pcm_<rate>.",
            ),
        );
    };
    if let Some(status) = shared.take_failure() {
        let body = match status {
            429 => detail(
                "too_many_concurrent_requests",
                "Too many concurrent requests.",
            ),
            _ => detail("internal_server_error", "The server failed on purpose."),
        };
        return shared.error(index, status, body);
    }
    let content_type = match encoding {
        Encoding::Mulaw => "audio/basic",
        Encoding::Linear16 => "audio/pcm",
    };
    shared.stream(
        index,
        speech::audio(text, encoding, rate, speed),
        content_type,
    )
}
