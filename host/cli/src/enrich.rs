//! `enrich`: a catalog (JSON Lines of items) through one batch task, for a
//! person at a terminal. Every line is checked before anything is sent; the
//! prompts are the core's; answers are appended to the results file as
//! they come, one line per item, so Ctrl-C (or a crash) loses nothing and
//! the same command resumes where it stopped. A progress bar shows done,
//! failed, rate, ETA and cost; a summary ends the run.

use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use mangaassist_bedrock::invoker::Invoker;
use mangaassist_core::jobs::{JobItem, JobTask, validate_job};
use mangaassist_core::models::Catalog;
use mangaassist_jobs::ItemResult;
use mangaassist_jobs::answer::answer;
use mangaassist_service as service;
use serde_json::{Value, json};
use tokio::sync::Semaphore;

/// Tries of one item before it counts as failed (throttling and regional
/// outages get exponential backoff with jitter in between).
const ATTEMPTS: u32 = 4;
/// First pause between tries; doubles each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The code of an item whose retries Ctrl-C stopped (it is left, not failed).
const INTERRUPTED: &str = "interrupted";
/// Problems listed when the catalog is refused.
const SHOWN_PROBLEMS: usize = 20;

/// What `enrich` was asked to do.
pub struct EnrichArgs {
    /// The catalog: JSON Lines of `{"id","title","author"?,"description"?}`.
    pub catalog: PathBuf,
    /// The task.
    pub task: JobTask,
    /// Results file (appended to; resumed from).
    pub out: PathBuf,
    /// Language of the answers.
    pub language: String,
    /// Items in flight at once.
    pub concurrency: usize,
    /// The service's configuration file (Bedrock mode, regions, catalog).
    pub config: Option<PathBuf>,
}

/// `enrich`.
pub fn run(args: &EnrichArgs) -> Result<(), String> {
    let task_name = args.task.name();
    let items = read_catalog(&args.catalog, task_name, &args.language)?;
    let results = open_results(&args.out)?;
    let done = resume(&args.out, &results, task_name)?;
    let pending: Vec<JobItem> = items
        .iter()
        .filter(|i| !done.contains(&i.id))
        .cloned()
        .collect();
    let already = items.len() - pending.len();
    if already > 0 {
        eprintln!(
            "resuming: {already} of {} items already in {}",
            items.len(),
            args.out.display()
        );
    }
    if pending.is_empty() {
        return summary(args, items.len(), already, &Outcome::default());
    }
    let environment = std::env::var("MANGA_ENV").unwrap_or_else(|_| "dev".to_string());
    let runtime = tokio::runtime::Runtime::new().map_err(|e| format!("cannot start tokio: {e}"))?;
    let outcome = runtime.block_on(async {
        let resolved = crate::serve::configuration(&environment, args.config.as_deref()).await?;
        let reach = service::server::bedrock(&resolved.service, resolved.profile).await?;
        let invoker = reach.batch_invoker().await?;
        if reach.mode == "emulator" {
            eprintln!(
                "note: answers come from the embedded Bedrock emulator (canned, not Claude); set bedrock = \"aws\" in the configuration for Amazon Bedrock"
            );
        }
        let work = Work {
            invoker,
            catalog: resolved.service.catalog.clone(),
            task: args.task,
            language: args.language.clone(),
            out: Arc::new(std::sync::Mutex::new(results)),
        };
        Ok::<_, String>(process(Arc::new(work), pending, args.concurrency).await)
    })?;
    write_failures(&failed_path(&args.out), &outcome.failures)?;
    summary(args, items.len(), already, &outcome)
}

/// The catalog's items, every line checked by the job contract first: a
/// catalog with problems is refused whole, before any call is paid for.
fn read_catalog(path: &Path, task: &str, language: &str) -> Result<Vec<JobItem>, String> {
    let file =
        File::open(path).map_err(|e| format!("cannot read catalog {}: {e}", path.display()))?;
    let mut items = Vec::new();
    let mut problems = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let n = n + 1;
        let line = line.map_err(|e| format!("{}: line {n}: {e}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!("line {n}: not JSON ({e})"));
                continue;
            }
        };
        let doc = json!({"task": task, "language": language, "items": [value]});
        let violations = validate_job(&doc);
        if !violations.is_empty() {
            for v in violations {
                let at = v
                    .path
                    .strip_prefix("/items/0")
                    .unwrap_or(&v.path)
                    .to_string();
                let at = if at.is_empty() { "/".into() } else { at };
                problems.push(format!("line {n}: {at}: {} ({})", v.message, v.code));
            }
            continue;
        }
        let Ok(item) = serde_json::from_value::<JobItem>(value) else {
            problems.push(format!("line {n}: not an item"));
            continue;
        };
        if let Some(first) = seen.get(&item.id).copied() {
            problems.push(format!(
                "line {n}: /id: id \"{}\" is also on line {first} (duplicate_id)",
                item.id
            ));
            continue;
        }
        seen.insert(item.id.clone(), n);
        items.push(item);
    }
    if !problems.is_empty() {
        let mut text = format!(
            "catalog {} has {} problem(s); nothing was sent:",
            path.display(),
            problems.len()
        );
        for p in problems.iter().take(SHOWN_PROBLEMS) {
            text.push_str("\n  ");
            text.push_str(p);
        }
        if problems.len() > SHOWN_PROBLEMS {
            text.push_str(&format!(
                "\n  … and {} more",
                problems.len() - SHOWN_PROBLEMS
            ));
        }
        return Err(text);
    }
    if items.is_empty() {
        return Err(format!("catalog {} has no items", path.display()));
    }
    Ok(items)
}

