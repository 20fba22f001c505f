//! A simulated caller: the carrier's side of a bidirectional media stream, Twilio's
//! Media Streams or Exotel's voicebot stream ([`Dialect`]), written from the carriers'
//! documentation independently of the media task's own parsers.
//!
//! It sends `connected` and `start` (with the stream's custom parameters), then the
//! caller's audio in real time (silence between utterances, as carriers send): for
//! Twilio one 20 ms `media` frame of μ-law every 20 ms; for Exotel one frame of about
//! 100 ms of raw 16-bit little-endian PCM at the stream's rate every 100 ms, in
//! snake_case fields (`stream_sid`, `sequence_number`, `custom_parameters`,
//! `media_format`). Key presses go as `dtmf`, and `stop` hangs up.
//!
//! It plays the agent's audio as a phone would: a buffer drained in real time (8,000
//! μ-law bytes a second for Twilio, the stream's rate for Exotel); a `mark` is echoed
//! when the audio before it has played, and `clear` empties the buffer and echoes the
//! marks still in it at once. Frames a carrier would not accept (another stream's id,
//! a payload that is not base64, an Exotel chunk that is not a multiple of 320 bytes
//! or shorter than 100 ms) are noted in [`Heard::bad_frames`].

use std::collections::VecDeque;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

/// 20 ms of μ-law at 8 kHz.
pub const FRAME_BYTES: usize = 160;
/// μ-law silence.
pub const SILENCE: u8 = 0xFF;
/// Every Exotel outbound chunk must be a multiple of this many bytes (20 ms at 8 kHz).
pub const EXOTEL_CHUNK_MULTIPLE: usize = 320;
/// The caller's 20 ms frames in one Exotel `media` frame: about 100 ms.
const EXOTEL_FRAMES_PER_MESSAGE: u32 = 5;

/// What the caller does, in order.
#[derive(Clone, Debug)]
pub enum Step {
    /// Speak this μ-law 8 kHz audio (converted to the stream's PCM for Exotel).
    Say(Vec<u8>),
    /// Send silence for this long.
    Pause(Duration),
    /// Wait until the agent has spoken (since the step before this one ended) and then
    /// been quiet for `quiet` (or `within` passed), sending silence meanwhile.
    AwaitAgent { quiet: Duration, within: Duration },
    /// Wait until the agent's audio is playing (or `within` passed).
    AwaitAgentSpeaking { within: Duration },
    /// Press a key.
    Dtmf(char),
    /// Send this text frame as it is (a broken frame, to see how the server copes).
    Send(String),
    /// Hang up: send `stop` and close.
    HangUp,
    /// Vanish: the connection drops with neither `stop` nor a close frame, as when the
    /// carrier's side of the network fails.
    Vanish,
}

/// Who is calling and where.
#[derive(Clone, Debug)]
pub struct Dial {
    /// `ws://host:port/media/twilio` (or `/media/exotel`).
    pub url: String,
    pub stream_sid: String,
    pub call_sid: String,
    /// The stream's custom parameters (Twilio: the `<Parameter>`s of the TwiML
    /// `<Stream>`; Exotel: the stream URL's query): token, call_id, tenant_id.
    pub parameters: Vec<(String, String)>,
}

/// Which carrier's stream protocol the caller speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Dialect {
    /// Twilio Media Streams: camelCase fields, μ-law 8 kHz in 20 ms frames.
    #[default]
    Twilio,
    /// Exotel's voicebot stream at `rate` Hz (8000, 16000 or 24000): snake_case
    /// fields, base64 16-bit little-endian PCM in frames of about 100 ms.
    Exotel { rate: u32 },
}

