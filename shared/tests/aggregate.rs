//! Commands run against real streams (on the embedded store): tenants kept apart,
//! idempotent redeliveries, racing commands re-decided, and readers that meet events
//! they do not know.

use std::sync::Arc;

use chrono::Utc;
use parley_shared::StoreError;
use parley_shared::aggregate::{Aggregate, CommandError, Context, Executed, execute, load};
use parley_shared::clock::SystemClock;
use parley_shared::domain::call::{Call, CallCommand, CallStatus, Carrier, Direction};
use parley_shared::domain::campaign::{Campaign, CampaignCommand, CampaignError, CampaignStatus};
use parley_shared::domain::{AgentId, CallId, CampaignId, PhoneNumber};
use parley_shared::embedded::{SqliteDb, SqliteEventStore};
use parley_shared::event::{Metadata, NewEvent, StreamId};
use parley_shared::eventstore::{EventStore, ExpectedVersion};
use serde_json::json;

fn store() -> (Arc<SqliteEventStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let db = SqliteDb::open(&dir.path().join("parley.db"), Arc::new(SystemClock)).unwrap();
    (Arc::new(SqliteEventStore::new(db)), dir)
}

fn ctx(tenant: &str, key: Option<&str>) -> Context {
    Context {
        tenant_id: tenant.into(),
        correlation_id: "corr-1".into(),
        idempotency_key: key.map(str::to_owned),
    }
}

/// Runs `command` as `tenant`, optionally under an idempotency key.
async fn run<A: Aggregate>(
    store: &SqliteEventStore,
    stream: &StreamId,
    tenant: &str,
    key: Option<&str>,
    command: A::Command,
) -> Result<Executed<A>, CommandError<A::Error>> {
    execute::<A>(store, &SystemClock, stream, &ctx(tenant, key), command).await
}

/// A new campaign of tenant `t1`, with no leads.
async fn campaign(store: &SqliteEventStore) -> StreamId {
    let s = CampaignId::new().stream();
    let settings = serde_json::from_value(serde_json::json!({
        "name": "Spring",
        "agent_id": AgentId::new(),
        "time_zone": "Europe/Paris",
    }))
    .unwrap();
    let create = CampaignCommand::Create { settings };
    run::<Campaign>(store, &s, "t1", None, create)
        .await
        .unwrap();
    s
}

fn request() -> CallCommand {
    CallCommand::Request {
        direction: Direction::Outbound,
        carrier: Carrier::Twilio,
        from: PhoneNumber::parse("+14155550100").unwrap(),
        to: PhoneNumber::parse("+14155550123").unwrap(),
        agent_id: AgentId::new(),
        lead_id: None,
        campaign_id: None,
        attempt: 1,
    }
}

fn status(status: CallStatus) -> CallCommand {
    CallCommand::RecordStatus {
        status,
        duration_secs: None,
        carrier_time: None,
    }
}

#[tokio::test]
async fn every_event_carries_tenant_time_and_correlation() {
    let (store, _dir) = store();
    let call = CallId::new();
    let before = Utc::now();
    run::<Call>(&store, &call.stream(), "t1", None, request())
        .await
        .unwrap();
    let recorded = store.read_stream(&call.stream(), 1).await.unwrap();
    assert_eq!(recorded.len(), 1);
    assert_eq!(recorded[0].meta.tenant_id, "t1");
    assert_eq!(recorded[0].meta.correlation_id, "corr-1");
    assert!(recorded[0].meta.occurred_at >= before - chrono::Duration::milliseconds(1));
    assert_eq!(recorded[0].event_type, "call_requested");
    assert_eq!(recorded[0].schema_version, 1);
}

#[tokio::test]
async fn another_tenant_finds_nothing() {
    let (store, _dir) = store();
    let call = CallId::new();
    run::<Call>(&store, &call.stream(), "t1", None, request())
        .await
        .unwrap();
    let err = run::<Call>(
        &store,
        &call.stream(),
        "t2",
        None,
        status(CallStatus::Ringing),
    )
    .await
    .unwrap_err();
    assert!(matches!(err, CommandError::NotFound { .. }), "{err:?}");
    assert!(matches!(
        load::<Call>(&*store, &call.stream(), "t2").await,
        Err(CommandError::NotFound { .. })
    ));
    assert_eq!(
        store.read_stream(&call.stream(), 1).await.unwrap().len(),
        1,
        "t2 wrote nothing"
    );
}

