//! Admission of a chat request (SPEC 2–4, 10): whether the service takes
//! it, or which refusal it answers with, in the order
//! [`crate::verdict`] decides for it and the widget's pre-check alike.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::contract::{Violation, validate_request_first};
use crate::models::ModelPreference;
use crate::policy::Policy;
use crate::tokens::estimate_tokens_reference;
use crate::verdict::{Refusal, Stop, check_report, first_stop};

/// Code of a request text that is not JSON (HTTP 400).
pub const INVALID_JSON: &str = "invalid_json";
/// Code of a contract-valid request whose typed form cannot be read: a core
/// bug (the contract and the typed form disagree), never a client's fault.
pub const INVALID_REQUEST: &str = "invalid_request";
/// Contract violations listed at most; the rest are only counted, so a body
/// of thousands of unknown properties costs a bounded answer.
pub const MAX_LISTED_VIOLATIONS: usize = 50;

/// `action` of a chat request (SPEC 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Action {
    /// Ask the assistant; the only action whose message is checked.
    SendMessage,
    /// Read a session's turns.
    GetHistory,
    /// Forget a session's turns.
    ClearSession,
}

/// A request the service takes, in typed form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScreenedRequest {
    /// What to do.
    pub action: Action,
    /// `data.sessionId` as sent (always present for the history actions).
    pub session_id: Option<String>,
    /// The SPEC 4 form of `data.message` for `sendMessage`, never empty;
    /// empty for the other actions, whose message is ignored.
    pub message: String,
    /// `data.modelPreference`, `auto` when absent.
    pub model_preference: ModelPreference,
    /// SPEC 5 reference estimate of `message` (the sanitized text, the one
    /// sent to the model and measured by `auto` selection).
    pub estimated_tokens: u64,
}

/// The service's decision on a request text, tagged by `outcome`.
///
/// JSON (camelCase), one of:
/// - `{"outcome":"invalid","code":"invalid_json","message":...}`: not JSON
///   (400);
/// - `{"outcome":"contract","violations":[{"path","code","message"},...]}`:
///   the SPEC 2 violations (400), the first [`MAX_LISTED_VIOLATIONS`] of
///   them, with `"omitted": n` after the list when there were more;
/// - `{"outcome":"refused","code":...,"detail":...}`: the first failing SPEC 3
///   check of a `sendMessage`, else `empty_message` (422);
/// - `{"outcome":"accepted","action":...,"sessionId":...,"message":...,
///   "modelPreference":...,"estimatedTokens":...}`: see [`ScreenedRequest`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum Screening {
    /// The text could not be read as a request.
    Invalid {
        /// [`INVALID_JSON`] (or [`INVALID_REQUEST`], see there).
        code: Cow<'static, str>,
        /// The parser's explanation.
        message: String,
    },
    /// The request breaks the contract.
    Contract {
        /// The first violations (never empty, at most
        /// [`MAX_LISTED_VIOLATIONS`]).
        violations: Vec<Violation>,
        /// How many more there were.
        #[serde(default, skip_serializing_if = "is_zero")]
        omitted: u64,
    },
    /// The message is refused.
    Refused(Refusal),
    /// The service takes the request.
    Accepted(ScreenedRequest),
}

/// The typed reading of a request; borrows from the parsed document.
#[derive(Deserialize)]
struct RequestDoc<'a> {
    action: Action,
    #[serde(borrow)]
    data: DataDoc<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DataDoc<'a> {
    #[serde(default, borrow)]
    message: Option<&'a str>,
    #[serde(default, borrow)]
    session_id: Option<&'a str>,
    #[serde(default)]
    model_preference: ModelPreference,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Screens a chat request text as the service does before doing anything
