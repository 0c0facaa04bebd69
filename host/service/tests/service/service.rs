//! The service over real HTTP and WebSocket on 127.0.0.1, answering from its
//! embedded emulator through the real AWS SDK: every status code, the cache,
//! rate limits, sessions, streaming, metrics and shutdown (`serve` as a
//! process is tested with the binary, in host/cli).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::http::{Response, exchange, exchange_partial, get, post_chat, raw_request};
use crate::serve::serve;
use futures_util::{SinkExt, StreamExt};
use mangaassist_emulator::Latency;
use mangaassist_emulator::faults::{Fault, FaultPlan};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

const SESSION: &str = "123e4567-e89b-42d3-a456-426614174000";

fn send(addr: SocketAddr, message: &str, session: Option<&str>) -> Response {
    let mut data = json!({ "message": message });
    if let Some(s) = session {
        data["sessionId"] = json!(s);
    }
    post_chat(
        addr,
        json!({ "action": "sendMessage", "data": data })
            .to_string()
            .as_bytes(),
    )
}

fn action(addr: SocketAddr, action: &str, session: &str) -> Response {
    post_chat(
        addr,
        json!({ "action": action, "data": { "sessionId": session } })
            .to_string()
            .as_bytes(),
    )
}

/// Every error body has the SPEC 10 shape.
fn assert_error(r: &Response, status: u16, code: &str) {
    assert_eq!(r.status, status, "{}", String::from_utf8_lossy(&r.body));
    let body = r.json();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert!(body["error"]["details"].is_array(), "{body}");
}

