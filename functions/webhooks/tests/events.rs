//! The sample Lambda payloads in `events/webhooks/` (see `events/README.md`): real API
//! Gateway HTTP API events (payload format 2.0) carrying Twilio's and Exotel's requests
//! as those carriers send them. Each is answered as the table below says, on a store
//! seeded by [`seed`] with the fixed ids the README lists, exactly as `cargo lambda
//! invoke` would have the function answer it.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{Duration, Utc};
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use parley_shared::aggregate::{Context, execute, load_any};
use parley_shared::backend::Ports;
use parley_shared::clock::SystemClock;
use parley_shared::config::Config;
use parley_shared::domain::agent::{Agent, AgentCommand, AgentSettings, AgentStatus};
use parley_shared::domain::call::{
    AnsweredBy, Call, CallCommand, CallEvent, CallStatus, Carrier, Direction,
};
use parley_shared::domain::lead::{Lead, LeadCommand};
use parley_shared::domain::{AgentId, CallId, LeadId, PhoneNumber, TenantId};
use parley_shared::embedded::Embedded;
use parley_shared::exotel;
use parley_shared::leadviews::run_lead;
use parley_shared::secrets::SecretString;
use parley_shared::twilio::signature;
use parley_webhooks::{WebhookState, router};
use serde_json::Value;
use tower::ServiceExt;

/// `PARLEY_PUBLIC_URL`: an HTTP API on its `$default` stage, so paths carry no prefix.
pub const PUBLIC_URL: &str = "https://abc123.execute-api.eu-west-1.amazonaws.com";
/// The tenant's Twilio auth token the samples are signed with: a test value.
pub const TWILIO_AUTH_TOKEN: &str = "sample-twilio-auth-token-not-a-secret";
/// The tenant's Exotel webhook secret in the samples' paths: a test value.
pub const EXOTEL_WEBHOOK_SECRET: &str =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
pub const TENANT_ID: &str = "01936d7e-2a00-7000-8000-000000000001";
pub const AGENT_ID: &str = "01936d7e-2a00-7000-8000-000000000002";
/// A call Parley placed through Twilio (the AMD and recording samples are about it).
pub const TWILIO_OUTBOUND_CALL_ID: &str = "01936d7e-2a00-7000-8000-000000000003";
pub const TWILIO_OUTBOUND_CALL_SID: &str = "CA4c3d5e6f708192a3b4c5d6e7f8091a2b";
/// A call Parley placed through Exotel (the Exotel status sample is about it).
pub const EXOTEL_OUTBOUND_CALL_ID: &str = "01936d7e-2a00-7000-8000-000000000004";
pub const EXOTEL_OUTBOUND_CALL_SID: &str = "7f608192a3b4c5d6e7f8091a2b3c4d5e";
/// The tenant's Twilio number and its ExoPhone, both routed to the agent.
pub const TWILIO_NUMBER: &str = "+14155550100";
pub const EXOTEL_NUMBER: &str = "+918047112233";
/// Riley's escalation numbers, in order of preference.
pub const ESCALATION_NUMBERS: [&str; 2] = ["+14155550201", "+14155550202"];
/// A call Parley placed through Twilio to a lead, whose conversation asked for a person
/// (warm); the hand-over samples dial Riley's escalation numbers for it, and nobody
/// answers.
pub const HANDOVER_CALL_ID: &str = "01936d7e-2a00-7000-8000-000000000005";
pub const HANDOVER_CALL_SID: &str = "CA6d5e7f8091a2b3c4d5e6f708192a3b4c";
pub const HANDOVER_LEAD_ID: &str = "01936d7e-2a00-7000-8000-000000000006";
/// Another such call, whose first escalation number answers (the whisper sample).
pub const WHISPER_CALL_ID: &str = "01936d7e-2a00-7000-8000-000000000007";
pub const WHISPER_CALL_SID: &str = "CA9a8192a3b4c5d6e7f8091a2b3c4d5e6f";
/// The agent of the Exotel hand-over (Asha, active), with Indian escalation numbers.
pub const EXOTEL_AGENT_ID: &str = "01936d7e-2a00-7000-8000-000000000008";
pub const EXOTEL_ESCALATION_NUMBERS: [&str; 2] = ["+919800000001", "+919800000002"];
/// A call Parley placed through Exotel for Asha, whose conversation asked for a person.
pub const EXOTEL_HANDOVER_CALL_ID: &str = "01936d7e-2a00-7000-8000-000000000009";
pub const EXOTEL_HANDOVER_CALL_SID: &str = "8a7192a3b4c5d6e7f8091a2b3c4d5e6f";
/// Whom the outbound calls went to.
const TWILIO_CUSTOMER: &str = "+14155550132";
const EXOTEL_CUSTOMER: &str = "+919876543210";
const HANDOVER_CUSTOMER: &str = "+14155550133";
const WHISPER_CUSTOMER: &str = "+14155550134";
const EXOTEL_HANDOVER_CUSTOMER: &str = "+919876543211";
/// The `CallSid`s of the calls the samples start.
const TWILIO_INBOUND_CALL_SID: &str = "CA1f0e2d3c4b5a69788796a5b4c3d2e1f0";
const TWILIO_FORGED_CALL_SID: &str = "CA3b2c4d5e6f708192a3b4c5d6e7f8091a";
const EXOTEL_INBOUND_CALL_SID: &str = "6e5f708192a3b4c5d6e7f8091a2b3c4d";

