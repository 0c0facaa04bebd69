//! Jobs and results in one DynamoDB table (the enriched catalog): the
//! partition is the job (`jobId`), the sort key the item (`itemId`), and
//! the job's own record sits under the sort key `#job` (item ids cannot
//! hold `#`, and it sorts before every one of them). A result and its
//! count in the job are one conditional transaction, so concurrent
//! workers and redelivered messages record an item once.

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, Put,
    ScalarAttributeType, TransactWriteItem, Update,
};
use aws_smithy_types::error::display::DisplayErrorContext;
use mangaassist_core::jobs::JobTask;

use super::{Recorded, StoreError};
use crate::record::{ItemResult, ItemStatus, JobRecord};

/// Partition key: the job.
const JOB: &str = "jobId";
/// Sort key: the item, or [`META`] for the job itself.
const ITEM: &str = "itemId";
/// The sort key of the job's own record.
const META: &str = "#job";
/// Tries of a transaction that lost a race with another worker (its
/// condition, or a conflict on the job's counts).
const RACES: u32 = 20;

/// The job store in a DynamoDB table.
pub struct DynamoJobs {
    client: Client,
    table: String,
}

fn failed<E: std::error::Error + 'static>(what: &str) -> impl FnOnce(E) -> StoreError + '_ {
    move |e| StoreError::Unavailable(format!("DynamoDB {what}: {}", DisplayErrorContext(&e)))
}

fn s(v: &str) -> AttributeValue {
    AttributeValue::S(v.to_string())
}

fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

fn key(job: &str, item: &str) -> HashMap<String, AttributeValue> {
    HashMap::from([(JOB.to_string(), s(job)), (ITEM.to_string(), s(item))])
}

fn text<'a>(item: &'a HashMap<String, AttributeValue>, name: &str) -> Result<&'a str, StoreError> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
        .ok_or_else(|| StoreError::Corrupt(format!("a job record has no text {name}")))
}

fn number<T: std::str::FromStr>(
    item: &HashMap<String, AttributeValue>,
    name: &str,
) -> Result<T, StoreError> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("a job record has no number {name}")))
}

fn job_from(item: &HashMap<String, AttributeValue>) -> Result<JobRecord, StoreError> {
    let task_name = text(item, "task")?;
    let task: JobTask = serde_json::from_value(serde_json::Value::String(task_name.into()))
        .map_err(|_| StoreError::Corrupt(format!("unknown task {task_name:?}")))?;
    Ok(JobRecord {
        id: text(item, JOB)?.to_string(),
        owner: text(item, "owner")?.to_string(),
        task,
        language: text(item, "language")?.to_string(),
        total: number(item, "total")?,
        done: number(item, "done")?,
        failed: number(item, "failed")?,
        cost_usd: number(item, "costUsd")?,
        created_at: number(item, "createdAt")?,
        noticed: number(item, "noticedDone")
            .ok()
            .zip(number(item, "noticedFailed").ok()),
    })
}

impl DynamoJobs {
    /// The store in `table` (created by [`create_table`]).
    pub fn new(client: Client, table: &str) -> Self {
        DynamoJobs {
            client,
            table: table.to_string(),
        }
    }

