//! Whole calls over the real WebSocket protocols: a simulated Twilio or Exotel caller
//! speaking real speech (synthesised with flite), against local servers that speak
//! Deepgram's, an OpenAI-compatible and ElevenLabs' wire protocols, through the media
//! task's own vendor clients. Checks what a caller and an operator would: the greeting,
//! the answers, key presses, barge-in, the limits, vendors failing mid-call, broken
//! frames, and the transcript, recording and events each call leaves behind.

use std::net::SocketAddr;
mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Scene, place, quiet, speech, stay_on_the_line};
use parley_media::call::{OneVoice, Vendors};
use parley_media::llm::openai::OpenAiChat;
use parley_media::stt::deepgram::DeepgramStt;
use parley_media::tts::elevenlabs::{ElevenLabs, ElevenLabsVoice};
use parley_media::tts::flite::Flite;
use parley_media::vendor::Endpoint;
use parley_shared::domain::agent::AgentSettings;
use parley_shared::domain::call::{CallEvent, Carrier};
use parley_shared::domain::ids::CallId;
use parley_shared::secrets::SecretString;
use parley_vendors::openai_chat::Reply;
use parley_vendors::twilio_caller::{self, Dial, Dialect, Heard, Step};
use parley_vendors::{deepgram, elevenlabs, openai_chat, speech as tone};
use serde_json::{Value, json};

const SECRET: &str = "media-call-test-stream-secret-0123456789";
const TENANT: &str = "tenant-call";
/// What the agent says when a vendor fails for good (the conversation's default).
const APOLOGY: &str = "I'm sorry, I'm having trouble on my side. Please call back later. Goodbye.";
/// What the agent says when a limit ends the call.
const GOODBYE: &str = "Thank you for your time. Goodbye.";
const BOOKING: &str = "I would like to book a table";

/// How a test's world differs from the plain one.
struct Setup {
    settings: AgentSettings,
    /// What the recogniser hears, in order, across all of the world's calls.
    phrases: Vec<String>,
    deepgram: deepgram::Behaviour,
    /// Deepgram can be reached for one connection only; later ones are refused, as
    /// when the network to it fails mid-call.
    deepgram_once: bool,
    /// The offline voice speaks once the agent's own has failed.
    fallback_voice: bool,
}

impl Setup {
    fn new(settings: AgentSettings, phrases: &[&str]) -> Setup {
        Setup {
            settings,
            phrases: phrases.iter().map(|p| p.to_string()).collect(),
            deepgram: deepgram::Behaviour::default(),
            deepgram_once: false,
            fallback_voice: false,
        }
    }
}

struct World {
    scene: Scene,
    /// `ws://127.0.0.1:port` of the media task.
    base: String,
    deepgram: deepgram::Deepgram,
    chat: openai_chat::OpenAiChatServer,
    voice: parley_vendors::speech::SpeechServer,
}

async fn world(settings: AgentSettings, phrases: &[&str]) -> (World, CallId) {
    world_with(Setup::new(settings, phrases)).await
}

/// A media task holding calls for one agent, its vendors local servers, and one call
/// requested for it.
async fn world_with(setup: Setup) -> (World, CallId) {
    let scene = Scene::new(TENANT, setup.settings).await;
    let deepgram = deepgram::start_with(setup.phrases, setup.deepgram)
        .await
        .unwrap();
    let chat = openai_chat::start().await.unwrap();
    let voice = elevenlabs::start().await.unwrap();
    let deepgram_url = if setup.deepgram_once {
        one_connection_to(deepgram.url().trim_start_matches("ws://").parse().unwrap()).await
    } else {
        deepgram.url()
    };
    let stt = DeepgramStt::new(Endpoint::new(
        &deepgram_url,
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
    let mut vendors = Vendors::new(
        Arc::new(stt),
        Arc::new(llm),
        Arc::new(OneVoice(Arc::new(tts))),
    );
    if setup.fallback_voice {
        let flite = Flite::new("kal").await.expect("flite is installed");
        vendors.fallback_voice = Some(Arc::new(flite));
    }
    let (base, _) = scene.serve(SECRET, vendors).await;
    let world = World {
        scene,
        base,
        deepgram,
        chat,
        voice,
    };
    let call_id = world.request_call(Carrier::Twilio).await;
    (world, call_id)
}

impl World {
    /// A call to the agent, as the voice webhook requests it before the stream opens.
    async fn request_call(&self, carrier: Carrier) -> CallId {
        self.scene.call(carrier, None).await
    }

    async fn metrics(&self) -> String {
        let url = format!("{}/metrics", self.base.replace("ws://", "http://"));
        reqwest::get(&url).await.unwrap().text().await.unwrap()
    }
}

/// A way to `target` that lets one connection through and refuses every later one
/// (its port closes after the first), as a network that fails mid-call does.
async fn one_connection_to(target: SocketAddr) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        if let Ok((mut inbound, _)) = listener.accept().await {
            drop(listener);
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        }
    });
    format!("ws://{addr}")
}

