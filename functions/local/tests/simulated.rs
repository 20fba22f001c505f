//! The simulated carrier inside the local stack: calls asked for through the API go
//! out through Parley's own Twilio client to the simulator, which rings a callee who is
//! busy, does not answer, or answers and talks to the agent over the real media
//! WebSocket, with signed Twilio-shaped webhooks, on the offline engines only (flite,
//! PocketSphinx, the scripted flow). Everything is checked through the API.

mod common;

use std::time::Duration;

use common::{Stack, spoken};
use parley::carrier::callee::{self, Answer};
use serde_json::Value;

const SEED: u64 = 11;

/// A number the seeded mix answers with `answer` on a first attempt.
fn number_answering(answer: Answer) -> String {
    (0..10_000u32)
        .map(|n| format!("+1202555{n:04}"))
        .find(|to| callee::mixed(SEED, to, 1) == answer)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn busy_and_unanswered_numbers_end_as_the_carrier_reports_them() {
    let stack = Stack::start(SEED).await;
    let busy = stack.place(&number_answering(Answer::Busy)).await;
    let unanswered = stack.place(&number_answering(Answer::NoAnswer)).await;
    let busy = stack.ended(&busy, Duration::from_secs(20)).await;
    let unanswered = stack.ended(&unanswered, Duration::from_secs(20)).await;
    assert_eq!(busy["status"], "busy", "{busy}");
    assert_eq!(unanswered["status"], "no_answer", "{unanswered}");
    for call in [&busy, &unanswered] {
        assert!(
            call["carrier_call_id"].as_str().unwrap().starts_with("CA"),
            "{call}"
        );
        assert!(call["recording_url"].is_null(), "{call}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_call_is_a_whole_conversation_on_the_offline_engines() {
    let stack = Stack::start(SEED).await;
    let id = stack.place(&number_answering(Answer::Human)).await;
    let call = stack.ended(&id, Duration::from_secs(120)).await;
    assert_eq!(call["status"], "completed", "{call}");
    let duration = call["duration_secs"].as_u64().unwrap();
    assert!(duration >= 5, "{call}");

    // The callee's lines (the default ones) were heard and understood: the flow
    // booked next Tuesday at two in the afternoon, in the agent's time zone.
    let transcript = stack.transcript(&call).await;
    let turns = transcript["turns"].as_array().unwrap();
    let (caller, agent) = (spoken(turns, "caller"), spoken(turns, "agent"));
    assert!(
        caller.iter().any(|t| t.contains("tuesday")),
        "caller: {caller:?}"
    );
    assert!(
        agent.iter().any(|t| t.contains("all set")),
        "agent: {agent:?}"
    );
    let (_, appointments) = stack
        .send(reqwest::Method::GET, "/v1/appointments", Value::Null)
        .await;
    let booked = appointments["items"].as_array().unwrap();
    assert_eq!(booked.len(), 1, "{appointments}");
    let start = chrono::DateTime::parse_from_rfc3339(booked[0]["starts_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&chrono_tz::America::New_York);
    assert_eq!(start.format("%A %H:%M").to_string(), "Tuesday 14:00");

    // The recording covers the call: stereo 8 kHz, as long as the call, give or take
    // the ringing and the wrap-up.
    let wav = stack
        .http
        .get(call["recording_url"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let reader = hound::WavReader::new(std::io::Cursor::new(wav.to_vec())).unwrap();
    let seconds = reader.duration() as f64 / f64::from(reader.spec().sample_rate);
    assert!(
        (seconds - duration as f64).abs() <= 3.0,
        "recording {seconds} s, call {duration} s"
    );
}

/// `parley call`'s library: a softphone dials the demo number, says one line after
/// the greeting, and hangs up once the agent has answered it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_softphone_talks_to_the_agent_on_a_simulated_number() {
    let stack = Stack::start(SEED).await;
    stack.always_open_agent("+12025550124").await;
    let dir = tempfile::tempdir().unwrap();
    let line = dir.path().join("caller.wav");
    let made = std::process::Command::new("flite")
        .args([
            "-voice",
            "kal",
            "-t",
            "A check up for my teeth please.",
            "-o",
        ])
        .arg(&line)
        .status()
        .expect("flite must be installed (apt-get install flite)");
    assert!(made.success());
    let record = dir.path().join("agent.wav");
    let report = parley::softphone::call(&parley::softphone::Call {
        base_url: stack.base.clone(),
        to: "+12025550124".into(),
        from: Some("+14155550142".into()),
        play: line,
        record: record.clone(),
        quiet: Duration::from_secs(3),
        limit: Duration::from_secs(90),
    })
    .await
    .unwrap();
    assert!(
        report.call_sid.as_deref().unwrap().starts_with("CA"),
        "{report:?}"
    );
    // The greeting and the answer to the line, at least.
    assert!(report.agent_seconds > 4.0, "{report:?}");
    let written = hound::WavReader::open(&record).unwrap();
    assert_eq!(written.spec().sample_rate, 8000);
    let loud = written
        .into_samples::<i16>()
        .filter(|s| s.as_ref().unwrap().unsigned_abs() > 2_000)
        .count();
    assert!(
        loud > 8000,
        "the agent's side is mostly silence: {loud} loud samples"
    );

    // The call, as the API has it: inbound from the softphone's number, the caller's
    // line understood, and the agent's next question asked.
    let call = stack
        .ended_call_from("+14155550142", Duration::from_secs(30))
        .await;
    assert_eq!(call["direction"], "inbound");
    assert_eq!(call["carrier"], "simulated");
    assert_eq!(call["status"], "completed", "{call}");
    let transcript = stack.transcript(&call).await;
    let turns = transcript["turns"].as_array().unwrap();
    let text = |speaker: &str| spoken(turns, speaker).join(" | ");
    assert!(text("caller").contains("teeth"), "{transcript}");
    assert!(text("agent").contains("what day and time"), "{transcript}");
}
