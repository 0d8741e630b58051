//! Serving the router on a listener so that slow or hostile clients cannot
//! take the UI and `/healthz` down, even with few file descriptors:
//!
//! - a header-read timeout: a client has [`ServeLimits::header_read_timeout`]
//!   to send a request's headers, counted from when the connection is ready
//!   for one, so it also ends keep-alive connections left idle that long;
//! - an idle timeout: a connection on which no byte moved either way for
//!   [`ServeLimits::idle_timeout`] is closed (a client that stopped reading
//!   a stream, a request body that never comes);
//! - a cap on open connections, also kept under half the process's
//!   descriptor limit so that accepting never runs the process out of them.
//!   At the cap a new connection is still accepted: room is made by closing
//!   the oldest connection that never sent a whole request (a slow client),
//!   else the one idle longest. A probe or a browser, which send their
//!   request at once, are answered before they could become the oldest;
//! - accept errors such as EMFILE free a connection and back off instead of
//!   spinning or ending the server.
//!
//! Only HTTP/1.1: the UI and every client we know speak it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

/// How the web server treats connections; [`Default`] suits the UI.
#[derive(Debug, Clone, Copy)]
pub struct ServeLimits {
    pub header_read_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            // Above the longest quiet request (a scale call to a slow API
            // server); the live stream sends a keep-alive every 15 s.
            idle_timeout: Duration::from_secs(60),
            max_connections: 512,
        }
    }
}

