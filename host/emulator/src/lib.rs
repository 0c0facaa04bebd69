//! A local Bedrock runtime, for tests and for running offline. Start one
//! with [`start`]; the [`EmulatorHandle`] sets faults and latency and stops it.
//!
//! Speaks the REST protocol the SDK uses for `InvokeModel` (JSON) and
//! `InvokeModelWithResponseStream` (AWS event-stream frames whose `chunk`
//! events carry base64 `bytes` of Claude stream events), checks SigV4
//! headers, answers deterministically ([`reply`]) with plausible usage, and
//! injects faults per emulated region ([`faults`]). The region of a request
//! is the one its signature is scoped to.

pub mod faults;
pub mod reply;
mod sigv4;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_smithy_types::event_stream::{Header, HeaderValue as FrameValue, Message};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::serve::ListenerExt;
use base64::Engine as _;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::oneshot;

use self::faults::{Fault, FaultPlan};
use self::reply::Conversation;

/// Latency of the emulated model.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Latency {
    /// Before the first token, milliseconds.
    pub ttft_ms: u64,
    /// Between tokens, milliseconds.
    pub per_token_ms: u64,
}

/// Start-up settings.
#[derive(Debug, Clone, Default)]
pub struct EmulatorConfig {
    /// Model latency.
    pub latency: Latency,
    /// Faults per region.
    pub faults: BTreeMap<String, FaultPlan>,
    /// Loopback port of the control API (`/_emulator/...`); 0: any free one.
    pub control_port: u16,
}

#[derive(Debug, Default, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct RegionCounters {
    requests: u64,
    faults_injected: u64,
    answered: u64,
}

#[derive(Debug, Default)]
struct Shared {
    latency: Latency,
    faults: BTreeMap<String, FaultPlan>,
    counters: BTreeMap<String, RegionCounters>,
}

type AppState = Arc<Mutex<Shared>>;

fn lock(state: &AppState) -> std::sync::MutexGuard<'_, Shared> {
    // Plain counters and maps: still coherent after a panic elsewhere.
    state
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A running emulator.
pub struct EmulatorHandle {
    addr: SocketAddr,
    control_addr: SocketAddr,
    control_token: String,
    state: AppState,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl EmulatorHandle {
    /// The control API's URL (loopback only, `http://127.0.0.1:PORT`).
    pub fn control_endpoint(&self) -> String {
        format!("http://{}", self.control_addr)
    }

    /// The bearer token the control API requires (new at every start).
    pub fn control_token(&self) -> &str {
        &self.control_token
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The endpoint URL to give the SDK (`http://127.0.0.1:PORT`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sets (replaces) the fault of `region`.
    pub fn set_fault(&self, region: &str, plan: FaultPlan) {
        lock(&self.state).faults.insert(region.to_string(), plan);
    }

    /// Clears the fault of `region`.
    pub fn clear_fault(&self, region: &str) {
        lock(&self.state).faults.remove(region);
    }

    /// Sets the model latency.
    pub fn set_latency(&self, latency: Latency) {
        lock(&self.state).latency = latency;
    }

    /// Requests `region` has received.
    pub fn requests(&self, region: &str) -> u64 {
        lock(&self.state)
            .counters
            .get(region)
            .map_or(0, |c| c.requests)
    }

    /// Stops listening and waits for the server task.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

/// A fresh random token: 128 bits from the operating system, as hex.
fn new_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(std::io::Error::other)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The control API answers only with the token it printed at start.
async fn require_token(
    State(token): State<Arc<str>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let sent = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if sent.is_some_and(|t| t.as_bytes() == token.as_bytes()) {
        return next.run(request).await;
    }
    (
        StatusCode::UNAUTHORIZED,
        axum::Json(json!({ "message": "the control API needs the token the emulator printed at start (Authorization: Bearer <token>)" })),
    )
        .into_response()
}

/// Binds `listen` for the model API and a loopback port for the control
/// API (its own, so exposing the model port never exposes fault
/// injection), and serves until the handle is shut down (or dropped).
pub async fn start(listen: SocketAddr, config: EmulatorConfig) -> std::io::Result<EmulatorHandle> {
    let state: AppState = Arc::new(Mutex::new(Shared {
        latency: config.latency,
        faults: config.faults,
        counters: BTreeMap::new(),
    }));
    let control_token = new_token()?;
    let token: Arc<str> = control_token.as_str().into();
    let control = Router::new()
        .route("/_emulator/state", get(show_state))
        .route(
            "/_emulator/faults/{region}",
            put(put_fault).delete(delete_fault),
        )
        .route("/_emulator/latency", put(put_latency))
        .with_state(Arc::clone(&state))
        .layer(axum::middleware::from_fn_with_state(token, require_token));
    let app = Router::new()
        .route("/model/{model_id}/invoke", post(invoke))
        .route(
            "/model/{model_id}/invoke-with-response-stream",
            post(invoke_stream),
        )
        .route("/model/{model_id}/count-tokens", post(count_tokens))
        .with_state(Arc::clone(&state));
    let listener = tokio::net::TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let control_listener =
        tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], config.control_port)))
            .await?;
    let control_addr = control_listener.local_addr()?;
    // Stream frames are small writes: without TCP_NODELAY, Nagle holds them
    // back against the client's delayed ACK (40 ms a stream, measured).
    let listener = listener.tap_io(|tcp| {
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::warn!(error = %e, "emulator: cannot set TCP_NODELAY");
        }
    });
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let (stopping, _) = tokio::sync::watch::channel(false);
        let until = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|s| *s).await;
        };
        let serve = axum::serve(listener, app).with_graceful_shutdown(until(stopping.subscribe()));
        let control = axum::serve(control_listener, control)
            .with_graceful_shutdown(until(stopping.subscribe()));
        let stop = async move {
            let _ = stopped.await;
            let _ = stopping.send(true);
        };
        let (served, controlled, ()) = tokio::join!(serve, control, stop);
        if let Err(e) = served.and(controlled) {
            tracing::error!(error = %e, "emulator stopped");
        }
    });
    Ok(EmulatorHandle {
        addr,
        control_addr,
        control_token,
        state,
        stop: Some(stop),
        task,
    })
}

