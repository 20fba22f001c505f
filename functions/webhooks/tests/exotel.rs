//! Exotel's webhooks as Exotel sends them: status callbacks as multipart forms, JSON or
//! plain forms, and the Voicebot applet's request for a stream URL as a `GET` with the
//! call in the query string; each on a URL that carries the tenant's webhook secret,
//! redelivered and reordered.

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
use parley_shared::domain::agent::AgentStatus;
use parley_shared::domain::call::{Call, CallCommand, CallStatus, Carrier, Direction};
use parley_shared::domain::lead::{Lead, LeadCommand};
use parley_shared::domain::{AgentId, CallId, LeadId, PhoneNumber, TenantId};
use parley_shared::embedded::Embedded;
use parley_shared::exotel;
use parley_shared::secrets::SecretString;
use parley_shared::streamtoken;
use parley_webhooks::{WebhookState, router};
use serde_json::{Value, json};
use tower::ServiceExt;

const PUBLIC: &str = "https://abc123.execute-api.ap-south-1.amazonaws.com/prod";
/// The tenant's ExoPhone, as Parley stores it.
const NUMBER: &str = "+918047491899";
/// The same ExoPhone as Exotel's applets write it.
const NUMBER_NATIONAL: &str = "08047491899";
const OTHER_NUMBER: &str = "+918047491800";
const CALLER: &str = "+919876543210";

struct Tenancy {
    tenant: TenantId,
    agent: AgentId,
    secret: SecretString,
}

struct World {
    app: Router,
    ports: Ports,
    state: WebhookState,
    a: Tenancy,
    b: Tenancy,
    _dir: tempfile::TempDir,
}

