//! A local OpenAI speech endpoint: `POST /v1/audio/speech` with
//! `Authorization: Bearer <key>` and a JSON body (`model`, `input`, `voice`,
//! `response_format`, `speed`), answering with the audio streamed in chunks.
//!
//! It speaks `pcm` (raw 24 kHz 16-bit little-endian mono, OpenAI's only PCM rate); the
//! audio is [`crate::speech::audio`]'s tone. Chunks are an odd number of bytes by
//! default, so chunk boundaries fall between the two bytes of a sample, as they may
//! over a real network. Errors take OpenAI's shape:
//! `{"error": {"message", "type", "param", "code"}}`.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};

use crate::speech::{self, Encoding, Shared, SpeechServer};

/// The key the server accepts unless told otherwise.
pub const DEFAULT_KEY: &str = "sk-test-openai-speech-key";

/// OpenAI's `pcm` rate.
pub const PCM_RATE: u32 = 24_000;

/// Starts a server on a loopback port that accepts [`DEFAULT_KEY`]. Its [`SpeechServer::url`]
/// ends in `/v1`, as OpenAI's base URL does.
pub async fn start() -> std::io::Result<SpeechServer> {
    start_with_key(DEFAULT_KEY).await
}

pub async fn start_with_key(key: &str) -> std::io::Result<SpeechServer> {
    SpeechServer::start(key, "/v1", 999, |shared| {
        Router::new()
            .route("/v1/audio/speech", post(speech_handler))
            .with_state(shared)
    })
    .await
}

fn error(message: &str, kind: &str, param: Option<&str>, code: Option<&str>) -> Value {
    json!({ "error": { "message": message, "type": kind, "param": param, "code": code } })
}

/// OpenAI shows the start and end of a wrong key, never all of it.
fn redacted(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars.iter().take(3).collect();
    let tail: String = chars.iter().skip(chars.len() - 4).collect();
    format!("{head}{}{tail}", "*".repeat(chars.len() - 7))
}

async fn speech_handler(
    State(shared): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let index = shared.record(&uri, &headers, &body);
    match speech::bearer(&headers) {
        Some(key) if key == shared.key() => {}
        Some(key) => {
            let message = format!(
                "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
                redacted(key)
            );
            return shared.error(
                index,
                401,
                error(
                    &message,
                    "invalid_request_error",
                    None,
                    Some("invalid_api_key"),
                ),
            );
        }
        None => {
            return shared.error(
                index,
                401,
                error(
                    "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
                    "invalid_request_error",
                    None,
                    None,
                ),
            );
        }
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return shared.error(
            index,
            400,
            error(
                "We could not parse the JSON body of your request.",
                "invalid_request_error",
                None,
                None,
            ),
        );
    };
    for field in ["model", "input"] {
        if request.get(field).and_then(Value::as_str).is_none() {
            return shared.error(
                index,
                400,
                error(
                    &format!("you must provide a {field} parameter"),
                    "invalid_request_error",
                    None,
                    None,
                ),
            );
        }
    }
    let voice_ok = match request.get("voice") {
        Some(Value::String(_)) => true,
        Some(voice) => voice.get("id").and_then(Value::as_str).is_some(),
        None => false,
    };
    if !voice_ok {
        return shared.error(
            index,
            400,
            error(
                "you must provide a voice parameter",
                "invalid_request_error",
                Some("voice"),
                None,
            ),
        );
    }
    let input = request
        .get("input")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if request
        .get("response_format")
        .and_then(Value::as_str)
        .unwrap_or("mp3")
        != "pcm"
    {
        return shared.error(
            index,
            400,
            error(
                "This local server streams only response_format \"pcm\".",
                "invalid_request_error",
                Some("response_format"),
                None,
            ),
        );
    }
    let speed = match request.get("speed") {
        None | Some(Value::Null) => 1.0,
        Some(speed) => match speed.as_f64() {
            Some(s) if (0.25..=4.0).contains(&s) => s,
            _ => {
                return shared.error(
                    index,
                    400,
                    error(
                        "speed must be between 0.25 and 4.0",
                        "invalid_request_error",
                        Some("speed"),
                        None,
                    ),
                );
            }
        },
    };
    if let Some(status) = shared.take_failure() {
        let body = match status {
            429 => error(
                "Rate limit reached for requests",
                "requests",
                None,
                Some("rate_limit_exceeded"),
            ),
            _ => error(
                "The server had an error while processing your request.",
                "server_error",
                None,
                None,
            ),
        };
        return shared.error(index, status, body);
    }
    let audio = speech::audio(input, Encoding::Linear16, PCM_RATE, speed);
    shared.stream(index, audio, "audio/pcm")
}
