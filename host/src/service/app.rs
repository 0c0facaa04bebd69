//! Everything a request needs, built once and shared by every request.

use std::sync::Arc;

use mangaassist_core::models::{Catalog, ModelSpec};
use tokio::sync::watch;

use crate::active_policy::ActivePolicy;
use crate::bedrock::invoker::Invoker;
use crate::service::cache::ReplyCache;
use crate::service::config::ServiceConfig;
use crate::service::limits::RateLimits;
use crate::service::metrics::Metrics;
use crate::service::sessions::SessionStore;

/// The service's shared state.
pub struct Service {
    /// Resolved configuration.
    pub config: ServiceConfig,
    /// The sandboxed policy (contract and message checks), swappable.
    pub policy: Arc<ActivePolicy>,
    /// Models and the selection rule.
    pub catalog: Catalog,
    /// Bedrock with regional failover.
    pub invoker: Invoker,
    /// Answers by cache key.
    pub cache: ReplyCache,
    /// Conversation history.
    pub sessions: Arc<dyn SessionStore>,
    /// Overall and per-client rate limits.
    pub limits: RateLimits,
    /// Counters and histograms for `/metrics`.
    pub metrics: Metrics,
    /// Where answers come from, for `/healthz` (`emulator` or `aws`).
    pub bedrock: &'static str,
    /// Turns true when the server begins to shut down (WebSockets close).
    pub stopping: watch::Receiver<bool>,
}

impl Service {
    /// The selected model, then the fallback model when it is another one.
    pub fn models_for(&self, key: &str) -> Vec<&ModelSpec> {
        let mut models: Vec<&ModelSpec> = self.catalog.get(key).into_iter().collect();
        if let Some(fallback) = &self.config.fallback_model
            && fallback != key
            && let Ok(spec) = self.catalog.get(fallback)
        {
            models.push(spec);
        }
        models
    }
}
