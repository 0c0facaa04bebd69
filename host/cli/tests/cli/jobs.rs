//! The batch path as processes, on both backends: `jobs setup`, a job
//! posted to an API-only `serve`, a `mangaassist worker` killed with
//! SIGKILL mid-batch and a second one started: every item answered
//! exactly once, nothing left in the queue, the worker stopping cleanly
//! on SIGTERM.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use mangaassist_test_stores::MotoServer;
use serde_json::{Value, json};

use crate::http::{exchange, get, raw_request};
use crate::serve::listening;

/// The environment of every process of one scenario.
struct Scenario {
    env: Vec<(String, String)>,
    _moto: Option<MotoServer>,
}

fn scenario(name: &str, aws: bool) -> Scenario {
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "mangaassist-cli-jobs-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    let mut env = vec![
        ("MANGA_ENV".to_string(), "dev".to_string()),
        (
            "MANGAASSIST_JOBS_DIR".to_string(),
            dir.display().to_string(),
        ),
        ("MANGAASSIST_ADMIN_LISTEN".to_string(), "off".to_string()),
        (
            "MANGAASSIST_EMULATOR_PER_TOKEN_MS".to_string(),
            "0".to_string(),
        ),
        (
            "MANGAASSIST_JOBS_VISIBILITY_SECS".to_string(),
            "2".to_string(),
        ),
        (
            "MANGAASSIST_JOBS_RETRY_BASE_MS".to_string(),
            "50".to_string(),
        ),
        (
            "MANGAASSIST_JOBS_RATE_PER_SECOND".to_string(),
            "0".to_string(),
        ),
    ];
    let moto = aws.then(MotoServer::start);
    if let Some(moto) = &moto {
        env.extend(moto.env().into_iter().map(|(k, v)| (k.to_string(), v)));
        env.push(("MANGAASSIST_JOBS_SQS".into(), "true".into()));
        env.push(("MANGAASSIST_JOBS_TABLE".into(), "catalog-jobs".into()));
    }
    Scenario { env, _moto: moto }
}

impl Scenario {
    fn command(&self, args: &[&str], extra: &[(&str, &str)]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_mangaassist"));
        command
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        command.envs(extra.iter().copied());
        command
    }

    fn run(&self, args: &[&str]) -> Output {
        self.command(args, &[]).output().unwrap()
    }

