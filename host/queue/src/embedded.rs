//! The embedded queue: every queue of a process in one SQLite file, each
//! operation one transaction, so a process that dies loses nothing that
//! was sent and repeats nothing that was deleted. Visibility timeouts,
//! receive counts, dead-letter queues and FIFO groups as SQS has them.
//! Blocking calls (SQLite), kept short; async callers run them on the
//! blocking pool.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use crate::{
    DeadLetter, Depth, MAX_BATCH, MAX_VISIBILITY, Outgoing, QueueError, QueuePolicy, Received,
};

/// Queues in one SQLite database.
pub struct EmbeddedQueue {
    db: Mutex<Connection>,
    policy: QueuePolicy,
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    grp TEXT,
    dedup TEXT,
    visible_at INTEGER NOT NULL,
    receives INTEGER NOT NULL DEFAULT 0,
    receipt TEXT,
    dead INTEGER NOT NULL DEFAULT 0,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS ready ON messages (queue, dead, visible_at, seq);
CREATE INDEX IF NOT EXISTS groups ON messages (queue, grp, seq);
CREATE UNIQUE INDEX IF NOT EXISTS dedup ON messages (queue, dedup) WHERE dedup IS NOT NULL;
CREATE UNIQUE INDEX IF NOT EXISTS receipts ON messages (receipt) WHERE receipt IS NOT NULL;
";

fn store(e: rusqlite::Error) -> QueueError {
    QueueError::Store(e.to_string())
}

fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl EmbeddedQueue {
    /// The queues in the database file at `path` (created when missing).
    /// Writes are synced to disk before they return (WAL, synchronous =
    /// FULL): a sent message survives the process and the machine.
    pub fn open(path: &Path, policy: QueuePolicy) -> Result<Self, QueueError> {
        let db = Connection::open(path).map_err(|e| {
            QueueError::Store(format!("cannot open queue file {}: {e}", path.display()))
        })?;
        // Another process (a worker) may hold the write lock briefly; set
        // first, so switching to WAL waits for it too.
        db.busy_timeout(Duration::from_secs(5)).map_err(store)?;
        db.pragma_update(None, "journal_mode", "WAL")
            .map_err(store)?;
        db.pragma_update(None, "synchronous", "FULL")
            .map_err(store)?;
        db.execute_batch(SCHEMA).map_err(store)?;
        Ok(EmbeddedQueue {
            db: Mutex::new(db),
            policy,
        })
    }

    fn db(&self) -> MutexGuard<'_, Connection> {
        // Every change is one transaction: a poisoned lock guards a
        // consistent database.
        self.db
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Sends `messages` to `queue`; how many were new (a message whose
    /// deduplication id is already in the queue is dropped).
    pub fn send(&self, queue: &str, messages: &[Outgoing]) -> Result<usize, QueueError> {
        let mut db = self.db();
        // IMMEDIATE: take the write lock first. A deferred transaction that
        // reads, then writes, fails at once ("database is locked") when
        // another process wrote meanwhile; this one waits its turn.
        let tx = db
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(store)?;
        let mut added = 0;
        {
            let mut insert = tx
                .prepare_cached(
                    "INSERT OR IGNORE INTO messages (queue, body, grp, dedup, visible_at) VALUES (?1, ?2, ?3, ?4, ?5)",
                )
                .map_err(store)?;
            let now = now_ms();
            for m in messages {
                added += insert
                    .execute(params![queue, m.body, m.group, m.dedup_id, now])
                    .map_err(store)?;
            }
        }
        tx.commit().map_err(store)?;
        Ok(added)
    }

    /// Up to `max` (at most 10) messages of `queue` that are visible, each
    /// hidden for `visibility`. Of a FIFO group only the oldest message is
    /// ever handed out, and only when none of the group is in flight. A
    /// message already received `max_receives` times goes to the
    /// dead-letter queue instead.
    pub fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
    ) -> Result<Vec<Received>, QueueError> {
        if visibility > MAX_VISIBILITY {
            return Err(QueueError::Invalid(format!(
                "visibility {} s is over the limit of {} s",
                visibility.as_secs(),
                MAX_VISIBILITY.as_secs()
            )));
        }
        let max = max.clamp(1, MAX_BATCH);
        let mut db = self.db();
        // IMMEDIATE: take the write lock first. A deferred transaction that
        // reads, then writes, fails at once ("database is locked") when
        // another process wrote meanwhile; this one waits its turn.
        let tx = db
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(store)?;
        // Read after the lock: time spent waiting for it is not taken
        // from the visibility.
        let now = now_ms();
        let mut out = Vec::new();
        {
            let mut candidates = tx
                .prepare_cached(
                    "SELECT seq, body, receives, last_error FROM messages m
                     WHERE queue = ?1 AND dead = 0 AND visible_at <= ?2
                       AND (grp IS NULL OR NOT EXISTS (
                           SELECT 1 FROM messages o
                           WHERE o.queue = m.queue AND o.grp = m.grp AND o.dead = 0 AND o.seq < m.seq))
                     ORDER BY seq LIMIT ?3",
                )
                .map_err(store)?;
            // Room for the ones moved to the dead-letter queue on the way.
            let limit = i64::try_from(max * 4).unwrap_or(40);
            let rows = candidates
                .query_map(params![queue, now, limit], |r| {
                    Ok((
                        r.get::<_, i64>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, u32>(2)?,
                        r.get::<_, Option<String>>(3)?,
                    ))
                })
                .map_err(store)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(store)?;
            for (seq, body, receives, last_error) in rows {
                if out.len() == max {
                    break;
                }
                if receives >= self.policy.max_receives {
                    tx.execute(
                        "UPDATE messages SET dead = 1, receipt = NULL WHERE seq = ?1",
                        params![seq],
                    )
                    .map_err(store)?;
                    tracing::warn!(
                        queue,
                        receives,
                        last_error = last_error.as_deref().unwrap_or(""),
                        "message moved to the dead-letter queue"
                    );
                    continue;
                }
                let receipt = uuid::Uuid::new_v4().to_string();
                tx.execute(
                    "UPDATE messages SET receives = receives + 1, visible_at = ?2, receipt = ?3 WHERE seq = ?1",
                    params![seq, now.saturating_add(ms(visibility)), receipt],
                )
                .map_err(store)?;
                out.push(Received {
                    body,
                    receipt,
                    receive_count: receives + 1,
                    last_error,
                });
            }
        }
        tx.commit().map_err(store)?;
        Ok(out)
    }

    /// Deletes a received message (its work is done). False when the
    /// receipt is stale: the message became visible and was received again,
    /// so the other receiver now owns it.
    pub fn delete(&self, receipt: &str) -> Result<bool, QueueError> {
        let n = self
            .db()
            .execute("DELETE FROM messages WHERE receipt = ?1", params![receipt])
            .map_err(store)?;
        Ok(n > 0)
    }

    /// Hides a received message for `visibility` from now (a long item
    /// extends it while it runs). False when the receipt is stale.
    pub fn change_visibility(
        &self,
        receipt: &str,
        visibility: Duration,
    ) -> Result<bool, QueueError> {
        let n = self
            .db()
            .execute(
                "UPDATE messages SET visible_at = ?2 WHERE receipt = ?1 AND dead = 0",
                params![receipt, now_ms().saturating_add(ms(visibility))],
            )
            .map_err(store)?;
        Ok(n > 0)
    }

    /// Gives a received message back after a failed attempt: visible again
    /// after `delay` (the backoff), with `error` kept as its last error.
    /// False when the receipt is stale.
    pub fn release(&self, receipt: &str, delay: Duration, error: &str) -> Result<bool, QueueError> {
        let n = self
            .db()
            .execute(
                "UPDATE messages SET visible_at = ?2, last_error = ?3 WHERE receipt = ?1 AND dead = 0",
                params![receipt, now_ms().saturating_add(ms(delay)), error],
            )
            .map_err(store)?;
        Ok(n > 0)
    }

    /// Gives up on a received message: into the dead-letter queue at once,
    /// with `error` as its last error. False when the receipt is stale.
    pub fn bury(&self, receipt: &str, error: &str) -> Result<bool, QueueError> {
        let n = self
            .db()
            .execute(
                "UPDATE messages SET dead = 1, receipt = NULL, last_error = ?2 WHERE receipt = ?1 AND dead = 0",
                params![receipt, error],
            )
            .map_err(store)?;
        Ok(n > 0)
    }

    /// The messages in `queue`'s dead-letter queue, oldest first.
    pub fn dead_letters(&self, queue: &str) -> Result<Vec<DeadLetter>, QueueError> {
        let db = self.db();
        let mut select = db
            .prepare_cached(
                "SELECT body, receives, last_error FROM messages WHERE queue = ?1 AND dead = 1 ORDER BY seq",
            )
            .map_err(store)?;
        let rows = select
            .query_map(params![queue], |r| {
                Ok(DeadLetter {
                    body: r.get(0)?,
                    receive_count: r.get(1)?,
                    last_error: r.get(2)?,
                })
            })
            .map_err(store)?
            .collect::<Result<Vec<_>, _>>()
            .map_err(store)?;
        Ok(rows)
    }

    /// Moves every dead letter of `queue` back, visible at once with its
    /// receive count reset (after the cause was fixed); how many moved.
    pub fn redrive(&self, queue: &str) -> Result<usize, QueueError> {
        self.db()
            .execute(
                "UPDATE messages SET dead = 0, receives = 0, receipt = NULL, visible_at = ?2 WHERE queue = ?1 AND dead = 1",
                params![queue, now_ms()],
            )
            .map_err(store)
    }

    /// How many messages `queue` holds, by state.
    pub fn depth(&self, queue: &str) -> Result<Depth, QueueError> {
        let now = now_ms();
        let db = self.db();
        let count = |sql: &str| -> Result<u64, QueueError> {
            db.query_row(sql, params![queue, now], |r| r.get::<_, i64>(0))
                .optional()
                .map_err(store)
                .map(|n| u64::try_from(n.unwrap_or(0)).unwrap_or(0))
        };
        Ok(Depth {
            visible: count(
                "SELECT COUNT(*) FROM messages WHERE queue = ?1 AND dead = 0 AND visible_at <= ?2",
            )?,
            in_flight: count(
                "SELECT COUNT(*) FROM messages WHERE queue = ?1 AND dead = 0 AND visible_at > ?2",
            )?,
            dead: count("SELECT COUNT(*) FROM messages WHERE queue = ?1 AND dead = 1 AND ?2 >= 0")?,
        })
    }
}
