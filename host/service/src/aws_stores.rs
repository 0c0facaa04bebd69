//! The AWS side of the shared state: one SDK configuration (region,
//! credentials and endpoints from the SDK's standard settings: `AWS_REGION`,
//! the credential chain, `AWS_ENDPOINT_URL[_DYNAMODB|_SSM|_SQS]`) for the
//! DynamoDB tables, SSM Parameter Store and the SQS job queue.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

/// Idle connections kept per store endpoint.
const POOL: usize = 32;

/// The SDK configuration every store client is built from, each call (its
/// retries included) bounded by `timeout`. Refused without a region: a
/// store in an unnamed region is a deployment defect to report at start.
pub async fn sdk_config(timeout: Duration) -> Result<aws_config::SdkConfig, String> {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .http_client(mangaassist_bedrock::invoker::https_client(POOL))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(timeout)
                .operation_attempt_timeout(timeout)
                .operation_timeout(timeout)
                .build(),
        )
        // One retry: the request path has its own bound and a fallback.
        .retry_config(RetryConfig::standard().with_max_attempts(2))
        .load()
        .await;
    if config.region().is_none() {
        return Err(
            "the shared stores need an AWS region: set AWS_REGION (or a profile's region)".into(),
        );
    }
    Ok(config)
}

/// A DynamoDB client for `config`.
pub fn dynamodb(config: &aws_config::SdkConfig) -> aws_sdk_dynamodb::Client {
    aws_sdk_dynamodb::Client::new(config)
}

/// An SQS client for `config` (the job queue).
pub fn sqs(config: &aws_config::SdkConfig) -> aws_sdk_sqs::Client {
    aws_sdk_sqs::Client::new(config)
}

/// An SSM client for `config`.
pub fn ssm(config: &aws_config::SdkConfig) -> aws_sdk_ssm::Client {
    aws_sdk_ssm::Client::new(config)
}

/// An error and its sources as one line (an SDK error's own text is only
/// "service error" or "dispatch failure"; the cause is in its sources).
pub fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
