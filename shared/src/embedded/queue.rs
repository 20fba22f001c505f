//! The embedded queue: SQS's at-least-once delivery on a SQLite table that every named
//! queue shares. Times come from the database's clock (milliseconds), so a
//! [`crate::clock::ManualClock`] drives delays, visibility and redelivery in tests.

use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Transaction, params};
use uuid::Uuid;

use super::sqlite::{DbError, SqliteDb, to_sql_int};
use crate::error::StoreResult;
use crate::queue::{Delivery, Queue, validate_receive, validate_send};

/// How often an empty receive looks again while it waits.
const POLL_EVERY: Duration = Duration::from_millis(50);

/// [`Queue`] named `name` on a [`SqliteDb`].
#[derive(Clone, Debug)]
pub struct SqliteQueue {
    db: SqliteDb,
    name: String,
    max_receives: u32,
}

impl SqliteQueue {
    /// A message delivered `max_receives` times (at least 1) and not deleted goes to the
    /// dead-letter queue on its next receive, as SQS's redrive policy does.
    pub fn new(db: SqliteDb, name: &str, max_receives: u32) -> Self {
        SqliteQueue {
            db,
            name: name.to_owned(),
            max_receives: max_receives.max(1),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    fn now_ms(&self) -> i64 {
        self.db.clock().now().timestamp_millis()
    }

    /// One pass over the visible messages, in one transaction.
    async fn receive_once(&self, max: usize, visibility: Duration) -> StoreResult<Vec<Delivery>> {
        let queue = self.name.clone();
        let max_receives = i64::from(self.max_receives);
        let clock = self.db.clock();
        let visibility = to_sql_int("visibility", visibility.as_millis() as u64)?;
        self.db
            .write(move |tx| {
                let now = clock.now().timestamp_millis();
                let mut out = Vec::new();
                // With a zero visibility a delivered message is visible again at once, so
                // it is remembered and skipped instead of delivered twice.
                let mut delivered = Vec::new();
                // Dead-lettered messages take no place in the result, so look again
                // until it is full or nothing visible is left.
                loop {
                    let want = max - out.len() + delivered.len();
                    let candidates = visible(tx, &queue, now, want)?;
                    let exhausted = candidates.len() < want;
                    for (seq, message_id, body, count) in candidates {
                        if out.len() == max {
                            break;
                        }
                        if delivered.contains(&seq) {
                            continue;
                        }
                        if count >= max_receives {
                            tx.execute(
                                "UPDATE queue_messages SET dead_at = ?2, receipt = NULL WHERE seq = ?1",
                                params![seq, now],
                            )?;
                            continue;
                        }
                        let receipt = Uuid::new_v4().simple().to_string();
                        tx.execute(
                            "UPDATE queue_messages SET receive_count = ?2, receipt = ?3, \
                             visible_at = ?4 WHERE seq = ?1",
                            params![seq, count + 1, receipt, now.saturating_add(visibility)],
                        )?;
                        delivered.push(seq);
                        out.push(Delivery {
                            message_id,
                            receipt,
                            body,
                            receive_count: u32::try_from(count + 1).unwrap_or(u32::MAX),
                        });
                    }
                    if exhausted || out.len() == max {
                        return Ok(out);
                    }
                }
            })
            .await
    }
}

type Candidate = (i64, String, String, i64);

fn visible(
    tx: &Transaction<'_>,
    queue: &str,
    now: i64,
    max: usize,
) -> Result<Vec<Candidate>, DbError> {
    let mut stmt = tx.prepare(
        "SELECT seq, message_id, body, receive_count FROM queue_messages \
         WHERE queue = ?1 AND dead_at IS NULL AND visible_at <= ?2 \
         ORDER BY visible_at, seq LIMIT ?3",
    )?;
    let rows = stmt.query_map(params![queue, now, to_sql_int("max", max as u64)?], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[async_trait]
impl Queue for SqliteQueue {
    async fn send(&self, body: &str, delay: Duration) -> StoreResult<String> {
        validate_send(body, delay)?;
        let visible_at = self
            .now_ms()
            .saturating_add(to_sql_int("delay", delay.as_millis() as u64)?);
        let message_id = Uuid::new_v4().to_string();
        let (queue, id, body) = (self.name.clone(), message_id.clone(), body.to_owned());
        self.db
            .write(move |tx| {
                tx.execute(
                    "INSERT INTO queue_messages (queue, message_id, body, visible_at) \
                     VALUES (?1, ?2, ?3, ?4)",
                    params![queue, id, body, visible_at],
                )?;
                Ok(())
            })
            .await?;
        Ok(message_id)
    }

    async fn receive(
        &self,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> StoreResult<Vec<Delivery>> {
        validate_receive(max, visibility, wait)?;
        // Waiting is about not busy-looping, so it is measured by real time.
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let got = self.receive_once(max, visibility).await?;
            if !got.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(got);
            }
            tokio::time::sleep(POLL_EVERY.min(deadline - tokio::time::Instant::now())).await;
        }
    }

    async fn delete(&self, receipt: &str) -> StoreResult<()> {
        let (queue, receipt) = (self.name.clone(), receipt.to_owned());
        self.db
            .write(move |tx| {
                // Only the latest delivery's receipt is stored, so an older one matches
                // nothing; dead messages have none.
                tx.execute(
                    "DELETE FROM queue_messages WHERE queue = ?1 AND receipt = ?2",
                    [queue, receipt],
                )?;
                Ok(())
            })
            .await
    }

    async fn dead_letters(&self, max: usize) -> StoreResult<Vec<Delivery>> {
        let queue = self.name.clone();
        let max = to_sql_int("max", max as u64)?;
        self.db
            .read(move |conn| {
                let mut stmt = conn.prepare(
                    "SELECT message_id, body, receive_count FROM queue_messages \
                     WHERE queue = ?1 AND dead_at IS NOT NULL ORDER BY dead_at, seq LIMIT ?2",
                )?;
                let rows = stmt.query_map(params![queue, max], |r| {
                    Ok(Delivery {
                        message_id: r.get(0)?,
                        // Left where it is, so there is nothing to delete it by.
                        receipt: String::new(),
                        body: r.get(1)?,
                        receive_count: r.get(2)?,
                    })
                })?;
                Ok(rows.collect::<Result<_, _>>()?)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::clock::ManualClock;

    const VIS: Duration = Duration::from_secs(30);

    async fn queue(max_receives: u32) -> (tempfile::TempDir, ManualClock, SqliteQueue) {
        let dir = tempfile::tempdir().unwrap();
        let clock = ManualClock::new(Utc.with_ymd_and_hms(2025, 3, 1, 9, 0, 0).unwrap());
        let db = SqliteDb::open(&dir.path().join("parley.db"), Arc::new(clock.clone())).unwrap();
        (dir, clock, SqliteQueue::new(db, "dial", max_receives))
    }

    #[tokio::test]
    async fn delay_and_visibility_follow_the_clock() {
        let (_dir, clock, q) = queue(5).await;
        q.send("later", Duration::from_secs(60)).await.unwrap();
        assert!(q.receive(10, VIS, Duration::ZERO).await.unwrap().is_empty());
        clock.advance(chrono::Duration::seconds(59));
        assert!(q.receive(10, VIS, Duration::ZERO).await.unwrap().is_empty());
        clock.advance(chrono::Duration::seconds(1));
        let first = q.receive(10, VIS, Duration::ZERO).await.unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].receive_count, 1);

        // Hidden for the visibility timeout, then delivered again with a new receipt.
        clock.advance(chrono::Duration::seconds(29));
        assert!(q.receive(10, VIS, Duration::ZERO).await.unwrap().is_empty());
        clock.advance(chrono::Duration::seconds(1));
        let second = q.receive(10, VIS, Duration::ZERO).await.unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].message_id, first[0].message_id);
        assert_eq!(second[0].receive_count, 2);
        assert_ne!(second[0].receipt, first[0].receipt);

        // The stale receipt deletes nothing; the current one does.
        q.delete(&first[0].receipt).await.unwrap();
        clock.advance(chrono::Duration::seconds(30));
        let third = q.receive(10, VIS, Duration::ZERO).await.unwrap();
        assert_eq!(third.len(), 1);
        q.delete(&third[0].receipt).await.unwrap();
        clock.advance(chrono::Duration::seconds(30));
        assert!(q.receive(10, VIS, Duration::ZERO).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn dead_letter_after_max_receives() {
        let (_dir, clock, q) = queue(2).await;
        let id = q.send("job", Duration::ZERO).await.unwrap();
        for n in 1..=2 {
            let got = q.receive(1, VIS, Duration::ZERO).await.unwrap();
            assert_eq!(
                (got[0].message_id.as_str(), got[0].receive_count),
                (id.as_str(), n)
            );
            clock.advance(chrono::Duration::seconds(30));
        }
        assert!(q.dead_letters(10).await.unwrap().is_empty());
        let kept = q.send("other", Duration::ZERO).await.unwrap();
        let stale = q.receive(1, VIS, Duration::ZERO).await.unwrap();
        // The third receive moves the job to the dead letters and fills its place.
        assert_eq!(stale.len(), 1);
        assert_eq!(stale[0].message_id, kept);
        let dead = q.dead_letters(10).await.unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(
            (dead[0].message_id.as_str(), dead[0].body.as_str()),
            (id.as_str(), "job")
        );
        assert_eq!(dead[0].receive_count, 2);
        // Left where they are, and never delivered again.
        clock.advance(chrono::Duration::hours(1));
        let again = q.receive(10, VIS, Duration::ZERO).await.unwrap();
        assert!(again.iter().all(|d| d.message_id != id));
        assert_eq!(q.dead_letters(10).await.unwrap().len(), 1);
    }

    #[tokio::test]
    async fn queues_sharing_the_table_stay_apart() {
        let (_dir, _clock, dial) = queue(3).await;
        let other = SqliteQueue::new(dial.db.clone(), "retries", 3);
        other.send("retry", Duration::ZERO).await.unwrap();
        assert!(
            dial.receive(10, VIS, Duration::ZERO)
                .await
                .unwrap()
                .is_empty()
        );
        let got = other.receive(10, VIS, Duration::ZERO).await.unwrap();
        assert_eq!(got.len(), 1);
        // A receipt from one queue deletes nothing in another.
        dial.delete(&got[0].receipt).await.unwrap();
        let n: i64 = dial
            .db
            .read(|c| Ok(c.query_row("SELECT COUNT(*) FROM queue_messages", [], |r| r.get(0))?))
            .await
            .unwrap();
        assert_eq!(n, 1);
    }

    #[tokio::test]
    async fn an_empty_receive_waits_then_returns() {
        let (_dir, _clock, q) = queue(3).await;
        let started = std::time::Instant::now();
        let got = q.receive(1, VIS, Duration::from_millis(200)).await.unwrap();
        assert!(got.is_empty());
        assert!(started.elapsed() >= Duration::from_millis(200));
    }
}
