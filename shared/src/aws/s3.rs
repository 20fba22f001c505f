//! The blob store on S3. Blobs are written once: every write is conditional on the key
//! being free (`If-None-Match: *`), which S3 checks atomically, so a retry or a bug
//! cannot overwrite a recording.
//!
//! Large blobs stream through a multipart upload in parts of [`PART_BYTES`]; a blob
//! smaller than one part is sent as one `PutObject` when it is finished. Uploads that
//! are neither finished nor aborted (a crashed process) are invisible but cost storage:
//! the bucket should have an `AbortIncompleteMultipartUpload` lifecycle rule.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_s3::Client;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::presigning::PresigningConfig;
use aws_sdk_s3::primitives::ByteStream;
use aws_sdk_s3::types::{
    BucketLocationConstraint, ChecksumAlgorithm, CompletedMultipartUpload, CompletedPart,
    CreateBucketConfiguration,
};
use bytes::{Bytes, BytesMut};

use super::sdk::{backend, error_code, error_status, sdk_error};
use crate::blob::{BlobStore, BlobWriter, validate_key, validate_lifetime};
use crate::error::{StoreError, StoreResult};

/// The size of each uploaded part but the last (S3 wants at least 5 MiB).
pub const PART_BYTES: usize = 8 * 1024 * 1024;

/// Blobs in one S3 bucket. Cheap to clone.
#[derive(Clone, Debug)]
pub struct S3BlobStore {
    client: Client,
    bucket: String,
}

impl S3BlobStore {
    pub fn new(client: Client, bucket: impl Into<String>) -> Self {
        S3BlobStore {
            client,
            bucket: bucket.into(),
        }
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// Creates the bucket in the client's region, for tests and local emulators. A
    /// bucket this account already owns is left as it is.
    pub async fn create_bucket(client: &Client, bucket: &str) -> StoreResult<()> {
        let mut request = client.create_bucket().bucket(bucket);
        // us-east-1 is the default location and must not be named.
        if let Some(region) = client.config().region().map(|r| r.as_ref())
            && region != "us-east-1"
        {
            request = request.create_bucket_configuration(
                CreateBucketConfiguration::builder()
                    .location_constraint(BucketLocationConstraint::from(region))
                    .build(),
            );
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if error_code(&e) == Some("BucketAlreadyOwnedByYou") => Ok(()),
            Err(e) => Err(sdk_error(&format!("S3 bucket {bucket}"), e)),
        }
    }
}

fn what(bucket: &str) -> String {
    format!("S3 bucket {bucket}")
}

/// Maps a failed conditional write: a taken key is a conflict, anything else the usual.
fn write_error<E>(bucket: &str, key: &str, err: SdkError<E>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    // 412 when the key exists; 409 ConditionalRequestConflict when another conditional
    // write of the key is in flight (it will exist, or be retried, either way it is not
    // ours).
    if error_status(&err) == Some(412)
        || matches!(
            error_code(&err),
            Some("PreconditionFailed" | "ConditionalRequestConflict")
        )
    {
        return StoreError::Conflict {
            what: format!("blob {key} in bucket {bucket}"),
            expected: 0,
            actual: 1,
        };
    }
    sdk_error(&what(bucket), err)
}

/// One `PutObject` of a whole blob, refused if the key exists.
async fn put_once(
    client: &Client,
    bucket: &str,
    key: &str,
    body: Bytes,
    content_type: &str,
) -> StoreResult<()> {
    client
        .put_object()
        .bucket(bucket)
        .key(key)
        .content_type(content_type)
        .if_none_match("*")
        .body(ByteStream::from(body))
        .send()
        .await
        .map_err(|e| write_error(bucket, key, e))?;
    Ok(())
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &str, body: Bytes, content_type: &str) -> StoreResult<()> {
        validate_key(key)?;
        put_once(&self.client, &self.bucket, key, body, content_type).await
    }

