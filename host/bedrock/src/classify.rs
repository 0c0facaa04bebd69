//! Which Bedrock failures another region may fix (fail over) and which it
//! cannot (return at once): SPEC 9 names `ValidationException` as the one a
//! region cannot fix; throttling, 5xx, timeouts, connection errors and a
//! model missing in a region all fail over.

use std::error::Error as StdError;

use aws_sdk_bedrockruntime::error::{ProvideErrorMetadata, SdkError};

/// One region's failure, as logged and reported.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegionFailure {
    /// The region.
    pub region: String,
    /// The model asked.
    pub model_id: String,
    /// Bedrock's error code (`ThrottlingException`), or `timeout`,
    /// `connection_error`, `response_error`, `stream_error`.
    pub code: String,
    /// The explanation.
    pub message: String,
    /// Whether another region may succeed.
    #[serde(skip)]
    pub fail_over: bool,
}

impl std::fmt::Display for RegionFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} ({})", self.region, self.code, self.message)
    }
}

/// Codes no other region can fix.
const FINAL_CODES: [&str; 1] = ["ValidationException"];

/// The full chain of an error's messages.
fn chain(e: &dyn StdError) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Classifies an SDK error of one attempt.
pub fn classify<E, R>(region: &str, model_id: &str, e: &SdkError<E, R>) -> RegionFailure
where
    E: ProvideErrorMetadata + StdError + 'static,
    R: std::fmt::Debug,
{
    let (code, message) = match e {
        SdkError::ServiceError(ctx) => (
            ctx.err()
                .code()
                .unwrap_or("UnknownServiceError")
                .to_string(),
            ctx.err()
                .message()
                .map_or_else(|| chain(ctx.err()), str::to_string),
        ),
        SdkError::TimeoutError(_) => ("timeout".to_string(), chain(e)),
        SdkError::DispatchFailure(_) => ("connection_error".to_string(), chain(e)),
        SdkError::ResponseError(_) => ("response_error".to_string(), chain(e)),
        SdkError::ConstructionFailure(_) => ("request_construction".to_string(), chain(e)),
        _ => ("sdk_error".to_string(), chain(e)),
    };
    let fail_over =
        !FINAL_CODES.contains(&code.as_str()) && !matches!(e, SdkError::ConstructionFailure(_));
    RegionFailure {
        region: region.to_string(),
        model_id: model_id.to_string(),
        code,
        message,
        fail_over,
    }
}

/// A failure the invoker itself observed (deadline, malformed stream).
pub fn local(region: &str, model_id: &str, code: &str, message: String) -> RegionFailure {
    RegionFailure {
        region: region.to_string(),
        model_id: model_id.to_string(),
        code: code.to_string(),
        message,
        fail_over: true,
    }
}
