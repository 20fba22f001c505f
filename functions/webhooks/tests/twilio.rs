//! Twilio's webhooks as Twilio sends them: form bodies signed with the tenant's auth
//! token over the public URL (behind an API Gateway stage), redelivered and reordered.

mod common;

use common::ctx;

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use parley_shared::aggregate::{execute, load_any};
use parley_shared::backend::Ports;
use parley_shared::clock::SystemClock;
use parley_shared::config::Config;
use parley_shared::domain::agent::{
    Agent, AgentCommand, AgentStatus, ConversationMode, VoiceProvider,
};
use parley_shared::domain::call::{Call, CallCommand, CallStatus, Carrier, Direction};
use parley_shared::domain::lead::{Lead, LeadCommand};
use parley_shared::domain::{AgentId, CallId, LeadId, PhoneNumber, TenantId};
use parley_shared::embedded::Embedded;
use parley_shared::secrets::SecretString;
use parley_shared::streamtoken;
use parley_shared::twilio::signature;
use parley_webhooks::{WebhookState, router};
use tower::ServiceExt;

const PUBLIC: &str = "https://abc123.execute-api.eu-west-1.amazonaws.com/prod";
const TOKEN: &str = "tenant-auth-token-1234567890abcdef";
const NUMBER: &str = "+14155550100";
const CALLER: &str = "+14155550199";

struct World {
    app: Router,
    ports: Ports,
    state: WebhookState,
    tenant: TenantId,
    agent: AgentId,
    _dir: tempfile::TempDir,
}

