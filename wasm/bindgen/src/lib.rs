//! mangaassist-core for JavaScript: every function converts its arguments,
//! calls the core, and converts the answer. No decision is made here.

use std::cell::OnceCell;

use mangaassist_core::api::{
    BodyInput, ErrorReport, PrecheckInput, body_report, cache_key_report, check_report,
    precheck_report, screen as core_screen,
};
use mangaassist_core::contract::validate_request;
use mangaassist_core::models::{Catalog, ModelPreference};
use mangaassist_core::policy::{Policy, PolicyConfig};
use mangaassist_core::sanitize::sanitize as core_sanitize;
use mangaassist_core::schema::request_schema;
use mangaassist_core::tokens::estimate_tokens_reference;
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::prelude::*;

thread_local! {
    // Compiled once per JS realm: a binding cache, not behaviour.
    static POLICY: OnceCell<Result<Policy, ErrorReport>> = const { OnceCell::new() };
    static CATALOG: Catalog = Catalog::spec_default();
}

/// A JS `Error` with `code` set, from the core's error answer.
fn js_error(report: &ErrorReport) -> JsValue {
    let err = js_sys::Error::new(&report.error.message);
    let _ = js_sys::Reflect::set(&err, &"code".into(), &report.error.code.as_str().into());
    err.into()
}

fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| js_error(&ErrorReport::new("internal", &e.to_string())))
}

fn from_js<T: DeserializeOwned>(value: JsValue) -> Result<T, JsValue> {
    serde_wasm_bindgen::from_value(value)
        .map_err(|e| js_error(&ErrorReport::new("invalid_input", &e.to_string())))
}

fn with_policy<T>(f: impl FnOnce(&Policy) -> T) -> Result<T, JsValue> {
    POLICY.with(|cell| {
        match cell.get_or_init(|| Policy::spec_default().map_err(|e| ErrorReport::from(&e))) {
            Ok(policy) => Ok(f(policy)),
            Err(report) => Err(js_error(report)),
        }
    })
}

/// Checks, sanitizes and estimates one message (SPEC 3, 4, 5), under SPEC's
/// policy or, when given, a policy object (compiled on each call).
#[wasm_bindgen]
pub fn check(message: &str, policy: JsValue) -> Result<JsValue, JsValue> {
    if policy.is_undefined() || policy.is_null() {
        return to_js(&with_policy(|p| check_report(p, message))?);
    }
    let config: PolicyConfig = from_js(policy)?;
    let policy = Policy::new(&config).map_err(|e| js_error(&ErrorReport::from(&e)))?;
    to_js(&check_report(&policy, message))
}

/// What a chat widget shows while the user types, and the service's first
/// refusal of the message if it were sent: one call, one pass.
#[wasm_bindgen]
pub fn precheck(input: JsValue) -> Result<JsValue, JsValue> {
    let input: PrecheckInput = from_js(input)?;
    let report = with_policy(|p| CATALOG.with(|c| precheck_report(p, c, &input)))?;
    match report {
        Ok(r) => to_js(&r),
        Err(e) => Err(js_error(&ErrorReport::from(&e))),
    }
}

/// The service's decision on a chat request given as JSON text, in its
/// order: `{"outcome":"invalid"|"contract"|"refused"|"accepted",...}`.
#[wasm_bindgen]
pub fn screen(request_json: &str) -> Result<JsValue, JsValue> {
    to_js(&with_policy(|p| core_screen(p, request_json))?)
}

/// Every violation of the chat request contract (SPEC 2); empty when valid.
#[wasm_bindgen(js_name = validateRequest)]
pub fn validate_request_js(request: JsValue) -> Result<JsValue, JsValue> {
    let doc: serde_json::Value = from_js(request)?;
    to_js(&validate_request(&doc))
}

/// The prompt form of a message (SPEC 4).
#[wasm_bindgen]
pub fn sanitize(message: &str) -> String {
    core_sanitize(message)
}

/// The reference token estimate (SPEC 5).
#[wasm_bindgen(js_name = estimateTokens)]
pub fn estimate_tokens(message: &str) -> f64 {
    // Estimates are far below 2^53: exact as a JS number.
    #[allow(clippy::cast_precision_loss, reason = "far below 2^53")]
    let n = estimate_tokens_reference(message) as f64;
    n
}

/// Model, Claude body and cache key for a message (SPEC 6, 7, 8).
#[wasm_bindgen(js_name = buildBody)]
pub fn build_body(input: JsValue) -> Result<JsValue, JsValue> {
    let input: BodyInput = from_js(input)?;
    let report = CATALOG.with(|c| body_report(c, &input));
    match report {
        Ok(r) => to_js(&r),
        Err(e) => Err(js_error(&ErrorReport::from(&e))),
    }
}

