//! Targets over the core alone: message checks, the request contract, the
//! cache key, the body builder, policies from arbitrary patterns.

use std::sync::OnceLock;

use arbitrary::{Arbitrary, Unstructured};
use mangaassist_core::api::check_report;
use mangaassist_core::body::{BodySettings, Turn, build_body};
use mangaassist_core::cache_key::{cache_key as key_of, cache_key_payload};
use mangaassist_core::contract::{validate_request, validate_request_first};
use mangaassist_core::policy::{Policy, PolicyConfig};
use mangaassist_core::sanitize::sanitize;
use serde_json::Value;
use sha2::{Digest, Sha256};

const CHECK_CODES: &[&str] = &[
    "too_large",
    "null_byte",
    "disallowed_pattern",
    "control_chars",
    "mixed_script",
];

const CONTRACT_CODES: &[&str] = &[
    "wrong_type",
    "required",
    "unknown_property",
    "not_in_enum",
    "too_short",
    "too_long",
    "pattern_mismatch",
];

/// SPEC 4's trimmed whitespace and removed invisibles, written out here
/// from SPEC rather than taken from the core.
fn is_spec_whitespace(c: char) -> bool {
    matches!(c, '\u{9}'..='\u{D}' | '\u{1C}'..='\u{20}' | '\u{85}' | '\u{A0}' | '\u{1680}'
        | '\u{2000}'..='\u{200A}' | '\u{2028}' | '\u{2029}' | '\u{202F}' | '\u{205F}' | '\u{3000}')
}

fn is_spec_removed(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202F}' | '\u{FEFF}')
}

fn default_policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| match Policy::spec_default() {
        Ok(p) => p,
        Err(e) => panic!("the SPEC default policy does not build: {e}"),
    })
}

/// `check` of arbitrary text: a known code with a detail, or valid; size
/// and NUL decided as SPEC 3 orders them; sanitize idempotent and trimmed;
/// the estimate within 1.5 tokens per code point.
pub fn check(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let report = check_report(default_policy(), text);
    match (&report.code, &report.detail) {
        (None, None) => assert!(report.valid),
        (Some(code), Some(detail)) => {
            assert!(!report.valid);
            assert!(CHECK_CODES.contains(&code.as_ref()), "unknown code {code}");
            assert!(!detail.is_empty());
        }
        other => panic!("code and detail must come together: {other:?}"),
    }
    let too_large = text.len() > 16_384;
    assert_eq!(report.code.as_deref() == Some("too_large"), too_large);
    if !too_large {
        assert_eq!(
            report.code.as_deref() == Some("null_byte"),
            text.contains('\0')
        );
    }
    let chars = text.chars().count() as u64;
    assert!(report.estimated_tokens <= chars * 3 / 2, "{report:?}");

    let once = &report.sanitized;
    assert_eq!(&sanitize(text), once, "check and sanitize disagree");
    assert_eq!(&sanitize(once), once, "sanitize is not idempotent");
    assert!(!once.chars().any(is_spec_removed), "an invisible survived");
    assert!(!once.starts_with(is_spec_whitespace) && !once.ends_with(is_spec_whitespace));
}

/// The request contract on arbitrary JSON: known codes, JSON Pointer paths,
/// and the first-N form a prefix of the whole list with the right total.
pub fn contract(data: &[u8]) {
    let Ok(doc) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let all = validate_request(&doc);
    for v in &all {
        assert!(CONTRACT_CODES.contains(&v.code.as_ref()), "{v:?}");
        assert!(v.path.is_empty() || v.path.starts_with('/'), "{v:?}");
        assert!(!v.message.is_empty());
        // The path names a value of the document, or one that is missing
        // under an existing parent.
        if v.code != "required" {
            assert!(doc.pointer(&v.path).is_some(), "{v:?} points nowhere");
        }
    }
    let limit = data.first().map_or(0, |b| usize::from(b % 8));
    let (first, total) = validate_request_first(&doc, limit);
    assert_eq!(total, all.len());
    assert_eq!(first.as_slice(), &all[..limit.min(all.len())]);
}

