//! Native and wasm engines agree on property-generated messages and bodies.

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

fn run(args: &[&str], input: &str) -> String {
    let (out, err, ok) = crate::run::mangaassist(args, input.as_bytes().to_vec());
    assert!(ok, "mangaassist {args:?} failed: {err}");
    out
}

fn message() -> impl Strategy<Value = String> {
    let special = prop_oneof![
        Just('\u{200B}'),
        Just('\u{3099}'),
        Just('\u{FEFF}'),
        Just('\0'),
        Just('\u{17F}'),
        Just('<'),
        Just('{'),
        Just('}'),
        Just('Ж'),
        Just('漫'),
        Just('\u{1}'),
        Just(' '),
    ];
    let piece = prop_oneof![
        Just("<script".to_string()),
        Just("{{x}}".to_string()),
        Just("javascript:".to_string()),
        proptest::collection::vec(prop_oneof![2 => any::<char>(), 1 => special], 0..40)
            .prop_map(|v| v.into_iter().collect::<String>()),
    ];
    proptest::collection::vec(piece, 0..4).prop_map(|v| v.concat())
}

#[test]
fn engines_agree_on_generated_input() {
    let mut runner = TestRunner::deterministic();
    let strategy = message();
    let mut checks = String::new();
    let mut bodies = String::new();
    for _ in 0..2000 {
        let m = strategy.new_tree(&mut runner).expect("value").current();
        checks.push_str(&serde_json::json!({ "message": m }).to_string());
        checks.push('\n');
        bodies.push_str(
            &serde_json::json!({ "system": m, "max_tokens": m.len(),
            "messages": [{"role": "user", "content": m}] })
            .to_string(),
        );
        bodies.push('\n');
    }
    for (sub, input) in [("check", &checks), ("cache-key", &bodies)] {
        let native = run(&[sub, "--engine", "native"], input);
        let wasm = run(&[sub, "--engine", "wasm"], input);
        assert_eq!(native.lines().count(), 2000);
        for (i, (n, w)) in native.lines().zip(wasm.lines()).enumerate() {
            assert_eq!(n, w, "{sub}: line {i} differs");
        }
    }
}
