//! `self.http`: the per-user HTTP client as Lua sees it. This module turns
//! a script's call (`self.http:get(path, opts)`) into an
//! [`http_client::Request`], sends it on the user's [`Session`], and hands back a response object (`response_ud.rs`) whose stats
//! entry is recorded by the catch_response rules in `response.rs`.
//!
//! The methods are small Lua functions: a synchronous Rust call prepares the
//! request and parks it in the user's context, then the function yields its
//! coroutine; the user's driver (`user.rs`) sends the request and resumes
//! the coroutine with the response. This keeps the per-request path free of
//! mlua's async machinery (a boxed future and an internal userdata per
//! call), which dominated the profile.

pub mod identity;
mod options;
pub mod response;
#[allow(unsafe_code)]
pub mod response_ud;
pub mod type_options;

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use http::{Method, Uri};
use mlua::{Lua, Table, UserData, UserDataMethods, Value};
use tokio::time::Instant;

use http_client::{Origin, Reply, Request, Session, encode_target, is_absolute};

use crate::lua_env::{LuaEnv, Op, UserCtx};
use crate::luax::{fault, type_name};
use identity::{ClientCert, SessionsByCert};
use options::RequestOptions;
use response::Outcome;
use type_options::TypeHttp;

const MAX_REDIRECTS: u32 = 10;

/// One user's client: the Lua-side facts around its [`Session`].
pub struct Client {
    pub user: Rc<UserCtx>,
    pub shared: Rc<LuaEnv>,
    /// The user type's host, or `-H` when given.
    pub base: Option<Rc<Origin>>,
    /// The user type's HTTP settings (Accept-Encoding, DNS overrides).
    http: Rc<TypeHttp>,
    session: Session,
    /// Sessions of the client certificates its requests chose.
    by_cert: SessionsByCert,
    /// The last relative URL requested without a query, its request target
    /// and default name: tasks mostly repeat the same few URLs, and this
    /// skips a parse and two allocations when they do.
    last: RefCell<Option<LastPath>>,
}

struct LastPath {
    url: Box<str>,
    uri: Uri,
    name: Rc<str>,
}

/// A request waiting for the user's driver to send it.
pub struct HttpOp {
    client: Rc<Client>,
    prepared: Request,
    name: Rc<str>,
    /// The request's or the user type's certificate, if any.
    cert: Option<ClientCert>,
}

impl HttpOp {
    /// The request's method and name, to count it if it is cut short.
    pub fn label(&self) -> (http::Method, Rc<str>) {
        (self.prepared.method.clone(), self.name.clone())
    }

    /// Sends the request and makes its outcome the user's pending response.
    pub async fn run(mut self: Box<Self>) -> Rc<Outcome> {
        // Borrowed in place: the request is sent from its box, not moved.
        let HttpOp {
            client,
            prepared,
            name,
            cert,
        } = &mut *self;
        let method = prepared.method.clone();
        let start = Instant::now();
        let chosen = cert.as_ref().map(|cert| client.identity(cert));
        let picked = match &chosen {
            None => Ok((&client.session, &client.shared.tls)),
            Some(Ok((session, tls))) => Ok((&**session, &**tls)),
            Some(Err(e)) => Err(e.clone()),
        };
        // One call site: a second one made `Session::send` an out-of-line
        // future, moved (copied) twice per request.
        let reply = match picked {
            Ok((session, tls)) => session.send(tls, prepared, start).await,
            Err(e) => Reply {
                origin: prepared.origin.clone(),
                uri: std::mem::take(&mut prepared.uri),
                message: Default::default(),
                error: Some(http_client::Error::Transport(e)),
                wire_body_len: 0,
                timings: Default::default(),
                proto: Default::default(),
                finished: Instant::now(),
            },
        };
        let elapsed_us = reply.finished.saturating_duration_since(start).as_micros() as u64;
        let outcome = Rc::new(Outcome {
            shared: client.shared.clone(),
            method,
            name: name.clone(),
            origin: reply.origin,
            uri: reply.uri,
            message: reply.message,
            elapsed_us,
            due_latency_us: client.user.lateness_us.get().map(|late| elapsed_us + late),
            error: reply.error.map(|e| e.to_string()),
            wire_size: reply.wire_body_len as u64,
            timings: reply.timings,
            proto: reply.proto,
            recorded: Cell::new(false),
        });
        *client.user.pending.borrow_mut() = Some(outcome.clone());
        outcome
    }
}

