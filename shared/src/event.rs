//! The envelope every stored event travels in, and decoding stored events back into a
//! stream's domain enum.
//!
//! An event is stored as JSON with its type tag inside (`{"type": "call_ringing", ...}`)
//! plus metadata: tenant, time, correlation id and the schema version of its category.
//! Readers meeting a type they do not know (written by a newer Parley) or a schema
//! version from the future skip it and log it once; they never fail the whole stream.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Mutex, OnceLock};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use crate::error::StoreError;

/// The largest event payload a store accepts, in bytes of JSON. DynamoDB items stop at
/// 400 KB; this leaves room for the metadata. Recordings and transcripts go to blobs.
pub const MAX_EVENT_BYTES: usize = 256 * 1024;

/// The most bytes of event JSON one append may carry (a DynamoDB transaction holds 4 MB
/// in all, metadata included).
pub const MAX_APPEND_BYTES: usize = 3 * 1024 * 1024;

/// The most events one append may carry (DynamoDB transactions hold 100 items; two are
/// kept for the idempotency item and the version check).
pub const MAX_EVENTS_PER_APPEND: usize = 50;

/// A stream's name: `<category>/<id>`, e.g. `call/0193…`. Ids are globally unique, so a
/// stream name never needs the tenant in it; the tenant is in every event instead.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct StreamId(String);

impl StreamId {
    /// Builds `<category>/<id>`. The category is lower-case ASCII letters and `_`; the id
    /// is 1 to 128 characters of ASCII letters, digits, `-`, `_`, `.` or `:`.
    pub fn new(category: &str, id: &str) -> Result<Self, StoreError> {
        Self::try_from(format!("{category}/{id}"))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn category(&self) -> &str {
        self.0.split_once('/').map_or("", |(c, _)| c)
    }

    pub fn id(&self) -> &str {
        self.0.split_once('/').map_or("", |(_, i)| i)
    }
}

impl TryFrom<String> for StreamId {
    type Error = StoreError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        let bad = |reason: &str| StoreError::invalid("stream", format!("{value:?}: {reason}"));
        let Some((category, id)) = value.split_once('/') else {
            return Err(bad("expected <category>/<id>"));
        };
        if category.is_empty()
            || !category
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'_')
        {
            return Err(bad("category must be lower-case letters and _"));
        }
        if id.is_empty() || id.len() > 128 {
            return Err(bad("id must be 1 to 128 characters"));
        }
        if !id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        {
            return Err(bad("id may hold only letters, digits, '-', '_', '.', ':'"));
        }
        Ok(StreamId(value))
    }
}

impl From<StreamId> for String {
    fn from(value: StreamId) -> Self {
        value.0
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A place in the store's global order, as an opaque token. Only the store that made it
/// can interpret it; callers keep it (as a projection checkpoint) and hand it back.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Position(pub String);

impl Position {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who and what an event belongs to: carried by every event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    pub tenant_id: String,
    /// The call or campaign this event is part of, so one call's whole story (across the
    /// call, lead and appointment streams) can be read back in order.
    pub correlation_id: String,
    /// Stored to the microsecond.
    pub occurred_at: DateTime<Utc>,
}

/// An event about to be appended.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub event_type: String,
    pub schema_version: u32,
    pub meta: Metadata,
    /// The event itself, as JSON, with its `type` tag inside.
    pub data: serde_json::Value,
}

impl NewEvent {
    /// Wraps a domain event. Fails only if the event does not serialise to a JSON object
    /// with a string `type`, which is a programming error in the event's definition.
    pub fn from_domain<E: DomainEvent>(event: &E, meta: Metadata) -> Result<Self, StoreError> {
        let data = serde_json::to_value(event)
            .map_err(|e| StoreError::invalid("event", format!("does not serialise: {e}")))?;
        let event_type = data
            .get("type")
            .and_then(|t| t.as_str())
            .ok_or_else(|| StoreError::invalid("event", "has no string \"type\" tag"))?
            .to_owned();
        Ok(NewEvent {
            event_type,
            schema_version: E::SCHEMA_VERSION,
            meta,
            data,
        })
    }

