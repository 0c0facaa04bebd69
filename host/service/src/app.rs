//! Everything a request needs, built once and shared by every request.

use std::sync::Arc;

use axum::http::StatusCode;
use mangaassist_bedrock::invoker::Invoker;
use mangaassist_core::models::{Catalog, ModelSpec};
use mangaassist_sandbox::{ActivePolicy, Sandbox, SandboxError};
use tokio::sync::{Semaphore, watch};

use crate::cache::ReplyCache;
use crate::config::ServiceConfig;
use crate::errors::ApiError;
use crate::limits::RateLimits;
use crate::metrics::Metrics;
use crate::sessions::SessionStore;

/// The service's shared state.
pub struct Service {
    /// Resolved configuration.
    pub config: ServiceConfig,
    /// The sandboxed policy (contract and message checks), swappable.
    pub policy: Arc<ActivePolicy>,
    /// Policy calls under way at most (on the blocking pool, never on the
    /// async workers: a guest call may take its whole time budget).
    pub policy_slots: Arc<Semaphore>,
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
    /// The selected model, then the fallback model when it is another one:
    /// each catalog key with its spec (a key the catalog lacks is left out).
    pub fn models<'a>(&'a self, selected: &'a str) -> Vec<(&'a str, &'a ModelSpec)> {
        let fallback = self
            .config
            .fallback_model
            .as_deref()
            .filter(|f| *f != selected);
        std::iter::once(selected)
            .chain(fallback)
            .filter_map(|key| Some((key, self.catalog.get(key).ok()?)))
            .collect()
    }

    /// Runs `call` on the serving policy on tokio's blocking pool, at most
    /// `policy_workers` at once; a request waits for a slot.
    pub async fn with_policy<R: Send + 'static>(
        &self,
        call: impl FnOnce(&Sandbox) -> Result<R, SandboxError> + Send + 'static,
    ) -> Result<R, ApiError> {
        // The slot goes with the call: a request given up on (budget,
        // disconnect) does not free it while its guest call still runs.
        let slot = Arc::clone(&self.policy_slots)
            .acquire_owned()
            .await
            .map_err(|_| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "shutting_down",
                    "the service is shutting down",
                )
            })?;
        let policy = self.policy.current();
        let outcome = tokio::task::spawn_blocking(move || {
            let result = call(&policy.sandbox);
            drop(slot);
            result
        })
        .await;
        match outcome {
            Ok(result) => result.map_err(ApiError::from),
            Err(e) => Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "policy_call_failed",
                format!("the policy call did not complete: {e}"),
            )),
        }
    }
}
