//! Hand-overs to a person, as Twilio drives them: the stream ends, Twilio asks the
//! `<Connect action>` what next, dials each escalation number in turn through `<Dial>`
//! (whispering to whoever answers a warm hand-over), and reports each dial to its
//! `<Dial action>`; redelivered, forged and garbled on the way. And the Exotel Connect
//! applet's question: whom to dial for a call that asked for a person.

mod common;

use common::ctx;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use chrono::{DateTime, Duration, Utc};
use parley_shared::aggregate::{execute, load_any};
use parley_shared::backend::Ports;
use parley_shared::clock::SystemClock;
use parley_shared::config::Config;
use parley_shared::domain::agent::{Agent, AgentCommand, AgentStatus, ConversationMode};
use parley_shared::domain::call::{Call, CallCommand, CallEvent, CallStatus, Carrier, Direction};
use parley_shared::domain::campaign::{Campaign, CampaignCommand, CampaignSettings};
use parley_shared::domain::dialplan::{Dial, plan};
use parley_shared::domain::lead::{Lead, LeadCommand};
use parley_shared::domain::{AgentId, CallId, CampaignId, LeadId, PhoneNumber, TenantId};
use parley_shared::embedded::Embedded;
use parley_shared::exotel;
use parley_shared::secrets::SecretString;
use parley_shared::twilio::signature;
use parley_webhooks::{WebhookState, router};
use serde_json::{Value, json};
use tower::ServiceExt;

const PUBLIC: &str = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod";
const TOKEN: &str = "tenant-auth-token-1234567890abcdef";
/// The tenant's Twilio number.
const NUMBER: &str = "+14155550100";
/// Whoever is on the call with the agent (the inbound caller, or the lead called).
const CALLER: &str = "+14155550199";
/// The agent's escalation numbers, in order of preference.
const FIRST: &str = "+14155550201";
const SECOND: &str = "+14155550202";
/// The tenant's ExoPhone.
const EXOPHONE: &str = "+918047491899";

/// An element of a TwiML document, parsed back.
#[derive(Debug, Clone, PartialEq)]
struct El {
    name: String,
    attrs: Vec<(String, String)>,
    text: String,
    children: Vec<El>,
}

impl El {
    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn names(&self) -> Vec<&str> {
        self.children.iter().map(|c| c.name.as_str()).collect()
    }
}

/// A small XML reader for the TwiML Parley writes: a declaration, elements, attributes
/// in double quotes, text and entity references. Panics on anything else.
struct Reader<'a> {
    s: &'a str,
    at: usize,
}

impl Reader<'_> {
    fn rest(&self) -> &str {
        &self.s[self.at..]
    }

    fn eat(&mut self, token: &str) {
        assert!(
            self.rest().starts_with(token),
            "expected {token:?} at {:?}",
            self.rest()
        );
        self.at += token.len();
    }

    fn until(&mut self, stop: &[char]) -> String {
        let end = self.rest().find(stop).expect("unterminated");
        let out = self.rest()[..end].to_owned();
        self.at += end;
        out
    }

    fn skip_space(&mut self) {
        let trimmed = self.rest().trim_start();
        self.at = self.s.len() - trimmed.len();
    }

    fn element(&mut self) -> El {
        self.eat("<");
        let name = self.until(&[' ', '/', '>']);
        let mut el = El {
            name,
            attrs: Vec::new(),
            text: String::new(),
            children: Vec::new(),
        };
        loop {
            self.skip_space();
            if self.rest().starts_with("/>") {
                self.eat("/>");
                return el;
            }
            if self.rest().starts_with('>') {
                self.eat(">");
                break;
            }
            let key = self.until(&['=']);
            self.eat("=\"");
            let value = self.until(&['"']);
            self.eat("\"");
            el.attrs.push((key, unescape(&value)));
        }
        loop {
            if self.rest().starts_with("</") {
                self.eat("</");
                let end = self.until(&['>']);
                assert_eq!(end, el.name, "mismatched end tag");
                self.eat(">");
                return el;
            }
            if self.rest().starts_with('<') {
                let child = self.element();
                el.children.push(child);
            } else {
                let text = self.until(&['<']);
                el.text += &unescape(&text);
            }
        }
    }
}

