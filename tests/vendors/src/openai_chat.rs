//! A local OpenAI-compatible chat-completions server: `POST /v1/chat/completions`, so a
//! client's base URL is `http://127.0.0.1:<port>/v1`.
//!
//! It checks the bearer key (401 with OpenAI's error body otherwise), records every
//! request, and answers from a queue of scripted [`Reply`]s: text streamed as small
//! deltas, tool calls whose arguments come in several pieces as OpenAI sends them, an
//! error status, a stream that stops short, or garbage. With the queue empty it answers
//! "You said: <the last user message>". Streams are server-sent events ending in
//! `data: [DONE]`; a request without `"stream": true` gets one `chat.completion` object.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::stream;
use serde_json::{Value, json};

use crate::loopback::{Served, serve, settle};

/// The one key the server accepts.
pub const KEY: &str = "sk-local-chat-key-0123456789";

/// What a scripted reply says.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// Text, streamed in deltas of [`Reply::delta_chars`] characters.
    Text(String),
    /// Tool calls `(name, arguments JSON)`, each call's arguments in several pieces.
    ToolCalls(Vec<(String, String)>),
    /// This status with OpenAI's error body, no stream.
    Error(u16),
    /// Text deltas, then the body ends without a `finish_reason` or `[DONE]`.
    Truncated(String),
    /// One event whose data is not JSON.
    Garbage,
}

/// One scripted reply and how it is sent.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub answer: Answer,
    /// Wait before the first byte of the stream.
    pub first_delay: Duration,
    /// Wait between two pieces of the stream.
    pub delta_delay: Duration,
    /// Characters of text (or of tool arguments) a delta carries.
    pub delta_chars: usize,
    /// End lines with `\r\n` instead of `\n`, and put a comment line first.
    pub crlf: bool,
    /// Send the stream's bytes in pieces of this many bytes, cutting through events.
    pub split_bytes: Option<usize>,
}

impl Reply {
    fn new(answer: Answer) -> Reply {
        Reply {
            answer,
            first_delay: Duration::ZERO,
            delta_delay: Duration::from_millis(1),
            delta_chars: 4,
            crlf: false,
            split_bytes: None,
        }
    }

    pub fn text(text: &str) -> Reply {
        Reply::new(Answer::Text(text.to_owned()))
    }

    pub fn tool_calls(calls: &[(&str, &str)]) -> Reply {
        Reply::new(Answer::ToolCalls(
            calls
                .iter()
                .map(|(name, arguments)| ((*name).to_owned(), (*arguments).to_owned()))
                .collect(),
        ))
    }

    pub fn error(status: u16) -> Reply {
        Reply::new(Answer::Error(status))
    }

    pub fn truncated(text: &str) -> Reply {
        Reply::new(Answer::Truncated(text.to_owned()))
    }

    pub fn garbage() -> Reply {
        Reply::new(Answer::Garbage)
    }

    pub fn delays(mut self, first: Duration, between: Duration) -> Reply {
        self.first_delay = first;
        self.delta_delay = between;
        self
    }

    pub fn delta_chars(mut self, chars: usize) -> Reply {
        self.delta_chars = chars.max(1);
        self
    }

    pub fn crlf(mut self) -> Reply {
        self.crlf = true;
        self
    }

    pub fn split_every(mut self, bytes: usize) -> Reply {
        self.split_bytes = Some(bytes.max(1));
        self
    }
}

/// How a streamed answer ended, as the server saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// Still sending.
    Streaming,
    /// Every piece was handed over and the body ended.
    Completed,
    /// The client went away before the end.
    Abandoned,
}

/// One request as the server received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    /// The JSON body; `Null` when it was not JSON.
    pub body: Value,
    pub authorization: Option<String>,
    /// The status answered.
    pub status: u16,
    /// Pieces of the stream handed to the connection so far.
    pub pieces_sent: usize,
    /// `None` when the answer was not a stream.
    pub end: Option<StreamEnd>,
}

struct Inner {
    requests: Vec<RecordedRequest>,
    replies: VecDeque<Reply>,
}

#[derive(Clone)]
struct Shared {
    inner: Arc<Mutex<Inner>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A handler that panicked mid-update leaves nothing half-done worth refusing.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, index: usize, change: impl FnOnce(&mut RecordedRequest)) {
        if let Some(request) = self.lock().requests.get_mut(index) {
            change(request);
        }
    }
}

/// A running local chat-completions server. Stops when dropped.
pub struct OpenAiChatServer {
    served: Served,
    shared: Shared,
}

pub async fn start() -> std::io::Result<OpenAiChatServer> {
    let shared = Shared {
        inner: Arc::new(Mutex::new(Inner {
            requests: Vec::new(),
            replies: VecDeque::new(),
        })),
    };
    let app = Router::new()
        .route("/v1/chat/completions", post(completions))
        .with_state(shared.clone());
    let served = serve(app).await?;
    Ok(OpenAiChatServer { served, shared })
}

impl OpenAiChatServer {
    /// The base URL a client is pointed at (`http://127.0.0.1:port/v1`).
    pub fn url(&self) -> String {
        format!("http://{}/v1", self.served.addr)
    }

