//! The event store port: append-only streams with optimistic concurrency and idempotency
//! keys, read back per stream or in one global order for projections.
//!
//! Adapters: [`crate::embedded::SqliteEventStore`] and [`crate::aws::DynamoEventStore`].
//! Both pass the same contract suite (`shared/tests/contract_eventstore.rs`).

use async_trait::async_trait;

use crate::error::StoreResult;
use crate::event::{NewEvent, Position, RecordedEvent, StreamId};

/// What the caller believes the stream's version is before this append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// The stream must have exactly this many events; 0 means it must not exist yet.
    Exact(u64),
    /// Append wherever the stream ends (for streams that are only ever added to, such as
    /// a log of vendor callbacks). Still never overwrites.
    Any,
}

/// The result of an append. A replay of an idempotency key returns the first append's
/// versions with `duplicate` set, and writes nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Appended {
    pub first_version: u64,
    pub last_version: u64,
    pub duplicate: bool,
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends `events` (1 to [`crate::event::MAX_EVENTS_PER_APPEND`]) to `stream` as
    /// one atomic unit.
    ///
    /// - If `idempotency_key` was used before, nothing is written and the first append's
    ///   result comes back with `duplicate: true`, whatever the stream's version is now.
    ///   Keys are global: callers scope them (`twilio-status:<CallSid>:<seq>`).
    /// - Otherwise, if the stream is not at `expected`, [`crate::StoreError::Conflict`]
    ///   with the actual version; nothing is written.
    async fn append(
        &self,
        stream: &StreamId,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
        idempotency_key: Option<&str>,
    ) -> StoreResult<Appended>;

    /// The stream's events with version >= `from_version`, in order. A stream that does
    /// not exist reads as empty.
    async fn read_stream(
        &self,
        stream: &StreamId,
        from_version: u64,
    ) -> StoreResult<Vec<RecordedEvent>>;

    /// Up to `limit` events after `after` (from the beginning when `None`) in the
    /// store's global order, which keeps every stream's own order. Pass the last event's
    /// position back to continue.
    async fn read_all(
        &self,
        after: Option<&Position>,
        limit: usize,
    ) -> StoreResult<Vec<RecordedEvent>>;
}

/// Checks an append's arguments the same way in every adapter.
pub fn validate_append(events: &[NewEvent], idempotency_key: Option<&str>) -> StoreResult<()> {
    use crate::error::StoreError;
    if events.is_empty() {
        return Err(StoreError::invalid(
            "events",
            "an append needs at least one event",
        ));
    }
    if events.len() > crate::event::MAX_EVENTS_PER_APPEND {
        return Err(StoreError::invalid(
            "events",
            format!(
                "{} events in one append, over the limit of {}",
                events.len(),
                crate::event::MAX_EVENTS_PER_APPEND
            ),
        ));
    }
    if let Some(key) = idempotency_key
        && (key.is_empty() || key.len() > 512)
    {
        return Err(StoreError::invalid(
            "idempotency_key",
            "must be 1 to 512 characters",
        ));
    }
    events.iter().try_for_each(NewEvent::validate)?;
    let total: usize = events
        .iter()
        .map(|e| serde_json::to_vec(&e.data).map_or(0, |v| v.len()))
        .sum();
    if total > crate::event::MAX_APPEND_BYTES {
        return Err(StoreError::invalid(
            "events",
            format!(
                "{total} bytes of event data in one append, over the limit of {}",
                crate::event::MAX_APPEND_BYTES
            ),
        ));
    }
    Ok(())
}
