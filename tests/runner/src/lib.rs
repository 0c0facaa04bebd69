//! The conformance corpus (`tests/corpus/*.jsonl`) and a runner every engine reuses.
//!
//! An engine answers a batch of inputs of one [`Suite`] with one JSON text
//! each; [`run`] compares every answer byte for byte with the corpus. The
//! native engine lives here ([`NativeEngine`]); the CLI, wasmtime and other
//! engines implement [`Engine`] in their own test crates.

use std::fmt;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;

mod native;

pub use native::NativeEngine;

/// One family of vectors, one file of the corpus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    /// `{"message"}` → check report (SPEC 3, 4, 5).
    Check,
    /// `{"policy","message"}` → check report under a configured policy (SPEC 3).
    Policy,
    /// string → sanitized string (SPEC 4).
    Sanitize,
    /// string → reference token estimate (SPEC 5).
    Estimate,
    /// Claude body → `{"cacheKey"}` or error (SPEC 7).
    CacheKey,
    /// body input → `{"model","body","cacheKey"}` or error (SPEC 6, 8).
    Body,
    /// chat request → list of violations (SPEC 2).
    Contract,
    /// `{"message","sessionId"?,"modelPreference"?}` → what a client shows
    /// before sending, and the service's first refusal (SPEC 2–5, 8).
    Precheck,
    /// chat request (sent as JSON text) → the service's screening: contract
    /// violations, a refusal, or the typed request it accepts (SPEC 2–5, 10).
    Screen,
    /// batch job document → list of violations.
    Job,
    /// `{"task","language"?,"item"}` → the item's `{"model","body","cacheKey"}`.
    JobBody,
    /// `{"body","sent","prefill"}` → `{"body"}` asking for the rest of a cut answer.
    Continuation,
    /// `{"sent","continuation","complete"}` → `{"wait":true}` or `{"repeat","rest"}`.
    Seam,
    /// `{"text","calibration"}` → `{"estimatedTokens","script","counts"}` or error.
    Calibrated,
}

impl Suite {
    /// Every suite, in corpus order.
    pub const ALL: [Suite; 14] = [
        Suite::Check,
        Suite::Policy,
        Suite::Sanitize,
        Suite::Estimate,
        Suite::CacheKey,
        Suite::Body,
        Suite::Contract,
        Suite::Precheck,
        Suite::Screen,
        Suite::Job,
        Suite::JobBody,
        Suite::Continuation,
        Suite::Seam,
        Suite::Calibrated,
    ];

    /// Base name of the suite's corpus file.
    pub fn name(self) -> &'static str {
        match self {
            Suite::Check => "check",
            Suite::Policy => "policy",
            Suite::Sanitize => "sanitize",
            Suite::Estimate => "estimate",
            Suite::CacheKey => "cache_key",
            Suite::Body => "body",
            Suite::Contract => "contract",
            Suite::Precheck => "precheck",
            Suite::Screen => "screen",
            Suite::Job => "job",
            Suite::JobBody => "job_body",
            Suite::Continuation => "continuation",
            Suite::Seam => "seam",
            Suite::Calibrated => "calibrated",
        }
    }
}

impl fmt::Display for Suite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One vector: an input and the exact expected answer text.
#[derive(Debug, Clone)]
pub struct Vector {
    /// Unique within its suite.
    pub name: String,
    /// The input, as JSON.
    pub input: Value,
    /// The input's exact JSON text in the corpus (number spellings such as
    /// `4096.0` matter to the cache key).
    pub input_json: String,
    /// The expected answer, compact JSON, byte for byte.
    pub expected: String,
}

#[derive(Deserialize)]
struct RawVector<'a> {
    name: String,
    #[serde(borrow)]
    input: &'a RawValue,
    #[serde(borrow)]
    expected: &'a RawValue,
}

/// `tests/corpus/`.
pub fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("corpus")
}

