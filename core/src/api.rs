//! The JSON shapes every engine answers with (SPEC 11), built here so the
//! CLI, the npm package, the wasmtime guest and the service only serialize
//! them. The answer structs have public fields and deserialize, so a host can
//! rebuild them from another engine's answer.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::body::{BodySettings, ClaudeBody, DEFAULT_SYSTEM_PROMPT, Turn, build_body};
use crate::cache_key::cache_key;
use crate::calibration::{Calibration, ScriptCounts};
use crate::continuation::{Seam, continuation_body, seam};
use crate::contract::validate_request;
use crate::error::Error;
use crate::models::{Catalog, ModelPreference, ModelSpec};
use crate::policy::Policy;
use crate::verdict::{Stop, first_stop};

pub use crate::models::ModelChoice;
pub use crate::screen::{
    Action, INVALID_JSON, INVALID_REQUEST, MAX_LISTED_VIOLATIONS, ScreenedRequest, Screening,
    screen,
};
pub use crate::verdict::{CheckReport, EMPTY_MESSAGE, EMPTY_MESSAGE_DETAIL, Refusal, check_report};

/// Input of `check`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckInput {
    /// The raw message.
    pub message: String,
}

/// Answer of `cache-key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CacheKeyReport {
    /// 16 lowercase hex digits.
    pub cache_key: String,
}

/// The cache key of a Claude body given as JSON.
pub fn cache_key_report(body: &Value) -> Result<CacheKeyReport, Error> {
    Ok(CacheKeyReport {
        cache_key: cache_key(body)?,
    })
}

/// Input of `body`.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BodyInput {
    /// The new user message, used as given (sanitize it first).
    pub message: String,
    /// Earlier turns, oldest first.
    #[serde(default)]
    pub history: Vec<Turn>,
    /// System prompt; the store's default when absent.
    pub system: Option<String>,
    /// Generation limit; the chosen model's when absent.
    pub max_tokens: Option<u32>,
    /// Temperature; the chosen model's when absent.
    pub temperature: Option<f64>,
    /// Which model; `auto` when absent.
    #[serde(default)]
    pub model_preference: ModelPreference,
    /// A catalog preset ([`Catalog::PRESETS`]) to select from instead of
    /// the engine's own catalog.
    pub catalog: Option<String>,
}

/// Answer of `body`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct BodyReport {
    /// Selected model.
    pub model: ModelChoice,
    /// The Claude Messages body.
    pub body: ClaudeBody,
    /// Cache key of that body.
    pub cache_key: String,
}

/// Selects the model and builds the body and its cache key.
pub fn body_report(catalog: &Catalog, input: &BodyInput) -> Result<BodyReport, Error> {
    let preset;
    let catalog = match &input.catalog {
        Some(name) => {
            preset = Catalog::preset(name)?;
            &preset
        }
        None => catalog,
    };
    let (model, spec) = catalog.choose(input.model_preference, &input.message)?;
    body_for(model, spec, input)
}

/// The body and cache key for the catalog model `key`, whatever the
/// preference says: a fallback model is sent a body with its own settings.
pub fn body_report_for(
    catalog: &Catalog,
    key: &str,
    input: &BodyInput,
) -> Result<BodyReport, Error> {
    let (model, spec) = catalog.model(key)?;
    body_for(model, spec, input)
}

fn body_for(model: ModelChoice, spec: &ModelSpec, input: &BodyInput) -> Result<BodyReport, Error> {
    let body = build_body(
        &input.message,
        &input.history,
        BodySettings {
            system: input.system.as_deref().unwrap_or(DEFAULT_SYSTEM_PROMPT),
            max_tokens: input.max_tokens.unwrap_or(spec.max_tokens),
            temperature: input.temperature.unwrap_or(spec.temperature),
        },
    )?;
    let as_json = serde_json::to_value(&body)
        .map_err(|e| Error::invalid_body(format!("body does not serialize: {e}")))?;
    Ok(BodyReport {
        model,
        cache_key: cache_key(&as_json)?,
        body,
    })
}

/// Input of `continuation`: a body whose streamed answer was cut.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ContinuationInput {
    /// The body first sent.
    pub body: ClaudeBody,
    /// The answer's text streamed before the cut.
    pub sent: String,
    /// Whether the model accepts an assistant prefill.
    pub prefill: bool,
}

/// Answer of `continuation`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ContinuationReport {
    /// The body that asks for the rest.
    pub body: ClaudeBody,
}

/// The body that asks for the rest of a cut answer (see [`continuation_body`]).
pub fn continuation_report(input: &ContinuationInput) -> ContinuationReport {
    ContinuationReport {
        body: continuation_body(&input.body, &input.sent, input.prefill),
    }
}

