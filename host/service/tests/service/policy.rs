//! GET /v1/policy: the running policy's configuration, hash and catalog,
//! following a policy swapped in at run time (the component built from
//! tests/policies/netabare.json by scripts/test.sh).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::http::{exchange, get, raw_request};
use crate::serve::serve;

fn dist(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../wasm/component/dist")
        .join(name)
}

#[test]
fn the_published_policy_is_the_running_one_and_follows_a_swap() {
    let swapped = dist("policy-netabare.wasm");
    assert!(
        swapped.exists(),
        "{}: run scripts/build-policy.sh --config tests/policies/netabare.json --out {}",
        swapped.display(),
        swapped.display()
    );
    let file = std::env::temp_dir().join(format!("mangaassist-policy-{}.wasm", std::process::id()));
    std::fs::copy(dist("policy.wasm"), &file).unwrap();
    let mut running = serve(&format!(
        "policy_wasm = {:?}\ncatalog_preset = \"current-jp\"",
        file.display().to_string()
    ));
    let addr = running.addr();

    let r = get(addr, "/v1/policy");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/json"));
    let first = r.json();
    let sha = first["sha256"].as_str().unwrap().to_string();
    let tag = r.header("etag").unwrap().to_string();
    assert!(tag.starts_with('"') && tag.len() == 34, "{tag}");
    assert_eq!(first["policy"]["maxMessageBytes"], 16384);
    assert_eq!(
        first["policy"]["disallowedPatterns"]
            .as_array()
            .unwrap()
            .len(),
        6
    );
    assert_eq!(
        first["catalog"]["models"]["sonnet"]["modelId"],
        "jp.anthropic.claude-sonnet-4-6"
    );
    // Unchanged: 304 to a client that has it, also as a proxy's weak tag,
    // in a list, or as `*`; 200 for another tag.
    let etag = format!("If-None-Match: {tag}");
    for line in [
        etag.clone(),
        format!("If-None-Match: W/{tag}"),
        format!("If-None-Match: \"other\", {tag}"),
        "If-None-Match: *".to_string(),
    ] {
        let r = exchange(addr, &raw_request("GET", "/v1/policy", &[&line], b""));
        assert_eq!(r.status, 304, "{line}");
    }
    let r = exchange(
        addr,
        &raw_request("GET", "/v1/policy", &["If-None-Match: \"other\""], b""),
    );
    assert_eq!(r.status, 200);

    // A message the running policy takes, then the swap that refuses it.
    let ask = |m: &str| {
        crate::http::post_chat(
            addr,
            serde_json::json!({"action": "sendMessage", "data": {"message": m}})
                .to_string()
                .as_bytes(),
        )
    };
    assert_eq!(ask("ネタバレなしで教えて").status, 200);
    std::fs::copy(&swapped, &file).unwrap();
    let started = Instant::now();
    let published = loop {
        let r = exchange(addr, &raw_request("GET", "/v1/policy", &[&etag], b""));
        if r.status == 200 {
            break r.json();
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the swap was not published"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_ne!(published["sha256"], sha.as_str());
    let patterns = published["policy"]["disallowedPatterns"]
        .as_array()
        .unwrap();
    assert!(patterns.iter().any(|p| p == "ネタバレ"), "{published}");
    let refused = ask("ネタバレなしで教えて");
    assert_eq!(refused.status, 422);
    assert_eq!(refused.code(), "disallowed_pattern");
    running.shutdown();
    let _ = std::fs::remove_file(&file);
}
