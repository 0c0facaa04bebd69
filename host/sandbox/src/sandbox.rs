//! The policy component run in wasmtime: sandboxed, bounded, swappable.
//!
//! A [`Runtime`] is built once per process: the engine (pooling allocator,
//! epoch interruption) and the 1 ms epoch ticker every deadline counts on.
//! A [`Sandbox`] is one loaded policy: its compiled component, pre-linked
//! (`PolicyPre`), and a few idle instances, each with its own `Store` and
//! memory cap, so the guest compiles its patterns once per instance rather
//! than once per call. Every call gets a fresh epoch deadline. A guest that
//! loops, grows or traps fails that call with a clear error, its instance is
//! thrown away, and the next call starts a fresh one: the host never goes
//! down with it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mangaassist_core::api::{
    Action, CheckReport, INVALID_JSON, INVALID_REQUEST, MAX_LISTED_VIOLATIONS, Refusal,
    ScreenedRequest, Screening,
};
use mangaassist_core::contract::Violation;
use mangaassist_core::models::ModelPreference;
use wasmtime::component::{Component, Linker};
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, PoolConcurrencyLimitError, PoolingAllocationConfig,
    ResourceLimiter, Store, Trap,
};

#[allow(
    missing_docs,
    reason = "host glue generated from policy/wit by wasmtime"
)]
mod bindings {
    wasmtime::component::bindgen!({ world: "policy", path: "../../wasm/component/wit" });
}

use bindings::exports::mangaassist::policy::checks as guest;
use bindings::{Policy, PolicyPre};

/// Bounds of the guest, from configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock budget of one call, in milliseconds (epoch ticks of 1 ms).
    pub call_timeout_ms: u64,
    /// More budget per KiB of input, ms: a guest's honest work grows with
    /// its input (a 64 KiB request of thousands of properties), a loop does
    /// not stop for any budget, so the bound stays and big honest inputs
    /// are not refused as timeouts on a busy host.
    pub call_ms_per_kib: u64,
    /// Budget of a new instance's first call, which compiles the guest's
    /// patterns; paid once per instance, off the per-call budget.
    pub warm_up_ms: u64,
    /// Largest linear memory a guest may grow to, in bytes.
    pub max_memory_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            call_timeout_ms: 10,
            call_ms_per_kib: 1,
            warm_up_ms: 1_000,
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
    /// Every instance slot of the pool is in use.
    #[error("policy engine busy: all {0} instance slots are in use")]
    Busy(u32),
    /// The guest answered something the world's contract rules out (a
    /// failed check without a code): refused, so a broken policy fails
    /// closed instead of letting the message through.
    #[error("policy answer refused: {0}")]
    BadAnswer(String),
}

impl SandboxError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            SandboxError::Refused(_) => "policy_refused",
            SandboxError::Timeout(_) => "policy_timeout",
            SandboxError::Memory(_) => "policy_memory_limit",
            SandboxError::Trap(_) => "policy_trap",
            SandboxError::Busy(_) => "policy_busy",
            SandboxError::BadAnswer(_) => "policy_bad_answer",
        }
    }
}

/// Instances the pooling allocator reserves room for: live ones of the
/// running policy, of a candidate under self-test, and spares.
const POOL_INSTANCES: u32 = 64;

/// Idle instances a sandbox keeps for reuse: the most calls that can run at
/// once without making a fresh instance each (a server's policy workers).
pub const MAX_IDLE: usize = 16;

/// The engine and its epoch ticker, shared by every loaded policy.
#[derive(Clone)]
pub struct Runtime {
    engine: Engine,
    limits: Limits,
    _ticker: Arc<Ticker>,
}

/// Stops the ticker thread when the last runtime handle goes.
struct Ticker(Arc<AtomicBool>);

impl Drop for Ticker {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

impl Runtime {
    /// The engine for `limits`, and its 1 ms epoch ticker.
    pub fn new(limits: Limits) -> Result<Self, SandboxError> {
        let refused = |e: wasmtime::Error| SandboxError::Refused(format!("{e:#}"));
        let mut config = Config::new();
        config.epoch_interruption(true);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(POOL_INSTANCES)
            .total_core_instances(POOL_INSTANCES)
            .total_memories(POOL_INSTANCES)
            .total_tables(POOL_INSTANCES)
            .max_memory_size(limits.max_memory_bytes);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(refused)?;
        let stop = Arc::new(AtomicBool::new(false));
        let (ticker_engine, ticker_stop) = (engine.clone(), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("policy-epoch".into())
            .spawn(move || {
                while !ticker_stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(1));
                    ticker_engine.increment_epoch();
                }
            })
            .map_err(|e| SandboxError::Refused(format!("cannot start the epoch ticker: {e}")))?;
        Ok(Runtime {
            engine,
            limits,
            _ticker: Arc::new(Ticker(stop)),
        })
    }

