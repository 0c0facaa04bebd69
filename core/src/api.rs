//! The JSON shapes every engine answers with (SPEC 11), built here so the
//! CLI, the npm package and the wasmtime guest only serialize them.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::body::{BodySettings, ClaudeBody, DEFAULT_SYSTEM_PROMPT, Turn, build_body};
use crate::cache_key::cache_key;
use crate::error::Error;
use crate::models::{Catalog, ModelPreference};
use crate::policy::Policy;
use crate::sanitize::sanitize_scanned;
use crate::scan::Scan;

/// Input of `check`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CheckInput {
    /// The raw message.
    pub message: String,
}

/// Answer of `check`: the verdict on the raw message, plus its prompt form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    /// No check failed.
    pub valid: bool,
    /// Code of the first failing check.
    pub code: Option<&'static str>,
    /// Explanation of the first failing check.
    pub detail: Option<String>,
    /// SPEC 4 form of the message.
    pub sanitized: String,
    /// SPEC 5 reference estimate of the message as given.
    pub estimated_tokens: u64,
}

/// Runs checks, sanitize and estimate on one message.
///
/// The message is decoded once ([`Scan`]) for all three.
pub fn check_report(policy: &Policy, message: &str) -> CheckReport {
    let scan = Scan::of(message);
    let verdict = policy.check_with(message, || scan);
    CheckReport {
        valid: verdict.is_ok(),
        code: verdict.as_ref().err().map(|r| r.code()),
        detail: verdict.err().map(|r| r.detail().to_string()),
        sanitized: sanitize_scanned(message, &scan),
        estimated_tokens: scan.tokens.reference_estimate(),
    }
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
}

/// The model a body is meant for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ModelChoice {
    /// Catalog key, e.g. `haiku`.
    pub key: String,
    /// Bedrock model id.
    pub id: String,
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
    let key = catalog.select(input.model_preference, &input.message);
    let spec = catalog.get(key)?;
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
        model: ModelChoice {
            key: key.to_string(),
            id: spec.model_id.clone(),
        },
        cache_key: cache_key(&as_json)?,
        body,
    })
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
