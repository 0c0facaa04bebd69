//! Service configuration (SPEC 8–10): built-in defaults, then a TOML file
//! (a base plus per-`MANGA_ENV` sections), then `MANGAASSIST_*` environment
//! overrides. Unknown keys are errors, so a typo cannot silently fall back to
//! a default.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use mangaassist_core::calibration::Calibration;
use mangaassist_core::models::Catalog;
use mangaassist_sandbox::sandbox::MAX_IDLE;

use mangaassist_bedrock::profile::EnvProfile;

/// Where answers come from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BedrockMode {
    /// The embedded emulator on a loopback port: offline, no credentials.
    Emulator,
    /// Amazon Bedrock with the default credential chain.
    Aws,
}

/// Everything `mangaassist serve` can be told.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// End-to-end budget of the synchronous path, ms (504 past it); also
    /// the time a client gets to send its request body (408 past it).
    pub sync_budget_ms: u64,
    /// Budget of a streamed (WebSocket) answer, ms.
    pub stream_budget_ms: u64,
    /// Largest request body, bytes (413 past it).
    pub max_body_bytes: usize,
    /// Overall requests per second, and burst.
    pub rate_per_second: u32,
    /// Overall burst.
    pub rate_burst: u32,
    /// Per-client requests per second (a known API key, else peer address).
    pub client_rate_per_second: u32,
    /// Per-client burst.
    pub client_rate_burst: u32,
    /// Whether every chat request must carry an API key or a user token
    /// (401 without). Default: off in dev (the widget works out of the box),
    /// on in staging and prod.
    pub auth_required: bool,
    /// API keys (`X-Api-Key`), stored as SHA-256 digests
    /// (`mangaassist hash-key` prints one), each an identity of its own for
    /// limits, budgets and session ownership.
    pub api_keys: Vec<ApiKeyConfig>,
    /// HMAC-SHA256 secrets of user tokens (HS256 JWTs the store's backend
    /// mints; `Authorization: Bearer`). Any of them verifies, so a secret
    /// can be rotated. Each at least 32 bytes.
    pub user_token_secrets: Vec<String>,
    /// Longest lifetime a user token may claim (`exp` − now), seconds.
    pub user_token_max_ttl_secs: u64,
    /// Spend budget of an identity without its own: tokens per minute
    /// (input and output, reserved from the estimate before the call).
    pub budget_tokens_per_minute: u64,
    /// Spend budget of an identity without its own: USD per day.
    pub budget_usd_per_day: f64,
    /// Whether `modelPreference: quality` is allowed for identities without
    /// their own setting.
    pub allow_quality: bool,
    /// Who may see a cached answer: `shared` (anyone who sends the same
    /// body, the default) or `identity` (only the identity that caused it).
    pub cache_scope: CacheScope,
    /// Bytes of conversation text kept over all sessions at most.
    pub max_session_bytes: usize,
    /// TCP connections open at once; past it the longest-idle one is closed
    /// to make room, or the new one when none is idle.
    pub max_connections: usize,
    /// Time a client gets to send a request's headers, ms.
    pub header_timeout_ms: u64,
    /// Silence after which a connection is closed (between keep-alive
    /// requests, or mid-request), ms.
    pub idle_timeout_ms: u64,
    /// Time a write may stay blocked on a client that does not read, ms.
    pub write_timeout_ms: u64,
    /// Request line and headers together, bytes (431 past it).
    pub max_header_bytes: usize,
    /// Largest WebSocket frame, bytes (the connection is closed past it).
    pub ws_max_frame_bytes: usize,
    /// Largest WebSocket message, bytes.
    pub ws_max_message_bytes: usize,
    /// A WebSocket with no request this long is closed, ms.
    pub ws_idle_timeout_ms: u64,
    /// How often the server pings a WebSocket; one that has not answered
    /// by the next ping is closed, ms.
    pub ws_ping_interval_ms: u64,
    /// Longest life of a WebSocket, ms.
    pub ws_max_lifetime_ms: u64,
    /// `Origin`s allowed to open a WebSocket besides the page's own.
    pub allowed_origins: Vec<String>,
    /// `Host` names (with or without port) the service answers to, besides
    /// `localhost`, `127.0.0.1`, `[::1]` and the listen address (DNS
    /// rebinding); `["*"]` turns the check off.
    pub allowed_hosts: Vec<String>,
    /// Origins sent CORS headers for the API; none by default.
    pub cors_origins: Vec<String>,
    /// Proxies (addresses or CIDR ranges) whose `X-Forwarded-For` is
    /// believed; from anyone else the peer address is the client.
    #[serde(deserialize_with = "networks")]
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The admin listener (`/healthz` with details, `/metrics`); `"off"`
    /// turns it off.
    #[serde(deserialize_with = "optional_address")]
    pub admin_listen: Option<SocketAddr>,
    /// Bedrock calls in flight at most; past it 503 at once.
    pub max_upstream_calls: usize,
    /// Percent of the overall rate kept for clients sending at most one
    /// request a second, so a few busy addresses cannot starve the rest.
    pub rate_reserve_percent: u32,
    /// Response cache TTL, seconds.
    pub cache_ttl_secs: u64,
    /// Response cache entries (in memory).
    pub cache_capacity: u64,
    /// A Redis shared by every replica for the response cache
    /// (`redis://[:password@]host:port[/db]`); none: this process's memory.
    pub redis_url: Option<String>,
    /// Longest wait on one Redis call, ms; past it the cache is bypassed.
    pub redis_timeout_ms: u64,
    /// PEM file of the CA a `rediss://` Redis's certificate is checked
    /// against; none: the system's roots.
    pub redis_ca_file: Option<PathBuf>,
    /// A DynamoDB table every replica keeps sessions in (created by
    /// `mangaassist sessions-table`); none: this process's memory. Region,
    /// credentials and endpoint come from the AWS SDK's standard settings.
    pub sessions_table: Option<String>,
    /// Longest wait on one DynamoDB call, ms (its retry included).
    pub dynamodb_timeout_ms: u64,
    /// Whether to read settings from SSM Parameter Store under
    /// `/manga-assist/<MANGA_ENV>/` (over the file, under the environment),
    /// at start and on SIGHUP. Only the file or the environment can say so.
    pub ssm_parameters: bool,
    /// Idle time after which a session is forgotten, seconds.
    pub session_ttl_secs: u64,
    /// Sessions kept at most.
    pub max_sessions: usize,
    /// Policy component file; none: the embedded one.
    pub policy_wasm: Option<PathBuf>,
    /// Per-call budget of the policy, ms.
    pub policy_call_timeout_ms: u64,
    /// More policy budget per KiB of request, ms (a 64 KiB request gets
    /// 10 + 64 ms by default): honest big inputs are not timeouts.
    pub policy_call_ms_per_kib: u64,
    /// Policy calls run at once (each on the blocking pool, with an
    /// instance made ready at start); requests beyond wait for a slot.
    pub policy_workers: usize,
    /// Memory cap of the policy, MiB.
    pub policy_max_memory_mib: usize,
    /// Emulator or AWS.
    pub bedrock: BedrockMode,
    /// Regions in priority order.
    pub regions: Vec<String>,
    /// Model key tried after every region failed the selected one.
    pub fallback_model: Option<String>,
    /// Longest silence between two events of a streamed answer once it has
    /// started, ms (its first event must come within the model's timeout).
    pub stream_idle_ms: u64,
    /// Models, prices and the selection rule (SPEC 8), as `[catalog]` in
    /// the core's camelCase field names.
    pub catalog: Catalog,
    /// A named catalog instead of `[catalog]` (`spec`, `current-global`,
    /// `current-us`, `current-eu`, `current-jp`: current Claude models
    /// through a geography's inference profiles); giving both is an error.
    pub catalog_preset: Option<String>,
    /// Before each Bedrock call to a model marked `countTokens`, ask
    /// CountTokens for the body's exact input (cached by body), so the
    /// spend reservation is exact rather than estimated. A count that
    /// fails or takes too long falls back to the estimate.
    pub count_tokens: bool,
    /// How long a count may take, ms.
    pub count_tokens_timeout_ms: u64,
    /// Weights the calibrated estimator starts from (`mangaassist
    /// calibrate` prints them), in the core's camelCase names.
    pub calibration: Option<Calibration>,
    /// Fit the calibrated estimator's weights from the answers as they come.
    pub calibration_online: bool,
    /// Samples before the online fit is published.
    pub calibration_min_samples: u64,
    /// The embedded emulator's time to first token, ms (emulator mode).
    pub emulator_ttft_ms: u64,
    /// The embedded emulator's time per token, ms (emulator mode).
    pub emulator_per_token_ms: u64,
    /// Directory served at `/` (the chat widget); none: no page.
    pub web_root: Option<PathBuf>,
    /// How long in-flight requests may take to finish at shutdown, ms.
    pub drain_ms: u64,
    /// Directory of the embedded job queue and job store (SQLite files
    /// `queue.db` and `jobs.db`), created when missing.
    pub jobs_dir: PathBuf,
    /// The job queue's name; a name ending in `.fifo` keeps each job's
    /// items in order (one at a time per job).
    pub jobs_queue: String,
    /// Whether the job queue is on Amazon SQS (created by `mangaassist
    /// jobs setup`); otherwise embedded in `jobs_dir`.
    pub jobs_sqs: bool,
    /// A DynamoDB table for jobs and results (the enriched catalog,
    /// created by `mangaassist jobs setup`); none: SQLite in `jobs_dir`.
    pub jobs_table: Option<String>,
    /// Job items this process works on at once (`serve` and `worker`);
    /// 0 in `serve`: this replica only takes jobs, workers elsewhere run them.
    pub jobs_workers: usize,
    /// Bedrock calls per second batch work may make, per process (its
    /// share of the rate; chat's calls are not counted against it).
    pub jobs_rate_per_second: f64,
    /// In `serve`: workers take no new item while chat has this many
    /// Bedrock calls in flight (chat first); at most `max_upstream_calls`.
    pub jobs_chat_busy_calls: usize,
    /// How long a received item stays hidden from other workers, seconds;
    /// renewed while it runs.
    pub jobs_visibility_secs: u64,
    /// Receives after which an item that still fails goes to the
    /// dead-letter queue.
    pub jobs_max_receives: u32,
    /// Delay before an item's second try, ms; doubles with every try.
    pub jobs_retry_base_ms: u64,
    /// Longest job request body, bytes (413 past it).
    pub jobs_max_body_bytes: usize,
    /// URL POSTed the job's state when a job completes; none: no callback.
    pub jobs_callback_url: Option<String>,
    /// HMAC-SHA256 secret of the callback's signature (at least 32 bytes;
    /// required with `jobs_callback_url`).
    pub jobs_callback_secret: Option<String>,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        ServiceConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            sync_budget_ms: 3_000,
            stream_budget_ms: 30_000,
            max_body_bytes: 64 * 1024,
            rate_per_second: 100,
            rate_burst: 200,
            client_rate_per_second: 20,
            client_rate_burst: 40,
            auth_required: false,
            api_keys: Vec::new(),
            user_token_secrets: Vec::new(),
            user_token_max_ttl_secs: 3_600,
            budget_tokens_per_minute: 50_000,
            budget_usd_per_day: 5.0,
            allow_quality: true,
            cache_scope: CacheScope::Shared,
            max_session_bytes: 256 * 1024 * 1024,
            max_connections: 10_000,
            header_timeout_ms: 10_000,
            idle_timeout_ms: 60_000,
            write_timeout_ms: 10_000,
            max_header_bytes: 64 * 1024,
            ws_max_frame_bytes: 32 * 1024,
            ws_max_message_bytes: 128 * 1024,
            ws_idle_timeout_ms: 600_000,
            ws_ping_interval_ms: 30_000,
            ws_max_lifetime_ms: 7_200_000,
            allowed_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            cors_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            admin_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9090))),
            max_upstream_calls: 256,
            rate_reserve_percent: 20,
            cache_ttl_secs: 300,
            cache_capacity: 10_000,
            redis_url: None,
            redis_timeout_ms: 50,
            redis_ca_file: None,
            sessions_table: None,
            dynamodb_timeout_ms: 250,
            ssm_parameters: false,
            session_ttl_secs: 1_800,
            max_sessions: 100_000,
            policy_wasm: None,
            policy_call_timeout_ms: 10,
            policy_call_ms_per_kib: 1,
            policy_workers: std::thread::available_parallelism()
                .map_or(2, usize::from)
                .min(mangaassist_sandbox::sandbox::MAX_IDLE),
            policy_max_memory_mib: 64,
            bedrock: BedrockMode::Emulator,
            regions: vec![
                "us-east-1".into(),
                "us-west-2".into(),
                "ap-northeast-1".into(),
            ],
            fallback_model: Some("haiku".into()),
            stream_idle_ms: 5_000,
            catalog: Catalog::spec_default(),
            catalog_preset: None,
            count_tokens: false,
            count_tokens_timeout_ms: 500,
            calibration: None,
            calibration_online: true,
            calibration_min_samples: 50,
            emulator_ttft_ms: 150,
            emulator_per_token_ms: 8,
            web_root: Some(PathBuf::from("web-demo")),
            drain_ms: 10_000,
            jobs_dir: PathBuf::from(".mangaassist"),
            jobs_queue: "mangaassist-jobs".into(),
            jobs_sqs: false,
            jobs_table: None,
            jobs_workers: 4,
            jobs_rate_per_second: 10.0,
            jobs_chat_busy_calls: 32,
            jobs_visibility_secs: 60,
            jobs_max_receives: 5,
            jobs_retry_base_ms: 2_000,
            jobs_max_body_bytes: 4 * 1024 * 1024,
            jobs_callback_url: None,
            jobs_callback_secret: None,
        }
    }
}

