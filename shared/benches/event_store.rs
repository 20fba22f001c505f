//! Benchmark of the embedded (SQLite) event store: appends per second to one stream and
//! to many streams, and the time to rebuild a 10,000-event stream's state.
//!
//! Run: `cargo bench -p parley-shared --bench event_store` (figures go in the README).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use parley_shared::aggregate::load_any;
use parley_shared::clock::SystemClock;
use parley_shared::domain::LeadId;
use parley_shared::domain::lead::{Lead, LeadEvent, Temperature};
use parley_shared::domain::values::PhoneNumber;
use parley_shared::embedded::{SqliteDb, SqliteEventStore};
use parley_shared::event::{Metadata, NewEvent, StreamId};
use parley_shared::eventstore::{EventStore, ExpectedVersion};

fn meta() -> Metadata {
    Metadata {
        tenant_id: "bench-tenant".into(),
        correlation_id: "bench".into(),
        occurred_at: Utc::now(),
    }
}

fn qualified(i: u64) -> NewEvent {
    let event = LeadEvent::LeadQualified {
        temperature: Temperature::Warm,
        score: (i % 100) as f64 / 100.0,
        evidence: vec![],
    };
    NewEvent::from_domain(&event, meta()).expect("serialises")
}

fn open() -> (SqliteEventStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = SqliteDb::open(&dir.path().join("parley.db"), Arc::new(SystemClock)).expect("open");
    (SqliteEventStore::new(db), dir)
}

fn report(what: &str, count: u64, took: Duration) {
    println!(
        "{what:<52} {count:>7} in {:>8.1} ms  = {:>9.0} /s",
        took.as_secs_f64() * 1000.0,
        count as f64 / took.as_secs_f64()
    );
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    println!(
        "embedded event store (SQLite, WAL) on {} cores",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );

    // One stream, one event per append, each append checking the expected version.
    let (store, _dir) = open();
    let stream = StreamId::new("lead", "one").expect("stream");
    let n = 3_000;
    let start = Instant::now();
    for v in 0..n {
        store
            .append(&stream, ExpectedVersion::Exact(v), vec![qualified(v)], None)
            .await
            .expect("append");
    }
    report(
        "append 1 event to one stream (sequential)",
        n,
        start.elapsed(),
    );

    // Many streams, appended by 8 concurrent writers (the webhook/projector shape).
    let (store, _dir) = open();
    let store = Arc::new(store);
    let writers = 8u64;
    let per_writer = 500u64;
    let start = Instant::now();
    let tasks: Vec<_> = (0..writers)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                for i in 0..per_writer {
                    let stream = StreamId::new("lead", &format!("w{w}-{i}")).expect("stream");
                    store
                        .append(
                            &stream,
                            ExpectedVersion::Exact(0),
                            vec![qualified(i)],
                            Some(&format!("k{w}-{i}")),
                        )
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("writer");
    }
    report(
        "append 1 event to many streams (8 writers, idem key)",
        writers * per_writer,
        start.elapsed(),
    );

    // Batches of 50 to one stream.
    let (store, _dir) = open();
    let lead = LeadId::new();
    let stream = lead.stream();
    let created = LeadEvent::LeadCreated {
        campaign_id: None,
        phone: PhoneNumber::parse("+14155550123").expect("phone"),
        name: Some("Bench".into()),
        time_zone: None,
        fields: Default::default(),
    };
    store
        .append(
            &stream,
            ExpectedVersion::Exact(0),
            vec![NewEvent::from_domain(&created, meta()).expect("event")],
            None,
        )
        .await
        .expect("append");
    let start = Instant::now();
    let mut version = 1;
    while version < 10_000 {
        let batch: Vec<_> = (0..50.min(10_000 - version)).map(qualified).collect();
        let appended = store
            .append(&stream, ExpectedVersion::Exact(version), batch, None)
            .await
            .expect("append");
        version = appended.last_version;
    }
    report(
        "append 50-event batches to one stream (events)",
        version - 1,
        start.elapsed(),
    );

    // Rebuild: read the 10,000 events back, decode and fold them.
    let mut best = Duration::MAX;
    for _ in 0..5 {
        let start = Instant::now();
        let loaded = load_any::<Lead>(&store, &stream).await.expect("load");
        best = best.min(start.elapsed());
        assert_eq!(loaded.version, 10_000);
    }
    println!(
        "{:<52} {:>7} in {:>8.1} ms  (best of 5)",
        "rebuild a 10,000-event stream (read, decode, fold)",
        10_000,
        best.as_secs_f64() * 1000.0
    );
}
