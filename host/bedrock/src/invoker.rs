//! The Bedrock invoker: one SDK client per region, tried in priority order
//! with cooldowns ([`Health`]), per-model timeouts, an optional fallback
//! model, and streams that survive a region failing mid-answer.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::{CountTokensInput, InvokeModelTokensRequest, ResponseStream};
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use mangaassist_core::body::ClaudeBody;
use mangaassist_core::continuation::{SeamFilter, continuation_body};
use mangaassist_core::models::ModelSpec;
use serde_json::Value;
use tokio::time::Instant;

use crate::classify::{RegionFailure, classify, local};
use crate::clock::Clock;
use crate::health::Health;
use crate::profile::EnvProfile;

/// Where to reach one region.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionEndpoint {
    /// Region name (`us-east-1`).
    pub region: String,
    /// Endpoint override (the emulator, a VPC endpoint); none: AWS's.
    pub endpoint_url: Option<String>,
}

/// How the invoker signs its requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// aws-config's default chain (environment, profile, SSO-less web
    /// identity, ECS, IMDS).
    DefaultChain,
    /// Fixed keys: the emulator needs a well-formed signature, not a real one.
    Static {
        /// Access key id.
        access_key_id: String,
        /// Secret key.
        secret_access_key: String,
    },
}

/// Invoker settings.
#[derive(Debug, Clone)]
pub struct InvokerConfig {
    /// Regions in priority order.
    pub regions: Vec<RegionEndpoint>,
    /// Client timeouts, retries and pool (SPEC 9).
    pub profile: EnvProfile,
    /// Signing.
    pub credentials: CredentialSource,
    /// Longest silence between two events of a stream once it has started.
    /// A stream is not bounded by the model's whole-call timeout (a long,
    /// healthy answer may take longer); its first event must come within
    /// that timeout, then events must keep coming.
    pub stream_idle: Duration,
    /// SPEC 9's adaptive retry: the SDK's client-side rate limiter, which
    /// slows every later call of the client after throttling. On for chat.
    /// Off for batch work, which backs off through its queue instead, and
    /// has clients of its own so its throttling never slows chat.
    pub adaptive_retry: bool,
}

/// Silence between stream events after which a region is taken as failing.
pub const DEFAULT_STREAM_IDLE: Duration = Duration::from_secs(5);

/// One model to try, with the body built for it (its own `max_tokens` and
/// temperature): a fallback model is asked with its own body, so its answer
/// can be cached under its own key.
#[derive(Debug, Clone, Copy)]
pub struct Candidate<'a> {
    /// The model.
    pub model: &'a ModelSpec,
    /// The body for it.
    pub body: &'a ClaudeBody,
}

impl InvokerConfig {
    /// Every region served by the emulator at `endpoint` (offline mode and
    /// tests): static keys, since the emulator checks a signature's form only.
    pub fn emulated(endpoint: &str, regions: &[&str], profile: EnvProfile) -> Self {
        InvokerConfig {
            regions: regions
                .iter()
                .map(|r| RegionEndpoint {
                    region: (*r).to_string(),
                    endpoint_url: Some(endpoint.to_string()),
                })
                .collect(),
            profile,
            credentials: CredentialSource::Static {
                access_key_id: "AKIDEMULATOR".into(),
                secret_access_key: "emulator-secret".into(),
            },
            stream_idle: DEFAULT_STREAM_IDLE,
            adaptive_retry: true,
        }
    }

    /// The same regions and settings for batch work: clients of its own,
    /// without the adaptive rate limiter (see [`InvokerConfig::adaptive_retry`]).
    pub fn for_batch(&self) -> Self {
        InvokerConfig {
            adaptive_retry: false,
            ..self.clone()
        }
    }
}

/// The one HTTPS client the AWS SDKs are given (rustls with ring; the SDK's
/// default would add aws-lc-sys, a long C build), keeping up to
/// `pool_size` idle connections per host.
pub fn https_client(pool_size: usize) -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .pool_max_idle_per_host(pool_size)
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// Tokens a call used, as the model reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Usage {
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
}

/// A model's answer and how it was obtained.
#[derive(Debug, Clone, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Reply {
    /// The answer text (for a stream: everything streamed, once).
    pub text: String,
    /// Model that answered.
    pub model_id: String,
    /// Which of the candidates answered (index into the slice given).
    #[serde(skip)]
    pub candidate: usize,
    /// Region that answered (the last one, for a continued stream).
    pub region: String,
    /// Tokens of every attempt, the failed ones included (a stream cut
    /// mid-answer was billed for what it produced).
    pub usage: Usage,
    /// Cost of that usage, each attempt at its own model's prices, USD.
    pub cost_usd: f64,
    /// Regions that failed before the answer.
    pub failures: Vec<RegionFailure>,
}

