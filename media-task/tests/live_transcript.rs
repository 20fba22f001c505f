//! The live transcript on the stream, opt-in: a phone of Parley's own that puts
//! `parley_transcript` = `live` in its stream's parameters gets each turn as a
//! `transcript` frame once it is final; a stream that does not ask (every real
//! carrier's) gets none. Whole calls over the real WebSocket, against local servers
//! speaking Deepgram's, an OpenAI-compatible and ElevenLabs' protocols.

mod common;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Scene, speech};
use futures_util::{SinkExt, StreamExt};
use parley_media::call::{OneVoice, Vendors};
use parley_media::llm::openai::OpenAiChat;
use parley_media::session::LIVE_TRANSCRIPT;
use parley_media::stt::deepgram::DeepgramStt;
use parley_media::tts::elevenlabs::{ElevenLabs, ElevenLabsVoice};
use parley_media::vendor::Endpoint;
use parley_shared::domain::agent::AgentSettings;
use parley_shared::domain::call::{CallEvent, Carrier};
use parley_shared::secrets::SecretString;
use parley_vendors::openai_chat::Reply;
use parley_vendors::twilio_caller::{Dial, Dialect};
use parley_vendors::{deepgram, elevenlabs, openai_chat};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "media-live-transcript-secret-0123456789";
const TENANT: &str = "tenant-live";
const GREETING: &str = "Hi, Parley here.";
const BOOKING: &str = "I would like to book a table";
/// One sentence: one piece of speech, one mark.
const ANSWER: &str = "For how many people?";

/// What one call left: the transcript frames the phone got, and the stored turns.
struct Held {
    frames: Vec<Value>,
    stored: Vec<Value>,
    stream_sid: String,
}

/// One call to a fresh agent: the phone waits for the greeting to play, says its
/// line, waits for the answer to play, and hangs up.
async fn held_call(ask: bool) -> Held {
    let mut settings = AgentSettings::named("Reception");
    settings.inbound_greeting = GREETING.into();
    settings.system_prompt = Some("You take restaurant bookings.".into());
    let scene = Scene::new(TENANT, settings).await;
    let deepgram = deepgram::start(vec![BOOKING.into()]).await.unwrap();
    let chat = openai_chat::start().await.unwrap();
    chat.push(Reply::text(ANSWER));
    let voice = elevenlabs::start().await.unwrap();
    let vendors = Vendors::new(
        Arc::new(DeepgramStt::new(Endpoint::new(
            &deepgram.url(),
            SecretString::new(deepgram.key().into()),
        ))),
        Arc::new(OpenAiChat::new(
            Endpoint::new(&chat.url(), SecretString::new(chat.key().into())),
            "test-model",
        )),
        Arc::new(OneVoice(Arc::new(ElevenLabs::new(
            Endpoint::new(&voice.url(), SecretString::new(voice.key().into())),
            ElevenLabsVoice::new("voice-1"),
        )))),
    );
    let (base, _) = scene.serve(SECRET, vendors).await;
    let call_id = scene.call(Carrier::Twilio, None).await;
    let mut dial = scene.dial(&base, SECRET, &call_id, Dialect::Twilio);
    if ask {
        let (name, value) = LIVE_TRANSCRIPT;
        dial.parameters.push((name.into(), value.into()));
    }
    let frames = tokio::time::timeout(Duration::from_secs(40), phone(&dial))
        .await
        .expect("the call ended in time");
    let stored = |e: &CallEvent| matches!(e, CallEvent::TranscriptStored { .. });
    scene.call_events_once(&call_id, stored).await;
    Held {
        frames,
        stored: scene.transcript(&call_id).await,
        stream_sid: dial.stream_sid,
    }
}

