//! The batch path's backends as the configuration names them: the queue
//! (embedded SQLite in `jobs_dir`, or SQS with `jobs_sqs`), the job store
//! (SQLite in `jobs_dir`, or the DynamoDB table `jobs_table`), the signed
//! callback, and the worker `serve` and `mangaassist worker` run.

use std::sync::Arc;
use std::time::Duration;

use mangaassist_bedrock::invoker::Invoker;
use mangaassist_jobs::notify::Notifier;
use mangaassist_jobs::store::{DynamoJobs, SqliteJobs};
use mangaassist_jobs::{JobStore, Worker, WorkerSettings};
use mangaassist_queue::{EmbeddedQueue, JobQueue, QueuePolicy, SqsQueue};

use crate::config::ServiceConfig;

/// Longest SQS call: a long poll (up to 20 s) and then some.
const SQS_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest DynamoDB call of the job store (no user waits on a worker).
const TABLE_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait of one receive: SQS long polling's limit is 20 s; the
/// embedded queue looks again every 100 ms meanwhile.
const RECEIVE_WAIT: Duration = Duration::from_secs(10);

/// The queue, the store and the callback of the batch path.
#[derive(Clone)]
pub struct Batch {
    /// Work items, one message per job item.
    pub queue: JobQueue,
    /// The queue's name.
    pub queue_name: String,
    /// Jobs and their results.
    pub store: JobStore,
    /// The completion callback, when configured.
    pub notifier: Option<Arc<Notifier>>,
}

/// Opens what `config` names. The embedded files are created when
/// missing; SQS and DynamoDB are only reached (a store that is down at
/// start is waited for by the workers, not a reason to stop).
pub async fn open(config: &ServiceConfig) -> Result<Batch, String> {
    let policy = queue_policy(config);
    let needs_dir = !config.jobs_sqs || config.jobs_table.is_none();
    if needs_dir {
        std::fs::create_dir_all(&config.jobs_dir)
            .map_err(|e| format!("jobs_dir: cannot create {}: {e}", config.jobs_dir.display()))?;
    }
    let queue = if config.jobs_sqs {
        let sdk = crate::aws_stores::sdk_config(SQS_TIMEOUT).await?;
        let queue = SqsQueue::new(crate::aws_stores::sqs(&sdk), policy);
        if let Err(e) = queue.depth(&config.jobs_queue).await {
            tracing::warn!(queue = %config.jobs_queue, error = %e, "the SQS job queue did not answer at start (does it exist? `mangaassist jobs setup` creates it)");
        }
        JobQueue::Sqs(Arc::new(queue))
    } else {
        let path = config.jobs_dir.join("queue.db");
        let queue = EmbeddedQueue::open(&path, policy)
            .map_err(|e| format!("jobs: {e} ({})", path.display()))?;
        JobQueue::Embedded(Arc::new(queue))
    };
    let store = match &config.jobs_table {
        Some(table) => {
            let sdk = crate::aws_stores::sdk_config(TABLE_TIMEOUT).await?;
            JobStore::Dynamo(Arc::new(DynamoJobs::new(
                crate::aws_stores::dynamodb(&sdk),
                table,
            )))
        }
        None => {
            let path = config.jobs_dir.join("jobs.db");
            JobStore::Sqlite(Arc::new(
                SqliteJobs::open(&path).map_err(|e| format!("jobs: {e}"))?,
            ))
        }
    };
    let notifier = match (&config.jobs_callback_url, &config.jobs_callback_secret) {
        (Some(url), Some(secret)) => Some(Arc::new(Notifier::new(url, secret)?)),
        _ => None,
    };
    Ok(Batch {
        queue,
        queue_name: config.jobs_queue.clone(),
        store,
        notifier,
    })
}

/// Receives the queue itself allows before it moves a message to the
/// dead-letter queue, beyond the worker's own limit: the worker gives up
/// (recording the failure) at `jobs_max_receives`; the queue's limit is
/// only the net under a worker killed or a store down at that moment, so
/// that an item reaches the dead letters unrecorded only then.
pub const QUEUE_MARGIN: u32 = 3;

/// The queue's policy for `config` (see [`QUEUE_MARGIN`]).
pub fn queue_policy(config: &ServiceConfig) -> QueuePolicy {
    QueuePolicy {
        max_receives: config.jobs_max_receives.saturating_add(QUEUE_MARGIN),
    }
}

/// How the configuration says a worker works.
pub fn worker_settings(config: &ServiceConfig) -> WorkerSettings {
    WorkerSettings {
        queue: config.jobs_queue.clone(),
        concurrency: config.jobs_workers.max(1),
        rate_per_second: config.jobs_rate_per_second,
        visibility: Duration::from_secs(config.jobs_visibility_secs),
        wait: RECEIVE_WAIT,
        max_receives: config.jobs_max_receives,
        retry_base: Duration::from_millis(config.jobs_retry_base_ms),
        retry_max: Duration::from_secs(15 * 60),
    }
}

/// A worker over `batch`, calling Bedrock through `invoker`.
pub fn worker(batch: &Batch, invoker: Arc<Invoker>, config: &ServiceConfig) -> Worker {
    let worker = Worker::new(
        batch.queue.clone(),
        batch.store.clone(),
        invoker,
        config.catalog.clone(),
        worker_settings(config),
    );
    match &batch.notifier {
        Some(notifier) => worker.with_notifier(Arc::clone(notifier)),
        None => worker,
    }
}
