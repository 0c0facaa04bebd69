//! Running the binary under test.

use std::io::{Read, Write};
use std::process::{Command, Stdio};

/// Runs the binary with `args` and `stdin`: (stdout, stderr, success).
pub fn mangaassist(args: &[&str], stdin: Vec<u8>) -> (String, String, bool) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mangaassist"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary starts");
    let mut input = child.stdin.take().expect("stdin");
    // Feed from a thread so a large input cannot deadlock against our reads.
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&stdin);
    });
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("utf-8 output");
    let output = child.wait_with_output().expect("binary ends");
    writer.join().expect("writer thread");
    (
        out,
        String::from_utf8_lossy(&output.stderr).into_owned(),
        output.status.success(),
    )
}

/// Runs the binary with `args` and extra environment, no stdin:
/// (stdout, stderr, success).
pub fn mangaassist_env(args: &[&str], env: &[(&str, String)]) -> (String, String, bool) {
    let output = Command::new(env!("CARGO_BIN_EXE_mangaassist"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .output()
        .expect("binary runs");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        output.status.success(),
    )
}
