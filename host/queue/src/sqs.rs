//! The queue on Amazon SQS, for a fleet: standard queues, and FIFO queues
//! (names ending in `.fifo`) with message groups and deduplication ids;
//! each queue with its dead-letter queue (`<name>-dlq`, RedrivePolicy),
//! long polling, batch send and receive, visibility changes.
//!
//! SQS cannot change a message, so a failure's error cannot ride along with
//! it; a message given up on explicitly ([`SqsQueue::dead_letter`]) is
//! moved by us with its last error as a message attribute, and the
//! RedrivePolicy catches the rest (a worker that died with it).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::{
    MessageAttributeValue, MessageSystemAttributeName, QueueAttributeName,
    SendMessageBatchRequestEntry,
};

use crate::{DeadLetter, Depth, MAX_BATCH, Outgoing, QueueError, QueuePolicy, Received};

/// How long a look at the dead letters waits for more: short polling
/// (no wait) may answer empty while messages are there.
const PEEK_WAIT: Duration = Duration::from_secs(1);

/// The message attribute that carries a dead letter's last error.
const LAST_ERROR: &str = "lastError";

/// Queues on SQS, by name.
pub struct SqsQueue {
    client: Client,
    policy: QueuePolicy,
    urls: Mutex<HashMap<String, String>>,
}

fn sqs<E: std::fmt::Display>(what: &str) -> impl FnOnce(E) -> QueueError + '_ {
    move |e| QueueError::Store(format!("SQS {what}: {e}"))
}

fn secs(d: Duration) -> i32 {
    i32::try_from(d.as_secs()).unwrap_or(i32::MAX)
}

/// The dead-letter queue's name of `queue`.
pub fn dead_letter_name(queue: &str) -> String {
    match queue.strip_suffix(".fifo") {
        Some(base) => format!("{base}-dlq.fifo"),
        None => format!("{queue}-dlq"),
    }
}

impl SqsQueue {
    /// Queues reached with `client` (its region, credentials, endpoint).
    pub fn new(client: Client, policy: QueuePolicy) -> Self {
        SqsQueue {
            client,
            policy,
            urls: Mutex::new(HashMap::new()),
        }
    }

