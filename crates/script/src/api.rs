//! The `swarmer` global: everything a script calls that is not a user type
//! declaration or HTTP (random numbers, sleep, logging, environment, data
//! files, custom requests, JSON, the clock, raw sockets).

use std::time::Duration;

use mlua::{Lua, MultiValue, Table, Value, Variadic};
use rand::Rng;
use stats::Sample;

use crate::convert::json_to_lua;
use crate::lua_env::{LuaEnv, Op};
use crate::luax::{check_keys_named, fault, number, type_name};

/// Builds the `swarmer` table (without the declarations `define.rs` adds).
pub fn install(lua: &Lua, swarmer: &Table) -> mlua::Result<()> {
    swarmer.set("random", lua.create_function(random)?)?;
    let set_sleep = lua.create_function(set_sleep)?;
    let yield_fn: mlua::Function = lua.globals().get::<Table>("coroutine")?.get("yield")?;
    let sleep: mlua::Function = lua
        .load("local set, yield = ... return function(s) set(s) return yield() end")
        .set_name("=swarmer.sleep")
        .call((set_sleep, yield_fn))?;
    swarmer.set("sleep", sleep)?;
    swarmer.set("env", lua.create_function(env)?)?;
    swarmer.set(
        "now_ms",
        lua.create_function(|_, ()| {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default();
            Ok(now.as_micros() as f64 / 1000.0)
        })?,
    )?;
    swarmer.set("record", lua.create_function(record)?)?;
    swarmer.set("data", lua.create_function(crate::data::data)?)?;
    crate::feeder::install(lua, swarmer)?;
    swarmer.set("files", lua.create_function(files)?)?;
    swarmer.set("log", log_table(lua)?)?;
    let json = lua.create_table()?;
    json.set(
        "encode",
        lua.create_function(|_, v: Value| {
            serde_json::to_string(&v).map_err(|e| fault(format!("swarmer.json.encode: {e}")))
        })?,
    )?;
    json.set(
        "decode",
        lua.create_function(|lua, s: mlua::LuaString| {
            let v: serde_json::Value = serde_json::from_slice(&s.as_bytes())
                .map_err(|e| fault(format!("swarmer.json.decode: not JSON: {e}")))?;
            json_to_lua(lua, &v)
        })?,
    )?;
    swarmer.set("json", json)?;
    swarmer.set("tcp", crate::tcp::table(lua)?)?;
    Ok(())
}

/// `swarmer.files { "users.csv", "proto/api.proto" }`: files the script
/// reads only while it runs (in `on_start` or a task), which the master
/// would not see it read while it loads; they travel with the script.
/// Each must exist (read now, so a missing one fails the load).
fn files(lua: &Lua, list: Value) -> mlua::Result<()> {
    let Value::Table(list) = list else {
        return Err(fault(format!(
            "swarmer.files: pass a list of paths such as {{ \"users.csv\" }}, got a {}",
            type_name(&list)
        )));
    };
    let shared = LuaEnv::from_lua(lua)?;
    for entry in list.sequence_values::<Value>() {
        let path = match entry? {
            Value::String(s) => s.to_str()?.to_string(),
            other => {
                return Err(fault(format!(
                    "swarmer.files: each entry must be a path string, got a {}",
                    type_name(&other)
                )));
            }
        };
        shared
            .files
            .read(&path)
            .map_err(|e| fault(format!("swarmer.files: {e}")))?;
        // A broken proto fails the load, with its file and line.
        if path.ends_with(".proto") {
            let path = crate::files::normalise(&path).unwrap_or(path);
            crate::grpc::protos::check(&shared, &path)
                .map_err(|e| fault(format!("swarmer.files: {e}")))?;
        }
    }
    Ok(())
}

/// Like `math.random`: `()` a float in [0, 1), `(n)` an integer in [1, n],
/// `(m, n)` an integer in [m, n]. Drawn from the core's generator, which is
/// seeded from the OS, so cores and runs differ.
fn random(lua: &Lua, (m, n): (Option<i64>, Option<i64>)) -> mlua::Result<Value> {
    let shared = LuaEnv::from_lua(lua)?;
    let mut rng = shared.rng.borrow_mut();
    let (lo, hi) = match (m, n) {
        (None, _) => return Ok(Value::Number(rng.random::<f64>())),
        (Some(n), None) => (1, n),
        (Some(m), Some(n)) => (m, n),
    };
    if lo > hi {
        return Err(fault(format!(
            "swarmer.random: interval is empty ({lo} > {hi})"
        )));
    }
    Ok(Value::Integer(rng.random_range(lo..=hi)))
}

/// Parks a sleep for the user's driver, which sleeps without blocking the
/// core and ends early when the user is told to stop, so a long sleep never
/// holds up the end of a run.
fn set_sleep(lua: &Lua, secs: f64) -> mlua::Result<()> {
    if !(secs.is_finite() && secs >= 0.0) {
        return Err(fault(format!(
            "swarmer.sleep: seconds must be >= 0, got {secs}"
        )));
    }
    let shared = LuaEnv::from_lua(lua)?;
    let user = shared.current_user().ok_or_else(|| {
        fault("swarmer.sleep can only be called from a task, on_start or on_stop")
    })?;
    *user.op.borrow_mut() = Some(Op::Sleep(Duration::from_secs_f64(secs.min(1e9))));
    Ok(())
}

