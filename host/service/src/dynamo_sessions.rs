//! Sessions in DynamoDB, shared by every replica: one item per session with
//! its owner, its last [`HISTORY_WINDOW`] turns, a version and a TTL
//! attribute. Every write is conditional on the version it read, so two
//! replicas appending to one session at once never lose a turn: the one
//! that loses the race reads again and appends again.
//!
//! Item: `sessionId` (S, the partition key), `owner` (S), `turns` (L of M
//! `{role, content}`), `version` (N), `expiresAt` (N, Unix seconds, the
//! table's TTL attribute: DynamoDB deletes late, so reads check it too).

use std::collections::HashMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TimeToLiveSpecification,
};
use mangaassist_core::body::{HISTORY_WINDOW, Turn};

use crate::aws_stores::describe;
use crate::identity::unix_now;
use crate::store_metrics::{StoreCall, StoreMetrics};

/// The partition key.
const KEY: &str = "sessionId";
/// The TTL attribute.
pub const TTL_ATTRIBUTE: &str = "expiresAt";
/// Reads and conditional writes tried at most when other replicas keep
/// winning the race for one session (each loss means one of them
/// appended, so this bounds the writers one session can have at once).
const ATTEMPTS: u32 = 40;
/// Longest pause between two tries; each pause is random up to a bound
/// that doubles from 2 ms, so racing writers spread out.
const MAX_BACKOFF_MS: u64 = 64;

/// DynamoDB could not be asked (down, slow, refused): the caller decides
/// what the request does without sessions.
#[derive(Debug, thiserror::Error)]
#[error("sessions store unavailable: {message}")]
pub struct Unavailable {
    /// What failed.
    pub message: String,
    /// Whether trying again later can succeed (down, slow, throttled, 5xx)
    /// rather than never (access denied, a table of another shape, an item
    /// DynamoDB refuses).
    pub retryable: bool,
}

impl Unavailable {
    fn retryable(message: String) -> Self {
        Unavailable {
            message,
            retryable: true,
        }
    }

    fn permanent(message: String) -> Self {
        Unavailable {
            message,
            retryable: false,
        }
    }
}

/// One session as stored.
struct Item {
    owner: String,
    turns: Vec<Turn>,
    version: u64,
    expires_at: u64,
}

/// Exchanges waiting for DynamoDB to come back, at most: past it the
/// oldest is dropped (logged and counted), so an outage cannot eat memory.
const MAX_PENDING: usize = 10_000;
/// How often waiting exchanges are retried.
const RETRY_EVERY: Duration = Duration::from_millis(500);

/// An exchange that could not be written yet.
struct Waiting {
    /// Its place in the queue (removal checks it: the entry written is the
    /// one removed, even if the queue moved meanwhile).
    seq: u64,
    session_id: String,
    owner: String,
    exchange: [Turn; 2],
    create: bool,
}

/// The session table and the client that reaches it.
pub struct DynamoSessions {
    client: Client,
    table: String,
    ttl: Duration,
    timeout: Duration,
    metrics: StoreMetrics,
    /// Exchanges answered while DynamoDB was down, oldest first, written
    /// in order when it answers again.
    waiting: std::sync::Mutex<std::collections::VecDeque<Waiting>>,
    next_seq: std::sync::atomic::AtomicU64,
    /// One flush at a time (the periodic one and the one at shutdown).
    flushing: tokio::sync::Mutex<()>,
}

impl DynamoSessions {
    /// Sessions in `table`, each forgotten `ttl` after its last use, each
    /// call bounded by `timeout`.
    pub fn new(
        client: Client,
        table: &str,
        ttl: Duration,
        timeout: Duration,
        metrics: StoreMetrics,
    ) -> Self {
        DynamoSessions {
            client,
            table: table.to_string(),
            ttl,
            timeout,
            metrics,
            waiting: std::sync::Mutex::new(std::collections::VecDeque::new()),
            next_seq: std::sync::atomic::AtomicU64::new(0),
            flushing: tokio::sync::Mutex::new(()),
        }
    }

    fn waiting(&self) -> std::sync::MutexGuard<'_, std::collections::VecDeque<Waiting>> {
        // Each update pushes or pops whole entries: a poisoned queue is valid.
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Exchanges waiting for DynamoDB.
    pub fn waiting_count(&self) -> usize {
        self.waiting().len()
    }

