//! The jobs API: `POST /v1/jobs` (a job checked by the core's job
//! contract, queued one message per item, 202), `GET /v1/jobs/{id}`
//! (state, counts, cost so far) and `GET /v1/jobs/{id}/results` (JSON
//! Lines). A job belongs to the identity that created it: to any other,
//! like an unknown id, it is 404 (whether it exists is not told).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::rejection::PathRejection;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use mangaassist_core::jobs::{Job, validate_job_first};
use mangaassist_jobs::{JobRecord, StoreError, SubmitError, submit};

use crate::app::Service;
use crate::chat::{BodyError, ContentType, check_content_type};
use crate::errors::ApiError;
use crate::http::read_body;
use crate::identity::{Identity, unix_now};
use crate::outcome::record_error;

/// Violations listed at most in a refusal (the rest are counted).
const LISTED_VIOLATIONS: usize = 50;
/// Seconds a client is told to wait when the job store or queue is down.
const RETRY_AFTER_SECS: u64 = 5;
/// The metrics' route label.
const ROUTE: &str = "jobs";

fn respond(svc: &Service, started: Instant, result: Result<Response, ApiError>) -> Response {
    match result {
        Ok(response) => {
            svc.metrics
                .request(ROUTE, response.status().as_u16(), started.elapsed());
            response
        }
        Err(e) => {
            record_error(svc, ROUTE, started, &e);
            e.into_response()
        }
    }
}

fn unavailable(code: &str, message: String) -> ApiError {
    let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, code, message);
    e.retry_after = Some(RETRY_AFTER_SECS);
    e
}

fn store_error(e: StoreError) -> ApiError {
    unavailable(e.code(), e.to_string())
}

fn job_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "job_not_found",
        "no job with that id belongs to you",
    )
}

/// Who asks, admitted by the rate limits.
async fn caller(
    svc: &Service,
    headers: &axum::http::HeaderMap,
    peer: SocketAddr,
) -> Result<Identity, ApiError> {
    let identity = svc.identify(headers, peer, None).await?;
    svc.admit(&identity.label).await?;
    Ok(identity)
}

/// POST /v1/jobs.
pub(crate) async fn create_job(
    State(svc): State<Arc<Service>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: Request,
) -> Response {
    let started = Instant::now();
    let result = create(&svc, peer, request).await;
    respond(&svc, started, result)
}

async fn create(svc: &Service, peer: SocketAddr, request: Request) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    // Who is asking comes first: a stranger's body is not even read.
    let identity = caller(svc, &parts.headers, peer).await?;
    // Then what it says it sends: no body is read that is not JSON.
    check_content_type(&match parts.headers.get(header::CONTENT_TYPE) {
        Some(v) => ContentType::Value(v.as_bytes().to_vec()),
        None => ContentType::Missing,
    })?;
    let max = svc.config.jobs_max_body_bytes;
    // A large job may take longer to send than a chat turn; still bounded.
    let deadline = Instant::now() + Duration::from_millis(svc.config.stream_budget_ms);
    let bytes = read_body(&parts.headers, body, max, deadline)
        .await
        .map_err(|e| match e {
            BodyError::TooLarge => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the job is over {max} bytes (jobs_max_body_bytes)"),
            ),
            BodyError::Timeout => ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "the job did not arrive within {} ms",
                    svc.config.stream_budget_ms
                ),
            ),
            BodyError::Incomplete => {
                ApiError::bad_request("body_incomplete", "the request body ended early")
            }
        })?;
    // Parsing and checking megabytes is CPU work: off the async workers.
    let job = tokio::task::spawn_blocking(move || check_job(&bytes))
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "job_check_failed",
                format!("the job could not be checked: {e}"),
            )
        })??;
    // Queued to the end even when the client goes away meanwhile: a job
    // half queued would never complete.
    let batch = svc.batch.clone();
    let owner = identity.label.to_string();
    let record = tokio::spawn(async move {
        submit(
            &batch.store,
            &batch.queue,
            &batch.queue_name,
            &owner,
            job,
            unix_now(),
        )
        .await
    })
    .await
    .map_err(|e| {
        unavailable(
            "job_queue_unavailable",
            format!("the job was not queued: {e}"),
        )
    })?
    .map_err(|e: SubmitError| unavailable(e.code(), e.to_string()))?;
    let location = format!("/v1/jobs/{}", record.id);
    Ok((
        StatusCode::ACCEPTED,
        [(header::LOCATION, location)],
        axum::Json(record.view()),
    )
        .into_response())
}

/// The job in `bytes`, or why not: not JSON, or every violation of the
/// job contract (the first [`LISTED_VIOLATIONS`], and the count).
fn check_job(bytes: &[u8]) -> Result<Job, ApiError> {
    let doc: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|e| ApiError::bad_request("invalid_json", format!("the body is not JSON: {e}")))?;
    let (violations, total) = validate_job_first(&doc, LISTED_VIOLATIONS);
    if !violations.is_empty() {
        let listed = violations.len();
        let message = if total > listed {
            format!(
                "the job breaks the job contract in {total} places; the first {listed} are listed"
            )
        } else {
            format!("the job breaks the job contract in {listed} place(s)")
        };
        return Err(ApiError::bad_request("contract_violation", message).with_details(&violations));
    }
    serde_json::from_value(doc).map_err(|e| {
        // The contract passed, so this is a defect of ours, not the client's.
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "job_unreadable",
            format!("a job the contract accepted could not be read: {e}"),
        )
    })
}

/// The caller's own job `id` (the caller identified and admitted first).
async fn owned_job(
    svc: &Service,
    headers: &axum::http::HeaderMap,
    peer: SocketAddr,
    id: Result<Path<String>, PathRejection>,
) -> Result<JobRecord, ApiError> {
    let identity = caller(svc, headers, peer).await?;
    let Ok(Path(id)) = id else {
        return Err(job_not_found());
    };
    // Job ids are UUIDs: anything else is unknown without a store call.
    if uuid::Uuid::parse_str(&id).is_err() {
        return Err(job_not_found());
    }
    let job = svc
        .batch
        .store
        .get(&id)
        .await
        .map_err(store_error)?
        .ok_or_else(job_not_found)?;
    if job.owner != *identity.label {
        return Err(job_not_found());
    }
    Ok(job)
}

/// GET /v1/jobs/{id}.
pub(crate) async fn get_job(
    State(svc): State<Arc<Service>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    id: Result<Path<String>, PathRejection>,
    headers: axum::http::HeaderMap,
) -> Response {
    let started = Instant::now();
    let result = async {
        let job = owned_job(&svc, &headers, peer, id).await?;
        Ok(axum::Json(job.view()).into_response())
    }
    .await;
    respond(&svc, started, result)
}

/// GET /v1/jobs/{id}/results: one JSON line per item with a result, by item id.
pub(crate) async fn job_results(
    State(svc): State<Arc<Service>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    id: Result<Path<String>, PathRejection>,
    headers: axum::http::HeaderMap,
) -> Response {
    let started = Instant::now();
    let result = async {
        let job = owned_job(&svc, &headers, peer, id).await?;
        let results = svc
            .batch
            .store
            .results(&job.id)
            .await
            .map_err(store_error)?;
        let mut text = String::new();
        for r in &results {
            text.push_str(&r.line());
            text.push('\n');
        }
        Ok(([(header::CONTENT_TYPE, "application/x-ndjson")], text).into_response())
    }
    .await;
    respond(&svc, started, result)
}