/// Every sample, in the order it is sent (the status callback and the `<Connect action>`
/// are about the call the first one starts; the Exotel hand-over question about the one
/// `exotel-stream.json` starts; the two dials follow the hand-over they continue), with
/// the status it is answered with and a piece of the answer's body (`None`: an empty
/// body). The hand-over answers are whole documents: a step that changed would show.
const SAMPLES: &[(&str, u16, Option<&str>)] = &[
    (
        "twilio-voice-inbound.json",
        200,
        Some(
            // The call's id is derived from its `CallSid`: the `<Connect action>` is the
            // URL `twilio-connected-end.json` asks.
            "<Connect action=\"https://abc123.execute-api.eu-west-1.amazonaws.com/webhooks/twilio/connected?call_id=5febcb6f-331a-5518-b1e6-c5a12d94044b\">\
             <Stream url=\"wss://abc123.execute-api.eu-west-1.amazonaws.com/media/twilio\">",
        ),
    ),
    (
        // That call's stream ended and no hand-over was asked: the call ends.
        "twilio-connected-end.json",
        200,
        Some("<Response><Hangup/></Response>"),
    ),
    (
        "twilio-voice-unknown-number.json",
        200,
        Some("<Say>Sorry, the number you have called is not in service. Goodbye.</Say><Hangup/>"),
    ),
    (
        "twilio-voice-bad-signature.json",
        403,
        Some("X-Twilio-Signature"),
    ),
    ("twilio-status-completed.json", 204, None),
    ("twilio-amd.json", 204, None),
    ("twilio-recording.json", 204, None),
    (
        // The hand-over call's stream ended: ring Riley's first escalation number from
        // the tenant's number for 20 s, whispering to whoever answers.
        "twilio-connected-handover.json",
        200,
        Some(
            "<Response><Dial callerId=\"+14155550100\" timeout=\"20\" \
             action=\"https://abc123.execute-api.eu-west-1.amazonaws.com/webhooks/twilio/transfer?call_id=01936d7e-2a00-7000-8000-000000000005&amp;index=0\">\
             <Number url=\"https://abc123.execute-api.eu-west-1.amazonaws.com/webhooks/twilio/whisper?call_id=01936d7e-2a00-7000-8000-000000000005\">\
             +14155550201</Number></Dial></Response>",
        ),
    ),
    (
        // Nobody answered the first: the second.
        "twilio-transfer-no-answer.json",
        200,
        Some(
            "<Response><Dial callerId=\"+14155550100\" timeout=\"20\" \
             action=\"https://abc123.execute-api.eu-west-1.amazonaws.com/webhooks/twilio/transfer?call_id=01936d7e-2a00-7000-8000-000000000005&amp;index=1\">\
             <Number url=\"https://abc123.execute-api.eu-west-1.amazonaws.com/webhooks/twilio/whisper?call_id=01936d7e-2a00-7000-8000-000000000005\">\
             +14155550202</Number></Dial></Response>",
        ),
    ),
    (
        // The second was busy: nobody left, so the caller hears they will be called back.
        "twilio-transfer-nobody-free.json",
        200,
        Some(
            "<Response><Say>I&apos;m sorry, nobody is free to take your call right now. \
             We will call you back shortly. Goodbye.</Say><Hangup/></Response>",
        ),
    ),
    (
        // Another hand-over's first escalation number answered: who hands over, and why.
        "twilio-whisper.json",
        200,
        Some(
            "<Response><Say>Hello, this is Riley, the automated assistant. I&apos;m handing \
             a caller over to you. The reason: wants to move an appointment. Connecting you \
             now.</Say></Response>",
        ),
    ),
    (
        "exotel-stream.json",
        200,
        Some("{\"url\":\"wss://abc123.execute-api.eu-west-1.amazonaws.com/media/exotel?token="),
    ),
    (
        // That call's stream closed with no hand-over asked: nobody to dial.
        "exotel-transfer-no-handover.json",
        200,
        Some(
            "{\"destination\":{\"numbers\":[]},\"fetch_after_attempt\":false,\
             \"max_ringing_duration\":20,\"outgoing_phone_number\":\"+918047112233\"}",
        ),
    ),
    (
        // An Exotel call that asked for a person: Asha's escalation numbers, in order.
        "exotel-transfer.json",
        200,
        Some(
            "{\"destination\":{\"numbers\":[\"+919800000001\",\"+919800000002\"]},\
             \"fetch_after_attempt\":false,\"max_ringing_duration\":20,\
             \"outgoing_phone_number\":\"+918047112233\"}",
        ),
    ),
    ("exotel-status.json", 200, None),
];

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/webhooks")
}