    pub(super) async fn create(&self, job: &JobRecord) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(HashMap::from([
                (JOB.to_string(), s(&job.id)),
                (ITEM.to_string(), s(META)),
                ("owner".to_string(), s(&job.owner)),
                ("task".to_string(), s(job.task.name())),
                ("language".to_string(), s(&job.language)),
                ("total".to_string(), n(job.total)),
                ("done".to_string(), n(job.done)),
                ("failed".to_string(), n(job.failed)),
                ("costUsd".to_string(), n(job.cost_usd)),
                ("createdAt".to_string(), n(job.created_at)),
            ])))
            .condition_expression("attribute_not_exists(jobId)")
            .send()
            .await
            .map_err(failed("PutItem (job)"))?;
        Ok(())
    }

    pub(super) async fn delete(&self, job_id: &str) -> Result<(), StoreError> {
        // The job first: results without a job are never shown.
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(job_id, META)))
            .send()
            .await
            .map_err(failed("DeleteItem (job)"))?;
        for result in self.results(job_id).await? {
            self.client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key(job_id, &result.id)))
                .send()
                .await
                .map_err(failed("DeleteItem (result)"))?;
        }
        Ok(())
    }

    pub(super) async fn get(&self, job_id: &str) -> Result<Option<JobRecord>, StoreError> {
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(job_id, META)))
            .consistent_read(true)
            .send()
            .await
            .map_err(failed("GetItem (job)"))?;
        got.item().map(job_from).transpose()
    }

    async fn status(&self, job_id: &str, item_id: &str) -> Result<Option<String>, StoreError> {
        let got = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(job_id, item_id)))
            .consistent_read(true)
            .projection_expression("#s")
            .expression_attribute_names("#s", "status")
            .send()
            .await
            .map_err(failed("GetItem (result)"))?;
        Ok(got
            .item()
            .and_then(|i| i.get("status"))
            .and_then(|v| v.as_s().ok())
            .cloned())
    }

    pub(super) async fn is_done(&self, job_id: &str, item_id: &str) -> Result<bool, StoreError> {
        Ok(self.status(job_id, item_id).await?.as_deref() == Some(ItemStatus::Done.name()))
    }

    pub(super) async fn record(
        &self,
        job_id: &str,
        result: &ItemResult,
    ) -> Result<Recorded, StoreError> {
        // Most results are an item's first: try that write before reading.
        let mut guess: Option<Option<String>> = Some(None);
        for _ in 0..RACES {
            let before = match guess.take() {
                Some(guess) => guess,
                None => self.status(job_id, &result.id).await?,
            };
            let (condition, done, failed_delta) = match (before.as_deref(), result.status) {
                (None, ItemStatus::Done) => ("attribute_not_exists(itemId)", 1, 0),
                (None, ItemStatus::Failed) => ("attribute_not_exists(itemId)", 0, 1),
                (Some("failed"), ItemStatus::Done) => ("#s = :failed", 1, -1),
                _ => return Ok(Recorded::Duplicate),
            };
            let mut item = key(job_id, &result.id);
            item.insert("status".into(), s(result.status.name()));
            item.insert("line".into(), s(&result.line()));
            item.insert("costUsd".into(), n(result.cost_usd));
            let mut put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(condition);
            if condition.contains("#s") {
                put = put
                    .expression_attribute_names("#s", "status")
                    .expression_attribute_values(":failed", s(ItemStatus::Failed.name()));
            }
            let update = Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(job_id, META)))
                .update_expression("ADD done :done, failed :failed, costUsd :cost")
                .condition_expression("attribute_exists(jobId)")
                .expression_attribute_values(":done", n(done))
                .expression_attribute_values(":failed", n(failed_delta))
                .expression_attribute_values(":cost", n(result.cost_usd));
            let written = self
                .client
                .transact_write_items()
                .transact_items(
                    TransactWriteItem::builder()
                        .put(put.build().map_err(failed("Put"))?)
                        .build(),
                )
                .transact_items(
                    TransactWriteItem::builder()
                        .update(update.build().map_err(failed("Update"))?)
                        .build(),
                )
                .send()
                .await;
            match written {
                Ok(_) => {
                    return Ok(self
                        .get(job_id)
                        .await?
                        .map_or(Recorded::NoJob, Recorded::First));
                }
                Err(e) => {
                    let reasons: Vec<Option<String>> = e
                        .as_service_error()
                        .filter(|s| s.is_transaction_canceled_exception())
                        .map(|s| match s {
                            aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError::TransactionCanceledException(c) => c
                                .cancellation_reasons()
                                .iter()
                                .map(|r| r.code().map(String::from))
                                .collect(),
                            _ => Vec::new(),
                        })
                        .unwrap_or_default();
                    let conditional = |i: usize| {
                        reasons
                            .get(i)
                            .and_then(Option::as_deref)
                            .is_some_and(|c| c == "ConditionalCheckFailed")
                    };
                    if conditional(1) {
                        return Ok(Recorded::NoJob);
                    }
                    if conditional(0) {
                        // Another worker wrote this item meanwhile: look again.
                        continue;
                    }
                    let conflict = reasons
                        .iter()
                        .flatten()
                        .any(|c| c == "TransactionConflict" || c == "ThrottlingError");
                    if conflict {
                        // Another worker's result counted in the same job at
                        // the same moment: the same write again, shortly (the
                        // answer is kept, not asked again).
                        guess = Some(before);
                        tokio::time::sleep(Duration::from_millis(fastrand::u64(5..=50))).await;
                        continue;
                    }
                    return Err(failed("TransactWriteItems")(e));
                }
            }
        }
        Err(StoreError::Unavailable(format!(
            "the result of {} lost {RACES} races in a row",
            result.id
        )))
    }

    pub(super) async fn results(&self, job_id: &str) -> Result<Vec<ItemResult>, StoreError> {
        let mut results = Vec::new();
        let mut start: Option<HashMap<String, AttributeValue>> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("jobId = :job AND itemId > :meta")
                .expression_attribute_values(":job", s(job_id))
                .expression_attribute_values(":meta", s(META))
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(failed("Query (results)"))?;
            for item in page.items() {
                let line = text(item, "line")?;
                results.push(
                    serde_json::from_str(line)
                        .map_err(|e| StoreError::Corrupt(format!("a result line: {e}")))?,
                );
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => return Ok(results),
            }
        }
    }

    pub(super) async fn claim_notice(
        &self,
        job_id: &str,
        done: u64,
        failed_count: u64,
    ) -> Result<bool, StoreError> {
        // The first callback, or the one after failures were all answered.
        let condition = if failed_count == 0 {
            "attribute_exists(jobId) AND (attribute_not_exists(noticedDone) OR noticedFailed > :zero)"
        } else {
            "attribute_exists(jobId) AND attribute_not_exists(noticedDone)"
        };
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(job_id, META)))
            .update_expression("SET noticedDone = :d, noticedFailed = :f")
            .condition_expression(condition)
            .expression_attribute_values(":d", n(done))
            .expression_attribute_values(":f", n(failed_count));
        if failed_count == 0 {
            update = update.expression_attribute_values(":zero", n(0));
        }
        match update.send().await {
            Ok(_) => Ok(true),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_conditional_check_failed_exception()) =>
            {
                Ok(false)
            }
            Err(e) => Err(failed("UpdateItem (notice)")(e)),
        }
    }
}

