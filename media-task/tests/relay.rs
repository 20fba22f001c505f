//! Whole ConversationRelay calls over a real WebSocket: a simulated Twilio relay
//! (Twilio hears and speaks, the socket carries text) against the media task's
//! `/media/twilio-relay`, with an OpenAI-compatible chat server behind the brain and no
//! speech recogniser or voice at all. Checks the greeting, streamed answers, tools,
//! interrupts, keys, limits, failures, admission, and the call's records.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Scene, ended, token};
use futures_util::{SinkExt, StreamExt};
use parley_media::brain::{ToolOutput, Tools};
use parley_media::call::{Vendors, Voices};
use parley_media::llm::openai::OpenAiChat;
use parley_media::llm::{ToolCall, ToolSpec};
use parley_media::server::{MediaState, service};
use parley_media::tts::TextToSpeech;
use parley_media::vendor::Endpoint;
use parley_shared::aggregate;
use parley_shared::clock::SystemClock;
use parley_shared::domain::agent::{AgentSettings, ConversationMode, VoiceProvider};
use parley_shared::domain::call::{CallEvent, CallOutcome, Carrier};
use parley_shared::domain::ids::CallId;
use parley_shared::domain::lead::{Lead, LeadStatus};
use parley_shared::flow::Industry;
use parley_shared::secrets::SecretString;
use parley_vendors::openai_chat::{self, Reply, StreamEnd};
use parley_vendors::relay_caller::{self, Dial, Heard, Step};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "media-relay-test-stream-secret-0123456789";
// A real tenant id: what a call does to its lead is written for real tenants only.
const TENANT: &str = "0195f0c0-5e1a-7000-8000-00000000aa01";
const GOODBYE: &str = "Thank you for your time. Goodbye.";
const APOLOGY: &str = "I'm sorry, I'm having trouble on my side. Please call back later. Goodbye.";

/// Twilio speaks for a relay agent: the deployment has no voice for it.
struct NoVoice;

#[async_trait::async_trait]
impl Voices for NoVoice {
    async fn voice(&self, _: &AgentSettings) -> Option<Arc<dyn TextToSpeech>> {
        None
    }
}

/// One tool, as the conversation brain will register Parley's own.
struct Availability;

#[async_trait::async_trait]
impl Tools for Availability {
    fn specs(&self) -> Vec<ToolSpec> {
        vec![ToolSpec {
            name: "check_availability".into(),
            description: "Whether a table is free".into(),
            parameters: json!({"type": "object", "properties": {"party": {"type": "integer"}}}),
        }]
    }
    async fn call(&self, call: &ToolCall) -> ToolOutput {
        if call.name == "end_call" {
            return ToolOutput {
                content: "the call ends after your goodbye".into(),
                end_call: true,
            };
        }
        format!("{}: a table for four is free at eight", call.name).into()
    }
}

struct World {
    scene: Scene,
    url: String,
    chat: openai_chat::OpenAiChatServer,
    state: MediaState,
}

fn relay_settings() -> AgentSettings {
    let mut settings = AgentSettings::named("Reception");
    settings.mode = ConversationMode::ConversationRelay;
    settings.voice.provider = VoiceProvider::Twilio;
    settings.inbound_greeting = "Hello, this is Parley. How can I help?".into();
    settings.outbound_greeting = "Hi {lead_name}, this is {company} about your booking.".into();
    settings.system_prompt = Some("You take restaurant bookings.".into());
    settings
}

