//! A whole call on the offline engines alone, as the embedded default holds it with no
//! vendor key: flite's voice, PocketSphinx listening, the shipped appointments flow
//! answering. A simulated Twilio caller speaks (flite's voice, 8 kHz μ-law) to the
//! media task over its loopback WebSocket. Checks that the recogniser heard the day
//! and time as the flow's node expected them (the same audio without the node's
//! phrases is heard as something else), and what the flow did with it: the booking.
//! Needs the Debian packages flite, libpocketsphinx3 and pocketsphinx-en-us
//! (`.ci/test` installs them).

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{Datelike, Timelike, Weekday};
use common::{Scene, quiet, speech, stay_on_the_line};
use parley_media::call::{OneVoice, Vendors, default_recogniser};
use parley_media::g711;
use parley_media::stt::deepgram::DeepgramStt;
use parley_media::stt::pocketsphinx::{Models, PocketSphinxStt};
use parley_media::stt::{SpeechToText, SttConfig, SttEvent};
use parley_media::tts::TextToSpeech;
use parley_media::tts::flite::Flite;
use parley_media::vendor::Endpoint;
use parley_shared::aggregate;
use parley_shared::domain::agent::AgentSettings;
use parley_shared::domain::appointment::AppointmentEvent;
use parley_shared::domain::call::{CallEvent, Carrier};
use parley_shared::domain::tenant::{Tenant, TenantCommand};
use parley_shared::domain::values::TimeZone;
use parley_shared::event::DomainEvent;
use parley_shared::flow::{Flow, Industry, expect};
use parley_shared::secrets::SecretString;
use parley_vendors::twilio_caller::{self, Dialect, Step};

const SECRET: &str = "media-offline-test-stream-secret-0123456789";
const ZONE: &str = "America/New_York";

/// What the caller answers to the day-and-time question.
const WHEN: &str = "next tuesday at two pm";

fn pocketsphinx() -> PocketSphinxStt {
    PocketSphinxStt::new(Models::debian_en_us()).expect(
        "PocketSphinx is installed (Debian packages libpocketsphinx3 and pocketsphinx-en-us)",
    )
}

async fn flite() -> Arc<Flite> {
    Arc::new(
        Flite::from_env()
            .await
            .expect("flite is installed (Debian package flite)"),
    )
}

