//! What the cross-adapter contract suites cannot see in the AWS adapters: how SDK
//! failures map to `StoreError` (throttling after the SDK's retries, missing resources,
//! server errors), how DynamoDB's transaction cancellation reasons become conflicts or
//! idempotent replays, the per-stream order of global positions, and S3's conditional
//! writes, multipart uploads and presigned URLs.
//!
//! Most tests run against moto (see `common::moto`). The failure tests run against a
//! tiny HTTP/1.1 server on 127.0.0.1 that answers with AWS's documented JSON error
//! format, since moto cannot be made to throttle.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use aws_config::{Region, SdkConfig};
use aws_sdk_dynamodb::config::Credentials;
use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;
use chrono::{SubsecRound, Utc};
use parley_shared::StoreError;
use parley_shared::aws::{DynamoEventStore, S3BlobStore, SqsQueue, config_loader, retry_config};
use parley_shared::blob::BlobStore;
use parley_shared::event::{Metadata, NewEvent, StreamId};
use parley_shared::eventstore::{Appended, EventStore, ExpectedVersion};
use parley_shared::queue::Queue;
use parley_shared::readmodel::{Index, IndexEntry, Query, View, ViewStore};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use common::moto;

// ---------------------------------------------------------------------------------
// Helpers

fn event(n: u64) -> NewEvent {
    NewEvent {
        event_type: "test_happened".into(),
        schema_version: 1,
        meta: Metadata {
            tenant_id: "tenant-1".into(),
            correlation_id: "corr-1".into(),
            occurred_at: Utc::now().trunc_subsecs(6),
        },
        data: json!({ "type": "test_happened", "n": n }),
    }
}

fn new_stream() -> StreamId {
    StreamId::new("test", &uuid::Uuid::new_v4().to_string()).unwrap()
}

fn appended(first_version: u64, last_version: u64, duplicate: bool) -> Appended {
    Appended {
        first_version,
        last_version,
        duplicate,
    }
}

type Respond = Arc<dyn Fn(usize) -> (u16, String) + Send + Sync>;

/// A stand-in AWS endpoint: answers the n-th request (from 1) with `respond(n)` as an
/// `application/x-amz-json-1.0` response, keeping connections alive like AWS does.
struct FakeAws {
    url: String,
    requests: Arc<AtomicUsize>,
}

impl FakeAws {
    async fn start(respond: impl Fn(usize) -> (u16, String) + Send + Sync + 'static) -> FakeAws {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        let respond: Respond = Arc::new(respond);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(serve(socket, counter.clone(), respond.clone()));
            }
        });
        FakeAws { url, requests }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// Parley's SDK configuration pointed at this server, with the same number of
    /// attempts but millisecond back-offs so the test does not sleep for seconds.
    async fn sdk_config(&self) -> SdkConfig {
        config_loader()
            .endpoint_url(&self.url)
            .region(Region::new("us-east-1"))
            .credentials_provider(Credentials::new("testing", "testing", None, None, "fake"))
            .retry_config(
                retry_config()
                    .with_initial_backoff(Duration::from_millis(1))
                    .with_max_backoff(Duration::from_millis(20)),
            )
            .load()
            .await
    }
}

async fn serve(mut socket: TcpStream, counter: Arc<AtomicUsize>, respond: Respond) {
    let mut buf = Vec::new();
    loop {
        // The request head, then as many body bytes as Content-Length says.
        let head_end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if !read_more(&mut socket, &mut buf).await {
                return;
            }
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
        let length: usize = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        while buf.len() < head_end + length {
            if !read_more(&mut socket, &mut buf).await {
                return;
            }
        }
        buf.drain(..head_end + length);
        let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
        let (status, body) = respond(n);
        let reason = match status {
            200 => "OK",
            400 => "Bad Request",
            500 => "Internal Server Error",
            503 => "Service Unavailable",
            _ => "Whatever",
        };
        let response = format!(
            "HTTP/1.1 {status} {reason}\r\nContent-Type: application/x-amz-json-1.0\r\n\
             Content-Length: {}\r\nx-amzn-RequestId: fake-{n}\r\n\r\n{body}",
            body.len()
        );
        if socket.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn read_more(socket: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8192];
    match socket.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(&chunk[..n]);
            true
        }
    }
}