#[test]
fn a_message_is_answered_and_its_repeat_comes_from_the_cache() {
    let running = serve("");
    let first = send(running.addr(), "ワンピースの最新刊はありますか？", None);
    assert_eq!(first.status, 200);
    let first = first.json();
    assert_eq!(first["cached"], false);
    assert!(first["reply"].as_str().unwrap().contains("ワンピース"));
    assert_eq!(first["model"], "haiku");
    assert_eq!(first["region"], "us-east-1");
    assert!(first["costUsd"].as_f64().unwrap() > 0.0);
    assert_eq!(first["cacheKey"].as_str().unwrap().len(), 16);
    // A new session with the same message: same body, same key, a cache hit.
    let second = send(running.addr(), "ワンピースの最新刊はありますか？", None).json();
    assert_eq!(second["cached"], true);
    assert_eq!(second["reply"], first["reply"]);
    assert_eq!(second["cacheKey"], first["cacheKey"]);
    assert_ne!(second["sessionId"], first["sessionId"]);
    assert_eq!(
        running.server().emulator().unwrap().requests("us-east-1"),
        1,
        "the repeat must not reach Bedrock"
    );
    let metrics = String::from_utf8(get(running.admin(), "/metrics").body).unwrap();
    assert!(
        metrics.contains(r#"mangaassist_cache_lookups_total{outcome="hit"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(
        r#"mangaassist_bedrock_invocations_total{region="us-east-1",outcome="answered"} 1"#
    ));
    assert!(metrics.contains(r#"mangaassist_requests_total{route="chat",status="200"} 2"#));
    assert!(metrics.contains("mangaassist_tokens_total{direction=\"output\"}"));
    assert!(metrics.contains("mangaassist_cost_usd_total"));
    assert!(metrics.contains("mangaassist_region_cooldown_seconds{region=\"us-west-2\"} 0"));
}

#[test]
fn each_refusal_has_its_status_and_code() {
    let running = serve("sync_budget_ms = 600");
    let addr = running.addr();
    // 400: not JSON, not UTF-8, contract (every violation listed).
    assert_error(&post_chat(addr, b"{\"action\":"), 400, "invalid_json");
    assert_error(
        &post_chat(addr, b"{\"action\":\"\xff\"}"),
        400,
        "invalid_utf8",
    );
    let r = post_chat(
        addr,
        br#"{"action":"sendMessag","data":{"mesage":"x"},"x":1}"#,
    );
    assert_error(&r, 400, "contract_violation");
    let details = r.json()["error"]["details"].as_array().unwrap().clone();
    assert_eq!(details.len(), 3, "{details:?}");
    // Byte for byte as the core writes a violation (field order included).
    let raw = String::from_utf8(r.body.clone()).unwrap();
    assert!(
        raw.contains(r#"{"path":"/x","code":"unknown_property","message":"unknown property \"x\"; allowed: action, data, metadata"}"#),
        "{raw}"
    );
    // 413: declared, and sent without a declaration (chunked).
    let big = vec![b' '; 64 * 1024 + 1];
    assert_error(&post_chat(addr, &big), 413, "body_too_large");
    let mut chunked = b"POST /v1/chat HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..9 {
        chunked.extend_from_slice(b"2000\r\n");
        chunked.extend_from_slice(&[b' '; 0x2000]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert_error(&exchange(addr, &chunked), 413, "body_too_large");
    // 415.
    let form = raw_request("POST", "/v1/chat", &["Content-Type: text/plain"], b"{}");
    assert_error(&exchange(addr, &form), 415, "unsupported_media_type");
    let none = raw_request("POST", "/v1/chat", &[], b"{}");
    assert_error(&exchange(addr, &none), 415, "unsupported_media_type");
    // 422: the first failing check; and nothing left after sanitizing.
    assert_error(
        &send(addr, "<script>alert(1)</script>", None),
        422,
        "disallowed_pattern",
    );
    assert_error(&send(addr, "漫画とкнига", None), 422, "mixed_script");
    assert_error(&send(addr, " \u{3000}\t ", None), 422, "empty_message");
    // 404, 405.
    assert_error(&get(addr, "/v2/nothing"), 404, "not_found");
    assert_error(&get(addr, "/v1/chat"), 405, "method_not_allowed");
    // 408: a body that does not arrive within the budget.
    let head = b"POST /v1/chat HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"action\"";
    let r = exchange_partial(addr, head, false, Duration::from_millis(50));
    assert_error(&r, 408, "body_timeout");
    // 400: a body cut short by the client.
    let r = exchange_partial(addr, head, true, Duration::ZERO);
    assert_error(&r, 400, "body_incomplete");

    // 503: every region fails, the fallback model too.
    let emulator = running.server().emulator().unwrap();
    for region in ["us-east-1", "us-west-2", "ap-northeast-1"] {
        emulator.set_fault(region, FaultPlan::always(Fault::Error500));
    }
    let r = send(addr, "在庫はありますか", None);
    assert_error(&r, 503, "bedrock_unavailable");
    let details = &r.json()["error"]["details"];
    for region in ["us-east-1", "us-west-2", "ap-northeast-1"] {
        assert!(details.to_string().contains(region), "{details}");
    }
    // Region and Bedrock's code only: SDK messages (ARNs, account and
    // request ids) go to the log, not to the client.
    assert_eq!(details[0].as_object().unwrap().len(), 2, "{details}");
    assert!(!r.json().to_string().contains("arn:"), "{details}");
    // Every region is cooling down now: 503 at once with Retry-After, and
    // not one more call (no probe storm against a dead upstream).
    let calls = |e: &mangaassist_emulator::EmulatorHandle| {
        ["us-east-1", "us-west-2", "ap-northeast-1"]
            .iter()
            .map(|r| e.requests(r))
            .sum::<u64>()
    };
    let before = calls(emulator);
    for _ in 0..20 {
        let r = send(addr, "在庫はありますか", None);
        assert_error(&r, 503, "regions_cooling_down");
        let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=60).contains(&wait), "{wait}");
    }
    assert_eq!(calls(emulator), before);

    // 504: a healthy Bedrock that answers too slowly.
    let running = serve("sync_budget_ms = 1000");
    let addr = running.addr();
    let emulator = running.server().emulator().unwrap();
    emulator.set_latency(Latency {
        ttft_ms: 2_000,
        per_token_ms: 0,
    });
    let started = Instant::now();
    let r = send(addr, "新刊の発売日は？", None);
    assert!(r.status == 504, "{r:?}");
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "{:?}",
        started.elapsed()
    );
    assert!(["budget_exceeded", "bedrock_deadline"].contains(&r.code().as_str()));

    // Nothing above was a server fault: still serving.
    emulator.set_latency(Latency::default());
    assert_eq!(get(addr, "/healthz").status, 200);
}

#[test]
fn rate_limits_answer_429_with_retry_after() {
    let running = serve(&format!(
        "client_rate_per_second = 1\nclient_rate_burst = 2\n\
         api_keys = [{{ id = \"shop-42\", sha256 = \"{}\" }}]",
        mangaassist_service::identity::hash_key("shop-42-secret")
    ));
    let addr = running.addr();
    let statuses: Vec<u16> = (0..4)
        .map(|i| send(addr, &format!("質問{i}"), None).status)
        .collect();
    assert_eq!(&statuses[..2], &[200, 200], "{statuses:?}");
    let r = send(addr, "もう一つ", None);
    assert_error(&r, 429, "client_rate_limited");
    let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "{wait}");
    // A known API key is a client of its own, with its own budget; a key
    // made up on the spot is refused, and counted against the address.
    let keyed = |key: &str| {
        crate::http::post_chat_with(
            addr,
            &[&format!("X-Api-Key: {key}")],
            br#"{"action":"sendMessage","data":{"message":"hi"}}"#,
        )
    };
    assert_eq!(keyed("shop-42-secret").status, 200);
    for made_up in ["shop-42", "x1", "x2"] {
        assert_error(&keyed(made_up), 429, "client_rate_limited");
    }

    let running = serve("rate_per_second = 1\nrate_burst = 1");
    let addr = running.addr();
    assert_eq!(action(addr, "getHistory", SESSION).status, 404);
    let r = action(addr, "getHistory", SESSION);
    assert_error(&r, 429, "rate_limited");
    assert!(r.header("retry-after").is_some());
}

