//! The service at the edge, attacked over real sockets on 127.0.0.1:
//! credentials, session theft, spend budgets, Host and Origin checks,
//! connection floods, slow headers, oversize headers and frames, idle and
//! half-sent WebSockets. Every flood is bounded in count and time.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use mangaassist_service::identity::{Claims, hash_key, mint, unix_now};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::http::{Response, exchange, get, post_chat_with, raw_request};
use crate::serve::serve;

const SECRET: &str = "a user-token secret of 32 bytes or more";

/// A service that requires credentials: two keys and user tokens.
fn guarded(extra: &str) -> crate::serve::Running {
    serve(&format!(
        "auth_required = true\n\
         user_token_secrets = [{SECRET:?}]\n\
         api_keys = [{{ id = \"alice\", sha256 = \"{}\" }}, {{ id = \"mallory\", sha256 = \"{}\" }}]\n{extra}",
        hash_key("alice-key"),
        hash_key("mallory-key"),
    ))
}

fn chat(addr: SocketAddr, headers: &[&str], body: &Value) -> Response {
    post_chat_with(addr, headers, body.to_string().as_bytes())
}

fn ask(message: &str) -> Value {
    json!({"action": "sendMessage", "data": {"message": message}})
}

fn code(r: &Response) -> String {
    r.code()
}

fn token(sub: &str, ttl: u64) -> String {
    mint(
        SECRET.as_bytes(),
        &Claims {
            sub: sub.into(),
            exp: unix_now() + ttl,
            iat: None,
        },
    )
    .unwrap()
}

#[test]
fn credentials_are_required_checked_and_named() {
    let running = guarded("");
    let addr = running.addr();
    let r = chat(addr, &[], &ask("こんにちは"));
    assert_eq!((r.status, code(&r).as_str()), (401, "auth_required"));
    let r = chat(addr, &["X-Api-Key: alice-kez"], &ask("こんにちは"));
    assert_eq!((r.status, code(&r).as_str()), (401, "invalid_api_key"));
    assert_eq!(
        chat(addr, &["X-Api-Key: alice-key"], &ask("こんにちは")).status,
        200
    );
    let bearer = format!("Authorization: Bearer {}", token("u-1", 300));
    assert_eq!(chat(addr, &[&bearer], &ask("こんにちは")).status, 200);
    let expired = mint(
        SECRET.as_bytes(),
        &Claims {
            sub: "u-1".into(),
            exp: unix_now() - 1,
            iat: None,
        },
    )
    .unwrap();
    let r = chat(
        addr,
        &[&format!("Authorization: Bearer {expired}")],
        &ask("hi"),
    );
    assert_eq!((r.status, code(&r).as_str()), (401, "token_expired"));
    // The public health check needs nothing and tells nothing.
    assert_eq!(get(addr, "/healthz").json(), json!({"status": "ok"}));

    // WebSockets: refused before the upgrade without a credential; a
    // browser's user token comes as ?token=.
    let url = format!("ws://{addr}/v1/ws");
    let with_token = format!("{url}?token={}", token("u-2", 300));
    running.runtime.block_on(async {
        let refused = tokio_tungstenite::connect_async(&url).await;
        let Err(tokio_tungstenite::tungstenite::Error::Http(response)) = refused else {
            panic!("upgrade without a credential was accepted")
        };
        assert_eq!(response.status(), 401);
        let (mut ws, _) = tokio_tungstenite::connect_async(&with_token).await.unwrap();
        ws.send(Message::text(ask("こんにちは").to_string()))
            .await
            .unwrap();
        let status = loop {
            let Message::Text(t) = ws.next().await.unwrap().unwrap() else {
                continue;
            };
            let v: Value = serde_json::from_str(&t).unwrap();
            if v["type"] == "response" {
                break v["status"].as_u64().unwrap();
            }
        };
        assert_eq!(status, 200);
    });
}

#[test]
fn guessing_keys_is_rate_limited_like_any_flood() {
    let running = guarded("client_rate_per_second = 1\nclient_rate_burst = 3");
    let addr = running.addr();
    let codes: Vec<String> = (0..5)
        .map(|i| code(&chat(addr, &[&format!("X-Api-Key: guess-{i}")], &ask("hi"))))
        .collect();
    assert_eq!(&codes[..3], ["invalid_api_key"; 3], "{codes:?}");
    assert_eq!(&codes[3..], ["client_rate_limited"; 2], "{codes:?}");
}

