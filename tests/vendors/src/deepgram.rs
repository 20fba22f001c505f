//! A local Deepgram live-transcription server: `GET /v1/listen` upgraded to a WebSocket,
//! as Deepgram's streaming API takes it (`Authorization: Token <key>`, options in the
//! query, 16-bit PCM up as binary frames, JSON messages down).
//!
//! It "recognises" by energy: every 20 ms frame whose RMS is above [`SPEECH_RMS`] is
//! speech. At the onset of speech it sends `SpeechStarted`; while speech goes on,
//! interim `Results`; when `endpointing` ms of silence follow speech, a final `Results`
//! (`is_final` and `speech_final`) carrying the next phrase of the script, with `start`
//! and `duration` taken from the audio, then `UtteranceEnd`. `CloseStream` finalises
//! any speech in progress, sends `Metadata` and closes; `KeepAlive` keeps an idle
//! stream open, which otherwise closes after [`Behaviour::idle_timeout`] as Deepgram
//! does after 10 s.
//!
//! [`Behaviour`] makes it misbehave: refuse the handshake with a status, drop the socket
//! after some finals, or send garbage instead of a final.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::loopback::{Served, serve, settle};

/// The one key the server accepts.
pub const KEY: &str = "dg-local-key-0123456789abcdef";
/// The RMS (of 32 768) above which a 20 ms frame counts as speech: about -36 dBFS.
pub const SPEECH_RMS: f64 = 500.0;
/// The length of the frames judged speech or silence.
pub const FRAME_MS: u32 = 20;
/// The first interim comes after this much speech, the next ones every
/// [`INTERIM_EVERY_MS`].
pub const FIRST_INTERIM_MS: u32 = 100;
pub const INTERIM_EVERY_MS: u32 = 500;

/// How the server misbehaves, for tests of the client's failures.
#[derive(Clone, Debug)]
pub struct Behaviour {
    /// Refuse every handshake with this status (after the key check), with Deepgram's
    /// error body.
    pub refuse_with: Option<u16>,
    /// Drop the socket, with no close frame, right after this many finals.
    pub drop_after_finals: Option<usize>,
    /// Send a text frame that is not JSON where the first final would go.
    pub garbage_instead_of_final: bool,
    /// Close (1011, `NET-0001`) after this long with neither audio nor `KeepAlive`.
    pub idle_timeout: Duration,
}

impl Default for Behaviour {
    fn default() -> Behaviour {
        Behaviour {
            refuse_with: None,
            drop_after_finals: None,
            garbage_instead_of_final: false,
            idle_timeout: Duration::from_secs(10),
        }
    }
}

/// One connection attempt, as the server saw it.
#[derive(Clone, Debug, Default)]
pub struct Connection {
    /// The query parameters, decoded.
    pub query: BTreeMap<String, String>,
    /// The `Authorization` header, as sent.
    pub authorization: Option<String>,
    /// 101 when the socket opened, else the status it was refused with.
    pub status: u16,
    /// Audio received, in bytes.
    pub audio_bytes: usize,
    pub keep_alives: usize,
    pub close_stream: bool,
    pub finalizes: usize,
    /// The text of each final sent, in order.
    pub finals: Vec<String>,
    /// Interim results sent.
    pub interims: usize,
    /// The server closed because nothing came for [`Behaviour::idle_timeout`].
    pub idle_closed: bool,
    /// The socket is gone (either side closed or it dropped).
    pub ended: bool,
}

struct Inner {
    connections: Vec<Connection>,
    script: VecDeque<String>,
    finals_said: usize,
}

#[derive(Clone)]
struct Shared {
    behaviour: Arc<Behaviour>,
    inner: Arc<Mutex<Inner>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A session that panicked mid-update leaves nothing half-done worth refusing.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn update(&self, index: usize, change: impl FnOnce(&mut Connection)) {
        if let Some(connection) = self.lock().connections.get_mut(index) {
            change(connection);
        }
    }

