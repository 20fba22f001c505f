//! The media task's WebSocket server: each carrier stream is one call's session.
//!
//! A Twilio session must open with `connected` and `start`; `start` carries the stream
//! token the voice webhook minted (in the `<Stream>`'s `<Parameter>`s), and no audio is
//! looked at until it checks out for that call and tenant. A frame that does not parse
//! ends that call's session with a close code saying why; other calls are untouched.
//!
//! A ConversationRelay session (`/media/twilio-relay`) is admitted the same way: its
//! first message must be `setup`, whose custom parameters carry the stream token.
//!
//! Beyond `max_calls` live streams a new one is refused (503, `full`) before its
//! upgrade, so an overloaded task turns new calls away rather than making every live
//! call's turns late. `/health` does not fail for a full task: ECS replaces tasks whose
//! health checks fail, which would cut every call on it. Capacity is autoscaling's
//! work (on live calls, with its target below the cap).

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, close_code};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use parley_shared::clock::Clock;
use parley_shared::secrets::SecretString;
use parley_shared::streamtoken::{self, StreamClaims};

use crate::call::Calls;
use crate::exotel_stream;
use crate::metrics::{Metrics, Refusal};
use crate::relay_stream::{self, Setup};
use crate::session::{End as SessionEnd, Link};
use crate::twilio_stream::{self, Inbound, MAX_FRAME_BYTES};

/// What every session can reach, and the counters `/health` and `/metrics` read.
#[derive(Clone)]
pub struct MediaState {
    pub clock: Arc<dyn Clock>,
    /// The key the voice webhook signs stream tokens with.
    pub stream_secret: Arc<SecretString>,
    /// False once the task is draining: new streams are refused, live ones finish.
    pub accepting: Arc<AtomicBool>,
    pub metrics: Arc<Metrics>,
    /// The stores and vendors that hold conversations. Without them a stream is
    /// admitted and read (its frames checked and counted) but nobody speaks: the
    /// transport alone, as its own tests drive it.
    pub calls: Option<Arc<Calls>>,
    /// The most streams live at once; a new one beyond it is refused before its
    /// upgrade.
    pub max_calls: usize,
}

/// Calls a task holds per core by default: measured here (README, "Media task"), 300
/// calls take 0.83 of a core with answers on time; measure a deployment's own task
/// size and set `PARLEY_MEDIA_MAX_CALLS` to match.
pub const DEFAULT_CALLS_PER_CORE: usize = 300;

impl MediaState {
    pub fn new(clock: Arc<dyn Clock>, stream_secret: SecretString) -> MediaState {
        MediaState {
            clock,
            stream_secret: Arc::new(stream_secret),
            accepting: Arc::new(AtomicBool::new(true)),
            metrics: Arc::new(Metrics::new()),
            calls: None,
            max_calls: default_max_calls(),
        }
    }

    /// Holds at most `n` calls at once (0: refuses every stream).
    pub fn with_max_calls(mut self, n: usize) -> MediaState {
        self.max_calls = n;
        self
    }

    /// Holds conversations with these stores and vendors.
    pub fn with_calls(mut self, calls: Calls) -> MediaState {
        self.calls = Some(Arc::new(calls));
        self
    }

    /// Calls being held now.
    pub fn live_calls(&self) -> i64 {
        self.metrics.live_calls.get()
    }

