//! The embedded adapters: every port on one data directory, for the local stack and
//! tests. No service to run, nothing to configure.
//!
//! - `parley.db`: one SQLite database (WAL) holding the events, the views and the queues
//!   ([`SqliteDb`], [`SqliteEventStore`], [`SqliteViewStore`], [`SqliteQueue`]).
//! - `blobs/`: the blobs as files ([`FsBlobStore`]).
//! - `blob-url.key`: the key that signs blob URLs, made on first open.

mod blobs;
mod events;
mod queue;
mod secrets;
mod sqlite;
mod views;

use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Arc;

pub use blobs::FsBlobStore;
pub use events::SqliteEventStore;
pub use queue::SqliteQueue;
pub use secrets::SqliteSecretStore;
pub use sqlite::SqliteDb;
pub use views::SqliteViewStore;

use crate::clock::Clock;
use crate::error::{StoreError, StoreResult};

/// The length of the blob URL signing key, in bytes.
const URL_KEY_BYTES: usize = 32;

/// Every embedded adapter, opened on one data directory.
#[derive(Clone, Debug)]
pub struct Embedded {
    pub db: SqliteDb,
    pub events: SqliteEventStore,
    pub views: SqliteViewStore,
    /// The queue named `dial`.
    pub dial_queue: SqliteQueue,
    pub message_queue: SqliteQueue,
    pub blobs: FsBlobStore,
    pub secrets: SqliteSecretStore,
}

impl Embedded {
    /// Opens (creating if absent) the data directory. Blob URLs point at `url_base`; a
    /// dial message goes to the dead letters after `max_receives` deliveries. Blocking:
    /// it is start-up work.
    pub fn open(
        data_dir: &Path,
        clock: Arc<dyn Clock>,
        url_base: String,
        max_receives: u32,
    ) -> StoreResult<Embedded> {
        std::fs::create_dir_all(data_dir).map_err(|e| StoreError::Backend {
            what: format!("data directory {}", data_dir.display()),
            detail: e.to_string(),
            retryable: false,
        })?;
        let db = SqliteDb::open(&data_dir.join("parley.db"), clock)?;
        let signing_key = url_key(&data_dir.join("blob-url.key"))?;
        Ok(Embedded {
            events: SqliteEventStore::new(db.clone()),
            views: SqliteViewStore::new(db.clone()),
            dial_queue: SqliteQueue::new(db.clone(), "dial", max_receives),
            message_queue: SqliteQueue::new(db.clone(), "messages", max_receives),
            secrets: SqliteSecretStore::new(db.clone()),
            blobs: FsBlobStore::new(data_dir.join("blobs"), url_base, signing_key)?,
            db,
        })
    }
}

/// Reads the blob URL signing key, making it (readable by the owner only) on first use,
/// so URLs stay valid across restarts.
fn url_key(path: &Path) -> StoreResult<Vec<u8>> {
    let what = || format!("blob URL key {}", path.display());
    let io_err = |e: io::Error| StoreError::Backend {
        what: what(),
        detail: e.to_string(),
        retryable: false,
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(mut file) => {
            let key: [u8; URL_KEY_BYTES] = rand::random();
            file.write_all(&key)
                .and_then(|()| file.sync_all())
                .map_err(io_err)?;
            return Ok(key.to_vec());
        }
        // Made by an earlier open (or a concurrent one): use it.
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(io_err(e)),
    }
    let mut key = Vec::new();
    std::fs::File::open(path)
        .and_then(|mut file| file.read_to_end(&mut key))
        .map_err(io_err)?;
    if key.len() != URL_KEY_BYTES {
        return Err(StoreError::Corrupt {
            what: what(),
            detail: format!("{} bytes, expected {URL_KEY_BYTES}", key.len()),
        });
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::blob::BlobStore;
    use crate::clock::SystemClock;

    #[tokio::test]
    async fn opens_a_data_directory_and_keeps_its_url_key() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let first = Embedded::open(&data, Arc::new(SystemClock), "http://l".into(), 5).unwrap();
        let url = first
            .blobs
            .url("k", std::time::Duration::from_secs(60))
            .await
            .unwrap();
        drop(first);

        let key_file = data.join("blob-url.key");
        assert_eq!(std::fs::read(&key_file).unwrap().len(), URL_KEY_BYTES);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(data.join("parley.db").is_file());

        // Reopened, the same key still verifies the earlier URL.
        let again = Embedded::open(&data, Arc::new(SystemClock), "http://l".into(), 5).unwrap();
        let query = url.split_once('?').unwrap().1;
        let (expires, signature) = query.split_once('&').unwrap();
        let expires: i64 = expires.trim_start_matches("expires=").parse().unwrap();
        let signature = signature.trim_start_matches("signature=");
        assert!(
            again
                .blobs
                .verify_url("k", expires, signature, chrono::Utc::now())
        );
    }

    #[test]
    fn a_damaged_url_key_is_refused_not_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("blob-url.key");
        std::fs::write(&key_file, b"short").unwrap();
        let err =
            Embedded::open(dir.path(), Arc::new(SystemClock), "http://l".into(), 5).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt { .. }), "{err:?}");
        assert_eq!(std::fs::read(&key_file).unwrap(), b"short");
    }
}
