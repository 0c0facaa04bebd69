//! The bad-input suite: well over 1,000 malformed requests over real HTTP
//! (invalid JSON and UTF-8, deep nesting, huge numbers, wrong types, unknown
//! fields, oversize, truncated and slow bodies, wrong content types). Each
//! must get a clear 4xx with the SPEC 10 error body and a snake_case code;
//! none a 5xx; and the service must keep answering afterwards. Random
//! mutations of valid requests must never get a 5xx either.

use std::net::SocketAddr;
use std::time::Duration;

use crate::http::{Response, exchange, exchange_partial, raw_request};
use crate::serve::serve;
use serde_json::{Value, json};

const SESSION: &str = "123e4567-e89b-42d3-a456-426614174000";

/// How a case is sent.
enum Send {
    /// A whole request with this content type and body.
    Json(Option<&'static str>, Vec<u8>),
    /// Raw bytes, as given.
    Raw(Vec<u8>),
    /// A head declaring more body than is sent, then the write side closes.
    Truncated(Vec<u8>),
    /// A head declaring more body than is sent, then silence.
    Slow(Vec<u8>),
}

struct Case {
    name: String,
    send: Send,
}

fn case(name: impl Into<String>, body: impl Into<Vec<u8>>) -> Case {
    Case {
        name: name.into(),
        send: Send::Json(Some("application/json"), body.into()),
    }
}

fn valid_requests() -> Vec<Value> {
    vec![
        json!({"action":"sendMessage","data":{"message":"在庫はありますか","sessionId":SESSION,
               "preferredLanguage":"ja","modelPreference":"auto"},
               "metadata":{"clientVersion":"1.0.0","timestamp":1732500000}}),
        json!({"action":"getHistory","data":{"sessionId":SESSION}}),
        json!({"action":"clearSession","data":{"sessionId":SESSION,"preferredLanguage":"en"}}),
    ]
}

/// A copy of `base` with `f` applied to the object holding `pointer`'s last token.
fn edit(
    base: &Value,
    pointer: &str,
    f: impl FnOnce(&mut serde_json::Map<String, Value>, &str),
) -> Value {
    let mut doc = base.clone();
    let (parent, key) = pointer.rsplit_once('/').unwrap();
    // An empty pointer is the document itself (RFC 6901).
    f(
        doc.pointer_mut(parent).unwrap().as_object_mut().unwrap(),
        key,
    );
    doc
}

fn with(base: &Value, pointer: &str, value: Value) -> Value {
    edit(base, pointer, |object, key| {
        object.insert(key.to_string(), value);
    })
}

fn without(base: &Value, pointer: &str) -> Value {
    edit(base, pointer, |object, key| {
        object.remove(key);
    })
}

/// Every case here is malformed: the answer must be a 4xx.
fn malformed() -> Vec<Case> {
    let mut cases = Vec::new();
    let bases = valid_requests();
    let send = &bases[0];

    // Every proper prefix of each valid request: invalid JSON or UTF-8.
    for (b, base) in bases.iter().enumerate() {
        let text = base.to_string().into_bytes();
        for cut in 0..text.len() {
            cases.push(case(format!("prefix {b}:{cut}"), text[..cut].to_vec()));
        }
    }

    // Invalid UTF-8 spliced in every few bytes.
    let text = send.to_string().into_bytes();
    let bad: [&[u8]; 7] = [
        b"\xff",
        b"\xfe",
        b"\xc0\xaf",
        b"\xed\xa0\x80",
        b"\xf8\x88\x80\x80\x80",
        b"\x80",
        b"\xc3",
    ];
    for (k, seq) in bad.iter().enumerate() {
        for at in (0..text.len()).step_by(6) {
            let mut body = text[..at].to_vec();
            body.extend_from_slice(seq);
            body.extend_from_slice(&text[at..]);
            cases.push(case(format!("utf8 {k}@{at}"), body));
        }
    }

    // Deep nesting, at the top and inside the request.
    for depth in [2, 10, 100, 127, 128, 129, 200, 1_000, 10_000, 30_000] {
        let arrays = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let objects = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
        cases.push(case(format!("nested arrays {depth}"), arrays.clone()));
        cases.push(case(format!("nested objects {depth}"), objects.clone()));
        cases.push(case(format!("unclosed {depth}"), "[".repeat(depth)));
        let inside = send.to_string().replace("\"在庫はありますか\"", &arrays);
        cases.push(case(format!("nested message {depth}"), inside));
        let inside = send.to_string().replace("1732500000", &objects);
        cases.push(case(format!("nested metadata {depth}"), inside));
    }

    // Huge, tiny and odd numbers where no number belongs.
    let numbers = [
        "1e400",
        "-1e400",
        "1e-400",
        "99999999999999999999999999999",
        "-99999999999999999999999999999",
        "18446744073709551616",
        "123456789012345678901234567890e10",
        "0.1",
        "-0",
        "1E+2",
        "NaN",
        "Infinity",
        "-Infinity",
        "0x10",
        "01",
    ];
    for (i, n) in numbers.iter().enumerate() {
        for target in [
            "\"sendMessage\"",
            "\"在庫はありますか\"",
            &format!("\"{SESSION}\""),
        ] {
            let body = send.to_string().replacen(target, n, 1);
            cases.push(case(format!("number {i} at {target}"), body));
        }
        cases.push(case(format!("number {i} alone"), n.to_string()));
    }

    // Wrong types at every field.
    let fields: [(&str, &[&str]); 9] = [
        ("/action", &["string"]),
        ("/data", &["object"]),
        ("/data/message", &["string"]),
        ("/data/sessionId", &["string"]),
        ("/data/preferredLanguage", &["string"]),
        ("/data/modelPreference", &["string"]),
        ("/metadata", &["object"]),
        ("/metadata/clientVersion", &["string"]),
        ("/metadata/timestamp", &["integer"]),
    ];
    let values = [
        ("null", json!(null)),
        ("bool", json!(true)),
        ("integer", json!(7)),
        ("float", json!(-1.5)),
        ("string", json!("x")),
        ("empty array", json!([])),
        ("array", json!([1, "a"])),
        ("empty object", json!({})),
        ("object", json!({"a": 1})),
    ];
    for (field, right) in fields {
        for (kind, value) in &values {
            let right_kind = right.iter().any(|r| kind.contains(r));
            if right_kind || (field == "/metadata" && kind.contains("object")) {
                continue;
            }
            cases.push(case(
                format!("{field} as {kind}"),
                with(send, field, value.clone()).to_string(),
            ));
        }
    }
    for (kind, value) in &values {
        cases.push(case(format!("top level {kind}"), value.to_string()));
    }

    // Unknown properties where the contract forbids them (SPEC 2 leaves
    // `metadata` open).
    let long = "k".repeat(1_000);
    for place in ["", "/data"] {
        for name in [
            "x",
            "",
            "__proto__",
            "constructor",
            "Action",
            "actions",
            "データ",
            "\u{0}",
            &long,
        ] {
            cases.push(case(
                format!("unknown {name:.10} in {place:?}"),
                with(send, &format!("{place}/{name}"), json!(1)).to_string(),
            ));
        }
    }

    // Enums, patterns, lengths, required fields.
    for action in [
        "",
        "SENDMESSAGE",
        "sendmessage",
        "send Message",
        "sendMessage\u{0}",
        "delete",
    ] {
        cases.push(case(
            format!("action {action:?}"),
            with(send, "/action", json!(action)).to_string(),
        ));
    }
    for id in [
        "",
        "123E4567-E89B-42D3-A456-426614174000",
        "123e4567-e89b-12d3-a456-426614174000",
        "123e4567-e89b-42d3-c456-426614174000",
        "{123e4567-e89b-42d3-a456-426614174000}",
        "123e4567e89b42d3a456426614174000",
        "123e4567-e89b-42d3-a456-42661417400",
        "123e4567-e89b-42d3-a456-4266141740000",
        "../../etc/passwd",
    ] {
        for base in &bases {
            cases.push(case(
                format!("sessionId {id:?} in {}", base["action"]),
                with(base, "/data/sessionId", json!(id)).to_string(),
            ));
        }
    }
    for lang in ["jp", "JA", "", "ja-JP", "fr"] {
        cases.push(case(
            format!("language {lang:?}"),
            with(send, "/data/preferredLanguage", json!(lang)).to_string(),
        ));
    }
    for pref in ["best", "AUTO", "", "fast "] {
        cases.push(case(
            format!("preference {pref:?}"),
            with(send, "/data/modelPreference", json!(pref)).to_string(),
        ));
    }
    for (name, message) in [
        ("empty", String::new()),
        ("4001 ascii", "a".repeat(4_001)),
        ("4001 emoji", "😀".repeat(4_001)),
        ("5000 kanji", "漫".repeat(5_000)),
    ] {
        cases.push(case(
            format!("message {name}"),
            with(send, "/data/message", json!(message)).to_string(),
        ));
    }
    for field in ["/action", "/data", "/data/message"] {
        cases.push(case(
            format!("missing {field}"),
            without(send, field).to_string(),
        ));
    }
    for base in &bases[1..] {
        cases.push(case(
            format!("{} without sessionId", base["action"]),
            without(base, "/data/sessionId").to_string(),
        ));
    }

    // Not JSON at all, or JSON with syntax errors.
    for garbage in [
        "",
        " ",
        "{",
        "}",
        "{]",
        "{'action':'sendMessage'}",
        "{\"action\":\"sendMessage\",}",
        "{\"action\" \"sendMessage\"}",
        "{\"action\":\"sendMessage\"} {}",
        "/* c */ {}",
        "{\"a\":\"\\x41\"}",
        "{\"a\":\"\\ud800\"}",
        "{\"a\":\"\u{1}\"}",
        "\u{feff}{}",
        "action=sendMessage",
        "<xml/>",
        "\0\0\0\0",
        "nul",
        "tru",
        "\"unterminated",
    ] {
        cases.push(case(format!("garbage {garbage:?}"), garbage));
    }
    let utf16: Vec<u8> = send
        .to_string()
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    cases.push(case("utf-16 body", utf16));

    // Over the size limit: declared and sent.
    for size in [64 * 1024 + 1, 100_000, 1_000_000] {
        let message = "a".repeat(size);
        cases.push(case(
            format!("oversize {size}"),
            with(send, "/data/message", json!(message)).to_string(),
        ));
    }
    cases.push(Case {
        name: "declared a terabyte".into(),
        send: Send::Raw(
            b"POST /v1/chat HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 1000000000000\r\n\r\n{}".to_vec(),
        ),
    });

    // Wrong content types for a valid body.
    let body = send.to_string().into_bytes();
    for ct in [
        None,
        Some("text/plain"),
        Some("application/xml"),
        Some("multipart/form-data; boundary=x"),
        Some("application/x-www-form-urlencoded"),
        Some("application/json; charset=latin1"),
        Some("application/jsonx"),
        Some("json"),
        Some("*/*"),
        Some("text/json"),
    ] {
        cases.push(Case {
            name: format!("content type {ct:?}"),
            send: Send::Json(ct, body.clone()),
        });
    }

    // Bodies shorter than declared: cut off, or too slow.
    for cut in (0..body.len()).step_by(9) {
        let mut raw = head(body.len());
        raw.extend_from_slice(&body[..cut]);
        cases.push(Case {
            name: format!("truncated at {cut}"),
            send: Send::Truncated(raw),
        });
    }
    for cut in [0, 1, 40, body.len() - 1] {
        let mut raw = head(body.len());
        raw.extend_from_slice(&body[..cut]);
        cases.push(Case {
            name: format!("slow after {cut}"),
            send: Send::Slow(raw),
        });
    }
    cases
}

fn head(content_length: usize) -> Vec<u8> {
    format!(
        "POST /v1/chat HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {content_length}\r\n\r\n"
    )
    .into_bytes()
}

fn run(addr: SocketAddr, case: &Case) -> Response {
    match &case.send {
        Send::Json(ct, body) => {
            let header = ct.map(|ct| format!("Content-Type: {ct}"));
            let headers: Vec<&str> = header.iter().map(String::as_str).collect();
            exchange(addr, &raw_request("POST", "/v1/chat", &headers, body))
        }
        Send::Raw(raw) => exchange(addr, raw),
        Send::Truncated(raw) => exchange_partial(addr, raw, true, Duration::ZERO),
        Send::Slow(raw) => exchange_partial(addr, raw, false, Duration::ZERO),
    }
}

/// Runs `cases` on 4 threads; returns (name, response) pairs.
fn run_all(addr: SocketAddr, cases: Vec<Case>) -> Vec<(String, Response)> {
    let chunks: Vec<Vec<Case>> = {
        let mut chunks: Vec<Vec<Case>> = (0..4).map(|_| Vec::new()).collect();
        for (i, c) in cases.into_iter().enumerate() {
            chunks[i % 4].push(c);
        }
        chunks
    };
    let handles: Vec<_> = chunks
        .into_iter()
        .map(|chunk| {
            std::thread::spawn(move || {
                chunk
                    .iter()
                    .map(|c| (c.name.clone(), run(addr, c)))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect()
}

fn is_snake_case(code: &str) -> bool {
    !code.is_empty()
        && code
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

#[test]
fn a_thousand_malformed_requests_each_get_a_clear_4xx() {
    let running = serve("sync_budget_ms = 400");
    let addr = running.addr();
    let cases = malformed();
    let total = cases.len();
    assert!(total >= 1_000, "only {total} malformed cases");
    let results = run_all(addr, cases);
    assert_eq!(results.len(), total);
    let mut by_status = std::collections::BTreeMap::<u16, usize>::new();
    for (name, r) in &results {
        *by_status.entry(r.status).or_default() += 1;
        assert!(
            (400..500).contains(&r.status),
            "{name}: status {} body {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
        let body: Value = serde_json::from_slice(&r.body)
            .unwrap_or_else(|e| panic!("{name}: body is not JSON ({e})"));
        let code = body["error"]["code"].as_str().unwrap_or_default();
        assert!(is_snake_case(code), "{name}: code {code:?}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{name}: {body}"
        );
        assert!(body["error"]["details"].is_array(), "{name}: {body}");
    }
    eprintln!("{total} malformed requests, by status: {by_status:?}");
    for status in [400, 408, 413, 415] {
        assert!(
            by_status.contains_key(&status),
            "no {status} among {by_status:?}"
        );
    }
    // Still serving, and nothing was counted as a server error.
    let fresh = without(&valid_requests()[0], "/data/sessionId");
    let ok = crate::http::post_chat(addr, fresh.to_string().as_bytes());
    assert_eq!(ok.status, 200, "{ok:?}");
    let metrics = String::from_utf8(crate::http::get(running.admin(), "/metrics").body).unwrap();
    assert!(!metrics.contains("status=\"5"), "{metrics}");
}

/// xorshift64*: deterministic, so a failure names a reproducible case.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_mutations_of_valid_requests_never_get_a_5xx() {
    let running = serve("");
    let addr = running.addr();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let bases: Vec<Vec<u8>> = valid_requests()
        .iter()
        .map(|v| v.to_string().into_bytes())
        .collect();
    let alphabet: &[u8] = b"{}[]\",:\\ 0aZ\x00\x7f\xff\xc3\xe3-.eE";
    let mut cases = Vec::new();
    for i in 0..600 {
        let mut body = bases[rng.below(bases.len())].clone();
        for _ in 0..=rng.below(4) {
            let at = rng.below(body.len());
            match rng.below(3) {
                0 => body[at] = alphabet[rng.below(alphabet.len())],
                1 => body.insert(at, alphabet[rng.below(alphabet.len())]),
                _ => {
                    body.remove(at);
                }
            }
        }
        cases.push(case(format!("mutation {i}"), body));
    }
    let results = run_all(addr, cases);
    for (name, r) in &results {
        assert!(
            r.status == 200 || (400..500).contains(&r.status),
            "{name}: status {} body {}",
            r.status,
            String::from_utf8_lossy(&r.body)
        );
    }
    assert_eq!(crate::http::get(addr, "/healthz").status, 200);
}