    /// Compiles and pre-links `component` (a `policy` world component).
    pub fn load(&self, component: &[u8]) -> Result<Sandbox, SandboxError> {
        let refused = |e: wasmtime::Error| SandboxError::Refused(format!("{e:#}"));
        let compiled = Component::from_binary(&self.engine, component).map_err(refused)?;
        let linker = Linker::<State>::new(&self.engine);
        let pre = linker.instantiate_pre(&compiled).map_err(refused)?;
        let pre = PolicyPre::new(pre).map_err(refused)?;
        let sandbox = Sandbox {
            runtime: self.clone(),
            pre,
            idle: Mutex::new(Vec::new()),
            call_budget_ms: self.limits.call_timeout_ms,
        };
        // Instantiating checks the export types and pays the warm-up now,
        // so a load that succeeds has a ready instance.
        sandbox.park(sandbox.fresh_instance()?);
        Ok(sandbox)
    }
}

/// Per-store state: the memory cap, and whether the guest ran into it (so
/// the trap it causes is reported as what it is).
struct State {
    max_memory_bytes: usize,
    hit_memory_cap: bool,
}

impl ResourceLimiter for State {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.max_memory_bytes || maximum.is_some_and(|m| desired > m) {
            self.hit_memory_cap = true;
            return Err(wasmtime::Error::msg(format!(
                "memory cap: the guest asked for {desired} bytes"
            )));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // The pooling allocator bounds table slots; respect a declared maximum.
        Ok(maximum.is_none_or(|m| desired <= m))
    }
}

/// A loaded policy component, ready for many calls from many threads.
pub struct Sandbox {
    runtime: Runtime,
    pre: PolicyPre<State>,
    idle: Mutex<Vec<Live>>,
    /// Time budget of one call, ms: the runtime's, or a generous one while
    /// the self-test runs (hundreds of calls on a possibly loaded host must
    /// not fail a good candidate on one late epoch tick).
    call_budget_ms: u64,
}

/// An instance and its store, kept between calls.
struct Live {
    store: Store<State>,
    policy: Policy,
}

/// The core's check answer from the guest's record: one shape on both sides.
/// `valid` and `code` must agree (a failed check names its code).
fn check_report(r: guest::CheckReport) -> Result<CheckReport, SandboxError> {
    if r.valid == r.code.is_some() {
        return Err(SandboxError::BadAnswer(format!(
            "check answered valid: {} with code {:?}",
            r.valid, r.code
        )));
    }
    Ok(CheckReport {
        valid: r.valid,
        code: r.code.map(Into::into),
        detail: r.detail,
        sanitized: r.sanitized,
        estimated_tokens: r.estimated_tokens,
    })
}

fn violation(v: guest::Violation) -> Violation {
    Violation {
        path: v.path,
        code: v.code.into(),
        message: v.message,
    }
}

/// The core's screening from the guest's variant, refusing answers the
/// world rules out (a contract outcome with no violation, a refusal or an
/// unreadable request without a code, a message accepted with nothing to
/// send): a broken policy fails closed.
fn screening(s: guest::Screening) -> Result<Screening, SandboxError> {
    let bad = |what: &str| Err(SandboxError::BadAnswer(format!("screen answered {what}")));
    Ok(match s {
        // Only a request the core cannot read is the client's fault (400);
        // anything else the guest reports here is its own failure.
        guest::Screening::Invalid(f) if f.code != INVALID_JSON && f.code != INVALID_REQUEST => {
            return bad(&format!(
                "invalid with the code {:?}: {}",
                f.code, f.message
            ));
        }
        guest::Screening::Invalid(f) => Screening::Invalid {
            code: f.code.into(),
            message: f.message,
        },
        guest::Screening::Contract(c) if c.violations.is_empty() => {
            return bad("a contract outcome without a violation");
        }
        guest::Screening::Contract(c) if c.violations.len() > MAX_LISTED_VIOLATIONS => {
            return bad("a contract outcome listing more violations than the core does");
        }
        guest::Screening::Contract(c) => Screening::Contract {
            violations: c.violations.into_iter().map(violation).collect(),
            omitted: c.omitted,
        },
        guest::Screening::Refused(r) if r.code.is_empty() || r.detail.is_empty() => {
            return bad("a refusal without a code or a reason");
        }
        guest::Screening::Refused(r) => Screening::Refused(Refusal {
            code: r.code.into(),
            detail: r.detail,
        }),
        guest::Screening::Accepted(r) => {
            let action = match r.action {
                guest::Action::SendMessage => Action::SendMessage,
                guest::Action::GetHistory => Action::GetHistory,
                guest::Action::ClearSession => Action::ClearSession,
            };
            if action == Action::SendMessage && r.message.is_empty() {
                return bad("an empty message accepted");
            }
            if action != Action::SendMessage && r.session_id.is_none() {
                return bad("a history action without a session");
            }
            Screening::Accepted(ScreenedRequest {
                action,
                session_id: r.session_id,
                message: r.message,
                model_preference: match r.model_preference {
                    guest::ModelPreference::Auto => ModelPreference::Auto,
                    guest::ModelPreference::Fast => ModelPreference::Fast,
                    guest::ModelPreference::Quality => ModelPreference::Quality,
                },
                estimated_tokens: r.estimated_tokens,
            })
        }
    })
}

