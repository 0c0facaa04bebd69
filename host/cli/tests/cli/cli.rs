//! The `mangaassist` binary as an engine of the shared corpus, and its
//! JSON Lines behaviour on hostile input.

use crate::run::mangaassist;
use mangaassist_conformance::{Engine, Suite, run};
use serde_json::Value;

/// All `inputs` as JSON Lines through one run of `mangaassist args`.
fn batch(args: &[&str], inputs: &[&Value]) -> Vec<String> {
    let mut stdin = Vec::new();
    for i in inputs {
        stdin.extend_from_slice(serde_json::to_string(i).expect("json").as_bytes());
        stdin.push(b'\n');
    }
    let (out, err, ok) = mangaassist(args, stdin);
    assert!(ok, "mangaassist {args:?} failed: {err}");
    out.lines().map(str::to_string).collect()
}

struct Cli;

impl Engine for Cli {
    fn name(&self) -> String {
        "cli".into()
    }

    fn answer(&mut self, suite: Suite, inputs: &[&Value]) -> Option<Vec<String>> {
        if suite == Suite::Policy {
            return Some(inputs.iter().map(|i| policy_answer(i)).collect());
        }
        let sub = match suite {
            Suite::Check => "check",
            Suite::CacheKey => "cache-key",
            Suite::Body => "body",
            _ => return None,
        };
        let args: &[&str] = if suite == Suite::Body {
            &[sub]
        } else {
            &[sub, "--engine", "native"]
        };
        Some(batch(args, inputs))
    }
}

