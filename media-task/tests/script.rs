//! Whole calls answered by the agent's flow alone, with no language model at all: a
//! simulated Twilio caller speaking real speech (flite) to the media task over its
//! WebSocket, a local Deepgram server returning the caller's words and a local
//! ElevenLabs voice; and a ConversationRelay call (text only) through the same
//! scripted brain. Checks what the caller hears, and what the flow's actions leave in
//! the store: the booked appointment (in the tenant's time zone), the qualified lead,
//! the transfer asked for, the call's events and transcript.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, Timelike, Utc, Weekday};
use common::{Scene, ended, place, quiet, speech, stay_on_the_line};
use parley_media::call::{OneVoice, Vendors, Voices};
use parley_media::stt::deepgram::DeepgramStt;
use parley_media::tts::TextToSpeech;
use parley_media::tts::elevenlabs::{ElevenLabs, ElevenLabsVoice};
use parley_media::vendor::Endpoint;
use parley_shared::aggregate;
use parley_shared::confirmation::ConfirmationJob;
use parley_shared::domain::agent::{AgentSettings, ConversationMode, VoiceProvider};
use parley_shared::domain::appointment::{AppointmentEvent, MeetingKind};
use parley_shared::domain::call::{CallEvent, CallOutcome, Carrier};
use parley_shared::domain::ids::{AppointmentId, CallId, LeadId, TenantId};
use parley_shared::domain::lead::{Lead, LeadEvent, LeadStatus, Temperature};
use parley_shared::domain::tenant::{Tenant, TenantCommand};
use parley_shared::domain::values::TimeZone;
use parley_shared::event::{DomainEvent, RecordedEvent};
use parley_shared::flow::{Flow, Industry};
use parley_shared::qualify::{QualificationSettings, Signal};
use parley_shared::secrets::SecretString;
use parley_vendors::relay_caller;
use parley_vendors::twilio_caller::{Dial, Dialect, Step};
use parley_vendors::{deepgram, elevenlabs};
use serde_json::Value;

const SECRET: &str = "media-script-test-stream-secret-0123456789";
const ZONE: &str = "America/New_York";

/// A short booking flow, so the audio call stays quick: when, a confirmation by key,
/// the booking.
const BOOKING_FLOW: &str = r#"
name: Quick booking
start: when
nodes:
  when:
    say: Hi {lead_name}, when suits you?
    collect: { slot: appointment_time, kind: datetime }
    next:
      - goto: confirm
  confirm:
    say: "{appointment_time}. Book it?"
    collect: { slot: confirmed, kind: yes_no, keypad: true }
    next:
      - { slot: confirmed, is: yes, goto: booked }
      - goto: when
  booked:
    on_enter:
      - book: { title: "Visit with {tenant_name}", duration_minutes: 30, kind: in_person }
      - send_confirmation: { channel: sms }
      - end: { outcome: booked }
    say: Booked. Goodbye!
"#;

/// A tenant in New York with one agent, and a lead (outbound calls are to it).
struct World {
    scene: Scene,
    lead_id: LeadId,
    /// `ws://127.0.0.1:port` of the media task.
    base: String,
    deepgram: Option<deepgram::Deepgram>,
    voice: Option<parley_vendors::speech::SpeechServer>,
}

/// Twilio speaks for a relay agent: the deployment has no voice for it.
struct NoVoice;

#[async_trait::async_trait]
impl Voices for NoVoice {
    async fn voice(&self, _: &AgentSettings) -> Option<Arc<dyn TextToSpeech>> {
        None
    }
}