    /// Checks the rules every store enforces, so both adapters refuse the same input.
    pub fn validate(&self) -> Result<(), StoreError> {
        if self.event_type.is_empty() || self.event_type.len() > 100 {
            return Err(StoreError::invalid(
                "event_type",
                "must be 1 to 100 characters",
            ));
        }
        if self.meta.tenant_id.is_empty() {
            return Err(StoreError::invalid("tenant_id", "must not be empty"));
        }
        if self.meta.correlation_id.is_empty() {
            return Err(StoreError::invalid("correlation_id", "must not be empty"));
        }
        let size = serde_json::to_vec(&self.data).map(|v| v.len()).unwrap_or(0);
        if size > MAX_EVENT_BYTES {
            return Err(StoreError::invalid(
                "data",
                format!(
                    "event {} is {size} bytes, over the limit of {MAX_EVENT_BYTES}",
                    self.event_type
                ),
            ));
        }
        Ok(())
    }
}

/// An event as stored: its place in its stream and in the global order.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedEvent {
    pub stream: StreamId,
    /// 1 for a stream's first event.
    pub version: u64,
    pub position: Position,
    pub event_type: String,
    pub schema_version: u32,
    pub meta: Metadata,
    pub data: serde_json::Value,
}

/// A stream's event enum. Implementations are serde enums tagged `type` with a
/// `#[serde(other)] Unknown` unit variant, so a type this build does not know decodes to
/// `Unknown` instead of failing.
pub trait DomainEvent: Serialize + DeserializeOwned + Clone + fmt::Debug + Send + Sync {
    /// The stream category these events belong to (`call`, `lead`, ...).
    const CATEGORY: &'static str;
    /// The schema version written with every event of this category. Bump it when an
    /// event's shape changes and teach [`DomainEvent::upcast`] the old shape.
    const SCHEMA_VERSION: u32;

    /// Whether this is the catch-all for types this build does not know.
    fn is_unknown(&self) -> bool;

    /// Rewrites an older schema version's JSON into the current shape. The default knows
    /// only the current version.
    fn upcast(_event_type: &str, _from_version: u32, data: serde_json::Value) -> serde_json::Value {
        data
    }
}

/// Why a stored event could not be turned into its domain event.
#[derive(Debug, thiserror::Error)]
#[error("event {stream} version {version} ({event_type}) does not decode: {detail}")]
pub struct DecodeError {
    pub stream: StreamId,
    pub version: u64,
    pub event_type: String,
    pub detail: String,
}

impl From<DecodeError> for StoreError {
    fn from(e: DecodeError) -> Self {
        StoreError::Corrupt {
            what: format!("event {} version {}", e.stream, e.version),
            detail: format!("{} does not decode: {}", e.event_type, e.detail),
        }
    }
}

/// Decodes a stored event. `Ok(None)` means "skip it": a type this build does not know,
/// or a schema version newer than this build writes. Each such (category, type, version)
/// is logged once per process.
pub fn decode<E: DomainEvent>(recorded: &RecordedEvent) -> Result<Option<E>, DecodeError> {
    if recorded.schema_version > E::SCHEMA_VERSION {
        skip_once(recorded, "written by a newer schema version");
        return Ok(None);
    }
    let data = if recorded.schema_version < E::SCHEMA_VERSION {
        E::upcast(
            &recorded.event_type,
            recorded.schema_version,
            recorded.data.clone(),
        )
    } else {
        recorded.data.clone()
    };
    let event: E = serde_json::from_value(data).map_err(|e| DecodeError {
        stream: recorded.stream.clone(),
        version: recorded.version,
        event_type: recorded.event_type.clone(),
        detail: e.to_string(),
    })?;
    if event.is_unknown() {
        skip_once(recorded, "unknown event type");
        return Ok(None);
    }
    Ok(Some(event))
}

fn skip_once(recorded: &RecordedEvent, why: &str) {
    static SEEN: OnceLock<Mutex<HashSet<(String, String, u32)>>> = OnceLock::new();
    let key = (
        recorded.stream.category().to_owned(),
        recorded.event_type.clone(),
        recorded.schema_version,
    );
    let first = SEEN
        .get_or_init(Default::default)
        .lock()
        .map(|mut seen| seen.insert(key))
        .unwrap_or(true);
    if first {
        tracing::warn!(
            stream = %recorded.stream,
            version = recorded.version,
            event_type = %recorded.event_type,
            schema_version = recorded.schema_version,
            "skipping event: {why}"
        );
    }
}
