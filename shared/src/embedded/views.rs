//! The embedded view store: read-model documents in one SQLite table keyed by
//! (collection, key), with two (partition, sort) column pairs indexed the way DynamoDB's
//! GSIs are, and keyset pagination over them.

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Row, params, params_from_iter};
use serde::{Deserialize, Serialize};

use super::sqlite::{DbError, SqliteDb, to_sql_int};
use crate::error::{StoreError, StoreResult};
use crate::readmodel::{Index, IndexEntry, Page, Query, View, ViewStore};

const COLUMNS: &str = "collection, key, revision, body, idx1_p, idx1_s, idx2_p, idx2_s";

/// [`ViewStore`] on a [`SqliteDb`].
#[derive(Clone, Debug)]
pub struct SqliteViewStore {
    db: SqliteDb,
}

impl SqliteViewStore {
    pub fn new(db: SqliteDb) -> Self {
        SqliteViewStore { db }
    }
}

/// Where a page ended: the last row's place in the query's order.
#[derive(Serialize, Deserialize)]
struct Cursor {
    sort: String,
    collection: String,
    key: String,
}

impl Cursor {
    fn encode(&self) -> StoreResult<String> {
        let json = serde_json::to_vec(self)
            .map_err(|e| StoreError::invalid("cursor", format!("does not serialise: {e}")))?;
        Ok(URL_SAFE_NO_PAD.encode(json))
    }

    fn decode(cursor: &str) -> StoreResult<Cursor> {
        URL_SAFE_NO_PAD
            .decode(cursor)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or_else(|| StoreError::invalid("cursor", "not a cursor this store returned"))
    }
}

#[async_trait]
impl ViewStore for SqliteViewStore {
    async fn get(&self, collection: &str, key: &str) -> StoreResult<Option<View>> {
        let (collection, key) = (collection.to_owned(), key.to_owned());
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare(&format!(
                    "SELECT {COLUMNS} FROM views WHERE collection = ?1 AND key = ?2"
                ))?;
                let mut rows = stmt.query([collection, key])?;
                rows.next()?.map(decode).transpose()
            })
            .await
    }

    async fn put(&self, view: &View, expected_revision: Option<u64>) -> StoreResult<u64> {
        view.validate()?;
        let body = serde_json::to_string(&view.body)
            .map_err(|e| StoreError::invalid("body", e.to_string()))?;
        let view = view.clone();
        self.db
            .write(move |tx| {
                let stored: Option<i64> = tx
                    .query_row(
                        "SELECT revision FROM views WHERE collection = ?1 AND key = ?2",
                        [&view.collection, &view.key],
                        |r| r.get(0),
                    )
                    .optional()?;
                let current = match stored {
                    None => 0,
                    Some(r) => u64::try_from(r).map_err(|_| corrupt(&view, "negative revision"))?,
                };
                if let Some(expected) = expected_revision
                    && expected != current
                {
                    return Err(StoreError::Conflict {
                        what: format!("view {}/{}", view.collection, view.key),
                        expected,
                        actual: current,
                    }
                    .into());
                }
                let revision = current + 1;
                let part = |e: &Option<IndexEntry>| e.as_ref().map(|e| e.partition.clone());
                let sort = |e: &Option<IndexEntry>| e.as_ref().map(|e| e.sort.clone());
                tx.execute(
                    &format!(
                        "INSERT OR REPLACE INTO views ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                    ),
                    params![
                        view.collection,
                        view.key,
                        to_sql_int("revision", revision)?,
                        body,
                        part(&view.index1),
                        sort(&view.index1),
                        part(&view.index2),
                        sort(&view.index2),
                    ],
                )?;
                Ok(revision)
            })
            .await
    }

    async fn delete(&self, collection: &str, key: &str) -> StoreResult<()> {
        let (collection, key) = (collection.to_owned(), key.to_owned());
        self.db
            .write(move |tx| {
                tx.execute(
                    "DELETE FROM views WHERE collection = ?1 AND key = ?2",
                    [collection, key],
                )?;
                Ok(())
            })
            .await
    }

    async fn query(&self, query: &Query) -> StoreResult<Page> {
        query.validate()?;
        let after = query.cursor.as_deref().map(Cursor::decode).transpose()?;
        let (p, s) = match query.index {
            Index::First => ("idx1_p", "idx1_s"),
            Index::Second => ("idx2_p", "idx2_s"),
        };
        let (dir, past) = if query.descending {
            ("DESC", "<")
        } else {
            ("ASC", ">")
        };

        let mut sql = format!("SELECT {COLUMNS}, {s} FROM views WHERE {p} = ?");
        let mut args = vec![Value::Text(query.partition.clone())];
        // A range rather than LIKE, whose wildcards sort values may hold; the range also
        // keeps the index usable.
        if !query.sort_prefix.is_empty() {
            sql += &format!(" AND {s} >= ?");
            args.push(Value::Text(query.sort_prefix.clone()));
            if let Some(end) = prefix_successor(&query.sort_prefix) {
                sql += &format!(" AND {s} < ?");
                args.push(Value::Text(end));
            }
        }
        if let Some((low, high)) = &query.sort_between {
            sql += &format!(" AND {s} >= ? AND {s} <= ?");
            args.extend([low.clone(), high.clone()].map(Value::Text));
        }
        if let Some(after) = after {
            sql += &format!(" AND ({s}, collection, key) {past} (?, ?, ?)");
            args.extend([after.sort, after.collection, after.key].map(Value::Text));
        }
        sql += &format!(" ORDER BY {s} {dir}, collection {dir}, key {dir} LIMIT ?");
        // One row more than asked tells whether another page follows.
        let limit = query.limit;
        args.push(Value::Integer(to_sql_int("limit", limit as u64 + 1)?));

        let mut rows = self
            .db
            .read(move |conn| {
                let mut stmt = conn.prepare(&sql)?;
                let mut rows = stmt.query(params_from_iter(args))?;
                let mut out = Vec::new();
                while let Some(row) = rows.next()? {
                    out.push((decode(row)?, row.get::<_, String>(8)?));
                }
                Ok(out)
            })
            .await?;

        let next = if rows.len() > limit {
            rows.truncate(limit);
            rows.last()
                .map(|(view, sort)| {
                    Cursor {
                        sort: sort.clone(),
                        collection: view.collection.clone(),
                        key: view.key.clone(),
                    }
                    .encode()
                })
                .transpose()?
        } else {
            None
        };
        Ok(Page {
            views: rows.into_iter().map(|(view, _)| view).collect(),
            next,
        })
    }
}

