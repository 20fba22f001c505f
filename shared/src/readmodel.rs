//! The read-model port: documents that projections keep current (call lists, campaign
//! counters, due dial attempts), fetched by key or queried through two secondary
//! indexes, each a partition value plus a sort value, the shape DynamoDB's GSIs give.
//!
//! Adapters: [`crate::embedded::SqliteViewStore`] and [`crate::aws::DynamoViewStore`].

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{StoreError, StoreResult};

/// Where a view sits in one secondary index. Callers put the tenant into the partition
/// (`calls#<tenant>`) so that a query can never cross tenants.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexEntry {
    pub partition: String,
    pub sort: String,
}

impl IndexEntry {
    pub fn new(partition: impl Into<String>, sort: impl Into<String>) -> Self {
        IndexEntry {
            partition: partition.into(),
            sort: sort.into(),
        }
    }
}

/// One of the two secondary indexes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Index {
    First,
    Second,
}

/// A read-model document.
#[derive(Clone, Debug, PartialEq)]
pub struct View {
    /// The kind of document (`calls`, `campaign_stats`, `checkpoints`).
    pub collection: String,
    pub key: String,
    /// Set by the store: 1 after the first put, one more after each put.
    pub revision: u64,
    pub body: serde_json::Value,
    pub index1: Option<IndexEntry>,
    pub index2: Option<IndexEntry>,
}

impl View {
    pub fn new(
        collection: impl Into<String>,
        key: impl Into<String>,
        body: serde_json::Value,
    ) -> Self {
        View {
            collection: collection.into(),
            key: key.into(),
            revision: 0,
            body,
            index1: None,
            index2: None,
        }
    }

    pub fn with_index1(mut self, entry: IndexEntry) -> Self {
        self.index1 = Some(entry);
        self
    }

    pub fn with_index2(mut self, entry: IndexEntry) -> Self {
        self.index2 = Some(entry);
        self
    }

    /// The rules both adapters enforce.
    pub fn validate(&self) -> StoreResult<()> {
        validate_name("collection", &self.collection)?;
        if self.key.is_empty() || self.key.len() > 512 {
            return Err(StoreError::invalid("key", "must be 1 to 512 characters"));
        }
        for entry in [&self.index1, &self.index2].into_iter().flatten() {
            if entry.partition.is_empty() || entry.partition.len() > 512 {
                return Err(StoreError::invalid(
                    "index.partition",
                    "must be 1 to 512 characters",
                ));
            }
            if entry.sort.is_empty() || entry.sort.len() > 512 {
                return Err(StoreError::invalid(
                    "index.sort",
                    "must be 1 to 512 characters",
                ));
            }
        }
        let size = serde_json::to_vec(&self.body).map(|b| b.len()).unwrap_or(0);
        if size > MAX_VIEW_BYTES {
            return Err(StoreError::invalid(
                "body",
                format!("{size} bytes, over the limit of {MAX_VIEW_BYTES}"),
            ));
        }
        Ok(())
    }
}

/// The largest view body, in bytes of JSON (DynamoDB items stop at 400 KB).
pub const MAX_VIEW_BYTES: usize = 300 * 1024;

/// The most views one query page returns.
pub const MAX_PAGE: usize = 1000;

pub(crate) fn validate_name(field: &str, name: &str) -> StoreResult<()> {
    if name.is_empty()
        || name.len() > 64
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(StoreError::invalid(
            field,
            format!("{name:?} must be 1 to 64 of a-z, 0-9, _"),
        ));
    }
    Ok(())
}

/// A query on one index: views whose index partition equals `partition` and whose sort
/// value starts with `sort_prefix` (or lies in `sort_between`), in sort order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Query {
    pub index: Index,
    pub partition: String,
    pub sort_prefix: String,
    /// Only sort values from the first to the second, both included (string order).
    /// Not together with a `sort_prefix`.
    pub sort_between: Option<(String, String)>,
    /// Highest sort value first.
    pub descending: bool,
    /// 1 to [`MAX_PAGE`].
    pub limit: usize,
    /// The `next` of the previous page.
    pub cursor: Option<String>,
}

