//! Load generator for the service (issue 6): starts `mangaassist serve`'s
//! server in this process, its embedded emulator at zero latency, and drives
//! POST /v1/chat over keep-alive HTTP/1.1 connections at stepped, fixed
//! request rates. Open loop: when a connection is still busy with an earlier
//! answer at a request's scheduled time, its latency counts from that
//! scheduled time (a stalled server cannot hide its queueing); otherwise from
//! the moment it is written (the generator's own timer lag, up to a
//! millisecond, is not the service's).
//!
//! Two workloads: `hit` repeats one message (after the first, every request
//! is answered by the response cache: the service's own path, policy
//! included), `miss` sends a new message each time (the full path through
//! the AWS SDK to the emulator).
//!
//! A third, `burst`, sends rounds of 64 identical new questions at once and
//! counts how many reached Bedrock (single flight makes it one per round).
//! With `LOAD_REDIS_URL` set, the cache, limits and single flight live in
//! that Redis (as in a fleet) instead of the process.
//!
//! With `LOAD_JOB_ITEMS=N`, a batch job of N items (jobs of 1,000) is
//! queued first and the service's own workers answer it while the chat
//! load runs (`LOAD_JOB_RATE` calls/s, 100 by default): chat's latency
//! beside batch work, against a run without.
//!
//! `cargo run --release -p mangaassist-bench --bin load -- [hit|miss|both|burst] [seconds] [rates...]`

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use mangaassist_service::config::resolve;
use mangaassist_service::server::start;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const CONNECTIONS: usize = 64;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Workload {
    Hit,
    Miss,
    Burst,
}

struct Step {
    target: u64,
    sent: u64,
    ok: u64,
    errors: u64,
    achieved: f64,
    p50_us: u64,
    p99_us: u64,
    max_us: u64,
}

fn main() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let workloads = match args.first().map(String::as_str) {
        Some("hit") => vec![Workload::Hit],
        Some("miss") => vec![Workload::Miss],
        Some("burst") => vec![Workload::Burst],
        _ => vec![Workload::Hit, Workload::Miss],
    };
    let seconds: u64 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(5);
    let rates: Vec<u64> = if args.len() > 2 {
        args[2..].iter().filter_map(|s| s.parse().ok()).collect()
    } else {
        vec![500, 1_000, 2_000, 3_000, 5_000, 7_500, 10_000]
    };

    // The server: 2 workers, like the machine's cores.
    let server_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let config = mangaassist_bench::service_config("bench", BENCH_KEY);
    let job_items: usize = std::env::var("LOAD_JOB_ITEMS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let job_rate: f64 = std::env::var("LOAD_JOB_RATE")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100.0);
    let jobs_dir = std::env::temp_dir().join(format!("mangaassist-load-{}", std::process::id()));
    let config = format!(
        "{config}jobs_dir = {:?}\njobs_workers = 8\njobs_rate_per_second = {job_rate:?}\n",
        jobs_dir.display().to_string()
    );
    let config = match std::env::var("LOAD_REDIS_URL") {
        Ok(url) => format!("{config}redis_url = {url:?}\nredis_timeout_ms = 50\n"),
        Err(_) => config,
    };
    let resolved = resolve("prod", Some(&config), &[])?;
    let store = if resolved.service.redis_url.is_some() {
        "Redis"
    } else {
        "in-process"
    };
    let server = server_rt.block_on(start(resolved))?;
    let addr = server.addr();
    let jobs = server_rt.block_on(queue_jobs(server.service(), job_items))?;

    // The generator: one thread of its own.
    let load_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    println!(
        "service on {addr}; {store} cache and limits; emulator at zero latency; \
         {CONNECTIONS} keep-alive connections; {seconds} s per step"
    );
    for workload in workloads {
        let name = match workload {
            Workload::Hit => "hit (response cache)",
            Workload::Miss => "miss (SDK + emulator)",
            Workload::Burst => {
                load_rt.block_on(burst(addr, 20))?;
                continue;
            }
        };
        println!("\nworkload {name}");
        println!(
            "{:>8} {:>10} {:>8} {:>8} {:>10} {:>10} {:>10}",
            "target/s", "achieved/s", "ok", "errors", "p50 µs", "p99 µs", "max µs"
        );
        // Warm: pooled instances, connections, the cached answer.
        load_rt.block_on(run_step(addr, workload, 200, 1))?;
        for &rate in &rates {
            let step = load_rt.block_on(run_step(addr, workload, rate, seconds))?;
            println!(
                "{:>8} {:>10.0} {:>8} {:>8} {:>10} {:>10} {:>10}",
                step.target,
                step.achieved,
                step.ok,
                step.errors,
                step.p50_us,
                step.p99_us,
                step.max_us
            );
            let _ = step.sent;
            if step.achieved < 0.9 * step.target as f64 {
                println!("(stopped stepping: the service no longer keeps up)");
                break;
            }
        }
    }
    if !jobs.is_empty() {
        let (mut done, mut pending) = (0, 0);
        for id in &jobs {
            let job = server_rt
                .block_on(server.service().batch.store.get(id))
                .map_err(|e| e.to_string())?
                .ok_or("job gone")?;
            done += job.done;
            pending += job.pending();
        }
        println!("\nbatch job beside the load: {done} items answered, {pending} pending");
    }
    server_rt.block_on(server.shutdown());
    let _ = std::fs::remove_dir_all(&jobs_dir);
    Ok(())
}

