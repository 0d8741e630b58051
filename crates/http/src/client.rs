//! Sending one request for one user: connection reuse, the cookie jar,
//! redirects, proxies and the overall timeout. Everything here belongs to one user;
//! nothing is shared across users except the core's TLS configuration.

use std::cell::RefCell;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cookie_store::CookieStore;
use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Uri};
use tokio::time::Instant;
use url::Url;

use crate::Error;
use crate::conn::ExchangeError;
use crate::deadline::{self, Timer};
use crate::decode::decode_body;
use crate::dial::{self, Dialed};
use crate::origin::{Origin, Scheme};
use crate::pool::Pool;
use crate::proxy::{Proxies, Proxy, ProxyChoice};
use crate::settings::HostOverride;
use crate::timings::Timings;
use crate::tls::Tls;
use crate::version::{HttpVersion, Proto};
use crate::wire::{Message, RequestHead};

/// One user's connections, cookies and timeout timer. All start empty and
/// allocate on first use, so an idle user costs a few dozen bytes.
#[derive(Default)]
pub struct Session {
    state: RefCell<ClientState>,
    timer: Timer,
    /// DNS overrides (`--resolve`, the script's `hosts`): shared by the
    /// users of a type, looked up only when a connection is opened.
    hosts: Rc<[HostOverride]>,
    /// The run's proxies (`--proxy`, the environment).
    proxies: Arc<Proxies>,
}

#[derive(Default)]
struct ClientState {
    pool: Pool,
    /// Created at the first `Set-Cookie`.
    jar: Option<Box<CookieStore>>,
}

/// A request ready to send.
pub struct Request {
    pub method: Method,
    pub origin: Rc<Origin>,
    pub uri: Uri,
    /// The script's own headers (and the body's content type).
    pub headers: HeaderMap,
    pub body: Bytes,
    pub timeout: Duration,
    /// 0: return 3xx responses as they are.
    pub max_redirects: u32,
    /// The `Accept-Encoding` to send unless the script set one; `None`
    /// sends none. Whatever coding comes back is decoded either way.
    pub accept_encoding: Option<HeaderValue>,
    /// Whether to go through a proxy, and which.
    pub proxy: ProxyChoice,
    /// Which HTTP it may speak.
    pub version: HttpVersion,
}

/// What came back, after redirects.
pub struct Reply {
    pub origin: Rc<Origin>,
    pub uri: Uri,
    /// Status 0 and empty when no response came.
    pub message: Message,
    /// Set when no usable response came (the message is then empty),
    /// when redirects did not end, or when the body could not be decoded
    /// (the message then holds it as received).
    pub error: Option<Error>,
    /// The body's size as received, before any content coding was undone
    /// (the message's body is the decoded one).
    pub wire_body_len: usize,
    /// Where the time went, every hop added up (zeros after a timeout).
    pub timings: Timings,
    /// The protocol of the last hop.
    pub proto: Proto,
    /// When the last response was complete, or the request gave up: its
    /// end, read off the exchange's own clock.
    pub finished: Instant,
}

impl Session {
    /// A session that connects to `hosts`' addresses for their names.
    pub fn with_hosts(hosts: Rc<[HostOverride]>) -> Self {
        Session::with_network(hosts, Arc::default())
    }

    /// A session with DNS overrides and the run's proxies.
    pub fn with_network(hosts: Rc<[HostOverride]>, proxies: Arc<Proxies>) -> Self {
        Session {
            hosts,
            proxies,
            ..Session::default()
        }
    }

    /// Sends `req`, counted as started at `start`, following redirects,
    /// within its timeout. Never fails: what went wrong is in the reply.
    ///
    /// `req` is borrowed, not taken: redirects rewrite it in place, and a
    /// request moved by value down the layers of futures was copied four
    /// times per request (it is over 300 bytes).
    pub async fn send(&self, tls: &Tls, req: &mut Request, start: Instant) -> Reply {
        let timeout = req.timeout;
        let net = Net {
            hosts: &self.hosts,
            proxies: &self.proxies,
        };
        let reply = {
            let follow = pin!(follow(tls, &self.state, net, req, start));
            deadline::within(&self.timer, start + timeout, follow).await
        };
        match reply {
            Some(reply) => reply,
            None => Reply {
                origin: req.origin.clone(),
                uri: req.uri.clone(),
                message: Message::default(),
                error: Some(Error::Timeout(timeout)),
                wire_body_len: 0,
                timings: Timings::default(),
                proto: Proto::default(),
                finished: Instant::now(),
            },
        }
    }
}

