//! The JSON API's load profiles: `"stages"` in a `/api/v1/run` body, as
//! the command line's text (`"30s:100,2m:100,30s:0"`) or a list of
//! `{duration, users, spawn_rate?, user_types?}`, or `"shape": true` for
//! the script's own stages. Read here; the rules are `validate::stages`.

use std::time::Duration;

use script::ScriptInfo;
use serde_json::Value;

use super::error::ApiError;
use crate::profile::{self, Profile, Stage};

/// What the body asked for beyond a fixed count.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum ProfileAsk {
    #[default]
    Fixed,
    Stages(Vec<Stage>),
    /// The script's `swarmer.shape`: its stages or its function.
    ScriptShape,
}

/// Reads `stages` and `shape` from the body; refuses either beside
/// `users`, `spawn_rate` or `run_time`, which they replace.
pub fn read(map: &serde_json::Map<String, Value>) -> Result<ProfileAsk, ApiError> {
    let stages = map.get("stages").filter(|v| !v.is_null());
    let shape = match map.get("shape") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(other) => {
            return Err(ApiError::field(
                "shape",
                format!("must be true or false, got {other}"),
            ));
        }
    };
    let ask = match (stages, shape) {
        (None, false) => return Ok(ProfileAsk::Fixed),
        (Some(_), true) => {
            return Err(ApiError::field(
                "stages",
                "cannot be given with \"shape\": true; choose one",
            ));
        }
        (None, true) => ProfileAsk::ScriptShape,
        (Some(v), false) => ProfileAsk::Stages(stages_of(v)?),
    };
    let name = if shape { "shape" } else { "stages" };
    for fixed in ["users", "spawn_rate", "run_time"] {
        if map.get(fixed).is_some_and(|v| !v.is_null()) {
            return Err(ApiError::field(
                name,
                format!(
                    "cannot be given with {fixed:?}: the profile sets the users over time and ends the run"
                ),
            ));
        }
    }
    Ok(ask)
}

/// The profile a request follows, if any.
pub fn resolve(ask: &ProfileAsk, info: &ScriptInfo) -> Result<Option<Profile>, ApiError> {
    match ask {
        ProfileAsk::Fixed => Ok(None),
        ProfileAsk::Stages(stages) => Ok(Some(Profile::Stages(stages.clone()))),
        ProfileAsk::ScriptShape => match &info.shape {
            // A function's first answer comes when the run starts
            // (`crate::ext::start_run`).
            Some(shape) => Ok(Some(profile::from_script(shape))),
            None => Err(ApiError::field(
                "shape",
                "the script declares no shape (swarmer.shape)",
            )),
        },
    }
}

fn stages_of(v: &Value) -> Result<Vec<Stage>, ApiError> {
    match v {
        Value::String(text) => {
            profile::parse_stages(text).map_err(|e| ApiError::field("stages", e.to_string()))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| stage(i + 1, item))
            .collect(),
        other => Err(ApiError::field(
            "stages",
            format!("must be text such as \"30s:100,1m:0\" or a list of stages, got {other}"),
        )),
    }
}

fn stage(index: usize, v: &Value) -> Result<Stage, ApiError> {
    let bad = |problem: String| ApiError::field("stages", format!("stage {index}: {problem}"));
    let Value::Object(m) = v else {
        return Err(bad(format!(
            "must be an object such as {{\"duration\": \"30s\", \"users\": 100}}, got {v}"
        )));
    };
    if let Some(k) = m
        .keys()
        .find(|k| !["duration", "users", "spawn_rate", "user_types"].contains(&k.as_str()))
    {
        return Err(bad(format!("unknown field {k:?}")));
    }
    let duration = match m.get("duration") {
        Some(Value::String(s)) => {
            humantime::parse_duration(s.trim()).map_err(|e| bad(format!("duration {s:?}: {e}")))?
        }
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e12)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| bad(format!("duration must be 0 or more seconds, got {n}")))?,
        other => {
            return Err(bad(format!(
                "duration must be text such as \"30s\" or seconds, got {}",
                show(other)
            )));
        }
    };
    let users = match m.get("users") {
        Some(Value::Number(n)) if n.as_u64().is_some_and(|u| u <= u64::from(u32::MAX)) => {
            n.as_u64().unwrap_or_default() as u32
        }
        other => {
            return Err(bad(format!(
                "users must be a whole number of 0 or more, got {}",
                show(other)
            )));
        }
    };
    let spawn_rate = match m.get("spawn_rate") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(other) => return Err(bad(format!("spawn_rate must be a number, got {other}"))),
    };
    let user_types = match m.get("user_types") {
        None | Some(Value::Null) => vec![],
        Some(Value::Array(items)) => items
            .iter()
            .map(|t| {
                t.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| bad(format!("user_types must list names, got {t}")))
            })
            .collect::<Result<_, _>>()?,
        Some(other) => {
            return Err(bad(format!(
                "user_types must be a list of names, got {other}"
            )));
        }
    };
    Ok(Stage {
        duration,
        users,
        spawn_rate,
        user_types,
    })
}

fn show(v: Option<&Value>) -> String {
    v.map_or("nothing".into(), Value::to_string)
}
