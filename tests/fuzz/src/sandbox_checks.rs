//! The policy component's exports through the wasmtime sandbox, against the
//! native core: the same answer, byte for byte, on any input. This is where
//! "engines agree" is checked: the component searches patterns with the
//! lazy DFA, natively the meta engine does.

use std::sync::OnceLock;

use mangaassist_conformance::NativeEngine;
use mangaassist_conformance::Suite;
use mangaassist_core::api::{json_line, screen};
use mangaassist_core::policy::Policy;
use mangaassist_sandbox::{ActivePolicy, Limits, LoadedPolicy, PolicySource, Runtime, answers};
use serde_json::Value;

struct Engines {
    native: NativeEngine,
    policy: Policy,
    component: std::sync::Arc<LoadedPolicy>,
    _active: ActivePolicy,
}

fn engines() -> &'static Engines {
    static ENGINES: OnceLock<Engines> = OnceLock::new();
    ENGINES.get_or_init(|| {
        // The call's time bound is the host's policy, not an answer: the
        // default 10 ms ran out on a machine busy with other fuzzers (a
        // 207-byte request answered `policy_timeout`), so the comparison
        // runs with room to spare.
        let limits = Limits {
            call_timeout_ms: 2_000,
            ..Limits::default()
        };
        let runtime = match Runtime::new(limits) {
            Ok(r) => r,
            Err(e) => panic!("no wasmtime runtime: {e}"),
        };
        let active = match ActivePolicy::start(runtime, PolicySource::Embedded, 1) {
            Ok(a) => a,
            Err(e) => panic!("the embedded policy does not load: {e}"),
        };
        let native = match NativeEngine::new() {
            Ok(n) => n,
            Err(e) => panic!("no native engine: {e}"),
        };
        let policy = match Policy::spec_default() {
            Ok(p) => p,
            Err(e) => panic!("no default policy: {e}"),
        };
        Engines {
            native,
            policy,
            component: active.current(),
            _active: active,
        }
    })
}

/// Arbitrary bytes as a message (`check`) and as a request (`screen`); when
/// they are JSON, also as a request (`contract`) and a body (`cache_key`).
/// Each answer of the component equals the native core's.
pub fn sandbox(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    // The component's own call limits (time per KiB, memory) are host
    // policy, not an answer: keep to inputs well inside them.
    if text.len() > 64 * 1024 {
        return;
    }
    let e = engines();
    let sandbox = &e.component.sandbox;
    assert_eq!(
        answers::check(sandbox, text),
        e.native
            .answer_one(Suite::Check, &serde_json::json!({ "message": text })),
        "check of {text:?}"
    );
    assert_eq!(
        answers::screen(sandbox, text),
        json_line(&screen(&e.policy, text)),
        "screen of {text:?}"
    );
    let Ok(doc) = serde_json::from_str::<Value>(text) else {
        return;
    };
    assert_eq!(
        answers::contract(sandbox, text),
        e.native.answer_one(Suite::Contract, &doc),
        "contract of {text}"
    );
    assert_eq!(
        answers::cache_key(sandbox, text),
        e.native.answer_one(Suite::CacheKey, &doc),
        "cache key of {text}"
    );
}
