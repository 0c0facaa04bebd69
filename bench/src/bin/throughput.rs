//! Same method as `bench/python_baseline.py` (best of N passes over the bench
//! corpus, check + sanitize + estimate per message), so the two figures can
//! be divided. Criterion (`cargo bench`) gives the detailed, statistical view.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use mangaassist_bench::load_corpus;
use mangaassist_core::api::check_report;
use mangaassist_core::policy::Policy;

fn main() -> ExitCode {
    let messages = match load_corpus() {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let policy = match Policy::spec_default() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let bytes: usize = messages.iter().map(String::len).sum();
    let mut best = f64::INFINITY;
    for _ in 0..50 {
        let start = Instant::now();
        for m in &messages {
            black_box(check_report(&policy, black_box(m)));
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    #[allow(clippy::cast_precision_loss, reason = "small counts")]
    let (n, b) = (messages.len() as f64, bytes as f64);
    println!(
        "rust: {} messages, {bytes} bytes\nbest of 50: {:.2} ms = {:.0} messages/s, {:.2} us/message, {:.1} MB/s",
        messages.len(),
        best * 1e3,
        n / best,
        best / n * 1e6,
        b / best / 1e6
    );
    ExitCode::SUCCESS
}