/// Where connections go: DNS overrides and proxies.
#[derive(Clone, Copy)]
struct Net<'a> {
    hosts: &'a [HostOverride],
    proxies: &'a Proxies,
}

impl Net<'_> {
    /// The proxy a request to `origin` takes under `choice`.
    fn proxy_for<'c>(&'c self, origin: &Origin, choice: &'c ProxyChoice) -> Option<&'c Arc<Proxy>> {
        choice.pick(self.proxies, origin)
    }
}

/// Sends `req` and follows its redirects, rewriting `req` for each hop.
async fn follow(
    tls: &Tls,
    state: &RefCell<ClientState>,
    net: Net<'_>,
    req: &mut Request,
    start: Instant,
) -> Reply {
    let mut hop = 0;
    let mut timings = Timings::default();
    let mut proto = Proto::default();
    loop {
        let exchange = Exchange {
            method: &req.method,
            uri: &req.uri,
            user_headers: &req.headers,
            accept_encoding: req.accept_encoding.as_ref(),
            body: &req.body,
            via: net.proxy_for(&req.origin, &req.proxy),
            hosts: net.hosts,
            version: req.version,
            start: (hop == 0).then_some(start),
        };
        let result = send(tls, state, &req.origin, &exchange).await;
        let (message, end) = match result {
            Ok(hop) => {
                timings.add(&hop.timings);
                proto = hop.proto;
                (hop.message, hop.end)
            }
            Err(error) => {
                return Reply {
                    origin: req.origin.clone(),
                    uri: std::mem::take(&mut req.uri),
                    message: Message::default(),
                    error: Some(Error::Transport(error)),
                    wire_body_len: 0,
                    timings,
                    proto,
                    finished: Instant::now(),
                };
            }
        };
        if message.sets_cookie {
            store_cookies(state, &req.origin, &req.uri, &message);
        }
        let redirect = req.max_redirects > 0 && (300..400).contains(&message.status);
        let target = if redirect {
            redirect_target(&req.origin, &req.uri, &message)
        } else {
            None
        };
        let Some((next_origin, next_uri)) = target else {
            let (origin, uri) = (req.origin.clone(), std::mem::take(&mut req.uri));
            return Reply {
                timings,
                proto,
                ..decoded(origin, uri, message, end)
            };
        };
        if hop >= req.max_redirects {
            return Reply {
                origin: req.origin.clone(),
                uri: std::mem::take(&mut req.uri),
                wire_body_len: message.body().len(),
                message,
                error: Some(Error::TooManyRedirects(req.max_redirects)),
                timings,
                proto,
                finished: end,
            };
        }
        hop += 1;
        // 307/308 repeat the request as it was; the others become a GET
        // without body, as browsers and python-requests do.
        if !matches!(message.status, 307 | 308) && req.method != Method::HEAD {
            req.method = Method::GET;
            req.body = Bytes::new();
            // The body is gone, and with it what described it.
            req.headers.remove(header::CONTENT_TYPE);
        }
        if !next_origin.same_endpoint(&req.origin) {
            drop_credentials(&mut req.headers);
        }
        req.origin = next_origin;
        req.uri = next_uri;
    }
}

/// The final reply, its body decoded when the server applied a content
/// coding. A body that does not decode fails the request and is kept as
/// it came.
fn decoded(origin: Rc<Origin>, uri: Uri, message: Message, finished: Instant) -> Reply {
    let wire_body_len = message.body().len();
    // Repeated fields list codings in the order applied, as one would.
    let coding = (message.content_encoded && wire_body_len > 0).then(|| {
        let fields = message.headers();
        fields
            .all("content-encoding")
            .collect::<Vec<_>>()
            .join(&b',')
    });
    let (message, error) = match coding.map(|c| decode_body(&c, message.body())) {
        Some(Ok(Some(body))) => (message.with_body(&body), None),
        Some(Err(e)) => (message, Some(Error::Decode(e))),
        None | Some(Ok(None)) => (message, None),
    };
    Reply {
        origin,
        uri,
        message,
        error,
        wire_body_len,
        timings: Timings::default(),
        proto: Proto::default(),
        finished,
    }
}

