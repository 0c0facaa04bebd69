//! Every vector of the corpus through the core linked natively.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed expectation is the test failing"
)]

use mangaassist_conformance::{NativeEngine, Suite, run};

#[test]
fn native_engine_passes_every_vector() {
    let mut engine = NativeEngine::new().expect("default policy compiles");
    let outcome = run(&mut engine, &Suite::ALL).expect("corpus loads");
    assert!(outcome.skipped.is_empty());
    assert!(
        outcome.passed >= 300,
        "corpus too small: {}",
        outcome.passed
    );
    assert!(
        outcome.mismatches.is_empty(),
        "{}",
        outcome.report("native")
    );
}