    /// The phrase the next final will carry, without taking it.
    fn peek_phrase(&self) -> String {
        let inner = self.lock();
        match inner.script.front() {
            Some(phrase) => phrase.clone(),
            None => fallback(inner.finals_said),
        }
    }

    fn take_phrase(&self) -> String {
        let mut inner = self.lock();
        let said = inner.finals_said;
        inner.finals_said += 1;
        inner.script.pop_front().unwrap_or_else(|| fallback(said))
    }
}

/// What the server says once the script has run out.
fn fallback(said: usize) -> String {
    format!("utterance {}", said + 1)
}

/// A running local Deepgram. Stops when dropped.
pub struct Deepgram {
    served: Served,
    shared: Shared,
}

/// A well-behaved server whose finals say `script`, in order, across all connections.
pub async fn start(script: Vec<String>) -> std::io::Result<Deepgram> {
    start_with(script, Behaviour::default()).await
}

pub async fn start_with(script: Vec<String>, behaviour: Behaviour) -> std::io::Result<Deepgram> {
    let shared = Shared {
        behaviour: Arc::new(behaviour),
        inner: Arc::new(Mutex::new(Inner {
            connections: Vec::new(),
            script: script.into(),
            finals_said: 0,
        })),
    };
    let app = Router::new()
        .route("/v1/listen", get(listen))
        .with_state(shared.clone());
    let served = serve(app).await?;
    Ok(Deepgram { served, shared })
}

impl Deepgram {
    /// The base URL a client is pointed at (`ws://127.0.0.1:port`).
    pub fn url(&self) -> String {
        format!("ws://{}", self.served.addr)
    }

    /// The one key the server accepts.
    pub fn key(&self) -> &str {
        KEY
    }

    /// Every connection attempt so far, in order.
    pub fn connections(&self) -> Vec<Connection> {
        self.shared.lock().connections.clone()
    }

    /// Waits (up to `within`) until connection `index` has ended; returns whether it has.
    pub async fn wait_ended(&self, index: usize, within: Duration) -> bool {
        let ended = || {
            let inner = self.shared.lock();
            inner.connections.get(index).is_some_and(|c| c.ended)
        };
        settle(within, ended, |ended| *ended).await
    }
}

/// An HTTP refusal with Deepgram's error body.
fn refuse(status: u16, code: &str, message: &str) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (
        status,
        axum::Json(json!({
            "err_code": code,
            "err_msg": message,
            "request_id": "00000000-0000-4000-8000-000000000000",
        })),
    )
        .into_response()
}

async fn listen(
    State(shared): State<Shared>,
    Query(query): Query<BTreeMap<String, String>>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let index = {
        let mut inner = shared.lock();
        inner.connections.push(Connection {
            query: query.clone(),
            authorization: authorization.clone(),
            ..Connection::default()
        });
        inner.connections.len() - 1
    };
    let refused = |status: u16, code: &str, message: &str| {
        shared.update(index, |c| {
            c.status = status;
            c.ended = true;
        });
        refuse(status, code, message)
    };

    if authorization.as_deref() != Some(format!("Token {KEY}").as_str()) {
        return refused(401, "INVALID_AUTH", "Invalid credentials.");
    }
    if let Some(status) = shared.behaviour.refuse_with {
        let (code, message) = match status {
            429 => (
                "TOO_MANY_REQUESTS",
                "Too many requests. Please try again later.",
            ),
            s if s >= 500 => ("INTERNAL_SERVER_ERROR", "Something went wrong."),
            _ => ("Bad Request", "Refused on purpose."),
        };
        return refused(status, code, message);
    }
    if query.get("encoding").map(String::as_str) != Some("linear16") {
        return refused(
            400,
            "Bad Request",
            "This server only takes encoding=linear16.",
        );
    }
    let Some(sample_rate) = query
        .get("sample_rate")
        .and_then(|r| r.parse::<u32>().ok())
        .filter(|r| (8_000..=48_000).contains(r))
    else {
        return refused(400, "Bad Request", "sample_rate is required for raw audio.");
    };
    if query.get("channels").is_some_and(|c| c != "1") {
        return refused(400, "Bad Request", "This server only takes channels=1.");
    }
    // Deepgram's default is 10 ms; `false` turns endpointing off.
    let endpointing_ms = match query.get("endpointing").map(String::as_str) {
        None => Some(10),
        Some("false") => None,
        Some(ms) => match ms.parse::<u32>() {
            Ok(ms) => Some(ms),
            Err(_) => return refused(400, "Bad Request", "endpointing must be a number."),
        },
    };
    let model = query
        .get("model")
        .cloned()
        .unwrap_or_else(|| "base".to_owned());
    shared.update(index, |c| c.status = 101);
    upgrade.on_upgrade(move |socket| async move {
        let session = Session {
            shared: shared.clone(),
            index,
            model,
            request_id: format!("00000000-0000-4000-8000-{:012x}", index + 1),
            recogniser: Recogniser::new(sample_rate, endpointing_ms),
            finals_sent: 0,
            heard: Vec::new(),
        };
        session.run(socket).await;
        shared.update(index, |c| c.ended = true);
    })
}

