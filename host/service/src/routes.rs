//! Which handler answers which route, on the public listener and on the
//! admin listener, and the checks every public request passes first.

use std::net::IpAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tower_http::compression::Compression;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::services::ServeDir;

use crate::app::Service;
use crate::errors::ApiError;
use crate::http::{
    chat_http, estimator, healthz, method_not_allowed, metrics, not_found, policy, ready,
};
use crate::{jobs_http, ws};

/// The public routes over the shared service.
pub fn router(svc: Arc<Service>) -> Router {
    let mut api = Router::new()
        .route("/v1/chat", post(chat_http))
        .route("/v1/ws", get(ws::upgrade))
        .route("/v1/jobs", post(jobs_http::create_job))
        .route("/v1/jobs/{id}", get(jobs_http::get_job))
        .route("/v1/jobs/{id}/results", get(jobs_http::job_results))
        .route("/v1/estimator", get(estimator))
        .route("/v1/policy", get(policy))
        .route("/healthz", get(ready))
        .method_not_allowed_fallback(method_not_allowed);
    if let Some(cors) = cors(&svc.config.cors_origins) {
        api = api.layer(cors);
    }
    let routes = match &svc.config.web_root {
        // The page and its .wasm go out gzip-compressed (the widget's first
        // load budget is counted on the wire); the API routes are not wrapped.
        Some(root) => api.fallback_service(Compression::new(
            ServeDir::new(root)
                .fallback(axum::routing::any(not_found).with_state(Arc::clone(&svc))),
        )),
        None => api.fallback(not_found),
    };
    routes
        .layer(middleware::from_fn_with_state(Arc::clone(&svc), check_host))
        .with_state(svc)
}

/// The admin routes: health with the policy and regions, and metrics. On
/// their own listener, loopback by default: internals stay off the public
/// port.
pub fn admin_router(svc: Arc<Service>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            Arc::clone(&svc),
            check_admin_host,
        ))
        .with_state(svc)
}

/// The admin routes answer to allowed Host names only, `/healthz` too (its
/// details are what a rebinding page would be after).
async fn check_admin_host(
    State(svc): State<Arc<Service>>,
    request: Request,
    next: Next,
) -> Response {
    if host_allowed(&svc, request.headers()) {
        return next.run(request).await;
    }
    host_refused()
}

fn host_refused() -> Response {
    ApiError::new(
        StatusCode::MISDIRECTED_REQUEST,
        "host_not_allowed",
        "this service does not answer to that Host name (allowed_hosts)",
    )
    .into_response()
}

/// CORS for the API, only for configured origins.
fn cors(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    (!origins.is_empty()).then(|| {
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([
                header::CONTENT_TYPE,
                header::AUTHORIZATION,
                header::HeaderName::from_static("x-api-key"),
            ])
    })
}

/// Answers only to the configured host names (and loopback), so a page
/// whose DNS name is rebound to this service cannot talk to it. `/healthz`
/// is exempt: load balancers probe by address, and it tells nothing.
async fn check_host(State(svc): State<Arc<Service>>, request: Request, next: Next) -> Response {
    if request.uri().path() == "/healthz" || host_allowed(&svc, request.headers()) {
        return next.run(request).await;
    }
    host_refused()
}

fn host_allowed(svc: &Service, headers: &axum::http::HeaderMap) -> bool {
    let allowed = &svc.config.allowed_hosts;
    if allowed.iter().any(|h| h == "*") {
        return true;
    }
    let Some(host) = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .map(str::to_ascii_lowercase)
    else {
        return false;
    };
    let name = host_name(&host);
    if let Ok(ip) = name
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        && (ip.is_loopback() || ip == svc.config.listen.ip())
    {
        return true;
    }
    name == "localhost"
        || allowed
            .iter()
            .map(|a| a.to_ascii_lowercase())
            .any(|a| a == host || a == name)
}

/// The name part of a `Host` value (`[::1]:8080` → `[::1]`).
pub fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    host.split(':').next().unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_lose_their_port() {
        assert_eq!(host_name("shop.example:8080"), "shop.example");
        assert_eq!(host_name("shop.example"), "shop.example");
        assert_eq!(host_name("[::1]:8080"), "[::1]");
        assert_eq!(host_name("[::1]"), "[::1]");
        assert_eq!(host_name("127.0.0.1:1"), "127.0.0.1");
    }
}
