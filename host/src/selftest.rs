//! The conformance corpus as a policy's entrance exam: a candidate policy
//! component must answer every `check`, `cache_key` and `contract` vector
//! byte for byte before it may serve (the other suites need APIs the policy
//! world does not export). The vectors are embedded so a deployed binary carries its exam.

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::commands::{cache_key_wasm, check_wasm, validate_wasm};
use crate::sandbox::Sandbox;

const CHECK: &str = include_str!("../../tests/corpus/check.jsonl");
const CACHE_KEY: &str = include_str!("../../tests/corpus/cache_key.jsonl");
const CONTRACT: &str = include_str!("../../tests/corpus/contract.jsonl");

#[derive(Deserialize)]
struct Vector<'a> {
    name: String,
    #[serde(borrow)]
    input: &'a RawValue,
    #[serde(borrow)]
    expected: &'a RawValue,
}

#[derive(Deserialize)]
struct CheckInput {
    message: String,
}

/// Why a candidate failed its exam.
#[derive(Debug, thiserror::Error)]
pub enum SelfTestError {
    /// A vector got a different answer.
    #[error("self-test failed on {suite}/{name}: expected {expected}, got {actual}")]
    Mismatch {
        /// Corpus suite.
        suite: &'static str,
        /// Vector name.
        name: String,
        /// The corpus answer (shortened).
        expected: String,
        /// The candidate's answer (shortened).
        actual: String,
    },
    /// The embedded corpus did not parse (a build defect, reported, not hidden).
    #[error("embedded corpus {suite} line {line} is unreadable: {reason}")]
    Corpus {
        /// Corpus suite.
        suite: &'static str,
        /// 1-based line.
        line: usize,
        /// Parser message.
        reason: String,
    },
}

impl SelfTestError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            SelfTestError::Mismatch { .. } => "policy_self_test_failed",
            SelfTestError::Corpus { .. } => "policy_self_test_corpus",
        }
    }
}

/// Runs every embedded vector through `sandbox`; the number passed, or the
/// first failure.
pub fn run(sandbox: &Sandbox) -> Result<usize, SelfTestError> {
    let mut passed = 0;
    passed += suite("check", CHECK, |input| {
        serde_json::from_str::<CheckInput>(input.get())
            .map(|i| check_wasm(sandbox, &i.message))
            .map_err(|e| e.to_string())
    })?;
    passed += suite("cache_key", CACHE_KEY, |input| {
        Ok(cache_key_wasm(sandbox, input.get()))
    })?;
    passed += suite("contract", CONTRACT, |input| {
        Ok(validate_wasm(sandbox, input.get()))
    })?;
    Ok(passed)
}

fn suite(
    name: &'static str,
    text: &str,
    mut answer: impl FnMut(&RawValue) -> Result<String, String>,
) -> Result<usize, SelfTestError> {
    let mut passed = 0;
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let corpus = |reason: String| SelfTestError::Corpus {
            suite: name,
            line: i + 1,
            reason,
        };
        let vector: Vector<'_> = serde_json::from_str(line).map_err(|e| corpus(e.to_string()))?;
        let actual = answer(vector.input).map_err(corpus)?;
        if actual != vector.expected.get() {
            let cut = |t: &str| t.chars().take(200).collect::<String>();
            return Err(SelfTestError::Mismatch {
                suite: name,
                name: vector.name,
                expected: cut(vector.expected.get()),
                actual: cut(&actual),
            });
        }
        passed += 1;
    }
    Ok(passed)
}