/// What the energy detector noticed, in seconds of the stream's audio.
#[derive(Debug, PartialEq)]
enum Heard {
    SpeechStarted {
        at: f64,
    },
    /// Speech is going on; `nth` counts this utterance's interims from 0.
    Interim {
        start: f64,
        end: f64,
        nth: usize,
    },
    /// Speech ended with enough silence after it.
    Ended {
        start: f64,
        end: f64,
    },
}

/// The energy detector: 20 ms frames, speech above [`SPEECH_RMS`].
struct Recogniser {
    frame_samples: u32,
    endpointing_frames: Option<u32>,
    /// An odd byte left from the last chunk.
    odd_byte: Option<u8>,
    sum_squares: f64,
    in_frame: u32,
    frames: u64,
    /// Frame indexes of the utterance under way: where it began and its last voiced frame.
    utterance: Option<(u64, u64)>,
    voiced_frames: u32,
    silent_frames: u32,
    interims: usize,
}

impl Recogniser {
    fn new(sample_rate: u32, endpointing_ms: Option<u32>) -> Recogniser {
        Recogniser {
            frame_samples: (sample_rate * FRAME_MS / 1000).max(1),
            endpointing_frames: endpointing_ms.map(|ms| ms.div_ceil(FRAME_MS).max(1)),
            odd_byte: None,
            sum_squares: 0.0,
            in_frame: 0,
            frames: 0,
            utterance: None,
            voiced_frames: 0,
            silent_frames: 0,
            interims: 0,
        }
    }

    fn seconds(frames: u64) -> f64 {
        frames as f64 * f64::from(FRAME_MS) / 1000.0
    }

    /// Seconds of audio heard so far.
    fn duration(&self) -> f64 {
        Self::seconds(self.frames)
    }

    fn feed(&mut self, mut bytes: &[u8], heard: &mut Vec<Heard>) {
        if let Some(low) = self.odd_byte.take()
            && let Some((&high, rest)) = bytes.split_first()
        {
            self.sample(i16::from_le_bytes([low, high]), heard);
            bytes = rest;
        }
        let mut pairs = bytes.chunks_exact(2);
        for pair in &mut pairs {
            self.sample(i16::from_le_bytes([pair[0], pair[1]]), heard);
        }
        self.odd_byte = pairs.remainder().first().copied();
    }

    fn sample(&mut self, sample: i16, heard: &mut Vec<Heard>) {
        let s = f64::from(sample);
        self.sum_squares += s * s;
        self.in_frame += 1;
        if self.in_frame == self.frame_samples {
            let rms = (self.sum_squares / f64::from(self.in_frame)).sqrt();
            self.sum_squares = 0.0;
            self.in_frame = 0;
            self.frame(rms > SPEECH_RMS, heard);
        }
    }

