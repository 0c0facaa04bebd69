//! The response cache in a real Redis shared by two replicas: a reply one
//! got is a hit on the other, in the documented format; Redis going away
//! costs misses, not errors, and the cache comes back with it.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::http::post_chat;
use crate::serve::serve;
use mangaassist_test_stores::RedisServer;

fn ask(addr: std::net::SocketAddr, message: &str) -> Value {
    let r = post_chat(
        addr,
        json!({"action": "sendMessage", "data": {"message": message}})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(r.status, 200, "{r:?}");
    r.json()
}

/// Redis calls of `replica` that failed or timed out.
fn redis_errors(replica: &crate::serve::Running) -> u64 {
    replica.server().service().redis.as_ref().unwrap().errors()
}

#[test]
fn replicas_share_the_cache_and_outlive_a_redis_outage() {
    let mut redis = RedisServer::start();
    let config = format!("redis_url = {:?}\nredis_timeout_ms = 200", redis.url());
    let a = serve(&config);
    let b = serve(&config);

    let first = ask(a.addr(), "ワンピースの最新刊はありますか？");
    assert_eq!(first["cached"], false);
    // Written in the background: give it a moment to land.
    let key = format!(
        "mangaassist:reply:v1:{}:{}",
        first["model"].as_str().unwrap(),
        first["cacheKey"].as_str().unwrap()
    );
    let started = Instant::now();
    let stored = loop {
        if let Some(v) = redis.command(&["GET", &key]) {
            break v;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{key} never written"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // The documented value format.
    let stored: Value = serde_json::from_str(&stored).unwrap();
    assert_eq!(stored["text"], first["reply"]);
    assert_eq!(stored["modelId"], first["modelId"]);
    assert_eq!(stored["region"], first["region"]);
    assert_eq!(stored["usage"], first["usage"]);
    // Expiring with the cache TTL (300 s).
    let ttl: i64 = redis.command(&["PTTL", &key]).unwrap().parse().unwrap();
    assert!((290_000..=300_000).contains(&ttl), "{ttl}");

    // The other replica answers from it without asking Bedrock.
    let second = ask(b.addr(), "ワンピースの最新刊はありますか？");
    assert_eq!(second["cached"], true);
    assert_eq!(second["reply"], first["reply"]);
    assert_eq!(b.server().emulator().unwrap().requests("us-east-1"), 0);

    // Redis goes away: answers go on, each at most a timeout slower.
    let port = redis.port;
    redis.stop();
    for i in 0..3 {
        let started = Instant::now();
        let r = ask(a.addr(), &format!("停止中の質問{i}"));
        assert_eq!(r["cached"], false);
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
    assert!(redis_errors(&a) > 0);

    // It comes back on the same port: shared again, by itself.
    let _redis = RedisServer::start_on(port);
    let started = Instant::now();
    loop {
        let message = "復旧後の質問";
        ask(a.addr(), message);
        if ask(b.addr(), message)["cached"] == true {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the cache was not shared again after Redis came back"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn identical_concurrent_misses_across_replicas_make_one_call() {
    let redis = RedisServer::start();
    let config = format!(
        "redis_url = {:?}\nredis_timeout_ms = 200\nemulator_ttft_ms = 300",
        redis.url()
    );
    let replicas = [serve(&config), serve(&config)];
    let addrs: Vec<_> = replicas.iter().map(|r| r.addr()).collect();
    let answers: Vec<Value> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..10)
            .map(|i| {
                let addr = addrs[i % 2];
                s.spawn(move || ask(addr, "同時に届いた同じ質問"))
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let calls: u64 = replicas
        .iter()
        .map(|r| {
            let e = r.server().emulator().unwrap();
            ["us-east-1", "us-west-2", "ap-northeast-1"]
                .iter()
                .map(|region| e.requests(region))
                .sum::<u64>()
        })
        .sum();
    assert_eq!(calls, 1, "one Bedrock call for the whole burst");
    let fresh = answers.iter().filter(|a| a["cached"] == false).count();
    assert_eq!(fresh, 1, "{answers:?}");
    assert!(answers.iter().all(|a| a["reply"] == answers[0]["reply"]));
}

#[test]
fn the_overall_rate_limit_holds_across_replicas() {
    let mut redis = RedisServer::start();
    let config = format!(
        "redis_url = {:?}\nredis_timeout_ms = 200\nrate_per_second = 5\nrate_burst = 5\n\
         client_rate_per_second = 1000\nclient_rate_burst = 1000",
        redis.url()
    );
    let replicas = [serve(&config), serve(&config)];
    let body = json!({"action": "getHistory",
        "data": {"sessionId": "123e4567-e89b-42d3-a456-426614174000"}})
    .to_string();
    let started = Instant::now();
    let statuses: Vec<u16> = (0..30)
        .map(|i| post_chat(replicas[i % 2].addr(), body.as_bytes()).status)
        .collect();
    let elapsed = started.elapsed().as_secs_f64();
    let admitted = statuses.iter().filter(|s| **s != 429).count();
    // One budget for the fleet: burst 5 plus 5 a second, not twice that.
    let most = 5.0 + 5.0 * elapsed + 1.0;
    assert!(
        admitted as f64 <= most && admitted >= 3,
        "{admitted} admitted in {elapsed:.2} s (at most {most:.1}): {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| [404, 429].contains(s)),
        "{statuses:?}"
    );

    // Redis gone: each replica decides alone, nothing fails.
    redis.stop();
    let r = post_chat(replicas[0].addr(), body.as_bytes());
    assert!([404, 429].contains(&r.status), "{r:?}");
    assert!(redis_errors(&replicas[0]) > 0);
}

#[test]
fn a_spend_budget_is_the_fleet_s_not_each_replica_s() {
    let redis = RedisServer::start();
    let config = format!(
        "redis_url = {:?}\nredis_timeout_ms = 200\n\
         api_keys = [{{ id = \"small\", sha256 = \"{}\", tokens_per_minute = 2100 }}]",
        redis.url(),
        mangaassist_service::identity::hash_key("small-key")
    );
    let replicas = [serve(&config), serve(&config)];
    let ask_as = |addr, message: &str| {
        crate::http::post_chat_with(
            addr,
            &["X-Api-Key: small-key"],
            json!({"action": "sendMessage", "data": {"message": message}})
                .to_string()
                .as_bytes(),
        )
    };
    // One call (2048 output tokens reserved, then its usage settled) leaves
    // too little of the 2100-token minute, on the other replica too.
    assert_eq!(ask_as(replicas[0].addr(), "一つ目の質問").status, 200);
    let r = ask_as(replicas[1].addr(), "二つ目の質問");
    assert_eq!(
        (r.status, r.code().as_str()),
        (429, "token_budget_exceeded"),
        "{r:?}"
    );
    assert!(r.header("retry-after").is_some());
}

#[test]
fn a_region_failure_seen_by_one_replica_cools_it_for_all() {
    use mangaassist_emulator::faults::{Fault, FaultPlan};
    let redis = RedisServer::start();
    let config = format!("redis_url = {:?}\nredis_timeout_ms = 200", redis.url());
    let a = serve(&config);
    let b = serve(&config);
    a.server()
        .emulator()
        .unwrap()
        .set_fault("us-east-1", FaultPlan::always(Fault::Error500));
    let first = ask(a.addr(), "東京の在庫はありますか");
    assert_eq!(first["region"], "us-west-2", "{first}");
    // B never saw us-east-1 fail, yet skips it once the fleet knows.
    let started = Instant::now();
    loop {
        let cooling = b
            .server()
            .service()
            .invoker
            .health()
            .snapshot()
            .iter()
            .any(|r| r.region == "us-east-1" && r.cooling_for.is_some());
        if cooling {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "B never learned of it"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let second = ask(b.addr(), "大阪の在庫はありますか");
    assert_eq!(second["region"], "us-west-2", "{second}");
    assert_eq!(b.server().emulator().unwrap().requests("us-east-1"), 0);
    drop(redis);
}

/// A CA and a certificate for 127.0.0.1 signed by it, made with openssl
/// in `dir`; returns (ca.crt, server.crt, server.key).
fn certificates(dir: &std::path::Path) -> [std::path::PathBuf; 3] {
    let run = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-extfile",
        "san.ext",
        "-out",
        "server.crt",
    ]);
    ["ca.crt", "server.crt", "server.key"].map(|f| dir.join(f))
}

/// TLS and AUTH as ElastiCache uses them: `rediss://` with a password,
/// the server's certificate checked against a CA file.
#[test]
fn redis_over_tls_with_a_password() {
    let dir = std::env::temp_dir().join(format!("mangaassist-redis-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let [ca, cert, key] = certificates(&dir);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = std::process::Command::new("redis-server")
        .args([
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
        ])
        .args([
            "--tls-cert-file",
            cert.to_str().unwrap(),
            "--tls-key-file",
            key.to_str().unwrap(),
        ])
        .args([
            "--tls-ca-cert-file",
            ca.to_str().unwrap(),
            "--tls-auth-clients",
            "no",
        ])
        .args([
            "--requirepass",
            "s3cret-pass",
            "--save",
            "",
            "--appendonly",
            "no",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "TLS redis-server did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let config = |password: &str| {
        format!(
            "redis_url = \"rediss://:{password}@127.0.0.1:{port}\"\nredis_timeout_ms = 1000\n\
             redis_ca_file = {:?}",
            ca.display().to_string()
        )
    };
    let a = serve(&config("s3cret-pass"));
    let b = serve(&config("s3cret-pass"));
    let first = ask(a.addr(), "暗号化された接続で");
    assert_eq!(first["cached"], false);
    let second = ask(b.addr(), "暗号化された接続で");
    assert_eq!(second["cached"], true, "shared over TLS with AUTH");
    // A wrong password: every call is refused, answers go on uncached.
    let wrong = serve(&config("wrong-pass"));
    assert_eq!(ask(wrong.addr(), "暗号化された接続で")["cached"], false);
    assert!(redis_errors(&wrong) > 0);
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&dir);
}

/// A Redis that hangs (DEBUG SLEEP) costs each request at most the Redis
/// timeout: answers go on, uncached, and are counted as store failures.
#[test]
fn a_slow_redis_costs_a_timeout_not_an_answer() {
    let redis = RedisServer::start();
    let config = format!("redis_url = {:?}\nredis_timeout_ms = 100", redis.url());
    let a = serve(&config);
    assert_eq!(ask(a.addr(), "準備の質問")["cached"], false);
    let port = redis.port;
    let sleeper = std::thread::spawn(move || {
        // Blocks the server (and this connection) for 3 s.
        let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
        std::io::Write::write_all(&mut s, b"*3\r\n$5\r\nDEBUG\r\n$5\r\nSLEEP\r\n$1\r\n3\r\n")
            .unwrap();
        let mut buf = [0u8; 64];
        let n = std::io::Read::read(&mut s, &mut buf).unwrap_or(0);
        assert_eq!(&buf[..n], b"+OK\r\n", "DEBUG SLEEP refused");
    });
    std::thread::sleep(Duration::from_millis(200));
    let before = redis_errors(&a);
    for i in 0..3 {
        let started = Instant::now();
        let r = ask(a.addr(), &format!("遅い Redis の間の質問{i}"));
        assert_eq!(r["cached"], false);
        // Cache lookup, lock, limits, budgets: each at most 100 ms.
        assert!(
            started.elapsed() < Duration::from_millis(1_500),
            "{:?}",
            started.elapsed()
        );
    }
    assert!(redis_errors(&a) > before);
    sleeper.join().unwrap();
}
