//! SPEC 7: the response-cache key, identical to the Python service's.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::pyjson::write_python_json;

/// Max tokens assumed when a body has none (or a falsy one), as the Python service does.
const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Python truthiness of a JSON value (`x or default` keeps `x` only when truthy).
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

fn or_default(body: &Map<String, Value>, key: &str, default: Value) -> Value {
    match body.get(key) {
        Some(v) if truthy(v) => v.clone(),
        _ => default,
    }
}

/// The canonical text hashed for the key (exposed for debugging and vectors).
pub fn cache_key_payload(body: &Value) -> Result<String, Error> {
    let Value::Object(body) = body else {
        return Err(Error::invalid_body(
            "a Claude body must be a JSON object".to_string(),
        ));
    };
    let mut stable = Map::new();
    stable.insert(
        "system".into(),
        or_default(body, "system", Value::String(String::new())),
    );
    stable.insert(
        "messages".into(),
        or_default(body, "messages", Value::Array(Vec::new())),
    );
    stable.insert(
        "max_tokens".into(),
        or_default(body, "max_tokens", Value::from(DEFAULT_MAX_TOKENS)),
    );
    let mut out = String::new();
    write_python_json(&mut out, &Value::Object(stable));
    Ok(out)
}

/// First 16 lowercase hex digits of SHA-256 over the canonical payload.
pub fn cache_key(body: &Value) -> Result<String, Error> {
    let payload = cache_key_payload(body)?;
    let digest = Sha256::digest(payload.as_bytes());
    let mut key = String::with_capacity(16);
    for byte in digest.iter().take(8) {
        key.push(hex_digit(byte >> 4));
        key.push(hex_digit(byte & 0x0f));
    }
    Ok(key)
}

fn hex_digit(n: u8) -> char {
    char::from_digit(u32::from(n), 16).unwrap_or('0')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn payload_sorts_keys_and_defaults_falsy_values() {
        let body = json!({"temperature": 0.3, "max_tokens": 0, "system": null,
                          "messages": [{"role": "user", "content": "こんにちは"}]});
        assert_eq!(
            cache_key_payload(&body).unwrap(),
            r#"{"max_tokens": 4096, "messages": [{"content": "こんにちは", "role": "user"}], "system": ""}"#
        );
    }

    #[test]
    fn non_object_is_an_error() {
        assert_eq!(cache_key(&json!([1])).unwrap_err().code(), "invalid_body");
    }
}
