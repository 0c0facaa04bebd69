//! The request path, top to bottom: every step a chat request goes through,
//! and the status it gets when a step refuses it (SPEC 10). HTTP and
//! WebSocket both come here; they differ only in how bytes arrive and
//! whether the answer is streamed.

use std::time::Instant;

use axum::http::StatusCode;
use bytes::Bytes;
use mangaassist_bedrock::invoker::{Candidate, Usage};
use mangaassist_core::api::{Action, BodyInput, BodyReport, Screening, body_report_for};
use mangaassist_core::body::Turn;
use mangaassist_core::models::ModelPreference;
use mangaassist_core::spend::{SpendEstimate, estimate_spend, spend_with_input};
use serde::Serialize;

use crate::app::Service;
use crate::cache::{CachedReply, Flight};
use crate::config::CacheScope;
use crate::errors::ApiError;
use crate::identity::Identity;
use crate::limits::whole_secs;

/// How a request arrived.
pub struct Incoming {
    /// Who sent it (authenticated before the request gets here): the key of
    /// its limits and budgets and the owner of its sessions.
    pub identity: Identity,
    /// `Content-Type` of an HTTP request; `None` for a WebSocket text frame
    /// (JSON by the protocol's definition).
    pub content_type: Option<ContentType>,
    /// The body as read, or why it could not be.
    pub body: Result<Bytes, BodyError>,
}

/// The HTTP `Content-Type` header, as sent.
pub enum ContentType {
    /// No header.
    Missing,
    /// A header (possibly not text).
    Value(Vec<u8>),
}

/// Why a request body could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Over the size limit (declared or sent).
    TooLarge,
    /// Not complete within the time budget.
    Timeout,
    /// The connection ended or broke mid-body.
    Incomplete,
}

/// A successful answer (HTTP 200).
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Answer {
    /// sendMessage.
    Reply(ReplyAnswer),
    /// getHistory.
    History {
        /// The session.
        #[serde(rename = "sessionId")]
        session_id: String,
        /// Its turns, oldest first.
        turns: Vec<Turn>,
    },
    /// clearSession.
    Cleared {
        /// The session.
        #[serde(rename = "sessionId")]
        session_id: String,
        /// Always true: a session that is not the caller's is a 404.
        cleared: bool,
    },
}

/// The answer to a message.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplyAnswer {
    /// The session (issued by the server when the request named none).
    pub session_id: String,
    /// The assistant's text.
    pub reply: String,
    /// Catalog key of the model that answered (the fallback's, when it did).
    pub model: String,
    /// Bedrock id of the model that answered.
    pub model_id: String,
    /// Region that answered.
    pub region: String,
    /// Tokens in and out, as the model reported them.
    pub usage: UsageAnswer,
    /// Cost of this call in USD (0 for a cache hit: no call was made).
    pub cost_usd: f64,
    /// Whether the answer came from the response cache.
    pub cached: bool,
    /// SPEC 7 key of the body sent to the model that answered.
    pub cache_key: String,
}

/// Token usage, camelCase.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageAnswer {
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
}

impl From<Usage> for UsageAnswer {
    fn from(u: Usage) -> Self {
        UsageAnswer {
            input_tokens: u.input_tokens,
            output_tokens: u.output_tokens,
        }
    }
}

/// Where a streamed answer's text goes as it arrives (WebSocket); `None`
/// answers in one piece.
pub type Sink<'a> = Option<&'a mut (dyn FnMut(&str) + Send)>;

