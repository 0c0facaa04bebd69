//! The Bedrock invoker: one SDK client per region, tried in priority order
//! with cooldowns ([`Health`]), per-model timeouts, an optional fallback
//! model, and streams that survive a region failing mid-answer.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use aws_sdk_bedrockruntime::Client;
use aws_sdk_bedrockruntime::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_bedrockruntime::primitives::Blob;
use aws_sdk_bedrockruntime::types::ResponseStream;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::timeout::TimeoutConfig;
use mangaassist_core::body::{ClaudeBody, Turn};
use mangaassist_core::models::ModelSpec;
use serde_json::Value;
use tokio::time::Instant;

use super::classify::{RegionFailure, classify, local};
use super::health::{Clock, Health};
use super::profile::EnvProfile;

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
        }
    }
}

/// Tokens a call used, as the model reported them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
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
    /// Region that answered (the last one, for a continued stream).
    pub region: String,
    /// Tokens of every attempt that produced output.
    pub usage: Usage,
    /// Cost of that usage at the answering model's prices, USD.
    pub cost_usd: f64,
    /// Regions that failed before the answer.
    pub failures: Vec<RegionFailure>,
}

/// Why no answer came.
#[derive(Debug, thiserror::Error)]
pub enum InvokeError {
    /// Bedrock refused the request itself; no region can fix it.
    #[error("Bedrock refused the request: {0}")]
    Rejected(RegionFailure),
    /// Every region (and fallback model) failed.
    #[error("every region failed: {}", list(.0))]
    Exhausted(Vec<RegionFailure>),
    /// The request's time budget ran out.
    #[error("no answer within {budget:?}: {list}", budget = .0, list = list(.1))]
    Deadline(Duration, Vec<RegionFailure>),
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
            InvokeError::Rejected(_) => "bedrock_rejected",
            InvokeError::Exhausted(_) => "bedrock_unavailable",
            InvokeError::Deadline(..) => "bedrock_deadline",
        }
    }

    /// Every region failure behind this error.
    pub fn failures(&self) -> &[RegionFailure] {
        match self {
            InvokeError::Rejected(f) => std::slice::from_ref(f),
            InvokeError::Exhausted(f) | InvokeError::Deadline(_, f) => f,
        }
    }
}

/// Calls Bedrock with regional failover.
pub struct Invoker {
    clients: Vec<(String, Client)>,
    health: Health,
}

/// One attempt's outcome.
type Attempt = Result<(String, Usage), RegionFailure>;

