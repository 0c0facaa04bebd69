//! `mangaassist serve` as a process: offline by default, signals, logs.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::http::{Response, get, post_chat};

fn send(addr: SocketAddr, message: &str) -> Response {
    let request = json!({ "action": "sendMessage", "data": { "message": message } });
    post_chat(addr, request.to_string().as_bytes())
}

/// `serve` on a free port in `environment`, its embedded emulator
/// answering at once.
fn spawn(environment: &str) -> Child {
    Command::new(env!("CARGO_BIN_EXE_mangaassist"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("MANGA_ENV", environment)
        .env("MANGAASSIST_EMULATOR_TTFT_MS", "0")
        .env("MANGAASSIST_EMULATOR_PER_TOKEN_MS", "0")
        .env("MANGAASSIST_ADMIN_LISTEN", "127.0.0.1:0")
        // staging and prod refuse to start without a way to authenticate.
        .env(
            "MANGAASSIST_USER_TOKEN_SECRETS",
            r#"["a test secret of more than 32 bytes"]"#,
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// A dev `serve` and the address it says it listens on.
fn start() -> (Child, SocketAddr) {
    let mut child = spawn("dev");
    let addr = listening(&mut child);
    (child, addr)
}

/// The address `serve` says on its first line of stdout it listens on.
pub(crate) fn listening(child: &mut Child) -> SocketAddr {
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    line.trim()
        .strip_prefix("mangaassist listening on http://")
        .and_then(|a| a.strip_suffix('/'))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .unwrap()
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

fn stderr_of(child: &mut Child) -> String {
    let mut log = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    log
}

#[test]
fn serve_runs_offline_says_so_and_stops_on_sigterm() {
    let (mut child, addr) = start();
    let r = send(addr, "こんにちは");
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        r.json()["reply"]
            .as_str()
            .unwrap()
            .contains("エミュレーター")
    );
    signal(&child, "TERM");
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}");
    let log = stderr_of(&mut child);
    assert!(log.contains("embedded Bedrock emulator"), "{log}");
    assert!(log.contains("in-flight requests finished"), "{log}");
}

#[test]
fn prod_logs_are_json_lines() {
    let mut child = spawn("prod");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let entry: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
    assert_eq!(entry["level"], "INFO", "{entry}");
    assert!(
        entry["fields"]["message"]
            .as_str()
            .unwrap()
            .contains("policy loaded")
    );
}

/// With the embedded policy (nothing to re-read), SIGHUP still reloads
/// (finds it unchanged) instead of killing the server.
#[test]
fn sighup_reloads_the_embedded_policy_and_the_server_keeps_serving() {
    let (mut child, addr) = start();
    signal(&child, "HUP");
    // The watcher looks every second; give it two.
    std::thread::sleep(std::time::Duration::from_millis(2_500));
    assert_eq!(
        get(addr, "/healthz").status,
        200,
        "the server died of SIGHUP"
    );
    assert_eq!(send(addr, "まだ動いていますか").status, 200);
    signal(&child, "TERM");
    assert!(child.wait().unwrap().success());
    let log = stderr_of(&mut child);
    assert!(log.contains("SIGHUP: reloading the policy"), "{log}");
    assert!(log.contains("policy unchanged"), "{log}");
}

/// Resident memory (KiB) and open file descriptors of process `pid`.
fn resources(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count();
    (rss, fds)
}

/// Floods of idle sockets, slow headers and half-sent WebSocket frames
/// against the process: it keeps answering, and its memory and file
/// descriptors stay bounded by the connection cap (figures printed for
/// BENCHMARKS.md: `cargo test --test cli floods -- --nocapture`).
#[test]
fn floods_leave_the_process_answering_and_bounded() {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_mangaassist"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("MANGAASSIST_EMULATOR_TTFT_MS", "0")
        .env("MANGAASSIST_EMULATOR_PER_TOKEN_MS", "0")
        .env("MANGAASSIST_ADMIN_LISTEN", "off")
        .env("MANGAASSIST_MAX_CONNECTIONS", "256")
        .env("MANGAASSIST_HEADER_TIMEOUT_MS", "2000")
        .env("MANGAASSIST_IDLE_TIMEOUT_MS", "5000")
        .env("MANGAASSIST_WS_PING_INTERVAL_MS", "1000")
        .env("MANGAASSIST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let addr = listening(&mut child);
    let pid = child.id();
    assert_eq!(send(addr, "準備はいいですか").status, 200);
    let (rss0, fds0) = resources(pid);
    println!("flood            rss KiB   open fds");
    println!("none (serving)   {rss0:>7}   {fds0:>8}");
    let ws_head = "GET /v1/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
         Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\r\n";
    let mut half_frame = ws_head.as_bytes().to_vec();
    half_frame.extend_from_slice(&[0x81, 0xFE, 0x03, 0xE8, 1, 2, 3, 4, 0, 0]);
    let floods: [(&str, &[u8]); 3] = [
        ("2000 idle", b""),
        ("2000 slow heads", b"POST /v1/chat HTTP/1.1\r\nHost: loc"),
        ("2000 half frames", &half_frame),
    ];
    for (name, prefix) in floods {
        let sockets: Vec<std::net::TcpStream> = (0..2000)
            .filter_map(|_| {
                let mut s = std::net::TcpStream::connect(addr).ok()?;
                let _ = s.write_all(prefix);
                Some(s)
            })
            .collect();
        for _ in 0..5 {
            let started = std::time::Instant::now();
            assert_eq!(get(addr, "/healthz").status, 200, "{name}");
            assert!(
                started.elapsed() < std::time::Duration::from_secs(2),
                "{name}"
            );
        }
        assert_eq!(
            send(addr, &format!("{name}の最中です")).status,
            200,
            "{name}"
        );
        let (rss, fds) = resources(pid);
        println!("{name:<16} {rss:>7}   {fds:>8}");
        assert!(fds <= fds0 + 256 + 16, "{name}: {fds} open files");
        assert!(rss < rss0 + 64 * 1024, "{name}: {rss} KiB");
        drop(sockets);
    }
    signal(&child, "TERM");
    assert!(child.wait().unwrap().success());
}
