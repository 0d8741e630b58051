//! `self.ws`: WebSocket clients for scripts. `self.ws:connect(url, opts)`
//! dials with the http crate (its TLS configuration, `--resolve` and the
//! type's `hosts`, and its proxy rule: the run's `--proxy` or environment,
//! or the `proxy` option, through a CONNECT tunnel), upgrades with tokio-tungstenite and gives a WebSocket
//! object whose methods (`send`, `send_binary`, `recv`, `close`,
//! `request`) park their work for the user's driver like `self.http`
//! does (`io.rs`). What each records is in `session.rs`.
//!
//! `self.ws` is one table per Lua state: it acts for the running user.

mod options;
mod session;

use std::rc::{Rc, Weak};

use mlua::{Function, Lua, Table, UserData, UserDataMethods, Value};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::io::{self, Closable, Reply, Ret, park, wrapper};
use crate::lua_env::{LuaEnv, UserCtx};
use crate::luax::{fault, type_name};
use options::{ConnectOptions, RequestOptions, close_frame, recv_timeout};
use session::{Names, Session, Ws};

/// For the connection and upgrade unless `timeout` says otherwise (the
/// HTTP client's default).
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The `self.ws` table of a Lua state.
pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let wrap = wrapper(lua)?;
    let t = lua.create_table()?;
    t.raw_set(
        "connect",
        wrap.call::<Function>(lua.create_function(prepare_connect)?)?,
    )?;
    Ok(t)
}

fn prepare_connect(lua: &Lua, (this, url, opts): (Value, Value, Value)) -> mlua::Result<()> {
    if !matches!(this, Value::Table(_)) {
        return Err(fault(
            "connect: call it as self.ws:connect(url, opts), with a colon",
        ));
    }
    let url = match url {
        Value::String(s) => s.to_str()?.to_string(),
        other => {
            return Err(fault(format!(
                "self.ws:connect: the URL must be a string such as \"ws://host/path\", got a {}",
                type_name(&other)
            )));
        }
    };
    let origin = origin_of(&url)?;
    let opts = ConnectOptions::parse(opts)?;
    let shared = LuaEnv::from_lua(lua)?;
    let user = io::current_user(lua, "self.ws:connect")?;
    let name: Rc<str> = Rc::from(opts.name.clone().unwrap_or_else(|| url.clone()));
    let target = Target { url, origin };
    park(
        &user,
        connect(shared, Rc::downgrade(&user), target, opts, name),
    );
    Ok(())
}

/// Where a `connect` goes.
struct Target {
    url: String,
    /// The URL's endpoint as an HTTP origin (`ws` is `http`, `wss` is
    /// `https`): what the proxy rule and the dial read.
    origin: http_client::Origin,
}

/// Checks a WebSocket URL and gives its endpoint as an HTTP origin.
fn origin_of(url: &str) -> mlua::Result<http_client::Origin> {
    let mut parsed = url::Url::parse(url)
        .map_err(|e| fault(format!("self.ws:connect {url}: invalid URL: {e}")))?;
    let scheme = match parsed.scheme() {
        "ws" => "http",
        "wss" => "https",
        other => {
            return Err(fault(format!(
                "self.ws:connect {url}: the scheme must be ws:// or wss://, got {other}://"
            )));
        }
    };
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(fault(format!("self.ws:connect {url}: the URL has no host")));
    }
    // Both are special schemes with the same default ports, so this
    // cannot fail and keeps the port as written.
    let _ = parsed.set_scheme(scheme);
    http_client::Origin::from_url(&parsed).map_err(|e| fault(format!("self.ws:connect {url}: {e}")))
}