#[test]
fn another_identity_cannot_see_use_or_clear_a_session() {
    let running = guarded("");
    let addr = running.addr();
    let alice = "X-Api-Key: alice-key";
    let mallory = "X-Api-Key: mallory-key";
    let first = chat(addr, &[alice], &ask("おすすめは？")).json();
    let session = first["sessionId"].as_str().unwrap().to_string();
    let on = |action: &str| json!({"action": action, "data": {"sessionId": session}});
    let mut stolen = ask("今までの会話を全部見せて");
    stolen["data"]["sessionId"] = json!(session);
    for (what, body) in [
        ("getHistory", on("getHistory")),
        ("clearSession", on("clearSession")),
        ("sendMessage", stolen.clone()),
    ] {
        let r = chat(addr, &[mallory], &body);
        assert_eq!(r.status, 404, "{what}: {r:?}");
        assert_eq!(code(&r), "session_not_found", "{what}");
        // Word for word what an id that never existed gets.
        let mut unknown = body.clone();
        unknown["data"]["sessionId"] = json!("123e4567-e89b-42d3-a456-426614174000");
        assert_eq!(chat(addr, &[mallory], &unknown).body, r.body, "{what}");
    }
    // A user token whose subject is another is another identity too.
    let bearer = format!("Authorization: Bearer {}", token("alice", 300));
    assert_eq!(chat(addr, &[&bearer], &on("getHistory")).status, 404);
    // Alice's session is untouched.
    let history = chat(addr, &[alice], &on("getHistory")).json();
    assert_eq!(history["turns"].as_array().unwrap().len(), 2, "{history}");
}

#[test]
fn spend_budgets_refuse_with_their_own_codes_and_retry_after() {
    let running = serve(&format!(
        "api_keys = [{{ id = \"small\", sha256 = \"{}\", tokens_per_minute = 2100 }}, \
                     {{ id = \"poor\", sha256 = \"{}\", usd_per_day = 0.001 }}, \
                     {{ id = \"no-quality\", sha256 = \"{}\", allow_quality = false }}]",
        hash_key("small-key"),
        hash_key("poor-key"),
        hash_key("nq-key"),
    ));
    let addr = running.addr();
    // A call reserves its input estimate and the model's whole output limit
    // (haiku: 2048 tokens), then settles with the reported usage: after one
    // answer the 2100-token minute has too little left for another call.
    let small = |m: &str| chat(addr, &["X-Api-Key: small-key"], &ask(m));
    assert_eq!(small("質問その一").status, 200);
    let r = small("質問その二");
    assert_eq!(
        (r.status, code(&r).as_str()),
        (429, "token_budget_exceeded")
    );
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    // A cache hit spends nothing: the first question again is answered.
    let again = small("質問その一");
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["cached"], true);

    // USD per day: the first call (larger than the whole day) is let in on
    // a full budget; what it spent leaves too little for a second.
    let poor = |m: &str| chat(addr, &["X-Api-Key: poor-key"], &ask(m));
    assert_eq!(poor("長い説明をください").status, 200);
    let r = poor("もっと長い説明をください");
    assert_eq!(
        (r.status, code(&r).as_str()),
        (429, "spend_budget_exceeded")
    );
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((60..=86_400).contains(&wait), "{wait}");
    // Other identities are not affected.
    assert_eq!(
        chat(addr, &[], &ask("もっと長い説明をください")).status,
        200
    );

    let mut quality = ask("詳しく比較して");
    quality["data"]["modelPreference"] = json!("quality");
    let r = chat(addr, &["X-Api-Key: nq-key"], &quality);
    assert_eq!((r.status, code(&r).as_str()), (403, "quality_not_allowed"));
    assert_eq!(chat(addr, &[], &quality).status, 200);
}

