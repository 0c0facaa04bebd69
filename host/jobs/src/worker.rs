//! The worker: receives work items in batches (up to ten, long polling),
//! answers each through Bedrock with at most `concurrency` in flight and
//! at most `rate_per_second` calls (batch work's share of the Bedrock
//! rate), and pauses while chat is busy: chat first. An item that fails
//! comes back later (exponential backoff with jitter as its visibility, so
//! throttling slows the batch instead of dropping items); one that keeps
//! failing, or that Bedrock refuses outright, is recorded as failed and
//! moved to the dead-letter queue with its last error.
//!
//! Exactly-once results rest on the store: a message is deleted only after
//! its result is recorded, and a message whose item is already recorded (a
//! worker died between the two) is deleted without a second Bedrock call.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mangaassist_bedrock::invoker::Invoker;
use mangaassist_core::models::Catalog;
use mangaassist_queue::{JobQueue, MAX_BATCH, Received};
use tokio::sync::{Mutex, Semaphore, watch};

use crate::answer::{Failure, answer};
use crate::message::{WorkItem, is_fifo};
use crate::notify::Notifier;
use crate::record::JobRecord;
use crate::store::JobStore;
use crate::store::Recorded as Outcome;

/// Whether chat needs Bedrock more than batch work does right now (the
/// service answers from its count of chat calls in flight).
pub type ChatBusy = Arc<dyn Fn() -> bool + Send + Sync>;

/// An item's result was recorded (sent to [`Worker::with_events`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// The job.
    pub job_id: String,
    /// The item.
    pub item_id: String,
    /// Its outcome.
    pub status: crate::record::ItemStatus,
}

/// How often a worker held back by chat looks again.
const CHAT_POLL: Duration = Duration::from_millis(20);
/// Pause after the queue or the store failed, before trying again.
const OUTAGE_PAUSE: Duration = Duration::from_secs(1);

/// How a worker works.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// The queue of work items.
    pub queue: String,
    /// Items in flight at once.
    pub concurrency: usize,
    /// Bedrock calls per second at most (0: no limit of its own).
    pub rate_per_second: f64,
    /// How long a received item stays hidden; renewed while it runs.
    pub visibility: Duration,
    /// Longest wait of one receive (long polling).
    pub wait: Duration,
    /// The receive at which an item that still fails is given up (the
    /// queue's own limit, so the worker records it before the queue moves it).
    pub max_receives: u32,
    /// Delay before the second try of an item; doubles with every receive.
    pub retry_base: Duration,
    /// Longest delay between tries.
    pub retry_max: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        WorkerSettings {
            queue: "mangaassist-jobs".into(),
            concurrency: 4,
            rate_per_second: 10.0,
            visibility: Duration::from_secs(60),
            wait: Duration::from_secs(10),
            max_receives: 5,
            retry_base: Duration::from_secs(2),
            retry_max: Duration::from_secs(15 * 60),
        }
    }
}

/// What a worker has done since it started.
#[derive(Debug, Default)]
pub struct Stats {
    /// Items answered and recorded.
    pub answered: AtomicU64,
    /// Items recorded as failed and moved to the dead-letter queue.
    pub dead_lettered: AtomicU64,
    /// Tries put back for later.
    pub retried: AtomicU64,
    /// Messages whose item was already answered (redeliveries).
    pub redelivered: AtomicU64,
    /// Bedrock calls made.
    pub calls: AtomicU64,
    /// Completion callbacks delivered.
    pub notices: AtomicU64,
}

/// Paces Bedrock calls to a rate (one call every 1/rate seconds).
struct Pacer {
    interval: Option<Duration>,
    next: Mutex<Instant>,
}

impl Pacer {
    fn new(rate_per_second: f64) -> Self {
        let interval = (rate_per_second > 0.0 && rate_per_second.is_finite())
            .then(|| Duration::from_secs_f64(1.0 / rate_per_second));
        Pacer {
            interval,
            next: Mutex::new(Instant::now()),
        }
    }

