//! One queue message per job item: everything a worker needs to answer it
//! without reading the job first, keyed for deduplication by job and item.

use mangaassist_core::jobs::{JobItem, JobTask};
use mangaassist_queue::Outgoing;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The body of a work message (JSON).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
// Unknown fields are ignored: during a rolling deploy an older worker may
// read a message a newer version wrote.
#[serde(rename_all = "camelCase")]
pub struct WorkItem {
    /// The job it belongs to.
    pub job_id: String,
    /// The job's task.
    pub task: JobTask,
    /// The job's language.
    pub language: String,
    /// The item.
    pub item: JobItem,
}

impl WorkItem {
    /// The message to send. FIFO queues keep a job's items in order (the
    /// job is the group); the deduplication id (a digest, as SQS allows
    /// 128 characters and an item id alone may have 128) makes a job sent
    /// twice, in part or whole, one set of messages.
    pub fn outgoing(&self, fifo: bool) -> Outgoing {
        let digest = Sha256::digest(format!("{}\n{}", self.job_id, self.item.id).as_bytes());
        let dedup: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        Outgoing {
            // A struct of strings: serializing cannot fail.
            body: serde_json::to_string(self).unwrap_or_default(),
            group: fifo.then(|| self.job_id.clone()),
            dedup_id: Some(dedup),
        }
    }

    /// A message body read back; `Err` names what is wrong with it.
    pub fn parse(body: &str) -> Result<Self, String> {
        serde_json::from_str(body).map_err(|e| format!("not a work item: {e}"))
    }
}

/// Whether `queue` is a FIFO queue (SQS's naming rule, kept by both backends).
pub fn is_fifo(queue: &str) -> bool {
    queue.ends_with(".fifo")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    fn work(job: &str, item: &str) -> WorkItem {
        WorkItem {
            job_id: job.into(),
            task: JobTask::Synopsis,
            language: "ja".into(),
            item: JobItem {
                id: item.into(),
                title: "t".into(),
                author: None,
                description: None,
            },
        }
    }

    #[test]
    fn round_trip_and_keys() {
        let w = work("j1", &"x".repeat(128));
        let out = w.outgoing(true);
        assert_eq!(WorkItem::parse(&out.body).unwrap(), w);
        assert_eq!(out.group.as_deref(), Some("j1"));
        let dedup = out.dedup_id.unwrap();
        assert_eq!(dedup.len(), 64);
        assert_ne!(
            Some(dedup),
            work("j2", &"x".repeat(128)).outgoing(false).dedup_id
        );
        assert!(work("j", "i").outgoing(false).group.is_none());
        assert!(
            WorkItem::parse("{}")
                .unwrap_err()
                .contains("not a work item")
        );
    }
}