fn failure(f: guest::Failure) -> GuestFailure {
    GuestFailure {
        code: f.code,
        message: f.message,
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
    /// Runs `f`, whose input is `input_len` bytes, on an idle instance
    /// (made, and warmed up, when none is idle).
    fn with_live<R>(
        &self,
        input_len: usize,
        f: impl FnOnce(&mut Store<State>, &Policy) -> wasmtime::Result<R>,
    ) -> Result<R, SandboxError> {
        let idle = self.idle_lock().pop();
        let Live { mut store, policy } = match idle {
            Some(live) => live,
            None => self.fresh_instance()?,
        };
        let kib = (input_len / 1024) as u64;
        let budget_ms = self
            .call_budget_ms
            .saturating_add(kib.saturating_mul(self.runtime.limits.call_ms_per_kib));
        store.set_epoch_deadline(budget_ms.saturating_add(1));
        match f(&mut store, &policy) {
            Ok(r) => {
                self.park(Live { store, policy });
                Ok(r)
            }
            // The instance may be in any state after a trap: drop it.
            Err(e) => Err(self.classify(&e, &store, budget_ms)),
        }
    }

    /// Keeps a healthy instance for the next call, up to [`MAX_IDLE`].
    fn park(&self, live: Live) {
        let mut idle = self.idle_lock();
        if idle.len() < MAX_IDLE {
            idle.push(live);
        }
    }

    fn idle_lock(&self) -> std::sync::MutexGuard<'_, Vec<Live>> {
        // A panic elsewhere cannot leave the list half-updated: push/pop only.
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn fresh_instance(&self) -> Result<Live, SandboxError> {
        let limits = self.runtime.limits;
        let mut store = Store::new(
            &self.runtime.engine,
            State {
                max_memory_bytes: limits.max_memory_bytes,
                hit_memory_cap: false,
            },
        );
        store.limiter(|s| s as &mut dyn ResourceLimiter);
        store.set_epoch_deadline(limits.warm_up_ms.saturating_add(1));
        let policy = match self.pre.instantiate(&mut store) {
            Ok(policy) => policy,
            // Not a trap: the exports do not have the world's types.
            Err(e) if e.downcast_ref::<Trap>().is_none() && !store.data().hit_memory_cap => {
                return Err(self.refused_or_busy(&e));
            }
            Err(e) => return Err(self.classify(&e, &store, limits.warm_up_ms)),
        };
        policy
            .mangaassist_policy_checks()
            .call_check(&mut store, "warm-up")
            .map_err(|e| self.classify(&e, &store, limits.warm_up_ms))?;
        Ok(Live { store, policy })
    }

    /// A full instance pool is the engine's typed error, not a refusal of
    /// the component.
    fn refused_or_busy(&self, e: &wasmtime::Error) -> SandboxError {
        if e.downcast_ref::<PoolConcurrencyLimitError>().is_some() {
            SandboxError::Busy(POOL_INSTANCES)
        } else {
            SandboxError::Refused(format!("{e:#}"))
        }
    }

    fn classify(&self, e: &wasmtime::Error, store: &Store<State>, budget_ms: u64) -> SandboxError {
        if store.data().hit_memory_cap {
            return SandboxError::Memory(self.runtime.limits.max_memory_bytes);
        }
        match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => SandboxError::Timeout(budget_ms),
            _ => SandboxError::Trap(format!("{e:#}")),
        }
    }

    /// Runs `f` with each call given the warm-up budget instead of the
    /// per-call one (the self-test), then restores the per-call budget.
    /// Exclusive: a sandbox under exam serves no one else.
    pub(crate) fn with_exam_budget<R>(&mut self, f: impl FnOnce(&Self) -> R) -> R {
        let serving = self.runtime.limits.call_timeout_ms;
        self.call_budget_ms = self.runtime.limits.warm_up_ms.max(serving);
        let result = f(self);
        self.call_budget_ms = serving;
        result
    }

    /// Makes ready instances until `count` are ready (at most [`MAX_IDLE`]):
    /// lets a server pre-warm one per policy worker.
    pub fn warm(&self, count: usize) -> Result<(), SandboxError> {
        while self.ready_instances() < count.min(MAX_IDLE) {
            self.spare_instance()?;
        }
        Ok(())
    }

    /// Makes one more ready (instantiated, warmed-up) instance and parks it
    /// for the next call: lets a server pre-warm one per worker.
    pub fn spare_instance(&self) -> Result<(), SandboxError> {
        self.park(self.fresh_instance()?);
        Ok(())
    }

    /// Instances ready for a call now (made and warmed up).
    pub fn ready_instances(&self) -> usize {
        self.idle_lock().len()
    }

    /// `check` of one message.
    pub fn check(&self, message: &str) -> Result<CheckReport, SandboxError> {
        let answer = self.with_live(message.len(), |store, policy| {
            policy
                .mangaassist_policy_checks()
                .call_check(store, message)
        })?;
        check_report(answer)
    }

    /// The service's decision on a chat request's JSON text: one call.
    pub fn screen(&self, request_json: &str) -> Result<Screening, SandboxError> {
        let answer = self.with_live(request_json.len(), |store, policy| {
            policy
                .mangaassist_policy_checks()
                .call_screen(store, request_json)
        })?;
        screening(answer)
    }

    /// `cache-key` of a body's JSON text; the inner result is the guest's answer.
    pub fn cache_key(&self, body_json: &str) -> Result<Result<String, GuestFailure>, SandboxError> {
        self.with_live(body_json.len(), |store, policy| {
            policy
                .mangaassist_policy_checks()
                .call_cache_key(store, body_json)
                .map(|r| r.map_err(failure))
        })
    }

    /// Every contract violation of a request's JSON text (empty: it conforms).
    pub fn validate_request(
        &self,
        request_json: &str,
    ) -> Result<Result<Vec<Violation>, GuestFailure>, SandboxError> {
        self.with_live(request_json.len(), |store, policy| {
            policy
                .mangaassist_policy_checks()
                .call_validate_request(store, request_json)
                .map(|r| {
                    r.map(|list| list.into_iter().map(violation).collect())
                        .map_err(failure)
                })
        })
    }

    /// The guest's version string.
    pub fn version(&self) -> Result<String, SandboxError> {
        self.with_live(0, |store, policy| {
            policy.mangaassist_policy_checks().call_version(store)
        })
    }

    /// The guest's configuration, as the JSON it answers.
    pub fn config(&self) -> Result<String, SandboxError> {
        self.with_live(0, |store, policy| {
            policy.mangaassist_policy_checks().call_config(store)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    fn code_of(s: guest::Screening) -> &'static str {
        match screening(s) {
            Ok(_) => "accepted by the host",
            Err(e) => e.code(),
        }
    }

    #[test]
    fn screen_answers_the_world_rules_out_fail_closed() {
        let failure = |code: &str| guest::Failure {
            code: code.into(),
            message: "m".into(),
        };
        // The guest's own failure is not the client's 400.
        assert_eq!(
            code_of(guest::Screening::Invalid(failure("invalid_pattern"))),
            "policy_bad_answer"
        );
        assert_eq!(
            code_of(guest::Screening::Invalid(failure(""))),
            "policy_bad_answer"
        );
        assert!(screening(guest::Screening::Invalid(failure(INVALID_JSON))).is_ok());
        assert_eq!(
            code_of(guest::Screening::Contract(guest::ContractFailure {
                violations: Vec::new(),
                omitted: 0
            })),
            "policy_bad_answer"
        );
        let refusal = |code: &str, detail: &str| {
            guest::Screening::Refused(guest::Refusal {
                code: code.into(),
                detail: detail.into(),
            })
        };
        assert_eq!(code_of(refusal("null_byte", "")), "policy_bad_answer");
        assert_eq!(code_of(refusal("", "why")), "policy_bad_answer");
        assert!(screening(refusal("null_byte", "why")).is_ok());
        let accepted = |action, message: &str, session: Option<&str>| {
            guest::Screening::Accepted(guest::ScreenedRequest {
                action,
                session_id: session.map(str::to_string),
                message: message.into(),
                model_preference: guest::ModelPreference::Auto,
                estimated_tokens: 1,
            })
        };
        assert_eq!(
            code_of(accepted(guest::Action::SendMessage, "", None)),
            "policy_bad_answer"
        );
        assert_eq!(
            code_of(accepted(guest::Action::GetHistory, "", None)),
            "policy_bad_answer"
        );
        assert!(screening(accepted(guest::Action::SendMessage, "hi", None)).is_ok());
    }
}
