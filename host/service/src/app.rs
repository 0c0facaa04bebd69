//! Everything a request needs, built once and shared by every request.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::http::{HeaderMap, StatusCode};
use mangaassist_bedrock::invoker::Invoker;
use mangaassist_core::models::{Catalog, ModelSpec};
use mangaassist_sandbox::{ActivePolicy, Sandbox, SandboxError};
use tokio::sync::{Semaphore, watch};

use crate::address::{client_ip, limit_key};
use crate::budgets::Budgets;
use crate::cache::ReplyCache;
use crate::config::ServiceConfig;
use crate::errors::ApiError;
use crate::identity::{Authenticator, Identity, unix_now};
use crate::limits::RateLimits;
use crate::metrics::Metrics;
use crate::sessions::Sessions;

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
    /// Bedrock with regional failover (shared with the job workers).
    pub invoker: Arc<Invoker>,
    /// The batch path: job queue, job store, completion callback.
    pub batch: crate::batch::Batch,
    /// Answers by cache key.
    pub cache: ReplyCache,
    /// Conversation history.
    pub sessions: Sessions,
    /// Overall and per-client rate limits of this replica.
    pub limits: RateLimits,
    /// The same limits shared by the fleet in Redis, when configured.
    pub shared_limits: Option<crate::shared_limits::SharedLimits>,
    /// API keys, user tokens and the budgets that go with them; replaced
    /// whole when the configuration is read again (key rotation).
    pub auth: arc_swap::ArcSwap<Authenticator>,
    /// Spend budgets per identity, in this replica.
    pub budgets: Budgets,
    /// The same budgets shared by the fleet in Redis, when configured.
    pub shared_budgets: Option<crate::shared_budgets::SharedBudgets>,
    /// The Redis the fleet shares its state through, when configured.
    pub redis: Option<Arc<crate::redis_store::RedisStore>>,
    /// Bedrock calls in flight at most (503 at once past it).
    pub upstream_slots: Arc<Semaphore>,
    /// Counters and histograms for `/metrics`.
    pub metrics: Metrics,
    /// The calibrated token estimator, fitted from the answers.
    pub estimator: crate::estimator::Estimator,
    /// Exact input tokens by model and cache key (CountTokens answers).
    pub token_counts: moka::sync::Cache<(String, String), u64>,
    /// The public listener's open connections (for the cap and `/metrics`).
    pub connections: Arc<crate::conn::Tracker>,
    /// Where answers come from, for `/healthz` (`emulator` or `aws`).
    pub bedrock: &'static str,
    /// Turns true when the server begins to shut down (WebSockets close).
    pub stopping: watch::Receiver<bool>,
}

impl Service {
    /// The exact input tokens of `body` for `model`, when `count_tokens` is
    /// on and the catalog marks the model: from the counts kept by model
    /// and cache key, else from CountTokens within its time bound and the
    /// `remaining` time of the request. None
    /// (the caller estimates instead) otherwise, or when the count fails:
    /// counting makes a reservation exact, it never stops a request.
    pub async fn exact_input(
        &self,
        model: &ModelSpec,
        cache_key: &str,
        body: &mangaassist_core::body::ClaudeBody,
        remaining: std::time::Duration,
    ) -> Option<u64> {
        if !self.config.count_tokens || !model.counts_tokens() {
            return None;
        }
        let key = (model.model_id.clone(), cache_key.to_string());
        if let Some(n) = self.token_counts.get(&key) {
            self.metrics.count_tokens("cached", None);
            return Some(n);
        }
        let limit =
            std::time::Duration::from_millis(self.config.count_tokens_timeout_ms).min(remaining);
        let started = std::time::Instant::now();
        match self.invoker.count_tokens(model, body, limit).await {
            Ok(n) => {
                self.metrics
                    .count_tokens("counted", Some(started.elapsed()));
                self.token_counts.insert(key, n);
                Some(n)
            }
            Err(failure) => {
                tracing::warn!(%failure, "CountTokens failed; reserving by the estimate");
                self.metrics.count_tokens("failed", None);
                None
            }
        }
    }

