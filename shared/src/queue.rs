//! The queue port: dial jobs and delayed jobs, delivered at least once.
//!
//! A received message stays invisible for its visibility timeout; if it is not deleted
//! by then it is delivered again. A message received more than the queue's maximum
//! number of times goes to the dead-letter queue instead of being delivered again.
//!
//! Adapters: [`crate::embedded::SqliteQueue`] and [`crate::aws::SqsQueue`]. The limits
//! are SQS's, enforced by both so that local runs meet the same walls as AWS.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::{StoreError, StoreResult};

/// The longest delay a message can be sent with.
pub const MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// The longest visibility timeout.
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);
/// The most messages one receive returns.
pub const MAX_RECEIVE: usize = 10;
/// The largest message body.
pub const MAX_BODY_BYTES: usize = 256 * 1024;

/// A delivered message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The same on every delivery of one message.
    pub message_id: String,
    /// What `delete` takes; new on every delivery.
    pub receipt: String,
    pub body: String,
    /// 1 on the first delivery.
    pub receive_count: u32,
}

#[async_trait]
pub trait Queue: Send + Sync {
    /// Queues `body`, to become visible after `delay` (at most [`MAX_DELAY`]); returns
    /// the message id.
    async fn send(&self, body: &str, delay: Duration) -> StoreResult<String>;

    /// Up to `max` (1 to [`MAX_RECEIVE`]) visible messages, each hidden for
    /// `visibility` (at most [`MAX_VISIBILITY`]). Waits up to `wait` (at most 20 s) for a
    /// message when none is visible. An empty result is normal.
    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> StoreResult<Vec<Delivery>>;

    /// Deletes a message by the receipt of its latest delivery. Deleting with an older
    /// receipt, or twice, is not an error.
    async fn delete(&self, receipt: &str) -> StoreResult<()>;

    /// Messages that went to the dead-letter queue, oldest first, left where they are.
    /// Their `receipt` means nothing (it may be empty): dead letters are for reading.
    async fn dead_letters(&self, max: usize) -> StoreResult<Vec<Delivery>>;
}

/// Checks a send's arguments the same way in every adapter.
pub fn validate_send(body: &str, delay: Duration) -> StoreResult<()> {
    if body.is_empty() {
        return Err(StoreError::invalid("body", "must not be empty"));
    }
    if body.len() > MAX_BODY_BYTES {
        return Err(StoreError::invalid(
            "body",
            format!("{} bytes, over the limit of {MAX_BODY_BYTES}", body.len()),
        ));
    }
    if delay > MAX_DELAY {
        return Err(StoreError::invalid(
            "delay",
            format!("{delay:?} is over the limit of {MAX_DELAY:?}"),
        ));
    }
    Ok(())
}

/// Checks a receive's arguments the same way in every adapter.
pub fn validate_receive(max: usize, visibility: Duration, wait: Duration) -> StoreResult<()> {
    if max == 0 || max > MAX_RECEIVE {
        return Err(StoreError::invalid(
            "max",
            format!("must be 1 to {MAX_RECEIVE}"),
        ));
    }
    if visibility > MAX_VISIBILITY {
        return Err(StoreError::invalid(
            "visibility",
            format!("{visibility:?} is over the limit of {MAX_VISIBILITY:?}"),
        ));
    }
    if wait > Duration::from_secs(20) {
        return Err(StoreError::invalid("wait", "must be at most 20 s"));
    }
    Ok(())
}
