//! The one error type of every storage port, so callers can decide on retries the same
//! way whichever adapter is behind the port.

/// What went wrong in a port. Every variant names the resource (`what`: a table, queue,
/// bucket or file) so an operator can find it.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Optimistic concurrency: the stream (or view) was not at the expected version.
    /// Re-read and decide again.
    #[error("version conflict on {what}: expected version {expected}, found {actual}")]
    Conflict {
        what: String,
        expected: u64,
        actual: u64,
    },
    /// The backend asked us to slow down and the SDK's own retries ran out. Safe to retry
    /// later: nothing was written.
    #[error("{what} is throttled: {detail}")]
    Throttled { what: String, detail: String },
    /// Stored data cannot be read: a damaged SQLite file, an event that is not JSON.
    /// Never retried and never repaired by rewriting.
    #[error("{what} is corrupt: {detail}")]
    Corrupt { what: String, detail: String },
    /// The caller's input breaks a rule of the port (size, name, limits).
    #[error("invalid {field}: {reason}")]
    Invalid { field: String, reason: String },
    /// The resource does not exist (a table, bucket or queue that was never created).
    #[error("{what} not found")]
    Missing { what: String },
    /// Any other backend failure. `retryable` is true for time-outs, 5xx and lost
    /// connections.
    #[error("{what}: {detail}")]
    Backend {
        what: String,
        detail: String,
        retryable: bool,
    },
}

impl StoreError {
    /// Whether the same call may succeed if made again unchanged (after a back-off).
    pub fn is_retryable(&self) -> bool {
        match self {
            StoreError::Throttled { .. } => true,
            StoreError::Backend { retryable, .. } => *retryable,
            StoreError::Conflict { .. }
            | StoreError::Corrupt { .. }
            | StoreError::Invalid { .. }
            | StoreError::Missing { .. } => false,
        }
    }

    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        StoreError::Invalid {
            field: field.into(),
            reason: reason.into(),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;
