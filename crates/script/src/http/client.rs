//! Sending one scripted request: connection reuse, the cookie jar,
//! redirects and the overall timeout. Everything here belongs to one user;
//! nothing is shared across users except the core's TLS configuration.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use cookie_store::CookieStore;
use http::header::{self, HeaderMap};
use http::{Method, Uri};
use tokio::time::Instant;
use url::Url;

use super::conn::{Conn, ExchangeError};
use super::deadline::{self, Timer};
use super::origin::Origin;
use super::pool::Pool;
use super::wire::{Message, RequestHead};
use crate::shared::Shared;

/// A user's connections and cookies, created on its first request so idle
/// users cost nothing here.
#[derive(Default)]
pub struct ClientState {
    pub pool: Pool,
    /// Created at the first `Set-Cookie`.
    pub jar: Option<Box<CookieStore>>,
}

/// A request as the script described it, ready to send.
pub struct Prepared {
    pub method: Method,
    pub origin: Rc<Origin>,
    pub uri: Uri,
    /// The script's own headers (and the body's content type).
    pub headers: HeaderMap,
    pub body: Bytes,
    pub timeout: Duration,
    /// 0: return 3xx responses as they are.
    pub max_redirects: u32,
}

/// What came back, after redirects.
pub struct Reply {
    pub origin: Rc<Origin>,
    pub uri: Uri,
    /// Status 0 and empty when no response came.
    pub message: Message,
    pub error: Option<String>,
}

/// Sends `p`, started at `start`, following redirects, within its timeout.
pub async fn execute(
    shared: &Shared,
    state: &RefCell<ClientState>,
    timer: &Timer,
    p: Prepared,
    start: Instant,
) -> Reply {
    let (origin, uri, timeout) = (p.origin.clone(), p.uri.clone(), p.timeout);
    match deadline::within(timer, start + timeout, follow(shared, state, p)).await {
        Some(reply) => reply,
        None => Reply {
            origin,
            uri,
            message: Message::default(),
            error: Some(format!("timeout after {}", secs(timeout))),
        },
    }
}

fn secs(d: Duration) -> String {
    format!("{}s", d.as_secs_f64())
}

async fn follow(shared: &Shared, state: &RefCell<ClientState>, p: Prepared) -> Reply {
    let Prepared {
        mut method,
        mut origin,
        mut uri,
        headers: mut user_headers,
        mut body,
        max_redirects,
        ..
    } = p;
    let mut hop = 0;
    loop {
        let result = send(shared, state, &origin, &method, &uri, &user_headers, &body).await;
        let message = match result {
            Ok(m) => m,
            Err(error) => {
                return Reply {
                    origin,
                    uri,
                    message: Message::default(),
                    error: Some(error),
                };
            }
        };
        if message.sets_cookie {
            store_cookies(state, &origin, &uri, &message);
        }
        let redirect = max_redirects > 0 && (300..400).contains(&message.status);
        let target = if redirect {
            redirect_target(&origin, &uri, &message)
        } else {
            None
        };
        let Some((next_origin, next_uri)) = target else {
            return Reply {
                origin,
                uri,
                message,
                error: None,
            };
        };
        if hop >= max_redirects {
            return Reply {
                origin,
                uri,
                message,
                error: Some(format!("too many redirects (more than {max_redirects})")),
            };
        }
        hop += 1;
        // 307/308 repeat the request as it was; the others become a GET
        // without body, as browsers and python-requests do.
        if !matches!(message.status, 307 | 308) && method != Method::HEAD {
            method = Method::GET;
            body = Bytes::new();
            // The body is gone, and with it what described it.
            user_headers.remove(header::CONTENT_TYPE);
        }
        origin = next_origin;
        uri = next_uri;
    }
}

