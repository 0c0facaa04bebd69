//! Per-check latency, native core versus the policy component in wasmtime,
//! for a short Japanese message, ~4 KB and ~16 KB; and what a new instance
//! and a policy load cost. `cargo bench -p mangaassist-bench --bench engines`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "bench setup: failing loudly is the right answer"
)]

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use mangaassist_core::api::check_report;
use mangaassist_core::policy::Policy;
use mangaassist_sandbox::{ActivePolicy, Limits, PolicySource, Runtime};

const SHORT: &str = "『呪術廻戦』の最新刊はいつ発売ですか？おすすめの漫画も教えてください。";

/// Japanese chat text with some ASCII, cut at a char boundary near `bytes`.
fn message(bytes: usize) -> String {
    let unit = "ワンピースの108巻を探しています。Do you have it in stock? 在庫はありますか、それとも予約が必要ですか。";
    let mut s = String::new();
    while s.len() + unit.len() <= bytes {
        s.push_str(unit);
    }
    s
}

fn engines(c: &mut Criterion) {
    let policy = Policy::spec_default().unwrap();
    let runtime = Runtime::new(Limits::default()).unwrap();
    let active = ActivePolicy::start(runtime.clone(), PolicySource::Embedded, 1)
        .expect("the embedded policy (scripts/build-policy.sh) loads");
    let sandbox = &active.current().sandbox;
    let mut group = c.benchmark_group("check");
    group.bench_function("wasmtime/call_overhead_version", |b| {
        b.iter(|| sandbox.version().unwrap())
    });
    for (name, text) in [
        ("empty", String::new()),
        ("short_ja", SHORT.to_string()),
        ("4kb", message(4_000)),
        ("16kb", message(16_000)),
    ] {
        assert_eq!(
            serde_json::to_string(&check_report(&policy, &text)).unwrap(),
            serde_json::to_string(&sandbox.check(&text).unwrap()).unwrap(),
            "engines disagree on {name}"
        );
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_with_input(BenchmarkId::new("native", name), &text, |b, t| {
            b.iter(|| check_report(&policy, black_box(t)))
        });
        group.bench_with_input(BenchmarkId::new("wasmtime", name), &text, |b, t| {
            b.iter(|| sandbox.check(black_box(t)).unwrap())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("instance");
    group.sample_size(20);
    group.bench_function("ready_instance", |b| {
        b.iter(|| sandbox.spare_instance().unwrap())
    });
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../wasm/component/dist/policy.wasm"
    ))
    .unwrap();
    group.sample_size(10);
    group.bench_function("load_compile_and_first_instance", |b| {
        b.iter(|| runtime.load(black_box(&bytes)).unwrap())
    });
    group.finish();
}

criterion_group!(benches, engines);
criterion_main!(benches);
