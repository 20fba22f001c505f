//! What the local text-to-speech servers ([`crate::elevenlabs`], [`crate::cartesia`],
//! [`crate::openai_speech`]) share: the audio they make, how they stream it, the
//! failures tests can ask for, and the record of what they were asked.
//!
//! The audio is a 440 Hz tone lasting [`MS_PER_CHAR`] per character of the text (divided
//! by the requested speed), so a test can tell from the audio's length alone that the
//! whole text was spoken, and can compute the exact bytes with [`audio`].

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::stream;

use crate::loopback::{Served, serve, settle};

/// Milliseconds of audio per character of text, at speed 1.
pub const MS_PER_CHAR: u32 = 60;
/// The tone's pitch.
pub const TONE_HZ: f64 = 440.0;
/// The tone's peak, about a quarter of full scale.
pub const TONE_AMPLITUDE: f64 = 8_000.0;

/// How the servers encode the tone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// G.711 μ-law, one byte a sample.
    Mulaw,
    /// 16-bit signed little-endian PCM.
    Linear16,
}

/// How many samples the servers make for `text` at `sample_rate` and `speed`.
pub fn samples_for(text: &str, sample_rate: u32, speed: f64) -> usize {
    let chars = text.chars().count() as f64;
    let speed = if speed > 0.0 { speed } else { 1.0 };
    (chars * f64::from(MS_PER_CHAR) * f64::from(sample_rate) / 1000.0 / speed).round() as usize
}

/// The tone the servers speak for `text`, as 16-bit samples.
pub fn tone(text: &str, sample_rate: u32, speed: f64) -> Vec<i16> {
    let step = 2.0 * std::f64::consts::PI * TONE_HZ / f64::from(sample_rate.max(1));
    (0..samples_for(text, sample_rate, speed))
        .map(|i| (TONE_AMPLITUDE * (step * i as f64).sin()).round() as i16)
        .collect()
}

/// The exact bytes the servers stream for `text`.
pub fn audio(text: &str, encoding: Encoding, sample_rate: u32, speed: f64) -> Vec<u8> {
    let samples = tone(text, sample_rate, speed);
    match encoding {
        Encoding::Mulaw => samples.iter().map(|&s| ulaw_encode(s)).collect(),
        Encoding::Linear16 => samples.iter().flat_map(|s| s.to_le_bytes()).collect(),
    }
}

/// G.711 μ-law, the classic way: bias, find the segment, keep four bits of step,
/// invert. Written out here so the servers do not share the client's own codec.
pub fn ulaw_encode(sample: i16) -> u8 {
    const BIAS: i32 = 0x84;
    const CLIP: i32 = 32_635;
    let mut magnitude = i32::from(sample);
    let sign = if magnitude < 0 {
        magnitude = -magnitude;
        0x80
    } else {
        0
    };
    let biased = magnitude.min(CLIP) + BIAS;
    // `biased` is at least 0x84, so its top bit is bit 7 to 14: segment 0 to 7.
    let segment = (31 - biased.leading_zeros() as i32) - 7;
    let step = (biased >> (segment + 3)) & 0x0F;
    !((sign | (segment << 4) | step) as u8)
}

/// How a streamed answer ended, as the server saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// Still sending.
    Streaming,
    /// Every byte was handed over and the body ended properly.
    Completed,
    /// The server cut the body on purpose ([`SpeechServer::cut_next`]).
    Cut,
    /// The client went away before the end.
    Abandoned,
}

/// One request as the server received it.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub path: String,
    pub query: Option<String>,
    /// Every header, by lower-case name.
    pub headers: BTreeMap<String, String>,
    /// The JSON body; `Null` when it was not JSON.
    pub body: serde_json::Value,
    /// The status answered.
    pub status: u16,
    /// The audio's full length, when the answer was audio.
    pub audio_len: usize,
    /// Audio bytes handed to the connection so far.
    pub bytes_sent: usize,
    /// `None` when the answer was an error.
    pub end: Option<StreamEnd>,
}

impl RecordedRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

