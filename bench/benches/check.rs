//! Throughput of check + sanitize + estimate over the realistic chat corpus,
//! and per-call latency of each piece on typical messages.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    reason = "benchmark harness"
)]

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use mangaassist_bench::load_corpus;
use mangaassist_core::api::check_report;
use mangaassist_core::policy::Policy;
use mangaassist_core::sanitize::sanitize;
use mangaassist_core::tokens::estimate_tokens_reference;

fn corpus(c: &mut Criterion) {
    let messages = load_corpus().unwrap_or_else(|e| panic!("{e}"));
    let bytes: usize = messages.iter().map(String::len).sum();
    let policy = Policy::spec_default().unwrap();
    let run = |messages: &[String]| {
        for m in messages {
            black_box(check_report(&policy, black_box(m)));
        }
    };
    let mut g = c.benchmark_group("corpus_check_sanitize_estimate");
    g.throughput(Throughput::Elements(messages.len() as u64));
    g.bench_function("messages", |b| b.iter(|| run(&messages)));
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function("bytes", |b| b.iter(|| run(&messages)));
    g.finish();
}

fn pieces(c: &mut Criterion) {
    let policy = Policy::spec_default().unwrap();
    let short_ja = "『鬼滅の刃』の最新巻はいつ発売されますか？";
    let four_kb = "おすすめの漫画を教えてください。".repeat(85);
    let sixteen_kb = "漫画".repeat(2730);
    // macOS input and some IMEs send decomposed kana: the normalizer's slow path.
    let sixteen_kb_nfd = "か\u{3099}んは\u{309A}る".repeat(1000);
    let mut g = c.benchmark_group("pieces");
    for (name, msg) in [
        ("short_ja", short_ja),
        ("4kb", &four_kb),
        ("16kb", &sixteen_kb),
        ("16kb_nfd", &sixteen_kb_nfd),
    ] {
        g.bench_function(format!("check/{name}"), |b| {
            b.iter(|| policy.check(black_box(msg)))
        });
        g.bench_function(format!("sanitize/{name}"), |b| {
            b.iter(|| sanitize(black_box(msg)))
        });
        g.bench_function(format!("estimate/{name}"), |b| {
            b.iter(|| estimate_tokens_reference(black_box(msg)))
        });
    }
    g.finish();
}

criterion_group!(benches, corpus, pieces);
criterion_main!(benches);
