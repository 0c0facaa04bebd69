//! `screen` and `precheck` decide with the same refusal order, and `screen`
//! reads every contract-valid request into its typed form.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a failed expectation is the test failing"
)]

use mangaassist_core::api::{Action, PrecheckInput, Refusal, Screening, precheck_report, screen};
use mangaassist_core::contract::validate_request;
use mangaassist_core::models::Catalog;
use mangaassist_core::policy::Policy;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

const SID: &str = "123e4567-e89b-42d3-a456-426614174000";

/// Messages that reach every branch: checks, emptiness, the length limit.
fn message() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("漫画".to_string()),
        Just("hi".to_string()),
        Just(" ".to_string()),
        Just("\u{3000}".to_string()),
        Just("\u{200B}".to_string()),
        Just("\u{2028}".to_string()),
        Just("\0".to_string()),
        Just("<script>".to_string()),
        Just("Ж".to_string()),
        Just("か\u{3099}".to_string()),
        Just("a".repeat(2500)),
    ];
    proptest::collection::vec(piece, 0..6).prop_map(|v| v.concat())
}

fn optional(values: &'static [&'static str]) -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![Just(None), proptest::sample::select(values).prop_map(Some)]
}

/// Requests built from the fields `precheck` models, valid or not.
fn request() -> impl Strategy<
    Value = (
        Value,
        Option<String>,
        Option<&'static str>,
        Option<&'static str>,
    ),
> {
    (
        proptest::sample::select(&["sendMessage", "getHistory", "clearSession", "dance"][..]),
        proptest::option::of(message()),
        optional(&[SID, "nope"]),
        optional(&["auto", "fast", "quality", "best"]),
    )
        .prop_map(|(action, message, session, preference)| {
            let mut data = Map::new();
            if let Some(m) = &message {
                data.insert("message".into(), json!(m));
            }
            if let Some(s) = session {
                data.insert("sessionId".into(), json!(s));
            }
            if let Some(p) = preference {
                data.insert("modelPreference".into(), json!(p));
            }
            let doc = json!({"action": action, "data": data});
            (doc, message, session, preference)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    #[test]
    fn screen_and_precheck_refuse_alike((doc, message, session, preference) in request()) {
        let policy = Policy::spec_default().unwrap();
        let screening = screen(&policy, &doc.to_string());
        let violations = validate_request(&doc);

        // Contract outcome exactly when the contract fails, with every violation.
        match &screening {
            Screening::Contract { violations: got, omitted } => {
                prop_assert_eq!(got.as_slice(), &violations[..got.len()]);
                prop_assert_eq!(got.len() as u64 + omitted, violations.len() as u64);
            }
            Screening::Invalid { code, message } => {
                prop_assert!(false, "a JSON request is never invalid: {} {}", code, message)
            }
            _ => prop_assert!(violations.is_empty()),
        }

        // For a sendMessage, precheck shows the first refusal screen gives.
        if doc["action"] == "sendMessage" && let Some(message) = message {
            let pre = precheck_report(&policy, &Catalog::spec_default(), &PrecheckInput {
                message,
                session_id: session.map(str::to_string),
                model_preference: preference.map(str::to_string),
            }).unwrap();
            let first: Option<Refusal> = match &screening {
                Screening::Contract { violations, .. } => violations.first().map(|v| Refusal {
                    code: v.code.clone(),
                    detail: v.message.clone(),
                }),
                Screening::Refused(r) => Some(r.clone()),
                Screening::Accepted(r) => {
                    prop_assert_eq!(r.action, Action::SendMessage);
                    prop_assert_eq!(&r.message, &pre.sanitized);
                    None
                }
                Screening::Invalid { .. } => unreachable!("excluded above"),
            };
            prop_assert_eq!(pre.refusal, first);
        }
    }
}