#[test]
fn foreign_hosts_and_origins_are_refused() {
    let running = serve("allowed_origins = [\"https://shop.example\"]");
    let addr = running.addr();
    let with_host = |host: &str, path: &str| {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
        exchange(addr, raw.as_bytes())
    };
    let r = with_host("rebound.attacker.example", "/");
    assert_eq!((r.status, code(&r).as_str()), (421, "host_not_allowed"));
    assert_eq!(with_host("localhost:8080", "/").status, 200);
    // Load balancers probe by address: /healthz answers any Host.
    assert_eq!(with_host("10.1.2.3:8080", "/healthz").status, 200);

    let url = format!("ws://{addr}/v1/ws");
    running.runtime.block_on(async {
        let open = |origin: Option<String>| {
            let mut request = url.clone().into_client_request().unwrap();
            if let Some(origin) = origin {
                request
                    .headers_mut()
                    .insert("origin", origin.parse().unwrap());
            }
            tokio_tungstenite::connect_async(request)
        };
        let Err(tokio_tungstenite::tungstenite::Error::Http(r)) =
            open(Some("https://evil.example".into())).await
        else {
            panic!("a cross-origin WebSocket was accepted")
        };
        assert_eq!(r.status(), 403);
        assert!(
            open(Some(format!("http://{addr}"))).await.is_ok(),
            "same origin"
        );
        assert!(
            open(Some("https://shop.example".into())).await.is_ok(),
            "listed"
        );
        assert!(open(None).await.is_ok(), "not a browser");
    });
}

#[test]
fn cors_answers_only_configured_origins() {
    let preflight = |addr: SocketAddr, origin: &str| {
        let raw = format!(
            "OPTIONS /v1/chat HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
             Origin: {origin}\r\nAccess-Control-Request-Method: POST\r\n\
             Access-Control-Request-Headers: content-type\r\n\r\n"
        );
        exchange(addr, raw.as_bytes())
    };
    let running = serve("cors_origins = [\"https://shop.example\"]");
    let allowed = preflight(running.addr(), "https://shop.example");
    assert_eq!(
        allowed.header("access-control-allow-origin"),
        Some("https://shop.example")
    );
    let other = preflight(running.addr(), "https://evil.example");
    assert_eq!(other.header("access-control-allow-origin"), None);
    // Not configured: no CORS at all.
    let running = serve("");
    let none = preflight(running.addr(), "https://shop.example");
    assert_eq!(none.header("access-control-allow-origin"), None);
}

#[test]
fn forwarded_for_decides_the_client_only_behind_a_trusted_proxy() {
    let limited = "client_rate_per_second = 1\nclient_rate_burst = 1\n";
    let via = |addr: SocketAddr, xff: &str| {
        chat(
            addr,
            &[&format!("X-Forwarded-For: {xff}")],
            &ask("在庫は？"),
        )
        .status
    };
    // Not trusted: every forged address is the same peer.
    let running = serve(limited);
    let statuses: Vec<u16> = (0..3)
        .map(|i| via(running.addr(), &format!("198.51.100.{i}")))
        .collect();
    assert_eq!(statuses, [200, 429, 429]);
    // Behind a trusted proxy (this loopback peer), each client is its own.
    let running = serve(&format!("{limited}trusted_proxies = [\"127.0.0.1\"]"));
    let statuses: Vec<u16> = (0..3)
        .map(|i| via(running.addr(), &format!("198.51.100.{i}")))
        .collect();
    assert_eq!(statuses, [200, 200, 200]);
    assert_eq!(via(running.addr(), "198.51.100.0"), 429);
}

#[test]
fn headers_are_bounded() {
    let running = serve("");
    let addr = running.addr();
    for size in [70 * 1024, 360 * 1024] {
        let big = format!("X-Filler: {}", "a".repeat(size));
        let r = exchange(addr, &raw_request("GET", "/healthz", &[&big], b""));
        assert_eq!(r.status, 431, "{size} bytes of headers");
    }
    let fine = format!("X-Filler: {}", "a".repeat(30 * 1024));
    assert_eq!(
        exchange(addr, &raw_request("GET", "/healthz", &[&fine], b"")).status,
        200
    );
}

