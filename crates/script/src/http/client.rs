//! Sending one scripted request: connection reuse, the cookie jar,
//! redirects and the overall timeout. Everything here belongs to one user;
//! nothing is shared across users except the core's TLS configuration.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use cookie_store::CookieStore;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use url::Url;

use super::conn::{Conn, Pool};
use super::origin::Origin;
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
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub error: Option<String>,
}

static USER_AGENT: HeaderValue =
    HeaderValue::from_static(concat!("swarmer/", env!("CARGO_PKG_VERSION")));

pub async fn execute(shared: &Shared, state: &RefCell<ClientState>, p: Prepared) -> Reply {
    let (origin, uri, timeout) = (p.origin.clone(), p.uri.clone(), p.timeout);
    match tokio::time::timeout(timeout, follow(shared, state, p)).await {
        Ok(reply) => reply,
        Err(_) => Reply {
            origin,
            uri,
            status: 0,
            headers: HeaderMap::new(),
            body: Bytes::new(),
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
        let headers = request_headers(state, &origin, &uri, &user_headers);
        let result = send(shared, state, &origin, &method, &uri, headers, body.clone()).await;
        let (status, headers, resp_body) = match result {
            Ok(r) => r,
            Err(error) => {
                return Reply {
                    origin,
                    uri,
                    status: 0,
                    headers: HeaderMap::new(),
                    body: Bytes::new(),
                    error: Some(error),
                };
            }
        };
        if headers.contains_key(header::SET_COOKIE) {
            store_cookies(state, &origin, &uri, &headers);
        }
        let target = if max_redirects > 0 && status.is_redirection() {
            redirect_target(&origin, &uri, &headers)
        } else {
            None
        };
        let Some((next_origin, next_uri)) = target else {
            return Reply {
                origin,
                uri,
                status: status.as_u16(),
                headers,
                body: resp_body,
                error: None,
            };
        };
        if hop >= max_redirects {
            return Reply {
                origin,
                uri,
                status: status.as_u16(),
                headers,
                body: resp_body,
                error: Some(format!("too many redirects (more than {max_redirects})")),
            };
        }
        hop += 1;
        // 307/308 repeat the request as it was; the others become a GET
        // without body, as browsers and python-requests do.
        if !matches!(status.as_u16(), 307 | 308) && method != Method::HEAD {
            method = Method::GET;
            body = Bytes::new();
            // The body is gone, and with it what described it.
            user_headers.remove(header::CONTENT_TYPE);
        }
        origin = next_origin;
        uri = next_uri;
    }
}

fn request_headers(
    state: &RefCell<ClientState>,
    origin: &Origin,
    uri: &Uri,
    user: &HeaderMap,
) -> HeaderMap {
    let mut h = if user.is_empty() {
        HeaderMap::with_capacity(4)
    } else {
        user.clone()
    };
    h.insert(header::HOST, origin.authority.clone());
    if !h.contains_key(header::USER_AGENT) {
        h.insert(header::USER_AGENT, USER_AGENT.clone());
    }
    let st = state.borrow();
    if let Some(jar) = st.jar.as_deref()
        && !h.contains_key(header::COOKIE)
        && let Some(url) = absolute_url(origin, uri)
    {
        let mut cookie = String::new();
        for (name, value) in jar.get_request_values(&url) {
            if !cookie.is_empty() {
                cookie.push_str("; ");
            }
            cookie.push_str(name);
            cookie.push('=');
            cookie.push_str(value);
        }
        if let Ok(v) = HeaderValue::from_str(&cookie)
            && !cookie.is_empty()
        {
            h.insert(header::COOKIE, v);
        }
    }
    h
}

fn absolute_url(origin: &Origin, uri: &Uri) -> Option<Url> {
    let pq = uri.path_and_query().map_or("/", |p| p.as_str());
    Url::parse(&origin.url_of(pq)).ok()
}

fn store_cookies(state: &RefCell<ClientState>, origin: &Origin, uri: &Uri, headers: &HeaderMap) {
    let Some(url) = absolute_url(origin, uri) else {
        return;
    };
    let mut st = state.borrow_mut();
    let jar = st.jar.get_or_insert_with(Default::default);
    for v in headers.get_all(header::SET_COOKIE) {
        if let Ok(s) = v.to_str() {
            // A cookie the jar refuses (bad domain, malformed) is dropped,
            // as a browser would.
            let _ = jar.parse(s, &url);
        }
    }
}

fn redirect_target(
    origin: &Rc<Origin>,
    uri: &Uri,
    headers: &HeaderMap,
) -> Option<(Rc<Origin>, Uri)> {
    let location = headers.get(header::LOCATION)?.to_str().ok()?;
    let base = absolute_url(origin, uri)?;
    let next = base.join(location).ok()?;
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

type Exchange = (StatusCode, HeaderMap, Bytes);

/// One request on one connection, reusing a pooled connection when there is
/// one. A pooled connection the server closed meanwhile is replaced once.
async fn send(
    shared: &Shared,
    state: &RefCell<ClientState>,
    origin: &Origin,
    method: &Method,
    uri: &Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Exchange, String> {
    let mut req = Request::new(Full::new(body));
    *req.method_mut() = method.clone();
    *req.uri_mut() = uri.clone();
    *req.headers_mut() = headers;
    let pooled = state.borrow_mut().pool.take(origin);
    let mut conn = match pooled {
        Some(c) => c,
        None => connect(shared, origin).await?,
    };
    loop {
        // A kept-alive connection is usually ready at once; polling for it
        // costs a round through hyper's dispatcher.
        let ready = if conn.sender.is_ready() {
            Ok(())
        } else {
            conn.driver.drive(conn.sender.ready()).await
        };
        let sent = match ready {
            Ok(()) => conn.driver.drive(conn.sender.try_send_request(req)).await,
            Err(e) if conn.reused => {
                tracing::trace!(target: "script", "stale keep-alive connection: {e}");
                conn = connect(shared, origin).await?;
                continue;
            }
            Err(e) => return Err(describe(&e)),
        };
        match sent {
            Ok(resp) => {
                let (parts, incoming) = resp.into_parts();
                let collected = conn.driver.drive(incoming.collect()).await;
                let body = collected.map_err(|e| describe(&e))?.to_bytes();
                state.borrow_mut().pool.put(conn);
                let (headers, body) = detach(parts.headers, body);
                return Ok((parts.status, headers, body));
            }
            Err(mut e) => match e.take_message() {
                // Never written: safe to send again on a fresh connection.
                Some(r) if conn.reused => {
                    req = r;
                    conn = connect(shared, origin).await?;
                }
                _ => return Err(describe(e.error())),
            },
        }
    }
}

/// hyper hands out header values and small bodies as slices of its 8 KiB
/// read buffer. A response kept by the script (until Lua collects it) would
/// pin that buffer, and hyper would allocate a fresh one for every
/// response: a large allocation on each request. Copying the few small
/// pieces lets hyper reuse its buffer.
fn detach(mut headers: HeaderMap, body: Bytes) -> (HeaderMap, Bytes) {
    // One allocation for all values and the body, sliced back out.
    let small_body = body.len() <= 16 * 1024;
    let total: usize =
        headers.values().map(|v| v.len()).sum::<usize>() + if small_body { body.len() } else { 0 };
    let mut buf = bytes::BytesMut::with_capacity(total);
    for v in headers.values() {
        buf.extend_from_slice(v.as_bytes());
    }
    if small_body {
        buf.extend_from_slice(&body);
    }
    let mut all = buf.freeze();
    for v in headers.values_mut() {
        let copy = all.split_to(v.len());
        if let Ok(copy) = HeaderValue::from_maybe_shared(copy) {
            *v = copy;
        }
    }
    let body = if small_body { all } else { body };
    (headers, body)
}

/// Boxed so the (large, TLS-handshake-sized) connect future is not part
/// of every request's future, which is created and moved per request.
fn connect<'a>(
    shared: &'a Shared,
    origin: &'a Origin,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Box<Conn>, String>> + 'a>> {
    Box::pin(Conn::connect(origin, || shared.tls()))
}

/// hyper's errors name the kind ("connection closed before message
/// completed"); add the cause, which says why.
fn describe(e: &hyper::Error) -> String {
    match std::error::Error::source(e) {
        Some(cause) => format!("{e}: {cause}"),
        None => e.to_string(),
    }
}
