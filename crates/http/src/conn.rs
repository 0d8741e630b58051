//! One HTTP/1.1 connection of one user (opened by `dial.rs`, plain or
//! TLS), and exchanges of one request for one response over reusable read
//! and write buffers, decoded by `wire.rs`.
//!
//! The exchange runs inside the user's own future: no task, channel or
//! lock per request, and a dropped user drops its sockets with it.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, Interest, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_rustls::client::TlsStream;

use crate::dial::Route;
use crate::origin::Origin;
use crate::proxy::Proxy;
use crate::timings::{ExchangeClock, ExchangeTimes, Timings};
use crate::wire::{self, Decoder, Message, RequestHead};

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

/// Why an exchange failed.
#[derive(Debug)]
pub enum ExchangeError {
    /// A reused connection turned out closed (or reset) before any byte of
    /// the response arrived: most likely the server had closed it while
    /// idle. The request may or may not have been processed, so only an
    /// idempotent one may be sent again.
    Stale(String),
    Failed(String),
}

/// A body up to this size is copied behind the head so that one write
/// sends the whole request; a larger one is written on its own.
const INLINE_BODY: usize = 16 * 1024;
/// Read at least this much at a time.
const READ_CHUNK: usize = 8 * 1024;

/// One HTTP/1.1 connection and the endpoint it talks to.
pub struct Conn {
    /// The origin it serves and the proxy it goes through.
    pub route: Route,
    stream: Stream,
    /// Bytes read and not yet decoded; reused for every response.
    rbuf: BytesMut,
    /// The request being written; reused for every request.
    wbuf: BytesMut,
    /// Served a request before; a failure on it may be a stale keep-alive
    /// connection rather than a dead server.
    pub reused: bool,
    /// The last exchange left it fit for another request.
    keep_alive: bool,
    /// How long opening it took, until the first request takes it.
    opened: Timings,
}

impl Conn {
    /// A connection over `stream`, opened (see `dial.rs`) to reach
    /// `origin` through `via`, which took `opened`.
    pub fn new(
        origin: &Origin,
        via: Option<&Arc<Proxy>>,
        stream: Stream,
        opened: Timings,
    ) -> Box<Conn> {
        Box::new(Conn {
            route: Route::new(origin, via),
            stream,
            rbuf: BytesMut::new(),
            wbuf: BytesMut::new(),
            reused: false,
            keep_alive: false,
            opened,
        })
    }

    /// The lookup, connect and handshake phases of opening this
    /// connection, once: a reused connection reports none.
    pub fn take_opened(&mut self) -> Timings {
        std::mem::take(&mut self.opened)
    }

    /// Whether the connection may carry another request.
    pub fn keep_alive(&self) -> bool {
        self.keep_alive
    }

    /// Sends one request and reads its response, with its time to first
    /// byte and receive phases.
    pub async fn exchange(
        &mut self,
        head: &RequestHead<'_>,
        body: &[u8],
        began: Instant,
    ) -> Result<(Message, ExchangeTimes), ExchangeError> {
        let mut clock = ExchangeClock::start_at(began);
        self.keep_alive = false;
        self.wbuf.clear();
        let close = wire::encode_request(&mut self.wbuf, head);
        let inline = body.len() <= INLINE_BODY;
        if inline {
            self.wbuf.extend_from_slice(body);
        }
        let written = match self.stream.write_all(&self.wbuf).await {
            Ok(()) if inline => Ok(()),
            Ok(()) => self.stream.write_all(body).await,
            Err(e) => Err(e),
        };
        // TLS buffers what it encrypts; plain TCP has nothing to flush.
        let written = match written {
            Ok(()) if matches!(self.stream, Stream::Tls(_)) => self.stream.flush().await,
            other => other,
        };
        if let Err(e) = written {
            return Err(self.io_error(e, false));
        }
        let mut dec = Decoder::new(head.method == http::Method::HEAD);
        let mut got_any = false;
        let mut reads = 0u32;
        loop {
            match dec.decode(&mut self.rbuf) {
                Ok(true) => break,
                Ok(false) => {}
                Err(e) => return Err(ExchangeError::Failed(e.to_string())),
            }
            if self.rbuf.capacity() - self.rbuf.len() < READ_CHUNK / 4 {
                // Reclaims the consumed space when the buffer is empty:
                // no allocation after the first response.
                self.rbuf.reserve(READ_CHUNK);
            }
            let n = match self.stream.read_buf(&mut self.rbuf).await {
                Ok(n) => n,
                Err(e) => return Err(self.io_error(e, got_any)),
            };
            if n > 0 {
                clock.got_bytes();
                reads += 1;
            }
            if n == 0 {
                if !got_any && self.reused {
                    return Err(ExchangeError::Stale(
                        "connection closed by the server before the response".into(),
                    ));
                }
                match dec.eof() {
                    Ok(()) => break,
                    Err(e) => return Err(ExchangeError::Failed(e.to_string())),
                }
            }
            got_any = true;
        }
        // Bytes after the response were not asked for: a server that talks
        // out of turn does not get the next request.
        self.keep_alive = dec.keep_alive() && !close && self.rbuf.is_empty();
        if self.keep_alive {
            self.reused = true;
            self.settle_read_readiness();
        }
        Ok((dec.finish(), clock.finish(reads <= 1)))
    }

    fn io_error(&self, e: io::Error, got_any: bool) -> ExchangeError {
        let stale = self.reused
            && !got_any
            && matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::UnexpectedEof
            );
        if stale {
            ExchangeError::Stale(e.to_string())
        } else {
            ExchangeError::Failed(e.to_string())
        }
    }

    /// The response ended the last read and nothing followed it, so the
    /// socket is (almost surely) drained: forget its read readiness now
    /// rather than learn it from a `recv` returning EAGAIN at the start of
    /// the next exchange, one system call per request. Data or a close
    /// arriving later raises readiness again: tokio clears only the
    /// readiness event it saw, and on a core's single-threaded runtime the
    /// I/O driver cannot record a new one between that read and this call.
    /// Not for TLS, whose stream may hold decrypted bytes the socket does
    /// not.
    fn settle_read_readiness(&self) {
        if let Stream::Plain(tcp) = &self.stream {
            let _ = tcp.try_io(Interest::READABLE, || {
                Err::<(), _>(io::ErrorKind::WouldBlock.into())
            });
        }
    }

    /// Whether the server closed this idle connection (or sent something
    /// unasked) since its last exchange. One poll, which costs no system
    /// call unless the socket became readable meanwhile.
    pub fn closed_while_idle(&mut self) -> bool {
        let mut cx = Context::from_waker(Waker::noop());
        // Whatever is read here, the connection is dropped after it.
        let mut byte = [0u8; 1];
        let mut buf = ReadBuf::new(&mut byte);
        Pin::new(&mut self.stream)
            .poll_read(&mut cx, &mut buf)
            .is_ready()
    }
}
