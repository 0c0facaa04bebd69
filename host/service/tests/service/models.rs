//! Current Claude models end to end against the embedded emulator: a
//! preset catalog of inference profiles, a stream cut mid-answer continued
//! without prefill, CountTokens before each call, and the calibrated
//! estimator fitted online and published.

use futures_util::{SinkExt, StreamExt};
use mangaassist_emulator::faults::{Fault, FaultPlan};
use mangaassist_emulator::{Latency, reply};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::http::{get, post_chat};
use crate::serve::serve;

fn ask(message: &str, preference: &str) -> Vec<u8> {
    json!({"action": "sendMessage", "data": {"message": message, "modelPreference": preference}})
        .to_string()
        .into_bytes()
}

/// The value of the first exposition line that starts with `series`.
fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

#[test]
fn a_current_model_catalog_works_end_to_end() {
    let mut running = serve(
        "catalog_preset = \"current-jp\"\ncount_tokens = true\ncalibration_min_samples = 20\n\
         emulator_per_token_ms = 1",
    );
    let addr = running.addr();

    // Quality goes to Sonnet 4.6 through its jp. profile; fast to Haiku 4.5
    // through the global one (it has no jp. profile).
    let r = post_chat(addr, &ask("『チェンソーマン』の新刊はいつ？", "quality"));
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    let body = r.json();
    assert_eq!(body["modelId"], "jp.anthropic.claude-sonnet-4-6", "{body}");
    assert_eq!(
        body["reply"],
        reply::full_reply("『チェンソーマン』の新刊はいつ？")
    );
    let r = post_chat(addr, &ask("hi", "fast"));
    assert_eq!(
        r.json()["modelId"],
        "global.anthropic.claude-haiku-4-5-20251001-v1:0"
    );

    // A stream cut after five pieces in the first region is continued in
    // the next without prefill: one stream, nothing repeated.
    let emulator = running.server().emulator().unwrap();
    emulator.set_latency(Latency {
        ttft_ms: 0,
        per_token_ms: 1,
    });
    let url = format!("ws://{addr}/v1/ws");
    for message in [
        "Any manga like Frieren, please?",
        "ダンジョン飯に似た漫画は？",
    ] {
        // Three times: the two CountTokens calls before the stream (the
        // selected and the fallback body, counted in the next region),
        // then the stream itself.
        emulator.set_fault(
            "us-east-1",
            FaultPlan {
                fault: Fault::Cut(5),
                every: 1,
                times: Some(3),
            },
        );
        let (deltas, status, body) = running.runtime.block_on(async {
            let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
            ws.send(Message::text(
                json!({"action": "sendMessage", "data": {"message": message, "modelPreference": "quality"}})
                    .to_string(),
            ))
            .await
            .unwrap();
            let mut deltas = Vec::new();
            loop {
                let Message::Text(text) = ws.next().await.unwrap().unwrap() else {
                    continue;
                };
                let v: Value = serde_json::from_str(&text).unwrap();
                if v["type"] == "delta" {
                    deltas.push(v["text"].as_str().unwrap().to_string());
                } else {
                    break (deltas, v["status"].as_u64().unwrap(), v["body"].clone());
                }
            }
        });
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["region"], "us-west-2", "{body}");
        assert_eq!(deltas.concat(), reply::full_reply(message), "{message}");
        assert_eq!(body["reply"], reply::full_reply(message));
    }

    // Enough varied answers for the online fit, then its weights.
    for i in 0..24 {
        let message = format!(
            "{}の{}巻 volume {i} {}",
            ["ワンピース", "鬼滅の刃", "葬送のフリーレン"][i % 3],
            i + 1,
            "please ".repeat(i % 5)
        );
        let r = post_chat(addr, &ask(&message, "auto"));
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    }
    let published = get(addr, "/v1/estimator").json();
    assert_eq!(published["source"], "online", "{published}");
    assert!(published.get("samples").is_none(), "{published}");
    for weight in ["kana", "kanji", "latinWord", "other", "perRequest"] {
        assert!(
            published["calibration"][weight].as_f64().unwrap() >= 0.0,
            "{published}"
        );
    }

    // Every call was counted first (each body is new); the errors of both
    // estimators are exported.
    let text = String::from_utf8(get(running.admin(), "/metrics").body).unwrap();
    assert!(
        metric(&text, "mangaassist_estimator_samples").unwrap() >= 20.0,
        "{text}"
    );
    let counted = metric(&text, "mangaassist_count_tokens_total{outcome=\"counted\"}");
    assert!(counted.unwrap_or(0.0) >= 20.0, "{text}");
    assert!(
        metric(&text, "mangaassist_count_tokens_total{outcome=\"failed\"}").is_none(),
        "{text}"
    );
    // The emulator counts unlike the reference estimator: the fitted
    // weights come closer to what it reports.
    let error = |estimator: &str| {
        metric(
            &text,
            &format!(
                "mangaassist_estimator_error_ratio{{estimator=\"{estimator}\",script=\"kana\",quantile=\"0.9\"}}"
            ),
        )
    };
    let (reference, calibrated) = (error("reference").unwrap(), error("calibrated").unwrap());
    assert!(
        calibrated < reference / 2.0,
        "{calibrated} vs {reference}\n{text}"
    );
    running.shutdown();
}
