//! The response cache (SPEC 10): answers by the body's SPEC 7 cache key and
//! the model that answered (the key leaves the model out, and a fallback
//! model may be sent the same body), for a fixed time (300 s by default),
//! bounded in entries. moka gives the TTL, the bound and concurrent access
//! without one global lock.

use std::sync::Arc;
use std::time::Duration;

use mangaassist_bedrock::invoker::Usage;

/// What a cache hit answers with.
#[derive(Debug, Clone)]
pub struct CachedReply {
    /// The assistant's text.
    pub text: String,
    /// Model that produced it.
    pub model_id: String,
    /// Region that produced it.
    pub region: String,
    /// Usage reported then.
    pub usage: Usage,
}

/// Answers by cache key.
pub struct ReplyCache(moka::sync::Cache<String, Arc<CachedReply>>);

impl ReplyCache {
    /// Entries live `ttl` from insertion; at most `capacity` of them.
    pub fn new(ttl: Duration, capacity: u64) -> Self {
        ReplyCache(
            moka::sync::Cache::builder()
                .time_to_live(ttl)
                .max_capacity(capacity)
                .build(),
        )
    }

    /// The answer `model` (a catalog key) gave to the body of `key`, if
    /// fresh, within `scope` (empty: shared; else an identity's own).
    pub fn get(&self, scope: &str, model: &str, key: &str) -> Option<Arc<CachedReply>> {
        self.0.get(&format!("{scope}\n{model}\n{key}"))
    }

    /// Remembers the answer `model` gave to the body of `key` in `scope`.
    pub fn insert(&self, scope: &str, model: &str, key: &str, reply: CachedReply) {
        self.0
            .insert(format!("{scope}\n{model}\n{key}"), Arc::new(reply));
    }
}
