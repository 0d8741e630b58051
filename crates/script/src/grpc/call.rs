//! gRPC over HTTP/2, on the `h2` crate directly: one connection per
//! client (its task drives the I/O, as `http_client`'s HTTP/2 does), and
//! per call one stream: the request's headers and its one length-prefixed
//! message, then the response's messages and its status in the trailers.
//! Chosen over tonic's client so a call costs one stream and no tower
//! stack, buffer task or `Send` bounds on a core that is single-threaded.

use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use h2::client::SendRequest;
use http::{HeaderMap, HeaderName, HeaderValue};
use tokio::time::Instant;

/// The gRPC status codes by number, as they are named.
const NAMES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

pub const DEADLINE_EXCEEDED: i32 = 4;
const UNKNOWN: i32 = 2;
const INTERNAL: i32 = 13;
const UNAVAILABLE: i32 = 14;

/// The largest response message read into memory.
const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// A call's status: its code and the server's (or our) message.
#[derive(Debug, Clone)]
pub struct Status {
    pub code: i32,
    pub message: String,
}

impl Status {
    pub fn new(code: i32, message: impl Into<String>) -> Self {
        Status {
            code,
            message: message.into(),
        }
    }

    pub fn name(&self) -> &'static str {
        usize::try_from(self.code)
            .ok()
            .and_then(|i| NAMES.get(i))
            .copied()
            .unwrap_or("UNKNOWN")
    }

    /// `NOT_FOUND: no such user`, as the failures table shows it.
    pub fn shown(&self) -> String {
        if self.message.is_empty() {
            self.name().to_string()
        } else {
            format!("{}: {}", self.name(), self.message)
        }
    }
}

/// One client's HTTP/2 connection.
#[derive(Clone)]
pub struct Channel {
    send: SendRequest<Bytes>,
    /// `http` or `https`, and `host:port`, for every request's URI.
    scheme: &'static str,
    authority: String,
}

impl Channel {
    pub async fn open(
        stream: http_client::Stream,
        tls: bool,
        authority: String,
    ) -> Result<Self, String> {
        let (send, connection) = h2::client::handshake(stream)
            .await
            .map_err(|e| format!("HTTP/2 handshake with {authority}: {e}"))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::trace!(target: "script", "gRPC connection ended: {e}");
            }
        });
        Ok(Channel {
            send,
            scheme: if tls { "https" } else { "http" },
            authority,
        })
    }
}

/// What a call sends besides its message.
pub struct Head<'a> {
    /// `/pkg.Service/Method`.
    pub path: &'a str,
    pub metadata: &'a [(HeaderName, HeaderValue)],
    pub timeout: Option<Duration>,
}

/// A call under way: its response headers, then its messages.
pub struct Call {
    pub headers: HeaderMap,
    recv: Option<h2::RecvStream>,
    buf: BytesMut,
    deadline: Option<Instant>,
    /// Set once the call failed or its status came with the headers.
    status: Option<Status>,
    pub bytes: u64,
}

/// Starts a call: sends `message` and waits for the response headers. A
/// failure is a call with its status already set.
pub async fn start(channel: &Channel, head: Head<'_>, message: &[u8]) -> Call {
    let deadline = head.timeout.map(|t| Instant::now() + t);
    let mut call = Call {
        deadline,
        ..Call::failed(Status::new(0, ""))
    };
    call.status = None;
    match within(deadline, send(channel, &head, message)).await {
        Ok((headers, recv)) => {
            call.status = headers_status(&headers);
            call.headers = headers;
            call.recv = Some(recv);
        }
        Err(status) => call.status = Some(status),
    }
    call
}

async fn send(
    channel: &Channel,
    head: &Head<'_>,
    message: &[u8],
) -> Result<(HeaderMap, h2::RecvStream), Status> {
    let uri = format!("{}://{}{}", channel.scheme, channel.authority, head.path);
    let mut builder = http::Request::builder()
        .method("POST")
        .uri(&uri)
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("user-agent", concat!("swarmer/", env!("CARGO_PKG_VERSION")));
    if let Some(t) = head.timeout {
        // Whole milliseconds, at least 1: "0m" would expire at once.
        builder = builder.header("grpc-timeout", format!("{}m", t.as_millis().max(1)));
    }
    for (k, v) in head.metadata {
        builder = builder.header(k, v);
    }
    let request = builder
        .body(())
        .map_err(|e| Status::new(INTERNAL, format!("cannot send {uri}: {e}")))?;
    let unavailable = |e: h2::Error| Status::new(UNAVAILABLE, format!("HTTP/2: {e}"));
    let mut send = channel.send.clone().ready().await.map_err(unavailable)?;
    let (response, mut body) = send.send_request(request, false).map_err(unavailable)?;
    let mut framed = Vec::with_capacity(5 + message.len());
    framed.push(0);
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(message);
    body.send_data(framed.into(), true).map_err(unavailable)?;
    let response = response.await.map_err(unavailable)?;
    let (parts, recv) = response.into_parts();
    if parts.status != http::StatusCode::OK {
        return Err(http_status(parts.status));
    }
    Ok((parts.headers, recv))
}

/// The gRPC code an HTTP status stands for (gRPC's HTTP-to-gRPC mapping).
fn http_status(s: http::StatusCode) -> Status {
    let code = match s.as_u16() {
        400 => INTERNAL,
        401 => 16,
        403 => 7,
        404 => 12,
        429 | 502..=504 => UNAVAILABLE,
        _ => UNKNOWN,
    };
    Status::new(code, format!("HTTP {s}"))
}

