//! Appointments through the API: listed by start time (with the agent, lead and time
//! filters, page by page), read one at a time, cancelled; and never another tenant's.
//! The appointments are booked as the media task books them (`run_appointment`), a few
//! days ahead of the real clock the API runs on.

mod common;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use chrono::{DateTime, Duration, DurationRound, SecondsFormat, Utc};
use common::{ADMIN, Api, field};
use parley_shared::aggregate::Context;
use parley_shared::appointmentviews::{refresh_appointment, run_appointment};
use parley_shared::domain::appointment::{AppointmentCommand, AppointmentEvent, MeetingKind};
use parley_shared::domain::{AgentId, AppointmentId, CallId, LeadId};
use parley_shared::event::{Metadata, NewEvent};
use parley_shared::eventstore::ExpectedVersion;
use serde_json::{Value, json};
use tower::ServiceExt;

/// A whole hour `hours` from now.
fn ahead(hours: i64) -> DateTime<Utc> {
    (Utc::now() + Duration::hours(hours))
        .duration_trunc(Duration::hours(1))
        .unwrap()
}

fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Books an appointment for `tenant`, as a call does.
async fn book(
    api: &Api,
    tenant: &str,
    agent: &AgentId,
    lead: &LeadId,
    starts_at: DateTime<Utc>,
) -> String {
    let id = AppointmentId::new();
    let ctx = Context {
        tenant_id: tenant.to_owned(),
        correlation_id: "test".into(),
        idempotency_key: None,
    };
    let command = AppointmentCommand::Book {
        lead_id: lead.clone(),
        call_id: Some(CallId::new()),
        agent_id: Some(agent.clone()),
        title: "Viewing at 12 Elm St".into(),
        starts_at,
        duration_minutes: 30,
        kind: MeetingKind::InPerson,
    };
    run_appointment(&api.ports, &ctx, &id, command)
        .await
        .unwrap();
    id.to_string()
}

/// An appointment booked a while ago that has already taken place: written as its
/// event was then, since a booking in the past is refused now.
async fn gone_by(api: &Api, tenant: &str, agent: &AgentId, lead: &LeadId) -> String {
    let id = AppointmentId::new();
    let event = AppointmentEvent::AppointmentBooked {
        lead_id: lead.clone(),
        call_id: None,
        agent_id: Some(agent.clone()),
        title: "Last week's viewing".into(),
        starts_at: Utc::now() - Duration::days(7),
        duration_minutes: 30,
        kind: MeetingKind::Phone,
    };
    let meta = Metadata {
        tenant_id: tenant.to_owned(),
        correlation_id: "test".into(),
        occurred_at: Utc::now() - Duration::days(8),
    };
    api.ports
        .events
        .append(
            &id.stream(),
            ExpectedVersion::Exact(0),
            vec![NewEvent::from_domain(&event, meta).unwrap()],
            None,
        )
        .await
        .unwrap();
    refresh_appointment(&*api.ports.events, &*api.ports.views, &id)
        .await
        .unwrap();
    id.to_string()
}

/// The ids of a list's page, and its cursor.
async fn page(api: &Api, key: &str, path: &str) -> (Vec<String>, Option<String>) {
    let (status, body) = api.call(Method::GET, path, Some(key), None).await;
    assert_eq!(status, StatusCode::OK, "{path}: {body}");
    let ids = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_owned())
        .collect();
    (ids, body["next_cursor"].as_str().map(str::to_owned))
}

/// Every id a list gives, following its cursors, and how many pages it took.
async fn every(api: &Api, key: &str, path: &str) -> (Vec<String>, usize) {
    let mut all = Vec::new();
    let mut cursor: Option<String> = None;
    for pages in 1..=20 {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = match &cursor {
            Some(c) => format!("{path}{sep}cursor={}", urlencode(c)),
            None => path.to_owned(),
        };
        let (ids, next) = page(api, key, &url).await;
        all.extend(ids);
        match next {
            Some(next) => cursor = Some(next),
            None => return (all, pages),
        }
    }
    panic!("{path}: more than 20 pages");
}

fn urlencode(text: &str) -> String {
    serde_urlencoded::to_string([("v", text)]).unwrap()[2..].to_owned()
}

