//! Whole calls over the real WebSocket protocol: a simulated Twilio caller speaking
//! real speech (synthesised with flite), against local servers that speak Deepgram's,
//! an OpenAI-compatible and ElevenLabs' wire protocols, through the media task's own
//! vendor clients. Checks the greeting, the answers, key presses, barge-in, the
//! transcript, the recording and the call's events.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use parley_media::call::{Calls, OneVoice, Vendors};
use parley_media::llm::openai::OpenAiChat;
use parley_media::resample::Resampler;
use parley_media::server::{MediaState, service};
use parley_media::stt::deepgram::DeepgramStt;
use parley_media::tts::elevenlabs::{ElevenLabs, ElevenLabsVoice};
use parley_media::vendor::Endpoint;
use parley_shared::aggregate::{self, Context};
use parley_shared::backend::Ports;
use parley_shared::clock::SystemClock;
use parley_shared::domain::agent::{Agent, AgentCommand, AgentSettings};
use parley_shared::domain::call::{Call, CallCommand, CallEvent, Carrier, Direction};
use parley_shared::domain::ids::{AgentId, CallId};
use parley_shared::domain::values::PhoneNumber;
use parley_shared::embedded::Embedded;
use parley_shared::secrets::SecretString;
use parley_shared::streamtoken::{self, StreamClaims};
use parley_vendors::openai_chat::Reply;
use parley_vendors::twilio_caller::{self, Dial, Step};
use parley_vendors::{deepgram, elevenlabs, openai_chat};
use serde_json::Value;

const SECRET: &str = "media-call-test-stream-secret-0123456789";
const TENANT: &str = "tenant-call";

/// Speech as a caller's phone sends it: flite's voice, at 8 kHz, μ-law.
fn speech(text: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("speech.wav");
    let status = std::process::Command::new("flite")
        .args(["-voice", "slt", "-t", text, "-o"])
        .arg(&wav)
        .status()
        .expect("flite is installed (Debian package flite)");
    assert!(status.success());
    let mut reader = hound::WavReader::open(&wav).unwrap();
    let rate = reader.spec().sample_rate;
    let samples: Vec<i16> = reader.samples::<i16>().map(Result::unwrap).collect();
    let mut pcm = Vec::new();
    let mut resampler = Resampler::new(rate, 8_000).unwrap();
    resampler.process(&samples, &mut pcm);
    resampler.flush(&mut pcm);
    pcm.iter()
        .map(|&s| parley_media::g711::ulaw_encode(s))
        .collect()
}

struct World {
    ports: Ports,
    _dir: tempfile::TempDir,
    url: String,
    deepgram: deepgram::Deepgram,
    chat: openai_chat::OpenAiChatServer,
    voice: parley_vendors::speech::SpeechServer,
}

async fn world(settings: AgentSettings, phrases: &[&str]) -> (World, CallId) {
    let dir = tempfile::tempdir().unwrap();
    let embedded = Embedded::open(
        dir.path(),
        Arc::new(SystemClock),
        "http://127.0.0.1:1".into(),
        5,
    )
    .unwrap();
    let ports = Ports::embedded(embedded);
    let ctx = Context {
        tenant_id: TENANT.into(),
        correlation_id: "test".into(),
        idempotency_key: None,
    };
    let agent_id = AgentId::new();
    aggregate::execute::<Agent>(
        &*ports.events,
        &*ports.clock,
        &agent_id.stream(),
        &ctx,
        AgentCommand::Create { settings },
    )
    .await
    .unwrap();
    let call_id = CallId::new();
    aggregate::execute::<Call>(
        &*ports.events,
        &*ports.clock,
        &call_id.stream(),
        &ctx,
        CallCommand::Request {
            direction: Direction::Inbound,
            carrier: Carrier::Twilio,
            from: PhoneNumber::parse("+14155550123").unwrap(),
            to: PhoneNumber::parse("+14155550100").unwrap(),
            agent_id,
            lead_id: None,
            campaign_id: None,
            attempt: 0,
        },
    )
    .await
    .unwrap();

    let deepgram = deepgram::start(phrases.iter().map(|p| p.to_string()).collect())
        .await
        .unwrap();
    let chat = openai_chat::start().await.unwrap();
    let voice = elevenlabs::start().await.unwrap();
    let stt = DeepgramStt::new(Endpoint::new(
        &deepgram.url(),
        SecretString::new(deepgram.key().into()),
    ));
    let llm = OpenAiChat::new(
        Endpoint::new(&chat.url(), SecretString::new(chat.key().into())),
        "test-model",
    );
    let tts = ElevenLabs::new(
        Endpoint::new(&voice.url(), SecretString::new(voice.key().into())),
        ElevenLabsVoice::new("voice-1"),
    );
    let vendors = Vendors::new(
        Arc::new(stt),
        Arc::new(llm),
        Arc::new(OneVoice(Arc::new(tts))),
    );
    let state =
        MediaState::new(ports.clock.clone(), SecretString::new(SECRET.into())).with_calls(Calls {
            ports: ports.clone(),
            vendors,
        });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/media/twilio", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, service(state)).await });
    let world = World {
        ports,
        _dir: dir,
        url,
        deepgram,
        chat,
        voice,
    };
    (world, call_id)
}

