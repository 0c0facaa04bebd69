//! The core called directly: the reference engine of the corpus.

use mangaassist_core::api::{
    BodyInput, CalibratedInput, CheckInput, ContinuationInput, ErrorReport, PrecheckInput,
    SeamInput, body_report, cache_key_report, calibrated_report, check_report, continuation_report,
    precheck_report, screen, seam_report,
};
use mangaassist_core::contract::validate_request;
use mangaassist_core::jobs::{JobItemInput, job_body_report, validate_job};
use mangaassist_core::models::Catalog;
use mangaassist_core::policy::{Policy, PolicyConfig};
use mangaassist_core::sanitize::sanitize;
use mangaassist_core::tokens::estimate_tokens_reference;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Engine, Suite};

/// Input of the `policy` suite.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyInput {
    policy: PolicyConfig,
    message: String,
}

/// The core, linked in.
pub struct NativeEngine {
    policy: Policy,
    catalog: Catalog,
}

impl NativeEngine {
    /// SPEC default policy and catalog.
    pub fn new() -> Result<Self, String> {
        Ok(NativeEngine {
            policy: Policy::spec_default().map_err(|e| e.to_string())?,
            catalog: Catalog::spec_default(),
        })
    }

    /// The answer to one input.
    pub fn answer_one(&self, suite: Suite, input: &Value) -> String {
        match suite {
            Suite::Check => with_input(input, |i: CheckInput| {
                Ok(check_report(&self.policy, &i.message))
            }),
            Suite::Policy => with_input(input, |i: PolicyInput| {
                let policy = Policy::new(&i.policy).map_err(|e| ErrorReport::from(&e))?;
                Ok(check_report(&policy, &i.message))
            }),
            Suite::Sanitize => match input.as_str() {
                Some(s) => json(&sanitize(s)),
                None => json(&ErrorReport::new("invalid_input", "expected a string")),
            },
            Suite::Estimate => match input.as_str() {
                Some(s) => json(&estimate_tokens_reference(s)),
                None => json(&ErrorReport::new("invalid_input", "expected a string")),
            },
            Suite::CacheKey => result(cache_key_report(input).map_err(|e| ErrorReport::from(&e))),
            Suite::Body => with_input(input, |i: BodyInput| {
                body_report(&self.catalog, &i).map_err(|e| ErrorReport::from(&e))
            }),
            Suite::Contract => json(&validate_request(input)),
            Suite::Precheck => with_input(input, |i: PrecheckInput| {
                precheck_report(&self.policy, &self.catalog, &i).map_err(|e| ErrorReport::from(&e))
            }),
            // The service receives text: the input is the request, written out.
            Suite::Screen => json(&screen(&self.policy, &input.to_string())),
            Suite::Job => json(&validate_job(input)),
            Suite::JobBody => with_input(input, |i: JobItemInput| {
                job_body_report(&self.catalog, &i).map_err(|e| ErrorReport::from(&e))
            }),
            Suite::Continuation => {
                with_input(input, |i: ContinuationInput| Ok(continuation_report(&i)))
            }
            Suite::Seam => with_input(input, |i: SeamInput| Ok(seam_report(&i))),
            Suite::Calibrated => with_input(input, |i: CalibratedInput| {
                calibrated_report(&i).map_err(|e| ErrorReport::from(&e))
            }),
        }
    }
}

fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_else(|e| format!("serialization failed: {e}"))
}

fn result<T: Serialize>(r: Result<T, ErrorReport>) -> String {
    match r {
        Ok(v) => json(&v),
        Err(e) => json(&e),
    }
}

fn with_input<I: DeserializeOwned, T: Serialize>(
    input: &Value,
    f: impl FnOnce(I) -> Result<T, ErrorReport>,
) -> String {
    match I::deserialize(input) {
        Ok(i) => result(f(i)),
        Err(e) => json(&ErrorReport::new("invalid_input", &e.to_string())),
    }
}

impl Engine for NativeEngine {
    fn name(&self) -> String {
        "native".into()
    }

    fn answer(&mut self, suite: Suite, inputs: &[&Value]) -> Option<Vec<String>> {
        Some(inputs.iter().map(|i| self.answer_one(suite, i)).collect())
    }
}
