//! One open WebSocket: the tungstenite stream and the stats it records.
//! The upgrade is an entry (`WS`, name); every message sent or received
//! counts on the counters (`COUNT`, "name sent" / "name received"); the
//! session's duration is recorded once when it ends, however it ends (a
//! `close`, the server closing, an error, its user stopping), as
//! (`WS`, "name session").
//!
//! A call takes the stream out of its slot for the time it awaits and puts
//! it back after, so no `RefCell` borrow is held across an await and a
//! user dropped mid-call drops the socket with the call's future.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_util::sync::CancellationToken;

use crate::io::{Closable, Reply, Ret};
use crate::lua_env::LuaEnv;
use stats::{COUNTER_METHOD, Sample};

/// The stats method of WebSocket entries.
pub const WS_METHOD: &str = "WS";

/// How long `close` waits for the server's answer to its close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

pub type Ws = WebSocketStream<http_client::Stream>;

/// The entry names of one session, made once at connect.
pub struct Names {
    pub name: Rc<str>,
    sent: String,
    received: String,
    session: String,
}

impl Names {
    pub fn new(name: Rc<str>) -> Self {
        Names {
            sent: format!("{name} sent"),
            received: format!("{name} received"),
            session: format!("{name} session"),
            name,
        }
    }
}

pub struct Session {
    shared: Rc<LuaEnv>,
    pub names: Names,
    started: Instant,
    stream: RefCell<Option<Ws>>,
    ended: Cell<bool>,
    /// The owner's stop: a wait for a message with no timeout ends there.
    stop: CancellationToken,
}

impl Session {
    pub fn new(shared: Rc<LuaEnv>, names: Names, stream: Ws, stop: CancellationToken) -> Self {
        Session {
            shared,
            names,
            started: Instant::now(),
            stream: RefCell::new(Some(stream)),
            ended: Cell::new(false),
            stop,
        }
    }

    /// Seconds since the upgrade (the clock of `ws:request`).
    pub fn clock_s(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    pub fn record(&self, name: &str, elapsed_us: u64, length: u64, error: Option<&str>) {
        self.shared.record(&Sample {
            method: WS_METHOD,
            name,
            response_time_us: elapsed_us,
            due_latency_us: None,
            content_length: length,
            error,
        });
    }

    fn count(&self, name: &str) {
        self.shared.record(&Sample {
            method: COUNTER_METHOD,
            name,
            response_time_us: 0,
            due_latency_us: None,
            content_length: 0,
            error: None,
        });
    }

    /// Records the session's duration, once.
    fn end(&self, error: Option<&str>) {
        if !self.ended.replace(true) {
            let us = self.started.elapsed().as_micros() as u64;
            self.record(&self.names.session, us, 0, error);
        }
    }

    /// The stream, or why there is none.
    fn take(&self, what: &str) -> Result<Ws, String> {
        match self.stream.borrow_mut().take() {
            Some(s) => Ok(s),
            None if self.ended.get() => Err(format!(
                "{what}: the WebSocket {} is closed",
                self.names.name
            )),
            None => Err(format!(
                "{what}: the WebSocket {} is busy in another call",
                self.names.name
            )),
        }
    }

    fn put(&self, stream: Ws) {
        *self.stream.borrow_mut() = Some(stream);
    }

    pub async fn send(self: Rc<Self>, msg: Message, what: &'static str) -> Reply {
        let mut stream = self.take(what)?;
        match stream.send(msg).await {
            Ok(()) => {
                self.count(&self.names.sent);
                self.put(stream);
                Ok(Vec::new())
            }
            Err(e) => {
                let msg = format!("{what} on {}: {e}", self.names.name);
                self.end(Some(&msg));
                Err(msg)
            }
        }
    }

    /// The next text or binary message: `msg, "text"|"binary"`, or
    /// `nil, why` on a timeout, a close or an error.
    pub async fn recv(self: Rc<Self>, timeout: Option<Duration>) -> Reply {
        let mut stream = match self.take("ws:recv") {
            Ok(s) => s,
            Err(e) => return Ok(vec![Ret::Nil, Ret::Text(e)]),
        };
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let next = tokio::select! {
                m = stream.next() => m,
                _ = sleep_until(deadline) => {
                    self.put(stream);
                    return Ok(vec![Ret::Nil, Ret::Str("timeout")]);
                }
                _ = self.stop.cancelled(), if timeout.is_none() => {
                    self.put(stream);
                    return Ok(vec![Ret::Nil, Ret::Str("the user is stopping")]);
                }
            };
            let why = match next {
                Some(Ok(Message::Text(t))) => {
                    self.count(&self.names.received);
                    self.put(stream);
                    return Ok(vec![Ret::Bytes(t.as_bytes().to_vec()), Ret::Str("text")]);
                }
                Some(Ok(Message::Binary(b))) => {
                    self.count(&self.names.received);
                    self.put(stream);
                    return Ok(vec![Ret::Bytes(b.to_vec()), Ret::Str("binary")]);
                }
                // Pings are answered by tungstenite on the next read.
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Close(frame))) => closed_by_server(frame.as_ref()),
                None => "closed".to_string(),
                Some(Err(e)) => {
                    let why = format!("ws:recv on {}: {e}", self.names.name);
                    self.end(Some(&why));
                    return Ok(vec![Ret::Nil, Ret::Text(why)]);
                }
            };
            self.end(None);
            return Ok(vec![Ret::Nil, Ret::Text(why)]);
        }
    }

    /// Sends a close frame, waits (briefly) for the server's, and ends
    /// the session. Closing a closed session does nothing.
    pub async fn close(self: Rc<Self>, frame: CloseFrame) -> Reply {
        let Some(mut stream) = self.stream.borrow_mut().take() else {
            return Ok(Vec::new());
        };
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            if stream.close(Some(frame)).await.is_ok() {
                while let Some(Ok(_)) = stream.next().await {}
            }
        })
        .await;
        self.end(None);
        Ok(Vec::new())
    }
}

fn closed_by_server(frame: Option<&CloseFrame>) -> String {
    match frame {
        Some(f) if f.reason.is_empty() => {
            format!("closed by the server (code {})", u16::from(f.code))
        }
        Some(f) => format!(
            "closed by the server (code {}: {})",
            u16::from(f.code),
            f.reason
        ),
        None => "closed by the server".to_string(),
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl Closable for Session {
    fn is_open(&self) -> bool {
        !self.ended.get()
    }

    fn close_now(&self) {
        drop(self.stream.borrow_mut().take());
        self.end(None);
    }
}

impl Drop for Session {
    /// A session the script forgot to close ends when Lua collects it.
    fn drop(&mut self) {
        self.end(None);
    }
}
