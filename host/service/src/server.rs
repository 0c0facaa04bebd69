//! Starting and stopping the service: policy, Bedrock (or the embedded
//! emulator when no AWS is configured), the listener, background upkeep and
//! a graceful shutdown that lets in-flight requests finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::Service;
use crate::budgets::Budgets;
use crate::cache::ReplyCache;
use crate::config::{BedrockMode, Resolved, ServiceConfig};
use crate::conn::{self, ConnLimits, Tracker};
use crate::dynamo_sessions::DynamoSessions;
use crate::identity::Authenticator;
use crate::limits::RateLimits;
use crate::metrics::Metrics;
use crate::redis_store::RedisStore;
use crate::routes::{admin_router, router};
use crate::sessions::{MemorySessions, Sessions};
use crate::shared_budgets::SharedBudgets;
use crate::shared_limits::SharedLimits;
use mangaassist_bedrock::clock::SystemClock;
use mangaassist_bedrock::invoker::{CredentialSource, Invoker, InvokerConfig, RegionEndpoint};
use mangaassist_emulator::{self as emulator, EmulatorConfig, EmulatorHandle, Latency};
use mangaassist_sandbox::{ActivePolicy, Limits, PolicySource, Runtime, Watcher};

/// How often idle per-client rate-limit state is dropped.
const FORGET_CLIENTS_EVERY: Duration = Duration::from_secs(60);

/// Connections the admin listener keeps open at most.
const ADMIN_CONNECTIONS: usize = 64;

/// A running service.
pub struct Server {
    addr: SocketAddr,
    admin_addr: Option<SocketAddr>,
    service: Arc<Service>,
    connections: Arc<Tracker>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
    workers: Option<JoinHandle<()>>,
    emulator: Option<EmulatorHandle>,
    _watcher: Watcher,
}

impl Server {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the admin listener listens, when it is on.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// The public listener's open connections.
    pub fn connections(&self) -> &Arc<Tracker> {
        &self.connections
    }

    /// The embedded emulator, when the service answers from it.
    pub fn emulator(&self) -> Option<&EmulatorHandle> {
        self.emulator.as_ref()
    }

    /// The shared state (for tests and benchmarks that look inside).
    pub fn service(&self) -> &Arc<Service> {
        &self.service
    }

    /// Stops accepting, closes WebSockets, lets in-flight requests finish
    /// (up to `drain_ms`), then stops the emulator.
    pub async fn shutdown(mut self) {
        let drain = Duration::from_millis(self.service.config.drain_ms);
        let _ = self.stop.send(true);
        match tokio::time::timeout(drain, &mut self.task).await {
            Ok(Ok(())) => tracing::info!("service stopped; in-flight requests finished"),
            Ok(Err(e)) => tracing::warn!(error = %e, "service task failed"),
            Err(_) => {
                tracing::warn!(
                    drain_ms = drain.as_millis() as u64,
                    "requests still in flight after the drain time; stopping anyway"
                );
                self.task.abort();
            }
        }
        if let Some(workers) = self.workers.take() {
            // Job items in flight finish (or come back to the queue later).
            if tokio::time::timeout(drain, workers).await.is_err() {
                tracing::warn!(
                    "job items still in flight after the drain time; they come back to the queue"
                );
            }
        }
        if let crate::sessions::Sessions::Dynamo(table) = &self.service.sessions
            && table.waiting_count() > 0
        {
            // A last try for exchanges answered while DynamoDB was down.
            table.retry_waiting().await;
            let left = table.waiting_count();
            if left > 0 {
                tracing::error!(
                    left,
                    "DynamoDB still not answering at shutdown: these exchanges are not in their sessions' history"
                );
            }
        }
        if let Some(emulator) = self.emulator.take() {
            emulator.shutdown().await;
        }
    }

    /// Applies a configuration read again (SIGHUP): see [`Service::reload`].
    pub fn reload(&self, resolved: &Resolved) {
        self.service.reload(&resolved.service);
    }
}