/// Input of `seam`: the start of a continuation after the text sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeamInput {
    /// The text already sent to the caller.
    pub sent: String,
    /// The continuation's text so far.
    pub continuation: String,
    /// Whether the continuation has ended.
    pub complete: bool,
    /// Whether it was asked for with a prefill (then only whitespace repeats).
    pub prefill: bool,
}

/// Answer of `seam`: wait for more, or the repeat and what to pass on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum SeamReport {
    /// Undecided: hold the continuation back.
    Wait {
        /// Always true.
        wait: bool,
    },
    /// Decided.
    Cut {
        /// The start of the continuation that repeats the text sent.
        repeat: String,
        /// The rest, to pass on.
        rest: String,
    },
}

/// What [`seam`] decides for this input, as text.
pub fn seam_report(input: &SeamInput) -> SeamReport {
    match seam(
        &input.sent,
        &input.continuation,
        input.complete,
        input.prefill,
    ) {
        Seam::Wait => SeamReport::Wait { wait: true },
        Seam::Skip(n) => {
            let (repeat, rest) = input
                .continuation
                .split_at_checked(n)
                .unwrap_or(("", &input.continuation));
            SeamReport::Cut {
                repeat: repeat.to_string(),
                rest: rest.to_string(),
            }
        }
    }
}

/// Input of `calibrated`: a text and the weights to estimate it with.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalibratedInput {
    /// The text (a message, as the widget shows its estimate).
    pub text: String,
    /// Fitted weights, as the service publishes them.
    pub calibration: Calibration,
}

/// Answer of `calibrated`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CalibratedReport {
    /// The calibrated estimate of the text.
    pub estimated_tokens: u64,
    /// The script the text mostly is, as errors are reported by.
    pub script: &'static str,
    /// The counts the estimate weighs.
    pub counts: ScriptCounts,
}

/// The calibrated estimate of a text; `invalid_argument` for weights that
/// are negative or not finite.
pub fn calibrated_report(input: &CalibratedInput) -> Result<CalibratedReport, Error> {
    input.calibration.validate()?;
    let counts = ScriptCounts::of(&input.text);
    Ok(CalibratedReport {
        estimated_tokens: input.calibration.estimate_text(&input.text),
        script: counts.dominant(),
        counts,
    })
}

/// Input of `precheck`: a message as a client is about to send it.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PrecheckInput {
    /// The raw message.
    pub message: String,
    /// The session it belongs to, if any.
    pub session_id: Option<String>,
    /// `modelPreference` as the client would send it (checked by the contract).
    pub model_preference: Option<String>,
}

/// Answer of `precheck`: what a client shows while the user types, and
/// whether the service would refuse the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrecheckReport {
    /// Unicode code points.
    pub chars: u64,
    /// UTF-8 bytes.
    pub bytes: u64,
    /// SPEC 5 reference estimate of the message as given.
    pub estimated_tokens: u64,
    /// SPEC 4 form of the message.
    pub sanitized: String,
    /// The model the service would choose for it.
    pub model: ModelChoice,
    /// The first reason the service would refuse it, in the service's
    /// order: the contract (400), the checks (422), nothing left (422).
    pub refusal: Option<Refusal>,
}

/// Pre-checks a message as the service will check a `sendMessage` of it.
pub fn precheck_report(
    policy: &Policy,
    catalog: &Catalog,
    input: &PrecheckInput,
) -> Result<PrecheckReport, Error> {
    let mut data = serde_json::Map::new();
    data.insert("message".into(), Value::String(input.message.clone()));
    if let Some(id) = &input.session_id {
        data.insert("sessionId".into(), Value::String(id.clone()));
    }
    if let Some(p) = &input.model_preference {
        data.insert("modelPreference".into(), Value::String(p.clone()));
    }
    let mut request = serde_json::Map::new();
    request.insert("action".into(), Value::String("sendMessage".into()));
    request.insert("data".into(), Value::Object(data));
    let violations = validate_request(&Value::Object(request));

    let report = check_report(policy, &input.message);
    // An invalid preference is a violation above; select as `auto` meanwhile.
    let preference = input
        .model_preference
        .as_deref()
        .and_then(|p| serde_json::from_value(Value::String(p.into())).ok())
        .unwrap_or_default();
    let model = catalog.choice(preference, &report.sanitized)?;
    // The service's order; a client shows only its first refusal.
    let refusal = match first_stop(violations, || Some(&report)) {
        Ok(_) => None,
        Err(Stop::Contract(violations)) => violations.into_iter().next().map(|v| Refusal {
            code: v.code,
            detail: v.message,
        }),
        Err(Stop::Message(refusal)) => Some(refusal),
    };
    Ok(PrecheckReport {
        chars: input.message.chars().count() as u64,
        bytes: input.message.len() as u64,
        estimated_tokens: report.estimated_tokens,
        model,
        sanitized: report.sanitized,
        refusal,
    })
}