    /// Applies a configuration read again: credentials and budgets (API
    /// keys, user-token secrets and lifetime, auth_required, budgets,
    /// allow_quality) take effect at once; any other change is reported
    /// and waits for the next start.
    pub fn reload(&self, new: &ServiceConfig) {
        self.auth.store(Arc::new(Authenticator::new(new)));
        let mut rest = new.clone();
        let c = &self.config;
        rest.api_keys.clone_from(&c.api_keys);
        rest.user_token_secrets.clone_from(&c.user_token_secrets);
        rest.user_token_max_ttl_secs = c.user_token_max_ttl_secs;
        rest.auth_required = c.auth_required;
        rest.budget_tokens_per_minute = c.budget_tokens_per_minute;
        rest.budget_usd_per_day = c.budget_usd_per_day;
        rest.allow_quality = c.allow_quality;
        // The command line's --listen wins over the file at every read.
        rest.listen = c.listen;
        if rest == *c {
            tracing::info!("configuration read again: credentials and budgets applied");
        } else {
            tracing::warn!(
                "configuration read again: credentials and budgets applied; other settings changed too and take effect at the next start"
            );
        }
    }

    /// Admits one request from `client`: by the fleet's limits in Redis
    /// when configured and answering, else by this replica's.
    pub async fn admit(&self, client: &str) -> Result<(), crate::limits::Limited> {
        if let Some(shared) = &self.shared_limits
            && let Some(decision) = shared.admit(client).await
        {
            return decision;
        }
        self.limits.admit(client)
    }

    /// Reserves `spend` from `identity`'s budgets: the fleet's in Redis when
    /// configured and answering, else this replica's.
    pub async fn reserve(
        &self,
        identity: &Identity,
        spend: &mangaassist_core::spend::SpendEstimate,
    ) -> Result<crate::shared_budgets::Held, ApiError> {
        if let Some(shared) = &self.shared_budgets
            && let Some(decision) = shared
                .reserve(&identity.label, identity.allowance, spend)
                .await
        {
            return decision.map_err(ApiError::from);
        }
        self.budgets
            .reserve(&identity.label, identity.allowance, spend)
            .map(crate::shared_budgets::Held::Local)
            .map_err(ApiError::from)
    }

    /// Replaces a reservation with what the call used.
    pub async fn settle(&self, held: crate::shared_budgets::Held, tokens: u64, usd: f64) {
        match held {
            crate::shared_budgets::Held::Local(r) => self.budgets.settle(r, tokens, usd),
            shared => {
                if let Some(budgets) = &self.shared_budgets {
                    budgets.settle(&shared, tokens, usd).await;
                }
            }
        }
    }

    /// Who sent a request from `peer`: its credential, else (when allowed)
    /// its address, as the trusted proxies report it, IPv6 by its /64.
    pub async fn identify(
        &self,
        headers: &HeaderMap,
        peer: SocketAddr,
        query_token: Option<&str>,
    ) -> Result<Identity, ApiError> {
        let ip = client_ip(headers, peer.ip(), &self.config.trusted_proxies);
        let address = limit_key(ip);
        match self
            .auth
            .load()
            .identify(headers, query_token, &address, unix_now())
        {
            Ok(identity) => Ok(identity),
            // Failed credentials count against the address's rate, so
            // guessing keys is as slow as any other flood.
            Err(refused) => match self.admit(&format!("addr:{address}")).await {
                Ok(()) => Err(refused),
                Err(limited) => Err(ApiError::from(limited)),
            },
        }
    }

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
            Err(e) => {
                tracing::error!(error = %e, "policy call did not complete");
                Err(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "policy_call_failed",
                    "the policy call did not complete",
                ))
            }
        }
    }
}
