//! Invoker overhead over the emulator at zero model latency (issue 5).
//!
//! Runs the emulator in-process, then times, sequentially on one connection:
//! a bare keep-alive HTTP/1.1 POST to the emulator (the floor: emulator work
//! and loopback), then `Invoker::invoke` and `Invoker::invoke_stream` through
//! the real AWS SDK (signing, endpoint resolution, event-stream decoding, the
//! failover bookkeeping), and `Invoker::count_tokens` (CountTokens before a
//! call). Prints p50/p99 of each and the difference.
//!
//! `cargo run --release -p mangaassist-bench --bin invoker_overhead [N]`
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "bench setup: failing loudly is the right answer"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use mangaassist_bedrock::clock::SystemClock;
use mangaassist_bedrock::invoker::{Candidate, Invoker, InvokerConfig};
use mangaassist_bedrock::profile::EnvProfile;
use mangaassist_core::body::{BodySettings, build_body};
use mangaassist_core::models::Catalog;
use mangaassist_emulator::{self as emulator, EmulatorConfig};

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn report(name: &str, mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    let (p50, p99) = (percentile(&samples, 0.50), percentile(&samples, 0.99));
    println!(
        "{name:<28} n={:<6} p50 {:>8.1} µs  p99 {:>8.1} µs",
        samples.len(),
        p50.as_secs_f64() * 1e6,
        p99.as_secs_f64() * 1e6
    );
    (p50, p99)
}

/// The bare request: a well-formed (not verifiable) SigV4 header is enough.
fn raw_requests(addr: std::net::SocketAddr, body: &str, n: usize) -> Vec<Duration> {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_nodelay(true).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let request = format!(
        "POST /model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke HTTP/1.1\r\nHost: {addr}\r\n\
         Content-Type: application/json\r\nX-Amz-Date: 20261126T000000Z\r\n\
         Authorization: AWS4-HMAC-SHA256 Credential=AKIDEMULATOR/20261126/us-east-1/bedrock/aws4_request, \
         SignedHeaders=content-type;host;x-amz-date, Signature={}\r\nContent-Length: {}\r\n\r\n{body}",
        "0".repeat(64),
        body.len()
    );
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let started = Instant::now();
        writer.write_all(request.as_bytes()).unwrap();
        let mut length = 0usize;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        samples.push(started.elapsed());
    }
    samples
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(3000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let emulator = emulator::start("127.0.0.1:0".parse().unwrap(), EmulatorConfig::default())
            .await
            .unwrap();
        let config = InvokerConfig::emulated(
            &emulator.endpoint(),
            &["us-east-1", "us-west-2", "ap-northeast-1"],
            EnvProfile::DEV,
        );
        let invoker = Invoker::new(&config, Arc::new(SystemClock::new()))
            .await
            .unwrap();
        let model = Catalog::spec_default().get("haiku").unwrap().clone();
        let body = build_body(
            "『チェンソーマン』の最新刊はありますか？",
            &[],
            BodySettings {
                system: "You are a manga store assistant.",
                max_tokens: 512,
                temperature: 0.2,
            },
        )
        .unwrap();
        let json = serde_json::to_string(&body).unwrap();
        let budget = Duration::from_secs(10);

        let addr = emulator.addr();
        let raw_json = json.clone();
        let _ = tokio::task::spawn_blocking(move || raw_requests(addr, &raw_json, 200))
            .await
            .unwrap();
        let raw = tokio::task::spawn_blocking(move || raw_requests(addr, &json, n))
            .await
            .unwrap();
        let (raw50, raw99) = report("bare HTTP to emulator", raw);

        let mut invoke = Vec::with_capacity(n);
        for i in 0..n + 200 {
            let started = Instant::now();
            invoker
                .invoke(
                    &[Candidate {
                        model: &model,
                        body: &body,
                    }],
                    budget,
                )
                .await
                .unwrap();
            if i >= 200 {
                invoke.push(started.elapsed());
            }
        }
        let (inv50, inv99) = report("Invoker::invoke", invoke);

        let mut stream = Vec::with_capacity(n);
        for i in 0..n + 200 {
            let started = Instant::now();
            invoker
                .invoke_stream(
                    &[Candidate {
                        model: &model,
                        body: &body,
                    }],
                    budget,
                    |_| {},
                )
                .await
                .unwrap();
            if i >= 200 {
                stream.push(started.elapsed());
            }
        }
        let (st50, st99) = report("Invoker::invoke_stream", stream);

        // CountTokens (issue 18): what counting a body first adds to a call.
        let current = Catalog::preset("current-us")
            .unwrap()
            .get("sonnet")
            .unwrap()
            .clone();
        let mut count = Vec::with_capacity(n);
        for i in 0..n + 200 {
            let started = Instant::now();
            invoker.count_tokens(&current, &body, budget).await.unwrap();
            if i >= 200 {
                count.push(started.elapsed());
            }
        }
        report("Invoker::count_tokens", count);
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!(
            "invoke overhead over bare HTTP: p50 {:.1} µs, p99 {:.1} µs",
            us(inv50) - us(raw50),
            us(inv99) - us(raw99)
        );
        println!(
            "stream overhead over bare HTTP: p50 {:.1} µs, p99 {:.1} µs",
            us(st50) - us(raw50),
            us(st99) - us(raw99)
        );
    });
}
