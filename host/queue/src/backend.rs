//! One asynchronous interface over both backends, so a worker or the
//! service is written once: the embedded queue (its SQLite calls on the
//! blocking pool) or SQS.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::{DeadLetter, Depth, EmbeddedQueue, Outgoing, QueueError, Received, SqsQueue};

/// How often an embedded receive looks again while it waits for a message
/// (SQS's long polling does this on the server).
const EMBEDDED_POLL: Duration = Duration::from_millis(100);

/// The queue a deployment uses.
#[derive(Clone)]
pub enum JobQueue {
    /// Local disk (one process or one machine).
    Embedded(Arc<EmbeddedQueue>),
    /// Amazon SQS (a fleet).
    Sqs(Arc<SqsQueue>),
}

/// Runs a blocking embedded-queue call on the blocking pool.
async fn blocking<T: Send + 'static>(
    queue: &Arc<EmbeddedQueue>,
    call: impl FnOnce(&EmbeddedQueue) -> Result<T, QueueError> + Send + 'static,
) -> Result<T, QueueError> {
    let queue = Arc::clone(queue);
    tokio::task::spawn_blocking(move || call(&queue))
        .await
        .map_err(|e| QueueError::Store(format!("queue call did not finish: {e}")))?
}

impl JobQueue {
    /// Sends `messages` to `queue`; how many were taken.
    pub async fn send(&self, queue: &str, messages: Vec<Outgoing>) -> Result<usize, QueueError> {
        match self {
            JobQueue::Embedded(q) => {
                let queue = queue.to_string();
                blocking(q, move |q| q.send(&queue, &messages)).await
            }
            JobQueue::Sqs(q) => q.send(queue, &messages).await,
        }
    }

    /// Up to `max` messages, each hidden for `visibility`, waiting up to
    /// `wait` for the first.
    pub async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Received>, QueueError> {
        match self {
            JobQueue::Embedded(q) => {
                let until = Instant::now() + wait;
                loop {
                    let name = queue.to_string();
                    let got = blocking(q, move |q| q.receive(&name, max, visibility)).await?;
                    if !got.is_empty() || Instant::now() >= until {
                        return Ok(got);
                    }
                    tokio::time::sleep(EMBEDDED_POLL.min(until - Instant::now())).await;
                }
            }
            JobQueue::Sqs(q) => q.receive(queue, max, visibility, wait).await,
        }
    }

    /// The message's work is done.
    pub async fn delete(&self, queue: &str, message: &Received) -> Result<(), QueueError> {
        match self {
            JobQueue::Embedded(q) => {
                let receipt = message.receipt.clone();
                if !blocking(q, move |q| q.delete(&receipt)).await? {
                    tracing::warn!(
                        queue,
                        "a message was deleted after another receiver took it over (its visibility ran out)"
                    );
                }
                Ok(())
            }
            JobQueue::Sqs(q) => q.delete(queue, &message.receipt).await,
        }
    }

    /// Keeps a message hidden `visibility` longer (a long item running).
    pub async fn extend(
        &self,
        queue: &str,
        message: &Received,
        visibility: Duration,
    ) -> Result<(), QueueError> {
        match self {
            JobQueue::Embedded(q) => {
                let receipt = message.receipt.clone();
                blocking(q, move |q| q.change_visibility(&receipt, visibility))
                    .await
                    .map(|_| ())
            }
            JobQueue::Sqs(q) => {
                q.change_visibility(queue, &message.receipt, visibility)
                    .await
            }
        }
    }

    /// A failed attempt: the message comes back after `delay`. The
    /// embedded queue keeps `error` with it; SQS cannot, so it is logged.
    pub async fn retry_later(
        &self,
        queue: &str,
        message: &Received,
        delay: Duration,
        error: &str,
    ) -> Result<(), QueueError> {
        match self {
            JobQueue::Embedded(q) => {
                let (receipt, error) = (message.receipt.clone(), error.to_string());
                blocking(q, move |q| q.release(&receipt, delay, &error))
                    .await
                    .map(|_| ())
            }
            JobQueue::Sqs(q) => {
                tracing::warn!(queue, error, "attempt failed; the message comes back later");
                q.change_visibility(queue, &message.receipt, delay).await
            }
        }
    }

    /// Gives up on a message: into the dead-letter queue with `error`.
    pub async fn give_up(
        &self,
        queue: &str,
        message: &Received,
        error: &str,
    ) -> Result<(), QueueError> {
        match self {
            JobQueue::Embedded(q) => {
                let (receipt, error) = (message.receipt.clone(), error.to_string());
                blocking(q, move |q| q.bury(&receipt, &error))
                    .await
                    .map(|_| ())
            }
            JobQueue::Sqs(q) => q.dead_letter(queue, message, error, None).await,
        }
    }

    /// The dead letters of `queue`.
    pub async fn dead_letters(&self, queue: &str) -> Result<Vec<DeadLetter>, QueueError> {
        match self {
            JobQueue::Embedded(q) => {
                let queue = queue.to_string();
                blocking(q, move |q| q.dead_letters(&queue)).await
            }
            JobQueue::Sqs(q) => q.dead_letters(queue).await,
        }
    }

    /// Moves the dead letters of `queue` back; how many.
    pub async fn redrive(&self, queue: &str) -> Result<usize, QueueError> {
        match self {
            JobQueue::Embedded(q) => {
                let queue = queue.to_string();
                blocking(q, move |q| q.redrive(&queue)).await
            }
            JobQueue::Sqs(q) => q.redrive(queue).await,
        }
    }

    /// Messages by state.
    pub async fn depth(&self, queue: &str) -> Result<Depth, QueueError> {
        match self {
            JobQueue::Embedded(q) => {
                let queue = queue.to_string();
                blocking(q, move |q| q.depth(&queue)).await
            }
            JobQueue::Sqs(q) => q.depth(queue).await,
        }
    }
}