impl Client {
    pub fn new(
        user: Rc<UserCtx>,
        shared: Rc<LuaEnv>,
        base: Option<Rc<Origin>>,
        http: Rc<TypeHttp>,
    ) -> Self {
        Client {
            user,
            shared,
            base,
            session: Session::with_network(http.hosts.clone(), http.proxies.clone()),
            by_cert: SessionsByCert::default(),
            http,
            last: RefCell::new(None),
        }
    }

    /// The session and TLS configuration of `cert`; a certificate that
    /// cannot be read fails the request, naming the file.
    fn identity(&self, cert: &ClientCert) -> Result<(Rc<Session>, Rc<http_client::Tls>), String> {
        let shared = &self.shared;
        let tls =
            shared
                .identities
                .tls(cert, shared.config.insecure_tls, &shared.config.http.tls)?;
        let session = self.by_cert.get(cert, || {
            Session::with_network(self.http.hosts.clone(), self.http.proxies.clone())
        });
        Ok((session, tls))
    }

    fn prepare(
        &self,
        method: Method,
        url: Value,
        opts: Value,
    ) -> mlua::Result<(Request, Rc<str>, Option<ClientCert>)> {
        let url = match url {
            Value::String(s) => s,
            other => {
                return Err(fault(format!(
                    "{method}: the URL must be a string, got a {}",
                    type_name(&other)
                )));
            }
        };
        let url = url.to_str()?;
        let opts = match opts {
            Value::Nil => None,
            Value::Table(t) => Some(RequestOptions::parse(&method, t, &self.shared.base_dir)?),
            other => {
                return Err(fault(format!(
                    "{method} {}: options must be a table, got a {}",
                    &*url,
                    type_name(&other)
                )));
            }
        };
        let opts = opts.unwrap_or_default();
        let query = opts.query.as_deref();
        let (origin, uri, default_name) = match (query, &self.base, self.cached(&url)) {
            (None, Some(base), Some((uri, name))) => (base.clone(), uri, Some(name)),
            _ => {
                let (origin, uri) = self.target(&method, &url, query)?;
                (origin, uri, None)
            }
        };
        let name: Rc<str> = match (opts.name, default_name) {
            (Some(n), _) => Rc::from(n),
            (None, Some(n)) => n,
            (None, None) => {
                let name: Rc<str> = match query {
                    Some(q) => Rc::from(format!(
                        "{}{}{q}",
                        &*url,
                        if url.contains('?') { '&' } else { '?' }
                    )),
                    None => Rc::from(&*url),
                };
                if query.is_none() && !is_absolute(&url) {
                    *self.last.borrow_mut() = Some(LastPath {
                        url: Box::from(&*url),
                        uri: uri.clone(),
                        name: name.clone(),
                    });
                }
                name
            }
        };
        let prepared = Request {
            method,
            origin,
            uri,
            headers: opts.headers,
            body: opts.body,
            timeout: opts.timeout,
            max_redirects: if opts.allow_redirects {
                MAX_REDIRECTS
            } else {
                0
            },
            accept_encoding: match opts.accept_encoding {
                Some(a) => a,
                None => self.http.accept_encoding.clone(),
            },
            proxy: opts.proxy,
            version: opts.version.unwrap_or(self.http.version),
        };
        let cert = opts.client_cert.or_else(|| self.http.client_cert.clone());
        Ok((prepared, name, cert))
    }

    fn cached(&self, url: &str) -> Option<(Uri, Rc<str>)> {
        match &*self.last.borrow() {
            Some(last) if &*last.url == url => Some((last.uri.clone(), last.name.clone())),
            _ => None,
        }
    }