/// The store with an agent and `calls` calls to it (outbound to a lead when `lead`),
/// the chat server, and the media task serving on loopback.
async fn world(settings: AgentSettings, calls: usize, lead: bool) -> (World, Vec<CallId>) {
    let scene = Scene::new(TENANT, settings).await;
    let (ports, ctx) = (&scene.ports, scene.ctx());
    let lead_id = match lead {
        true => Some(common::lead(ports, &ctx, Some("Ana"), &[("company", "Acme")]).await),
        false => None,
    };
    let mut ids = Vec::new();
    for _ in 0..calls {
        ids.push(scene.call(Carrier::Twilio, lead_id.clone()).await);
    }

    let chat = openai_chat::start().await.unwrap();
    let llm = OpenAiChat::new(
        Endpoint::new(&chat.url(), SecretString::new(chat.key().into())),
        "test-model",
    );
    // No recogniser and no voice: Twilio does both on a relay call.
    let vendors = Vendors {
        stt: None,
        offline_stt: None,
        llm: Some(Arc::new(llm)),
        tools: Some(Arc::new(Availability)),
        voices: Arc::new(NoVoice),
        fallback_voice: None,
        deployment: None,
        min_speech_ms: 200,
        silence_ms: 500,
    };
    let (base, state) = scene.serve(SECRET, vendors).await;
    let url = format!("{base}/media/twilio-relay");
    let world = World {
        scene,
        url,
        chat,
        state,
    };
    (world, ids)
}

/// The session as the webhook's TwiML sets it up: the token and the call's ids in the
/// `<Parameter>`s.
fn dial(url: &str, call_id: &CallId, session: &str) -> Dial {
    let token = common::token(TENANT, SECRET, &call_id.to_string(), 5);
    Dial {
        url: url.to_owned(),
        session_id: session.into(),
        call_sid: format!("CA{session}"),
        from: "+14155550123".into(),
        to: "+14155550100".into(),
        direction: "inbound".into(),
        parameters: vec![
            ("tenant_id".into(), TENANT.into()),
            ("call_id".into(), call_id.to_string()),
            ("direction".into(), "inbound".into()),
            ("token".into(), token),
        ],
    }
}

fn answer(within_secs: u64) -> Step {
    Step::AwaitAnswer {
        within: Duration::from_secs(within_secs),
    }
}

fn say(text: &str) -> Step {
    Step::Say(text.into())
}

/// The call's events once its records are written (they follow the session's end).
async fn records(world: &World, call_id: &CallId) -> Vec<CallEvent> {
    let stored = |e: &CallEvent| matches!(e, CallEvent::TranscriptStored { .. });
    world.scene.call_events_once(call_id, stored).await
}

async fn transcript(world: &World, call_id: &CallId) -> Vec<Value> {
    world.scene.transcript(call_id).await
}

fn speakers(turns: &[Value]) -> Vec<&str> {
    turns
        .iter()
        .map(|t| t["speaker"].as_str().unwrap())
        .collect()
}

fn asked(world: &World) -> Vec<openai_chat::RecordedRequest> {
    common::asked(&world.chat)
}

fn messages(request: &Value) -> Vec<Value> {
    request["messages"].as_array().unwrap().clone()
}

fn last_user(request: &Value) -> String {
    let messages = messages(request);
    let user = messages.iter().rev().find(|m| m["role"] == "user").unwrap();
    user["content"].as_str().unwrap().to_owned()
}