/// The caller's side of a call to `call_id`, with a fresh stream token.
async fn call_events(world: &World, call_id: &CallId) -> Vec<CallEvent> {
    let stored = |e: &CallEvent| matches!(e, CallEvent::CallRecordingStored { .. });
    world.scene.call_events_once(call_id, stored).await
}

/// What a call left behind: its events, transcript and recording.
struct Records {
    events: Vec<CallEvent>,
    reason: String,
    turns: u32,
    duration_ms: u64,
    /// The transcript's turns.
    transcript: Vec<Value>,
    rate: u32,
    /// The recording's caller (left) and agent (right) channels.
    left: Vec<i16>,
    right: Vec<i16>,
}

async fn records(world: &World, call_id: &CallId) -> Records {
    let events = call_events(world, call_id).await;
    let (reason, duration_ms, turns) = events
        .iter()
        .find_map(|e| match e {
            CallEvent::MediaStreamEnded {
                reason,
                turns,
                duration_ms,
            } => Some((reason.clone(), *duration_ms, *turns)),
            _ => None,
        })
        .expect("MediaStreamEnded written");
    assert!(
        events.iter().any(
            |e| matches!(e, CallEvent::TranscriptStored { key, .. } if key.ends_with(&format!("{call_id}.json")))
        ),
        "{events:?}"
    );
    let key = format!("transcripts/{TENANT}/{call_id}.json");
    let doc: Value =
        serde_json::from_slice(&world.scene.ports.blobs.get(&key).await.unwrap().unwrap()).unwrap();
    assert_eq!(doc["ended"], reason.as_str());
    let transcript = doc["turns"].as_array().unwrap().clone();
    let key = format!("recordings/{TENANT}/{call_id}.wav");
    let wav = world.scene.ports.blobs.get(&key).await.unwrap().unwrap();
    let reader = hound::WavReader::new(std::io::Cursor::new(wav.to_vec())).unwrap();
    assert_eq!(reader.spec().channels, 2, "stereo");
    let rate = reader.spec().sample_rate;
    let samples: Vec<i16> = reader.into_samples::<i16>().map(Result::unwrap).collect();
    let left = samples.iter().step_by(2).copied().collect();
    let right = samples.iter().skip(1).step_by(2).copied().collect();
    Records {
        events,
        reason,
        turns,
        duration_ms,
        transcript,
        rate,
        left,
        right,
    }
}

impl Records {
    fn speakers(&self) -> Vec<&str> {
        self.transcript
            .iter()
            .map(|t| t["speaker"].as_str().unwrap())
            .collect()
    }

    fn started_as(&self, stream_sid: &str) -> bool {
        self.events.iter().any(
            |e| matches!(e, CallEvent::MediaStreamStarted { stream_id } if stream_id == stream_sid),
        )
    }

    /// The recording is as long as the call.
    fn assert_as_long_as_the_call(&self) {
        let seconds = self.left.len() as f64 / f64::from(self.rate);
        let call_seconds = self.duration_ms as f64 / 1000.0;
        assert!(
            (seconds - call_seconds).abs() < 1.0,
            "{seconds} s recorded of a {call_seconds} s call"
        );
    }

