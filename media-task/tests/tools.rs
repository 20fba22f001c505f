//! Parley's own tools (`tools.rs`) as a language model uses them.
//!
//! Whole calls: one ConversationRelay call per industry's default prompt, over a real
//! WebSocket to the media task, with a local OpenAI-compatible server answering with
//! the tool calls a model following that prompt would make. Each tool's effect is read
//! back from the store (the lead's and appointments' streams, the call's events and
//! transcript), and its result from the model's next request.
//!
//! One by one: [`CallTools`] acting for a call on a store whose clock is fixed, for the
//! agent's hours (refusals naming the next open time, the day's spans), the agent's
//! other appointments (overlaps and meetings past closing refused naming the next free
//! time, cancelled ones freeing theirs, agents apart, racing calls) and for bad
//! arguments (each named, nothing written).

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, NaiveTime, Utc, Weekday};
use common::{Scene, ended};
use parley_media::brain::{ToolOutput, Tools};
use parley_media::call::{Vendors, Voices};
use parley_media::llm::ToolCall;
use parley_media::llm::openai::OpenAiChat;
use parley_media::tools::{ALL_TOOLS, CallScope, CallTools, tool_id};
use parley_media::tts::TextToSpeech;
use parley_media::vendor::Endpoint;
use parley_shared::aggregate::{self, Context};
use parley_shared::backend::Ports;
use parley_shared::clock::ManualClock;
use parley_shared::domain::agent::{AgentSettings, ConversationMode, Span, VoiceProvider, Week};
use parley_shared::domain::appointment::{AppointmentEvent, MeetingKind};
use parley_shared::domain::call::{Call, CallCommand, CallEvent, CallOutcome, Carrier, Direction};
use parley_shared::domain::ids::{AgentId, CallId, LeadId, TenantId};
use parley_shared::domain::lead::{Lead, LeadEvent, LeadStatus, Temperature};
use parley_shared::domain::tenant::{Tenant, TenantCommand};
use parley_shared::domain::values::{PhoneNumber, TimeZone};
use parley_shared::embedded::Embedded;
use parley_shared::event::{DomainEvent, RecordedEvent};
use parley_shared::flow::{Industry, ToolName};
use parley_shared::qualify::{QualificationSettings, Signal, Weights};
use parley_shared::secrets::SecretString;
use parley_vendors::openai_chat::{self, RecordedRequest, Reply};
use parley_vendors::relay_caller::{self, Dial, Heard, Step};
use serde_json::{Value, json};

const SECRET: &str = "media-tools-test-stream-secret-0123456789";

/// The seven tools a model is offered, by the names it calls them.
const SEVEN: [&str; 7] = [
    "qualify_lead",
    "check_availability",
    "book_appointment",
    "send_confirmation",
    "schedule_callback",
    "transfer_to_human",
    "end_call",
];

// ------------------------------------------------------------------- whole calls

/// Twilio speaks for a relay agent: the deployment has no voice for it.
struct NoVoice;

#[async_trait::async_trait]
impl Voices for NoVoice {
    async fn voice(&self, _: &AgentSettings) -> Option<Arc<dyn TextToSpeech>> {
        None
    }
}

/// A tenant with one agent and one lead (Ana), the chat server, and the media task
/// serving on loopback with the model and Parley's own tools.
struct World {
    scene: Scene,
    lead_id: LeadId,
    chat: openai_chat::OpenAiChatServer,
    url: String,
}

/// An agent answering ConversationRelay calls from `industry`'s default prompt (its
/// own prompt is set aside).
fn agent(industry: Industry) -> AgentSettings {
    let mut settings = AgentSettings::named("Riley");
    settings.mode = ConversationMode::ConversationRelay;
    settings.voice.provider = VoiceProvider::Twilio;
    settings.industry = Some(industry);
    settings.system_prompt = Some("You sell ice cream. {nothing}".into());
    settings.use_default_prompt = true;
    settings
}

/// Open Monday to Friday, 09:00 to 17:00.
fn office_hours() -> Week {
    let day = vec![span("09:00", "17:00")];
    Week {
        monday: day.clone(),
        tuesday: day.clone(),
        wednesday: day.clone(),
        thursday: day.clone(),
        friday: day,
        ..Week::default()
    }
}

fn span(open: &str, close: &str) -> Span {
    Span {
        open: NaiveTime::parse_from_str(open, "%H:%M").unwrap(),
        close: NaiveTime::parse_from_str(close, "%H:%M").unwrap(),
    }
}

async fn world(
    settings: AgentSettings,
    tenant_name: &str,
    zone: &str,
    qualification: Option<QualificationSettings>,
) -> World {
    let tenant = TenantId::new();
    let scene = Scene::new(&tenant.to_string(), settings).await;
    let (ports, ctx) = (&scene.ports, scene.ctx());
    let mut commands = vec![TenantCommand::Create {
        name: tenant_name.into(),
        time_zone: TimeZone::parse(zone).unwrap(),
    }];
    if let Some(settings) = qualification {
        commands.push(TenantCommand::SetQualification { settings });
    }
    for command in commands {
        aggregate::execute::<Tenant>(
            &*ports.events,
            &*ports.clock,
            &tenant.stream(),
            &ctx,
            command,
        )
        .await
        .unwrap();
    }
    let lead_id = common::lead(ports, &ctx, Some("Ana"), &[]).await;

    let chat = openai_chat::start().await.unwrap();
    let llm = OpenAiChat::new(
        Endpoint::new(&chat.url(), SecretString::new(chat.key().into())),
        "test-model",
    );
    // No tools of the deployment's: the model is offered Parley's own, for the call.
    let vendors = Vendors {
        stt: None,
        offline_stt: None,
        llm: Some(Arc::new(llm)),
        tools: None,
        voices: Arc::new(NoVoice),
        fallback_voice: None,
        deployment: None,
        min_speech_ms: 200,
        silence_ms: 500,
    };
    let (base, _) = scene.serve(SECRET, vendors).await;
    World {
        scene,
        lead_id,
        chat,
        url: format!("{base}/media/twilio-relay"),
    }
}

impl World {
    /// What the call came to, and Ana's status and details after it.
    async fn wrapped_up(
        &self,
        events: &[CallEvent],
    ) -> (CallOutcome, LeadStatus, BTreeMap<String, String>) {
        let outcome = events
            .iter()
            .find_map(|e| match e {
                CallEvent::OutcomeClassified { outcome, .. } => Some(*outcome),
                _ => None,
            })
            .expect("the call is classified");
        let lead = aggregate::load::<Lead>(
            &*self.scene.ports.events,
            &self.lead_id.stream(),
            &self.scene.tenant,
        )
        .await
        .unwrap()
        .state;
        (outcome, lead.status, lead.details)
    }

    /// An outbound call to Ana.
    async fn call(&self) -> CallId {
        self.scene
            .call(Carrier::Twilio, Some(self.lead_id.clone()))
            .await
    }

    /// Places the call as Twilio's relay does; one the server never ends fails the test.
    async fn place(&self, call_id: &CallId, steps: Vec<Step>) -> Heard {
        let token = common::token(&self.scene.tenant, SECRET, &call_id.to_string(), 5);
        let dial = Dial {
            url: self.url.clone(),
            session_id: "VXtools".into(),
            call_sid: "CAtools".into(),
            from: "+14155550100".into(),
            to: "+14155550123".into(),
            direction: "outbound-api".into(),
            parameters: vec![
                ("tenant_id".into(), self.scene.tenant.clone()),
                ("call_id".into(), call_id.to_string()),
                ("direction".into(), "outbound-api".into()),
                ("token".into(), token),
            ],
        };
        let heard = tokio::time::timeout(Duration::from_secs(30), relay_caller::call(&dial, steps))
            .await
            .expect("the call ended in time")
            .expect("the call went through");
        eprintln!("answers {:?}, ends {:?}", heard.answers, heard.ends);
        heard
    }

