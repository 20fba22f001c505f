//! The appointment read model (`appointmentviews`): one view per appointment, kept at
//! its stream's version through booking, moving and cancelling, found by the tenant's
//! and the agent's indexes over a range of start times. On the embedded store; the
//! indexes' queries behave alike on DynamoDB by the read-model contract suite.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use parley_shared::aggregate::{CommandError, Context};
use parley_shared::appointmentviews::{
    APPOINTMENTS, AppointmentBody, AppointmentStatus, agent_partition, all_in, appointment_view,
    load_appointment, refresh_appointment, run_appointment, sort_value, starting_query,
    tenant_partition,
};
use parley_shared::backend::Ports;
use parley_shared::clock::ManualClock;
use parley_shared::domain::appointment::{AppointmentCommand, AppointmentError, MeetingKind};
use parley_shared::domain::{AgentId, AppointmentId, CallId, LeadId, TenantId};
use parley_shared::embedded::Embedded;
use parley_shared::readmodel::{IndexEntry, project};
use serde_json::json;

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

struct Store {
    ports: Ports,
    clock: ManualClock,
    _dir: tempfile::TempDir,
}

fn store() -> Store {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at("2031-01-17T21:20:00Z"));
    let embedded = Embedded::open(
        dir.path(),
        Arc::new(clock.clone()),
        "http://127.0.0.1:1".into(),
        5,
    )
    .unwrap();
    Store {
        ports: Ports::embedded(embedded),
        clock,
        _dir: dir,
    }
}

fn ctx(tenant: &TenantId) -> Context {
    Context {
        tenant_id: tenant.to_string(),
        correlation_id: "test".into(),
        idempotency_key: None,
    }
}

fn book(
    lead: &LeadId,
    agent: Option<&AgentId>,
    starts_at: &str,
    minutes: u32,
) -> AppointmentCommand {
    AppointmentCommand::Book {
        lead_id: lead.clone(),
        call_id: None,
        agent_id: agent.cloned(),
        title: "Viewing at 12 Elm St".into(),
        starts_at: at(starts_at),
        duration_minutes: minutes,
        kind: MeetingKind::Video,
    }
}

async fn body(store: &Store, id: &AppointmentId) -> serde_json::Value {
    store
        .ports
        .views
        .get(APPOINTMENTS, &id.to_string())
        .await
        .unwrap()
        .expect("the view is written")
        .body
}