/// One API key: a name for logs and metrics, the SHA-256 of the key, and
/// what differs from the defaults for it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// Name of the key's holder (the identity is `key:<id>`).
    pub id: String,
    /// Lowercase hex SHA-256 of the key (`mangaassist hash-key`).
    pub sha256: String,
    /// Tokens per minute, instead of `budget_tokens_per_minute`.
    pub tokens_per_minute: Option<u64>,
    /// USD per day, instead of `budget_usd_per_day`.
    pub usd_per_day: Option<f64>,
    /// Whether `quality` is allowed, instead of `allow_quality`.
    pub allow_quality: Option<bool>,
}

/// An address, or `"off"`.
fn optional_address<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<SocketAddr>, D::Error> {
    let text = String::deserialize(d)?;
    if text == "off" {
        return Ok(None);
    }
    text.parse().map(Some).map_err(|_| {
        serde::de::Error::custom(format!(
            "{text:?} is not an address such as 127.0.0.1:9090, or \"off\""
        ))
    })
}

/// Addresses (`10.0.0.7`) or ranges (`10.0.0.0/8`).
fn networks<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<ipnet::IpNet>, D::Error> {
    let texts: Vec<String> = Vec::deserialize(d)?;
    texts
        .iter()
        .map(|t| {
            t.parse::<ipnet::IpNet>()
                .or_else(|_| t.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                .map_err(|_| {
                    serde::de::Error::custom(format!(
                        "{t:?} is not an address or a CIDR range (trusted_proxies)"
                    ))
                })
        })
        .collect()
}

/// Who may see a cached answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CacheScope {
    /// Anyone who sends the same body (SPEC 7 key).
    Shared,
    /// Only the identity whose request was answered.
    Identity,
}

