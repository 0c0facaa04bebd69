//! One line in, one line out: `{"p": pattern, "t": [text, ...]}` becomes
//! `{"refused": code | null, "m": [bool, ...]}`, each text checked against a
//! policy of that one pattern. `tests/differential/patterns.py` writes the
//! cases, asks Python's `re` the same and compares.
//!
//! The policy's other checks cannot decide here: no size limit to speak of,
//! a control ratio of 1 (a count never exceeds the length), and the pattern
//! check runs before the mixed-script one.

use mangaassist_core::policy::{Policy, PolicyConfig};
use serde::{Deserialize, Serialize};
use std::io::{BufRead, BufWriter, Write};

#[derive(Deserialize)]
struct Case {
    p: String,
    t: Vec<String>,
}

#[derive(Serialize)]
struct Answer<'a> {
    refused: Option<&'a str>,
    m: Vec<bool>,
}

fn answer(line: &str) -> Result<String, String> {
    let case: Case = serde_json::from_str(line).map_err(|e| format!("a bad case line: {e}"))?;
    let config = PolicyConfig {
        max_message_bytes: usize::MAX,
        disallowed_patterns: vec![case.p],
        max_control_ratio: 1.0,
    };
    let answer = match Policy::new(&config) {
        Err(e) => Answer {
            refused: Some(e.code()),
            m: Vec::new(),
        },
        Ok(policy) => Answer {
            refused: None,
            m: case
                .t
                .iter()
                .map(|t| matches!(policy.check(t), Err(r) if r.code() == "disallowed_pattern"))
                .collect(),
        },
    };
    serde_json::to_string(&answer).map_err(|e| e.to_string())
}

fn main() -> std::process::ExitCode {
    let stdin = std::io::stdin().lock();
    let mut out = BufWriter::new(std::io::stdout().lock());
    for line in stdin.lines() {
        let written = line
            .map_err(|e| e.to_string())
            .and_then(|l| answer(&l))
            .and_then(|a| writeln!(out, "{a}").map_err(|e| e.to_string()));
        if let Err(e) = written {
            eprintln!("pattern-diff: {e}");
            return std::process::ExitCode::FAILURE;
        }
    }
    match out.flush() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pattern-diff: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
