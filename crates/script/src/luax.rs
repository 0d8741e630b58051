//! Small Lua helpers shared by every module: clean error values, the
//! protected runner that turns a Lua error into message + traceback, and
//! the path fix-up for Lua's truncated chunk names.

use mlua::{Function, Lua, Value};

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

fn innermost_lua_line(lua: &Lua) -> Option<String> {
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
}
