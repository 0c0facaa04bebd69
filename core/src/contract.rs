//! SPEC 2: the chat request contract, reporting every violation.
//!
//! The constants here are the single source of both [`validate_request`] and
//! the generated JSON Schema (`schema::request_schema`).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Allowed `action` values.
pub const ACTIONS: [&str; 3] = ["sendMessage", "getHistory", "clearSession"];
/// Allowed `data.preferredLanguage` values.
pub const LANGUAGES: [&str; 3] = ["ja", "en", "zh"];
/// Allowed `data.modelPreference` values.
pub const MODEL_PREFERENCES: [&str; 3] = ["auto", "fast", "quality"];
/// Bounds of `data.message`, in Unicode code points.
pub const MESSAGE_MIN_CHARS: usize = 1;
/// Upper bound of `data.message`, in Unicode code points.
pub const MESSAGE_MAX_CHARS: usize = 4000;
/// Lowercase UUID v4, as published in the schema.
pub const SESSION_ID_PATTERN: &str =
    "^[a-f0-9]{8}-[a-f0-9]{4}-4[a-f0-9]{3}-[89ab][a-f0-9]{3}-[a-f0-9]{12}$";
/// Properties allowed at the top level.
pub const TOP_LEVEL_PROPERTIES: [&str; 3] = ["action", "data", "metadata"];
/// Properties allowed in `data`.
pub const DATA_PROPERTIES: [&str; 4] = [
    "message",
    "sessionId",
    "preferredLanguage",
    "modelPreference",
];
/// Actions that need a `sessionId`.
pub const SESSION_ACTIONS: [&str; 2] = ["getHistory", "clearSession"];

/// One contract violation: where, which rule, and why.
///
/// Plain data with public fields, so a host can rebuild it from what an
/// engine answered (e.g. strings from the WebAssembly guest).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    /// JSON Pointer (RFC 6901) to the offending value, or to the missing one.
    pub path: String,
    /// Stable code: `wrong_type`, `required`, `unknown_property`,
    /// `not_in_enum`, `too_short`, `too_long`, `pattern_mismatch`.
    /// Borrowed here; owned when rebuilt from another engine's answer.
    pub code: Cow<'static, str>,
    /// Plain explanation.
    pub message: String,
}

/// Violations found so far: the first `limit` in full, the rest counted.
pub(crate) struct Report {
    listed: Vec<Violation>,
    limit: usize,
    total: usize,
}

impl Report {
    /// Starts a report that lists at most `limit` violations.
    pub(crate) fn new(limit: usize) -> Self {
        Report {
            listed: Vec::new(),
            limit,
            total: 0,
        }
    }

    /// The listed violations and how many there were in all.
    pub(crate) fn finish(self) -> (Vec<Violation>, usize) {
        (self.listed, self.total)
    }

    pub(crate) fn add(&mut self, path: &str, code: &'static str, message: String) {
        self.total += 1;
        if self.listed.len() < self.limit {
            self.listed.push(Violation {
                path: path.to_string(),
                code: Cow::Borrowed(code),
                message,
            });
        }
    }

    /// Whether further violations are only counted (so their text need
    /// not be built: thousands of unknown properties cost a count each).
    fn full(&self) -> bool {
        self.listed.len() >= self.limit
    }
}

/// RFC 6901 escaping of one reference token.
pub(crate) fn pointer(parent: &str, key: &str) -> String {
    format!("{parent}/{}", key.replace('~', "~0").replace('/', "~1"))
}

pub(crate) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

pub(crate) fn expect_object<'v>(
    r: &mut Report,
    path: &str,
    v: &'v Value,
) -> Option<&'v Map<String, Value>> {
    match v {
        Value::Object(m) => Some(m),
        other => {
            r.add(
                path,
                "wrong_type",
                format!("expected an object, got {}", type_name(other)),
            );
            None
        }
    }
}

pub(crate) fn expect_string<'v>(r: &mut Report, path: &str, v: &'v Value) -> Option<&'v str> {
    match v {
        Value::String(s) => Some(s),
        other => {
            r.add(
                path,
                "wrong_type",
                format!("expected a string, got {}", type_name(other)),
            );
            None
        }
    }
}

pub(crate) fn unknown_properties(
    r: &mut Report,
    path: &str,
    m: &Map<String, Value>,
    allowed: &[&str],
) {
    let mut unknown: Vec<&String> = m
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .collect();
    unknown.sort();
    for key in unknown {
        if r.full() {
            r.total += 1;
            continue;
        }
        r.add(
            &pointer(path, key),
            "unknown_property",
            format!(
                "unknown property \"{key}\"; allowed: {}",
                allowed.join(", ")
            ),
        );
    }
}

pub(crate) fn enum_member(
    r: &mut Report,
    path: &str,
    v: &Value,
    allowed: &[&str],
) -> Option<usize> {
    let s = expect_string(r, path, v)?;
    let found = allowed.iter().position(|a| *a == s);
    if found.is_none() {
        r.add(
            path,
            "not_in_enum",
            format!("\"{s}\" is not one of {}", allowed.join(", ")),
        );
    }
    found
}

pub(crate) fn required(r: &mut Report, path: &str, what: &str) {
    r.add(path, "required", format!("{what} is required"));
}

/// Lowercase UUID version 4, the same language as [`SESSION_ID_PATTERN`].
pub fn is_session_id(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 36
        && b.iter().enumerate().all(|(i, &c)| match i {
            8 | 13 | 18 | 23 => c == b'-',
            14 => c == b'4',
            19 => matches!(c, b'8' | b'9' | b'a' | b'b'),
            _ => c.is_ascii_digit() || (b'a'..=b'f').contains(&c),
        })
}

