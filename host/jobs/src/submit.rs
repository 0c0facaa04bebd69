//! A checked job into the store and onto the queue: the job first (so a
//! worker that takes its first item finds it), then its items. A job whose items cannot all be queued is taken back, so a
//! client never holds the id of a job that will not finish.

use mangaassist_core::jobs::Job;
use mangaassist_queue::{JobQueue, QueueError};

use crate::message::{WorkItem, is_fifo};
use crate::record::JobRecord;
use crate::store::{JobStore, StoreError};

/// Why a job was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The store did not keep the job.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The queue did not take its items.
    #[error("the job's items could not be queued: {0}")]
    Queue(#[from] QueueError),
}

impl SubmitError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            SubmitError::Store(e) => e.code(),
            SubmitError::Queue(_) => "job_queue_unavailable",
        }
    }
}

/// Creates a job owned by `owner` from a job that passed the core's
/// contract, and queues one message per item on `queue`.
pub async fn submit(
    store: &JobStore,
    queue: &JobQueue,
    queue_name: &str,
    owner: &str,
    job: Job,
    now_unix: u64,
) -> Result<JobRecord, SubmitError> {
    let record = JobRecord {
        id: uuid::Uuid::new_v4().to_string(),
        owner: owner.to_string(),
        task: job.task,
        language: job.language.unwrap_or_else(|| "ja".to_string()),
        total: job.items.len() as u64,
        done: 0,
        failed: 0,
        cost_usd: 0.0,
        created_at: now_unix,
        noticed: None,
    };
    store.create(&record).await?;
    let fifo = is_fifo(queue_name);
    let messages: Vec<_> = job
        .items
        .into_iter()
        .map(|item| {
            WorkItem {
                job_id: record.id.clone(),
                task: record.task,
                language: record.language.clone(),
                item,
            }
            .outgoing(fifo)
        })
        .collect();
    // One call: the embedded queue takes it in one transaction, SQS in
    // batches of ten.
    if let Err(e) = queue.send(queue_name, messages).await {
        // Items already queued find no job and are dropped by workers.
        if let Err(taken_back) = store.delete(&record.id).await {
            tracing::error!(job = %record.id, error = %taken_back, "a job whose items could not be queued was not taken back");
        }
        return Err(e.into());
    }
    tracing::info!(job = %record.id, items = record.total, task = record.task.name(), "job queued");
    Ok(record)
}