impl World {
    async fn new(status: AgentStatus) -> Self {
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
            status,
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
        World {
            app: router(state.clone()),
            ports,
            state,
            tenant,
            agent,
            _dir: dir,
        }
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
        let body = serde_urlencoded::to_string(&params).unwrap();
        let mut request =
            Request::post(path).header("content-type", "application/x-www-form-urlencoded");
        if let Some(token) = token {
            let url = signature::public_url(PUBLIC, path);
            request = request.header(
                "x-twilio-signature",
                signature::expected_signature(token, &url, &params),
            );
        }
        let response = self
            .app
            .clone()
            .oneshot(request.body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn call(&self, id: &CallId) -> Call {
        load_any::<Call>(&*self.ports.events, &id.stream())
            .await
            .unwrap()
            .state
    }

    async fn event_count(&self, id: &CallId) -> usize {
        self.ports
            .events
            .read_stream(&id.stream(), 1)
            .await
            .unwrap()
            .len()
    }
}

fn inbound(sid: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AccountSid", "AC123".into()),
        ("CallSid", sid.into()),
        ("From", CALLER.into()),
        ("To", NUMBER.into()),
        ("CallStatus", "ringing".into()),
        ("Direction", "inbound".into()),
    ]
}

fn pairs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The value of `<Parameter name="..." value="..."/>` in TwiML.
fn parameter(twiml: &str, name: &str) -> String {
    let marker = format!("<Parameter name=\"{name}\" value=\"");
    let start = twiml
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} in {twiml}"))
        + marker.len();
    twiml[start..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn an_inbound_call_is_streamed_to_the_media_task_with_a_token_for_that_call() {
    let world = World::new(AgentStatus::Active).await;
    let (status, twiml) = world
        .post(
            "/webhooks/twilio/voice",
            &pairs(&inbound("CA100")),
            Some(TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{twiml}");
    let call_id = CallId::for_carrier_call("twilio", "CA100");
    // When the stream ends, Twilio asks the call's `connected` URL what next.
    assert!(
        twiml.contains(&format!(
            "<Connect action=\"{PUBLIC}/webhooks/twilio/connected?call_id={call_id}\">\
             <Stream url=\"wss://media.example.com/media/twilio\">"
        )),
        "{twiml}"
    );
    assert_eq!(parameter(&twiml, "call_id"), call_id.to_string());
    assert_eq!(parameter(&twiml, "tenant_id"), world.tenant.to_string());
    assert_eq!(parameter(&twiml, "agent_id"), world.agent.to_string());
    assert_eq!(parameter(&twiml, "direction"), "inbound");
    let token = parameter(&twiml, "token");
    let secret = world.state.stream_secret.expose().as_bytes().to_vec();
    let claims =
        streamtoken::verify(&secret, &token, &call_id.to_string(), chrono::Utc::now()).unwrap();
    assert_eq!(claims.tenant_id, world.tenant.to_string());
    assert!(
        streamtoken::verify(
            &secret,
            &token,
            &CallId::new().to_string(),
            chrono::Utc::now()
        )
        .is_err(),
        "bound to its call"
    );

    let call = world.call(&call_id).await;
    assert_eq!(call.direction, Some(Direction::Inbound));
    assert_eq!(call.carrier_call_id.as_deref(), Some("CA100"));
    assert_eq!(call.from.as_ref().map(|p| p.as_str()), Some(CALLER));

    // Twilio retries the voice URL: same call, nothing new written.
    let before = world.event_count(&call_id).await;
    let (status, _) = world
        .post(
            "/webhooks/twilio/voice",
            &pairs(&inbound("CA100")),
            Some(TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(world.event_count(&call_id).await, before);

    // The caller is a lead of the tenant's, found by their number: what the call books
    // and learns belongs to them, and a second call from them is the same lead.
    let lead_id = call.lead_id.clone().expect("the caller's lead");
    assert_eq!(parameter(&twiml, "lead_id"), lead_id.to_string());
    let lead = load_any::<Lead>(&*world.ports.events, &lead_id.stream())
        .await
        .unwrap();
    assert_eq!(lead.state.phone.as_ref().map(|p| p.as_str()), Some(CALLER));
    assert_eq!(lead.state.campaign_id, None);
    let (status, _) = world
        .post(
            "/webhooks/twilio/voice",
            &pairs(&inbound("CA101")),
            Some(TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let again = world
        .call(&CallId::for_carrier_call("twilio", "CA101"))
        .await;
    assert_eq!(again.lead_id, Some(lead_id.clone()));
    let lead_again = load_any::<Lead>(&*world.ports.events, &lead_id.stream())
        .await
        .unwrap();
    assert_eq!(
        lead_again.version, lead.version,
        "the lead is not made twice"
    );

    // A withheld number is recorded as a call with no lead.
    let mut withheld = inbound("CA102");
    withheld[2].1 = "anonymous".into();
    let (status, twiml) = world
        .post("/webhooks/twilio/voice", &pairs(&withheld), Some(TOKEN))
        .await;
    assert_eq!(status, StatusCode::OK, "{twiml}");
    assert!(!twiml.contains("name=\"lead_id\""), "{twiml}");
    let call = world
        .call(&CallId::for_carrier_call("twilio", "CA102"))
        .await;
    assert_eq!(call.lead_id, None);
}

#[tokio::test]
async fn an_agent_in_relay_mode_is_connected_to_conversation_relay() {
    let world = World::new(AgentStatus::Active).await;
    let mut settings = load_any::<Agent>(&*world.ports.events, &world.agent.stream())
        .await
        .unwrap()
        .state
        .settings
        .unwrap();
    settings.mode = ConversationMode::ConversationRelay;
    settings.voice.provider = VoiceProvider::Twilio;
    settings.voice.voice_id = "en-US-Journey-O".into();
    execute::<Agent>(
        &*world.ports.events,
        &*world.ports.clock,
        &world.agent.stream(),
        &ctx(&world.tenant),
        AgentCommand::Change { settings },
    )
    .await
    .unwrap();
    let (status, twiml) = world
        .post(
            "/webhooks/twilio/voice",
            &pairs(&inbound("CA300")),
            Some(TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{twiml}");
    let call_id = CallId::for_carrier_call("twilio", "CA300");
    assert!(
        twiml.contains(&format!(
            "<Connect action=\"{PUBLIC}/webhooks/twilio/connected?call_id={call_id}\">\
             <ConversationRelay url=\"wss://media.example.com/media/twilio-relay\" \
             language=\"en-US\" voice=\"en-US-Journey-O\" dtmfDetection=\"true\">"
        )),
        "{twiml}"
    );
    let token = parameter(&twiml, "token");
    let secret = world.state.stream_secret.expose().as_bytes().to_vec();
    assert!(streamtoken::verify(&secret, &token, &call_id.to_string(), chrono::Utc::now()).is_ok());
}

#[tokio::test]
async fn a_bad_or_missing_signature_is_403_and_changes_nothing() {
    let world = World::new(AgentStatus::Active).await;
    for token in [None, Some("wrong-token")] {
        let (status, _) = world
            .post("/webhooks/twilio/voice", &pairs(&inbound("CA200")), token)
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{token:?}");
    }
    let call_id = CallId::for_carrier_call("twilio", "CA200");
    assert_eq!(world.event_count(&call_id).await, 0);

    // Signed for other parameters than those sent.
    let params = inbound("CA200");
    let signed: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let url = signature::public_url(PUBLIC, "/webhooks/twilio/voice");
    let sig = signature::expected_signature(TOKEN, &url, &signed);
    let mut tampered = signed.clone();
    tampered[2].1 = "+19995550000".into();
    let request = Request::post("/webhooks/twilio/voice")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", sig)
        .body(Body::from(serde_urlencoded::to_string(&tampered).unwrap()))
        .unwrap();
    assert_eq!(
        world.app.clone().oneshot(request).await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(world.event_count(&call_id).await, 0);
}

#[tokio::test]
async fn an_unknown_number_hears_a_message_and_a_hang_up() {
    let world = World::new(AgentStatus::Active).await;
    let mut params = inbound("CA300");
    params[3].1 = "+14155550111".into();
    let (status, twiml) = world
        .post("/webhooks/twilio/voice", &pairs(&params), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        twiml.contains("<Say>") && twiml.contains("<Hangup/>") && !twiml.contains("<Connect"),
        "{twiml}"
    );
}

#[tokio::test]
async fn an_inactive_agent_takes_a_voicemail() {
    let world = World::new(AgentStatus::Inactive).await;
    let (status, twiml) = world
        .post(
            "/webhooks/twilio/voice",
            &pairs(&inbound("CA400")),
            Some(TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let call_id = CallId::for_carrier_call("twilio", "CA400");
    assert!(twiml.contains("<Record"), "{twiml}");
    assert!(
        twiml.contains(&format!(
            "recordingStatusCallback=\"{PUBLIC}/webhooks/twilio/recording?call_id={call_id}\""
        )),
        "{twiml}"
    );
    assert!(!twiml.contains("<Connect"));

    // The voicemail's recording callback lands on the call.
    let path = format!("/webhooks/twilio/recording?call_id={call_id}");
    let recording = [
        ("AccountSid", "AC123"),
        ("CallSid", "CA400"),
        ("RecordingSid", "RE400"),
        (
            "RecordingUrl",
            "https://api.twilio.com/2010-04-01/Accounts/AC123/Recordings/RE400",
        ),
        ("RecordingStatus", "completed"),
        ("RecordingDuration", "17"),
    ];
    let (status, _) = world.post(&path, &recording, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = world.post(&path, &recording, Some(TOKEN)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(
        world.call(&call_id).await.recordings.len(),
        1,
        "a redelivery adds nothing"
    );
}

/// Status callbacks delivered in order, twice, and out of order: the call ends
/// completed, with each status recorded once, and the lead's attempt closed.
#[tokio::test]
async fn status_callbacks_never_move_a_call_backwards() {
    let world = World::new(AgentStatus::Active).await;
    let (events, clock) = (&*world.ports.events, &*world.ports.clock);
    let lead = LeadId::new();
    let create_lead = LeadCommand::Create {
        campaign_id: None,
        phone: PhoneNumber::parse(CALLER).unwrap(),
        name: Some("Tom & \"Jerry\" <x>".into()),
        time_zone: None,
        fields: Default::default(),
    };
    execute::<Lead>(
        events,
        clock,
        &lead.stream(),
        &ctx(&world.tenant),
        create_lead,
    )
    .await
    .unwrap();
    let call_id = CallId::new();
    execute::<Lead>(
        events,
        clock,
        &lead.stream(),
        &ctx(&world.tenant),
        LeadCommand::StartAttempt {
            attempt: 1,
            call_id: call_id.clone(),
        },
    )
    .await
    .unwrap();
    let request = CallCommand::Request {
        direction: Direction::Outbound,
        carrier: Carrier::Twilio,
        from: PhoneNumber::parse(NUMBER).unwrap(),
        to: PhoneNumber::parse(CALLER).unwrap(),
        agent_id: world.agent.clone(),
        lead_id: Some(lead.clone()),
        campaign_id: None,
        attempt: 1,
    };
    execute::<Call>(
        events,
        clock,
        &call_id.stream(),
        &ctx(&world.tenant),
        request,
    )
    .await
    .unwrap();

    let path = format!("/webhooks/twilio/status?call_id={call_id}");
    let status = |s: &'static str, seq: &'static str, duration: &'static str| {
        vec![
            ("AccountSid", "AC123"),
            ("CallSid", "CA500"),
            ("CallStatus", s),
            ("SequenceNumber", seq),
            ("CallDuration", duration),
        ]
    };
    let deliveries = [
        status("initiated", "0", "0"),
        status("ringing", "1", "0"),
        status("ringing", "1", "0"),
        status("completed", "3", "42"),
        status("in-progress", "2", "0"),
        status("completed", "3", "42"),
        status("ringing", "1", "0"),
    ];
    for delivery in &deliveries {
        let (code, body) = world.post(&path, delivery, Some(TOKEN)).await;
        assert_eq!(code, StatusCode::NO_CONTENT, "{delivery:?}: {body}");
    }
    let call = world.call(&call_id).await;
    assert_eq!(call.status, Some(CallStatus::Completed));
    assert_eq!(call.duration_secs, Some(42));
    let statuses: Vec<String> = world
        .ports
        .events
        .read_stream(&call_id.stream(), 1)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.event_type == "call_status_changed")
        .map(|e| e.data["status"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        statuses,
        vec!["initiated", "ringing", "completed"],
        "each once, never backwards"
    );
    // The call list follows: the call's view shows its final status.
    let view = world
        .ports
        .views
        .get("calls", &call_id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(view.body["status"], "completed");
    assert_eq!(view.body["duration_secs"], 42);
    let lead_state = load_any::<Lead>(events, &lead.stream())
        .await
        .unwrap()
        .state;
    assert_eq!(lead_state.attempts[0].outcome, Some(CallStatus::Completed));

    // Unsigned or unknown-status callbacks change nothing.
    let (code, _) = world.post(&path, &status("failed", "9", "0"), None).await;
    assert_eq!(code, StatusCode::FORBIDDEN);
    let (code, body) = world
        .post(&path, &status("teleported", "9", "0"), Some(TOKEN))
        .await;
    assert_eq!(code, StatusCode::BAD_REQUEST);
    assert!(body.contains("CallStatus"), "{body}");
    let (code, _) = world
        .post(
            &format!("/webhooks/twilio/status?call_id={}", CallId::new()),
            &status("completed", "3", "1"),
            Some(TOKEN),
        )
        .await;
    assert_eq!(code, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_answering_machine_is_not_streamed() {
    let world = World::new(AgentStatus::Active).await;
    let (events, clock) = (&*world.ports.events, &*world.ports.clock);
    let call_id = CallId::new();
    let request = CallCommand::Request {
        direction: Direction::Outbound,
        carrier: Carrier::Twilio,
        from: PhoneNumber::parse(NUMBER).unwrap(),
        to: PhoneNumber::parse(CALLER).unwrap(),
        agent_id: world.agent.clone(),
        lead_id: None,
        campaign_id: None,
        attempt: 1,
    };
    execute::<Call>(
        events,
        clock,
        &call_id.stream(),
        &ctx(&world.tenant),
        request,
    )
    .await
    .unwrap();
    let path = format!("/webhooks/twilio/voice?call_id={call_id}");
    let (status, twiml) = world
        .post(
            &path,
            &[
                ("CallSid", "CA600"),
                ("To", CALLER),
                ("From", NUMBER),
                ("AnsweredBy", "machine_end_beep"),
            ],
            Some(TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        !twiml.contains("<Connect") && twiml.contains("<Hangup/>"),
        "{twiml}"
    );
    assert!(world.call(&call_id).await.answered_by.unwrap().is_machine());

    let human = CallId::new();
    let request = CallCommand::Request {
        direction: Direction::Outbound,
        carrier: Carrier::Twilio,
        from: PhoneNumber::parse(NUMBER).unwrap(),
        to: PhoneNumber::parse(CALLER).unwrap(),
        agent_id: world.agent.clone(),
        lead_id: None,
        campaign_id: None,
        attempt: 1,
    };
    execute::<Call>(events, clock, &human.stream(), &ctx(&world.tenant), request)
        .await
        .unwrap();
    let path = format!("/webhooks/twilio/voice?call_id={human}");
    let (_, twiml) = world
        .post(
            &path,
            &[("CallSid", "CA601"), ("To", CALLER), ("From", NUMBER)],
            Some(TOKEN),
        )
        .await;
    assert!(
        twiml.contains(&format!(
            "<Connect action=\"{PUBLIC}/webhooks/twilio/connected?call_id={human}\"><Stream"
        )),
        "{twiml}"
    );
    assert_eq!(parameter(&twiml, "direction"), "outbound");

    let amd = format!("/webhooks/twilio/amd?call_id={human}");
    let (status, _) = world
        .post(
            &amd,
            &[("CallSid", "CA601"), ("AnsweredBy", "human")],
            Some(TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, body) = world
        .post(
            &amd,
            &[("CallSid", "CA601"), ("AnsweredBy", "robot")],
            Some(TOKEN),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

#[tokio::test]
async fn garbage_bodies_are_refused_cleanly() {
    let world = World::new(AgentStatus::Active).await;
    for body in ["%%%", "CallSid", "\u{0}\u{1}"] {
        let request = Request::post("/webhooks/twilio/voice")
            .header("x-twilio-signature", "x")
            .body(Body::from(body))
            .unwrap();
        let status = world.app.clone().oneshot(request).await.unwrap().status();
        assert!(
            status == StatusCode::BAD_REQUEST || status == StatusCode::OK,
            "{body:?}: {status}"
        );
    }
    let (status, body) = world
        .post("/webhooks/twilio/voice", &[("To", NUMBER)], Some(TOKEN))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("CallSid"));
}