/// Runs one request through every step. `deadline` bounds the whole request.
pub async fn handle(
    svc: &Service,
    incoming: Incoming,
    deadline: Instant,
    sink: Sink<'_>,
) -> Result<Answer, ApiError> {
    // 1. Rate limits: per identity, then overall (429 + Retry-After).
    let identity = incoming.identity;
    svc.admit(&identity.label).await?;

    // 2. The body arrived whole and within 64 KiB (413; 408 when too slow).
    let bytes = incoming.body.map_err(|e| body_error(e, svc))?;
    if bytes.len() > svc.config.max_body_bytes {
        return Err(body_error(BodyError::TooLarge, svc));
    }

    // 3. It says it is JSON (415).
    if let Some(content_type) = &incoming.content_type {
        check_content_type(content_type)?;
    }

    // 4. It is UTF-8 text (400).
    let text = String::from_utf8(Vec::from(bytes)).map_err(|e| {
        ApiError::bad_request("invalid_utf8", format!("the body is not UTF-8: {e}"))
    })?;

    // 5. The sandboxed policy screens it in one call, in the core's order:
    //    JSON and the SPEC 2 contract (400, every violation listed), then
    //    for a message its checks and what is left after sanitizing (422).
    let request = match svc
        .with_policy(move |sandbox| sandbox.screen(&text))
        .await?
    {
        Screening::Accepted(request) => request,
        Screening::Invalid { code, message } => return Err(ApiError::bad_request(&code, message)),
        Screening::Contract {
            violations,
            omitted,
        } => {
            let listed = violations.len();
            let message = match omitted {
                0 => format!("the request breaks the chat contract in {listed} place(s)"),
                n => format!(
                    "the request breaks the chat contract in {} places; the first {listed} are listed, {n} left out",
                    listed as u64 + n
                ),
            };
            return Err(
                ApiError::bad_request("contract_violation", message).with_details(&violations)
            );
        }
        Screening::Refused(refusal) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                &refusal.code,
                refusal.detail,
            ));
        }
    };

    // 6. Sessions are the identity's own: another's, like an unknown or
    //    expired one, is 404 (whether it exists is not told). Ids are
    //    issued by the server: a sendMessage naming an id it never issued
    //    (a client-chosen one) is the same 404.
    let owner = &*identity.label;
    match (request.action, request.session_id) {
        (Action::GetHistory, Some(session_id)) => {
            let turns = svc
                .sessions
                .history(&session_id, owner)
                .await
                .map_err(sessions_unavailable)?
                .ok_or_else(session_not_found)?;
            Ok(Answer::History { session_id, turns })
        }
        (Action::ClearSession, Some(session_id)) => {
            if !svc
                .sessions
                .clear(&session_id, owner)
                .await
                .map_err(sessions_unavailable)?
            {
                return Err(session_not_found());
            }
            Ok(Answer::Cleared {
                session_id,
                cleared: true,
            })
        }
        (Action::SendMessage, session_id) => {
            let (session_id, history, create) = match session_id {
                Some(id) => match svc.sessions.history(&id, owner).await {
                    Ok(history) => (id, history.ok_or_else(session_not_found)?, false),
                    // The shared store is down: answered without the
                    // history rather than not at all; the exchange is kept
                    // for an existing session of the caller's only (a
                    // client-chosen id cannot start one this way).
                    Err(e) => {
                        tracing::warn!(session_id = id, error = %e, "answering without the session's history");
                        (id, Vec::new(), false)
                    }
                },
                None => (uuid::Uuid::new_v4().to_string(), Vec::new(), true),
            };
            let message = Message {
                session_id,
                create,
                history,
                text: request.message,
                preference: request.model_preference,
            };
            send_message(svc, &identity, message, deadline, sink).await
        }
        // The contract requires a sessionId for these; kept total anyway.
        (Action::GetHistory | Action::ClearSession, None) => Err(ApiError::bad_request(
            "contract_violation",
            "this action needs data.sessionId",
        )),
    }
}

/// The shared session store did not answer (a read must not guess).
fn sessions_unavailable(e: crate::sessions::Unavailable) -> ApiError {
    tracing::warn!(error = %e, "session store unavailable");
    let mut e = ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "sessions_unavailable",
        "the session store is not answering; try again shortly (sending messages still works)",
    );
    e.retry_after = Some(1);
    e
}

fn session_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "session_not_found",
        "no such session for this client (sessions expire after a time without use; start a new one by sending a message without a sessionId)",
    )
}

/// A message to answer, in its session.
struct Message {
    session_id: String,
    /// Whether the session is new (its id issued by this request).
    create: bool,
    history: Vec<Turn>,
    text: String,
    preference: ModelPreference,
}