/// How long open connections (a browser's live stream, a slow download) may
/// hold up shutdown before they are closed.
const DRAIN: Duration = Duration::from_secs(5);
/// After a failed accept. Short, as each failure closes a connection and
/// the next accept usually succeeds (10 ms made a probe behind 40 slow
/// clients wait 370 ms; 1 ms, 80 ms); it doubles while failures go on.
const MIN_BACKOFF: Duration = Duration::from_millis(1);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` until `shutdown`, then lets open requests
/// finish for a few seconds.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ServeLimits,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let cap = limits.max_connections.min(descriptor_budget()).max(1);
    tracing::debug!("web: serving at most {cap} connections at once");
    let registry = Arc::new(Registry::default());
    let tracker = TaskTracker::new();
    let mut backoff = MIN_BACKOFF;
    let mut warnings = AcceptWarnings::default();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, addr)) => {
                backoff = MIN_BACKOFF;
                while registry.len() >= cap && registry.evict() {}
                let conn = registry.insert();
                let task = connection(stream, addr, router.clone(), conn, limits, shutdown.clone());
                let registry = registry.clone();
                tracker.spawn(async move {
                    let id = task.await;
                    registry.remove(id);
                });
            }
            Err(e) if is_per_connection(&e) => {}
            Err(e) => {
                // Most likely out of descriptors: closing a connection
                // frees one, and waiting keeps the loop from spinning.
                warnings.accept_failed(&e);
                registry.evict();
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
    drop(listener);
    tracker.close();
    if tokio::time::timeout(DRAIN, tracker.wait()).await.is_err() {
        tracing::warn!("web: connections still open {DRAIN:?} after shutdown; closing them");
        registry.close_all();
        tracker.wait().await;
    }
    Ok(())
}

/// Under a flood, accept errors come every few milliseconds: one warning
/// per [`WARN_EVERY`] says how many there were, not one line each.
#[derive(Default)]
struct AcceptWarnings {
    last: Option<Instant>,
    since_last: u64,
}

const WARN_EVERY: Duration = Duration::from_secs(10);

impl AcceptWarnings {
    fn accept_failed(&mut self, e: &std::io::Error) {
        self.since_last += 1;
        if self.last.is_some_and(|at| at.elapsed() < WARN_EVERY) {
            return;
        }
        tracing::warn!(
            "web: cannot accept connections ({e}; {} time(s) since the last warning); \
             closing the slowest and backing off",
            self.since_last
        );
        self.last = Some(Instant::now());
        self.since_last = 0;
    }
}

/// Errors that concern one incoming connection, not the listener.
fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted
    )
}

/// Half the soft descriptor limit: the other half is for the workers'
/// connections, the scaler, the script's files and the runtime.
fn descriptor_budget() -> usize {
    use nix::sys::resource::{Resource, getrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, _)) => usize::try_from(soft / 2).unwrap_or(usize::MAX),
        Err(_) => usize::MAX,
    }
}

/// Serves one connection until it ends, is evicted, times out or is
/// drained at shutdown; returns its id for the registry.
fn connection(
    stream: TcpStream,
    addr: SocketAddr,
    router: Router,
    conn: Arc<Conn>,
    limits: ServeLimits,
    shutdown: CancellationToken,
) -> impl Future<Output = u64> + Send + 'static {
    let _ = stream.set_nodelay(true);
    let io = TokioIo::new(Tracked {
        stream,
        conn: conn.clone(),
    });
    let marker = conn.clone();
    let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
        // Headers arrived whole: this client speaks HTTP at a useful pace.
        marker.served.store(true, Ordering::Relaxed);
        req.extensions_mut().insert(ConnectInfo(addr));
        router.clone().oneshot(req.map(axum::body::Body::new))
    });
    async move {
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_read_timeout);
        let served = builder.serve_connection(io, service);
        tokio::pin!(served);
        let period = (limits.idle_timeout / 4).max(Duration::from_millis(10));
        let mut check = tokio::time::interval(period);
        let mut draining = false;
        loop {
            tokio::select! {
                result = served.as_mut() => {
                    if let Err(e) = result {
                        tracing::debug!("web: connection from {addr} ended: {e}");
                    }
                    break;
                }
                // Dropping the connection closes its socket.
                _ = conn.close.cancelled() => break,
                _ = check.tick() => {
                    if conn.idle() >= limits.idle_timeout {
                        tracing::debug!("web: closing {addr}, idle for {:?}", conn.idle());
                        break;
                    }
                }
                _ = shutdown.cancelled(), if !draining => {
                    served.as_mut().graceful_shutdown();
                    draining = true;
                }
            }
        }
        conn.id
    }
}

/// What the server knows of one open connection.
struct Conn {
    id: u64,
    accepted: Instant,
    /// A whole request head arrived on it at least once.
    served: AtomicBool,
    /// Microseconds after `accepted` when a byte last moved either way.
    last_io_us: AtomicU64,
    close: CancellationToken,
}

impl Conn {
    fn touch(&self) {
        let now = self.accepted.elapsed().as_micros();
        self.last_io_us
            .store(u64::try_from(now).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    fn last_io(&self) -> Instant {
        self.accepted + Duration::from_micros(self.last_io_us.load(Ordering::Relaxed))
    }

    fn idle(&self) -> Duration {
        self.last_io().elapsed()
    }
}

/// The open connections, to pick one to close when room is needed.
#[derive(Default)]
struct Registry {
    next_id: AtomicU64,
    conns: Mutex<HashMap<u64, Arc<Conn>>>,
}

impl Registry {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn insert(&self) -> Arc<Conn> {
        let conn = Arc::new(Conn {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            accepted: Instant::now(),
            served: AtomicBool::new(false),
            last_io_us: AtomicU64::new(0),
            close: CancellationToken::new(),
        });
        self.lock().insert(conn.id, conn.clone());
        conn
    }

    fn remove(&self, id: u64) {
        self.lock().remove(&id);
    }

    fn len(&self) -> usize {
        self.lock().len()
    }

    /// Closes the oldest connection that never sent a whole request, else
    /// the one idle longest; false when there is none.
    fn evict(&self) -> bool {
        let mut conns = self.lock();
        let unserved = conns
            .values()
            .filter(|c| !c.served.load(Ordering::Relaxed))
            .min_by_key(|c| c.accepted);
        let victim = unserved
            .or_else(|| conns.values().min_by_key(|c| c.last_io()))
            .map(|c| c.id);
        let Some(conn) = victim.and_then(|id| conns.remove(&id)) else {
            return false;
        };
        conn.close.cancel();
        true
    }

    fn close_all(&self) {
        for (_, conn) in self.lock().drain() {
            conn.close.cancel();
        }
    }
}

/// The socket, noting when bytes move for the idle timeout.
struct Tracked {
    stream: TcpStream,
    conn: Arc<Conn>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let result = Pin::new(&mut this.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            this.conn.touch();
        }
        result
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.conn.touch();
        }
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let result = Pin::new(&mut this.stream).poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.conn.touch();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eviction_prefers_clients_that_never_sent_a_request() {
        let registry = Registry::default();
        let first = registry.insert();
        first.served.store(true, Ordering::Relaxed);
        let slow = registry.insert();
        let later_slow = registry.insert();
        assert!(registry.evict());
        assert!(slow.close.is_cancelled());
        assert!(!first.close.is_cancelled() && !later_slow.close.is_cancelled());
        assert!(registry.evict());
        assert!(later_slow.close.is_cancelled());
        // Only served ones left: the one idle longest goes.
        assert!(registry.evict());
        assert!(first.close.is_cancelled());
        assert!(!registry.evict(), "nothing left to close");
    }
}
