//! The embedded blob store: files under a root folder, written once, with URLs the
//! local stack signs and checks itself.
//!
//! Layout: `<root>/objects/<key>` holds the blobs and `<root>/partial/<uuid>` the files
//! being written. A key resolves only under `objects`, so it can never name a partial
//! file. A write is published by hard-linking its finished, fsynced temporary file to
//! the key's path, which fails if the path exists: no blob is ever overwritten, and none
//! is ever seen half-written.

use std::fmt;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use crate::blob::{BlobStore, BlobWriter, validate_key, validate_lifetime};
use crate::error::{StoreError, StoreResult};

type HmacSha256 = Hmac<Sha256>;

/// [`BlobStore`] on the local file system.
#[derive(Clone)]
pub struct FsBlobStore {
    inner: Arc<Inner>,
}

struct Inner {
    objects: PathBuf,
    partial: PathBuf,
    url_base: String,
    /// Keyed with the signing key once; cloned for each signature.
    mac: HmacSha256,
}

impl fmt::Debug for FsBlobStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FsBlobStore")
            .field("objects", &self.inner.objects)
            .field("url_base", &self.inner.url_base)
            .finish_non_exhaustive()
    }
}

impl FsBlobStore {
    /// Creates `<root>/objects` and `<root>/partial` if absent. URLs point at
    /// `<url_base>/blobs/<key>`, signed with `signing_key`.
    pub fn new(root: PathBuf, url_base: String, signing_key: Vec<u8>) -> StoreResult<FsBlobStore> {
        if signing_key.len() < 16 {
            return Err(StoreError::invalid(
                "signing_key",
                "must be at least 16 bytes",
            ));
        }
        let mac = HmacSha256::new_from_slice(&signing_key)
            .map_err(|e| StoreError::invalid("signing_key", e.to_string()))?;
        let (objects, partial) = (root.join("objects"), root.join("partial"));
        for dir in [&objects, &partial] {
            std::fs::create_dir_all(dir)
                .map_err(|e| io_error(&format!("folder {}", dir.display()), e))?;
        }
        Ok(FsBlobStore {
            inner: Arc::new(Inner {
                objects,
                partial,
                url_base: url_base.trim_end_matches('/').to_owned(),
                mac,
            }),
        })
    }

    /// Whether a URL's `expires` and `signature` are the ones [`BlobStore::url`] made for
    /// `key`, and `now` is before `expires`. Compares in constant time.
    pub fn verify_url(&self, key: &str, expires: i64, signature: &str, now: DateTime<Utc>) -> bool {
        if validate_key(key).is_err() || now.timestamp() >= expires {
            return false;
        }
        let Ok(signature) = hex::decode(signature) else {
            return false;
        };
        self.mac(key, expires).verify_slice(&signature).is_ok()
    }

    /// The blob's file opened for reading, for serving it without loading it whole.
    pub async fn open(&self, key: &str) -> StoreResult<Option<tokio::fs::File>> {
        validate_key(key)?;
        let file = match tokio::fs::File::open(self.inner.objects.join(key)).await {
            Ok(file) => file,
            Err(e) if absent(&e) => return Ok(None),
            Err(e) => return Err(io_error(&blob(key), e)),
        };
        let is_file = file
            .metadata()
            .await
            .map_err(|e| io_error(&blob(key), e))?
            .is_file();
        Ok(is_file.then_some(file))
    }

    fn mac(&self, key: &str, expires: i64) -> HmacSha256 {
        let mut mac = self.inner.mac.clone();
        mac.update(format!("{key}\n{expires}").as_bytes());
        mac
    }

    fn temp_file(&self) -> TempFile {
        TempFile(self.inner.partial.join(Uuid::new_v4().simple().to_string()))
    }

    /// Links the finished temporary file to the key's path; blocking.
    fn publish(&self, temp: &Path, key: &str) -> StoreResult<()> {
        let dest = self.inner.objects.join(key);
        let parent = dest.parent().unwrap_or(&self.inner.objects);
        std::fs::create_dir_all(parent).map_err(|e| io_error(&blob(key), e))?;
        match std::fs::hard_link(temp, &dest) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(StoreError::Conflict {
                    what: blob(key),
                    expected: 0,
                    actual: 1,
                });
            }
            Err(e) => return Err(io_error(&blob(key), e)),
        }
        // The new name is durable only once its folder is.
        File::open(parent)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| io_error(&blob(key), e))
    }
}

/// A file under `partial`, removed when dropped: after publishing (the blob keeps its
/// other link), on abort, or when a writer is dropped unfinished.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.0)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.0.display(), "cannot remove a partial blob: {e}");
        }
    }
}