/// Builds everything `resolved` describes and starts serving.
pub async fn start(resolved: Resolved) -> Result<Server, String> {
    let config = resolved.service;

    let limits = Limits {
        call_timeout_ms: config.policy_call_timeout_ms,
        call_ms_per_kib: config.policy_call_ms_per_kib,
        max_memory_bytes: config.policy_max_memory_mib.saturating_mul(1024 * 1024),
        ..Limits::default()
    };
    let source = config
        .policy_wasm
        .clone()
        .map_or(PolicySource::Embedded, PolicySource::File);
    let workers = config.policy_workers;
    // Compiling the component takes about a second, and every instance a
    // warm-up: off the async workers, and before the first request, one
    // ready instance per policy worker.
    let policy = tokio::task::spawn_blocking(move || {
        let runtime = Runtime::new(limits).map_err(|e| e.to_string())?;
        ActivePolicy::start(runtime, source, workers).map_err(|e| format!("{} ({})", e, e.code()))
    })
    .await
    .map_err(|e| format!("policy loading failed: {e}"))??;
    let policy = Arc::new(policy);
    // SIGHUP reloads (a file source is also watched for changes); with the
    // embedded policy it finds it unchanged, rather than ending the process.
    let watcher = policy
        .watch(Duration::from_secs(1))
        .map_err(|e| format!("cannot watch the policy: {e}"))?;

    let reach = bedrock(&config, resolved.profile).await?;
    let invoker = Arc::new(reach.chat_invoker().await?);
    let batch_invoker = match config.jobs_workers {
        0 => None,
        _ => Some(Arc::new(reach.batch_invoker().await?)),
    };
    let (emulator, bedrock) = (reach.emulator, reach.mode);
    let batch = crate::batch::open(&config).await?;

    let rate_limits = RateLimits::new(
        (config.rate_per_second, config.rate_burst),
        (config.client_rate_per_second, config.client_rate_burst),
        config.rate_reserve_percent,
    )?;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    let admin = match config.admin_listen {
        Some(admin) => Some(
            tokio::net::TcpListener::bind(admin)
                .await
                .map_err(|e| format!("cannot listen on {admin} (admin_listen): {e}"))?,
        ),
        None => None,
    };
    let admin_addr = admin
        .as_ref()
        .map(|l| l.local_addr())
        .transpose()
        .map_err(|e| format!("cannot read the admin address: {e}"))?;
    let ttl = Duration::from_secs(config.cache_ttl_secs);
    let metrics = Metrics::new();
    // One connection for everything replicas share.
    let redis = match &config.redis_url {
        Some(url) => {
            tracing::info!(
                "response cache, rate limits, spend budgets and region cooldowns in Redis, shared by every replica"
            );
            Some(Arc::new(RedisStore::connect(
                url,
                config.redis_ca_file.as_deref(),
                Duration::from_millis(config.redis_timeout_ms),
                metrics.stores(),
            )?))
        }
        None => None,
    };
    let cache = match &redis {
        Some(store) => ReplyCache::redis(Arc::clone(store), ttl),
        None => ReplyCache::new(ttl, config.cache_capacity),
    };
    let shared_limits = redis.as_ref().map(|store| {
        SharedLimits::new(
            Arc::clone(store),
            (config.rate_per_second, config.rate_burst),
            (config.client_rate_per_second, config.client_rate_burst),
            config.rate_reserve_percent,
        )
    });
    let shared_budgets = redis
        .as_ref()
        .map(|store| SharedBudgets::new(Arc::clone(store)));
    let sessions = sessions(&config, &metrics).await?;
    let (stop, stopping) = watch::channel(false);
    /// Counts kept (a few MB at most): a repeated body is counted once.
    const TOKEN_COUNTS_KEPT: u64 = 10_000;
    let service = Arc::new(Service {
        policy,
        policy_slots: Arc::new(tokio::sync::Semaphore::new(config.policy_workers)),
        catalog: config.catalog.clone(),
        invoker,
        batch,
        cache,
        sessions,
        limits: rate_limits,
        shared_limits,
        auth: arc_swap::ArcSwap::from_pointee(Authenticator::new(&config)),
        budgets: Budgets::new(Arc::new(SystemClock::new())),
        shared_budgets,
        redis,
        upstream_slots: Arc::new(tokio::sync::Semaphore::new(config.max_upstream_calls)),
        metrics,
        estimator: crate::estimator::Estimator::new(
            config.calibration,
            config.calibration_online,
            config.calibration_min_samples,
        ),
        token_counts: moka::sync::Cache::new(TOKEN_COUNTS_KEPT),
        connections: Tracker::new(config.max_connections),
        bedrock,
        stopping: stopping.clone(),
        config,
    });

    spawn_upkeep(Arc::clone(&service), stopping.clone());
    if let Sessions::Dynamo(table) = &service.sessions {
        table.spawn_retries(stopping.clone());
    }
    if let Some(store) = &service.redis {
        crate::shared_health::share(Arc::clone(&service), Arc::clone(store), stopping.clone())?;
    }
    let workers = batch_invoker.map(|invoker| spawn_workers(&service, invoker, stopping.clone()));
    let c = &service.config;
    let limits = ConnLimits {
        max_connections: c.max_connections,
        header_timeout: Duration::from_millis(c.header_timeout_ms),
        idle_timeout: Duration::from_millis(c.idle_timeout_ms),
        write_timeout: Duration::from_millis(c.write_timeout_ms),
        max_header_bytes: c.max_header_bytes,
    };
    let connections = Arc::clone(&service.connections);
    if let Some(admin) = admin {
        let admin_limits = ConnLimits {
            max_connections: ADMIN_CONNECTIONS,
            ..limits
        };
        tokio::spawn(conn::serve(
            admin,
            admin_router(Arc::clone(&service)),
            admin_limits,
            Tracker::new(ADMIN_CONNECTIONS),
            stopping.clone(),
        ));
    }
    let task = tokio::spawn(conn::serve(
        listener,
        router(Arc::clone(&service)),
        limits,
        Arc::clone(&connections),
        stopping,
    ));
    tracing::info!(%addr, admin = ?admin_addr, environment = %resolved.environment, auth_required = service.config.auth_required, "mangaassist service listening");
    Ok(Server {
        addr,
        admin_addr,
        service,
        connections,
        stop,
        task,
        workers,
        emulator,
        _watcher: watcher,
    })
}