/// Every violation of the batch job contract; empty when valid.
#[wasm_bindgen(js_name = validateJob)]
pub fn validate_job_js(job: JsValue) -> Result<JsValue, JsValue> {
    let doc: serde_json::Value = from_js(job)?;
    to_js(&mangaassist_core::jobs::validate_job(&doc))
}

/// Model, Claude body and cache key of one item of a batch job.
#[wasm_bindgen(js_name = jobBody)]
pub fn job_body(input: JsValue) -> Result<JsValue, JsValue> {
    let input: mangaassist_core::jobs::JobItemInput = from_js(input)?;
    match CATALOG.with(|c| mangaassist_core::jobs::job_body_report(c, &input)) {
        Ok(r) => to_js(&r),
        Err(e) => Err(js_error(&ErrorReport::from(&e))),
    }
}

/// The body that asks for the rest of a streamed answer cut after `sent`:
/// `{body, sent, prefill}` → `{body}` (an assistant prefill, or for a model
/// refusing prefill a final user turn asking it to continue).
#[wasm_bindgen(js_name = continuationBody)]
pub fn continuation_body(input: JsValue) -> Result<JsValue, JsValue> {
    let input: mangaassist_core::api::ContinuationInput = from_js(input)?;
    to_js(&mangaassist_core::api::continuation_report(&input))
}

/// How much of a continuation's start repeats the text already sent:
/// `{sent, continuation, complete}` → `{wait: true}` or `{repeat, rest}`.
#[wasm_bindgen(js_name = seam)]
pub fn seam(input: JsValue) -> Result<JsValue, JsValue> {
    let input: mangaassist_core::api::SeamInput = from_js(input)?;
    to_js(&mangaassist_core::api::seam_report(&input))
}

/// The calibrated token estimate of a text with the weights a service
/// publishes: `{text, calibration}` → `{estimatedTokens, script, counts}`.
#[wasm_bindgen(js_name = estimateTokensCalibrated)]
pub fn estimate_tokens_calibrated(input: JsValue) -> Result<JsValue, JsValue> {
    let input: mangaassist_core::api::CalibratedInput = from_js(input)?;
    match mangaassist_core::api::calibrated_report(&input) {
        Ok(r) => to_js(&r),
        Err(e) => Err(js_error(&ErrorReport::from(&e))),
    }
}

/// The cache key of a Claude body (SPEC 7), given as an object or as JSON
/// text. Text keeps what a JS number cannot: `4096.0` and `4096` hash apart,
/// as in the Python service.
#[wasm_bindgen(js_name = cacheKey)]
pub fn cache_key(body: JsValue) -> Result<String, JsValue> {
    let body: serde_json::Value = match body.as_string() {
        Some(text) => serde_json::from_str(&text)
            .map_err(|e| js_error(&ErrorReport::new("invalid_json", &e.to_string())))?,
        None => from_js(body)?,
    };
    cache_key_report(&body)
        .map(|r| r.cache_key)
        .map_err(|e| js_error(&ErrorReport::from(&e)))
}

/// The model chosen for a preference (`auto`, `fast`, `quality`) and message.
#[wasm_bindgen(js_name = selectModel)]
pub fn select_model(preference: JsValue, message: &str) -> Result<JsValue, JsValue> {
    let preference: ModelPreference = from_js(preference)?;
    match CATALOG.with(|c| c.choice(preference, message)) {
        Ok(m) => to_js(&m),
        Err(e) => Err(js_error(&ErrorReport::from(&e))),
    }
}

/// Dollar cost of a call to `model` (a catalog key) with these token counts.
#[wasm_bindgen(js_name = estimateCost)]
pub fn estimate_cost(model: &str, input_tokens: f64, output_tokens: f64) -> Result<f64, JsValue> {
    let count = |n: f64, what: &str| -> Result<u64, JsValue> {
        if n.is_finite() && n >= 0.0 && n.fract() == 0.0 && n <= 9_007_199_254_740_991.0 {
            #[allow(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "checked above"
            )]
            Ok(n as u64)
        } else {
            Err(js_error(&ErrorReport::new(
                "invalid_argument",
                &format!("{what} must be a whole number of tokens, 0 or more"),
            )))
        }
    };
    let (i, o) = (
        count(input_tokens, "inputTokens")?,
        count(output_tokens, "outputTokens")?,
    );
    CATALOG
        .with(|c| c.cost(model, i, o))
        .map_err(|e| js_error(&ErrorReport::from(&e)))
}

/// The draft-04 JSON Schema of a chat request.
#[wasm_bindgen]
pub fn schema() -> Result<JsValue, JsValue> {
    to_js(&request_schema())
}

/// The package version.
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}