/// A configuration file: base settings and per-environment overrides
/// (`[env.prod]` and so on), applied in that order.
/// (Unknown keys are caught when the merged table becomes a [`ServiceConfig`].)
#[derive(Debug, Default, Deserialize)]
struct File {
    #[serde(flatten)]
    base: toml::Table,
    #[serde(default)]
    env: BTreeMap<String, toml::Table>,
}

/// The resolved configuration and the client profile of its environment.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolved {
    /// `MANGA_ENV` (dev when unset).
    pub environment: String,
    /// Service settings.
    pub service: ServiceConfig,
    /// Bedrock client settings of the environment (SPEC 9).
    pub profile: EnvProfile,
}

/// Resolves defaults ← `file_text` (base, then `[env.<environment>]`) ←
/// `overrides` (`MANGAASSIST_<KEY>` variables, key upper-cased).
pub fn resolve(
    environment: &str,
    file_text: Option<&str>,
    overrides: &[(String, String)],
) -> Result<Resolved, String> {
    resolve_layers(environment, file_text, None, overrides)
}

/// Whether the file and the environment ask for settings from SSM
/// Parameter Store (`ssm_parameters`), read before anything is checked:
/// the missing settings may be the ones SSM holds.
pub fn wants_ssm(
    environment: &str,
    file_text: Option<&str>,
    overrides: &[(String, String)],
) -> Result<bool, String> {
    let table = layered(environment, file_text, None, overrides)?;
    match table.get("ssm_parameters") {
        None => Ok(false),
        Some(toml::Value::Boolean(on)) => Ok(*on),
        Some(other) => Err(format!(
            "configuration: ssm_parameters must be true or false, not {other:?}"
        )),
    }
}