/// The ids already answered in the results file. A last line cut short (a
/// crash mid-write) is removed so the file stays whole JSON Lines.
fn resume(out: &Path, results: &File, task: &str) -> Result<HashSet<String>, String> {
    let mut done = HashSet::new();
    let file = match File::open(out) {
        Ok(file) => file,
        Err(e) => return Err(format!("cannot read {}: {e}", out.display())),
    };
    let len = file
        .metadata()
        .map_err(|e| format!("cannot read {}: {e}", out.display()))?
        .len();
    let mut reader = BufReader::new(file);
    let mut good_end = 0u64;
    let mut line = String::new();
    let mut n = 0;
    loop {
        line.clear();
        let read = reader
            .read_line(&mut line)
            .map_err(|e| format!("cannot read {}: {e}", out.display()))?;
        if read == 0 {
            break;
        }
        n += 1;
        let parsed = serde_json::from_str::<Value>(line.trim_end()).ok();
        let id = parsed
            .as_ref()
            .and_then(|v| v.get("id").and_then(Value::as_str).map(String::from));
        let last = good_end + read as u64 == len;
        match id {
            Some(id) if line.ends_with('\n') => {
                let theirs = parsed
                    .as_ref()
                    .and_then(|v| v.get("task"))
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if theirs != task {
                    return Err(format!(
                        "{} holds results of the task {theirs:?} (line {n}), not {task:?}: choose another --out",
                        out.display()
                    ));
                }
                done.insert(id);
                good_end += read as u64;
            }
            // Only a last line without its newline is a torn write; a bad
            // line anywhere else is someone's edit, not ours to cut.
            _ if last && !line.ends_with('\n') => break,
            _ => {
                return Err(format!(
                    "{} line {n} is not a result line; fix or move the file (nothing was sent)",
                    out.display()
                ));
            }
        }
    }
    if good_end < len {
        eprintln!(
            "note: {} ended in a partial line (an interrupted write); it is removed and that item asked again",
            out.display()
        );
        results
            .set_len(good_end)
            .map_err(|e| format!("cannot repair {}: {e}", out.display()))?;
    }
    Ok(done)
}

/// The results file, created when missing and locked for this run: a
/// second `enrich` on the same file would ask the same items again.
fn open_results(out: &Path) -> Result<File, String> {
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(out)
        .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    file.try_lock().map_err(|e| match e {
        std::fs::TryLockError::WouldBlock => format!(
            "{} is in use by another enrich run; wait for it or choose another --out",
            out.display()
        ),
        std::fs::TryLockError::Error(e) => format!("cannot lock {}: {e}", out.display()),
    })?;
    file.seek(SeekFrom::End(0))
        .map_err(|e| format!("cannot write {}: {e}", out.display()))?;
    Ok(file)
}

fn failed_path(out: &Path) -> PathBuf {
    let stem = out
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "results".into());
    out.with_file_name(format!("{stem}.failed.jsonl"))
}

struct Work {
    invoker: Invoker,
    catalog: Catalog,
    task: JobTask,
    language: String,
    out: Arc<std::sync::Mutex<File>>,
}

/// One item that could not be answered.
struct Failure {
    id: String,
    code: String,
    message: String,
}

#[derive(Default)]
struct Outcome {
    done: usize,
    failures: Vec<Failure>,
    left: usize,
    cost_usd: f64,
    took: Duration,
    interrupted: bool,
}

