//! The sample Lambda payloads in `events/webhooks/` (see `events/README.md`): real API
//! Gateway HTTP API events (payload format 2.0) carrying Twilio's and Exotel's requests
//! as those carriers send them. Each is answered as the table below says, on a store
//! seeded by [`seed`] with the fixed ids the README lists, exactly as `cargo lambda
//! invoke` would have the function answer it.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use parley_shared::aggregate::{Context, execute, load_any};
use parley_shared::backend::Ports;
use parley_shared::clock::SystemClock;
use parley_shared::config::Config;
use parley_shared::domain::agent::AgentStatus;
use parley_shared::domain::call::{AnsweredBy, Call, CallCommand, CallStatus, Carrier, Direction};
use parley_shared::domain::{AgentId, CallId, PhoneNumber, TenantId};
use parley_shared::embedded::Embedded;
use parley_shared::exotel;
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
/// Whom the outbound calls went to.
const TWILIO_CUSTOMER: &str = "+14155550132";
const EXOTEL_CUSTOMER: &str = "+919876543210";
/// The `CallSid`s of the calls the samples start.
const TWILIO_INBOUND_CALL_SID: &str = "CA1f0e2d3c4b5a69788796a5b4c3d2e1f0";
const TWILIO_FORGED_CALL_SID: &str = "CA3b2c4d5e6f708192a3b4c5d6e7f8091a";
const EXOTEL_INBOUND_CALL_SID: &str = "6e5f708192a3b4c5d6e7f8091a2b3c4d";

/// Every sample, in the order it is sent (the status callback is about the call the
/// first one starts), with the status it is answered with and a piece of the answer's
/// body (`None`: an empty body).
const SAMPLES: &[(&str, u16, Option<&str>)] = &[
    (
        "twilio-voice-inbound.json",
        200,
        Some(
            // `<Connect action="…/webhooks/twilio/connected?call_id=…">` around the stream.
            "\"><Stream url=\"wss://abc123.execute-api.eu-west-1.amazonaws.com/media/twilio\">",
        ),
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
        "exotel-stream.json",
        200,
        Some("{\"url\":\"wss://abc123.execute-api.eu-west-1.amazonaws.com/media/exotel?token="),
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

/// Seeds what the signed samples need, with the fixed ids above: the tenant, its active
/// agent, the Twilio number and the ExoPhone routed to it, the tenant's Twilio auth token
/// and Exotel webhook secret, and one call Parley placed through each carrier (requested,
/// with the carrier's `CallSid`, as `POST /v1/calls` leaves it).
pub async fn seed(ports: &Ports) {
    let (events, clock) = (&*ports.events, &*ports.clock);
    let tenant = TenantId::parse(TENANT_ID).unwrap();
    let _setup = ctx(&tenant, "seed");
    let agent = AgentId::parse(AGENT_ID).unwrap();
    let numbers = [
        (TWILIO_NUMBER, Carrier::Twilio),
        (EXOTEL_NUMBER, Carrier::Exotel),
    ];
    common::routed_tenant(ports, &tenant, &agent, AgentStatus::Active, &numbers).await;
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
    for (id, sid, carrier, from, to) in [
        (
            TWILIO_OUTBOUND_CALL_ID,
            TWILIO_OUTBOUND_CALL_SID,
            Carrier::Twilio,
            TWILIO_NUMBER,
            TWILIO_CUSTOMER,
        ),
        (
            EXOTEL_OUTBOUND_CALL_ID,
            EXOTEL_OUTBOUND_CALL_SID,
            Carrier::Exotel,
            EXOTEL_NUMBER,
            EXOTEL_CUSTOMER,
        ),
    ] {
        let call = CallId::parse(id).unwrap();
        let call_ctx = ctx(&tenant, id);
        let request = CallCommand::Request {
            direction: Direction::Outbound,
            carrier,
            from: PhoneNumber::parse(from).unwrap(),
            to: PhoneNumber::parse(to).unwrap(),
            agent_id: agent.clone(),
            lead_id: None,
            campaign_id: None,
            attempt: 1,
        };
        execute::<Call>(events, clock, &call.stream(), &call_ctx, request)
            .await
            .unwrap();
        let assign = CallCommand::AssignCarrierCallId {
            carrier_call_id: sid.into(),
        };
        execute::<Call>(events, clock, &call.stream(), &call_ctx, assign)
            .await
            .unwrap();
    }
}

async fn call(ports: &Ports, id: &CallId) -> Call {
    load_any::<Call>(&*ports.events, &id.stream())
        .await
        .unwrap()
        .state
}

#[tokio::test]
async fn every_sample_is_answered_as_its_name_says() {
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