    /// What the model was asked during the conversation: every request offering tools
    /// (the call's wrap-up may ask the model for its notes afterwards, with none).
    fn conversation(&self) -> Vec<RecordedRequest> {
        self.chat
            .requests()
            .into_iter()
            .filter(|r| r.body["tools"].as_array().is_some_and(|t| !t.is_empty()))
            .collect()
    }

    /// Queues the model's replies, in order.
    fn script(&self, replies: Vec<Reply>) {
        for reply in replies {
            self.chat.push(reply);
        }
    }

    /// The call's events once its records are written (they follow the session's end).
    async fn records(&self, call_id: &CallId) -> Vec<CallEvent> {
        let stored = |e: &CallEvent| matches!(e, CallEvent::TranscriptStored { .. });
        self.scene.call_events_once(call_id, stored).await
    }

    /// Every event of one category, decoded, with where it was written.
    async fn all<E: DomainEvent>(&self) -> Vec<(RecordedEvent, E)> {
        all(&self.scene.ports).await
    }

    /// Ana's events.
    async fn lead_events(&self) -> Vec<LeadEvent> {
        let stream = self.lead_id.stream();
        self.all::<LeadEvent>()
            .await
            .into_iter()
            .filter(|(e, _)| e.stream == stream)
            .map(|(_, e)| e)
            .collect()
    }
}

async fn all<E: DomainEvent>(ports: &Ports) -> Vec<(RecordedEvent, E)> {
    let events = ports.events.read_all(None, 10_000).await.unwrap();
    events
        .into_iter()
        .filter(|e| e.stream.category() == E::CATEGORY)
        .filter_map(|e| {
            let decoded = parley_shared::event::decode::<E>(&e).ok().flatten()?;
            Some((e, decoded))
        })
        .collect()
}

/// A booked appointment as stored: its id and what was booked.
#[derive(Debug)]
struct Booked {
    id: String,
    lead_id: LeadId,
    call_id: Option<CallId>,
    agent_id: Option<AgentId>,
    title: String,
    starts_at: DateTime<Utc>,
    duration_minutes: u32,
    kind: MeetingKind,
}

async fn booked(ports: &Ports) -> Vec<Booked> {
    all::<AppointmentEvent>(ports)
        .await
        .into_iter()
        .filter_map(|(recorded, event)| match event {
            AppointmentEvent::AppointmentBooked {
                lead_id,
                call_id,
                agent_id,
                title,
                starts_at,
                duration_minutes,
                kind,
            } => Some(Booked {
                id: recorded.stream.id().to_owned(),
                lead_id,
                call_id,
                agent_id,
                title,
                starts_at,
                duration_minutes,
                kind,
            }),
            _ => None,
        })
        .collect()
}

fn answer() -> Step {
    Step::AwaitAnswer {
        within: Duration::from_secs(10),
    }
}

fn say(text: &str) -> Step {
    Step::Say(text.into())
}

fn calls(name: &str, arguments: Value) -> Reply {
    Reply::tool_calls(&[(name, &arguments.to_string())])
}

fn messages(request: &Value) -> Vec<Value> {
    request["messages"].as_array().unwrap().clone()
}

/// Each tool the model called and the result it was given, as its very next request
/// carried them (`role: tool` messages after the assistant's tool calls), in order.
fn tool_results(asked: &[RecordedRequest]) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for request in asked {
        let messages = messages(&request.body);
        let results = messages
            .iter()
            .rev()
            .take_while(|m| m["role"] == "tool")
            .count();
        if results == 0 {
            continue;
        }
        let asked_for = &messages[messages.len() - results - 1];
        assert_eq!(asked_for["role"], "assistant");
        let calls = asked_for["tool_calls"].as_array().unwrap();
        assert_eq!(calls.len(), results, "a result for each call");
        for result in &messages[messages.len() - results..] {
            let call = calls
                .iter()
                .find(|c| c["id"] == result["tool_call_id"])
                .expect("the result answers one of the calls");
            out.push((
                call["function"]["name"].as_str().unwrap().to_owned(),
                result["content"].as_str().unwrap().to_owned(),
            ));
        }
    }
    out
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

fn pairs(list: &[(&str, bool)]) -> Vec<(String, bool)> {
    list.iter().map(|(n, ok)| ((*n).to_owned(), *ok)).collect()
}

/// The default prompt with the call's fields put in by plain replacement, as the
/// agent's call should see it.
fn filled(template: &str, tenant_name: &str) -> String {
    [
        ("{agent_name}", "Riley"),
        ("{tenant_name}", tenant_name),
        ("{direction}", "outbound"),
        ("{lead_name}", "Ana"),
    ]
    .iter()
    .fold(template.to_owned(), |t, (field, value)| {
        t.replace(field, value)
    })
    // The file's last newline is no part of the prompt.
    .trim_end()
    .to_owned()
}