/// The store, the media task with no language model, and (for audio calls) Deepgram
/// hearing `phrases` and a voice; a relay world has neither.
async fn world(settings: AgentSettings, lead_name: Option<&str>, phrases: &[&str]) -> World {
    let tenant = TenantId::new();
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
    // The tenant's own bar for a hot lead, above what a flow's answers reach: a lead
    // scored under the default rules would be hot.
    let strict = QualificationSettings {
        hot_at: 0.95,
        ..QualificationSettings::default()
    };
    aggregate::execute::<Tenant>(
        &*scene.ports.events,
        &*scene.ports.clock,
        &tenant.stream(),
        &ctx,
        TenantCommand::SetQualification { settings: strict },
    )
    .await
    .unwrap();
    let lead_id = common::lead(&scene.ports, &ctx, lead_name, &[]).await;

    let audio = !phrases.is_empty();
    let (deepgram, voice, vendors) = if audio {
        let deepgram = deepgram::start_with(
            phrases.iter().map(|p| p.to_string()).collect(),
            deepgram::Behaviour::default(),
        )
        .await
        .unwrap();
        let voice = elevenlabs::start().await.unwrap();
        let stt = DeepgramStt::new(Endpoint::new(
            &deepgram.url(),
            SecretString::new(deepgram.key().into()),
        ));
        let tts = ElevenLabs::new(
            Endpoint::new(&voice.url(), SecretString::new(voice.key().into())),
            ElevenLabsVoice::new("voice-1"),
        );
        let vendors = Vendors {
            stt: Some(Arc::new(stt)),
            offline_stt: None,
            llm: None,
            tools: None,
            voices: Arc::new(OneVoice(Arc::new(tts))),
            fallback_voice: None,
            deployment: None,
            min_speech_ms: 200,
            silence_ms: 500,
        };
        (Some(deepgram), Some(voice), vendors)
    } else {
        let vendors = Vendors {
            stt: None,
            offline_stt: None,
            llm: None,
            tools: None,
            voices: Arc::new(NoVoice),
            fallback_voice: None,
            deployment: None,
            min_speech_ms: 200,
            silence_ms: 500,
        };
        (None, None, vendors)
    };
    let (base, _) = scene.serve(SECRET, vendors).await;
    World {
        scene,
        lead_id,
        base,
        deepgram,
        voice,
    }
}

impl World {
    /// An outbound call to the world's lead.
    async fn call(&self) -> CallId {
        self.scene
            .call(Carrier::Twilio, Some(self.lead_id.clone()))
            .await
    }

    fn dial(&self, call_id: &CallId) -> Dial {
        self.scene
            .dial(&self.base, SECRET, call_id, Dialect::Twilio)
    }

    /// Every event of one category, decoded.
    async fn all<E: DomainEvent>(&self) -> Vec<(RecordedEvent, E)> {
        let events = self
            .scene
            .ports
            .events
            .read_all(None, 10_000)
            .await
            .unwrap();
        events
            .into_iter()
            .filter(|e| e.stream.category() == E::CATEGORY)
            .filter_map(|e| {
                let decoded = parley_shared::event::decode::<E>(&e).ok().flatten()?;
                Some((e, decoded))
            })
            .collect()
    }

    /// The call's events once its records are written (they follow the session's end).
    async fn records(&self, call_id: &CallId) -> Vec<CallEvent> {
        let stored = |e: &CallEvent| matches!(e, CallEvent::TranscriptStored { .. });
        self.scene.call_events_once(call_id, stored).await
    }

    async fn transcript(&self, call_id: &CallId) -> Vec<Value> {
        self.scene.transcript(call_id).await
    }

    /// A ConversationRelay session for `call_id` as the webhook's TwiML sets it up,
    /// named `name`, in `direction` as Twilio names it.
    fn relay_dial(&self, call_id: &CallId, name: &str, direction: &str) -> relay_caller::Dial {
        let token = common::token(&self.scene.tenant, SECRET, &call_id.to_string(), 5);
        relay_caller::Dial {
            url: format!("{}/media/twilio-relay", self.base),
            session_id: format!("VX{name}"),
            call_sid: format!("CA{name}"),
            from: "+14155550100".into(),
            to: "+14155550123".into(),
            direction: direction.into(),
            parameters: vec![
                ("tenant_id".into(), self.scene.tenant.clone()),
                ("call_id".into(), call_id.to_string()),
                ("direction".into(), direction.into()),
                ("token".into(), token),
            ],
        }
    }

    /// The call as the API shows it.
    async fn view(&self, call_id: &CallId) -> parley_shared::readmodel::View {
        let views = &self.scene.ports.views;
        let view = views.get("calls", &call_id.to_string()).await.unwrap();
        view.expect("the call's view")
    }

    /// What the voice was asked to say, in order.
    fn spoken(&self) -> Vec<String> {
        self.voice
            .as_ref()
            .unwrap()
            .requests()
            .iter()
            .map(|r| r.body["text"].as_str().unwrap().to_owned())
            .collect()
    }
}

fn tools_called(events: &[CallEvent]) -> Vec<(String, bool)> {
    events
        .iter()
        .filter_map(|e| match e {
            CallEvent::ToolCalled { name, ok } => Some((name.clone(), *ok)),
            _ => None,
        })
        .collect()
}