/// Resolves defaults ← the file ← `ssm` (settings read from SSM Parameter
/// Store, already checked by [`crate::ssm_config`]) ← `overrides`.
pub fn resolve_layers(
    environment: &str,
    file_text: Option<&str>,
    ssm: Option<&toml::Table>,
    overrides: &[(String, String)],
) -> Result<Resolved, String> {
    let profile = EnvProfile::named(environment)?;
    let table = layered(environment, file_text, ssm, overrides)?;
    let auth_set = table.contains_key("auth_required");
    let mut service: ServiceConfig = table
        .try_into()
        .map_err(|e: toml::de::Error| format!("configuration: {e}"))?;
    if !auth_set {
        // On by default where the service faces the public.
        service.auth_required = environment != "dev";
    }
    if service.regions.is_empty() {
        return Err("configuration: regions must name at least one region".into());
    }
    if let Some(name) = &service.catalog_preset {
        service.catalog =
            Catalog::preset(name).map_err(|e| format!("configuration: catalog_preset: {e}"))?;
    }
    if let Some(c) = &service.calibration {
        c.validate()
            .map_err(|e| format!("configuration: calibration: {e}"))?;
    }
    check_bounds(&service)?;
    check_security(&service)?;
    service
        .catalog
        .validate()
        .map_err(|e| format!("configuration: catalog: {e}"))?;
    if let Some(fallback) = &service.fallback_model {
        service
            .catalog
            .get(fallback)
            .map_err(|e| format!("configuration: fallback_model: {e}"))?;
    }
    Ok(Resolved {
        environment: environment.to_string(),
        service,
        profile,
    })
}

/// Longest time any setting may name: a day. Far beyond any sane value,
/// and far below where adding it to a clock reading could overflow.
const MAX_MS: u64 = 24 * 60 * 60 * 1000;