impl Drop for EmulatorHandle {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A Bedrock-style error: status, `x-amzn-ErrorType`, `{"message"}`.
fn aws_error(status: StatusCode, kind: &str, message: &str) -> Response {
    let mut response = (status, axum::Json(json!({ "message": message }))).into_response();
    if let Ok(v) = HeaderValue::from_str(kind) {
        response.headers_mut().insert("x-amzn-errortype", v);
    }
    response
}

/// What to do with one request, decided under the lock.
enum Plan {
    Answer(Conversation, Latency),
    /// The conversation, when the body was valid (a cut stream needs it).
    Fail(Fault, Latency, Option<Conversation>),
    Refuse(Response),
}

/// Bedrock's words when a model that refuses prefill gets one.
pub const PREFILL_REFUSED: &str = "This model does not support assistant message prefill. \
The conversation must end with a user message.";

/// Bedrock's words when CountTokens is asked for a model it cannot count.
pub const COUNT_TOKENS_REFUSED: &str = "The provided model doesn't support counting tokens.";

/// Whether the emulated `model_id` refuses an assistant prefill, as the
/// current models that refuse one do (by their ids in the core's catalog).
pub fn refuses_prefill(model_id: &str) -> bool {
    mangaassist_core::models::current_model(model_id).is_some_and(|m| !m.prefill)
}

/// Whether CountTokens counts for `model_id`: a base id (never a profile
/// id) of a current model that supports it.
pub fn counts_tokens(model_id: &str) -> bool {
    mangaassist_core::models::base_model_id(model_id) == model_id
        && mangaassist_core::models::current_model(model_id).is_some_and(|m| m.count_tokens)
}

fn plan(state: &AppState, model_id: &str, headers: &HeaderMap, body: &Bytes) -> Plan {
    let region = match sigv4::signed_region(headers) {
        Ok(region) => region,
        Err(why) => {
            return Plan::Refuse(aws_error(
                StatusCode::FORBIDDEN,
                "IncompleteSignatureException",
                &why,
            ));
        }
    };
    // Parsed before the lock; a fault applies whether or not it is valid.
    let parsed = serde_json::from_slice::<Value>(body)
        .map_err(|e| format!("body is not JSON: {e}"))
        .and_then(|v| reply::conversation(&v))
        .and_then(|c| {
            if c.ends_with_assistant && refuses_prefill(model_id) {
                Err(PREFILL_REFUSED.to_string())
            } else {
                Ok(c)
            }
        });
    let mut shared = lock(state);
    let latency = shared.latency;
    let counters = shared.counters.entry(region.clone()).or_default();
    counters.requests += 1;
    let n = counters.requests;
    let fault = match shared.faults.get_mut(&region) {
        Some(plan) if (n - 1).is_multiple_of(u64::from(plan.every.max(1))) => {
            let fault = plan.fault;
            if let Some(times) = plan.times.as_mut() {
                *times = times.saturating_sub(1);
                if *times == 0 {
                    shared.faults.remove(&region);
                }
            }
            Some(fault)
        }
        _ => None,
    };
    let counters = shared.counters.entry(region).or_default();
    if let Some(fault) = fault {
        counters.faults_injected += 1;
        return Plan::Fail(fault, latency, parsed.ok());
    }
    match parsed {
        Ok(conversation) => {
            counters.answered += 1;
            Plan::Answer(conversation, latency)
        }
        Err(why) => Plan::Refuse(aws_error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            &why,
        )),
    }
}