/// A GET whose answer may not be JSON: its status and text.
async fn raw_get(api: &Api, path: &str, key: &str) -> (StatusCode, String) {
    let request = Request::get(path)
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    let response = api.app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

struct World {
    api: Api,
    acme: String,
    acme_key: String,
    bolt_key: String,
    riley: AgentId,
    sam: AgentId,
    ana: LeadId,
    ben: LeadId,
    /// Acme's: Riley with Ana tomorrow, Sam with Ben tomorrow an hour later, Riley
    /// with Ben the day after.
    booked: [String; 3],
    /// When those start.
    starts: [DateTime<Utc>; 3],
    /// Acme's, last week.
    past: String,
    /// Bolt's, at the same time as the first of Acme's, by an agent of the same id.
    theirs: String,
}

async fn world() -> World {
    let api = Api::new();
    let (acme, acme_key) = api.tenant("Acme").await;
    let (bolt, bolt_key) = api.tenant("Bolt").await;
    let riley = AgentId::parse(&api.agent(&acme_key, "Riley").await).unwrap();
    let sam = AgentId::parse(&api.agent(&acme_key, "Sam").await).unwrap();
    let (ana, ben) = (LeadId::new(), LeadId::new());
    let tomorrow = ahead(24);
    let starts = [
        tomorrow,
        tomorrow + Duration::hours(1),
        tomorrow + Duration::hours(24),
    ];
    let booked = [
        book(&api, &acme, &riley, &ana, starts[0]).await,
        book(&api, &acme, &sam, &ben, starts[1]).await,
        book(&api, &acme, &riley, &ben, starts[2]).await,
    ];
    let past = gone_by(&api, &acme, &riley, &ana).await;
    let theirs = book(&api, &bolt, &riley, &LeadId::new(), starts[0]).await;
    World {
        api,
        acme,
        acme_key,
        bolt_key,
        riley,
        sam,
        ana,
        ben,
        booked,
        starts,
        past,
        theirs,
    }
}

#[tokio::test]
async fn the_list_runs_from_now_by_start_time_with_agent_lead_and_time_filters() {
    let w = world().await;
    let (api, key) = (&w.api, w.acme_key.as_str());
    let [first, second, third] = w.booked.clone();

    // From now by default: last week's is left out, and Bolt's is Bolt's.
    let (ids, next) = page(api, key, "/v1/appointments").await;
    assert_eq!(ids, [first.clone(), second.clone(), third.clone()]);
    assert_eq!(next, None);
    // An earlier `from` reaches back to it.
    let last_month = rfc3339(Utc::now() - Duration::days(30));
    let (ids, _) = page(api, key, &format!("/v1/appointments?from={last_month}")).await;
    assert_eq!(ids[0], w.past);
    assert_eq!(ids.len(), 4);
    // Both ends of a range are included.
    let exactly = rfc3339(w.starts[1]);
    let (ids, _) = page(
        api,
        key,
        &format!("/v1/appointments?from={exactly}&to={exactly}"),
    )
    .await;
    assert_eq!(ids, [second.as_str()]);
    let (ids, _) = page(
        api,
        key,
        &format!("/v1/appointments?to={}", rfc3339(w.starts[1])),
    )
    .await;
    assert_eq!(ids, [first.clone(), second.clone()]);

    // By agent, by lead, by both.
    let by = |query: String| format!("/v1/appointments?{query}");
    let (ids, _) = page(api, key, &by(format!("agent_id={}", w.riley))).await;
    assert_eq!(ids, [first.clone(), third.clone()]);
    let (ids, _) = page(api, key, &by(format!("agent_id={}", w.sam))).await;
    assert_eq!(ids, [second.as_str()]);
    let (ids, _) = page(api, key, &by(format!("lead_id={}", w.ben))).await;
    assert_eq!(ids, [second.clone(), third.clone()]);
    let (ids, _) = page(
        api,
        key,
        &by(format!("lead_id={}&agent_id={}", w.ben, w.riley)),
    )
    .await;
    assert_eq!(ids, [third.as_str()]);
    let (ids, _) = page(api, key, &by(format!("lead_id={}", w.ana))).await;
    assert_eq!(ids, [first.as_str()]);

    // The body: what was booked, as it stands.
    let (_, body) = api
        .call(Method::GET, "/v1/appointments", Some(key), None)
        .await;
    let item = &body["items"][0];
    assert_eq!(item["tenant_id"], w.acme.as_str());
    assert_eq!(item["agent_id"], json!(w.riley));
    assert_eq!(item["lead_id"], json!(w.ana));
    assert_eq!(item["status"], "booked");
    assert_eq!(item["kind"], "in_person");
    assert_eq!(item["duration_minutes"], 30);
    assert_eq!(item["starts_at"], rfc3339(w.starts[0]));
    assert_eq!(
        item["ends_at"],
        rfc3339(w.starts[0] + Duration::minutes(30))
    );
    assert!(item.get("stream_version").is_none(), "{item}");
}

#[tokio::test]
async fn pages_follow_their_cursors_with_and_without_the_lead_filter() {
    let w = world().await;
    let (api, key) = (&w.api, w.acme_key.as_str());
    let (ids, pages) = every(api, key, "/v1/appointments?limit=1").await;
    assert_eq!(ids, w.booked.to_vec());
    assert!(pages >= 3, "{pages} pages");
    let (ids, _) = every(
        api,
        key,
        &format!("/v1/appointments?limit=1&lead_id={}", w.ben),
    )
    .await;
    assert_eq!(ids, [w.booked[1].clone(), w.booked[2].clone()]);
    let (ids, pages) = every(api, key, "/v1/appointments?limit=2").await;
    assert_eq!((ids, pages >= 2), (w.booked.to_vec(), true));
}

#[tokio::test]
async fn bad_parameters_are_named() {
    let w = world().await;
    let (api, key) = (&w.api, w.acme_key.as_str());
    // Not a date-time: the query does not parse, and its text names the parameter.
    let (status, text) = raw_get(api, "/v1/appointments?from=next-tuesday", key).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("query string: from: "), "{text}");
    let (status, text) = raw_get(api, "/v1/appointments?to=2031-02-30T10:00:00Z", key).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{text}");
    assert!(text.contains("query string: to: "), "{text}");

    let tomorrow = rfc3339(w.starts[0]);
    let today = rfc3339(w.starts[0] - Duration::hours(20));
    for (path, named) in [
        (format!("/v1/appointments?from={tomorrow}&to={today}"), "to"),
        ("/v1/appointments?agent_id=riley".to_owned(), "agent_id"),
        ("/v1/appointments?lead_id=42".to_owned(), "lead_id"),
        ("/v1/appointments?limit=0".to_owned(), "limit"),
        ("/v1/appointments?limit=201".to_owned(), "limit"),
        ("/v1/appointments?cursor=nonsense".to_owned(), "cursor"),
    ] {
        let (status, body) = api.call(Method::GET, &path, Some(key), None).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{path}: {body}");
        assert_eq!(field(&body), named, "{path}: {body}");
    }
    // No key, no list.
    let (status, _) = api.call(Method::GET, "/v1/appointments", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn one_appointment_reads_as_its_events_tell_it_and_cancels_once() {
    let w = world().await;
    let (api, key) = (&w.api, w.acme_key.as_str());
    let first = &w.booked[0];
    let path = format!("/v1/appointments/{first}");
    let (status, read) = api.call(Method::GET, &path, Some(key), None).await;
    assert_eq!(status, StatusCode::OK, "{read}");
    assert_eq!(read["id"], first.as_str());
    assert_eq!(read["title"], "Viewing at 12 Elm St");
    assert_eq!(read["status"], "booked");
    assert_eq!(read["cancel_reason"], Value::Null);

    // Cancelled with a reason; the listing and the agent's time follow.
    let cancel = format!("/v1/appointments/{first}/cancel");
    let (status, cancelled) = api
        .call(
            Method::POST,
            &cancel,
            Some(key),
            Some(json!({"reason": "the caller found another house"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["cancel_reason"], "the caller found another house");
    let (_, read) = api.call(Method::GET, &path, Some(key), None).await;
    assert_eq!(read, cancelled);
    let (_, list) = api
        .call(
            Method::GET,
            &format!("/v1/appointments?agent_id={}", w.riley),
            Some(key),
            None,
        )
        .await;
    assert_eq!(list["items"][0]["id"], first.as_str());
    assert_eq!(list["items"][0]["status"], "cancelled");

    // Again: nothing changes, the first reason stays.
    let (status, again) = api
        .call(
            Method::POST,
            &cancel,
            Some(key),
            Some(json!({"reason": "changed my mind"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{again}");
    assert_eq!(again, cancelled);

    // With no body, the default reason.
    let second = &w.booked[1];
    let (status, body) = api
        .send(
            Method::POST,
            &format!("/v1/appointments/{second}/cancel"),
            Some(key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["cancel_reason"], "cancelled through the API");

    // A body that does not fit names its field.
    let third = &w.booked[2];
    let (status, body) = api
        .call(
            Method::POST,
            &format!("/v1/appointments/{third}/cancel"),
            Some(key),
            Some(json!({"why": "x"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(field(&body), "why", "{body}");
    let (status, body) = api
        .call(
            Method::POST,
            &format!("/v1/appointments/{third}/cancel"),
            Some(key),
            Some(json!({"reason": "   "})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(field(&body), "reason", "{body}");
    let (_, read) = api
        .call(
            Method::GET,
            &format!("/v1/appointments/{third}"),
            Some(key),
            None,
        )
        .await;
    assert_eq!(read["status"], "booked");

    // Ids that name nothing.
    for id in ["not-an-id".to_owned(), AppointmentId::new().to_string()] {
        let (status, _) = api
            .call(
                Method::GET,
                &format!("/v1/appointments/{id}"),
                Some(key),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}");
        let (status, _) = api
            .call(
                Method::POST,
                &format!("/v1/appointments/{id}/cancel"),
                Some(key),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{id}");
    }
}

#[tokio::test]
async fn tenants_never_see_or_cancel_each_others_appointments() {
    let w = world().await;
    let api = &w.api;
    let ours = &w.booked[0];

    // Bolt lists only its own, even by Acme's agent's id or lead's id.
    let (ids, _) = page(api, &w.bolt_key, "/v1/appointments").await;
    assert_eq!(ids, [w.theirs.as_str()]);
    let (ids, _) = page(
        api,
        &w.bolt_key,
        &format!("/v1/appointments?agent_id={}", w.sam),
    )
    .await;
    assert!(ids.is_empty(), "{ids:?}");
    let (ids, _) = page(
        api,
        &w.bolt_key,
        &format!("/v1/appointments?lead_id={}", w.ana),
    )
    .await;
    assert!(ids.is_empty(), "{ids:?}");
    // Acme's list by the agent id both share has only Acme's.
    let (ids, _) = page(
        api,
        &w.acme_key,
        &format!("/v1/appointments?agent_id={}", w.riley),
    )
    .await;
    assert!(!ids.contains(&w.theirs), "{ids:?}");

    // Reading or cancelling Acme's with Bolt's key: not found, and nothing changes.
    let (status, _) = api
        .call(
            Method::GET,
            &format!("/v1/appointments/{ours}"),
            Some(&w.bolt_key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, body) = api
        .call(
            Method::POST,
            &format!("/v1/appointments/{ours}/cancel"),
            Some(&w.bolt_key),
            Some(json!({"reason": "not mine"})),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (_, read) = api
        .call(
            Method::GET,
            &format!("/v1/appointments/{ours}"),
            Some(&w.acme_key),
            None,
        )
        .await;
    assert_eq!(read["status"], "booked");

    // The admin reads any tenant's, naming the tenant to list, and cancels none.
    let (status, body) = api
        .call(Method::GET, "/v1/appointments", Some(ADMIN), None)
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(field(&body), "tenant_id");
    let (ids, _) = page(
        api,
        ADMIN,
        &format!("/v1/appointments?tenant_id={}", w.acme),
    )
    .await;
    assert_eq!(ids, w.booked.to_vec());
    let (status, _) = api
        .call(
            Method::GET,
            &format!("/v1/appointments/{ours}"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = api
        .call(
            Method::POST,
            &format!("/v1/appointments/{ours}/cancel"),
            Some(ADMIN),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}