const THROTTLED: &str = r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"Rate of requests exceeds the allowed throughput."}"#;

/// Throttles the first `n` requests, then accepts (an empty JSON object is a complete
/// TransactWriteItems response).
fn throttle_first(n: usize) -> impl Fn(usize) -> (u16, String) + Send + Sync + 'static {
    move |i| {
        if i <= n {
            (400, THROTTLED.to_owned())
        } else {
            (200, "{}".to_owned())
        }
    }
}

// ---------------------------------------------------------------------------------
// Error mapping

#[tokio::test]
async fn dynamodb_throttling_is_retried_by_the_sdk() {
    let server = FakeAws::start(throttle_first(2)).await;
    let client = aws_sdk_dynamodb::Client::new(&server.sdk_config().await);
    let store = DynamoEventStore::new(client, "events-throttled");
    let result = store
        .append(
            &new_stream(),
            ExpectedVersion::Exact(0),
            vec![event(1)],
            None,
        )
        .await;
    assert_eq!(result.unwrap(), appended(1, 1, false));
    assert_eq!(
        server.requests(),
        3,
        "two throttled attempts, then the one that passed"
    );
}

#[tokio::test]
async fn dynamodb_throttling_that_persists_is_reported_as_throttled() {
    let server = FakeAws::start(throttle_first(usize::MAX)).await;
    let client = aws_sdk_dynamodb::Client::new(&server.sdk_config().await);
    let store = DynamoEventStore::new(client, "events-throttled");
    let err = store
        .append(
            &new_stream(),
            ExpectedVersion::Exact(0),
            vec![event(1)],
            None,
        )
        .await
        .unwrap_err();
    match &err {
        StoreError::Throttled { what, detail } => {
            assert!(what.contains("events-throttled"), "{what}");
            assert!(detail.contains("ProvisionedThroughputExceeded"), "{detail}");
        }
        other => panic!("expected Throttled, got {other:?}"),
    }
    assert!(err.is_retryable());
    let attempts = retry_config().max_attempts() as usize;
    assert_eq!(attempts, 5);
    assert_eq!(server.requests(), attempts, "the SDK made all its attempts");
}

#[tokio::test]
async fn sqs_server_errors_are_retryable_backend_errors() {
    let server = FakeAws::start(|_| {
        (
            500,
            r#"{"__type":"com.amazonaws.sqs#InternalError","message":"boom"}"#.to_owned(),
        )
    })
    .await;
    let client = aws_sdk_sqs::Client::new(&server.sdk_config().await);
    let url = format!("{}/123456789012/jobs", server.url);
    let queue = SqsQueue::new(client, &url, format!("{url}-dlq"));
    let err = queue
        .receive(1, Duration::from_secs(30), Duration::ZERO)
        .await
        .unwrap_err();
    match &err {
        StoreError::Backend {
            what, retryable, ..
        } => {
            assert!(what.contains(&url), "{what}");
            assert!(retryable);
        }
        other => panic!("expected Backend, got {other:?}"),
    }
    assert_eq!(server.requests(), 5, "5xx is retried by the SDK first");
}