    async fn wait(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let at = {
            let mut next = self.next.lock().await;
            let at = (*next).max(Instant::now());
            *next = at + interval;
            at
        };
        tokio::time::sleep_until(at.into()).await;
    }
}

/// A worker over one queue and one store.
pub struct Worker {
    queue: JobQueue,
    store: JobStore,
    invoker: Arc<Invoker>,
    catalog: Catalog,
    settings: WorkerSettings,
    notifier: Option<Arc<Notifier>>,
    chat_busy: Option<ChatBusy>,
    events: Option<tokio::sync::mpsc::UnboundedSender<Recorded>>,
    pacer: Pacer,
    stats: Arc<Stats>,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Worker {
    /// A worker; [`Worker::run`] starts it.
    pub fn new(
        queue: JobQueue,
        store: JobStore,
        invoker: Arc<Invoker>,
        catalog: Catalog,
        settings: WorkerSettings,
    ) -> Self {
        Worker {
            pacer: Pacer::new(settings.rate_per_second),
            queue,
            store,
            invoker,
            catalog,
            settings,
            notifier: None,
            chat_busy: None,
            events: None,
            stats: Arc::new(Stats::default()),
        }
    }

    /// Sends completion callbacks through `notifier`.
    pub fn with_notifier(mut self, notifier: Arc<Notifier>) -> Self {
        self.notifier = Some(notifier);
        self
    }

    /// Holds back new items while `busy` says chat needs Bedrock.
    pub fn with_chat_busy(mut self, busy: ChatBusy) -> Self {
        self.chat_busy = Some(busy);
        self
    }

    /// Tells `events` of every result recorded, in the order recorded
    /// (progress displays; the tests' order checks).
    pub fn with_events(mut self, events: tokio::sync::mpsc::UnboundedSender<Recorded>) -> Self {
        self.events = Some(events);
        self
    }

    fn recorded(&self, job_id: &str, item_id: &str, status: crate::record::ItemStatus) {
        if let Some(events) = &self.events {
            let _ = events.send(Recorded {
                job_id: job_id.to_string(),
                item_id: item_id.to_string(),
                status,
            });
        }
    }

    /// Its counters.
    pub fn stats(&self) -> Arc<Stats> {
        Arc::clone(&self.stats)
    }

    /// Works until `stop` turns true, then lets the items in flight finish.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let concurrency = self.settings.concurrency.max(1);
        let slots = Arc::new(Semaphore::new(concurrency));
        let fifo = is_fifo(&self.settings.queue);
        tracing::info!(queue = %self.settings.queue, concurrency, rate_per_second = self.settings.rate_per_second, "job worker started");
        loop {
            if *stop.borrow() {
                break;
            }
            let first = tokio::select! {
                permit = Arc::clone(&slots).acquire_owned() => permit,
                _ = stop.wait_for(|s| *s) => break,
            };
            let Ok(first) = first else { break };
            if let Some(busy) = &self.chat_busy {
                while busy() && !*stop.borrow() {
                    tokio::time::sleep(CHAT_POLL).await;
                }
            }
            let mut permits = vec![first];
            // A FIFO queue may hand out several messages of one group in a
            // batch; one at a time, a group is locked while its message is
            // in flight, so a job's items are answered strictly in order.
            let batch = if fifo { 1 } else { MAX_BATCH };
            while permits.len() < batch {
                match Arc::clone(&slots).try_acquire_owned() {
                    Ok(p) => permits.push(p),
                    Err(_) => break,
                }
            }
            let received = tokio::select! {
                r = self.queue.receive(&self.settings.queue, permits.len(), self.settings.visibility, self.settings.wait) => r,
                _ = stop.wait_for(|s| *s) => break,
            };
            let messages = match received {
                Ok(messages) => messages,
                Err(e) => {
                    tracing::warn!(error = %e, "job queue did not answer; trying again");
                    tokio::select! {
                        () = tokio::time::sleep(OUTAGE_PAUSE) => {}
                        _ = stop.wait_for(|s| *s) => break,
                    }
                    continue;
                }
            };
            for (message, permit) in messages.into_iter().zip(permits) {
                let worker = Arc::clone(&self);
                tokio::spawn(async move {
                    worker.process(message).await;
                    drop(permit);
                });
            }
        }
        // Items in flight finish (each bounded by its Bedrock budget).
        let _ = slots.acquire_many(concurrency as u32).await;
        tracing::info!(queue = %self.settings.queue, "job worker stopped");
    }

