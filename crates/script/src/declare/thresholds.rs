//! `swarmer.thresholds { "p95 < 300ms", ["GET /item/[id]"] = { "p99 < 1s" } }`:
//! the run's pass/fail conditions, parsed (by the `verdict` crate) as the
//! script loads, so a bad expression fails the load with file:line on
//! every process. Plain list items judge the Aggregated row; a key scopes
//! its expressions (one string or a list) to the entries it names. May be
//! called more than once; the thresholds add up, in declaration order.

use mlua::{Lua, Table, Value};
use verdict::Threshold;

use crate::luax::{fault, type_name};

const WHAT: &str = "swarmer.thresholds";

pub fn declare_thresholds(lua: &Lua, v: Value) -> mlua::Result<()> {
    let Value::Table(t) = v else {
        return Err(fault(format!(
            "{WHAT} expects a table such as {{ \"p95 < 300ms\", [\"GET /item\"] = {{ \"p99 < 1s\" }} }}, got a {}",
            type_name(&v)
        )));
    };
    let parsed = read(&t)?;
    super::with_registry(lua, WHAT, |d| {
        d.thresholds.extend(parsed);
        Ok(())
    })
}

fn read(t: &Table) -> mlua::Result<Vec<Threshold>> {
    let mut out = Vec::new();
    // The list part first, in order; then the scoped keys, sorted so every
    // process (and every report) lists them alike.
    let list_len = t.raw_len();
    for i in 1..=list_len {
        out.push(parse(None, t.raw_get(i)?)?);
    }
    let mut scoped: Vec<(String, Value)> = Vec::new();
    for pair in t.clone().pairs::<Value, Value>() {
        let (key, value) = pair?;
        match key {
            Value::Integer(i) if (1..=list_len as i64).contains(&i) => {}
            Value::String(s) => scoped.push((s.to_str()?.to_string(), value)),
            other => {
                return Err(fault(format!(
                    "{WHAT}: keys must be scopes such as [\"GET /item\"], got a {}",
                    type_name(&other)
                )));
            }
        }
    }
    scoped.sort_by(|a, b| a.0.cmp(&b.0));
    for (scope, value) in scoped {
        match value {
            Value::Table(list) => {
                if list.raw_len() == 0 {
                    return Err(fault(format!(
                        "{WHAT}: [{scope:?}] must list expressions such as {{ \"p99 < 1s\" }}"
                    )));
                }
                for item in list.sequence_values::<Value>() {
                    out.push(parse(Some(&scope), item?)?);
                }
            }
            single => out.push(parse(Some(&scope), single)?),
        }
    }
    Ok(out)
}

fn parse(scope: Option<&str>, v: Value) -> mlua::Result<Threshold> {
    let Value::String(s) = &v else {
        let at = scope.map_or(String::new(), |s| format!(" [{s:?}]"));
        return Err(fault(format!(
            "{WHAT}{at}: an expression must be a string such as \"p95 < 300ms\", got a {}",
            type_name(&v)
        )));
    };
    let text = s.to_str()?.to_string();
    let parsed = match scope {
        None => Threshold::parse(&text),
        Some(scope) => Threshold::parse_scoped(scope, &text),
    };
    parsed.map_err(|e| fault(format!("{WHAT}: {e}")))
}