/// `swarmer.env(name, default)`: the variable's value, else `default`.
fn env(lua: &Lua, (name, default): (String, Value)) -> mlua::Result<Value> {
    match std::env::var_os(&name) {
        Some(v) => Ok(Value::String(lua.create_string(v.as_encoded_bytes())?)),
        None => Ok(default),
    }
}

const RECORD_KEYS: [&str; 6] = ["type", "name", "duration_ms", "success", "length", "error"];

/// `swarmer.record { type, name, duration_ms, success, length, error }`:
/// a custom request (gRPC, a database query...) counted like an HTTP one.
fn record(lua: &Lua, t: Table) -> mlua::Result<()> {
    check_keys_named(&t, "swarmer.record", "field", &RECORD_KEYS)?;
    let kind: String = required_string(&t, "type")?;
    let name: String = required_string(&t, "name")?;
    let duration_ms = t.raw_get::<Value>("duration_ms")?;
    let Some(duration_ms) = number(&duration_ms) else {
        return Err(fault(format!(
            "swarmer.record: duration_ms must be a number, got a {}",
            type_name(&duration_ms)
        )));
    };
    if !(duration_ms.is_finite() && duration_ms >= 0.0) {
        return Err(fault(format!(
            "swarmer.record: duration_ms must be >= 0, got {duration_ms}"
        )));
    }
    let success = match t.raw_get::<Value>("success")? {
        Value::Nil => true,
        Value::Boolean(b) => b,
        other => {
            return Err(fault(format!(
                "swarmer.record: success must be true or false, got a {}",
                type_name(&other)
            )));
        }
    };
    let length = match t.raw_get::<Value>("length")? {
        Value::Nil => 0,
        Value::Integer(i) if i >= 0 => i as u64,
        Value::Number(n) if n >= 0.0 => n as u64,
        other => {
            return Err(fault(format!(
                "swarmer.record: length must be a number >= 0, got {other:?}"
            )));
        }
    };
    let error: Option<String> = t.raw_get("error")?;
    let error = if success {
        None
    } else {
        Some(error.unwrap_or_else(|| "failed".to_string()))
    };
    let shared = LuaEnv::from_lua(lua)?;
    let response_time_us = (duration_ms * 1000.0).round() as u64;
    let lateness = shared.current_user().and_then(|u| u.lateness_us.get());
    shared.record(&Sample {
        method: &kind,
        name: &name,
        response_time_us,
        due_latency_us: lateness.map(|l| l + response_time_us),
        content_length: length,
        error: error.as_deref(),
    });
    Ok(())
}

fn required_string(t: &Table, key: &str) -> mlua::Result<String> {
    match t.raw_get::<Value>(key)? {
        Value::String(s) if !s.as_bytes().is_empty() => Ok(s.to_str()?.to_string()),
        other => Err(fault(format!(
            "swarmer.record: {key} must be a non-empty string, got {}",
            if other.is_nil() {
                "nil".to_string()
            } else {
                format!("a {}", type_name(&other))
            }
        ))),
    }
}

fn join_args(args: &Variadic<Value>) -> String {
    let mut s = String::new();
    for (i, v) in args.iter().enumerate() {
        if i > 0 {
            s.push('\t');
        }
        match v {
            Value::String(x) => s.push_str(&x.to_string_lossy()),
            other => s.push_str(
                &other
                    .to_string()
                    .unwrap_or_else(|_| format!("<{}>", type_name(other))),
            ),
        }
    }
    s
}

fn who(lua: &Lua) -> String {
    match LuaEnv::from_lua(lua).ok().and_then(|s| s.current_user()) {
        Some(u) => format!("{}#{}", u.user_type, u.id),
        None => "script".to_string(),
    }
}

/// `swarmer.log(...)` logs at info; `swarmer.log.debug/info/warn/error`
/// pick the level. Goes to the run's log under target "script".
fn log_table(lua: &Lua) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    t.set(
        "debug",
        lua.create_function(|lua, a: Variadic<Value>| {
            tracing::debug!(target: "script", user = %who(lua), "{}", join_args(&a));
            Ok(())
        })?,
    )?;
    t.set(
        "info",
        lua.create_function(|lua, a: Variadic<Value>| {
            tracing::info!(target: "script", user = %who(lua), "{}", join_args(&a));
            Ok(())
        })?,
    )?;
    t.set(
        "warn",
        lua.create_function(|lua, a: Variadic<Value>| {
            tracing::warn!(target: "script", user = %who(lua), "{}", join_args(&a));
            Ok(())
        })?,
    )?;
    t.set(
        "error",
        lua.create_function(|lua, a: Variadic<Value>| {
            tracing::error!(target: "script", user = %who(lua), "{}", join_args(&a));
            Ok(())
        })?,
    )?;
    let meta = lua.create_table()?;
    meta.set(
        "__call",
        lua.create_function(|lua, a: MultiValue| {
            // The first argument of __call is the table itself.
            let args: Variadic<Value> = a.into_iter().skip(1).collect();
            tracing::info!(target: "script", user = %who(lua), "{}", join_args(&args));
            Ok(())
        })?,
    )?;
    t.set_metatable(Some(meta))?;
    Ok(t)
}
