//! What the store keeps: a job (owner, task, counts, cost) and one result
//! per item, and the shapes the API and the results file show them in.

use mangaassist_bedrock::invoker::Usage;
use mangaassist_core::jobs::JobTask;
use serde::{Deserialize, Serialize};

/// A job as the store keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct JobRecord {
    /// Job id (UUID v4).
    pub id: String,
    /// The identity that created it (`key:…`, `user:…`, `addr:…`): only it
    /// may read the job.
    pub owner: String,
    /// The task of every item.
    pub task: JobTask,
    /// Language of the answers.
    pub language: String,
    /// Items in the job.
    pub total: u64,
    /// Items answered.
    pub done: u64,
    /// Items given up on (in the dead-letter queue, with their error).
    pub failed: u64,
    /// What the recorded results cost, USD.
    pub cost_usd: f64,
    /// Unix time of creation, seconds.
    pub created_at: u64,
    /// The (done, failed) counts the last completion callback was
    /// delivered for; none before the first (see [`JobRecord::needs_notice`]).
    pub noticed: Option<(u64, u64)>,
}

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum JobState {
    /// No item has a result yet.
    Queued,
    /// Some items have results, some do not.
    Running,
    /// Every item is answered.
    Completed,
    /// Every item has a result, and some of them are failures (redrive the
    /// dead-letter queue to try them again).
    CompletedWithFailures,
}

impl JobRecord {
    /// Items without a result yet.
    pub fn pending(&self) -> u64 {
        self.total.saturating_sub(self.done + self.failed)
    }

    /// Where it stands, from its counts.
    pub fn state(&self) -> JobState {
        match (self.pending(), self.failed, self.done) {
            (0, 0, _) => JobState::Completed,
            (0, _, _) => JobState::CompletedWithFailures,
            (_, 0, 0) => JobState::Queued,
            _ => JobState::Running,
        }
    }

    /// Whether every item has a result.
    pub fn is_complete(&self) -> bool {
        self.pending() == 0
    }

    /// Whether its completion callback is due: it is complete and none was
    /// delivered yet, or the last one told of failures and now every item
    /// is answered (a redrive finished it). One callback per state, not one
    /// per redriven item.
    pub fn needs_notice(&self) -> bool {
        self.is_complete()
            && match self.noticed {
                None => true,
                Some((_, failed_then)) => failed_then > 0 && self.failed == 0,
            }
    }

    /// The job as the API shows it (the owner is not shown).
    pub fn view(&self) -> JobView {
        JobView {
            job_id: self.id.clone(),
            task: self.task,
            language: self.language.clone(),
            state: self.state(),
            total: self.total,
            done: self.done,
            failed: self.failed,
            pending: self.pending(),
            cost_usd: self.cost_usd,
            created_at: self.created_at,
        }
    }
}

/// `GET /v1/jobs/{id}`, and the completion callback's body.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    /// Job id.
    pub job_id: String,
    /// Task.
    pub task: JobTask,
    /// Language.
    pub language: String,
    /// State.
    pub state: JobState,
    /// Items in the job.
    pub total: u64,
    /// Answered.
    pub done: u64,
    /// Given up on.
    pub failed: u64,
    /// Without a result yet.
    pub pending: u64,
    /// Cost so far, USD.
    pub cost_usd: f64,
    /// Unix time of creation, seconds.
    pub created_at: u64,
}

/// An item's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ItemStatus {
    /// Answered.
    Done,
    /// Given up on, with its last error.
    Failed,
}

impl ItemStatus {
    /// As stored.
    pub fn name(self) -> &'static str {
        match self {
            ItemStatus::Done => "done",
            ItemStatus::Failed => "failed",
        }
    }
}

/// Why an item failed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemError {
    /// Stable snake_case code (`bedrock_rejected`, `bedrock_unavailable`, …).
    pub code: String,
    /// Plain explanation.
    pub message: String,
}

/// One item's result: a line of `GET /v1/jobs/{id}/results` (JSON Lines)
/// and of `mangaassist enrich`'s results file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ItemResult {
    /// The caller's item id.
    pub id: String,
    /// The job's task.
    pub task: JobTask,
    /// Done or failed.
    pub status: ItemStatus,
    /// The model's answer (done).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Model that answered (done).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_id: Option<String>,
    /// Region that answered (done).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Tokens the model reported (done).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// What the answer (or the failed attempts) cost, USD.
    pub cost_usd: f64,
    /// The last error (failed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ItemError>,
}

impl ItemResult {
    /// A failure of item `id`.
    pub fn failed(id: &str, task: JobTask, code: &str, message: &str, cost_usd: f64) -> Self {
        ItemResult {
            id: id.to_string(),
            task,
            status: ItemStatus::Failed,
            text: None,
            model_id: None,
            region: None,
            usage: None,
            cost_usd,
            error: Some(ItemError {
                code: code.to_string(),
                message: message.to_string(),
            }),
        }
    }

    /// The JSON line (no newline).
    pub fn line(&self) -> String {
        // Strings, numbers and enums only: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(total: u64, done: u64, failed: u64) -> JobRecord {
        JobRecord {
            id: "j".into(),
            owner: "o".into(),
            task: JobTask::Synopsis,
            language: "ja".into(),
            total,
            done,
            failed,
            cost_usd: 0.0,
            created_at: 0,
            noticed: None,
        }
    }

    #[test]
    fn states_follow_the_counts() {
        assert_eq!(job(3, 0, 0).state(), JobState::Queued);
        assert_eq!(job(3, 1, 0).state(), JobState::Running);
        assert_eq!(job(3, 0, 1).state(), JobState::Running);
        assert_eq!(job(3, 3, 0).state(), JobState::Completed);
        assert_eq!(job(3, 2, 1).state(), JobState::CompletedWithFailures);
        assert_eq!(job(3, 2, 1).pending(), 0);
        assert!(!job(3, 2, 0).is_complete());
        let mut j = job(4, 2, 2);
        assert!(j.needs_notice());
        j.noticed = Some((2, 2));
        assert!(!j.needs_notice());
        (j.done, j.failed) = (3, 1);
        assert!(
            !j.needs_notice(),
            "one of two failures redriven: no news yet"
        );
        (j.done, j.failed) = (4, 0);
        assert!(j.needs_notice(), "a redrive finished it");
        j.noticed = Some((4, 0));
        assert!(!j.needs_notice());
    }
}