/// Runs `pending` with at most `concurrency` in flight, until done or
/// Ctrl-C (then what is in flight finishes and is written).
async fn process(work: Arc<Work>, pending: Vec<JobItem>, concurrency: usize) -> Outcome {
    let started = Instant::now();
    let bar = ProgressBar::new(pending.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:30.cyan/blue} {pos}/{len} items · {per_sec} · ETA {eta} · {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message("failed 0 · $0.0000");
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                stop.store(true, Ordering::Relaxed);
                // A second Ctrl-C: stop now. Every line written is whole.
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
    }
    let total = pending.len();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    // Items are launched in a task of their own, so answers are counted
    // (and the bar moves) while later items wait for a slot.
    let launcher = {
        let stop = Arc::clone(&stop);
        tokio::spawn(async move {
            let slots = Arc::new(Semaphore::new(concurrency.max(1)));
            let mut launched = 0;
            for item in pending {
                let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                    break;
                };
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                launched += 1;
                let (work, tx, stop) = (Arc::clone(&work), tx.clone(), Arc::clone(&stop));
                tokio::spawn(async move {
                    let result = answer_item(&work, &item, &stop).await;
                    let _ = tx.send((item.id, result));
                    drop(permit);
                });
            }
            launched
        })
    };
    let mut outcome = Outcome::default();
    let mut stopped_early = 0;
    while let Some((id, result)) = rx.recv().await {
        match result {
            Ok(cost) => {
                outcome.done += 1;
                outcome.cost_usd += cost;
            }
            // Ctrl-C came between two tries: not failed, just not done.
            Err((code, _, cost)) if code == INTERRUPTED => {
                outcome.cost_usd += cost;
                stopped_early += 1;
            }
            Err((code, message, cost)) => {
                outcome.cost_usd += cost;
                outcome.failures.push(Failure { id, code, message });
            }
        }
        bar.inc(1);
        bar.set_message(format!(
            "failed {} · ${:.4}",
            outcome.failures.len(),
            outcome.cost_usd
        ));
    }
    bar.finish_and_clear();
    let launched = launcher.await.unwrap_or(total);
    outcome.left = total - launched + stopped_early;
    outcome.interrupted = stop.load(Ordering::Relaxed) && outcome.left > 0;
    outcome.took = started.elapsed();
    outcome
}

/// One item through the batch path's [`answer`] (the core's body, Bedrock
/// with failover), retried with jittered backoff on throttling and
/// outages, then its line in the results. Ok(cost) or Err((code, message,
/// cost)).
async fn answer_item(
    work: &Work,
    item: &JobItem,
    stop: &AtomicBool,
) -> Result<f64, (String, String, f64)> {
    let mut cost = 0.0;
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
        match answer(
            &work.invoker,
            &work.catalog,
            work.task,
            &work.language,
            item,
        )
        .await
        {
            Ok(result) => {
                cost += result.cost_usd;
                write_result(work, &result).map_err(|e| ("write_failed".to_string(), e, cost))?;
                return Ok(cost);
            }
            Err(failure) => {
                cost += failure.cost_usd;
                if failure.permanent || attempt == ATTEMPTS {
                    return Err((failure.code, failure.message, cost));
                }
                let jitter = fastrand::u64(0..=backoff.as_millis() as u64 / 2);
                tokio::time::sleep(backoff + Duration::from_millis(jitter)).await;
                backoff *= 2;
                if stop.load(Ordering::Relaxed) {
                    return Err((INTERRUPTED.into(), String::new(), cost));
                }
            }
        }
    }
    Err(("bedrock_unavailable".into(), "no attempt left".into(), cost))
}

/// Appends one whole line, the jobs API's result line (written and flushed
/// under the lock, so lines never interleave).
fn write_result(work: &Work, result: &ItemResult) -> Result<(), String> {
    let mut text = result.line();
    text.push('\n');
    let mut file = work
        .out
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    file.write_all(text.as_bytes())
        .and_then(|()| file.flush())
        .map_err(|e| format!("cannot write the result of {}: {e}", result.id))
}

/// The items that failed in this run, with their last error (rewritten
/// each run; removed when none failed).
fn write_failures(path: &Path, failures: &[Failure]) -> Result<(), String> {
    if failures.is_empty() {
        let _ = std::fs::remove_file(path);
        return Ok(());
    }
    let mut text = String::new();
    for f in failures {
        text.push_str(
            &json!({"id": f.id, "error": {"code": f.code, "message": f.message}}).to_string(),
        );
        text.push('\n');
    }
    std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn summary(args: &EnrichArgs, total: usize, already: usize, o: &Outcome) -> Result<(), String> {
    let secs = o.took.as_secs_f64();
    let rate = if secs > 0.0 {
        o.done as f64 / secs
    } else {
        0.0
    };
    eprintln!(
        "{} items: {} done ({} this run, {} before), {} failed, {} left · {:.1} s · {:.1} items/s · ${:.4} this run",
        total,
        already + o.done,
        o.done,
        already,
        o.failures.len(),
        o.left,
        secs,
        rate,
        o.cost_usd
    );
    eprintln!("results: {}", args.out.display());
    if !o.failures.is_empty() {
        eprintln!(
            "failed: {} (run the same command again to retry them)",
            failed_path(&args.out).display()
        );
    }
    if o.interrupted {
        return Err(format!(
            "interrupted with {} items left; run the same command again to resume",
            o.left
        ));
    }
    if !o.failures.is_empty() {
        return Err(format!("{} items failed", o.failures.len()));
    }
    Ok(())
}