/// Queues `items` job items (jobs of 1,000) on the service's own queue.
async fn queue_jobs(
    service: &mangaassist_service::app::Service,
    items: usize,
) -> Result<Vec<String>, String> {
    let mut ids = Vec::new();
    let mut queued = 0;
    while queued < items {
        let n = 1000.min(items - queued);
        let job = mangaassist_core::jobs::Job {
            task: mangaassist_core::jobs::JobTask::Synopsis,
            language: None,
            items: (queued..queued + n)
                .map(|i| mangaassist_core::jobs::JobItem {
                    id: format!("item-{i}"),
                    title: format!("タイトル {i}"),
                    author: None,
                    description: None,
                })
                .collect(),
        };
        let batch = &service.batch;
        let record = mangaassist_jobs::submit(
            &batch.store,
            &batch.queue,
            &batch.queue_name,
            "key:bench",
            job,
            0,
        )
        .await
        .map_err(|e| e.to_string())?;
        ids.push(record.id);
        queued += n;
    }
    if items > 0 {
        println!(
            "queued a batch job of {items} items; the service's workers answer it during the load"
        );
    }
    Ok(ids)
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// The API key every generated request carries.
const BENCH_KEY: &str = "bench-key-0123456789";

fn request(workload: Workload) -> Vec<u8> {
    let message = match workload {
        Workload::Hit => "ワンピースの最新刊はありますか？".to_string(),
        Workload::Burst => format!(
            "ワンピースの第{}話はどこで読めますか？",
            COUNTER.load(Ordering::Relaxed)
        ),
        Workload::Miss => format!(
            "ワンピースの{}巻はありますか？",
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ),
    };
    let body = format!(r#"{{"action":"sendMessage","data":{{"message":"{message}"}}}}"#);
    format!(
        "POST /v1/chat HTTP/1.1\r\nHost: localhost\r\nX-Api-Key: {BENCH_KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn run_step(
    addr: SocketAddr,
    workload: Workload,
    rate: u64,
    seconds: u64,
) -> Result<Step, String> {
    let total = rate * seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = Instant::now() + Duration::from_millis(20);
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CONNECTIONS {
        let next = Arc::clone(&next);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut errors = 0u64;
            let mut stream = connect(addr).await?;
            let mut buf = Vec::with_capacity(4096);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let scheduled = start + interval.mul_f64(i as f64);
                let busy_past_schedule = Instant::now() > scheduled;
                tokio::time::sleep_until(scheduled.into()).await;
                let request = request(workload);
                let from = if busy_past_schedule {
                    scheduled
                } else {
                    Instant::now()
                };
                let ok = exchange(&mut stream, &request, &mut buf).await;
                match ok {
                    Ok((200, _)) => latencies.push(from.elapsed().as_micros() as u64),
                    Ok(_) => errors += 1,
                    Err(_) => {
                        errors += 1;
                        stream = connect(addr).await?;
                    }
                }
            }
            Ok::<_, String>((latencies, errors))
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await.map_err(|e| e.to_string())??;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let pick = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0)
    };
    Ok(Step {
        target: rate,
        sent: total,
        ok: latencies.len() as u64,
        errors,
        achieved: latencies.len() as f64 / elapsed,
        p50_us: pick(0.50),
        p99_us: pick(0.99),
        max_us: latencies.last().copied().unwrap_or(0),
    })
}

async fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    Ok(stream)
}

/// Rounds of [`CONNECTIONS`] identical new questions sent at once: how many
/// of each round reached Bedrock (answered `"cached":false`), and latency.
async fn burst(addr: SocketAddr, rounds: u64) -> Result<(), String> {
    println!("\nworkload burst: {rounds} rounds of {CONNECTIONS} identical new questions at once");
    let mut calls = Vec::new();
    let mut latencies = Vec::new();
    for _ in 0..rounds {
        COUNTER.fetch_add(1, Ordering::Relaxed);
        let mut tasks = Vec::new();
        for _ in 0..CONNECTIONS {
            let mut stream = connect(addr).await?;
            tasks.push(tokio::spawn(async move {
                let mut buf = Vec::new();
                let from = Instant::now();
                let answer = exchange(&mut stream, &request(Workload::Burst), &mut buf).await;
                answer.map(|(status, uncached)| (status, uncached, from.elapsed()))
            }));
        }
        let mut round_calls = 0;
        for t in tasks {
            let (status, uncached, took) = t.await.map_err(|e| e.to_string())??;
            if status != 200 {
                return Err(format!("burst answered {status}"));
            }
            round_calls += u64::from(uncached);
            latencies.push(took.as_micros() as u64);
        }
        calls.push(round_calls);
    }
    latencies.sort_unstable();
    let pick = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "Bedrock calls per round: {calls:?}; latency p50 {} µs, p99 {} µs, max {} µs",
        pick(0.5),
        pick(0.99),
        latencies.last().copied().unwrap_or(0)
    );
    Ok(())
}

/// Writes one request and reads one response; returns its status and
/// whether it was answered by Bedrock rather than the cache.
async fn exchange(
    stream: &mut TcpStream,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> Result<(u16, bool), String> {
    stream.write_all(request).await.map_err(|e| e.to_string())?;
    buf.clear();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = std::str::from_utf8(&buf[..end]).map_err(|e| e.to_string())?;
            let status: u16 = head
                .get(9..12)
                .and_then(|s| s.parse().ok())
                .ok_or("bad status line")?;
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .ok_or("no content-length")?;
            while buf.len() < end + 4 + length {
                let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
                if n == 0 {
                    return Err("connection closed mid-body".into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = &buf[end + 4..];
            let marker = br#""cached":false"#;
            let uncached = body.windows(marker.len()).any(|w| w == marker);
            return Ok((status, uncached));
        }
        let n = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed".into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}