/// What the attempts of a failed request used and cost: a stream cut
/// mid-answer was billed even when no answer came.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Spent {
    /// Tokens of every attempt.
    pub usage: Usage,
    /// Their cost, each attempt at its model's prices, USD.
    pub cost_usd: f64,
}

impl Spent {
    /// Adds what one attempt at `model` used.
    fn add(&mut self, model: &ModelSpec, used: Usage) {
        self.usage.input_tokens += used.input_tokens;
        self.usage.output_tokens += used.output_tokens;
        self.cost_usd += model.cost(used.input_tokens, used.output_tokens);
    }
}

/// Why no answer came.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// Bedrock refused the request itself; no region can fix it.
    #[error("Bedrock refused the request: {0}")]
    Rejected(RegionFailure, Spent),
    /// Every region (and fallback model) failed.
    #[error("every region failed: {}", list(.0))]
    Exhausted(Vec<RegionFailure>, Spent),
    /// The request's time budget ran out.
    #[error("no answer within {budget:?}: {list}", budget = .0, list = list(.1))]
    Deadline(Duration, Vec<RegionFailure>, Spent),
}

fn list(failures: &[RegionFailure]) -> String {
    if failures.is_empty() {
        return "no region was tried".into();
    }
    failures
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

impl InvokeError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            InvokeError::Rejected(..) => "bedrock_rejected",
            InvokeError::Exhausted(..) => "bedrock_unavailable",
            InvokeError::Deadline(..) => "bedrock_deadline",
        }
    }

    /// Every region failure behind this error.
    pub fn failures(&self) -> &[RegionFailure] {
        match self {
            InvokeError::Rejected(f, _) => std::slice::from_ref(f),
            InvokeError::Exhausted(f, _) | InvokeError::Deadline(_, f, _) => f,
        }
    }

    /// What the failed attempts used.
    pub fn spent(&self) -> Spent {
        match self {
            InvokeError::Rejected(_, s)
            | InvokeError::Exhausted(_, s)
            | InvokeError::Deadline(.., s) => *s,
        }
    }
}

/// Calls Bedrock with regional failover.
pub struct Invoker {
    clients: Vec<(String, Client)>,
    health: Health,
    stream_idle: Duration,
}

/// One attempt's outcome; a failure carries what the attempt used.
type Attempt = Result<(String, Usage), (RegionFailure, Usage)>;

/// The time one attempt may take.
#[derive(Debug, Clone, Copy)]
struct Bounds {
    /// The request's own deadline.
    deadline: Instant,
    /// The model's timeout: the whole call, or a stream's first event.
    model: Duration,
}

impl Invoker {
    /// Builds one client per region, sharing one HTTPS connector.
    pub async fn new(config: &InvokerConfig, clock: Arc<dyn Clock>) -> Result<Self, String> {
        if config.regions.is_empty() {
            return Err("no Bedrock regions configured".into());
        }
        let http = https_client(config.profile.pool_size);
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(config.profile.connect_timeout)
            .read_timeout(config.profile.read_timeout)
            .build();
        let retry = if config.adaptive_retry {
            RetryConfig::adaptive()
        } else {
            RetryConfig::standard()
        }
        .with_max_attempts(config.profile.max_attempts);
        let shared = match &config.credentials {
            CredentialSource::DefaultChain => Some(
                aws_config::defaults(BehaviorVersion::latest())
                    .http_client(http.clone())
                    .load()
                    .await,
            ),
            CredentialSource::Static { .. } => None,
        };
        let mut clients = Vec::new();
        for endpoint in &config.regions {
            let mut builder = match &shared {
                Some(sdk) => aws_sdk_bedrockruntime::config::Builder::from(sdk),
                None => aws_sdk_bedrockruntime::config::Builder::new()
                    .behavior_version(BehaviorVersion::latest()),
            };
            if let CredentialSource::Static {
                access_key_id,
                secret_access_key,
            } = &config.credentials
            {
                builder = builder.credentials_provider(Credentials::new(
                    access_key_id,
                    secret_access_key,
                    None,
                    None,
                    "mangaassist-static",
                ));
            }
            builder = builder
                .region(Region::new(endpoint.region.clone()))
                .http_client(http.clone())
                .timeout_config(timeouts.clone())
                .retry_config(retry.clone());
            if let Some(url) = &endpoint.endpoint_url {
                builder = builder.endpoint_url(url);
            }
            clients.push((endpoint.region.clone(), Client::from_conf(builder.build())));
        }
        let names: Vec<String> = clients.iter().map(|(r, _)| r.clone()).collect();
        Ok(Invoker {
            clients,
            health: Health::new(&names, clock),
            stream_idle: config.stream_idle,
        })
    }