    /// One message, start to end: answered, put back for later, or dead.
    async fn process(&self, message: Received) {
        let work = match WorkItem::parse(&message.body) {
            Ok(work) => work,
            Err(e) => {
                // Nothing any retry could change: straight to the dead letters.
                tracing::warn!(error = %e, "a message that is not a work item goes to the dead-letter queue");
                self.dead_letter(&message, &format!("bad_message: {e}"))
                    .await;
                return;
            }
        };
        // A first delivery has not been answered before (a rare duplicate
        // copy would cost one more Bedrock call, never a second result).
        if message.receive_count > 1 {
            match self.store.is_done(&work.job_id, &work.item.id).await {
                Ok(true) => {
                    self.stats.redelivered.fetch_add(1, Ordering::Relaxed);
                    let job = self.store.get(&work.job_id).await.ok().flatten();
                    self.finish(&message, job).await;
                    return;
                }
                Ok(false) => {}
                Err(e) => return self.retry(&message, OUTAGE_PAUSE, &e.to_string()).await,
            }
        }
        let heartbeat = self.keep_hidden(&message);
        self.pacer.wait().await;
        self.stats.calls.fetch_add(1, Ordering::Relaxed);
        let outcome = answer(
            &self.invoker,
            &self.catalog,
            work.task,
            &work.language,
            &work.item,
        )
        .await;
        heartbeat.abort();
        let result = match outcome {
            Ok(result) => result,
            Err(failure)
                if !failure.permanent && message.receive_count < self.settings.max_receives =>
            {
                let delay = self.backoff(message.receive_count, &failure);
                let error = format!("{}: {}", failure.code, failure.message);
                return self.retry(&message, delay, &error).await;
            }
            Err(failure) => return self.give_up(&message, &work, &failure).await,
        };
        match self.store.record(&work.job_id, &result).await {
            Ok(Outcome::First(job)) => {
                self.stats.answered.fetch_add(1, Ordering::Relaxed);
                self.recorded(&work.job_id, &work.item.id, result.status);
                self.finish(&message, Some(job)).await;
            }
            Ok(Outcome::Duplicate) => {
                self.stats.redelivered.fetch_add(1, Ordering::Relaxed);
                let job = self.store.get(&work.job_id).await.ok().flatten();
                self.finish(&message, job).await;
            }
            Ok(Outcome::NoJob) => {
                tracing::warn!(job = %work.job_id, item = %work.item.id, "an item of a job that no longer exists is dropped");
                self.delete(&message).await;
            }
            Err(e) => {
                // The answer is not kept; the item is asked again later.
                tracing::warn!(job = %work.job_id, item = %work.item.id, error = %e, "result not recorded; the item comes back");
                self.retry(&message, OUTAGE_PAUSE, &e.to_string()).await;
            }
        }
    }

    /// The delay before the next try after the `receives`-th: base·2^(n−1),
    /// at most `retry_max`, plus up to half again of jitter (so items
    /// throttled together do not come back together).
    fn backoff(&self, receives: u32, failure: &Failure) -> Duration {
        let doublings = receives.saturating_sub(1).min(20);
        let mut delay = self
            .settings
            .retry_base
            .saturating_mul(1 << doublings)
            .min(self.settings.retry_max);
        if failure.throttled {
            // Throttling: Bedrock asked us to slow down; give it longer.
            delay = delay.saturating_mul(2).min(self.settings.retry_max);
        }
        let jitter_ms = fastrand::u64(0..=(delay.as_millis() as u64 / 2).max(1));
        (delay + Duration::from_millis(jitter_ms)).min(mangaassist_queue::MAX_VISIBILITY)
    }