/// Refuses values the service could not use: zero where something must
/// run, and times that would overflow a deadline (`now + budget`).
fn check_bounds(c: &ServiceConfig) -> Result<(), String> {
    // Every time setting, in ms, and whether it must be at least 1 (a zero
    // that means "at once" or "never" is allowed only where it makes sense).
    let times = [
        ("sync_budget_ms", c.sync_budget_ms, true),
        ("stream_budget_ms", c.stream_budget_ms, true),
        ("stream_idle_ms", c.stream_idle_ms, true),
        ("policy_call_timeout_ms", c.policy_call_timeout_ms, true),
        ("policy_call_ms_per_kib", c.policy_call_ms_per_kib, false),
        ("drain_ms", c.drain_ms, false),
        ("redis_timeout_ms", c.redis_timeout_ms, true),
        ("dynamodb_timeout_ms", c.dynamodb_timeout_ms, true),
        ("emulator_ttft_ms", c.emulator_ttft_ms, false),
        ("emulator_per_token_ms", c.emulator_per_token_ms, false),
        (
            "cache_ttl_secs",
            c.cache_ttl_secs.saturating_mul(1000),
            false,
        ),
        (
            "session_ttl_secs",
            c.session_ttl_secs.saturating_mul(1000),
            false,
        ),
        ("header_timeout_ms", c.header_timeout_ms, true),
        ("idle_timeout_ms", c.idle_timeout_ms, true),
        ("write_timeout_ms", c.write_timeout_ms, true),
        ("ws_idle_timeout_ms", c.ws_idle_timeout_ms, true),
        ("ws_ping_interval_ms", c.ws_ping_interval_ms, true),
        ("ws_max_lifetime_ms", c.ws_max_lifetime_ms, true),
        (
            "user_token_max_ttl_secs",
            c.user_token_max_ttl_secs.saturating_mul(1000),
            true,
        ),
        (
            "jobs_visibility_secs",
            c.jobs_visibility_secs.saturating_mul(1000),
            true,
        ),
        ("jobs_retry_base_ms", c.jobs_retry_base_ms, true),
        ("count_tokens_timeout_ms", c.count_tokens_timeout_ms, true),
    ];
    let models = c
        .catalog
        .models
        .iter()
        .map(|(key, m)| (format!("catalog.models.{key}.timeoutMs"), m.timeout_ms));
    for (key, ms) in times
        .iter()
        .map(|(k, v, _)| (k.to_string(), *v))
        .chain(models)
    {
        if ms > MAX_MS {
            return Err(format!(
                "configuration: {key} = {ms} is over the limit of {MAX_MS} ms (one day)"
            ));
        }
    }
    let counts = [
        ("policy_workers", c.policy_workers as u64),
        ("policy_max_memory_mib", c.policy_max_memory_mib as u64),
        ("max_connections", c.max_connections as u64),
        ("ws_max_frame_bytes", c.ws_max_frame_bytes as u64),
        ("ws_max_message_bytes", c.ws_max_message_bytes as u64),
        ("max_upstream_calls", c.max_upstream_calls as u64),
        ("max_session_bytes", c.max_session_bytes as u64),
        ("jobs_max_receives", u64::from(c.jobs_max_receives)),
        ("jobs_max_body_bytes", c.jobs_max_body_bytes as u64),
        ("jobs_chat_busy_calls", c.jobs_chat_busy_calls as u64),
    ];
    let at_least_one = times
        .iter()
        .filter(|(_, _, nonzero)| *nonzero)
        .map(|(k, v, _)| (*k, *v))
        .chain(counts);
    if let Some((key, _)) = at_least_one.into_iter().find(|(_, v)| *v == 0) {
        return Err(format!("configuration: {key} must be at least 1"));
    }
    if c.policy_workers > MAX_IDLE {
        return Err(format!(
            "configuration: policy_workers = {} is over the limit of {MAX_IDLE} (ready instances a policy keeps)",
            c.policy_workers
        ));
    }
    if c.jobs_visibility_secs > 12 * 60 * 60 {
        return Err(format!(
            "configuration: jobs_visibility_secs = {} is over the limit of 43200 (SQS's 12 hours)",
            c.jobs_visibility_secs
        ));
    }
    if !(c.jobs_rate_per_second.is_finite() && c.jobs_rate_per_second >= 0.0) {
        return Err(
            "configuration: jobs_rate_per_second must be a number ≥ 0 (0: no limit)".into(),
        );
    }
    // SQS allows 80 characters; the dead-letter queue's name adds "-dlq".
    let queue_name_ok = !c.jobs_queue.is_empty()
        && c.jobs_queue.len() <= 76
        && c.jobs_queue
            .trim_end_matches(".fifo")
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !queue_name_ok {
        return Err(format!(
            "configuration: jobs_queue {:?} is not a queue name (letters, digits, - and _, at most 76 with an optional .fifo ending)",
            c.jobs_queue
        ));
    }
    if c.jobs_sqs && c.jobs_table.is_none() {
        return Err("configuration: jobs_sqs needs jobs_table: a queue shared by several hosts needs a job store they share too (items taken by a host without the job would be lost)".into());
    }
    match (&c.jobs_callback_url, &c.jobs_callback_secret) {
        (Some(_), None) => {
            return Err("configuration: jobs_callback_url needs jobs_callback_secret (the callback is signed)".into());
        }
        (Some(url), Some(secret)) => {
            mangaassist_jobs::notify::Notifier::check(url, secret)
                .map_err(|e| format!("configuration: {e}"))?;
        }
        _ => {}
    }
    if c.policy_max_memory_mib > 4096 {
        return Err(format!(
            "configuration: policy_max_memory_mib = {} is over the limit of 4096 (a 32-bit guest's whole address space)",
            c.policy_max_memory_mib
        ));
    }
    Ok(())
}

