//! The five message checks of SPEC 3, as a policy value.
//!
//! A [`Policy`] is built once from a [`PolicyConfig`] (patterns compiled
//! then) and applied many times; it holds no mutable state.

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::pattern::PatternList;
use crate::pyjson::python_float;
use crate::scan::Scan;

/// SPEC 3 defaults.
pub const DEFAULT_MAX_MESSAGE_BYTES: usize = 16_384;
/// SPEC 3 default share of control code points above which a message is refused.
pub const DEFAULT_MAX_CONTROL_RATIO: f64 = 0.05;
/// SPEC 3 default disallowed patterns, in reporting order.
pub const DEFAULT_DISALLOWED_PATTERNS: [&str; 6] = [
    r"<script\b",
    r"javascript:",
    r"\{\{.*\}\}",
    r"__import__",
    r"os\.system",
    r"subprocess\.",
];

/// The tunable part of the message checks, as configuration data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Largest accepted UTF-8 length of a message, in bytes.
    pub max_message_bytes: usize,
    /// Patterns refused anywhere in a message (case-insensitive).
    pub disallowed_patterns: Vec<String>,
    /// A message is refused when its control count exceeds `len × ratio`.
    pub max_control_ratio: f64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            max_message_bytes: DEFAULT_MAX_MESSAGE_BYTES,
            disallowed_patterns: DEFAULT_DISALLOWED_PATTERNS
                .iter()
                .map(|p| (*p).to_string())
                .collect(),
            max_control_ratio: DEFAULT_MAX_CONTROL_RATIO,
        }
    }
}

/// A compiled message policy.
#[derive(Debug, Clone)]
pub struct Policy {
    max_message_bytes: usize,
    max_control_ratio: f64,
    patterns: PatternList,
}

/// Why a message was refused: a stable code and a plain explanation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    code: &'static str,
    detail: String,
}

impl Rejection {
    fn new(code: &'static str, detail: String) -> Self {
        Rejection { code, detail }
    }
    /// One of `too_large`, `null_byte`, `disallowed_pattern`, `control_chars`, `mixed_script`.
    pub fn code(&self) -> &'static str {
        self.code
    }
    /// Human-readable explanation naming the offending measure.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl Policy {
    /// Compiles a policy; fails with `invalid_pattern` or `invalid_policy`.
    pub fn new(config: &PolicyConfig) -> Result<Self, Error> {
        let ratio = config.max_control_ratio;
        if !(0.0..=1.0).contains(&ratio) {
            return Err(Error::invalid_policy(format!(
                "maxControlRatio must be between 0 and 1, got {}",
                python_float(ratio)
            )));
        }
        Ok(Policy {
            max_message_bytes: config.max_message_bytes,
            max_control_ratio: ratio,
            patterns: PatternList::new(&config.disallowed_patterns)?,
        })
    }

    /// The SPEC defaults. Fails only if a default pattern stopped compiling,
    /// which the tests rule out; callers still report it rather than panic.
    pub fn spec_default() -> Result<Self, Error> {
        Self::new(&PolicyConfig::default())
    }

    /// Runs the checks in SPEC order on the raw message; the first failure decides.
    pub fn check(&self, message: &str) -> Result<(), Rejection> {
        self.check_with(message, || Scan::of(message))
    }

    /// [`Policy::check`] with the message's scan made by the caller, or on demand.
    pub(crate) fn check_with(
        &self,
        message: &str,
        scan: impl FnOnce() -> Scan,
    ) -> Result<(), Rejection> {
        let bytes = message.len();
        if bytes > self.max_message_bytes {
            return Err(Rejection::new(
                "too_large",
                format!(
                    "message is {bytes} bytes in UTF-8, over the limit of {} bytes",
                    self.max_message_bytes
                ),
            ));
        }
        if message.contains('\0') {
            return Err(Rejection::new(
                "null_byte",
                "message contains a null character (U+0000)".to_string(),
            ));
        }
        if let Some(pattern) = self.patterns.first_match(message) {
            return Err(Rejection::new(
                "disallowed_pattern",
                format!("message contains the disallowed pattern {pattern}"),
            ));
        }
        let Scan {
            chars: len,
            controls,
            cjk,
            cyrillic,
            ..
        } = scan();
        // Same floating-point comparison as the reference (`count > len * 0.05`),
        // so the threshold agrees with it at every length.
        #[allow(clippy::cast_precision_loss, reason = "lengths are far below 2^53")]
        if controls as f64 > len as f64 * self.max_control_ratio {
            return Err(Rejection::new(
                "control_chars",
                format!(
                    "message has {controls} control or unassigned code points out of {len}, \
                     over the allowed ratio of {}",
                    python_float(self.max_control_ratio)
                ),
            ));
        }
        if cjk && cyrillic {
            return Err(Rejection::new(
                "mixed_script",
                "message mixes CJK (kana or ideographs) and Cyrillic characters".to_string(),
            ));
        }
        Ok(())
    }

    /// The disallowed patterns, in reporting order.
    pub fn patterns(&self) -> &[String] {
        self.patterns.sources()
    }
}
