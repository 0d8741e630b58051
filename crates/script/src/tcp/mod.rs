//! `swarmer.tcp`: raw TCP and TLS sockets for pure-Lua clients of other
//! protocols (Redis, SMTP, a game protocol), timed by the script with
//! `swarmer.record`. `swarmer.tcp.connect(host, port, opts)` dials with
//! the http crate (TLS configuration without ALPN, `--resolve` and the
//! type's `hosts`); the socket's methods park their work for the user's
//! driver (`io.rs`). Every failure (refused, timeout, closed by the peer)
//! is a Lua error with a clear message, so it lands in the exceptions
//! table and the user goes on. Nothing is recorded here.

mod socket;

use std::rc::{Rc, Weak};
use std::time::Duration;

use mlua::{Function, Lua, Table, UserData, UserDataMethods, Value};

use crate::io::{self, Closable, Ret, park, wrapper};
use crate::lua_env::LuaEnv;
use crate::luax::{check_keys, fault, type_name};
use socket::{Socket, Until};

/// For connect and each send or receive unless the script says otherwise
/// (the HTTP client's default).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

const CONNECT: &str = "swarmer.tcp.connect";

/// The `swarmer.tcp` table.
pub fn table(lua: &Lua) -> mlua::Result<Table> {
    let wrap = wrapper(lua)?;
    let t = lua.create_table()?;
    t.raw_set(
        "connect",
        wrap.call::<Function>(lua.create_function(prepare_connect)?)?,
    )?;
    Ok(t)
}

/// `{ tls = bool, timeout = s, sni = "name" }`.
struct ConnectOptions {
    tls: bool,
    timeout: Duration,
    sni: Option<String>,
}

fn connect_options(v: Value) -> mlua::Result<ConnectOptions> {
    let mut o = ConnectOptions {
        tls: false,
        timeout: DEFAULT_TIMEOUT,
        sni: None,
    };
    let Some(t) = io::options(v, CONNECT)? else {
        return Ok(o);
    };
    check_keys(&t, CONNECT, &["tls", "timeout", "sni"])?;
    o.tls = match t.raw_get::<Value>("tls")? {
        Value::Nil => false,
        Value::Boolean(b) => b,
        other => {
            return Err(fault(format!(
                "{CONNECT}: tls must be true or false, got a {}",
                type_name(&other)
            )));
        }
    };
    o.timeout = io::timeout_opt(&t, CONNECT)?.unwrap_or(DEFAULT_TIMEOUT);
    o.sni = io::string_opt(&t, "sni", CONNECT)?;
    if o.sni.is_some() && !o.tls {
        return Err(fault(format!("{CONNECT}: sni needs tls = true")));
    }
    Ok(o)
}

fn prepare_connect(lua: &Lua, (host, port, opts): (Value, Value, Value)) -> mlua::Result<()> {
    let host = match host {
        Value::String(s) if !s.as_bytes().is_empty() => s.to_str()?.to_string(),
        other => {
            return Err(fault(format!(
                "{CONNECT}: the host must be a non-empty string, got {}",
                io::shown(&other)
            )));
        }
    };
    let port = match port {
        Value::Integer(p) if (1..=65535).contains(&p) => p as u16,
        Value::Number(p) if p.fract() == 0.0 && (1.0..=65535.0).contains(&p) => p as u16,
        other => {
            return Err(fault(format!(
                "{CONNECT}: the port must be a number from 1 to 65535, got {}",
                io::shown(&other)
            )));
        }
    };
    let opts = connect_options(opts)?;
    let shared = LuaEnv::from_lua(lua)?;
    let user = io::current_user(lua, CONNECT)?;
    let hosts = user.hosts.clone();
    let weak_user = Rc::downgrade(&user);
    park(&user, async move {
        let addr = http_client::settings::lookup(&hosts, &host, port);
        let tls = if opts.tls {
            Some((
                shared.tls.raw_config()?,
                opts.sni.as_deref().unwrap_or(&host),
            ))
        } else {
            None
        };
        let dial = http_client::dial(&host, port, addr, tls);
        let stream = match tokio::time::timeout(opts.timeout, dial).await {
            Ok(r) => r.map_err(|e| format!("{CONNECT}: {e}"))?,
            Err(_) => {
                return Err(format!(
                    "{CONNECT}: connect to {host}:{port}: timeout after {}",
                    humantime::format_duration(opts.timeout)
                ));
            }
        };
        let socket = Rc::new(Socket::new(format!("{host}:{port}"), stream, opts.timeout));
        if let Some(owner) = weak_user.upgrade() {
            let weak: Weak<dyn Closable> = Rc::downgrade(&socket) as Weak<dyn Closable>;
            io::track(&owner, weak);
        }
        let make = move |lua: &Lua| lua.create_userdata(TcpSocket(socket)).map(Value::UserData);
        Ok(vec![Ret::Make(Box::new(make))])
    });
    Ok(())
}

