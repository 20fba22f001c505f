//! `parley call`: a command-line phone on the simulated network. It dials one of
//! Parley's simulated numbers (see [`crate::carrier::phone`]), waits for the agent to
//! greet, plays a WAV file as the caller, listens until the agent has been quiet for a
//! while, hangs up, and writes what the agent said to a WAV file (8 kHz mono, on the
//! call's timeline, so pauses stay where they were).

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures_util::{SinkExt, StreamExt};
use parley_media::g711;
use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

/// What one softphone call does.
#[derive(Clone, Debug)]
pub struct Call {
    /// The stack's base URL (`http://127.0.0.1:8080`).
    pub base_url: String,
    pub to: String,
    pub from: Option<String>,
    /// The caller's side: any mono or stereo 16-bit WAV (mixed down and resampled).
    pub play: PathBuf,
    /// Where the agent's side goes.
    pub record: PathBuf,
    /// Hang up once the agent has been quiet this long after the caller's audio.
    pub quiet: Duration,
    /// Hang up after this long whatever happens.
    pub limit: Duration,
}

/// How the call went.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Report {
    pub call_sid: Option<String>,
    /// Seconds of the agent's audio received.
    pub agent_seconds: f64,
    /// Whether the agent (not the softphone) ended the call.
    pub ended_by_agent: bool,
    /// What the media task sent besides audio (its live transcript).
    pub events: Vec<Value>,
}

#[derive(Debug, thiserror::Error)]
pub enum SoftphoneError {
    #[error("{path}: {reason}")]
    Audio { path: PathBuf, reason: String },
    #[error("could not reach the stack at {url}: {reason}")]
    Connect { url: String, reason: String },
}

/// 20 ms of 8 kHz μ-law.
const FRAME: usize = 160;
const SILENCE: u8 = 0xFF;

/// The phone URL for `base_url` (`http` becomes `ws`).
fn phone_url(call: &Call) -> String {
    let base = call.base_url.trim_end_matches('/');
    let ws = base
        .strip_prefix("https://")
        .map(|rest| format!("wss://{rest}"))
        .or_else(|| {
            base.strip_prefix("http://")
                .map(|rest| format!("ws://{rest}"))
        })
        .unwrap_or_else(|| base.to_owned());
    let mut url = format!(
        "{ws}{}?to={}",
        crate::carrier::PHONE_PATH,
        urlencode(&call.to)
    );
    if let Some(from) = &call.from {
        url.push_str(&format!("&from={}", urlencode(from)));
    }
    url
}

fn urlencode(raw: &str) -> String {
    serde_urlencoded::to_string([("v", raw)])
        .map(|s| s.trim_start_matches("v=").to_owned())
        .unwrap_or_default()
}

/// Where the caller is in the call.
enum Stage {
    /// Waiting for the agent to greet and pause.
    Greeting,
    /// Playing the WAV from this byte.
    Playing(usize),
    /// Listening for the agent's answer.
    Listening,
}

