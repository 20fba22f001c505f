//! Any OpenAI-compatible `/chat/completions` endpoint (OpenAI, Groq, llama.cpp, vLLM,
//! Ollama, a proxy), asked to stream: the answer arrives as server-sent events, text
//! deltas are passed on as they come, and tool-call pieces are put back together into
//! whole calls.
//!
//! A failure before anything was passed on is tried once more after a short pause; once
//! the caller may have heard something, it never is (the answer would be said twice).
//! Dropping the receiver ends the task and with it the HTTP request (barge-in).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::{ChatRequest, LanguageModel, LlmEvent, Message, ToolCall};
use crate::vendor::{Account, Endpoint, FIRST_BYTE_WITHIN, VendorError};

const VENDOR: &str = "openai";

/// Events waiting for the session: text deltas are small and the session reads them
/// at once, so this is only slack.
const EVENT_QUEUE: usize = 64;

/// Longest wait between two pieces of the body once it has started.
const IDLE_WITHIN: Duration = Duration::from_secs(15);

/// Pause before the one retry.
const RETRY_AFTER: Duration = Duration::from_millis(250);

/// Longest excerpt of an error body kept in the error, and the most of it read.
const DETAIL_CHARS: usize = 200;
const ERROR_BODY_BYTES: usize = 4096;

/// The most of one event held while waiting for its end: far above any real delta, it
/// only stops a server that never ends a line from filling memory.
const MAX_EVENT_BYTES: usize = 1 << 20;

/// A chat-completions model. Cheap to clone: clones share the connection pool.
#[derive(Clone)]
pub struct OpenAiChat {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    http: reqwest::Client,
    endpoint: Endpoint,
    model: String,
    temperature: Option<f32>,
    max_tokens: Option<u32>,
    idle_within: Duration,
}

impl std::fmt::Debug for OpenAiChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiChat")
            .field("endpoint", &self.inner.endpoint)
            .field("model", &self.inner.model)
            .finish_non_exhaustive()
    }
}

impl OpenAiChat {
    pub const DEFAULT_BASE_URL: &'static str = "https://api.openai.com/v1";
    pub const DEFAULT_MODEL: &'static str = "gpt-4o-mini";

    /// `endpoint.base_url` is the part before `/chat/completions` (`…/v1`).
    pub fn new(endpoint: Endpoint, model: impl Into<String>) -> OpenAiChat {
        OpenAiChat::with_http_client(reqwest::Client::new(), endpoint, model)
    }

    /// With a client shared with other vendors, so calls reuse its connections.
    pub fn with_http_client(
        http: reqwest::Client,
        endpoint: Endpoint,
        model: impl Into<String>,
    ) -> OpenAiChat {
        OpenAiChat {
            inner: Arc::new(Inner {
                http,
                endpoint,
                model: model.into(),
                temperature: None,
                max_tokens: None,
                idle_within: IDLE_WITHIN,
            }),
        }
    }

    /// `OPENAI_BASE_URL` (default [`Self::DEFAULT_BASE_URL`]), `OPENAI_API_KEY`, and
    /// `OPENAI_MODEL` (default [`Self::DEFAULT_MODEL`]); `None` when there is no key.
    pub fn from_env() -> Option<OpenAiChat> {
        let account = Account::from_env("OPENAI", Self::DEFAULT_BASE_URL);
        let model = account
            .model
            .clone()
            .unwrap_or_else(|| Self::DEFAULT_MODEL.to_owned());
        Some(OpenAiChat::new(account.endpoint()?, model))
    }

    pub fn with_temperature(self, temperature: f32) -> OpenAiChat {
        self.map(|inner| inner.temperature = Some(temperature))
    }

    pub fn with_max_tokens(self, max_tokens: u32) -> OpenAiChat {
        self.map(|inner| inner.max_tokens = Some(max_tokens))
    }

    /// The longest wait between two pieces of a streaming answer (15 s by default).
    pub fn with_idle_timeout(self, within: Duration) -> OpenAiChat {
        self.map(|inner| inner.idle_within = within)
    }

    fn map(self, change: impl FnOnce(&mut Inner)) -> OpenAiChat {
        let mut inner = Arc::unwrap_or_clone(self.inner);
        change(&mut inner);
        OpenAiChat {
            inner: Arc::new(inner),
        }
    }
}

