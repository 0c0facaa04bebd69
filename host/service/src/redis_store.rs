//! The one Redis connection a replica shares its state through (response
//! cache, single flight, rate limits, spend budgets, region cooldowns), and
//! the one way each of those calls it: bounded by `redis_timeout_ms`, a
//! failure counted and the outage logged once, so every user falls back
//! (to a miss, or to this replica's own state) the same way.

use std::future::Future;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::store_metrics::{StoreCall, StoreMetrics};
use std::time::Duration;

use redis::RedisResult;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

/// A reconnecting connection and the health of the Redis behind it.
pub struct RedisStore {
    connection: ConnectionManager,
    timeout: Duration,
    /// False while Redis fails, so the outage is logged once, not per call.
    healthy: AtomicBool,
    /// Calls that failed or timed out.
    errors: AtomicU64,
    metrics: StoreMetrics,
}

impl RedisStore {
    /// The Redis at `url` (`redis://[[user]:password@]host:port[/db]`, or
    /// `rediss://` for TLS as ElastiCache's in-transit encryption uses it,
    /// verified against the system's roots or the PEM file `ca_file`), each
    /// call bounded by `timeout`. Connects lazily: a Redis that is down at
    /// start is a store bypassed until it is up, not a failed start.
    pub fn connect(
        url: &str,
        ca_file: Option<&Path>,
        timeout: Duration,
        metrics: StoreMetrics,
    ) -> Result<Self, String> {
        let client = match ca_file {
            None => redis::Client::open(url),
            Some(path) => {
                let pem = std::fs::read(path)
                    .map_err(|e| format!("redis_ca_file {}: {e}", path.display()))?;
                redis::Client::build_with_tls(
                    url,
                    redis::TlsCertificates {
                        client_tls: None,
                        root_cert: Some(pem),
                    },
                )
            }
        }
        .map_err(|e| format!("redis_url: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let connection = ConnectionManager::new_lazy_with_config(client, config)
            .map_err(|e| format!("redis_url: {e}"))?;
        Ok(RedisStore {
            connection,
            timeout,
            healthy: AtomicBool::new(true),
            errors: AtomicU64::new(0),
            metrics,
        })
    }

    /// A handle on the shared connection (clones are cheap; calls on them
    /// are multiplexed on one socket).
    pub fn connection(&self) -> ConnectionManager {
        self.connection.clone()
    }

    /// Runs one call within the timeout: its answer, or `None` when Redis
    /// failed or was too slow (counted; the caller falls back). `operation`
    /// names the call in the store metrics.
    pub async fn call<T>(
        &self,
        operation: &'static str,
        call: impl Future<Output = RedisResult<T>>,
    ) -> Option<T> {
        let timer = StoreCall::start(&self.metrics, "redis", operation);
        let error = match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(answer)) => {
                timer.ok();
                if !self.healthy.swap(true, Ordering::Relaxed) {
                    tracing::info!("Redis answers again: replicas share their state again");
                }
                return Some(answer);
            }
            Ok(Err(e)) => e.to_string(),
            Err(_) => "timed out".to_string(),
        };
        timer.failed();
        self.errors.fetch_add(1, Ordering::Relaxed);
        if self.healthy.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                error,
                "Redis failed: cache bypassed, limits, budgets and region cooldowns per replica until it answers"
            );
        }
        None
    }

    /// Calls that failed or timed out.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }
}
