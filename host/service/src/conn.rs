//! Connections at the edge: our own accept loop over hyper (axum's `serve`
//! gives hyper no timer, so no header timeout), with a header-read timeout,
//! a header size limit (431), an idle (read) and a write timeout on the
//! socket, and a cap on open connections. At the cap the connection idle
//! the longest (between requests, or still sending headers) is closed to
//! make room, so idle and slow sockets cannot lock everyone out; only when
//! every connection is busy is the new one turned away.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tokio_io_timeout::TimeoutStream;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

/// What bounds a connection.
#[derive(Debug, Clone, Copy)]
pub struct ConnLimits {
    /// Open connections at most.
    pub max_connections: usize,
    /// Time to send a request's headers (and, on keep-alive, the next one).
    pub header_timeout: Duration,
    /// Longest a read may wait for a byte.
    pub idle_timeout: Duration,
    /// Longest a write may wait for the client to read.
    pub write_timeout: Duration,
    /// Request line and headers, bytes.
    pub max_header_bytes: usize,
}

/// One open connection's state, shared by its task and its requests.
struct State {
    id: u64,
    /// Requests (or WebSocket frames) being answered.
    busy: AtomicUsize,
    /// When it last became idle, ms since the tracker's start.
    idle_since: AtomicU64,
    /// Cancelled to close it.
    close: CancellationToken,
}

/// Open connections, for the cap and for draining at shutdown.
pub struct Tracker {
    open: Mutex<HashMap<u64, Arc<State>>>,
    next_id: AtomicU64,
    max: usize,
    started: Instant,
    emptied: Notify,
    evicted: AtomicU64,
    refused: AtomicU64,
}

/// A handle on one tracked connection; the connection leaves the tracker
/// when the last handle is dropped (a WebSocket keeps one after upgrade).
#[derive(Clone)]
pub struct Conn(Arc<Handle>);

struct Handle {
    state: Arc<State>,
    tracker: Arc<Tracker>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let mut open = self.tracker.lock();
        open.remove(&self.state.id);
        if open.is_empty() {
            self.tracker.emptied.notify_waiters();
        }
    }
}

/// Marks a connection busy while alive.
pub struct Busy(Conn);

impl Drop for Busy {
    fn drop(&mut self) {
        let state = &self.0.0.state;
        state
            .idle_since
            .store(self.0.0.tracker.now_ms(), Ordering::Relaxed);
        state.busy.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Conn {
    /// Busy until the guard is dropped: not closed to make room.
    pub fn busy(&self) -> Busy {
        self.0.state.busy.fetch_add(1, Ordering::AcqRel);
        Busy(self.clone())
    }

    /// Resolves when the connection is to be closed (to make room).
    pub async fn closed(&self) {
        self.0.state.close.cancelled().await;
    }
}

impl Tracker {
    /// A tracker allowing `max` open connections.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Tracker {
            open: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            max: max.max(1),
            started: Instant::now(),
            emptied: Notify::new(),
            evicted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Arc<State>>> {
        self.open
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().len()
    }

    /// Connections closed to make room, and refused because all were busy.
    pub fn turned_away(&self) -> (u64, u64) {
        (
            self.evicted.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
        )
    }

    /// Registers a new connection, closing the longest-idle one at the cap;
    /// `None` when every open connection is busy.
    fn admit(self: &Arc<Self>) -> Option<Conn> {
        let mut open = self.lock();
        if open.len() >= self.max {
            let victim = open
                .values()
                .filter(|s| s.busy.load(Ordering::Acquire) == 0 && !s.close.is_cancelled())
                .min_by_key(|s| s.idle_since.load(Ordering::Relaxed))
                .map(Arc::clone);
            match victim {
                Some(victim) => {
                    victim.close.cancel();
                    // Out of the count now; its task ends on its own.
                    open.remove(&victim.id);
                    self.evicted.fetch_add(1, Ordering::Relaxed);
                }
                None => {
                    self.refused.fetch_add(1, Ordering::Relaxed);
                    return None;
                }
            }
        }
        let state = Arc::new(State {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            busy: AtomicUsize::new(0),
            idle_since: AtomicU64::new(self.now_ms()),
            close: CancellationToken::new(),
        });
        open.insert(state.id, Arc::clone(&state));
        Some(Conn(Arc::new(Handle {
            state,
            tracker: Arc::clone(self),
        })))
    }

    /// Resolves when no connection is open.
    async fn drained(&self) {
        loop {
            let notified = self.emptied.notified();
            if self.lock().is_empty() {
                return;
            }
            notified.await;
        }
    }
}

/// Serves `router` on `listener` until `stopping` turns true, then lets
/// open connections finish (the caller bounds how long).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnLimits,
    tracker: Arc<Tracker>,
    mut stopping: watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stopping.wait_for(|s| *s) => break,
        };
        let (tcp, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: back off, go on.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Some(conn) = tracker.admit() else {
            tracing::debug!(%peer, "connection refused: every connection is busy");
            continue;
        };
        // Small JSON answers: do not wait for Nagle.
        let _ = tcp.set_nodelay(true);
        let mut io = TimeoutStream::new(tcp);
        io.set_read_timeout(Some(limits.idle_timeout));
        io.set_write_timeout(Some(limits.write_timeout));
        let io = TokioIo::new(Box::pin(io));
        let router = router.clone();
        let stop = stopping.clone();
        tokio::spawn(connection(io, peer, router, limits, conn, stop));
    }
    tracker.drained().await;
}

type Io = TokioIo<Pin<Box<TimeoutStream<tokio::net::TcpStream>>>>;

async fn connection(
    io: Io,
    peer: SocketAddr,
    router: Router,
    limits: ConnLimits,
    conn: Conn,
    mut stopping: watch::Receiver<bool>,
) {
    let handle = conn.clone();
    let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
        let busy = handle.busy();
        request.extensions_mut().insert(ConnectInfo(peer));
        request.extensions_mut().insert(handle.clone());
        let router = router.clone();
        async move {
            let response = router.oneshot(request.map(axum::body::Body::new)).await;
            drop(busy);
            response.map_err(|never: Infallible| match never {})
        }
    });
    let http = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_header_size(limits.max_header_bytes)
        .serve_connection(io, service)
        .with_upgrades();
    tokio::pin!(http);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            result = &mut http => {
                if let Err(e) = result {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = conn.closed() => {
                tracing::debug!(%peer, "idle connection closed to make room");
                return;
            }
            _ = stopping.wait_for(|s| *s), if !shutting_down => {
                shutting_down = true;
                http.as_mut().graceful_shutdown();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]
    use super::*;

    #[test]
    fn at_the_cap_the_longest_idle_makes_room_and_busy_ones_stay() {
        let tracker = Tracker::new(2);
        let a = tracker.admit().unwrap();
        let b = tracker.admit().unwrap();
        let _busy_b = b.busy();
        let c = tracker.admit().unwrap();
        assert!(a.0.state.close.is_cancelled(), "a was idle: closed");
        assert!(!b.0.state.close.is_cancelled());
        assert_eq!(tracker.open(), 2);
        let _busy_c = c.busy();
        assert!(tracker.admit().is_none(), "every connection busy");
        assert_eq!(tracker.turned_away(), (1, 1));
        drop((a, b, c, _busy_b, _busy_c));
        assert_eq!(tracker.open(), 0);
    }
}