    /// Renews the message's visibility every half period while its item runs.
    fn keep_hidden(&self, message: &Received) -> tokio::task::JoinHandle<()> {
        let queue = self.queue.clone();
        let name = self.settings.queue.clone();
        let visibility = self.settings.visibility;
        let message = message.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(visibility / 2).await;
                if let Err(e) = queue.extend(&name, &message, visibility).await {
                    tracing::warn!(error = %e, "could not keep a running item hidden");
                }
            }
        })
    }

    /// The item has its result: delete the message; when that completed
    /// the job, send the callback.
    async fn finish(&self, message: &Received, job: Option<JobRecord>) {
        if let Some(job) = job.filter(JobRecord::needs_notice) {
            self.notify(&job).await;
        }
        self.delete(message).await;
    }

    async fn notify(&self, job: &JobRecord) {
        tracing::info!(job = %job.id, done = job.done, failed = job.failed, cost_usd = job.cost_usd, "job complete");
        let Some(notifier) = &self.notifier else {
            return;
        };
        // Claimed before it is sent: one callback per state even when two
        // workers see the same completion.
        match self.store.claim_notice(job).await {
            Ok(true) => {}
            Ok(false) => return,
            Err(e) => {
                tracing::warn!(job = %job.id, error = %e, "completion callback not claimed; not sent");
                return;
            }
        }
        match notifier.send(&job.view(), unix_now()).await {
            Ok(()) => {
                self.stats.notices.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => tracing::error!(job = %job.id, error = %e, "completion callback failed"),
        }
    }

    /// Gives up on an item: its failure recorded (so the job's counts add
    /// up), then the message to the dead-letter queue with the error.
    async fn give_up(&self, message: &Received, work: &WorkItem, failure: &Failure) {
        let result = failure.result(&work.item.id, work.task);
        let job = match self.store.record(&work.job_id, &result).await {
            Ok(Outcome::First(job)) => {
                self.recorded(&work.job_id, &work.item.id, result.status);
                Some(job)
            }
            // Answered meanwhile (another delivery): nothing to give up.
            Ok(Outcome::Duplicate)
                if self
                    .store
                    .is_done(&work.job_id, &work.item.id)
                    .await
                    .unwrap_or(false) =>
            {
                self.delete(message).await;
                return;
            }
            Ok(Outcome::Duplicate) => None,
            Ok(Outcome::NoJob) => {
                self.delete(message).await;
                return;
            }
            Err(e) => {
                tracing::warn!(job = %work.job_id, item = %work.item.id, error = %e, "failure not recorded; the item comes back");
                return self.retry(message, OUTAGE_PAUSE, &e.to_string()).await;
            }
        };
        tracing::warn!(job = %work.job_id, item = %work.item.id, code = %failure.code, receives = message.receive_count, "item given up: to the dead-letter queue");
        self.dead_letter(message, &format!("{}: {}", failure.code, failure.message))
            .await;
        if let Some(job) = job.filter(JobRecord::needs_notice) {
            self.notify(&job).await;
        }
    }

    async fn dead_letter(&self, message: &Received, error: &str) {
        self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self
            .queue
            .give_up(&self.settings.queue, message, error)
            .await
        {
            tracing::warn!(error = %e, "could not move an item to the dead-letter queue; the queue's own limit will");
        }
    }

    /// Puts a message back for `delay`.
    async fn retry(&self, message: &Received, delay: Duration, error: &str) {
        self.stats.retried.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self
            .queue
            .retry_later(&self.settings.queue, message, delay, error)
            .await
        {
            tracing::warn!(error = %e, "could not put an item back; it comes back when its visibility ends");
        }
    }

    async fn delete(&self, message: &Received) {
        if let Err(e) = self.queue.delete(&self.settings.queue, message).await {
            // It comes back and is found answered: no second call.
            tracing::warn!(error = %e, "could not delete a finished item");
        }
    }
}