#[async_trait]
impl LanguageModel for OpenAiChat {
    async fn stream(&self, request: ChatRequest) -> Result<mpsc::Receiver<LlmEvent>, VendorError> {
        let body = Bytes::from(self.inner.body(&request)?);
        let mut attempts = 0;
        let response = loop {
            attempts += 1;
            match self.inner.send(body.clone()).await {
                Ok(response) => break response,
                Err(e) if attempts == 1 && e.is_retryable() => {
                    tracing::info!(vendor = VENDOR, error = %e, "retrying once");
                    tokio::time::sleep(RETRY_AFTER).await;
                }
                Err(e) => return Err(e),
            }
        };
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let inner = self.inner.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = run(&inner, body, response, attempts, &tx) => {}
                // Barge-in: the request goes with this future.
                () = tx.closed() => {}
            }
        });
        Ok(rx)
    }
}

impl Inner {
    fn body(&self, request: &ChatRequest) -> Result<Vec<u8>, VendorError> {
        let wire = WireRequest {
            model: &self.model,
            messages: request.messages.iter().map(WireMessage::from).collect(),
            tools: request
                .tools
                .iter()
                .map(|t| WireTool {
                    kind: "function",
                    function: WireFunction {
                        name: &t.name,
                        description: &t.description,
                        parameters: &t.parameters,
                    },
                })
                .collect(),
            stream: true,
            temperature: self.temperature,
            max_tokens: self.max_tokens,
        };
        serde_json::to_vec(&wire).map_err(|e| VendorError::Protocol {
            vendor: VENDOR,
            detail: format!("cannot write the request: {e}"),
        })
    }