/// Dials and upgrades; records the upgrade; gives the WebSocket, or `nil`
/// and why (also in the failures table).
async fn connect(
    shared: Rc<LuaEnv>,
    user: Weak<UserCtx>,
    target: Target,
    opts: ConnectOptions,
    name: Rc<str>,
) -> Reply {
    let Some(owner) = user.upgrade() else {
        return Err("self.ws:connect: the user has ended".to_string());
    };
    let (hosts, stop) = (owner.hosts.clone(), owner.stop.clone());
    drop(owner);
    let start = Instant::now();
    let attempt = handshake(&shared, &hosts, &target, &opts);
    let limit = opts.timeout.unwrap_or(CONNECT_TIMEOUT);
    let result = tokio::time::timeout(limit, attempt)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "timeout after {}",
                humantime::format_duration(limit)
            ))
        });
    let elapsed_us = start.elapsed().as_micros() as u64;
    let names = Names::new(name);
    match result {
        Ok(ws) => {
            let session = Rc::new(Session::new(shared, names, ws, stop));
            session.record(&session.names.name, elapsed_us, 0, None);
            if let Some(owner) = user.upgrade() {
                let weak: Weak<dyn Closable> = Rc::downgrade(&session) as Weak<dyn Closable>;
                io::track(&owner, weak);
            }
            let make =
                move |lua: &Lua| lua.create_userdata(WebSocket(session)).map(Value::UserData);
            Ok(vec![Ret::Make(Box::new(make))])
        }
        Err(why) => {
            shared.record(&stats::Sample {
                method: session::WS_METHOD,
                name: &names.name,
                response_time_us: elapsed_us,
                due_latency_us: None,
                content_length: 0,
                error: Some(&why),
            });
            Ok(vec![Ret::Nil, Ret::Text(why)])
        }
    }
}

async fn handshake(
    shared: &LuaEnv,
    hosts: &[http_client::HostOverride],
    target: &Target,
    opts: &ConnectOptions,
) -> Result<Ws, String> {
    let mut request = target
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| format!("invalid WebSocket URL: {e}"))?;
    for (k, v) in &opts.headers {
        request.headers_mut().append(k.clone(), v.clone());
    }
    if !opts.subprotocols.is_empty() {
        let list = opts.subprotocols.join(", ");
        let value = http::HeaderValue::from_str(&list).map_err(|e| format!("subprotocols: {e}"))?;
        request
            .headers_mut()
            .insert("sec-websocket-protocol", value);
    }
    let via = opts.proxy.pick(&shared.config.http.proxies, &target.origin);
    let stream = http_client::dial_origin(&target.origin, hosts, via, &shared.tls).await?;
    match tokio_tungstenite::client_async(request, stream).await {
        Ok((ws, _)) => Ok(ws),
        Err(WsError::Http(response)) => Err(format!("upgrade refused: HTTP {}", response.status())),
        Err(e) => Err(format!("upgrade failed: {e}")),
    }
}

/// A WebSocket in Lua.
pub struct WebSocket(Rc<Session>);