impl Query {
    pub fn new(index: Index, partition: impl Into<String>) -> Self {
        Query {
            index,
            partition: partition.into(),
            sort_prefix: String::new(),
            sort_between: None,
            descending: false,
            limit: 100,
            cursor: None,
        }
    }

    pub fn validate(&self) -> StoreResult<()> {
        if self.partition.is_empty() {
            return Err(StoreError::invalid("partition", "must not be empty"));
        }
        if !self.sort_prefix.is_empty() && self.sort_between.is_some() {
            return Err(StoreError::invalid(
                "sort_between",
                "cannot be combined with sort_prefix",
            ));
        }
        if self.limit == 0 || self.limit > MAX_PAGE {
            return Err(StoreError::invalid(
                "limit",
                format!("must be 1 to {MAX_PAGE}"),
            ));
        }
        Ok(())
    }
}

/// A page of query results; `next` is set when there may be more.
#[derive(Clone, Debug, PartialEq)]
pub struct Page {
    pub views: Vec<View>,
    pub next: Option<String>,
}

#[async_trait]
pub trait ViewStore: Send + Sync {
    async fn get(&self, collection: &str, key: &str) -> StoreResult<Option<View>>;

    /// Writes `view` and returns its new revision. With `expected_revision`, the write
    /// happens only if the stored revision is that (0: the view must not exist yet),
    /// else [`StoreError::Conflict`]; without it, the write is unconditional.
    async fn put(&self, view: &View, expected_revision: Option<u64>) -> StoreResult<u64>;

    /// Removes a view; removing one that does not exist is not an error.
    async fn delete(&self, collection: &str, key: &str) -> StoreResult<()>;

    async fn query(&self, query: &Query) -> StoreResult<Page>;
}

/// Writes `view` as the projection of a stream at `stream_version`, unless the stored
/// view already reflects that version or a later one. Safe to call again and out of
/// order (a retried request, a replayed projection): an older state never replaces a
/// newer one. The version is kept in the body as `stream_version`.
pub async fn project(views: &dyn ViewStore, view: View, stream_version: u64) -> StoreResult<()> {
    project_with(views, view, stream_version, false).await
}

/// [`project`] for views that also depend on the time they are computed at (a lead's
/// next due time): at the same version, a view that differs replaces the stored one.
pub async fn project_timed(
    views: &dyn ViewStore,
    view: View,
    stream_version: u64,
) -> StoreResult<()> {
    project_with(views, view, stream_version, true).await
}

async fn project_with(
    views: &dyn ViewStore,
    mut view: View,
    stream_version: u64,
    same_version_replaces: bool,
) -> StoreResult<()> {
    if let Some(body) = view.body.as_object_mut() {
        body.insert("stream_version".into(), stream_version.into());
    }
    for _ in 0..10 {
        let current = views.get(&view.collection, &view.key).await?;
        let expected = match &current {
            Some(stored) if !newer(stored, &view, stream_version, same_version_replaces) => {
                return Ok(());
            }
            Some(stored) => stored.revision,
            None => 0,
        };
        match views.put(&view, Some(expected)).await {
            Ok(_) => return Ok(()),
            Err(StoreError::Conflict { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(StoreError::Conflict {
        what: format!("view {}/{}", view.collection, view.key),
        expected: stream_version,
        actual: 0,
    })
}

/// Whether `view` at `stream_version` should replace `stored`.
fn newer(stored: &View, view: &View, stream_version: u64, same_version_replaces: bool) -> bool {
    let stored_version = stored.body["stream_version"].as_u64().unwrap_or(0);
    stored_version < stream_version
        || (same_version_replaces
            && stored_version == stream_version
            && (stored.body != view.body
                || stored.index1 != view.index1
                || stored.index2 != view.index2))
}