fn unescape(raw: &str) -> String {
    let mut out = String::new();
    let mut rest = raw;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let end = rest[amp..].find(';').expect("unterminated reference") + amp;
        let name = &rest[amp + 1..end];
        let c = match name {
            "amp" => '&',
            "lt" => '<',
            "gt" => '>',
            "quot" => '"',
            "apos" => '\'',
            _ if name.starts_with("#x") => {
                char::from_u32(u32::from_str_radix(&name[2..], 16).unwrap()).unwrap()
            }
            _ if name.starts_with('#') => char::from_u32(name[1..].parse().unwrap()).unwrap(),
            _ => panic!("unknown entity {name}"),
        };
        out.push(c);
        rest = &rest[end + 1..];
    }
    out + rest
}

/// The `<Response>` of a TwiML document.
fn parse(xml: &str) -> El {
    let decl = r#"<?xml version="1.0" encoding="UTF-8"?>"#;
    assert!(xml.starts_with(decl), "{xml}");
    let mut reader = Reader { s: xml, at: 0 };
    reader.eat(decl);
    let root = reader.element();
    assert_eq!(reader.rest(), "", "trailing content in {xml}");
    assert_eq!(root.name, "Response", "{xml}");
    root
}

/// The `field` of a JSON error body.
fn error_field(body: &str) -> Option<String> {
    let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    json["error"]["field"].as_str().map(str::to_owned)
}

struct World {
    app: Router,
    ports: Ports,
    tenant: TenantId,
    agent: AgentId,
    exotel_secret: SecretString,
    _dir: tempfile::TempDir,
}

impl World {
    /// A tenant whose active agent Riley hands callers to `escalation` numbers.
    async fn new(escalation: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let ports = Ports::embedded(
            Embedded::open(dir.path(), Arc::new(SystemClock), PUBLIC.into(), 5).unwrap(),
        );
        let config = Config::from_lookup(|name| match name {
            "PARLEY_PUBLIC_URL" => Some(PUBLIC.into()),
            "PARLEY_MEDIA_URL" => Some("wss://media.example.com".into()),
            _ => None,
        })
        .unwrap();
        let state = WebhookState::new(ports.clone(), &config, true)
            .await
            .unwrap();
        let (tenant, agent) = (TenantId::new(), AgentId::new());
        common::routed_tenant(
            &ports,
            &tenant,
            &agent,
            AgentStatus::Active,
            &[(NUMBER, Carrier::Twilio)],
        )
        .await;
        ports
            .secrets
            .put(
                &format!("tenant/{tenant}/twilio-auth-token"),
                &SecretString::new(TOKEN.into()),
            )
            .await
            .unwrap();
        let exotel_secret = exotel::new_webhook_secret();
        ports
            .secrets
            .put(&exotel::webhook_secret_name(&tenant), &exotel_secret)
            .await
            .unwrap();
        let world = World {
            app: router(state),
            ports,
            tenant,
            agent,
            exotel_secret,
            _dir: dir,
        };
        world
            .change_agent(|s| {
                s.escalation_numbers = escalation
                    .iter()
                    .map(|n| PhoneNumber::parse(n).unwrap())
                    .collect();
            })
            .await;
        world
    }

    async fn change_agent(
        &self,
        change: impl FnOnce(&mut parley_shared::domain::agent::AgentSettings),
    ) {
        let mut settings = load_any::<Agent>(&*self.ports.events, &self.agent.stream())
            .await
            .unwrap()
            .state
            .settings
            .unwrap();
        change(&mut settings);
        execute::<Agent>(
            &*self.ports.events,
            &*self.ports.clock,
            &self.agent.stream(),
            &ctx(&self.tenant),
            AgentCommand::Change { settings },
        )
        .await
        .unwrap();
    }

