//! The HTTP handlers: POST /v1/chat (reading a body within its limits and
//! the sync time budget), /healthz, /metrics and the fallbacks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use serde::Serialize;
use sha2::Digest as _;

use crate::app::Service;
use crate::chat::{self, BodyError, ContentType, Incoming};
use crate::errors::ApiError;
use crate::outcome::{record_error, respond};

/// POST /v1/chat: one request, one JSON answer, within the sync budget,
/// which starts when the headers are in: reading the body spends it too.
pub(crate) async fn chat_http(
    State(svc): State<Arc<Service>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    // Who is asking comes first: a stranger's body is not even read.
    let identity = match svc.identify(&parts.headers, peer, None).await {
        Ok(identity) => identity,
        Err(e) => return respond(&svc, "chat", started, Err(e)),
    };
    let budget = Duration::from_millis(svc.config.sync_budget_ms);
    let deadline = started + budget;
    let body = read_body(&parts.headers, body, svc.config.max_body_bytes, deadline).await;
    let incoming = Incoming {
        identity,
        content_type: Some(match parts.headers.get(header::CONTENT_TYPE) {
            Some(v) => ContentType::Value(v.as_bytes().to_vec()),
            None => ContentType::Missing,
        }),
        body,
    };
    let result = tokio::time::timeout_at(
        deadline.into(),
        chat::handle(&svc, incoming, deadline, None),
    )
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
pub(crate) async fn read_body(
    headers: &HeaderMap,
    body: Body,
    max: usize,
    deadline: Instant,
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
    tokio::time::timeout_at(deadline.into(), read)
        .await
        .unwrap_or(Err(BodyError::Timeout))
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

#[derive(Serialize)]
struct Ready {
    status: &'static str,
}

/// GET /healthz on the public listener: ready or not, nothing more (the
/// details are on the admin listener).
pub(crate) async fn ready(State(svc): State<Arc<Service>>) -> Response {
    if *svc.stopping.borrow() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(Ready { status: "stopping" }),
        )
            .into_response();
    }
    axum::Json(Ready { status: "ok" }).into_response()
}

/// What `GET /v1/policy` answers: what the service decides with, for a
/// client to compile the same (`new Checker({policy, catalog})`).
#[derive(Serialize)]
struct PublishedPolicy<'a> {
    /// The running policy component's version.
    version: &'a str,
    /// Its SHA-256, hex (also the ETag).
    sha256: &'a str,
    /// Its configuration, as it answers it.
    policy: &'a mangaassist_core::policy::PolicyConfig,
    /// The models and selection rule.
    catalog: &'a mangaassist_core::models::Catalog,
}

/// GET /v1/policy: the running policy's configuration and hash, and the
/// catalog. Public: the widget builds its checker from it before anyone
/// signs in (SECURITY.md). The ETag is a hash of the whole answer (policy
/// and catalog alike), so a client polling with `If-None-Match` gets 304
/// until anything in it changes: a policy swap, or another replica's
/// catalog.
pub(crate) async fn policy(State(svc): State<Arc<Service>>, headers: HeaderMap) -> Response {
    let current = svc.policy.current();
    let published = PublishedPolicy {
        version: &current.version,
        sha256: &current.sha256,
        policy: &current.config,
        catalog: &svc.catalog,
    };
    let Ok(body) = serde_json::to_vec(&published) else {
        return ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the policy could not be encoded",
        )
        .into_response();
    };
    let digest = sha2::Sha256::digest(&body);
    let tag: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    let etag = format!("\"{tag}\"");
    let mut response = if none_match(&headers, &etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, "application/json")], body).into_response()
    };
    if let Ok(value) = header::HeaderValue::from_str(&etag) {
        response.headers_mut().insert(header::ETAG, value);
    }
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    response
}

/// Whether `If-None-Match` names `etag` (RFC 9110: weak comparison, so a
/// proxy's `W/` prefix still matches; `*` matches anything; every header
/// line and list item counts).
fn none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .any(|t| t == "*" || t.strip_prefix("W/").unwrap_or(t) == etag)
}

/// GET /v1/estimator: the calibrated estimator's weights, for the widget to
/// estimate as the service does (public: they describe token counts of
/// texts, nothing about any user).
pub(crate) async fn estimator(State(svc): State<Arc<Service>>) -> Response {
    axum::Json(svc.estimator.published()).into_response()
}

/// GET /healthz on the admin listener: which policy and regions it has.
pub(crate) async fn healthz(State(svc): State<Arc<Service>>) -> Response {
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
pub(crate) async fn metrics(State(svc): State<Arc<Service>>) -> Response {
    let (evicted, refused) = svc.connections.turned_away();
    let connections = crate::metrics::ConnectionStats {
        open: svc.connections.open(),
        evicted,
        refused,
        policy_ready: svc.policy.current().sandbox.ready_instances(),
    };
    svc.metrics
        .estimator_errors(&svc.estimator.error_summaries(), svc.estimator.samples());
    match svc
        .metrics
        .render(&svc.invoker.health().snapshot(), connections)
    {
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

pub(crate) async fn not_found(State(svc): State<Arc<Service>>) -> Response {
    let e = ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such route");
    record_error(&svc, "other", Instant::now(), &e);
    e.into_response()
}

pub(crate) async fn method_not_allowed(State(svc): State<Arc<Service>>) -> Response {
    let e = ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method (POST /v1/chat, GET /v1/ws, POST /v1/jobs, GET /v1/jobs/{id}, GET /v1/jobs/{id}/results, GET /healthz)",
    );
    record_error(&svc, "other", Instant::now(), &e);
    e.into_response()
}
