//! A real `redis-server` (Debian's, installed by scripts/setup.sh) on a
//! loopback port of its own, for as long as the value lives.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running redis-server.
pub struct RedisServer {
    child: Option<Child>,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl RedisServer {
    /// Starts one on a free port.
    pub fn start() -> Self {
        Self::start_on(crate::free_port())
    }

    /// Starts one on `port` (again, after [`RedisServer::stop`]).
    pub fn start_on(port: u16) -> Self {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args([
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ])
            // DEBUG SLEEP makes a slow Redis for the tests.
            .args(["--enable-debug-command", "local"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run redis-server ({e}): scripts/setup.sh installs it")
            });
        let server = RedisServer {
            child: Some(child),
            port,
        };
        let started = Instant::now();
        while server.command(&["PING"]).as_deref() != Some("PONG") {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not answer on port {port}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        server
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops it (the port may be reused by [`RedisServer::start_on`]).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// One command over RESP; a simple string, integer or bulk string
    /// answer, else None.
    pub fn command(&self, words: &[&str]) -> Option<String> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        let mut request = format!("*{}\r\n", words.len());
        for w in words {
            request.push_str(&format!("${}\r\n{w}\r\n", w.len()));
        }
        stream.write_all(request.as_bytes()).ok()?;
        let mut answer = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            let n = stream.read(&mut buf).ok()?;
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            if let Some(value) = parse(&answer) {
                return value;
            }
        }
        None
    }
}

/// A complete simple string, integer or bulk string reply: Some(Some(text));
/// a nil or another kind: Some(None); incomplete: None.
fn parse(bytes: &[u8]) -> Option<Option<String>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let (head, rest) = text.split_once("\r\n")?;
    match head.as_bytes().first()? {
        b'+' | b':' => Some(Some(head[1..].to_string())),
        b'$' if head == "$-1" => Some(None),
        b'$' => {
            let len: usize = head[1..].parse().ok()?;
            (rest.len() >= len + 2).then(|| Some(rest[..len].to_string()))
        }
        _ => Some(None),
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
