//! A running `check --engine wasm --policy-wasm FILE` swaps its policy when
//! the file changes or on SIGHUP, only after the candidate passes the corpus.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use crate::components::{built_policy, component, unless_warm_up, with_custom_section};

/// The binary, its stdin/stdout and its log lines as they arrive.
struct Running {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    log: Receiver<String>,
}

impl Running {
    fn start(policy: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_mangaassist"))
            .args(["check", "--engine", "wasm", "--policy-wasm"])
            .arg(policy)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("binary starts");
        let (tx, log) = channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut running = Running {
            child,
            stdin,
            stdout,
            log,
        };
        running.wait_for_log("policy loaded");
        running
    }

    /// Waits for a log line containing `needle`; returns it.
    fn wait_for_log(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.log.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(_) => {}
                Err(e) => panic!("no log line with {needle:?}: {e}"),
            }
        }
    }

    fn check(&mut self, message: &str) -> String {
        let line = serde_json::json!({ "message": message }).to_string();
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
        let mut answer = String::new();
        self.stdout.read_line(&mut answer).unwrap();
        answer.trim_end().to_string()
    }

    fn sighup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// Replaces `path` the way deploy tools do: write aside, rename over.
fn install(path: &Path, bytes: &[u8]) {
    let aside = path.with_extension("tmp");
    std::fs::write(&aside, bytes).unwrap();
    std::fs::rename(&aside, path).unwrap();
}

const REFUSED: &str = r#"{"valid":false,"code":"disallowed_pattern","detail":"#;

#[test]
fn a_policy_file_is_swapped_only_after_passing_the_corpus() {
    let dir = std::env::temp_dir().join(format!("mangaassist-swap-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("policy.wasm");
    let good = built_policy();
    install(&path, &good);
    let mut run = Running::start(&path);
    let ok = run.check("おすすめは？");
    assert!(ok.starts_with(r#"{"valid":true"#), "{ok}");
    assert!(run.check("<script>alert(1)</script>").starts_with(REFUSED));

    // A well-formed candidate with wrong answers: rejected, old one serves.
    install(&path, &component(""));
    let line = run.wait_for_log("candidate rejected");
    assert!(line.contains("policy_self_test_failed"), "{line}");
    assert!(line.contains("serving_version=0.1.0"), "{line}");
    assert_eq!(run.check("おすすめは？"), ok);

    // A hostile candidate (loops on real messages): rejected by the exam.
    install(
        &path,
        &component(&unless_warm_up("(loop $spin (br $spin))")),
    );
    let line = run.wait_for_log("candidate rejected");
    assert!(line.contains("policy_timeout"), "{line}");
    assert_eq!(run.check("おすすめは？"), ok);

    // Not a component at all.
    install(&path, b"\0asm garbage");
    let line = run.wait_for_log("candidate rejected");
    assert!(line.contains("policy_refused"), "{line}");
    assert_eq!(run.check("おすすめは？"), ok);

    // A good candidate with another hash: swapped, and logged with both.
    let next = with_custom_section(good.clone(), "mangaassist-test", b"build 2");
    install(&path, &next);
    let line = run.wait_for_log("policy swapped");
    assert!(
        line.contains("version=0.1.0") && line.contains("old_sha256="),
        "{line}"
    );
    assert_eq!(run.check("おすすめは？"), ok);
    assert!(run.check("<script>alert(1)</script>").starts_with(REFUSED));

    // SIGHUP re-reads the file; the same bytes change nothing.
    run.sighup();
    run.wait_for_log("SIGHUP");
    run.wait_for_log("policy unchanged");
    assert_eq!(run.check("おすすめは？"), ok);

    drop(run.stdin);
    let status = run.child.wait().unwrap();
    assert!(status.success());
    let _ = std::fs::remove_dir_all(&dir);
}