    /// Keeps one exchange: written now, or, while DynamoDB is down (or
    /// earlier exchanges still wait), queued behind the others and written
    /// in order by [`DynamoSessions::retry_waiting`]: an answered turn is
    /// not lost to a store outage. False when a direct write found the
    /// session another identity's (or gone, without `create`); a queued
    /// exchange is checked when it is written.
    pub async fn keep(
        &self,
        session_id: &str,
        owner: &str,
        user: &str,
        assistant: &str,
        create: bool,
    ) -> bool {
        let exchange = [Turn::new("user", user), Turn::new("assistant", assistant)];
        if self.waiting().is_empty() {
            match self
                .append(session_id, owner, [&exchange[0], &exchange[1]], create)
                .await
            {
                Ok(kept) => return kept,
                Err(e) if !e.retryable => {
                    tracing::error!(session_id, error = %e, "DynamoDB refused the exchange; not kept");
                    return true;
                }
                Err(e) => tracing::warn!(
                    session_id,
                    error = %e,
                    "DynamoDB failed: the exchange waits and is written when it answers"
                ),
            }
        }
        let mut waiting = self.waiting();
        if waiting.len() >= MAX_PENDING
            && let Some(dropped) = waiting.pop_front()
        {
            self.metrics.dropped("dynamodb");
            tracing::error!(
                session_id = dropped.session_id,
                "{MAX_PENDING} exchanges already wait for DynamoDB: the oldest is dropped from its session's history"
            );
        }
        waiting.push_back(Waiting {
            seq: self
                .next_seq
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            session_id: session_id.to_string(),
            owner: owner.to_string(),
            exchange,
            create,
        });
        self.metrics.set_waiting(waiting.len());
        true
    }

    /// A copy of the oldest waiting exchange (the lock is not held while
    /// it is written).
    fn oldest_waiting(&self) -> Option<(u64, String, String, [Turn; 2], bool)> {
        self.waiting().front().map(|w| {
            (
                w.seq,
                w.session_id.clone(),
                w.owner.clone(),
                w.exchange.clone(),
                w.create,
            )
        })
    }

    /// Writes waiting exchanges in order until one fails or none is left;
    /// how many were written.
    pub async fn retry_waiting(&self) -> usize {
        let _one_at_a_time = self.flushing.lock().await;
        let mut written = 0;
        while let Some(next) = self.oldest_waiting() {
            let (seq, session_id, owner, exchange, create) = next;
            match self
                .append(&session_id, &owner, [&exchange[0], &exchange[1]], create)
                .await
            {
                Ok(kept) => {
                    if !kept {
                        tracing::warn!(
                            session_id,
                            "a waiting exchange's session is gone or another identity's; not kept"
                        );
                    }
                    written += 1;
                }
                // A refusal that no retry can change must not hold up
                // every exchange behind it.
                Err(e) if !e.retryable => {
                    self.metrics.dropped("dynamodb");
                    tracing::error!(session_id, error = %e, "DynamoDB refused a waiting exchange; not kept");
                }
                Err(_) => break,
            }
            let mut waiting = self.waiting();
            if waiting.front().is_some_and(|w| w.seq == seq) {
                waiting.pop_front();
            }
            self.metrics.set_waiting(waiting.len());
        }
        if written > 0 {
            tracing::info!(
                written,
                left = self.waiting_count(),
                "DynamoDB answers again: waiting exchanges written"
            );
        }
        written
    }

