//! One scenario suite, run on both backends: the embedded queue and store
//! (SQLite files) and the scaled-out ones (SQS and DynamoDB on moto's
//! server, through the real SDKs). Bedrock is the project's emulator over
//! HTTP, with its faults. Every scenario checks the promise of the batch
//! path: every item ends with exactly one result, failures land in the
//! dead-letter queue with their reason, and nothing is asked twice that
//! was already answered.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed expectation is the test failing"
)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mangaassist_bedrock::clock::SystemClock;
use mangaassist_bedrock::invoker::{Invoker, InvokerConfig};
use mangaassist_bedrock::profile::EnvProfile;
use mangaassist_core::jobs::{Job, JobItem, JobTask};
use mangaassist_core::models::Catalog;
use mangaassist_emulator::faults::{Fault, FaultPlan};
use mangaassist_emulator::{self as emulator, EmulatorConfig, EmulatorHandle};
use mangaassist_jobs::notify::{Notifier, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use mangaassist_jobs::store::{SqliteJobs, create_table};
use mangaassist_jobs::worker::Recorded;
use mangaassist_jobs::{ItemStatus, JobRecord, JobState, JobStore, Worker, WorkerSettings, submit};
use mangaassist_queue::{EmbeddedQueue, JobQueue, Outgoing, QueuePolicy, SqsQueue};
use mangaassist_test_stores::MotoServer;
use tokio::sync::{mpsc, watch};

const REGIONS: [&str; 3] = ["us-east-1", "us-west-2", "ap-northeast-1"];
const SECRET: &str = "a callback secret of at least 32 bytes";

/// A queue and a store, and what keeps them alive.
struct Backend {
    queue: JobQueue,
    store: JobStore,
    name: String,
    _moto: Option<MotoServer>,
}

#[derive(Clone, Copy, Debug)]
enum Kind {
    Embedded,
    Aws,
}

async fn backend(kind: Kind, test: &str, fifo: bool, max_receives: u32) -> Backend {
    let name = if fifo { "jobs.fifo" } else { "jobs" }.to_string();
    // As `serve` sets it up: the queue's own limit a margin above the
    // worker's, which gives up (and records why) first.
    let policy = QueuePolicy {
        max_receives: max_receives + 3,
    };
    match kind {
        Kind::Embedded => {
            let dir = std::env::temp_dir()
                .join(format!("mangaassist-jobs-{}-{test}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Backend {
                queue: JobQueue::Embedded(Arc::new(
                    EmbeddedQueue::open(&dir.join("queue.db"), policy).unwrap(),
                )),
                store: JobStore::Sqlite(Arc::new(SqliteJobs::open(&dir.join("jobs.db")).unwrap())),
                name,
                _moto: None,
            }
        }
        Kind::Aws => {
            let moto = MotoServer::start();
            let sdk = moto.sdk_config();
            let sqs = SqsQueue::new(aws_sdk_sqs::Client::new(&sdk), policy);
            sqs.create(&name).await.unwrap();
            let dynamo = aws_sdk_dynamodb::Client::new(&sdk);
            assert!(create_table(&dynamo, "jobs").await.unwrap());
            assert!(
                !create_table(&dynamo, "jobs").await.unwrap(),
                "a second setup finds the table"
            );
            Backend {
                queue: JobQueue::Sqs(Arc::new(sqs)),
                store: JobStore::Dynamo(Arc::new(mangaassist_jobs::store::DynamoJobs::new(
                    dynamo, "jobs",
                ))),
                name,
                _moto: Some(moto),
            }
        }
    }
}

async fn bedrock() -> (EmulatorHandle, Arc<Invoker>) {
    let emulator = emulator::start("127.0.0.1:0".parse().unwrap(), EmulatorConfig::default())
        .await
        .unwrap();
    // As the workers have it: clients of their own, no adaptive limiter.
    let config =
        InvokerConfig::emulated(&emulator.endpoint(), &REGIONS, EnvProfile::DEV).for_batch();
    let invoker = Invoker::new(&config, Arc::new(SystemClock::new()))
        .await
        .unwrap();
    (emulator, Arc::new(invoker))
}

fn settings(b: &Backend, concurrency: usize, max_receives: u32) -> WorkerSettings {
    WorkerSettings {
        queue: b.name.clone(),
        concurrency,
        rate_per_second: 0.0,
        visibility: Duration::from_secs(30),
        wait: Duration::from_millis(200),
        max_receives,
        retry_base: Duration::from_millis(20),
        retry_max: Duration::from_millis(200),
    }
}

fn items(prefix: &str, n: usize) -> Vec<JobItem> {
    (0..n)
        .map(|i| JobItem {
            id: format!("{prefix}-{i:04}"),
            title: format!("タイトル {prefix} {i}"),
            author: (i % 2 == 0).then(|| "作者".to_string()),
            description: None,
        })
        .collect()
}

async fn job(b: &Backend, items: Vec<JobItem>) -> JobRecord {
    submit(
        &b.store,
        &b.queue,
        &b.name,
        "key:test",
        Job {
            task: JobTask::Synopsis,
            language: Some("en".into()),
            items,
        },
        1_700_000_000,
    )
    .await
    .unwrap()
}

/// Waits until `done` says the job is where the test wants it.
async fn wait_for(
    b: &Backend,
    id: &str,
    limit: Duration,
    done: impl Fn(&JobRecord) -> bool,
) -> JobRecord {
    let started = Instant::now();
    loop {
        let job = b.store.get(id).await.unwrap().unwrap();
        if done(&job) {
            return job;
        }
        assert!(
            started.elapsed() < limit,
            "job not there after {limit:?}: {job:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every result of the job, each item once, all done.
async fn assert_all_done_once(b: &Backend, id: &str, expected: &[JobItem]) {
    let results = b.store.results(id).await.unwrap();
    let ids: Vec<&str> = results.iter().map(|r| r.id.as_str()).collect();
    let unique: BTreeSet<&str> = ids.iter().copied().collect();
    assert_eq!(ids.len(), unique.len(), "an item has two results");
    let wanted: BTreeSet<&str> = expected.iter().map(|i| i.id.as_str()).collect();
    assert_eq!(unique, wanted);
    for r in &results {
        assert_eq!(r.status, ItemStatus::Done, "{r:?}");
        assert!(r.text.as_deref().is_some_and(|t| !t.is_empty()), "{r:?}");
        assert!(r.cost_usd > 0.0);
    }
}

/// A loopback receiver of completion callbacks that checks each signature.
async fn callback_receiver() -> (SocketAddr, Arc<Mutex<Vec<serde_json::Value>>>) {
    let got: Arc<Mutex<Vec<serde_json::Value>>> = Arc::default();
    let kept = Arc::clone(&got);
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let kept = Arc::clone(&kept);
                async move {
                    let timestamp: u64 =
                        headers[TIMESTAMP_HEADER].to_str().unwrap().parse().unwrap();
                    let signature = headers[SIGNATURE_HEADER].to_str().unwrap();
                    if signature != sign(SECRET.as_bytes(), timestamp, &body) {
                        return axum::http::StatusCode::UNAUTHORIZED;
                    }
                    kept.lock()
                        .unwrap()
                        .push(serde_json::from_slice(&body).unwrap());
                    axum::http::StatusCode::NO_CONTENT
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, got)
}

/// 1,000 items (the most one job takes) while every region throttles
/// every third call: all done, each once, none dropped.
async fn a_thousand_items_through_throttling(kind: Kind) {
    let b = backend(kind, "thousand", false, 10).await;
    let (emulator, invoker) = bedrock().await;
    for region in REGIONS {
        emulator.set_fault(
            region,
            FaultPlan {
                fault: Fault::Throttle,
                every: 3,
                times: None,
            },
        );
    }
    let all = items("t", 1000);
    let record = job(&b, all.clone()).await;
    let worker = Arc::new(Worker::new(
        b.queue.clone(),
        b.store.clone(),
        invoker,
        Catalog::spec_default(),
        settings(&b, 16, 10),
    ));
    let stats = worker.stats();
    let (stop, stopping) = watch::channel(false);
    let running = tokio::spawn(Arc::clone(&worker).run(stopping));
    // moto answers a few hundred calls a second on these two cores, shared
    // with the other scenarios: a bound on a hang, not a speed goal.
    let done = wait_for(
        &b,
        &record.id,
        Duration::from_secs(600),
        JobRecord::is_complete,
    )
    .await;
    stop.send(true).unwrap();
    running.await.unwrap();
    assert_eq!((done.done, done.failed), (1000, 0), "{done:?}");
    assert_eq!(done.state(), JobState::Completed);
    assert_all_done_once(&b, &record.id, &all).await;
    assert_eq!(stats.answered.load(Ordering::Relaxed), 1000);
    let throttled: u64 = REGIONS.iter().map(|r| emulator.requests(r)).sum::<u64>() - 1000;
    assert!(throttled > 100, "the emulator throttled {throttled} calls");
    let depth = b.queue.depth(&b.name).await.unwrap();
    assert_eq!((depth.visible, depth.in_flight, depth.dead), (0, 0, 0));
    let cost: f64 = b
        .store
        .results(&record.id)
        .await
        .unwrap()
        .iter()
        .map(|r| r.cost_usd)
        .sum();
    assert!(
        (done.cost_usd - cost).abs() < 1e-9,
        "{} vs {cost}",
        done.cost_usd
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_items_through_throttling_embedded() {
    a_thousand_items_through_throttling(Kind::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_items_through_throttling_sqs_dynamodb() {
    a_thousand_items_through_throttling(Kind::Aws).await;
}

/// Bedrock refuses five items outright and one message is not a work item:
/// the five are recorded as failed and all six land in the dead-letter
/// queue with their reason; the callback tells of the completion with
/// failures. Once Bedrock accepts again, a redrive finishes the job, and a
/// second callback says so; the bad message is dead again.
async fn poison_items_and_redrive(kind: Kind) {
    let b = backend(kind, "poison", false, 3).await;
    let (emulator, invoker) = bedrock().await;
    emulator.set_fault(
        "us-east-1",
        FaultPlan {
            fault: Fault::Validation,
            every: 1,
            times: Some(5),
        },
    );
    let (hook, callbacks) = callback_receiver().await;
    let notifier = Notifier::new(&format!("http://{hook}/hook"), SECRET)
        .unwrap()
        .with_backoff(Duration::from_millis(10));
    let all = items("p", 20);
    let record = job(&b, all.clone()).await;
    b.queue
        .send(
            &b.name,
            vec![Outgoing {
                body: "{\"not\": \"a work item\"}".into(),
                group: None,
                dedup_id: None,
            }],
        )
        .await
        .unwrap();
    let worker = Arc::new(
        Worker::new(
            b.queue.clone(),
            b.store.clone(),
            invoker,
            Catalog::spec_default(),
            settings(&b, 1, 3),
        )
        .with_notifier(Arc::new(notifier)),
    );
    let (stop, stopping) = watch::channel(false);
    let running = tokio::spawn(Arc::clone(&worker).run(stopping));
    let first = wait_for(
        &b,
        &record.id,
        Duration::from_secs(60),
        JobRecord::is_complete,
    )
    .await;
    assert_eq!((first.done, first.failed), (15, 5), "{first:?}");
    assert_eq!(first.state(), JobState::CompletedWithFailures);
    let failed: Vec<_> = b
        .store
        .results(&record.id)
        .await
        .unwrap()
        .into_iter()
        .filter(|r| r.status == ItemStatus::Failed)
        .collect();
    assert_eq!(failed.len(), 5);
    for f in &failed {
        let error = f.error.as_ref().unwrap();
        assert_eq!(error.code, "bedrock_rejected", "{f:?}");
        assert!(error.message.contains("ValidationException"), "{f:?}");
    }
    // The dead letters: each with its reason (moved as it failed; wait for
    // the last move to land).
    let started = Instant::now();
    let dead = loop {
        let dead = b.queue.dead_letters(&b.name).await.unwrap();
        if dead.len() == 6 || started.elapsed() > Duration::from_secs(10) {
            break dead;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(dead.len(), 6, "{dead:?}");
    let reasons: Vec<&str> = dead
        .iter()
        .filter_map(|d| d.last_error.as_deref())
        .collect();
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.starts_with("bedrock_rejected"))
            .count(),
        5,
        "{reasons:?}"
    );
    assert_eq!(
        reasons
            .iter()
            .filter(|r| r.starts_with("bad_message"))
            .count(),
        1,
        "{reasons:?}"
    );
    let started = Instant::now();
    while callbacks.lock().unwrap().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(10), "no callback");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    {
        let got = callbacks.lock().unwrap();
        assert_eq!(got[0]["jobId"], record.id.as_str());
        assert_eq!(got[0]["state"], "completedWithFailures");
        assert_eq!(
            (got[0]["done"].as_u64(), got[0]["failed"].as_u64()),
            (Some(15), Some(5))
        );
    }
    // The fault has run its five times: a redrive finishes the job.
    assert_eq!(b.queue.redrive(&b.name).await.unwrap(), 6);
    let second = wait_for(&b, &record.id, Duration::from_secs(60), |j| j.done == 20).await;
    assert_eq!(
        (second.done, second.failed, second.state()),
        (20, 0, JobState::Completed)
    );
    assert_all_done_once(&b, &record.id, &all).await;
    let started = Instant::now();
    loop {
        let dead = b.queue.dead_letters(&b.name).await.unwrap();
        if dead.len() == 1 && callbacks.lock().unwrap().len() == 2 {
            assert!(
                dead[0]
                    .last_error
                    .as_deref()
                    .unwrap()
                    .starts_with("bad_message")
            );
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "dead letters {dead:?}, callbacks {:?}",
            callbacks.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(callbacks.lock().unwrap()[1]["state"], "completed");
    stop.send(true).unwrap();
    running.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_items_and_redrive_embedded() {
    poison_items_and_redrive(Kind::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_items_and_redrive_sqs_dynamodb() {
    poison_items_and_redrive(Kind::Aws).await;
}

/// On a FIFO queue each job is a group: its items are answered in the
/// order sent, while two jobs run side by side, and while every region
/// throttles every third call (an item put back for later holds up the
/// rest of its job, not overtaken).
async fn fifo_order_per_job(kind: Kind) {
    let b = backend(kind, "fifo", true, 8).await;
    let (emulator, invoker) = bedrock().await;
    for region in REGIONS {
        emulator.set_fault(
            region,
            FaultPlan {
                fault: Fault::Throttle,
                every: 3,
                times: None,
            },
        );
    }
    let first = items("a", 12);
    let second = items("b", 12);
    let a = job(&b, first.clone()).await;
    let z = job(&b, second.clone()).await;
    let (events, mut recorded) = mpsc::unbounded_channel::<Recorded>();
    let worker = Arc::new(
        Worker::new(
            b.queue.clone(),
            b.store.clone(),
            invoker,
            Catalog::spec_default(),
            settings(&b, 8, 8),
        )
        .with_events(events),
    );
    let stats = worker.stats();
    let (stop, stopping) = watch::channel(false);
    let running = tokio::spawn(Arc::clone(&worker).run(stopping));
    wait_for(&b, &a.id, Duration::from_secs(60), JobRecord::is_complete).await;
    wait_for(&b, &z.id, Duration::from_secs(60), JobRecord::is_complete).await;
    stop.send(true).unwrap();
    running.await.unwrap();
    let mut order: BTreeMap<String, Vec<String>> = BTreeMap::new();
    while let Ok(r) = recorded.try_recv() {
        order.entry(r.job_id).or_default().push(r.item_id);
    }
    let ids = |items: &[JobItem]| items.iter().map(|i| i.id.clone()).collect::<Vec<_>>();
    assert_eq!(order[&a.id], ids(&first));
    assert_eq!(order[&z.id], ids(&second));
    assert!(
        stats.retried.load(Ordering::Relaxed) > 0,
        "no item was put back: the order was never at risk"
    );
    assert_all_done_once(&b, &a.id, &first).await;
    assert_all_done_once(&b, &z.id, &second).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_order_per_job_embedded() {
    fifo_order_per_job(Kind::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_order_per_job_sqs_dynamodb() {
    fifo_order_per_job(Kind::Aws).await;
}

/// A worker that died after recording an answer but before deleting its
/// message: the message comes back, and the next worker deletes it
/// without asking Bedrock again.
async fn an_answered_item_delivered_again_is_not_asked_again(kind: Kind) {
    let b = backend(kind, "again", false, 5).await;
    let (emulator, invoker) = bedrock().await;
    let all = items("r", 5);
    let record = job(&b, all.clone()).await;
    // The "dead" worker: takes one message, answers and records it, dies.
    let taken = b
        .queue
        .receive(&b.name, 1, Duration::from_secs(1), Duration::from_secs(1))
        .await
        .unwrap();
    let work = mangaassist_jobs::message::WorkItem::parse(&taken[0].body).unwrap();
    let result = mangaassist_jobs::answer::answer(
        &invoker,
        &Catalog::spec_default(),
        work.task,
        &work.language,
        &work.item,
    )
    .await
    .unwrap();
    b.store.record(&record.id, &result).await.unwrap();
    let calls_before = emulator.requests("us-east-1");
    // Its visibility runs out; a live worker takes over.
    let worker = Arc::new(Worker::new(
        b.queue.clone(),
        b.store.clone(),
        invoker,
        Catalog::spec_default(),
        settings(&b, 2, 5),
    ));
    let stats = worker.stats();
    let (stop, stopping) = watch::channel(false);
    let running = tokio::spawn(Arc::clone(&worker).run(stopping));
    let done = wait_for(
        &b,
        &record.id,
        Duration::from_secs(30),
        JobRecord::is_complete,
    )
    .await;
    // The redelivered message is deleted once its visibility ends (1 s).
    let started = Instant::now();
    while stats.redelivered.load(Ordering::Relaxed) == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "never redelivered"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    running.await.unwrap();
    assert_eq!((done.done, done.failed), (5, 0));
    assert_all_done_once(&b, &record.id, &all).await;
    assert_eq!(
        emulator.requests("us-east-1") - calls_before,
        4,
        "only the four unanswered"
    );
    assert_eq!(stats.answered.load(Ordering::Relaxed), 4);
    let depth = b.queue.depth(&b.name).await.unwrap();
    assert_eq!((depth.visible, depth.in_flight), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_item_delivered_again_is_not_asked_again_embedded() {
    an_answered_item_delivered_again_is_not_asked_again(Kind::Embedded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_item_delivered_again_is_not_asked_again_sqs_dynamodb() {
    an_answered_item_delivered_again_is_not_asked_again(Kind::Aws).await;
}
