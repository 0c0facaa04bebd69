//! The end of every request: its answer or error as a response, counted in
//! the metrics and, for faults of ours or Bedrock's, logged.

use std::time::Instant;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::app::Service;
use crate::chat::Answer;
use crate::errors::ApiError;

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
