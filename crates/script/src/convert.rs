//! Lua values to JSON (what extensions return, action field defaults) and
//! JSON to Lua values (response bodies, data files, extension contexts).
//!
//! Written out rather than through mlua's serde support because the
//! results are shown to people: a table whose keys are 1..n (holes
//! allowed, as in `{ "a", nil, 3 }`, a row with an empty cell) is a list,
//! an empty table is an empty list (`rows = {}` is the common case), and a
//! value that is not data (a function, a cycle) is refused with the path
//! to it, e.g. `tables[1].rows[3][2]: a function is not data`.

use mlua::{Lua, LuaSerdeExt, Value};
use serde_json::{Map, Number, Value as Json};

/// JSON `null` becomes `nil` so `if r:json().field then` reads naturally.
pub fn json_to_lua(lua: &Lua, value: &Json) -> mlua::Result<Value> {
    let opts = mlua::serde::SerializeOptions::new()
        .serialize_none_to_null(false)
        .serialize_unit_to_null(false);
    lua.to_value_with(value, opts)
}

/// Deeper than this is surely a table that contains itself.
const MAX_DEPTH: usize = 64;

/// Converts `value`; errors name `path` (e.g. "the result") and the place inside.
pub fn to_json(value: &Value, path: &str) -> Result<Json, String> {
    convert(value, &mut path.to_string(), 0)
}

fn convert(value: &Value, path: &mut String, depth: usize) -> Result<Json, String> {
    Ok(match value {
        Value::Nil => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Integer(i) => Json::from(*i),
        // NaN and the infinities have no JSON spelling.
        Value::Number(n) => Number::from_f64(*n).map_or(Json::Null, Json::Number),
        Value::String(s) => Json::String(s.to_string_lossy()),
        Value::LightUserData(p) if p.0.is_null() => Json::Null,
        Value::Table(t) => {
            if depth >= MAX_DEPTH {
                return Err(format!(
                    "{path}: nested more than {MAX_DEPTH} deep (does a table contain itself?)"
                ));
            }
            table(t, path, depth + 1)?
        }
        other => {
            return Err(format!("{path}: a {} is not data", other.type_name()));
        }
    })
}

fn table(t: &mlua::Table, path: &mut String, depth: usize) -> Result<Json, String> {
    let mut pairs = Vec::new();
    for pair in t.pairs::<Value, Value>() {
        let pair = pair.map_err(|e| format!("{path}: {e}"))?;
        pairs.push(pair);
    }
    if pairs.is_empty() {
        return Ok(Json::Array(Vec::new()));
    }
    let indices: Option<Vec<usize>> = pairs.iter().map(|(k, _)| list_index(k)).collect();
    if let Some(indices) = indices {
        let max = indices.iter().copied().max().unwrap_or(0);
        // Mostly holes would be a map keyed by numbers, not a list.
        if max <= 2 * pairs.len() + 1 {
            let mut list = vec![Json::Null; max];
            for ((_, v), i) in pairs.iter().zip(indices) {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                list[i - 1] = convert(v, path, depth)?;
                path.truncate(len);
            }
            return Ok(Json::Array(list));
        }
    }
    let mut map = Map::new();
    for (k, v) in &pairs {
        let key = match k {
            Value::String(s) => s.to_string_lossy(),
            Value::Integer(i) => i.to_string(),
            Value::Number(n) => n.to_string(),
            other => {
                return Err(format!(
                    "{path}: a table key of type {} cannot be a JSON key",
                    other.type_name()
                ));
            }
        };
        let len = path.len();
        path.push('.');
        path.push_str(&key);
        let value = convert(v, path, depth)?;
        path.truncate(len);
        map.insert(key, value);
    }
    Ok(Json::Object(map))
}

fn list_index(k: &Value) -> Option<usize> {
    match k {
        Value::Integer(i) if *i >= 1 => usize::try_from(*i).ok(),
        Value::Number(n) if n.fract() == 0.0 && *n >= 1.0 && *n < 1e15 => Some(*n as usize),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(code: &str) -> Result<Json, String> {
        let lua = Lua::new();
        let v: Value = lua.load(code).eval().unwrap();
        to_json(&v, "result")
    }

    #[test]
    fn lists_maps_and_holes() {
        assert_eq!(
            eval("return { 1, 'a', true }").unwrap(),
            json!([1, "a", true])
        );
        assert_eq!(
            eval("return { 'a', nil, 3 }").unwrap(),
            json!(["a", null, 3])
        );
        assert_eq!(eval("return {}").unwrap(), json!([]));
        assert_eq!(
            eval("return { a = { b = 1.5 }, [2] = 'x', [1000] = 'y' }").unwrap(),
            json!({ "a": { "b": 1.5 }, "2": "x", "1000": "y" })
        );
        assert_eq!(eval("return 0/0").unwrap(), json!(null));
    }

    #[test]
    fn non_data_is_refused_with_its_path() {
        let e = eval("return { rows = { { 1, function() end } } }").unwrap_err();
        assert_eq!(e, "result.rows[1][2]: a function is not data");
        let e = eval("local t = {} t.self = t return t").unwrap_err();
        assert!(e.contains("contain itself"), "{e}");
    }
}
