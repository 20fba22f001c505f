//! The event store on DynamoDB: one item per event, appends as transactions.
//!
//! Table layout (see [`DynamoEventStore::create_table`]):
//!
//! - key `pk` (S) = stream name, `sk` (N) = version;
//! - `tenant`, `corr`, `at` (RFC 3339, µs), `type`, `sv` (N, schema version), `data` (S,
//!   the event's JSON text);
//! - `gshard` (S) and `gpos` (S) for the sparse global index `by_position`, which gives
//!   the global order `read_all` walks: `gshard` spreads streams over [`SHARDS`]
//!   partitions (so one hot partition does not carry every write) and `gpos` is
//!   `<µs since the epoch, 20 digits>#<stream>#<version, 10 digits>`, also the
//!   [`Position`] token;
//! - idempotency items `pk = "idem#<key>"`, `sk = 0` with `stream`, `first`, `last`,
//!   written in the same transaction as the events (they have no `gshard`, so they stay
//!   out of the index).
//!
//! On AWS live projections are fed by the table's DynamoDB stream; `read_all` is for
//! rebuilds and catch-up. Its order across hosts follows their clocks, and the index is
//! eventually consistent, so an event can appear behind a position already handed out:
//! callers that need every event should re-read a little behind their checkpoint.
//! Within a stream the order is guaranteed: an append's time is forced past the previous
//! event's (see `append_exact`).

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ScalarAttributeType, TransactWriteItem,
};
use chrono::{DateTime, SecondsFormat, Utc};
use sha2::{Digest, Sha256};

use super::dynamo::{self, Item, TableSpec, get_n, get_s, n, s};
use super::sdk::{backend, sdk_error};
use crate::error::{StoreError, StoreResult};
use crate::event::{Metadata, NewEvent, Position, RecordedEvent, StreamId};
use crate::eventstore::{Appended, EventStore, ExpectedVersion, validate_append};

/// The global index.
const POSITION_INDEX: &str = "by_position";
/// How many partitions the global index is spread over.
const SHARDS: u8 = 4;
/// Appends with [`ExpectedVersion::Any`] that lose a race re-read and try again this
/// many times in all.
const ANY_ATTEMPTS: usize = 5;
/// How often an append retries when only its clock (not the version) was behind.
const CLOCK_ATTEMPTS: usize = 4;

/// Events in DynamoDB. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DynamoEventStore {
    client: Client,
    table: String,
}

/// A stream's last event, as far as appends care.
struct Last {
    version: u64,
    /// The µs part of its global position.
    micros: u64,
}

impl DynamoEventStore {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        DynamoEventStore {
            client,
            table: table.into(),
        }
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// Creates the events table (on-demand, stream of new images, the global index) for
    /// tests and local emulators, and waits until it is active. An existing table is
    /// left as it is.
    pub async fn create_table(client: &Client, table: &str) -> StoreResult<()> {
        dynamo::create_table(
            client,
            table,
            TableSpec {
                attributes: &[
                    ("pk", ScalarAttributeType::S),
                    ("sk", ScalarAttributeType::N),
                    ("gshard", ScalarAttributeType::S),
                    ("gpos", ScalarAttributeType::S),
                ],
                hash: "pk",
                range: Some("sk"),
                indexes: &[(POSITION_INDEX, "gshard", "gpos")],
                stream: true,
            },
        )
        .await
    }

    fn what(&self) -> String {
        format!("DynamoDB table {}", self.table)
    }

