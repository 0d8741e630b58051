//! `swarmer.data(path)`: test data shared by all users of a core. A CSV file
//! becomes an array of rows keyed by the header line, a `.json` file its
//! decoded value. Each file is read once per core and the same Lua value is
//! handed to every caller, so 10,000 users do not hold 10,000 copies.
//! The bytes come from the script's files (`files.rs`): the master's disk,
//! or on a worker the files that came with the script.

use std::path::Path;

use mlua::{Lua, Value};

use crate::convert::json_to_lua;
use crate::lua_env::LuaEnv;
use crate::luax::fault;

pub fn data(lua: &Lua, path: String) -> mlua::Result<Value> {
    let shared = LuaEnv::from_lua(lua)?;
    let key = crate::files::normalise(&path)
        .map_err(|e| fault(format!("swarmer.data({path:?}): {e}")))?;
    if let Some(value) = shared.data.borrow().get(&key) {
        return lua.registry_value(value);
    }
    let bytes = shared
        .files
        .read(&path)
        .map_err(|e| fault(format!("swarmer.data({path:?}): {e}")))?;
    let value = load(lua, &path, &key, &bytes)?;
    let stored = lua.create_registry_value(value.clone())?;
    shared.data.borrow_mut().insert(key, stored);
    Ok(value)
}

fn load(lua: &Lua, shown: &str, key: &str, bytes: &[u8]) -> mlua::Result<Value> {
    let is_json = Path::new(key)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        let v: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| fault(format!("swarmer.data({shown:?}): invalid JSON: {e}")))?;
        return json_to_lua(lua, &v);
    }
    csv_rows(lua, shown, bytes)
}

/// Values stay strings, as in the file: `tonumber(row.age)` where a number
/// is wanted. Empty lines are skipped; a row with a different number of
/// fields than the header is an error naming its line.
fn csv_rows(lua: &Lua, shown: &str, bytes: &[u8]) -> mlua::Result<Value> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::Headers)
        .from_reader(bytes);
    let headers = reader
        .headers()
        .map_err(|e| fault(format!("swarmer.data({shown:?}): bad CSV header: {e}")))?
        .clone();
    let rows = lua.create_table()?;
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| fault(format!("swarmer.data({shown:?}): bad CSV: {e}")))?;
        let row = lua.create_table_with_capacity(0, headers.len())?;
        for (h, v) in headers.iter().zip(record.iter()) {
            row.raw_set(h, v)?;
        }
        rows.raw_set(i + 1, row)?;
    }
    Ok(Value::Table(rows))
}
