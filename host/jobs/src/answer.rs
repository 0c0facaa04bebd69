//! One item, one Bedrock call: the core builds the task's body (fast
//! model), the invoker calls it with regional failover, and the outcome
//! is a result line or a failure that says whether trying again can help.
//! The worker and `mangaassist enrich` both answer items through here.

use std::time::Duration;

use mangaassist_bedrock::invoker::{Candidate, InvokeError, Invoker};
use mangaassist_core::jobs::{JobItem, JobItemInput, JobTask, job_body_report};
use mangaassist_core::models::Catalog;

use crate::record::{ItemResult, ItemStatus};

/// Why an item got no answer this time.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    /// Stable snake_case code.
    pub code: String,
    /// Plain explanation.
    pub message: String,
    /// What the failed attempts cost, USD.
    pub cost_usd: f64,
    /// No retry can help (Bedrock refused the request itself, or the
    /// item cannot be turned into one).
    pub permanent: bool,
    /// Bedrock was throttling or unavailable (retry later, not sooner).
    pub throttled: bool,
}

impl Failure {
    /// The failure as a failed result of `id`.
    pub fn result(&self, id: &str, task: JobTask) -> ItemResult {
        ItemResult::failed(id, task, &self.code, &self.message, self.cost_usd)
    }
}

/// Answers `item` once (the invoker fails over between regions; a retry
/// after that is the caller's).
pub async fn answer(
    invoker: &Invoker,
    catalog: &Catalog,
    task: JobTask,
    language: &str,
    item: &JobItem,
) -> Result<ItemResult, Failure> {
    let input = JobItemInput {
        task,
        language: Some(language.to_string()),
        item: item.clone(),
    };
    let refused = |code: &str, message: &str| Failure {
        code: code.to_string(),
        message: message.to_string(),
        cost_usd: 0.0,
        permanent: true,
        throttled: false,
    };
    let report = job_body_report(catalog, &input).map_err(|e| refused(e.code(), e.message()))?;
    let model = catalog
        .get(&report.model.key)
        .map_err(|e| refused(e.code(), e.message()))?;
    let candidates = [Candidate {
        model,
        body: &report.body,
    }];
    // Time for a failover to a second region, as a chat request has.
    let budget = Duration::from_millis(model.timeout_ms.saturating_mul(2));
    match invoker.invoke(&candidates, budget).await {
        Ok(reply) => Ok(ItemResult {
            id: item.id.clone(),
            task,
            status: ItemStatus::Done,
            text: Some(reply.text),
            model_id: Some(reply.model_id),
            region: Some(reply.region),
            usage: Some(reply.usage),
            cost_usd: reply.cost_usd,
            error: None,
        }),
        Err(e) => Err(Failure {
            code: e.code().to_string(),
            message: e.to_string(),
            cost_usd: e.spent().cost_usd,
            permanent: matches!(e, InvokeError::Rejected(..)),
            throttled: e.failures().iter().any(|f| f.code == "ThrottlingException"),
        }),
    }
}