    /// Posts `params` to `path` as Twilio would, signed with `token` (or unsigned).
    async fn post(
        &self,
        path: &str,
        params: &[(&str, &str)],
        token: Option<&str>,
    ) -> (StatusCode, String) {
        let params: Vec<(String, String)> = params
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut request =
            Request::post(path).header("content-type", "application/x-www-form-urlencoded");
        if let Some(token) = token {
            let url = signature::public_url(PUBLIC, path);
            request = request.header(
                "x-twilio-signature",
                signature::expected_signature(token, &url, &params),
            );
        }
        let body = serde_urlencoded::to_string(&params).unwrap();
        self.send(request.body(Body::from(body)).unwrap()).await
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, String) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Twilio's request to the call's `<Connect action>` (the stream ended).
    async fn connected(&self, call_id: &CallId, extra: &[(&str, &str)]) -> (StatusCode, String) {
        let mut params = vec![
            ("AccountSid", "AC123"),
            ("CallSid", "CA100"),
            ("CallStatus", "in-progress"),
        ];
        params.extend_from_slice(extra);
        let path = format!("/webhooks/twilio/connected?call_id={call_id}");
        self.post(&path, &params, Some(TOKEN)).await
    }

    /// Twilio's request to `<Dial action>` for escalation number `index`.
    async fn dialled(&self, call_id: &CallId, index: u32, status: &str) -> (StatusCode, String) {
        let path = format!("/webhooks/twilio/transfer?call_id={call_id}&index={index}");
        let params = [
            ("AccountSid", "AC123"),
            ("CallSid", "CA100"),
            ("DialCallSid", "CA900"),
            ("DialCallStatus", status),
        ];
        self.post(&path, &params, Some(TOKEN)).await
    }

    /// Twilio's request to `<Number url>` when the person answers.
    async fn whisper(&self, call_id: &CallId) -> (StatusCode, String) {
        let path = format!("/webhooks/twilio/whisper?call_id={call_id}");
        let params = [("AccountSid", "AC123"), ("CallSid", "CA900")];
        self.post(&path, &params, Some(TOKEN)).await
    }

    /// A call to the tenant's number, answered through the voice URL; its TwiML.
    async fn inbound(&self, call_sid: &str) -> (CallId, El) {
        let params = [
            ("AccountSid", "AC123"),
            ("CallSid", call_sid),
            ("From", CALLER),
            ("To", NUMBER),
            ("CallStatus", "ringing"),
            ("Direction", "inbound"),
        ];
        let (status, twiml) = self
            .post("/webhooks/twilio/voice", &params, Some(TOKEN))
            .await;
        assert_eq!(status, StatusCode::OK, "{twiml}");
        (CallId::for_carrier_call("twilio", call_sid), parse(&twiml))
    }

    /// A campaign (with its default calling window and retries) and one lead in it.
    async fn lead(&self) -> (CampaignId, LeadId) {
        let settings: CampaignSettings = serde_json::from_value(json!({
            "name": "Spring open house",
            "agent_id": self.agent,
            "time_zone": "Europe/London",
        }))
        .unwrap();
        let campaign = CampaignId::new();
        execute::<Campaign>(
            &*self.ports.events,
            &*self.ports.clock,
            &campaign.stream(),
            &ctx(&self.tenant),
            CampaignCommand::Create { settings },
        )
        .await
        .unwrap();
        let lead = LeadId::new();
        let create = LeadCommand::Create {
            campaign_id: Some(campaign.clone()),
            phone: PhoneNumber::parse(CALLER).unwrap(),
            name: Some("Dana".into()),
            time_zone: None,
            fields: Default::default(),
        };
        self.run_lead(&lead, create).await;
        (campaign, lead)
    }

    async fn run_lead(&self, lead: &LeadId, command: LeadCommand) {
        execute::<Lead>(
            &*self.ports.events,
            &*self.ports.clock,
            &lead.stream(),
            &ctx(&self.tenant),
            command,
        )
        .await
        .unwrap();
    }

    /// A campaign call to `lead` (its first attempt), answered through the voice URL;
    /// its TwiML.
    async fn outbound(&self, campaign: &CampaignId, lead: &LeadId, call_sid: &str) -> (CallId, El) {
        let call_id = CallId::new();
        let start = LeadCommand::StartAttempt {
            attempt: 1,
            call_id: call_id.clone(),
        };
        self.run_lead(lead, start).await;
        let request = CallCommand::Request {
            direction: Direction::Outbound,
            carrier: Carrier::Twilio,
            from: PhoneNumber::parse(NUMBER).unwrap(),
            to: PhoneNumber::parse(CALLER).unwrap(),
            agent_id: self.agent.clone(),
            lead_id: Some(lead.clone()),
            campaign_id: Some(campaign.clone()),
            attempt: 1,
        };
        self.run_call(&call_id, request).await;
        let path = format!("/webhooks/twilio/voice?call_id={call_id}");
        let params = [("CallSid", call_sid), ("To", CALLER), ("From", NUMBER)];
        let (status, twiml) = self.post(&path, &params, Some(TOKEN)).await;
        assert_eq!(status, StatusCode::OK, "{twiml}");
        (call_id, parse(&twiml))
    }

