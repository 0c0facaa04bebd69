//! The batch path's queue. Work items (one per job item) are sent to a
//! named queue, received in batches with a visibility timeout, deleted
//! when done, made visible again (later) when they fail, and moved to the
//! queue's dead-letter queue after too many receives, where an operator
//! can redrive them. FIFO groups keep the items of one group in order.
//!
//! The semantics are SQS's, so the embedded backend ([`EmbeddedQueue`],
//! durable on local disk, the offline default) and SQS ([`SqsQueue`], when
//! scaled out) stand behind one interface, [`JobQueue`].

mod backend;
mod embedded;
mod sqs;

pub use backend::JobQueue;
pub use embedded::EmbeddedQueue;
pub use sqs::{SqsQueue, dead_letter_name};

use std::time::Duration;

/// A message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// The body (JSON text in practice).
    pub body: String,
    /// FIFO group: messages of one group are delivered one at a time, in
    /// the order sent. `None`: no order (a standard queue's message).
    pub group: Option<String>,
    /// Deduplication id: a second message with the same id is dropped
    /// (embedded: while the first is still in the queue; SQS FIFO: within
    /// five minutes of the first; a standard SQS queue takes none).
    pub dedup_id: Option<String>,
}

/// A received message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The body as sent.
    pub body: String,
    /// Handle of this receive: delete and visibility changes need it, and a
    /// later receive of the same message (after its visibility ran out)
    /// makes it stale.
    pub receipt: String,
    /// How many times it has been received, this time included.
    pub receive_count: u32,
    /// The error its last failed attempt recorded, if any.
    pub last_error: Option<String>,
}

/// A message in the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The body as sent.
    pub body: String,
    /// Receives before it was moved.
    pub receive_count: u32,
    /// The last error recorded for it.
    pub last_error: Option<String>,
}

/// How many messages a queue holds, by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Depth {
    /// Ready to be received.
    pub visible: u64,
    /// Received and not yet deleted or visible again.
    pub in_flight: u64,
    /// In the dead-letter queue.
    pub dead: u64,
}

/// How a queue treats its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueuePolicy {
    /// A message received this many times and still not deleted goes to
    /// the dead-letter queue at its next receive (SQS's maxReceiveCount).
    pub max_receives: u32,
}

impl Default for QueuePolicy {
    fn default() -> Self {
        QueuePolicy { max_receives: 5 }
    }
}

/// A queue operation that failed.
#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    /// The store under the queue failed (disk, database).
    #[error("queue store failed: {0}")]
    Store(String),
    /// The queue was given something it cannot hold.
    #[error("{0}")]
    Invalid(String),
}

impl QueueError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            QueueError::Store(_) => "queue_store_failed",
            QueueError::Invalid(_) => "queue_invalid",
        }
    }
}

/// Longest visibility timeout (SQS's limit: 12 hours).
pub const MAX_VISIBILITY: Duration = Duration::from_secs(12 * 60 * 60);
/// Most messages one receive returns (SQS's limit).
pub const MAX_BATCH: usize = 10;
