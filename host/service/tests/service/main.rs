//! The service in-process over real HTTP and WebSocket on 127.0.0.1,
//! answering from its embedded emulator through the real AWS SDK. One test
//! binary (one link) for every service test.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed expectation is the test failing"
)]

mod http;
mod serve;

mod shared_cache;

mod aws_stores;

mod bad_input;
mod edge;
mod jobs;
mod models;
mod policy;
mod service;