/// How Bedrock is reached, as `config` describes it: the embedded emulator
/// on a loopback port, or Amazon Bedrock.
pub struct Bedrock {
    /// The invoker settings of chat (batch work: [`InvokerConfig::for_batch`]).
    pub invoker: InvokerConfig,
    /// The embedded emulator, when answers come from it.
    pub emulator: Option<EmulatorHandle>,
    /// `emulator` or `aws`.
    pub mode: &'static str,
}

impl Bedrock {
    /// An invoker for chat (adaptive retry, SPEC 9).
    pub async fn chat_invoker(&self) -> Result<Invoker, String> {
        Invoker::new(&self.invoker, Arc::new(SystemClock::new())).await
    }

    /// An invoker for batch work: clients and region health of its own,
    /// no adaptive rate limiter (it backs off through its queue), so batch
    /// throttling never slows chat.
    pub async fn batch_invoker(&self) -> Result<Invoker, String> {
        Invoker::new(&self.invoker.for_batch(), Arc::new(SystemClock::new())).await
    }
}

/// The Bedrock `config` describes: the embedded emulator on a loopback port
/// (said in a warning: its answers are canned), or Amazon Bedrock through
/// the default credential chain. Also what the batch commands (`enrich`,
/// `worker`) call Bedrock through.
pub async fn bedrock(
    config: &ServiceConfig,
    profile: mangaassist_bedrock::profile::EnvProfile,
) -> Result<Bedrock, String> {
    let (invoker_config, emulator, mode) = match config.bedrock {
        BedrockMode::Emulator => {
            let handle = emulator::start(
                SocketAddr::from(([127, 0, 0, 1], 0)),
                EmulatorConfig {
                    latency: Latency {
                        ttft_ms: config.emulator_ttft_ms,
                        per_token_ms: config.emulator_per_token_ms,
                    },
                    faults: Default::default(),
                    control_port: 0,
                },
            )
            .await
            .map_err(|e| format!("cannot start the embedded Bedrock emulator: {e}"))?;
            tracing::warn!(
                endpoint = %handle.endpoint(),
                "no AWS configured (bedrock = \"emulator\"): answers come from the embedded \
                 Bedrock emulator on a loopback port, offline and canned, not from Claude; \
                 set bedrock = \"aws\" to use Amazon Bedrock"
            );
            let regions: Vec<&str> = config.regions.iter().map(String::as_str).collect();
            let mut invoker_config = InvokerConfig::emulated(&handle.endpoint(), &regions, profile);
            invoker_config.stream_idle = Duration::from_millis(config.stream_idle_ms);
            (invoker_config, Some(handle), "emulator")
        }
        BedrockMode::Aws => {
            tracing::info!(regions = ?config.regions, "answers come from Amazon Bedrock (default credential chain)");
            let invoker_config = InvokerConfig {
                regions: config
                    .regions
                    .iter()
                    .map(|r| RegionEndpoint {
                        region: r.clone(),
                        endpoint_url: None,
                    })
                    .collect(),
                profile,
                credentials: CredentialSource::DefaultChain,
                stream_idle: Duration::from_millis(config.stream_idle_ms),
                adaptive_retry: true,
            };
            (invoker_config, None, "aws")
        }
    };
    Ok(Bedrock {
        invoker: invoker_config,
        emulator,
        mode,
    })
}

