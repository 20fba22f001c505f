//! A simulated Twilio caller: Twilio's side of a bidirectional Media Stream, written
//! from Twilio's documentation independently of the media task's own parser.
//!
//! It sends `connected` and `start` (with the stream's custom parameters), then one
//! 20 ms `media` frame of the caller's μ-law audio every 20 ms in real time (silence
//! between utterances, as Twilio sends), key presses as `dtmf`, and `stop` to hang up.
//! It plays the agent's audio as a phone would: a buffer drained at 8,000 samples a
//! second; a `mark` is echoed when the audio before it has played, and `clear` empties
//! the buffer and echoes the marks still in it at once.

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

/// What the caller does, in order.
#[derive(Clone, Debug)]
pub enum Step {
    /// Speak this μ-law 8 kHz audio.
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
    /// Hang up: send `stop` and close.
    HangUp,
}

/// Who is calling and where.
#[derive(Clone, Debug)]
pub struct Dial {
    /// `ws://host:port/media/twilio`.
    pub url: String,
    pub stream_sid: String,
    pub call_sid: String,
    /// The `<Parameter>`s of the TwiML `<Stream>` (token, call_id, tenant_id).
    pub parameters: Vec<(String, String)>,
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

/// Places a call and plays `steps`; returns when the caller hung up or the server
/// closed the stream.
pub async fn call(dial: &Dial, steps: Vec<Step>) -> Result<Heard, CallerError> {
    let (socket, _) = tokio_tungstenite::connect_async(&dial.url)
        .await
        .map_err(|e| CallerError::Connect(e.to_string()))?;
    let (mut tx, mut rx) = socket.split();
    let sid = dial.stream_sid.as_str();
    let params: serde_json::Map<String, Value> = dial
        .parameters
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let mut seq = 1u64;
    let send = |v: Value| Message::text(v.to_string());
    tx.send(send(
        json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
    ))
    .await
    .map_err(|e| CallerError::Socket(e.to_string()))?;
    tx.send(send(json!({
        "event": "start", "sequenceNumber": seq.to_string(), "streamSid": sid,
        "start": {
            "streamSid": sid, "accountSid": "ACsimulated", "callSid": dial.call_sid,
            "tracks": ["inbound"], "customParameters": params,
            "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
        }
    })))
    .await
    .map_err(|e| CallerError::Socket(e.to_string()))?;

    let started = Instant::now();
    let ms = || started.elapsed().as_millis() as u64;
    let mut heard = Heard::default();
    let mut playout = Playout::default();
    let mut steps: VecDeque<Step> = steps.into();
    let mut speaking: VecDeque<u8> = VecDeque::new();
    let mut step_since = 0u64;
    let mut chunk = 0u64;
    let mut said_start: Option<u64> = None;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let silence = [SILENCE; FRAME_BYTES];

    loop {
        tokio::select! {
            incoming = rx.next() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(frame))) => {
                        heard.close = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                        break;
                    }
                    Some(Ok(_)) => continue,
                    None | Some(Err(_)) => break,
                };
                let Ok(v) = serde_json::from_str::<Value>(text.as_str()) else { continue };
                match v["event"].as_str() {
                    Some("media") => {
                        if let Some(bytes) = v["media"]["payload"].as_str().and_then(|p| STANDARD.decode(p).ok()) {
                            playout.queue.push_back(Item::Audio(bytes));
                        }
                    }
                    Some("mark") => {
                        if let Some(name) = v["mark"]["name"].as_str() {
                            playout.queue.push_back(Item::Mark(name.to_owned()));
                        }
                    }
                    Some("clear") => {
                        let now = ms();
                        heard.clears.push(now);
                        for item in playout.queue.drain(..) {
                            if let Item::Mark(name) = item {
                                heard.marks.push((name.clone(), false));
                                let m = json!({"event": "mark", "sequenceNumber": seq.to_string(), "streamSid": sid, "mark": {"name": name}});
                                seq += 1;
                                let _ = tx.send(send(m)).await;
                            }
                        }
                        if let Some(since) = playout.playing_since.take() {
                            heard.played.push((since, now));
                            playout.quiet_since = now;
                        }
                    }
                    _ => {}
                }
            }
            _ = tick.tick() => {
                let now = ms();
                // Play 20 ms of the agent's audio, echoing marks as they are reached.
                let mut budget = FRAME_BYTES;
                let mut played_any = false;
                while let Some(item) = playout.queue.front_mut() {
                    match item {
                        Item::Mark(_) => {
                            if let Some(Item::Mark(name)) = playout.queue.pop_front() {
                                heard.marks.push((name.clone(), true));
                                let m = json!({"event": "mark", "sequenceNumber": seq.to_string(), "streamSid": sid, "mark": {"name": name}});
                                seq += 1;
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
                            let d = json!({"event": "dtmf", "streamSid": sid, "sequenceNumber": seq.to_string(), "dtmf": {"track": "inbound_track", "digit": digit.to_string()}});
                            seq += 1;
                            tx.send(send(d)).await.map_err(|e| CallerError::Socket(e.to_string()))?;
                            steps.pop_front();
                            step_since = now;
                            continue;
                        }
                        Some(Step::HangUp) => {
                            let stop = json!({"event": "stop", "sequenceNumber": seq.to_string(), "streamSid": sid, "stop": {"accountSid": "ACsimulated", "callSid": dial.call_sid}});
                            let _ = tx.send(send(stop)).await;
                            steps.clear();
                            // Read what the server says until it closes.
                            let deadline = Instant::now() + Duration::from_secs(10);
                            while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, rx.next()).await {
                                if let Message::Close(frame) = message {
                                    heard.close = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                                    break;
                                }
                            }
                            if let Some(since) = playout.playing_since.take() {
                                heard.played.push((since, ms()));
                            }
                            return Ok(heard);
                        }
                        None => {}
                    }
                    break;
                }
                chunk += 1;
                seq += 1;
                let media = json!({
                    "event": "media", "sequenceNumber": seq.to_string(), "streamSid": sid,
                    "media": {"track": "inbound", "chunk": chunk.to_string(),
                              "timestamp": ((chunk - 1) * 20).to_string(),
                              "payload": STANDARD.encode(frame)}
                });
                if tx.send(send(media)).await.is_err() {
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