    /// Appends at exactly `expected`, retrying only when this host's clock put the new
    /// events before the stream's last one.
    async fn append_exact(
        &self,
        stream: &StreamId,
        expected: u64,
        events: &[NewEvent],
        key: Option<&str>,
    ) -> StoreResult<Appended> {
        let mut floor = 0;
        for _ in 0..CLOCK_ATTEMPTS {
            let micros = now_micros().max(floor);
            let items = self.transaction(stream, expected, events, key, micros)?;
            let err = match self
                .client
                .transact_write_items()
                .set_transact_items(Some(items))
                .send()
                .await
            {
                Ok(_) => {
                    return Ok(Appended {
                        first_version: expected + 1,
                        last_version: expected + events.len() as u64,
                        duplicate: false,
                    });
                }
                Err(err) => err,
            };
            let codes: Vec<String> = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(c)) => c
                    .cancellation_reasons()
                    .iter()
                    .map(|r| r.code().unwrap_or("None").to_owned())
                    .collect(),
                _ => return Err(sdk_error(&self.what(), err)),
            };
            let failed = |code: &str| codes.iter().any(|c| c == code);
            // The reasons come in the order of the transaction's items; the idempotency
            // item is first. An emulator that gives no reasons gets the same answers
            // from reads.
            if let Some(key) = key
                && (codes.first().map(String::as_str) == Some("ConditionalCheckFailed")
                    || codes.is_empty())
                && let Some(appended) = self.replay(key).await?
            {
                return Ok(appended);
            }
            let check_failed = failed("ConditionalCheckFailed") || codes.is_empty();
            // TransactionConflict: another append to the stream was in flight. Like a
            // failed check, it means "re-read and decide again", so it is a conflict too
            // (possibly with `actual == expected` if the other append then failed).
            if check_failed || failed("TransactionConflict") {
                let last = self.last(stream).await?;
                if check_failed && last.version == expected && expected > 0 {
                    // The version was right: the check on the previous event failed
                    // because its time is ahead of this host's clock. Go past it.
                    floor = last.micros + 1;
                    continue;
                }
                return Err(StoreError::Conflict {
                    what: format!("stream {stream}"),
                    expected,
                    actual: last.version,
                });
            }
            if failed("ThrottlingError") || failed("ProvisionedThroughputExceeded") {
                return Err(StoreError::Throttled {
                    what: self.what(),
                    detail: format!("transaction cancelled: {codes:?}"),
                });
            }
            return Err(sdk_error(&self.what(), err));
        }
        Err(backend(
            &self.what(),
            format!("stream {stream}: this host's clock stayed behind the stream's last event"),
            true,
        ))
    }

    /// The transaction's items: idempotency item, check of the previous event, events.
    fn transaction(
        &self,
        stream: &StreamId,
        expected: u64,
        events: &[NewEvent],
        key: Option<&str>,
        micros: u64,
    ) -> StoreResult<Vec<TransactWriteItem>> {
        let what = self.what();
        let build = |e: aws_sdk_dynamodb::error::BuildError| backend(&what, e.to_string(), false);
        let put = |item: Item| {
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map(|p| TransactWriteItem::builder().put(p).build())
                .map_err(build)
        };
        let mut items = Vec::with_capacity(events.len() + 2);
        if let Some(key) = key {
            items.push(put(HashMap::from([
                ("pk".to_owned(), s(format!("idem#{key}"))),
                ("sk".to_owned(), n(0)),
                ("stream".to_owned(), s(stream.as_str())),
                ("first".to_owned(), n(expected + 1)),
                ("last".to_owned(), n(expected + events.len() as u64)),
            ]))?);
        }
        if expected > 0 {
            // The previous event must exist and sort before the new ones in the global
            // order, so that every stream's own order survives clock differences.
            let check = ConditionCheck::builder()
                .table_name(&self.table)
                .key("pk", s(stream.as_str()))
                .key("sk", n(expected))
                .condition_expression("attribute_exists(pk) AND gpos < :g")
                .expression_attribute_values(":g", s(gpos(micros, stream, expected + 1)))
                .build()
                .map_err(build)?;
            items.push(TransactWriteItem::builder().condition_check(check).build());
        }
        for (i, event) in events.iter().enumerate() {
            let version = expected + 1 + i as u64;
            items.push(put(event_item(stream, version, event, micros)?)?);
        }
        Ok(items)
    }

    /// The result of the first append made with `key`, if there was one.
    async fn replay(&self, key: &str) -> StoreResult<Option<Appended>> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(format!("idem#{key}")))
            .key("sk", n(0))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| sdk_error(&self.what(), e))?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        match (get_n(item, "first"), get_n(item, "last")) {
            (Some(first_version), Some(last_version)) => Ok(Some(Appended {
                first_version,
                last_version,
                duplicate: true,
            })),
            _ => Err(StoreError::Corrupt {
                what: format!("idempotency item {key:?} in table {}", self.table),
                detail: "first or last version missing or not a number".into(),
            }),
        }
    }

    /// The stream's last event (version 0 when there is none), read consistently.
    async fn last(&self, stream: &StreamId) -> StoreResult<Last> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(stream.as_str()))
            .scan_index_forward(false)
            .limit(1)
            .consistent_read(true)
            .projection_expression("sk, gpos")
            .send()
            .await
            .map_err(|e| sdk_error(&self.what(), e))?;
        let Some(item) = out.items().first() else {
            return Ok(Last {
                version: 0,
                micros: 0,
            });
        };
        let version = get_n(item, "sk");
        let micros = get_s(item, "gpos")
            .and_then(|g| g.split('#').next())
            .and_then(|m| m.parse().ok());
        match (version, micros) {
            (Some(version), Some(micros)) => Ok(Last { version, micros }),
            _ => Err(StoreError::Corrupt {
                what: format!(
                    "event {stream} version {} in table {}",
                    version.map_or("?".to_owned(), |v| v.to_string()),
                    self.table
                ),
                detail: "version or global position missing or malformed".into(),
            }),
        }
    }

    /// Up to `limit` items of one shard of the global index after `after`, in order.
    async fn shard_page(
        &self,
        shard: u8,
        after: Option<&str>,
        limit: usize,
    ) -> StoreResult<Vec<Item>> {
        let mut items = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page_limit = i32::try_from((limit - items.len()).min(1000)).unwrap_or(1000);
            let mut request = self
                .client
                .query()
                .table_name(&self.table)
                .index_name(POSITION_INDEX)
                .expression_attribute_values(":s", s(format!("g{shard}")))
                .limit(page_limit)
                .set_exclusive_start_key(start.take());
            request = match after {
                Some(after) => request
                    .key_condition_expression("gshard = :s AND gpos > :after")
                    .expression_attribute_values(":after", s(after)),
                None => request.key_condition_expression("gshard = :s"),
            };
            let out = request
                .send()
                .await
                .map_err(|e| sdk_error(&self.what(), e))?;
            items.extend(out.items().iter().cloned());
            match out.last_evaluated_key() {
                Some(key) if items.len() < limit => start = Some(key.clone()),
                _ => break,
            }
        }
        items.truncate(limit);
        Ok(items)
    }

    /// Turns an item back into an event.
    fn recorded(&self, item: &Item) -> StoreResult<RecordedEvent> {
        let version = get_n(item, "sk");
        let what = || {
            format!(
                "event {} version {} in table {}",
                get_s(item, "pk").unwrap_or("?"),
                version.map_or("?".to_owned(), |v| v.to_string()),
                self.table
            )
        };
        let corrupt = |detail: String| StoreError::Corrupt {
            what: what(),
            detail,
        };
        let string = |name: &str| {
            get_s(item, name)
                .ok_or_else(|| corrupt(format!("attribute {name} missing or not a string")))
        };
        let stream =
            StreamId::try_from(string("pk")?.to_owned()).map_err(|e| corrupt(e.to_string()))?;
        let version = version.ok_or_else(|| corrupt("version missing or not a number".into()))?;
        let schema_version = get_n(item, "sv")
            .and_then(|v| u32::try_from(v).ok())
            .ok_or_else(|| corrupt("attribute sv missing or not a number".into()))?;
        let occurred_at = DateTime::parse_from_rfc3339(string("at")?)
            .map_err(|e| corrupt(format!("attribute at: {e}")))?
            .with_timezone(&Utc);
        let data = serde_json::from_str(string("data")?)
            .map_err(|e| corrupt(format!("data is not JSON: {e}")))?;
        Ok(RecordedEvent {
            stream,
            version,
            position: Position(string("gpos")?.to_owned()),
            event_type: string("type")?.to_owned(),
            schema_version,
            meta: Metadata {
                tenant_id: string("tenant")?.to_owned(),
                correlation_id: string("corr")?.to_owned(),
                occurred_at,
            },
            data,
        })
    }
}

