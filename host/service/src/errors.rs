//! The service's refusals: an HTTP status, a stable code, a message and
//! details, answered as SPEC 10's `{"error":{"code","message","details"}}`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::value::{RawValue, to_raw_value};

use crate::limits::Limited;
use mangaassist_bedrock::invoker::InvokeError;
use mangaassist_sandbox::SandboxError;

/// One refusal of the service.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status (also sent in WebSocket responses).
    pub status: StatusCode,
    /// Stable snake_case code.
    pub code: String,
    /// Plain explanation.
    pub message: String,
    /// Violations, region failures, or empty (kept as JSON text so their
    /// fields stay in the order the core writes them).
    pub details: Vec<Box<RawValue>>,
    /// Seconds for `Retry-After` (429, and 503 when waiting helps).
    pub retry_after: Option<u64>,
}

/// The wire shape of an error.
#[derive(Debug, Serialize)]
pub struct ErrorBody<'a> {
    error: ErrorFields<'a>,
}

#[derive(Debug, Serialize)]
struct ErrorFields<'a> {
    code: &'a str,
    message: &'a str,
    details: &'a [Box<RawValue>],
}

impl ApiError {
    /// An error without details.
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
            details: Vec::new(),
            retry_after: None,
        }
    }

    /// The same error with details.
    pub fn with_details<T: Serialize>(mut self, details: &[T]) -> Self {
        self.details = details
            .iter()
            .filter_map(|d| to_raw_value(d).ok())
            .collect();
        self
    }

    /// 400 with the request's contract violations.
    pub fn bad_request(code: &str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// The JSON body.
    pub fn body(&self) -> ErrorBody<'_> {
        ErrorBody {
            error: ErrorFields {
                code: &self.code,
                message: &self.message,
                details: &self.details,
            },
        }
    }
}

impl From<Limited> for ApiError {
    fn from(limited: Limited) -> Self {
        let secs = limited.retry_after_secs();
        let mut e = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            limited.code(),
            match limited {
                Limited::Overall(_) => {
                    format!("the service is at its request rate limit; retry in {secs} s")
                }
                Limited::Client(_) => {
                    format!("this client is at its request rate limit; retry in {secs} s")
                }
            },
        );
        e.retry_after = Some(secs);
        e
    }
}

/// What a client is told of one region's failure: where and Bedrock's
/// error code, never the SDK's message (it can carry ARNs, account ids and
/// request ids; those go to the log).
#[derive(Serialize)]
struct FailureDetail<'a> {
    region: &'a str,
    code: &'a str,
}

impl From<&InvokeError> for ApiError {
    fn from(e: &InvokeError) -> Self {
        tracing::warn!(code = e.code(), error = %e, "Bedrock gave no answer");
        let (status, message) = match e {
            // Our body was refused: a defect on our side, not the client's.
            InvokeError::Rejected(..) => (
                StatusCode::BAD_GATEWAY,
                "Bedrock refused the request; it has been logged",
            ),
            InvokeError::Exhausted(..) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "no region could answer; try again shortly",
            ),
            InvokeError::Deadline(..) => (
                StatusCode::GATEWAY_TIMEOUT,
                "no answer within the time budget",
            ),
        };
        let details: Vec<FailureDetail<'_>> = e
            .failures()
            .iter()
            .map(|f| FailureDetail {
                region: &f.region,
                code: &f.code,
            })
            .collect();
        ApiError::new(status, e.code(), message).with_details(&details)
    }
}

impl From<SandboxError> for ApiError {
    fn from(e: SandboxError) -> Self {
        let status = match e {
            SandboxError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        // The engine's own words (traps, paths) go to the log only.
        tracing::warn!(code = e.code(), error = %e, "policy call failed");
        ApiError::new(
            status,
            e.code(),
            "the policy engine could not check the request",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(self.body())).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