/// A status in `fields` (trailers, or headers of a trailers-only reply).
fn headers_status(fields: &HeaderMap) -> Option<Status> {
    let code = fields.get("grpc-status")?;
    let code = code
        .to_str()
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(UNKNOWN);
    let message = fields
        .get("grpc-message")
        .map(|m| percent_decode(m.as_bytes()))
        .unwrap_or_default();
    Some(Status::new(code, message))
}

fn percent_decode(b: &[u8]) -> String {
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn within<T>(
    deadline: Option<Instant>,
    f: impl std::future::Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    match deadline {
        None => f.await,
        Some(d) => tokio::time::timeout_at(d, f)
            .await
            .unwrap_or_else(|_| Err(Status::new(DEADLINE_EXCEEDED, "deadline exceeded"))),
    }
}

/// A call that failed once its deadline had passed timed out, whoever
/// noticed first: a tonic server answers its own `grpc-timeout` with
/// CANCELLED ("Timeout expired"), which may arrive before our timer
/// fires. The script asked for a timeout, so it is told DEADLINE_EXCEEDED,
/// with what the server said kept in the message.
fn past_deadline(deadline: Option<Instant>, now: Instant, status: Status) -> Status {
    match deadline {
        Some(d) if now >= d && status.code != 0 && status.code != DEADLINE_EXCEEDED => Status::new(
            DEADLINE_EXCEEDED,
            format!(
                "deadline exceeded (the server said {}: {})",
                status.name(),
                status.message
            ),
        ),
        _ => status,
    }
}

impl Call {
    /// A call that ended before it began, with `status`.
    pub fn failed(status: Status) -> Call {
        Call {
            headers: HeaderMap::new(),
            recv: None,
            buf: BytesMut::new(),
            deadline: None,
            status: Some(status),
            bytes: 0,
        }
    }

    /// The next response message, `None` once there are no more (or the
    /// call failed: [`Call::finish`] says how).
    pub async fn next(&mut self) -> Option<Bytes> {
        if self.status.is_some() && self.buf.is_empty() {
            return None;
        }
        loop {
            match self.take_message() {
                Ok(Some(m)) => return Some(m),
                Ok(None) => {}
                Err(s) => {
                    self.fail(s);
                    return None;
                }
            }
            let recv = self.recv.as_mut()?;
            let chunk = match within(self.deadline, async {
                recv.data()
                    .await
                    .transpose()
                    .map_err(|e| Status::new(UNAVAILABLE, format!("HTTP/2: {e}")))
            })
            .await
            {
                Ok(Some(chunk)) => chunk,
                Ok(None) => return None,
                Err(s) => {
                    self.fail(s);
                    return None;
                }
            };
            let _ = recv.flow_control().release_capacity(chunk.len());
            self.bytes += chunk.len() as u64;
            self.buf.extend_from_slice(&chunk);
        }
    }

    fn fail(&mut self, status: Status) {
        self.status = Some(status);
        self.recv = None;
        self.buf.clear();
    }

    fn take_message(&mut self) -> Result<Option<Bytes>, Status> {
        if self.buf.len() < 5 {
            return Ok(None);
        }
        if self.buf[0] != 0 {
            return Err(Status::new(
                INTERNAL,
                "the server sent a compressed message (compression is not supported)",
            ));
        }
        let len = u32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]) as usize;
        if len > MAX_MESSAGE {
            return Err(Status::new(
                8,
                format!("a response message of {len} bytes is over {MAX_MESSAGE}"),
            ));
        }
        if self.buf.len() < 5 + len {
            return Ok(None);
        }
        self.buf.advance(5);
        Ok(Some(self.buf.split_to(len).freeze()))
    }

    /// The call's status and trailers, once its messages are read.
    pub async fn finish(&mut self) -> (Status, HeaderMap) {
        let (status, trailers) = self.ending().await;
        (
            past_deadline(self.deadline, Instant::now(), status),
            trailers,
        )
    }

    /// The status as the call ended, before the deadline is considered.
    async fn ending(&mut self) -> (Status, HeaderMap) {
        if let Some(s) = self.status.take() {
            return (s, HeaderMap::new());
        }
        let Some(mut recv) = self.recv.take() else {
            return (
                Status::new(INTERNAL, "the call has ended"),
                HeaderMap::new(),
            );
        };
        let trailers = within(self.deadline, async {
            recv.trailers()
                .await
                .map_err(|e| Status::new(UNAVAILABLE, format!("HTTP/2: {e}")))
        })
        .await;
        match trailers {
            Ok(Some(t)) => {
                let status = headers_status(&t)
                    .unwrap_or_else(|| Status::new(INTERNAL, "the server sent no grpc-status"));
                (status, t)
            }
            Ok(None) => (
                Status::new(INTERNAL, "the server sent no grpc-status"),
                HeaderMap::new(),
            ),
            Err(s) => (s, HeaderMap::new()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_after_the_deadline_is_deadline_exceeded_whatever_the_server_said() {
        let now = Instant::now();
        let cancelled = || Status::new(1, "Timeout expired");
        let passed = past_deadline(Some(now), now, cancelled());
        assert_eq!(passed.code, DEADLINE_EXCEEDED);
        assert_eq!(
            passed.message,
            "deadline exceeded (the server said CANCELLED: Timeout expired)"
        );
        // Before the deadline, or without one, or a success: as it came.
        let later = now + Duration::from_secs(1);
        assert_eq!(past_deadline(Some(later), now, cancelled()).code, 1);
        assert_eq!(past_deadline(None, now, cancelled()).code, 1);
        assert_eq!(past_deadline(Some(now), now, Status::new(0, "")).code, 0);
    }
}