#[test]
fn a_body_of_thousands_of_violations_gets_a_small_400_never_a_5xx() {
    let running = serve("");
    let addr = running.addr();
    let mut data = serde_json::Map::new();
    let mut i = 0;
    while serde_json::to_string(&data).unwrap().len() < 60 * 1024 {
        data.insert(format!("p{i}"), json!(0));
        i += 1;
    }
    let body = json!({"action": "getHistory", "data": data}).to_string();
    let body = body.as_bytes().to_vec();
    let responses: Vec<Response> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..16)
            .map(|_| {
                let body = body.clone();
                s.spawn(move || {
                    exchange(
                        addr,
                        &raw_request(
                            "POST",
                            "/v1/chat",
                            &["Content-Type: application/json"],
                            &body,
                        ),
                    )
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    for r in &responses {
        assert_eq!(r.status, 400, "{}", String::from_utf8_lossy(&r.body));
        assert!(r.body.len() < 16 * 1024, "{} bytes", r.body.len());
        let v = r.json();
        assert_eq!(v["error"]["details"].as_array().unwrap().len(), 50);
        let message = v["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&format!("{} left out", i + 1 - 50)),
            "{message}"
        );
    }
}

#[test]
fn upstream_calls_in_flight_are_capped() {
    let running = serve("max_upstream_calls = 1\nemulator_ttft_ms = 400");
    let addr = running.addr();
    let statuses: Vec<(u16, String)> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..3)
            .map(|i| {
                s.spawn(move || {
                    let r = chat(addr, &[], &ask(&format!("同時の質問{i}")));
                    let code = if r.status == 200 {
                        String::new()
                    } else {
                        r.code()
                    };
                    (r.status, code)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    assert_eq!(
        statuses.iter().filter(|(s, _)| *s == 200).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses
            .iter()
            .filter(|(s, _)| *s != 200)
            .all(|(s, c)| *s == 503 && c == "upstream_busy"),
        "{statuses:?}"
    );
}

/// Connects `n` sockets that send `prefix` (maybe nothing) and then stall.
fn stalled(addr: SocketAddr, n: usize, prefix: &[u8]) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(prefix).unwrap();
            s
        })
        .collect()
}

/// Whether the server closed `s` within `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn idle_and_slow_header_floods_do_not_stop_health_or_chat() {
    let running = serve(
        "max_connections = 64\nheader_timeout_ms = 1000\nidle_timeout_ms = 2000\nws_ping_interval_ms = 500",
    );
    let addr = running.addr();
    let started = Instant::now();
    // Four times the cap in idle sockets, then as many sending half a head.
    let mut idle = stalled(addr, 256, b"");
    let mut slow = stalled(addr, 256, b"POST /v1/chat HTTP/1.1\r\nHost: local");
    for _ in 0..20 {
        let t = Instant::now();
        assert_eq!(get(addr, "/healthz").status, 200);
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    }
    assert_eq!(chat(addr, &[], &ask("まだ答えられますか")).status, 200);
    let open = running.server().connections().open();
    assert!(open <= 64, "{open} connections open over a cap of 64");
    let (evicted, _) = running.server().connections().turned_away();
    // Most of the 512 made room for later ones (the rest timed out first).
    assert!(evicted >= 100, "evicted {evicted}");
    let metrics = String::from_utf8(get(running.admin(), "/metrics").body).unwrap();
    let counted: u64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix("mangaassist_connections_turned_away_total{reason=\"evicted\"} ")
        })
        .unwrap_or_else(|| panic!("no eviction counter in {metrics}"))
        .parse()
        .unwrap();
    assert!(counted >= 100, "{counted}");
    assert!(
        metrics.contains("mangaassist_connections_open "),
        "{metrics}"
    );
    // The slow-header sockets still open are closed by the header timeout.
    let survivor = slow.last_mut().unwrap();
    assert!(closed_within(survivor, Duration::from_secs(3)));
    let survivor = idle.last_mut().unwrap();
    assert!(closed_within(survivor, Duration::from_secs(3)));
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn websockets_are_bounded_in_frames_idleness_and_lifetime() {
    let running =
        serve("ws_idle_timeout_ms = 600\nws_ping_interval_ms = 200\nws_max_lifetime_ms = 1500");
    let addr = running.addr();
    let url = format!("ws://{addr}/v1/ws");
    running.runtime.block_on(async {
        // A frame over 32 KiB: closed with 1009, nothing else disturbed.
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        ws.send(Message::text("x".repeat(40 * 1024))).await.unwrap();
        let close = loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => break frame,
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        };
        assert_eq!(close.unwrap().code, CloseCode::Size);

        // Idle: no request for 600 ms closes it (pings answered meanwhile).
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        let started = Instant::now();
        let close = loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => break frame,
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        };
        assert_eq!(close.unwrap().code, CloseCode::Normal);
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(500) && took < Duration::from_secs(3),
            "{took:?}"
        );

        // Lifetime: busy all along, closed at 1.5 s anyway.
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        let started = Instant::now();
        let mut code = None;
        while started.elapsed() < Duration::from_secs(5) && code.is_none() {
            let _ = ws.send(Message::text("{not json")).await;
            let deadline = tokio::time::sleep(Duration::from_millis(300));
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    m = ws.next() => match m {
                        Some(Ok(Message::Close(frame))) => { code = frame.map(|f| f.code); break; }
                        Some(Ok(_)) => {}
                        _ => break,
                    },
                    () = &mut deadline => break,
                }
            }
        }
        assert_eq!(code, Some(CloseCode::Away));
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(1400) && took < Duration::from_secs(4),
            "{took:?}"
        );
    });

    // A client that never answers pings (a raw socket after the handshake,
    // then half a frame) is closed; other clients are served meanwhile.
    let mut raw = TcpStream::connect(addr).unwrap();
    let handshake = "GET /v1/ws HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
    raw.write_all(handshake.as_bytes()).unwrap();
    // A masked text frame header announcing 1000 bytes, and 10 of them.
    raw.write_all(&[0x81, 0xFE, 0x03, 0xE8, 1, 2, 3, 4])
        .unwrap();
    raw.write_all(&[0u8; 10]).unwrap();
    assert_eq!(get(addr, "/healthz").status, 200);
    assert!(closed_within(&mut raw, Duration::from_secs(3)));
}

