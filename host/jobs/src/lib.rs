//! Batch jobs, the asynchronous path no user waits for: a job (a task and
//! up to 1,000 catalog items, checked by the core's job contract) becomes
//! one queue message per item ([`submit`]); workers ([`worker::Worker`])
//! answer each item through Bedrock and record its result exactly once in
//! the [`store::JobStore`] (SQLite on local disk by default, DynamoDB when
//! scaled out); when the last item is recorded, a signed callback
//! ([`notify::Notifier`]) tells the store's backend the job is complete.
//!
//! Delivery is at least once (the queue's), results exactly once (the
//! store's): a result is written by a conditional write keyed by job and
//! item id, so a message delivered twice (a worker killed after the answer,
//! before the delete) is answered from the store, not from Bedrock again.

pub mod answer;
pub mod message;
pub mod notify;
pub mod record;
pub mod store;
pub mod submit;
pub mod worker;

pub use record::{ItemError, ItemResult, ItemStatus, JobRecord, JobState, JobView};
pub use store::{JobStore, Recorded, StoreError};
pub use submit::{SubmitError, submit};
pub use worker::{Worker, WorkerSettings};
