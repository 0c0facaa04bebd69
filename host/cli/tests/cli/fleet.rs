//! Three `mangaassist serve` processes as one fleet: Redis (redis-server)
//! for the cache, single flight, limits and cooldowns, DynamoDB (moto) for
//! sessions, one Bedrock emulator process for all, reached through the
//! real SDKs. What one replica learns, the others know; a replica killed
//! and Redis restarted under load lose no accepted turn.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mangaassist_test_stores::{MotoServer, RedisServer, free_port};
use serde_json::{Value, json};

use crate::emulator_cli::{Emulator, start as start_emulator};
use crate::http::{Response, parse};

struct Replica {
    child: Child,
    addr: SocketAddr,
    admin: SocketAddr,
}

impl Drop for Replica {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

struct Fleet {
    redis: RedisServer,
    _moto: MotoServer,
    emulator: Emulator,
    replicas: Vec<Replica>,
}

fn replica(redis: &RedisServer, moto: &MotoServer, emulator: &Emulator) -> Replica {
    let admin = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let mut child = Command::new(env!("CARGO_BIN_EXE_mangaassist"))
        .args(["serve", "--listen", "127.0.0.1:0"])
        .envs(moto.env())
        // Bedrock is the emulator process, through the SDK's own setting.
        .env("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", &emulator.1)
        .env("MANGAASSIST_BEDROCK", "aws")
        .env("MANGAASSIST_REDIS_URL", redis.url())
        // Generous: a loaded CI machine must not turn the shared state
        // into per-replica fallbacks (those are tested on their own).
        .env("MANGAASSIST_REDIS_TIMEOUT_MS", "500")
        .env("MANGAASSIST_SESSIONS_TABLE", "sessions")
        .env("MANGAASSIST_ADMIN_LISTEN", admin.to_string())
        // Each test client is an address of its own behind "the proxy".
        .env("MANGAASSIST_TRUSTED_PROXIES", r#"["127.0.0.1"]"#)
        .env("MANGAASSIST_CLIENT_RATE_PER_SECOND", "2")
        .env("MANGAASSIST_CLIENT_RATE_BURST", "6")
        .env("MANGAASSIST_SYNC_BUDGET_MS", "5000")
        .env("MANGAASSIST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let addr = crate::serve::listening(&mut child);
    Replica { child, addr, admin }
}

fn fleet() -> Fleet {
    let redis = RedisServer::start();
    let moto = MotoServer::start();
    let (out, err, ok) =
        crate::run::mangaassist_env(&["sessions-table", "--table", "sessions"], &moto.env());
    let out = format!("{out}{err}");
    assert!(ok, "{out}");
    let emulator = start_emulator(&["--ttft-ms", "300", "--per-token-ms", "1"]);
    let replicas = (0..3).map(|_| replica(&redis, &moto, &emulator)).collect();
    Fleet {
        redis,
        _moto: moto,
        emulator,
        replicas,
    }
}

/// One request as from `client` (an address behind the trusted proxy);
/// `None` when the replica cannot be reached (killed).
fn try_send(addr: SocketAddr, client: &str, body: &Value) -> Option<Response> {
    let body = body.to_string();
    let mut stream = TcpStream::connect(addr).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .ok()?;
    let request = format!(
        "POST /v1/chat HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         X-Forwarded-For: {client}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).ok()?;
    (!raw.is_empty()).then(|| parse(&raw))
}

fn send(addr: SocketAddr, client: &str, body: &Value) -> Response {
    try_send(addr, client, body).expect("replica answers")
}

fn message(text: &str, session: Option<&str>) -> Value {
    match session {
        Some(id) => json!({"action": "sendMessage", "data": {"message": text, "sessionId": id}}),
        None => json!({"action": "sendMessage", "data": {"message": text}}),
    }
}

fn history(addr: SocketAddr, client: &str, session: &str) -> Vec<String> {
    let r = send(
        addr,
        client,
        &json!({"action": "getHistory", "data": {"sessionId": session}}),
    );
    assert_eq!(r.status, 200, "{r:?}");
    r.json()["turns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["content"].as_str().unwrap().to_string())
        .collect()
}

/// Bedrock calls the emulator has had, every region.
fn emulator_calls(fleet: &Fleet) -> u64 {
    let (_, body) = fleet.emulator.control("GET", "/_emulator/state", "");
    let state: Value = serde_json::from_str(&body).unwrap();
    state["regions"]
        .as_object()
        .map(|regions| {
            regions
                .values()
                .map(|r| r["requests"].as_u64().unwrap())
                .sum()
        })
        .unwrap_or(0)
}

fn metrics(admin: SocketAddr) -> String {
    String::from_utf8(crate::http::get(admin, "/metrics").body).unwrap()
}

#[test]
fn a_fleet_shares_sessions_cache_single_flight_limits_and_cooldowns() {
    let fleet = fleet();
    let [a, b, c] = [0, 1, 2].map(|i| fleet.replicas[i].addr);

    // A conversation moves between replicas and keeps its history.
    let first = send(a, "10.0.0.1", &message("ワンピースの最新刊は？", None));
    assert_eq!(first.status, 200, "{first:?}");
    let session = first.json()["sessionId"].as_str().unwrap().to_string();
    let second = send(b, "10.0.0.1", &message("その次は？", Some(&session)));
    assert_eq!(second.status, 200, "{second:?}");
    let turns = history(c, "10.0.0.1", &session);
    assert_eq!(turns.len(), 4, "{turns:?}");
    assert_eq!(turns[0], "ワンピースの最新刊は？");
    assert_eq!(turns[2], "その次は？");
    // And stays its owner's on every replica.
    let r = send(
        c,
        "10.0.0.99",
        &json!({"action": "getHistory", "data": {"sessionId": session}}),
    );
    assert_eq!(r.status, 404, "{r:?}");

    // A reply one replica got is a hit on another.
    let r = send(b, "10.0.0.2", &message("ワンピースの最新刊は？", None));
    assert_eq!(r.json()["cached"], true, "{r:?}");

    // Single flight: 18 identical new questions at once, spread over the
    // fleet, make one Bedrock call.
    let before = emulator_calls(&fleet);
    let answers: Vec<Response> = std::thread::scope(|s| {
        let tasks: Vec<_> = (0..18)
            .map(|i| {
                let addr = fleet.replicas[i % 3].addr;
                s.spawn(move || {
                    send(
                        addr,
                        &format!("10.0.1.{i}"),
                        &message("呪術廻戦の新刊", None),
                    )
                })
            })
            .collect();
        tasks.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert!(answers.iter().all(|r| r.status == 200), "{answers:?}");
    assert_eq!(emulator_calls(&fleet) - before, 1, "one call for the fleet");
    let texts: std::collections::BTreeSet<String> = answers
        .iter()
        .map(|r| r.json()["reply"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(texts.len(), 1);

    // One client's rate limit holds across the fleet: burst 6 at 2/s, not
    // three times that.
    let started = Instant::now();
    let statuses: Vec<u16> = (0..18)
        .map(|i| {
            let body = json!({"action": "getHistory", "data": {"sessionId": session}});
            send(fleet.replicas[i % 3].addr, "10.0.2.1", &body).status
        })
        .collect();
    let refill = (started.elapsed().as_secs_f64() * 2.0).ceil() as usize;
    let admitted = statuses.iter().filter(|s| **s != 429).count();
    assert!(
        admitted >= 6 && admitted <= 6 + refill,
        "{admitted} admitted, burst 6 + {refill} refilled: {statuses:?}"
    );

    // A region that fails on one replica cools for all.
    fleet.emulator.control(
        "PUT",
        "/_emulator/faults/us-east-1",
        r#"{"fault":"error503"}"#,
    );
    let calls_east = |fleet: &Fleet| {
        let (_, body) = fleet.emulator.control("GET", "/_emulator/state", "");
        let state: Value = serde_json::from_str(&body).unwrap();
        state["regions"]["us-east-1"]["requests"]
            .as_u64()
            .unwrap_or(0)
    };
    let east_before = calls_east(&fleet);
    let r = send(a, "10.0.3.1", &message("チェンソーマンはありますか", None));
    assert_eq!(r.status, 200, "{r:?}");
    assert_eq!(r.json()["region"], "us-west-2");
    assert_eq!(calls_east(&fleet) - east_before, 1);
    // Published at once; the others read it within their 250 ms poll.
    wait_for(
        "replica b to learn of the cooldown",
        Duration::from_secs(3),
        || {
            metrics(fleet.replicas[1].admin).lines().any(|l| {
                l.starts_with("mangaassist_region_cooldown_seconds{region=\"us-east-1\"}")
                    && !l.ends_with(" 0.0")
            })
        },
    );
    for (i, addr) in [b, c].into_iter().enumerate() {
        let r = send(
            addr,
            &format!("10.0.3.{}", i + 2),
            &message(&format!("別の質問 {i}"), None),
        );
        assert_eq!(r.json()["region"], "us-west-2", "{r:?}");
    }
    assert_eq!(
        calls_east(&fleet) - east_before,
        1,
        "b and c never tried us-east-1"
    );
    fleet
        .emulator
        .control("DELETE", "/_emulator/faults/us-east-1", "");
    drop(fleet);
}

/// Per client: its session and the questions answered in it.
type Accepted = BTreeMap<String, (String, Vec<String>)>;

#[test]
fn a_replica_killed_and_redis_restarted_under_load_lose_no_accepted_turn() {
    let mut fleet = fleet();
    fleet.emulator.control(
        "PUT",
        "/_emulator/latency",
        r#"{"ttftMs":20,"perTokenMs":0}"#,
    );
    let addrs: Vec<SocketAddr> = fleet.replicas.iter().map(|r| r.addr).collect();
    // Accepted exchanges per client: (session, question) as answered.
    let accepted: Arc<Mutex<Accepted>> = Arc::default();
    let failures: Arc<Mutex<Vec<String>>> = Arc::default();
    let clients: Vec<_> = (0..12)
        .map(|i| {
            let (addrs, accepted, failures) = (addrs.clone(), accepted.clone(), failures.clone());
            std::thread::spawn(move || {
                let client = format!("10.1.0.{i}");
                let mut session: Option<String> = None;
                let mut asked = 0;
                // Four exchanges per client (the history keeps the last ten
                // turns), round-robin over the replicas; a replica that
                // cannot be reached is skipped, as a load balancer would.
                while asked < 4 {
                    let question = format!("質問 {i}-{asked}");
                    let mut answered = false;
                    for attempt in 0..addrs.len() {
                        let addr = addrs[(i + asked + attempt) % addrs.len()];
                        let Some(r) =
                            try_send(addr, &client, &message(&question, session.as_deref()))
                        else {
                            continue;
                        };
                        if r.status != 200 {
                            failures.lock().unwrap().push(format!("{question}: {r:?}"));
                            break;
                        }
                        let id = r.json()["sessionId"].as_str().unwrap().to_string();
                        session.get_or_insert(id.clone());
                        accepted
                            .lock()
                            .unwrap()
                            .entry(client.clone())
                            .or_insert_with(|| (id, Vec::new()))
                            .1
                            .push(question.clone());
                        answered = true;
                        break;
                    }
                    if !answered {
                        failures
                            .lock()
                            .unwrap()
                            .push(format!("{question}: no replica"));
                    }
                    asked += 1;
                    std::thread::sleep(Duration::from_millis(400));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    // Replica b dies without warning; Redis restarts.
    let mut b = fleet.replicas.remove(1);
    b.child.kill().unwrap();
    b.child.wait().unwrap();
    let port = fleet.redis.port;
    fleet.redis.stop();
    std::thread::sleep(Duration::from_millis(300));
    fleet.redis = RedisServer::start_on(port);
    for c in clients {
        c.join().unwrap();
    }
    let failures = failures.lock().unwrap();
    assert!(failures.is_empty(), "{failures:?}");
    let accepted = accepted.lock().unwrap();
    assert_eq!(accepted.len(), 12);
    // The outage is on /metrics: store latency by operation, and errors.
    let m = metrics(fleet.replicas[0].admin);
    for series in [
        "mangaassist_store_call_seconds_count{store=\"dynamodb\",operation=\"put_item\"}",
        "mangaassist_store_call_seconds_count{store=\"redis\",operation=\"get\"}",
        "mangaassist_store_errors_total{store=\"redis\",",
    ] {
        assert!(m.contains(series), "{series} missing from:\n{m}");
    }
    let survivor = fleet.replicas[0].addr;
    for (client, (session, questions)) in accepted.iter() {
        assert_eq!(questions.len(), 4, "{client}");
        let turns = history(survivor, client, session);
        for q in questions {
            assert!(turns.contains(q), "{client}: {q} lost from {turns:?}");
        }
    }
}

/// Polls `done` until it holds; fails the test after `within`.
fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < within, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Puts SSM parameters into `moto` with boto3 from moto's own virtual
/// environment (a real AWS client, as an operator's script would be).
fn put_parameters(moto: &MotoServer, parameters: &[(&str, &str)]) {
    let python = concat!(env!("CARGO_MANIFEST_DIR"), "/../../.venv/moto/bin/python");
    let script = "import boto3, json, sys\n\
        ssm = boto3.client('ssm', endpoint_url=sys.argv[1], region_name='us-east-1')\n\
        for name, value in json.loads(sys.argv[2]):\n    \
            ssm.put_parameter(Name=name, Value=value, Type='SecureString', Overwrite=True)\n";
    let pairs: Vec<[&str; 2]> = parameters.iter().map(|(n, v)| [*n, *v]).collect();
    let status = Command::new(python)
        .args([
            "-c",
            script,
            &moto.url(),
            &serde_json::to_string(&pairs).unwrap(),
        ])
        .envs(moto.env())
        .status()
        .unwrap();
    assert!(status.success());
}

fn with_key(addr: SocketAddr, key: &str) -> u16 {
    let body = message("こんにちは", None).to_string();
    crate::http::post_chat_with(addr, &[&format!("X-Api-Key: {key}")], body.as_bytes()).status
}

#[test]
fn settings_are_read_from_ssm_at_start_and_again_on_sighup() {
    use mangaassist_service::identity::hash_key;
    let moto = MotoServer::start();
    let keys = |id: &str, key: &str| json!([{"id": id, "sha256": hash_key(key)}]).to_string();
    put_parameters(
        &moto,
        &[
            (
                "/manga-assist/staging/api_keys",
                &keys("one", "key-one-0123456789"),
            ),
            ("/manga-assist/staging/emulator_ttft_ms", "0"),
        ],
    );
    let log = std::env::temp_dir().join(format!("mangaassist-ssm-{}.log", std::process::id()));
    let serve = |moto: &MotoServer, stderr: Stdio| {
        Command::new(env!("CARGO_BIN_EXE_mangaassist"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .envs(moto.env())
            .env("MANGA_ENV", "staging")
            .env("MANGAASSIST_SSM_PARAMETERS", "true")
            .env("MANGAASSIST_ADMIN_LISTEN", "off")
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap()
    };
    // staging requires auth: it starts only because SSM holds a key.
    let mut child = serve(&moto, Stdio::from(std::fs::File::create(&log).unwrap()));
    let addr = crate::serve::listening(&mut child);
    let replica = Replica {
        child,
        addr,
        admin: addr,
    };
    assert_eq!(with_key(addr, "key-one-0123456789"), 200);
    assert_eq!(with_key(addr, "key-two-0123456789"), 401);

    // Rotation: the key changes in SSM, SIGHUP, no restart.
    put_parameters(
        &moto,
        &[(
            "/manga-assist/staging/api_keys",
            &keys("two", "key-two-0123456789"),
        )],
    );
    let hup = || {
        let status = Command::new("kill")
            .args(["-HUP", &replica.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    };
    hup();
    wait_for(
        "the new key to take effect",
        Duration::from_secs(10),
        || with_key(addr, "key-two-0123456789") == 200,
    );
    assert_eq!(
        with_key(addr, "key-one-0123456789"),
        401,
        "the old key is gone"
    );

    // A bad parameter: the reload is refused and the running settings kept;
    // a new start is refused, naming the parameter.
    put_parameters(&moto, &[("/manga-assist/staging/rate_per_secnd", "5")]);
    hup();
    wait_for(
        "the bad reload to be refused",
        Duration::from_secs(10),
        || {
            std::fs::read_to_string(&log)
                .unwrap()
                .contains("configuration read again is not valid")
        },
    );
    assert_eq!(
        with_key(addr, "key-two-0123456789"),
        200,
        "the running settings kept"
    );
    let mut refused = serve(&moto, Stdio::piped());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = refused.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = refused.kill();
            panic!("a start with an unknown SSM parameter was not refused");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success());
    let mut stderr = String::new();
    refused
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        stderr.contains("SSM parameter /manga-assist/staging/rate_per_secnd: unknown field"),
        "{stderr}"
    );
    drop(replica);
    let _ = std::fs::remove_file(&log);
}