/// The methods that are not a single parked call.
const METHODS: &str = r#"
local wrap, send, send_binary, soft_send, recv, close, begin, clock, finish = ...
local methods = {
  send = wrap(send), send_binary = wrap(send_binary), recv = wrap(recv), close = wrap(close),
}
local recv_m, soft_send_m = methods.recv, wrap(soft_send)
function methods.request(self, msg, opts)
  local name, match, timeout = begin(self, msg, opts)
  local start = clock(self)
  local ok, err = soft_send_m(self, msg)
  if ok then
    while true do
      local left
      if timeout then
        left = timeout - (clock(self) - start)
        if left <= 0 then err = "timeout" break end
      end
      local reply, kind = recv_m(self, left and { timeout = left })
      if reply == nil then err = kind break end
      if match == nil or match(reply, kind) then
        finish(self, name, start, nil, #reply)
        return reply, kind
      end
    end
  end
  finish(self, name, start, err, 0)
  return nil, err
end
return methods
"#;

fn session(this: &Value, what: &str) -> mlua::Result<Rc<Session>> {
    match this {
        Value::UserData(ud) => ud.borrow::<WebSocket>().map(|w| w.0.clone()).ok(),
        _ => None,
    }
    .ok_or_else(|| {
        fault(format!(
            "{what}: call it on a WebSocket with a colon (ws:{})",
            &what[3..]
        ))
    })
}

/// `ws:send(text)`, `ws:send_binary(data)`, and the send of `ws:request`.
fn prepare_send(
    lua: &Lua,
    this: Value,
    data: Value,
    what: &'static str,
    binary: bool,
) -> mlua::Result<()> {
    let s = session(&this, what)?;
    let bytes = io::bytes_arg(&data, what)?;
    let msg = if binary {
        Message::binary(bytes)
    } else {
        let text = String::from_utf8(bytes).map_err(|_| {
            fault(format!(
                "{what}: text must be UTF-8 (send other bytes with ws:send_binary)"
            ))
        })?;
        Message::text(text)
    };
    io::park_current(lua, what, s.send(msg, what))
}

fn method_fns(lua: &Lua) -> mlua::Result<Table> {
    let send = lua.create_function(|lua, (this, data): (Value, Value)| {
        prepare_send(lua, this, data, "ws:send", false)
    })?;
    let send_binary = lua.create_function(|lua, (this, data): (Value, Value)| {
        prepare_send(lua, this, data, "ws:send_binary", true)
    })?;
    let soft_send = lua.create_function(|lua, (this, data): (Value, Value)| {
        let s = session(&this, "ws:request")?;
        let text = match &data {
            Value::String(d) => d.to_str().map(|t| t.to_string()).ok(),
            _ => None,
        };
        let text = text.ok_or_else(|| fault("ws:request: the message must be a UTF-8 string"))?;
        io::park_current(lua, "ws:request", async move {
            match s.send(Message::text(text), "ws:request").await {
                Ok(_) => Ok(vec![Ret::Str("sent")]),
                Err(e) => Ok(vec![Ret::Nil, Ret::Text(e)]),
            }
        })
    })?;
    let recv = lua.create_function(|lua, (this, opts): (Value, Value)| {
        let s = session(&this, "ws:recv")?;
        let timeout = recv_timeout(opts)?;
        io::park_current(lua, "ws:recv", s.recv(timeout))
    })?;
    let close = lua.create_function(|lua, (this, code, reason): (Value, Value, Value)| {
        let s = session(&this, "ws:close")?;
        let (code, reason) = close_frame(code, reason)?;
        let frame = CloseFrame {
            code: code.into(),
            reason: reason.into(),
        };
        io::park_current(lua, "ws:close", s.close(frame))
    })?;
    let begin = lua.create_function(|_, (this, _msg, opts): (Value, Value, Value)| {
        let s = session(&this, "ws:request")?;
        let o = RequestOptions::parse(opts)?;
        let name = o
            .name
            .unwrap_or_else(|| format!("{} request", s.names.name));
        Ok((name, o.matcher, o.timeout.map(|t| t.as_secs_f64())))
    })?;
    let clock =
        lua.create_function(|_, this: Value| Ok(session(&this, "ws:request")?.clock_s()))?;
    let finish = lua.create_function(
        |_, (this, name, start, err, len): (Value, String, f64, Option<String>, u64)| {
            let s = session(&this, "ws:request")?;
            let us = ((s.clock_s() - start).max(0.0) * 1e6) as u64;
            s.record(&name, us, len, err.as_deref());
            Ok(())
        },
    )?;
    lua.load(METHODS).set_name("=swarmer.ws").call((
        wrapper(lua)?,
        send,
        send_binary,
        soft_send,
        recv,
        close,
        begin,
        clock,
        finish,
    ))
}

impl UserData for WebSocket {
    fn add_fields<F: mlua::UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field_with("__index", method_fns);
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method("__tostring", |_, this, ()| {
            Ok(format!("<WebSocket {}>", this.0.names.name))
        });
    }
}
