//! Jobs and results in one SQLite file: a result and its count in the job
//! change in one transaction, so a process that dies between the two
//! leaves neither.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use mangaassist_core::jobs::JobTask;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{Recorded, StoreError};
use crate::record::{ItemResult, ItemStatus, JobRecord};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    task TEXT NOT NULL,
    language TEXT NOT NULL,
    total INTEGER NOT NULL,
    done INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL,
    noticed_done INTEGER,
    noticed_failed INTEGER
);
CREATE TABLE IF NOT EXISTS results (
    job TEXT NOT NULL,
    item TEXT NOT NULL,
    status TEXT NOT NULL,
    line TEXT NOT NULL,
    PRIMARY KEY (job, item)
) WITHOUT ROWID;
";

/// The job store in a SQLite file.
pub struct SqliteJobs {
    db: Mutex<Connection>,
}

fn store(e: rusqlite::Error) -> StoreError {
    StoreError::Unavailable(e.to_string())
}

fn task(name: &str) -> Result<JobTask, StoreError> {
    serde_json::from_value(serde_json::Value::String(name.to_string()))
        .map_err(|_| StoreError::Corrupt(format!("unknown task {name:?}")))
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

impl SqliteJobs {
    /// The store in the file at `path` (created when missing), synced to
    /// disk at every write.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Connection::open(path).map_err(|e| {
            StoreError::Unavailable(format!("cannot open job store {}: {e}", path.display()))
        })?;
        // Workers in other processes write too: wait for their lock.
        db.busy_timeout(Duration::from_secs(5)).map_err(store)?;
        db.pragma_update(None, "journal_mode", "WAL")
            .map_err(store)?;
        db.pragma_update(None, "synchronous", "FULL")
            .map_err(store)?;
        db.execute_batch(SCHEMA).map_err(store)?;
        Ok(SqliteJobs { db: Mutex::new(db) })
    }

    fn db(&self) -> MutexGuard<'_, Connection> {
        // Every change is one transaction: a poisoned lock guards a
        // consistent database.
        self.db
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(super) fn create(&self, job: &JobRecord) -> Result<(), StoreError> {
        self.db()
            .execute(
                "INSERT INTO jobs (id, owner, task, language, total, done, failed, cost_usd, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    job.id,
                    job.owner,
                    job.task.name(),
                    job.language,
                    job.total as i64,
                    job.done as i64,
                    job.failed as i64,
                    job.cost_usd,
                    job.created_at as i64
                ],
            )
            .map_err(store)?;
        Ok(())
    }

    pub(super) fn delete(&self, job_id: &str) -> Result<(), StoreError> {
        let mut db = self.db();
        let tx = db
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(store)?;
        tx.execute("DELETE FROM results WHERE job = ?1", params![job_id])
            .map_err(store)?;
        tx.execute("DELETE FROM jobs WHERE id = ?1", params![job_id])
            .map_err(store)?;
        tx.commit().map_err(store)
    }

    pub(super) fn get(&self, job_id: &str) -> Result<Option<JobRecord>, StoreError> {
        read_job(&self.db(), job_id)
    }

    pub(super) fn is_done(&self, job_id: &str, item_id: &str) -> Result<bool, StoreError> {
        let status: Option<String> = self
            .db()
            .query_row(
                "SELECT status FROM results WHERE job = ?1 AND item = ?2",
                params![job_id, item_id],
                |row| row.get(0),
            )
            .optional()
            .map_err(store)?;
        Ok(status.as_deref() == Some(ItemStatus::Done.name()))
    }

    pub(super) fn record(&self, job_id: &str, result: &ItemResult) -> Result<Recorded, StoreError> {
        let mut db = self.db();
        // IMMEDIATE: read and write under one lock, so two workers that
        // both answered an item cannot both count it.
        let tx = db
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(store)?;
        let Some(_) = read_job(&tx, job_id)? else {
            return Ok(Recorded::NoJob);
        };
        let before: Option<String> = tx
            .query_row(
                "SELECT status FROM results WHERE job = ?1 AND item = ?2",
                params![job_id, result.id],
                |row| row.get(0),
            )
            .optional()
            .map_err(store)?;
        let (done, failed) = match (before.as_deref(), result.status) {
            (None, ItemStatus::Done) => (1, 0),
            (None, ItemStatus::Failed) => (0, 1),
            (Some("failed"), ItemStatus::Done) => (1, -1),
            _ => return Ok(Recorded::Duplicate),
        };
        tx.execute(
            "INSERT INTO results (job, item, status, line) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (job, item) DO UPDATE SET status = excluded.status, line = excluded.line",
            params![job_id, result.id, result.status.name(), result.line()],
        )
        .map_err(store)?;
        tx.execute(
            "UPDATE jobs SET done = done + ?2, failed = failed + ?3, cost_usd = cost_usd + ?4 WHERE id = ?1",
            params![job_id, done, failed, result.cost_usd],
        )
        .map_err(store)?;
        let job = read_job(&tx, job_id)?;
        tx.commit().map_err(store)?;
        Ok(job.map_or(Recorded::NoJob, Recorded::First))
    }

    pub(super) fn results(&self, job_id: &str) -> Result<Vec<ItemResult>, StoreError> {
        let db = self.db();
        let mut query = db
            .prepare_cached("SELECT item, line FROM results WHERE job = ?1 ORDER BY item")
            .map_err(store)?;
        let rows = query
            .query_map(params![job_id], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })
            .map_err(store)?;
        let mut results = Vec::new();
        for row in rows {
            let (item, line) = row.map_err(store)?;
            results.push(
                serde_json::from_str(&line)
                    .map_err(|e| StoreError::Corrupt(format!("result of {item}: {e}")))?,
            );
        }
        Ok(results)
    }

    pub(super) fn claim_notice(
        &self,
        job_id: &str,
        done: u64,
        failed: u64,
    ) -> Result<bool, StoreError> {
        let changed = self
            .db()
            .execute(
                "UPDATE jobs SET noticed_done = ?2, noticed_failed = ?3
                 WHERE id = ?1 AND (noticed_done IS NULL OR (noticed_failed > 0 AND ?3 = 0))",
                params![job_id, done as i64, failed as i64],
            )
            .map_err(store)?;
        Ok(changed == 1)
    }
}

fn read_job(db: &Connection, job_id: &str) -> Result<Option<JobRecord>, StoreError> {
    let row = db
        .query_row(
            "SELECT id, owner, task, language, total, done, failed, cost_usd, created_at, noticed_done, noticed_failed FROM jobs WHERE id = ?1",
            params![job_id],
            |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, i64>(4)?,
                    row.get::<_, i64>(5)?,
                    row.get::<_, i64>(6)?,
                    row.get::<_, f64>(7)?,
                    row.get::<_, i64>(8)?,
                    row.get::<_, Option<i64>>(9)?,
                    row.get::<_, Option<i64>>(10)?,
                ))
            },
        )
        .optional()
        .map_err(store)?;
    let Some((
        id,
        owner,
        task_name,
        language,
        total,
        done,
        failed,
        cost_usd,
        created_at,
        noticed_done,
        noticed_failed,
    )) = row
    else {
        return Ok(None);
    };
    Ok(Some(JobRecord {
        id,
        owner,
        task: task(&task_name)?,
        language,
        total: count(total),
        done: count(done),
        failed: count(failed),
        cost_usd,
        created_at: count(created_at),
        noticed: noticed_done
            .zip(noticed_failed)
            .map(|(d, f)| (count(d), count(f))),
    }))
}
