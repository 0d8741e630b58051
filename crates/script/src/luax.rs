//! Small Lua helpers shared by every module (and the `ext` crate): clean
//! error values, the protected runner that turns a Lua error into a
//! message and a traceback, the path fix-up for Lua's truncated chunk
//! names, and the checks of option tables (unknown keys, optional strings).

use mlua::{Function, Lua, Table, Value};

/// An error raised from Rust into Lua whose text is exactly its message
/// (mlua's own `RuntimeError` would prefix "runtime error: ").
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Fault(pub String);

/// A Lua error carrying `msg` verbatim.
pub fn fault(msg: impl Into<String>) -> mlua::Error {
    mlua::Error::external(Fault(msg.into()))
}

/// `xpcall`s a function and returns `nil` on success, or the error message
/// (with `file:line:` of the Lua line that raised it, also for errors raised
/// from Rust) and the Lua traceback. The `xpcall` is in Lua because yields
/// pass through it on both LuaJIT and Lua 5.4 (tasks do HTTP inside it);
/// the message handler is Rust so scripts need not get the `debug` library.
const RUNNER: &str = r#"
local xpcall, handler = xpcall, ...
return function(fn, ...)
  local ok, err = xpcall(fn, handler, ...)
  if ok then return nil end
  -- Out of memory skips the handler: err is Lua's bare message.
  if type(err) ~= "table" then return tostring(err), "" end
  return err[1], err[2]
end
"#;

pub fn make_runner(lua: &Lua) -> mlua::Result<Function> {
    let handler = lua.create_function(|lua, e: Value| {
        let mut msg = match &e {
            Value::String(s) => s.to_string_lossy(),
            Value::Error(err) => root_message(err),
            other => other
                .to_string()
                .unwrap_or_else(|_| format!("error object is a {}", other.type_name())),
        };
        if !matches!(e, Value::String(_)) {
            // Raised from Rust or with a non-string value: Lua added no
            // position, so name the innermost Lua line.
            if let Some(pos) = innermost_lua_line(lua) {
                msg = format!("{pos}: {msg}");
            }
        }
        let tb = lua
            .traceback(Some(&msg), 1)
            .map(|s| s.to_string_lossy())
            .unwrap_or_default();
        lua.create_sequence_from([msg, tb])
    })?;
    lua.load(RUNNER).set_name("=swarmer").call(handler)
}

/// mlua wraps errors from Rust callbacks with a traceback of their own;
/// the script author wants the message, and gets the traceback separately.
fn root_message(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { cause, .. } => root_message(cause),
        other => other.to_string(),
    }
}

pub(crate) fn innermost_lua_line(lua: &Lua) -> Option<String> {
    for level in 0..40 {
        let found = lua.inspect_stack(level, |d| {
            let src = d.source();
            let line = d.current_line();
            // Only file chunks ("@path") are the script's own code; mlua's
            // async glue and our runner are chunks too.
            let from_file = src.source.as_deref().is_some_and(|s| s.starts_with('@'));
            match (src.short_src, line) {
                (Some(file), Some(line)) if from_file && line > 0 => Some(format!("{file}:{line}")),
                _ => None,
            }
        });
        match found {
            None => return None,
            Some(Some(pos)) => return Some(pos),
            Some(None) => {}
        }
    }
    None
}

/// Lua shortens long chunk names to "...tail"; put the whole path back so
/// messages start with the path the user gave.
pub fn fix_path(msg: &str, path: &str) -> String {
    if let Some(rest) = msg.strip_prefix("...")
        && let Some(colon) = rest.find(':')
        && path.ends_with(&rest[..colon])
    {
        return format!("{path}{}", &rest[colon..]);
    }
    msg.to_string()
}

/// A short description of a Lua value's type for error messages.
pub fn type_name(v: &Value) -> &'static str {
    v.type_name()
}

