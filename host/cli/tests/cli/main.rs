//! The `mangaassist` binary, run as a process: the corpus through every
//! subcommand and engine, JSON Lines on hostile input, policy swap, memory,
//! the emulator and the service's process behaviour. One test binary (one
//! link) for all of them.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed expectation is the test failing"
)]

#[path = "../../../sandbox/tests/sandbox/components.rs"]
mod components;
mod run;

mod calibrate;
mod cli;
mod emulator_cli;
mod engines_agree;
mod enrich;
mod fleet;
#[path = "../../../service/tests/service/http.rs"]
mod http;
mod jobs;
mod memory;
mod policy_swap;
mod serve;
mod soak;