#[tokio::test]
async fn the_view_follows_booking_moving_and_cancelling_at_the_streams_version() {
    let store = store();
    let tenant = TenantId::new();
    let (lead, agent, call) = (LeadId::new(), AgentId::new(), CallId::new());
    let id = AppointmentId::new();
    let mut command = book(&lead, Some(&agent), "2031-01-20T14:00:00Z", 45);
    if let AppointmentCommand::Book { call_id, .. } = &mut command {
        *call_id = Some(call.clone());
    }
    let booked = run_appointment(&store.ports, &ctx(&tenant), &id, command)
        .await
        .unwrap();
    assert_eq!(booked.version, 1);

    let view = store
        .ports
        .views
        .get(APPOINTMENTS, &id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        view.body,
        json!({
            "id": id,
            "tenant_id": tenant,
            "lead_id": lead,
            "call_id": call,
            "agent_id": agent,
            "title": "Viewing at 12 Elm St",
            "starts_at": "2031-01-20T14:00:00Z",
            "ends_at": "2031-01-20T14:45:00Z",
            "duration_minutes": 45,
            "kind": "video",
            "status": "booked",
            "cancel_reason": null,
            "reschedules": 0,
            "booked_at": "2031-01-17T21:20:00.000000Z",
            "updated_at": "2031-01-17T21:20:00.000000Z",
            "stream_version": 1,
        })
    );
    let sort = format!("2031-01-20T14:00:00.000000Z#{id}");
    assert_eq!(sort_value(at("2031-01-20T14:00:00Z"), &id), sort);
    assert_eq!(
        view.index1,
        Some(IndexEntry::new(
            format!("appointments#{tenant}"),
            sort.clone()
        ))
    );
    assert_eq!(
        view.index2,
        Some(IndexEntry::new(
            format!("appointments#{tenant}#agent#{agent}"),
            sort
        ))
    );

    // Moved a day on: the start, the end, the count of moves and both sort values.
    store.clock.advance(Duration::hours(1));
    let moved = run_appointment(
        &store.ports,
        &ctx(&tenant),
        &id,
        AppointmentCommand::Reschedule {
            starts_at: at("2031-01-21T15:30:00Z"),
        },
    )
    .await
    .unwrap();
    assert_eq!(moved.version, 2);
    let now = body(&store, &id).await;
    assert_eq!(
        (
            &now["starts_at"],
            &now["ends_at"],
            &now["reschedules"],
            &now["stream_version"]
        ),
        (
            &json!("2031-01-21T15:30:00Z"),
            &json!("2031-01-21T16:15:00Z"),
            &json!(1),
            &json!(2)
        )
    );
    assert_eq!(now["booked_at"], "2031-01-17T21:20:00.000000Z");
    assert_eq!(now["updated_at"], "2031-01-17T22:20:00.000000Z");
    let view = store
        .ports
        .views
        .get(APPOINTMENTS, &id.to_string())
        .await
        .unwrap()
        .unwrap();
    let sort = format!("2031-01-21T15:30:00.000000Z#{id}");
    assert_eq!(view.index1.unwrap().sort, sort);
    assert_eq!(view.index2.unwrap().sort, sort);

    // Cancelled: the time is free, the view says why; cancelling again changes nothing.
    let cancel = AppointmentCommand::Cancel {
        reason: "the caller found another house".into(),
    };
    let cancelled = run_appointment(&store.ports, &ctx(&tenant), &id, cancel.clone())
        .await
        .unwrap();
    assert_eq!(cancelled.version, 3);
    let again = run_appointment(&store.ports, &ctx(&tenant), &id, cancel)
        .await
        .unwrap();
    assert_eq!(again.version, 3);
    let now = body(&store, &id).await;
    assert_eq!(now["status"], "cancelled");
    assert_eq!(now["cancel_reason"], "the caller found another house");
    assert_eq!(now["stream_version"], 3);
    let decoded: AppointmentBody = serde_json::from_value(now).unwrap();
    assert_eq!(decoded.status, AppointmentStatus::Cancelled);
    assert!(!decoded.is_live());
    // A cancelled appointment keeps its place in both indexes, with its status.
    let view = store
        .ports
        .views
        .get(APPOINTMENTS, &id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert!(view.index1.is_some() && view.index2.is_some());
}

#[tokio::test]
async fn an_older_projection_never_replaces_a_newer_one_and_a_view_rebuilds_from_its_stream() {
    let store = store();
    let tenant = TenantId::new();
    let id = AppointmentId::new();
    let lead = LeadId::new();
    run_appointment(
        &store.ports,
        &ctx(&tenant),
        &id,
        book(&lead, None, "2031-01-20T14:00:00Z", 30),
    )
    .await
    .unwrap();
    let first = load_appointment(&*store.ports.events, &id)
        .await
        .unwrap()
        .unwrap();
    run_appointment(
        &store.ports,
        &ctx(&tenant),
        &id,
        AppointmentCommand::Cancel {
            reason: "no longer needed".into(),
        },
    )
    .await
    .unwrap();

    // A late writer with the booking's state: the cancelled view stands.
    let stale = appointment_view(&id, &first).unwrap();
    project(&*store.ports.views, stale, first.version)
        .await
        .unwrap();
    assert_eq!(body(&store, &id).await["status"], "cancelled");

    // Lost views come back from the stream.
    store
        .ports
        .views
        .delete(APPOINTMENTS, &id.to_string())
        .await
        .unwrap();
    let loaded = refresh_appointment(&*store.ports.events, &*store.ports.views, &id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(loaded.version, 2);
    let now = body(&store, &id).await;
    assert_eq!(
        (&now["status"], &now["stream_version"]),
        (&json!("cancelled"), &json!(2))
    );
    // An appointment with no agent is on the tenant's index only.
    let view = store
        .ports
        .views
        .get(APPOINTMENTS, &id.to_string())
        .await
        .unwrap()
        .unwrap();
    assert!(view.index2.is_none());
    assert_eq!(now["agent_id"], json!(null));

    // Nothing to rebuild for a stream that does not exist.
    let missing = AppointmentId::new();
    assert!(
        refresh_appointment(&*store.ports.events, &*store.ports.views, &missing)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn the_indexes_find_a_range_of_start_times_per_tenant_and_per_agent() {
    let store = store();
    let (acme, bolt) = (TenantId::new(), TenantId::new());
    let (riley, sam) = (AgentId::new(), AgentId::new());
    let lead = LeadId::new();
    let mut ids = Vec::new();
    for (tenant, agent, starts_at) in [
        (&acme, &riley, "2031-01-20T14:00:00Z"),
        (&acme, &riley, "2031-01-20T15:00:00Z"),
        (&acme, &sam, "2031-01-20T15:00:00Z"),
        (&acme, &riley, "2031-01-22T09:00:00Z"),
        (&bolt, &riley, "2031-01-20T15:00:00Z"),
    ] {
        let id = AppointmentId::new();
        run_appointment(
            &store.ports,
            &ctx(tenant),
            &id,
            book(&lead, Some(agent), starts_at, 60),
        )
        .await
        .unwrap();
        ids.push(id);
    }
    let found = |tenant: TenantId, agent: Option<AgentId>, from: &str, to: Option<&str>| {
        let views = store.ports.views.clone();
        let query = starting_query(&tenant, agent.as_ref(), at(from), to.map(at));
        async move {
            all_in(&*views, query, 5)
                .await
                .unwrap()
                .into_iter()
                .map(|a| a.id)
                .collect::<Vec<_>>()
        }
    };

    // The tenant's, in start order; both ends of the range included.
    assert_eq!(
        found(acme.clone(), None, "2031-01-20T14:00:00Z", None).await,
        [&ids[0], &ids[1], &ids[2], &ids[3]].map(Clone::clone)
    );
    let mut same_time = vec![ids[1].clone(), ids[2].clone()];
    same_time.sort_by_key(|id| id.to_string());
    let mut monday = vec![ids[0].clone()];
    monday.extend(same_time);
    assert_eq!(
        found(
            acme.clone(),
            None,
            "2031-01-20T14:00:00Z",
            Some("2031-01-20T15:00:00Z")
        )
        .await,
        monday
    );
    assert_eq!(
        found(acme.clone(), None, "2031-01-20T14:00:01Z", None).await,
        found(acme.clone(), None, "2031-01-20T15:00:00Z", None).await
    );
    // One agent's, and only within the tenant.
    assert_eq!(
        found(
            acme.clone(),
            Some(riley.clone()),
            "2031-01-01T00:00:00Z",
            None
        )
        .await,
        [&ids[0], &ids[1], &ids[3]].map(Clone::clone)
    );
    assert_eq!(
        found(
            acme.clone(),
            Some(sam.clone()),
            "2031-01-01T00:00:00Z",
            None
        )
        .await,
        [ids[2].clone()]
    );
    assert_eq!(
        found(bolt.clone(), None, "2031-01-01T00:00:00Z", None).await,
        [ids[4].clone()]
    );
    assert_eq!(
        found(
            bolt.clone(),
            Some(riley.clone()),
            "2031-01-01T00:00:00Z",
            None
        )
        .await,
        [ids[4].clone()]
    );
    assert_eq!(tenant_partition(&acme), format!("appointments#{acme}"));
    assert_eq!(
        agent_partition(&acme, &sam),
        format!("appointments#{acme}#agent#{sam}")
    );

    // Overlap is by time taken: an end is free for the next meeting.
    let first: AppointmentBody = serde_json::from_value(body(&store, &ids[0]).await).unwrap();
    assert!(first.is_live());
    assert!(first.overlaps(at("2031-01-20T14:59:00Z"), at("2031-01-20T15:30:00Z")));
    assert!(first.overlaps(at("2031-01-20T13:30:00Z"), at("2031-01-20T14:01:00Z")));
    assert!(!first.overlaps(at("2031-01-20T15:00:00Z"), at("2031-01-20T15:30:00Z")));
    assert!(!first.overlaps(at("2031-01-20T13:00:00Z"), at("2031-01-20T14:00:00Z")));
}

#[tokio::test]
async fn another_tenants_appointment_cannot_be_changed() {
    let store = store();
    let (acme, bolt) = (TenantId::new(), TenantId::new());
    let id = AppointmentId::new();
    run_appointment(
        &store.ports,
        &ctx(&acme),
        &id,
        book(&LeadId::new(), None, "2031-01-20T14:00:00Z", 30),
    )
    .await
    .unwrap();
    let theirs = run_appointment(
        &store.ports,
        &ctx(&bolt),
        &id,
        AppointmentCommand::Cancel {
            reason: "not mine".into(),
        },
    )
    .await;
    assert!(
        matches!(theirs, Err(CommandError::NotFound { .. })),
        "{theirs:?}"
    );
    assert_eq!(body(&store, &id).await["status"], "booked");
    // The domain's own rules come through as they are.
    let past = run_appointment(
        &store.ports,
        &ctx(&acme),
        &AppointmentId::new(),
        book(&LeadId::new(), None, "2031-01-17T20:00:00Z", 30),
    )
    .await;
    assert!(
        matches!(
            past,
            Err(CommandError::Rejected(AppointmentError::InThePast(_)))
        ),
        "{past:?}"
    );
}