fn read_sample(name: &str) -> String {
    let path = samples_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn ctx(tenant: &TenantId, correlation: &str) -> Context {
    Context {
        tenant_id: tenant.to_string(),
        correlation_id: correlation.to_owned(),
        idempotency_key: None,
    }
}

/// A call Parley placed, as `POST /v1/calls` (or the dialer) leaves it: requested, with
/// the carrier's `CallSid`.
struct Placed<'a> {
    id: &'a str,
    sid: &'a str,
    carrier: Carrier,
    agent: &'a str,
    from: &'a str,
    to: &'a str,
    lead: Option<&'a str>,
}

async fn place(ports: &Ports, tenant: &TenantId, placed: Placed<'_>) {
    let (events, clock) = (&*ports.events, &*ports.clock);
    let call = CallId::parse(placed.id).unwrap();
    let call_ctx = ctx(tenant, placed.id);
    let lead_id = placed.lead.map(|l| LeadId::parse(l).unwrap());
    if let Some(lead) = &lead_id {
        let start = LeadCommand::StartAttempt {
            attempt: 1,
            call_id: call.clone(),
        };
        run_lead(ports, tenant, lead, start, None).await.unwrap();
    }
    let request = CallCommand::Request {
        direction: Direction::Outbound,
        carrier: placed.carrier,
        from: PhoneNumber::parse(placed.from).unwrap(),
        to: PhoneNumber::parse(placed.to).unwrap(),
        agent_id: AgentId::parse(placed.agent).unwrap(),
        lead_id,
        campaign_id: None,
        attempt: 1,
    };
    execute::<Call>(events, clock, &call.stream(), &call_ctx, request)
        .await
        .unwrap();
    let assign = CallCommand::AssignCarrierCallId {
        carrier_call_id: placed.sid.into(),
    };
    execute::<Call>(events, clock, &call.stream(), &call_ctx, assign)
        .await
        .unwrap();
}