    /// The one key the server accepts.
    pub fn key(&self) -> &str {
        KEY
    }

    /// Queues a reply for the next request that passes the key check.
    pub fn push(&self, reply: Reply) {
        self.shared.lock().replies.push_back(reply);
    }

    /// Every request so far, refused ones included, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Waits (up to `within`) until request `index`'s stream has ended; returns how it
    /// ended, `Streaming` if it is still going.
    pub async fn wait_for_end(&self, index: usize, within: Duration) -> Option<StreamEnd> {
        let end = || self.shared.lock().requests.get(index).and_then(|r| r.end);
        settle(within, end, |end| *end != Some(StreamEnd::Streaming)).await
    }
}

/// OpenAI's error answer.
fn error(status: u16, kind: &str, code: Option<&str>, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        axum::Json(json!({
            "error": {"message": message, "type": kind, "param": null, "code": code}
        })),
    )
        .into_response()
}

/// A presented key as OpenAI quotes it back: its ends, the middle masked.
fn masked(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "*".repeat(chars.len());
    }
    let head: String = chars[..5].iter().collect();
    let tail: String = chars[chars.len() - 4..].iter().collect();
    format!("{head}***{tail}")
}

async fn completions(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let request: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let index = {
        let mut inner = shared.lock();
        inner.requests.push(RecordedRequest {
            body: request.clone(),
            authorization: authorization.clone(),
            status: 0,
            pieces_sent: 0,
            end: None,
        });
        inner.requests.len() - 1
    };
    let answer = |status: u16, response: Response| {
        shared.update(index, |r| r.status = status);
        response
    };

    let presented = authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "));
    if presented != Some(KEY) {
        let message = match presented {
            Some(key) => format!(
                "Incorrect API key provided: {}. You can find your API key at https://platform.openai.com/account/api-keys.",
                masked(key)
            ),
            None => "You didn't provide an API key.".to_owned(),
        };
        return answer(
            401,
            error(
                401,
                "invalid_request_error",
                Some("invalid_api_key"),
                &message,
            ),
        );
    }
    let Some(messages) = request.get("messages").and_then(Value::as_array) else {
        return answer(
            400,
            error(
                400,
                "invalid_request_error",
                None,
                "'messages' is a required property",
            ),
        );
    };
    let model = request
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("gpt-4o-mini")
        .to_owned();
    let reply = shared.lock().replies.pop_front().unwrap_or_else(|| {
        let said = messages
            .iter()
            .rev()
            .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
            .and_then(|m| m.get("content"))
            .and_then(Value::as_str)
            .unwrap_or("");
        Reply::text(&format!("You said: {}.", said.trim_end_matches('.')))
    });
    match reply.answer {
        Answer::Error(429) => {
            return answer(
                429,
                error(
                    429,
                    "requests",
                    Some("rate_limit_exceeded"),
                    "Rate limit reached for requests. Please try again in 1s.",
                ),
            );
        }
        Answer::Error(status) if status >= 500 => {
            return answer(
                status,
                error(
                    status,
                    "server_error",
                    None,
                    "The server had an error while processing your request. Sorry about that!",
                ),
            );
        }
        Answer::Error(status) => {
            return answer(
                status,
                error(status, "invalid_request_error", None, "Refused on purpose."),
            );
        }
        _ => {}
    }
    let id = format!("chatcmpl-local{}", index + 1);
    if request.get("stream").and_then(Value::as_bool) != Some(true) {
        return answer(200, axum::Json(whole(&id, &model, &reply)).into_response());
    }
    shared.update(index, |r| {
        r.status = 200;
        r.end = Some(StreamEnd::Streaming);
    });
    sse(shared.clone(), index, &id, &model, &reply)
}

/// The answer as one `chat.completion` object.
fn whole(id: &str, model: &str, reply: &Reply) -> Value {
    let (message, finish) = match &reply.answer {
        Answer::ToolCalls(calls) => (
            json!({
                "role": "assistant",
                "content": null,
                "tool_calls": calls.iter().enumerate().map(|(i, (name, arguments))| json!({
                    "id": call_id(id, i), "type": "function",
                    "function": {"name": name, "arguments": arguments},
                })).collect::<Vec<_>>(),
            }),
            "tool_calls",
        ),
        Answer::Text(text) | Answer::Truncated(text) => {
            (json!({"role": "assistant", "content": text}), "stop")
        }
        Answer::Garbage | Answer::Error(_) => (json!({"role": "assistant", "content": ""}), "stop"),
    };
    json!({
        "id": id,
        "object": "chat.completion",
        "created": 1_767_225_600,
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20},
    })
}

fn call_id(id: &str, i: usize) -> String {
    format!("call_{}_{i}", id.trim_start_matches("chatcmpl-"))
}

/// Splits text into pieces of `chars` characters.
fn pieces(text: &str, chars: usize) -> Vec<String> {
    let chars_of: Vec<char> = text.chars().collect();
    chars_of
        .chunks(chars.max(1))
        .map(|c| c.iter().collect())
        .collect()
}