/// Validates a chat request document; an empty list means it is valid.
pub fn validate_request(doc: &Value) -> Vec<Violation> {
    validate_request_first(doc, usize::MAX).0
}

/// The first `limit` violations of a chat request document (in the order
/// [`validate_request`] lists them) and how many there are in all.
pub fn validate_request_first(doc: &Value, limit: usize) -> (Vec<Violation>, usize) {
    let mut r = Report {
        listed: Vec::new(),
        limit,
        total: 0,
    };
    check_request(&mut r, doc);
    (r.listed, r.total)
}

fn check_request(r: &mut Report, doc: &Value) {
    let Some(top) = expect_object(r, "", doc) else {
        return;
    };
    unknown_properties(r, "", top, &TOP_LEVEL_PROPERTIES);

    let action = match top.get("action") {
        None => {
            required(r, "/action", "action");
            None
        }
        Some(v) => enum_member(r, "/action", v, &ACTIONS).and_then(|i| ACTIONS.get(i).copied()),
    };

    match top.get("data") {
        None => required(r, "/data", "data"),
        Some(v) => {
            if let Some(data) = expect_object(r, "/data", v) {
                validate_data(r, data, action);
            }
        }
    }

    if let Some(v) = top.get("metadata")
        && let Some(meta) = expect_object(r, "/metadata", v)
    {
        if let Some(cv) = meta.get("clientVersion") {
            expect_string(r, "/metadata/clientVersion", cv);
        }
        if let Some(ts) = meta.get("timestamp")
            && !matches!(ts, Value::Number(n) if n.is_i64() || n.is_u64())
        {
            r.add(
                "/metadata/timestamp",
                "wrong_type",
                format!("expected an integer, got {}", type_name(ts)),
            );
        }
    }
}

fn validate_data(r: &mut Report, data: &Map<String, Value>, action: Option<&str>) {
    unknown_properties(r, "/data", data, &DATA_PROPERTIES);
    match data.get("message") {
        None if action == Some("sendMessage") => {
            required(r, "/data/message", "data.message (for sendMessage)");
        }
        None => {}
        Some(v) => {
            if let Some(s) = expect_string(r, "/data/message", v) {
                let n = s.chars().count();
                if n < MESSAGE_MIN_CHARS {
                    r.add(
                        "/data/message",
                        "too_short",
                        format!("message must have at least {MESSAGE_MIN_CHARS} character"),
                    );
                } else if n > MESSAGE_MAX_CHARS {
                    r.add(
                        "/data/message",
                        "too_long",
                        format!(
                            "message has {n} characters, over the limit of {MESSAGE_MAX_CHARS}"
                        ),
                    );
                }
            }
        }
    }
    match data.get("sessionId") {
        None if action.is_some_and(|a| SESSION_ACTIONS.contains(&a)) => {
            required(
                r,
                "/data/sessionId",
                "data.sessionId (for getHistory and clearSession)",
            );
        }
        None => {}
        Some(v) => {
            if let Some(s) = expect_string(r, "/data/sessionId", v)
                && !is_session_id(s)
            {
                r.add(
                    "/data/sessionId",
                    "pattern_mismatch",
                    "sessionId must be a lowercase UUID version 4".to_string(),
                );
            }
        }
    }
    if let Some(v) = data.get("preferredLanguage") {
        enum_member(r, "/data/preferredLanguage", v, &LANGUAGES);
    }
    if let Some(v) = data.get("modelPreference") {
        enum_member(r, "/data/modelPreference", v, &MODEL_PREFERENCES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn codes(doc: Value) -> Vec<(String, &'static str)> {
        validate_request(&doc)
            .into_iter()
            .map(|v| match v.code {
                Cow::Borrowed(code) => (v.path, code),
                Cow::Owned(code) => panic!("the validator owns code {code}"),
            })
            .collect()
    }

    #[test]
    fn a_violation_round_trips_through_json() {
        let v = Violation {
            path: "/data/message".into(),
            code: Cow::Owned("too_long".to_string()),
            message: "m".into(),
        };
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(
            text,
            r#"{"path":"/data/message","code":"too_long","message":"m"}"#
        );
        assert_eq!(serde_json::from_str::<Violation>(&text).unwrap(), v);
    }

    #[test]
    fn valid_requests_pass() {
        assert!(
            codes(json!({"action": "sendMessage", "data": {"message": "こんにちは"}})).is_empty()
        );
        assert!(
            codes(json!({"action": "getHistory",
            "data": {"sessionId": "123e4567-e89b-42d3-a456-426614174000"}}))
            .is_empty()
        );
    }

    #[test]
    fn every_violation_is_reported() {
        let got = codes(json!({"action": "dance", "x/y": 1,
            "data": {"message": "", "sessionId": "NOPE", "preferredLanguage": "fr", "z": 0},
            "metadata": {"timestamp": 1.5}}));
        assert_eq!(
            got,
            vec![
                ("/x~1y".to_string(), "unknown_property"),
                ("/action".to_string(), "not_in_enum"),
                ("/data/z".to_string(), "unknown_property"),
                ("/data/message".to_string(), "too_short"),
                ("/data/sessionId".to_string(), "pattern_mismatch"),
                ("/data/preferredLanguage".to_string(), "not_in_enum"),
                ("/metadata/timestamp".to_string(), "wrong_type"),
            ]
        );
    }

    #[test]
    fn conditional_requirements() {
        assert_eq!(
            codes(json!({"action": "sendMessage", "data": {}})),
            vec![("/data/message".to_string(), "required")]
        );
        assert_eq!(
            codes(json!({"action": "clearSession", "data": {}})),
            vec![("/data/sessionId".to_string(), "required")]
        );
        assert_eq!(codes(json!([])), vec![(String::new(), "wrong_type")]);
    }
}