#[tokio::test]
async fn sqs_receive_from_a_missing_queue_is_missing() {
    let url = format!(
        "{}/123456789012/{}",
        moto::endpoint().await,
        moto::unique_name()
    );
    let queue = SqsQueue::new(moto::sqs().await, &url, format!("{url}-dlq"));
    let err = queue
        .receive(1, Duration::from_secs(30), Duration::ZERO)
        .await
        .unwrap_err();
    match &err {
        StoreError::Missing { what } => assert!(what.contains(&url), "{what}"),
        other => panic!("expected Missing, got {other:?}"),
    }
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn dynamodb_missing_table_is_missing() {
    let table = moto::unique_name();
    let store = DynamoEventStore::new(moto::dynamodb().await, &table);
    let err = store.read_stream(&new_stream(), 0).await.unwrap_err();
    match err {
        StoreError::Missing { what } => assert!(what.contains(&table), "{what}"),
        other => panic!("expected Missing, got {other:?}"),
    }
}

#[tokio::test]
async fn s3_missing_bucket_is_missing() {
    let bucket = moto::unique_name();
    let store = S3BlobStore::new(moto::s3().await, &bucket);
    let err = store.get("a/b.json").await.unwrap_err();
    match err {
        StoreError::Missing { what } => assert!(what.contains(&bucket), "{what}"),
        other => panic!("expected Missing, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------
// DynamoDB event store

#[tokio::test]
async fn cancellation_reasons_become_conflicts_or_replays() {
    let store = moto::event_store().await;
    let s = new_stream();
    let first = store
        .append(
            &s,
            ExpectedVersion::Exact(0),
            vec![event(1), event(2)],
            Some("k1"),
        )
        .await
        .unwrap();
    assert_eq!(first, appended(1, 2, false));

    // The version check fails: a conflict with the version found.
    match store
        .append(&s, ExpectedVersion::Exact(0), vec![event(3)], None)
        .await
    {
        Err(StoreError::Conflict {
            what,
            expected,
            actual,
        }) => {
            assert_eq!(what, format!("stream {s}"));
            assert_eq!((expected, actual), (0, 2));
        }
        other => panic!("expected Conflict, got {other:?}"),
    }

    // The idempotency item exists: the first result, whatever the version now.
    for expected in [
        ExpectedVersion::Exact(0),
        ExpectedVersion::Exact(7),
        ExpectedVersion::Any,
    ] {
        let replay = store.append(&s, expected, vec![event(9)], Some("k1")).await;
        assert_eq!(replay.unwrap(), appended(1, 2, true), "{expected:?}");
    }

    // A conflict does not use up the key it came with.
    assert!(matches!(
        store
            .append(&s, ExpectedVersion::Exact(1), vec![event(3)], Some("k2"))
            .await,
        Err(StoreError::Conflict { actual: 2, .. })
    ));
    let second = store
        .append(&s, ExpectedVersion::Exact(2), vec![event(3)], Some("k2"))
        .await
        .unwrap();
    assert_eq!(second, appended(3, 3, false));

    let any = store
        .append(&s, ExpectedVersion::Any, vec![event(4), event(5)], None)
        .await
        .unwrap();
    assert_eq!(any, appended(4, 5, false));

    let read = store.read_stream(&s, 0).await.unwrap();
    let ns: Vec<u64> = read.iter().map(|e| e.data["n"].as_u64().unwrap()).collect();
    assert_eq!(ns, [1, 2, 3, 4, 5]);
}

/// Writes an event item directly, as another host (or a damaged writer) would have.
async fn put_raw_event(
    store: &DynamoEventStore,
    s: &StreamId,
    version: u64,
    micros: u64,
    data: &str,
) {
    let item = HashMap::from([
        ("pk".to_owned(), AttributeValue::S(s.to_string())),
        ("sk".to_owned(), AttributeValue::N(version.to_string())),
        ("tenant".to_owned(), AttributeValue::S("tenant-1".into())),
        ("corr".to_owned(), AttributeValue::S("corr-1".into())),
        (
            "at".to_owned(),
            AttributeValue::S("2030-01-01T00:00:00.000000Z".into()),
        ),
        ("type".to_owned(), AttributeValue::S("test_happened".into())),
        ("sv".to_owned(), AttributeValue::N("1".into())),
        ("data".to_owned(), AttributeValue::S(data.into())),
        ("gshard".to_owned(), AttributeValue::S("g0".into())),
        (
            "gpos".to_owned(),
            AttributeValue::S(format!("{micros:020}#{s}#{version:010}")),
        ),
    ]);
    moto::dynamodb()
        .await
        .put_item()
        .table_name(store.table())
        .set_item(Some(item))
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_stream_keeps_its_order_when_the_clock_is_behind() {
    let store = moto::event_store().await;
    let s = new_stream();
    // The first event was written by a host whose clock is an hour ahead.
    let ahead = (Utc::now().timestamp_micros() + 3_600_000_000) as u64;
    put_raw_event(&store, &s, 1, ahead, r#"{"type":"test_happened","n":1}"#).await;

    let result = store
        .append(&s, ExpectedVersion::Exact(1), vec![event(2)], None)
        .await
        .unwrap();
    assert_eq!(result, appended(2, 2, false));
    let read = store.read_stream(&s, 0).await.unwrap();
    assert_eq!(read.len(), 2);
    assert!(
        read[0].position.as_str() < read[1].position.as_str(),
        "{} then {}",
        read[0].position,
        read[1].position
    );
}

#[tokio::test]
async fn an_event_that_is_not_json_is_corrupt_and_named() {
    let store = moto::event_store().await;
    let s = new_stream();
    put_raw_event(&store, &s, 1, 1, "{not json").await;
    match store.read_stream(&s, 0).await {
        Err(StoreError::Corrupt { what, .. }) => {
            assert_eq!(
                what,
                format!("event {s} version 1 in table {}", store.table())
            );
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[tokio::test]
async fn read_all_merges_the_index_shards_in_order() {
    let store = moto::event_store().await;
    let streams: Vec<StreamId> = (0..8).map(|_| new_stream()).collect();
    for round in 0..3u64 {
        for s in &streams {
            store
                .append(
                    s,
                    ExpectedVersion::Exact(round),
                    vec![event(round + 1)],
                    None,
                )
                .await
                .unwrap();
        }
    }
    // Pages of 5 walk all 24 events once, in position order.
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = store.read_all(after.as_ref(), 5).await.unwrap();
        assert!(page.len() <= 5);
        let Some(last) = page.last() else { break };
        after = Some(last.position.clone());
        all.extend(page);
    }
    assert_eq!(all.len(), 24);
    assert!(
        all.windows(2)
            .all(|w| w[0].position.as_str() < w[1].position.as_str())
    );
    for s in &streams {
        let versions: Vec<u64> = all
            .iter()
            .filter(|e| &e.stream == s)
            .map(|e| e.version)
            .collect();
        assert_eq!(versions, [1, 2, 3], "{s}");
    }
}

// ---------------------------------------------------------------------------------
// DynamoDB view store

#[tokio::test]
async fn view_revisions_count_and_conflicts_report_the_stored_one() {
    let store = moto::view_store().await;
    let view = View::new("calls", "c1", json!({ "n": 1 }))
        .with_index1(IndexEntry::new("calls#t1", "2025-01-01"));
    for expected in 1..=3 {
        assert_eq!(store.put(&view, None).await.unwrap(), expected);
    }
    for (expected, actual) in [(0, 3), (2, 3), (9, 3)] {
        match store.put(&view, Some(expected)).await {
            Err(StoreError::Conflict {
                what,
                expected: e,
                actual: a,
            }) => {
                assert!(
                    what.contains("calls/c1") && what.contains(store.table()),
                    "{what}"
                );
                assert_eq!((e, a), (expected, actual));
            }
            other => panic!("expected Conflict, got {other:?}"),
        }
    }
    assert_eq!(store.put(&view, Some(3)).await.unwrap(), 4);
    assert!(matches!(
        store
            .put(&View::new("calls", "c2", json!({})), Some(5))
            .await,
        Err(StoreError::Conflict { actual: 0, .. })
    ));

    // Dropping the index entry takes the view out of the index.
    let query = Query::new(Index::First, "calls#t1");
    assert_eq!(store.query(&query).await.unwrap().views.len(), 1);
    let unindexed = View::new("calls", "c1", json!({ "n": 2 }));
    assert_eq!(store.put(&unindexed, None).await.unwrap(), 5);
    assert!(store.query(&query).await.unwrap().views.is_empty());
    let got = store.get("calls", "c1").await.unwrap().unwrap();
    assert_eq!(
        (got.revision, got.index1, got.body),
        (5, None, json!({ "n": 2 }))
    );
}

#[tokio::test]
async fn view_cursors_are_checked() {
    let store = moto::view_store().await;
    for i in 0..3 {
        let view = View::new("calls", format!("c{i}"), json!({ "i": i }))
            .with_index2(IndexEntry::new("p#a", format!("s{i}")));
        store.put(&view, None).await.unwrap();
    }
    let mut query = Query::new(Index::Second, "p#a");
    query.limit = 2;
    let page = store.query(&query).await.unwrap();
    assert_eq!(page.views.len(), 2);
    let cursor = page.next.expect("more to come");

    let mut next = query.clone();
    next.cursor = Some(cursor.clone());
    let rest = store.query(&next).await.unwrap();
    assert_eq!(rest.views.len(), 1);
    assert_eq!(rest.views[0].key, "c2");

    for (index, partition, cursor) in [
        (Index::Second, "p#a", "not a cursor".to_owned()),
        (Index::Second, "p#b", cursor.clone()),
        (Index::First, "p#a", cursor.clone()),
    ] {
        let mut bad = Query::new(index, partition);
        bad.cursor = Some(cursor);
        match store.query(&bad).await {
            Err(StoreError::Invalid { field, .. }) => assert_eq!(field, "cursor"),
            other => panic!("expected Invalid cursor, got {other:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------
// SQS

#[tokio::test]
async fn sqs_redrives_to_the_dead_letter_queue_and_peeking_leaves_them() {
    let queue = moto::queue(1).await;
    let id = queue.send("job-1", Duration::ZERO).await.unwrap();
    let first = queue
        .receive(10, Duration::ZERO, Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].message_id.as_str(), first[0].receive_count),
        (id.as_str(), 1)
    );
    // Received once already, the maximum: the next receive moves it away.
    assert!(
        queue
            .receive(10, Duration::ZERO, Duration::ZERO)
            .await
            .unwrap()
            .is_empty()
    );
    for _ in 0..2 {
        let dead = queue.dead_letters(10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(
            (dead[0].message_id.as_str(), dead[0].body.as_str()),
            (id.as_str(), "job-1")
        );
    }
    // Deleting with a receipt whose message has moved on is not an error.
    queue.delete(&first[0].receipt).await.unwrap();
}

// ---------------------------------------------------------------------------------
// S3

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

async fn open_uploads(store: &S3BlobStore) -> usize {
    moto::s3()
        .await
        .list_multipart_uploads()
        .bucket(store.bucket())
        .send()
        .await
        .unwrap()
        .uploads()
        .len()
}

#[tokio::test]
async fn s3_never_overwrites_a_key() {
    let store = moto::blob_store().await;
    store
        .put("a/b.json", Bytes::from_static(b"first"), "application/json")
        .await
        .unwrap();
    match store
        .put(
            "a/b.json",
            Bytes::from_static(b"second"),
            "application/json",
        )
        .await
    {
        Err(StoreError::Conflict {
            what,
            expected,
            actual,
        }) => {
            assert_eq!(what, format!("blob a/b.json in bucket {}", store.bucket()));
            assert_eq!((expected, actual), (0, 1));
        }
        other => panic!("expected Conflict, got {other:?}"),
    }
    let got = store.get("a/b.json").await.unwrap().unwrap();
    assert_eq!(got, Bytes::from_static(b"first"));
    assert_eq!(store.get("a/missing.json").await.unwrap(), None);
}

#[tokio::test]
async fn s3_presigned_urls_download_with_path_style_addressing() {
    let store = moto::blob_store().await;
    store
        .put(
            "rec/t1/c1.wav",
            Bytes::from_static(b"RIFF...."),
            "audio/wav",
        )
        .await
        .unwrap();
    let url = store
        .url("rec/t1/c1.wav", Duration::from_secs(300))
        .await
        .unwrap();
    let endpoint = moto::endpoint().await;
    assert!(
        url.starts_with(&format!("{endpoint}/{}/rec/t1/c1.wav?", store.bucket())),
        "{url}"
    );
    assert!(url.contains("X-Amz-Signature="), "{url}");
    let response = reqwest::get(&url).await.unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    assert_eq!(
        response.bytes().await.unwrap(),
        Bytes::from_static(b"RIFF....")
    );

    assert!(matches!(
        store.url("rec/t1/c1.wav", Duration::ZERO).await,
        Err(StoreError::Invalid { .. })
    ));
}

#[tokio::test]
async fn s3_multipart_uploads_round_trip_and_refuse_a_taken_key() {
    let store = moto::blob_store().await;
    // 11 MiB in 1 MiB chunks: one 8 MiB part and a 3 MiB last part.
    let data = pattern(11 * 1024 * 1024);
    let mut writer = store
        .writer("big/one.bin", "application/octet-stream")
        .await
        .unwrap();
    for chunk in data.chunks(1024 * 1024) {
        writer.write(chunk).await.unwrap();
    }
    assert_eq!(
        store.get("big/one.bin").await.unwrap(),
        None,
        "not visible before finish"
    );
    assert_eq!(writer.finish().await.unwrap(), data.len() as u64);
    let got = store.get("big/one.bin").await.unwrap().unwrap();
    assert!(
        got.as_ref() == data.as_slice(),
        "the blob read back differs"
    );

    // The same key again: refused at completion, and the upload is cleaned away.
    let mut writer = store
        .writer("big/one.bin", "application/octet-stream")
        .await
        .unwrap();
    writer.write(&pattern(9 * 1024 * 1024)).await.unwrap();
    assert!(matches!(
        writer.finish().await,
        Err(StoreError::Conflict { .. })
    ));
    assert_eq!(open_uploads(&store).await, 0);
    let got = store.get("big/one.bin").await.unwrap().unwrap();
    assert!(
        got.as_ref() == data.as_slice(),
        "the first blob was changed"
    );

    // A writer smaller than one part, onto a taken key and a free one.
    let mut writer = store
        .writer("big/one.bin", "application/octet-stream")
        .await
        .unwrap();
    writer.write(b"small").await.unwrap();
    assert!(matches!(
        writer.finish().await,
        Err(StoreError::Conflict { .. })
    ));
    let mut writer = store.writer("big/two.bin", "text/plain").await.unwrap();
    writer.write(b"small").await.unwrap();
    assert_eq!(writer.finish().await.unwrap(), 5);
    assert_eq!(
        store.get("big/two.bin").await.unwrap(),
        Some(Bytes::from_static(b"small"))
    );
}

#[tokio::test]
async fn s3_aborted_uploads_leave_nothing() {
    let store = moto::blob_store().await;
    let mut writer = store
        .writer("big/gone.bin", "application/octet-stream")
        .await
        .unwrap();
    writer.write(&pattern(9 * 1024 * 1024)).await.unwrap();
    assert_eq!(open_uploads(&store).await, 1, "a part was uploaded");
    writer.abort().await.unwrap();
    assert_eq!(open_uploads(&store).await, 0);
    assert_eq!(store.get("big/gone.bin").await.unwrap(), None);
}