/// A tenant with an agent in `status`, `number` routed to it, and a webhook secret.
async fn tenancy(ports: &Ports, number: &str, status: AgentStatus) -> Tenancy {
    let (tenant, agent) = (TenantId::new(), AgentId::new());
    common::routed_tenant(ports, &tenant, &agent, status, &[(number, Carrier::Exotel)]).await;
    let secret = exotel::new_webhook_secret();
    ports
        .secrets
        .put(&exotel::webhook_secret_name(&tenant), &secret)
        .await
        .unwrap();
    Tenancy {
        tenant,
        agent,
        secret,
    }
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
        let a = tenancy(&ports, NUMBER, status).await;
        let b = tenancy(&ports, OTHER_NUMBER, AgentStatus::Active).await;
        World {
            app: router(state.clone()),
            ports,
            state,
            a,
            b,
            _dir: dir,
        }
    }

    /// `/webhooks/exotel/<tenant>/<secret>/<leaf>` for tenant A with `secret`.
    fn path(&self, secret: &str, leaf: &str) -> String {
        format!("/webhooks/exotel/{}/{secret}/{leaf}", self.a.tenant)
    }

    fn status_path(&self) -> String {
        self.path(self.a.secret.expose(), "status")
    }

    fn stream_path(&self) -> String {
        self.path(self.a.secret.expose(), "stream")
    }

    async fn send(&self, request: Request<Body>) -> (StatusCode, String) {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8_lossy(&bytes).into_owned())
    }

    async fn post(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: Vec<u8>,
    ) -> (StatusCode, String) {
        let mut request = Request::post(path);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        self.send(request.body(Body::from(body)).unwrap()).await
    }

    async fn post_form(&self, path: &str, params: &[(&str, &str)]) -> (StatusCode, String) {
        let body = serde_urlencoded::to_string(params).unwrap();
        self.post(
            path,
            Some("application/x-www-form-urlencoded"),
            body.into_bytes(),
        )
        .await
    }

    async fn post_json(&self, path: &str, body: Value) -> (StatusCode, String) {
        self.post(
            path,
            Some("application/json"),
            body.to_string().into_bytes(),
        )
        .await
    }

    async fn post_multipart(&self, path: &str, params: &[(&str, &str)]) -> (StatusCode, String) {
        let boundary = "----ExotelBoundary7MA4YWxkTrZu0gW";
        let mut body = String::new();
        for (name, value) in params {
            body.push_str(&format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            ));
        }
        body.push_str(&format!("--{boundary}--\r\n"));
        let content_type = format!("multipart/form-data; boundary={boundary}");
        self.post(path, Some(&content_type), body.into_bytes())
            .await
    }

    async fn get(&self, path: &str, params: &[(&str, &str)]) -> (StatusCode, String) {
        let query = serde_urlencoded::to_string(params).unwrap();
        let request = Request::get(format!("{path}?{query}"))
            .body(Body::empty())
            .unwrap();
        self.send(request).await
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

    async fn all_events(&self) -> usize {
        self.ports
            .events
            .read_all(None, 10_000)
            .await
            .unwrap()
            .len()
    }

    /// An outbound call Parley placed for tenant A, to `CALLER`, for a new lead.
    async fn placed_call(&self) -> (CallId, LeadId) {
        let (events, clock) = (&*self.ports.events, &*self.ports.clock);
        let tenant = &self.a.tenant;
        let lead = LeadId::new();
        let create_lead = LeadCommand::Create {
            campaign_id: None,
            phone: PhoneNumber::parse(CALLER).unwrap(),
            name: Some("Asha".into()),
            time_zone: None,
            fields: Default::default(),
        };
        execute::<Lead>(events, clock, &lead.stream(), &ctx(tenant), create_lead)
            .await
            .unwrap();
        let call_id = CallId::new();
        let start = LeadCommand::StartAttempt {
            attempt: 1,
            call_id: call_id.clone(),
        };
        execute::<Lead>(events, clock, &lead.stream(), &ctx(tenant), start)
            .await
            .unwrap();
        let request = CallCommand::Request {
            direction: Direction::Outbound,
            carrier: Carrier::Exotel,
            from: PhoneNumber::parse(NUMBER).unwrap(),
            to: PhoneNumber::parse(CALLER).unwrap(),
            agent_id: self.a.agent.clone(),
            lead_id: Some(lead.clone()),
            campaign_id: None,
            attempt: 1,
        };
        execute::<Call>(events, clock, &call_id.stream(), &ctx(tenant), request)
            .await
            .unwrap();
        (call_id, lead)
    }
}

/// An applet's query for an inbound call, with both spellings of the numbers.
fn inbound(sid: &str) -> Vec<(&'static str, String)> {
    vec![
        ("CallSid", sid.into()),
        ("CallFrom", "09876543210".into()),
        ("CallTo", NUMBER_NATIONAL.into()),
        ("From", "09876543210".into()),
        ("To", NUMBER_NATIONAL.into()),
        ("Direction", "incoming".into()),
        ("CurrentTime", "2024-01-15 14:25:10".into()),
    ]
}

fn pairs<'a>(v: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    v.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

/// The `url` of a stream endpoint's answer, and its query parameters.
fn stream_answer(body: &str) -> (String, Vec<(String, String)>) {
    let json: Value = serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"));
    let url = json["url"]
        .as_str()
        .unwrap_or_else(|| panic!("no url in {body}"));
    assert_eq!(json.as_object().unwrap().len(), 1, "{body}");
    let (base, query) = url.split_once('?').unwrap();
    (base.to_owned(), serde_urlencoded::from_str(query).unwrap())
}

fn value<'a>(query: &'a [(String, String)], name: &str) -> &'a str {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} in {query:?}"))
}