/// What a call whose conversation asked for a person holds when its stream has ended,
/// as the media task writes it: answered, the request (warm, with `reason`), the end.
async fn ask_for_person(ports: &Ports, tenant: &TenantId, id: &str, reason: &str) {
    let (events, clock) = (&*ports.events, &*ports.clock);
    let call = CallId::parse(id).unwrap();
    let call_ctx = ctx(tenant, id);
    let answered = CallCommand::RecordStatus {
        status: CallStatus::InProgress,
        duration_secs: None,
        carrier_time: None,
    };
    let asked = CallEvent::TransferRequested {
        mode: "warm".into(),
        reason: reason.into(),
    };
    let ended = CallEvent::MediaStreamEnded {
        reason: "transfer".into(),
        duration_ms: 193_000,
        turns: 9,
    };
    for command in [
        answered,
        CallCommand::RecordMedia(asked),
        CallCommand::RecordMedia(ended),
    ] {
        execute::<Call>(events, clock, &call.stream(), &call_ctx, command)
            .await
            .unwrap();
    }
}

fn numbers(raw: &[&str]) -> Vec<PhoneNumber> {
    raw.iter().map(|n| PhoneNumber::parse(n).unwrap()).collect()
}

/// Seeds what the signed samples need, with the fixed ids above: the tenant, its active
/// agent Riley (with two escalation numbers), the Twilio number and the ExoPhone routed
/// to it, a second active agent Asha for the Exotel hand-over, the tenant's Twilio auth
/// token and Exotel webhook secret, one call Parley placed through each carrier (requested,
/// with the carrier's `CallSid`, as `POST /v1/calls` leaves it), and three calls whose
/// conversations asked for a person: two on Twilio (one to a lead), one on Exotel.
pub async fn seed(ports: &Ports) {
    let (events, clock) = (&*ports.events, &*ports.clock);
    let tenant = TenantId::parse(TENANT_ID).unwrap();
    let setup = ctx(&tenant, "seed");
    let agent = AgentId::parse(AGENT_ID).unwrap();
    let routed = [
        (TWILIO_NUMBER, Carrier::Twilio),
        (EXOTEL_NUMBER, Carrier::Exotel),
    ];
    common::routed_tenant(ports, &tenant, &agent, AgentStatus::Active, &routed).await;
    let mut riley = load_any::<Agent>(events, &agent.stream())
        .await
        .unwrap()
        .state
        .settings
        .unwrap();
    riley.escalation_numbers = numbers(&ESCALATION_NUMBERS);
    let change = AgentCommand::Change { settings: riley };
    execute::<Agent>(events, clock, &agent.stream(), &setup, change)
        .await
        .unwrap();
    let mut asha = AgentSettings::named("Asha");
    asha.status = AgentStatus::Active;
    asha.escalation_numbers = numbers(&EXOTEL_ESCALATION_NUMBERS);
    let exotel_agent = AgentId::parse(EXOTEL_AGENT_ID).unwrap();
    let create = AgentCommand::Create { settings: asha };
    execute::<Agent>(events, clock, &exotel_agent.stream(), &setup, create)
        .await
        .unwrap();
    ports
        .secrets
        .put(
            &format!("tenant/{tenant}/twilio-auth-token"),
            &SecretString::new(TWILIO_AUTH_TOKEN.into()),
        )
        .await
        .unwrap();
    ports
        .secrets
        .put(
            &exotel::webhook_secret_name(&tenant),
            &SecretString::new(EXOTEL_WEBHOOK_SECRET.into()),
        )
        .await
        .unwrap();

    // The hand-over call's lead, as a call from a lead's row leaves it.
    let lead = LeadId::parse(HANDOVER_LEAD_ID).unwrap();
    let create = LeadCommand::Create {
        campaign_id: None,
        phone: PhoneNumber::parse(HANDOVER_CUSTOMER).unwrap(),
        name: Some("Dana".into()),
        time_zone: None,
        fields: Default::default(),
    };
    run_lead(ports, &tenant, &lead, create, None).await.unwrap();

    let twilio = |id, sid, to, lead| Placed {
        id,
        sid,
        carrier: Carrier::Twilio,
        agent: AGENT_ID,
        from: TWILIO_NUMBER,
        to,
        lead,
    };
    let exotel = |id, sid, agent, to| Placed {
        id,
        sid,
        carrier: Carrier::Exotel,
        agent,
        from: EXOTEL_NUMBER,
        to,
        lead: None,
    };
    for placed in [
        twilio(
            TWILIO_OUTBOUND_CALL_ID,
            TWILIO_OUTBOUND_CALL_SID,
            TWILIO_CUSTOMER,
            None,
        ),
        exotel(
            EXOTEL_OUTBOUND_CALL_ID,
            EXOTEL_OUTBOUND_CALL_SID,
            AGENT_ID,
            EXOTEL_CUSTOMER,
        ),
        twilio(
            HANDOVER_CALL_ID,
            HANDOVER_CALL_SID,
            HANDOVER_CUSTOMER,
            Some(HANDOVER_LEAD_ID),
        ),
        twilio(WHISPER_CALL_ID, WHISPER_CALL_SID, WHISPER_CUSTOMER, None),
        exotel(
            EXOTEL_HANDOVER_CALL_ID,
            EXOTEL_HANDOVER_CALL_SID,
            EXOTEL_AGENT_ID,
            EXOTEL_HANDOVER_CUSTOMER,
        ),
    ] {
        place(ports, &tenant, placed).await;
    }
    ask_for_person(ports, &tenant, HANDOVER_CALL_ID, "asked_for_human").await;
    ask_for_person(
        ports,
        &tenant,
        WHISPER_CALL_ID,
        "wants to move an appointment",
    )
    .await;
    ask_for_person(ports, &tenant, EXOTEL_HANDOVER_CALL_ID, "asked_for_human").await;
}