#[async_trait]
impl EventStore for DynamoEventStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        idempotency_key: Option<&str>,
    ) -> StoreResult<Appended> {
        validate_append(&events, idempotency_key)?;
        match expected {
            ExpectedVersion::Exact(version) => {
                self.append_exact(stream, version, &events, idempotency_key)
                    .await
            }
            ExpectedVersion::Any => {
                let mut attempt = 1;
                loop {
                    let last = self.last(stream).await?;
                    match self
                        .append_exact(stream, last.version, &events, idempotency_key)
                        .await
                    {
                        Err(StoreError::Conflict { .. }) if attempt < ANY_ATTEMPTS => {
                            attempt += 1;
                            // Another writer got there first; a short random pause keeps
                            // two of them from colliding again in step.
                            let pause = rand::random_range(5..50u64);
                            tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
                        }
                        other => return other,
                    }
                }
            }
        }
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
    ) -> StoreResult<Vec<RecordedEvent>> {
        let mut events = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let out = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND sk >= :from")
                .expression_attribute_values(":pk", s(stream.as_str()))
                .expression_attribute_values(":from", n(from_version))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| sdk_error(&self.what(), e))?;
            for item in out.items() {
                events.push(self.recorded(item)?);
            }
            match out.last_evaluated_key() {
                Some(key) => start = Some(key.clone()),
                None => break,
            }
        }
        Ok(events)
    }

    async fn read_all(
        &self,
        after: Option<&Position>,
        limit: usize,
    ) -> StoreResult<Vec<RecordedEvent>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let after = after.map(Position::as_str);
        // The first `limit` overall are among the first `limit` of each shard.
        let (a, b, c, d) = tokio::join!(
            self.shard_page(0, after, limit),
            self.shard_page(1, after, limit),
            self.shard_page(2, after, limit),
            self.shard_page(3, after, limit),
        );
        let mut items: Vec<Item> = [a?, b?, c?, d?].into_iter().flatten().collect();
        items.sort_by(|x, y| get_s(x, "gpos").cmp(&get_s(y, "gpos")));
        items.truncate(limit);
        items.iter().map(|item| self.recorded(item)).collect()
    }
}