/// Steps 7 to 11 of a message: model, bodies, cache, budgets, Bedrock,
/// session.
async fn send_message(
    svc: &Service,
    identity: &Identity,
    message: Message,
    deadline: Instant,
    sink: Sink<'_>,
) -> Result<Answer, ApiError> {
    let Message {
        session_id,
        create,
        history,
        text: message,
        preference: model_preference,
    } = message;
    if model_preference == ModelPreference::Quality && !identity.allowance.allow_quality {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "quality_not_allowed",
            "modelPreference \"quality\" is not enabled for this client; send auto or fast",
        ));
    }
    // 7. Model selection and a Claude body (and cache key) for the selected
    //    model and for the fallback model, each with its own settings.
    let input = BodyInput {
        message: message.clone(),
        history,
        system: None,
        max_tokens: None,
        temperature: None,
        model_preference,
        catalog: None,
    };
    let internal = |e: mangaassist_core::Error| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.code(), e.message())
    };
    let selected = svc
        .catalog
        .choice(model_preference, &message)
        .map_err(internal)?
        .key;
    let models = svc.models(&selected);
    let prepared: Vec<BodyReport> = models
        .iter()
        .map(|(key, _)| body_report_for(&svc.catalog, key, &input))
        .collect::<Result<_, _>>()
        .map_err(internal)?;
    let first = prepared.first().ok_or_else(no_model)?;

    // 8. The response cache (TTL 300 s): the selected model's answer to
    //    its body, else a fallback's to its own (so repeats are answered
    //    while the selected model is down), labelled with the model that
    //    gave it. A hit answers without Bedrock and spends no budget.
    //    Shared by default: a hit tells only that the same body (message
    //    and prior turns) was answered within the TTL (SECURITY.md).
    let scope = match svc.config.cache_scope {
        CacheScope::Shared => "",
        CacheScope::Identity => &identity.label,
    };
    let mut hit = None;
    for p in &prepared {
        if let Some(found) = svc.cache.get(scope, &p.model.key, &p.cache_key).await {
            hit = Some((p, found));
            break;
        }
    }
    if let Some((answered, hit)) = hit {
        return Ok(cached_answer(
            svc,
            identity,
            (session_id, create),
            &message,
            answered,
            &hit,
            sink,
        )
        .await);
    }

    // 8b. Single flight: with a shared cache, the first replica to miss
    //     this body calls Bedrock and the others wait for its answer (as
    //     long as the request's budget allows), so a burst of identical
    //     misses anywhere in the fleet makes one call.
    let wait = deadline.saturating_duration_since(Instant::now());
    let _flight = match svc
        .cache
        .lead_or_wait(scope, &first.model.key, &first.cache_key, wait)
        .await
    {
        Flight::Hit(hit) => {
            return Ok(cached_answer(
                svc,
                identity,
                (session_id, create),
                &message,
                first,
                &hit,
                sink,
            )
            .await);
        }
        Flight::Lead(guard) => guard,
    };
    svc.metrics.cache(false);

    // 9. Upstream capacity: every region cooling down answers 503 at once
    //    (until the first cooldown ends), as does a full set of calls in
    //    flight; nothing queues up behind a dead upstream.
    if let Some(wait) = svc.invoker.health().all_cooling() {
        let secs = whole_secs(wait);
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "regions_cooling_down",
            format!("every region is cooling down after failures; retry in {secs} s"),
        );
        e.retry_after = Some(secs);
        return Err(e);
    }
    let Ok(_upstream) = svc.upstream_slots.clone().try_acquire_owned() else {
        let mut e = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream_busy",
            format!(
                "{} calls to Bedrock are already in flight; retry shortly",
                svc.config.max_upstream_calls
            ),
        );
        e.retry_after = Some(1);
        return Err(e);
    };

    // 10. Spend budgets: the most this call can cost (the larger of the
    //     selected and fallback bodies), reserved now, settled below with
    //     what the model reported (429 naming the budget).
    //     With `count_tokens`, the input is Bedrock's exact count (the
    //     selected and fallback bodies counted at once), else the estimate.
    let remaining = deadline.saturating_duration_since(Instant::now());
    let counts = futures_util::future::join_all(
        prepared
            .iter()
            .zip(&models)
            .map(|(p, (_, spec))| svc.exact_input(spec, &p.cache_key, &p.body, remaining)),
    )
    .await;
    let most = prepared
        .iter()
        .zip(&models)
        .zip(counts)
        .map(|((p, (_, spec)), exact)| match exact {
            Some(input_tokens) => spend_with_input(spec, &p.body, input_tokens),
            None => estimate_spend(spec, &p.body),
        })
        .reduce(SpendEstimate::max)
        .ok_or_else(no_model)?;
    let reservation = svc.reserve(identity, &most).await?;

    // 11. Bedrock, with regional failover and the fallback model (503 when
    //     every region failed, 504 past the budget).
    let candidates: Vec<Candidate<'_>> = prepared
        .iter()
        .zip(&models)
        .map(|(p, (_, model))| Candidate {
            model,
            body: &p.body,
        })
        .collect();
    let budget = deadline.saturating_duration_since(Instant::now());
    let outcome = match sink {
        Some(sink) => {
            svc.invoker
                .invoke_stream(&candidates, budget, |t| sink(t))
                .await
        }
        None => svc.invoker.invoke(&candidates, budget).await,
    };
    let (used, usd) = match &outcome {
        Ok(reply) => (reply.usage, reply.cost_usd),
        Err(e) => (e.spent().usage, e.spent().cost_usd),
    };
    svc.settle(reservation, used.input_tokens + used.output_tokens, usd)
        .await;
    let reply = outcome.map_err(|e| {
        svc.metrics.region_failures(e.failures());
        svc.metrics.spent(e.spent());
        ApiError::from(&e)
    })?;
    svc.metrics.reply(&reply);

    // 12. Remember the answer under the key of the body the answering model
    //     was sent (a fallback's answer never poses as the selected model's),
    //     and the exchange in the session.
    let answered = prepared.get(reply.candidate).unwrap_or(first);
    // A single call's reported input is a sample for the calibrated
    // estimator (a continued stream's usage sums several bodies).
    if reply.failures.is_empty() {
        svc.estimator
            .observe(&answered.body, reply.usage.input_tokens);
    }
    svc.cache
        .insert(
            scope,
            &answered.model.key,
            &answered.cache_key,
            CachedReply {
                text: reply.text.clone(),
                model_id: reply.model_id.clone(),
                region: reply.region.clone(),
                usage: reply.usage,
            },
        )
        .await;
    remember(svc, (&session_id, create), identity, &message, &reply.text).await;
    Ok(Answer::Reply(ReplyAnswer {
        session_id,
        reply: reply.text,
        model: answered.model.key.clone(),
        model_id: reply.model_id,
        region: reply.region,
        usage: reply.usage.into(),
        cost_usd: reply.cost_usd,
        cached: false,
        cache_key: answered.cache_key.clone(),
    }))
}

