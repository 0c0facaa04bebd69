//! Which handler answers which route.

use std::sync::Arc;

use axum::Router;
use axum::routing::{get, post};
use tower_http::compression::Compression;
use tower_http::services::ServeDir;

use crate::app::Service;
use crate::http::{chat_http, healthz, method_not_allowed, metrics, not_found};
use crate::ws;

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