/// The `Cookie` header from the jar, unless the script set its own.
fn cookie_header(
    state: &RefCell<ClientState>,
    origin: &Origin,
    uri: &Uri,
    user: &HeaderMap,
) -> Option<String> {
    let st = state.borrow();
    let jar = st.jar.as_deref()?;
    if user.contains_key(header::COOKIE) {
        return None;
    }
    let url = absolute_url(origin, uri)?;
    let mut cookie = String::new();
    for (name, value) in jar.get_request_values(&url) {
        if !cookie.is_empty() {
            cookie.push_str("; ");
        }
        cookie.push_str(name);
        cookie.push('=');
        cookie.push_str(value);
    }
    // What a header value may not hold (the jar parsed it from one, so
    // this is only a safeguard).
    let valid = !cookie.is_empty() && !cookie.bytes().any(|b| b < 0x20 && b != b'\t' || b == 0x7f);
    valid.then_some(cookie)
}

fn absolute_url(origin: &Origin, uri: &Uri) -> Option<Url> {
    let pq = uri.path_and_query().map_or("/", |p| p.as_str());
    Url::parse(&origin.url_of(pq)).ok()
}

fn store_cookies(state: &RefCell<ClientState>, origin: &Origin, uri: &Uri, message: &Message) {
    let Some(url) = absolute_url(origin, uri) else {
        return;
    };
    let mut st = state.borrow_mut();
    let jar = st.jar.get_or_insert_with(Default::default);
    for v in message.headers().all("set-cookie") {
        if let Ok(s) = std::str::from_utf8(v) {
            // A cookie the jar refuses (bad domain, malformed) is dropped,
            // as a browser would.
            let _ = jar.parse(s, &url);
        }
    }
}

fn redirect_target(origin: &Rc<Origin>, uri: &Uri, message: &Message) -> Option<(Rc<Origin>, Uri)> {
    let location = std::str::from_utf8(message.header("location")?).ok()?;
    let base = absolute_url(origin, uri)?;
    let next = base.join(location.trim()).ok()?;
    let next_origin = Origin::from_url(&next).ok()?;
    let mut pq = next.path().to_string();
    if let Some(q) = next.query() {
        pq.push('?');
        pq.push_str(q);
    }
    let next_uri = Uri::try_from(pq).ok()?;
    let next_origin = if next_origin.same_endpoint(origin) {
        origin.clone()
    } else {
        Rc::new(next_origin)
    };
    Some((next_origin, next_uri))
}

/// One request on one connection, reusing a pooled connection when there
/// is one. A reused connection found closed before any byte of the
/// response came is replaced once, for a request that may be sent twice
/// (RFC 9110's idempotent methods); for the others the pool first checks
/// that the server has not closed the connection while it was idle.
async fn send(
    shared: &Shared,
    state: &RefCell<ClientState>,
    origin: &Origin,
    method: &Method,
    uri: &Uri,
    user_headers: &HeaderMap,
    body: &Bytes,
) -> Result<Message, String> {
    let cookie = cookie_header(state, origin, uri, user_headers);
    let head = RequestHead {
        method,
        target: uri.path_and_query().map_or("/", |p| p.as_str()),
        host: origin.authority.as_bytes(),
        headers: user_headers,
        cookie: cookie.as_deref(),
        body_len: body.len(),
    };
    let idempotent = method.is_idempotent();
    let pooled = state.borrow_mut().pool.take(origin, !idempotent);
    let mut conn = match pooled {
        Some(c) => c,
        None => connect(shared, origin).await?,
    };
    let mut result = conn.exchange(&head, body).await;
    if let Err(ExchangeError::Stale(e)) = &result
        && idempotent
    {
        tracing::trace!(target: "script", "stale keep-alive connection: {e}");
        conn = connect(shared, origin).await?;
        result = conn.exchange(&head, body).await;
    }
    match result {
        Ok(message) => {
            state.borrow_mut().pool.put(conn);
            Ok(message)
        }
        Err(ExchangeError::Stale(e) | ExchangeError::Failed(e)) => Err(e),
    }
}

/// Boxed so the (large, TLS-handshake-sized) connect future is not part
/// of every request's future, which lives inside every user's future.
fn connect<'a>(
    shared: &'a Shared,
    origin: &'a Origin,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Box<Conn>, String>> + 'a>> {
    Box::pin(Conn::connect(origin, || shared.tls()))
}