/// with it: parsed once, then contract, message checks and sanitizing, in
/// the service's order.
pub fn screen(policy: &Policy, request_json: &str) -> Screening {
    let doc: Value = match serde_json::from_str(request_json) {
        Ok(doc) => doc,
        Err(e) => {
            return Screening::Invalid {
                code: Cow::Borrowed(INVALID_JSON),
                message: e.to_string(),
            };
        }
    };
    let (violations, total) = validate_request_first(&doc, MAX_LISTED_VIOLATIONS);
    // Read even when the contract fails (then unused): cheap, and it keeps
    // the order decision in `first_stop` alone.
    let typed = RequestDoc::deserialize(&doc);
    let sent = || match &typed {
        Ok(r) if r.action == Action::SendMessage => {
            Some(check_report(policy, r.data.message.unwrap_or_default()))
        }
        _ => None,
    };
    let report = match first_stop(violations, sent) {
        Err(Stop::Contract(violations)) => {
            let omitted = total.saturating_sub(violations.len()) as u64;
            return Screening::Contract {
                violations,
                omitted,
            };
        }
        Err(Stop::Message(refusal)) => return Screening::Refused(refusal),
        Ok(report) => report,
    };
    match typed {
        Ok(r) => {
            let message = report.map(|r| r.sanitized).unwrap_or_default();
            Screening::Accepted(ScreenedRequest {
                action: r.action,
                session_id: r.data.session_id.map(str::to_string),
                estimated_tokens: estimate_tokens_reference(&message),
                message,
                model_preference: r.data.model_preference,
            })
        }
        Err(e) => Screening::Invalid {
            code: Cow::Borrowed(INVALID_REQUEST),
            message: format!("the request keeps the contract but cannot be read: {e}"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::EMPTY_MESSAGE;
    use serde_json::json;

    const SID: &str = "123e4567-e89b-42d3-a456-426614174000";

    fn policy() -> Policy {
        Policy::spec_default().unwrap()
    }

    fn screened(doc: &Value) -> Screening {
        screen(&policy(), &doc.to_string())
    }

    #[test]
    fn not_json_is_invalid_with_serde_json_text() {
        let expected = serde_json::from_str::<Value>("{\"action\":")
            .unwrap_err()
            .to_string();
        assert_eq!(
            screen(&policy(), "{\"action\":"),
            Screening::Invalid {
                code: Cow::Borrowed("invalid_json"),
                message: expected.clone(),
            }
        );
        assert_eq!(
            serde_json::to_string(&screen(&policy(), "{\"action\":")).unwrap(),
            format!(
                r#"{{"outcome":"invalid","code":"invalid_json","message":{}}}"#,
                Value::String(expected)
            )
        );
        let empty = screen(&policy(), "");
        assert!(matches!(empty, Screening::Invalid { ref code, .. } if code == "invalid_json"));
    }

    #[test]
    fn the_contract_comes_before_the_message() {
        let got = screened(&json!({"action": "sendMessage",
            "data": {"message": "<script>", "sessionId": "x", "preferredLanguage": "fr"}}));
        let Screening::Contract { violations, .. } = got else {
            panic!("expected the contract outcome, got {got:?}")
        };
        let codes: Vec<&str> = violations.iter().map(|v| v.code.as_ref()).collect();
        assert_eq!(codes, ["pattern_mismatch", "not_in_enum"]);
    }

    #[test]
    fn at_most_fifty_violations_are_listed_and_the_rest_counted() {
        let mut data = serde_json::Map::new();
        for i in 0..1234 {
            data.insert(format!("x{i}"), json!(1));
        }
        let got = screened(&json!({"action": "getHistory", "data": data}));
        let Screening::Contract {
            violations,
            omitted,
        } = &got
        else {
            panic!("expected the contract outcome, got {got:?}")
        };
        assert_eq!(violations.len(), MAX_LISTED_VIOLATIONS);
        // 1234 unknown properties and the missing sessionId.
        assert_eq!(*omitted, 1235 - 50);
        let text = serde_json::to_string(&got).unwrap();
        assert!(text.ends_with(r#","omitted":1185}"#), "{text}");
        let few = screened(&json!({"action": "getHistory", "data": {}}));
        assert!(!serde_json::to_string(&few).unwrap().contains("omitted"));
    }

    #[test]
    fn checks_then_empty_for_send_message_only() {
        let refused =
            |m: &str| match screened(&json!({"action": "sendMessage", "data": {"message": m}})) {
                Screening::Refused(r) => r.code.into_owned(),
                other => panic!("{m:?}: {other:?}"),
            };
        assert_eq!(refused("hi\0<script>"), "null_byte");
        assert_eq!(refused("<script>"), "disallowed_pattern");
        assert_eq!(refused("\u{3000} \t"), EMPTY_MESSAGE);
        // Removed by sanitizing yet not controls (Zl, Zp, Zs): nothing left.
        assert_eq!(refused("\u{2028}\u{2029}\u{202F}"), EMPTY_MESSAGE);
        // Zero-width spaces are Cf: the control check refuses them first.
        assert_eq!(refused("\u{200B}\u{200B}"), "control_chars");
        let history = screened(&json!({"action": "getHistory",
            "data": {"sessionId": SID, "message": "<script>"}}));
        assert_eq!(
            history,
            Screening::Accepted(ScreenedRequest {
                action: Action::GetHistory,
                session_id: Some(SID.into()),
                message: String::new(),
                model_preference: ModelPreference::Auto,
                estimated_tokens: 0,
            })
        );
    }

    #[test]
    fn accepted_carries_the_sanitized_message() {
        let got = screened(&json!({"action": "sendMessage",
            "data": {"message": "  か\u{3099}んは\u{309A}る\u{3000}", "modelPreference": "quality"},
            "metadata": {"clientVersion": "1"}}));
        let expected = ScreenedRequest {
            action: Action::SendMessage,
            session_id: None,
            message: "がんぱる".into(),
            model_preference: ModelPreference::Quality,
            estimated_tokens: 6,
        };
        assert_eq!(got, Screening::Accepted(expected));
        assert_eq!(
            serde_json::to_string(&got).unwrap(),
            r#"{"outcome":"accepted","action":"sendMessage","sessionId":null,"message":"がんぱる","modelPreference":"quality","estimatedTokens":6}"#
        );
    }

    #[test]
    fn every_outcome_round_trips_through_json() {
        for text in [
            "nope".to_string(),
            json!({"action": "dance"}).to_string(),
            json!({"action": "sendMessage", "data": {"message": "\u{0}"}}).to_string(),
            json!({"action": "clearSession", "data": {"sessionId": SID}}).to_string(),
        ] {
            let s = screen(&policy(), &text);
            let back: Screening =
                serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
            assert_eq!(back, s, "{text}");
        }
    }
}