struct Settings {
    first_byte_delay: Duration,
    chunk_delay: Duration,
    chunk_bytes: usize,
    /// Statuses to answer the next requests with, one each.
    failures: VecDeque<u16>,
    cuts: usize,
}

struct Inner {
    requests: Vec<RecordedRequest>,
    settings: Settings,
}

/// The state a vendor's handlers share with its [`SpeechServer`].
#[derive(Clone)]
pub(crate) struct Shared {
    key: Arc<str>,
    inner: Arc<Mutex<Inner>>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A handler that panicked mid-update leaves nothing half-done worth refusing.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn key(&self) -> &str {
        &self.key
    }

    /// Records a request; returns its index.
    pub(crate) fn record(&self, uri: &Uri, headers: &HeaderMap, body: &[u8]) -> usize {
        let headers = headers
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
        let mut inner = self.lock();
        inner.requests.push(RecordedRequest {
            path: uri.path().to_owned(),
            query: uri.query().map(str::to_owned),
            headers,
            body,
            status: 0,
            audio_len: 0,
            bytes_sent: 0,
            end: None,
        });
        inner.requests.len() - 1
    }

    /// The status to fail this request with, if a test asked for failures.
    pub(crate) fn take_failure(&self) -> Option<u16> {
        self.lock().settings.failures.pop_front()
    }

    /// An error answer with a JSON body in the vendor's shape.
    pub(crate) fn error(&self, index: usize, status: u16, body: serde_json::Value) -> Response {
        if let Some(request) = self.lock().requests.get_mut(index) {
            request.status = status;
        }
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(body)).into_response()
    }

    /// A 200 whose body streams `audio` in chunks, after the configured delays.
    pub(crate) fn stream(
        &self,
        index: usize,
        audio: Vec<u8>,
        content_type: &'static str,
    ) -> Response {
        let (first_byte_delay, chunk_delay, chunk_bytes, cut) = {
            let mut inner = self.lock();
            let cut = inner.settings.cuts > 0;
            if cut {
                inner.settings.cuts -= 1;
            }
            if let Some(request) = inner.requests.get_mut(index) {
                request.status = 200;
                request.audio_len = audio.len();
                request.end = Some(StreamEnd::Streaming);
            }
            let s = &inner.settings;
            (s.first_byte_delay, s.chunk_delay, s.chunk_bytes.max(1), cut)
        };
        // A cut comes after about half the audio, on a chunk boundary, and never
        // before the first chunk: the client must have heard something first.
        let cut_at = cut.then(|| ((audio.len() / 2) / chunk_bytes).max(1) * chunk_bytes);
        let feed = Feed {
            audio: Bytes::from(audio),
            pos: 0,
            cut_at,
            first: true,
            done: false,
            first_byte_delay,
            chunk_delay,
            chunk_bytes,
            guard: EndGuard {
                shared: self.clone(),
                index,
                ended: false,
            },
        };
        let body = stream::unfold(feed, |mut feed| async move {
            if feed.done {
                return None;
            }
            let delay = if feed.first {
                feed.first_byte_delay
            } else {
                feed.chunk_delay
            };
            feed.first = false;
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if feed.cut_at.is_some_and(|at| feed.pos >= at) {
                feed.done = true;
                feed.guard.end(StreamEnd::Cut);
                return Some((Err(std::io::Error::other("cut on purpose")), feed));
            }
            if feed.pos >= feed.audio.len() {
                feed.guard.end(StreamEnd::Completed);
                return None;
            }
            let end = (feed.pos + feed.chunk_bytes).min(feed.audio.len());
            let chunk = feed.audio.slice(feed.pos..end);
            feed.pos = end;
            feed.guard.sent(end);
            Some((Ok(chunk), feed))
        });
        Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, content_type)
            .body(Body::from_stream(body))
            .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
    }
}

struct Feed {
    audio: Bytes,
    pos: usize,
    cut_at: Option<usize>,
    first: bool,
    done: bool,
    first_byte_delay: Duration,
    chunk_delay: Duration,
    chunk_bytes: usize,
    guard: EndGuard,
}

/// Notes how a stream ended; dropped unfinished, it was abandoned by the client.
struct EndGuard {
    shared: Shared,
    index: usize,
    ended: bool,
}

