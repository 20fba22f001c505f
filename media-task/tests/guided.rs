//! A language model guided by the agent's own flow (`guided.rs`), in whole
//! ConversationRelay calls over a real WebSocket to the media task, with a local
//! OpenAI-compatible server as the model.
//!
//! Checks what the model is asked at each turn (the agent's prompt, then the node's
//! instructions and line; only the node's tools, and `save_slot` where it collects),
//! that the engine moves the flow on the caller's words and `save_slot` moves it when
//! the engine missed, that asides are the model's and never count as misses, that the
//! flow's booking is written once and its end ends the call without the model, and
//! that the call's lead gets the flow's answers as details. An agent whose own flow
//! scopes nothing keeps the model as it was: the whole prompt and every tool.

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, Timelike, Utc, Weekday};
use common::{Scene, asked, ended};
use parley_media::call::{Vendors, Voices};
use parley_media::llm::openai::OpenAiChat;
use parley_media::tts::TextToSpeech;
use parley_media::vendor::Endpoint;
use parley_shared::aggregate;
use parley_shared::domain::agent::{AgentSettings, ConversationMode, VoiceProvider};
use parley_shared::domain::appointment::{AppointmentEvent, MeetingKind};
use parley_shared::domain::call::{CallEvent, CallOutcome, Carrier};
use parley_shared::domain::ids::{CallId, LeadId, TenantId};
use parley_shared::domain::lead::{Lead, LeadCommand};
use parley_shared::domain::tenant::{Tenant, TenantCommand};
use parley_shared::domain::values::{PhoneNumber, TimeZone};
use parley_shared::flow::Flow;
use parley_shared::secrets::SecretString;
use parley_vendors::openai_chat::{self, RecordedRequest, Reply};
use parley_vendors::relay_caller::{self, Dial, Heard, Step};
use serde_json::{Value, json};

const SECRET: &str = "media-guided-test-stream-secret-0123456789";
const ZONE: &str = "America/New_York";
const PROMPT: &str = "You are {agent_name} from {tenant_name}.";
const FILLED: &str = "You are Riley from Acme Realty.";

/// A viewing: when (the model may check the hours), the budget, a confirmation that
/// offers the model nothing, the booking and the end.
const FLOW: &str = r#"
name: Guided viewing
start: when
prompt: Speak warmly and briefly.
max_misunderstandings: 2
nodes:
  when:
    say: Hi {lead_name}, what day and time suit you for a viewing?
    prompt: Help the caller choose a time for the viewing.
    tools: [check_availability]
    collect: { slot: appointment_time, kind: datetime }
    next:
      - goto: budget
  budget:
    say: And what budget do you have in mind?
    prompt: A rough figure is fine.
    collect: { slot: budget, kind: money }
    next:
      - goto: confirm
  confirm:
    say: "{appointment_time}, with about {budget} to spend. Shall I book the viewing?"
    prompt: Only confirm the booking; nothing else.
    intents:
      - name: agree
        keywords: ["yes", "go ahead", "book it"]
        goto: booked
      - name: refuse
        keywords: ["no"]
        goto: when
  booked:
    on_enter:
      - book: { title: Viewing, duration_minutes: 30, kind: in_person }
      - end: { outcome: booked }
    say: You're booked for {appointment_time}. Goodbye!
"#;

const WHEN: &str = "Hi Ana, what day and time suit you for a viewing?";
const BUDGET: &str = "And what budget do you have in mind?";

/// Twilio speaks for a relay agent: the deployment has no voice for it.
struct NoVoice;

#[async_trait::async_trait]
impl Voices for NoVoice {
    async fn voice(&self, _: &AgentSettings) -> Option<Arc<dyn TextToSpeech>> {
        None
    }
}

/// A tenant in New York with one relay agent following `flow`, a lead (Ana), the chat
/// server, and the media task serving on loopback with the model.
struct World {
    scene: Scene,
    lead_id: LeadId,
    chat: openai_chat::OpenAiChatServer,
    url: String,
}

fn agent(flow: &str) -> AgentSettings {
    let mut settings = AgentSettings::named("Riley");
    settings.mode = ConversationMode::ConversationRelay;
    settings.voice.provider = VoiceProvider::Twilio;
    settings.system_prompt = Some(PROMPT.into());
    settings.outbound_greeting = "Hello {lead_name}, Riley here.".into();
    settings.flow = Some(Flow::parse_yaml(flow).unwrap());
    settings
}

