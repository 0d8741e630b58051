//! `swarmer.count(name, n)`: a counter recorded on workers as a stats entry
//! of type [`COUNT_METHOD`].
//!
//! A counter is `n` zero-duration successful samples of the entry
//! (`COUNT`, name): "# Requests" is the counter's value and "Current RPS"
//! its rate, and because it is an ordinary entry it travels in reports,
//! merges exactly on the master, and shows in the stats tables, CSV files,
//! `/metrics`, the report and extension views with no special case. The
//! price of needing no change to the stats format: the samples also count
//! in the Aggregated row (its request count and RPS, and zero-millisecond
//! times in its percentiles). docs/extending.md says so.

use mlua::{Lua, Value};
use stats::Sample;

use crate::lua_env::LuaEnv;
use crate::luax::{fault, type_name};

/// The "method" column of counter entries.
pub const COUNT_METHOD: &str = stats::COUNTER_METHOD;

/// A bound on one call's cost: each unit is one sample (~100 ns).
const MAX_STEP: i64 = 100_000;

pub fn count(lua: &Lua, (name, n): (Value, Value)) -> mlua::Result<()> {
    let name = match name {
        Value::String(s) if !s.as_bytes().is_empty() => s.to_str()?.to_string(),
        other => {
            return Err(fault(format!(
                "swarmer.count: the name must be a non-empty string, got {}",
                if other.is_nil() {
                    "nil".to_string()
                } else {
                    format!("a {}", type_name(&other))
                }
            )));
        }
    };
    let n = match n {
        Value::Nil => 1,
        Value::Integer(i) => i,
        Value::Number(f) if f.fract() == 0.0 && f.abs() < 1e15 => f as i64,
        other => {
            return Err(fault(format!(
                "swarmer.count {name:?}: n must be a whole number, got {}",
                other
                    .to_string()
                    .unwrap_or_else(|_| type_name(&other).into())
            )));
        }
    };
    if !(0..=MAX_STEP).contains(&n) {
        return Err(fault(format!(
            "swarmer.count {name:?}: n must be from 0 to {MAX_STEP}, got {n}"
        )));
    }
    let shared = LuaEnv::from_lua(lua)?;
    let sample = Sample {
        method: COUNT_METHOD,
        name: &name,
        response_time_us: 0,
        due_latency_us: None,
        content_length: 0,
        error: None,
    };
    for _ in 0..n {
        shared.record(&sample);
    }
    Ok(())
}
