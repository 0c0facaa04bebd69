//! `mangaassist emulator` as a process: faults from the command line, the
//! control endpoint, and refusal of unsigned requests.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use mangaassist_bedrock::clock::SystemClock;
use mangaassist_bedrock::invoker::{Candidate, Invoker, InvokerConfig};
use mangaassist_bedrock::profile::EnvProfile;
use mangaassist_core::body::{BodySettings, build_body};
use mangaassist_core::models::Catalog;

/// A running emulator: the process, its model endpoint, its control
/// endpoint and the control token it logged.
pub(crate) struct Emulator(Child, pub(crate) String, String, String);

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn start(args: &[&str]) -> Emulator {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mangaassist"))
        .args(["emulator", "--listen", "127.0.0.1:0", "--control-port", "0"])
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    let mut field = |name: &str| loop {
        let line = lines.next().expect("emulator logs its endpoints").unwrap();
        if let Some(rest) = line.split(&format!("{name}=")).nth(1) {
            break (
                line.clone(),
                rest.split_whitespace().next().unwrap().to_string(),
            );
        }
    };
    let (_, endpoint) = field("endpoint");
    let (line, control) = field("control");
    let token = line
        .split("token=")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    std::thread::spawn(move || for _ in lines {});
    Emulator(child, endpoint, control, token)
}

impl Emulator {
    /// A call to the control API with the token.
    pub(crate) fn control(&self, method: &str, path: &str, body: &str) -> (String, String) {
        let auth = format!("Authorization: Bearer {}", self.3);
        http_with(&self.2, method, path, body, &[&auth])
    }
}

/// A bare HTTP/1.1 exchange; returns status line and body.
fn http(endpoint: &str, method: &str, path: &str, body: &str) -> (String, String) {
    http_with(endpoint, method, path, body, &[])
}

fn http_with(
    endpoint: &str,
    method: &str,
    path: &str,
    body: &str,
    headers: &[&str],
) -> (String, String) {
    let addr = endpoint.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         {extra}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.lines().next().unwrap_or("").to_string();
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

async fn invoker(endpoint: &str) -> Invoker {
    let config = InvokerConfig::emulated(endpoint, &["us-east-1", "us-west-2"], EnvProfile::DEV);
    Invoker::new(&config, Arc::new(SystemClock::new()))
        .await
        .unwrap()
}

#[tokio::test]
async fn faults_from_the_command_line_and_the_control_endpoint() {
    let emulator = start(&["--fault", "us-east-1=throttle"]);
    let endpoint = emulator.1.clone();
    let model = Catalog::spec_default().get("haiku").unwrap().clone();
    let settings = BodySettings {
        system: "s",
        max_tokens: 100,
        temperature: 0.2,
    };
    let body = build_body("hello", &[], settings).unwrap();

    let reply = invoker(&endpoint)
        .await
        .invoke(
            &[Candidate {
                model: &model,
                body: &body,
            }],
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    assert_eq!(reply.region, "us-west-2");
    assert_eq!(reply.failures[0].code, "ThrottlingException");

    // Clear it over the control endpoint; a fresh invoker uses the primary.
    // Not on the model port, and not without the token.
    let (status, _) = http(&endpoint, "DELETE", "/_emulator/faults/us-east-1", "");
    assert!(status.contains("404"), "{status}");
    let (status, _) = http(&emulator.2, "DELETE", "/_emulator/faults/us-east-1", "");
    assert!(status.contains("401"), "{status}");
    let (status, _) = http_with(
        &emulator.2,
        "GET",
        "/_emulator/state",
        "",
        &["Authorization: Bearer 0123456789abcdef0123456789abcdef"],
    );
    assert!(status.contains("401"), "{status}");
    assert!(
        emulator.2.starts_with("http://127.0.0.1:"),
        "{}",
        emulator.2
    );
    let (status, _) = emulator.control("DELETE", "/_emulator/faults/us-east-1", "");
    assert!(status.contains("204"), "{status}");
    let reply = invoker(&endpoint)
        .await
        .invoke(
            &[Candidate {
                model: &model,
                body: &body,
            }],
            Duration::from_secs(20),
        )
        .await
        .unwrap();
    assert_eq!(reply.region, "us-east-1");

    // Set one; the state shows it and the counters.
    let (status, _) = emulator.control(
        "PUT",
        "/_emulator/faults/us-west-2",
        r#"{"fault":"cut:3","every":2}"#,
    );
    assert!(status.contains("204"), "{status}");
    let (_, state) = emulator.control("GET", "/_emulator/state", "");
    assert!(
        state.contains(r#""us-west-2":{"fault":"cut:3","every":2,"times":null}"#),
        "{state}"
    );
    assert!(state.contains(r#""us-east-1":{"requests":2"#), "{state}");
    let (status, body) =
        emulator.control("PUT", "/_emulator/faults/us-west-2", r#"{"fault":"melt"}"#);
    assert!(
        status.contains("400") && body.contains("message"),
        "{status} {body}"
    );
}

#[test]
fn unsigned_or_malformed_requests_are_refused() {
    let emulator = start(&[]);
    let body = r#"{"anthropic_version":"bedrock-2023-05-31","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#;
    let (status, text) = http(
        &emulator.1,
        "POST",
        "/model/anthropic.claude-3-haiku-20240307-v1%3A0/invoke",
        body,
    );
    assert!(status.contains("403"), "{status}");
    assert!(text.contains("SigV4"), "{text}");
}

#[test]
fn a_bad_fault_flag_is_a_usage_error() {
    let out = Command::new(env!("CARGO_BIN_EXE_mangaassist"))
        .args(["emulator", "--fault", "us-east-1=melt"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown fault \"melt\""), "{err}");
}

/// Every `curl` the README shows against the emulator's control endpoint
/// works as written (method, path and body taken from the README's text).
#[test]
fn the_readme_s_emulator_commands_work() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let emulator = start(&[]);
    let mut ran = 0;
    for line in readme
        .lines()
        .filter(|l| l.starts_with("$ curl") && l.contains(":8788/"))
    {
        let words: Vec<&str> = line.split_whitespace().collect();
        let method = words
            .iter()
            .position(|w| *w == "-X")
            .map_or("GET", |i| words[i + 1]);
        assert!(
            line.contains(r#"-H "Authorization: Bearer $TOKEN""#),
            "README: {line}"
        );
        let url = words.iter().find(|w| w.contains(":8788/")).unwrap();
        let path = &url[url.find(":8788").unwrap() + 5..];
        let body = line
            .split_once(" -d '")
            .map_or("", |(_, rest)| rest.split('\'').next().unwrap());
        let (status, answer) = emulator.control(method, path, body);
        assert!(
            status.contains(" 200 ") || status.contains(" 204 "),
            "README: {line}\n-> {status} {answer}"
        );
        ran += 1;
    }
    assert!(
        ran >= 4,
        "the README shows the control endpoint ({ran} commands found)"
    );
}