/// The finals a recogniser with no expected phrases makes of `ulaw`, the phone's audio.
async fn general_model_hears(ulaw: &[u8]) -> Vec<String> {
    let config = SttConfig {
        sample_rate: 8_000,
        language: "en-US".into(),
        endpointing_ms: 500,
    };
    let mut stream = pocketsphinx()
        .open(&config)
        .await
        .expect("the recogniser opens");
    let mut pcm = vec![0_i16; 8 * 300];
    g711::decode_ulaw_into(ulaw, &mut pcm);
    pcm.extend(vec![0_i16; 8 * 800]);
    for chunk in pcm.chunks(160) {
        let mut le = Vec::with_capacity(chunk.len() * 2);
        parley_media::audio::pcm_to_le(chunk, &mut le);
        stream
            .audio
            .send(Bytes::from(le))
            .await
            .expect("audio taken");
    }
    drop(stream.audio);
    let mut finals = Vec::new();
    let reading = async {
        while let Some(event) = stream.events.recv().await {
            if let SttEvent::Final { text, .. } = event {
                finals.push(text);
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), reading)
        .await
        .expect("the recogniser finishes");
    finals
}

#[test]
fn without_a_deepgram_key_pocketsphinx_is_the_default_recogniser() {
    let (stt, offline) = default_recogniser(None, Ok(pocketsphinx()));
    assert!(stt.is_some() && offline.is_some());

    // With the key, Deepgram; the offline recogniser stays out of the way.
    let deepgram = DeepgramStt::new(Endpoint::new(
        "http://127.0.0.1:1",
        SecretString::new("dg-key".into()),
    ));
    let (stt, offline) = default_recogniser(Some(deepgram), Ok(pocketsphinx()));
    assert!(stt.is_some() && offline.is_none());

    // Installed without its model: no recogniser, rather than one failing every call.
    let no_model = PocketSphinxStt::new(Models::in_dir(std::path::Path::new("/nonexistent")));
    let (stt, offline) = default_recogniser(None, no_model);
    assert!(stt.is_none() && offline.is_none());
}

#[test]
fn every_phrase_the_shipped_flows_expect_is_in_the_recognisers_dictionary() {
    // PocketSphinx leaves out a phrase with a word its dictionary lacks: one would be
    // a phrase the caller is never heard saying.
    let dictionary = std::fs::read_to_string(Models::debian_en_us().dictionary)
        .expect("the dictionary of pocketsphinx-en-us is installed");
    let known: std::collections::HashSet<&str> = dictionary
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(|word| word.split('(').next().unwrap_or(word))
        .collect();
    let mut checked = 0;
    for industry in Industry::ALL {
        let flow = Flow::shipped(industry);
        for node in flow.nodes.keys() {
            for phrase in expect::phrases_at(flow, node) {
                for word in phrase.split(' ') {
                    assert!(
                        known.contains(word),
                        "{industry:?} {node}: {word:?} of {phrase:?} is not in the dictionary"
                    );
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 1_000, "{checked}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_on_the_offline_engines_books_the_time_the_caller_said() {
    // A dental practice in New York, with the shipped appointments flow.
    let tenant = parley_shared::domain::ids::TenantId::new();
    let mut settings = AgentSettings::named("Riley");
    settings.flow = Some(Flow::default_for(Industry::Appointments));
    let scene = Scene::new(&tenant.to_string(), settings).await;
    let ctx = scene.ctx();
    aggregate::execute::<Tenant>(
        &*scene.ports.events,
        &*scene.ports.clock,
        &tenant.stream(),
        &ctx,
        TenantCommand::Create {
            name: "Acme Dental".into(),
            time_zone: TimeZone::parse(ZONE).unwrap(),
        },
    )
    .await
    .unwrap();
    let lead_id = common::lead(&scene.ports, &ctx, Some("Ana"), &[]).await;

    // The embedded default's engines: no key, no vendor server.
    let (stt, offline_stt) = default_recogniser(None, Ok(pocketsphinx()));
    assert!(offline_stt.is_some(), "PocketSphinx is the default");
    let voice = flite().await;
    let vendors = Vendors {
        stt,
        offline_stt,
        llm: None,
        tools: None,
        voices: Arc::new(OneVoice(voice.clone() as Arc<dyn TextToSpeech>)),
        fallback_voice: Some(voice),
        deployment: None,
        min_speech_ms: 200,
        silence_ms: 500,
    };
    let (base, _) = scene.serve(SECRET, vendors).await;
    let call_id = scene.call(Carrier::Twilio, Some(lead_id.clone())).await;
    let dial = scene.dial(&base, SECRET, &call_id, Dialect::Twilio);

    let when = speech(WHEN);
    let steps = vec![
        quiet(500),
        Step::Say(speech("a dental check up")),
        quiet(500),
        Step::Say(when.clone()),
        quiet(500),
        Step::Say(speech("yes")),
        stay_on_the_line(),
    ];
    // The shipped flow's lines in flite's voice take about half a minute.
    let heard = tokio::time::timeout(
        Duration::from_secs(120),
        twilio_caller::call_as(&dial, Dialect::Twilio, steps),
    )
    .await
    .expect("the call ended in time")
    .expect("the call went through");
    eprintln!("played {:?}, said {:?}", heard.played, heard.said);
    // The agent hung up after its goodbye.
    assert_eq!(heard.close.as_ref().map(|c| c.0), Some(1000), "{heard:?}");

    let stored = |e: &CallEvent| matches!(e, CallEvent::TranscriptStored { .. });
    let events = scene.call_events_once(&call_id, stored).await;
    let turns = scene.transcript(&call_id).await;
    let lines = |speaker: &str| -> Vec<String> {
        turns
            .iter()
            .filter(|t| t["speaker"] == speaker)
            .map(|t| t["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let (caller, agent) = (lines("caller"), lines("agent"));
    eprintln!("caller: {caller:?}\nagent: {agent:?}");

    // The reason is free speech, heard by the general model; the day and time were
    // one of the phrases the day-and-time node expects, heard exactly; and the yes.
    let flow = Flow::shipped(Industry::Appointments);
    assert_eq!(caller.len(), 3, "{caller:?}");
    assert!(!caller[0].trim().is_empty());
    assert_eq!(caller[1], WHEN);
    assert!(expect::phrases_at(flow, "when").iter().any(|p| p == WHEN));
    let confirm = expect::phrases_at(flow, "confirm");
    assert!(
        confirm.contains(&caller[2]) && parley_shared::slots::yes_no(&caller[2]) == Some(true),
        "{caller:?}"
    );
    // Without the node's phrases the same words are heard as something the flow could
    // not read as the day and time: the phrases made the difference.
    let general = general_model_hears(&when).await;
    eprintln!("the general model alone: {general:?}");
    assert!(
        !general.iter().any(|g| g == WHEN),
        "the general model heard {WHEN:?} too, so this call does not show the phrases \
         were used: {general:?}"
    );

    // The flow understood: it said the time back, booked it and said goodbye.
    assert_eq!(agent.len(), 4, "{agent:?}");
    assert!(agent[0].starts_with("Thanks for calling Acme Dental. This is Riley."));
    assert_eq!(agent[1], "Thanks. What day and time would suit you?");
    assert!(
        agent[2].starts_with("So that's Tuesday, ") && agent[2].contains(" at 2 pm. Shall I book"),
        "{agent:?}"
    );
    assert!(
        agent[3].starts_with("You're all set for Tuesday, "),
        "{agent:?}"
    );
    let booked: Vec<_> = scene
        .ports
        .events
        .read_all(None, 10_000)
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.stream.category() == AppointmentEvent::CATEGORY)
        .filter_map(|e| {
            parley_shared::event::decode::<AppointmentEvent>(&e)
                .ok()
                .flatten()
        })
        .collect();
    let [
        AppointmentEvent::AppointmentBooked {
            starts_at, title, ..
        },
    ] = booked.as_slice()
    else {
        panic!("one booking: {booked:?}");
    };
    let local = starts_at.with_timezone(&TimeZone::parse(ZONE).unwrap().tz());
    assert_eq!(
        (local.weekday(), local.hour(), local.minute()),
        (Weekday::Tue, 14, 0)
    );
    assert_eq!(title, &format!("Appointment: {}", caller[0]));
    let booked_ok = events.iter().any(
        |e| matches!(e, CallEvent::ToolCalled { name, ok: true } if name == "book_appointment"),
    );
    assert!(booked_ok, "{events:?}");
}