fn handoff_reason(heard: &Heard) -> String {
    assert_eq!(heard.ends.len(), 1, "one end: {:?}", heard.ends);
    let data = heard.ends[0].0.as_deref().expect("handoffData sent");
    let data: Value = serde_json::from_str(data).expect("handoffData is JSON");
    data["reason"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_call_is_greeted_answered_in_tokens_and_kept() {
    let (world, ids) = world(relay_settings(), 1, true).await;
    let call_id = &ids[0];
    world.chat.push(Reply::tool_calls(&[(
        "check_availability",
        r#"{"party":4}"#,
    )]));
    let offer = "Good news: a table for four is free at eight. Shall I book it?";
    world.chat.push(Reply::text(offer));
    world.chat.push(Reply::text("Booked. See you at eight."));

    let heard = relay_caller::call(
        &dial(&world.url, call_id, "VXgreeted"),
        vec![
            answer(5),
            say("Is there a table for four tonight?"),
            answer(10),
            // Twilio complaining is logged; the call goes on.
            Step::Error("Invalid message received: { \"foo\" : \"bar\" }".into()),
            Step::SayPartly("Yes please,".into()),
            say("book it"),
            answer(10),
            Step::HangUp,
        ],
    )
    .await
    .unwrap();

    // The greeting, filled with the lead's fields, went out at once as one token.
    assert_eq!(heard.answers[0], "Hi Ana, this is Acme about your booking.");
    assert!(heard.tokens[0].last);
    // The answer streamed: several tokens as the model wrote them, then the end of it.
    assert_eq!(heard.answers[1], offer);
    let streamed: Vec<_> = heard.tokens[1..].iter().take_while(|t| !t.last).collect();
    assert!(streamed.len() > 3, "streamed in pieces: {streamed:?}");
    assert_eq!(heard.answers[2], "Booked. See you at eight.");
    assert!(
        heard.ends.is_empty() && heard.unknown.is_empty(),
        "{heard:?}"
    );

    // The brain: the agent's prompt, what the caller heard, the caller's words, the
    // tool's round trip, and partial prompts joined into one turn.
    let asked = asked(&world);
    assert_eq!(asked.len(), 3, "{asked:?}");
    let first = messages(&asked[0].body);
    assert_eq!(first[0]["content"], "You take restaurant bookings.");
    assert_eq!(first[1]["role"], "assistant");
    assert_eq!(
        first[1]["content"],
        "Hi Ana, this is Acme about your booking."
    );
    assert_eq!(first[2]["content"], "Is there a table for four tonight?");
    assert_eq!(
        asked[0].body["tools"][0]["function"]["name"],
        "check_availability"
    );
    let after_tool = messages(&asked[1].body);
    assert_eq!(after_tool.last().unwrap()["role"], "tool");
    let third = messages(&asked[2].body);
    let n = third.len();
    assert_eq!(third[n - 2]["content"], offer);
    assert_eq!(third[n - 1]["content"], "Yes please, book it");
    assert_eq!(third[n - 3]["role"], "tool");

    // The call's history and transcript.
    let events = records(&world, call_id).await;
    assert!(events.iter().any(
        |e| matches!(e, CallEvent::MediaStreamStarted { stream_id } if stream_id == "VXgreeted")
    ));
    assert!(events.iter().any(|e| matches!(
        e,
        CallEvent::ToolCalled { name, ok: true } if name == "check_availability"
    )));
    assert_eq!(ended(&events), ("caller_hung_up".into(), 2));
    let turns = transcript(&world, call_id).await;
    assert_eq!(
        speakers(&turns),
        ["agent", "caller", "agent", "caller", "agent"]
    );
    assert_eq!(turns[2]["text"], offer);
    assert_eq!(turns[2]["tool_calls"][0]["name"], "check_availability");
    assert_eq!(turns[3]["text"], "Yes please, book it");
    assert_eq!(turns[4]["text"], "Booked. See you at eight.");

    // Counted as calls on the media task are.
    let metrics = &world.state.metrics;
    assert_eq!((metrics.calls.get(), metrics.turns.get()), (1, 2));
    let text = metrics.render();
    assert!(
        text.contains(r#"parley_media_vendor_errors_total{vendor="conversation_relay"} 1"#),
        "{text}"
    );
    assert!(
        text.contains("parley_media_turn_to_brain_seconds_count 2"),
        "{text}"
    );
    for _ in 0..50 {
        if world.state.live_calls() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(world.state.live_calls(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interrupt_cancels_the_answer_and_the_context_keeps_what_was_heard() {
    let (world, ids) = world(relay_settings(), 1, false).await;
    let call_id = &ids[0];
    let long = "We serve fresh pasta made in house every morning, wood fired pizza, \
                salads from the garden, and a dessert menu that changes every week. \
                On Sundays there is a long lunch with live music on the terrace.";
    world.chat.push(
        Reply::text(long)
            .delays(Duration::ZERO, Duration::from_millis(25))
            .delta_chars(4),
    );
    world.chat.push(Reply::text("Okay."));

    let heard = relay_caller::call(
        &dial(&world.url, call_id, "VXinterrupt"),
        vec![
            answer(5),
            say("Tell me about the menu"),
            Step::AwaitTokens {
                count: 5,
                within: Duration::from_secs(5),
            },
            Step::Interrupt { heard_chars: 14 },
            say("Stop please"),
            answer(10),
            Step::HangUp,
        ],
    )
    .await
    .unwrap();

    // The long answer was cut off: never finished, its request dropped.
    let said_of_long: String = heard.tokens[1..]
        .iter()
        .take_while(|t| !t.token.starts_with("Okay"))
        .map(|t| t.token.as_str())
        .collect();
    assert!(
        long.starts_with(&said_of_long) && said_of_long.len() < long.len(),
        "{said_of_long:?}"
    );
    assert_eq!(
        heard.answers.len(),
        2,
        "the long answer never ended: {:?}",
        heard.answers
    );
    assert!(heard.answers[1].ends_with("Okay."));
    assert_eq!(
        world.chat.wait_for_end(0, Duration::from_secs(5)).await,
        Some(StreamEnd::Abandoned)
    );

    // The brain's next context holds only what the caller heard.
    let what_was_heard = heard.interrupted[0].trim().to_owned();
    assert_eq!(what_was_heard, "We serve fresh");
    let asked = asked(&world);
    assert_eq!(asked.len(), 2);
    let context = messages(&asked[1].body);
    let n = context.len();
    assert_eq!(context[n - 2]["role"], "assistant");
    assert_eq!(context[n - 2]["content"], what_was_heard);
    assert_eq!(context[n - 1]["content"], "Stop please");

    let events = records(&world, call_id).await;
    assert!(
        events
            .iter()
            .any(|e| matches!(e, CallEvent::CallerBargedIn { .. }))
    );
    let turns = transcript(&world, call_id).await;
    assert_eq!(turns[2]["text"], what_was_heard);
    assert_eq!(turns[2]["interrupted"], true);
    assert_eq!(world.state.metrics.barge_ins.get(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_reach_the_brain_at_hash_or_after_a_pause() {
    let (world, ids) = world(relay_settings(), 1, false).await;
    let call_id = &ids[0];
    let heard = relay_caller::call(
        &dial(&world.url, call_id, "VXkeys"),
        vec![
            answer(5),
            Step::Dtmf('4'),
            Step::Dtmf('2'),
            Step::Dtmf('#'),
            answer(5),
            Step::Dtmf('7'),
            // No `#`: the keys go to the brain after the pause.
            answer(5),
            Step::HangUp,
        ],
    )
    .await
    .unwrap();
    assert_eq!(heard.answers.len(), 3, "{:?}", heard.answers);
    let asked = asked(&world);
    assert_eq!(asked.len(), 2);
    assert_eq!(
        last_user(&asked[0].body),
        "(the caller pressed the keys 42#)"
    );
    assert_eq!(last_user(&asked[1].body), "(the caller pressed the keys 7)");
    records(&world, call_id).await;
    let turns = transcript(&world, call_id).await;
    assert_eq!(turns[1]["dtmf"], "42#");
    assert_eq!(turns[3]["dtmf"], "7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_answers_before_the_industry_flow_with_its_prompt_filled_in() {
    let mut settings = relay_settings();
    settings.industry = Some(Industry::Appointments);
    settings.system_prompt = Some("You are {agent_name}, helping {lead_name} of {company}.".into());
    let (world, ids) = world(settings, 1, true).await;
    world.chat.push(Reply::text("Of course."));
    let heard = relay_caller::call(
        &dial(&world.url, &ids[0], "VXmodel"),
        vec![
            answer(5),
            say("Can I move my booking?"),
            answer(5),
            Step::HangUp,
        ],
    )
    .await
    .unwrap();
    // The agent's greeting, not the flow's opening; the model answers.
    assert_eq!(heard.answers[0], "Hi Ana, this is Acme about your booking.");
    assert_eq!(heard.answers[1], "Of course.");
    let asked = asked(&world);
    assert_eq!(asked.len(), 1);
    assert_eq!(
        messages(&asked[0].body)[0]["content"],
        "You are Reception, helping Ana of Acme."
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_brain_ends_the_call_after_its_own_goodbye() {
    let (world, ids) = world(relay_settings(), 1, false).await;
    let call_id = &ids[0];
    world.chat.push(Reply::tool_calls(&[("end_call", "{}")]));
    world.chat.push(Reply::text("Thanks for calling. Goodbye!"));
    // No steps after the answer: the session ends from Parley's side.
    let heard = relay_caller::call(
        &dial(&world.url, call_id, "VXendcall"),
        vec![answer(5), say("That's all, thanks."), answer(5)],
    )
    .await
    .unwrap();
    assert_eq!(heard.answers[1], "Thanks for calling. Goodbye!");
    assert_eq!(handoff_reason(&heard), "agent_ended");
    let goodbye_at = heard.tokens.last().unwrap().at_ms;
    assert!(heard.ends[0].1 >= goodbye_at, "end after the goodbye");
    // The model was asked once more after its tool, to say goodbye, and no more.
    assert_eq!(asked(&world).len(), 2);

    let events = records(&world, call_id).await;
    assert_eq!(ended(&events), ("agent_ended".into(), 1));
    assert!(
        events
            .iter()
            .any(|e| matches!(e, CallEvent::ToolCalled { name, ok: true } if name == "end_call"))
    );
    let turns = transcript(&world, call_id).await;
    assert_eq!(speakers(&turns), ["agent", "caller", "agent"]);
    assert_eq!(turns[2]["text"], "Thanks for calling. Goodbye!");
}

/// The hand-overs the call's history shows (mode, reason).
fn transfers(events: &[CallEvent]) -> Vec<(String, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            CallEvent::TransferRequested { mode, reason } => Some((mode.clone(), reason.clone())),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_asking_for_a_person_is_handed_over_without_asking_the_model() {
    let (world, ids) = world(relay_settings(), 1, false).await;
    let call_id = &ids[0];
    world
        .chat
        .push(Reply::text("We have tables at seven and eight."));
    let heard = relay_caller::call(
        &dial(&world.url, call_id, "VXperson"),
        vec![
            answer(5),
            say("Do you have a table tonight?"),
            answer(10),
            say("Can I speak to a real person please"),
            answer(5),
        ],
    )
    .await
    .unwrap();
    assert_eq!(
        heard.answers[2],
        "Sure. Let me connect you with someone from the team."
    );
    assert_eq!(handoff_reason(&heard), "agent_ended");
    // The model answered the first turn only: the request for a person never reached it.
    assert_eq!(asked(&world).len(), 1);
    let events = records(&world, call_id).await;
    assert_eq!(
        transfers(&events),
        [("warm".to_owned(), "asked_for_person".to_owned())]
    );
    assert!(events.iter().any(
        |e| matches!(e, CallEvent::ToolCalled { name, ok: true } if name == "transfer_to_human")
    ));
    assert_eq!(ended(&events), ("agent_ended".into(), 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_turns_in_a_row_with_nothing_understood_go_to_a_person() {
    let (world, ids) = world(relay_settings(), 1, false).await;
    let call_id = &ids[0];
    world
        .chat
        .push(Reply::text("Sorry, could you say that again?"));
    world.chat.push(Reply::text("I didn't quite catch that."));
    let heard = relay_caller::call(
        &dial(&world.url, call_id, "VXmisses"),
        vec![
            answer(5),
            say("um"),
            answer(10),
            say("uh"),
            answer(10),
            say("hmm"),
            answer(5),
        ],
    )
    .await
    .unwrap();
    assert!(
        heard.answers[3].contains("connect you with someone"),
        "{:?}",
        heard.answers
    );
    // The first two went to the model; the third is the guard's.
    assert_eq!(asked(&world).len(), 2);
    let events = records(&world, call_id).await;
    assert_eq!(
        transfers(&events),
        [("warm".to_owned(), "not_understood".to_owned())]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_flows_turn_limit_a_model_hands_over_instead_of_hanging_up() {
    let mut settings = relay_settings();
    let mut flow = parley_shared::flow::Flow::default_for(Industry::Appointments);
    flow.max_turns = 1;
    settings.flow = Some(flow);
    let (world, ids) = world(settings, 1, false).await;
    let call_id = &ids[0];
    world.chat.push(Reply::text("What day suits you?"));
    let heard = relay_caller::call(
        &dial(&world.url, call_id, "VXturns"),
        vec![
            answer(5),
            say("I need a checkup"),
            answer(10),
            say("maybe next week"),
            answer(5),
        ],
    )
    .await
    .unwrap();
    assert!(
        heard.answers[2].contains("colleague"),
        "{:?}",
        heard.answers
    );
    assert_eq!(asked(&world).len(), 1);
    let events = records(&world, call_id).await;
    assert_eq!(
        transfers(&events),
        [("warm".to_owned(), "max_turns".to_owned())]
    );
}

/// The call's outcome and summary, once classified.
fn outcome(events: &[CallEvent]) -> (CallOutcome, String) {
    events
        .iter()
        .find_map(|e| match e {
            CallEvent::OutcomeClassified { outcome, summary } => Some((*outcome, summary.clone())),
            _ => None,
        })
        .expect("the call is classified")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_the_call_the_model_writes_its_notes_onto_the_call_and_the_lead() {
    let (world, ids) = world(relay_settings(), 2, true).await;
    world
        .chat
        .push(Reply::text("We have a table for four at eight."));
    world.chat.push(Reply::text(
        "```json\n{\"summary\": \"Ana asked for a table for four tonight; call her on 415 555 0123.\", \
         \"details\": {\"party_size\": 4, \"occasion\": \"birthday\", \"phone\": \"415 555 0123\"}}\n```",
    ));
    let steps = || {
        vec![
            answer(5),
            say("A table for four tonight, it's a birthday"),
            answer(10),
            Step::HangUp,
        ]
    };
    relay_caller::call(&dial(&world.url, &ids[0], "VXnotes"), steps())
        .await
        .unwrap();
    let events = records(&world, &ids[0]).await;
    let (kind, summary) = outcome(&events);
    // Nothing was booked or qualified: the call came to nothing the facts can name.
    assert_eq!(kind, CallOutcome::Incomplete);
    assert_eq!(
        summary,
        "Ana asked for a table for four tonight; call her on [number]."
    );
    // The model was given the whole conversation to write them from.
    let notes: Vec<_> = world
        .chat
        .requests()
        .into_iter()
        .filter(|r| common::is_notes(&r.body))
        .collect();
    assert_eq!(notes.len(), 1);
    assert_eq!(
        notes[0].body["messages"][1]["content"],
        "Agent: Hi Ana, this is Acme about your booking.\n\
         Caller: A table for four tonight, it's a birthday\n\
         Agent: We have a table for four at eight."
    );
    assert!(notes[0].body.get("tools").is_none());
    let ctx = world.scene.ctx();
    let call = aggregate::load::<parley_shared::domain::call::Call>(
        &*world.scene.ports.events,
        &ids[0].stream(),
        &ctx.tenant_id,
    )
    .await
    .unwrap()
    .state;
    let lead_id = call.lead_id.unwrap();
    let lead = aggregate::load::<Lead>(
        &*world.scene.ports.events,
        &lead_id.stream(),
        &ctx.tenant_id,
    )
    .await
    .unwrap()
    .state;
    // The model's details, less the phone number; a person answered: contacted.
    assert_eq!(
        lead.details,
        [
            ("occasion".to_owned(), "birthday".to_owned()),
            ("party_size".to_owned(), "4".to_owned())
        ]
        .into()
    );
    assert_eq!(lead.status, LeadStatus::Contacted);

    // Notes the model cannot write leave the facts' own summary.
    world.chat.push(Reply::text("Sure, no problem."));
    world.chat.push(Reply::text("I'd rather not."));
    relay_caller::call(&dial(&world.url, &ids[1], "VXnonotes"), steps())
        .await
        .unwrap();
    let events = records(&world, &ids[1]).await;
    let (kind, summary) = outcome(&events);
    assert_eq!(kind, CallOutcome::Incomplete);
    assert!(summary.contains("hung up"), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_turns_says_goodbye_then_ends_the_session() {
    let mut settings = relay_settings();
    settings.max_turns = 1;
    let (world, ids) = world(settings, 1, false).await;
    let call_id = &ids[0];
    // No steps after the goodbye: the session ends from Parley's side.
    let heard = relay_caller::call(
        &dial(&world.url, call_id, "VXmaxturns"),
        vec![answer(5), say("Hello"), answer(5)],
    )
    .await
    .unwrap();
    assert_eq!(heard.answers[1], GOODBYE);
    assert_eq!(handoff_reason(&heard), "max_turns");
    let goodbye_at = heard.tokens.last().unwrap().at_ms;
    assert!(heard.ends[0].1 >= goodbye_at, "end after the goodbye");
    assert!(asked(&world).is_empty(), "no answer past the limit");

    let events = records(&world, call_id).await;
    assert_eq!(ended(&events), ("max_turns".into(), 1));
    let turns = transcript(&world, call_id).await;
    assert_eq!(speakers(&turns), ["agent", "caller", "agent"]);
    assert_eq!(turns[2]["text"], GOODBYE);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_brain_failure_apologises_then_ends_the_session() {
    let (world, ids) = world(relay_settings(), 1, false).await;
    let call_id = &ids[0];
    world.chat.push(Reply::error(400));
    let heard = relay_caller::call(
        &dial(&world.url, call_id, "VXfailure"),
        vec![
            answer(5),
            say("Hello"),
            answer(5),
            // The caller talks over the apology: nothing is left to wait for.
            Step::Interrupt { heard_chars: 9 },
        ],
    )
    .await
    .unwrap();
    assert_eq!(heard.answers[1], APOLOGY);
    assert_eq!(handoff_reason(&heard), "vendor_failed");

    let events = records(&world, call_id).await;
    assert_eq!(ended(&events), ("vendor_failed".into(), 1));
    let turns = transcript(&world, call_id).await;
    let last = turns.last().unwrap();
    assert_eq!(
        (last["text"].as_str(), last["interrupted"].as_bool()),
        (Some("I'm sorry"), Some(true))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_without_a_valid_token_is_refused_before_anything() {
    let (world, ids) = world(relay_settings(), 1, false).await;
    let call_id = &ids[0];
    let good = dial(&world.url, call_id, "VXrefused");
    let with_token = |token: Option<String>| {
        let mut d = good.clone();
        d.parameters.retain(|(k, _)| k != "token");
        if let Some(t) = token {
            d.parameters.push(("token".into(), t));
        }
        d
    };
    let id = call_id.to_string();
    let mut wrong_tenant = good.clone();
    for (k, v) in &mut wrong_tenant.parameters {
        if k == "tenant_id" {
            *v = "someone-else".into();
        }
    }
    for bad in [
        with_token(Some(token(TENANT, SECRET, "another-call", 5))),
        with_token(Some(token(TENANT, SECRET, &id, -1))),
        with_token(Some(token(
            TENANT,
            "some-other-secret-entirely-0123456789",
            &id,
            5,
        ))),
        with_token(Some("not-a-token".into())),
        with_token(None),
        wrong_tenant,
    ] {
        let heard = relay_caller::call(&bad, vec![say("Hello")]).await.unwrap();
        assert_eq!(heard.close.as_ref().map(|c| c.0), Some(1008), "{heard:?}");
        assert!(heard.tokens.is_empty());
    }
    // Anything but setup first is refused too, and garbage is malformed.
    for (first, code) in [
        (
            json!({"type": "prompt", "voicePrompt": "hi", "last": true}).to_string(),
            1008,
        ),
        ("{not json".to_owned(), 1007),
    ] {
        let (mut socket, _) = tokio_tungstenite::connect_async(&world.url).await.unwrap();
        socket.send(Message::text(first)).await.unwrap();
        let mut closed = None;
        while let Some(Ok(message)) = socket.next().await {
            if let Message::Close(frame) = message {
                closed = frame.map(|f| u16::from(f.code));
                break;
            }
        }
        assert_eq!(closed, Some(code));
    }
    // Nothing was done for the call: no events, no brain, no call counted.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let events = world.scene.call_events(call_id).await;
    assert!(
        events
            .iter()
            .all(|e| matches!(e, CallEvent::CallRequested { .. })),
        "{events:?}"
    );
    assert!(asked(&world).is_empty());
    assert_eq!(world.state.metrics.calls.get(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_message_ends_that_call_with_its_records_and_no_other() {
    let (world, ids) = world(relay_settings(), 3, false).await;
    let dials: Vec<Dial> = [(0, "VXhealthy"), (1, "VXgarbage"), (2, "VXunknown")]
        .iter()
        .map(|&(i, session)| dial(&world.url, &ids[i], session))
        .collect();
    let healthy = relay_caller::call(
        &dials[0],
        vec![
            answer(5),
            Step::Pause(Duration::from_millis(500)),
            say("Still there?"),
            answer(5),
            Step::HangUp,
        ],
    );
    let garbage = relay_caller::call(&dials[1], vec![answer(5), Step::Raw("{not json".into())]);
    let unknown = relay_caller::call(
        &dials[2],
        vec![
            answer(5),
            Step::Raw(json!({"type": "transfer", "to": "+14155550199"}).to_string()),
        ],
    );
    let (healthy, garbage, unknown) = tokio::join!(healthy, garbage, unknown);
    let (healthy, garbage, unknown) = (healthy.unwrap(), garbage.unwrap(), unknown.unwrap());

    let (code, reason) = garbage.close.clone().unwrap();
    assert_eq!(code, 1007);
    assert!(reason.starts_with("not JSON"), "{reason}");
    let (code, reason) = unknown.close.clone().unwrap();
    assert_eq!(
        (code, reason.as_str()),
        (1007, r#"unknown type "transfer""#)
    );
    for id in &ids[1..] {
        let events = records(&world, id).await;
        assert_eq!(ended(&events), ("malformed_frame".into(), 0));
        let turns = transcript(&world, id).await;
        assert_eq!(turns[0]["text"], "Hello, this is Parley. How can I help?");
    }

    // The healthy call was answered after the others broke, and ended normally.
    assert_eq!(healthy.answers[1], "You said: Still there?.");
    let events = records(&world, &ids[0]).await;
    assert_eq!(ended(&events), ("caller_hung_up".into(), 1));
}

#[tokio::test]
async fn without_conversations_a_relay_session_is_only_admitted_and_checked() {
    let state = MediaState::new(Arc::new(SystemClock), SecretString::new(SECRET.into()));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/media/twilio-relay", listener.local_addr().unwrap());
    let app = service(state.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let call_id = CallId::new();
    let heard = relay_caller::call(
        &dial(&url, &call_id, "VXlisten"),
        vec![
            say("Hello?"),
            Step::Dtmf('1'),
            Step::Raw(r#"{"type":"prompt","voicePrompt":7,"last":true}"#.into()),
        ],
    )
    .await
    .unwrap();
    assert!(heard.tokens.is_empty(), "nobody speaks");
    let (code, reason) = heard.close.unwrap();
    assert_eq!(
        (code, reason.as_str()),
        (1007, "field voicePrompt: expected a string, found a number")
    );
    assert_eq!(state.metrics.calls.get(), 1);
    let mut bad = dial(&url, &call_id, "VXlisten2");
    bad.parameters.retain(|(k, _)| k != "token");
    let heard = relay_caller::call(&bad, vec![]).await.unwrap();
    assert_eq!(heard.close.map(|c| c.0), Some(1008));
    assert_eq!(state.metrics.calls.get(), 1);
}