    /// Creates `queue` and its dead-letter queue with the redrive policy
    /// (`max_receives`), FIFO when the name ends in `.fifo`; an existing
    /// queue is kept. Returns the queue's URL.
    pub async fn create(&self, queue: &str) -> Result<String, QueueError> {
        let fifo = queue.ends_with(".fifo");
        let dlq = dead_letter_name(queue);
        let mut make = self.client.create_queue().queue_name(&dlq);
        if fifo {
            make = make.attributes(QueueAttributeName::FifoQueue, "true");
        }
        let dlq_url = make.send().await.map_err(sqs("create_queue"))?;
        let dlq_url = dlq_url.queue_url().unwrap_or_default().to_string();
        let dlq_arn = self
            .client
            .get_queue_attributes()
            .queue_url(&dlq_url)
            .attribute_names(QueueAttributeName::QueueArn)
            .send()
            .await
            .map_err(sqs("get_queue_attributes"))?
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::QueueArn).cloned())
            .unwrap_or_default();
        let redrive = format!(
            "{{\"deadLetterTargetArn\":\"{dlq_arn}\",\"maxReceiveCount\":\"{}\"}}",
            self.policy.max_receives
        );
        let mut make = self
            .client
            .create_queue()
            .queue_name(queue)
            .attributes(QueueAttributeName::RedrivePolicy, redrive);
        if fifo {
            // A message sent without a deduplication id is deduplicated by
            // its body (the embedded queue takes such messages too).
            make = make
                .attributes(QueueAttributeName::FifoQueue, "true")
                .attributes(QueueAttributeName::ContentBasedDeduplication, "true");
        }
        let url = make
            .send()
            .await
            .map_err(sqs("create_queue"))?
            .queue_url()
            .unwrap_or_default()
            .to_string();
        Ok(url)
    }

    /// The URL of `queue` (looked up once).
    async fn url(&self, queue: &str) -> Result<String, QueueError> {
        if let Some(url) = self.cached(queue) {
            return Ok(url);
        }
        let url = self
            .client
            .get_queue_url()
            .queue_name(queue)
            .send()
            .await
            .map_err(sqs("get_queue_url"))?
            .queue_url()
            .unwrap_or_default()
            .to_string();
        self.urls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(queue.to_string(), url.clone());
        Ok(url)
    }

    fn cached(&self, queue: &str) -> Option<String> {
        self.urls
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(queue)
            .cloned()
    }

    /// Sends `messages` in batches of ten; how many SQS took.
    pub async fn send(&self, queue: &str, messages: &[Outgoing]) -> Result<usize, QueueError> {
        let url = self.url(queue).await?;
        // A standard queue refuses group and deduplication ids
        // (InvalidParameterValue); only a FIFO queue takes them.
        let fifo = queue.ends_with(".fifo");
        let mut sent = 0;
        for chunk in messages.chunks(MAX_BATCH) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(&m.body)
                        .set_message_group_id(m.group.clone().filter(|_| fifo))
                        .set_message_deduplication_id(m.dedup_id.clone().filter(|_| fifo))
                        .build()
                        .map_err(sqs("send_message_batch"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let answer = self
                .client
                .send_message_batch()
                .queue_url(&url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(sqs("send_message_batch"))?;
            if let Some(failed) = answer.failed().first() {
                return Err(QueueError::Store(format!(
                    "SQS send_message_batch: entry refused: {} {}",
                    failed.code(),
                    failed.message().unwrap_or_default()
                )));
            }
            sent += answer.successful().len();
        }
        Ok(sent)
    }

    /// Up to `max` messages, each hidden for `visibility`, waiting up to
    /// `wait` for the first (long polling).
    pub async fn receive(
        &self,
        queue: &str,
        max: usize,
        visibility: Duration,
        wait: Duration,
    ) -> Result<Vec<Received>, QueueError> {
        let url = self.url(queue).await?;
        let answer = self
            .client
            .receive_message()
            .queue_url(&url)
            .max_number_of_messages(i32::try_from(max.clamp(1, MAX_BATCH)).unwrap_or(10))
            .visibility_timeout(secs(visibility))
            // Whole seconds on SQS: a wait is rounded up, never to none.
            .wait_time_seconds(
                i32::try_from(wait.as_secs_f64().ceil() as u64)
                    .unwrap_or(20)
                    .min(20),
            )
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .message_attribute_names(LAST_ERROR)
            .send()
            .await
            .map_err(sqs("receive_message"))?;
        Ok(answer
            .messages()
            .iter()
            .map(|m| Received {
                body: m.body().unwrap_or_default().to_string(),
                receipt: m.receipt_handle().unwrap_or_default().to_string(),
                receive_count: m
                    .attributes()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(1),
                last_error: last_error(m.message_attributes()),
            })
            .collect())
    }

    /// Deletes a received message.
    pub async fn delete(&self, queue: &str, receipt: &str) -> Result<(), QueueError> {
        let url = self.url(queue).await?;
        self.client
            .delete_message()
            .queue_url(&url)
            .receipt_handle(receipt)
            .send()
            .await
            .map_err(sqs("delete_message"))?;
        Ok(())
    }

    /// Hides a received message for `visibility` from now (also how a
    /// failed one comes back after a backoff).
    pub async fn change_visibility(
        &self,
        queue: &str,
        receipt: &str,
        visibility: Duration,
    ) -> Result<(), QueueError> {
        let url = self.url(queue).await?;
        self.client
            .change_message_visibility()
            .queue_url(&url)
            .receipt_handle(receipt)
            .visibility_timeout(secs(visibility))
            .send()
            .await
            .map_err(sqs("change_message_visibility"))?;
        Ok(())
    }

    /// Gives up on a received message: into the dead-letter queue with
    /// `error`, then out of `queue`.
    pub async fn dead_letter(
        &self,
        queue: &str,
        message: &Received,
        error: &str,
        group: Option<&str>,
    ) -> Result<(), QueueError> {
        let dlq = self.url(&dead_letter_name(queue)).await?;
        let attribute = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(error)
            .build()
            .map_err(sqs("send_message"))?;
        let mut send = self
            .client
            .send_message()
            .queue_url(&dlq)
            .message_body(&message.body)
            .message_attributes(LAST_ERROR, attribute);
        if queue.ends_with(".fifo") {
            send = send
                .message_group_id(group.unwrap_or("dead"))
                .message_deduplication_id(uuid::Uuid::new_v4().to_string());
        }
        send.send().await.map_err(sqs("send_message"))?;
        self.delete(queue, &message.receipt).await
    }

    /// The dead letters of `queue` (looked at, not taken: each is made
    /// visible again at once).
    pub async fn dead_letters(&self, queue: &str) -> Result<Vec<DeadLetter>, QueueError> {
        let dlq = dead_letter_name(queue);
        let mut out = Vec::new();
        let mut seen = Vec::new();
        loop {
            let batch = self
                .receive(&dlq, MAX_BATCH, Duration::from_secs(120), PEEK_WAIT)
                .await?;
            if batch.is_empty() {
                break;
            }
            for m in batch {
                out.push(DeadLetter {
                    body: m.body.clone(),
                    receive_count: m.receive_count,
                    last_error: m.last_error.clone(),
                });
                seen.push(m.receipt);
            }
        }
        for receipt in seen {
            self.change_visibility(&dlq, &receipt, Duration::ZERO)
                .await?;
        }
        Ok(out)
    }

    /// Moves every dead letter of `queue` back to it; how many moved.
    pub async fn redrive(&self, queue: &str) -> Result<usize, QueueError> {
        let dlq = dead_letter_name(queue);
        let fifo = queue.ends_with(".fifo");
        // Only the letters there now: one that dies again while the redrive
        // runs (a worker is taking the redriven ones) would otherwise come
        // round again and again.
        let there = self.depth(queue).await?.dead;
        let mut moved = 0;
        while (moved as u64) < there {
            let batch = self
                .receive(&dlq, MAX_BATCH, Duration::from_secs(120), PEEK_WAIT)
                .await?;
            if batch.is_empty() {
                break;
            }
            for m in batch {
                if moved as u64 >= there {
                    // Died again meanwhile: left for the next redrive.
                    self.change_visibility(&dlq, &m.receipt, Duration::ZERO)
                        .await?;
                    continue;
                }
                let outgoing = Outgoing {
                    body: m.body.clone(),
                    group: fifo.then(|| "redriven".to_string()),
                    dedup_id: fifo.then(|| uuid::Uuid::new_v4().to_string()),
                };
                self.send(queue, std::slice::from_ref(&outgoing)).await?;
                self.delete(&dlq, &m.receipt).await?;
                moved += 1;
            }
        }
        Ok(moved)
    }

    /// Approximate counts, as SQS reports them.
    pub async fn depth(&self, queue: &str) -> Result<Depth, QueueError> {
        let count = |attributes: Option<&HashMap<QueueAttributeName, String>>,
                     name: QueueAttributeName| {
            attributes
                .and_then(|a| a.get(&name))
                .and_then(|n| n.parse::<u64>().ok())
                .unwrap_or(0)
        };
        let mut depth = Depth::default();
        for (name, is_dead) in [(queue.to_string(), false), (dead_letter_name(queue), true)] {
            let url = self.url(&name).await?;
            let answer = self
                .client
                .get_queue_attributes()
                .queue_url(&url)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
                .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                .send()
                .await
                .map_err(sqs("get_queue_attributes"))?;
            let visible = count(
                answer.attributes(),
                QueueAttributeName::ApproximateNumberOfMessages,
            );
            let hidden = count(
                answer.attributes(),
                QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            );
            if is_dead {
                depth.dead = visible + hidden;
            } else {
                depth.visible = visible;
                depth.in_flight = hidden;
            }
        }
        Ok(depth)
    }
}

fn last_error(attributes: Option<&HashMap<String, MessageAttributeValue>>) -> Option<String> {
    attributes?
        .get(LAST_ERROR)?
        .string_value()
        .map(ToString::to_string)
}
