//! mangaassist-core for JavaScript: every function converts its arguments,
//! calls the core, and converts the answer. No decision is made here.

use std::cell::OnceCell;

use mangaassist_core::api::{
    BodyInput, Checker as CoreChecker, CheckerOptions, ErrorReport, PrecheckInput,
    cache_key_report, check_report,
};
use mangaassist_core::contract::validate_request;
use mangaassist_core::models::ModelPreference;
use mangaassist_core::policy::{Policy, PolicyConfig};
use mangaassist_core::sanitize::sanitize as core_sanitize;
use mangaassist_core::schema::request_schema;
use mangaassist_core::tokens::estimate_tokens_reference;
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::prelude::*;

thread_local! {
    // The SPEC-default checker the free functions use, compiled once per JS
    // realm: a binding cache, not behaviour.
    static DEFAULT: OnceCell<Result<CoreChecker, ErrorReport>> = const { OnceCell::new() };
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

fn with_default<T>(f: impl FnOnce(&CoreChecker) -> T) -> Result<T, JsValue> {
    DEFAULT.with(|cell| {
        match cell.get_or_init(|| CoreChecker::spec_default().map_err(|e| ErrorReport::from(&e))) {
            Ok(checker) => Ok(f(checker)),
            Err(report) => Err(js_error(report)),
        }
    })
}

fn core_err(e: &mangaassist_core::Error) -> JsValue {
    js_error(&ErrorReport::from(e))
}

/// A JS number of tokens as a count: whole, 0 or more, exact.
fn token_count(n: f64, what: &str) -> Result<u64, JsValue> {
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
}

/// Far below 2^53: exact as a JS number.
#[allow(clippy::cast_precision_loss, reason = "far below 2^53")]
fn as_number(n: u64) -> f64 {
    n as f64
}

/// A policy, catalog and calibrated estimator compiled once
/// (`new Checker({policy, catalog, calibration})`, every part optional),
/// answering as a service configured with them would: build it from what
/// the server publishes and the page decides as the server does.
#[wasm_bindgen]
pub struct Checker {
    inner: CoreChecker,
}

#[wasm_bindgen]
impl Checker {
    /// Compiles the options; throws with `invalid_pattern`,
    /// `invalid_policy`, `invalid_catalog`, `invalid_argument` or
    /// `invalid_input` (unknown or mistyped fields).
    #[wasm_bindgen(constructor)]
    pub fn new(options: JsValue) -> Result<Checker, JsValue> {
        // Through JSON, so unknown fields are refused as in every engine
        // (serde-wasm-bindgen reads only the fields a struct names).
        let options: CheckerOptions = if options.is_undefined() || options.is_null() {
            CheckerOptions::default()
        } else {
            let json: serde_json::Value = from_js(options)?;
            serde_json::from_value(json)
                .map_err(|e| js_error(&ErrorReport::new("invalid_input", &e.to_string())))?
        };
        CoreChecker::new(&options)
            .map(|inner| Checker { inner })
            .map_err(|e| core_err(&e))
    }

    /// Checks, sanitizes and estimates one message under this policy.
    pub fn check(&self, message: &str) -> Result<JsValue, JsValue> {
        to_js(&self.inner.check(message))
    }

    /// What a widget shows while the user types, and the first refusal.
    pub fn precheck(&self, input: JsValue) -> Result<JsValue, JsValue> {
        let input: PrecheckInput = from_js(input)?;
        to_js(&self.inner.precheck(&input).map_err(|e| core_err(&e))?)
    }

    /// The service's decision on a chat request given as JSON text.
    pub fn screen(&self, request_json: &str) -> Result<JsValue, JsValue> {
        to_js(&self.inner.screen(request_json))
    }

    /// Every violation of the chat request contract; empty when valid.
    #[wasm_bindgen(js_name = validateRequest)]
    pub fn validate_request(&self, request: JsValue) -> Result<JsValue, JsValue> {
        validate_request_js(request)
    }

    /// Model, Claude body and cache key, from this catalog.
    #[wasm_bindgen(js_name = buildBody)]
    pub fn build_body(&self, input: JsValue) -> Result<JsValue, JsValue> {
        let input: BodyInput = from_js(input)?;
        to_js(&self.inner.body(&input).map_err(|e| core_err(&e))?)
    }

    /// The cache key of a Claude body, given as an object or JSON text.
    #[wasm_bindgen(js_name = cacheKey)]
    pub fn cache_key(&self, body: JsValue) -> Result<String, JsValue> {
        cache_key(body)
    }

    /// The model this catalog chooses for a preference and message.
    #[wasm_bindgen(js_name = selectModel)]
    pub fn select_model(&self, preference: JsValue, message: &str) -> Result<JsValue, JsValue> {
        let preference: ModelPreference = from_js(preference)?;
        to_js(
            &self
                .inner
                .select(preference, message)
                .map_err(|e| core_err(&e))?,
        )
    }

    /// Dollar cost of a call to a model of this catalog.
    #[wasm_bindgen(js_name = estimateCost)]
    pub fn estimate_cost(
        &self,
        model: &str,
        input_tokens: f64,
        output_tokens: f64,
    ) -> Result<f64, JsValue> {
        let (i, o) = (
            token_count(input_tokens, "inputTokens")?,
            token_count(output_tokens, "outputTokens")?,
        );
        self.inner.cost(model, i, o).map_err(|e| core_err(&e))
    }

    /// The estimate to show for a text: calibrated with the checker's
    /// weights, else SPEC 5's reference.
    #[wasm_bindgen(js_name = estimateTokens)]
    pub fn estimate_tokens(&self, text: &str) -> f64 {
        as_number(self.inner.estimate_tokens(text))
    }

    /// `{maxMessageBytes, minMessageChars, maxMessageChars, maxControlRatio}`.
    pub fn limits(&self) -> Result<JsValue, JsValue> {
        to_js(&self.inner.limits())
    }
}

/// SPEC's limits (a default checker's).
#[wasm_bindgen]
pub fn limits() -> Result<JsValue, JsValue> {
    to_js(&with_default(CoreChecker::limits)?)
}

/// Checks, sanitizes and estimates one message (SPEC 3, 4, 5), under SPEC's
/// policy or, when given, a policy object (compiled on each call).
#[wasm_bindgen]
pub fn check(message: &str, policy: JsValue) -> Result<JsValue, JsValue> {
    if policy.is_undefined() || policy.is_null() {
        return to_js(&with_default(|c| c.check(message))?);
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
    to_js(&with_default(|c| c.precheck(&input))?.map_err(|e| core_err(&e))?)
}

/// The service's decision on a chat request given as JSON text, in its
/// order: `{"outcome":"invalid"|"contract"|"refused"|"accepted",...}`.
#[wasm_bindgen]
pub fn screen(request_json: &str) -> Result<JsValue, JsValue> {
    to_js(&with_default(|c| c.screen(request_json))?)
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
    as_number(estimate_tokens_reference(message))
}

/// Model, Claude body and cache key for a message (SPEC 6, 7, 8).
#[wasm_bindgen(js_name = buildBody)]
pub fn build_body(input: JsValue) -> Result<JsValue, JsValue> {
    let input: BodyInput = from_js(input)?;
    to_js(&with_default(|c| c.body(&input))?.map_err(|e| core_err(&e))?)
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
    match with_default(|c| mangaassist_core::jobs::job_body_report(c.catalog(), &input))? {
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
    to_js(&with_default(|c| c.select(preference, message))?.map_err(|e| core_err(&e))?)
}

/// Dollar cost of a call to `model` (a catalog key) with these token counts.
#[wasm_bindgen(js_name = estimateCost)]
pub fn estimate_cost(model: &str, input_tokens: f64, output_tokens: f64) -> Result<f64, JsValue> {
    let (i, o) = (
        token_count(input_tokens, "inputTokens")?,
        token_count(output_tokens, "outputTokens")?,
    );
    with_default(|c| c.cost(model, i, o))?.map_err(|e| core_err(&e))
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