/// Refuses security settings that cannot work: keys that are not digests,
/// short secrets, auth required with no way to authenticate, limits that
/// contradict each other.
fn check_security(c: &ServiceConfig) -> Result<(), String> {
    for key in &c.api_keys {
        let hex = key.sha256.len() == 64
            && key
                .sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !hex {
            return Err(format!(
                "configuration: api_keys: {:?}: sha256 must be 64 lowercase hex digits (the key's SHA-256; `mangaassist hash-key` prints it), not the key itself",
                key.id
            ));
        }
        if key.id.is_empty() {
            return Err("configuration: api_keys: every key needs an id".into());
        }
        if key
            .usd_per_day
            .is_some_and(|usd| !(usd.is_finite() && usd >= 0.0))
        {
            return Err(format!(
                "configuration: api_keys: {:?}: usd_per_day must be a number ≥ 0",
                key.id
            ));
        }
    }
    let mut ids: Vec<&str> = c.api_keys.iter().map(|k| k.id.as_str()).collect();
    ids.sort_unstable();
    if let Some(pair) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!(
            "configuration: api_keys: the id {:?} is used twice",
            pair[0]
        ));
    }
    if let Some(short) = c.user_token_secrets.iter().find(|s| s.len() < 32) {
        return Err(format!(
            "configuration: user_token_secrets: a secret of {} bytes is too short (at least 32)",
            short.len()
        ));
    }
    if c.auth_required && c.api_keys.is_empty() && c.user_token_secrets.is_empty() {
        return Err(
            "configuration: auth_required is on (the default in staging and prod) but no api_keys or user_token_secrets are set: no client could be let in"
                .into(),
        );
    }
    if !(c.budget_usd_per_day.is_finite() && c.budget_usd_per_day >= 0.0) {
        return Err("configuration: budget_usd_per_day must be a number ≥ 0".into());
    }
    if c.rate_reserve_percent > 90 {
        return Err(format!(
            "configuration: rate_reserve_percent = {} is over 90: busy clients would get almost nothing",
            c.rate_reserve_percent
        ));
    }
    if c.ws_max_frame_bytes > c.ws_max_message_bytes {
        return Err("configuration: ws_max_frame_bytes is over ws_max_message_bytes".into());
    }
    if c.ws_ping_interval_ms >= c.idle_timeout_ms {
        return Err(format!(
            "configuration: ws_ping_interval_ms = {} must be under idle_timeout_ms = {} (pongs keep a quiet WebSocket's socket alive)",
            c.ws_ping_interval_ms, c.idle_timeout_ms
        ));
    }
    if c.max_header_bytes < 8192 {
        return Err(format!(
            "configuration: max_header_bytes = {} is under 8192 (the HTTP parser's smallest buffer)",
            c.max_header_bytes
        ));
    }
    Ok(())
}

