//! One user's connections: dialing (TCP_NODELAY, optional TLS), a tiny
//! keep-alive pool keyed by (scheme, host, port), and driving a hyper HTTP/1
//! connection inside the user's own future.
//!
//! Driving the connection in place (instead of spawning a task per
//! connection) saves a task wake-up per request on the hot path and means a
//! dropped user drops its sockets with it.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::{self, Connection, SendRequest};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::origin::{Origin, Scheme};

pub type Body = Full<Bytes>;

/// A socket, plain or TLS.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// One HTTP/1 connection and the endpoint it talks to.
pub struct Conn {
    scheme: Scheme,
    host: String,
    port: u16,
    pub sender: SendRequest<Body>,
    pub driver: Driver,
    /// Served a request before; a failure to send on it may be a stale
    /// keep-alive connection rather than a dead server.
    pub reused: bool,
}

impl Conn {
    pub async fn connect(
        origin: &Origin,
        tls: impl FnOnce() -> Result<Arc<rustls::ClientConfig>, String>,
    ) -> Result<Box<Conn>, String> {
        let tcp = TcpStream::connect((origin.host.as_str(), origin.port))
            .await
            .map_err(|e| format!("connect to {}:{}: {e}", origin.host, origin.port))?;
        // Requests are small writes followed by a wait for the answer:
        // Nagle would only delay them.
        tcp.set_nodelay(true)
            .map_err(|e| format!("set TCP_NODELAY: {e}"))?;
        let stream = match origin.scheme {
            Scheme::Http => Stream::Plain(tcp),
            Scheme::Https => {
                let config = tls()?;
                let name = ServerName::try_from(origin.host.clone())
                    .map_err(|e| format!("invalid TLS server name {:?}: {e}", origin.host))?;
                let tls = tokio_rustls::TlsConnector::from(config)
                    .connect(name, tcp)
                    .await
                    .map_err(|e| format!("TLS handshake with {}: {e}", origin.host))?;
                Stream::Tls(Box::new(tls))
            }
        };
        let (sender, conn) = http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake with {}: {e}", origin.host))?;
        Ok(Box::new(Conn {
            scheme: origin.scheme,
            host: origin.host.clone(),
            port: origin.port,
            sender,
            driver: Driver {
                conn,
                closed: false,
            },
            reused: false,
        }))
    }

    fn serves(&self, origin: &Origin) -> bool {
        self.scheme == origin.scheme && self.port == origin.port && self.host == origin.host
    }

    fn is_dead(&self) -> bool {
        self.driver.closed || self.sender.is_closed()
    }
}

/// The half of a connection that moves bytes; split from the sender so both
/// can be borrowed at once (`conn.driver.drive(conn.sender.ready())`).
pub struct Driver {
    conn: Connection<TokioIo<Stream>, Body>,
    /// The connection future finished: the socket is gone.
    closed: bool,
}

impl Driver {
    /// Runs `fut` (something waiting on this connection) while polling the
    /// connection itself, which is what moves bytes.
    pub async fn drive<F: Future>(&mut self, fut: F) -> F::Output {
        let mut fut = pin!(fut);
        let conn = &mut self.conn;
        let closed = &mut self.closed;
        poll_fn(|cx| {
            loop {
                if let Poll::Ready(out) = fut.as_mut().poll(cx) {
                    return Poll::Ready(out);
                }
                if *closed {
                    return Poll::Pending;
                }
                match Pin::new(&mut *conn).poll(cx) {
                    // Finished: its end fails whatever waited on it, so
                    // poll that once more to collect the error.
                    Poll::Ready(_) => *closed = true,
                    Poll::Pending => return Poll::Pending,
                }
            }
        })
        .await
    }
}

/// Idle keep-alive connections of one user. A user sends one request at a
/// time, so this holds about one connection per host it talks to.
#[derive(Default)]
pub struct Pool {
    // Boxed: a connection is ~750 bytes, moved in and out of the pool on
    // every request.
    #[allow(clippy::vec_box)]
    idle: Vec<Box<Conn>>,
}

/// More idle connections than this per user means the script talks to many
/// hosts; the oldest are closed.
const MAX_IDLE: usize = 8;

impl Pool {
    pub fn take(&mut self, origin: &Origin) -> Option<Box<Conn>> {
        while let Some(i) = self.idle.iter().rposition(|c| c.serves(origin)) {
            let c = self.idle.swap_remove(i);
            if !c.is_dead() {
                return Some(c);
            }
        }
        None
    }

    pub fn put(&mut self, mut conn: Box<Conn>) {
        if conn.is_dead() {
            return;
        }
        conn.reused = true;
        if self.idle.len() >= MAX_IDLE {
            self.idle.remove(0);
        }
        self.idle.push(conn);
    }
}
