//! `mangaassist calibrate` on synthetic usage with known weights (the
//! emulator's tokenizer stand-in), in each of the three line shapes, and
//! refusing a file with bad lines.

use mangaassist_core::body::{BodySettings, build_body};
use mangaassist_core::calibration::ScriptCounts;
use mangaassist_emulator::reply::TOKENIZER;
use serde_json::{Value, json};

use crate::run::mangaassist;

fn file(name: &str, lines: &[Value]) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("mangaassist-{}-{name}", std::process::id()));
    let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn calibrate_recovers_known_weights_from_every_line_shape() {
    let settings = BodySettings {
        system: "あなたは漫画店の店員です。",
        max_tokens: 100,
        temperature: 0.2,
    };
    let mut lines = Vec::new();
    for i in 0..300usize {
        let message = format!(
            "{}{}{}{}",
            "ワンピース".repeat(i % 4),
            "漫画新刊".repeat(i % 7),
            " manga volume".repeat(i % 5),
            "!?、".repeat(i % 3)
        );
        let body = build_body(&message, &[], settings).unwrap();
        let reported = TOKENIZER.estimate_body(&body);
        lines.push(match i % 3 {
            0 => json!({"body": body, "inputTokens": reported}),
            1 => json!({"input": {"inputBodyJson": body, "inputTokenCount": reported,
                                  "inputContentType": "application/json"},
                        "modelId": "anthropic.claude-sonnet-4-6"}),
            // One text is one request: its own per-request constant.
            _ => json!({"text": message,
                        "inputTokens": TOKENIZER.estimate_counts(ScriptCounts::of(&message))}),
        });
    }
    // Log records of other kinds are skipped, not errors: no count, a body
    // kept in S3, another model family's body.
    lines.push(json!({"input": {"inputBodyJson": {"messages": []}}}));
    lines.push(json!({"input": {"inputBodyS3Path": "s3://logs/x.json", "inputTokenCount": 90000}}));
    lines.push(json!({"input": {"inputBodyJson": {"prompt": "hi"}, "inputTokenCount": 3}}));
    let path = file("usage.jsonl", &lines);
    let (out, err, ok) = mangaassist(&["calibrate", path.to_str().unwrap()], Vec::new());
    assert!(ok, "{err}");
    let report: Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(report["samples"], 300);
    let c = &report["calibration"];
    for (name, want) in [
        ("kana", TOKENIZER.kana),
        ("kanji", TOKENIZER.kanji),
        ("latinWord", TOKENIZER.latin_word),
        ("other", TOKENIZER.other),
        ("perRequest", TOKENIZER.per_request),
    ] {
        let have = c[name].as_f64().unwrap();
        assert!(
            (have - want).abs() < 0.1,
            "{name}: {have} for {want}: {report}"
        );
    }
    let row = |estimator: &str| {
        report["errors"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["estimator"] == estimator && r["script"] == "kana")
            .cloned()
            .unwrap()
    };
    assert!(
        row("calibrated")["p90"].as_f64().unwrap() < 0.02,
        "{report}"
    );
    assert!(row("reference")["p90"].as_f64().unwrap() > 0.1, "{report}");
    assert!(
        err.contains("[calibration]") && err.contains("skipped"),
        "{err}"
    );
    std::fs::remove_file(path).unwrap();
}

#[test]
fn calibrate_refuses_a_file_with_bad_lines_naming_them() {
    let lines = [
        json!({"text": "hello", "inputTokens": 3}),
        json!({"text": "hello", "inputTokens": -3}),
        json!({"text": "a", "body": {"messages": []}, "inputTokens": 1}),
        json!({"body": {"system": "s"}, "inputTokens": 1}),
    ];
    let path = file("bad.jsonl", &lines);
    let (out, err, ok) = mangaassist(&["calibrate", path.to_str().unwrap()], Vec::new());
    assert!(!ok && out.is_empty());
    assert!(err.contains("3 bad line(s)"), "{err}");
    assert!(
        err.contains("line 2: inputTokens must be a whole number"),
        "{err}"
    );
    assert!(
        err.contains("line 3: expected exactly one of body"),
        "{err}"
    );
    assert!(err.contains("line 4: body has no messages array"), "{err}");
    std::fs::remove_file(&path).unwrap();
    let (_, err, ok) = mangaassist(&["calibrate", "/nonexistent/usage.jsonl"], Vec::new());
    assert!(
        !ok && err.contains("cannot open /nonexistent/usage.jsonl"),
        "{err}"
    );
}
