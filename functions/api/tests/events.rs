//! The sample Lambda payloads in `events/api/` (see `events/README.md`): real API Gateway
//! HTTP API events (payload format 2.0) carrying a developer's requests, with the tenant
//! API key the README lists. Each is answered as the table below says, on a store seeded
//! by [`seed`] with those fixed values, exactly as `cargo lambda invoke api` would have
//! the function answer it.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use axum::http::{Method, StatusCode};
use chrono::{Duration, DurationRound, Utc};
use common::Api;
use lambda_http::RequestExt;
use lambda_http::request::RequestContext;
use parley_shared::aggregate::{Context, execute};
use parley_shared::appointmentviews::run_appointment;
use parley_shared::domain::access::{self, ApiKey, ApiKeyCommand};
use parley_shared::domain::appointment::{AppointmentCommand, MeetingKind};
use parley_shared::domain::lead::LeadCommand;
use parley_shared::domain::tenant::{Tenant, TenantCommand};
use parley_shared::domain::{AgentId, AppointmentId, LeadId, PhoneNumber, TenantId, TimeZone};
use parley_shared::leadviews::run_lead;
use serde_json::Value;
use tower::ServiceExt;

/// The host the samples were sent to: an HTTP API on its `$default` stage.
const HOST: &str = "abc123.execute-api.eu-west-1.amazonaws.com";
/// The tenant the samples act for, and its API key: a test value, not a credential.
pub const TENANT_ID: &str = "01936d7e-2a00-7000-8000-000000000001";
pub const API_KEY: &str = "pk_sample-tenant-api-key-not-a-secret-0123456789";
/// What the seeded appointment is called.
const APPOINTMENT_TITLE: &str = "Cleaning with Dr Patel";

/// Every sample, in the order it is sent, with the status it is answered with and one
/// value of the JSON answer: `(JSON pointer, text there)`.
const SAMPLES: &[(&str, u16, &str, &str)] = &[
    ("health.json", 200, "/status", "ok"),
    ("agents-list.json", 200, "/items/0/name", "Riley"),
    (
        "appointments-list.json",
        200,
        "/items/0/title",
        APPOINTMENT_TITLE,
    ),
    // The API names the field a body lacks; nothing is placed.
    (
        "calls-create-missing-agent.json",
        422,
        "/error/field",
        "agent_id",
    ),
];

fn samples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/api")
}

