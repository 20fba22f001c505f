//! The blob port: recordings (WAV), transcripts (JSON) and exports.
//!
//! Blobs are written once: a key that exists is never overwritten, so a recording or
//! transcript already stored cannot be lost to a retry or a bug. Large blobs are
//! streamed through a [`BlobWriter`] (S3 multipart on AWS), so a long call's recording
//! never sits whole in memory.
//!
//! Adapters: [`crate::embedded::FsBlobStore`] and [`crate::aws::S3BlobStore`].

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;

use crate::error::{StoreError, StoreResult};

/// The longest a download URL may live (S3's limit for presigned URLs).
pub const MAX_URL_LIFETIME: Duration = Duration::from_secs(7 * 24 * 60 * 60);

#[async_trait]
pub trait BlobStore: Send + Sync {
    /// Stores `body` under `key`. A key that already exists is refused with
    /// [`StoreError::Conflict`] and left as it was.
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> StoreResult<()>;

    /// Starts a streamed write of `key`; nothing is visible under the key until
    /// [`BlobWriter::finish`].
    async fn writer(&self, key: &str, content_type: &str) -> StoreResult<Box<dyn BlobWriter>>;

    /// The blob, or `None` when there is none under `key`.
    async fn get(&self, key: &str) -> StoreResult<Option<Bytes>>;

    /// A URL that downloads the blob without other credentials until `expires_in` has
    /// passed: presigned on S3, signed by the local stack when embedded.
    async fn url(&self, key: &str, expires_in: Duration) -> StoreResult<String>;
}

/// A blob being written in parts.
#[async_trait]
pub trait BlobWriter: Send {
    async fn write(&mut self, chunk: &[u8]) -> StoreResult<()>;
    /// Makes the blob visible under its key and returns its size in bytes. Fails with
    /// [`StoreError::Conflict`] if the key was taken meanwhile.
    async fn finish(self: Box<Self>) -> StoreResult<u64>;
    /// Drops what was written; the key stays as it was.
    async fn abort(self: Box<Self>) -> StoreResult<()>;
}

/// Blob keys are relative paths of safe segments (`recordings/<tenant>/<call>.wav`):
/// no empty, `.` or `..` segment, no leading `/`, only letters, digits and `-_.`.
/// A key must not also be the folder of another key (`a` and `a/b`): files cannot hold
/// both, so keep each kind of blob at one depth.
pub fn validate_key(key: &str) -> StoreResult<()> {
    let bad = |reason: &str| StoreError::invalid("key", format!("{key:?}: {reason}"));
    if key.is_empty() || key.len() > 512 {
        return Err(bad("must be 1 to 512 characters"));
    }
    for segment in key.split('/') {
        if segment.is_empty() || segment == "." || segment == ".." {
            return Err(bad("has an empty, '.' or '..' segment"));
        }
        if !segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(bad("may hold only letters, digits, '-', '_', '.' and '/'"));
        }
    }
    Ok(())
}

pub fn validate_lifetime(expires_in: Duration) -> StoreResult<()> {
    if expires_in.is_zero() || expires_in > MAX_URL_LIFETIME {
        return Err(StoreError::invalid(
            "expires_in",
            format!("must be more than 0 and at most {MAX_URL_LIFETIME:?}"),
        ));
    }
    Ok(())
}