/// Creates the jobs table (`jobId` + `itemId`, on demand) and waits until
/// it is active; false when it already existed with that key.
pub async fn create_table(client: &Client, table: &str) -> Result<bool, String> {
    let attribute = |name: &str| {
        AttributeDefinition::builder()
            .attribute_name(name)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| e.to_string())
    };
    let key_part = |name: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(name)
            .key_type(kind)
            .build()
            .map_err(|e| e.to_string())
    };
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(attribute(JOB)?)
        .attribute_definitions(attribute(ITEM)?)
        .key_schema(key_part(JOB, KeyType::Hash)?)
        .key_schema(key_part(ITEM, KeyType::Range)?)
        .send()
        .await;
    let created = match created {
        Ok(_) => true,
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_in_use_exception()) =>
        {
            false
        }
        Err(e) => {
            return Err(format!(
                "cannot create table {table}: {}",
                DisplayErrorContext(&e)
            ));
        }
    };
    for _ in 0..240 {
        let described = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| format!("cannot describe table {table}: {}", DisplayErrorContext(&e)))?;
        let Some(t) = described.table() else { continue };
        let key: Vec<&str> = t.key_schema().iter().map(|k| k.attribute_name()).collect();
        if key != [JOB, ITEM] {
            return Err(format!(
                "table {table} exists with the key {key:?}, not [{JOB:?}, {ITEM:?}]: choose another name"
            ));
        }
        if t.table_status().is_some_and(|s| s.as_str() == "ACTIVE") {
            return Ok(created);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Err(format!("table {table} is not active after 2 minutes"))
}
