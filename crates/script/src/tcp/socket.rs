//! One raw socket: its stream, the bytes read and not yet handed to the
//! script, and the rules for cutting them (a count, a line, a delimiter,
//! everything until the peer closes). Like a WebSocket (`ws/session.rs`)
//! a call takes the stream out of its slot while it awaits.

use std::cell::{Cell, RefCell};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::io::{Closable, Reply, Ret};

/// A bound on what one receive may buffer, so a peer that never sends the
/// delimiter cannot grow a user's memory without limit.
const MAX_BUFFER: usize = 64 * 1024 * 1024;
const READ_CHUNK: usize = 16 * 1024;

/// Where a receive stops.
pub enum Until {
    Bytes(usize),
    Line,
    Delimiter(Vec<u8>),
    Close,
}

struct Conn {
    stream: http_client::Stream,
    buf: BytesMut,
}

pub struct Socket {
    /// `host:port`, for messages.
    pub peer: String,
    conn: RefCell<Option<Conn>>,
    closed: Cell<bool>,
    /// For each send and receive unless the call gives its own.
    timeout: Duration,
}

impl Socket {
    pub fn new(peer: String, stream: http_client::Stream, timeout: Duration) -> Self {
        Socket {
            peer,
            conn: RefCell::new(Some(Conn {
                stream,
                buf: BytesMut::new(),
            })),
            closed: Cell::new(false),
            timeout,
        }
    }

    fn take(&self, what: &str) -> Result<Conn, String> {
        match self.conn.borrow_mut().take() {
            Some(c) => Ok(c),
            None if self.closed.get() => Err(format!(
                "socket:{what} on {}: the connection is closed",
                self.peer
            )),
            None => Err(format!(
                "socket:{what} on {}: the socket is busy in another call",
                self.peer
            )),
        }
    }

    /// Ends the connection after a failure: a later call says it is closed.
    fn fail(&self, msg: String) -> Reply {
        self.closed.set(true);
        Err(msg)
    }

    pub async fn send(self: std::rc::Rc<Self>, data: Vec<u8>) -> Reply {
        let mut conn = self.take("send")?;
        let write = async {
            conn.stream.write_all(&data).await?;
            conn.stream.flush().await
        };
        match tokio::time::timeout(self.timeout, write).await {
            Ok(Ok(())) => {
                *self.conn.borrow_mut() = Some(conn);
                Ok(Vec::new())
            }
            Ok(Err(e)) => self.fail(format!("socket:send on {}: {e}", self.peer)),
            Err(_) => self.fail(format!(
                "socket:send on {}: timeout after {}",
                self.peer,
                humantime::format_duration(self.timeout)
            )),
        }
    }

    /// Reads until `until` is satisfied. A timeout keeps the connection
    /// (and what was read) for another try; an end of stream or an error
    /// closes it.
    pub async fn receive(
        self: std::rc::Rc<Self>,
        until: Until,
        timeout: Option<Duration>,
    ) -> Reply {
        let mut conn = self.take("receive")?;
        let timeout = timeout.unwrap_or(self.timeout);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(out) = cut(&mut conn.buf, &until) {
                *self.conn.borrow_mut() = Some(conn);
                return Ok(vec![Ret::Bytes(out)]);
            }
            if conn.buf.len() > MAX_BUFFER {
                return self.fail(format!(
                    "socket:receive on {}: more than {} MB without the end asked for",
                    self.peer,
                    MAX_BUFFER >> 20
                ));
            }
            conn.buf.reserve(READ_CHUNK);
            let read = tokio::time::timeout_at(deadline, conn.stream.read_buf(&mut conn.buf)).await;
            match read {
                Ok(Ok(0)) if matches!(until, Until::Close) => {
                    let all = conn.buf.split().to_vec();
                    self.closed.set(true);
                    return Ok(vec![Ret::Bytes(all)]);
                }
                Ok(Ok(0)) => {
                    return self.fail(format!(
                        "socket:receive on {}: the connection was closed by the peer{}",
                        self.peer,
                        match conn.buf.len() {
                            0 => String::new(),
                            n => format!(" ({n} bytes received before the end asked for)"),
                        }
                    ));
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return self.fail(format!("socket:receive on {}: {e}", self.peer)),
                Err(_) => {
                    *self.conn.borrow_mut() = Some(conn);
                    return Err(format!(
                        "socket:receive on {}: timeout after {}",
                        self.peer,
                        humantime::format_duration(timeout)
                    ));
                }
            }
        }
    }

    pub async fn close(self: std::rc::Rc<Self>) -> Reply {
        let conn = self.conn.borrow_mut().take();
        self.closed.set(true);
        if let Some(mut c) = conn {
            // A polite end (TLS close_notify, FIN); the socket goes either way.
            let _ = tokio::time::timeout(Duration::from_secs(1), c.stream.shutdown()).await;
        }
        Ok(Vec::new())
    }
}

/// The bytes `until` asks for, if the buffer holds them.
fn cut(buf: &mut BytesMut, until: &Until) -> Option<Vec<u8>> {
    match until {
        Until::Bytes(n) => (buf.len() >= *n).then(|| buf.split_to(*n).to_vec()),
        Until::Line => {
            let end = buf.iter().position(|&b| b == b'\n')?;
            let line = buf.split_to(end + 1);
            let mut line = &line[..end];
            if line.last() == Some(&b'\r') {
                line = &line[..line.len() - 1];
            }
            Some(line.to_vec())
        }
        Until::Delimiter(d) => {
            let at = buf.windows(d.len()).position(|w| w == &d[..])?;
            let out = buf.split_to(at).to_vec();
            let _ = buf.split_to(d.len());
            Some(out)
        }
        Until::Close => None,
    }
}

impl Closable for Socket {
    fn is_open(&self) -> bool {
        !self.closed.get()
    }

    fn close_now(&self) {
        self.closed.set(true);
        drop(self.conn.borrow_mut().take());
    }
}
