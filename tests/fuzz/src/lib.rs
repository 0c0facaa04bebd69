//! What every fuzz target asserts. Each function takes the fuzzer's bytes
//! and panics when an invariant breaks; the cargo-fuzz targets in `fuzz/`
//! call them, and `tests/replay.rs` runs each regression input under
//! `testdata/<target>/` through the same function in the ordinary tests
//! (rust-lang/regex's `tests/fuzz` is the model).
//!
//! The invariants are properties, not "no panic" alone: engines agree (the
//! policy component in wasmtime answers as the native core), sanitize is
//! idempotent, a cache key is 16 lowercase hex over a payload that reads
//! back as its input, a body starts with a user turn and alternates, a
//! pattern list matches exactly when one of its patterns does.

#![allow(
    clippy::missing_panics_doc,
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "panicking on a broken invariant is what a fuzz check is for"
)]

mod core_checks;
mod sandbox_checks;
mod service_checks;

pub use core_checks::{body, cache_key, check, contract, policy};
pub use sandbox_checks::sandbox;
pub use service_checks::service;

/// A fuzz target: the fuzzer's bytes in, a panic when an invariant breaks.
pub type Target = fn(&[u8]);

/// Every target by name, as `fuzz/fuzz_targets/<name>.rs` and
/// `testdata/<name>/` call them.
pub const TARGETS: &[(&str, Target)] = &[
    ("check", check),
    ("contract", contract),
    ("cache_key", cache_key),
    ("body", body),
    ("policy", policy),
    ("sandbox", sandbox),
    ("service", service),
];

/// A stable snake_case error code.
pub(crate) fn is_code(code: &str) -> bool {
    !code.is_empty()
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && code.as_bytes()[0].is_ascii_lowercase()
}