/// An answer as one compact JSON line, or the `internal` error line if it
/// does not serialize: what every JSON Lines engine prints.
pub fn json_line<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value)
        .unwrap_or_else(|e| ErrorReport::new("internal", &e.to_string()).to_json())
}

/// The error answer every engine gives: `{"error":{"code":...,"message":...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorReport {
    /// The error itself.
    pub error: ErrorDetail,
}

/// Code and message of an [`ErrorReport`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorDetail {
    /// Stable snake_case code.
    pub code: String,
    /// Human-readable explanation.
    pub message: String,
}

impl ErrorReport {
    /// Its compact JSON: the error line of every JSON Lines engine.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            r#"{"error":{"code":"internal","message":"error report failed to serialize"}}"#.into()
        })
    }

    /// An error answer with any code (engines add their own, e.g. `invalid_json`).
    pub fn new(code: &str, message: &str) -> Self {
        ErrorReport {
            error: ErrorDetail {
                code: code.to_string(),
                message: message.to_string(),
            },
        }
    }
}

impl From<&Error> for ErrorReport {
    fn from(e: &Error) -> Self {
        ErrorReport::new(e.code(), e.message())
    }
}

/// What a [`Checker`] is built from: every part optional (SPEC defaults).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CheckerOptions {
    /// The message checks' configuration.
    #[serde(default)]
    pub policy: Option<crate::policy::PolicyConfig>,
    /// A catalog, or the name of a preset ([`Catalog::PRESETS`]).
    #[serde(default)]
    pub catalog: Option<CatalogChoice>,
    /// Weights of the calibrated estimator (as a service publishes them).
    #[serde(default)]
    pub calibration: Option<Calibration>,
}

/// A catalog given whole or by preset name.
#[derive(Debug, Clone)]
pub enum CatalogChoice {
    /// A preset's name.
    Preset(String),
    /// A whole catalog.
    Catalog(Catalog),
}

/// A string is a preset's name, anything else a whole catalog. Written out
/// rather than `#[serde(untagged)]`, whose buffering costs the browser
/// package kilobytes and whose error names neither shape's problem.
impl<'de> Deserialize<'de> for CatalogChoice {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match Value::deserialize(d)? {
            Value::String(name) => Ok(CatalogChoice::Preset(name)),
            other => Catalog::deserialize(other)
                .map(CatalogChoice::Catalog)
                .map_err(serde::de::Error::custom),
        }
    }
}

/// The limits a client shows and enforces as it goes, from the policy and
/// the contract, so no page hard-codes them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Limits {
    /// Largest UTF-8 size of a message (SPEC 3 `too_large`).
    pub max_message_bytes: usize,
    /// Fewest code points of a message (SPEC 2 `too_short`).
    pub min_message_chars: usize,
    /// Most code points of a message (SPEC 2 `too_long`).
    pub max_message_chars: usize,
    /// Largest share of control code points (SPEC 3 `control_chars`).
    pub max_control_ratio: f64,
}

/// A policy, catalog and estimator compiled once, answering as the service
/// configured with them would: what a client builds from a server's
/// published configuration, so both decide alike.
#[derive(Debug, Clone)]
pub struct Checker {
    policy: Policy,
    catalog: Catalog,
    calibration: Option<Calibration>,
    limits: Limits,
}

impl Checker {
    /// Compiles `options`: `invalid_pattern` / `invalid_policy`,
    /// `invalid_catalog`, `invalid_argument` (weights) when they are wrong.
    pub fn new(options: &CheckerOptions) -> Result<Self, Error> {
        let config = options.policy.clone().unwrap_or_default();
        let policy = Policy::new(&config)?;
        let catalog = match &options.catalog {
            None => Catalog::spec_default(),
            Some(CatalogChoice::Preset(name)) => Catalog::preset(name)?,
            Some(CatalogChoice::Catalog(catalog)) => catalog.clone(),
        };
        catalog.validate()?;
        if let Some(c) = &options.calibration {
            c.validate()?;
        }
        Ok(Checker {
            policy,
            catalog,
            calibration: options.calibration,
            limits: Limits {
                max_message_bytes: config.max_message_bytes,
                min_message_chars: crate::contract::MESSAGE_MIN_CHARS,
                max_message_chars: crate::contract::MESSAGE_MAX_CHARS,
                max_control_ratio: config.max_control_ratio,
            },
        })
    }