    /// The loudness of one channel between two moments of the call.
    fn rms(&self, channel: &[i16], from_ms: u64, to_ms: u64) -> f64 {
        let per_ms = self.rate as usize / 1000;
        let a = (from_ms as usize * per_ms).min(channel.len());
        let b = (to_ms as usize * per_ms).min(channel.len());
        rms(&channel[a..b])
    }

    /// The caller's first words are on the left while the agent was quiet, and the
    /// greeting on the right while the caller was.
    fn assert_sides(&self, heard: &Heard) {
        let (said_from, said_to) = heard.said[0];
        assert!(
            self.rms(&self.left, said_from, said_to) > 500.0,
            "the caller's words are on the left"
        );
        assert!(
            self.rms(&self.right, said_from, said_to) < 50.0,
            "the agent was quiet meanwhile"
        );
        let (greet_from, greet_to) = stretches(heard)[0];
        assert!(
            self.rms(&self.right, greet_from + 100, greet_to - 100) > 500.0,
            "the greeting is on the right"
        );
        assert!(
            self.rms(&self.left, greet_from + 100, greet_to - 100) < 50.0,
            "the caller was quiet meanwhile"
        );
    }
}

fn settings() -> AgentSettings {
    let mut settings = AgentSettings::named("Reception");
    settings.inbound_greeting = "Hello, this is Parley. How can I help?".into();
    settings.system_prompt = Some("You take restaurant bookings.".into());
    settings
}

