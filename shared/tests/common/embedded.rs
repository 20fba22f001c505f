//! Embedded adapters in a temporary data directory that lives as long as the returned
//! guard.

use std::sync::Arc;

use parley_shared::clock::SystemClock;
use parley_shared::embedded::{
    FsBlobStore, SqliteDb, SqliteEventStore, SqliteQueue, SqliteSecretStore, SqliteViewStore,
};
use tempfile::TempDir;

pub struct Guard(pub TempDir);

fn db() -> (SqliteDb, Guard) {
    let dir = tempfile::tempdir().expect("temp dir");
    let db = SqliteDb::open(&dir.path().join("parley.db"), Arc::new(SystemClock)).expect("open db");
    (db, Guard(dir))
}

pub async fn event_store() -> (SqliteEventStore, Guard) {
    let (db, guard) = db();
    (SqliteEventStore::new(db), guard)
}

pub async fn view_store() -> (SqliteViewStore, Guard) {
    let (db, guard) = db();
    (SqliteViewStore::new(db), guard)
}

pub async fn queue(max_receives: u32) -> (SqliteQueue, Guard) {
    let (db, guard) = db();
    (SqliteQueue::new(db, "dial", max_receives), guard)
}

pub async fn secret_store() -> (SqliteSecretStore, Guard) {
    let (db, guard) = db();
    (SqliteSecretStore::new(db), guard)
}

pub async fn blob_store() -> (FsBlobStore, Guard) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = FsBlobStore::new(
        dir.path().join("blobs"),
        "http://127.0.0.1:8080".into(),
        b"test signing key of 32 bytes....".to_vec(),
    )
    .expect("blob store");
    (store, Guard(dir))
}