    fn frame(&mut self, voiced: bool, heard: &mut Vec<Heard>) {
        let index = self.frames;
        self.frames += 1;
        if voiced {
            let start = match &mut self.utterance {
                Some((start, last)) => {
                    *last = index;
                    *start
                }
                None => {
                    self.utterance = Some((index, index));
                    self.voiced_frames = 0;
                    self.interims = 0;
                    heard.push(Heard::SpeechStarted {
                        at: Self::seconds(index),
                    });
                    index
                }
            };
            self.silent_frames = 0;
            self.voiced_frames += 1;
            let voiced_ms = self.voiced_frames * FRAME_MS;
            if voiced_ms == FIRST_INTERIM_MS
                || (voiced_ms > FIRST_INTERIM_MS
                    && (voiced_ms - FIRST_INTERIM_MS).is_multiple_of(INTERIM_EVERY_MS))
            {
                heard.push(Heard::Interim {
                    start: Self::seconds(start),
                    end: Self::seconds(index + 1),
                    nth: self.interims,
                });
                self.interims += 1;
            }
        } else if self.utterance.is_some() {
            self.silent_frames += 1;
            if self
                .endpointing_frames
                .is_some_and(|frames| self.silent_frames >= frames)
                && let Some(ended) = self.end_utterance()
            {
                heard.push(ended);
            }
        }
    }

    /// Ends the utterance under way, if any (on endpointing, `Finalize` or `CloseStream`).
    fn end_utterance(&mut self) -> Option<Heard> {
        let (start, last) = self.utterance.take()?;
        self.silent_frames = 0;
        Some(Heard::Ended {
            start: Self::seconds(start),
            end: Self::seconds(last + 1),
        })
    }
}

/// One open stream.
struct Session {
    shared: Shared,
    index: usize,
    model: String,
    request_id: String,
    recogniser: Recogniser,
    finals_sent: usize,
    heard: Vec<Heard>,
}

/// How a session ends.
enum End {
    /// Close properly with this code and reason.
    Close(u16, &'static str),
    /// Drop the socket with no close frame.
    Drop,
    /// The client is gone.
    Gone,
}

impl Session {
    async fn run(mut self, mut socket: WebSocket) {
        let end = self.serve(&mut socket).await;
        match end {
            End::Close(code, reason) => {
                let _ = socket
                    .send(Message::Close(Some(CloseFrame {
                        code,
                        reason: reason.into(),
                    })))
                    .await;
                // Let the client answer the close, as a real server would wait for it.
                let _ = tokio::time::timeout(Duration::from_secs(2), async {
                    while let Some(Ok(_)) = socket.recv().await {}
                })
                .await;
            }
            End::Drop => {
                // Keep reading a moment first: closing a socket with unread audio in it
                // resets the connection, and a reset can discard the results just
                // sent before the client has read them.
                let _ = tokio::time::timeout(Duration::from_millis(200), async {
                    while let Some(Ok(_)) = socket.recv().await {}
                })
                .await;
                drop(socket);
            }
            End::Gone => drop(socket),
        }
    }

