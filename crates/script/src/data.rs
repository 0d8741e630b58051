//! `swarmer.data(path)`: test data shared by all users of a core. A CSV file
//! becomes an array of rows keyed by the header line, a `.json` file its
//! decoded value. Each file is read once per core and the same Lua value is
//! handed to every caller, so 10,000 users do not hold 10,000 copies.

use std::path::{Path, PathBuf};

use mlua::{Lua, Value};

use crate::convert::json_to_lua;
use crate::lua_env::LuaEnv;
use crate::luax::fault;

pub fn data(lua: &Lua, path: String) -> mlua::Result<Value> {
    let shared = LuaEnv::from_lua(lua)?;
    let full = resolve(&shared.base_dir, &path);
    if let Some(key) = shared.data.borrow().get(&full) {
        return lua.registry_value(key);
    }
    let value = load(lua, &path, &full)?;
    let key = lua.create_registry_value(value.clone())?;
    shared.data.borrow_mut().insert(full, key);
    Ok(value)
}

fn resolve(base: &Path, path: &str) -> PathBuf {
    let p = Path::new(path);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    }
}

fn load(lua: &Lua, shown: &str, full: &Path) -> mlua::Result<Value> {
    let bytes = std::fs::read(full).map_err(|e| {
        fault(format!(
            "swarmer.data({shown:?}): cannot read {}: {e}",
            full.display()
        ))
    })?;
    let is_json = full
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        let v: serde_json::Value = serde_json::from_slice(&bytes)
            .map_err(|e| fault(format!("swarmer.data({shown:?}): invalid JSON: {e}")))?;
        return json_to_lua(lua, &v);
    }
    csv_rows(lua, shown, &bytes)
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
