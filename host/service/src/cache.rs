//! The response cache (SPEC 10): answers by the body's SPEC 7 cache key and
//! the model that answered (the key leaves the model out, and a fallback
//! model may be sent the same body), for a fixed time (300 s by default).
//!
//! In one process it lives in memory (moka: TTL, a size bound and
//! concurrent access without one global lock). Scaled out, it lives in Redis
//! (`redis_url`), shared by every replica, so a reply one replica got is a
//! hit on all of them. Redis down or slow costs a bounded wait
//! (`redis_timeout_ms`) and a miss, never an error: the cache is bypassed
//! until Redis answers again, and the connection comes back by itself.
//!
//! Redis format (readable by any client, e.g. the design note's Python
//! service): key `mangaassist:reply:v1:<model>:<cacheKey>` (with
//! `:<identity>` appended under `cache_scope = "identity"`), value the JSON
//! `{"text","modelId","region","usage":{"inputTokens","outputTokens"}}`,
//! expiring after the TTL (`SET … PX`).

use std::sync::Arc;
use std::time::Duration;

use mangaassist_bedrock::invoker::Usage;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use crate::redis_store::RedisStore;

/// What a cache hit answers with.
#[derive(Debug, Clone, PartialEq)]
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

/// The Redis value: the documented wire format.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Stored {
    text: String,
    model_id: String,
    region: String,
    usage: StoredUsage,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StoredUsage {
    input_tokens: u64,
    output_tokens: u64,
}

/// Answers by cache key, in memory or in Redis.
pub enum ReplyCache {
    /// This process's memory.
    Memory(moka::sync::Cache<String, Arc<CachedReply>>),
    /// A Redis shared by every replica.
    Redis(RedisReplies),
}

/// The Redis side: the shared store and the entries' lifetime.
pub struct RedisReplies {
    store: Arc<RedisStore>,
    ttl: Duration,
}

impl ReplyCache {
    /// In memory: entries live `ttl` from insertion; at most `capacity`.
    pub fn new(ttl: Duration, capacity: u64) -> Self {
        ReplyCache::Memory(
            moka::sync::Cache::builder()
                .time_to_live(ttl)
                .max_capacity(capacity)
                .build(),
        )
    }

    /// In the shared Redis `store`; entries live `ttl`.
    pub fn redis(store: Arc<RedisStore>, ttl: Duration) -> Self {
        ReplyCache::Redis(RedisReplies { store, ttl })
    }

    /// The answer `model` (a catalog key) gave to the body of `key`, if
    /// fresh, within `scope` (empty: shared; else an identity's own).
    pub async fn get(&self, scope: &str, model: &str, key: &str) -> Option<Arc<CachedReply>> {
        match self {
            ReplyCache::Memory(cache) => cache.get(&memory_key(scope, model, key)),
            ReplyCache::Redis(redis) => redis.get(&redis_key(scope, model, key)).await,
        }
    }

    /// Remembers the answer `model` gave to the body of `key` in `scope`
    /// (in Redis before this returns, at most a timeout later: replicas
    /// waiting on a single flight find it as soon as the lock is released).
    pub async fn insert(&self, scope: &str, model: &str, key: &str, reply: CachedReply) {
        match self {
            ReplyCache::Memory(cache) => {
                cache.insert(memory_key(scope, model, key), Arc::new(reply));
            }
            ReplyCache::Redis(redis) => redis.insert(redis_key(scope, model, key), &reply).await,
        }
    }
}

fn memory_key(scope: &str, model: &str, key: &str) -> String {
    format!("{scope}\n{model}\n{key}")
}

/// The outcome of asking for the right to call Bedrock for one body.
pub enum Flight {
    /// Make the call (holding the fleet-wide lock while the guard lives,
    /// when there is one).
    Lead(Option<FlightGuard>),
    /// Another replica made it meanwhile: its answer.
    Hit(Arc<CachedReply>),
}

/// Releases a single-flight lock when dropped.
pub struct FlightGuard {
    store: Arc<RedisStore>,
    lock: String,
    token: String,
}

