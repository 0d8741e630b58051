//! The Lua object of a response (`r`): a plain userdata holding one
//! `Rc<Outcome>`, under one metatable per Lua state.
//!
//! A response object is made on every request. mlua's `create_userdata`
//! gives each userdata, on LuaJIT, a second GC object (an empty environment
//! table) besides its borrow-tracking storage and generic finalizer: with
//! the collector's work that was the largest single cost of a request in
//! the profile. This object is one allocation holding one pointer, and
//! `__gc` drops the `Rc`. Its fields are computed only when a script reads
//! one, by an mlua function as `__index`.
//!
//! What a script sees is what mlua gave it: `type(r)` is "userdata",
//! `getmetatable(r)` is false, unknown fields read nil, fields cannot be
//! assigned, `tostring(r)` names status and URL, and the methods are
//! `r:json()`, `r:header(name)`, `r:success()` and `r:failure(msg)`.

use std::ffi::{c_int, c_void};
use std::rc::Rc;

use mlua::{Function, IntoLua, Lua, RegistryKey, Value, ffi};

use super::response::{Outcome, headers_table, json_value, timings_table};
use crate::luax::{fault, type_name};

/// One state's response metatable.
pub struct ResponseMeta {
    /// The metatable, in the registry: its slot is read on every request.
    table: RegistryKey,
    /// Its address, which tells a response from any other userdata.
    ptr: *const c_void,
}

impl ResponseMeta {
    pub fn new(lua: &Lua) -> mlua::Result<Self> {
        let method = |name: &'static str| -> mlua::Result<Function> {
            lua.create_function(move |lua, (this, args): (Value, mlua::MultiValue)| {
                call_method(lua, name, &this, args)
            })
        };
        let methods = [
            ("json", method("json")?),
            ("header", method("header")?),
            ("success", method("success")?),
            ("failure", method("failure")?),
        ];
        let index = lua.create_function(move |lua, (this, key): (Value, Value)| {
            let Value::String(key) = key else {
                return Ok(Value::Nil);
            };
            let key = key.as_bytes();
            if let Some((_, f)) = methods.iter().find(|(n, _)| n.as_bytes() == &*key) {
                return Ok(Value::Function(f.clone()));
            }
            with_outcome(lua, &this, "field", |o| field(lua, o, &key))?
        })?;
        let tostring = lua.create_function(|lua, this: Value| {
            with_outcome(lua, &this, "tostring", |o| {
                Ok(format!("<Response {} {}>", o.message.status, o.url()))
            })?
        })?;
        let mt = lua.create_table_with_capacity(0, 4)?;
        mt.raw_set("__index", index)?;
        mt.raw_set("__tostring", tostring)?;
        // SAFETY: `gc` follows the Lua C function protocol.
        mt.raw_set("__gc", unsafe { lua.create_c_function(gc)? })?;
        mt.raw_set("__metatable", false)?;
        let ptr = mt.to_pointer();
        Ok(ResponseMeta {
            table: lua.create_registry_value(mt)?,
            ptr,
        })
    }

    /// The Lua object of `outcome`.
    pub fn create(&self, lua: &Lua, outcome: Rc<Outcome>) -> mlua::Result<Value> {
        let id = self.table.id();
        lua.exec_raw_lua(|raw| unsafe {
            let state = raw.state();
            if ffi::lua_checkstack(state, 2) == 0 {
                return Err(mlua::Error::StackError);
            }
            let slot =
                ffi::lua_newuserdata(state, size_of::<*const Outcome>()) as *mut *const Outcome;
            slot.write(Rc::into_raw(outcome));
            ffi::lua_rawgeti(state, ffi::LUA_REGISTRYINDEX, id as _);
            ffi::lua_setmetatable(state, -2);
            Ok(raw.pop_value())
        })
    }
}

