//! The media task's WebSocket server: each carrier stream is one call's session.
//!
//! A Twilio session must open with `connected` and `start`; `start` carries the stream
//! token the voice webhook minted (in the `<Stream>`'s `<Parameter>`s), and no audio is
//! looked at until it checks out for that call and tenant. A frame that does not parse
//! ends that call's session with a close code saying why; other calls are untouched.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use parley_shared::clock::Clock;
use parley_shared::secrets::SecretString;
use parley_shared::streamtoken::{self, StreamClaims};

use crate::twilio_stream::{self, Inbound, MAX_FRAME_BYTES};

/// What every session can reach, and the counters `/health` and `/metrics` read.
#[derive(Clone)]
pub struct MediaState {
    pub clock: Arc<dyn Clock>,
    /// The key the voice webhook signs stream tokens with.
    pub stream_secret: Arc<SecretString>,
    /// False once the task is draining: new streams are refused, live ones finish.
    pub accepting: Arc<AtomicBool>,
    pub live_calls: Arc<AtomicUsize>,
    /// Audio frames taken in from callers, over all calls.
    pub frames_in: Arc<AtomicU64>,
}

impl MediaState {
    pub fn new(clock: Arc<dyn Clock>, stream_secret: SecretString) -> MediaState {
        MediaState {
            clock,
            stream_secret: Arc::new(stream_secret),
            accepting: Arc::new(AtomicBool::new(true)),
            live_calls: Arc::new(AtomicUsize::new(0)),
            frames_in: Arc::new(AtomicU64::new(0)),
        }
    }
}

impl MediaState {
    /// Stops taking calls (`/health` turns 503) and waits up to `grace` for the live
    /// ones to end; how many were still live when it stopped waiting.
    pub async fn drain(&self, grace: Duration) -> usize {
        self.accepting.store(false, Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let live = self.live_calls.load(Ordering::Relaxed);
            if live == 0 || tokio::time::Instant::now() >= deadline {
                return live;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The media routes, as `parley dev` mounts them beside every other function's.
pub fn routes(state: MediaState) -> Router {
    Router::new()
        .route("/media/twilio", get(twilio))
        .with_state(state)
}

/// The media routes and the load balancer's `/health`: the media task's whole service.
pub fn service(state: MediaState) -> Router {
    let health = Router::new()
        .route("/health", get(health))
        .with_state(state.clone());
    routes(state).merge(health)
}

/// Ready only while accepting calls, so the load balancer stops sending new ones to a
/// task that is draining.
async fn health(State(state): State<MediaState>) -> Response {
    if state.accepting.load(Ordering::Relaxed) {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "draining").into_response()
    }
}

async fn twilio(State(state): State<MediaState>, upgrade: WebSocketUpgrade) -> Response {
    if !state.accepting.load(Ordering::Relaxed) {
        return (StatusCode::SERVICE_UNAVAILABLE, "draining").into_response();
    }
    upgrade
        .max_message_size(MAX_FRAME_BYTES)
        .on_upgrade(move |socket| twilio_session(socket, state))
}

/// How long a stream may take to say what it is before it is dropped.
const START_WITHIN: Duration = Duration::from_secs(10);

/// How a session ended, as its close frame says.
#[derive(Debug)]
enum End {
    Stopped,
    Refused(&'static str),
    Malformed(String),
    Gone,
}

/// Decrements the live-call count however the session ends.
struct Live(Arc<AtomicUsize>);

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn twilio_session(mut socket: WebSocket, state: MediaState) {
    state.live_calls.fetch_add(1, Ordering::Relaxed);
    let _live = Live(state.live_calls.clone());
    let end = match tokio::time::timeout(START_WITHIN, admit(&mut socket, &state)).await {
        Ok(Ok(claims)) => {
            tracing::info!(tenant_id = %claims.tenant_id, call_id = %claims.call_id, "media stream started");
            let end = stream(&mut socket, &state).await;
            tracing::info!(tenant_id = %claims.tenant_id, call_id = %claims.call_id, end = ?end, "media stream ended");
            end
        }
        Ok(Err(end)) => end,
        Err(_) => End::Refused("no start frame in time"),
    };
    let (code, reason) = match &end {
        End::Stopped => (close_code::NORMAL, "stream stopped".to_owned()),
        End::Refused(why) => (close_code::POLICY, (*why).to_owned()),
        End::Malformed(why) => (close_code::INVALID, why.chars().take(120).collect()),
        End::Gone => return,
    };
    if !matches!(end, End::Stopped) {
        tracing::warn!(end = ?end, "media stream refused or broken");
    }
    let close = CloseFrame {
        code,
        reason: reason.into(),
    };
    let _ = socket.send(Message::Close(Some(close))).await;
}

/// The next text frame, parsed; `Err` ends the session.
async fn next(socket: &mut WebSocket) -> Result<Inbound, End> {
    loop {
        match socket.recv().await {
            Some(Ok(Message::Text(text))) => {
                return twilio_stream::parse(text.as_str())
                    .map_err(|e| End::Malformed(e.to_string()));
            }
            Some(Ok(Message::Binary(_))) => {
                return Err(End::Malformed("a binary frame on a text protocol".into()));
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Err(End::Gone),
        }
    }
}

/// Reads `connected` and `start`, and checks `start`'s stream token for its call.
async fn admit(socket: &mut WebSocket, state: &MediaState) -> Result<StreamClaims, End> {
    let start = loop {
        match next(socket).await? {
            Inbound::Connected { .. } => continue,
            Inbound::Start { start, .. } => break start,
            _ => return Err(End::Refused("audio before start")),
        }
    };
    let param = |name: &str| start.custom_parameters.get(name).map(String::as_str);
    let (Some(token), Some(call_id)) = (param("token"), param("call_id")) else {
        return Err(End::Refused("no stream token"));
    };
    let claims = streamtoken::verify(
        state.stream_secret.expose().as_bytes(),
        token,
        call_id,
        state.clock.now(),
    )
    .map_err(|_| End::Refused("stream token refused"))?;
    if param("tenant_id").is_some_and(|t| t != claims.tenant_id) {
        return Err(End::Refused("stream token refused"));
    }
    Ok(claims)
}

/// The admitted stream, frame by frame, until it stops or breaks.
async fn stream(socket: &mut WebSocket, state: &MediaState) -> End {
    // Reused for every frame: a call allocates its buffer once. The audio is checked
    // (valid base64, within the size limit) and counted; nothing consumes it until the
    // conversation pipeline does, so it is not decoded further yet.
    let mut mulaw = Vec::with_capacity(320);
    loop {
        match next(socket).await {
            Ok(Inbound::Media { media, .. }) => {
                if let Err(e) = media.decode_payload_into(&mut mulaw) {
                    return End::Malformed(e.to_string());
                }
                state.frames_in.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Inbound::Stop { .. }) => return End::Stopped,
            Ok(Inbound::Start { .. } | Inbound::Connected { .. }) => {
                return End::Malformed("a second start".into());
            }
            Ok(Inbound::Mark { .. } | Inbound::Dtmf { .. }) => {}
            Err(end) => return end,
        }
    }
}