impl EndGuard {
    fn sent(&self, bytes: usize) {
        if let Some(request) = self.shared.lock().requests.get_mut(self.index) {
            request.bytes_sent = bytes;
        }
    }

    fn end(&mut self, end: StreamEnd) {
        self.ended = true;
        if let Some(request) = self.shared.lock().requests.get_mut(self.index) {
            request.end = Some(end);
        }
    }
}

impl Drop for EndGuard {
    fn drop(&mut self) {
        if !self.ended {
            self.end(StreamEnd::Abandoned);
        }
    }
}

/// A running local speech server. Stops when dropped.
pub struct SpeechServer {
    served: Served,
    base_path: &'static str,
    shared: Shared,
}

impl SpeechServer {
    pub(crate) async fn start(
        key: &str,
        base_path: &'static str,
        chunk_bytes: usize,
        routes: impl FnOnce(Shared) -> Router,
    ) -> std::io::Result<SpeechServer> {
        let shared = Shared {
            key: Arc::from(key),
            inner: Arc::new(Mutex::new(Inner {
                requests: Vec::new(),
                settings: Settings {
                    first_byte_delay: Duration::ZERO,
                    chunk_delay: Duration::from_millis(2),
                    chunk_bytes,
                    failures: VecDeque::new(),
                    cuts: 0,
                },
            })),
        };
        let served = serve(routes(shared.clone())).await?;
        Ok(SpeechServer {
            served,
            base_path,
            shared,
        })
    }

    /// The base URL a client is pointed at.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.served.addr, self.base_path)
    }

    /// The one key the server accepts.
    pub fn key(&self) -> &str {
        self.shared.key()
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// Answers the next `count` requests (that pass the key and field checks) with
    /// `status` and the vendor's error body.
    pub fn fail_next(&self, status: u16, count: usize) {
        let mut inner = self.shared.lock();
        inner
            .settings
            .failures
            .extend(std::iter::repeat_n(status, count));
    }

    /// Cuts the next `count` audio answers after about half their audio, without
    /// ending the body properly.
    pub fn cut_next(&self, count: usize) {
        self.shared.lock().settings.cuts += count;
    }

    /// Wait before the first chunk of audio.
    pub fn set_first_byte_delay(&self, delay: Duration) {
        self.shared.lock().settings.first_byte_delay = delay;
    }

    /// Wait between chunks of audio.
    pub fn set_chunk_delay(&self, delay: Duration) {
        self.shared.lock().settings.chunk_delay = delay;
    }

    /// Bytes per chunk of audio.
    pub fn set_chunk_bytes(&self, bytes: usize) {
        self.shared.lock().settings.chunk_bytes = bytes.max(1);
    }

    /// Waits (up to `within`) until request `index`'s stream has ended; returns how
    /// it ended, or `Streaming` if it is still going.
    pub async fn wait_for_end(&self, index: usize, within: Duration) -> Option<StreamEnd> {
        let end = || self.shared.lock().requests.get(index).and_then(|r| r.end);
        settle(within, end, |end| *end != Some(StreamEnd::Streaming)).await
    }
}

/// The bearer token of an `Authorization` header, if that is what it holds.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

/// A header's value as text.
pub(crate) fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name)?.to_str().ok()
}

/// The value of `name` in a query string (the values these servers read are never
/// percent-encoded).
pub(crate) fn query_param<'q>(query: Option<&'q str>, name: &str) -> Option<&'q str> {
    query?
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tone_lasts_sixty_ms_a_character() {
        assert_eq!(samples_for("hello", 8_000, 1.0), 5 * 480);
        assert_eq!(samples_for("hello", 24_000, 2.0), 5 * 720);
        assert_eq!(
            audio("ab", Encoding::Linear16, 24_000, 1.0).len(),
            2 * 1440 * 2
        );
    }

    #[test]
    fn ulaw_matches_known_codes() {
        assert_eq!(ulaw_encode(0), 0xFF);
        assert_eq!(ulaw_encode(32_767), 0x80);
        assert_eq!(ulaw_encode(-32_768), 0x00);
        assert_eq!(ulaw_encode(-1), 0x7F);
    }
}