/// Refuses keys outside `known` (typos such as `rendr`), naming them.
pub fn check_keys(t: &Table, what: &str, known: &[&str]) -> mlua::Result<()> {
    check_keys_named(t, what, "option", known)
}

/// [`check_keys`] for tables whose keys the error calls `noun`s.
pub fn check_keys_named(t: &Table, what: &str, noun: &str, known: &[&str]) -> mlua::Result<()> {
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair?;
        let ok =
            matches!(&k, Value::String(s) if known.iter().any(|n| s.as_bytes() == n.as_bytes()));
        if !ok {
            let key = match &k {
                Value::String(s) => format!("{:?}", s.to_string_lossy()),
                other => format!("of type {}", type_name(other)),
            };
            return Err(fault(format!(
                "{what}: unknown {noun} {key} (expected one of: {})",
                known.join(", ")
            )));
        }
    }
    Ok(())
}

/// A Lua number as `f64`, whichever representation Lua chose for it
/// (integer or float); `None` for anything else.
pub fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Integer(i) => Some(*i as f64),
        Value::Number(n) => Some(*n),
        _ => None,
    }
}

/// `nil` or a string; anything else is an error naming `what`.
pub fn opt_string(what: &str, v: Value) -> mlua::Result<Option<String>> {
    match v {
        Value::Nil => Ok(None),
        Value::String(s) => Ok(Some(s.to_str()?.to_string())),
        other => Err(fault(format!(
            "{what} must be a string, got a {}",
            type_name(&other)
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fix_path_restores_truncated_names() {
        let path = "/very/long/directory/name/that/lua/cuts/short/for/us/script.lua";
        let msg = "...ry/name/that/lua/cuts/short/for/us/script.lua:3: boom";
        assert_eq!(fix_path(msg, path), format!("{path}:3: boom"));
        assert_eq!(fix_path("a.lua:1: x", "a.lua"), "a.lua:1: x");
        assert_eq!(fix_path("...other.lua:1: x", "a.lua"), "...other.lua:1: x");
    }

    #[test]
    fn runner_reports_position_of_rust_errors() {
        let lua = Lua::new();
        let f = lua
            .create_function(|_, ()| Err::<(), _>(fault("bad thing")))
            .unwrap();
        lua.globals().set("rust_fail", f).unwrap();
        let chunk = lua
            .load("local x = 1\nrust_fail()\n")
            .set_name("@t.lua")
            .into_function()
            .unwrap();
        let runner = make_runner(&lua).unwrap();
        let (msg, tb): (Option<String>, Option<String>) = runner.call(chunk).unwrap();
        assert_eq!(msg.as_deref(), Some("t.lua:2: bad thing"));
        assert!(tb.unwrap().contains("traceback"));
    }

    #[test]
    fn option_tables_are_checked_with_one_message_shape() {
        let lua = Lua::new();
        let t: Table = lua.load("return { name = 1, wiat = 2 }").eval().unwrap();
        let e = check_keys(&t, "swarmer.user", &["name", "wait"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "swarmer.user: unknown option \"wiat\" (expected one of: name, wait)"
        );
        let t: Table = lua.load("return { [1] = true }").eval().unwrap();
        let e = check_keys_named(&t, "swarmer.record", "field", &["type"]).unwrap_err();
        assert_eq!(
            e.to_string(),
            "swarmer.record: unknown field of type integer (expected one of: type)"
        );
        let s = Value::String(lua.create_string("x").unwrap());
        assert_eq!(
            opt_string("title", s.clone()).unwrap().as_deref(),
            Some("x")
        );
        assert_eq!(opt_string("title", Value::Nil).unwrap(), None);
        let e = opt_string("title", Value::Boolean(true)).unwrap_err();
        assert_eq!(e.to_string(), "title must be a string, got a boolean");
        assert_eq!(number(&Value::Integer(3)), Some(3.0));
        assert_eq!(number(&Value::Number(0.5)), Some(0.5));
        assert_eq!(number(&s), None);
    }
}