    /// SPEC's policy and catalog, no calibration.
    pub fn spec_default() -> Result<Self, Error> {
        Self::new(&CheckerOptions::default())
    }

    /// The limits of this checker's policy and of the contract.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The catalog it selects from.
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// [`check_report`] under this policy.
    pub fn check(&self, message: &str) -> CheckReport {
        check_report(&self.policy, message)
    }

    /// [`precheck_report`] under this policy and catalog, its estimate
    /// the one [`Checker::estimate_tokens`] gives (calibrated when the
    /// checker has weights).
    pub fn precheck(&self, input: &PrecheckInput) -> Result<PrecheckReport, Error> {
        let mut report = precheck_report(&self.policy, &self.catalog, input)?;
        if self.calibration.is_some() {
            report.estimated_tokens = self.estimate_tokens(&input.message);
        }
        Ok(report)
    }

    /// [`screen`] under this policy.
    pub fn screen(&self, request_json: &str) -> Screening {
        screen(&self.policy, request_json)
    }

    /// [`body_report`] from this catalog.
    pub fn body(&self, input: &BodyInput) -> Result<BodyReport, Error> {
        body_report(&self.catalog, input)
    }

    /// The model chosen for `preference` and `message`.
    pub fn select(&self, preference: ModelPreference, message: &str) -> Result<ModelChoice, Error> {
        self.catalog.choice(preference, message)
    }

    /// Dollar cost of a call to catalog model `key`.
    pub fn cost(&self, key: &str, input_tokens: u64, output_tokens: u64) -> Result<f64, Error> {
        self.catalog.cost(key, input_tokens, output_tokens)
    }

    /// The estimate of a text a client shows: the calibrated one when the
    /// checker has weights, else SPEC 5's reference.
    pub fn estimate_tokens(&self, text: &str) -> u64 {
        match &self.calibration {
            Some(c) => c.estimate_text(text),
            None => crate::tokens::estimate_tokens_reference(text),
        }
    }
}

#[cfg(test)]
mod checker_tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    fn options(json: &str) -> CheckerOptions {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn a_checker_answers_with_its_own_policy_catalog_and_weights() {
        let c = Checker::new(&options(
            r#"{"policy":{"disallowedPatterns":["spoiler"],"maxMessageBytes":64},
                "catalog":"current-us",
                "calibration":{"kana":1.0,"kanji":2.0,"latinWord":1.0,"other":0.5,"perRequest":9.0}}"#,
        ))
        .unwrap();
        assert_eq!(
            c.check("no spoiler please").code.as_deref(),
            Some("disallowed_pattern")
        );
        assert!(c.check("<script>").valid, "only its own patterns");
        assert_eq!(c.check(&"a".repeat(65)).code.as_deref(), Some("too_large"));
        let limits = c.limits();
        assert_eq!(
            (limits.max_message_bytes, limits.max_message_chars),
            (64, 4000)
        );
        let body = c
            .body(&serde_json::from_str(r#"{"message":"hi","modelPreference":"quality"}"#).unwrap())
            .unwrap();
        assert_eq!(body.model.id, "us.anthropic.claude-sonnet-4-6");
        assert_eq!(c.estimate_tokens("漫画"), 4);
        let pre = c
            .precheck(&serde_json::from_str(r#"{"message":"漫画"}"#).unwrap())
            .unwrap();
        assert_eq!(
            pre.estimated_tokens, 4,
            "the precheck shows the calibrated estimate"
        );
        assert_eq!(c.cost("haiku", 1000, 0).unwrap(), 0.001);
        let spec = Checker::spec_default().unwrap();
        assert_eq!(spec.estimate_tokens("漫画"), 3);
        assert_eq!(spec.limits().max_message_bytes, 16_384);
    }

    #[test]
    fn bad_options_are_refused_with_their_codes() {
        let code = |json: &str| Checker::new(&options(json)).unwrap_err().code();
        assert_eq!(
            code(r#"{"policy":{"disallowedPatterns":["("]}}"#),
            "invalid_pattern"
        );
        assert_eq!(code(r#"{"catalog":"current-mars"}"#), "invalid_catalog");
        assert_eq!(
            code(r#"{"calibration":{"kana":-1,"kanji":1,"latinWord":1,"other":1,"perRequest":0}}"#),
            "invalid_argument"
        );
        assert!(serde_json::from_str::<CheckerOptions>(r#"{"polcy":{}}"#).is_err());
    }
}
