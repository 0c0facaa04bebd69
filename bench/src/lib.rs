//! Shared helpers of the benchmarks: the bench corpus.

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
