//! Hostile policy components against the sandbox: each is stopped or refused
//! within its bounds, and the host keeps answering.

use std::time::{Duration, Instant};

use crate::components::{
    built_policy, component, component_with, unless_warm_up, with_custom_section,
};
use mangaassist_core::api::check_report;
use mangaassist_core::policy::Policy;
use mangaassist_sandbox::{
    ActivePolicy, Limits, LoadError, PolicySource, Reload, Runtime, Sandbox, SandboxError, verify,
};

/// The SPEC defaults (10 ms a call, 64 MiB) with a short warm-up budget.
fn limits() -> Limits {
    Limits {
        warm_up_ms: 100,
        ..Limits::default()
    }
}

/// Generous: the bound is 10 ms; a loaded 2-core VM may add scheduling delay.
const STOPPED_WITHIN: Duration = Duration::from_secs(2);

/// The real policy, in the same runtime, still answers correctly.
fn host_still_answers(runtime: &Runtime) {
    let good = verify(runtime, &built_policy(), PolicySource::Embedded)
        .expect("the built policy passes its self-test");
    for message in [
        "  おすすめの漫画は\u{200b}ありますか？  ",
        "<script>alert(1)</script>",
    ] {
        let answer = good.sandbox.check(message).expect("good policy answers");
        let native = check_report(&Policy::spec_default().unwrap(), message);
        assert_eq!(answer, native, "one shape, one answer");
    }
}

fn timed<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let started = Instant::now();
    let r = f();
    (r, started.elapsed())
}

fn hostile(runtime: &Runtime, check_body: &str) -> Sandbox {
    runtime
        .load(&component(&unless_warm_up(check_body)))
        .expect("hostile component compiles: it is well-formed, only ill-behaved")
}

#[test]
fn a_guest_that_loops_forever_is_stopped_at_the_call_budget() {
    let runtime = Runtime::new(limits()).unwrap();
    let sandbox = hostile(&runtime, "(loop $spin (br $spin))");
    for _ in 0..3 {
        let (r, took) = timed(|| sandbox.check("are you there?"));
        let e = r.expect_err("a loop cannot answer");
        assert_eq!(e.code(), "policy_timeout", "{e}");
        assert!(e.to_string().contains("10 ms"), "{e}");
        assert!(took < STOPPED_WITHIN, "stopped after {took:?}");
    }
    // The same sandbox answers what does not loop (a fresh instance).
    assert_eq!(sandbox.version().unwrap(), "hostile-0.0.1");
    host_still_answers(&runtime);
}

#[test]
fn a_guest_that_loops_in_its_warm_up_is_stopped_at_the_warm_up_budget() {
    let runtime = Runtime::new(limits()).unwrap();
    let (r, took) = timed(|| runtime.load(&component("(loop $spin (br $spin))")));
    let e = r.err().expect("loading warms up an instance, which loops");
    assert_eq!(e.code(), "policy_timeout", "{e}");
    assert!(e.to_string().contains("100 ms"), "{e}");
    assert!(took < STOPPED_WITHIN, "stopped after {took:?}");
    // Loading it as a policy fails, with the same code.
    let e = verify(
        &runtime,
        &component("(loop $spin (br $spin))"),
        PolicySource::Embedded,
    )
    .err()
    .expect("refused");
    assert_eq!(e.code(), "policy_timeout");
    host_still_answers(&runtime);
}

#[test]
fn a_guest_that_grows_memory_without_bound_hits_the_cap() {
    let runtime = Runtime::new(limits()).unwrap();
    // 16 MiB a step, forever: the 64 MiB cap must stop it.
    let sandbox = hostile(
        &runtime,
        "(loop $grow (drop (memory.grow (i32.const 256))) (br $grow))",
    );
    let (r, took) = timed(|| sandbox.check("more, more"));
    let e = r.expect_err("cannot grow forever");
    assert_eq!(e.code(), "policy_memory_limit", "{e}");
    assert!(e.to_string().contains("67108864"), "{e}");
    assert!(took < STOPPED_WITHIN, "stopped after {took:?}");
    host_still_answers(&runtime);
}

