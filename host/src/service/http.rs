//! The HTTP face of the service: routes, reading a body within its limits,
//! the sync time budget, and turning answers into responses.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde::Serialize;
use tower_http::compression::Compression;
use tower_http::services::ServeDir;

use crate::service::app::Service;
use crate::service::chat::{self, Answer, BodyError, ContentType, Incoming};
use crate::service::errors::ApiError;
use crate::service::ws;

/// All routes over the shared service.
pub fn router(svc: Arc<Service>) -> Router {
    let routes = Router::new()
        .route("/v1/chat", post(chat_http))
        .route("/v1/ws", get(ws::upgrade))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .method_not_allowed_fallback(method_not_allowed);
    let routes = match &svc.config.web_root {
        // The page and its .wasm go out gzip-compressed (the widget's first
        // load budget is counted on the wire); the API routes are not wrapped.
        Some(root) => routes.fallback_service(Compression::new(
            ServeDir::new(root)
                .fallback(axum::routing::any(not_found).with_state(Arc::clone(&svc))),
        )),
        None => routes.fallback(not_found),
    };
    routes.with_state(svc)
}

/// Who a request counts against: its API key when it is one of
/// `known_keys`, else its address (an unknown key is not an identity:
/// anyone can make one up per request).
pub fn client_id(headers: &HeaderMap, peer: SocketAddr, known_keys: &[String]) -> String {
    match headers
        .get("x-api-key")
        .and_then(|key| known_keys.iter().find(|k| k.as_bytes() == key.as_bytes()))
    {
        Some(key) => format!("key:{key}"),
        None => format!("addr:{}", peer.ip()),
    }
}

/// POST /v1/chat: one request, one JSON answer, within the sync budget.
async fn chat_http(
    State(svc): State<Arc<Service>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let budget = Duration::from_millis(svc.config.sync_budget_ms);
    let body = read_body(&parts.headers, body, svc.config.max_body_bytes, budget).await;
    let started = Instant::now();
    let incoming = Incoming {
        client: client_id(&parts.headers, peer, &svc.config.api_keys),
        content_type: Some(match parts.headers.get(header::CONTENT_TYPE) {
            Some(v) => ContentType::Value(v.as_bytes().to_vec()),
            None => ContentType::Missing,
        }),
        body,
    };
    let deadline = started + budget;
    let result = tokio::time::timeout(budget, chat::handle(&svc, incoming, deadline, None))
        .await
        .unwrap_or_else(|_| {
            Err(ApiError::new(
                StatusCode::GATEWAY_TIMEOUT,
                "budget_exceeded",
                format!("no answer within the {} ms budget", budget.as_millis()),
            ))
        });
    respond(&svc, "chat", started, result)
}

/// The body, refused early when it says or proves it is too large, and
/// bounded in time so a slow sender cannot hold a request open.
async fn read_body(
    headers: &HeaderMap,
    body: Body,
    max: usize,
    budget: Duration,
) -> Result<Bytes, BodyError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max as u64) {
        return Err(BodyError::TooLarge);
    }
    let read = async {
        let mut stream = body.into_data_stream();
        let mut buf = BytesMut::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| BodyError::Incomplete)?;
            if buf.len() + chunk.len() > max {
                return Err(BodyError::TooLarge);
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf.freeze())
    };
    tokio::time::timeout(budget, read)
        .await
        .unwrap_or(Err(BodyError::Timeout))
}

/// An answer or an error as a response, counted and (for server faults) logged.
pub fn respond(
    svc: &Service,
    route: &'static str,
    started: Instant,
    result: Result<Answer, ApiError>,
) -> Response {
    match result {
        Ok(answer) => {
            svc.metrics
                .request(route, StatusCode::OK.as_u16(), started.elapsed());
            axum::Json(answer).into_response()
        }
        Err(e) => {
            record_error(svc, route, started, &e);
            e.into_response()
        }
    }
}

/// Counts a refusal; logs it when the fault is ours or Bedrock's.
pub fn record_error(svc: &Service, route: &'static str, started: Instant, e: &ApiError) {
    svc.metrics.rejection(&e.code);
    svc.metrics
        .request(route, e.status.as_u16(), started.elapsed());
    if e.status.is_server_error() {
        tracing::warn!(status = e.status.as_u16(), code = %e.code, message = %e.message, "request failed");
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Health {
    status: &'static str,
    policy: PolicyHealth,
    bedrock: &'static str,
    regions: Vec<RegionHealth>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PolicyHealth {
    version: String,
    sha256: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RegionHealth {
    region: String,
    consecutive_failures: u32,
    cooling_for_secs: u64,
    last_error: Option<String>,
}

/// GET /healthz: the service answers; which policy and regions it has.
async fn healthz(State(svc): State<Arc<Service>>) -> Response {
    let policy = svc.policy.current();
    axum::Json(Health {
        status: "ok",
        policy: PolicyHealth {
            version: policy.version.clone(),
            sha256: policy.sha256.clone(),
        },
        bedrock: svc.bedrock,
        regions: svc
            .invoker
            .health()
            .snapshot()
            .into_iter()
            .map(|r| RegionHealth {
                region: r.region,
                consecutive_failures: r.consecutive_failures,
                cooling_for_secs: r.cooling_for.map_or(0, |d| d.as_secs()),
                last_error: r.last_error,
            })
            .collect(),
    })
    .into_response()
}

/// GET /metrics: Prometheus text format.
async fn metrics(State(svc): State<Arc<Service>>) -> Response {
    match svc.metrics.render(&svc.invoker.health().snapshot()) {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "metrics_failed",
            "the metrics could not be encoded",
        )
        .into_response(),
    }
}

async fn not_found(State(svc): State<Arc<Service>>) -> Response {
    let e = ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route");
    record_error(&svc, "other", Instant::now(), &e);
    e.into_response()
}

async fn method_not_allowed(State(svc): State<Arc<Service>>) -> Response {
    let e = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method (POST /v1/chat, GET /v1/ws, /healthz, /metrics)",
    );
    record_error(&svc, "other", Instant::now(), &e);
    e.into_response()
}