/// The HTTP answer of a fault that happens before any output.
async fn fault_response(fault: Fault) -> Response {
    match fault {
        Fault::Throttle => aws_error(
            StatusCode::TOO_MANY_REQUESTS,
            "ThrottlingException",
            "Too many requests, please wait before trying again. (emulated)",
        ),
        Fault::Error500 => aws_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerException",
            "The server encountered an internal error. (emulated)",
        ),
        Fault::Error503 => aws_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableException",
            "The service is unavailable. (emulated)",
        ),
        Fault::ModelTimeout => aws_error(
            StatusCode::REQUEST_TIMEOUT,
            "ModelTimeoutException",
            "Model has timed out in processing the request. (emulated)",
        ),
        Fault::Validation => aws_error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "Malformed input request. (emulated)",
        ),
        Fault::Stall | Fault::Pause(_) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            aws_error(
                StatusCode::GATEWAY_TIMEOUT,
                "ModelTimeoutException",
                "stalled",
            )
        }
        // Headers, then a body that breaks: the connection is cut.
        Fault::Drop | Fault::Cut(_) => {
            let broken = futures_util::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::other("emulated connection drop"))
            });
            (
                [(header::CONTENT_TYPE, "application/json")],
                Body::from_stream(broken),
            )
                .into_response()
        }
    }
}

fn message_id(model_id: &str, c: &Conversation) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("{model_id}\n{}\n{}", c.user, c.prefill));
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("msg_emulated_{hex}")
}