fn dial(world: &World, call_id: &CallId) -> Dial {
    let claims = StreamClaims {
        tenant_id: TENANT.into(),
        call_id: call_id.to_string(),
        expires_at: (Utc::now() + chrono::Duration::minutes(5)).timestamp(),
    };
    let token = streamtoken::mint(SECRET.as_bytes(), &claims).unwrap();
    Dial {
        url: world.url.clone(),
        stream_sid: "MZsimulated".into(),
        call_sid: "CAsimulated".into(),
        parameters: vec![
            ("token".into(), token),
            ("call_id".into(), call_id.to_string()),
            ("tenant_id".into(), TENANT.into()),
        ],
    }
}

async fn call_events(world: &World, call_id: &CallId) -> Vec<CallEvent> {
    // Records are written as the session ends; give them a moment.
    for _ in 0..100 {
        let events = world
            .ports
            .events
            .read_stream(&call_id.stream(), 1)
            .await
            .unwrap();
        let decoded: Vec<CallEvent> = events
            .iter()
            .filter_map(|e| parley_shared::event::decode::<CallEvent>(e).ok().flatten())
            .collect();
        if decoded
            .iter()
            .any(|e| matches!(e, CallEvent::CallRecordingStored { .. }))
        {
            return decoded;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the call's records were never written");
}

fn settings() -> AgentSettings {
    let mut settings = AgentSettings::named("Reception");
    settings.inbound_greeting = "Hello, this is Parley. How can I help?".into();
    settings.system_prompt = Some("You take restaurant bookings.".into());
    settings
}

fn last_user(request: &Value) -> String {
    let messages = request["messages"].as_array().unwrap();
    let user = messages.iter().rev().find(|m| m["role"] == "user").unwrap();
    user["content"].as_str().unwrap().to_owned()
}

fn rms(samples: &[i16]) -> f64 {
    if samples.is_empty() {
        return 0.0;
    }
    (samples.iter().map(|&s| f64::from(s).powi(2)).sum::<f64>() / samples.len() as f64).sqrt()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_greeted_answered_keyed_interrupted_and_kept() {
    let (world, call_id) =
        world(settings(), &["I would like to book a table", "Stop please"]).await;
    world.chat.push(Reply::text("Sure. For how many people?"));
    let long = "Thank you. I have noted forty two. We are open from noon until late every day of the week. \
                We also have a lovely garden at the back for the summer evenings. \
                And there is parking right across the street for all our guests.";
    world.chat.push(Reply::text(long));
    world.chat.push(Reply::text("Okay."));

    let booking = speech("I would like to book a table.");
    let stop = speech("Stop please.");
    let quiet = |ms| Step::AwaitAgent {
        quiet: Duration::from_millis(ms),
        within: Duration::from_secs(20),
    };
    let heard = twilio_caller::call(
        &dial(&world, &call_id),
        vec![
            quiet(300),
            Step::Say(booking),
            quiet(300),
            Step::Dtmf('4'),
            Step::Dtmf('2'),
            Step::Dtmf('#'),
            Step::AwaitAgentSpeaking {
                within: Duration::from_secs(10),
            },
            Step::Pause(Duration::from_millis(1_500)),
            Step::Say(stop),
            quiet(300),
            Step::HangUp,
        ],
    )
    .await
    .unwrap();

    // The greeting was spoken first, in the agent's voice, and played whole.
    let spoken = world.voice.requests();
    assert_eq!(
        spoken[0].body["text"],
        "Hello, this is Parley. How can I help?"
    );
    assert!(
        heard.played[0].0 < heard.said[0].0,
        "greeted before the caller said anything"
    );
    assert_eq!(
        heard.marks[0],
        ("m1".to_owned(), true),
        "the greeting's mark played"
    );
    assert_eq!(
        heard.close.as_ref().map(|c| c.0),
        Some(1000),
        "closed normally"
    );

    // The recogniser heard the caller; the brain was asked with the caller's words.
    let asked = world.chat.requests();
    assert_eq!(asked.len(), 3, "one answer per caller turn: {asked:?}");
    assert_eq!(last_user(&asked[0].body), "I would like to book a table");
    let context = asked[0].body["messages"].as_array().unwrap();
    assert_eq!(context[0]["content"], "You take restaurant bookings.");
    assert_eq!(
        context[1]["content"],
        "Hello, this is Parley. How can I help?"
    );
    // Keys reached the brain as input.
    assert_eq!(
        last_user(&asked[1].body),
        "(the caller pressed the keys 42#)"
    );
    // Barge-in: the carrier was told to clear, and the context kept only what played.
    assert!(!heard.clears.is_empty(), "clear sent");
    assert!(
        heard.played.iter().any(|(_, to)| heard.clears.contains(to)),
        "the clear cut the agent off mid-speech"
    );
    assert_eq!(last_user(&asked[2].body), "Stop please");
    let before = &asked[2].body["messages"].as_array().unwrap();
    let kept = before[before.len() - 2]["content"].as_str().unwrap();
    assert!(
        long.starts_with(kept) && kept.len() < long.len(),
        "truncated: {kept:?}"
    );
    assert!(kept.starts_with("Thank you."));

    // The call's history.
    let events = call_events(&world, &call_id).await;
    assert!(events.iter().any(
        |e| matches!(e, CallEvent::MediaStreamStarted { stream_id } if stream_id == "MZsimulated")
    ));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, CallEvent::CallerBargedIn { .. }))
    );
    let ended = events
        .iter()
        .find_map(|e| match e {
            CallEvent::MediaStreamEnded {
                reason,
                turns,
                duration_ms,
            } => Some((reason.clone(), *turns, *duration_ms)),
            _ => None,
        })
        .unwrap();
    assert_eq!((ended.0.as_str(), ended.1), ("caller_hung_up", 3));

    // The transcript.
    let key = format!("transcripts/{TENANT}/{call_id}.json");
    let doc: Value =
        serde_json::from_slice(&world.ports.blobs.get(&key).await.unwrap().unwrap()).unwrap();
    let turns = doc["turns"].as_array().unwrap();
    let speakers: Vec<&str> = turns
        .iter()
        .map(|t| t["speaker"].as_str().unwrap())
        .collect();
    assert_eq!(
        speakers,
        [
            "agent", "caller", "agent", "caller", "agent", "caller", "agent"
        ]
    );
    assert_eq!(turns[6]["text"], "Okay.");
    assert_eq!(turns[1]["text"], "I would like to book a table");
    assert_eq!(turns[3]["dtmf"], "42#");
    assert_eq!(turns[4]["interrupted"], true);
    assert!(
        turns
            .windows(2)
            .all(|w| w[0]["start_ms"].as_u64() <= w[1]["start_ms"].as_u64())
    );

    // The recording: stereo, as long as the call, caller left and agent right.
    let key = format!("recordings/{TENANT}/{call_id}.wav");
    let wav = world.ports.blobs.get(&key).await.unwrap().unwrap();
    let reader = hound::WavReader::new(std::io::Cursor::new(wav.to_vec())).unwrap();
    assert_eq!(
        (reader.spec().channels, reader.spec().sample_rate),
        (2, 8_000)
    );
    let samples: Vec<i16> = reader.into_samples::<i16>().map(Result::unwrap).collect();
    let left: Vec<i16> = samples.iter().step_by(2).copied().collect();
    let right: Vec<i16> = samples.iter().skip(1).step_by(2).copied().collect();
    let seconds = left.len() as f64 / 8_000.0;
    let call_seconds = ended.2 as f64 / 1000.0;
    assert!(
        (seconds - call_seconds).abs() < 1.0,
        "{seconds} s recorded of a {call_seconds} s call"
    );
    let window = |ch: &[i16], from_ms: u64, to_ms: u64| {
        let a = (from_ms as usize * 8).min(ch.len());
        let b = (to_ms as usize * 8).min(ch.len());
        rms(&ch[a..b])
    };
    let (said_from, said_to) = heard.said[0];
    assert!(
        window(&left, said_from, said_to) > 500.0,
        "the caller's words are on the left"
    );
    assert!(
        window(&right, said_from, said_to) < 50.0,
        "the agent was quiet meanwhile"
    );
    let (greet_from, greet_to) = heard.played[0];
    assert!(
        window(&right, greet_from + 100, greet_to - 100) > 500.0,
        "the greeting is on the right"
    );
    assert!(
        window(&left, greet_from + 100, greet_to - 100) < 50.0,
        "the caller was quiet meanwhile"
    );

    // What the task reports to Prometheus.
    let metrics_url = world
        .url
        .replace("ws://", "http://")
        .replace("/media/twilio", "/metrics");
    let text = reqwest::get(&metrics_url)
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("parley_media_turns_total 3"), "{text}");
    assert!(text.contains("parley_media_barge_ins_total 1"), "{text}");
    assert!(text.contains("parley_media_live_calls 0"), "{text}");
    assert!(
        text.contains("parley_media_response_seconds_count 3"),
        "{text}"
    );
    drop(world.deepgram);
}