    /// Retries waiting exchanges every [`RETRY_EVERY`] until `stopping`.
    pub fn spawn_retries(
        self: &std::sync::Arc<Self>,
        mut stopping: tokio::sync::watch::Receiver<bool>,
    ) {
        let sessions = std::sync::Arc::clone(self);
        tokio::spawn(async move {
            let mut every = tokio::time::interval(RETRY_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = every.tick() => {}
                    _ = stopping.wait_for(|s| *s) => return,
                }
                if sessions.waiting_count() > 0 {
                    sessions.retry_waiting().await;
                }
            }
        });
    }

    /// Runs one DynamoDB call within the timeout, timed and counted.
    async fn call<T, E>(
        &self,
        operation: &'static str,
        call: impl Future<Output = Result<T, SdkError<E>>>,
    ) -> Result<Result<T, SdkError<E>>, Unavailable>
    where
        E: std::error::Error + ProvideErrorMetadata + 'static,
    {
        let timer = StoreCall::start(&self.metrics, "dynamodb", operation);
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(answer)) => {
                timer.ok();
                Ok(Ok(answer))
            }
            // A refused condition is an answer, not a store failure.
            Ok(Err(e)) if conditional_failed(&e) => {
                timer.ok();
                Ok(Err(e))
            }
            Ok(Err(e)) => {
                timer.failed();
                Err(if retryable(&e) {
                    Unavailable::retryable(describe(&e))
                } else {
                    Unavailable::permanent(describe(&e))
                })
            }
            Err(_) => {
                timer.failed();
                Err(Unavailable::retryable(format!(
                    "{operation} took over {} ms",
                    self.timeout.as_millis()
                )))
            }
        }
    }

    /// The session as stored, expired ones included.
    async fn read(&self, session_id: &str) -> Result<Option<Item>, Unavailable> {
        let answer = self
            .call(
                "get_item",
                self.client
                    .get_item()
                    .table_name(&self.table)
                    .key(KEY, AttributeValue::S(session_id.to_string()))
                    .consistent_read(true)
                    .send(),
            )
            .await?
            .map_err(|e| Unavailable::permanent(describe(&e)))?;
        match answer.item {
            None => Ok(None),
            Some(fields) => decode(&fields).map(Some).ok_or_else(|| {
                Unavailable::permanent(format!("session {session_id}: malformed item"))
            }),
        }
    }

    /// The session's turns, oldest first; `None` when it is unknown,
    /// expired or not `owner`'s.
    pub async fn history(
        &self,
        session_id: &str,
        owner: &str,
    ) -> Result<Option<Vec<Turn>>, Unavailable> {
        let now = unix_now();
        let stored = self
            .read(session_id)
            .await?
            .filter(|item| item.owner == owner && item.expires_at >= now)
            .map(|item| item.turns);
        // Exchanges this replica answered but could not write yet belong
        // to the history too (a session started during an outage exists).
        let (waiting, creates) = {
            let queue = self.waiting();
            let mine = queue
                .iter()
                .filter(|w| w.session_id == session_id && w.owner == owner);
            let creates = mine.clone().any(|w| w.create);
            let turns: Vec<Turn> = mine.flat_map(|w| w.exchange.iter().cloned()).collect();
            (turns, creates)
        };
        if waiting.is_empty() {
            return Ok(stored);
        }
        let mut turns = match stored {
            Some(turns) => turns,
            None if creates => Vec::new(),
            None => return Ok(None),
        };
        turns.extend(waiting);
        let excess = turns.len().saturating_sub(HISTORY_WINDOW);
        turns.drain(..excess);
        Ok(Some(turns))
    }

    /// Appends one exchange, keeping the last [`HISTORY_WINDOW`] turns.
    /// With `create`, a session that does not exist (or expired) is started
    /// for `owner`; without, only an existing one of `owner`'s is extended.
    /// False when the session is another identity's (or, without
    /// `create`, gone).
    pub async fn append(
        &self,
        session_id: &str,
        owner: &str,
        exchange: [&Turn; 2],
        create: bool,
    ) -> Result<bool, Unavailable> {
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                let bound = (1u64 << attempt.min(6)).min(MAX_BACKOFF_MS);
                tokio::time::sleep(Duration::from_millis(fastrand::u64(0..=bound))).await;
            }
            let now = unix_now();
            let current = self.read(session_id).await?;
            let (mut turns, condition, version) = match current {
                Some(item) if item.owner != owner => return Ok(false),
                Some(item) if item.expires_at < now && !create => return Ok(false),
                Some(item) => {
                    let turns = if item.expires_at < now {
                        Vec::new()
                    } else {
                        item.turns
                    };
                    (turns, "#v = :v AND #o = :o", Some(item.version))
                }
                None if !create => return Ok(false),
                None => (Vec::new(), "attribute_not_exists(#k)", None),
            };
            turns.extend(exchange.iter().map(|t| (*t).clone()));
            let excess = turns.len().saturating_sub(HISTORY_WINDOW);
            turns.drain(..excess);
            let next = version.map_or(1, |v| v + 1);
            let mut put = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(encode(
                    session_id,
                    owner,
                    &turns,
                    next,
                    now + self.ttl.as_secs(),
                )))
                .condition_expression(condition);
            put = match version {
                Some(v) => put
                    .expression_attribute_names("#v", "version")
                    .expression_attribute_names("#o", "owner")
                    .expression_attribute_values(":v", AttributeValue::N(v.to_string()))
                    .expression_attribute_values(":o", AttributeValue::S(owner.to_string())),
                None => put.expression_attribute_names("#k", KEY),
            };
            match self.call("put_item", put.send()).await? {
                Ok(_) => return Ok(true),
                // Another replica wrote first: read its turns and try again.
                Err(_) => continue,
            }
        }
        Err(Unavailable::retryable(format!(
            "session {session_id}: {ATTEMPTS} conditional writes lost to concurrent appends"
        )))
    }

    /// Forgets the session; true when it existed, was live and `owner`'s.
    pub async fn clear(&self, session_id: &str, owner: &str) -> Result<bool, Unavailable> {
        let delete = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(KEY, AttributeValue::S(session_id.to_string()))
            .condition_expression("#o = :o AND #e >= :now")
            .expression_attribute_names("#o", "owner")
            .expression_attribute_names("#e", TTL_ATTRIBUTE)
            .expression_attribute_values(":o", AttributeValue::S(owner.to_string()))
            .expression_attribute_values(":now", AttributeValue::N(unix_now().to_string()))
            .send();
        Ok(self.call("delete_item", delete).await?.is_ok())
    }
}