    /// Where a script URL goes: absolute URLs as they are, paths joined to
    /// the host by concatenation (Locust's rule).
    fn target(
        &self,
        method: &Method,
        url: &str,
        query: Option<&str>,
    ) -> mlua::Result<(Rc<Origin>, Uri)> {
        let (origin, mut pq) = if is_absolute(url) {
            let parsed = url::Url::parse(url)
                .map_err(|e| fault(format!("{method} {url}: invalid URL: {e}")))?;
            let o = Origin::from_url(&parsed).map_err(|e| fault(format!("{method} {url}: {e}")))?;
            let o = match &self.base {
                Some(b) if b.same_endpoint(&o) => b.clone(),
                _ => Rc::new(o),
            };
            let mut pq = parsed.path().to_string();
            if let Some(q) = parsed.query() {
                pq.push('?');
                pq.push_str(q);
            }
            (o, pq)
        } else {
            let Some(base) = &self.base else {
                return Err(fault(format!(
                    "{method} {url}: no host to send it to: give the user type a host (swarmer.user {{ host = \"http://...\" }}), run with -H/--host, or use a full URL"
                )));
            };
            let mut pq = String::with_capacity(base.base_path.len() + url.len() + 1);
            pq.push_str(&base.base_path);
            if !url.starts_with('/') {
                pq.push('/');
            }
            pq.push_str(url);
            (base.clone(), pq)
        };
        if let Some(q) = query {
            pq.push(if pq.contains('?') { '&' } else { '?' });
            pq.push_str(q);
        }
        // Spaces and non-ASCII text are percent-encoded as browsers do,
        // never sent raw; after that every target is a valid URI.
        let uri = match encode_target(&pq) {
            std::borrow::Cow::Borrowed(_) => Uri::try_from(pq),
            std::borrow::Cow::Owned(encoded) => Uri::try_from(encoded),
        }
        .map_err(|e| fault(format!("{method} {url}: invalid path ({e})")))?;
        Ok((origin, uri))
    }
}

fn method_from(v: &str) -> mlua::Result<Method> {
    if let Some(m) = VERBS.iter().find(|m| m.as_str() == v) {
        return Ok(m.clone());
    }
    Method::from_bytes(v.to_ascii_uppercase().as_bytes())
        .map_err(|_| fault(format!("invalid HTTP method {v:?}")))
}

/// `self.http` in Lua: a handle on the user's [`Client`].
pub struct Http(pub Rc<Client>);

/// The Lua side of every request method: prepare (Rust, may raise a clear
/// error), then yield to the user's driver, which resumes with the response.
const METHODS: &str = r#"
local prepare, yield = ...
local function verb(m)
  return function(self, url, opts)
    prepare(self, m, url, opts)
    return yield()
  end
end
return {
  get = verb(1), post = verb(2), put = verb(3), patch = verb(4),
  delete = verb(5), head = verb(6), options = verb(7),
  request = function(self, m, url, opts)
    prepare(self, m, url, opts)
    return yield()
  end,
}
"#;

/// The methods with their own Lua function, by the index `METHODS` passes
/// (an index avoids converting a method name on every request).
const VERBS: [Method; 7] = [
    Method::GET,
    Method::POST,
    Method::PUT,
    Method::PATCH,
    Method::DELETE,
    Method::HEAD,
    Method::OPTIONS,
];

/// Parks the request described by a script call in the user's context.
fn prepare(_: &Lua, (this, method, url, opts): (Value, Value, Value, Value)) -> mlua::Result<()> {
    let method = match method {
        Value::Integer(i) if (1..=VERBS.len() as i64).contains(&i) => VERBS[i as usize - 1].clone(),
        Value::String(s) => method_from(&s.to_str()?)?,
        other => {
            return Err(fault(format!(
                "request: the method must be a string such as \"GET\", got a {}",
                type_name(&other)
            )));
        }
    };
    let client = match &this {
        Value::UserData(ud) => ud.borrow::<Http>().map(|h| h.0.clone()).ok(),
        _ => None,
    };
    let Some(client) = client else {
        return Err(fault(format!(
            "{method}: call it as self.http:{}(url, opts), with a colon",
            method.as_str().to_ascii_lowercase()
        )));
    };
    // The previous response gets its default verdict now, before this
    // request can change what the script thinks of it.
    client.user.settle_pending();
    let (prepared, name, cert) = client.prepare(method, url, opts)?;
    let user = client.user.clone();
    *user.op.borrow_mut() = Some(Op::Http(Box::new(HttpOp {
        client,
        prepared,
        name,
        cert,
    })));
    Ok(())
}

impl UserData for Http {
    fn add_fields<F: mlua::UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field_with("__index", |lua: &Lua| {
            let coroutine: Table = lua.globals().get("coroutine")?;
            let yield_fn: mlua::Function = coroutine.get("yield")?;
            let prepare = lua.create_function(prepare)?;
            lua.load(METHODS)
                .set_name("=swarmer.http")
                .call::<Table>((prepare, yield_fn))
        });
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method("__tostring", |_, this, ()| {
            Ok(match &this.0.base {
                Some(b) => format!("<http client for {}>", b.prefix),
                None => "<http client>".to_string(),
            })
        });
    }
}
