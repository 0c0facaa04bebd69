//! 100k lines through `check` without memory growth (Linux: reads VmHWM).
#![cfg(target_os = "linux")]

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM line")
}

#[test]
fn peak_memory_stays_flat_over_100k_lines() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mangaassist"))
        .arg("check")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let pid = child.id();
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    // A reader thread drains answers so neither pipe can fill up and block.
    let answered = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&answered);
    let reader = std::thread::spawn(move || {
        for line in stdout.lines() {
            line.expect("answer line");
            counter.fetch_add(1, Ordering::SeqCst);
        }
    });
    // Mostly short chat lines, one near-16-KiB message in 50, some garbage.
    let mut messages = vec![
        r#"{"message":"こんにちは！おすすめの漫画を教えてください。"}"#.to_string(),
        r#"{"message":"Do you have volume 3 of Frieren?"}"#.to_string(),
        "not json".to_string(),
    ];
    messages.extend(std::iter::repeat_n(messages[0].clone(), 46));
    messages.push(format!(r#"{{"message":"{}"}}"#, "漫画".repeat(2700)));
    let mut sent = 0usize;
    let mut send = |n: usize, stdin: &mut std::process::ChildStdin| {
        for _ in 0..n {
            writeln!(stdin, "{}", messages[sent % messages.len()]).expect("write");
            sent += 1;
        }
        stdin.flush().expect("flush");
        while answered.load(Ordering::SeqCst) < sent {
            std::thread::sleep(Duration::from_millis(5));
        }
    };
    send(1_000, &mut stdin);
    let warm = peak_rss_kib(pid);
    send(99_000, &mut stdin);
    let after = peak_rss_kib(pid);
    drop(stdin);
    assert!(child.wait().expect("exit").success());
    reader.join().expect("reader thread");
    assert!(
        after <= warm + 1024,
        "peak RSS grew from {warm} KiB after 1k lines to {after} KiB after 100k"
    );
}