#[test]
fn sessions_keep_history_and_clear_forgets_it() {
    let running = serve("");
    let addr = running.addr();
    // Ids are the server's to issue: a client-chosen one is not a session.
    assert_error(
        &send(addr, "おすすめの漫画は？", Some(SESSION)),
        404,
        "session_not_found",
    );
    let a = send(addr, "おすすめの漫画は？", None).json();
    let session = a["sessionId"].as_str().unwrap().to_string();
    let b = send(addr, "もっと短いのは？", Some(&session)).json();
    assert_eq!(b["sessionId"], session);
    // The second body carries the first exchange: another cache key.
    assert_ne!(a["cacheKey"], b["cacheKey"]);
    let history = action(addr, "getHistory", &session).json();
    let turns = history["turns"].as_array().unwrap();
    assert_eq!(turns.len(), 4, "{history}");
    assert_eq!(
        turns[0],
        json!({"role": "user", "content": "おすすめの漫画は？"})
    );
    assert_eq!(turns[1]["role"], "assistant");
    assert_eq!(turns[1]["content"], a["reply"]);
    assert_eq!(turns[3]["content"], b["reply"]);
    let cleared = action(addr, "clearSession", &session).json();
    assert_eq!(cleared, json!({"sessionId": session, "cleared": true}));
    assert_error(
        &action(addr, "getHistory", &session),
        404,
        "session_not_found",
    );
    assert_error(
        &action(addr, "clearSession", &session),
        404,
        "session_not_found",
    );
}

async fn ws_exchange(
    ws: &mut tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    request: Message,
) -> (Vec<String>, u16, Value) {
    ws.send(request).await.unwrap();
    let mut deltas = Vec::new();
    loop {
        let frame = ws.next().await.unwrap().unwrap();
        let Message::Text(text) = frame else {
            continue;
        };
        let v: Value = serde_json::from_str(&text).unwrap();
        match v["type"].as_str() {
            Some("delta") => deltas.push(v["text"].as_str().unwrap().to_string()),
            Some("response") => {
                return (
                    deltas,
                    v["status"].as_u64().unwrap() as u16,
                    v["body"].clone(),
                );
            }
            other => panic!("unexpected frame type {other:?}: {v}"),
        }
    }
}

