//! The batch path at the command line: `worker` (job workers until a
//! signal, with a line of progress now and then) and `jobs` (set up the
//! SQS queue and DynamoDB table, list and redrive dead letters, depth).

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use mangaassist_jobs::store::create_table;
use mangaassist_queue::SqsQueue;
use mangaassist_service as service;
use serde_json::json;

use crate::args::JobsCommand;
use crate::serve::{configuration, shutdown_signal};

/// How often a running worker logs what it has done.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);

fn environment() -> String {
    std::env::var("MANGA_ENV").unwrap_or_else(|_| "dev".to_string())
}

/// `worker`: job workers as configured, until SIGTERM or Ctrl-C; the items
/// in flight finish first (a second signal is not waited for: an item cut
/// off comes back to the queue when its visibility ends).
pub fn run_worker(config: Option<&Path>) -> Result<(), String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start tokio: {e}"))?;
    runtime.block_on(async {
        let resolved = configuration(&environment(), config).await?;
        let c = &resolved.service;
        if c.jobs_workers == 0 {
            return Err(
                "jobs_workers is 0: a worker with no slots would never take an item".into(),
            );
        }
        let reach = service::server::bedrock(c, resolved.profile).await?;
        let bedrock = reach.mode;
        let batch = service::batch::open(c).await?;
        let invoker = Arc::new(reach.batch_invoker().await?);
        let worker = Arc::new(service::batch::worker(&batch, invoker, c));
        let stats = worker.stats();
        println!(
            "mangaassist worker: queue {} ({}), {} items at once, Bedrock: {bedrock}",
            c.jobs_queue,
            if c.jobs_sqs { "SQS" } else { "embedded" },
            c.jobs_workers
        );
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let running = tokio::spawn(Arc::clone(&worker).run(stopping));
        let progress = tokio::spawn(async move {
            let mut every = tokio::time::interval(PROGRESS_EVERY);
            every.tick().await;
            loop {
                every.tick().await;
                tracing::info!(
                    answered = stats.answered.load(Ordering::Relaxed),
                    dead_lettered = stats.dead_lettered.load(Ordering::Relaxed),
                    retried = stats.retried.load(Ordering::Relaxed),
                    redelivered = stats.redelivered.load(Ordering::Relaxed),
                    "worker progress"
                );
            }
        });
        shutdown_signal().await;
        tracing::info!("stopping: items in flight finish first");
        let _ = stop.send(true);
        let _ = running.await;
        progress.abort();
        Ok(())
    })
}

/// `jobs …`.
pub fn run(command: JobsCommand, config: Option<&Path>, mut out: impl Write) -> Result<(), String> {
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start tokio: {e}"))?;
    let write_err = |e: std::io::Error| format!("cannot write: {e}");
    runtime.block_on(async {
        let resolved = configuration(&environment(), config).await?;
        let c = &resolved.service;
        match command {
            JobsCommand::Setup => setup(c, &mut out).await,
            JobsCommand::DeadLetters => {
                let batch = service::batch::open(c).await?;
                let dead = batch
                    .queue
                    .dead_letters(&batch.queue_name)
                    .await
                    .map_err(|e| e.to_string())?;
                for letter in dead {
                    let item = serde_json::from_str::<serde_json::Value>(&letter.body)
                        .unwrap_or(serde_json::Value::String(letter.body.clone()));
                    writeln!(
                        out,
                        "{}",
                        json!({"message": item, "receiveCount": letter.receive_count, "lastError": letter.last_error})
                    )
                    .map_err(write_err)?;
                }
                out.flush().map_err(write_err)
            }
            JobsCommand::Redrive => {
                let batch = service::batch::open(c).await?;
                let moved = batch
                    .queue
                    .redrive(&batch.queue_name)
                    .await
                    .map_err(|e| e.to_string())?;
                writeln!(out, "{}", json!({"redriven": moved})).map_err(write_err)?;
                out.flush().map_err(write_err)
            }
            JobsCommand::Depth => {
                let batch = service::batch::open(c).await?;
                let depth = batch
                    .queue
                    .depth(&batch.queue_name)
                    .await
                    .map_err(|e| e.to_string())?;
                writeln!(
                    out,
                    "{}",
                    json!({"visible": depth.visible, "inFlight": depth.in_flight, "dead": depth.dead})
                )
                .map_err(write_err)?;
                out.flush().map_err(write_err)
            }
        }
    })
}

/// Longest wait of one call while setting up.
const SETUP_CALL: Duration = Duration::from_secs(10);

async fn setup(c: &service::config::ServiceConfig, out: &mut impl Write) -> Result<(), String> {
    let write_err = |e: std::io::Error| format!("cannot write: {e}");
    if c.jobs_sqs {
        let sdk = service::aws_stores::sdk_config(SETUP_CALL).await?;
        let queue = SqsQueue::new(
            service::aws_stores::sqs(&sdk),
            service::batch::queue_policy(c),
        );
        let url = queue
            .create(&c.jobs_queue)
            .await
            .map_err(|e| e.to_string())?;
        writeln!(
            out,
            "SQS queue {} ready ({url}), dead-letter queue {} (workers give up after {} receives; the queue's own limit is {})",
            c.jobs_queue,
            mangaassist_queue::dead_letter_name(&c.jobs_queue),
            c.jobs_max_receives,
            service::batch::queue_policy(c).max_receives
        )
        .map_err(write_err)?;
    }
    if let Some(table) = &c.jobs_table {
        let sdk = service::aws_stores::sdk_config(SETUP_CALL).await?;
        let created = create_table(&service::aws_stores::dynamodb(&sdk), table).await?;
        writeln!(
            out,
            "DynamoDB table {table} {} (jobId + itemId)",
            if created { "created" } else { "already exists" }
        )
        .map_err(write_err)?;
    }
    if !c.jobs_sqs || c.jobs_table.is_none() {
        service::batch::open(c).await?;
        writeln!(
            out,
            "embedded {} ready in {}",
            match (c.jobs_sqs, c.jobs_table.is_some()) {
                (false, false) => "queue and job store",
                (false, true) => "queue",
                _ => "job store",
            },
            c.jobs_dir.display()
        )
        .map_err(write_err)?;
    }
    out.flush().map_err(write_err)
}
