//! A message's verdict ([`check_report`]) and the order in which the service
//! refuses a request ([`first_stop`]): the contract first, then the message
//! checks, then an empty sanitized message. Written once, used by
//! [`crate::screen`] (the service) and [`crate::api::precheck_report`] (the
//! widget), so they cannot drift apart.

use std::borrow::{Borrow, Cow};

use serde::{Deserialize, Serialize};

use crate::contract::Violation;
use crate::policy::Policy;
use crate::sanitize::sanitize_scanned;
use crate::scan::Scan;

/// Answer of `check`: the verdict on the raw message, plus its prompt form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    /// No check failed.
    pub valid: bool,
    /// Code of the first failing check; borrowed here, owned when rebuilt
    /// from another engine's answer.
    pub code: Option<Cow<'static, str>>,
    /// Explanation of the first failing check.
    pub detail: Option<String>,
    /// SPEC 4 form of the message.
    pub sanitized: String,
    /// SPEC 5 reference estimate of the message as given.
    pub estimated_tokens: u64,
}

/// Runs checks, sanitize and estimate on one message.
///
/// The message is decoded once (a `Scan`) for all three.
pub fn check_report(policy: &Policy, message: &str) -> CheckReport {
    let scan = Scan::of(message);
    let verdict = policy.check_with(message, || scan);
    CheckReport {
        valid: verdict.is_ok(),
        code: verdict.as_ref().err().map(|r| Cow::Borrowed(r.code())),
        detail: verdict.err().map(|r| r.detail().to_string()),
        sanitized: sanitize_scanned(message, &scan),
        estimated_tokens: scan.tokens.reference_estimate(),
    }
}

/// Why a message would be refused, and in words.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// A contract violation code, a check code, or `empty_message`.
    pub code: Cow<'static, str>,
    /// Plain explanation.
    pub detail: String,
}

/// Code of a message that is empty once sanitized.
pub const EMPTY_MESSAGE: &str = "empty_message";
/// Explanation of [`EMPTY_MESSAGE`].
pub const EMPTY_MESSAGE_DETAIL: &str =
    "the message is empty once invisible characters and outer whitespace are removed";

/// Where the service stops a request.
pub(crate) enum Stop {
    /// Every contract violation (400), never empty.
    Contract(Vec<Violation>),
    /// The first failing message check, or nothing left to send (422).
    Message(Refusal),
}

/// The refusal order, the one place it is decided: the contract first, then,
/// only when the action sends a message, that message's first failing check,
/// then an empty sanitized message.
///
/// `sent` gives the check report of the message the action sends (`None`
/// when it sends none); it runs only when the contract holds. On acceptance
/// its report is handed back.
pub(crate) fn first_stop<R: Borrow<CheckReport>>(
    violations: Vec<Violation>,
    sent: impl FnOnce() -> Option<R>,
) -> Result<Option<R>, Stop> {
    if !violations.is_empty() {
        return Err(Stop::Contract(violations));
    }
    let report = sent();
    if let Some(r) = report.as_ref().map(Borrow::borrow) {
        if let Some(code) = &r.code {
            return Err(Stop::Message(Refusal {
                code: code.clone(),
                detail: r.detail.clone().unwrap_or_default(),
            }));
        }
        if r.sanitized.is_empty() {
            return Err(Stop::Message(Refusal {
                code: Cow::Borrowed(EMPTY_MESSAGE),
                detail: EMPTY_MESSAGE_DETAIL.into(),
            }));
        }
    }
    Ok(report)
}