/// The cache key of an arbitrary JSON body: an error for a non-object;
/// otherwise 16 lowercase hex digits of SHA-256 over a payload that holds
/// no raw control character (Python escapes those even with
/// `ensure_ascii=False`) and reads back as the body's three stable fields.
pub fn cache_key(data: &[u8]) {
    let Ok(body) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let (payload, key) = match (cache_key_payload(&body), key_of(&body)) {
        (Ok(p), Ok(k)) => (p, k),
        (Err(a), Err(b)) => {
            assert!(!body.is_object());
            assert_eq!((a.code(), b.code()), ("invalid_body", "invalid_body"));
            return;
        }
        other => panic!("payload and key disagree: {other:?}"),
    };
    assert_eq!(key.len(), 16);
    assert!(key.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    let digest = Sha256::digest(payload.as_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(key, hex);
    assert!(!payload.chars().any(|c| c < ' '), "{payload:?}");
    let back: Value = match serde_json::from_str(&payload) {
        Ok(v) => v,
        Err(e) => panic!("the payload is not JSON ({e}): {payload}"),
    };
    let Some(fields) = back.as_object() else {
        panic!("the payload is not an object: {payload}")
    };
    let keys: Vec<&str> = fields.keys().map(String::as_str).collect();
    assert_eq!(keys, ["max_tokens", "messages", "system"], "{payload}");
    for (name, value) in fields {
        // A falsy or missing field takes its default; a given one reads back.
        if let Some(given) = body.get(name).filter(|v| truthy(v)) {
            assert_eq!(value, given, "{name} in {payload}");
        }
    }
}

fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64() != Some(0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// The longest input the `policy` target builds patterns from.
const MAX_POLICY_INPUT: usize = 512;

#[derive(Debug, Arbitrary)]
struct BodyCase {
    message: String,
    history: Vec<(u8, String)>,
    max_tokens: u32,
    temperature: f64,
}

/// The body builder on arbitrary turns and settings: refused only for a
/// bad role, zero max tokens or a temperature outside 0–1; otherwise user
/// first, strict alternation, at most 10 history turns, the new message
/// last, and a cache key.
pub fn body(data: &[u8]) {
    let Ok(case) = BodyCase::arbitrary_take_rest(Unstructured::new(data)) else {
        return;
    };
    let history: Vec<Turn> = case
        .history
        .iter()
        .map(|(r, content)| {
            let role = match r % 5 {
                0 | 1 => "user",
                2 | 3 => "assistant",
                _ => "system",
            };
            Turn::new(role, content)
        })
        .collect();
    let settings = BodySettings {
        system: "s",
        max_tokens: case.max_tokens,
        temperature: case.temperature,
    };
    let built = build_body(&case.message, &history, settings);
    let bad_role = history
        .iter()
        .any(|t| t.role != "user" && t.role != "assistant");
    let bad_setting = case.max_tokens == 0 || !(0.0..=1.0).contains(&case.temperature);
    let body = match built {
        Err(e) => {
            assert!(bad_role || bad_setting, "refused a good body: {e}");
            assert!(
                matches!(e.code(), "invalid_history" | "invalid_argument"),
                "{}",
                e.code()
            );
            return;
        }
        Ok(body) => body,
    };
    assert!(!bad_role && !bad_setting, "accepted a bad body");
    let roles: Vec<&str> = body.messages.iter().map(|t| t.role.as_str()).collect();
    assert_eq!(roles.first(), Some(&"user"), "{roles:?}");
    assert_eq!(roles.last(), Some(&"user"), "{roles:?}");
    assert!(roles.windows(2).all(|w| w[0] != w[1]), "{roles:?}");
    assert!(body.messages.len() <= 11);
    let last = body.messages.last().map_or("", |t| t.content.as_str());
    assert!(last == case.message || last.ends_with(&format!("\n\n{}", case.message)));
    let json = match serde_json::to_value(&body) {
        Ok(v) => v,
        Err(e) => panic!("a body does not serialize: {e}"),
    };
    assert!(key_of(&json).is_ok());
}

/// A policy from arbitrary pattern strings (up to 4, then the text, parted
/// by U+0001 so that patterns and text may hold newlines): built or refused
/// as `invalid_pattern`, never a panic; a built list reports the first
/// pattern, in list order, that matches on its own.
pub fn policy(data: &[u8]) {
    // Policies are a few short patterns. Long inputs are left out so that
    // the run tries many patterns instead of compiling a few huge ones (a
    // build is bounded by the 10 MiB NFA limit, and its cost is the
    // operator's, paid once at start).
    if data.len() > MAX_POLICY_INPUT {
        return;
    }
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines: Vec<&str> = input.split('\u{1}').collect();
    let Some(text) = lines.pop() else {
        return;
    };
    lines.truncate(4);
    let config = |patterns: &[&str]| PolicyConfig {
        max_message_bytes: usize::MAX,
        disallowed_patterns: patterns.iter().map(|p| (*p).to_string()).collect(),
        max_control_ratio: 1.0,
    };
    let policy = match Policy::new(&config(&lines)) {
        Ok(p) => p,
        Err(e) => {
            assert_eq!(e.code(), "invalid_pattern", "{e}");
            assert!(!e.message().is_empty());
            return;
        }
    };
    let first = policy
        .check(text)
        .err()
        .filter(|r| r.code() == "disallowed_pattern");
    let mut alone = None;
    for (i, p) in lines.iter().enumerate() {
        let one = match Policy::new(&config(&[p])) {
            Ok(one) => one,
            Err(e) => panic!("pattern {i} builds in a list but not alone: {e}"),
        };
        if matches!(one.check(text), Err(r) if r.code() == "disallowed_pattern") {
            alone = Some(i);
            break;
        }
    }
    match (first, alone) {
        (None, None) => {}
        (Some(r), Some(i)) => assert_eq!(
            r.detail(),
            format!("message contains the disallowed pattern {}", lines[i]),
            "pattern {i} is the first that matches alone"
        ),
        (r, i) => panic!("the list says {r:?}, the patterns one by one say {i:?}"),
    }
}