/// A Twilio-speaking phone that plays the agent's audio at once (each mark is echoed
/// as it comes), says [`BOOKING`] after the first mark, hangs up after the second,
/// and reads until the server closes. The `transcript` frames it got.
async fn phone(dial: &Dial) -> Vec<Value> {
    let (socket, _) = tokio_tungstenite::connect_async(dial.url.as_str())
        .await
        .unwrap();
    let (mut tx, mut rx) = socket.split();
    let sid = dial.stream_sid.as_str();
    let parameters: serde_json::Map<String, Value> = dial
        .parameters
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    let opening = [
        json!({"event": "connected", "protocol": "Call", "version": "1.0.0"}),
        json!({
            "event": "start", "sequenceNumber": "1", "streamSid": sid,
            "start": {
                "streamSid": sid, "accountSid": "ACsimulated", "callSid": dial.call_sid,
                "tracks": ["inbound"], "customParameters": parameters,
                "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}
            }
        }),
    ];
    for frame in opening {
        tx.send(Message::text(frame.to_string())).await.unwrap();
    }
    let mut saying: VecDeque<u8> = VecDeque::new();
    let mut marks = 0;
    let mut sequence = 1u64;
    let mut chunk = 0u64;
    let mut hung_up = false;
    let mut transcript = Vec::new();
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        tokio::select! {
            incoming = rx.next() => {
                let text = match incoming {
                    Some(Ok(Message::Text(text))) => text,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return transcript,
                    Some(Ok(_)) => continue,
                };
                let frame: Value = serde_json::from_str(text.as_str()).unwrap();
                match frame["event"].as_str() {
                    Some("transcript") => transcript.push(frame),
                    Some("mark") => {
                        sequence += 1;
                        let echo = json!({"event": "mark", "sequenceNumber": sequence.to_string(), "streamSid": sid, "mark": frame["mark"]});
                        tx.send(Message::text(echo.to_string())).await.unwrap();
                        marks += 1;
                        if marks == 1 {
                            saying.extend(speech(&format!("{BOOKING}.")));
                        } else if !hung_up {
                            hung_up = true;
                            sequence += 1;
                            let stop = json!({"event": "stop", "sequenceNumber": sequence.to_string(), "streamSid": sid, "stop": {"accountSid": "ACsimulated", "callSid": dial.call_sid}});
                            tx.send(Message::text(stop.to_string())).await.unwrap();
                        }
                    }
                    _ => {}
                }
            }
            _ = tick.tick(), if !hung_up => {
                let mut payload = [0xFFu8; 160];
                for (slot, byte) in payload.iter_mut().zip(saying.drain(..saying.len().min(160))) {
                    *slot = byte;
                }
                sequence += 1;
                chunk += 1;
                let media = json!({
                    "event": "media", "sequenceNumber": sequence.to_string(), "streamSid": sid,
                    "media": {"track": "inbound", "chunk": chunk.to_string(), "timestamp": ((chunk - 1) * 20).to_string(), "payload": STANDARD.encode(payload)}
                });
                tx.send(Message::text(media.to_string())).await.unwrap();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_asks_gets_each_turn_as_it_becomes_final() {
    let held = held_call(true).await;
    let turns: Vec<(&str, &str)> = held
        .stored
        .iter()
        .map(|t| (t["speaker"].as_str().unwrap(), t["text"].as_str().unwrap()))
        .collect();
    assert_eq!(
        turns,
        [("agent", GREETING), ("caller", BOOKING), ("agent", ANSWER)]
    );
    // The same turns, in order, each on this stream.
    let sent: Vec<(&str, &str)> = held
        .frames
        .iter()
        .map(|f| (f["speaker"].as_str().unwrap(), f["text"].as_str().unwrap()))
        .collect();
    assert_eq!(sent, turns, "{:?}", held.frames);
    for frame in &held.frames {
        assert_eq!(frame["streamSid"], held.stream_sid.as_str(), "{frame}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stream_that_does_not_ask_gets_no_transcript_frames() {
    let held = held_call(false).await;
    assert_eq!(held.stored.len(), 3, "{:?}", held.stored);
    assert!(held.frames.is_empty(), "{:?}", held.frames);
}