/// A redirect to another origin (scheme, host or port) must not carry the
/// script's credentials there: the new host was chosen by the server, not
/// by the script. Browsers, python-requests and Go do the same. Cookies
/// from the jar are not affected: they follow their own domain rules.
fn drop_credentials(headers: &mut HeaderMap) {
    for name in [
        header::AUTHORIZATION,
        header::COOKIE,
        header::PROXY_AUTHORIZATION,
    ] {
        headers.remove(name);
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
    let next_uri = Uri::try_from(crate::encode_target(&pq).as_ref()).ok()?;
    let next_origin = if next_origin.same_endpoint(origin) {
        origin.clone()
    } else {
        Rc::new(next_origin)
    };
    Some((next_origin, next_uri))
}

/// What one hop of a request sends.
#[derive(Clone, Copy)]
struct Exchange<'a> {
    method: &'a Method,
    uri: &'a Uri,
    user_headers: &'a HeaderMap,
    accept_encoding: Option<&'a HeaderValue>,
    body: &'a Bytes,
    /// The proxy this hop goes through.
    via: Option<&'a Arc<Proxy>>,
    hosts: &'a [HostOverride],
    version: HttpVersion,
    /// The request's start, on its first hop: a pooled connection's
    /// exchange counts from it rather than reading the clock again.
    start: Option<Instant>,
}

/// One request on one connection, reusing a pooled connection when there
/// is one. A reused connection found closed before any byte of the
/// response came is replaced once, for a request that may be sent twice
/// (RFC 9110's idempotent methods); for the others the pool first checks
/// that the server has not closed the connection while it was idle.
/// Returns the response with this hop's phases.
async fn send(
    tls: &Tls,
    state: &RefCell<ClientState>,
    origin: &Origin,
    ex: &Exchange<'_>,
) -> Result<Hop, String> {
    let Exchange {
        method, uri, body, ..
    } = *ex;
    let cookie = cookie_header(state, origin, uri, ex.user_headers);
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    // Plain HTTP through a proxy names the whole URL, and shows the
    // proxy its credentials; a tunnel carries the request as is.
    let forward = ex.via.filter(|_| origin.scheme == Scheme::Http);
    let absolute = forward.map(|_| origin.url_of(path));
    let head = RequestHead {
        method,
        target: absolute.as_deref().unwrap_or(path),
        host: origin.authority.as_bytes(),
        headers: ex.user_headers,
        cookie: cookie.as_deref(),
        accept_encoding: ex.accept_encoding.map(HeaderValue::as_bytes),
        proxy_auth: forward
            .and_then(|p| p.auth.as_ref())
            .map(HeaderValue::as_bytes),
        body_len: body.len(),
    };
    let idempotent = method.is_idempotent();
    let pooled = (state.borrow_mut().pool).take(origin, ex.via, ex.version, !idempotent);
    let (mut conn, began) = match pooled {
        Some(c) => (c, ex.start.unwrap_or_else(Instant::now)),
        None => (connect(tls, origin, ex).await?, Instant::now()),
    };
    let mut timings = conn.take_opened();
    let mut result = conn.exchange(origin, &head, body, began).await;
    if let Err(ExchangeError::Stale(e)) = &result
        && idempotent
    {
        tracing::trace!(target: "http_client", "stale keep-alive connection: {e}");
        conn = connect(tls, origin, ex).await?;
        timings.add(&conn.take_opened());
        result = conn.exchange(origin, &head, body, Instant::now()).await;
    }
    match result {
        Ok((message, times)) => {
            let proto = conn.proto();
            state.borrow_mut().pool.put(conn);
            timings.ttfb += times.ttfb;
            timings.receive += times.receive;
            Ok(Hop {
                message,
                timings,
                proto,
                end: times.end,
            })
        }
        Err(ExchangeError::Stale(e) | ExchangeError::Failed(e)) => Err(e),
    }
}

/// What one hop brought back.
struct Hop {
    message: Message,
    timings: Timings,
    proto: Proto,
    end: Instant,
}

/// DNS overrides apply to the proxy's name when there is one. Boxed so
/// the (large, TLS-handshake-sized) connect future is not part of every
/// request's future, which lives inside every user's future.
fn connect<'a>(
    tls: &'a Tls,
    origin: &'a Origin,
    ex: &Exchange<'a>,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Dialed, String>> + 'a>> {
    let (host, port) = dial::first_hop(origin, ex.via);
    let addr = crate::settings::lookup(ex.hosts, host, port);
    Box::pin(dial::open(origin, addr, ex.via, ex.version, tls))
}