    async fn serve(&mut self, socket: &mut WebSocket) -> End {
        let idle = self.shared.behaviour.idle_timeout;
        loop {
            let message = match tokio::time::timeout(idle, socket.recv()).await {
                Err(_) => {
                    self.shared.update(self.index, |c| c.idle_closed = true);
                    return End::Close(
                        1011,
                        "Deepgram did not receive audio data or a text message within the timeout window. See https://dpgr.am/net0001",
                    );
                }
                Ok(None | Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => return End::Gone,
                Ok(Some(Ok(message))) => message,
            };
            match message {
                Message::Binary(audio) => {
                    self.shared
                        .update(self.index, |c| c.audio_bytes += audio.len());
                    self.recogniser.feed(&audio, &mut self.heard);
                }
                Message::Text(text) => {
                    let kind = serde_json::from_str::<serde_json::Value>(text.as_str())
                        .ok()
                        .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned));
                    match kind.as_deref() {
                        Some("KeepAlive") => {
                            self.shared.update(self.index, |c| c.keep_alives += 1);
                        }
                        Some("Finalize") => {
                            self.shared.update(self.index, |c| c.finalizes += 1);
                            if let Some(ended) = self.recogniser.end_utterance() {
                                self.heard.push(ended);
                            }
                            if let Some(end) = self.say_heard(socket, false).await {
                                return end;
                            }
                        }
                        Some("CloseStream") => {
                            self.shared.update(self.index, |c| c.close_stream = true);
                            if let Some(ended) = self.recogniser.end_utterance() {
                                self.heard.push(ended);
                            }
                            if let Some(end) = self.say_heard(socket, false).await {
                                return end;
                            }
                            let metadata = self.metadata();
                            if socket.send(Message::Text(metadata.into())).await.is_err() {
                                return End::Gone;
                            }
                            return End::Close(1000, "");
                        }
                        _ => {
                            return End::Close(1008, "DATA-0000: unrecognised text message");
                        }
                    }
                }
                // Pings are answered by axum.
                _ => {}
            }
            if let Some(end) = self.say_heard(socket, true).await {
                return end;
            }
        }
    }

    /// Sends what the detector noticed; `Some` when the session must end.
    /// `by_endpointing` tells a final ended by silence from one flushed by the client.
    async fn say_heard(&mut self, socket: &mut WebSocket, by_endpointing: bool) -> Option<End> {
        for heard in std::mem::take(&mut self.heard) {
            let (message, is_final) = match heard {
                Heard::SpeechStarted { at } => (
                    json!({"type": "SpeechStarted", "channel": [0, 1], "timestamp": at}),
                    false,
                ),
                Heard::Interim { start, end, nth } => {
                    let phrase = self.shared.peek_phrase();
                    let words: Vec<&str> = phrase.split_whitespace().take(nth + 1).collect();
                    self.shared.update(self.index, |c| c.interims += 1);
                    (
                        self.results(&words.join(" "), start, end, false, false),
                        false,
                    )
                }
                Heard::Ended { start, end } => {
                    if self.shared.behaviour.garbage_instead_of_final && self.finals_sent == 0 {
                        self.finals_sent += 1;
                        let garbage = "{\"type\": \"Results\", \"channel\": {oops";
                        if socket.send(Message::Text(garbage.into())).await.is_err() {
                            return Some(End::Gone);
                        }
                        continue;
                    }
                    let phrase = self.shared.take_phrase();
                    let results = self.results(&phrase, start, end, true, by_endpointing);
                    self.shared
                        .update(self.index, |c| c.finals.push(phrase.clone()));
                    (results, true)
                }
            };
            if socket
                .send(Message::Text(message.to_string().into()))
                .await
                .is_err()
            {
                return Some(End::Gone);
            }
            if is_final {
                self.finals_sent += 1;
                if by_endpointing {
                    let end = json!({
                        "type": "UtteranceEnd",
                        "channel": [0, 1],
                        "last_word_end": self.recogniser.duration(),
                    });
                    if socket
                        .send(Message::Text(end.to_string().into()))
                        .await
                        .is_err()
                    {
                        return Some(End::Gone);
                    }
                }
                if self
                    .shared
                    .behaviour
                    .drop_after_finals
                    .is_some_and(|n| self.finals_sent >= n)
                {
                    return Some(End::Drop);
                }
            }
        }
        None
    }

