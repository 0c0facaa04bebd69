//! A deliberately small HTTP/1.1 client over a plain `TcpStream`: it sends
//! exactly the bytes a test gives (malformed ones included) and reads one
//! response, so the service is tested over real sockets, byte for byte.
//! Also `#[path]`-included by the command line's tests.
#![allow(dead_code, reason = "each test crate uses a subset")]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::Value;

/// One response.
#[derive(Debug)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// Body bytes.
    pub body: Vec<u8>,
}

impl Response {
    /// The body as JSON (panics with the body when it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "status {} body is not JSON ({e}): {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `error.code` of an error body.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

/// Sends `raw` (a whole request, `Connection: close` expected), then reads the response.
pub fn exchange(addr: SocketAddr, raw: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    // The server may answer (413) and close before taking every byte.
    let _ = stream.write_all(raw);
    read_response(&mut stream)
}

/// Sends `head` and `partial_body`, then either closes the write side
/// (`then_close`) or waits `pause` before reading the response.
pub fn exchange_partial(
    addr: SocketAddr,
    raw: &[u8],
    then_close: bool,
    pause: Duration,
) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    stream.write_all(raw).unwrap();
    if then_close {
        stream.shutdown(Shutdown::Write).unwrap();
    }
    std::thread::sleep(pause);
    read_response(&mut stream)
}

/// Reads one response to the end of the connection.
pub fn read_response(stream: &mut TcpStream) -> Response {
    let mut bytes = Vec::new();
    let _ = stream.read_to_end(&mut bytes);
    parse(&bytes)
}

/// Parses a response (content-length or to the end).
pub fn parse(bytes: &[u8]) -> Response {
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(bytes)));
    let head = String::from_utf8_lossy(&bytes[..split]).to_string();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let mut body = bytes[split + 4..].to_vec();
    if let Some(len) = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        body.truncate(len);
    }
    Response {
        status,
        headers,
        body,
    }
}

/// A request with the given method, path, extra header lines and body.
pub fn raw_request(method: &str, path: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n");
    for h in headers {
        raw.push_str(h);
        raw.push_str("\r\n");
    }
    raw.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut raw = raw.into_bytes();
    raw.extend_from_slice(body);
    raw
}

/// POST /v1/chat with a JSON body.
pub fn post_chat(addr: SocketAddr, body: &[u8]) -> Response {
    post_chat_with(addr, &[], body)
}

/// POST /v1/chat with a JSON body and extra header lines (credentials).
pub fn post_chat_with(addr: SocketAddr, headers: &[&str], body: &[u8]) -> Response {
    let mut all = vec!["Content-Type: application/json"];
    all.extend_from_slice(headers);
    exchange(addr, &raw_request("POST", "/v1/chat", &all, body))
}

/// GET a path.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    exchange(addr, &raw_request("GET", path, &[], b""))
}