impl Dialect {
    fn sid_key(self) -> &'static str {
        match self {
            Dialect::Twilio => "streamSid",
            Dialect::Exotel { .. } => "stream_sid",
        }
    }

    /// Bytes of the agent's audio a phone plays in 20 ms.
    fn play_bytes_per_tick(self) -> usize {
        match self {
            Dialect::Twilio => FRAME_BYTES,
            Dialect::Exotel { rate } => rate as usize / 50 * 2,
        }
    }

    /// The caller's 20 ms frames sent in one `media` frame.
    fn frames_per_message(self) -> u32 {
        match self {
            Dialect::Twilio => 1,
            Dialect::Exotel { .. } => EXOTEL_FRAMES_PER_MESSAGE,
        }
    }

    /// Why the carrier would not take an outbound media payload of `len` bytes.
    pub fn chunk_problem(self, len: usize) -> Option<String> {
        match self {
            Dialect::Twilio => (len == 0).then(|| "an empty media payload".to_owned()),
            Dialect::Exotel { rate } => {
                let min = rate as usize * 2 / 10;
                (len == 0 || !len.is_multiple_of(EXOTEL_CHUNK_MULTIPLE) || len < min).then(|| {
                    format!(
                        "a {len}-byte chunk at {rate} Hz: Exotel wants a multiple of \
                         {EXOTEL_CHUNK_MULTIPLE} bytes and at least 100 ms ({min} bytes)"
                    )
                })
            }
        }
    }
}

/// What the caller heard and saw.
#[derive(Debug, Default)]
pub struct Heard {
    /// When each stretch of the agent's audio started and stopped playing, in ms
    /// since the stream started.
    pub played: Vec<(u64, u64)>,
    /// When `clear` arrived, in ms since the stream started.
    pub clears: Vec<u64>,
    /// Marks echoed, with whether they had played (false: cleared).
    pub marks: Vec<(String, bool)>,
    /// The close frame's code and reason, if the server closed.
    pub close: Option<(u16, String)>,
    /// The caller's utterances: when each started and ended being sent (ms).
    pub said: Vec<(u64, u64)>,
    /// The size of each `media` payload the agent sent, decoded, in order.
    pub media_bytes: Vec<usize>,
    /// Frames from the server the carrier would not accept, with why.
    pub bad_frames: Vec<String>,
    /// The socket error that ended the call, if it ended without a close frame.
    pub lost: Option<String>,
}

#[derive(Debug)]
pub enum CallerError {
    Connect(String),
    Socket(String),
}

impl std::fmt::Display for CallerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallerError::Connect(e) => write!(f, "cannot connect: {e}"),
            CallerError::Socket(e) => write!(f, "socket: {e}"),
        }
    }
}

impl std::error::Error for CallerError {}

/// The phone's playout of the agent's audio.
#[derive(Default)]
struct Playout {
    queue: VecDeque<Item>,
    playing_since: Option<u64>,
    quiet_since: u64,
    spoke: bool,
}

enum Item {
    Audio(Vec<u8>),
    Mark(String),
}

/// The carrier's frames, in its dialect, numbered in order.
struct Wire<'a> {
    dialect: Dialect,
    sid: &'a str,
    call_sid: &'a str,
    seq: u64,
}