fn blob(key: &str) -> String {
    format!("blob {key}")
}

/// Nothing under the key: no file, or a folder of longer keys, or a path through a file.
fn absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::IsADirectory | io::ErrorKind::NotADirectory
    )
}

fn io_error(what: &str, e: io::Error) -> StoreError {
    StoreError::Backend {
        what: what.to_owned(),
        detail: e.to_string(),
        retryable: matches!(
            e.kind(),
            io::ErrorKind::Interrupted | io::ErrorKind::TimedOut
        ),
    }
}

async fn blocking<T: Send + 'static>(
    what: String,
    f: impl FnOnce() -> StoreResult<T> + Send + 'static,
) -> StoreResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::Backend {
            what,
            detail: format!("file task failed: {e}"),
            retryable: false,
        })?
}

#[async_trait]
impl BlobStore for FsBlobStore {
    async fn put(&self, key: &str, body: Bytes, _content_type: &str) -> StoreResult<()> {
        validate_key(key)?;
        let (store, key) = (self.clone(), key.to_owned());
        blocking(blob(&key), move || {
            let temp = store.temp_file();
            File::create_new(&temp.0)
                .and_then(|mut file| {
                    file.write_all(&body)?;
                    file.sync_all()
                })
                .map_err(|e| io_error(&blob(&key), e))?;
            store.publish(&temp.0, &key)
        })
        .await
    }

    async fn writer(&self, key: &str, _content_type: &str) -> StoreResult<Box<dyn BlobWriter>> {
        validate_key(key)?;
        let temp = self.temp_file();
        let file = tokio::fs::File::create_new(&temp.0)
            .await
            .map_err(|e| io_error(&blob(key), e))?;
        Ok(Box::new(FsBlobWriter {
            store: self.clone(),
            key: key.to_owned(),
            temp,
            file,
            size: 0,
        }))
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Bytes>> {
        validate_key(key)?;
        match tokio::fs::read(self.inner.objects.join(key)).await {
            Ok(body) => Ok(Some(Bytes::from(body))),
            Err(e) if absent(&e) => Ok(None),
            Err(e) => Err(io_error(&blob(key), e)),
        }
    }

    async fn url(&self, key: &str, expires_in: Duration) -> StoreResult<String> {
        validate_key(key)?;
        validate_lifetime(expires_in)?;
        let lifetime = chrono::Duration::from_std(expires_in)
            .map_err(|e| StoreError::invalid("expires_in", e.to_string()))?;
        let end = Utc::now() + lifetime;
        // Rounded up, so a URL lives at least as long as asked.
        let expires = end.timestamp() + i64::from(end.timestamp_subsec_nanos() > 0);
        let signature = hex::encode(self.mac(key, expires).finalize().into_bytes());
        Ok(format!(
            "{}/blobs/{key}?expires={expires}&signature={signature}",
            self.inner.url_base
        ))
    }
}

/// A streamed write into a temporary file, published on finish.
struct FsBlobWriter {
    store: FsBlobStore,
    key: String,
    temp: TempFile,
    file: tokio::fs::File,
    size: u64,
}

#[async_trait]
impl BlobWriter for FsBlobWriter {
    async fn write(&mut self, chunk: &[u8]) -> StoreResult<()> {
        self.file
            .write_all(chunk)
            .await
            .map_err(|e| io_error(&blob(&self.key), e))?;
        self.size += chunk.len() as u64;
        Ok(())
    }

    async fn finish(self: Box<Self>) -> StoreResult<u64> {
        let FsBlobWriter {
            store,
            key,
            temp,
            mut file,
            size,
        } = *self;
        file.flush().await.map_err(|e| io_error(&blob(&key), e))?;
        file.sync_all()
            .await
            .map_err(|e| io_error(&blob(&key), e))?;
        drop(file);
        blocking(blob(&key), move || store.publish(&temp.0, &key)).await?;
        Ok(size)
    }

    async fn abort(self: Box<Self>) -> StoreResult<()> {
        // Dropping the writer drops its temporary file.
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn store(root: &Path) -> FsBlobStore {
        FsBlobStore::new(
            root.to_path_buf(),
            "http://localhost:8080/".into(),
            KEY.to_vec(),
        )
        .unwrap()
    }

    fn files_under(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(files_under(&path));
            } else {
                out.push(path);
            }
        }
        out
    }

    fn query(url: &str) -> (String, i64, String) {
        let (path, query) = url.split_once('?').unwrap();
        let key = path.split_once("/blobs/").unwrap().1.to_owned();
        let mut expires = 0;
        let mut signature = String::new();
        for pair in query.split('&') {
            match pair.split_once('=').unwrap() {
                ("expires", v) => expires = v.parse().unwrap(),
                ("signature", v) => signature = v.to_owned(),
                other => panic!("unexpected {other:?}"),
            }
        }
        (key, expires, signature)
    }