/// The item of one event.
fn event_item(stream: &StreamId, version: u64, event: &NewEvent, micros: u64) -> StoreResult<Item> {
    let data = serde_json::to_string(&event.data)
        .map_err(|e| StoreError::invalid("data", format!("does not serialise: {e}")))?;
    Ok(HashMap::from([
        ("pk".to_owned(), s(stream.as_str())),
        ("sk".to_owned(), n(version)),
        ("tenant".to_owned(), s(&event.meta.tenant_id)),
        ("corr".to_owned(), s(&event.meta.correlation_id)),
        (
            "at".to_owned(),
            s(event
                .meta
                .occurred_at
                .to_rfc3339_opts(SecondsFormat::Micros, true)),
        ),
        ("type".to_owned(), s(&event.event_type)),
        ("sv".to_owned(), n(u64::from(event.schema_version))),
        ("data".to_owned(), AttributeValue::S(data)),
        ("gshard".to_owned(), s(shard(stream))),
        ("gpos".to_owned(), s(gpos(micros, stream, version))),
    ]))
}

/// The global index partition of a stream: stable, so a stream's events share one.
fn shard(stream: &StreamId) -> String {
    let hash = Sha256::digest(stream.as_str().as_bytes());
    format!("g{}", hash[0] % SHARDS)
}

/// The global position of an event; sorts by time, then stream, then version.
fn gpos(micros: u64, stream: &StreamId, version: u64) -> String {
    format!("{micros:020}#{stream}#{version:010}")
}

fn now_micros() -> u64 {
    u64::try_from(Utc::now().timestamp_micros()).unwrap_or(0)
}
