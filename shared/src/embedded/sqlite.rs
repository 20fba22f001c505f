//! The one SQLite database (WAL mode) behind the embedded event store, view store and
//! queues: opening it, its schema, and running work on its connections off the async
//! runtime.
//!
//! One writer connection behind a mutex serialises every write (`BEGIN IMMEDIATE`), so
//! writers never deadlock on lock upgrades; a small pool of read-only connections reads
//! beside it, which WAL allows. Writes that arrive while another commits are committed
//! together (group commit): each runs in its own savepoint, so one failing undoes only
//! itself, and none is acknowledged before the shared commit is durable. Concurrent
//! writers then share one fsync instead of queueing for one each. A damaged file is reported as [`StoreError::Corrupt`] and
//! never rewritten: nothing here deletes, truncates or recreates the file.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OpenFlags, Transaction, TransactionBehavior};

use crate::clock::Clock;
use crate::error::{StoreError, StoreResult};

/// The schema this build writes, kept in `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 2;

/// How long a statement waits for another process's lock before failing as busy.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Idle reader connections kept for reuse; more are opened when needed and closed after.
const MAX_IDLE_READERS: usize = 4;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS events (
    position       INTEGER PRIMARY KEY AUTOINCREMENT,
    stream         TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    event_type     TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    tenant_id      TEXT    NOT NULL,
    correlation_id TEXT    NOT NULL,
    occurred_at    TEXT    NOT NULL,
    data           TEXT    NOT NULL,
    UNIQUE (stream, version)
);
CREATE TABLE IF NOT EXISTS idempotency_keys (
    key           TEXT    PRIMARY KEY,
    stream        TEXT    NOT NULL,
    first_version INTEGER NOT NULL,
    last_version  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS views (
    collection TEXT    NOT NULL,
    key        TEXT    NOT NULL,
    revision   INTEGER NOT NULL,
    body       TEXT    NOT NULL,
    idx1_p     TEXT,
    idx1_s     TEXT,
    idx2_p     TEXT,
    idx2_s     TEXT,
    PRIMARY KEY (collection, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS views_idx1 ON views (idx1_p, idx1_s, collection, key);
CREATE INDEX IF NOT EXISTS views_idx2 ON views (idx2_p, idx2_s, collection, key);
CREATE TABLE IF NOT EXISTS queue_messages (
    seq           INTEGER PRIMARY KEY AUTOINCREMENT,
    queue         TEXT    NOT NULL,
    message_id    TEXT    NOT NULL UNIQUE,
    body          TEXT    NOT NULL,
    visible_at    INTEGER NOT NULL, -- ms since the epoch, by the store's clock
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt       TEXT    UNIQUE,   -- of the latest delivery; NULL once dead
    dead_at       INTEGER           -- ms; NULL while the message is live
);
CREATE INDEX IF NOT EXISTS queue_ready ON queue_messages (queue, visible_at, seq)
    WHERE dead_at IS NULL;
CREATE INDEX IF NOT EXISTS queue_dead ON queue_messages (queue, dead_at, seq)
    WHERE dead_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
";

/// A failure inside a closure run on a connection: SQLite's own (mapped to a
/// [`StoreError`] naming the file) or one the closure decided on.
#[derive(Debug)]
pub(crate) enum DbError {
    Sql(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for DbError {
    fn from(e: rusqlite::Error) -> Self {
        DbError::Sql(e)
    }
}

impl From<StoreError> for DbError {
    fn from(e: StoreError) -> Self {
        DbError::Store(e)
    }
}

/// A cloneable handle to one SQLite database file. Clones share the connections.
#[derive(Clone)]
pub struct SqliteDb {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    /// `SQLite file <path>`, the name every error carries.
    what: String,
    clock: Arc<dyn Clock>,
    // Readers drop first, so the writer closes last and checkpoints the WAL into the file.
    readers: Mutex<Vec<Connection>>,
    writer: Mutex<Connection>,
    /// Writes waiting for the writer connection, committed together by whichever
    /// blocking task takes the writer next.
    pending: Mutex<Vec<WriteJob>>,
}

/// A write waiting its turn: runs in the shared transaction (or learns why there is
/// none) and returns what delivers its result once the commit's outcome is known.
type WriteJob = Box<dyn FnOnce(Result<&Transaction<'_>, &str>) -> Deliver + Send>;
type Deliver = Box<dyn FnOnce(Result<(), &str>) + Send>;

impl fmt::Debug for SqliteDb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteDb")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

impl SqliteDb {
    /// Opens the database at `path`, creating the file and its schema if absent.
    ///
    /// Blocking (it is start-up work, done once): call it before serving, or from
    /// `spawn_blocking`.
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> StoreResult<SqliteDb> {
        let what = format!("SQLite file {}", path.display());
        let writer = open_writer(path, &what)?;
        Ok(SqliteDb {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                what,
                clock,
                readers: Mutex::new(Vec::new()),
                writer: Mutex::new(writer),
                pending: Mutex::new(Vec::new()),
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The clock the queues read their times from.
    pub fn clock(&self) -> Arc<dyn Clock> {
        self.inner.clock.clone()
    }

    /// Runs `f` in a `BEGIN IMMEDIATE` transaction on the writer connection (shared with
    /// the writes that queued beside it, each in its own savepoint): `f`'s changes are
    /// committed if it succeeds and undone otherwise, and its result comes back only
    /// once the commit is durable.
    pub(crate) async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> Result<T, DbError> + Send + 'static,
    {
        let (send, receive) = tokio::sync::oneshot::channel::<StoreResult<T>>();
        let db = self.clone();
        let job: WriteJob = Box::new(move |tx| {
            let out = match tx {
                Ok(tx) => in_savepoint(tx, f).map_err(|e| db.error(e)),
                Err(why) => Err(db.commit_failed(why)),
            };
            Box::new(move |commit: Result<(), &str>| {
                let result = match commit {
                    Ok(()) => out,
                    Err(why) => Err(db.commit_failed(why)),
                };
                let _ = send.send(result);
            })
        });
        lock(&self.inner.pending).push(job);
        let db = self.clone();
        self.blocking(move || {
            db.commit_pending();
            Ok(())
        })
        .await?;
        receive.await.map_err(|_| StoreError::Backend {
            what: self.inner.what.clone(),
            detail: "the write was lost with its database task".into(),
            retryable: true,
        })?
    }

    /// Takes the writer and commits every write waiting for it as one transaction. Finds
    /// nothing to do when another task already committed this task's write.
    fn commit_pending(&self) {
        let mut conn = lock(&self.inner.writer);
        let jobs = std::mem::take(&mut *lock(&self.inner.pending));
        if jobs.is_empty() {
            return;
        }
        let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
            Ok(tx) => tx,
            Err(e) => {
                let why = map_error(&self.inner.what, e).to_string();
                for job in jobs {
                    job(Err(&why))(Err(&why));
                }
                return;
            }
        };
        let deliveries: Vec<Deliver> = jobs.into_iter().map(|job| job(Ok(&tx))).collect();
        match tx.commit() {
            Ok(()) => deliveries.into_iter().for_each(|d| d(Ok(()))),
            Err(e) => {
                let why = map_error(&self.inner.what, e).to_string();
                deliveries.into_iter().for_each(|d| d(Err(&why)));
            }
        }
    }

    fn commit_failed(&self, why: &str) -> StoreError {
        StoreError::Backend {
            what: self.inner.what.clone(),
            detail: format!("commit failed: {why}"),
            retryable: true,
        }
    }

    /// Runs `f` on a read-only connection; each statement sees the latest commit.
    pub(crate) async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, DbError> + Send + 'static,
    {
        let db = self.clone();
        self.blocking(move || {
            let pooled = lock(&db.inner.readers).pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => open_reader(&db.inner.path)?,
            };
            let out = f(&conn);
            let mut idle = lock(&db.inner.readers);
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
            out
        })
        .await
    }

    async fn blocking<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce() -> Result<T, DbError> + Send + 'static,
    {
        let db = self.clone();
        tokio::task::spawn_blocking(move || f().map_err(|e| db.error(e)))
            .await
            .map_err(|e| join_error(&self.inner.what, e))?
    }

    fn error(&self, e: DbError) -> StoreError {
        match e {
            DbError::Store(e) => e,
            DbError::Sql(e) => map_error(&self.inner.what, e),
        }
    }
}

/// Runs `f` in a savepoint of `tx`: released if `f` succeeds, rolled back if it fails,
/// so that a failed write leaves the writes sharing its transaction untouched.
fn in_savepoint<T>(
    tx: &Transaction<'_>,
    f: impl FnOnce(&Transaction<'_>) -> Result<T, DbError>,
) -> Result<T, DbError> {
    tx.execute_batch("SAVEPOINT parley_write")?;
    match f(tx) {
        Ok(out) => {
            tx.execute_batch("RELEASE parley_write")?;
            Ok(out)
        }
        Err(e) => {
            tx.execute_batch("ROLLBACK TO parley_write; RELEASE parley_write")?;
            Err(e)
        }
    }
}

/// A poisoned lock only means another task panicked mid-statement; SQLite rolled that
/// transaction back, so the connection is still sound.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn open_writer(path: &Path, what: &str) -> StoreResult<Connection> {
    let sql = |e| map_error(what, e);
    let refuse = |detail: String| StoreError::Backend {
        what: what.to_owned(),
        detail,
        retryable: false,
    };
    let mut conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sql)?;
    // The first statement reads the header, so a file that is not a database fails here,
    // before anything could be written to it.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(sql)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(refuse(format!(
            "cannot use WAL mode (journal mode is {mode})"
        )));
    }
    // FULL: an append acknowledged to a caller (a carrier's webhook, say) survives a
    // power loss; NORMAL could lose the last commits. The cost is in the benchmark.
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(sql)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(sql)?;
    if version > SCHEMA_VERSION {
        return Err(refuse(format!(
            "schema version {version} was written by a newer Parley (this one knows {SCHEMA_VERSION})"
        )));
    }
    if version < SCHEMA_VERSION {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql)?;
        tx.execute_batch(SCHEMA).map_err(sql)?;
        tx.pragma_update(None, "user_version", SCHEMA_VERSION)
            .map_err(sql)?;
        tx.commit().map_err(sql)?;
    }
    Ok(conn)
}

fn open_reader(path: &Path) -> Result<Connection, rusqlite::Error> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

fn map_error(what: &str, e: rusqlite::Error) -> StoreError {
    let code = e.sqlite_error_code();
    let detail = e.to_string();
    match code {
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => StoreError::Corrupt {
            what: what.to_owned(),
            detail,
        },
        _ => StoreError::Backend {
            what: what.to_owned(),
            detail,
            retryable: matches!(
                code,
                Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
            ),
        },
    }
}

fn join_error(what: &str, e: tokio::task::JoinError) -> StoreError {
    StoreError::Backend {
        what: what.to_owned(),
        detail: format!("database task failed: {e}"),
        retryable: false,
    }
}

/// Converts a count or version to SQLite's integer.
pub(crate) fn to_sql_int(field: &str, value: u64) -> StoreResult<i64> {
    i64::try_from(value).map_err(|_| StoreError::invalid(field, format!("{value} is too large")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn writes_committed_together_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let db = SqliteDb::open(&dir.path().join("parley.db"), Arc::new(SystemClock)).unwrap();
        // 200 concurrent writers, every seventh failing after it wrote its row.
        let mut writers = tokio::task::JoinSet::new();
        for i in 0..200i64 {
            let db = db.clone();
            writers.spawn(async move {
                let out = db
                    .write(move |tx| {
                        tx.execute(
                            "INSERT INTO secrets (name, value) VALUES (?1, 'x')",
                            [format!("s{i}")],
                        )?;
                        if i % 7 == 0 {
                            return Err(StoreError::invalid("value", "refused").into());
                        }
                        Ok(i)
                    })
                    .await;
                (i, out.is_ok())
            });
        }
        let mut ok = 0;
        while let Some(joined) = writers.join_next().await {
            let (i, succeeded) = joined.unwrap();
            assert_eq!(succeeded, i % 7 != 0, "writer {i}");
            ok += usize::from(succeeded);
        }
        let stored: i64 = db
            .read(|conn| Ok(conn.query_row("SELECT COUNT(*) FROM secrets", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(stored as usize, ok);
        let refused: i64 = db
            .read(|conn| {
                Ok(
                    conn.query_row("SELECT COUNT(*) FROM secrets WHERE name = 's7'", [], |r| {
                        r.get(0)
                    })?,
                )
            })
            .await
            .unwrap();
        assert_eq!(refused, 0);
    }

    #[tokio::test]
    async fn garbage_file_is_refused_and_left_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("parley.db");
        let garbage: Vec<u8> = (0..16 * 1024).map(|i| (i * 7 + 3) as u8).collect();
        std::fs::write(&path, &garbage).unwrap();

        let err = SqliteDb::open(&path, Arc::new(SystemClock)).unwrap_err();
        match err {
            StoreError::Corrupt { what, .. } => {
                assert_eq!(what, format!("SQLite file {}", path.display()));
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        assert_eq!(std::fs::read(&path).unwrap(), garbage);
    }

    #[tokio::test]
    async fn creates_schema_once_and_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("parley.db");
        let db = SqliteDb::open(&path, Arc::new(SystemClock)).unwrap();
        let (mode, version) = db
            .read(|conn| {
                let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0))?;
                let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
                Ok((mode, version))
            })
            .await
            .unwrap();
        assert_eq!((mode.as_str(), version), ("wal", SCHEMA_VERSION));
        drop(db);
        SqliteDb::open(&path, Arc::new(SystemClock)).unwrap();
    }

    #[tokio::test]
    async fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("parley.db");
        Connection::open(&path)
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let err = SqliteDb::open(&path, Arc::new(SystemClock)).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::Backend {
                    retryable: false,
                    ..
                }
            ),
            "{err:?}"
        );
    }
}