#[test]
fn the_websocket_streams_replies_and_answers_every_action() {
    // Frames as large as messages: a 70 KB request gets its 413 answer.
    let mut running = serve("emulator_per_token_ms = 1\nws_max_frame_bytes = 131072");
    let url = format!("ws://{}/v1/ws", running.addr());
    running.runtime.block_on(async {
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
        let ask = |m: &str| {
            Message::text(json!({"action":"sendMessage","data":{"message": m}}).to_string())
        };
        let (deltas, status, body) = ws_exchange(&mut ws, ask("進撃の巨人は全何巻？")).await;
        let session = body["sessionId"].as_str().unwrap().to_string();
        assert_eq!(status, 200, "{body}");
        assert!(
            deltas.len() > 5,
            "the reply should stream in pieces: {deltas:?}"
        );
        assert_eq!(deltas.concat(), body["reply"].as_str().unwrap());
        assert_eq!(body["cached"], false);

        let history = json!({"action":"getHistory","data":{"sessionId": session}}).to_string();
        let (deltas, status, body) = ws_exchange(&mut ws, Message::text(history)).await;
        assert!(deltas.is_empty());
        assert_eq!(status, 200);
        assert_eq!(body["turns"].as_array().unwrap().len(), 2);

        // Refusals come as responses; the connection stays usable.
        let (_, status, body) = ws_exchange(&mut ws, ask("javascript:alert(1)")).await;
        assert_eq!(status, 422);
        assert_eq!(body["error"]["code"], "disallowed_pattern");
        let (_, status, body) = ws_exchange(&mut ws, Message::text("{not json")).await;
        assert_eq!(status, 400);
        assert_eq!(body["error"]["code"], "invalid_json");
        let (_, status, body) = ws_exchange(&mut ws, Message::binary(vec![1, 2, 3])).await;
        assert_eq!(status, 415);
        assert_eq!(body["error"]["code"], "unsupported_media_type");
        let big = format!(
            r#"{{"action":"sendMessage","data":{{"message":"{}"}}}}"#,
            "a".repeat(70_000)
        );
        let (_, status, body) = ws_exchange(&mut ws, Message::text(big)).await;
        assert_eq!(status, 413, "{body}");

        let clear = json!({"action":"clearSession","data":{"sessionId": session}}).to_string();
        let (_, status, body) = ws_exchange(&mut ws, Message::text(clear)).await;
        assert_eq!((status, &body["cleared"]), (200, &json!(true)));
        ws
    });
    // Shutdown closes open WebSockets instead of waiting on them.
    let started = Instant::now();
    running.shutdown();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn shutdown_lets_an_in_flight_request_finish() {
    let mut running = serve("emulator_ttft_ms = 700");
    let addr = running.addr();
    let pending = std::thread::spawn(move || send(addr, "ゆっくり答えて", None));
    std::thread::sleep(Duration::from_millis(300));
    running.shutdown();
    let r = pending.join().unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "still accepting after shutdown"
    );
}

#[test]
fn the_page_and_health_are_served() {
    let running = serve("");
    let page = get(running.addr(), "/");
    assert_eq!(page.status, 200);
    assert!(
        page.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    assert!(String::from_utf8_lossy(&page.body).contains("MangaAssist"));
    assert_eq!(page.header("content-encoding"), None, "not asked for gzip");
    // Static files are gzipped when the client accepts it (the widget's page
    // weight); the API is not wrapped. Chromium decodes it in tests/e2e/.
    let accept_gzip = |path: &str| {
        exchange(
            running.addr(),
            &raw_request("GET", path, &["Accept-Encoding: gzip"], b""),
        )
    };
    let page = accept_gzip("/");
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-encoding"), Some("gzip"));
    assert_eq!(accept_gzip("/healthz").header("content-encoding"), None);
    // The public health check says only that the service is ready; the
    // details are on the admin listener.
    let public = get(running.addr(), "/healthz");
    assert_eq!(public.json(), json!({"status": "ok"}));
    assert_error(&get(running.addr(), "/metrics"), 404, "not_found");
    let health = get(running.admin(), "/healthz").json();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["bedrock"], "emulator");
    assert_eq!(health["policy"]["sha256"].as_str().unwrap().len(), 64);
    assert_eq!(health["regions"].as_array().unwrap().len(), 3);
}

