//! The embedded event store: every stream in one SQLite table, whose AUTOINCREMENT rowid
//! is the global position, with idempotency keys in a table of their own.

use async_trait::async_trait;
use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{OptionalExtension, Row, params};

use super::sqlite::{DbError, SqliteDb, to_sql_int};
use crate::error::{StoreError, StoreResult};
use crate::event::{Metadata, NewEvent, Position, RecordedEvent, StreamId};
use crate::eventstore::{Appended, EventStore, ExpectedVersion, validate_append};

const COLUMNS: &str = "position, stream, version, event_type, schema_version, tenant_id, \
                       correlation_id, occurred_at, data";

/// [`EventStore`] on a [`SqliteDb`].
#[derive(Clone, Debug)]
pub struct SqliteEventStore {
    db: SqliteDb,
}

impl SqliteEventStore {
    pub fn new(db: SqliteDb) -> Self {
        SqliteEventStore { db }
    }
}

/// An event ready for its row: JSON and time already rendered outside the transaction.
struct Pending {
    event_type: String,
    schema_version: u32,
    tenant_id: String,
    correlation_id: String,
    occurred_at: String,
    data: String,
}

#[async_trait]
impl EventStore for SqliteEventStore {
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        idempotency_key: Option<&str>,
    ) -> StoreResult<Appended> {
        validate_append(&events, idempotency_key)?;
        let rows = events
            .into_iter()
            .map(|e| {
                let data = serde_json::to_string(&e.data)
                    .map_err(|err| StoreError::invalid("data", err.to_string()))?;
                Ok(Pending {
                    event_type: e.event_type,
                    schema_version: e.schema_version,
                    tenant_id: e.meta.tenant_id,
                    correlation_id: e.meta.correlation_id,
                    occurred_at: e
                        .meta
                        .occurred_at
                        .to_rfc3339_opts(SecondsFormat::Micros, true),
                    data,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let stream = stream.clone();
        let key = idempotency_key.map(str::to_owned);
        self.db
            .write(move |tx| {
                if let Some(key) = &key {
                    let earlier = tx
                        .query_row(
                            "SELECT first_version, last_version FROM idempotency_keys WHERE key = ?1",
                            [key],
                            |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)),
                        )
                        .optional()?;
                    if let Some((first, last)) = earlier {
                        return Ok(Appended {
                            first_version: version_of(&stream, first)?,
                            last_version: version_of(&stream, last)?,
                            duplicate: true,
                        });
                    }
                }
                let current: i64 = tx.query_row(
                    "SELECT COALESCE(MAX(version), 0) FROM events WHERE stream = ?1",
                    [stream.as_str()],
                    |r| r.get(0),
                )?;
                let current = version_of(&stream, current)?;
                if let ExpectedVersion::Exact(expected) = expected
                    && expected != current
                {
                    return Err(StoreError::Conflict {
                        what: format!("stream {stream}"),
                        expected,
                        actual: current,
                    }
                    .into());
                }
                let first = current + 1;
                let last = current + rows.len() as u64;
                let mut insert = tx.prepare(
                    "INSERT INTO events (stream, version, event_type, schema_version, tenant_id, \
                     correlation_id, occurred_at, data) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                )?;
                for (version, row) in (first..).zip(&rows) {
                    insert.execute(params![
                        stream.as_str(),
                        to_sql_int("version", version)?,
                        row.event_type,
                        row.schema_version,
                        row.tenant_id,
                        row.correlation_id,
                        row.occurred_at,
                        row.data,
                    ])?;
                }
                if let Some(key) = &key {
                    tx.execute(
                        "INSERT INTO idempotency_keys (key, stream, first_version, last_version) \
                         VALUES (?1, ?2, ?3, ?4)",
                        params![
                            key,
                            stream.as_str(),
                            to_sql_int("version", first)?,
                            to_sql_int("version", last)?
                        ],
                    )?;
                }
                Ok(Appended {
                    first_version: first,
                    last_version: last,
                    duplicate: false,
                })
            })
            .await
    }

    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
    ) -> StoreResult<Vec<RecordedEvent>> {
        // Versions past i64::MAX cannot exist, so such a read is empty.
        let Ok(from) = i64::try_from(from_version) else {
            return Ok(Vec::new());
        };
        let stream = stream.clone();
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare(&format!(
                    "SELECT {COLUMNS} FROM events WHERE stream = ?1 AND version >= ?2 ORDER BY version"
                ))?;
                let mut rows = stmt.query(params![stream.as_str(), from])?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(decode(row)?);
                }
                Ok(out)
            })
            .await
    }

    async fn read_all(
        &self,
        after: Option<&Position>,
        limit: usize,
    ) -> StoreResult<Vec<RecordedEvent>> {
        let after = match after {
            None => 0,
            Some(p) => p.as_str().parse::<i64>().map_err(|_| {
                StoreError::invalid("position", format!("{p:?} is not a position of this store"))
            })?,
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare(&format!(
                    "SELECT {COLUMNS} FROM events WHERE position > ?1 ORDER BY position LIMIT ?2"
                ))?;
                let mut rows = stmt.query(params![after, limit])?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push(decode(row)?);
                }
                Ok(out)
            })
            .await
    }
}

fn version_of(stream: &StreamId, v: i64) -> Result<u64, DbError> {
    u64::try_from(v).map_err(|_| {
        DbError::Store(StoreError::Corrupt {
            what: format!("stream {stream}"),
            detail: format!("negative version {v}"),
        })
    })
}

