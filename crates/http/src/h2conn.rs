//! One HTTP/2 connection of one user, through the `h2` crate: the
//! handshake (after ALPN chose h2, or by prior knowledge for h2c), and
//! exchanges of one request for one response on a new stream each.
//!
//! The connection's I/O runs in its own task (h2 needs it driven while no
//! request is waiting, to answer pings and settings); the user keeps the
//! [`SendRequest`] handle, and the task ends when the handle is dropped
//! with the user or the server goes away. A user sends one request at a
//! time, so one connection per origin serves it, multiplexing is only
//! exercised by what the server sends on its own (pings, settings).

use std::sync::Arc;

use bytes::Bytes;
use h2::client::SendRequest;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use crate::conn::ExchangeError;
use crate::dial::Route;
use crate::origin::Origin;
use crate::proxy::Proxy;
use crate::timings::{ExchangeClock, ExchangeTimes, Timings};
use crate::wire::{Message, RequestHead, USER_AGENT};

/// The largest response body read into memory, as for HTTP/1.1.
const MAX_BODY: usize = 256 * 1024 * 1024;

pub struct H2Conn {
    /// The origin it serves and the proxy it goes through.
    pub route: Route,
    send: SendRequest<Bytes>,
    opened: Timings,
}

impl H2Conn {
    /// Speaks the HTTP/2 preface over `io` and starts the connection's task.
    pub async fn handshake<T>(
        io: T,
        origin: &Origin,
        via: Option<&Arc<Proxy>>,
        opened: Timings,
    ) -> Result<H2Conn, String>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (send, connection) = h2::client::handshake(io)
            .await
            .map_err(|e| format!("HTTP/2 handshake with {}: {e}", origin.host))?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::trace!(target: "http_client", "HTTP/2 connection ended: {e}");
            }
        });
        Ok(H2Conn {
            route: Route::new(origin, via),
            send,
            opened,
        })
    }

    /// See [`crate::conn::Conn::take_opened`].
    pub fn take_opened(&mut self) -> Timings {
        std::mem::take(&mut self.opened)
    }

    /// Sends one request on a new stream and reads its whole response,
    /// with its time to first byte and receive phases. An error (a reset
    /// stream, a GOAWAY, a closed connection) fails this request only; the
    /// caller drops a connection that can take no more.
    pub async fn exchange(
        &mut self,
        origin: &Origin,
        head: &RequestHead<'_>,
        body: &[u8],
        began: Instant,
    ) -> Result<(Message, ExchangeTimes), ExchangeError> {
        let mut clock = ExchangeClock::start_at(began);
        let request = request(origin, head).map_err(ExchangeError::Failed)?;
        let fail = |e: h2::Error| ExchangeError::Failed(format!("HTTP/2: {e}"));
        // A connection the server has closed (GOAWAY) takes no new stream:
        // nothing was sent, so the request may go on a new one.
        let mut send = self
            .send
            .clone()
            .ready()
            .await
            .map_err(|e| ExchangeError::Stale(format!("HTTP/2: {e}")))?;
        let (response, mut stream) = send.send_request(request, body.is_empty()).map_err(fail)?;
        if !body.is_empty() {
            stream
                .send_data(Bytes::copy_from_slice(body), true)
                .map_err(fail)?;
        }
        let response = response.await.map_err(fail)?;
        clock.got_bytes();
        let (parts, mut recv) = response.into_parts();
        let mut data = Vec::new();
        let mut frames = 0u32;
        while let Some(chunk) = recv.data().await {
            let chunk = chunk.map_err(fail)?;
            frames += 1;
            let _ = recv.flow_control().release_capacity(chunk.len());
            if data.len() + chunk.len() > MAX_BODY {
                return Err(ExchangeError::Failed(format!(
                    "HTTP/2: the body is over {MAX_BODY} bytes"
                )));
            }
            data.extend_from_slice(&chunk);
        }
        let message = Message::from_parts(parts.status.as_u16(), &parts.headers, &data);
        Ok((message, clock.finish(frames == 0)))
    }

    /// Whether the connection can carry another request.
    pub fn is_open(&mut self) -> bool {
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        !matches!(
            self.send.poll_ready(&mut cx),
            std::task::Poll::Ready(Err(_))
        )
    }
}

/// The HTTP/1.1 head as an HTTP/2 request: the pseudo-headers from the
/// URL, the script's fields without those HTTP/2 forbids (RFC 9113 8.2.2:
/// connection-specific ones), and the client's own (user agent, cookies,
/// codings, content length).
fn request(origin: &Origin, head: &RequestHead<'_>) -> Result<http::Request<()>, String> {
    let uri = format!("{}{}", origin.prefix, head.target);
    let mut builder = http::Request::builder()
        .method(head.method.clone())
        .uri(&uri)
        .version(http::Version::HTTP_2);
    let fields = builder.headers_mut().expect("a fresh builder has headers");
    copy_fields(head.headers, fields);
    let mut add = |name: HeaderName, value: &[u8]| {
        if !fields.contains_key(&name)
            && let Ok(v) = HeaderValue::from_bytes(value)
        {
            fields.insert(name, v);
        }
    };
    add(header::USER_AGENT, USER_AGENT.as_bytes());
    if let Some(cookie) = head.cookie {
        add(header::COOKIE, cookie.as_bytes());
    }
    if let Some(codings) = head.accept_encoding {
        add(header::ACCEPT_ENCODING, codings);
    }
    if head.body_len > 0 {
        add(header::CONTENT_LENGTH, head.body_len.to_string().as_bytes());
    }
    builder
        .body(())
        .map_err(|e| format!("HTTP/2: cannot send {uri}: {e}"))
}

fn copy_fields(from: &HeaderMap, to: &mut HeaderMap) {
    for (name, value) in from {
        let forbidden = name == header::HOST
            || name == header::CONNECTION
            || name == header::TRANSFER_ENCODING
            || name == header::UPGRADE
            || name == header::CONTENT_LENGTH
            || name.as_str() == "keep-alive"
            || name.as_str() == "proxy-connection"
            || (name == header::TE && value != "trailers");
        if !forbidden {
            to.append(name.clone(), value.clone());
        }
    }
}