/// The sync budget starts when the headers are in: a body that takes most
/// of it leaves only the rest for Bedrock (504), and the request's latency
/// metric counts the body read.
#[test]
fn the_sync_budget_runs_from_the_headers_through_the_body() {
    let running = serve("sync_budget_ms = 1000\nemulator_ttft_ms = 600");
    let addr = running.addr();
    let body =
        json!({ "action": "sendMessage", "data": { "message": "予算のテスト" } }).to_string();
    let head = format!(
        "POST /v1/chat HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let started = Instant::now();
    std::io::Write::write_all(&mut stream, head.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(700));
    std::io::Write::write_all(&mut stream, body.as_bytes()).unwrap();
    let r = crate::http::read_response(&mut stream);
    let took = started.elapsed();
    assert_error(&r, 504, &r.code());
    assert!(took < Duration::from_millis(1_600), "took {took:?}");
    let metrics = String::from_utf8(get(running.admin(), "/metrics").body).unwrap();
    let sum: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("mangaassist_request_duration_seconds_sum{route=\"chat\"} "))
        .unwrap_or_else(|| panic!("no chat latency in {metrics}"))
        .parse()
        .unwrap();
    assert!(sum >= 0.7, "the body read is part of the latency: {sum}");
}

/// An answer of the fallback model is labelled with that model and cached
/// under the key of the body it was sent: a later request for the selected
/// model does not get it from the cache.
#[test]
fn a_fallback_answer_is_labelled_and_cached_as_the_fallback_model() {
    let running = serve("");
    let addr = running.addr();
    let emulator = running.server().emulator().unwrap();
    // Each region fails once (the sonnet attempts), then answers (haiku).
    for region in ["us-east-1", "us-west-2", "ap-northeast-1"] {
        emulator.set_fault(
            region,
            FaultPlan {
                fault: Fault::Error503,
                every: 1,
                times: Some(1),
            },
        );
    }
    let request = json!({ "action": "sendMessage",
        "data": { "message": "じっくり選んでください", "modelPreference": "quality" } });
    let first = post_chat(addr, request.to_string().as_bytes());
    assert_eq!(first.status, 200, "{first:?}");
    let first = first.json();
    assert_eq!(first["model"], "haiku", "{first}");
    assert_eq!(first["modelId"], "anthropic.claude-3-haiku-20240307-v1:0");
    // A repeat is answered from the cache as what it is: haiku's answer.
    let second = post_chat(addr, request.to_string().as_bytes()).json();
    assert_eq!(second["cached"], true, "{second}");
    assert_eq!(second["model"], "haiku", "{second}");
    assert_eq!(second["cacheKey"], first["cacheKey"]);
    // Nothing was stored as sonnet's answer: its own body's key is empty.
    let svc = running.server().service();
    let input = mangaassist_core::api::BodyInput {
        message: "じっくり選んでください".into(),
        history: Vec::new(),
        system: None,
        max_tokens: None,
        temperature: None,
        model_preference: mangaassist_core::models::ModelPreference::Quality,
        catalog: None,
    };
    let sonnet = mangaassist_core::api::body_report_for(&svc.catalog, "sonnet", &input).unwrap();
    assert_ne!(sonnet.cache_key, first["cacheKey"], "each model's own body");
    let cached = running
        .runtime
        .block_on(svc.cache.get("", "sonnet", &sonnet.cache_key));
    assert!(cached.is_none());
}

/// Policy calls leave the async workers (they may take their whole budget),
/// and every policy worker has a warmed-up instance before the first request.
#[test]
fn policy_calls_run_off_the_async_workers_on_instances_warmed_at_start() {
    let running = serve("policy_workers = 3");
    let svc = running.server().service();
    assert_eq!(svc.policy.current().sandbox.ready_instances(), 3);
    let caller = std::thread::current().id();
    let ran_on = running
        .runtime
        .block_on(svc.with_policy(|_| Ok(std::thread::current().id())))
        .unwrap();
    assert_ne!(ran_on, caller, "the call ran on the caller's thread");
}
