//! Parked I/O for the protocols beside HTTP (`self.ws`, `swarmer.tcp`):
//! a script call builds a future, parks it in the user's context as
//! [`Op::Io`] and yields; the user's driver awaits it and resumes the
//! coroutine with its [`Reply`], which the method's Lua wrapper turns
//! into return values or a Lua error at the script's line.
//!
//! Also the user's list of open connections ([`Closable`]), closed when
//! the user ends so a socket never outlives its user (whatever the Lua
//! garbage collector does), and the option parsing these protocols share
//! (`proxy` with `self.http` too).

use std::future::Future;
use std::pin::Pin;
use std::rc::{Rc, Weak};
use std::time::Duration;

use http_client::{Proxy, ProxyChoice};
use mlua::{Function, Lua, Table, Value};

use crate::lua_env::{LuaEnv, Op, UserCtx};
use crate::luax::{fault, number, type_name};

/// One value a parked call returns to Lua.
pub enum Ret {
    Nil,
    Bytes(Vec<u8>),
    Str(&'static str),
    Text(String),
    /// A value only the Lua state can make (a userdata).
    Make(MakeValue),
}

/// Makes a [`Ret::Make`] value once the Lua state is at hand.
pub type MakeValue = Box<dyn FnOnce(&Lua) -> mlua::Result<Value>>;

/// The values to return, or the message of the Lua error to raise.
pub type Reply = Result<Vec<Ret>, String>;

/// What a parked call does while its user's coroutine waits.
pub type IoFuture = Pin<Box<dyn Future<Output = Reply>>>;

/// Parks `fut` for the current user's driver (called from a method's
/// Rust half, just before its Lua half yields).
pub fn park(user: &UserCtx, fut: impl Future<Output = Reply> + 'static) {
    *user.op.borrow_mut() = Some(Op::Io(Box::pin(fut)));
}

/// [`park`]s `fut` for the running user (see [`current_user`]).
pub fn park_current(
    lua: &Lua,
    what: &str,
    fut: impl Future<Output = Reply> + 'static,
) -> mlua::Result<()> {
    let user = current_user(lua, what)?;
    park(&user, fut);
    Ok(())
}

/// The running user, or an error naming `what` when there is none (the
/// script's main chunk, a master-side call outside any user).
pub fn current_user(lua: &Lua, what: &str) -> mlua::Result<Rc<UserCtx>> {
    LuaEnv::from_lua(lua)?.current_user().ok_or_else(|| {
        fault(format!(
            "{what} can only be called from a task, on_start or on_stop"
        ))
    })
}

/// The resume value of a finished parked call: `{ true, values..., n = }`
/// or `{ false, message }` (see [`WRAP`]).
pub fn to_lua(lua: &Lua, reply: Reply) -> mlua::Result<Value> {
    let t = lua.create_table()?;
    match reply {
        Ok(values) => {
            t.raw_set(1, true)?;
            let n = values.len() + 1;
            for (i, v) in values.into_iter().enumerate() {
                let v = match v {
                    Ret::Nil => Value::Nil,
                    Ret::Bytes(b) => Value::String(lua.create_string(&b)?),
                    Ret::Str(s) => Value::String(lua.create_string(s)?),
                    Ret::Text(s) => Value::String(lua.create_string(&s)?),
                    Ret::Make(f) => f(lua)?,
                };
                t.raw_set(i + 2, v)?;
            }
            t.raw_set("n", n)?;
        }
        Err(msg) => {
            t.raw_set(1, false)?;
            t.raw_set(2, msg)?;
        }
    }
    Ok(Value::Table(t))
}

/// Makes a yielding Lua method from its Rust half: `wrap(prepare)` calls
/// `prepare(...)` (which parks the work or raises a clear error), yields,
/// and returns what the work gave or raises its error at the caller's
/// line (level 2: the script, not this wrapper).
const WRAP: &str = r#"
local yield, unpack, error = ...
return function(prepare)
  return function(...)
    prepare(...)
    local r = yield()
    if r[1] then return unpack(r, 2, r.n) end
    error(r[2], 2)
  end
end
"#;

/// The `wrap` function of [`WRAP`] for this Lua state.
pub fn wrapper(lua: &Lua) -> mlua::Result<Function> {
    let coroutine: Table = lua.globals().get("coroutine")?;
    let yield_fn: Function = coroutine.get("yield")?;
    let unpack: Function = lua
        .load("return table.unpack or unpack")
        .set_name("=swarmer.io")
        .eval()?;
    let error: Function = lua.globals().get("error")?;
    lua.load(WRAP)
        .set_name("=swarmer.io")
        .call((yield_fn, unpack, error))
}

/// A connection its user closes when it ends.
pub trait Closable {
    /// Whether it still holds a socket.
    fn is_open(&self) -> bool;
    /// Drops the socket now (recording what its protocol records at close).
    fn close_now(&self);
}

/// Adds `conn` to the user's open connections, forgetting those already
/// closed so a user that connects on every task keeps a short list.
pub fn track(user: &UserCtx, conn: Weak<dyn Closable>) {
    let mut open = user.sockets.borrow_mut();
    open.retain(|c| c.upgrade().is_some_and(|c| c.is_open()));
    open.push(conn);
}

/// Closes every connection the user still has open.
pub fn close_all(user: &UserCtx) {
    let open = std::mem::take(&mut *user.sockets.borrow_mut());
    for conn in open.iter().filter_map(Weak::upgrade) {
        conn.close_now();
    }
}

/// A `timeout` option in seconds (> 0, finite), or `None` when absent.
pub fn timeout_opt(t: &Table, what: &str) -> mlua::Result<Option<Duration>> {
    let v: Value = t.raw_get("timeout")?;
    if v.is_nil() {
        return Ok(None);
    }
    match number(&v) {
        Some(s) if s.is_finite() && s > 0.0 => Ok(Some(Duration::from_secs_f64(s.min(1e9)))),
        _ => Err(fault(format!(
            "{what}: timeout must be a number of seconds > 0, got {}",
            shown(&v)
        ))),
    }
}

/// A string option, `None` when absent.
pub fn string_opt(t: &Table, key: &str, what: &str) -> mlua::Result<Option<String>> {
    match t.raw_get::<Value>(key)? {
        Value::Nil => Ok(None),
        Value::String(s) => Ok(Some(s.to_str()?.to_string())),
        other => Err(fault(format!(
            "{what}: {key} must be a string, got a {}",
            type_name(&other)
        ))),
    }
}

/// A `proxy` option, for HTTP requests and WebSockets alike: a proxy URL
/// (this connection goes through it) or `false` (direct); absent, the
/// run's rule applies.
pub fn proxy_opt(v: Value, what: &str) -> mlua::Result<ProxyChoice> {
    match v {
        Value::Nil => Ok(ProxyChoice::Run),
        Value::Boolean(false) => Ok(ProxyChoice::Direct),
        Value::String(s) => Proxy::parse(&s.to_str()?)
            .map(ProxyChoice::Via)
            .map_err(|e| fault(format!("{what}: proxy {e}"))),
        other => Err(fault(format!(
            "{what}: proxy must be a proxy URL or false, got a {}",
            type_name(&other)
        ))),
    }
}

/// The options table of a call: `nil` is no options, anything but a table
/// is an error naming the call.
pub fn options(v: Value, what: &str) -> mlua::Result<Option<Table>> {
    match v {
        Value::Nil => Ok(None),
        Value::Table(t) => Ok(Some(t)),
        other => Err(fault(format!(
            "{what}: options must be a table, got a {}",
            type_name(&other)
        ))),
    }
}

/// A value as an error message shows it.
pub fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{:?}", s.to_string_lossy()),
        Value::Nil => "nil".to_string(),
        other => other
            .to_string()
            .unwrap_or_else(|_| format!("a {}", type_name(other))),
    }
}

/// Bytes a script passes to send: a string (numbers are not converted, so
/// a mistake such as `send(nil)` is named rather than sent).
pub fn bytes_arg(v: &Value, what: &str) -> mlua::Result<Vec<u8>> {
    match v {
        Value::String(s) => Ok(s.as_bytes().to_vec()),
        other => Err(fault(format!(
            "{what}: data must be a string, got a {}",
            type_name(other)
        ))),
    }
}