#[test]
fn a_guest_whose_first_memory_is_over_the_cap_is_refused_at_instantiation() {
    let runtime = Runtime::new(limits()).unwrap();
    // 2048 pages = 128 MiB initial memory.
    let bytes = component_with("", |t| {
        t.replace(
            "(memory (export \"memory\") 1)",
            "(memory (export \"memory\") 2048)",
        )
    });
    let e = runtime
        .load(&bytes)
        .err()
        .expect("cannot instantiate over the cap");
    assert!(
        matches!(e, SandboxError::Memory(_) | SandboxError::Refused(_)),
        "{e:?}"
    );
    host_still_answers(&runtime);
}

#[test]
fn a_guest_that_traps_fails_the_call_not_the_host() {
    let runtime = Runtime::new(limits()).unwrap();
    let sandbox = hostile(&runtime, "(unreachable)");
    for _ in 0..3 {
        let e = sandbox.check("boom").expect_err("traps");
        assert_eq!(e.code(), "policy_trap", "{e}");
        assert!(e.to_string().contains("unreachable"), "{e}");
    }
    // Out-of-bounds memory access is a trap too.
    let oob = hostile(&runtime, "(drop (i32.load (i32.const -4)))");
    assert_eq!(
        oob.check("read past the end").unwrap_err().code(),
        "policy_trap"
    );
    host_still_answers(&runtime);
}

#[test]
fn guests_with_the_wrong_interface_are_refused_at_load() {
    let runtime = Runtime::new(limits()).unwrap();
    let cases: [(&str, Vec<u8>); 3] = [
        (
            "another interface version",
            component_with("", |t| t.replace("checks@0.5.0", "checks@0.1.0")),
        ),
        (
            "a record field of another type",
            component_with("", |t| {
                t.replace(
                    "(field \"estimated-tokens\" u64)",
                    "(field \"estimated-tokens\" u32)",
                )
            }),
        ),
        (
            "a function missing",
            component_with("", |t| {
                t.replace("(export \"version\" (func $version))", "")
            }),
        ),
    ];
    for (what, bytes) in cases {
        let e = runtime
            .load(&bytes)
            .err()
            .unwrap_or_else(|| panic!("{what}: accepted"));
        assert_eq!(e.code(), "policy_refused", "{what}: {e}");
    }
    host_still_answers(&runtime);
}

#[test]
fn a_well_formed_guest_with_wrong_answers_fails_its_self_test() {
    let runtime = Runtime::new(limits()).unwrap();
    let e = verify(&runtime, &component(""), PolicySource::Embedded)
        .err()
        .expect("an all-zero report is not the corpus answer");
    assert!(matches!(e, LoadError::SelfTest(_)), "{e:?}");
    assert_eq!(e.code(), "policy_self_test_failed");
    assert!(e.to_string().contains("check/"), "names the vector: {e}");
}

