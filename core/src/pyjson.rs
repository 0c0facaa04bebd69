//! JSON text exactly as Python's `json.dumps(obj, sort_keys=True, ensure_ascii=False)`.
//!
//! SPEC 7 needs it byte for byte so cache keys match an existing Python
//! service. serde_json's own writer differs (separators, float format), so
//! this small writer is the one place that knows Python's layout.

use std::fmt::Write;

use serde_json::Value;

/// Appends the Python `json.dumps` text of `value` to `out`.
pub fn write_python_json(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                let _ = write!(out, "{i}");
            } else if let Some(u) = n.as_u64() {
                let _ = write!(out, "{u}");
            } else if let Some(f) = n.as_f64() {
                write_python_float(out, f);
            }
        }
        Value::String(s) => write_python_string(out, s),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_python_json(out, item);
            }
            out.push(']');
        }
        Value::Object(map) => write_python_object(out, map.iter().collect()),
    }
}

/// An object with its keys sorted by code point, whatever order they come
/// in: serde_json's `preserve_order` feature, if any crate enables it, keeps
/// insertion order, so the map's own order is not trusted.
fn write_python_object(out: &mut String, mut entries: Vec<(&String, &Value)>) {
    // UTF-8 byte order is code point order (Python's), unlike UTF-16's.
    entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    out.push('{');
    for (i, (key, item)) in entries.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        write_python_string(out, key);
        out.push_str(": ");
        write_python_json(out, item);
    }
    out.push('}');
}

/// A string with only `"`, `\`, and code points below U+0020 escaped.
pub fn write_python_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let escape: Option<&str> = match c {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            '\u{08}' => Some("\\b"),
            '\u{0C}' => Some("\\f"),
            c if c < '\u{20}' => None,
            _ => continue,
        };
        out.push_str(s.get(start..i).unwrap_or_default());
        match escape {
            Some(e) => out.push_str(e),
            None => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
        }
        start = i + c.len_utf8();
    }
    out.push_str(s.get(start..).unwrap_or_default());
    out.push('"');
}

/// A float as Python's `repr` writes it (shortest round-trip digits;
/// scientific notation when the decimal exponent is below -4 or above 15).
pub fn write_python_float(out: &mut String, f: f64) {
    if f.is_nan() {
        out.push_str("NaN");
        return;
    }
    if f.is_infinite() {
        out.push_str(if f > 0.0 { "Infinity" } else { "-Infinity" });
        return;
    }
    if f == 0.0 {
        out.push_str(if f.is_sign_negative() { "-0.0" } else { "0.0" });
        return;
    }
    // Rust's `{:e}` gives the shortest round-trip digits, like Python's repr.
    let sci = format!("{:e}", f.abs());
    let (mantissa, exponent) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    if f < 0.0 {
        out.push('-');
    }
    // Python places the point after `decpt` digits: value = 0.DIGITS × 10^decpt.
    let decpt = exponent + 1;
    let n = i32::try_from(digits.len()).unwrap_or(i32::MAX);
    if decpt > 16 || decpt <= -4 {
        let (first, rest) = digits.split_at(1.min(digits.len()));
        out.push_str(first);
        if !rest.is_empty() {
            out.push('.');
            out.push_str(rest);
        }
        let sign = if exponent < 0 { '-' } else { '+' };
        let _ = write!(out, "e{sign}{:02}", exponent.unsigned_abs());
    } else if decpt <= 0 {
        out.push_str("0.");
        for _ in 0..(-decpt) {
            out.push('0');
        }
        out.push_str(&digits);
    } else if decpt >= n {
        out.push_str(&digits);
        for _ in 0..(decpt - n) {
            out.push('0');
        }
        out.push_str(".0");
    } else {
        let (int, frac) = digits.split_at(usize::try_from(decpt).unwrap_or(0));
        out.push_str(int);
        out.push('.');
        out.push_str(frac);
    }
}

/// A float as Python's `str` shows it (`0.05`, `1.0`), for messages that
/// must read the same from every engine and from the Python reference.
pub fn python_float(f: f64) -> String {
    let mut s = String::new();
    write_python_float(&mut s, f);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Whatever order the entries come in, the object is written with
        /// its keys by code point (Python's `sort_keys`): checked against a
        /// plain sort of the keys as `char` sequences. Keys mix BMP
        /// characters above the surrogates with astral ones, where UTF-16
        /// order (JavaScript's) differs from code point order.
        #[test]
        fn object_keys_are_written_by_code_point_whatever_their_order(
            keys in proptest::collection::btree_set("[a-zé漫\u{FF61}\u{1F600}_]{0,4}", 0..8),
            seed in any::<u64>(),
        ) {
            let values: Vec<(String, Value)> = keys
                .iter()
                .enumerate()
                .map(|(i, k)| (k.clone(), Value::from(i)))
                .collect();
            let mut shuffled: Vec<(&String, &Value)> = values.iter().map(|(k, v)| (k, v)).collect();
            // A deterministic shuffle from the seed.
            let n = shuffled.len();
            for i in (1..n).rev() {
                let j = (seed.rotate_left(i as u32) % (i as u64 + 1)) as usize;
                shuffled.swap(i, j);
            }
            let mut out = String::new();
            write_python_object(&mut out, shuffled);
            let mut expected: Vec<&(String, Value)> = values.iter().collect();
            expected.sort_by(|a, b| a.0.chars().cmp(b.0.chars()));
            let mut oracle = String::from("{");
            for (i, (k, v)) in expected.into_iter().enumerate() {
                if i > 0 {
                    oracle.push_str(", ");
                }
                write_python_string(&mut oracle, k);
                oracle.push_str(": ");
                write_python_json(&mut oracle, v);
            }
            oracle.push('}');
            prop_assert_eq!(out, oracle);
        }
    }

    fn float(f: f64) -> String {
        let mut s = String::new();
        write_python_float(&mut s, f);
        s
    }

    #[test]
    fn floats_match_python_repr() {
        let cases = [
            (1.0, "1.0"),
            (0.3, "0.3"),
            (-0.0, "-0.0"),
            (1e16, "1e+16"),
            (1234567890123456.0, "1234567890123456.0"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-5, "1.5e-05"),
            (1.23e102, "1.23e+102"),
            (123.456, "123.456"),
            (-2.5, "-2.5"),
            (5e-324, "5e-324"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (100.0, "100.0"),
        ];
        for (f, want) in cases {
            assert_eq!(float(f), want, "{f:e}");
        }
    }

    #[test]
    fn strings_escape_like_python() {
        let mut s = String::new();
        write_python_string(&mut s, "a\"\\\n\r\t\u{8}\u{c}\u{1}\u{1f}\u{7f}\u{2028}é");
        assert_eq!(
            s,
            "\"a\\\"\\\\\\n\\r\\t\\b\\f\\u0001\\u001f\u{7f}\u{2028}é\""
        );
    }
}