    async fn run_call(&self, call_id: &CallId, command: CallCommand) {
        execute::<Call>(
            &*self.ports.events,
            &*self.ports.clock,
            &call_id.stream(),
            &ctx(&self.tenant),
            command,
        )
        .await
        .unwrap();
    }

    /// What the media task writes when the conversation asks for a person: the request,
    /// then the stream's end.
    async fn ask_for_person(&self, call_id: &CallId, mode: &str, reason: &str) {
        let asked = CallEvent::TransferRequested {
            mode: mode.into(),
            reason: reason.into(),
        };
        self.run_call(call_id, CallCommand::RecordMedia(asked))
            .await;
        let ended = CallEvent::MediaStreamEnded {
            reason: "transfer".into(),
            duration_ms: 42_000,
            turns: 4,
        };
        self.run_call(call_id, CallCommand::RecordMedia(ended))
            .await;
    }

    async fn call(&self, id: &CallId) -> Call {
        load_any::<Call>(&*self.ports.events, &id.stream())
            .await
            .unwrap()
            .state
    }

    async fn lead_state(&self, id: &LeadId) -> Lead {
        load_any::<Lead>(&*self.ports.events, &id.stream())
            .await
            .unwrap()
            .state
    }

    async fn event_types(&self, stream: &parley_shared::event::StreamId) -> Vec<String> {
        self.ports
            .events
            .read_stream(stream, 1)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.event_type)
            .collect()
    }
}

fn connected_url(call_id: &CallId) -> String {
    format!("{PUBLIC}/webhooks/twilio/connected?call_id={call_id}")
}

fn transfer_url(call_id: &CallId, index: u32) -> String {
    format!("{PUBLIC}/webhooks/twilio/transfer?call_id={call_id}&index={index}")
}

fn whisper_url(call_id: &CallId) -> String {
    format!("{PUBLIC}/webhooks/twilio/whisper?call_id={call_id}")
}

/// The `<Dial>` a step answers: its only verb.
fn dial_of(xml: &str) -> El {
    let response = parse(xml);
    assert_eq!(response.names(), ["Dial"], "{xml}");
    let dial = response.children[0].clone();
    assert_eq!(dial.names(), ["Number"], "{xml}");
    dial
}

fn assert_hang_up(xml: &str) {
    let response = parse(xml);
    assert_eq!(response.names(), ["Hangup"], "{xml}");
}

/// The caller hears that nobody is free and that they will be called back, then the
/// call ends.
fn assert_nobody_free(xml: &str) {
    let response = parse(xml);
    assert_eq!(response.names(), ["Say", "Hangup"], "{xml}");
    let said = &response.children[0].text;
    assert!(
        said.contains("nobody is free") && said.contains("call you back shortly"),
        "{said}"
    );
}