impl Drop for FlightGuard {
    fn drop(&mut self) {
        let store = Arc::clone(&self.store);
        let lock = std::mem::take(&mut self.lock);
        let token = std::mem::take(&mut self.token);
        // Only our own lock: one that expired and was taken by another
        // replica stays. Atomic on the server.
        tokio::spawn(async move {
            let script = redis::Script::new(RELEASE);
            let mut invocation = script.key(lock);
            invocation.arg(token);
            let mut connection = store.connection();
            store
                .call("unlock", invocation.invoke_async::<i64>(&mut connection))
                .await;
        });
    }
}

/// Deletes the lock if it still holds our token.
const RELEASE: &str = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end";

/// The single-flight lock of a cache key.
fn lock_key(reply_key: &str) -> String {
    format!("{reply_key}:lock")
}

impl ReplyCache {
    /// Single flight: the first replica to miss `key` calls Bedrock; the
    /// others wait (at most `wait`, polling) for its answer to land in the
    /// cache. In memory (one process) every miss leads. A Redis that fails
    /// makes every miss lead too: never worse than without the lock.
    pub async fn lead_or_wait(
        &self,
        scope: &str,
        model: &str,
        key: &str,
        wait: Duration,
    ) -> Flight {
        let ReplyCache::Redis(redis) = self else {
            return Flight::Lead(None);
        };
        let reply_key = redis_key(scope, model, key);
        let lock = lock_key(&reply_key);
        let token = uuid::Uuid::new_v4().to_string();
        let started = tokio::time::Instant::now();
        let hold_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
        loop {
            let options = redis::SetOptions::default()
                .conditional_set(redis::ExistenceCheck::NX)
                .with_expiration(redis::SetExpiry::PX(hold_ms));
            let mut connection = redis.store.connection();
            let taken = redis
                .store
                .call(
                    "lock",
                    connection.set_options::<_, _, Option<String>>(&lock, &token, options),
                )
                .await;
            match taken {
                // Redis failed: lead, never worse than without the lock.
                None => return Flight::Lead(None),
                Some(Some(_)) => {
                    let guard = FlightGuard {
                        store: Arc::clone(&redis.store),
                        lock,
                        token,
                    };
                    // The previous leader may have answered just before
                    // releasing: look once more before calling.
                    if let Some(hit) = redis.get(&reply_key).await {
                        return Flight::Hit(hit);
                    }
                    return Flight::Lead(Some(guard));
                }
                Some(None) => {}
            }
            // Someone else leads: wait for their answer.
            if let Some(hit) = redis.get(&reply_key).await {
                return Flight::Hit(hit);
            }
            if started.elapsed() >= wait {
                return Flight::Lead(None);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The documented Redis key.
pub fn redis_key(scope: &str, model: &str, key: &str) -> String {
    if scope.is_empty() {
        format!("mangaassist:reply:v1:{model}:{key}")
    } else {
        format!("mangaassist:reply:v1:{model}:{key}:{scope}")
    }
}

impl RedisReplies {
    async fn get(&self, key: &str) -> Option<Arc<CachedReply>> {
        let mut connection = self.store.connection();
        let value = self
            .store
            .call("get", connection.get::<_, Option<String>>(key))
            .await??;
        match serde_json::from_str::<Stored>(&value) {
            Ok(stored) => Some(Arc::new(CachedReply {
                text: stored.text,
                model_id: stored.model_id,
                region: stored.region,
                usage: Usage {
                    input_tokens: stored.usage.input_tokens,
                    output_tokens: stored.usage.output_tokens,
                },
            })),
            Err(e) => {
                // Someone else's value under our key: a miss, not a crash.
                tracing::warn!(key, error = %e, "unreadable cached reply in Redis; ignored");
                None
            }
        }
    }

    async fn insert(&self, key: String, reply: &CachedReply) {
        let stored = Stored {
            text: reply.text.clone(),
            model_id: reply.model_id.clone(),
            region: reply.region.clone(),
            usage: StoredUsage {
                input_tokens: reply.usage.input_tokens,
                output_tokens: reply.usage.output_tokens,
            },
        };
        let Ok(value) = serde_json::to_string(&stored) else {
            return;
        };
        let ttl_ms = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        let options = redis::SetOptions::default().with_expiration(redis::SetExpiry::PX(ttl_ms));
        let mut connection = self.store.connection();
        // Awaited: a replica waiting on this single flight finds the answer
        // once the lock is released. A failed write is a later miss.
        self.store
            .call(
                "set",
                connection.set_options::<_, _, ()>(key, value, options),
            )
            .await;
    }
}
