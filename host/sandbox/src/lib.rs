//! The policy component run in wasmtime: the core's checks, contract and
//! cache key, sandboxed, bounded and swappable at run time. Start at
//! [`ActivePolicy::start`]: it loads a component (embedded or a file),
//! makes it pass the conformance corpus ([`selftest`]) and serves it;
//! [`ActivePolicy::watch`] swaps in a changed file on SIGHUP or change.
//! [`sandbox`] holds the engine, its bounds and the instance pool;
//! [`answers`] renders sandboxed answers as the corpus's JSON lines.

pub mod active;
pub mod answers;
pub mod sandbox;
pub mod selftest;
pub mod watch;

pub use active::{ActivePolicy, LoadError, LoadedPolicy, PolicySource, Reload, verify};
pub use sandbox::{GuestFailure, Limits, Runtime, Sandbox, SandboxError};
pub use watch::Watcher;