/// The model was given `prompt` (the industry's, filled in) and offered exactly
/// Parley's seven tools, each with a JSON-schema object for its parameters, every time
/// it was asked.
fn assert_prompt_and_tools(asked: &[RecordedRequest], prompt: &str) {
    assert!(!asked.is_empty());
    for request in asked {
        let system = &messages(&request.body)[0];
        assert_eq!(system["role"], "system");
        let text = system["content"].as_str().unwrap();
        assert_eq!(text, prompt);
        assert!(!text.contains('{') && !text.contains('}'), "{text}");
        let tools = request.body["tools"].as_array().expect("tools offered");
        let names: Vec<&str> = tools
            .iter()
            .map(|t| t["function"]["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, SEVEN);
        for tool in tools {
            assert_eq!(tool["type"], "function");
            let parameters = &tool["function"]["parameters"];
            assert_eq!(parameters["type"], "object", "{tool}");
            assert!(parameters["properties"].is_object(), "{tool}");
            assert!(!tool["function"]["description"].as_str().unwrap().is_empty());
        }
    }
}

/// The server ended the session (Parley's `end`, reason `agent_ended`) after the last
/// line had been sent, and that line was `last_line`.
fn assert_ended_after(heard: &Heard, last_line: &str) {
    assert_eq!(heard.answers.last().map(String::as_str), Some(last_line));
    assert_eq!(heard.ends.len(), 1, "one end: {:?}", heard.ends);
    let data: Value = serde_json::from_str(heard.ends[0].0.as_deref().unwrap()).unwrap();
    assert_eq!(data["reason"], "agent_ended");
    let last_token = heard.tokens.last().unwrap();
    assert!(last_token.last);
    assert!(
        heard.ends[0].1 >= last_token.at_ms,
        "the end after the line"
    );
}

/// Today where `zone` is.
fn today_in(zone: &str) -> NaiveDate {
    Utc::now()
        .with_timezone(&TimeZone::parse(zone).unwrap().tz())
        .date_naive()
}

fn weekend(day: NaiveDate) -> bool {
    matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The first weekday `days` or more days after today in `zone`.
fn weekday_after(zone: &str, days: u64) -> NaiveDate {
    let mut day = today_in(zone) + chrono::Days::new(days);
    while weekend(day) {
        day = day.succ_opt().unwrap();
    }
    day
}

fn at(day: NaiveDate, time: &str) -> NaiveDateTime {
    day.and_time(NaiveTime::parse_from_str(time, "%H:%M").unwrap())
}

/// `local` in UTC for a zone `offset_minutes` ahead of UTC all year.
fn utc(local: NaiveDateTime, offset_minutes: i64) -> DateTime<Utc> {
    local.and_utc() - chrono::Duration::minutes(offset_minutes)
}

fn iso(local: NaiveDateTime) -> String {
    local.format("%Y-%m-%dT%H:%M").to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_estate_qualifies_by_the_tenants_rules_books_a_viewing_and_hands_over() {
    // Kolkata is UTC+05:30 all year. The tenant weighs budget and timeline heavily and
    // calls 0.8 hot: under the default rules the same answers score 0.7, warm.
    let rules = QualificationSettings {
        weights: Weights {
            budget: 0.4,
            authority: 0.1,
            need: 0.1,
            timeline: 0.3,
            engagement: 0.1,
        },
        hot_at: 0.8,
        warm_at: 0.5,
    };
    let zone = "Asia/Kolkata";
    let world = world(
        agent(Industry::RealEstate),
        "Acme Realty",
        zone,
        Some(rules),
    )
    .await;
    let call_id = world.call().await;
    let viewing = at(weekday_after(zone, 2), "10:00");
    let said_first = "We want to buy a three bedroom house near the park. Our budget is \
                      about 500k and we need to move as soon as possible, but my wife has \
                      the final say.";
    let transfer_line = "I don't know that, so I'm passing you to a colleague now.";
    world.script(vec![
        calls(
            "qualify_lead",
            json!({
                "budget": "about 500k",
                "decision_maker": false,
                "need": "a three bedroom house near the park",
                "timeline": "as soon as possible",
                "evidence": {
                    "budget": "Our budget is about 500k",
                    "need": "We want to buy a three bedroom house near the park",
                    "timeline": "we need to move as soon as possible",
                },
            }),
        ),
        Reply::text("Lovely. Would you like to see a home this week?"),
        calls(
            "book_appointment",
            json!({
                "start": iso(viewing),
                "duration_minutes": 45,
                "kind": "in_person",
                "title": "Viewing: three bedroom house",
            }),
        ),
        Reply::text("You're booked for a viewing."),
        calls(
            "transfer_to_human",
            json!({"mode": "warm", "reason": "a question about the roof warranty"}),
        ),
        Reply::text(transfer_line),
    ]);
    let heard = world
        .place(
            &call_id,
            vec![
                answer(),
                say(said_first),
                answer(),
                say("Yes, at ten in the morning."),
                answer(),
                say("Is the roof still under warranty?"),
                answer(),
            ],
        )
        .await;
    assert_eq!(
        heard.answers[1],
        "Lovely. Would you like to see a home this week?"
    );
    assert_eq!(heard.answers[2], "You're booked for a viewing.");
    // The line was spoken, then the session ended from Parley's side.
    assert_ended_after(&heard, transfer_line);

    let asked = world.conversation();
    assert_eq!(asked.len(), 6, "one request per scripted reply");
    let prompt = filled(
        include_str!("../../shared/prompts/real_estate.txt"),
        "Acme Realty",
    );
    assert!(prompt.starts_with("You are Riley, a phone assistant for Acme Realty"));
    assert_prompt_and_tools(&asked, &prompt);

    // The lead: scored by the tenant's weights and bar, the caller's words as evidence.
    let qualified: Vec<_> = world
        .lead_events()
        .await
        .into_iter()
        .filter(|e| matches!(e, LeadEvent::LeadQualified { .. }))
        .collect();
    let [
        LeadEvent::LeadQualified {
            temperature,
            score,
            evidence,
        },
    ] = qualified.as_slice()
    else {
        panic!("qualified once: {qualified:?}")
    };
    assert_eq!((*score, *temperature), (0.8, Temperature::Hot));
    let quoted: Vec<(Signal, &str)> = evidence
        .iter()
        .map(|e| (e.signal, e.words.as_str()))
        .collect();
    assert_eq!(
        quoted,
        [
            (Signal::Budget, "Our budget is about 500k"),
            (
                Signal::Need,
                "We want to buy a three bedroom house near the park"
            ),
            (Signal::Timeline, "we need to move as soon as possible"),
        ]
    );
    for (_, words) in &quoted {
        assert!(said_first.contains(words), "{words:?} quotes the caller");
    }

    // The viewing: 10:00 in Kolkata is 04:30 UTC.
    let appointments = booked(&world.scene.ports).await;
    let [viewing_booked] = appointments.as_slice() else {
        panic!("one booking: {appointments:?}")
    };
    assert_eq!(viewing_booked.starts_at, utc(viewing, 330));
    assert_eq!(viewing_booked.lead_id, world.lead_id);
    assert_eq!(viewing_booked.call_id.as_ref(), Some(&call_id));
    assert_eq!(viewing_booked.title, "Viewing: three bedroom house");
    assert_eq!(
        (viewing_booked.duration_minutes, viewing_booked.kind),
        (45, MeetingKind::InPerson)
    );

    // What the model was told each tool did.
    let results = tool_results(&asked);
    let names: Vec<&str> = results.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["qualify_lead", "book_appointment", "transfer_to_human"]
    );
    assert_eq!(results[0].1, "qualified hot at 0.8");
    let booked_text = &results[1].1;
    assert!(
        booked_text.starts_with(&format!(
            "booked appointment {} for {}, ",
            viewing_booked.id,
            viewing.format("%A")
        )) && booked_text.ends_with(" at 10 am"),
        "{booked_text}"
    );
    assert!(
        results[2]
            .1
            .starts_with("a warm transfer to a person (a question about the roof warranty)"),
        "{}",
        results[2].1
    );

    // The call's history: the transfer asked for during the call, the tools, the end.
    let events = world.records(&call_id).await;
    let transfer = events
        .iter()
        .position(|e| {
            *e == CallEvent::TransferRequested {
                mode: "warm".into(),
                reason: "a question about the roof warranty".into(),
            }
        })
        .expect("the transfer is asked for");
    let end = events
        .iter()
        .position(|e| matches!(e, CallEvent::MediaStreamEnded { .. }))
        .unwrap();
    assert!(transfer < end);
    assert_eq!(ended(&events), ("agent_ended".into(), 3));
    assert_eq!(
        tools_called(&events),
        pairs(&[
            ("qualify_lead", true),
            ("book_appointment", true),
            ("transfer_to_human", true)
        ])
    );
    // The transcript keeps each tool with its result, and the last line.
    let turns = world.scene.transcript(&call_id).await;
    let used: Vec<(String, String)> = turns
        .iter()
        .flat_map(|t| t["tool_calls"].as_array().cloned().unwrap_or_default())
        .map(|c| {
            (
                c["name"].as_str().unwrap().to_owned(),
                c["result"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(used, results);
    assert_eq!(turns.last().unwrap()["text"], transfer_line);
    // A booking made counts before the hand-over: the meeting is what the call set up.
    let (outcome, status, _) = world.wrapped_up(&events).await;
    assert_eq!(
        (outcome, status),
        (CallOutcome::AppointmentSet, LeadStatus::MeetingScheduled)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guest_relations_books_a_call_back_by_phone_and_ends_after_the_goodbye() {
    // Tokyo is UTC+09:00 all year; the agent keeps no hours, so the tenant's zone.
    let zone = "Asia/Tokyo";
    let world = world(agent(Industry::GuestRelations), "Harbour Hotel", zone, None).await;
    let call_id = world.call().await;
    let tomorrow = at(today_in(zone).succ_opt().unwrap(), "11:00");
    let goodbye = "Thank you for telling us, Ana. Goodbye!";
    world.script(vec![
        Reply::text("I'm so sorry. May our duty manager call you back?"),
        calls(
            "book_appointment",
            json!({"start": iso(tomorrow), "kind": "phone", "title": "Manager's call back"}),
        ),
        Reply::text("Done: we'll call you tomorrow at eleven."),
        calls("end_call", json!({"outcome": "negative_feedback"})),
        Reply::text(goodbye),
    ]);
    let heard = world
        .place(
            &call_id,
            vec![
                answer(),
                say("It was bad, two out of five. The room was dirty."),
                answer(),
                say("Yes, tomorrow at eleven in the morning."),
                answer(),
                say("No, that's all."),
                answer(),
            ],
        )
        .await;
    assert_ended_after(&heard, goodbye);

    let asked = world.conversation();
    assert_eq!(asked.len(), 5);
    let prompt = filled(
        include_str!("../../shared/prompts/guest_relations.txt"),
        "Harbour Hotel",
    );
    assert!(prompt.starts_with("You are Riley, calling on behalf of Harbour Hotel"));
    assert_prompt_and_tools(&asked, &prompt);

    // A phone call of the default length, at 11:00 in Tokyo: 02:00 UTC.
    let appointments = booked(&world.scene.ports).await;
    let [call_back] = appointments.as_slice() else {
        panic!("one booking: {appointments:?}")
    };
    assert_eq!(call_back.starts_at, utc(tomorrow, 540));
    assert_eq!(
        (call_back.kind, call_back.duration_minutes),
        (MeetingKind::Phone, 30)
    );
    assert_eq!(call_back.title, "Manager's call back");

    let results = tool_results(&asked);
    assert_eq!(results.len(), 2, "{results:?}");
    assert_eq!(
        results[0].1,
        format!("booked appointment {} for tomorrow at 11 am", call_back.id)
    );
    assert_eq!(
        results[1],
        (
            "end_call".to_owned(),
            "the call ends after the goodbye (negative_feedback)".to_owned()
        )
    );

    let events = world.records(&call_id).await;
    assert_eq!(ended(&events), ("agent_ended".into(), 3));
    assert_eq!(
        tools_called(&events),
        pairs(&[("book_appointment", true), ("end_call", true)])
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, CallEvent::TransferRequested { .. }))
    );
    let turns = world.scene.transcript(&call_id).await;
    assert_eq!(turns.last().unwrap()["text"], goodbye);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appointments_keep_the_agents_hours_in_its_zone_then_book_confirm_and_end() {
    // The tenant is in Kolkata (UTC+05:30); the agent keeps office hours in Dubai
    // (UTC+04:00, all year), and books in Dubai's time.
    let zone = "Asia/Dubai";
    let mut settings = agent(Industry::Appointments);
    settings.business_hours.time_zone = TimeZone::parse(zone).unwrap();
    settings.business_hours.week = office_hours();
    let world = world(settings, "Bright Dental", "Asia/Kolkata", None).await;
    let call_id = world.call().await;

    let mut saturday = today_in(zone).succ_opt().unwrap();
    while saturday.weekday() != Weekday::Sat {
        saturday = saturday.succ_opt().unwrap();
    }
    let monday = saturday + chrono::Days::new(2);
    let day = weekday_after(zone, 2);
    let cleaning = at(day, "10:00");
    world.script(vec![
        calls(
            "book_appointment",
            json!({"start": iso(at(saturday, "10:00")), "title": "Cleaning"}),
        ),
        Reply::text("We're closed on Saturdays; Monday at nine is free. Another day?"),
        calls("check_availability", json!({"date": day.to_string()})),
        Reply::text("That day we're open from nine to five. What time?"),
        calls(
            "book_appointment",
            json!({"start": iso(cleaning), "title": "Cleaning", "duration_minutes": 30}),
        ),
        Reply::text("Booked. Shall I text you a confirmation?"),
        calls("send_confirmation", json!({"channel": "sms"})),
        Reply::text("Sent. Anything else?"),
        calls("end_call", json!({})),
        Reply::text("Goodbye!"),
    ]);
    let heard = world
        .place(
            &call_id,
            vec![
                answer(),
                say("I need a cleaning. Is Saturday at ten possible?"),
                answer(),
                say("What about later in the week?"),
                answer(),
                say("Ten in the morning."),
                answer(),
                say("Yes please."),
                answer(),
                say("No, that's everything. Bye."),
                answer(),
            ],
        )
        .await;
    assert_ended_after(&heard, "Goodbye!");

    let asked = world.conversation();
    assert_eq!(asked.len(), 10);
    let prompt = filled(
        include_str!("../../shared/prompts/appointments.txt"),
        "Bright Dental",
    );
    assert!(prompt.starts_with("You are Riley, the receptionist for Bright Dental."));
    assert_prompt_and_tools(&asked, &prompt);

    // Only the open day was booked, at 10:00 in Dubai: 06:00 UTC (not Kolkata's 04:30).
    let appointments = booked(&world.scene.ports).await;
    let [cleaning_booked] = appointments.as_slice() else {
        panic!("one booking: {appointments:?}")
    };
    assert_eq!(cleaning_booked.starts_at, utc(cleaning, 240));
    assert_eq!(cleaning_booked.kind, MeetingKind::InPerson);

    let results = tool_results(&asked);
    let names: Vec<&str> = results.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "book_appointment",
            "check_availability",
            "book_appointment",
            "send_confirmation",
            "end_call"
        ]
    );
    let refused = &results[0].1;
    assert!(
        refused.starts_with("error: closed Saturday, ")
            && refused.contains("; the nearest open time is Monday, ")
            && refused.ends_with(&format!(" at 9 am ({}T09:00)", monday)),
        "{refused}"
    );
    assert_eq!(results[1].1, format!("{day}: open 09:00–17:00"));
    assert!(
        results[2]
            .1
            .starts_with(&format!("booked appointment {} for ", cleaning_booked.id)),
        "{}",
        results[2].1
    );
    assert_eq!(results[3].1, "a confirmation by sms is on its way");
    assert_eq!(results[4].1, "the call ends after the goodbye");

    let events = world.records(&call_id).await;
    // The confirmation names the appointment booked in the call.
    let confirmations: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            CallEvent::ConfirmationQueued {
                channel,
                appointment_id,
            } => Some((
                channel.as_str(),
                appointment_id.as_ref().map(|a| a.to_string()),
            )),
            _ => None,
        })
        .collect();
    assert_eq!(confirmations, [("sms", Some(cleaning_booked.id.clone()))]);
    assert_eq!(ended(&events), ("agent_ended".into(), 5));
    assert_eq!(
        tools_called(&events),
        pairs(&[
            ("book_appointment", false),
            ("check_availability", true),
            ("book_appointment", true),
            ("send_confirmation", true),
            ("end_call", true)
        ])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lead_qualification_scores_by_default_rules_and_schedules_a_callback() {
    let zone = "Asia/Tokyo";
    let world = world(agent(Industry::LeadQualification), "Northwind", zone, None).await;
    let call_id = world.call().await;
    let callback = at(today_in(zone).succ_opt().unwrap(), "16:00");
    let goodbye = "Of course. We'll call you tomorrow at four. Goodbye!";
    world.script(vec![
        calls(
            "qualify_lead",
            json!({
                "budget": "around twenty thousand dollars",
                "decision_maker": true,
                "need": "a CRM for our team of ten",
            }),
        ),
        Reply::text("Thanks. Could we set up a call with a specialist?"),
        calls("schedule_callback", json!({"at": iso(callback)})),
        calls("end_call", json!({"outcome": "callback_requested"})),
        Reply::text(goodbye),
    ]);
    let heard = world
        .place(
            &call_id,
            vec![
                answer(),
                say(
                    "We need a CRM for our team of ten. I decide, and the budget is around \
                     twenty thousand dollars.",
                ),
                answer(),
                say("Not now, I'm driving. Call me back tomorrow at four in the afternoon."),
                answer(),
            ],
        )
        .await;
    assert_ended_after(&heard, goodbye);

    let asked = world.conversation();
    assert_eq!(asked.len(), 5);
    let prompt = filled(
        include_str!("../../shared/prompts/lead_qualification.txt"),
        "Northwind",
    );
    assert!(prompt.starts_with("You are Riley, calling for Northwind."));
    assert_prompt_and_tools(&asked, &prompt);

    // Budget, authority and need under the default weights: 0.25 + 0.20 + 0.25, warm.
    let events = world.lead_events().await;
    let qualified: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            LeadEvent::LeadQualified {
                temperature,
                score,
                evidence,
            } => Some((*temperature, *score, evidence.len())),
            _ => None,
        })
        .collect();
    assert_eq!(qualified, [(Temperature::Warm, 0.7, 3)]);
    // The callback at 16:00 in Tokyo: 07:00 UTC.
    let callbacks: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            LeadEvent::CallbackRequested { at, call_id } => Some((*at, call_id.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(callbacks, [(utc(callback, 540), Some(call_id.clone()))]);

    let results = tool_results(&asked);
    assert_eq!(
        results,
        [
            (
                "qualify_lead".to_owned(),
                "qualified warm at 0.7".to_owned()
            ),
            (
                "schedule_callback".to_owned(),
                "callback scheduled for tomorrow at 4 pm".to_owned()
            ),
            (
                "end_call".to_owned(),
                "the call ends after the goodbye (callback_requested)".to_owned()
            ),
        ]
    );
    let events = world.records(&call_id).await;
    assert_eq!(ended(&events), ("agent_ended".into(), 2));
    assert_eq!(
        tools_called(&events),
        pairs(&[
            ("qualify_lead", true),
            ("schedule_callback", true),
            ("end_call", true)
        ])
    );
    // The call back is what came of it; the lead was qualified on the way.
    let (outcome, status, _) = world.wrapped_up(&events).await;
    assert_eq!(
        (outcome, status),
        (CallOutcome::CallbackRequested, LeadStatus::Qualified)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tool_calls_are_answered_with_the_field_and_the_call_goes_on() {
    let mut settings = agent(Industry::Appointments);
    settings.business_hours.time_zone = TimeZone::parse("Asia/Dubai").unwrap();
    settings.business_hours.week = office_hours();
    let world = world(settings, "Bright Dental", "Asia/Dubai", None).await;
    let call_id = world.call().await;
    let open = iso(at(weekday_after("Asia/Dubai", 2), "10:00"));
    let bad: Vec<(&str, String)> = vec![
        ("book_appointment", "{not json".to_owned()),
        ("book_appointment", json!([open]).to_string()),
        (
            "book_appointment",
            json!({"start": "next tuesday"}).to_string(),
        ),
        (
            "book_appointment",
            json!({"start": open, "duration_minutes": 600}).to_string(),
        ),
        (
            "book_appointment",
            json!({"start": open, "kind": "carrier_pigeon"}).to_string(),
        ),
        ("reserve_table", json!({"party": 4}).to_string()),
    ];
    let bad_calls: Vec<(&str, &str)> = bad.iter().map(|(n, a)| (*n, a.as_str())).collect();
    world.script(vec![
        Reply::tool_calls(&bad_calls),
        Reply::text("Sorry, something went wrong on my side. Which day was it?"),
        Reply::text("Thursday it is."),
    ]);
    let heard = world
        .place(
            &call_id,
            vec![
                answer(),
                say("Book me in for a cleaning, please."),
                answer(),
                say("Thursday."),
                answer(),
                Step::HangUp,
            ],
        )
        .await;
    assert_eq!(heard.answers[2], "Thursday it is.");
    assert!(heard.ends.is_empty(), "the call went on: {:?}", heard.ends);

    let results = tool_results(&world.conversation());
    let texts: Vec<&str> = results.iter().map(|(_, r)| r.as_str()).collect();
    assert_eq!(texts.len(), 6, "{texts:?}");
    assert!(
        texts[0].starts_with("error: arguments: not JSON"),
        "{}",
        texts[0]
    );
    assert_eq!(texts[1], "error: arguments: expected a JSON object");
    assert_eq!(texts[2], "error: start: expected YYYY-MM-DDTHH:MM");
    assert_eq!(texts[3], "error: duration_minutes: must be 5 to 480");
    assert!(
        texts[4].starts_with("error: kind: unknown variant `carrier_pigeon`"),
        "{}",
        texts[4]
    );
    assert_eq!(
        texts[5],
        format!(
            "error: there is no tool named reserve_table; the tools are {}",
            SEVEN.join(", ")
        )
    );
    assert!(booked(&world.scene.ports).await.is_empty());

    let events = world.records(&call_id).await;
    assert_eq!(ended(&events), ("caller_hung_up".into(), 2));
    let expected: Vec<(String, bool)> = bad.iter().map(|(n, _)| ((*n).to_owned(), false)).collect();
    assert_eq!(tools_called(&events), expected);
}

// -------------------------------------------------------------------- one by one

/// One call's tools on a store whose clock stands still.
struct Desk {
    ports: Ports,
    call_id: CallId,
    lead_id: LeadId,
    tools: CallTools,
    _dir: tempfile::TempDir,
}

/// Friday 17 January 2031, 16:20 in New York (EST, UTC-05:00).
fn friday_afternoon() -> DateTime<Utc> {
    "2031-01-17T21:20:00Z".parse().unwrap()
}

/// A call to a lead, in New York with `hours`, at `now`.
async fn desk(hours: Week, now: DateTime<Utc>) -> Desk {
    desk_for(hours, now, true, |tools| tools).await
}

async fn desk_for(
    hours: Week,
    now: DateTime<Utc>,
    with_lead: bool,
    narrow: impl FnOnce(CallTools) -> CallTools,
) -> Desk {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(now);
    let embedded = Embedded::open(dir.path(), Arc::new(clock), "http://127.0.0.1:1".into(), 5)
        .expect("the embedded store opens");
    let ports = Ports::embedded(embedded);
    let tenant = TenantId::new();
    let ctx = Context {
        tenant_id: tenant.to_string(),
        correlation_id: "test".into(),
        idempotency_key: None,
    };
    let lead_id = common::lead(&ports, &ctx, Some("Ana"), &[]).await;
    let call_id = CallId::new();
    aggregate::execute::<Call>(
        &*ports.events,
        &*ports.clock,
        &call_id.stream(),
        &ctx,
        CallCommand::Request {
            direction: Direction::Outbound,
            carrier: Carrier::Twilio,
            from: PhoneNumber::parse("+14155550100").unwrap(),
            to: PhoneNumber::parse("+14155550123").unwrap(),
            agent_id: AgentId::new(),
            lead_id: Some(lead_id.clone()),
            campaign_id: None,
            attempt: 0,
        },
    )
    .await
    .unwrap();
    let mut scope = CallScope::new(ports.clone(), ctx, call_id.clone());
    scope.lead_id = with_lead.then(|| lead_id.clone());
    scope.time_zone = Some(TimeZone::parse("America/New_York").unwrap());
    scope.hours = hours;
    Desk {
        ports,
        call_id,
        lead_id,
        tools: narrow(CallTools::new(scope)),
        _dir: dir,
    }
}

impl Desk {
    async fn call(&self, name: &str, arguments: &str) -> ToolOutput {
        let call = ToolCall {
            id: "call_1".into(),
            name: name.into(),
            arguments: arguments.into(),
        };
        self.tools.call(&call).await
    }

    /// The result text of a call that must not end the call.
    async fn says(&self, name: &str, arguments: Value) -> String {
        let output = self.call(name, &arguments.to_string()).await;
        assert!(!output.end_call, "{name} {arguments}: {output:?}");
        output.content
    }

    async fn call_events(&self) -> Vec<CallEvent> {
        let events = self
            .ports
            .events
            .read_stream(&self.call_id.stream(), 1)
            .await
            .unwrap();
        events
            .iter()
            .filter_map(|e| parley_shared::event::decode::<CallEvent>(e).ok().flatten())
            .collect()
    }

    async fn lead_events(&self) -> Vec<LeadEvent> {
        let events = self
            .ports
            .events
            .read_stream(&self.lead_id.stream(), 1)
            .await
            .unwrap();
        events
            .iter()
            .filter_map(|e| parley_shared::event::decode::<LeadEvent>(e).ok().flatten())
            .collect()
    }
}

#[tokio::test]
async fn bookings_at_closed_or_past_times_are_refused_with_the_next_open_time() {
    let desk = desk(office_hours(), friday_afternoon()).await;
    let book = |start: &str| json!({"start": start, "title": "Viewing"});
    let refusals = [
        (
            "2031-01-18T10:00",
            "error: closed tomorrow at 10 am; the nearest open time is \
             Monday, January 20th at 9 am (2031-01-20T09:00)",
        ),
        (
            "2031-01-17T18:00",
            "error: closed today at 6 pm; the nearest open time is Monday, January 20th \
             at 9 am (2031-01-20T09:00)",
        ),
        (
            "2031-01-20T08:15",
            "error: closed Monday, January 20th at 8:15 am; the nearest open time is \
             Monday, January 20th at 9 am (2031-01-20T09:00)",
        ),
        (
            "2031-01-17T10:00",
            "error: today at 10 am has already passed",
        ),
        // Past and closed: it is the past that matters.
        (
            "2031-01-16T20:00",
            "error: Thursday, January 16th at 8 pm has already passed",
        ),
    ];
    for (start, refused) in refusals {
        assert_eq!(desk.says("book_appointment", book(start)).await, refused);
    }
    assert!(booked(&desk.ports).await.is_empty(), "nothing booked");

    // Open times book, in New York's time: 09:00 EST is 14:00 UTC.
    let monday = desk
        .says("book_appointment", book("2031-01-20T09:00"))
        .await;
    let later_today = desk
        .says("book_appointment", book("2031-01-17 16:30"))
        .await;
    let appointments = booked(&desk.ports).await;
    assert_eq!(appointments.len(), 2, "{appointments:?}");
    assert_eq!(
        monday,
        format!(
            "booked appointment {} for Monday, January 20th at 9 am",
            appointments[0].id
        )
    );
    assert_eq!(
        later_today,
        format!(
            "booked appointment {} for today at 4:30 pm",
            appointments[1].id
        )
    );
    assert_eq!(
        appointments[0].starts_at,
        "2031-01-20T14:00:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    assert_eq!(
        appointments[1].starts_at,
        "2031-01-17T21:30:00Z".parse::<DateTime<Utc>>().unwrap()
    );
    assert_eq!(appointments[0].lead_id, desk.lead_id);
    assert_eq!(appointments[0].call_id.as_ref(), Some(&desk.call_id));
    assert_eq!(
        (appointments[0].duration_minutes, appointments[0].kind),
        (30, MeetingKind::InPerson),
        "the defaults"
    );
}

#[tokio::test]
async fn availability_is_the_days_spans_or_the_next_opening() {
    let mut hours = office_hours();
    // Spans kept out of order still read in order.
    hours.tuesday = vec![span("13:30", "17:00"), span("09:00", "12:00")];
    let desk = desk(hours, friday_afternoon()).await;
    let on = |date: &str| json!({ "date": date });
    let answers = [
        ("2031-01-20", "2031-01-20: open 09:00–17:00"),
        ("2031-01-21", "2031-01-21: open 09:00–12:00, 13:30–17:00"),
        (
            "2031-01-18",
            "2031-01-18: closed; the next opening is Monday, January 20th at 9 am \
             (2031-01-20T09:00)",
        ),
        // Today: only what is left of the day.
        ("2031-01-17", "2031-01-17: open 16:20–17:00"),
        (" 2031-01-16 ", "2031-01-16 has passed"),
    ];
    for (date, expected) in answers {
        assert_eq!(desk.says("check_availability", on(date)).await, expected);
    }

    // After closing, today is closed for the rest of the day.
    let evening: DateTime<Utc> = "2031-01-17T23:00:00Z".parse().unwrap();
    let late = self::desk(office_hours(), evening).await;
    assert_eq!(
        late.says("check_availability", on("2031-01-17")).await,
        "2031-01-17: closed for the rest of the day; the next opening is Monday, \
         January 20th at 9 am (2031-01-20T09:00)"
    );
    // An agent with no hours is open all day.
    let always = self::desk(Week::default(), friday_afternoon()).await;
    assert_eq!(
        always.says("check_availability", on("2031-01-18")).await,
        "2031-01-18: open all day"
    );
    assert_eq!(
        always
            .says("book_appointment", json!({"start": "2031-01-18T23:30"}))
            .await
            .split(" for ")
            .nth(1),
        Some("tomorrow at 11:30 pm")
    );
}

#[tokio::test]
async fn bad_arguments_name_the_field_and_write_nothing() {
    let desk = desk(office_hours(), friday_afternoon()).await;
    let open = "2031-01-20T10:00";
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "book_appointment",
            "{\"start\": ".into(),
            "arguments: not JSON (",
        ),
        (
            "book_appointment",
            "[1, 2]".into(),
            "arguments: expected a JSON object",
        ),
        (
            "book_appointment",
            "\"2031-01-20T10:00\"".into(),
            "arguments: expected a JSON object",
        ),
        ("book_appointment", "{}".into(), "start: required"),
        (
            "book_appointment",
            json!({"start": null}).to_string(),
            "start: required",
        ),
        (
            "book_appointment",
            json!({"start": 20310120}).to_string(),
            "start: invalid type: integer",
        ),
        (
            "book_appointment",
            json!({"start": "tomorrow at ten"}).to_string(),
            "start: expected YYYY-MM-DDTHH:MM",
        ),
        (
            "book_appointment",
            json!({"start": "2031-02-30T10:00"}).to_string(),
            "start: expected YYYY-MM-DDTHH:MM",
        ),
        (
            "book_appointment",
            json!({"start": open, "duration_minutes": 4}).to_string(),
            "duration_minutes: must be 5 to 480",
        ),
        (
            "book_appointment",
            json!({"start": open, "duration_minutes": 481}).to_string(),
            "duration_minutes: must be 5 to 480",
        ),
        (
            "book_appointment",
            json!({"start": open, "duration_minutes": -30}).to_string(),
            "duration_minutes: invalid value: integer `-30`",
        ),
        (
            "book_appointment",
            json!({"start": open, "duration_minutes": "thirty"}).to_string(),
            "duration_minutes: invalid type: string",
        ),
        (
            "book_appointment",
            json!({"start": open, "kind": "zoom"}).to_string(),
            "kind: unknown variant `zoom`, expected one of `in_person`, `phone`, `video`",
        ),
        (
            "book_appointment",
            json!({"start": open, "title": 7}).to_string(),
            "title: invalid type: integer",
        ),
        ("check_availability", "{}".into(), "date: required"),
        (
            "check_availability",
            json!({"date": "monday"}).to_string(),
            "date: expected YYYY-MM-DD",
        ),
        (
            "schedule_callback",
            json!({"at": "in an hour"}).to_string(),
            "at: expected YYYY-MM-DDTHH:MM",
        ),
        (
            "send_confirmation",
            json!({"channel": "pigeon"}).to_string(),
            "channel: unknown variant `pigeon`",
        ),
        (
            "transfer_to_human",
            json!({"mode": "hot", "reason": "asked"}).to_string(),
            "mode: unknown variant `hot`",
        ),
        (
            "end_call",
            json!({"outcome": 3}).to_string(),
            "outcome: invalid type: integer",
        ),
        (
            "qualify_lead",
            json!({"engagement": 3}).to_string(),
            "engagement: 3 is not between 0 and 1",
        ),
        (
            "qualify_lead",
            json!({"decision_maker": "perhaps"}).to_string(),
            "decision_maker: expected true or false",
        ),
        (
            "qualify_lead",
            json!({"evidence": {"mood": "happy"}}).to_string(),
            "evidence: \"mood\" is not a signal",
        ),
        (
            "save_slot",
            json!({"slot": "x"}).to_string(),
            "there is no tool named save_slot; the tools are qualify_lead, ",
        ),
        (
            "book",
            json!({"start": open}).to_string(),
            "there is no tool named book; ",
        ),
    ];
    for (tool, arguments, error) in &cases {
        let output = desk.call(tool, arguments).await;
        let expected = format!("error: {error}");
        assert!(
            output.content.starts_with(&expected),
            "{tool} {arguments}: {:?} should start with {expected:?}",
            output.content
        );
        // A failure never ends the call, even for the tools that would.
        assert!(!output.end_call, "{tool} {arguments}");
    }
    // Nothing was written: no appointment, no transfer or confirmation, nothing on the
    // lead but its creation.
    assert!(booked(&desk.ports).await.is_empty());
    let events = desk.call_events().await;
    assert!(
        events
            .iter()
            .all(|e| matches!(e, CallEvent::CallRequested { .. })),
        "{events:?}"
    );
    let lead = desk.lead_events().await;
    assert!(
        lead.iter()
            .all(|e| matches!(e, LeadEvent::LeadCreated { .. })),
        "{lead:?}"
    );

    // Extra fields are a model's own and are let be; empty arguments are no arguments.
    let output = desk
        .call("end_call", r#"{"outcome": "booked", "mood": "happy"}"#)
        .await;
    assert_eq!(
        (output.content.as_str(), output.end_call),
        ("the call ends after the goodbye (booked)", true)
    );
    let output = desk.call("end_call", " ").await;
    assert_eq!(
        (output.content.as_str(), output.end_call),
        ("the call ends after the goodbye", true)
    );
}

/// The tenant of `desk`'s call.
async fn desk_tenant(desk: &Desk) -> TenantId {
    let events = desk
        .ports
        .events
        .read_stream(&desk.call_id.stream(), 1)
        .await
        .unwrap();
    TenantId::parse(&events[0].meta.tenant_id).unwrap()
}

/// The tools of another call on `desk`'s store and tenant, for the same lead, by
/// `agent` (whose calendar bookings are checked against) under `hours`.
async fn agent_tools(desk: &Desk, agent: &AgentId, hours: Week) -> CallTools {
    let ctx = Context {
        tenant_id: desk_tenant(desk).await.to_string(),
        correlation_id: "test".into(),
        idempotency_key: None,
    };
    let mut scope = CallScope::new(desk.ports.clone(), ctx, CallId::new());
    scope.lead_id = Some(desk.lead_id.clone());
    scope.agent_id = Some(agent.clone());
    scope.time_zone = Some(TimeZone::parse("America/New_York").unwrap());
    scope.hours = hours;
    CallTools::new(scope)
}

/// What `tools` answer to `name` with `arguments`.
async fn answer_of(tools: &CallTools, name: &str, arguments: Value) -> String {
    let call = ToolCall {
        id: "call_1".into(),
        name: name.into(),
        arguments: arguments.to_string(),
    };
    let output = tools.call(&call).await;
    assert!(!output.end_call, "{name} {arguments}: {output:?}");
    output.content
}

#[tokio::test]
async fn an_agents_booked_times_are_refused_with_the_next_free_time_and_freed_by_cancelling() {
    // Friday 16:20 in New York; open Monday to Friday, 09:00 to 17:00.
    let desk = desk(office_hours(), friday_afternoon()).await;
    let riley = AgentId::new();
    let sam = AgentId::new();
    let a = agent_tools(&desk, &riley, office_hours()).await;
    let b = agent_tools(&desk, &sam, office_hours()).await;
    let book = |start: &str, minutes: u32| json!({"start": start, "duration_minutes": minutes, "title": "Viewing"});
    let ok = |said: &str| {
        assert!(said.starts_with("booked appointment "), "{said}");
        said.split(' ').nth(2).unwrap().to_owned()
    };

    // An hour from ten on Monday.
    let ten = ok(&answer_of(&a, "book_appointment", book("2031-01-20T10:00", 60)).await);
    // Overlapping it, at its middle or running into it: refused, with the first
    // quarter hour after it that is free.
    assert_eq!(
        answer_of(&a, "book_appointment", book("2031-01-20T10:30", 30)).await,
        "error: Monday, January 20th at 10:30 am is already booked; the nearest free \
         time is Monday, January 20th at 11 am (2031-01-20T11:00)"
    );
    assert_eq!(
        answer_of(&a, "book_appointment", book("2031-01-20T09:15", 60)).await,
        "error: Monday, January 20th at 9:15 am is already booked; the nearest free \
         time is Monday, January 20th at 11 am (2031-01-20T11:00)"
    );
    // Back to back on either side is fine: a meeting may start as another ends.
    ok(&answer_of(&a, "book_appointment", book("2031-01-20T11:00", 30)).await);
    ok(&answer_of(&a, "book_appointment", book("2031-01-20T09:30", 30)).await);
    // Now 09:30 to 11:30 is taken: the next free time skips the whole of it.
    assert_eq!(
        answer_of(&a, "book_appointment", book("2031-01-20T09:45", 15)).await,
        "error: Monday, January 20th at 9:45 am is already booked; the nearest free \
         time is Monday, January 20th at 11:30 am (2031-01-20T11:30)"
    );

    // Open at the start but running past closing: refused, with the nearest time it
    // fits (Monday at nine, before the booked half hour).
    assert_eq!(
        answer_of(&a, "book_appointment", book("2031-01-17T16:40", 30)).await,
        "error: the meeting would run past closing at 5 pm; the nearest time it fits is \
         Monday, January 20th at 9 am (2031-01-20T09:00)"
    );
    // Too long for what is left of Monday: Tuesday's opening.
    assert_eq!(
        answer_of(&a, "book_appointment", book("2031-01-20T16:00", 120)).await,
        "error: the meeting would run past closing at 5 pm; the nearest time it fits is \
         Tuesday, January 21st at 9 am (2031-01-21T09:00)"
    );
    // The same for a call with no agent: closing time is the agent's hours, not its
    // calendar.
    assert_eq!(
        desk.says("book_appointment", book("2031-01-20T16:45", 30))
            .await,
        "error: the meeting would run past closing at 5 pm; the nearest time it fits is \
         Tuesday, January 21st at 9 am (2031-01-21T09:00)"
    );

    // The day's availability is its hours less what is booked.
    let on = json!({"date": "2031-01-20"});
    assert_eq!(
        answer_of(&a, "check_availability", on.clone()).await,
        "2031-01-20: open 09:00–09:30, 11:30–17:00"
    );
    // Another agent's calendar is their own.
    assert_eq!(
        answer_of(&b, "check_availability", on.clone()).await,
        "2031-01-20: open 09:00–17:00"
    );
    ok(&answer_of(&b, "book_appointment", book("2031-01-20T10:00", 60)).await);
    assert_eq!(
        answer_of(&b, "check_availability", on.clone()).await,
        "2031-01-20: open 09:00–10:00, 11:00–17:00"
    );

    // A day with every open minute booked offers the next free time.
    ok(&answer_of(&b, "book_appointment", book("2031-01-21T09:00", 480)).await);
    assert_eq!(
        answer_of(&b, "check_availability", json!({"date": "2031-01-21"})).await,
        "2031-01-21: fully booked; the next free time is Wednesday, January 22nd at \
         9 am (2031-01-22T09:00)"
    );

    // Cancelling the hour at ten frees it, for Riley only.
    let tenant = desk_tenant(&desk).await;
    let cancelled = parley_shared::appointmentviews::run_appointment(
        &desk.ports,
        &Context {
            tenant_id: tenant.to_string(),
            correlation_id: "test".into(),
            idempotency_key: None,
        },
        &ten.parse().unwrap(),
        parley_shared::domain::appointment::AppointmentCommand::Cancel {
            reason: "the caller called back".into(),
        },
    )
    .await
    .unwrap();
    assert!(cancelled.appointment.cancelled);
    assert_eq!(
        answer_of(&a, "check_availability", on.clone()).await,
        "2031-01-20: open 09:00–09:30, 10:00–11:00, 11:30–17:00"
    );
    ok(&answer_of(&a, "book_appointment", book("2031-01-20T10:15", 45)).await);
    assert_eq!(
        answer_of(&b, "book_appointment", book("2031-01-20T10:15", 45)).await,
        "error: Monday, January 20th at 10:15 am is already booked; the nearest free \
         time is Monday, January 20th at 11 am (2031-01-20T11:00)"
    );

    // What was written: six bookings, each naming its agent, and their views.
    let appointments = booked(&desk.ports).await;
    let by = |agent: &AgentId| {
        appointments
            .iter()
            .filter(|a| a.agent_id.as_ref() == Some(agent))
            .count()
    };
    assert_eq!((appointments.len(), by(&riley), by(&sam)), (6, 4, 2));
    for appointment in &appointments {
        let view = desk
            .ports
            .views
            .get("appointments", &appointment.id)
            .await
            .unwrap()
            .unwrap();
        let expected = if appointment.id == ten {
            "cancelled"
        } else {
            "booked"
        };
        assert_eq!(view.body["status"], expected, "{view:?}");
        assert!(view.index2.is_some(), "{view:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_calls_booking_an_agents_same_time_at_once_never_both_keep_it() {
    let desk = desk(office_hours(), friday_afternoon()).await;
    let riley = AgentId::new();
    let calls = [
        Arc::new(agent_tools(&desk, &riley, office_hours()).await),
        Arc::new(agent_tools(&desk, &riley, office_hours()).await),
    ];
    let mut kept = 0;
    for day in 20..=24 {
        for hour in 9..=16 {
            let args =
                json!({"start": format!("2031-01-{day}T{hour:02}:00"), "duration_minutes": 45});
            let racing = calls.clone().map(|tools| {
                let args = args.clone();
                tokio::spawn(async move { answer_of(&tools, "book_appointment", args).await })
            });
            let mut booked = 0;
            for race in racing {
                let said = race.await.unwrap();
                if said.starts_with("booked appointment ") {
                    booked += 1;
                } else {
                    assert!(
                        said.contains(" is already booked; the nearest free time is ")
                            || said.contains(" was booked by another call just now; "),
                        "{said}"
                    );
                }
            }
            assert!(booked <= 1, "{args}: both kept it");
            kept += booked;
        }
    }
    assert!(kept > 0, "every race lost on both sides");

    // The calendar agrees: no two live appointments of the agent overlap.
    let tenant = desk_tenant(&desk).await;
    let query = parley_shared::appointmentviews::starting_query(
        &tenant,
        Some(&riley),
        "2031-01-01T00:00:00Z".parse().unwrap(),
        None,
    );
    let live: Vec<_> = parley_shared::appointmentviews::all_in(&*desk.ports.views, query, 5)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.is_live())
        .collect();
    assert_eq!(live.len(), kept);
    for pair in live.windows(2) {
        assert!(pair[0].ends_at <= pair[1].starts_at, "{pair:?}");
    }
}

#[tokio::test]
async fn a_call_without_a_lead_books_qualifies_and_confirms_nothing() {
    let desk = desk_for(office_hours(), friday_afternoon(), false, |t| t).await;
    for (tool, arguments) in [
        ("book_appointment", json!({"start": "2031-01-20T10:00"})),
        ("qualify_lead", json!({"need": "a house"})),
        ("schedule_callback", json!({})),
        ("send_confirmation", json!({})),
    ] {
        assert_eq!(
            desk.says(tool, arguments).await,
            "error: the call has no lead",
            "{tool}"
        );
    }
    assert!(booked(&desk.ports).await.is_empty());
    // A hand-over needs no lead.
    let output = desk
        .call("transfer_to_human", r#"{"reason": "asked"}"#)
        .await;
    assert!(output.end_call);
    assert!(
        output
            .content
            .starts_with("a warm transfer to a person (asked)")
    );
    assert_eq!(
        desk.call_events().await.last(),
        Some(&CallEvent::TransferRequested {
            mode: "warm".into(),
            reason: "asked".into()
        })
    );
}

#[tokio::test]
async fn callbacks_confirmations_and_transfers_are_written_where_they_belong() {
    let desk = desk(office_hours(), friday_afternoon()).await;
    // A confirmation with nothing booked in the call names no appointment.
    assert_eq!(
        desk.says("send_confirmation", json!({"channel": "whatsapp"}))
            .await,
        "a confirmation by whatsapp is on its way"
    );
    assert_eq!(
        desk.says("schedule_callback", json!({"at": "2031-01-20T11:15"}))
            .await,
        "callback scheduled for Monday, January 20th at 11:15 am"
    );
    // No time (or a time gone by): as soon as possible.
    assert_eq!(
        desk.says("schedule_callback", json!({})).await,
        "callback scheduled as soon as possible"
    );
    assert_eq!(
        desk.says("schedule_callback", json!({"at": "2031-01-17T09:00"}))
            .await,
        "callback scheduled for today at 4:20 pm"
    );
    let output = desk
        .call("transfer_to_human", r#"{"mode": "cold", "reason": "  "}"#)
        .await;
    assert!(output.end_call);
    assert!(
        output
            .content
            .starts_with("a cold transfer to a person (caller_request)"),
        "{}",
        output.content
    );

    let callbacks: Vec<_> = desk
        .lead_events()
        .await
        .into_iter()
        .filter_map(|e| match e {
            LeadEvent::CallbackRequested { at, call_id } => Some((at.to_rfc3339(), call_id)),
            _ => None,
        })
        .collect();
    let call = Some(desk.call_id.clone());
    assert_eq!(
        callbacks,
        [
            ("2031-01-20T16:15:00+00:00".to_owned(), call.clone()),
            ("2031-01-17T21:20:00+00:00".to_owned(), call.clone()),
            ("2031-01-17T21:20:00+00:00".to_owned(), call),
        ]
    );
    let events = desk.call_events().await;
    assert_eq!(
        &events[1..],
        [
            CallEvent::ConfirmationQueued {
                channel: "whatsapp".into(),
                appointment_id: None
            },
            CallEvent::TransferRequested {
                mode: "cold".into(),
                reason: "caller_request".into()
            },
        ]
    );
}

#[tokio::test]
async fn the_tools_are_parleys_seven_each_with_a_schema_and_a_node_may_narrow_them() {
    let names: Vec<&str> = ALL_TOOLS.iter().map(|t| tool_id(*t)).collect();
    assert_eq!(names, SEVEN);
    assert_eq!(tool_id(ToolName::SaveSlot), "save_slot");
    {
        let desk = desk(office_hours(), friday_afternoon()).await;
        let specs = desk.tools.specs();
        let offered: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(offered, SEVEN);
        for spec in &specs {
            let parameters = &spec.parameters;
            assert_eq!(parameters["type"], "object", "{}", spec.name);
            let properties = parameters["properties"].as_object().unwrap();
            // Every required field is one the schema describes.
            for required in parameters["required"].as_array().into_iter().flatten() {
                assert!(
                    properties.contains_key(required.as_str().unwrap()),
                    "{}: {required}",
                    spec.name
                );
            }
            assert!(!spec.description.is_empty());
        }

        // A node's scope narrows what is offered, and what may be called.
        let narrow = desk_for(office_hours(), friday_afternoon(), true, |t| {
            t.only(&[
                ToolName::EndCall,
                ToolName::SaveSlot,
                ToolName::CheckAvailability,
            ])
        })
        .await;
        let offered: Vec<String> = narrow.tools.specs().into_iter().map(|s| s.name).collect();
        assert_eq!(offered, ["check_availability", "end_call"]);
        assert_eq!(
            narrow
                .says("book_appointment", json!({"start": "2031-01-20T10:00"}))
                .await,
            "error: there is no tool named book_appointment; the tools are \
             check_availability, end_call"
        );
        assert!(booked(&narrow.ports).await.is_empty());
    }
}
