//! `arrivals = { rate = 200, per = "1s", pre_allocated = 20, max_users = 500 }`
//! (or `stages = { { duration = "1m", rate = 500 }, ... }`) in
//! `swarmer.user`: checked as it is declared, so a mistake fails the load
//! with the file and line, on every process, before anything starts.

use mlua::{Table, Value};

use crate::arrivals::{self, ArrivalSpec, RateStage};
use crate::luax::{self, check_keys, fault, opt_string, type_name};

const WHAT: &str = "swarmer.user: arrivals";
const KEYS: [&str; 6] = [
    "rate",
    "per",
    "stages",
    "start_rate",
    "pre_allocated",
    "max_users",
];
const STAGE_KEYS: [&str; 2] = ["duration", "rate"];
/// Pool bounds when the script gives none.
const DEFAULT_MAX_USERS: u32 = 1_000;
const DEFAULT_PRE_ALLOCATED: u32 = 10;

pub fn parse(v: Value) -> mlua::Result<ArrivalSpec> {
    let Value::Table(t) = v else {
        return Err(fault(format!(
            "{WHAT} must be a table such as {{ rate = 10, per = \"1s\", max_users = 100 }}, got a {}",
            type_name(&v)
        )));
    };
    check_keys(&t, WHAT, &KEYS)?;
    let per_s = match opt_string(&format!("{WHAT}: per"), t.raw_get("per")?)? {
        None => 1.0,
        Some(p) => arrivals::parse_duration_s(&p).map_err(bad)?,
    };
    let rate_per_s = match num("rate", t.raw_get("rate")?)? {
        None => None,
        Some(r) => Some(arrivals::positive("rate", r).map_err(bad)? / per_s),
    };
    let start_rate_per_s = match num("start_rate", t.raw_get("start_rate")?)? {
        None => 0.0,
        Some(r) => arrivals::non_negative("start_rate", r).map_err(bad)? / per_s,
    };
    let stages = stages(t.raw_get("stages")?, per_s)?;
    let max_users = count("max_users", t.raw_get("max_users")?)?;
    let pre_allocated = count("pre_allocated", t.raw_get("pre_allocated")?)?;
    let max_users = max_users.unwrap_or(DEFAULT_MAX_USERS.max(pre_allocated.unwrap_or(0)));
    let spec = ArrivalSpec {
        rate_per_s,
        start_rate_per_s,
        stages,
        pre_allocated: pre_allocated.unwrap_or(DEFAULT_PRE_ALLOCATED.min(max_users)),
        max_users,
    };
    spec.check().map_err(bad)?;
    Ok(spec)
}

fn bad(e: arrivals::ArrivalError) -> mlua::Error {
    fault(format!("swarmer.user: {e}"))
}

fn num(key: &str, v: Value) -> mlua::Result<Option<f64>> {
    match (&v, luax::number(&v)) {
        (Value::Nil, _) => Ok(None),
        (_, Some(n)) => Ok(Some(n)),
        _ => Err(fault(format!(
            "{WHAT}: {key} must be a number, got a {}",
            type_name(&v)
        ))),
    }
}

fn count(key: &str, v: Value) -> mlua::Result<Option<u32>> {
    match num(key, v)? {
        None => Ok(None),
        Some(n) if n.fract() == 0.0 && (1.0..=1e9).contains(&n) => Ok(Some(n as u32)),
        Some(n) => Err(fault(format!(
            "{WHAT}: {key} must be a whole number >= 1, got {n}"
        ))),
    }
}

fn stages(v: Value, per_s: f64) -> mlua::Result<Vec<RateStage>> {
    let list: Table = match v {
        Value::Nil => return Ok(Vec::new()),
        Value::Table(t) => t,
        other => {
            return Err(fault(format!(
                "{WHAT}: stages must be a list such as {{ {{ duration = \"1m\", rate = 50 }} }}, got a {}",
                type_name(&other)
            )));
        }
    };
    let mut out = Vec::new();
    for (i, item) in list.sequence_values::<Value>().enumerate() {
        let at = format!("{WHAT}: stages[{}]", i + 1);
        let Value::Table(s) = item? else {
            return Err(fault(format!(
                "{at} must be a table such as {{ duration = \"1m\", rate = 50 }}"
            )));
        };
        check_keys(&s, &at, &STAGE_KEYS)?;
        let duration_s = match s.raw_get::<Value>("duration")? {
            Value::String(d) => arrivals::parse_duration_s(&d.to_string_lossy())
                .map_err(|e| fault(format!("{at}: {e}")))?,
            v => match luax::number(&v) {
                Some(n) => {
                    arrivals::positive("duration", n).map_err(|e| fault(format!("{at}: {e}")))?
                }
                None => {
                    return Err(fault(format!(
                        "{at}: duration is required, such as \"30s\""
                    )));
                }
            },
        };
        let Some(rate) = num("rate", s.raw_get("rate")?)? else {
            return Err(fault(format!("{at}: rate is required")));
        };
        let rate = arrivals::non_negative("rate", rate).map_err(|e| fault(format!("{at}: {e}")))?;
        out.push(RateStage {
            duration_s,
            rate_per_s: rate / per_s,
        });
    }
    if matches!(list.raw_len(), 0) && !list.is_empty() {
        return Err(fault(format!("{WHAT}: stages must be a list")));
    }
    Ok(out)
}