    /// Stops taking calls (`/health` turns 503) and waits up to `grace` for the live
    /// ones to end; how many were still live when it stopped waiting.
    pub async fn drain(&self, grace: Duration) -> i64 {
        self.accepting.store(false, Ordering::Relaxed);
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let live = self.live_calls();
            if live <= 0 || tokio::time::Instant::now() >= deadline {
                return live.max(0);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `DEFAULT_CALLS_PER_CORE` for each core this process may use (its CPU quota and
/// affinity count, so a Fargate task's vCPUs, not its host's).
fn default_max_calls() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
    DEFAULT_CALLS_PER_CORE.saturating_mul(cores)
}

/// The media routes, as `parley dev` mounts them beside every other function's.
pub fn routes(state: MediaState) -> Router {
    Router::new()
        .route("/media/twilio", get(twilio))
        .route("/media/exotel", get(exotel))
        .route("/media/twilio-relay", get(twilio_relay))
        .with_state(state)
}

/// The media routes, the load balancer's `/health` and Prometheus' `/metrics`: the
/// media task's whole service.
pub fn service(state: MediaState) -> Router {
    let ops = Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .with_state(state.clone());
    routes(state).merge(ops)
}

/// Ready only while accepting calls, so the load balancer stops sending new ones to a
/// task that is draining. A full task stays ready (see the module doc) but says so.
async fn health(State(state): State<MediaState>) -> Response {
    if !state.accepting.load(Ordering::Relaxed) {
        (StatusCode::SERVICE_UNAVAILABLE, "draining").into_response()
    } else if usize::try_from(state.live_calls()).unwrap_or(0) >= state.max_calls {
        (StatusCode::OK, "full").into_response()
    } else {
        (StatusCode::OK, "ready").into_response()
    }
}

async fn metrics(State(state): State<MediaState>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

#[derive(Clone, Copy, Debug)]
enum Carrier {
    Twilio,
    Exotel,
    /// Twilio ConversationRelay: text, no audio.
    TwilioRelay,
}

async fn twilio(State(state): State<MediaState>, upgrade: WebSocketUpgrade) -> Response {
    accept(state, upgrade, Carrier::Twilio)
}

async fn exotel(State(state): State<MediaState>, upgrade: WebSocketUpgrade) -> Response {
    accept(state, upgrade, Carrier::Exotel)
}

async fn twilio_relay(State(state): State<MediaState>, upgrade: WebSocketUpgrade) -> Response {
    accept(state, upgrade, Carrier::TwilioRelay)
}

fn accept(state: MediaState, upgrade: WebSocketUpgrade, carrier: Carrier) -> Response {
    if !state.accepting.load(Ordering::Relaxed) {
        return refuse(&state, Refusal::Draining);
    }
    // The slot is taken before the upgrade and moves into the session; if the upgrade
    // fails, the session is dropped unrun and the slot with it.
    let Some(live) = Live::reserve(&state.metrics, state.max_calls) else {
        return refuse(&state, Refusal::Full);
    };
    upgrade
        .max_message_size(MAX_FRAME_BYTES)
        // tungstenite's default 128 KiB is zero-filled on every read: measured, most of
        // a call's memory and a quarter of the task's CPU. Stream frames are small.
        .read_buffer_size(READ_BUFFER_BYTES)
        .on_upgrade(move |socket| session(socket, state, carrier, live))
}

/// A 503 before any upgrade. A full task asks to be tried again shortly: through the
/// load balancer, which by then may send the stream to another task.
fn refuse(state: &MediaState, why: Refusal) -> Response {
    state.metrics.refused(why);
    // Nothing from the request: it may carry the caller's details.
    tracing::warn!(
        reason = why.as_str(),
        max_calls = state.max_calls,
        "new media stream refused"
    );
    match why {
        Refusal::Full => (
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "1")],
            why.as_str(),
        )
            .into_response(),
        Refusal::Draining => (StatusCode::SERVICE_UNAVAILABLE, why.as_str()).into_response(),
    }
}

/// A WebSocket's read buffer: a few stream frames.
pub const READ_BUFFER_BYTES: usize = 4096;

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

impl From<SessionEnd> for End {
    fn from(end: SessionEnd) -> End {
        match end {
            SessionEnd::Conversation(_) | SessionEnd::Stopped => End::Stopped,
            SessionEnd::Gone => End::Gone,
            SessionEnd::Malformed(why) => End::Malformed(why),
        }
    }
}

/// One of the task's `max_calls` slots, counted in the live gauge from before the
/// upgrade until the call's records are written, however the session ends.
struct Live(Arc<Metrics>);

impl Live {
    /// Takes a slot if one is free. One compare-and-swap on the gauge, so concurrent
    /// upgrades never hold more than `max` between them and the gauge never reads
    /// above it (Relaxed is enough: the count guards no other memory).
    fn reserve(metrics: &Arc<Metrics>, max: usize) -> Option<Live> {
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        metrics
            .live_calls
            .inner()
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |live| {
                (live < max).then_some(live + 1)
            })
            .ok()
            .map(|_| Live(metrics.clone()))
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.live_calls.dec();
    }
}

async fn session(mut socket: WebSocket, state: MediaState, carrier: Carrier, live: Live) {
    let admitted = tokio::time::timeout(START_WITHIN, admit(&mut socket, &state, carrier)).await;
    let end = match admitted {
        Ok(Ok((claims, admitted))) => {
            state.metrics.calls.inc();
            let (tenant_id, call_id) = (claims.tenant_id.as_str(), claims.call_id.as_str());
            tracing::info!(tenant_id, call_id, ?carrier, "media stream started");
            let metrics = &state.metrics;
            let end = match (&state.calls, admitted) {
                (
                    Some(calls),
                    Admitted::Audio {
                        link,
                        live_transcript,
                    },
                ) => End::from(
                    calls
                        .hold(&mut socket, &claims, link, live_transcript, metrics)
                        .await,
                ),
                (Some(calls), Admitted::Relay(setup)) => End::from(
                    calls
                        .hold_relay(&mut socket, &claims, &setup, metrics)
                        .await,
                ),
                (None, _) => listen(&mut socket, &state, carrier).await,
            };
            tracing::info!(tenant_id, call_id, end = ?end, "media stream ended");
            end
        }
        Ok(Err(end)) => end,
        Err(_) => End::Refused("no start frame in time"),
    };
    // The call is over and its records written; the goodbye to the socket is not a call.
    drop(live);
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
    if socket.send(Message::Close(Some(close))).await.is_err() {
        return;
    }
    // The closing handshake: the carrier may still be sending audio when the close goes
    // out; reading until its own close (briefly) spares it a reset connection.
    let _ = tokio::time::timeout(CLOSE_WITHIN, async {
        while let Some(Ok(frame)) = socket.recv().await {
            if matches!(frame, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// How long the carrier has to answer a close before the socket is dropped.
const CLOSE_WITHIN: Duration = Duration::from_secs(1);

/// The next text frame; `Err` ends the session.
async fn next_text(socket: &mut WebSocket) -> Result<axum::extract::ws::Utf8Bytes, End> {
    loop {
        match socket.recv().await {
            Some(Ok(Message::Text(text))) => return Ok(text),
            Some(Ok(Message::Binary(_))) => {
                return Err(End::Malformed("a binary frame on a text protocol".into()));
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Err(End::Gone),
        }
    }
}

/// What `start` says that admission needs.
struct Started {
    stream_sid: String,
    params: std::collections::BTreeMap<String, String>,
    exotel_rate: Option<exotel_stream::SampleRate>,
}

/// An admitted stream: audio over a link, or a ConversationRelay session.
enum Admitted {
    /// `live_transcript`: the stream asked for its turns as they become final.
    Audio { link: Link, live_transcript: bool },
    /// Boxed: `setup` is much larger than a link.
    Relay(Box<Setup>),
}

/// Reads up to `start` (or ConversationRelay's `setup`), and checks its stream token
/// for its call.
async fn admit(
    socket: &mut WebSocket,
    state: &MediaState,
    carrier: Carrier,
) -> Result<(StreamClaims, Admitted), End> {
    let started = loop {
        let text = next_text(socket).await?;
        match carrier {
            Carrier::TwilioRelay => {
                let message = relay_stream::parse(text.as_str())
                    .map_err(|e| End::Malformed(e.to_string()))?;
                let relay_stream::Inbound::Setup(setup) = message else {
                    return Err(End::Refused("a message before setup"));
                };
                let claims = verify(state, &setup.custom_parameters)?;
                return Ok((claims, Admitted::Relay(setup)));
            }
            Carrier::Twilio => match twilio_stream::parse(text.as_str())
                .map_err(|e| End::Malformed(e.to_string()))?
            {
                Inbound::Connected { .. } => continue,
                Inbound::Start { start, .. } => {
                    break Started {
                        stream_sid: start.stream_sid,
                        params: start.custom_parameters,
                        exotel_rate: None,
                    };
                }
                _ => return Err(End::Refused("audio before start")),
            },
            Carrier::Exotel => match exotel_stream::parse(text.as_str())
                .map_err(|e| End::Malformed(e.to_string()))?
            {
                exotel_stream::Inbound::Connected => continue,
                exotel_stream::Inbound::Start { start, .. } => {
                    break Started {
                        stream_sid: start.stream_sid,
                        params: start.custom_parameters,
                        exotel_rate: Some(start.media_format.sample_rate),
                    };
                }
                _ => return Err(End::Refused("audio before start")),
            },
        }
    };
    let claims = verify(state, &started.params)?;
    let live_transcript = crate::session::wants_live_transcript(&started.params);
    let link = match started.exotel_rate {
        None => Link::Twilio {
            stream_sid: started.stream_sid,
        },
        Some(rate) => Link::Exotel {
            stream_sid: started.stream_sid,
            rate,
        },
    };
    Ok((
        claims,
        Admitted::Audio {
            link,
            live_transcript,
        },
    ))
}

/// Checks the stream token in a stream's custom parameters: minted by the webhook for
/// this call (and tenant), and not expired.
fn verify(
    state: &MediaState,
    params: &std::collections::BTreeMap<String, String>,
) -> Result<StreamClaims, End> {
    let param = |name: &str| params.get(name).map(String::as_str);
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

/// An admitted stream with no conversation behind it: every frame is read and checked
/// until the stream stops or breaks.
async fn listen(socket: &mut WebSocket, state: &MediaState, carrier: Carrier) -> End {
    // One buffer for the whole call: no allocation per frame.
    let mut audio = Vec::with_capacity(640);
    loop {
        let text = match next_text(socket).await {
            Ok(text) => text,
            Err(end) => return end,
        };
        let media = match carrier {
            Carrier::Twilio => match twilio_stream::parse(text.as_str()) {
                Ok(Inbound::Media { media, .. }) => media.decode_payload_into(&mut audio),
                Ok(Inbound::Stop { .. }) => return End::Stopped,
                Ok(Inbound::Start { .. } | Inbound::Connected { .. }) => {
                    return End::Malformed("a second start".into());
                }
                Ok(Inbound::Mark { .. } | Inbound::Dtmf { .. }) => continue,
                Err(e) => return End::Malformed(e.to_string()),
            },
            Carrier::Exotel => match exotel_stream::parse(text.as_str()) {
                Ok(exotel_stream::Inbound::Media { media, .. }) => {
                    media.decode_payload_into(&mut audio)
                }
                Ok(exotel_stream::Inbound::Stop { .. }) => return End::Stopped,
                Ok(exotel_stream::Inbound::Start { .. } | exotel_stream::Inbound::Connected) => {
                    return End::Malformed("a second start".into());
                }
                Ok(_) => continue,
                Err(e) => return End::Malformed(e.to_string()),
            },
            // Text only: each message is checked, none is counted as audio.
            Carrier::TwilioRelay => match relay_stream::parse(text.as_str()) {
                Ok(relay_stream::Inbound::Setup(_)) => {
                    return End::Malformed("a second setup".into());
                }
                Ok(_) => continue,
                Err(e) => return End::Malformed(e.to_string()),
            },
        };
        if let Err(e) = media {
            return End::Malformed(e.to_string());
        }
        state.metrics.frames_in.inc();
    }
}
