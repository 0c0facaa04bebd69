//! The host side of mangaassist: the JSON Lines commands, the policy
//! component sandbox (wasmtime) and its run-time swap. The binary
//! (`src/main.rs`) only parses arguments and wires these together; benches
//! and tests use them directly.

pub mod active_policy;
pub mod bedrock;
pub mod commands;
pub mod emulator;
pub mod lines;
pub mod sandbox;
pub mod selftest;
pub mod service;