    /// A `Results` message, the words spread evenly over the speech.
    fn results(
        &self,
        transcript: &str,
        start: f64,
        end: f64,
        is_final: bool,
        speech_final: bool,
    ) -> serde_json::Value {
        let words: Vec<&str> = transcript.split_whitespace().collect();
        let each = (end - start) / words.len().max(1) as f64;
        let words: Vec<serde_json::Value> = words
            .iter()
            .enumerate()
            .map(|(i, word)| {
                let bare: String = word
                    .chars()
                    .filter(|c| c.is_alphanumeric() || *c == '\'')
                    .collect::<String>()
                    .to_lowercase();
                json!({
                    "word": bare,
                    "start": start + each * i as f64,
                    "end": start + each * (i + 1) as f64,
                    "confidence": 0.98,
                    "punctuated_word": word,
                })
            })
            .collect();
        json!({
            "type": "Results",
            "channel_index": [0, 1],
            "duration": end - start,
            "start": start,
            "is_final": is_final,
            "speech_final": speech_final,
            "from_finalize": false,
            "channel": {
                "alternatives": [{
                    "transcript": transcript,
                    "confidence": if transcript.is_empty() { 0.0 } else { 0.98 },
                    "words": words,
                }]
            },
            "metadata": {
                "request_id": self.request_id,
                "model_info": {"name": self.model, "version": "local", "arch": self.model},
                "model_uuid": "00000000-0000-4000-8000-00000000feed",
            },
        })
    }

    fn metadata(&self) -> String {
        json!({
            "type": "Metadata",
            "transaction_key": "deprecated",
            "request_id": self.request_id,
            "sha256": "0000000000000000000000000000000000000000000000000000000000000000",
            "created": "2026-01-01T00:00:00.000Z",
            "duration": self.recogniser.duration(),
            "channels": 1,
            "models": ["00000000-0000-4000-8000-00000000feed"],
            "model_info": {
                "00000000-0000-4000-8000-00000000feed": {
                    "name": self.model, "version": "local", "arch": self.model
                }
            },
        })
        .to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pcm(pattern: &[(bool, u32)], rate: u32) -> Vec<u8> {
        let mut out = Vec::new();
        for &(loud, ms) in pattern {
            for i in 0..rate * ms / 1000 {
                let s: i16 = if loud && i % 2 == 0 {
                    4000
                } else if loud {
                    -4000
                } else {
                    0
                };
                out.extend_from_slice(&s.to_le_bytes());
            }
        }
        out
    }

    #[test]
    fn speech_then_silence_is_an_utterance_with_its_times() {
        let mut r = Recogniser::new(8_000, Some(200));
        let mut heard = Vec::new();
        let audio = pcm(&[(false, 100), (true, 300), (false, 300)], 8_000);
        // Odd-sized pieces: samples split across chunks must still be read right.
        for piece in audio.chunks(77) {
            r.feed(piece, &mut heard);
        }
        assert_eq!(heard.first(), Some(&Heard::SpeechStarted { at: 0.1 }));
        assert!(
            heard
                .iter()
                .any(|h| matches!(h, Heard::Interim { nth: 0, .. }))
        );
        let ended: Vec<_> = heard
            .iter()
            .filter_map(|h| match h {
                Heard::Ended { start, end } => Some((*start, *end)),
                _ => None,
            })
            .collect();
        assert_eq!(ended.len(), 1);
        assert!((ended[0].0 - 0.1).abs() < 1e-9 && (ended[0].1 - 0.4).abs() < 1e-9);
    }

    #[test]
    fn short_silence_does_not_end_and_endpointing_off_never_does() {
        let audio = pcm(
            &[(true, 200), (false, 100), (true, 200), (false, 1000)],
            16_000,
        );
        let mut r = Recogniser::new(16_000, Some(300));
        let mut heard = Vec::new();
        r.feed(&audio, &mut heard);
        let ends = heard
            .iter()
            .filter(|h| matches!(h, Heard::Ended { .. }))
            .count();
        assert_eq!(ends, 1);
        let mut r = Recogniser::new(16_000, None);
        let mut heard = Vec::new();
        r.feed(&audio, &mut heard);
        assert!(!heard.iter().any(|h| matches!(h, Heard::Ended { .. })));
        assert!(r.end_utterance().is_some());
    }
}