/// The session store: this process's memory, or the DynamoDB table named
/// by `sessions_table`. A table that does not exist stops the start (a
/// deployment defect); one that cannot be reached does not (the service
/// answers without history until it can).
async fn sessions(config: &ServiceConfig, metrics: &Metrics) -> Result<Sessions, String> {
    let ttl = Duration::from_secs(config.session_ttl_secs);
    let Some(table) = &config.sessions_table else {
        return Ok(Sessions::Memory(MemorySessions::new(
            ttl,
            config.max_sessions,
            config.max_session_bytes,
            Arc::new(SystemClock::new()),
        )));
    };
    let timeout = Duration::from_millis(config.dynamodb_timeout_ms);
    let sdk = crate::aws_stores::sdk_config(timeout).await?;
    let client = crate::aws_stores::dynamodb(&sdk);
    // Bounded by dynamodb_timeout_ms (the SDK's operation timeout).
    let checked = client.describe_table().table_name(table).send().await;
    match checked {
        Ok(_) => tracing::info!(table, "sessions in DynamoDB, shared by every replica"),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            return Err(format!(
                "sessions_table: the DynamoDB table {table:?} does not exist; create it with `mangaassist sessions-table --table {table}`"
            ));
        }
        Err(e) => {
            tracing::warn!(table, error = %e, "DynamoDB did not answer at start: messages are answered without history until it does")
        }
    }
    Ok(Sessions::Dynamo(Arc::new(DynamoSessions::new(
        client,
        table,
        ttl,
        timeout,
        metrics.stores(),
    ))))
}

/// The job workers of this replica: they take no new item while chat has
/// `jobs_chat_busy_calls` Bedrock calls in flight (chat first).
fn spawn_workers(
    service: &Arc<Service>,
    invoker: Arc<Invoker>,
    stopping: watch::Receiver<bool>,
) -> JoinHandle<()> {
    let slots = Arc::clone(&service.upstream_slots);
    let max = service.config.max_upstream_calls;
    // Past max_upstream_calls chat is refused anyway: hold back there at most.
    let busy_at = service.config.jobs_chat_busy_calls.min(max);
    let chat_busy: mangaassist_jobs::worker::ChatBusy =
        Arc::new(move || max.saturating_sub(slots.available_permits()) >= busy_at);
    let worker =
        crate::batch::worker(&service.batch, invoker, &service.config).with_chat_busy(chat_busy);
    tokio::spawn(Arc::new(worker).run(stopping))
}

/// Periodic upkeep until shutdown: forget idle clients' rate-limit state.
fn spawn_upkeep(service: Arc<Service>, mut stopping: watch::Receiver<bool>) {
    tokio::spawn(async move {
        let mut every = tokio::time::interval(FORGET_CLIENTS_EVERY);
        loop {
            tokio::select! {
                _ = every.tick() => {
                    service.limits.forget_idle_clients();
                    service.budgets.forget_idle();
                }
                _ = stopping.wait_for(|s| *s) => return,
            }
        }
    });
}