async fn call(ports: &Ports, id: &CallId) -> Call {
    load_any::<Call>(&*ports.events, &id.stream())
        .await
        .unwrap()
        .state
}

#[tokio::test]
async fn every_sample_is_answered_as_its_name_says() {
    let started = Utc::now();
    let dir = tempfile::tempdir().unwrap();
    let ports = Ports::embedded(
        Embedded::open(dir.path(), Arc::new(SystemClock), PUBLIC_URL.into(), 5).unwrap(),
    );
    seed(&ports).await;
    let config = Config::from_lookup(|name| match name {
        "PARLEY_PUBLIC_URL" => Some(PUBLIC_URL.into()),
        _ => None,
    })
    .unwrap();
    let state = WebhookState::new(ports.clone(), &config, true)
        .await
        .unwrap();
    let app = router(state);

    // A new sample needs its expectation here.
    let on_disk: BTreeSet<String> = std::fs::read_dir(samples_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    let listed: BTreeSet<String> = SAMPLES.iter().map(|(n, _, _)| n.to_string()).collect();
    assert_eq!(on_disk, listed, "events/webhooks and the table differ");

    for (name, status, fragment) in SAMPLES {
        let request = lambda_http::request::from_str(&read_sample(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let response = app.clone().oneshot(request).await.unwrap();
        let got = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let body = String::from_utf8_lossy(&bytes);
        assert_eq!(got, *status, "{name}: {body}");
        match fragment {
            Some(fragment) => assert!(body.contains(fragment), "{name}: {body}"),
            None => assert!(body.is_empty(), "{name}: {body}"),
        }
    }

    // What the samples did to the calls.
    let inbound = call(
        &ports,
        &CallId::for_carrier_call("twilio", TWILIO_INBOUND_CALL_SID),
    )
    .await;
    assert_eq!(inbound.direction, Some(Direction::Inbound));
    assert_eq!(inbound.status, Some(CallStatus::Completed));
    assert_eq!(inbound.duration_secs, Some(127));
    let forged = call(
        &ports,
        &CallId::for_carrier_call("twilio", TWILIO_FORGED_CALL_SID),
    )
    .await;
    assert!(!forged.exists, "a bad signature writes nothing");
    let outbound = call(&ports, &CallId::parse(TWILIO_OUTBOUND_CALL_ID).unwrap()).await;
    assert_eq!(outbound.answered_by, Some(AnsweredBy::Human));
    assert_eq!(outbound.recordings.len(), 1);
    let exotel_in = call(
        &ports,
        &CallId::for_carrier_call("exotel", EXOTEL_INBOUND_CALL_SID),
    )
    .await;
    assert_eq!(exotel_in.carrier, Some(Carrier::Exotel));
    assert_eq!(
        exotel_in.to.as_ref().map(PhoneNumber::as_str),
        Some(EXOTEL_NUMBER)
    );
    let exotel_out = call(&ports, &CallId::parse(EXOTEL_OUTBOUND_CALL_ID).unwrap()).await;
    assert_eq!(exotel_out.status, Some(CallStatus::Completed));
    assert_eq!(exotel_out.duration_secs, Some(181));
    assert_eq!(exotel_out.recordings.len(), 1);

    // The hand-over: each dial recorded once, as unanswered, and then the lead is due
    // for a call a quarter of an hour on.
    let handover = call(&ports, &CallId::parse(HANDOVER_CALL_ID).unwrap()).await;
    assert_eq!(handover.transfer_dials, [(0, false), (1, false)]);
    let lead = load_any::<Lead>(
        &*ports.events,
        &LeadId::parse(HANDOVER_LEAD_ID).unwrap().stream(),
    )
    .await
    .unwrap()
    .state;
    let at = lead.callback_at.expect("the lead is to be called back");
    let quarter = Duration::minutes(15);
    assert!(
        started + quarter <= at && at <= Utc::now() + quarter,
        "callback at {at}"
    );
    // The plain end, the whisper and Exotel's questions write nothing of a hand-over.
    assert!(inbound.transfer.is_none() && inbound.transfer_dials.is_empty());
    for id in [WHISPER_CALL_ID, EXOTEL_HANDOVER_CALL_ID] {
        let asked = call(&ports, &CallId::parse(id).unwrap()).await;
        assert!(asked.transfer.is_some(), "{id}");
        assert!(asked.transfer_dials.is_empty(), "{id}");
    }
}

/// Each sample is one request to the same HTTP API: its parts agree with one another,
/// and every Twilio sample but the forged one carries the signature Twilio would send.
#[test]
fn the_samples_are_consistent_api_gateway_events() {
    let host = PUBLIC_URL.trim_start_matches("https://");
    for (name, _, _) in SAMPLES {
        let raw = read_sample(name);
        let json: Value = serde_json::from_str(&raw).unwrap();
        let context = &json["requestContext"];
        assert_eq!(json["version"], "2.0", "{name}");
        assert_eq!(context["stage"], "$default", "{name}");
        assert_eq!(json["headers"]["host"], host, "{name}");
        assert_eq!(context["domainName"], host, "{name}");
        assert_eq!(context["http"]["path"], json["rawPath"], "{name}");
        assert_eq!(context["routeKey"], json["routeKey"], "{name}");
        let method = context["http"]["method"].as_str().unwrap();
        let route = json["routeKey"].as_str().unwrap();
        assert!(route.starts_with(&format!("{method} ")), "{name}: {route}");

        let request = lambda_http::request::from_str(&raw).unwrap();
        assert!(
            matches!(
                request.request_context_ref(),
                Some(RequestContext::ApiGatewayV2(_))
            ),
            "{name}: not read as an HTTP API event"
        );
        let body: &[u8] = request.body();
        if let Some(length) = json["headers"]["content-length"].as_str() {
            assert_eq!(length, body.len().to_string(), "{name}");
        }
        let content_type = json["headers"]["content-type"].as_str().unwrap_or("");
        if content_type.starts_with("application/x-www-form-urlencoded") {
            assert_eq!(
                json["isBase64Encoded"], true,
                "{name}: API Gateway encodes forms"
            );
        }

        if !name.starts_with("twilio-") {
            continue;
        }
        let query = json["rawQueryString"].as_str().unwrap();
        let path = json["rawPath"].as_str().unwrap();
        let path_and_query = if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{query}")
        };
        let url = signature::public_url(PUBLIC_URL, &path_and_query);
        let params: Vec<(String, String)> = serde_urlencoded::from_bytes(body).unwrap();
        let expected = signature::expected_signature(TWILIO_AUTH_TOKEN, &url, &params);
        let sent = json["headers"]["x-twilio-signature"].as_str().unwrap();
        if *name == "twilio-voice-bad-signature.json" {
            assert_ne!(sent, expected, "{name}");
        } else {
            assert_eq!(sent, expected, "{name}");
        }
    }
}