fn read_sample(name: &str) -> String {
    let path = samples_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn ctx(tenant: &TenantId) -> Context {
    Context {
        tenant_id: tenant.to_string(),
        correlation_id: "seed".into(),
        idempotency_key: None,
    }
}

/// What was seeded beyond the fixed values.
struct Seeded {
    agent_id: String,
    appointment_id: String,
}

/// Seeds what the samples need: the tenant with the fixed id and its API key with the
/// fixed value (the API mints random ones, so these are written as the API writes them),
/// then through the API with that key an agent, Riley; and one appointment Riley booked
/// with a lead three days ahead, as a call books it.
async fn seed(api: &Api) -> Seeded {
    let (events, clock) = (&*api.ports.events, &*api.ports.clock);
    let tenant = TenantId::parse(TENANT_ID).unwrap();
    let create = TenantCommand::Create {
        name: "Acme Dental".into(),
        time_zone: TimeZone::parse("America/New_York").unwrap(),
    };
    execute::<Tenant>(events, clock, &tenant.stream(), &ctx(&tenant), create)
        .await
        .unwrap();
    let issue = ApiKeyCommand::Issue {
        tenant_id: tenant.clone(),
        label: "sample".into(),
    };
    execute::<ApiKey>(
        events,
        clock,
        &access::stream(API_KEY),
        &ctx(&tenant),
        issue,
    )
    .await
    .unwrap();
    let agent_id = api.agent(API_KEY, "Riley").await;

    let lead = LeadId::new();
    let create = LeadCommand::Create {
        campaign_id: None,
        phone: PhoneNumber::parse("+14155550133").unwrap(),
        name: Some("Dana".into()),
        time_zone: None,
        fields: Default::default(),
    };
    run_lead(&api.ports, &tenant, &lead, create, None)
        .await
        .unwrap();
    let starts_at = (Utc::now() + Duration::days(3))
        .duration_trunc(Duration::hours(1))
        .unwrap();
    let appointment = AppointmentId::new();
    let book = AppointmentCommand::Book {
        lead_id: lead,
        call_id: None,
        agent_id: Some(AgentId::parse(&agent_id).unwrap()),
        title: APPOINTMENT_TITLE.into(),
        starts_at,
        duration_minutes: 30,
        kind: MeetingKind::InPerson,
    };
    run_appointment(&api.ports, &ctx(&tenant), &appointment, book)
        .await
        .unwrap();
    Seeded {
        agent_id,
        appointment_id: appointment.to_string(),
    }
}

#[tokio::test]
async fn every_sample_is_answered_as_its_name_says() {
    let api = Api::new();
    let seeded = seed(&api).await;

    // A new sample needs its expectation here.
    let on_disk: BTreeSet<String> = std::fs::read_dir(samples_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".json"))
        .collect();
    let listed: BTreeSet<String> = SAMPLES.iter().map(|(n, ..)| n.to_string()).collect();
    assert_eq!(on_disk, listed, "events/api and the table differ");

    let mut answers = Vec::new();
    for (name, status, pointer, expected) in SAMPLES {
        let request = lambda_http::request::from_str(&read_sample(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let response = api.app.clone().oneshot(request).await.unwrap();
        let got = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let body: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("{name}: {e}: {}", String::from_utf8_lossy(&bytes)));
        assert_eq!(got, *status, "{name}: {body}");
        assert_eq!(
            body.pointer(pointer).and_then(Value::as_str),
            Some(*expected),
            "{name}: {body}"
        );
        answers.push(body);
    }

    // The lists hold exactly what was seeded, and only the key's tenant's.
    let agents = answers[1]["items"].as_array().unwrap();
    assert_eq!(agents.len(), 1, "{agents:?}");
    assert_eq!(agents[0]["id"], seeded.agent_id.as_str());
    assert_eq!(agents[0]["tenant_id"], TENANT_ID);
    let appointments = answers[2]["items"].as_array().unwrap();
    assert_eq!(appointments.len(), 1, "{appointments:?}");
    assert_eq!(appointments[0]["id"], seeded.appointment_id.as_str());
    assert_eq!(appointments[0]["agent_id"], seeded.agent_id.as_str());
    // The refused call was never written.
    let (status, calls) = api
        .call(Method::GET, "/v1/calls", Some(API_KEY), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{calls}");
    assert_eq!(calls["items"], serde_json::json!([]), "{calls}");
}

/// Each sample is one request to the same HTTP API: its parts agree with one another, and
/// every one but the health check carries the tenant's key.
#[test]
fn the_samples_are_consistent_api_gateway_events() {
    for (name, ..) in SAMPLES {
        let raw = read_sample(name);
        let json: Value = serde_json::from_str(&raw).unwrap();
        let context = &json["requestContext"];
        assert_eq!(json["version"], "2.0", "{name}");
        assert_eq!(context["stage"], "$default", "{name}");
        assert_eq!(json["headers"]["host"], HOST, "{name}");
        assert_eq!(context["domainName"], HOST, "{name}");
        assert_eq!(context["http"]["path"], json["rawPath"], "{name}");
        assert_eq!(context["routeKey"], json["routeKey"], "{name}");
        let method = context["http"]["method"].as_str().unwrap();
        let path = json["rawPath"].as_str().unwrap();
        assert_eq!(
            json["routeKey"].as_str().unwrap(),
            format!("{method} {path}"),
            "{name}"
        );

        let request = lambda_http::request::from_str(&raw).unwrap();
        assert!(
            matches!(
                request.request_context_ref(),
                Some(RequestContext::ApiGatewayV2(_))
            ),
            "{name}: not read as an HTTP API event"
        );
        assert_eq!(request.uri().path(), path, "{name}");
        let query = json["rawQueryString"].as_str().unwrap();
        assert_eq!(request.uri().query().unwrap_or(""), query, "{name}");
        let body: &[u8] = request.body();
        if let Some(length) = json["headers"]["content-length"].as_str() {
            assert_eq!(length, body.len().to_string(), "{name}");
        }
        let authorization = json["headers"]["authorization"].as_str();
        if path.starts_with("/v1/") {
            assert_eq!(
                authorization,
                Some(format!("Bearer {API_KEY}").as_str()),
                "{name}"
            );
        }
    }
}
