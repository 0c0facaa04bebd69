//! Shared helpers of the benchmarks: the bench corpus, and the service
//! configuration the in-process service tools run under.

use std::path::PathBuf;

/// `bench/data/chat-corpus.jsonl`, written by `bench/make_corpus.py`.
pub fn corpus_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data/chat-corpus.jsonl")
}

/// The corpus messages, or a message saying how to make the corpus.
pub fn load_corpus() -> Result<Vec<String>, String> {
    let path = corpus_path();
    let text = std::fs::read_to_string(&path).map_err(|e| {
        format!(
            "cannot read {} ({e}); run `python3 bench/make_corpus.py` first",
            path.display()
        )
    })?;
    text.lines()
        .map(|line| {
            let v: serde_json::Value =
                serde_json::from_str(line).map_err(|e| format!("bad corpus line: {e}"))?;
            v.get("message")
                .and_then(serde_json::Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| "corpus line without a message".to_string())
        })
        .collect()
}

/// The service settings `load` and `alloc_profile` start in-process (with
/// `MANGA_ENV` prod, so every edge control is on): port 0, no admin
/// listener, an emulator at zero latency, rate limits out of reach, and one
/// API key (`key_id`, `key`) whose budgets the tools cannot reach either:
/// they measure overhead, not limits or budgets.
pub fn service_config(key_id: &str, key: &str) -> String {
    format!(
        "listen = \"127.0.0.1:0\"\nadmin_listen = \"off\"\nemulator_ttft_ms = 0\nemulator_per_token_ms = 0\n\
         rate_per_second = 1000000\nrate_burst = 1000000\n\
         client_rate_per_second = 1000000\nclient_rate_burst = 1000000\n\
         api_keys = [{{ id = \"{key_id}\", sha256 = \"{}\", tokens_per_minute = 1000000000000, usd_per_day = 1000000000.0 }}]\n",
        mangaassist_service::identity::hash_key(key)
    )
}