/// Loads every vector of `suite` from `tests/corpus/`.
pub fn load(suite: Suite) -> Result<Vec<Vector>, String> {
    let path = corpus_dir().join(format!("{}.jsonl", suite.name()));
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(suite, &text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The corpus file of `suite` as built into this crate: a deployed binary
/// carries the corpus its policy self-test runs.
pub fn embedded(suite: Suite) -> &'static str {
    match suite {
        Suite::Check => include_str!("../../corpus/check.jsonl"),
        Suite::Policy => include_str!("../../corpus/policy.jsonl"),
        Suite::Sanitize => include_str!("../../corpus/sanitize.jsonl"),
        Suite::Estimate => include_str!("../../corpus/estimate.jsonl"),
        Suite::CacheKey => include_str!("../../corpus/cache_key.jsonl"),
        Suite::Body => include_str!("../../corpus/body.jsonl"),
        Suite::Contract => include_str!("../../corpus/contract.jsonl"),
        Suite::Precheck => include_str!("../../corpus/precheck.jsonl"),
        Suite::Screen => include_str!("../../corpus/screen.jsonl"),
        Suite::Job => include_str!("../../corpus/job.jsonl"),
        Suite::JobBody => include_str!("../../corpus/job_body.jsonl"),
        Suite::Continuation => include_str!("../../corpus/continuation.jsonl"),
        Suite::Seam => include_str!("../../corpus/seam.jsonl"),
        Suite::Calibrated => include_str!("../../corpus/calibrated.jsonl"),
    }
}

/// Every vector of a corpus file's text (blank lines skipped).
pub fn parse(suite: Suite, text: &str) -> Result<Vec<Vector>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, line)| {
            let raw: RawVector<'_> =
                serde_json::from_str(line).map_err(|e| format!("{suite} line {}: {e}", i + 1))?;
            let input = serde_json::from_str(raw.input.get())
                .map_err(|e| format!("{suite} line {}: {e}", i + 1))?;
            Ok(Vector {
                name: raw.name,
                input,
                input_json: raw.input.get().to_string(),
                expected: raw.expected.get().to_string(),
            })
        })
        .collect()
}

/// Something that answers corpus inputs: native core, CLI, wasm, ...
pub trait Engine {
    /// Short name for reports.
    fn name(&self) -> String;
    /// Answers every input of `suite`, in order; `None` when the engine does
    /// not offer this suite.
    fn answer(&mut self, suite: Suite, inputs: &[&Value]) -> Option<Vec<String>>;
}

/// A vector whose answer differed.
#[derive(Debug, Clone)]
pub struct Mismatch {
    /// Suite of the vector.
    pub suite: Suite,
    /// Vector name.
    pub name: String,
    /// What the corpus says.
    pub expected: String,
    /// What the engine said.
    pub actual: String,
}

/// Result of running an engine over the corpus.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Vectors answered exactly.
    pub passed: usize,
    /// Suites the engine does not offer.
    pub skipped: Vec<Suite>,
    /// Vectors answered differently.
    pub mismatches: Vec<Mismatch>,
}

impl Outcome {
    /// A readable summary with the first mismatches in full.
    pub fn report(&self, engine: &str) -> String {
        let mut s = format!(
            "{engine}: {} passed, {} failed, skipped suites: {:?}\n",
            self.passed,
            self.mismatches.len(),
            self.skipped
        );
        for m in self.mismatches.iter().take(20) {
            let cut = |t: &str| t.chars().take(600).collect::<String>();
            s.push_str(&format!(
                "  {}/{}\n    expected: {}\n    actual:   {}\n",
                m.suite,
                m.name,
                cut(&m.expected),
                cut(&m.actual)
            ));
        }
        s
    }
}

/// Runs `suites` of the corpus through `engine`.
pub fn run(engine: &mut dyn Engine, suites: &[Suite]) -> Result<Outcome, String> {
    let mut outcome = Outcome::default();
    for &suite in suites {
        let vectors = load(suite)?;
        let inputs: Vec<&Value> = vectors.iter().map(|v| &v.input).collect();
        let Some(answers) = engine.answer(suite, &inputs) else {
            outcome.skipped.push(suite);
            continue;
        };
        if answers.len() != vectors.len() {
            return Err(format!(
                "{}: {suite}: {} answers for {} vectors",
                engine.name(),
                answers.len(),
                vectors.len()
            ));
        }
        for (v, actual) in vectors.into_iter().zip(answers) {
            if actual == v.expected {
                outcome.passed += 1;
            } else {
                outcome.mismatches.push(Mismatch {
                    suite,
                    name: v.name,
                    expected: v.expected,
                    actual,
                });
            }
        }
    }
    Ok(outcome)
}