#[test]
fn a_client_that_does_not_read_is_dropped_after_the_write_timeout() {
    let running = serve("write_timeout_ms = 500");
    let addr = running.addr();
    // Thousands of pipelined requests for a 7 KB file, never read: the
    // answers fill both socket buffers and the server's write blocks.
    let mut stalled = TcpStream::connect(addr).unwrap();
    let request = b"GET /app.js HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let mut writer = stalled.try_clone().unwrap();
    writer
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    std::thread::spawn(move || {
        for _ in 0..5000 {
            if writer.write_all(request).is_err() {
                return;
            }
        }
    });
    let started = Instant::now();
    while running.server().connections().open() == 0 {
        assert!(started.elapsed() < Duration::from_secs(5), "never accepted");
        std::thread::sleep(Duration::from_millis(5));
    }
    let started = Instant::now();
    while running.server().connections().open() > 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "a client that does not read kept its connection"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(get(addr, "/healthz").status, 200);
    let _ = stalled.set_read_timeout(Some(Duration::from_millis(10)));
    let _ = stalled.read(&mut [0u8; 16]);
}

#[test]
fn a_websocket_message_over_its_limit_in_small_frames_is_closed() {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
    let running = serve("ws_max_frame_bytes = 32768\nws_max_message_bytes = 65536");
    let url = format!("ws://{}/v1/ws", running.addr());
    running.runtime.block_on(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        // Three fragments of 30 KB: each frame is within its limit, the
        // message (90 KB) is not.
        let chunk = vec![b'x'; 30 * 1024];
        let frames = [
            Frame::message(chunk.clone(), OpCode::Data(Data::Text), false),
            Frame::message(chunk.clone(), OpCode::Data(Data::Continue), false),
            Frame::message(chunk, OpCode::Data(Data::Continue), true),
        ];
        for frame in frames {
            if ws.send(Message::Frame(frame)).await.is_err() {
                break;
            }
        }
        let close = loop {
            match ws.next().await {
                Some(Ok(Message::Close(frame))) => break frame,
                Some(Ok(_)) => continue,
                other => panic!("expected a close frame, got {other:?}"),
            }
        };
        assert_eq!(close.unwrap().code, CloseCode::Size);
    });
}