/// The agent of the newer tests: a short greeting keeps them quick.
fn brief_settings() -> AgentSettings {
    let mut settings = settings();
    settings.inbound_greeting = "Hi, Parley here.".into();
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

/// The stretches of the agent's speech the caller heard. A gap shorter than a phone's
/// jitter buffer rides out (the test's pacing can hiccup when the machine is busy) does
/// not split a stretch; a `clear` does.
fn stretches(heard: &Heard) -> Vec<(u64, u64)> {
    let mut out: Vec<(u64, u64)> = Vec::new();
    for &(from, to) in heard.played.iter().filter(|(from, to)| to > from) {
        match out.last_mut() {
            Some(last) if from < last.1 + 250 && !heard.clears.contains(&last.1) => last.1 = to,
            _ => out.push((from, to)),
        }
    }
    out
}

/// How long the local voice's audio for `text` lasts, in ms.
fn spoken_ms(text: &str) -> u64 {
    text.chars().count() as u64 * u64::from(tone::MS_PER_CHAR)
}

fn dial(world: &World, call_id: &CallId, dialect: Dialect) -> Dial {
    world.scene.dial(&world.base, SECRET, call_id, dialect)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_greeted_answered_keyed_interrupted_and_kept() {
    let (world, call_id) = world(settings(), &[BOOKING, "Stop please"]).await;
    world.chat.push(Reply::text("Sure. For how many people?"));
    let long = "Thank you. I have noted forty two. We are open from noon until late every day of the week. \
                We also have a lovely garden at the back for the summer evenings. \
                And there is parking right across the street for all our guests.";
    world.chat.push(Reply::text(long));
    world.chat.push(Reply::text("Okay."));

    let booking = speech("I would like to book a table.");
    let stop = speech("Stop please.");
    let dial = dial(&world, &call_id, Dialect::Twilio);
    let heard = twilio_caller::call(
        &dial,
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
    assert!(heard.bad_frames.is_empty(), "{:?}", heard.bad_frames);

    // The recogniser heard the caller; the brain was asked with the caller's words.
    let asked = common::asked(&world.chat);
    assert_eq!(asked.len(), 3, "one answer per caller turn: {asked:?}");
    assert_eq!(last_user(&asked[0].body), BOOKING);
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
    let records = records(&world, &call_id).await;
    assert!(records.started_as(&dial.stream_sid));
    assert!(
        records
            .events
            .iter()
            .any(|e| matches!(e, CallEvent::CallerBargedIn { .. }))
    );
    assert_eq!(
        (records.reason.as_str(), records.turns),
        ("caller_hung_up", 3)
    );

    // The transcript.
    let turns = &records.transcript;
    assert_eq!(
        records.speakers(),
        [
            "agent", "caller", "agent", "caller", "agent", "caller", "agent"
        ]
    );
    assert_eq!(turns[6]["text"], "Okay.");
    assert_eq!(turns[1]["text"], BOOKING);
    assert_eq!(turns[3]["dtmf"], "42#");
    assert_eq!(turns[4]["interrupted"], true);
    assert!(
        turns
            .windows(2)
            .all(|w| w[0]["start_ms"].as_u64() <= w[1]["start_ms"].as_u64())
    );

    // The recording: stereo, as long as the call, caller left and agent right.
    assert_eq!(records.rate, 8_000);
    records.assert_as_long_as_the_call();
    records.assert_sides(&heard);

    // What the task reports to Prometheus.
    let text = world.metrics().await;
    assert!(text.contains("parley_media_turns_total 3"), "{text}");
    assert!(text.contains("parley_media_barge_ins_total 1"), "{text}");
    assert!(text.contains("parley_media_live_calls 0"), "{text}");
    assert!(
        text.contains("parley_media_response_seconds_count 3"),
        "{text}"
    );
    drop(world.deepgram);
}

/// One Exotel call at `rate`: greeted, one spoken turn answered, then the caller
/// hangs up; checks what the caller heard and what the call left behind.
async fn exotel_call(world: &World, rate: u32) {
    let call_id = world.request_call(Carrier::Exotel).await;
    let dialect = Dialect::Exotel { rate };
    let dial = dial(world, &call_id, dialect);
    let heard = place(
        &dial,
        dialect,
        vec![
            quiet(300),
            Step::Say(speech("I would like to book a table.")),
            quiet(300),
            Step::HangUp,
        ],
    )
    .await;

    // Heard: the greeting before the caller spoke, then the answer; each mark echoed
    // once its audio had played; the server closed normally after `stop`.
    let played = stretches(&heard);
    assert!(played.len() >= 2, "{played:?}");
    assert!(played[0].1 <= heard.said[0].0, "greeted first");
    let answer_at = played.last().unwrap().0;
    assert!(
        answer_at > heard.said[0].1,
        "answered after the caller spoke"
    );
    assert_eq!(
        heard.marks,
        [("m1".to_owned(), true), ("m2".to_owned(), true)]
    );
    assert_eq!(heard.close.as_ref().map(|c| c.0), Some(1000));

    // Every chunk the agent sent is one Exotel plays smoothly: a multiple of 320
    // bytes and at least 100 ms at the stream's rate.
    assert!(heard.bad_frames.is_empty(), "{:?}", heard.bad_frames);
    let min = rate as usize * 2 / 10;
    assert!(
        heard.media_bytes.iter().all(|&n| n % 320 == 0 && n >= min),
        "{:?}",
        heard.media_bytes
    );
    // And it is all the speech, at the stream's rate: each utterance's samples, the
    // last chunk of each padded.
    let answer = format!("You said: {BOOKING}.");
    let spoken: usize = ["Hi, Parley here.", answer.as_str()]
        .iter()
        .map(|t| tone::samples_for(t, rate, 1.0) * 2)
        .sum();
    let sent: usize = heard.media_bytes.iter().sum();
    let chunk = *heard.media_bytes.iter().max().unwrap();
    assert!(
        sent + 64 >= spoken && sent <= spoken + 2 * chunk,
        "{sent} bytes sent for {spoken} bytes of speech at {rate} Hz"
    );

    // What the call left: events, transcript and a recording at the stream's rate.
    let records = records(world, &call_id).await;
    assert!(records.started_as(&dial.stream_sid), "{:?}", records.events);
    assert_eq!(
        (records.reason.as_str(), records.turns),
        ("caller_hung_up", 1)
    );
    assert_eq!(records.speakers(), ["agent", "caller", "agent"]);
    assert_eq!(records.transcript[0]["text"], "Hi, Parley here.");
    assert_eq!(records.transcript[1]["text"], BOOKING);
    assert_eq!(records.transcript[2]["text"], answer.as_str());
    assert_eq!(records.rate, rate);
    records.assert_as_long_as_the_call();
    records.assert_sides(&heard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exotel_calls_at_8_and_16_khz_are_held_in_the_streams_own_format() {
    let (world, _) = world(brief_settings(), &[BOOKING, BOOKING]).await;
    // Both at once, on one task: the chat server's default answer echoes the caller.
    tokio::join!(exotel_call(&world, 8_000), exotel_call(&world, 16_000));

    // The recogniser was asked for each stream's own rate.
    let mut rates: Vec<String> = world
        .deepgram
        .connections()
        .iter()
        .map(|c| c.query["sample_rate"].clone())
        .collect();
    rates.sort();
    assert_eq!(rates, ["16000", "8000"]);
    let asked = common::asked(&world.chat);
    assert_eq!(asked.len(), 2);
    assert!(asked.iter().all(|r| last_user(&r.body) == BOOKING));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_its_turn_limit_the_agent_says_goodbye_and_ends_the_call() {
    let mut settings = brief_settings();
    settings.max_turns = 1;
    let (world, call_id) = world(settings, &[BOOKING]).await;
    let (heard, records) = closed_call(&world, &call_id, GOODBYE, "max_turns").await;
    assert!(
        common::asked(&world.chat).is_empty(),
        "no answer past the limit"
    );
    let spoken: Vec<Value> = world
        .voice
        .requests()
        .iter()
        .map(|r| r.body["text"].clone())
        .collect();
    assert_eq!(spoken, [json!("Hi, Parley here."), json!(GOODBYE)]);
    assert_eq!(stretches(&heard).len(), 2, "the greeting and the goodbye");
    assert_eq!(
        heard.marks,
        [("m1".to_owned(), true), ("m2".to_owned(), true)]
    );
    assert_eq!(records.speakers(), ["agent", "caller", "agent"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_vanishes_mid_call_keeps_its_records() {
    let (world, call_id) = world(brief_settings(), &[BOOKING]).await;
    world.chat.push(Reply::text("Sure, for how many people?"));
    let dial = dial(&world, &call_id, Dialect::Twilio);
    let heard = place(
        &dial,
        Dialect::Twilio,
        vec![
            quiet(300),
            Step::Say(speech("I would like to book a table.")),
            quiet(300),
            Step::Vanish,
        ],
    )
    .await;
    assert_eq!(stretches(&heard).len(), 2, "the greeting and the answer");
    // The records are written once the server notices; the recording goes last.
    for _ in 0..50 {
        let events = call_events(&world, &call_id).await;
        if events
            .iter()
            .any(|e| matches!(e, CallEvent::CallRecordingStored { .. }))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let records = records(&world, &call_id).await;
    assert_eq!((records.reason.as_str(), records.turns), ("stream_lost", 1));
    assert_eq!(records.speakers(), ["agent", "caller", "agent"]);
    records.assert_sides(&heard);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_its_longest_the_call_ends_with_a_goodbye() {
    // 30 s is the shortest limit an agent may have: the slowest test here, on purpose.
    let mut settings = brief_settings();
    settings.max_call_seconds = 30;
    let (world, call_id) = world(settings, &[BOOKING]).await;
    world.chat.push(Reply::text("Sure, for how many people?"));
    let dial = dial(&world, &call_id, Dialect::Twilio);
    let steps = vec![
        quiet(300),
        Step::Say(speech("I would like to book a table.")),
        quiet(300),
        Step::Pause(Duration::from_secs(60)),
    ];
    let heard = tokio::time::timeout(
        Duration::from_secs(70),
        twilio_caller::call_as(&dial, Dialect::Twilio, steps),
    )
    .await
    .expect("the server ended the call")
    .unwrap();

    let played = stretches(&heard);
    let (from, to) = *played.last().unwrap();
    assert!(
        (30_000..33_000).contains(&from),
        "the goodbye at the limit: {played:?}"
    );
    assert!(to - from + 200 >= spoken_ms(GOODBYE), "played whole");
    assert_eq!(heard.close, Some((1000, "stream stopped".to_owned())));
    let records = records(&world, &call_id).await;
    assert_eq!(
        (records.reason.as_str(), records.turns),
        ("max_duration", 1)
    );
    assert_eq!(records.speakers(), ["agent", "caller", "agent", "agent"]);
    assert_eq!(records.transcript.last().unwrap()["text"], GOODBYE);
    records.assert_as_long_as_the_call();
}

/// A call in which the caller says one thing and then stays on the line; the server
/// must end it. Checks the closing `line` was heard whole after the caller spoke, the
/// server closed cleanly, and the records up to then were kept with `reason`.
async fn closed_call(
    world: &World,
    call_id: &CallId,
    line: &str,
    reason: &str,
) -> (Heard, Records) {
    let dial = dial(world, call_id, Dialect::Twilio);
    let heard = place(
        &dial,
        Dialect::Twilio,
        vec![
            quiet(300),
            Step::Say(speech("I would like to book a table.")),
            stay_on_the_line(),
        ],
    )
    .await;
    let spoken = world.voice.requests();
    assert_eq!(spoken.last().unwrap().body["text"], line);
    let (from, to) = *stretches(&heard).last().unwrap();
    assert!(
        from > heard.said[0].1,
        "the closing line came after the caller"
    );
    assert!(
        to - from + 200 >= spoken_ms(line),
        "the closing line played whole"
    );
    assert_eq!(heard.marks.last().map(|m| m.1), Some(true));
    assert_eq!(
        heard.close,
        Some((1000, "stream stopped".to_owned())),
        "the server ended the call cleanly"
    );

    let records = records(world, call_id).await;
    assert!(records.started_as(&dial.stream_sid));
    assert_eq!((records.reason.as_str(), records.turns), (reason, 1));
    let speakers = records.speakers();
    assert_eq!(speakers[..2], ["agent", "caller"]);
    assert_eq!(records.transcript[1]["text"], BOOKING);
    let last = records.transcript.last().unwrap();
    assert_eq!(
        (&last["speaker"], &last["text"]),
        (&json!("agent"), &json!(line))
    );
    records.assert_as_long_as_the_call();
    records.assert_sides(&heard);
    assert!(
        records.rms(&records.right, from + 100, to - 100) > 500.0,
        "the closing line is on the recording"
    );
    (heard, records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vendor_failing_for_good_mid_call_ends_it_with_an_apology_and_keeps_the_records() {
    // The language model answers 500 to the first try and to the retry.
    let chat_fails = async {
        let (world, call_id) = world(brief_settings(), &[BOOKING]).await;
        world.chat.push(Reply::error(500));
        world.chat.push(Reply::error(500));
        let (_, records) = closed_call(&world, &call_id, APOLOGY, "vendor_failed").await;
        assert_eq!(records.speakers(), ["agent", "caller", "agent"]);
        let asked = common::asked(&world.chat);
        assert_eq!(asked.len(), 2, "one try and one retry");
        assert!(asked.iter().all(|r| r.status == 500));
        assert_eq!(last_user(&asked[0].body), BOOKING);
        let text = world.metrics().await;
        assert!(
            text.contains("parley_media_vendor_errors_total{vendor=\"openai\"} 1"),
            "{text}"
        );
    };
    // The recogniser's socket drops after its first final, and it cannot be reached
    // again: the session's fresh stream (and its one retry) are refused.
    let stt_fails = async {
        let mut setup = Setup::new(brief_settings(), &[BOOKING]);
        setup.deepgram.drop_after_finals = Some(1);
        setup.deepgram_once = true;
        let (world, call_id) = world_with(setup).await;
        closed_call(&world, &call_id, APOLOGY, "vendor_failed").await;
        let connections = world.deepgram.connections();
        assert_eq!(connections.len(), 1, "no way back to the recogniser");
        assert_eq!(connections[0].finals, [BOOKING]);
        let text = world.metrics().await;
        assert!(
            text.contains("parley_media_vendor_errors_total{vendor=\"deepgram\"}"),
            "{text}"
        );
    };
    tokio::join!(chat_fails, stt_fails);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_agents_voice_is_down_the_offline_voice_apologises() {
    let mut setup = Setup::new(brief_settings(), &[]);
    setup.fallback_voice = true;
    let (world, call_id) = world_with(setup).await;
    // Every request to the agent's voice fails, the greeting's first.
    world.voice.fail_next(503, 100);
    let dial = dial(&world, &call_id, Dialect::Twilio);
    let heard = place(&dial, Dialect::Twilio, vec![stay_on_the_line()]).await;
    let asked = world.voice.requests();
    assert!(!asked.is_empty() && asked.iter().all(|r| r.status == 503));
    assert!(
        asked.iter().all(|r| r.body["text"] != APOLOGY),
        "the failing voice is not asked again for the apology"
    );
    // Flite spoke the apology: the caller heard it whole, and the call ended cleanly.
    let (from, to) = *stretches(&heard)
        .last()
        .expect("the caller heard something");
    assert!(to - from >= 2_000, "a whole sentence: {from}..{to}");
    assert_eq!(heard.close, Some((1000, "stream stopped".to_owned())));
    let records = records(&world, &call_id).await;
    assert_eq!(records.reason, "vendor_failed");
    let last = records.transcript.last().unwrap();
    assert_eq!(
        (&last["speaker"], &last["text"]),
        (&json!("agent"), &json!(APOLOGY))
    );
    assert!(records.rms(&records.right, from + 100, to - 100) > 500.0);
    let text = world.metrics().await;
    assert!(
        text.contains("parley_media_vendor_errors_total{vendor=\"elevenlabs\"}"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recogniser_that_cannot_be_opened_ends_the_call_with_an_apology() {
    let mut setup = Setup::new(brief_settings(), &[]);
    setup.deepgram.refuse_with = Some(401);
    let (world, call_id) = world_with(setup).await;
    let dial = dial(&world, &call_id, Dialect::Twilio);
    let heard = place(&dial, Dialect::Twilio, vec![stay_on_the_line()]).await;
    assert_eq!(world.deepgram.connections()[0].status, 401);
    let spoken = world.voice.requests();
    assert_eq!(spoken.last().unwrap().body["text"], APOLOGY);
    let (from, to) = *stretches(&heard)
        .last()
        .expect("the caller heard the apology");
    assert!(
        to - from + 200 >= spoken_ms(APOLOGY),
        "the apology played whole"
    );
    assert_eq!(heard.close, Some((1000, "stream stopped".to_owned())));
    let records = records(&world, &call_id).await;
    assert_eq!(
        (records.reason.as_str(), records.turns),
        ("vendor_failed", 0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recogniser_that_drops_mid_call_is_reopened_and_the_call_goes_on() {
    let mut setup = Setup::new(brief_settings(), &[BOOKING, "For four people"]);
    setup.deepgram.drop_after_finals = Some(1);
    let (world, call_id) = world_with(setup).await;
    world.chat.push(Reply::text("Sure. How many?"));
    world.chat.push(Reply::text("Done."));
    let dial = dial(&world, &call_id, Dialect::Twilio);
    let heard = place(
        &dial,
        Dialect::Twilio,
        vec![
            quiet(300),
            Step::Say(speech("I would like to book a table.")),
            quiet(300),
            Step::Say(speech("For four people.")),
            quiet(300),
            Step::HangUp,
        ],
    )
    .await;

    // Each stream dropped after one final; the next one heard the next words.
    let connections = world.deepgram.connections();
    assert!(connections.len() >= 2, "{connections:?}");
    assert_eq!(connections[0].finals, [BOOKING]);
    assert_eq!(connections[1].finals, ["For four people"]);
    let asked = common::asked(&world.chat);
    assert_eq!(asked.len(), 2);
    assert_eq!(last_user(&asked[0].body), BOOKING);
    assert_eq!(last_user(&asked[1].body), "For four people");
    assert_eq!(heard.close.as_ref().map(|c| c.0), Some(1000));
    assert!(
        !world
            .voice
            .requests()
            .iter()
            .any(|r| r.body["text"] == APOLOGY),
        "no apology: the call carried on"
    );

    let records = records(&world, &call_id).await;
    assert_eq!(
        (records.reason.as_str(), records.turns),
        ("caller_hung_up", 2)
    );
    assert_eq!(
        records.speakers(),
        ["agent", "caller", "agent", "caller", "agent"]
    );
    assert_eq!(records.transcript[4]["text"], "Done.");
    records.assert_as_long_as_the_call();
    let text = world.metrics().await;
    assert!(
        text.contains("parley_media_vendor_errors_total{vendor=\"deepgram\"}"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_frame_ends_only_its_own_call_and_keeps_its_records() {
    let (world, broken) = world(brief_settings(), &[BOOKING; 4]).await;
    let fine = world.request_call(Carrier::Twilio).await;
    let bad_audio = world.request_call(Carrier::Exotel).await;
    let booking = speech("I would like to book a table.");

    // A caller whose carrier sends a frame that is not JSON once the first turn has
    // been answered (waiting for the answer to start, so that "quiet" is not the quiet
    // before it).
    let broken_dial = dial(&world, &broken, Dialect::Twilio);
    let broken_call = place(
        &broken_dial,
        Dialect::Twilio,
        vec![
            quiet(300),
            Step::Say(booking.clone()),
            Step::AwaitAgentSpeaking {
                within: Duration::from_secs(10),
            },
            quiet(300),
            Step::Send("{\"event\": \"media\", this is not JSON".into()),
            stay_on_the_line(),
        ],
    );
    // An Exotel caller whose media payload is not base64, after the greeting.
    let exotel = Dialect::Exotel { rate: 8_000 };
    let bad_audio_dial = dial(&world, &bad_audio, exotel);
    let bad_frame = json!({
        "event": "media", "sequence_number": "90", "stream_sid": bad_audio_dial.stream_sid,
        "media": {"chunk": "90", "timestamp": "9000", "payload": "not base64 at all!"}
    });
    let bad_audio_call = place(
        &bad_audio_dial,
        exotel,
        vec![
            quiet(300),
            Step::Send(bad_frame.to_string()),
            stay_on_the_line(),
        ],
    );
    // Meanwhile a caller on the same task talks for two turns and hangs up.
    let fine_dial = dial(&world, &fine, Dialect::Twilio);
    let fine_call = place(
        &fine_dial,
        Dialect::Twilio,
        vec![
            quiet(300),
            Step::Say(booking.clone()),
            quiet(300),
            Step::Say(booking.clone()),
            quiet(300),
            Step::HangUp,
        ],
    );
    let (broken_heard, bad_audio_heard, fine_heard) =
        tokio::join!(broken_call, bad_audio_call, fine_call);

    // The broken streams were closed as invalid data, saying why.
    for heard in [&broken_heard, &bad_audio_heard] {
        let (code, reason) = heard.close.clone().expect("the server closed");
        assert_eq!(code, 1007, "{reason}");
        assert!(!reason.is_empty());
    }
    let broken_records = records(&world, &broken).await;
    assert_eq!(
        (broken_records.reason.as_str(), broken_records.turns),
        ("malformed_frame", 1)
    );
    assert_eq!(broken_records.speakers(), ["agent", "caller", "agent"]);
    assert_eq!(broken_records.transcript[1]["text"], BOOKING);
    broken_records.assert_as_long_as_the_call();
    broken_records.assert_sides(&broken_heard);
    let bad_audio_records = records(&world, &bad_audio).await;
    assert_eq!(
        (bad_audio_records.reason.as_str(), bad_audio_records.turns),
        ("malformed_frame", 0)
    );
    assert_eq!(bad_audio_records.speakers(), ["agent"]);
    assert_eq!(bad_audio_records.rate, 8_000);
    bad_audio_records.assert_as_long_as_the_call();

    // The other call went on to the end, untouched.
    assert_eq!(fine_heard.close.as_ref().map(|c| c.0), Some(1000));
    assert!(
        fine_heard.bad_frames.is_empty(),
        "{:?}",
        fine_heard.bad_frames
    );
    assert!(fine_heard.marks.iter().all(|(_, played)| *played));
    let fine_records = records(&world, &fine).await;
    assert_eq!(
        (fine_records.reason.as_str(), fine_records.turns),
        ("caller_hung_up", 2)
    );
    assert_eq!(
        fine_records.speakers(),
        ["agent", "caller", "agent", "caller", "agent"]
    );
    let echoed = format!("You said: {BOOKING}.");
    assert_eq!(fine_records.transcript[4]["text"], echoed.as_str());
    fine_records.assert_as_long_as_the_call();
    fine_records.assert_sides(&fine_heard);
    // The three streams opened together, so this one outlived the broken ones.
    assert!(
        fine_records.duration_ms > broken_records.duration_ms + 1_000,
        "the fine call was still live when the others broke"
    );
}