/// Reads one event row; a row that cannot be one is corrupt and named by stream and
/// version so it can be found.
fn decode(row: &Row<'_>) -> Result<RecordedEvent, DbError> {
    let position: i64 = row.get(0)?;
    let stream: String = row.get(1)?;
    let version: i64 = row.get(2)?;
    let corrupt = |detail: String| {
        DbError::Store(StoreError::Corrupt {
            what: format!("event {stream} version {version}"),
            detail,
        })
    };
    let text = |i: usize| row.get::<_, String>(i).map_err(|e| corrupt(e.to_string()));
    let data = text(8)?;
    let data =
        serde_json::from_str(&data).map_err(|e| corrupt(format!("data is not JSON: {e}")))?;
    let occurred_at = text(7)?;
    let occurred_at = DateTime::parse_from_rfc3339(&occurred_at)
        .map_err(|e| corrupt(format!("occurred_at {occurred_at:?} is not a time: {e}")))?
        .with_timezone(&Utc);
    Ok(RecordedEvent {
        stream: StreamId::try_from(stream.clone()).map_err(|e| corrupt(e.to_string()))?,
        version: u64::try_from(version).map_err(|e| corrupt(e.to_string()))?,
        position: Position(position.to_string()),
        event_type: text(3)?,
        schema_version: row.get(4).map_err(|e| corrupt(e.to_string()))?,
        meta: Metadata {
            tenant_id: text(5)?,
            correlation_id: text(6)?,
            occurred_at,
        },
        data,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::TimeZone;
    use serde_json::json;

    use super::*;
    use crate::clock::SystemClock;

    fn event(n: usize) -> NewEvent {
        NewEvent {
            event_type: "note_added".into(),
            schema_version: 1,
            meta: Metadata {
                tenant_id: "t1".into(),
                correlation_id: "c1".into(),
                occurred_at: Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap(),
            },
            data: json!({"type": "note_added", "n": n, "text": "x".repeat(1000)}),
        }
    }

    async fn store(path: &std::path::Path) -> SqliteEventStore {
        SqliteEventStore::new(SqliteDb::open(path, Arc::new(SystemClock)).unwrap())
    }

    #[tokio::test]
    async fn a_row_that_is_not_json_is_corrupt_and_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("parley.db");
        let events = store(&path).await;
        let stream = StreamId::new("call", "abc").unwrap();
        events
            .append(
                &stream,
                ExpectedVersion::Exact(0),
                vec![event(1), event(2)],
                None,
            )
            .await
            .unwrap();

        // Damage the row from outside, as a bad disk or a careless hand would.
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute("UPDATE events SET data = '{not json' WHERE version = 2", [])
            .unwrap();
        drop(raw);

        for err in [
            events.read_stream(&stream, 1).await.unwrap_err(),
            events.read_all(None, 10).await.unwrap_err(),
        ] {
            match err {
                StoreError::Corrupt { what, .. } => assert_eq!(what, "event call/abc version 2"),
                other => panic!("expected Corrupt, got {other:?}"),
            }
        }
        // The sound event before it still reads.
        assert_eq!(events.read_all(None, 1).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_row_whose_time_does_not_parse_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("parley.db");
        let events = store(&path).await;
        let stream = StreamId::new("lead", "l-1").unwrap();
        events
            .append(&stream, ExpectedVersion::Any, vec![event(1)], None)
            .await
            .unwrap();
        let raw = rusqlite::Connection::open(&path).unwrap();
        raw.execute("UPDATE events SET occurred_at = 'yesterday'", [])
            .unwrap();
        drop(raw);
        let err = events.read_stream(&stream, 0).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { what, .. } if what == "event lead/l-1 version 1"),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_truncated_file_is_corrupt_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("parley.db");
        {
            let events = store(&path).await;
            for i in 0..20 {
                let stream = StreamId::new("call", &format!("c{i}")).unwrap();
                let batch = (0..20).map(|n| event(i * 20 + n)).collect();
                events
                    .append(&stream, ExpectedVersion::Exact(0), batch, None)
                    .await
                    .unwrap();
            }
        }
        // Closing the last connection checkpoints the WAL into the file.
        let wal = dir.path().join("parley.db-wal");
        assert!(std::fs::metadata(&wal).map_or(true, |m| m.len() == 0));
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        let len = file.metadata().unwrap().len();
        file.set_len(len / 2).unwrap();
        drop(file);
        let truncated = std::fs::read(&path).unwrap();

        let outcome = match SqliteDb::open(&path, Arc::new(SystemClock)) {
            Err(e) => Err(e),
            Ok(db) => SqliteEventStore::new(db)
                .read_all(None, 1000)
                .await
                .map(|_| ()),
        };
        match outcome {
            Err(StoreError::Corrupt { what, .. }) => {
                assert_eq!(what, format!("SQLite file {}", path.display()));
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        assert_eq!(std::fs::read(&path).unwrap(), truncated);
    }

    #[tokio::test]
    async fn a_malformed_position_is_invalid() {
        let dir = tempfile::tempdir().unwrap();
        let events = store(&dir.path().join("parley.db")).await;
        let err = events
            .read_all(Some(&Position("not-a-number".into())), 10)
            .await
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::Invalid { field, .. } if field == "position"),
            "{err:?}"
        );
    }
}
