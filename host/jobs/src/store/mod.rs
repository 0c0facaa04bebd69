//! Where jobs and their results live: SQLite on local disk (one process or
//! one machine, the offline default) or one DynamoDB table shared by a
//! fleet. Both record a result exactly once, by job and item id, in the
//! same write that counts it in the job.

mod dynamo;
mod sqlite;

use std::sync::Arc;

pub use dynamo::{DynamoJobs, create_table};
pub use sqlite::SqliteJobs;

use crate::record::{ItemResult, JobRecord};

/// A store operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store did not answer or refused the call.
    #[error("job store failed: {0}")]
    Unavailable(String),
    /// A record in the store is not one this version wrote.
    #[error("job store holds a record it cannot read: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::Unavailable(_) => "job_store_unavailable",
            StoreError::Corrupt(_) => "job_store_corrupt",
        }
    }
}

/// What recording a result did.
#[derive(Debug, Clone, PartialEq)]
pub enum Recorded {
    /// It is the item's result now; the job as counted after it.
    First(JobRecord),
    /// The item already had this outcome (or was answered): nothing changed.
    Duplicate,
    /// No such job (deleted, or never created): the result was not kept.
    NoJob,
}

/// The job store a deployment uses.
#[derive(Clone)]
pub enum JobStore {
    /// SQLite on local disk.
    Sqlite(Arc<SqliteJobs>),
    /// A DynamoDB table.
    Dynamo(Arc<DynamoJobs>),
}

impl JobStore {
    /// Keeps a new job (its counts at zero).
    pub async fn create(&self, job: &JobRecord) -> Result<(), StoreError> {
        match self {
            JobStore::Sqlite(s) => {
                let job = job.clone();
                blocking(s, move |s| s.create(&job)).await
            }
            JobStore::Dynamo(d) => d.create(job).await,
        }
    }

    /// Removes a job and its results (a job whose items could not all be
    /// queued is taken back).
    pub async fn delete(&self, job_id: &str) -> Result<(), StoreError> {
        match self {
            JobStore::Sqlite(s) => {
                let id = job_id.to_string();
                blocking(s, move |s| s.delete(&id)).await
            }
            JobStore::Dynamo(d) => d.delete(job_id).await,
        }
    }

    /// The job, if it exists.
    pub async fn get(&self, job_id: &str) -> Result<Option<JobRecord>, StoreError> {
        match self {
            JobStore::Sqlite(s) => {
                let id = job_id.to_string();
                blocking(s, move |s| s.get(&id)).await
            }
            JobStore::Dynamo(d) => d.get(job_id).await,
        }
    }

    /// Whether item `item_id` of the job is already answered (a message
    /// delivered again after its answer was recorded).
    pub async fn is_done(&self, job_id: &str, item_id: &str) -> Result<bool, StoreError> {
        match self {
            JobStore::Sqlite(s) => {
                let (job, item) = (job_id.to_string(), item_id.to_string());
                blocking(s, move |s| s.is_done(&job, &item)).await
            }
            JobStore::Dynamo(d) => d.is_done(job_id, item_id).await,
        }
    }

    /// Records an item's result and counts it in the job, in one write: a
    /// done result is never replaced; a failed one is replaced by a done
    /// one (an item redriven from the dead-letter queue and answered).
    pub async fn record(&self, job_id: &str, result: &ItemResult) -> Result<Recorded, StoreError> {
        match self {
            JobStore::Sqlite(s) => {
                let (job, result) = (job_id.to_string(), result.clone());
                blocking(s, move |s| s.record(&job, &result)).await
            }
            JobStore::Dynamo(d) => d.record(job_id, result).await,
        }
    }

    /// Every result of the job, by item id.
    pub async fn results(&self, job_id: &str) -> Result<Vec<ItemResult>, StoreError> {
        match self {
            JobStore::Sqlite(s) => {
                let id = job_id.to_string();
                blocking(s, move |s| s.results(&id)).await
            }
            JobStore::Dynamo(d) => d.results(job_id).await,
        }
    }

    /// Claims the completion callback of `job` as counted now: true for
    /// exactly one caller per state (see [`JobRecord::needs_notice`]): the
    /// first completion, and the one after a redrive answered every
    /// failed item.
    pub async fn claim_notice(&self, job: &JobRecord) -> Result<bool, StoreError> {
        match self {
            JobStore::Sqlite(s) => {
                let (id, done, failed) = (job.id.clone(), job.done, job.failed);
                blocking(s, move |s| s.claim_notice(&id, done, failed)).await
            }
            JobStore::Dynamo(d) => d.claim_notice(&job.id, job.done, job.failed).await,
        }
    }
}

/// Runs a blocking SQLite call on the blocking pool.
async fn blocking<T: Send + 'static>(
    store: &Arc<SqliteJobs>,
    call: impl FnOnce(&SqliteJobs) -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let store = Arc::clone(store);
    tokio::task::spawn_blocking(move || call(&store))
        .await
        .map_err(|e| StoreError::Unavailable(format!("job store call did not finish: {e}")))?
}