/// Runs `f` on the outcome behind `this`, which must be a response.
fn with_outcome<R>(
    lua: &Lua,
    this: &Value,
    what: &str,
    f: impl FnOnce(&Outcome) -> R,
) -> mlua::Result<R> {
    let not_one = || {
        fault(format!(
            "Response {what}: expected a response (call methods as r:name(...)), got a {}",
            type_name(this)
        ))
    };
    let Value::UserData(ud) = this else {
        return Err(not_one());
    };
    let meta = lua
        .app_data_ref::<Rc<crate::lua_env::LuaEnv>>()
        .and_then(|env| env.response_meta.get().map(|m| m.ptr));
    let outcome = lua.exec_raw_lua(|raw| unsafe {
        let state = raw.state();
        if ffi::lua_checkstack(state, 2) == 0 {
            return Err(mlua::Error::StackError);
        }
        raw.push_value(this)?;
        let mut p: *const Outcome = std::ptr::null();
        if ffi::lua_getmetatable(state, -1) != 0 {
            if Some(ffi::lua_topointer(state, -1)) == meta {
                p = *(ffi::lua_touserdata(state, -2) as *const *const Outcome);
            }
            ffi::lua_pop(state, 1);
        }
        ffi::lua_pop(state, 1);
        Ok(p)
    })?;
    if outcome.is_null() {
        return Err(not_one());
    }
    // `ud` keeps the object, so its `__gc` has not run and the Rc lives.
    let _alive = ud;
    Ok(f(unsafe { &*outcome }))
}

fn field(lua: &Lua, o: &Outcome, key: &[u8]) -> mlua::Result<Value> {
    match key {
        b"status" => o.message.status.into_lua(lua),
        b"ok" => (o.error.is_none() && (200..400).contains(&o.message.status)).into_lua(lua),
        b"body" => lua.create_string(o.message.body()).map(Value::String),
        b"headers" => headers_table(lua, &o.message).map(Value::Table),
        b"url" => o.url().into_lua(lua),
        b"elapsed_ms" => (o.elapsed_us as f64 / 1000.0).into_lua(lua),
        b"error" => o.error.clone().into_lua(lua),
        b"wire_size" => o.wire_size.into_lua(lua),
        b"timings" => timings_table(lua, &o.timings).map(Value::Table),
        b"proto" => o.proto.as_str().into_lua(lua),
        _ => Ok(Value::Nil),
    }
}

fn call_method(
    lua: &Lua,
    name: &'static str,
    this: &Value,
    args: mlua::MultiValue,
) -> mlua::Result<Value> {
    let what = match name {
        "json" => "r:json()",
        "header" => "r:header(name)",
        "success" => "r:success()",
        _ => "r:failure(msg)",
    };
    with_outcome(lua, this, what, |o| match name {
        "json" => json_value(lua, o),
        "header" => {
            let name = match args.front() {
                Some(Value::String(s)) => s.to_str()?,
                other => {
                    return Err(fault(format!(
                        "r:header(name): the name must be a string, got a {}",
                        other.map_or("nothing", type_name)
                    )));
                }
            };
            match o.message.header(&name) {
                Some(v) => lua.create_string(v).map(Value::String),
                None => Ok(Value::Nil),
            }
        }
        "success" => o.verdict(None).map(|()| Value::Nil),
        _ => {
            let msg = match args.front() {
                None | Some(Value::Nil) => "failed".to_string(),
                Some(v) => lua
                    .coerce_string(v.clone())?
                    .map(|s| s.to_string_lossy())
                    .ok_or_else(|| {
                        fault(format!(
                            "r:failure(msg): the message must be a string, got a {}",
                            type_name(v)
                        ))
                    })?,
            };
            o.verdict(Some(&msg)).map(|()| Value::Nil)
        }
    })?
}

/// `__gc`: drops the object's `Rc<Outcome>` once.
unsafe extern "C-unwind" fn gc(state: *mut ffi::lua_State) -> c_int {
    unsafe {
        let slot = ffi::lua_touserdata(state, 1) as *mut *const Outcome;
        if !slot.is_null() && ffi::lua_rawlen(state, 1) == size_of::<*const Outcome>() {
            let p = slot.replace(std::ptr::null());
            if !p.is_null() {
                drop(Rc::from_raw(p));
            }
        }
    }
    0
}
