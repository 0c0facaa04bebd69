//! Policy components against the sandbox: hostile ones are stopped or
//! refused within their bounds and the host keeps answering. One test
//! binary for the crate.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed expectation is the test failing"
)]

mod components;

mod hostile;