/// A policy built with another size limit (tests/policies/small.json)
/// passes its exam against the core's own answers under that limit, and
/// enforces it: the exam admits other configurations and holds each to
/// what it says it runs.
#[test]
fn a_policy_with_another_configuration_passes_its_exam_and_enforces_it() {
    let runtime = Runtime::new(limits()).unwrap();
    let small = verify(
        &runtime,
        &crate::components::built_component("policy-small.wasm"),
        PolicySource::Embedded,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(small.config.max_message_bytes, 1024);
    let message = "a".repeat(2000);
    assert_eq!(
        small.sandbox.check(&message).unwrap().code.as_deref(),
        Some("too_large")
    );
    let spec = verify(&runtime, &built_policy(), PolicySource::Embedded).unwrap();
    assert!(spec.sandbox.check(&message).unwrap().valid);
}

/// A guest whose `config` answer is not a configuration the core compiles
/// is refused before its self-test: the host could not publish what it runs.
#[test]
fn a_guest_with_an_unusable_configuration_is_refused_at_load() {
    let runtime = Runtime::new(limits()).unwrap();
    for (what, answer) in [
        ("not JSON", "{]"),
        (
            "a pattern that does not compile",
            r#"{"disallowedPatterns":["("]}"#,
        ),
        ("an unknown field", r#"{"maxBytes":1}"#),
    ] {
        let bytes = component_with("", |t| {
            // The answer's (ptr, len) and bytes at 1536 / 1544.
            let len = answer.len();
            t.replace(
                r#"(data (i32.const 1536) "\08\06\00\00\02\00\00\00")"#,
                &format!(r#"(data (i32.const 1536) "\08\06\00\00\{len:02x}\00\00\00")"#),
            )
            .replace(
                r#"(data (i32.const 1544) "{}")"#,
                &format!("(data (i32.const 1544) {:?})", answer),
            )
        });
        let e = verify(&runtime, &bytes, PolicySource::Embedded)
            .err()
            .unwrap_or_else(|| panic!("{what}: loaded"));
        assert_eq!(e.code(), "policy_bad_config", "{what}: {e}");
        assert!(matches!(e, LoadError::BadConfig(_)), "{what}: {e:?}");
    }
}

/// The shell answers `check` with an all-zero report (valid: false, no
/// code) and `screen` with an all-zero variant (unreadable, no code): a
/// broken policy must fail closed, never let the message through.
#[test]
fn answers_the_world_rules_out_are_refused_not_passed() {
    let runtime = Runtime::new(limits()).unwrap();
    let sandbox = hostile(&runtime, "");
    let e = sandbox.check("こんにちは").unwrap_err();
    assert_eq!(e.code(), "policy_bad_answer", "{e}");
    assert!(e.to_string().contains("valid: false"), "{e}");
    let request = r#"{"action":"sendMessage","data":{"message":"hi"}}"#;
    let e = sandbox.screen(request).unwrap_err();
    assert_eq!(e.code(), "policy_bad_answer", "{e}");
    host_still_answers(&runtime);
}

#[test]
fn instances_of_failed_calls_are_released_to_the_pool() {
    // Far more failing calls than the pool has slots, from several threads.
    let runtime = Runtime::new(limits()).unwrap();
    let sandbox = hostile(&runtime, "(unreachable)");
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..50 {
                    assert_eq!(sandbox.check("trap").unwrap_err().code(), "policy_trap");
                }
            });
        }
    });
    host_still_answers(&runtime);
}

/// A pool with every instance slot taken answers `policy_busy` (the
/// engine's typed error), not a refusal of the component; freeing slots
/// makes room again.
#[test]
fn a_full_instance_pool_is_busy_not_a_refusal() {
    let runtime = Runtime::new(limits()).unwrap();
    let bytes = component("");
    let mut held = Vec::new();
    let e = loop {
        match runtime.load(&bytes) {
            Ok(sandbox) => held.push(sandbox),
            Err(e) => break e,
        }
        assert!(held.len() <= 64, "the pool never filled");
    };
    assert_eq!(e.code(), "policy_busy", "{e}");
    held.clear();
    assert!(runtime.load(&bytes).is_ok());
}

/// A policy serves with its ready instances made, at start and after a
/// swap: requests do not each pay a warm-up.
#[test]
fn a_swapped_in_policy_is_warmed_up_before_it_serves() {
    let dir = std::env::temp_dir().join(format!("mangaassist-warm-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("policy.wasm");
    std::fs::write(&path, built_policy()).unwrap();
    let runtime = Runtime::new(limits()).unwrap();
    let active = ActivePolicy::start(runtime, PolicySource::File(path.clone()), 3).unwrap();
    assert_eq!(active.current().sandbox.ready_instances(), 3);
    let next = with_custom_section(built_policy(), "mangaassist-test", b"build 2");
    std::fs::write(&path, next).unwrap();
    assert!(matches!(active.reload(), Reload::Swapped));
    assert_eq!(active.current().sandbox.ready_instances(), 3);
    let _ = std::fs::remove_dir_all(&dir);
}