async fn invoke(
    State(state): State<AppState>,
    Path(model_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (c, latency) = match plan(&state, &model_id, &headers, &body) {
        Plan::Answer(c, latency) => (c, latency),
        Plan::Fail(fault, ..) => return fault_response(fault).await,
        Plan::Refuse(response) => return response,
    };
    let text = reply::answer(&c);
    let output_tokens = reply::tokens(&text).len() as u64;
    let wait = latency
        .ttft_ms
        .saturating_add(latency.per_token_ms.saturating_mul(output_tokens));
    // Even a zero sleep waits for tokio's next 1 ms timer tick.
    if wait > 0 {
        tokio::time::sleep(Duration::from_millis(wait)).await;
    }
    let answer = json!({
        "id": message_id(&model_id, &c),
        "type": "message",
        "role": "assistant",
        "model": model_id,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": null,
        "usage": {"input_tokens": c.input_tokens, "output_tokens": output_tokens},
    });
    let mut response = axum::Json(answer).into_response();
    for (name, value) in [
        ("x-amzn-bedrock-input-token-count", c.input_tokens),
        ("x-amzn-bedrock-output-token-count", output_tokens),
    ] {
        response
            .headers_mut()
            .insert(name, HeaderValue::from(value));
    }
    response
}

/// CountTokens: `{"input":{"invokeModel":{"body":"<base64>"}}}` answered
/// `{"inputTokens":N}`, the same count an invoke of that body reports.
async fn count_tokens(
    State(state): State<AppState>,
    Path(model_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let refuse = |why: &str| aws_error(StatusCode::BAD_REQUEST, "ValidationException", why);
    if !counts_tokens(&model_id) {
        return refuse(COUNT_TOKENS_REFUSED);
    }
    let inner = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| {
            v.pointer("/input/invokeModel/body")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok());
    let Some(inner) = inner else {
        return refuse("input.invokeModel.body must be a base64 Claude Messages body");
    };
    match plan(&state, &model_id, &headers, &Bytes::from(inner)) {
        Plan::Answer(c, _) => axum::Json(json!({ "inputTokens": c.input_tokens })).into_response(),
        Plan::Fail(fault, ..) => fault_response(fault).await,
        Plan::Refuse(response) => response,
    }
}

/// One event-stream frame: a `chunk` event carrying `event` as base64 bytes.
fn chunk_frame(event: &Value) -> Result<Bytes, std::io::Error> {
    let bytes = base64::engine::general_purpose::STANDARD.encode(event.to_string());
    let payload = json!({ "bytes": bytes }).to_string();
    let message = Message::new(payload.into_bytes())
        .add_header(Header::new(
            ":event-type",
            FrameValue::String("chunk".into()),
        ))
        .add_header(Header::new(
            ":content-type",
            FrameValue::String("application/json".into()),
        ))
        .add_header(Header::new(
            ":message-type",
            FrameValue::String("event".into()),
        ));
    let mut out = Vec::new();
    aws_smithy_eventstream::frame::write_message_to(&message, &mut out)
        .map_err(std::io::Error::other)?;
    Ok(Bytes::from(out))
}

/// The Claude stream events of one answer, in order.
fn stream_events(model_id: &str, c: &Conversation, tokens: &[String]) -> Vec<Value> {
    let output_tokens = tokens.len() as u64;
    let mut events = vec![
        json!({"type": "message_start", "message": {
            "id": message_id(model_id, c), "type": "message", "role": "assistant",
            "model": model_id, "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": c.input_tokens, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0,
               "content_block": {"type": "text", "text": ""}}),
    ];
    events.extend(tokens.iter().map(|t| {
        json!({"type": "content_block_delta", "index": 0,
               "delta": {"type": "text_delta", "text": t}})
    }));
    events.push(json!({"type": "content_block_stop", "index": 0}));
    events.push(json!({"type": "message_delta",
        "delta": {"stop_reason": "end_turn", "stop_sequence": null},
        "usage": {"output_tokens": output_tokens}}));
    events.push(
        json!({"type": "message_stop", "amazon-bedrock-invocationMetrics": {
        "inputTokenCount": c.input_tokens, "outputTokenCount": output_tokens,
        "invocationLatency": 0, "firstByteLatency": 0}}),
    );
    events
}

async fn invoke_stream(
    State(state): State<AppState>,
    Path(model_id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let (c, latency, cut) = match plan(&state, &model_id, &headers, &body) {
        Plan::Answer(c, latency) => (c, latency, None),
        Plan::Fail(Fault::Cut(n), latency, Some(c)) => (c, latency, Some((n as usize, false))),
        Plan::Fail(Fault::Pause(n), latency, Some(c)) => (c, latency, Some((n as usize, true))),
        Plan::Fail(Fault::Cut(_), _, None) => return fault_response(Fault::Drop).await,
        Plan::Fail(fault, ..) => return fault_response(fault).await,
        Plan::Refuse(response) => return response,
    };
    let tokens = reply::tokens(&reply::answer(&c));
    let events = stream_events(&model_id, &c, &tokens);
    // message_start and content_block_start come before the first token.
    let keep = cut.map_or(events.len(), |(n, _)| (2 + n).min(events.len()));
    let frames = futures_util::stream::iter(events.into_iter().take(keep).enumerate()).then(
        move |(i, event)| async move {
            let wait = match i {
                0 => latency.ttft_ms,
                i if i >= 2 => latency.per_token_ms,
                _ => 0,
            };
            if wait > 0 {
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            chunk_frame(&event)
        },
    );
    // The cut comes a moment after the last frame, so what was sent
    // arrives; a pause keeps the connection open and silent.
    let tail = futures_util::stream::iter(cut).then(|(_, pause)| async move {
        let silence = if pause { 3_600_000 } else { 50 };
        tokio::time::sleep(Duration::from_millis(silence)).await;
        Err::<Bytes, std::io::Error>(std::io::Error::other("emulated mid-stream cut"))
    });
    (
        [(header::CONTENT_TYPE, "application/vnd.amazon.eventstream")],
        Body::from_stream(frames.chain(tail)),
    )
        .into_response()
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StateView {
    latency: Latency,
    faults: BTreeMap<String, FaultPlan>,
    regions: BTreeMap<String, RegionCounters>,
}

async fn show_state(State(state): State<AppState>) -> Response {
    let shared = lock(&state);
    axum::Json(StateView {
        latency: shared.latency,
        faults: shared.faults.clone(),
        regions: shared.counters.clone(),
    })
    .into_response()
}

async fn put_fault(
    State(state): State<AppState>,
    Path(region): Path<String>,
    body: Bytes,
) -> Response {
    match serde_json::from_slice::<FaultPlan>(&body) {
        Ok(plan) => {
            tracing::info!(%region, fault = %plan.fault, every = plan.every, "emulator: fault set");
            lock(&state).faults.insert(region, plan);
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => aws_error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            &e.to_string(),
        ),
    }
}

async fn delete_fault(State(state): State<AppState>, Path(region): Path<String>) -> Response {
    lock(&state).faults.remove(&region);
    StatusCode::NO_CONTENT.into_response()
}

async fn put_latency(State(state): State<AppState>, body: Bytes) -> Response {
    match serde_json::from_slice::<Latency>(&body) {
        Ok(latency) => {
            lock(&state).latency = latency;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => aws_error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            &e.to_string(),
        ),
    }
}