fn texts<'a>(turns: &'a [Value], speaker: &str) -> Vec<&'a str> {
    turns
        .iter()
        .filter(|t| t["speaker"] == speaker)
        .map(|t| t["text"].as_str().unwrap())
        .collect()
}

/// The transcript's lines are what the voice spoke: each piece (sentences may be
/// synthesised side by side, so in any order) is in them, and nothing else is.
fn assert_all_spoken(agent: &[&str], spoken: &[String]) {
    let all = agent.join(" ");
    for piece in spoken {
        assert!(all.contains(piece.as_str()), "{piece:?} in {all:?}");
    }
    let spoken_len: usize = spoken.iter().map(|s| s.len() + 1).sum();
    assert_eq!(spoken_len - 1, all.len(), "{spoken:?} vs {all:?}");
}

fn scripted(flow: &str) -> AgentSettings {
    let mut settings = AgentSettings::named("Riley");
    settings.flow = Some(Flow::parse_yaml(flow).unwrap());
    settings
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_greets_books_in_the_tenants_time_and_ends_the_call() {
    let world = world(scripted(BOOKING_FLOW), None, &["next tuesday at two pm"]).await;
    let call_id = world.call().await;
    let dial = world.dial(&call_id);
    let heard = place(
        &dial,
        Dialect::Twilio,
        vec![
            quiet(300),
            Step::Say(speech("next tuesday at two pm")),
            quiet(300),
            Step::Dtmf('1'),
            stay_on_the_line(),
        ],
    )
    .await;

    // The flow's greeting first: the lead has no name, and it reads naturally.
    let spoken = world.spoken();
    assert_eq!(spoken[0], "Hi, when suits you?");
    assert!(
        heard.played[0].0 < heard.said[0].0,
        "greeted before the caller spoke"
    );
    // The server hung up, after the goodbye had played.
    assert_eq!(heard.close.as_ref().map(|c| c.0), Some(1000));
    assert!(heard.marks.iter().all(|(_, played)| *played), "{heard:?}");
    assert!(spoken.iter().any(|s| s == "Goodbye!"), "{spoken:?}");

    // The appointment: 2 pm on a Tuesday in New York, stored in UTC.
    let booked = world.all::<AppointmentEvent>().await;
    assert_eq!(booked.len(), 1, "{booked:?}");
    let AppointmentEvent::AppointmentBooked {
        lead_id,
        call_id: booked_call,
        title,
        starts_at,
        duration_minutes,
        kind,
        ..
    } = &booked[0].1
    else {
        panic!("{booked:?}")
    };
    assert_eq!(lead_id, &world.lead_id);
    assert_eq!(booked_call.as_ref(), Some(&call_id));
    assert_eq!(title, "Visit with Acme Dental");
    assert_eq!((*duration_minutes, *kind), (30, MeetingKind::InPerson));
    let local = starts_at.with_timezone(&TimeZone::parse(ZONE).unwrap().tz());
    assert_eq!(
        (local.weekday(), local.hour(), local.minute()),
        (Weekday::Tue, 14, 0)
    );
    // New York is 4 or 5 hours behind UTC.
    assert!(matches!(starts_at.hour(), 18 | 19), "{starts_at}");
    assert!(*starts_at > Utc::now() && *starts_at < Utc::now() + chrono::Duration::days(15));

    // The call's history: the actions as tools, then the flow's own end.
    let events = world.records(&call_id).await;
    assert_eq!(ended(&events), ("agent_ended".into(), 2));
    assert_eq!(
        tools_called(&events),
        [
            ("book_appointment".into(), true),
            ("send_confirmation".into(), true),
            ("end_call".into(), true)
        ]
    );

    // The transcript holds every line the caller heard, and the caller's turns.
    let turns = world.transcript(&call_id).await;
    let agent = texts(&turns, "agent");
    assert_eq!(agent.len(), 3, "{turns:?}");
    assert_eq!(agent[0], "Hi, when suits you?");
    assert!(
        agent[1].starts_with("Tuesday, ") && agent[1].ends_with(" at 2 pm. Book it?"),
        "{agent:?}"
    );
    assert_eq!(agent[2], "Booked. Goodbye!");
    assert_all_spoken(&agent, &spoken);
    assert_eq!(texts(&turns, "caller"), ["next tuesday at two pm", ""]);
    let mut caller = turns.iter().filter(|t| t["speaker"] == "caller");
    assert_eq!(caller.next_back().unwrap()["dtmf"], "1");
    let tools: Vec<&str> = turns[4]["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(tools, ["book_appointment", "send_confirmation", "end_call"]);

    // What the call came to, on the call and on its lead.
    let outcome = events.iter().find_map(|e| match e {
        CallEvent::OutcomeClassified { outcome, summary } => Some((*outcome, summary.clone())),
        _ => None,
    });
    let (outcome, summary) = outcome.expect("the call is classified");
    assert_eq!(outcome, CallOutcome::AppointmentSet);
    assert!(summary.contains("in person"), "{summary}");
    // The call's view, refreshed after its records, shows them.
    let view = world.view(&call_id).await;
    assert_eq!(view.body["outcome"], "appointment_set");
    assert_eq!(view.body["summary"], summary.as_str());
    assert!(view.body["transfer"].is_null());
    let tenant = world.scene.ctx().tenant_id;
    let lead =
        aggregate::load::<Lead>(&*world.scene.ports.events, &world.lead_id.stream(), &tenant)
            .await
            .unwrap()
            .state;
    assert_eq!(lead.status, LeadStatus::MeetingScheduled);
    assert_eq!(lead.details["confirmed"], "yes");
    assert!(
        lead.details["appointment_time"].ends_with(" 14:00"),
        "{:?}",
        lead.details
    );
    // The confirmation waits on the message queue for the sender: ids and the text,
    // never the lead's number.
    let queued = world
        .scene
        .ports
        .message_queue
        .receive(10, Duration::from_secs(30), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(queued.len(), 1, "{queued:?}");
    let job = ConfirmationJob::parse(&queued[0].body).unwrap();
    assert_eq!(job.lead_id, world.lead_id);
    assert_eq!(job.call_id, call_id);
    let booked_id = AppointmentId::parse(booked[0].0.stream.id()).unwrap();
    assert_eq!(job.appointment_id, Some(booked_id));
    assert!(job.text.contains("Acme Dental"), "{}", job.text);
    assert!(!queued[0].body.contains("+1"), "{}", queued[0].body);
    drop(world.deepgram);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asking_for_a_person_requests_a_transfer_and_ends_after_the_line() {
    let world = world(
        scripted(BOOKING_FLOW),
        Some("Ana"),
        &["I want to speak to a person"],
    )
    .await;
    let call_id = world.call().await;
    let heard = place(
        &world.dial(&call_id),
        Dialect::Twilio,
        vec![
            quiet(300),
            Step::Say(speech("I want to speak to a person")),
            stay_on_the_line(),
        ],
    )
    .await;
    let spoken = world.spoken();
    assert_eq!(spoken[0], "Hi Ana, when suits you?");
    let mut rest = spoken[1..].to_vec();
    rest.sort();
    assert_eq!(
        rest,
        ["Let me connect you with someone from the team.", "Sure."]
    );
    assert_eq!(heard.close.as_ref().map(|c| c.0), Some(1000));
    assert!(heard.marks.iter().all(|(_, played)| *played), "{heard:?}");

    let events = world.records(&call_id).await;
    let transfer = events
        .iter()
        .position(|e| matches!(e, CallEvent::TransferRequested { .. }))
        .expect("the transfer is asked for");
    assert_eq!(
        events[transfer],
        CallEvent::TransferRequested {
            mode: "warm".into(),
            reason: "asked_for_person".into()
        }
    );
    let end = events
        .iter()
        .position(|e| matches!(e, CallEvent::MediaStreamEnded { .. }))
        .unwrap();
    assert!(transfer < end, "asked for during the call");
    assert_eq!(ended(&events), ("agent_ended".into(), 1));
    assert_eq!(tools_called(&events), [("transfer_to_human".into(), true)]);
    let turns = world.transcript(&call_id).await;
    assert_eq!(
        texts(&turns, "agent"),
        [
            "Hi Ana, when suits you?",
            "Sure. Let me connect you with someone from the team."
        ]
    );
    // Nothing was booked.
    assert!(world.all::<AppointmentEvent>().await.is_empty());
    // Escalated, and the call's view says to whom it is going and how.
    let view = world.view(&call_id).await;
    assert_eq!(view.body["outcome"], "escalated");
    assert_eq!(
        view.body["transfer"],
        serde_json::json!({"mode": "warm", "reason": "asked_for_person", "dialled": 0, "answered": false})
    );
    drop(world.deepgram);
}

fn answer() -> relay_caller::Step {
    relay_caller::Step::AwaitAnswer {
        within: Duration::from_secs(5),
    }
}

fn say(text: &str) -> relay_caller::Step {
    relay_caller::Step::Say(text.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_call_qualifies_the_lead_through_the_shipped_flow() {
    let mut settings = AgentSettings::named("Riley");
    settings.industry = Some(Industry::LeadQualification);
    settings.mode = ConversationMode::ConversationRelay;
    settings.voice.provider = VoiceProvider::Twilio;
    let world = world(settings, Some("Ana"), &[]).await;
    let call_id = world.call().await;
    let dial = world.relay_dial(&call_id, "script", "outbound-api");
    let heard = tokio::time::timeout(
        Duration::from_secs(40),
        relay_caller::call(
            &dial,
            vec![
                answer(),
                say("yes sure"),
                answer(),
                say("we need a new booking system for our clinic"),
                answer(),
                say("about twenty thousand dollars"),
                answer(),
                say("yes that's me"),
                answer(),
                say("within two months"),
                answer(),
                say("no thanks"),
                answer(),
            ],
        ),
    )
    .await
    .expect("the call ended in time")
    .unwrap();
    eprintln!("{:?}", heard.answers);

    assert_eq!(
        heard.answers[0],
        "Hi Ana, this is Riley from Acme Dental. You recently asked about our services. \
         Do you have two minutes for a few quick questions?"
    );
    assert!(
        heard.answers[1].contains("What problem"),
        "{:?}",
        heard.answers
    );
    assert!(heard.answers[2].contains("budget"), "{:?}", heard.answers);
    assert!(
        heard.answers[3].contains("signs off"),
        "{:?}",
        heard.answers
    );
    assert!(
        heard.answers[4].contains("get started"),
        "{:?}",
        heard.answers
    );
    assert!(
        heard.answers[5].contains("specialists"),
        "{:?}",
        heard.answers
    );
    assert!(
        heard.answers[6].ends_with("Goodbye!"),
        "{:?}",
        heard.answers
    );
    // The flow ended the call: `end`, with the reason for the webhook.
    assert_eq!(heard.ends.len(), 1, "{:?}", heard.ends);
    let handoff: Value = serde_json::from_str(heard.ends[0].0.as_deref().unwrap()).unwrap();
    assert_eq!(handoff["reason"], "agent_ended");

    // The lead is qualified, with the caller's answers as evidence.
    let qualified: Vec<LeadEvent> = world
        .all::<LeadEvent>()
        .await
        .into_iter()
        .filter(|(e, _)| e.stream == world.lead_id.stream())
        .map(|(_, e)| e)
        .filter(|e| matches!(e, LeadEvent::LeadQualified { .. }))
        .collect();
    assert_eq!(qualified.len(), 1, "{qualified:?}");
    let LeadEvent::LeadQualified {
        temperature,
        score,
        evidence,
    } = &qualified[0]
    else {
        unreachable!()
    };
    let signals: Vec<Signal> = evidence.iter().map(|e| e.signal).collect();
    for signal in [
        Signal::Budget,
        Signal::Authority,
        Signal::Need,
        Signal::Timeline,
    ] {
        assert!(signals.contains(&signal), "{signal:?} in {evidence:?}");
    }
    assert!(
        evidence
            .iter()
            .any(|e| e.words.contains("booking system for our clinic")),
        "{evidence:?}"
    );
    // Budget, authority, need and an urgent timeline: 0.25 + 0.20 + 0.25 + 0.20.
    assert_eq!(*score, 0.9, "{evidence:?}");
    assert_eq!(
        *temperature,
        Temperature::Warm,
        "under the tenant's own bar"
    );

    let events = world.records(&call_id).await;
    assert_eq!(ended(&events), ("agent_ended".into(), 6));
    assert_eq!(
        tools_called(&events),
        [("qualify_lead".into(), true), ("end_call".into(), true)]
    );
    let turns = world.transcript(&call_id).await;
    assert_eq!(texts(&turns, "agent").len(), 7, "{turns:?}");
    assert_eq!(
        texts(&turns, "caller")[1],
        "we need a new booking system for our clinic"
    );
}

/// A flow's booking refused at the last step (another caller took the time first):
/// no confirmation is sent and the call does not end; the flow offers the nearest
/// free time, takes the caller's yes, and books that instead.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_offers_the_next_free_time_when_its_booking_is_refused() {
    let mut settings = AgentSettings::named("Riley");
    settings.industry = Some(Industry::Appointments);
    settings.mode = ConversationMode::ConversationRelay;
    settings.voice.provider = VoiceProvider::Twilio;
    settings.business_hours = serde_json::from_value(serde_json::json!({
        "time_zone": ZONE,
        "week": {
            "monday": [{"open": "09:00", "close": "17:00"}],
            "tuesday": [{"open": "09:00", "close": "17:00"}],
            "wednesday": [{"open": "09:00", "close": "17:00"}],
            "thursday": [{"open": "09:00", "close": "17:00"}],
            "friday": [{"open": "09:00", "close": "17:00"}],
        }
    }))
    .unwrap();
    let world = world(settings, Some("Ana"), &[]).await;
    // Someone else already has the agent's next Tuesday at 2 pm, New York time.
    let zone = TimeZone::parse(ZONE).unwrap().tz();
    let now = Utc::now().with_timezone(&zone).naive_local();
    let when = parley_shared::slots::when("next tuesday at two pm", now).unwrap();
    let at = when.date.unwrap().and_time(when.time.unwrap());
    let taken = at.and_local_timezone(zone).earliest().unwrap().to_utc();
    let other = parley_shared::domain::ids::AppointmentId::new();
    parley_shared::appointmentviews::run_appointment(
        &world.scene.ports,
        &world.scene.ctx(),
        &other,
        parley_shared::domain::appointment::AppointmentCommand::Book {
            lead_id: common::lead(&world.scene.ports, &world.scene.ctx(), None, &[]).await,
            call_id: None,
            agent_id: Some(world.scene.agent_id.clone()),
            title: "Someone else".into(),
            starts_at: taken,
            duration_minutes: 30,
            kind: MeetingKind::InPerson,
        },
    )
    .await
    .unwrap();

    let call_id = world.call().await;
    let dial = world.relay_dial(&call_id, "refused", "inbound");
    let heard = tokio::time::timeout(
        Duration::from_secs(40),
        relay_caller::call(
            &dial,
            vec![
                answer(),
                say("a dental cleaning"),
                answer(),
                say("next tuesday at two pm"),
                answer(),
                say("yes"),
                answer(),
                say("yes please"),
                answer(),
                say("yes"),
                answer(),
            ],
        ),
    )
    .await
    .expect("the call ended in time")
    .unwrap();
    let answers = &heard.answers;
    assert!(answers[2].contains("Shall I book it"), "{answers:?}");
    // The booking was refused: no "all set", the nearest free time instead.
    assert!(
        answers[3].starts_with("I'm sorry, that time is not available.")
            && answers[3].contains("at 2:30 pm. Does that suit you?"),
        "{answers:?}"
    );
    assert!(
        answers[4].contains("at 2:30 pm. Shall I book it"),
        "{answers:?}"
    );
    assert!(answers[5].starts_with("You're all set for"), "{answers:?}");

    // One booking of this call's, half an hour after the other's; one confirmation.
    let booked: Vec<_> = world
        .all::<AppointmentEvent>()
        .await
        .into_iter()
        .filter_map(|(_, e)| match e {
            AppointmentEvent::AppointmentBooked {
                call_id: Some(c),
                starts_at,
                ..
            } if c == call_id => Some(starts_at),
            _ => None,
        })
        .collect();
    assert_eq!(booked, [taken + chrono::Duration::minutes(30)]);
    let events = world.records(&call_id).await;
    assert_eq!(
        tools_called(&events),
        [
            ("book_appointment".into(), false),
            ("book_appointment".into(), true),
            ("send_confirmation".into(), true),
            ("end_call".into(), true)
        ]
    );
    let queued = world
        .scene
        .ports
        .message_queue
        .receive(10, Duration::from_secs(30), Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(queued.len(), 1, "{queued:?}");
    let (outcome, _) = events
        .iter()
        .find_map(|e| match e {
            CallEvent::OutcomeClassified { outcome, summary } => Some((*outcome, summary)),
            _ => None,
        })
        .unwrap();
    assert_eq!(outcome, CallOutcome::AppointmentSet);
}