    async fn writer(&self, key: &str, content_type: &str) -> StoreResult<Box<dyn BlobWriter>> {
        validate_key(key)?;
        Ok(Box::new(S3BlobWriter {
            client: self.client.clone(),
            bucket: self.bucket.clone(),
            key: key.to_owned(),
            content_type: content_type.to_owned(),
            buffer: BytesMut::new(),
            upload_id: None,
            parts: Vec::new(),
            size: 0,
        }))
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Bytes>> {
        validate_key(key)?;
        let out = match self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
        {
            Ok(out) => out,
            Err(e) if e.as_service_error().is_some_and(|e| e.is_no_such_key()) => {
                return Ok(None);
            }
            Err(e) => return Err(sdk_error(&what(&self.bucket), e)),
        };
        let body = out.body.collect().await.map_err(|e| {
            backend(
                &what(&self.bucket),
                format!("reading blob {key}: {e}"),
                true,
            )
        })?;
        Ok(Some(body.into_bytes()))
    }

    async fn url(&self, key: &str, expires_in: Duration) -> StoreResult<String> {
        validate_key(key)?;
        validate_lifetime(expires_in)?;
        let config = PresigningConfig::expires_in(expires_in)
            .map_err(|e| StoreError::invalid("expires_in", e.to_string()))?;
        let request = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .presigned(config)
            .await
            .map_err(|e| sdk_error(&what(&self.bucket), e))?;
        Ok(request.uri().to_owned())
    }
}

/// A blob being uploaded. Nothing is visible under the key until `finish`.
struct S3BlobWriter {
    client: Client,
    bucket: String,
    key: String,
    content_type: String,
    /// Bytes not yet sent: less than one part between calls.
    buffer: BytesMut,
    /// Set once the first full part is ready.
    upload_id: Option<String>,
    parts: Vec<CompletedPart>,
    size: u64,
}

impl S3BlobWriter {
    async fn upload_id(&mut self) -> StoreResult<String> {
        if let Some(id) = &self.upload_id {
            return Ok(id.clone());
        }
        // CRC32 per part, declared up front: S3 then checks every part and the whole.
        let out = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .content_type(&self.content_type)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .send()
            .await
            .map_err(|e| sdk_error(&what(&self.bucket), e))?;
        let id = out
            .upload_id()
            .ok_or_else(|| {
                backend(
                    &what(&self.bucket),
                    "CreateMultipartUpload returned no upload id",
                    false,
                )
            })?
            .to_owned();
        self.upload_id = Some(id.clone());
        Ok(id)
    }

    async fn upload_part(&mut self, body: Bytes) -> StoreResult<()> {
        let upload_id = self.upload_id().await?;
        let number = i32::try_from(self.parts.len() + 1).unwrap_or(i32::MAX);
        let out = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .part_number(number)
            .checksum_algorithm(ChecksumAlgorithm::Crc32)
            .body(ByteStream::from(body))
            .send()
            .await
            .map_err(|e| sdk_error(&what(&self.bucket), e))?;
        self.parts.push(
            CompletedPart::builder()
                .part_number(number)
                .set_e_tag(out.e_tag().map(str::to_owned))
                .set_checksum_crc32(out.checksum_crc32().map(str::to_owned))
                .build(),
        );
        Ok(())
    }

    /// Sends the rest and completes the upload; the caller aborts it if this fails.
    async fn complete(&mut self) -> StoreResult<()> {
        if !self.buffer.is_empty() {
            let last = self.buffer.split().freeze();
            self.upload_part(last).await?;
        }
        let upload_id = self.upload_id().await?;
        let result = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .if_none_match("*")
            .multipart_upload(
                CompletedMultipartUpload::builder()
                    .set_parts(Some(std::mem::take(&mut self.parts)))
                    .build(),
            )
            .send()
            .await;
        result
            .map(|_| ())
            .map_err(|e| write_error(&self.bucket, &self.key, e))
    }

    async fn abort_upload(&mut self) -> StoreResult<()> {
        let Some(upload_id) = self.upload_id.take() else {
            return Ok(());
        };
        match self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(upload_id)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            // Already gone: what abort wants.
            Err(e) if error_code(&e) == Some("NoSuchUpload") => Ok(()),
            Err(e) => Err(sdk_error(&what(&self.bucket), e)),
        }
    }
}

#[async_trait]
impl BlobWriter for S3BlobWriter {
    async fn write(&mut self, chunk: &[u8]) -> StoreResult<()> {
        self.buffer.extend_from_slice(chunk);
        self.size += chunk.len() as u64;
        while self.buffer.len() >= PART_BYTES {
            let part = self.buffer.split_to(PART_BYTES).freeze();
            self.upload_part(part).await?;
        }
        Ok(())
    }

    async fn finish(mut self: Box<Self>) -> StoreResult<u64> {
        if self.upload_id.is_none() {
            // Under one part: no multipart upload was started.
            let body = self.buffer.split().freeze();
            put_once(
                &self.client,
                &self.bucket,
                &self.key,
                body,
                &self.content_type,
            )
            .await?;
            return Ok(self.size);
        }
        match self.complete().await {
            Ok(()) => {
                self.upload_id = None;
                Ok(self.size)
            }
            Err(err) => {
                // Leave nothing behind; the error that matters is the first one.
                if let Err(abort) = self.abort_upload().await {
                    tracing::warn!(key = %self.key, error = %abort, "aborting a failed upload");
                }
                Err(err)
            }
        }
    }

    async fn abort(mut self: Box<Self>) -> StoreResult<()> {
        self.buffer.clear();
        self.abort_upload().await
    }
}

impl Drop for S3BlobWriter {
    /// A writer dropped without `finish` or `abort` (an error or panic on the caller's
    /// side) aborts its upload in the background when a runtime is at hand.
    fn drop(&mut self) {
        let Some(upload_id) = self.upload_id.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let request = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(&self.key)
            .upload_id(upload_id);
        runtime.spawn(async move {
            if let Err(e) = request.send().await {
                tracing::warn!(error = %aws_sdk_s3::error::DisplayErrorContext(&e), "aborting a dropped upload");
            }
        });
    }
}