#[tokio::test]
async fn a_warm_hand_over_whispers_and_dials_each_number_until_one_answers() {
    let world = World::new(&[FIRST, SECOND]).await;
    let (call_id, answer) = world.inbound("CA100").await;
    // Every stream carries the action Twilio requests when it ends.
    let connect = &answer.children[0];
    assert_eq!(connect.name, "Connect");
    assert_eq!(
        connect.attr("action"),
        Some(connected_url(&call_id).as_str())
    );
    assert_eq!(connect.names(), ["Stream"]);

    world
        .ask_for_person(&call_id, "warm", "asked_for_human_on_415_555_0199")
        .await;
    let (status, xml) = world.connected(&call_id, &[]).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    let dial = dial_of(&xml);
    // Parley's own number shows: the number the caller dialled.
    assert_eq!(dial.attr("callerId"), Some(NUMBER));
    assert_eq!(dial.attr("timeout"), Some("20"));
    assert_eq!(
        dial.attr("action"),
        Some(transfer_url(&call_id, 0).as_str())
    );
    let number = &dial.children[0];
    assert_eq!(number.text, FIRST);
    assert_eq!(number.attr("url"), Some(whisper_url(&call_id).as_str()));

    // The first person does not pick up: the second is dialled the same way.
    let (status, xml) = world.dialled(&call_id, 0, "no-answer").await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    let dial = dial_of(&xml);
    assert_eq!(dial.attr("callerId"), Some(NUMBER));
    assert_eq!(dial.attr("timeout"), Some("20"));
    assert_eq!(
        dial.attr("action"),
        Some(transfer_url(&call_id, 1).as_str())
    );
    assert_eq!(dial.children[0].text, SECOND);
    assert_eq!(
        dial.children[0].attr("url"),
        Some(whisper_url(&call_id).as_str())
    );

    // The second answers and hears, before the caller is put through, who hands the
    // caller over and why; never the caller's number.
    let (status, xml) = world.whisper(&call_id).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    let whisper = parse(&xml);
    assert_eq!(whisper.names(), ["Say"], "{xml}");
    let said = &whisper.children[0].text;
    // The reason the conversation wrote held the caller's number: it is not spoken.
    assert!(
        said.contains("Riley") && said.contains("asked for human on a number"),
        "{said}"
    );
    assert!(!said.contains("0199") && !said.contains("555"), "{said}");

    // When the bridged call ends, so does the caller's.
    let (status, xml) = world.dialled(&call_id, 1, "completed").await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert_hang_up(&xml);
    assert_eq!(
        world.call(&call_id).await.transfer_dials,
        [(0, false), (1, true)]
    );
}