/// A socket in Lua.
pub struct TcpSocket(Rc<Socket>);

fn socket(this: &Value, what: &str) -> mlua::Result<Rc<Socket>> {
    match this {
        Value::UserData(ud) => ud.borrow::<TcpSocket>().map(|s| s.0.clone()).ok(),
        _ => None,
    }
    .ok_or_else(|| {
        fault(format!(
            "socket:{what}: call it on a socket with a colon (s:{what}(...))"
        ))
    })
}

/// What `s:receive` reads: a count, `"*l"` (a line, without its end),
/// `"*a"` (everything until the peer closes) or `{ delimiter = "..." }`
/// (up to the delimiter, which is consumed and not returned).
fn until(v: Value) -> mlua::Result<Until> {
    match v {
        Value::Nil => Ok(Until::Line),
        Value::Integer(n) if n >= 0 => Ok(Until::Bytes(n as usize)),
        Value::Number(n) if n >= 0.0 && n.fract() == 0.0 => Ok(Until::Bytes(n as usize)),
        Value::String(s) if s.as_bytes() == b"*l" => Ok(Until::Line),
        Value::String(s) if s.as_bytes() == b"*a" => Ok(Until::Close),
        Value::Table(t) => {
            check_keys(&t, "socket:receive", &["delimiter"])?;
            match t.raw_get::<Value>("delimiter")? {
                Value::String(d) if !d.as_bytes().is_empty() => {
                    Ok(Until::Delimiter(d.as_bytes().to_vec()))
                }
                other => Err(fault(format!(
                    "socket:receive: delimiter must be a non-empty string, got {}",
                    io::shown(&other)
                ))),
            }
        }
        other => Err(fault(format!(
            "socket:receive: expected a byte count, \"*l\", \"*a\" or {{ delimiter = \"...\" }}, got {}",
            io::shown(&other)
        ))),
    }
}

fn method_fns(lua: &Lua) -> mlua::Result<Table> {
    let wrap = wrapper(lua)?;
    let t = lua.create_table()?;
    let send = lua.create_function(|lua, (this, data): (Value, Value)| {
        let s = socket(&this, "send")?;
        let data = io::bytes_arg(&data, "socket:send")?;
        io::park_current(lua, "socket:send", s.send(data))
    })?;
    let receive = lua.create_function(|lua, (this, what, opts): (Value, Value, Value)| {
        let s = socket(&this, "receive")?;
        let until = until(what)?;
        let timeout = match io::options(opts, "socket:receive")? {
            Some(t) => {
                check_keys(&t, "socket:receive", &["timeout"])?;
                io::timeout_opt(&t, "socket:receive")?
            }
            None => None,
        };
        io::park_current(lua, "socket:receive", s.receive(until, timeout))
    })?;
    let close = lua.create_function(|lua, this: Value| {
        let s = socket(&this, "close")?;
        io::park_current(lua, "socket:close", s.close())
    })?;
    t.raw_set("send", wrap.call::<Function>(send)?)?;
    t.raw_set("receive", wrap.call::<Function>(receive)?)?;
    t.raw_set("close", wrap.call::<Function>(close)?)?;
    Ok(t)
}

impl UserData for TcpSocket {
    fn add_fields<F: mlua::UserDataFields<Self>>(fields: &mut F) {
        fields.add_meta_field_with("__index", method_fns);
    }

    fn add_methods<M: UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method("__tostring", |_, this, ()| {
            Ok(format!("<tcp socket {}>", this.0.peer))
        });
    }
}