/// The events of a streamed answer, as `data:` payloads.
fn events(id: &str, model: &str, reply: &Reply) -> Vec<String> {
    let chunk = |delta: Value, finish: Option<&str>| {
        json!({
            "id": id,
            "object": "chat.completion.chunk",
            "created": 1_767_225_600,
            "model": model,
            "system_fingerprint": "fp_local",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        })
        .to_string()
    };
    let mut out = Vec::new();
    match &reply.answer {
        Answer::Text(text) | Answer::Truncated(text) => {
            out.push(chunk(
                json!({"role": "assistant", "content": "", "refusal": null}),
                None,
            ));
            for piece in pieces(text, reply.delta_chars) {
                out.push(chunk(json!({"content": piece}), None));
            }
            if matches!(reply.answer, Answer::Text(_)) {
                out.push(chunk(json!({}), Some("stop")));
                out.push("[DONE]".to_owned());
            }
        }
        Answer::ToolCalls(calls) => {
            for (i, (name, arguments)) in calls.iter().enumerate() {
                let mut first = json!({"tool_calls": [{
                    "index": i, "id": call_id(id, i), "type": "function",
                    "function": {"name": name, "arguments": ""},
                }]});
                if i == 0 {
                    first["role"] = json!("assistant");
                    first["content"] = Value::Null;
                }
                out.push(chunk(first, None));
                for piece in pieces(arguments, reply.delta_chars) {
                    out.push(chunk(
                        json!({"tool_calls": [{"index": i, "function": {"arguments": piece}}]}),
                        None,
                    ));
                }
            }
            out.push(chunk(json!({}), Some("tool_calls")));
            out.push("[DONE]".to_owned());
        }
        Answer::Garbage => {
            out.push(chunk(json!({"role": "assistant", "content": ""}), None));
            out.push("{\"choices\": [oops".to_owned());
        }
        Answer::Error(_) => {}
    }
    out
}

/// The server-sent-events body, piece by piece after the reply's delays.
fn sse(shared: Shared, index: usize, id: &str, model: &str, reply: &Reply) -> Response {
    let eol = if reply.crlf { "\r\n" } else { "\n" };
    let mut framed: Vec<Bytes> = Vec::new();
    if reply.crlf {
        framed.push(Bytes::from(format!(": OPENROUTER PROCESSING{eol}{eol}")));
    }
    for data in events(id, model, reply) {
        framed.push(Bytes::from(format!("data: {data}{eol}{eol}")));
    }
    if let Some(size) = reply.split_bytes {
        let all: Vec<u8> = framed.concat();
        framed = all.chunks(size).map(Bytes::copy_from_slice).collect();
    }
    let feed = Feed {
        pieces: framed.into(),
        first: true,
        first_delay: reply.first_delay,
        delta_delay: reply.delta_delay,
        guard: EndGuard {
            shared,
            index,
            sent: 0,
            ended: false,
        },
    };
    let body = stream::unfold(feed, |mut feed| async move {
        let delay = if feed.first {
            feed.first_delay
        } else {
            feed.delta_delay
        };
        feed.first = false;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        match feed.pieces.pop_front() {
            Some(piece) => {
                feed.guard.sent();
                Some((Ok::<_, std::io::Error>(piece), feed))
            }
            None => {
                feed.guard.end();
                None
            }
        }
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

struct Feed {
    pieces: VecDeque<Bytes>,
    first: bool,
    first_delay: Duration,
    delta_delay: Duration,
    guard: EndGuard,
}

/// Notes how a stream ended; dropped unfinished, the client went away.
struct EndGuard {
    shared: Shared,
    index: usize,
    sent: usize,
    ended: bool,
}

impl EndGuard {
    fn sent(&mut self) {
        self.sent += 1;
        let sent = self.sent;
        self.shared.update(self.index, |r| r.pieces_sent = sent);
    }

    fn end(&mut self) {
        self.ended = true;
        self.shared
            .update(self.index, |r| r.end = Some(StreamEnd::Completed));
    }
}

impl Drop for EndGuard {
    fn drop(&mut self) {
        if !self.ended {
            self.shared
                .update(self.index, |r| r.end = Some(StreamEnd::Abandoned));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_arguments_come_in_pieces_that_join_up() {
        let reply = Reply::tool_calls(&[("book", r#"{"day":"Monday","time":"10:00"}"#)]);
        let events = events("chatcmpl-x", "m", &reply);
        let mut arguments = String::new();
        let mut pieces = 0;
        for data in &events[..events.len() - 1] {
            let chunk: Value = serde_json::from_str(data).unwrap();
            if let Some(a) =
                chunk["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"].as_str()
            {
                arguments.push_str(a);
                pieces += 1;
            }
        }
        assert_eq!(arguments, r#"{"day":"Monday","time":"10:00"}"#);
        assert!(pieces > 3);
        assert_eq!(events.last().map(String::as_str), Some("[DONE]"));
    }

    #[test]
    fn keys_are_masked_as_openai_does() {
        assert_eq!(masked("sk-wrong-key-123"), "sk-wr***-123");
        assert_eq!(masked("short"), "*****");
    }
}
