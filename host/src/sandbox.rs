//! The policy component run in wasmtime: sandboxed, bounded, swappable.
//!
//! Built once ([`Sandbox::new`]): the engine (pooling allocator, epoch
//! interruption), the compiled component and its pre-linked `PolicyPre`.
//! A sandbox keeps one live instance (a worker's own `Store`, with a memory
//! cap from `StoreLimits`) so the guest compiles its patterns once; every
//! call gets a fresh epoch deadline. A guest that loops, grows or traps fails
//! that call with a clear error, its instance is thrown away, and the next
//! call starts a fresh one: the host never goes down with it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use wasmtime::component::{Component, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store, StoreLimits,
    StoreLimitsBuilder, Trap,
};

wasmtime::component::bindgen!({ world: "policy", path: "../policy/wit" });

use exports::mangaassist::policy::checks::CheckReport;

/// Bounds of one call into the guest.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall-clock budget of a call, in milliseconds (epoch ticks of 1 ms).
    pub call_timeout_ms: u64,
    /// Largest linear memory a guest may grow to, in bytes.
    pub max_memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            call_timeout_ms: 10,
            max_memory_bytes: 64 * 1024 * 1024,
        }
    }
}

/// Why a sandboxed call or load failed.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The module is not a component of the `policy` world.
    #[error("policy module refused: {0}")]
    Refused(String),
    /// The guest ran past its time budget.
    #[error("policy call stopped after {0} ms (time budget)")]
    Timeout(u64),
    /// The guest tried to grow past its memory cap.
    #[error("policy call stopped: memory limit of {0} bytes reached")]
    Memory(usize),
    /// The guest trapped.
    #[error("policy call trapped: {0}")]
    Trap(String),
}

impl SandboxError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            SandboxError::Refused(_) => "policy_refused",
            SandboxError::Timeout(_) => "policy_timeout",
            SandboxError::Memory(_) => "policy_memory_limit",
            SandboxError::Trap(_) => "policy_trap",
        }
    }
}

struct State {
    limits: StoreLimits,
}

/// A loaded policy component, ready for many calls.
pub struct Sandbox {
    engine: Engine,
    pre: PolicyPre<State>,
    limits: Limits,
    ticker_stop: Arc<AtomicBool>,
    live: Mutex<Option<Live>>,
}

/// An instance and its store, kept between calls.
struct Live {
    store: Store<State>,
    policy: Policy,
}

/// Budget of the first call of an instance, which compiles the guest's
/// patterns (milliseconds); later calls get `Limits::call_timeout_ms`.
const WARM_UP_MS: u64 = 2_000;

/// The check answer, field for field the core's `CheckReport` JSON.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckAnswer {
    valid: bool,
    code: Option<String>,
    detail: Option<String>,
    sanitized: String,
    estimated_tokens: u64,
}

impl From<CheckReport> for CheckAnswer {
    fn from(r: CheckReport) -> Self {
        CheckAnswer {
            valid: r.valid,
            code: r.code,
            detail: r.detail,
            sanitized: r.sanitized,
            estimated_tokens: r.estimated_tokens,
        }
    }
}

/// The guest's own refusal of an input (not a sandbox failure).
#[derive(Debug)]
pub struct GuestFailure {
    /// Stable code from the core.
    pub code: String,
    /// Explanation.
    pub message: String,
}

impl Sandbox {
    /// Compiles and pre-links `component` (a `policy` world component).
    pub fn new(component: &[u8], limits: Limits) -> Result<Self, SandboxError> {
        let refused = |e: wasmtime::Error| SandboxError::Refused(format!("{e:#}"));
        let mut config = Config::new();
        config.epoch_interruption(true);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(32)
            .total_core_instances(32)
            .total_memories(32)
            .total_tables(32)
            .max_memory_size(limits.max_memory_bytes);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(refused)?;
        let component = Component::from_binary(&engine, component).map_err(refused)?;
        let linker = Linker::<State>::new(&engine);
        let pre = linker.instantiate_pre(&component).map_err(refused)?;
        let pre = PolicyPre::new(pre).map_err(refused)?;
        // One tick a millisecond drives every call's deadline.
        let ticker_stop = Arc::new(AtomicBool::new(false));
        let (ticker_engine, stop) = (engine.clone(), Arc::clone(&ticker_stop));
        std::thread::Builder::new()
            .name("policy-epoch".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1));
                    ticker_engine.increment_epoch();
                }
            })
            .map_err(|e| SandboxError::Refused(format!("cannot start the epoch ticker: {e}")))?;
        Ok(Sandbox {
            engine,
            pre,
            limits,
            ticker_stop,
            live: Mutex::new(None),
        })
    }

    /// Runs `f` on the live instance (made, and warmed up, when missing).
    fn with_live<R>(
        &self,
        f: impl FnOnce(&mut Store<State>, &Policy) -> wasmtime::Result<R>,
    ) -> Result<R, SandboxError> {
        let mut guard = self
            .live
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let live = match guard.take() {
            Some(live) => live,
            None => self.fresh_instance()?,
        };
        let Live { mut store, policy } = live;
        store.set_epoch_deadline(self.limits.call_timeout_ms + 1);
        match f(&mut store, &policy) {
            Ok(r) => {
                *guard = Some(Live { store, policy });
                Ok(r)
            }
            // The instance may be in any state after a trap: drop it.
            Err(e) => Err(self.classify(&e)),
        }
    }

    fn fresh_instance(&self) -> Result<Live, SandboxError> {
        let mut store = self.store();
        store.set_epoch_deadline(WARM_UP_MS);
        let policy = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| self.classify(&e))?;
        policy
            .mangaassist_policy_checks()
            .call_check(&mut store, "warm-up")
            .map_err(|e| self.classify(&e))?;
        Ok(Live { store, policy })
    }

    fn store(&self) -> Store<State> {
        let mut store = Store::new(
            &self.engine,
            State {
                limits: StoreLimitsBuilder::new()
                    .memory_size(self.limits.max_memory_bytes)
                    .trap_on_grow_failure(true)
                    .build(),
            },
        );
        store.limiter(|s| &mut s.limits);
        store
    }

    fn classify(&self, e: &wasmtime::Error) -> SandboxError {
        match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => SandboxError::Timeout(self.limits.call_timeout_ms),
            Some(Trap::MemoryOutOfBounds) | None
                if format!("{e:#}").contains("memory minimum size")
                    || format!("{e:#}").contains("forcing a memory growth failure") =>
            {
                SandboxError::Memory(self.limits.max_memory_bytes)
            }
            _ => SandboxError::Trap(format!("{e:#}")),
        }
    }

    /// `check` of one message.
    pub fn check(&self, message: &str) -> Result<CheckAnswer, SandboxError> {
        self.with_live(|store, policy| {
            policy
                .mangaassist_policy_checks()
                .call_check(store, message)
                .map(CheckAnswer::from)
        })
    }

    /// `cache-key` of a body's JSON text; the inner result is the guest's answer.
    pub fn cache_key(&self, body_json: &str) -> Result<Result<String, GuestFailure>, SandboxError> {
        self.with_live(|store, policy| {
            policy
                .mangaassist_policy_checks()
                .call_cache_key(store, body_json)
                .map(|r| {
                    r.map_err(|f| GuestFailure {
                        code: f.code,
                        message: f.message,
                    })
                })
        })
    }

    /// The guest's version string.
    pub fn version(&self) -> Result<String, SandboxError> {
        self.with_live(|store, policy| policy.mangaassist_policy_checks().call_version(store))
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.ticker_stop.store(true, Ordering::Relaxed);
    }
}