#[tokio::test]
async fn a_wrong_or_missing_secret_is_403_before_anything_is_read() {
    let world = World::new(AgentStatus::Active).await;
    let (call_id, _) = world.placed_call().await;
    let placed = world.event_count(&call_id).await;
    let before = world.all_events().await;
    let wrong = exotel::new_webhook_secret();
    let mut near = world.a.secret.expose().to_owned();
    near.replace_range(63.., if near.ends_with('0') { "1" } else { "0" });
    let paths = [
        world.path(wrong.expose(), "status"),
        world.path(&near, "status"),
        world.path(&world.a.secret.expose()[..63], "status"),
        world.path("x", "status"),
        // Tenant B's genuine secret does not open tenant A's URLs.
        world.path(world.b.secret.expose(), "status"),
        world.path(world.b.secret.expose(), "stream"),
        world.path(wrong.expose(), "stream"),
        // A tenant that has no secret, and no tenant at all.
        format!(
            "/webhooks/exotel/{}/{}/status",
            TenantId::new(),
            world.a.secret.expose()
        ),
        format!(
            "/webhooks/exotel/not-a-tenant/{}/stream",
            world.a.secret.expose()
        ),
    ];
    for path in &paths {
        let (status, body) = world
            .post_form(
                path,
                &pairs(&[
                    ("CallSid", "c0ffee".into()),
                    ("Status", "completed".into()),
                    ("CustomField", exotel::custom_field(&call_id)),
                    ("CallTo", NUMBER_NATIONAL.into()),
                ]),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}: {body}");
        assert!(!body.contains(world.a.secret.expose()), "{body}");
        // Garbage is not even read: still 403, not 400.
        let (status, _) = world
            .post(path, Some("application/json"), b"{{{not json".to_vec())
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
        let (status, _) = world.get(path, &pairs(&inbound("c0ffee"))).await;
        assert!(
            status == StatusCode::FORBIDDEN || status == StatusCode::METHOD_NOT_ALLOWED,
            "{path}: {status}"
        );
    }
    assert_eq!(world.all_events().await, before, "nothing written");
    assert_eq!(world.event_count(&call_id).await, placed);
    let inbound_id = CallId::for_carrier_call("exotel", "c0ffee");
    assert_eq!(world.event_count(&inbound_id).await, 0);
    assert_eq!(
        world.call(&call_id).await.status,
        Some(CallStatus::Requested)
    );
}