    /// `serve` that takes jobs but works none.
    fn api(&self) -> (Child, SocketAddr) {
        let mut child = self
            .command(
                &["serve", "--listen", "127.0.0.1:0"],
                &[
                    ("MANGAASSIST_JOBS_WORKERS", "0"),
                    ("MANGAASSIST_EMULATOR_TTFT_MS", "0"),
                ],
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let addr = listening(&mut child);
        (child, addr)
    }

    /// A worker whose Bedrock (its embedded emulator) takes 40 ms an item.
    fn worker(&self) -> Child {
        self.command(
            &["worker"],
            &[
                ("MANGAASSIST_JOBS_WORKERS", "4"),
                ("MANGAASSIST_EMULATOR_TTFT_MS", "40"),
            ],
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
    }
}

fn job_state(addr: SocketAddr, id: &str) -> Value {
    get(addr, &format!("/v1/jobs/{id}")).json()
}

fn wait_until(addr: SocketAddr, id: &str, limit: Duration, ok: impl Fn(&Value) -> bool) -> Value {
    let started = Instant::now();
    loop {
        let job = job_state(addr, id);
        if ok(&job) {
            return job;
        }
        assert!(
            started.elapsed() < limit,
            "not there after {limit:?}: {job}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn a_killed_worker_loses_and_repeats_nothing(aws: bool) {
    let s = scenario(if aws { "kill-aws" } else { "kill-embedded" }, aws);
    let setup = s.run(&["jobs", "setup"]);
    let said = String::from_utf8_lossy(&setup.stdout).to_string();
    assert!(
        setup.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&setup.stderr)
    );
    if aws {
        assert!(said.contains("SQS queue mangaassist-jobs ready"), "{said}");
        assert!(
            said.contains("DynamoDB table catalog-jobs created"),
            "{said}"
        );
    } else {
        assert!(
            said.contains("embedded queue and job store ready"),
            "{said}"
        );
    }
    let (mut api, addr) = s.api();
    let items: Vec<Value> = (0..300)
        .map(|i| json!({"id": format!("vol-{i:03}"), "title": format!("巻 {i}")}))
        .collect();
    let body = json!({"task": "enrich", "items": items}).to_string();
    let r = exchange(
        addr,
        &raw_request(
            "POST",
            "/v1/jobs",
            &["Content-Type: application/json"],
            body.as_bytes(),
        ),
    );
    assert_eq!(r.status, 202, "{}", String::from_utf8_lossy(&r.body));
    let id = r.json()["jobId"].as_str().unwrap().to_string();

    let mut first = s.worker();
    let at_kill = wait_until(addr, &id, Duration::from_secs(60), |j| {
        j["done"].as_u64() >= Some(60)
    });
    first.kill().unwrap(); // SIGKILL: items in flight are cut off
    first.wait().unwrap();
    let at_kill = job_state(addr, &id)["done"]
        .as_u64()
        .unwrap()
        .max(at_kill["done"].as_u64().unwrap());
    assert!(
        at_kill < 300,
        "the first worker finished before it was killed"
    );

    let mut second = s.worker();
    let done = wait_until(addr, &id, Duration::from_secs(120), |j| {
        j["state"] == "completed"
    });
    assert_eq!(
        (done["done"].as_u64(), done["failed"].as_u64()),
        (Some(300), Some(0)),
        "{done}"
    );
    let results = get(addr, &format!("/v1/jobs/{id}/results"));
    let text = String::from_utf8(results.body).unwrap();
    let ids: Vec<String> = text
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(
        (ids.len(), unique.len()),
        (300, 300),
        "each item exactly once"
    );
    // The killed worker's items came back and were finished; nothing waits.
    let started = Instant::now();
    loop {
        let depth = s.run(&["jobs", "depth"]);
        let depth: Value = serde_json::from_slice(&depth.stdout).unwrap();
        if depth == json!({"visible": 0, "inFlight": 0, "dead": 0}) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{depth}");
        std::thread::sleep(Duration::from_millis(200));
    }
    // SIGTERM: the worker drains and exits cleanly.
    let status = Command::new("kill")
        .args(["-TERM", &second.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exited = second.wait().unwrap();
    assert!(exited.success(), "{exited:?}");
    let _ = api.kill();
    let _ = api.wait();
}

#[test]
fn a_killed_worker_loses_and_repeats_nothing_embedded() {
    a_killed_worker_loses_and_repeats_nothing(false);
}

#[test]
fn a_killed_worker_loses_and_repeats_nothing_sqs_dynamodb() {
    a_killed_worker_loses_and_repeats_nothing(true);
}

#[test]
fn dead_letters_are_listed_and_redriven_from_the_command_line() {
    let s = scenario("dead", false);
    assert!(s.run(&["jobs", "setup"]).status.success());
    // A message no worker can read, onto the embedded queue's file.
    let dir = &s
        .env
        .iter()
        .find(|(k, _)| k == "MANGAASSIST_JOBS_DIR")
        .unwrap()
        .1;
    let queue = mangaassist_queue::EmbeddedQueue::open(
        &PathBuf::from(dir).join("queue.db"),
        mangaassist_queue::QueuePolicy::default(),
    )
    .unwrap();
    let poison = mangaassist_queue::Outgoing {
        body: "{\"jobId\": 7}".into(),
        group: None,
        dedup_id: None,
    };
    queue.send("mangaassist-jobs", &[poison]).unwrap();
    let dead_now = |s: &Scenario| {
        let out = s.run(&["jobs", "dead-letters"]);
        assert!(out.status.success());
        String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    let until_dead = |s: &Scenario| {
        let started = Instant::now();
        loop {
            let dead = dead_now(s);
            if !dead.is_empty() {
                return dead;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "never dead-lettered"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    let mut worker = s.worker();
    let dead = until_dead(&s);
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["message"], json!({"jobId": 7}));
    assert!(
        dead[0]["lastError"]
            .as_str()
            .unwrap()
            .starts_with("bad_message"),
        "{dead:?}"
    );
    worker.kill().unwrap();
    worker.wait().unwrap();
    let moved = s.run(&["jobs", "redrive"]);
    assert_eq!(
        String::from_utf8_lossy(&moved.stdout).trim(),
        r#"{"redriven":1}"#
    );
    assert!(dead_now(&s).is_empty());
    let depth: Value = serde_json::from_slice(&s.run(&["jobs", "depth"]).stdout).unwrap();
    assert_eq!(depth, json!({"visible": 1, "inFlight": 0, "dead": 0}));
    // Still unreadable: the next worker sends it back to the dead letters.
    let mut worker = s.worker();
    assert_eq!(until_dead(&s).len(), 1);
    worker.kill().unwrap();
    worker.wait().unwrap();
}
