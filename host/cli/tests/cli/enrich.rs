//! `mangaassist enrich` as a person runs it: the sample catalog end to end,
//! a bad catalog refused before any call, Ctrl-C and a torn last line
//! resumed without a gap or a duplicate, refused items listed with their
//! error.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::emulator_cli::start as start_emulator;

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/catalog.jsonl");

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("mangaassist-enrich-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn enrich(args: &[&str], env: &[(&str, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_mangaassist"));
    command
        .arg("enrich")
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("MANGAASSIST_EMULATOR_TTFT_MS", "0")
        .env("MANGAASSIST_EMULATOR_PER_TOKEN_MS", "0")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    command
}

fn run(args: &[&str], env: &[(&str, String)]) -> Output {
    enrich(args, env).output().unwrap()
}

/// Result lines by id; panics on a line that is not whole JSON.
fn results(path: &Path) -> BTreeMap<String, Vec<Value>> {
    let mut by_id: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.is_empty() || text.ends_with('\n'));
    for line in text.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        by_id
            .entry(v["id"].as_str().unwrap().to_string())
            .or_default()
            .push(v);
    }
    by_id
}

fn sample_ids() -> Vec<String> {
    std::fs::read_to_string(SAMPLE)
        .unwrap()
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn the_sample_catalog_is_enriched_once_per_item() {
    let dir = scratch("sample");
    let out = dir.join("results.jsonl");
    let o = run(
        &[SAMPLE, "--task", "synopsis", "--out", out.to_str().unwrap()],
        &[],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains("20 items: 20 done (20 this run, 0 before), 0 failed, 0 left"),
        "{stderr}"
    );
    let by_id = results(&out);
    assert_eq!(by_id.keys().cloned().collect::<Vec<_>>().len(), 20);
    for id in sample_ids() {
        let lines = &by_id[&id];
        assert_eq!(lines.len(), 1, "{id}");
        let line = &lines[0];
        assert_eq!(line["task"], "synopsis");
        assert!(line["text"].as_str().unwrap().len() > 10);
        assert!(line["usage"]["inputTokens"].as_u64().unwrap() > 0);
        assert!(line["costUsd"].as_f64().unwrap() > 0.0);
    }
    // Again: nothing left to do, nothing sent, nothing added.
    let o = run(
        &[SAMPLE, "--task", "synopsis", "--out", out.to_str().unwrap()],
        &[],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("resuming: 20 of 20"), "{stderr}");
    assert_eq!(results(&out).values().map(Vec::len).sum::<usize>(), 20);
    // Another task's results are not this task's: refused, not skipped.
    let o = run(
        &[SAMPLE, "--task", "enrich", "--out", out.to_str().unwrap()],
        &[],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(
        stderr.contains("holds results of the task \"synopsis\""),
        "{stderr}"
    );
    // A damaged line in the middle is not cut away with what follows it.
    let text = std::fs::read_to_string(&out).unwrap();
    let damaged = text.replacen("{\"", "{oops", 1);
    std::fs::write(&out, &damaged).unwrap();
    let o = run(
        &[SAMPLE, "--task", "synopsis", "--out", out.to_str().unwrap()],
        &[],
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(stderr.contains("line 1 is not a result line"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        damaged,
        "nothing cut"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_catalog_is_refused_whole_before_any_call() {
    let dir = scratch("bad");
    let catalog = dir.join("catalog.jsonl");
    std::fs::write(
        &catalog,
        concat!(
            "{\"id\":\"a\",\"title\":\"ONE PIECE\"}\n",
            "{\"id\":\"a\",\"title\":\"dup\"}\n",
            "not json\n",
            "\n",
            "{\"id\":\"b c\",\"title\":\"\",\"price\":1}\n",
        ),
    )
    .unwrap();
    let out = dir.join("results.jsonl");
    let o = run(
        &[
            catalog.to_str().unwrap(),
            "--task",
            "enrich",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert!(!o.status.success());
    let stderr = String::from_utf8_lossy(&o.stderr);
    for expected in [
        "has 5 problem(s); nothing was sent",
        "line 2: /id: id \"a\" is also on line 1 (duplicate_id)",
        "line 3: not JSON",
        "line 5: /price: unknown property",
        "line 5: /id: id may contain only",
        "line 5: /title: title must have at least 1 character (too_short)",
    ] {
        assert!(stderr.contains(expected), "{expected:?} not in {stderr}");
    }
    assert!(!out.exists(), "no results file for a refused catalog");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn ctrl_c_and_a_torn_line_are_resumed_without_gap_or_duplicate() {
    // A slow model (the emulator process, 150 ms to first token) so the
    // run is still going when Ctrl-C comes.
    let emulator = start_emulator(&["--ttft-ms", "150"]);
    let env = [
        ("MANGAASSIST_BEDROCK", "aws".to_string()),
        ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", emulator.1.clone()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
    ];
    let dir = scratch("resume");
    let out = dir.join("results.jsonl");
    let args = [
        SAMPLE,
        "--task",
        "enrich",
        "--out",
        out.to_str().unwrap(),
        "--concurrency",
        "2",
    ];
    let child = enrich(&args, &env).spawn().unwrap();
    let started = Instant::now();
    while results_count(&out) < 4 {
        assert!(started.elapsed() < Duration::from_secs(20), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "{stderr}");
    assert!(stderr.contains("interrupted with"), "{stderr}");
    let first = results(&out);
    assert!(first.len() < 20, "stopped early: {}", first.len());
    assert!(first.values().all(|l| l.len() == 1));
    // A crash mid-write leaves a torn last line: it is removed and asked again.
    let mut text = std::fs::read_to_string(&out).unwrap();
    text.push_str("{\"id\":\"kingdom-001\",\"task\":\"enr");
    std::fs::write(&out, text).unwrap();

    let o = run(&args, &env);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("resuming: {} of 20", first.len())),
        "{stderr}"
    );
    assert!(stderr.contains("partial line"), "{stderr}");
    let all = results(&out);
    assert_eq!(all.len(), 20, "no gap");
    assert!(all.values().all(|l| l.len() == 1), "no duplicate");
    let _ = std::fs::remove_dir_all(&dir);
}

fn results_count(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

#[test]
fn items_bedrock_refuses_are_listed_with_their_error_and_retried_next_run() {
    let emulator = start_emulator(&["--fault", "us-east-1=validation"]);
    let env = [
        ("MANGAASSIST_BEDROCK", "aws".to_string()),
        ("MANGAASSIST_REGIONS", "[\"us-east-1\"]".to_string()),
        ("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", emulator.1.clone()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_ACCESS_KEY_ID", "testing".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
    ];
    let dir = scratch("refused");
    let catalog = dir.join("catalog.jsonl");
    std::fs::write(
        &catalog,
        "{\"id\":\"a\",\"title\":\"x\"}\n{\"id\":\"b\",\"title\":\"y\"}\n",
    )
    .unwrap();
    let out = dir.join("results.jsonl");
    let o = run(
        &[
            catalog.to_str().unwrap(),
            "--task",
            "synopsis",
            "--out",
            out.to_str().unwrap(),
        ],
        &env,
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(stderr.contains("2 failed"), "{stderr}");
    let failed = std::fs::read_to_string(dir.join("results.failed.jsonl")).unwrap();
    let lines: Vec<Value> = failed
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 2);
    assert!(
        lines
            .iter()
            .all(|l| l["error"]["code"] == "bedrock_rejected"),
        "{failed}"
    );
    // The fault gone, the next run answers them and the list goes away.
    emulator.control("DELETE", "/_emulator/faults/us-east-1", "");
    let args = [
        catalog.to_str().unwrap(),
        "--task",
        "synopsis",
        "--out",
        out.to_str().unwrap(),
    ];
    let o = run(&args, &env);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(results(&out).len(), 2);
    assert!(!dir.join("results.failed.jsonl").exists());
    let _ = std::fs::remove_dir_all(&dir);
}