impl Wire<'_> {
    fn next_seq(&mut self) -> String {
        self.seq += 1;
        self.seq.to_string()
    }

    fn connected(&self) -> Value {
        match self.dialect {
            Dialect::Twilio => {
                json!({"event": "connected", "protocol": "Call", "version": "1.0.0"})
            }
            Dialect::Exotel { .. } => json!({"event": "connected"}),
        }
    }

    fn start(&mut self, params: serde_json::Map<String, Value>) -> Value {
        let seq = self.next_seq();
        let (sid, call_sid) = (self.sid, self.call_sid);
        match self.dialect {
            Dialect::Twilio => json!({
                "event": "start", "sequenceNumber": seq, "streamSid": sid,
                "start": {
                    "streamSid": sid, "accountSid": "ACsimulated", "callSid": call_sid,
                    "tracks": ["inbound"], "customParameters": params,
                    "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
                }
            }),
            Dialect::Exotel { rate } => json!({
                "event": "start", "sequence_number": seq, "stream_sid": sid,
                "start": {
                    "stream_sid": sid, "call_sid": call_sid, "account_sid": "simulated",
                    "from": "+919800000001", "to": "+918000000002",
                    "custom_parameters": params,
                    "media_format": {"encoding": "audio/x-raw", "sample_rate": rate.to_string(), "bit_rate": "16"}
                }
            }),
        }
    }

    /// `chunk` counts media frames from 1; `payload` is `ms` ms of the caller's audio.
    fn media(&mut self, chunk: u64, ms: u64, payload: &[u8]) -> Value {
        let seq = self.next_seq();
        let timestamp = ((chunk - 1) * ms).to_string();
        let payload = STANDARD.encode(payload);
        match self.dialect {
            Dialect::Twilio => json!({
                "event": "media", "sequenceNumber": seq, "streamSid": self.sid,
                "media": {"track": "inbound", "chunk": chunk.to_string(),
                          "timestamp": timestamp, "payload": payload}
            }),
            Dialect::Exotel { .. } => json!({
                "event": "media", "sequence_number": seq, "stream_sid": self.sid,
                "media": {"chunk": chunk.to_string(), "timestamp": timestamp, "payload": payload}
            }),
        }
    }

    fn mark(&mut self, name: &str) -> Value {
        let seq = self.next_seq();
        match self.dialect {
            Dialect::Twilio => json!({
                "event": "mark", "sequenceNumber": seq, "streamSid": self.sid,
                "mark": {"name": name}
            }),
            Dialect::Exotel { .. } => json!({
                "event": "mark", "sequence_number": seq, "stream_sid": self.sid,
                "mark": {"name": name}
            }),
        }
    }

    fn dtmf(&mut self, digit: char) -> Value {
        let seq = self.next_seq();
        match self.dialect {
            Dialect::Twilio => json!({
                "event": "dtmf", "streamSid": self.sid, "sequenceNumber": seq,
                "dtmf": {"track": "inbound_track", "digit": digit.to_string()}
            }),
            Dialect::Exotel { .. } => json!({
                "event": "dtmf", "sequence_number": seq, "stream_sid": self.sid,
                "dtmf": {"digit": digit.to_string(), "duration": "100"}
            }),
        }
    }

    fn stop(&mut self) -> Value {
        let seq = self.next_seq();
        match self.dialect {
            Dialect::Twilio => json!({
                "event": "stop", "sequenceNumber": seq, "streamSid": self.sid,
                "stop": {"accountSid": "ACsimulated", "callSid": self.call_sid}
            }),
            Dialect::Exotel { .. } => json!({
                "event": "stop", "sequence_number": seq, "stream_sid": self.sid,
                "stop": {"call_sid": self.call_sid, "account_sid": "simulated", "reason": "callended"}
            }),
        }
    }
}

/// The caller's audio in the dialect's encoding, gathered into `media` frames.
struct Mouth {
    dialect: Dialect,
    /// Samples of the stream's rate per 8 kHz sample (Exotel at 16 kHz: 2).
    upsample: i32,
    /// The last 8 kHz sample, to interpolate from.
    last: i32,
    pending: Vec<u8>,
    frames: u32,
    chunk: u64,
}

impl Mouth {
    fn new(dialect: Dialect) -> Mouth {
        let upsample = match dialect {
            Dialect::Twilio => 1,
            Dialect::Exotel { rate } => (rate / 8_000).max(1) as i32,
        };
        Mouth {
            dialect,
            upsample,
            last: 0,
            pending: Vec::with_capacity(FRAME_BYTES * 2 * 3 * 5),
            frames: 0,
            chunk: 0,
        }
    }

    /// Adds a 20 ms μ-law frame; a frame to send once a whole message is gathered.
    fn push(&mut self, wire: &mut Wire<'_>, ulaw: &[u8]) -> Option<Message> {
        match self.dialect {
            Dialect::Twilio => self.pending.extend_from_slice(ulaw),
            Dialect::Exotel { .. } => {
                for &byte in ulaw {
                    let sample = i32::from(ulaw_decode(byte));
                    for k in 1..=self.upsample {
                        let v = self.last + (sample - self.last) * k / self.upsample;
                        self.pending.extend_from_slice(&(v as i16).to_le_bytes());
                    }
                    self.last = sample;
                }
            }
        }
        self.frames += 1;
        if self.frames < self.dialect.frames_per_message() {
            return None;
        }
        self.flush(wire)
    }

    /// What is gathered, as a `media` frame (none when nothing is).
    fn flush(&mut self, wire: &mut Wire<'_>) -> Option<Message> {
        if self.frames == 0 {
            return None;
        }
        self.chunk += 1;
        let ms = u64::from(self.dialect.frames_per_message()) * 20;
        let frame = wire.media(self.chunk, ms, &self.pending);
        self.pending.clear();
        self.frames = 0;
        Some(Message::text(frame.to_string()))
    }
}