    /// Region health, shared by all requests.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// One answer, from the first region (then the next candidate, a
    /// fallback model) that gives one within `budget`.
    pub async fn invoke(
        &self,
        candidates: &[Candidate<'_>],
        budget: Duration,
    ) -> Result<Reply, InvokeError> {
        self.run(candidates, budget, |index, candidate, bounds| {
            self.invoke_once(index, candidate, bounds)
        })
        .await
    }

    /// A streamed answer: `on_text` gets each piece of text once, in order,
    /// even when a region fails mid-stream and the next one continues it.
    pub async fn invoke_stream(
        &self,
        candidates: &[Candidate<'_>],
        budget: Duration,
        on_text: impl FnMut(&str) + Send,
    ) -> Result<Reply, InvokeError> {
        // Shared by the attempts, one at a time; a Mutex keeps the future Send.
        let sink = Mutex::new((String::new(), on_text));
        let result = self
            .run(candidates, budget, |index, candidate, bounds| {
                let so_far = lock(&sink).0.clone();
                let body =
                    continuation_body(candidate.body, &so_far, candidate.model.accepts_prefill());
                let sink = &sink;
                async move {
                    let candidate = Candidate {
                        model: candidate.model,
                        body: &body,
                    };
                    self.stream_once(index, candidate, bounds, so_far, |piece| {
                        let mut sink = lock(sink);
                        sink.0.push_str(piece);
                        (sink.1)(piece);
                    })
                    .await
                }
            })
            .await;
        let text = sink
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .0;
        result.map(|mut reply| {
            reply.text = text;
            reply
        })
    }

    /// The exact input tokens of `body` for `model`, from Bedrock's
    /// CountTokens (asked with the base model id, which it requires), in
    /// the first region in health order that answers, all within `limit`.
    /// Region health is left alone: counting is advisory, and its
    /// failures say little about invoking. A model the catalog does not
    /// mark `countTokens` is refused without a call.
    pub async fn count_tokens(
        &self,
        model: &ModelSpec,
        body: &ClaudeBody,
        limit: Duration,
    ) -> Result<u64, RegionFailure> {
        let id = model.count_tokens_model_id();
        if !model.counts_tokens() {
            return Err(local(
                "-",
                id,
                "count_tokens_unsupported",
                "the catalog does not mark this model countTokens".into(),
            ));
        }
        let mut last = local("-", id, "no_client", "no region to ask".into());
        let deadline = Instant::now() + limit;
        for index in self.health.order() {
            if Instant::now() >= deadline {
                break;
            }
            let candidate = Candidate { model, body };
            let (region, client, payload) = match self.prepare(index, candidate) {
                Ok(prepared) => prepared,
                Err((failure, _)) => return Err(failure),
            };
            let request = InvokeModelTokensRequest::builder()
                .body(Blob::new(payload))
                .build()
                .map_err(|e| local(region, id, "body_encoding", e.to_string()))?;
            let call = client
                .count_tokens()
                .model_id(id)
                .input(CountTokensInput::InvokeModel(request))
                .send();
            match tokio::time::timeout_at(deadline, call).await {
                Ok(Ok(output)) => {
                    return u64::try_from(output.input_tokens()).map_err(|_| {
                        local(
                            region,
                            id,
                            "malformed_reply",
                            format!("negative token count {}", output.input_tokens()),
                        )
                    });
                }
                Ok(Err(e)) => {
                    let failure = classify(region, id, &e);
                    if !failure.fail_over {
                        return Err(failure);
                    }
                    last = failure;
                }
                Err(_) => {
                    last = local(
                        region,
                        id,
                        "timeout",
                        format!("no count within {} ms", limit.as_millis()),
                    );
                }
            }
        }
        Err(last)
    }

    /// The failover loop shared by both operations.
    async fn run<'a, F, Fut>(
        &'a self,
        candidates: &[Candidate<'a>],
        budget: Duration,
        mut attempt: F,
    ) -> Result<Reply, InvokeError>
    where
        F: FnMut(usize, Candidate<'a>, Bounds) -> Fut,
        Fut: Future<Output = Attempt>,
    {
        let deadline = Instant::now() + budget;
        let mut failures = Vec::new();
        let mut spent = Spent::default();
        for (position, &candidate) in candidates.iter().enumerate() {
            let model = candidate.model;
            for index in self.health.order() {
                if Instant::now() >= deadline {
                    return Err(InvokeError::Deadline(budget, failures, spent));
                }
                let bounds = Bounds {
                    deadline,
                    model: Duration::from_millis(model.timeout_ms),
                };
                let region = self.health.name(index);
                let (outcome, used) = match attempt(index, candidate, bounds).await {
                    Ok((text, used)) => (Ok(text), used),
                    Err((failure, used)) => (Err(failure), used),
                };
                spent.add(model, used);
                match outcome {
                    Ok(text) => {
                        self.health.record_success(index);
                        return Ok(Reply {
                            text,
                            model_id: model.model_id.clone(),
                            candidate: position,
                            region,
                            usage: spent.usage,
                            cost_usd: spent.cost_usd,
                            failures,
                        });
                    }
                    Err(failure) => {
                        tracing::warn!(
                            region = %failure.region,
                            model = %failure.model_id,
                            code = %failure.code,
                            error = %failure.message,
                            fail_over = failure.fail_over,
                            "Bedrock attempt failed"
                        );
                        if !failure.fail_over {
                            return Err(InvokeError::Rejected(failure, spent));
                        }
                        // Cut short by the request's budget, not by the
                        // region: slow for this request, not failing; no
                        // cooldown.
                        if Instant::now() >= deadline {
                            failures.push(failure);
                            return Err(InvokeError::Deadline(budget, failures, spent));
                        }
                        self.health.record_failure(index, &failure.to_string());
                        failures.push(failure);
                    }
                }
            }
        }
        Err(InvokeError::Exhausted(failures, spent))
    }

    /// The region's name and client, and the body as JSON bytes.
    fn prepare(
        &self,
        index: usize,
        candidate: Candidate<'_>,
    ) -> Result<(&str, &Client, Vec<u8>), (RegionFailure, Usage)> {
        let model = candidate.model;
        let Some((region, client)) = self.clients.get(index) else {
            let failure = local("?", &model.model_id, "no_client", "no client".into());
            return Err((failure, Usage::default()));
        };
        let payload = serde_json::to_vec(candidate.body).map_err(|e| {
            let failure = local(region, &model.model_id, "body_encoding", e.to_string());
            (failure, Usage::default())
        })?;
        Ok((region, client, payload))
    }

    async fn invoke_once(&self, index: usize, candidate: Candidate<'_>, bounds: Bounds) -> Attempt {
        let model = candidate.model;
        let (region, client, payload) = self.prepare(index, candidate)?;
        let none = |failure| (failure, Usage::default());
        let limit = bounds
            .model
            .min(bounds.deadline.saturating_duration_since(Instant::now()));
        let call = client
            .invoke_model()
            .model_id(&model.model_id)
            .content_type("application/json")
            .accept("application/json")
            .body(Blob::new(payload))
            .send();
        let output = match tokio::time::timeout(limit, call).await {
            Err(_) => return Err(none(timed_out(region, model, limit))),
            Ok(Err(e)) => return Err(none(classify(region, &model.model_id, &e))),
            Ok(Ok(output)) => output,
        };
        let answer: Value = serde_json::from_slice(output.body().as_ref()).map_err(|e| {
            none(local(
                region,
                &model.model_id,
                "malformed_reply",
                format!("reply is not JSON: {e}"),
            ))
        })?;
        let text = answer
            .get("content")
            .and_then(Value::as_array)
            .map(|blocks| {
                blocks
                    .iter()
                    .filter_map(|b| b.get("text").and_then(Value::as_str))
                    .collect::<String>()
            })
            .ok_or_else(|| {
                none(local(
                    region,
                    &model.model_id,
                    "malformed_reply",
                    "reply has no content".into(),
                ))
            })?;
        let count = |key: &str| {
            answer
                .pointer(&format!("/usage/{key}"))
                .and_then(Value::as_u64)
                .unwrap_or(0)
        };
        Ok((
            text,
            Usage {
                input_tokens: count("input_tokens"),
                output_tokens: count("output_tokens"),
            },
        ))
    }

    async fn stream_once(
        &self,
        index: usize,
        candidate: Candidate<'_>,
        bounds: Bounds,
        so_far: String,
        mut emit: impl FnMut(&str),
    ) -> Attempt {
        let model = candidate.model;
        let (region, client, payload) = self.prepare(index, candidate)?;
        // The first event within the model's timeout; then each next one
        // within the idle bound; never past the request's deadline.
        let first = (Instant::now() + bounds.model).min(bounds.deadline);
        let call = client
            .invoke_model_with_response_stream()
            .model_id(&model.model_id)
            .content_type("application/json")
            .accept("application/json")
            .body(Blob::new(payload))
            .send();
        let none = |failure| (failure, Usage::default());
        let mut output = match tokio::time::timeout_at(first, call).await {
            Err(_) => return Err(none(timed_out(region, model, bounds.model))),
            Ok(Err(e)) => return Err(none(classify(region, &model.model_id, &e))),
            Ok(Ok(output)) => output,
        };
        // A continuation may repeat the end of what was sent (whitespace
        // held back from a prefill, or words a model asked to continue
        // repeats): the core's seam rule drops it.
        let mut seam = SeamFilter::new(&so_far, model.accepts_prefill());
        let mut usage = Usage::default();
        let mut pieces = 0u64;
        let mut started = false;
        let mut next_by = first;
        loop {
            let event = tokio::time::timeout_at(next_by, output.body.recv()).await;
            // What a failed attempt used: its input, and (Bedrock reports
            // output only at the end) one token per streamed piece.
            let used = Usage {
                input_tokens: usage.input_tokens,
                output_tokens: pieces,
            };
            let event = match event {
                Err(_) if !started => {
                    return Err((timed_out(region, model, bounds.model), used));
                }
                Err(_) => return Err((idle(region, model, self.stream_idle, pieces), used)),
                Ok(Err(e)) => {
                    return Err((
                        with_usage(classify(region, &model.model_id, &e), pieces),
                        used,
                    ));
                }
                Ok(Ok(None)) => {
                    let failure = local(
                        region,
                        &model.model_id,
                        "stream_error",
                        "the stream ended before message_stop".into(),
                    );
                    return Err((failure, used));
                }
                Ok(Ok(Some(event))) => event,
            };
            started = true;
            next_by = (Instant::now() + self.stream_idle).min(bounds.deadline);
            let ResponseStream::Chunk(part) = event else {
                continue;
            };
            let Some(bytes) = part.bytes() else { continue };
            let event: Value = serde_json::from_slice(bytes.as_ref()).map_err(|e| {
                let failure = local(
                    region,
                    &model.model_id,
                    "stream_error",
                    format!("chunk is not JSON: {e}"),
                );
                (failure, used)
            })?;
            match event.get("type").and_then(Value::as_str) {
                Some("message_start") => {
                    usage.input_tokens = event
                        .pointer("/message/usage/input_tokens")
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                }
                Some("content_block_delta") => {
                    if let Some(text) = event.pointer("/delta/text").and_then(Value::as_str) {
                        if !text.is_empty() {
                            pieces += 1;
                        }
                        let text = seam.push(text);
                        if !text.is_empty() {
                            emit(&text);
                        }
                    }
                }
                Some("message_delta") => {
                    usage.output_tokens = event
                        .pointer("/usage/output_tokens")
                        .and_then(Value::as_u64)
                        .unwrap_or(pieces);
                }
                Some("message_stop") => {
                    let rest = seam.finish();
                    if !rest.is_empty() {
                        emit(&rest);
                    }
                    return Ok((String::new(), usage));
                }
                _ => {}
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Only appends happen under it: a poisoned value is still whole.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn timed_out(region: &str, model: &ModelSpec, limit: Duration) -> RegionFailure {
    local(
        region,
        &model.model_id,
        "timeout",
        format!("no answer within {} ms", limit.as_millis()),
    )
}

fn idle(region: &str, model: &ModelSpec, idle: Duration, pieces: u64) -> RegionFailure {
    local(
        region,
        &model.model_id,
        "stream_idle",
        format!(
            "no stream event for {} ms after {pieces} streamed pieces",
            idle.as_millis()
        ),
    )
}

fn with_usage(mut failure: RegionFailure, pieces: u64) -> RegionFailure {
    if pieces > 0 {
        failure.message = format!("{} (after {pieces} streamed pieces)", failure.message);
    }
    failure
}