/// One `check --policy FILE` run per vector: each has its own policy.
fn policy_answer(input: &Value) -> String {
    let dir = std::env::temp_dir().join(format!("mangaassist-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join("policy.json");
    std::fs::write(&file, input["policy"].to_string()).expect("policy file");
    let line = serde_json::json!({"message": input["message"]}).to_string() + "\n";
    let path = file.to_str().expect("utf-8 path");
    let (out, err, ok) = mangaassist(&["check", "--policy", path], line.into_bytes());
    if ok {
        return out.trim_end_matches('\n').to_string();
    }
    // A policy that does not build stops the command before any line, with
    // `mangaassist: policy file PATH: CODE: MESSAGE`: the same code and
    // message the other engines answer as an error report.
    let reason = err
        .trim_end_matches('\n')
        .strip_prefix(&format!("mangaassist: policy file {path}: "))
        .and_then(|r| r.split_once(": "))
        .unwrap_or_else(|| panic!("check --policy failed: {err}"));
    serde_json::json!({"error": {"code": reason.0, "message": reason.1}}).to_string()
}

#[test]
fn a_bad_policy_file_is_refused_with_a_clear_message() {
    let dir = std::env::temp_dir().join(format!("mangaassist-badpolicy-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    for (content, needle) in [
        (r#"{"disallowedPatterns":["a\\sb"]}"#, "invalid_pattern"),
        (r#"{"maxControlRatio":2}"#, "invalid_policy"),
        (r#"{"maxBytes":1}"#, "not a valid policy"),
        ("not json", "not a valid policy"),
    ] {
        let file = dir.join("p.json");
        std::fs::write(&file, content).expect("write");
        let (_, err, ok) = mangaassist(
            &["check", "--policy", file.to_str().expect("path")],
            Vec::new(),
        );
        assert!(!ok, "{content}");
        assert!(err.contains(needle), "{content}: {err}");
    }
    let (_, err, ok) = mangaassist(&["check", "--policy", "/nonexistent/p.json"], Vec::new());
    assert!(!ok && err.contains("cannot read policy file"), "{err}");
}

#[test]
fn cli_answers_the_corpus_byte_for_byte() {
    let outcome = run(
        &mut Cli,
        &[Suite::Check, Suite::Policy, Suite::CacheKey, Suite::Body],
    )
    .expect("corpus");
    assert!(outcome.passed > 300);
    assert!(outcome.mismatches.is_empty(), "{}", outcome.report("cli"));
}

#[test]
fn every_line_gets_exactly_one_answer_whatever_it_holds() {
    let mut input = Vec::new();
    let lines: [&[u8]; 12] = [
        b"{\"message\":\"ok\"}",
        b"",
        b"not json",
        b"\xff\xfe\xfd",
        b"{\"message\":\"a\"",
        b"[1,2,3]",
        b"{\"message\":42}",
        b"{\"message\":\"x\",\"extra\":1}",
        b"{\"message\":\"\\ud800\"}",
        b"{\"message\":\"caf\xc3\xa9\"}\r",
        b"null",
        b"{\"message\":\"last line without newline\"}",
    ];
    for (i, l) in lines.iter().enumerate() {
        input.extend_from_slice(l);
        if i + 1 < lines.len() {
            input.push(b'\n');
        }
    }
    let (out, err, ok) = mangaassist(&["check"], input);
    assert!(ok, "{err}");
    let answers: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("each answer is JSON"))
        .collect();
    assert_eq!(answers.len(), lines.len(), "{out}");
    let codes: Vec<Option<&str>> = answers
        .iter()
        .map(|a| a.pointer("/error/code").and_then(Value::as_str))
        .collect();
    assert_eq!(
        codes,
        [
            None,
            Some("invalid_json"),
            Some("invalid_json"),
            Some("invalid_utf8"),
            Some("invalid_json"),
            Some("invalid_input"),
            Some("invalid_input"),
            Some("invalid_input"),
            Some("invalid_json"),
            None,
            Some("invalid_input"),
            None,
        ]
    );
    assert_eq!(answers[9]["sanitized"], "café");
}

#[test]
fn an_overlong_line_is_refused_and_the_next_is_answered() {
    let mut input = vec![b'x'; 9 * 1024 * 1024];
    input.extend_from_slice(b"\n{\"message\":\"after\"}\n");
    let (out, err, ok) = mangaassist(&["check"], input);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].contains("line_too_long"), "{}", lines[0]);
    assert!(lines[1].contains("\"sanitized\":\"after\""));
}

#[test]
fn schema_prints_the_generated_schema() {
    let (out, err, ok) = mangaassist(&["schema"], Vec::new());
    assert!(ok, "{err}");
    let schema: Value = serde_json::from_str(&out).expect("schema is JSON");
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-04/schema#");
}

#[test]
fn a_missing_policy_component_is_a_clear_error() {
    let (_, err, ok) = mangaassist(
        &[
            "check",
            "--engine",
            "wasm",
            "--policy-wasm",
            "/nonexistent/policy.wasm",
        ],
        Vec::new(),
    );
    assert!(!ok);
    assert!(err.contains("cannot read policy component"), "{err}");
}

/// The embedded policy component, through `--engine wasm`.
struct CliWasm;

impl Engine for CliWasm {
    fn name(&self) -> String {
        "cli --engine wasm".into()
    }

    fn answer(&mut self, suite: Suite, inputs: &[&Value]) -> Option<Vec<String>> {
        let sub = match suite {
            Suite::Check => "check",
            Suite::CacheKey => "cache-key",
            _ => return None,
        };
        Some(batch(&[sub, "--engine", "wasm"], inputs))
    }
}

/// Needs the embedded policy (`scripts/build-policy.sh`, always run by the
/// test command): without it `--engine wasm` fails and so does this test.
#[test]
fn wasm_engine_answers_the_corpus_byte_for_byte() {
    let outcome = run(&mut CliWasm, &[Suite::Check, Suite::CacheKey]).expect("corpus");
    assert!(outcome.passed > 300, "{}", outcome.report("wasm"));
    assert!(outcome.mismatches.is_empty(), "{}", outcome.report("wasm"));
}

#[test]
fn modules_that_are_not_policy_components_are_refused() {
    let dir = std::env::temp_dir().join(format!("mangaassist-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let cases: [(&str, &[u8]); 3] = [
        ("garbage", b"definitely not wasm"),
        // A core module (version 1), not a component.
        ("core-module", b"\0asm\x01\0\0\0"),
        // A valid, empty component: no `checks` export (wrong interface).
        ("empty-component", b"\0asm\x0d\0\x01\0"),
    ];
    for (name, bytes) in cases {
        let file = dir.join(format!("{name}.wasm"));
        std::fs::write(&file, bytes).expect("write");
        let (out, err, ok) = mangaassist(
            &[
                "check",
                "--engine",
                "wasm",
                "--policy-wasm",
                file.to_str().expect("path"),
            ],
            b"{\"message\":\"x\"}\n".to_vec(),
        );
        assert!(!ok, "{name}: accepted");
        assert!(out.is_empty(), "{name}: answered {out}");
        assert!(err.contains("policy module refused"), "{name}: {err}");
    }
}

/// `actual` is `pattern` with each `…` or `...` standing for any text.
fn matches_elided(pattern: &str, actual: &str) -> bool {
    let pattern = pattern.replace("...", "…");
    let pieces: Vec<&str> = pattern.split('…').collect();
    let mut rest = actual;
    for (i, piece) in pieces.iter().enumerate() {
        if i == 0 {
            let Some(after) = rest.strip_prefix(piece) else {
                return false;
            };
            rest = after;
        } else if i == pieces.len() - 1 {
            return rest.ends_with(piece);
        } else {
            let Some(at) = rest.find(piece) else {
                return false;
            };
            rest = &rest[at + piece.len()..];
        }
    }
    rest.is_empty()
}

/// Every `$ echo '…' | mangaassist …` example of the README answers what
/// the README shows on the next line (`…` standing for elided text).
#[test]
fn the_readme_s_command_line_examples_answer_as_shown() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("README");
    let lines: Vec<&str> = readme.lines().collect();
    let mut ran = 0;
    for (i, line) in lines.iter().enumerate() {
        let Some(rest) = line.strip_prefix("$ echo '") else {
            continue;
        };
        let (input, command) = rest
            .split_once("' | mangaassist ")
            .expect("echo | mangaassist");
        let args: Vec<&str> = command.split_whitespace().collect();
        let (out, err, ok) = mangaassist(&args, format!("{input}\n").into_bytes());
        assert!(ok, "{line}: {err}");
        let shown = lines.get(i + 1).expect("an answer line");
        assert!(
            matches_elided(shown, out.trim_end()),
            "README: {line}\n  shows:   {shown}\n  answers: {}",
            out.trim_end()
        );
        ran += 1;
    }
    assert!(ran >= 3, "README examples found: {ran}");
}