    #[tokio::test]
    async fn a_partial_write_is_never_visible_and_abort_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = store(dir.path());
        let mut writer = blobs
            .writer("recordings/t1/c1.wav", "audio/wav")
            .await
            .unwrap();
        writer.write(b"RIFF").await.unwrap();
        assert_eq!(blobs.get("recordings/t1/c1.wav").await.unwrap(), None);
        assert!(blobs.open("recordings/t1/c1.wav").await.unwrap().is_none());
        // The partial file exists, but no key reaches it.
        let partial = files_under(&dir.path().join("partial"));
        assert_eq!(partial.len(), 1);
        let name = partial[0].file_name().unwrap().to_str().unwrap().to_owned();
        for key in [
            name.clone(),
            format!("partial/{name}"),
            format!("../partial/{name}"),
        ] {
            assert!(
                !matches!(blobs.get(&key).await, Ok(Some(_))),
                "{key} reached a partial file"
            );
        }

        writer.abort().await.unwrap();
        assert!(files_under(dir.path()).is_empty());
        assert_eq!(blobs.get("recordings/t1/c1.wav").await.unwrap(), None);

        // A writer dropped unfinished leaves nothing either.
        let mut dropped = blobs
            .writer("recordings/t1/c2.wav", "audio/wav")
            .await
            .unwrap();
        dropped.write(b"RIFF").await.unwrap();
        drop(dropped);
        assert!(files_under(dir.path()).is_empty());
    }

    #[tokio::test]
    async fn put_and_finish_leave_only_the_blob() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = store(dir.path());
        blobs
            .put("a/b.json", Bytes::from_static(b"{}"), "application/json")
            .await
            .unwrap();
        let mut writer = blobs.writer("a/c.wav", "audio/wav").await.unwrap();
        writer.write(b"12").await.unwrap();
        writer.write(b"345").await.unwrap();
        assert_eq!(writer.finish().await.unwrap(), 5);
        // A taken key fails at finish, and its partial file is gone too.
        let mut late = blobs.writer("a/c.wav", "audio/wav").await.unwrap();
        late.write(b"other").await.unwrap();
        assert!(matches!(
            late.finish().await,
            Err(StoreError::Conflict { .. })
        ));
        let mut files = files_under(dir.path());
        files.sort();
        assert_eq!(
            files,
            [
                dir.path().join("objects/a/b.json"),
                dir.path().join("objects/a/c.wav")
            ]
        );
        assert_eq!(
            blobs.get("a/c.wav").await.unwrap().unwrap(),
            Bytes::from_static(b"12345")
        );
        // A folder of longer keys is not a blob.
        assert_eq!(blobs.get("a").await.unwrap(), None);
    }

    #[tokio::test]
    async fn signed_urls_verify_only_as_made() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = store(dir.path());
        let url = blobs
            .url("exports/x.csv", Duration::from_secs(60))
            .await
            .unwrap();
        assert!(url.starts_with("http://localhost:8080/blobs/exports/x.csv?expires="));
        let (key, expires, signature) = query(&url);
        let now = Utc::now();
        assert!(blobs.verify_url(&key, expires, &signature, now));

        let mut wrong = signature.clone().into_bytes();
        wrong[0] = if wrong[0] == b'0' { b'1' } else { b'0' };
        let wrong = String::from_utf8(wrong).unwrap();
        assert!(!blobs.verify_url(&key, expires, &wrong, now));
        assert!(!blobs.verify_url(&key, expires, "not hex", now));
        assert!(!blobs.verify_url(&key, expires, "", now));
        assert!(!blobs.verify_url("exports/y.csv", expires, &signature, now));
        assert!(!blobs.verify_url(&key, expires + 3600, &signature, now));
        let expired = DateTime::from_timestamp(expires, 0).unwrap();
        assert!(!blobs.verify_url(&key, expires, &signature, expired));

        // Another signing key rejects it.
        let other = FsBlobStore::new(dir.path().into(), "http://x".into(), vec![7; 32]).unwrap();
        assert!(!other.verify_url(&key, expires, &signature, now));
    }

    #[tokio::test]
    async fn url_lifetime_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = store(dir.path());
        assert!(blobs.url("k", Duration::ZERO).await.is_err());
        assert!(
            blobs
                .url("k", crate::blob::MAX_URL_LIFETIME + Duration::from_secs(1))
                .await
                .is_err()
        );
        assert!(blobs.url("../k", Duration::from_secs(1)).await.is_err());
    }
}