/// G.711 μ-law to 16-bit linear, the textbook way (invert, then sign, segment and
/// step), written here so the caller does not share the media task's codec.
fn ulaw_decode(byte: u8) -> i16 {
    let b = !byte;
    let segment = (b >> 4) & 0x07;
    let step = i32::from(b & 0x0F);
    let magnitude = (((step << 3) + 0x84) << segment) - 0x84;
    let sample = if b & 0x80 != 0 { -magnitude } else { magnitude };
    sample as i16
}

/// Reads what the server still says until its close frame (noted in `heard`), the end
/// of the stream, or `within`.
async fn await_close<S>(rx: &mut S, heard: &mut Heard, within: Duration)
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    let deadline = Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, rx.next()).await {
            Ok(Some(Ok(Message::Close(frame)))) => {
                heard.close = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                heard.lost = None;
                return;
            }
            Ok(Some(Ok(_))) => {}
            Ok(Some(Err(e))) => {
                heard.lost.get_or_insert_with(|| e.to_string());
                return;
            }
            Ok(None) | Err(_) => return,
        }
    }
}

fn send(v: Value) -> Message {
    Message::text(v.to_string())
}

/// Places a Twilio call and plays `steps`; returns when the caller hung up or the
/// server closed the stream.
pub async fn call(dial: &Dial, steps: Vec<Step>) -> Result<Heard, CallerError> {
    call_as(dial, Dialect::Twilio, steps).await
}