#[tokio::test]
async fn an_inbound_call_gets_a_stream_url_whose_token_opens_that_call_only() {
    let world = World::new(AgentStatus::Active).await;
    let (status, body) = world
        .get(
            &world.stream_path(),
            &pairs(&inbound("9a1b2c3d4e5f60718293a4b5c6d7e8f9")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let call_id = CallId::for_carrier_call("exotel", "9a1b2c3d4e5f60718293a4b5c6d7e8f9");
    let (base, query) = stream_answer(&body);
    assert_eq!(base, "wss://media.example.com/media/exotel");
    assert_eq!(value(&query, "call_id"), call_id.to_string());
    assert_eq!(value(&query, "tenant_id"), world.a.tenant.to_string());
    assert_eq!(value(&query, "agent_id"), world.a.agent.to_string());
    assert_eq!(value(&query, "direction"), "inbound");
    let token = value(&query, "token");
    let secret = world.state.stream_secret.expose().as_bytes().to_vec();
    let claims =
        streamtoken::verify(&secret, token, &call_id.to_string(), chrono::Utc::now()).unwrap();
    assert_eq!(claims.tenant_id, world.a.tenant.to_string());
    assert!(
        streamtoken::verify(
            &secret,
            token,
            &CallId::new().to_string(),
            chrono::Utc::now()
        )
        .is_err(),
        "bound to its call"
    );
    assert!(!body.contains(world.a.secret.expose()));

    let call = world.call(&call_id).await;
    assert_eq!(call.direction, Some(Direction::Inbound));
    assert_eq!(call.carrier, Some(Carrier::Exotel));
    assert_eq!(
        call.carrier_call_id.as_deref(),
        Some("9a1b2c3d4e5f60718293a4b5c6d7e8f9")
    );
    assert_eq!(call.to.as_ref().map(|p| p.as_str()), Some(NUMBER));
    assert_eq!(call.from.as_ref().map(|p| p.as_str()), Some(CALLER));
    assert_eq!(call.agent_id.as_ref(), Some(&world.a.agent));

    // Exotel asks again (a retry, or a POST this time): same call, nothing new written.
    let before = world.event_count(&call_id).await;
    let (status, again) = world
        .post_form(
            &world.stream_path(),
            &pairs(&inbound("9a1b2c3d4e5f60718293a4b5c6d7e8f9")),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(
        value(&stream_answer(&again).1, "call_id"),
        call_id.to_string()
    );
    assert_eq!(world.event_count(&call_id).await, before);

    // Its status callback finds it by CallSid alone.
    let (status, body) = world
        .post_multipart(
            &world.status_path(),
            &[
                ("CallSid", "9a1b2c3d4e5f60718293a4b5c6d7e8f9"),
                ("Status", "completed"),
                ("DateUpdated", "2024-01-15 14:30:45"),
                ("RecordingUrl", ""),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let call = world.call(&call_id).await;
    assert_eq!(call.status, Some(CallStatus::Completed));
    assert!(
        call.recordings.is_empty(),
        "an empty RecordingUrl is no recording"
    );
    let events = world
        .ports
        .events
        .read_stream(&call_id.stream(), 1)
        .await
        .unwrap();
    let changed = events
        .iter()
        .find(|e| e.event_type == "call_status_changed")
        .unwrap();
    // Exotel's times are IST.
    assert_eq!(changed.data["carrier_time"], "2024-01-15T09:00:45Z");
}

#[tokio::test]
async fn a_call_parley_placed_streams_as_outbound() {
    let world = World::new(AgentStatus::Active).await;
    let (call_id, lead) = world.placed_call().await;
    let custom = exotel::custom_field(&call_id);
    let (status, body) = world
        .get(
            &world.stream_path(),
            &[
                ("CallSid", "0utb0und5id"),
                ("CallFrom", CALLER),
                ("CallTo", NUMBER_NATIONAL),
                ("Direction", "outbound-api"),
                ("CustomField", &custom),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, query) = stream_answer(&body);
    assert_eq!(value(&query, "call_id"), call_id.to_string());
    assert_eq!(value(&query, "direction"), "outbound");
    assert_eq!(value(&query, "lead_id"), lead.to_string());
    let secret = world.state.stream_secret.expose().as_bytes().to_vec();
    streamtoken::verify(
        &secret,
        value(&query, "token"),
        &call_id.to_string(),
        chrono::Utc::now(),
    )
    .unwrap();
    assert_eq!(
        world.call(&call_id).await.carrier_call_id.as_deref(),
        Some("0utb0und5id")
    );
    // No inbound call was made of it.
    let derived = CallId::for_carrier_call("exotel", "0utb0und5id");
    assert_eq!(world.event_count(&derived).await, 0);

    // Another CallSid for the same call is a conflict; an outbound call without
    // Parley's CustomField is not one we route.
    let (status, _) = world
        .get(
            &world.stream_path(),
            &[("CallSid", "another"), ("CustomField", &custom)],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = world
        .get(
            &world.stream_path(),
            &[
                ("CallSid", "dashboard1"),
                ("To", NUMBER_NATIONAL),
                ("Direction", "outbound-dial"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Tenant B cannot stream tenant A's call, even with its own valid secret.
    let b_path = format!(
        "/webhooks/exotel/{}/{}/stream",
        world.b.tenant,
        world.b.secret.expose()
    );
    let (status, _) = world
        .get(
            &b_path,
            &[("CallSid", "0utb0und5id"), ("CustomField", &custom)],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn only_the_tenants_own_numbers_are_streamed() {
    let world = World::new(AgentStatus::Active).await;
    let before = world.all_events().await;
    for to in [OTHER_NUMBER, "+918047491777", "anonymous"] {
        let mut params = inbound("n0tm1ne");
        params[2].1 = to.into();
        params[4].1 = to.into();
        let (status, body) = world.get(&world.stream_path(), &pairs(&params)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{to}: {body}");
    }
    let (status, body) = world
        .get(&world.stream_path(), &[("CallSid", "n0to")])
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("\"To\""), "{body}");
    assert_eq!(world.all_events().await, before, "nothing written");
}

#[tokio::test]
async fn a_closed_line_is_refused_after_the_call_is_recorded() {
    let world = World::new(AgentStatus::Inactive).await;
    let (status, body) = world
        .get(&world.stream_path(), &pairs(&inbound("cl05ed")))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(!body.contains("wss://"), "{body}");
    let call = world
        .call(&CallId::for_carrier_call("exotel", "cl05ed"))
        .await;
    assert_eq!(call.direction, Some(Direction::Inbound));
}

/// Status callbacks in order, twice, and out of order, as multipart, JSON and form
/// bodies: the call ends completed with each status recorded once, the recording kept
/// once, and the lead's attempt closed.
#[tokio::test]
async fn status_callbacks_never_move_a_call_backwards() {
    let world = World::new(AgentStatus::Active).await;
    let (call_id, lead) = world.placed_call().await;
    let custom = exotel::custom_field(&call_id);
    let path = world.status_path();
    let recording = "https://s3-ap-southeast-1.amazonaws.com/exotelrecordings/acme/c5.mp3";

    let answered = json!({
        "CallSid": "c5", "EventType": "answered", "Status": "in-progress",
        "DateCreated": "2024-01-15 14:25:10", "DateUpdated": "2024-01-15 14:25:20",
        "To": CALLER, "From": NUMBER_NATIONAL, "Direction": "outbound-api",
        "CustomField": custom, "RecordingUrl": null,
    });
    let terminal = json!({
        "CallSid": "c5", "EventType": "terminal", "Status": "completed",
        "DateUpdated": "2024-01-15 14:30:45", "ConversationDuration": 42,
        "Direction": "outbound-api", "CustomField": custom, "RecordingUrl": recording,
        "Legs": [{"OnCallDuration": 41, "Status": "completed"}],
    });
    for (what, (status, body)) in [
        ("answered", world.post_json(&path, answered.clone()).await),
        (
            "answered again",
            world.post_json(&path, answered.clone()).await,
        ),
        (
            "terminal, multipart",
            world
                .post_multipart(
                    &path,
                    &[
                        ("CallSid", "c5"),
                        ("Status", "completed"),
                        ("DateUpdated", "2024-01-15 14:30:45"),
                        ("ConversationDuration", "42"),
                        ("RecordingUrl", recording),
                        ("CustomField", &custom),
                    ],
                )
                .await,
        ),
        (
            "answered, late",
            world.post_json(&path, answered.clone()).await,
        ),
        (
            "terminal again, JSON",
            world.post_json(&path, terminal.clone()).await,
        ),
        (
            "busy, late, form",
            world
                .post_form(
                    &path,
                    &[
                        ("CallSid", "c5"),
                        ("Status", "busy"),
                        ("CustomField", &custom),
                    ],
                )
                .await,
        ),
        (
            "ringing, late, form",
            world
                .post_form(
                    &path,
                    &[
                        ("CallSid", "c5"),
                        ("Status", "ringing"),
                        ("CustomField", &custom),
                    ],
                )
                .await,
        ),
    ] {
        assert_eq!(status, StatusCode::OK, "{what}: {body}");
    }
    let call = world.call(&call_id).await;
    assert_eq!(call.status, Some(CallStatus::Completed));
    assert_eq!(call.duration_secs, Some(42));
    assert_eq!(call.carrier_call_id.as_deref(), Some("c5"));
    assert_eq!(
        call.recordings,
        vec![("c5".to_owned(), recording.to_owned())]
    );
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
        ["in_progress", "completed"],
        "each once, never backwards"
    );
    let lead_state = load_any::<Lead>(&*world.ports.events, &lead.stream())
        .await
        .unwrap()
        .state;
    assert_eq!(lead_state.attempts[0].outcome, Some(CallStatus::Completed));

    // Unknown statuses, calls and CallSids change nothing.
    let before = world.event_count(&call_id).await;
    let (status, body) = world
        .post_form(
            &path,
            &[
                ("CallSid", "c5"),
                ("Status", "teleported"),
                ("CustomField", &custom),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("\"Status\""), "{body}");
    let (status, _) = world
        .post_form(
            &path,
            &[
                ("CallSid", "c6"),
                ("Status", "completed"),
                ("CustomField", &exotel::custom_field(&CallId::new())),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = world
        .post_form(&path, &[("CallSid", "never-seen"), ("Status", "completed")])
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = world
        .post_form(
            &path,
            &[
                ("CallSid", "c7"),
                ("Status", "completed"),
                ("CustomField", &custom),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "the call is c5's");
    assert_eq!(world.event_count(&call_id).await, before);
}

#[tokio::test]
async fn a_recording_arrives_with_a_failed_call_too() {
    let world = World::new(AgentStatus::Active).await;
    let (call_id, lead) = world.placed_call().await;
    let custom = exotel::custom_field(&call_id);
    let (status, body) = world
        .post_form(
            &world.status_path(),
            &[
                ("CallSid", "nx1"),
                ("Status", "no-answer"),
                ("CustomField", &custom),
                ("RecordingUrl", "null"),
                ("Duration", "0"),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let call = world.call(&call_id).await;
    assert_eq!(call.status, Some(CallStatus::NoAnswer));
    assert!(call.recordings.is_empty(), "\"null\" is no recording");
    let lead_state = load_any::<Lead>(&*world.ports.events, &lead.stream())
        .await
        .unwrap()
        .state;
    assert_eq!(lead_state.attempts[0].outcome, Some(CallStatus::NoAnswer));
}

#[tokio::test]
async fn garbage_bodies_are_refused_cleanly() {
    let world = World::new(AgentStatus::Active).await;
    let (call_id, _) = world.placed_call().await;
    let before = world.all_events().await;
    let status_path = world.status_path();
    let stream_path = world.stream_path();
    for path in [&status_path, &stream_path] {
        for (content_type, body) in [
            (Some("application/json"), b"{\"CallSid\": ".to_vec()),
            (Some("application/json"), b"[\"CallSid\", \"c1\"]".to_vec()),
            (Some("application/json"), b"\xff\xfe\x00".to_vec()),
            (None, b"{{{".to_vec()),
            (Some("multipart/form-data"), b"--x\r\n\r\n".to_vec()),
            (
                Some("multipart/form-data; boundary=x"),
                b"--x\r\nContent-Disposition: form-data; name=\"CallSid\"\r\n\r\nc1".to_vec(),
            ),
            (Some("application/x-www-form-urlencoded"), b"%%%".to_vec()),
            (
                Some("application/x-www-form-urlencoded"),
                b"\x00\x01".to_vec(),
            ),
            (None, b"CallSid".to_vec()),
            (
                Some("application/x-www-form-urlencoded"),
                vec![b'a'; 70 * 1024],
            ),
        ] {
            let (status, reply) = world.post(path, content_type, body.clone()).await;
            assert_eq!(
                status,
                StatusCode::BAD_REQUEST,
                "{path} {content_type:?} {:?}: {reply}",
                String::from_utf8_lossy(&body[..body.len().min(40)])
            );
        }
        let (status, _) = world
            .post(path, Some("text/xml"), b"<Call/>".to_vec())
            .await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
        let (status, body) = world
            .post_form(path, &[("CallSid", "../../etc"), ("Status", "completed")])
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("CallSid"), "{body}");
    }
    let (status, body) = world.post_form(&status_path, &[("CallSid", "c1")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("\"Status\""), "{body}");
    assert_eq!(world.all_events().await, before, "nothing written");
    assert_eq!(
        world.call(&call_id).await.status,
        Some(CallStatus::Requested)
    );
}