/// No model in the catalog to ask: a configuration defect, not the client's.
fn no_model() -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "unknown_model",
        "no model to ask",
    )
}

/// The answer a cache hit gives: the cached text, no cost, in the session.
async fn cached_answer(
    svc: &Service,
    identity: &Identity,
    (session_id, create): (String, bool),
    message: &str,
    answered: &BodyReport,
    hit: &CachedReply,
    sink: Sink<'_>,
) -> Answer {
    svc.metrics.cache(true);
    if let Some(sink) = sink {
        sink(&hit.text);
    }
    remember(svc, (&session_id, create), identity, message, &hit.text).await;
    Answer::Reply(ReplyAnswer {
        session_id,
        reply: hit.text.clone(),
        model: answered.model.key.clone(),
        model_id: hit.model_id.clone(),
        region: hit.region.clone(),
        usage: hit.usage.into(),
        cost_usd: 0.0,
        cached: true,
        cache_key: answered.cache_key.clone(),
    })
}

/// Appends the exchange to the identity's session.
async fn remember(
    svc: &Service,
    session: (&str, bool),
    identity: &Identity,
    user: &str,
    assistant: &str,
) {
    let (session_id, create) = session;
    if !svc
        .sessions
        .append(session_id, &identity.label, user, assistant, create)
        .await
    {
        // The session expired, was cleared or is gone meanwhile (or, for
        // a new id, a UUID v4 collision between two identities).
        tracing::warn!(
            session_id,
            "session gone or another identity's; exchange not kept"
        );
    }
}

fn body_error(e: BodyError, svc: &Service) -> ApiError {
    match e {
        BodyError::TooLarge => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body_too_large",
            format!(
                "the request body is over {} bytes",
                svc.config.max_body_bytes
            ),
        ),
        BodyError::Timeout => ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "body_timeout",
            format!(
                "the request body did not arrive within {} ms",
                svc.config.sync_budget_ms
            ),
        ),
        BodyError::Incomplete => {
            ApiError::bad_request("body_incomplete", "the request body ended early")
        }
    }
}

/// `application/json`, with or without parameters (a charset other than
/// UTF-8 is refused: the body must be UTF-8).
pub(crate) fn check_content_type(content_type: &ContentType) -> Result<(), ApiError> {
    let refuse = |what: String| {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("send the request as application/json (UTF-8); got {what}"),
        )
    };
    let value = match content_type {
        ContentType::Missing => return Err(refuse("no Content-Type".into())),
        ContentType::Value(v) => String::from_utf8_lossy(v).to_ascii_lowercase(),
    };
    let mut parts = value.split(';').map(str::trim);
    let essence = parts.next().unwrap_or_default();
    if essence != "application/json" {
        return Err(refuse(format!("Content-Type {essence:?}")));
    }
    for param in parts {
        if let Some(charset) = param.strip_prefix("charset=") {
            let charset = charset.trim_matches('"');
            if charset != "utf-8" && charset != "utf8" {
                return Err(refuse(format!("charset {charset:?}")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    fn ct(v: &str) -> ContentType {
        ContentType::Value(v.as_bytes().to_vec())
    }

    #[test]
    fn json_content_types_pass_and_others_are_named() {
        assert!(check_content_type(&ct("application/json")).is_ok());
        assert!(check_content_type(&ct("Application/JSON; charset=UTF-8")).is_ok());
        for bad in ["text/plain", "application/json; charset=latin1", "json", ""] {
            let e = check_content_type(&ct(bad)).unwrap_err();
            assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{bad}");
        }
        assert!(check_content_type(&ContentType::Missing).is_err());
    }
}