#[tokio::test]
async fn duplicate_and_late_callbacks_change_nothing() {
    let (store, _dir) = store();
    let call = CallId::new();
    let s = call.stream();
    run::<Call>(&store, &s, "t1", None, request())
        .await
        .unwrap();
    let completed = run::<Call>(
        &store,
        &s,
        "t1",
        Some("CA1:4"),
        status(CallStatus::Completed),
    )
    .await
    .unwrap();
    assert_eq!(completed.version, 2);
    // The same callback redelivered, then a late "ringing".
    let again = run::<Call>(
        &store,
        &s,
        "t1",
        Some("CA1:4"),
        status(CallStatus::Completed),
    )
    .await
    .unwrap();
    assert!(again.events.is_empty());
    let late = run::<Call>(&store, &s, "t1", Some("CA1:2"), status(CallStatus::Ringing))
        .await
        .unwrap();
    assert!(late.events.is_empty());
    assert_eq!(late.state.status, Some(CallStatus::Completed));
    assert_eq!(store.read_stream(&s, 1).await.unwrap().len(), 2);
}

/// Commands racing on one campaign are each decided on the state they finally see.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_commands_are_re_decided_not_lost() {
    let (store, _dir) = store();
    let s = campaign(&store).await;
    let tasks: Vec<_> = (0..10)
        .map(|_| {
            let (store, s) = (store.clone(), s.clone());
            tokio::spawn(async move {
                run::<Campaign>(
                    &store,
                    &s,
                    "t1",
                    None,
                    CampaignCommand::AddLeads { count: 5 },
                )
                .await
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let loaded = load::<Campaign>(&*store, &s, "t1").await.unwrap();
    assert_eq!(loaded.state.lead_count, 50);
    assert_eq!(loaded.version, 11);
    let started = run::<Campaign>(&store, &s, "t1", None, CampaignCommand::Start)
        .await
        .unwrap();
    assert_eq!(started.state.status, CampaignStatus::Running);
}

#[tokio::test]
async fn rules_reject_with_the_domain_error() {
    let (store, _dir) = store();
    let s = campaign(&store).await;
    let err = run::<Campaign>(&store, &s, "t1", None, CampaignCommand::Start)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CommandError::Rejected(CampaignError::NoLeads)),
        "{err:?}"
    );
}

/// A newer Parley wrote an event type this build does not know, and one from a future
/// schema: the stream still loads, with those skipped.
#[tokio::test]
async fn unknown_events_are_skipped_not_fatal() {
    let (store, _dir) = store();
    let call = CallId::new();
    let s = call.stream();
    run::<Call>(&store, &s, "t1", None, request())
        .await
        .unwrap();
    let meta = Metadata {
        tenant_id: "t1".into(),
        correlation_id: "corr-1".into(),
        occurred_at: Utc::now(),
    };
    let foreign = NewEvent {
        event_type: "call_sentiment_scored".into(),
        schema_version: 1,
        meta: meta.clone(),
        data: json!({"type": "call_sentiment_scored", "score": 0.9}),
    };
    let future = NewEvent {
        event_type: "call_status_changed".into(),
        schema_version: 9,
        meta,
        data: json!({"type": "call_status_changed", "status": {"v9": "shape"}}),
    };
    store
        .append(&s, ExpectedVersion::Exact(1), vec![foreign, future], None)
        .await
        .unwrap();
    let ringing = run::<Call>(&store, &s, "t1", None, status(CallStatus::Ringing))
        .await
        .unwrap();
    assert_eq!(ringing.version, 4);
    assert_eq!(ringing.state.status, Some(CallStatus::Ringing));
}

/// A known event type whose body is wrong is corruption: it names the stream and
/// version and is not silently skipped.
#[tokio::test]
async fn a_known_event_that_does_not_decode_is_an_error_naming_it() {
    let (store, _dir) = store();
    let call = CallId::new();
    let s = call.stream();
    run::<Call>(&store, &s, "t1", None, request())
        .await
        .unwrap();
    let broken = NewEvent {
        event_type: "call_status_changed".into(),
        schema_version: 1,
        meta: Metadata {
            tenant_id: "t1".into(),
            correlation_id: "c".into(),
            occurred_at: Utc::now(),
        },
        data: json!({"type": "call_status_changed", "status": "teleported"}),
    };
    store
        .append(&s, ExpectedVersion::Exact(1), vec![broken], None)
        .await
        .unwrap();
    match load::<Call>(&*store, &s, "t1").await {
        Err(CommandError::Store(StoreError::Corrupt { what, detail })) => {
            assert!(
                what.contains(s.as_str()) && what.contains("version 2"),
                "{what}"
            );
            assert!(detail.contains("call_status_changed"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        store.read_stream(&s, 1).await.unwrap().len(),
        2,
        "nothing rewritten"
    );
}
