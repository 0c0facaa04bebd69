//! The conformance corpus as a policy's entrance exam: a candidate policy
//! component must answer every vector of the suites the policy world
//! exports, byte for byte, before it may serve. The vectors are the
//! corpus embedded in the binary ([`mangaassist_conformance::embedded`]),
//! so a deployed binary carries its exam.

use mangaassist_conformance::{Suite, Vector, embedded, parse};
use mangaassist_core::api::{check_report, json_line, screen};
use mangaassist_core::policy::Policy;
use serde_json::Value;

use crate::answers;
use crate::sandbox::Sandbox;

/// The suites a policy component answers.
pub const SUITES: [Suite; 4] = [
    Suite::Check,
    Suite::CacheKey,
    Suite::Contract,
    Suite::Screen,
];

/// Why a candidate failed its exam.
#[derive(Debug, thiserror::Error)]
pub enum SelfTestError {
    /// A vector got a different answer.
    #[error("self-test failed on {suite}/{name}: expected {expected}, got {actual}")]
    Mismatch {
        /// Corpus suite.
        suite: Suite,
        /// Vector name.
        name: String,
        /// The corpus answer (shortened).
        expected: String,
        /// The candidate's answer (shortened).
        actual: String,
    },
    /// The embedded corpus did not parse (a build defect, reported, not hidden).
    #[error("embedded corpus is unreadable: {0}")]
    Corpus(String),
}

impl SelfTestError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            SelfTestError::Mismatch { .. } => "policy_self_test_failed",
            SelfTestError::Corpus(_) => "policy_self_test_corpus",
        }
    }
}

/// Runs every embedded vector of [`SUITES`] through `sandbox`; the number
/// passed, or the first failure. Each call gets the warm-up budget: the
/// exam judges answers, and a looping guest is still stopped.
///
/// `custom` is the policy the candidate says it runs (its `config`
/// answer, compiled natively) when that is not SPEC's. The answers it
/// decides (`check`, `screen`) must then be the core's own under it,
/// instead of the corpus answers made under SPEC's: another configuration
/// may serve, and its answer is checked against its behaviour.
pub fn run(sandbox: &mut Sandbox, custom: Option<&Policy>) -> Result<usize, SelfTestError> {
    sandbox.with_exam_budget(|sandbox| exam(sandbox, custom))
}

fn exam(sandbox: &Sandbox, custom: Option<&Policy>) -> Result<usize, SelfTestError> {
    let mut passed = 0;
    for suite in SUITES {
        let vectors = parse(suite, embedded(suite)).map_err(SelfTestError::Corpus)?;
        for vector in vectors {
            let actual = answer(sandbox, suite, &vector)?;
            let expected = expected(suite, &vector, custom)?;
            if actual != expected {
                let cut = |t: &str| t.chars().take(200).collect::<String>();
                return Err(SelfTestError::Mismatch {
                    suite,
                    name: vector.name,
                    expected: cut(&expected),
                    actual: cut(&actual),
                });
            }
            passed += 1;
        }
    }
    Ok(passed)
}

/// The answer a vector must get: the corpus's, or under a `custom` policy
/// the core's own for the suites the policy decides.
fn expected(
    suite: Suite,
    vector: &Vector,
    custom: Option<&Policy>,
) -> Result<String, SelfTestError> {
    let Some(policy) = custom else {
        return Ok(vector.expected.clone());
    };
    Ok(match suite {
        Suite::Check => json_line(&check_report(policy, message(vector)?)),
        Suite::Screen => json_line(&screen(policy, &vector.input_json)),
        _ => vector.expected.clone(),
    })
}

fn message(vector: &Vector) -> Result<&str, SelfTestError> {
    vector
        .input
        .get("message")
        .and_then(Value::as_str)
        .ok_or_else(|| SelfTestError::Corpus(format!("check/{}: no message", vector.name)))
}

/// The guest's answer to one vector, as its JSON line.
fn answer(sandbox: &Sandbox, suite: Suite, vector: &Vector) -> Result<String, SelfTestError> {
    Ok(match suite {
        Suite::Check => answers::check(sandbox, message(vector)?),
        Suite::CacheKey => answers::cache_key(sandbox, &vector.input_json),
        Suite::Contract => answers::contract(sandbox, &vector.input_json),
        Suite::Screen => answers::screen(sandbox, &vector.input_json),
        other => {
            return Err(SelfTestError::Corpus(format!(
                "{other} is not a suite of the policy world"
            )));
        }
    })
}