/// Places the call and plays it out.
pub async fn call(call: &Call) -> Result<Report, SoftphoneError> {
    let caller = crate::carrier::speech::wav_to_ulaw(&call.play).map_err(|reason| {
        SoftphoneError::Audio {
            path: call.play.clone(),
            reason,
        }
    })?;
    let url = phone_url(call);
    let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
        .await
        .map_err(|e| SoftphoneError::Connect {
            url: call.base_url.clone(),
            reason: e.to_string(),
        })?;
    let (mut tx, mut rx) = socket.split();
    let began = Instant::now();
    let mut report = Report::default();
    let mut agent: Vec<i16> = Vec::new();
    let mut heard_agent = false;
    let mut last_agent = began;
    let mut stage = Stage::Greeting;
    let mut ticks = tokio::time::interval(Duration::from_millis(20));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    loop {
        tokio::select! {
            _ = ticks.tick() => {
                let quiet = last_agent.elapsed();
                let frame: Vec<u8> = match &mut stage {
                    Stage::Greeting => {
                        // The agent greets first; a silent agent gets the caller anyway.
                        if (heard_agent && quiet >= Duration::from_millis(900))
                            || began.elapsed() >= Duration::from_secs(10)
                        {
                            stage = Stage::Playing(0);
                        }
                        vec![SILENCE; FRAME]
                    }
                    Stage::Playing(at) => {
                        let end = (*at + FRAME).min(caller.len());
                        let mut frame = caller.get(*at..end).unwrap_or_default().to_vec();
                        frame.resize(FRAME, SILENCE);
                        *at = end;
                        if end >= caller.len() {
                            stage = Stage::Listening;
                            last_agent = Instant::now();
                        }
                        frame
                    }
                    Stage::Listening => {
                        if quiet >= call.quiet {
                            let _ = tx.send(Message::text(json!({"event": "stop"}).to_string())).await;
                            let _ = tx.close().await;
                            break;
                        }
                        vec![SILENCE; FRAME]
                    }
                };
                let media = json!({"event": "media", "media": {"payload": STANDARD.encode(frame)}});
                if tx.send(Message::text(media.to_string())).await.is_err() {
                    break;
                }
                if began.elapsed() >= call.limit {
                    let _ = tx.send(Message::text(json!({"event": "stop"}).to_string())).await;
                    break;
                }
            }
            message = rx.next() => {
                let Some(Ok(Message::Text(text))) = message else {
                    if matches!(message, Some(Ok(_))) {
                        continue;
                    }
                    report.ended_by_agent = true;
                    break;
                };
                let Ok(frame) = serde_json::from_str::<Value>(&text) else { continue };
                match frame["event"].as_str() {
                    Some("start") => report.call_sid = frame["callSid"].as_str().map(str::to_owned),
                    Some("media") => {
                        let Some(audio) = frame["media"]["payload"].as_str().and_then(|p| STANDARD.decode(p).ok()) else { continue };
                        // On the call's timeline: after what came before, or now.
                        let now = (began.elapsed().as_millis() as usize) * 8;
                        if agent.len() < now.saturating_sub(audio.len()) {
                            agent.resize(now.saturating_sub(audio.len()), 0);
                        }
                        g711::decode_ulaw_into(&audio, &mut agent);
                        report.agent_seconds += audio.len() as f64 / 8000.0;
                        if audio.iter().any(|b| g711::ulaw_decode(*b).unsigned_abs() > 1_000) {
                            heard_agent = true;
                            last_agent = Instant::now();
                        }
                    }
                    Some("stop") => {
                        report.ended_by_agent = true;
                        break;
                    }
                    Some("clear") => {}
                    _ => report.events.push(frame),
                }
            }
        }
    }
    write_wav(&call.record, &agent)?;
    Ok(report)
}

fn write_wav(path: &Path, samples: &[i16]) -> Result<(), SoftphoneError> {
    let fail = |e: hound::Error| SoftphoneError::Audio {
        path: path.to_owned(),
        reason: e.to_string(),
    };
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: 8000,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut writer = hound::WavWriter::create(path, spec).map_err(fail)?;
    for sample in samples {
        writer.write_sample(*sample).map_err(fail)?;
    }
    writer.finalize().map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_phone_url_is_the_stack_s_own_with_the_numbers_encoded() {
        let call = Call {
            base_url: "http://127.0.0.1:8080/".into(),
            to: "+12025550123".into(),
            from: Some("+1 415 555 0100".into()),
            play: PathBuf::new(),
            record: PathBuf::new(),
            quiet: Duration::from_secs(1),
            limit: Duration::from_secs(1),
        };
        assert_eq!(
            phone_url(&call),
            "ws://127.0.0.1:8080/simulated/phone?to=%2B12025550123&from=%2B1+415+555+0100"
        );
    }
}
