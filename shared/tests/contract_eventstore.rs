//! The event store contract, run against both adapters: SQLite (embedded) and DynamoDB
//! (through the AWS SDK against a moto server).

mod common;

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use common::event;
use parley_shared::StoreError;
use parley_shared::event::{MAX_EVENT_BYTES, MAX_EVENTS_PER_APPEND, StreamId};
use parley_shared::eventstore::{Appended, EventStore, ExpectedVersion};
use serde_json::json;

fn stream(name: &str) -> StreamId {
    StreamId::new("test", &format!("{name}-{}", uuid::Uuid::new_v4())).unwrap()
}

async fn appends_and_reads_back(store: Arc<dyn EventStore>) {
    let s = stream("read");
    let events: Vec<_> = (1..=3).map(|n| event("tenant-a", n, "read")).collect();
    let appended = store
        .append(&s, ExpectedVersion::Exact(0), events.clone(), None)
        .await
        .unwrap();
    assert_eq!(
        appended,
        Appended {
            first_version: 1,
            last_version: 3,
            duplicate: false
        }
    );
    let read = store.read_stream(&s, 1).await.unwrap();
    assert_eq!(read.len(), 3);
    for (i, (stored, sent)) in read.iter().zip(&events).enumerate() {
        assert_eq!(stored.stream, s);
        assert_eq!(stored.version, i as u64 + 1);
        assert_eq!(stored.event_type, sent.event_type);
        assert_eq!(stored.schema_version, sent.schema_version);
        assert_eq!(
            stored.meta, sent.meta,
            "tenant, correlation id and time survive"
        );
        assert_eq!(stored.data, sent.data);
    }
    let tail = store.read_stream(&s, 2).await.unwrap();
    assert_eq!(
        tail.iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![2, 3]
    );
    assert!(
        store
            .read_stream(&stream("none"), 1)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn refuses_a_stale_expected_version(store: Arc<dyn EventStore>) {
    let s = stream("conflict");
    store
        .append(
            &s,
            ExpectedVersion::Exact(0),
            vec![event("t", 1, "a")],
            None,
        )
        .await
        .unwrap();
    for expected in [0, 2, 7] {
        match store
            .append(
                &s,
                ExpectedVersion::Exact(expected),
                vec![event("t", 2, "b")],
                None,
            )
            .await
        {
            Err(StoreError::Conflict {
                expected: e,
                actual,
                what,
            }) => {
                assert_eq!((e, actual), (expected, 1));
                assert!(what.contains(s.as_str()), "{what}");
            }
            other => panic!("expected {expected}: {other:?}"),
        }
    }
    let any = store
        .append(&s, ExpectedVersion::Any, vec![event("t", 3, "c")], None)
        .await
        .unwrap();
    assert_eq!(any.first_version, 2);
    let versions: Vec<_> = store
        .read_stream(&s, 1)
        .await
        .unwrap()
        .iter()
        .map(|e| e.data["n"].clone())
        .collect();
    assert_eq!(
        versions,
        vec![json!(1), json!(3)],
        "refused appends wrote nothing"
    );
}

/// Many writers on one stream: each version is won by exactly one, and every writer's
/// events end up stored exactly once after it retries its conflicts.
async fn concurrent_writers_never_lose_or_duplicate(store: Arc<dyn EventStore>) {
    let s = stream("race");
    const WRITERS: u64 = 12;
    const EACH: u64 = 8;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = store.clone();
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let mut conflicts = 0;
            for i in 0..EACH {
                loop {
                    let version = store.read_stream(&s, 1).await.unwrap().len() as u64;
                    let e = event("t", w * 100 + i, &format!("w{w}"));
                    match store
                        .append(&s, ExpectedVersion::Exact(version), vec![e], None)
                        .await
                    {
                        Ok(a) => {
                            assert_eq!(a.first_version, version + 1);
                            break;
                        }
                        Err(StoreError::Conflict { .. }) => conflicts += 1,
                        Err(other) => panic!("{other}"),
                    }
                }
            }
            conflicts
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let read = store.read_stream(&s, 1).await.unwrap();
    assert_eq!(read.len() as u64, WRITERS * EACH);
    assert!(
        read.iter()
            .enumerate()
            .all(|(i, e)| e.version == i as u64 + 1)
    );
    let ns: HashSet<_> = read.iter().map(|e| e.data["n"].as_u64().unwrap()).collect();
    assert_eq!(
        ns.len() as u64,
        WRITERS * EACH,
        "no event duplicated or lost"
    );
    // Each writer's own events keep its order.
    let mut last = BTreeMap::new();
    for e in &read {
        let n = e.data["n"].as_u64().unwrap();
        if let Some(prev) = last.insert(n / 100, n) {
            assert!(prev < n);
        }
    }

    // All racing for the first version at once: exactly one wins.
    let fresh = stream("first");
    let mut tasks = Vec::new();
    for w in 0..10 {
        let store = store.clone();
        let fresh = fresh.clone();
        tasks.push(tokio::spawn(async move {
            store
                .append(
                    &fresh,
                    ExpectedVersion::Exact(0),
                    vec![event("t", w, "first")],
                    None,
                )
                .await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(StoreError::Conflict { actual: 1, .. }) => {}
            Err(other) => panic!("{other}"),
        }
    }
    assert_eq!(wins, 1);
    assert_eq!(store.read_stream(&fresh, 1).await.unwrap().len(), 1);
}

async fn replays_of_an_idempotency_key_change_nothing(store: Arc<dyn EventStore>) {
    let s = stream("idem");
    let key = format!("twilio-status:{}:3", uuid::Uuid::new_v4());
    let first = store
        .append(
            &s,
            ExpectedVersion::Exact(0),
            vec![event("t", 1, "a"), event("t", 2, "a")],
            Some(&key),
        )
        .await
        .unwrap();
    assert!(!first.duplicate);
    // The same delivery again, even with a stale expected version or other events.
    for expected in [
        ExpectedVersion::Exact(0),
        ExpectedVersion::Exact(2),
        ExpectedVersion::Any,
    ] {
        let again = store
            .append(&s, expected, vec![event("t", 9, "b")], Some(&key))
            .await
            .unwrap();
        assert_eq!(
            again,
            Appended {
                first_version: 1,
                last_version: 2,
                duplicate: true
            }
        );
    }
    // Keys are global: used on another stream it still answers with the first result.
    let other = stream("idem-other");
    let elsewhere = store
        .append(
            &other,
            ExpectedVersion::Exact(0),
            vec![event("t", 9, "c")],
            Some(&key),
        )
        .await
        .unwrap();
    assert!(elsewhere.duplicate);
    assert!(store.read_stream(&other, 1).await.unwrap().is_empty());
    assert_eq!(store.read_stream(&s, 1).await.unwrap().len(), 2);

    // Racing duplicates (a webhook delivered twice at once): one write.
    let raced = stream("idem-race");
    let key = format!("sqs:{}", uuid::Uuid::new_v4());
    let mut tasks = Vec::new();
    for w in 0..8 {
        let (store, raced, key) = (store.clone(), raced.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                match store
                    .append(
                        &raced,
                        ExpectedVersion::Any,
                        vec![event("t", w, "race")],
                        Some(&key),
                    )
                    .await
                {
                    Err(StoreError::Conflict { .. }) => continue,
                    other => return other.unwrap(),
                }
            }
        }));
    }
    let mut originals = 0;
    for t in tasks {
        let a = t.await.unwrap();
        assert_eq!((a.first_version, a.last_version), (1, 1));
        originals += usize::from(!a.duplicate);
    }
    assert_eq!(originals, 1);
    assert_eq!(store.read_stream(&raced, 1).await.unwrap().len(), 1);
}

/// A projection's view: everything in order, page by page, then only what is new.
async fn reads_everything_in_order_for_projections(store: Arc<dyn EventStore>) {
    let streams: Vec<_> = (0..4).map(|i| stream(&format!("all{i}"))).collect();
    for round in 0..3u64 {
        for (i, s) in streams.iter().enumerate() {
            store
                .append(
                    s,
                    ExpectedVersion::Any,
                    vec![event("t", round * 10 + i as u64, "all")],
                    None,
                )
                .await
                .unwrap();
        }
    }
    let mine: HashSet<_> = streams.iter().cloned().collect();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.read_all(after.as_ref(), 5).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert!(page.len() <= 5);
        after = Some(page.last().unwrap().position.clone());
        seen.extend(page.into_iter().filter(|e| mine.contains(&e.stream)));
    }
    assert_eq!(seen.len(), 12);
    for s in &streams {
        let versions: Vec<_> = seen
            .iter()
            .filter(|e| &e.stream == s)
            .map(|e| e.version)
            .collect();
        assert_eq!(versions, vec![1, 2, 3], "{s} in its own order");
    }
    // Caught up: only later appends come after the last position.
    let later = store
        .append(
            &streams[0],
            ExpectedVersion::Exact(3),
            vec![event("t", 99, "later")],
            None,
        )
        .await
        .unwrap();
    let next = store.read_all(after.as_ref(), 100).await.unwrap();
    let next: Vec<_> = next.iter().filter(|e| mine.contains(&e.stream)).collect();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].version, later.last_version);
    assert_eq!(next[0].data["n"], 99);
}