/// The settings of every layer merged into one table, later layers
/// winning key by key. Missing keys take [`ServiceConfig::default`].
fn layered(
    environment: &str,
    file_text: Option<&str>,
    ssm: Option<&toml::Table>,
    overrides: &[(String, String)],
) -> Result<toml::Table, String> {
    let mut table = toml::Table::new();
    if let Some(text) = file_text {
        let file: File = toml::from_str(text).map_err(|e| format!("configuration file: {e}"))?;
        if let Some(unknown) = file.env.keys().find(|k| EnvProfile::named(k).is_err()) {
            return Err(format!(
                "configuration file: [env.{unknown}] is not an environment: expected dev, staging or prod"
            ));
        }
        merge(&mut table, file.base)?;
        if let Some(section) = file.env.get(environment) {
            merge(&mut table, section.clone())?;
        }
    }
    if let Some(ssm) = ssm {
        merge(&mut table, ssm.clone())?;
    }
    for (name, value) in overrides {
        let Some(key) = name.strip_prefix("MANGAASSIST_") else {
            continue;
        };
        let key = key.to_ascii_lowercase();
        if key == "log" {
            continue;
        }
        // Parse as a TOML value (numbers, arrays), else take the text.
        let parsed = toml::from_str::<toml::Table>(&format!("v = {value}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(value.clone()));
        let mut layer = toml::Table::new();
        layer.insert(key, parsed);
        merge(&mut table, layer)?;
    }
    Ok(table)
}

/// Lays `from` over `into`. `catalog_preset` and `[catalog]` exclude each
/// other: both in one layer is an error, and either in a later layer
/// replaces the other from an earlier one (a preset for prod over a base
/// `[catalog]`, or `MANGAASSIST_CATALOG_PRESET` over the file's catalog).
fn merge(into: &mut toml::Table, from: toml::Table) -> Result<(), String> {
    match (
        from.contains_key("catalog_preset"),
        from.contains_key("catalog"),
    ) {
        (true, true) => {
            return Err(
                "configuration: catalog_preset and [catalog] are both given; keep one".into(),
            );
        }
        (true, false) => {
            into.remove("catalog");
        }
        (false, true) => {
            into.remove("catalog_preset");
        }
        (false, false) => {}
    }
    for (k, v) in from {
        into.insert(k, v);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    #[test]
    fn defaults_follow_the_spec() {
        let r = resolve("dev", None, &[]).unwrap();
        assert_eq!(r.service, ServiceConfig::default());
        assert_eq!(r.profile, EnvProfile::DEV);
        assert_eq!(r.service.max_body_bytes, 65_536);
        assert_eq!(
            (r.service.rate_per_second, r.service.rate_burst),
            (100, 200)
        );
        assert_eq!(r.service.cache_ttl_secs, 300);
    }

    #[test]
    fn file_then_environment_section_then_variables() {
        let text = r#"
            rate_per_second = 50
            bedrock = "aws"
            [env.prod]
            rate_per_second = 500
            regions = ["ap-northeast-1", "us-east-1"]
        "#;
        let dev = resolve("dev", Some(text), &[]).unwrap();
        assert_eq!(dev.service.rate_per_second, 50);
        assert_eq!(dev.service.bedrock, BedrockMode::Aws);
        let prod = resolve(
            "prod",
            Some(text),
            &[
                ("MANGAASSIST_RATE_BURST".into(), "900".into()),
                ("MANGAASSIST_LISTEN".into(), "0.0.0.0:9000".into()),
                (
                    "MANGAASSIST_API_KEYS".into(),
                    format!(r#"[{{id = "shop-1", sha256 = "{}"}}, {{id = "shop-2", sha256 = "{}", usd_per_day = 2.5}}]"#, "a".repeat(64), "b".repeat(64)),
                ),
                ("OTHER".into(), "x".into()),
            ],
        )
        .unwrap();
        let ids: Vec<&str> = prod
            .service
            .api_keys
            .iter()
            .map(|k| k.id.as_str())
            .collect();
        assert_eq!(ids, ["shop-1", "shop-2"]);
        assert_eq!(prod.service.api_keys[1].usd_per_day, Some(2.5));
        assert!(prod.service.auth_required, "on by default in prod");
        assert_eq!(prod.service.rate_per_second, 500);
        assert_eq!(prod.service.rate_burst, 900);
        assert_eq!(prod.service.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(prod.service.regions, ["ap-northeast-1", "us-east-1"]);
        assert_eq!(prod.profile, EnvProfile::PROD);
    }

    #[test]
    fn a_catalog_preset_replaces_the_catalog_and_excludes_it() {
        let r = resolve(
            "dev",
            Some("catalog_preset = \"current-jp\"\ncount_tokens = true"),
            &[],
        )
        .unwrap();
        assert_eq!(
            r.service.catalog.get("sonnet").unwrap().model_id,
            "jp.anthropic.claude-sonnet-4-6"
        );
        assert!(r.service.count_tokens);
        let e = resolve("dev", Some("catalog_preset = \"current-mars\""), &[]).unwrap_err();
        assert!(e.contains("no catalog preset \"current-mars\""), "{e}");
        let both = "catalog_preset = \"current-us\"\n[catalog.selection]\nfast = \"haiku\"\nquality = \"sonnet\"\nautoFastMaxTokens = 1";
        let e = resolve("dev", Some(both), &[]).unwrap_err();
        assert!(e.contains("both given"), "{e}");
        // A later layer's choice replaces an earlier one's.
        let base_catalog = "[catalog.selection]\nfast = \"haiku\"\nquality = \"sonnet\"\nautoFastMaxTokens = 1\n[env.prod]\ncatalog_preset = \"current-eu\"";
        let prod = resolve(
            "prod",
            Some(&format!(
                "{base_catalog}\napi_keys = [{{id = \"a\", sha256 = \"{}\"}}]",
                "a".repeat(64)
            )),
            &[],
        );
        let prod = prod.unwrap();
        assert_eq!(
            prod.service.catalog.get("haiku").unwrap().model_id,
            "eu.anthropic.claude-haiku-4-5-20251001-v1:0"
        );
        let over = resolve(
            "dev",
            Some("catalog_preset = \"current-eu\""),
            &[("MANGAASSIST_CATALOG_PRESET".into(), "current-us".into())],
        )
        .unwrap();
        assert!(
            over.service
                .catalog
                .get("sonnet")
                .unwrap()
                .model_id
                .starts_with("us.")
        );
        let bad = "[calibration]\nkana = 1.0\nkanji = 1.0\nlatinWord = 1.0\nother = -0.5\nperRequest = 0.0";
        let e = resolve("dev", Some(bad), &[]).unwrap_err();
        assert!(e.contains("calibration other must be"), "{e}");
    }

    #[test]
    fn times_that_would_overflow_a_deadline_are_refused() {
        for (key, value) in [
            ("sync_budget_ms", "18446744073709551615"),
            ("stream_budget_ms", "18446744073709551615"),
            ("policy_call_timeout_ms", "18446744073709551615"),
            ("drain_ms", "86400001"),
            ("cache_ttl_secs", "18446744073709551615"),
        ] {
            let e = resolve("dev", Some(&format!("{key} = {value}")), &[]);
            // toml integers are i64: the largest u64 is refused by the parser.
            let e = e.unwrap_err();
            assert!(e.contains(key) || e.contains("out of range"), "{key}: {e}");
        }
        let e = resolve(
            "dev",
            None,
            &[(
                "MANGAASSIST_SYNC_BUDGET_MS".into(),
                "9223372036854775807".into(),
            )],
        )
        .unwrap_err();
        assert!(e.contains("sync_budget_ms") && e.contains("one day"), "{e}");
        let e = resolve("dev", Some("policy_workers = 100000000000"), &[]).unwrap_err();
        assert!(
            e.contains("policy_workers") && e.contains("limit of 16"),
            "{e}"
        );
        let e = resolve("dev", Some("policy_call_timeout_ms = 0"), &[]).unwrap_err();
        assert!(
            e.contains("policy_call_timeout_ms must be at least 1"),
            "{e}"
        );
        assert!(resolve("dev", Some("drain_ms = 86400000"), &[]).is_ok());
    }

    #[test]
    fn security_settings_that_cannot_work_are_refused() {
        let dev = resolve("dev", None, &[]).unwrap();
        assert!(!dev.service.auth_required, "dev works out of the box");
        let e = resolve("prod", None, &[]).unwrap_err();
        assert!(e.contains("auth_required") && e.contains("api_keys"), "{e}");
        let open = resolve("prod", Some("auth_required = false"), &[]).unwrap();
        assert!(!open.service.auth_required, "explicitly off is honoured");
        let e = resolve(
            "dev",
            Some(r#"api_keys = [{ id = "a", sha256 = "my-plain-key" }]"#),
            &[],
        )
        .unwrap_err();
        assert!(e.contains("not the key itself"), "{e}");
        let e = resolve("dev", Some(r#"user_token_secrets = ["short"]"#), &[]).unwrap_err();
        assert!(e.contains("at least 32"), "{e}");
        let twice = format!(
            r#"api_keys = [{{ id = "a", sha256 = "{0}" }}, {{ id = "a", sha256 = "{0}" }}]"#,
            "c".repeat(64)
        );
        assert!(
            resolve("dev", Some(&twice), &[])
                .unwrap_err()
                .contains("twice")
        );
        let e = resolve("dev", Some("ws_max_frame_bytes = 200000"), &[]).unwrap_err();
        assert!(e.contains("ws_max_frame_bytes"), "{e}");
        let e = resolve("dev", Some("max_header_bytes = 100"), &[]).unwrap_err();
        assert!(e.contains("8192"), "{e}");
        let e = resolve("dev", Some("trusted_proxies = [\"not an address\"]"), &[]).unwrap_err();
        assert!(e.contains("trusted_proxies"), "{e}");
        let ok = resolve(
            "dev",
            Some("trusted_proxies = [\"10.0.0.7\", \"fd00::/8\"]"),
            &[],
        );
        assert_eq!(ok.unwrap().service.trusted_proxies.len(), 2);
    }

    #[test]
    fn mistakes_are_named() {
        let e = resolve("dev", Some("rate_per_secnd = 5"), &[]).unwrap_err();
        assert!(e.contains("rate_per_secnd"), "{e}");
        let e = resolve("dev", Some("rate_burst = \"many\""), &[]).unwrap_err();
        assert!(
            e.contains("rate_burst") || e.contains("invalid type"),
            "{e}"
        );
        let e = resolve("dev", Some("[env.production]\nrate_burst = 1"), &[]).unwrap_err();
        assert!(e.contains("[env.production]"), "{e}");
        let e = resolve("qa", None, &[]).unwrap_err();
        assert!(e.contains("dev, staging or prod"), "{e}");
        let e = resolve("dev", Some("regions = []"), &[]).unwrap_err();
        assert!(e.contains("at least one region"), "{e}");
        let e = resolve(
            "dev",
            None,
            &[("MANGAASSIST_BEDROCK".into(), "azure".into())],
        )
        .unwrap_err();
        assert!(e.contains("azure") || e.contains("unknown variant"), "{e}");
    }
}