impl Invoker {
    /// Builds one client per region, sharing one HTTPS connector.
    pub async fn new(config: &InvokerConfig, clock: Arc<dyn Clock>) -> Result<Self, String> {
        if config.regions.is_empty() {
            return Err("no Bedrock regions configured".into());
        }
        let http = aws_smithy_http_client::Builder::new()
            .pool_max_idle_per_host(config.profile.pool_size)
            .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
                aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
            ))
            .build_https();
        let timeouts = TimeoutConfig::builder()
            .connect_timeout(config.profile.connect_timeout)
            .read_timeout(config.profile.read_timeout)
            .build();
        let retry = RetryConfig::adaptive().with_max_attempts(config.profile.max_attempts);
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
        })
    }

    /// Region health, shared by all requests.
    pub fn health(&self) -> &Health {
        &self.health
    }

    /// One answer, from the first region (then the fallback model) that
    /// gives one within `budget`.
    pub async fn invoke(
        &self,
        models: &[&ModelSpec],
        body: &ClaudeBody,
        budget: Duration,
    ) -> Result<Reply, InvokeError> {
        self.run(models, budget, |index, model, left| {
            self.invoke_once(index, model, body, left)
        })
        .await
    }

    /// A streamed answer: `on_text` gets each piece of text once, in order,
    /// even when a region fails mid-stream and the next one continues it.
    pub async fn invoke_stream(
        &self,
        models: &[&ModelSpec],
        body: &ClaudeBody,
        budget: Duration,
        on_text: impl FnMut(&str) + Send,
    ) -> Result<Reply, InvokeError> {
        // Shared by the attempts, one at a time; a Mutex keeps the future Send.
        let sink = Mutex::new((String::new(), on_text));
        let result = self
            .run(models, budget, |index, model, left| {
                let so_far = lock(&sink).0.clone();
                let body = continued(body, &so_far);
                let sink = &sink;
                async move {
                    self.stream_once(index, model, &body, left, so_far, |piece| {
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

    /// The failover loop shared by both operations.
    async fn run<'a, F, Fut>(
        &'a self,
        models: &[&'a ModelSpec],
        budget: Duration,
        mut attempt: F,
    ) -> Result<Reply, InvokeError>
    where
        F: FnMut(usize, &'a ModelSpec, Duration) -> Fut,
        Fut: Future<Output = Attempt>,
    {
        let deadline = Instant::now() + budget;
        let mut failures = Vec::new();
        let mut usage = Usage::default();
        for &model in models {
            for index in self.health.order() {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(InvokeError::Deadline(budget, failures));
                }
                let per_call = left.min(Duration::from_millis(model.timeout_ms));
                let region = self.health.name(index);
                match attempt(index, model, per_call).await {
                    Ok((text, used)) => {
                        self.health.record_success(index);
                        usage.input_tokens += used.input_tokens;
                        usage.output_tokens += used.output_tokens;
                        return Ok(Reply {
                            text,
                            model_id: model.model_id.clone(),
                            region,
                            usage,
                            cost_usd: model.cost(usage.input_tokens, usage.output_tokens),
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
                            return Err(InvokeError::Rejected(failure));
                        }
                        // Cut short by the request's budget, not by the
                        // model's own timeout: the region is slow for this
                        // request, not failing; no cooldown.
                        let cut_by_budget = per_call < Duration::from_millis(model.timeout_ms)
                            && Instant::now() >= deadline;
                        if cut_by_budget {
                            failures.push(failure);
                            return Err(InvokeError::Deadline(budget, failures));
                        }
                        self.health.record_failure(index, &failure.to_string());
                        failures.push(failure);
                    }
                }
            }
        }
        if Instant::now() >= deadline {
            return Err(InvokeError::Deadline(budget, failures));
        }
        Err(InvokeError::Exhausted(failures))
    }

    /// The region's name and client, and the body as JSON bytes.
    fn prepare(
        &self,
        index: usize,
        model: &ModelSpec,
        body: &ClaudeBody,
    ) -> Result<(&str, &Client, Vec<u8>), RegionFailure> {
        let Some((region, client)) = self.clients.get(index) else {
            return Err(local("?", &model.model_id, "no_client", "no client".into()));
        };
        let payload = serde_json::to_vec(body)
            .map_err(|e| local(region, &model.model_id, "body_encoding", e.to_string()))?;
        Ok((region, client, payload))
    }

    async fn invoke_once(
        &self,
        index: usize,
        model: &ModelSpec,
        body: &ClaudeBody,
        limit: Duration,
    ) -> Attempt {
        let (region, client, payload) = self.prepare(index, model, body)?;
        let call = client
            .invoke_model()
            .model_id(&model.model_id)
            .content_type("application/json")
            .accept("application/json")
            .body(Blob::new(payload))
            .send();
        let output = match tokio::time::timeout(limit, call).await {
            Err(_) => return Err(timed_out(region, model, limit)),
            Ok(Err(e)) => return Err(classify(region, &model.model_id, &e)),
            Ok(Ok(output)) => output,
        };
        let answer: Value = serde_json::from_slice(output.body().as_ref()).map_err(|e| {
            local(
                region,
                &model.model_id,
                "malformed_reply",
                format!("reply is not JSON: {e}"),
            )
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
                local(
                    region,
                    &model.model_id,
                    "malformed_reply",
                    "reply has no content".into(),
                )
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
        model: &ModelSpec,
        body: &ClaudeBody,
        limit: Duration,
        so_far: String,
        mut emit: impl FnMut(&str),
    ) -> Attempt {
        let (region, client, payload) = self.prepare(index, model, body)?;
        let deadline = Instant::now() + limit;
        let call = client
            .invoke_model_with_response_stream()
            .model_id(&model.model_id)
            .content_type("application/json")
            .accept("application/json")
            .body(Blob::new(payload))
            .send();
        let mut output = match tokio::time::timeout_at(deadline, call).await {
            Err(_) => return Err(timed_out(region, model, limit)),
            Ok(Err(e)) => return Err(classify(region, &model.model_id, &e)),
            Ok(Ok(output)) => output,
        };
        // Whitespace held back from the prefill (Claude refuses a prefill
        // ending in whitespace); the continuation may repeat it.
        let trimmed = so_far.trim_end().len();
        let mut held_back = so_far.get(trimmed..).unwrap_or("").to_string();
        let mut usage = Usage::default();
        let mut pieces = 0u64;
        loop {
            let event = match tokio::time::timeout_at(deadline, output.body.recv()).await {
                Err(_) => return Err(timed_out(region, model, limit)),
                Ok(Err(e)) => {
                    return Err(with_usage(classify(region, &model.model_id, &e), pieces));
                }
                Ok(Ok(None)) => {
                    return Err(local(
                        region,
                        &model.model_id,
                        "stream_error",
                        "the stream ended before message_stop".into(),
                    ));
                }
                Ok(Ok(Some(event))) => event,
            };
            let ResponseStream::Chunk(part) = event else {
                continue;
            };
            let Some(bytes) = part.bytes() else { continue };
            let event: Value = serde_json::from_slice(bytes.as_ref()).map_err(|e| {
                local(
                    region,
                    &model.model_id,
                    "stream_error",
                    format!("chunk is not JSON: {e}"),
                )
            })?;
            match event.get("type").and_then(Value::as_str) {
                Some("message_start") => {
                    usage.input_tokens = event
                        .pointer("/message/usage/input_tokens")
                        .and_then(Value::as_u64)
                        .unwrap_or(0);
                }
                Some("content_block_delta") => {
                    if let Some(mut text) = event.pointer("/delta/text").and_then(Value::as_str) {
                        if !held_back.is_empty() {
                            let common = common_prefix(&held_back, text);
                            text = &text[common..];
                            held_back.clear();
                        }
                        if !text.is_empty() {
                            pieces += 1;
                            emit(text);
                        }
                    }
                }
                Some("message_delta") => {
                    usage.output_tokens = event
                        .pointer("/usage/output_tokens")
                        .and_then(Value::as_u64)
                        .unwrap_or(pieces);
                }
                Some("message_stop") => return Ok((String::new(), usage)),
                _ => {}
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Only appends happen under it: a poisoned value is still whole.
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Bytes at the start of `b` that repeat `a`'s start, at a char boundary.
fn common_prefix(a: &str, b: &str) -> usize {
    a.char_indices()
        .zip(b.chars())
        .take_while(|((_, x), y)| x == y)
        .map(|((i, x), _)| i + x.len_utf8())
        .last()
        .unwrap_or(0)
}

/// `body` continued after `so_far`: the text becomes an assistant prefill.
fn continued(body: &ClaudeBody, so_far: &str) -> ClaudeBody {
    let prefill = so_far.trim_end();
    if prefill.is_empty() {
        return body.clone();
    }
    let mut body = body.clone();
    body.messages.push(Turn::new("assistant", prefill));
    body
}

fn timed_out(region: &str, model: &ModelSpec, limit: Duration) -> RegionFailure {
    local(
        region,
        &model.model_id,
        "timeout",
        format!("no answer within {} ms", limit.as_millis()),
    )
}

fn with_usage(mut failure: RegionFailure, pieces: u64) -> RegionFailure {
    if pieces > 0 {
        failure.message = format!("{} (after {pieces} streamed pieces)", failure.message);
    }
    failure
}