async fn refuses_bad_appends_and_writes_nothing(store: Arc<dyn EventStore>) {
    let s = stream("bad");
    let field = |r: Result<Appended, StoreError>| match r {
        Err(StoreError::Invalid { field, .. }) => field,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        field(store.append(&s, ExpectedVersion::Any, vec![], None).await),
        "events"
    );
    let many = (0..=MAX_EVENTS_PER_APPEND as u64)
        .map(|n| event("t", n, "x"))
        .collect();
    assert_eq!(
        field(store.append(&s, ExpectedVersion::Any, many, None).await),
        "events"
    );
    let mut huge = event("t", 1, "x");
    huge.data["blob"] = json!("x".repeat(MAX_EVENT_BYTES));
    assert_eq!(
        field(
            store
                .append(&s, ExpectedVersion::Any, vec![huge], None)
                .await
        ),
        "data"
    );
    let mut no_tenant = event("", 1, "x");
    no_tenant.meta.tenant_id.clear();
    assert_eq!(
        field(
            store
                .append(&s, ExpectedVersion::Any, vec![no_tenant], None)
                .await
        ),
        "tenant_id"
    );
    let heavy = (0..13)
        .map(|n| {
            let mut e = event("t", n, "x");
            e.data["blob"] = json!("x".repeat(250 * 1024));
            e
        })
        .collect();
    assert_eq!(
        field(store.append(&s, ExpectedVersion::Any, heavy, None).await),
        "events"
    );
    // The largest batch that is allowed goes in whole.
    let max = (0..MAX_EVENTS_PER_APPEND as u64)
        .map(|n| event("t", n, "x"))
        .collect();
    let a = store
        .append(&s, ExpectedVersion::Exact(0), max, None)
        .await
        .unwrap();
    assert_eq!(a.last_version, MAX_EVENTS_PER_APPEND as u64);
    assert_eq!(
        store.read_stream(&s, 1).await.unwrap().len(),
        MAX_EVENTS_PER_APPEND
    );
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let (store, _dir) = crate::common::embedded::event_store().await;
                    super::$name(std::sync::Arc::new(store)).await;
                }
            )*
        }
        mod dynamodb {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let store = crate::common::moto::event_store().await;
                    super::$name(std::sync::Arc::new(store)).await;
                }
            )*
        }
    };
}

contract!(
    appends_and_reads_back,
    refuses_a_stale_expected_version,
    concurrent_writers_never_lose_or_duplicate,
    replays_of_an_idempotency_key_change_nothing,
    reads_everything_in_order_for_projections,
    refuses_bad_appends_and_writes_nothing,
);