/// Creates the session table (on-demand billing, `sessionId` as its key)
/// and turns on TTL deletion by [`TTL_ATTRIBUTE`]; waits until it is
/// active. An existing table of that name is left as it is.
pub async fn create_table(client: &Client, table: &str) -> Result<bool, String> {
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(KEY)
                .attribute_type(ScalarAttributeType::S)
                .build()
                .map_err(|e| e.to_string())?,
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name(KEY)
                .key_type(KeyType::Hash)
                .build()
                .map_err(|e| e.to_string())?,
        )
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
        Err(e) => return Err(format!("cannot create table {table}: {}", describe(&e))),
    };
    let mut active = false;
    for _ in 0..240 {
        let described = client
            .describe_table()
            .table_name(table)
            .send()
            .await
            .map_err(|e| format!("cannot describe table {table}: {}", describe(&e)))?;
        let Some(t) = described.table() else { continue };
        let key: Vec<&str> = t.key_schema().iter().map(|k| k.attribute_name()).collect();
        if key != [KEY] {
            return Err(format!(
                "table {table} exists with the key {key:?}, not [{KEY:?}]: choose another name"
            ));
        }
        if t.table_status().is_some_and(|s| s.as_str() == "ACTIVE") {
            active = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if !active {
        return Err(format!("table {table} is not active after 2 minutes"));
    }
    client
        .update_time_to_live()
        .table_name(table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name(TTL_ATTRIBUTE)
                .build()
                .map_err(|e| e.to_string())?,
        )
        .send()
        .await
        .map(|_| ())
        .or_else(|e| {
            // Already on (a second run): checked below.
            let already = e
                .as_service_error()
                .and_then(|s| s.meta().message())
                .is_some_and(|m| m.contains("already enabled"));
            if already {
                Ok(())
            } else {
                Err(format!(
                    "cannot turn on TTL for table {table}: {}",
                    describe(&e)
                ))
            }
        })?;
    let ttl = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| format!("cannot read the TTL of table {table}: {}", describe(&e)))?;
    let attribute = ttl
        .time_to_live_description()
        .and_then(|d| d.attribute_name());
    if attribute != Some(TTL_ATTRIBUTE) {
        return Err(format!(
            "table {table} expires items by {attribute:?}, not {TTL_ATTRIBUTE:?}: sessions would never be deleted"
        ));
    }
    Ok(created)
}

fn conditional_failed<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
    e.code() == Some("ConditionalCheckFailedException")
}

/// Whether a failed call may succeed later: no answer at all, throttling,
/// or a server-side error; a client error (denied, bad table, item too
/// large) will not.
fn retryable<E: ProvideErrorMetadata>(e: &SdkError<E>) -> bool {
    match e {
        SdkError::ConstructionFailure(_) => false,
        SdkError::ServiceError(_) => {
            let throttled = matches!(
                e.code(),
                Some(
                    "ThrottlingException"
                        | "ProvisionedThroughputExceededException"
                        | "RequestLimitExceeded"
                        | "InternalServerError"
                )
            );
            let server = e.raw_response().is_some_and(|r| r.status().as_u16() >= 500);
            throttled || server
        }
        _ => true,
    }
}

fn encode(
    session_id: &str,
    owner: &str,
    turns: &[Turn],
    version: u64,
    expires_at: u64,
) -> HashMap<String, AttributeValue> {
    let turns = turns
        .iter()
        .map(|t| {
            AttributeValue::M(HashMap::from([
                ("role".to_string(), AttributeValue::S(t.role.clone())),
                ("content".to_string(), AttributeValue::S(t.content.clone())),
            ]))
        })
        .collect();
    HashMap::from([
        (KEY.to_string(), AttributeValue::S(session_id.to_string())),
        ("owner".to_string(), AttributeValue::S(owner.to_string())),
        ("turns".to_string(), AttributeValue::L(turns)),
        (
            "version".to_string(),
            AttributeValue::N(version.to_string()),
        ),
        (
            TTL_ATTRIBUTE.to_string(),
            AttributeValue::N(expires_at.to_string()),
        ),
    ])
}

fn decode(fields: &HashMap<String, AttributeValue>) -> Option<Item> {
    let number = |name: &str| fields.get(name)?.as_n().ok()?.parse::<u64>().ok();
    let turns = fields
        .get("turns")?
        .as_l()
        .ok()?
        .iter()
        .map(|t| {
            let t = t.as_m().ok()?;
            Some(Turn::new(
                t.get("role")?.as_s().ok()?,
                t.get("content")?.as_s().ok()?,
            ))
        })
        .collect::<Option<Vec<Turn>>>()?;
    Some(Item {
        owner: fields.get("owner")?.as_s().ok()?.clone(),
        turns,
        version: number("version")?,
        expires_at: number(TTL_ATTRIBUTE)?,
    })
}