async fn world(settings: AgentSettings) -> World {
    let tenant = TenantId::new();
    let scene = Scene::new(&tenant.to_string(), settings).await;
    let (ports, ctx) = (&scene.ports, scene.ctx());
    aggregate::execute::<Tenant>(
        &*ports.events,
        &*ports.clock,
        &tenant.stream(),
        &ctx,
        TenantCommand::Create {
            name: "Acme Realty".into(),
            time_zone: TimeZone::parse(ZONE).unwrap(),
        },
    )
    .await
    .unwrap();
    let lead_id = LeadId::new();
    aggregate::execute::<Lead>(
        &*ports.events,
        &*ports.clock,
        &lead_id.stream(),
        &ctx,
        LeadCommand::Create {
            campaign_id: None,
            phone: PhoneNumber::parse("+14155550123").unwrap(),
            name: Some("Ana".into()),
            time_zone: None,
            fields: Default::default(),
        },
    )
    .await
    .unwrap();
    let chat = openai_chat::start().await.unwrap();
    let llm = OpenAiChat::new(
        Endpoint::new(&chat.url(), SecretString::new(chat.key().into())),
        "test-model",
    );
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
    /// Places an outbound call to Ana as Twilio's relay does, the model answering with
    /// `replies` in order.
    async fn place(&self, replies: Vec<Reply>, steps: Vec<Step>) -> (CallId, Heard) {
        for reply in replies {
            self.chat.push(reply);
        }
        let call_id = self
            .scene
            .call(Carrier::Twilio, Some(self.lead_id.clone()))
            .await;
        let token = common::token(&self.scene.tenant, SECRET, &call_id.to_string(), 5);
        let dial = Dial {
            url: self.url.clone(),
            session_id: "VXguided".into(),
            call_sid: "CAguided".into(),
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
        (call_id, heard)
    }

    /// The call's events once its records are written (they follow the session's end).
    async fn records(&self, call_id: &CallId) -> Vec<CallEvent> {
        let stored = |e: &CallEvent| matches!(e, CallEvent::TranscriptStored { .. });
        self.scene.call_events_once(call_id, stored).await
    }

    /// Every appointment booked, with the stream it was written to.
    async fn bookings(&self) -> Vec<AppointmentEvent> {
        let events = self
            .scene
            .ports
            .events
            .read_all(None, 10_000)
            .await
            .unwrap();
        events
            .iter()
            .filter(|e| e.stream.category() == "appointment")
            .filter_map(|e| {
                parley_shared::event::decode::<AppointmentEvent>(e)
                    .ok()
                    .flatten()
            })
            .filter(|e| matches!(e, AppointmentEvent::AppointmentBooked { .. }))
            .collect()
    }

    async fn lead(&self) -> Lead {
        aggregate::load::<Lead>(
            &*self.scene.ports.events,
            &self.lead_id.stream(),
            &self.scene.tenant,
        )
        .await
        .unwrap()
        .state
    }
}

fn answer() -> Step {
    Step::AwaitAnswer {
        within: Duration::from_secs(10),
    }
}

fn say(text: &str) -> Step {
    Step::Say(text.into())
}

fn save_slot(value: &str) -> Reply {
    Reply::tool_calls(&[("save_slot", &json!({ "value": value }).to_string())])
}

fn messages(request: &RecordedRequest) -> Vec<Value> {
    request.body["messages"].as_array().unwrap().clone()
}

/// The system message the model was given: first, and the only one.
fn system(request: &RecordedRequest) -> String {
    let messages = messages(request);
    assert_eq!(messages[0]["role"], "system");
    let systems = messages.iter().filter(|m| m["role"] == "system").count();
    assert_eq!(systems, 1, "one system message");
    messages[0]["content"].as_str().unwrap().to_owned()
}

/// The tools the model was offered, by name.
fn offered(request: &RecordedRequest) -> Vec<String> {
    request.body["tools"]
        .as_array()
        .map(|tools| {
            tools
                .iter()
                .map(|t| t["function"]["name"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The scope the model is given at a node: the agent's prompt, the flow's and the
/// node's instructions, and the node's line.
fn scoped(node_prompt: &str, say: &str) -> String {
    format!(
        "{FILLED}\n\nSpeak warmly and briefly.\n\n{node_prompt}\n\nAt this step, say or ask: {say}"
    )
}

/// The last tool result in the request (the answer to the model's last tool call).
fn last_tool_result(request: &RecordedRequest) -> String {
    let messages = messages(request);
    let last = messages.last().unwrap();
    assert_eq!(last["role"], "tool", "{last}");
    last["content"].as_str().unwrap().to_owned()
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_flow_leads_the_model_node_by_node_and_books_once() {
    let world = world(agent(FLOW)).await;
    let replies = vec![
        // An aside, at the first node.
        Reply::text("It's sunny here! What day and time would suit you?"),
        // The engine missed the caller's answer: the model passes it in plain words,
        // one the engine cannot read, then one it can.
        save_slot("sometime soon"),
        save_slot("next tuesday at 2 pm"),
        Reply::text("Lovely. And what budget do you have in mind?"),
        // An aside at the budget node.
        Reply::text("Dogs are welcome. So, roughly what budget?"),
        // The engine read the budget itself: the confirmation.
        Reply::text("Tuesday at two, about half a million. Shall I book it?"),
    ];
    let (call_id, heard) = world
        .place(
            replies,
            vec![
                answer(),
                say("is the weather nice over there?"),
                answer(),
                say("same slot as my sister had, she knows"),
                answer(),
                say("can I bring my dog"),
                answer(),
                say("about half a million dollars"),
                answer(),
                say("yes go ahead"),
                answer(),
            ],
        )
        .await;

    // The flow's opening is the greeting; the model's words follow; the flow's own
    // line ends the call.
    assert_eq!(heard.answers[0], WHEN);
    assert_eq!(
        heard.answers[1],
        "It's sunny here! What day and time would suit you?"
    );
    assert_eq!(
        heard.answers[2],
        "Lovely. And what budget do you have in mind?"
    );
    assert_eq!(heard.answers.len(), 6, "{:?}", heard.answers);
    let last = &heard.answers[5];
    assert!(
        last.starts_with("You're booked for ") && last.ends_with(" at 2 pm. Goodbye!"),
        "{last}"
    );
    assert_eq!(heard.ends.len(), 1, "{:?}", heard.ends);
    let handoff: Value = serde_json::from_str(heard.ends[0].0.as_deref().unwrap()).unwrap();
    assert_eq!(handoff["reason"], "agent_ended");

    // Six requests: the last turn (the booking and the end) never asked the model.
    let asked = asked(&world.chat);
    assert_eq!(
        asked.len(),
        6,
        "{:#?}",
        asked.iter().map(system).collect::<Vec<_>>()
    );
    let at_when = scoped("Help the caller choose a time for the viewing.", WHEN);
    let with_save = ["check_availability".to_owned(), "save_slot".to_owned()];
    // The aside and the missed answer are both heard at the first node: the aside did
    // not move the flow.
    for request in &asked[..4] {
        assert_eq!(system(request), at_when);
        assert_eq!(offered(request), with_save);
    }
    let description = asked[0].body["tools"][1]["function"]["description"]
        .as_str()
        .unwrap();
    assert!(description.contains("appointment time"), "{description}");
    assert!(
        last_tool_result(&asked[2])
            .starts_with("error: value: \"sometime soon\" is not understood as a day and a time"),
        "{}",
        last_tool_result(&asked[2])
    );
    let saved = last_tool_result(&asked[3]);
    assert!(
        saved.starts_with("saved appointment_time: ")
            && saved.ends_with(&format!("now say or ask: {BUDGET}")),
        "{saved}"
    );
    // At the budget node: its own scope, and only save_slot (it names no tools).
    assert_eq!(system(&asked[4]), scoped("A rough figure is fine.", BUDGET));
    assert_eq!(offered(&asked[4]), ["save_slot"]);
    // The engine read the budget from the caller's words: the confirmation's scope,
    // which offers no tools at all.
    let at_confirm = system(&asked[5]);
    assert!(
        at_confirm.starts_with(&format!(
            "{FILLED}\n\nSpeak warmly and briefly.\n\nOnly confirm the booking; nothing else.\n\nAt this step, say or ask: "
        )) && at_confirm.ends_with(" at 2 pm, with about 500 thousand dollars to spend. Shall I book the viewing?"),
        "{at_confirm}"
    );
    assert!(asked[5].body.get("tools").is_none(), "{}", asked[5].body);

    // One booking, for next Tuesday at two in the tenant's time, for Ana and this call.
    let bookings = world.bookings().await;
    assert_eq!(bookings.len(), 1, "{bookings:?}");
    let AppointmentEvent::AppointmentBooked {
        lead_id,
        call_id: booked_for,
        title,
        starts_at,
        duration_minutes,
        kind,
        ..
    } = &bookings[0]
    else {
        unreachable!()
    };
    assert_eq!(lead_id, &world.lead_id);
    assert_eq!(booked_for.as_ref(), Some(&call_id));
    assert_eq!(
        (title.as_str(), *duration_minutes, *kind),
        ("Viewing", 30, MeetingKind::InPerson)
    );
    let local = starts_at.with_timezone(&TimeZone::parse(ZONE).unwrap().tz());
    assert_eq!(local.weekday(), Weekday::Tue);
    assert_eq!((local.hour(), local.minute()), (14, 0));
    assert!(*starts_at > Utc::now());
    assert!(*starts_at < Utc::now() + chrono::Duration::days(14));

    // The call's history: both save_slot calls, then the flow's booking and end.
    let events = world.records(&call_id).await;
    assert_eq!(
        tools_called(&events),
        [
            ("save_slot".to_owned(), false),
            ("save_slot".to_owned(), true),
            ("book_appointment".to_owned(), true),
            ("end_call".to_owned(), true),
        ]
    );
    assert_eq!(ended(&events), ("agent_ended".into(), 5));
    let outcome = events.iter().find_map(|e| match e {
        CallEvent::OutcomeClassified { outcome, .. } => Some(*outcome),
        _ => None,
    });
    assert_eq!(outcome, Some(CallOutcome::AppointmentSet));

    // The flow's answers are the lead's details from the call.
    let details: BTreeMap<String, String> = world.lead().await.details;
    assert_eq!(
        details.get("appointment_time"),
        Some(&local.format("%Y-%m-%d %H:%M").to_string()),
        "{details:?}"
    );
    assert!(
        details.get("budget").is_some_and(|b| b.contains("500")),
        "{details:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn asides_are_the_models_and_never_count_as_misses() {
    let world = world(agent(FLOW)).await;
    let replies = vec![
        Reply::text("Yes, there is parking."),
        Reply::text("Five minutes from the station."),
        Reply::text("Dogs are welcome."),
        Reply::text("Tuesday at two it is. What budget do you have in mind?"),
    ];
    let (call_id, heard) = world
        .place(
            replies,
            vec![
                answer(),
                say("do you have parking"),
                answer(),
                say("is it near the station"),
                answer(),
                say("can I bring my dog"),
                answer(),
                say("next tuesday at 2 pm"),
                answer(),
                Step::HangUp,
            ],
        )
        .await;
    // The flow gives up after two misses in a row; three asides are no misses.
    assert_eq!(
        heard.answers[1..],
        [
            "Yes, there is parking.",
            "Five minutes from the station.",
            "Dogs are welcome.",
            "Tuesday at two it is. What budget do you have in mind?",
        ]
    );
    assert!(heard.ends.is_empty(), "{:?}", heard.ends);
    let asked = asked(&world.chat);
    assert_eq!(asked.len(), 4);
    let at_when = scoped("Help the caller choose a time for the viewing.", WHEN);
    for request in &asked[..3] {
        assert_eq!(system(request), at_when);
    }
    // The caller's own answer moved the flow on.
    assert_eq!(system(&asked[3]), scoped("A rough figure is fine.", BUDGET));
    let events = world.records(&call_id).await;
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, CallEvent::TransferRequested { .. })),
        "{events:?}"
    );
    assert_eq!(ended(&events), ("caller_hung_up".into(), 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_that_scopes_nothing_leaves_the_model_as_it_was() {
    // The same flow without a node's prompt or tools: written for speaking alone.
    let plain = FLOW
        .lines()
        .filter(|l| !l.starts_with("    prompt:") && !l.starts_with("    tools:"))
        .collect::<Vec<_>>()
        .join("\n");
    let world = world(agent(&plain)).await;
    let (_, heard) = world
        .place(
            vec![Reply::text("Happy to help.")],
            vec![
                answer(),
                say("next tuesday at 2 pm"),
                answer(),
                Step::HangUp,
            ],
        )
        .await;
    // The agent's greeting, not the flow's; the model's answer.
    assert_eq!(heard.answers, ["Hello Ana, Riley here.", "Happy to help."]);
    let asked = asked(&world.chat);
    assert_eq!(asked.len(), 1);
    assert_eq!(system(&asked[0]), FILLED);
    assert_eq!(
        offered(&asked[0]),
        [
            "qualify_lead",
            "check_availability",
            "book_appointment",
            "send_confirmation",
            "schedule_callback",
            "transfer_to_human",
            "end_call",
        ]
    );
    // The flow did not run: nothing was booked or collected.
    assert!(world.bookings().await.is_empty());
}