#[tokio::test]
async fn a_cold_hand_over_of_a_relay_call_dials_without_a_whisper_from_our_number() {
    let world = World::new(&[FIRST]).await;
    world
        .change_agent(|s| s.mode = ConversationMode::ConversationRelay)
        .await;
    let (campaign, lead) = world.lead().await;
    let (call_id, answer) = world.outbound(&campaign, &lead, "CA200").await;
    let connect = &answer.children[0];
    assert_eq!(
        connect.attr("action"),
        Some(connected_url(&call_id).as_str())
    );
    assert_eq!(connect.names(), ["ConversationRelay"]);

    world.ask_for_person(&call_id, "cold", "billing").await;
    // ConversationRelay hands its own note to the action; the call's events decide.
    let (status, xml) = world
        .connected(&call_id, &[("HandoffData", r#"{"reason":"other"}"#)])
        .await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    let dial = dial_of(&xml);
    // A call Parley placed shows the number it placed it from.
    assert_eq!(dial.attr("callerId"), Some(NUMBER));
    assert_eq!(
        dial.attr("action"),
        Some(transfer_url(&call_id, 0).as_str())
    );
    assert_eq!(dial.children[0].text, FIRST);
    assert_eq!(dial.children[0].attr("url"), None, "no whisper: {xml}");

    // The other way round: HandoffData asking for a person, events asking for none.
    let (other, _) = world
        .outbound(&campaign, &world.lead().await.1, "CA201")
        .await;
    let (status, xml) = world
        .connected(&other, &[("HandoffData", r#"{"transfer":"warm"}"#)])
        .await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert_hang_up(&xml);
}

#[tokio::test]
async fn when_nobody_answers_the_caller_hears_so_and_the_lead_is_called_back_once() {
    let world = World::new(&[FIRST, SECOND]).await;
    let (campaign, lead) = world.lead().await;
    let (call_id, _) = world.outbound(&campaign, &lead, "CA300").await;
    world
        .ask_for_person(&call_id, "warm", "asked_for_human")
        .await;
    let (_, xml) = world.connected(&call_id, &[]).await;
    assert_eq!(dial_of(&xml).children[0].text, FIRST);
    let (_, xml) = world.dialled(&call_id, 0, "busy").await;
    assert_eq!(dial_of(&xml).children[0].text, SECOND);

    let before = Utc::now();
    let (status, xml) = world.dialled(&call_id, 1, "no-answer").await;
    let after = Utc::now();
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert_nobody_free(&xml);
    let state = world.lead_state(&lead).await;
    let at = state.callback_at.expect("a callback");
    assert!(
        at >= before + Duration::minutes(15) && at <= after + Duration::minutes(15),
        "{at}"
    );
    // The campaign's list shows it.
    let view = world
        .ports
        .views
        .get("leads", &lead.to_string())
        .await
        .unwrap()
        .unwrap();
    let shown: DateTime<Utc> = serde_json::from_value(view.body["callback_at"].clone()).unwrap();
    assert_eq!(shown, at);

    // Twilio redelivers the last callback: the same answer, nothing written twice.
    let call_events = world.event_types(&call_id.stream()).await.len();
    let (status, again) = world.dialled(&call_id, 1, "no-answer").await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, xml);
    assert_eq!(
        world.event_types(&call_id.stream()).await.len(),
        call_events
    );
    let callbacks = world
        .event_types(&lead.stream())
        .await
        .into_iter()
        .filter(|t| t == "callback_requested")
        .count();
    assert_eq!(callbacks, 1);
    assert_eq!(world.lead_state(&lead).await.callback_at, Some(at));
    assert_eq!(
        world.call(&call_id).await.transfer_dials,
        [(0, false), (1, false)]
    );

    // When the call ends, the lead is due again at the callback, not after the retry
    // policy's two hours for a completed call (which would be no retry at all).
    let status = [
        ("AccountSid", "AC123"),
        ("CallSid", "CA300"),
        ("CallStatus", "completed"),
        ("SequenceNumber", "9"),
        ("CallDuration", "95"),
    ];
    let path = format!("/webhooks/twilio/status?call_id={call_id}");
    let (code, body) = world.post(&path, &status, Some(TOKEN)).await;
    assert_eq!(code, StatusCode::NO_CONTENT, "{body}");
    let state = world.lead_state(&lead).await;
    assert_eq!(state.attempts[0].outcome, Some(CallStatus::Completed));
    let settings = load_any::<Campaign>(&*world.ports.events, &campaign.stream())
        .await
        .unwrap()
        .state
        .settings
        .unwrap();
    match plan(&state, &settings, Utc::now()) {
        // At the callback, or the calling window's next opening after it.
        Dial::Due {
            attempt: 2,
            at: due,
        } => assert!(due >= at, "{due} < {at}"),
        other => panic!("not due again: {other:?}"),
    }
}

#[tokio::test]
async fn an_agent_with_no_escalation_numbers_tells_the_caller_nobody_is_free() {
    let world = World::new(&[]).await;
    let (campaign, lead) = world.lead().await;
    let (call_id, _) = world.outbound(&campaign, &lead, "CA400").await;
    world
        .ask_for_person(&call_id, "warm", "asked_for_human")
        .await;
    let (status, xml) = world.connected(&call_id, &[]).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert_nobody_free(&xml);
    assert!(world.lead_state(&lead).await.callback_at.is_some());
    assert!(world.call(&call_id).await.transfer_dials.is_empty());

    // An inbound caller has no lead: the same words, and no lead is written.
    let (inbound, _) = world.inbound("CA401").await;
    world.ask_for_person(&inbound, "cold", "complaint").await;
    let (status, xml) = world.connected(&inbound, &[]).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert_nobody_free(&xml);
    let callbacks = world
        .event_types(&lead.stream())
        .await
        .into_iter()
        .filter(|t| t == "callback_requested")
        .count();
    assert_eq!(callbacks, 1, "only the campaign call's lead");
}

#[tokio::test]
async fn a_stream_that_ends_without_a_hand_over_hangs_up() {
    let world = World::new(&[FIRST]).await;
    let (call_id, _) = world.inbound("CA500").await;
    let events = world.event_types(&call_id.stream()).await.len();
    let (status, xml) = world.connected(&call_id, &[]).await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert_hang_up(&xml);
    // A dial report for a call that asked for no hand-over changes nothing.
    let (status, xml) = world.dialled(&call_id, 0, "completed").await;
    assert_eq!(status, StatusCode::OK, "{xml}");
    assert_hang_up(&xml);
    assert_eq!(world.event_types(&call_id.stream()).await.len(), events);
}

#[tokio::test]
async fn a_redelivered_dial_report_dials_the_next_number_once_and_writes_once() {
    let world = World::new(&[FIRST, SECOND]).await;
    let (call_id, _) = world.inbound("CA600").await;
    world
        .ask_for_person(&call_id, "warm", "asked_for_human")
        .await;
    world.connected(&call_id, &[]).await;
    let (_, first) = world.dialled(&call_id, 0, "failed").await;
    let events = world.event_types(&call_id.stream()).await;
    let (status, second) = world.dialled(&call_id, 0, "failed").await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_eq!(second, first, "the same dial of the second number");
    assert_eq!(dial_of(&second).children[0].text, SECOND);
    assert_eq!(world.event_types(&call_id.stream()).await, events);
    let dialled = events.iter().filter(|t| *t == "transfer_dialled").count();
    assert_eq!(dialled, 1);
    // The `connected` request redelivered late carries on from the recorded dials: it
    // never rings the first person again.
    let (_, xml) = world.connected(&call_id, &[]).await;
    assert_eq!(dial_of(&xml).children[0].text, SECOND);
}

#[tokio::test]
async fn forged_requests_are_403_and_write_nothing() {
    let world = World::new(&[FIRST]).await;
    let (campaign, lead) = world.lead().await;
    let (call_id, _) = world.outbound(&campaign, &lead, "CA700").await;
    world
        .ask_for_person(&call_id, "warm", "asked_for_human")
        .await;
    let call_events = world.event_types(&call_id.stream()).await;
    let lead_events = world.event_types(&lead.stream()).await;
    let paths = [
        format!("/webhooks/twilio/connected?call_id={call_id}"),
        format!("/webhooks/twilio/transfer?call_id={call_id}&index=0"),
        format!("/webhooks/twilio/whisper?call_id={call_id}"),
    ];
    let params = [
        ("AccountSid", "AC123"),
        ("CallSid", "CA700"),
        ("DialCallStatus", "no-answer"),
    ];
    for path in &paths {
        for token in [None, Some("another-token-1234567890abcdef")] {
            let (status, body) = world.post(path, &params, token).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path} {token:?}: {body}");
        }
    }
    // Signed for another index than the one sent.
    let signed_for = format!("/webhooks/twilio/transfer?call_id={call_id}&index=1");
    let signed: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let sig =
        signature::expected_signature(TOKEN, &signature::public_url(PUBLIC, &signed_for), &signed);
    let request = Request::post(&paths[1])
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", sig)
        .body(Body::from(serde_urlencoded::to_string(&signed).unwrap()))
        .unwrap();
    assert_eq!(world.send(request).await.0, StatusCode::FORBIDDEN);
    assert_eq!(world.event_types(&call_id.stream()).await, call_events);
    assert_eq!(world.event_types(&lead.stream()).await, lead_events);
}

#[tokio::test]
async fn garbage_parameters_are_400_naming_the_field() {
    let world = World::new(&[FIRST]).await;
    let (call_id, _) = world.inbound("CA800").await;
    world
        .ask_for_person(&call_id, "warm", "asked_for_human")
        .await;
    let events = world.event_types(&call_id.stream()).await;
    let sent = |status: &str| {
        vec![
            ("AccountSid", "AC123".to_owned()),
            ("CallSid", "CA800".to_owned()),
            ("DialCallStatus", status.to_owned()),
        ]
    };
    let cases = [
        (
            format!("/webhooks/twilio/transfer?call_id={call_id}&index=abc"),
            sent("no-answer"),
            StatusCode::BAD_REQUEST,
            "index",
        ),
        (
            format!("/webhooks/twilio/transfer?call_id={call_id}&index=-1"),
            sent("no-answer"),
            StatusCode::BAD_REQUEST,
            "index",
        ),
        (
            format!("/webhooks/twilio/transfer?call_id={call_id}&index=99"),
            sent("no-answer"),
            StatusCode::BAD_REQUEST,
            "index",
        ),
        (
            format!("/webhooks/twilio/transfer?call_id={call_id}"),
            sent("no-answer"),
            StatusCode::BAD_REQUEST,
            "index",
        ),
        (
            format!("/webhooks/twilio/transfer?call_id={call_id}&index=0"),
            sent("ringing-forever"),
            StatusCode::BAD_REQUEST,
            "DialCallStatus",
        ),
        (
            format!("/webhooks/twilio/transfer?call_id={call_id}&index=0"),
            vec![("CallSid", "CA800".to_owned())],
            StatusCode::BAD_REQUEST,
            "DialCallStatus",
        ),
        (
            "/webhooks/twilio/transfer?call_id=not-a-call&index=0".to_owned(),
            sent("no-answer"),
            StatusCode::BAD_REQUEST,
            "call_id",
        ),
        (
            format!(
                "/webhooks/twilio/transfer?call_id={}&index=0",
                CallId::new()
            ),
            sent("no-answer"),
            StatusCode::NOT_FOUND,
            "call_id",
        ),
        (
            "/webhooks/twilio/transfer?index=0".to_owned(),
            sent("no-answer"),
            StatusCode::BAD_REQUEST,
            "call_id",
        ),
        (
            "/webhooks/twilio/connected".to_owned(),
            sent("no-answer"),
            StatusCode::BAD_REQUEST,
            "call_id",
        ),
        (
            format!("/webhooks/twilio/whisper?call_id={}", CallId::new()),
            sent("no-answer"),
            StatusCode::NOT_FOUND,
            "call_id",
        ),
    ];
    for (path, params, expected, field) in &cases {
        let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let (status, body) = world.post(path, &params, Some(TOKEN)).await;
        assert_eq!(status, *expected, "{path}: {body}");
        assert_eq!(
            error_field(&body).as_deref(),
            Some(*field),
            "{path}: {body}"
        );
    }
    assert_eq!(world.event_types(&call_id.stream()).await, events);
}

#[tokio::test]
async fn exotel_connect_applet_gets_the_escalation_numbers_of_a_call_that_asked() {
    let world = World::new(&[FIRST, SECOND]).await;
    let sid = "b6cfaf0a1e9a3fd9e42f3b1b9c8d7a01";
    let call_id = CallId::for_carrier_call("exotel", sid);
    let commands = [
        CallCommand::Request {
            direction: Direction::Inbound,
            carrier: Carrier::Exotel,
            from: PhoneNumber::parse("+919876543210").unwrap(),
            to: PhoneNumber::parse(EXOPHONE).unwrap(),
            agent_id: world.agent.clone(),
            lead_id: None,
            campaign_id: None,
            attempt: 0,
        },
        CallCommand::AssignCarrierCallId {
            carrier_call_id: sid.into(),
        },
    ];
    for command in commands {
        world.run_call(&call_id, command).await;
    }
    // As Exotel's Connect applet asks: a GET with the call in the query string.
    let ask = |secret: &str| {
        let path = format!(
            "/webhooks/exotel/{}/{secret}/transfer?CallSid={sid}&CallFrom=09876543210\
             &CallTo=08047491899&Direction=incoming",
            world.tenant
        );
        Request::get(path).body(Body::empty()).unwrap()
    };
    let secret = world.exotel_secret.expose().to_owned();

    // Before the conversation asks for a person, nobody is to be dialled.
    let (status, body) = world.send(ask(&secret)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["destination"]["numbers"], json!([]));

    world
        .ask_for_person(&call_id, "warm", "asked_for_human")
        .await;
    let events = world.event_types(&call_id.stream()).await;
    let (status, body) = world.send(ask(&secret)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        answer,
        json!({
            "fetch_after_attempt": false,
            "destination": { "numbers": [FIRST, SECOND] },
            "outgoing_phone_number": EXOPHONE,
            "max_ringing_duration": 20,
        })
    );
    assert_eq!(world.event_types(&call_id.stream()).await, events);

    // A wrong secret is refused before anything is read.
    let wrong = "0".repeat(secret.len());
    assert_eq!(world.send(ask(&wrong)).await.0, StatusCode::FORBIDDEN);
    // A call Exotel names that Parley does not know.
    let path = format!(
        "/webhooks/exotel/{}/{secret}/transfer?CallSid=ffffffffffffffffffffffffffffffff",
        world.tenant
    );
    let unknown = Request::get(path).body(Body::empty()).unwrap();
    assert_eq!(world.send(unknown).await.0, StatusCode::NOT_FOUND);
}
