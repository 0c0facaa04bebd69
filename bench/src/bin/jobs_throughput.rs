//! Items per second through the batch path, and the worker's memory over
//! a long run (issue 16): jobs of 1,000 items submitted in turn, one
//! in-process worker (rate unlimited) answering them from the emulator at
//! zero model latency, results recorded in the store.
//!
//! `cargo run --release -p mangaassist-bench --bin jobs_throughput -- embedded [ITEMS] [CONCURRENCY]`
//! `cargo run --release -p mangaassist-bench --bin jobs_throughput -- aws [ITEMS] [CONCURRENCY]`
//!
//! `aws` uses SQS and DynamoDB through the SDK's standard settings
//! (`AWS_ENDPOINT_URL` pointing at moto's server for a local run) and makes
//! a queue and a table of its own. Prints items/s for each 10% of the run
//! and the process's RSS, so a leak shows as a rising column.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "bench setup: failing loudly is the right answer"
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use mangaassist_bedrock::clock::SystemClock;
use mangaassist_bedrock::invoker::{Invoker, InvokerConfig};
use mangaassist_bedrock::profile::EnvProfile;
use mangaassist_core::jobs::{Job, JobItem, JobTask};
use mangaassist_core::models::Catalog;
use mangaassist_emulator::{self as emulator, EmulatorConfig};
use mangaassist_jobs::store::{DynamoJobs, SqliteJobs, create_table};
use mangaassist_jobs::{JobStore, Worker, WorkerSettings, submit};
use mangaassist_queue::{EmbeddedQueue, JobQueue, QueuePolicy, SqsQueue};
use mangaassist_service::aws_stores;

/// The resident set size of this process, KiB (Linux).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

async fn backends(kind: &str) -> (JobQueue, JobStore, String) {
    let name = format!("bench-{}", std::process::id());
    let policy = QueuePolicy { max_receives: 5 };
    match kind {
        "embedded" => {
            let dir = std::env::temp_dir().join(name.clone());
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            (
                JobQueue::Embedded(Arc::new(
                    EmbeddedQueue::open(&dir.join("queue.db"), policy).unwrap(),
                )),
                JobStore::Sqlite(Arc::new(SqliteJobs::open(&dir.join("jobs.db")).unwrap())),
                name,
            )
        }
        "aws" => {
            let sdk = aws_stores::sdk_config(Duration::from_secs(30))
                .await
                .unwrap();
            let queue = SqsQueue::new(aws_stores::sqs(&sdk), policy);
            queue.create(&name).await.unwrap();
            let dynamo = aws_stores::dynamodb(&sdk);
            create_table(&dynamo, &name).await.unwrap();
            (
                JobQueue::Sqs(Arc::new(queue)),
                JobStore::Dynamo(Arc::new(DynamoJobs::new(dynamo, &name))),
                name,
            )
        }
        other => panic!("backend {other:?}: embedded or aws"),
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let kind = args.get(1).map_or("embedded", String::as_str).to_string();
    let total: usize = args.get(2).and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let concurrency: usize = args.get(3).and_then(|n| n.parse().ok()).unwrap_or(16);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let emulator =
            emulator::start("127.0.0.1:0".parse().unwrap(), EmulatorConfig::default())
                .await
                .unwrap();
        let config = InvokerConfig::emulated(
            &emulator.endpoint(),
            &["us-east-1", "us-west-2", "ap-northeast-1"],
            EnvProfile::DEV,
        )
        .for_batch();
        let invoker = Arc::new(
            Invoker::new(&config, Arc::new(SystemClock::new()))
                .await
                .unwrap(),
        );
        let (queue, store, name) = backends(&kind).await;
        let worker = Arc::new(Worker::new(
            queue.clone(),
            store.clone(),
            invoker,
            Catalog::spec_default(),
            WorkerSettings {
                queue: name.clone(),
                concurrency,
                rate_per_second: 0.0,
                wait: Duration::from_secs(1),
                ..WorkerSettings::default()
            },
        ));
        let stats = worker.stats();
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let running = tokio::spawn(Arc::clone(&worker).run(stopping));
        println!(
            "backend {kind}, {total} items in jobs of 1,000, {concurrency} in flight, emulator at zero latency"
        );
        println!("{:>8} {:>10} {:>10}", "items", "items/s", "RSS MiB");
        let started = Instant::now();
        let step = (total / 10).max(1);
        let mut submitted = 0;
        let mut next_report = step;
        let mut last = (Instant::now(), 0u64);
        let mut job_ids = Vec::new();
        loop {
            let answered = stats.answered.load(std::sync::atomic::Ordering::Relaxed);
            // Keep at most two jobs ahead of the worker, as a feeder would.
            while submitted < total && (submitted as u64) < answered + 2_000 {
                let n = 1000.min(total - submitted);
                let items = (0..n)
                    .map(|i| JobItem {
                        id: format!("item-{}", submitted + i),
                        title: format!("タイトル {}", submitted + i),
                        author: Some("作者".into()),
                        description: None,
                    })
                    .collect();
                let job = Job {
                    task: JobTask::Synopsis,
                    language: None,
                    items,
                };
                job_ids.push(
                    submit(&store, &queue, &name, "key:bench", job, 0)
                        .await
                        .unwrap()
                        .id,
                );
                submitted += n;
            }
            if answered as usize >= next_report {
                let now = Instant::now();
                let rate = (answered - last.1) as f64 / now.duration_since(last.0).as_secs_f64();
                println!("{answered:>8} {rate:>10.0} {:>10.1}", rss_kib() as f64 / 1024.0);
                last = (now, answered);
                next_report += step;
            }
            if answered as usize >= total {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let took = started.elapsed();
        stop.send(true).unwrap();
        running.await.unwrap();
        let mut done = 0;
        for id in &job_ids {
            done += store.get(id).await.unwrap().unwrap().done;
        }
        println!(
            "{total} items in {:.1} s: {:.0} items/s overall; {done} results recorded, {} redelivered",
            took.as_secs_f64(),
            total as f64 / took.as_secs_f64(),
            stats
                .redelivered
                .load(std::sync::atomic::Ordering::Relaxed)
        );
        emulator.shutdown().await;
    });
}
