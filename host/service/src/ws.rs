//! GET /v1/ws: the same requests as POST /v1/chat, one JSON text frame each,
//! answered in order. A sendMessage reply streams as `delta` frames, then
//! every request gets one `response` frame with the HTTP status and body the
//! sync API would have given:
//!
//! ```text
//! → {"action":"sendMessage","data":{"message":"..."}}
//! ← {"type":"delta","text":"..."}            (zero or more)
//! ← {"type":"response","status":200,"body":{...}}
//! ```

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, close_code};
use axum::extract::{ConnectInfo, Extension, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

use crate::app::Service;
use crate::chat::{self, Incoming};
use crate::conn::Conn;
use crate::errors::ApiError;
use crate::identity::Identity;
use crate::outcome::record_error;

/// A frame the server sends.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "camelCase")]
enum Frame<'a> {
    /// A piece of the reply, in order.
    Delta { text: &'a str },
    /// The request's outcome.
    Response { status: u16, body: Value },
}

/// Query parameters of the upgrade: browsers cannot set headers on a
/// WebSocket, so a user token may come as `?token=`.
#[derive(Deserialize)]
pub struct UpgradeQuery {
    token: Option<String>,
}

/// Accepts the upgrade from an allowed `Origin` and a known caller. Frames
/// and messages are bounded (32 KB and 128 KB by default, API Gateway's
/// figures): a message over the request body limit but within these gets
/// a 413 answer; past them the connection is closed (1009).
pub async fn upgrade(
    State(svc): State<Arc<Service>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    conn: Option<Extension<Conn>>,
    Query(query): Query<UpgradeQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let started = Instant::now();
    let refuse = |e: ApiError| {
        record_error(&svc, "ws", started, &e);
        e.into_response()
    };
    if !origin_allowed(&svc, &headers) {
        return refuse(ApiError::new(
            StatusCode::FORBIDDEN,
            "origin_not_allowed",
            "WebSockets are accepted from this site's own pages and allowed_origins only",
        ));
    }
    let identity = match svc.identify(&headers, peer, query.token.as_deref()).await {
        Ok(identity) => identity,
        Err(e) => return refuse(e),
    };
    let max_message = svc.config.ws_max_message_bytes;
    let max_frame = svc.config.ws_max_frame_bytes;
    let svc = Arc::clone(&svc);
    ws.max_message_size(max_message)
        .max_frame_size(max_frame)
        .on_upgrade(move |socket| connection(svc, socket, identity, conn.map(|c| c.0)))
}

/// A browser's `Origin` must be the page's own (same host) or listed; a
/// request without one is not from a browser page and passes.
fn origin_allowed(svc: &Service, headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    if svc.config.allowed_origins.iter().any(|o| o == origin) {
        return true;
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok());
    let authority = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"));
    match (authority, host) {
        (Some(authority), Some(host)) => authority.eq_ignore_ascii_case(host),
        _ => false,
    }
}

/// Why the server closes a WebSocket.
fn close(code: u16, reason: &'static str) -> Message {
    Message::Close(Some(CloseFrame {
        code,
        reason: Utf8Bytes::from_static(reason),
    }))
}

async fn connection(
    svc: Arc<Service>,
    mut socket: WebSocket,
    identity: Identity,
    conn: Option<Conn>,
) {
    let config = &svc.config;
    let opened = tokio::time::Instant::now();
    let mut lifetime = Duration::from_millis(config.ws_max_lifetime_ms);
    if let Some(expires) = identity.expires_at {
        lifetime = lifetime.min(Duration::from_secs(
            expires.saturating_sub(crate::identity::unix_now()),
        ));
    }
    let end_of_life = opened + lifetime;
    let idle = Duration::from_millis(config.ws_idle_timeout_ms);
    let mut last_request = opened;
    let ping_every = Duration::from_millis(config.ws_ping_interval_ms);
    let mut ping = tokio::time::interval_at(opened + ping_every, ping_every);
    // Ticks missed while answering are not made up in a burst.
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut awaiting_pong = false;
    let mut stopping = svc.stopping.clone();
    let evicted = async {
        match &conn {
            Some(conn) => conn.closed().await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(evicted);
    loop {
        let message = tokio::select! {
            m = socket.recv() => m,
            _ = ping.tick() => {
                if awaiting_pong {
                    let _ = socket.send(close(close_code::AWAY, "no answer to ping")).await;
                    return;
                }
                awaiting_pong = true;
                if socket.send(Message::Ping(Bytes::new())).await.is_err() {
                    return;
                }
                continue;
            }
            () = tokio::time::sleep_until(last_request + idle) => {
                let _ = socket.send(close(close_code::NORMAL, "idle")).await;
                return;
            }
            () = tokio::time::sleep_until(end_of_life) => {
                let why = if identity.expires_at.is_some() && lifetime < Duration::from_millis(config.ws_max_lifetime_ms) {
                    (close_code::POLICY, "user token expired")
                } else {
                    (close_code::AWAY, "connection lifetime reached")
                };
                let _ = socket.send(close(why.0, why.1)).await;
                return;
            }
            () = stopped(&mut stopping) => {
                let _ = socket.send(close(close_code::AWAY, "server shutting down")).await;
                return;
            }
            () = &mut evicted => {
                let _ = socket.send(close(close_code::AGAIN, "server at its connection limit")).await;
                return;
            }
        };
        let body = match message {
            Some(Ok(Message::Text(text))) => Ok(Bytes::copy_from_slice(text.as_bytes())),
            Some(Ok(Message::Binary(_))) => Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send each request as a JSON text frame",
            )),
            Some(Ok(Message::Pong(_))) => {
                awaiting_pong = false;
                continue;
            }
            Some(Ok(Message::Ping(_))) => continue,
            Some(Err(e)) => {
                // Over the frame or message limit, or broken framing.
                tracing::debug!(error = %e, "WebSocket closed on a bad frame");
                let _ = socket
                    .send(close(
                        close_code::SIZE,
                        "frame or message too large or malformed",
                    ))
                    .await;
                return;
            }
            Some(Ok(Message::Close(_))) | None => return,
        };
        // Any request shows the client is there.
        awaiting_pong = false;
        let _busy = conn.as_ref().map(Conn::busy);
        let body = match body {
            // A refused frame still counts against the client's rate.
            Err(e) => match svc.admit(&identity.label).await {
                Ok(()) => Err(e),
                Err(limited) => Err(ApiError::from(limited)),
            },
            Ok(bytes) => Ok(bytes),
        };
        if answer(&svc, &mut socket, &identity, body).await.is_err() {
            return;
        }
        last_request = tokio::time::Instant::now();
        // The client was busy with our answer: a full interval before the
        // next ping is due.
        ping.reset();
    }
}

/// Runs one request, forwarding reply text as it streams in.
async fn answer(
    svc: &Service,
    socket: &mut WebSocket,
    identity: &Identity,
    body: Result<Bytes, ApiError>,
) -> Result<(), axum::Error> {
    let started = Instant::now();
    let result = match body {
        Err(e) => Err(e),
        Ok(bytes) => {
            let (tx, mut rx) = mpsc::unbounded_channel::<String>();
            let mut sink = move |text: &str| {
                // The receiver outlives the request; a send cannot fail here.
                let _ = tx.send(text.to_string());
            };
            let incoming = Incoming {
                identity: identity.clone(),
                content_type: None,
                body: Ok(bytes),
            };
            let deadline = started + Duration::from_millis(svc.config.stream_budget_ms);
            let work = chat::handle(svc, incoming, deadline, Some(&mut sink));
            tokio::pin!(work);
            let result = loop {
                tokio::select! {
                    biased;
                    Some(text) = rx.recv() => send(socket, &Frame::Delta { text: &text }).await?,
                    result = &mut work => break result,
                }
            };
            while let Ok(text) = rx.try_recv() {
                send(socket, &Frame::Delta { text: &text }).await?;
            }
            result
        }
    };
    let (status, body) = match result {
        Ok(answer) => {
            svc.metrics.request("ws", 200, started.elapsed());
            (200, serde_json::to_value(&answer).unwrap_or(Value::Null))
        }
        Err(e) => {
            record_error(svc, "ws", started, &e);
            (
                e.status.as_u16(),
                serde_json::to_value(e.body()).unwrap_or(Value::Null),
            )
        }
    };
    send(socket, &Frame::Response { status, body }).await
}

/// Resolves once the server starts shutting down.
async fn stopped(stopping: &mut tokio::sync::watch::Receiver<bool>) {
    // The guard wait_for returns is not Send: drop it here.
    let _ = stopping.wait_for(|s| *s).await;
}

async fn send(socket: &mut WebSocket, frame: &Frame<'_>) -> Result<(), axum::Error> {
    let text = serde_json::to_string(frame).map_err(axum::Error::new)?;
    socket.send(Message::Text(Utf8Bytes::from(text))).await
}
