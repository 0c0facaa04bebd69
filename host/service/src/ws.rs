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

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::mpsc;

use crate::app::Service;
use crate::chat::{self, Incoming};
use crate::errors::ApiError;
use crate::limits::client_id;
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

/// Accepts the upgrade; frames may be larger than a request so an oversize
/// one is answered with 413 instead of dropping the connection.
pub async fn upgrade(
    State(svc): State<Arc<Service>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let client = client_id(&headers, peer, &svc.config.api_keys);
    let max = svc.config.max_body_bytes.saturating_mul(4);
    ws.max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| connection(svc, socket, client))
}

async fn connection(svc: Arc<Service>, mut socket: WebSocket, client: String) {
    let mut stopping = svc.stopping.clone();
    loop {
        let message = tokio::select! {
            m = socket.recv() => m,
            () = stopped(&mut stopping) => {
                let _ = socket.send(Message::Close(None)).await;
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
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            Some(Ok(Message::Close(_)) | Err(_)) | None => return,
        };
        if answer(&svc, &mut socket, &client, body).await.is_err() {
            return;
        }
    }
}

/// Runs one request, forwarding reply text as it streams in.
async fn answer(
    svc: &Service,
    socket: &mut WebSocket,
    client: &str,
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
                client: client.to_string(),
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