/// Places a call speaking `dialect` and plays `steps`; returns when the caller hung up
/// or the server closed the stream.
pub async fn call_as(
    dial: &Dial,
    dialect: Dialect,
    steps: Vec<Step>,
) -> Result<Heard, CallerError> {
    if let Dialect::Exotel { rate } = dialect
        && ![8_000, 16_000, 24_000].contains(&rate)
    {
        return Err(CallerError::Connect(format!(
            "Exotel streams run at 8000, 16000 or 24000 Hz, not {rate}"
        )));
    }
    let (socket, _) = tokio_tungstenite::connect_async(&dial.url)
        .await
        .map_err(|e| CallerError::Connect(e.to_string()))?;
    let (mut tx, mut rx) = socket.split();
    let sid = dial.stream_sid.as_str();
    let mut wire = Wire {
        dialect,
        sid,
        call_sid: &dial.call_sid,
        seq: 0,
    };
    let params: serde_json::Map<String, Value> = dial
        .parameters
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let socket_error =
        |e: tokio_tungstenite::tungstenite::Error| CallerError::Socket(e.to_string());
    tx.send(send(wire.connected()))
        .await
        .map_err(socket_error)?;
    tx.send(send(wire.start(params)))
        .await
        .map_err(socket_error)?;

    let started = Instant::now();
    let ms = || started.elapsed().as_millis() as u64;
    let mut heard = Heard::default();
    let mut playout = Playout::default();
    let mut mouth = Mouth::new(dialect);
    let mut steps: VecDeque<Step> = steps.into();
    let mut speaking: VecDeque<u8> = VecDeque::new();
    let mut step_since = 0u64;
    let mut said_start: Option<u64> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let silence = [SILENCE; FRAME_BYTES];
    let sid_key = dialect.sid_key();

    loop {
        tokio::select! {
            // What the server said is read before more is sent: its close frame first.
            biased;
            incoming = rx.next() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(frame))) => {
                        heard.close = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                        break;
                    }
                    Some(Ok(Message::Binary(_))) => {
                        heard.bad_frames.push("a binary frame".into());
                        continue;
                    }
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => {
                        heard.lost = Some(e.to_string());
                        break;
                    }
                    None => {
                        heard.lost = Some("the stream ended without a close frame".into());
                        break;
                    }
                };
                let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else {
                    heard.bad_frames.push(format!("not JSON: {}", text.chars().take(80).collect::<String>()));
                    continue;
                };
                let event = v["event"].as_str().unwrap_or_default();
                if v[sid_key].as_str() != Some(sid) {
                    heard.bad_frames.push(format!("{event:?} without this stream's {sid_key}: {}", v[sid_key]));
                }
                match event {
                    "media" => match v["media"]["payload"].as_str().and_then(|p| STANDARD.decode(p).ok()) {
                        Some(bytes) => {
                            heard.media_bytes.push(bytes.len());
                            if let Some(problem) = dialect.chunk_problem(bytes.len()) {
                                heard.bad_frames.push(problem);
                            }
                            playout.queue.push_back(Item::Audio(bytes));
                        }
                        None => heard.bad_frames.push("media without a base64 payload".into()),
                    },
                    "mark" => match v["mark"]["name"].as_str() {
                        Some(name) => playout.queue.push_back(Item::Mark(name.to_owned())),
                        None => heard.bad_frames.push("a mark without a name".into()),
                    },
                    "clear" => {
                        let now = ms();
                        heard.clears.push(now);
                        for item in playout.queue.drain(..) {
                            if let Item::Mark(name) = item {
                                let m = wire.mark(&name);
                                heard.marks.push((name, false));
                                let _ = tx.send(send(m)).await;
                            }
                        }
                        if let Some(since) = playout.playing_since.take() {
                            heard.played.push((since, now));
                            playout.quiet_since = now;
                        }
                    }
                    other => heard.bad_frames.push(format!("an unknown event {other:?}")),
                }
            }
            _ = tick.tick() => {
                let now = ms();
                // Play 20 ms of the agent's audio, echoing marks as they are reached.
                let mut budget = dialect.play_bytes_per_tick();
                let mut played_any = false;
                while let Some(item) = playout.queue.front_mut() {
                    match item {
                        Item::Mark(_) => {
                            if let Some(Item::Mark(name)) = playout.queue.pop_front() {
                                let m = wire.mark(&name);
                                heard.marks.push((name, true));
                                let _ = tx.send(send(m)).await;
                            }
                        }
                        Item::Audio(bytes) => {
                            if budget == 0 { break; }
                            let take = budget.min(bytes.len());
                            bytes.drain(..take);
                            budget -= take;
                            played_any = true;
                            if bytes.is_empty() { playout.queue.pop_front(); }
                        }
                    }
                }
                if played_any {
                    if playout.playing_since.is_none() {
                        playout.playing_since = Some(now);
                    }
                    playout.spoke = true;
                } else if let Some(since) = playout.playing_since.take() {
                    heard.played.push((since, now));
                    playout.quiet_since = now;
                }

                // The caller's side: the next step decides this frame.
                let mut frame: &[u8] = &silence;
                let mut owned = [SILENCE; FRAME_BYTES];
                loop {
                    match steps.front() {
                        Some(Step::Say(audio)) => {
                            if speaking.is_empty() && said_start.is_none() {
                                speaking.extend(audio.iter());
                                said_start = Some(now);
                            }
                            if speaking.is_empty() {
                                if let Some(start) = said_start.take() {
                                    heard.said.push((start, now));
                                }
                                steps.pop_front();
                                step_since = now;
                                playout.spoke = false;
                                continue;
                            }
                            for slot in owned.iter_mut() {
                                *slot = speaking.pop_front().unwrap_or(SILENCE);
                            }
                            frame = &owned;
                        }
                        Some(Step::Pause(d)) if now.saturating_sub(step_since) >= d.as_millis() as u64 => {
                            steps.pop_front();
                            step_since = now;
                            playout.spoke = false;
                            continue;
                        }
                        Some(Step::Pause(_)) => {}
                        Some(Step::AwaitAgent { quiet, within }) => {
                            let quiet_enough = playout.spoke
                                && playout.playing_since.is_none()
                                && playout.queue.is_empty()
                                && now.saturating_sub(playout.quiet_since) >= quiet.as_millis() as u64;
                            if quiet_enough || now.saturating_sub(step_since) >= within.as_millis() as u64 {
                                steps.pop_front();
                                step_since = now;
                                playout.spoke = false;
                                continue;
                            }
                        }
                        Some(Step::AwaitAgentSpeaking { within })
                            if playout.playing_since.is_some()
                                || now.saturating_sub(step_since) >= within.as_millis() as u64 =>
                        {
                            steps.pop_front();
                            step_since = now;
                            playout.spoke = false;
                            continue;
                        }
                        Some(Step::AwaitAgentSpeaking { .. }) => {}
                        Some(Step::Dtmf(digit)) => {
                            let d = wire.dtmf(*digit);
                            tx.send(send(d)).await.map_err(socket_error)?;
                            steps.pop_front();
                            step_since = now;
                            continue;
                        }
                        Some(Step::Send(text)) => {
                            tx.send(Message::text(text.as_str())).await.map_err(socket_error)?;
                            steps.pop_front();
                            step_since = now;
                            continue;
                        }
                        Some(Step::HangUp) => {
                            // What the caller said last goes out before the hang-up.
                            if let Some(media) = mouth.flush(&mut wire) {
                                let _ = tx.send(media).await;
                            }
                            let _ = tx.send(send(wire.stop())).await;
                            steps.clear();
                            await_close(&mut rx, &mut heard, Duration::from_secs(10)).await;
                            if let Some(since) = playout.playing_since.take() {
                                heard.played.push((since, ms()));
                            }
                            return Ok(heard);
                        }
                        Some(Step::Vanish) => {
                            if let Some(since) = playout.playing_since.take() {
                                heard.played.push((since, ms()));
                            }
                            return Ok(heard);
                        }
                        None => {}
                    }
                    break;
                }
                if let Some(media) = mouth.push(&mut wire, frame)
                    && let Err(e) = tx.send(media).await
                {
                    // The server may have closed (and reset the connection) with its
                    // close frame still unread here.
                    heard.lost = Some(e.to_string());
                    await_close(&mut rx, &mut heard, Duration::from_secs(1)).await;
                    break;
                }
            }
        }
    }
    if let Some(since) = playout.playing_since.take() {
        heard.played.push((since, ms()));
    }
    Ok(heard)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exotel_chunks_must_be_whole_320_byte_multiples_of_at_least_100_ms() {
        let at8 = Dialect::Exotel { rate: 8_000 };
        let at16 = Dialect::Exotel { rate: 16_000 };
        assert!(at8.chunk_problem(1_600).is_none());
        assert!(at8.chunk_problem(3_200).is_none());
        assert!(at8.chunk_problem(1_280).is_some(), "80 ms is too short");
        assert!(at8.chunk_problem(1_700).is_some(), "not a multiple of 320");
        assert!(at16.chunk_problem(1_600).is_some(), "50 ms at 16 kHz");
        assert!(at16.chunk_problem(3_200).is_none());
        assert!(
            Dialect::Exotel { rate: 24_000 }
                .chunk_problem(4_480)
                .is_some()
        );
        assert!(
            Dialect::Exotel { rate: 24_000 }
                .chunk_problem(4_800)
                .is_none()
        );
        assert!(Dialect::Twilio.chunk_problem(160).is_none());
        assert!(Dialect::Twilio.chunk_problem(0).is_some());
    }

    #[test]
    fn ulaw_decodes_to_the_g711_table() {
        assert_eq!(ulaw_decode(0xFF), 0);
        assert_eq!(ulaw_decode(0x7F), 0);
        assert_eq!(ulaw_decode(0x80), 32_124);
        assert_eq!(ulaw_decode(0x00), -32_124);
        assert_eq!(ulaw_decode(0xF0), 120);
        // Every code decodes close to a sample that encodes back to it.
        for byte in 0..=255u8 {
            let back = crate::speech::ulaw_encode(ulaw_decode(byte));
            let same = back == byte || (byte == 0x7F && back == 0xFF);
            assert!(same, "{byte:#04x} came back as {back:#04x}");
        }
    }

    #[tokio::test]
    async fn exotel_caller_audio_is_pcm_at_the_streams_rate_in_100_ms_frames() {
        let mut wire = Wire {
            dialect: Dialect::Exotel { rate: 16_000 },
            sid: "s",
            call_sid: "c",
            seq: 1,
        };
        let mut mouth = Mouth::new(wire.dialect);
        let loud = [crate::speech::ulaw_encode(8_000); FRAME_BYTES];
        for _ in 0..4 {
            assert!(mouth.push(&mut wire, &loud).is_none());
        }
        let Some(Message::Text(text)) = mouth.push(&mut wire, &loud) else {
            panic!("a frame after 100 ms");
        };
        let v: Value = serde_json::from_str(text.as_str()).unwrap();
        assert_eq!(v["event"], "media");
        assert_eq!(v["sequence_number"], "2");
        assert_eq!(
            (
                v["media"]["chunk"].as_str(),
                v["media"]["timestamp"].as_str()
            ),
            (Some("1"), Some("0"))
        );
        let pcm = STANDARD
            .decode(v["media"]["payload"].as_str().unwrap())
            .unwrap();
        assert_eq!(pcm.len(), 3_200, "100 ms of 16-bit samples at 16 kHz");
        let last = i16::from_le_bytes([pcm[3_198], pcm[3_199]]);
        assert!((7_500..8_500).contains(&last), "{last}");
    }
}