/// The least string greater than every string that starts with `prefix`, or `None` when
/// there is none. SQLite compares text by its UTF-8 bytes, which is code-point order, so
/// this bumps the last code point that can be bumped and drops what follows it.
fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let bumped = match last {
            '\u{D7FF}' => Some('\u{E000}'),
            c => char::from_u32(c as u32 + 1),
        };
        if let Some(next) = bumped {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

fn corrupt(view: &View, detail: &str) -> DbError {
    DbError::Store(StoreError::Corrupt {
        what: format!("view {}/{}", view.collection, view.key),
        detail: detail.to_owned(),
    })
}

fn decode(row: &Row<'_>) -> Result<View, DbError> {
    let mut view = View::new(
        row.get::<_, String>(0)?,
        row.get::<_, String>(1)?,
        serde_json::Value::Null,
    );
    let revision: i64 = row.get(2)?;
    view.revision = u64::try_from(revision).map_err(|_| corrupt(&view, "negative revision"))?;
    let body: String = row.get(3).map_err(|e| corrupt(&view, &e.to_string()))?;
    view.body = serde_json::from_str(&body)
        .map_err(|e| corrupt(&view, &format!("body is not JSON: {e}")))?;
    let entry = |p: usize| -> Result<Option<IndexEntry>, DbError> {
        let partition: Option<String> = row.get(p)?;
        let sort: Option<String> = row.get(p + 1)?;
        Ok(partition.zip(sort).map(|(p, s)| IndexEntry::new(p, s)))
    };
    view.index1 = entry(4)?;
    view.index2 = entry(6)?;
    Ok(view)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use serde_json::json;

    use super::*;
    use crate::clock::SystemClock;

    async fn store() -> (tempfile::TempDir, SqliteViewStore) {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteDb::open(&dir.path().join("parley.db"), Arc::new(SystemClock)).unwrap();
        (dir, SqliteViewStore::new(db))
    }

    #[test]
    fn successor_bounds_the_prefix() {
        assert_eq!(prefix_successor("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_successor("a\u{D7FF}").as_deref(), Some("a\u{E000}"));
        assert_eq!(prefix_successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_successor("\u{10FFFF}"), None);
    }

    #[tokio::test]
    async fn prefix_treats_like_wildcards_literally() {
        let (_dir, views) = store().await;
        for (key, sort) in [("a", "50%_x"), ("b", "50%_y"), ("c", "50ab"), ("d", "5")] {
            let view = View::new("calls", key, json!({})).with_index1(IndexEntry::new("p", sort));
            views.put(&view, None).await.unwrap();
        }
        let mut query = Query::new(Index::First, "p");
        query.sort_prefix = "50%_".into();
        let page = views.query(&query).await.unwrap();
        let keys: Vec<_> = page.views.iter().map(|v| v.key.as_str()).collect();
        assert_eq!(keys, ["a", "b"]);
    }

    #[tokio::test]
    async fn a_malformed_cursor_is_invalid() {
        let (_dir, views) = store().await;
        for cursor in ["!!!", "bm90IGpzb24"] {
            let mut query = Query::new(Index::Second, "p");
            query.cursor = Some(cursor.into());
            let err = views.query(&query).await.unwrap_err();
            assert!(
                matches!(&err, StoreError::Invalid { field, .. } if field == "cursor"),
                "{err:?}"
            );
        }
    }

    #[tokio::test]
    async fn a_body_that_is_not_json_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("parley.db");
        let views = SqliteViewStore::new(SqliteDb::open(&path, Arc::new(SystemClock)).unwrap());
        views
            .put(&View::new("calls", "k1", json!({"a": 1})), None)
            .await
            .unwrap();
        rusqlite::Connection::open(&path)
            .unwrap()
            .execute("UPDATE views SET body = 'nope'", [])
            .unwrap();
        let err = views.get("calls", "k1").await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt { what, .. } if what == "view calls/k1"),
            "{err:?}"
        );
    }
}