    /// One request, up to its response headers; an error status is read into the error.
    async fn send(&self, body: Bytes) -> Result<reqwest::Response, VendorError> {
        let sending = self
            .http
            .post(format!("{}/chat/completions", self.endpoint.base_url))
            .bearer_auth(self.endpoint.api_key.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::ACCEPT, "text/event-stream")
            .body(body)
            .send();
        let response = match tokio::time::timeout(FIRST_BYTE_WITHIN, sending).await {
            Err(_) => return Err(VendorError::Timeout { vendor: VENDOR }),
            Ok(Err(e)) if e.is_timeout() => return Err(VendorError::Timeout { vendor: VENDOR }),
            Ok(Err(e)) => {
                return Err(VendorError::Connect {
                    vendor: VENDOR,
                    // Without the URL: it is ours, and the error's source says enough.
                    detail: error_chain(&e.without_url()),
                });
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        if status.is_success() {
            return Ok(response);
        }
        let detail = error_detail(response, self.endpoint.api_key.expose()).await;
        Err(VendorError::Status {
            vendor: VENDOR,
            status: status.as_u16(),
            detail,
        })
    }
}

/// An error and its causes on one line (reqwest's own message alone says little).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A short, key-free account of an error response: OpenAI's `error.message` (and
/// `code`) when the body is its error JSON, else the body's start.
async fn error_detail(mut response: reqwest::Response, key: &str) -> String {
    let mut body = Vec::new();
    let reading = async {
        while body.len() < ERROR_BODY_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => body.extend_from_slice(&chunk),
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(FIRST_BYTE_WITHIN, reading).await;
    #[derive(Deserialize)]
    struct Envelope {
        error: ErrorBody,
    }
    let text = match serde_json::from_slice::<Envelope>(&body) {
        Ok(Envelope { error }) => match error.code_text() {
            Some(code) => format!("{code}: {}", error.message),
            None => error.message,
        },
        Err(_) => String::from_utf8_lossy(&body).into_owned(),
    };
    redact(&text, key)
}

/// Keeps the key out of an excerpt: the key itself, and anything that looks like a key
/// (OpenAI quotes a masked form of a refused key, still more of it than belongs in a log).
fn redact(text: &str, key: &str) -> String {
    let short: String = text
        .chars()
        .take(DETAIL_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let short = if key.is_empty() {
        short
    } else {
        short.replace(key, "***")
    };
    short
        .split(' ')
        .map(|word| {
            if word.starts_with("sk-") {
                "sk-***"
            } else {
                word
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_owned()
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    message: String,
    #[serde(default)]
    code: Option<serde_json::Value>,
}

impl ErrorBody {
    fn code_text(&self) -> Option<String> {
        match &self.code {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            _ => None,
        }
    }
}

/// Reads one answer to its end. Fails over to one more request when this one breaks
/// before anything was passed on and no retry was used yet.
async fn run(
    inner: &Inner,
    body: Bytes,
    mut response: reqwest::Response,
    mut attempts: u32,
    tx: &mpsc::Sender<LlmEvent>,
) {
    loop {
        let mut answer = Answer::default();
        let outcome = read(inner, &mut response, &mut answer, tx).await;
        let failure = match outcome {
            Ok(()) => return,
            Err(Stop::Cancelled) => return,
            Err(Stop::Failed(e)) => e,
        };
        if answer.delivered || attempts >= 2 || !failure.is_retryable() {
            let _ = tx.send(LlmEvent::Failed(failure)).await;
            return;
        }
        tracing::info!(vendor = VENDOR, error = %failure, "retrying once");
        tokio::time::sleep(RETRY_AFTER).await;
        attempts += 1;
        response = match inner.send(body.clone()).await {
            Ok(response) => response,
            Err(e) => {
                let _ = tx.send(LlmEvent::Failed(e)).await;
                return;
            }
        };
    }
}

enum Stop {
    /// The receiver is gone.
    Cancelled,
    Failed(VendorError),
}

impl From<VendorError> for Stop {
    fn from(e: VendorError) -> Stop {
        Stop::Failed(e)
    }
}

/// Passes one response's events on until `[DONE]`.
async fn read(
    inner: &Inner,
    response: &mut reqwest::Response,
    answer: &mut Answer,
    tx: &mpsc::Sender<LlmEvent>,
) -> Result<(), Stop> {
    let mut sse = SseParser::default();
    let mut out = Vec::new();
    loop {
        let chunk = match tokio::time::timeout(inner.idle_within, response.chunk()).await {
            Err(_) => return Err(VendorError::Timeout { vendor: VENDOR }.into()),
            Ok(Err(e)) => {
                tracing::warn!(vendor = VENDOR, error = %error_chain(&e.without_url()), "body broke");
                return Err(VendorError::Closed { vendor: VENDOR }.into());
            }
            Ok(Ok(chunk)) => chunk,
        };
        let Some(chunk) = chunk else {
            sse.finish();
            let done = drain(&mut sse, answer, &mut out)?;
            deliver(&mut out, answer, tx).await?;
            if done || answer.finished {
                return finish(answer, tx).await;
            }
            return Err(VendorError::Closed { vendor: VENDOR }.into());
        };
        sse.push(&chunk);
        let done = drain(&mut sse, answer, &mut out)?;
        deliver(&mut out, answer, tx).await?;
        if done {
            return finish(answer, tx).await;
        }
        if sse.pending() > MAX_EVENT_BYTES {
            return Err(VendorError::Protocol {
                vendor: VENDOR,
                detail: "an event without end".to_owned(),
            }
            .into());
        }
    }
}

/// Feeds the parser's complete events to the answer; true once `[DONE]` came.
fn drain(
    sse: &mut SseParser,
    answer: &mut Answer,
    out: &mut Vec<LlmEvent>,
) -> Result<bool, VendorError> {
    while let Some(data) = sse.next_event() {
        if data.trim() == "[DONE]" {
            return Ok(true);
        }
        answer.absorb(&data, out)?;
    }
    Ok(false)
}

async fn deliver(
    out: &mut Vec<LlmEvent>,
    answer: &mut Answer,
    tx: &mpsc::Sender<LlmEvent>,
) -> Result<(), Stop> {
    for event in out.drain(..) {
        answer.delivered = true;
        tx.send(event).await.map_err(|_| Stop::Cancelled)?;
    }
    Ok(())
}

async fn finish(answer: &mut Answer, tx: &mpsc::Sender<LlmEvent>) -> Result<(), Stop> {
    if let Some(calls) = answer.take_calls() {
        answer.delivered = true;
        tx.send(LlmEvent::ToolCalls(calls))
            .await
            .map_err(|_| Stop::Cancelled)?;
    }
    tx.send(LlmEvent::Done).await.map_err(|_| Stop::Cancelled)
}

/// What one streamed answer has said so far.
#[derive(Default)]
struct Answer {
    /// Something reached the receiver: no retry from here on.
    delivered: bool,
    /// A `finish_reason` came.
    finished: bool,
    /// Tool calls being put together, by their `index`.
    calls: Vec<(u64, ToolCall)>,
}

impl Answer {
    fn absorb(&mut self, data: &str, out: &mut Vec<LlmEvent>) -> Result<(), VendorError> {
        let chunk: WireChunk = serde_json::from_str(data).map_err(|e| VendorError::Protocol {
            vendor: VENDOR,
            detail: format!("unreadable event: {e}"),
        })?;
        if let Some(error) = chunk.error {
            let said = match error.code_text() {
                Some(code) => format!("{code}: {}", error.message),
                None => error.message,
            };
            return Err(VendorError::Protocol {
                vendor: VENDOR,
                detail: format!("error in the stream: {}", redact(&said, "")),
            });
        }
        // One choice is asked for; a server that sends more gets its first read.
        let Some(choice) = chunk.choices.into_iter().find(|c| c.index == 0) else {
            return Ok(());
        };
        if let Some(delta) = choice.delta {
            if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                out.push(LlmEvent::Text(text));
            }
            for (position, piece) in delta.tool_calls.into_iter().enumerate() {
                self.add_piece(piece, position as u64);
            }
        }
        if let Some(reason) = choice.finish_reason {
            self.finished = true;
            if (reason == "tool_calls" || reason == "function_call")
                && let Some(calls) = self.take_calls()
            {
                out.push(LlmEvent::ToolCalls(calls));
            }
        }
        Ok(())
    }

    fn add_piece(&mut self, piece: WireToolDelta, position: u64) {
        let index = piece.index.unwrap_or(position);
        let slot = match self.calls.iter().position(|(i, _)| *i == index) {
            Some(at) => &mut self.calls[at].1,
            None => {
                self.calls.push((
                    index,
                    ToolCall {
                        id: String::new(),
                        name: String::new(),
                        arguments: String::new(),
                    },
                ));
                let last = self.calls.len() - 1;
                &mut self.calls[last].1
            }
        };
        if let Some(id) = piece.id.filter(|id| !id.is_empty()) {
            slot.id = id;
        }
        if let Some(function) = piece.function {
            // The name comes whole in the first piece; some servers repeat it.
            if let Some(name) = function.name.filter(|n| !n.is_empty())
                && slot.name.is_empty()
            {
                slot.name = name;
            }
            if let Some(arguments) = function.arguments {
                slot.arguments.push_str(&arguments);
            }
        }
    }

    fn take_calls(&mut self) -> Option<Vec<ToolCall>> {
        if self.calls.is_empty() {
            return None;
        }
        self.calls.sort_by_key(|(index, _)| *index);
        Some(
            self.calls
                .drain(..)
                .map(|(index, mut call)| {
                    if call.id.is_empty() {
                        call.id = format!("call_{index}");
                    }
                    call
                })
                .collect(),
        )
    }
}

/// An incremental server-sent-events reader: bytes go in as they arrive, each event's
/// `data` comes out once its blank line has. Lines end in `\n` or `\r\n`; comments and
/// fields other than `data` are skipped.
#[derive(Default)]
struct SseParser {
    buffer: Vec<u8>,
    /// How far `buffer` has been read.
    read: usize,
    /// The event being gathered: its data lines, joined by `\n`.
    data: String,
    has_data: bool,
}

impl SseParser {
    fn push(&mut self, bytes: &[u8]) {
        // Drop what was read already so the buffer stays one event long.
        if self.read > 0 {
            self.buffer.drain(..self.read);
            self.read = 0;
        }
        self.buffer.extend_from_slice(bytes);
    }

    /// Bytes held for the event not yet complete.
    fn pending(&self) -> usize {
        self.buffer.len() - self.read + self.data.len()
    }

    /// Ends the input: a last line without its line end still counts, and an event
    /// left without its blank line is let out (lenient with servers that stop short).
    fn finish(&mut self) {
        if self.buffer.len() > self.read {
            self.buffer.extend_from_slice(b"\n");
        }
        self.buffer.extend_from_slice(b"\n");
    }

    fn next_event(&mut self) -> Option<String> {
        while let Some(end) = self.buffer[self.read..].iter().position(|&b| b == b'\n') {
            let start = self.read;
            self.read += end + 1;
            let mut line = &self.buffer[start..start + end];
            if let Some(stripped) = line.strip_suffix(b"\r") {
                line = stripped;
            }
            if line.is_empty() {
                if self.has_data {
                    self.has_data = false;
                    return Some(std::mem::take(&mut self.data));
                }
                continue;
            }
            if line.starts_with(b":") {
                continue;
            }
            let (field, value) = match line.iter().position(|&b| b == b':') {
                Some(colon) => {
                    let value = &line[colon + 1..];
                    (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
                }
                None => (line, &b""[..]),
            };
            if field == b"data" {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&String::from_utf8_lossy(value));
                self.has_data = true;
            }
        }
        None
    }
}

#[derive(Serialize)]
struct WireRequest<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
}

#[derive(Serialize)]
#[serde(tag = "role", rename_all = "snake_case")]
enum WireMessage<'a> {
    System {
        content: &'a str,
    },
    User {
        content: &'a str,
    },
    Assistant {
        /// `null` when the turn was only tool calls, as OpenAI writes it.
        content: Option<&'a str>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<WireToolCall<'a>>,
    },
    Tool {
        tool_call_id: &'a str,
        content: &'a str,
    },
}

impl<'a> From<&'a Message> for WireMessage<'a> {
    fn from(message: &'a Message) -> WireMessage<'a> {
        match message {
            Message::System { content } => WireMessage::System { content },
            Message::User { content } => WireMessage::User { content },
            Message::Assistant {
                content,
                tool_calls,
            } => WireMessage::Assistant {
                content: if content.is_empty() && !tool_calls.is_empty() {
                    None
                } else {
                    Some(content)
                },
                tool_calls: tool_calls
                    .iter()
                    .map(|c| WireToolCall {
                        id: &c.id,
                        kind: "function",
                        function: WireCalled {
                            name: &c.name,
                            arguments: &c.arguments,
                        },
                    })
                    .collect(),
            },
            Message::Tool {
                tool_call_id,
                content,
            } => WireMessage::Tool {
                tool_call_id,
                content,
            },
        }
    }
}

#[derive(Serialize)]
struct WireToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireCalled<'a>,
}

#[derive(Serialize)]
struct WireCalled<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a serde_json::Value,
}

/// One `chat.completion.chunk`, or an error sent in the stream.
#[derive(Deserialize)]
struct WireChunk {
    #[serde(default)]
    choices: Vec<WireChoice>,
    #[serde(default)]
    error: Option<ErrorBody>,
}

#[derive(Deserialize)]
struct WireChoice {
    #[serde(default)]
    index: u64,
    #[serde(default)]
    delta: Option<WireDelta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireDelta {
    #[serde(default)]
    content: Option<String>,
    #[serde(default, deserialize_with = "null_as_empty")]
    tool_calls: Vec<WireToolDelta>,
}

#[derive(Deserialize)]
struct WireToolDelta {
    #[serde(default)]
    index: Option<u64>,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    function: Option<WireFunctionDelta>,
}

#[derive(Deserialize)]
struct WireFunctionDelta {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
}

/// Some servers write `"tool_calls": null` in every delta.
fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stream as OpenAI writes it, with the extras other servers add: `\r\n` line
    /// ends, comments, an `event:` field, and a data field split over two lines.
    const STREAM: &str = concat!(
        ": keep-alive\r\n\r\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hé\"}}]}\r\n\r\n",
        "event: message\n",
        "data: {\"choices\":[{\"index\":0,\n",
        "data: \"delta\":{\"content\":\"llo\"}}]}\n\n",
        "data: [DONE]\n\n",
    );

    fn events_of(parser: &mut SseParser, out: &mut Vec<String>) {
        while let Some(data) = parser.next_event() {
            out.push(data);
        }
    }

    #[test]
    fn sse_parses_the_same_at_every_split_point() {
        let bytes = STREAM.as_bytes();
        let mut whole = Vec::new();
        let mut parser = SseParser::default();
        parser.push(bytes);
        events_of(&mut parser, &mut whole);
        assert_eq!(whole.len(), 4, "{whole:?}");
        assert_eq!(whole[3], "[DONE]");
        assert_eq!(
            whole[2],
            "{\"choices\":[{\"index\":0,\n\"delta\":{\"content\":\"llo\"}}]}"
        );
        for first in 0..=bytes.len() {
            for second in first..=bytes.len() {
                let mut parser = SseParser::default();
                let mut got = Vec::new();
                for piece in [&bytes[..first], &bytes[first..second], &bytes[second..]] {
                    parser.push(piece);
                    events_of(&mut parser, &mut got);
                }
                assert_eq!(got, whole, "split at {first} and {second}");
            }
        }
    }

    #[test]
    fn sse_byte_by_byte_and_a_missing_last_blank_line() {
        let mut parser = SseParser::default();
        let mut got = Vec::new();
        for b in "data: a\n\ndata: b\r\ndata: c".as_bytes() {
            parser.push(std::slice::from_ref(b));
            events_of(&mut parser, &mut got);
        }
        assert_eq!(got, ["a"]);
        parser.finish();
        events_of(&mut parser, &mut got);
        assert_eq!(got, ["a", "b\nc"]);
    }

    #[test]
    fn tool_call_pieces_are_assembled_by_index() {
        let mut answer = Answer::default();
        let mut out = Vec::new();
        for data in [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"book","arguments":""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"day\":"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","function":{"name":"note","arguments":"{}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"\"Mon\"}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
        ] {
            answer.absorb(data, &mut out).unwrap();
        }
        assert_eq!(
            out,
            [LlmEvent::ToolCalls(vec![
                ToolCall {
                    id: "call_a".into(),
                    name: "book".into(),
                    arguments: r#"{"day":"Mon"}"#.into()
                },
                ToolCall {
                    id: "call_b".into(),
                    name: "note".into(),
                    arguments: "{}".into()
                },
            ])]
        );
        assert!(answer.finished);
    }

    #[test]
    fn errors_in_the_stream_and_garbage_are_protocol_failures() {
        let mut answer = Answer::default();
        let mut out = Vec::new();
        assert!(matches!(
            answer.absorb("{oops", &mut out),
            Err(VendorError::Protocol { .. })
        ));
        assert!(matches!(
            answer.absorb(r#"{"error":{"message":"overloaded","code":"busy"}}"#, &mut out),
            Err(VendorError::Protocol { detail, .. }) if detail.contains("busy: overloaded")
        ));
    }

    #[test]
    fn redaction_takes_out_the_key_and_key_like_words() {
        let said = redact(
            "Incorrect API key provided: sk-ab***yz. Also sk-secret-1 and my-key-1",
            "my-key-1",
        );
        assert_eq!(
            said,
            "Incorrect API key provided: sk-*** Also sk-*** and ***"
        );
    }

    #[test]
    fn the_request_is_written_as_chat_completions_takes_it() {
        let chat = OpenAiChat::new(
            Endpoint::new(
                "http://x/v1",
                parley_shared::secrets::SecretString::new("k".into()),
            ),
            "m",
        )
        .with_temperature(0.5);
        let request = ChatRequest {
            messages: vec![
                Message::System {
                    content: "be brief".into(),
                },
                Message::Assistant {
                    content: String::new(),
                    tool_calls: vec![ToolCall {
                        id: "c1".into(),
                        name: "f".into(),
                        arguments: "{}".into(),
                    }],
                },
                Message::Tool {
                    tool_call_id: "c1".into(),
                    content: "ok".into(),
                },
            ],
            tools: vec![],
        };
        let body: serde_json::Value =
            serde_json::from_slice(&chat.inner.body(&request).unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({
                "model": "m",
                "stream": true,
                "temperature": 0.5,
                "messages": [
                    {"role": "system", "content": "be brief"},
                    {"role": "assistant", "content": null, "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                    ]},
                    {"role": "tool", "tool_call_id": "c1", "content": "ok"}
                ]
            })
        );
    }
}
