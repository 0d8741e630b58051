//! `swarmer.shape`: the script's load profile, Locust's `LoadTestShape`.
//! Either a list of stages (checked here as the script loads, so a typo
//! fails with file:line on every process) or a function the master calls
//! about once a second; workers ignore both (they get user counts).

use mlua::{Function, Lua, Table, Value};
use serde::{Deserialize, Serialize};

use crate::luax::{check_keys, fault, innermost_lua_line, number, type_name};

const WHAT: &str = "swarmer.shape";

/// One stage as the script wrote it (see the master's `profile` module for
/// what a stage means).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageInfo {
    pub duration_ms: u64,
    pub users: u32,
    pub spawn_rate: Option<f64>,
    /// Empty: all user types.
    pub user_types: Vec<String>,
}

/// The script's shape, as the master reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum ShapeInfo {
    Stages {
        stages: Vec<StageInfo>,
    },
    /// A function only the master's extension engine can call.
    Function,
}

pub enum ShapeDecl {
    Stages(Vec<StageInfo>),
    Function(Function),
}

/// A declared shape and where (`file:line`), for the checks made once the
/// whole script has loaded.
pub struct Shape {
    pub decl: ShapeDecl,
    pub at: String,
}

impl Shape {
    pub fn info(&self) -> ShapeInfo {
        match &self.decl {
            ShapeDecl::Stages(stages) => ShapeInfo::Stages {
                stages: stages.clone(),
            },
            ShapeDecl::Function(_) => ShapeInfo::Function,
        }
    }

    /// Every stage's user types must be types the script defines (they may
    /// be defined after the shape, so this waits for the end of the load).
    pub fn check_user_types(&self, known: &[&str]) -> Result<(), String> {
        let ShapeDecl::Stages(stages) = &self.decl else {
            return Ok(());
        };
        for (i, stage) in stages.iter().enumerate() {
            if let Some(name) = stage
                .user_types
                .iter()
                .find(|n| !known.contains(&n.as_str()))
            {
                return Err(format!(
                    "{}: {WHAT}: stage {}: unknown user type {name:?}; the script defines: {}",
                    self.at,
                    i + 1,
                    known.join(", ")
                ));
            }
        }
        Ok(())
    }
}

pub fn declare_shape(lua: &Lua, v: Value) -> mlua::Result<()> {
    let decl = match v {
        Value::Function(f) => ShapeDecl::Function(f),
        Value::Table(t) => {
            check_keys(&t, WHAT, &["stages"])?;
            ShapeDecl::Stages(stages(t.raw_get("stages")?)?)
        }
        other => {
            return Err(fault(format!(
                "{WHAT} expects {{ stages = {{ ... }} }} or a function(ctx), got a {}",
                type_name(&other)
            )));
        }
    };
    let at = innermost_lua_line(lua).unwrap_or_else(|| "the script".into());
    super::with_registry(lua, WHAT, |d| {
        if let Some(before) = &d.shape {
            return Err(fault(format!(
                "{WHAT}: a script has one shape, and one was declared at {}",
                before.at
            )));
        }
        d.shape = Some(Shape { decl, at });
        Ok(())
    })
}

fn stages(v: Value) -> mlua::Result<Vec<StageInfo>> {
    let Value::Table(list) = v else {
        return Err(fault(format!(
            "{WHAT}: stages must be a list such as {{ {{ duration = \"30s\", users = 100 }} }}, got a {}",
            type_name(&v)
        )));
    };
    let mut out = Vec::new();
    for (i, item) in list.sequence_values::<Value>().enumerate() {
        let at = format!("{WHAT}: stage {}", i + 1);
        match item? {
            Value::Table(t) => out.push(stage(&at, &t)?),
            other => {
                return Err(fault(format!(
                    "{at} must be a table such as {{ duration = \"30s\", users = 100 }}, got a {}",
                    type_name(&other)
                )));
            }
        }
    }
    if out.is_empty() {
        return Err(fault(format!(
            "{WHAT}: stages must list at least one stage"
        )));
    }
    Ok(out)
}

fn stage(at: &str, t: &Table) -> mlua::Result<StageInfo> {
    check_keys(t, at, &["duration", "users", "spawn_rate", "user_types"])?;
    let duration_ms = duration_ms(at, t.raw_get("duration")?)?;
    let users = match number(&t.raw_get("users")?) {
        Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= f64::from(u32::MAX) => n as u32,
        _ => {
            let v: Value = t.raw_get("users")?;
            return Err(fault(format!(
                "{at}: users must be a whole number of 0 or more, got {}",
                show(&v)
            )));
        }
    };
    let spawn_rate = match t.raw_get::<Value>("spawn_rate")? {
        Value::Nil => None,
        v => match number(&v) {
            Some(r) if r > 0.0 && r.is_finite() => Some(r),
            _ => {
                return Err(fault(format!(
                    "{at}: spawn_rate must be a positive number of users per second, got {}",
                    show(&v)
                )));
            }
        },
    };
    let user_types = match t.raw_get::<Value>("user_types")? {
        Value::Nil => vec![],
        Value::Table(list) => list
            .sequence_values::<Value>()
            .map(|v| match v? {
                Value::String(s) => Ok(s.to_str()?.to_string()),
                other => Err(fault(format!(
                    "{at}: user_types must be a list of names, got a {} in it",
                    type_name(&other)
                ))),
            })
            .collect::<mlua::Result<_>>()?,
        other => {
            return Err(fault(format!(
                "{at}: user_types must be a list of names, got a {}",
                type_name(&other)
            )));
        }
    };
    Ok(StageInfo {
        duration_ms,
        users,
        spawn_rate,
        user_types,
    })
}

/// `"30s"`, `"2m"`, `"1h30m"` or a number of seconds; longer than zero.
fn duration_ms(at: &str, v: Value) -> mlua::Result<u64> {
    let ms = match &v {
        Value::String(s) => {
            let text = s.to_str()?.trim().to_string();
            humantime::parse_duration(&text).ok().map(|d| d.as_millis())
        }
        other => number(other)
            .filter(|n| n.is_finite() && *n >= 0.0 && *n < 1e12)
            .map(|n| (n * 1000.0).round() as u128),
    };
    match ms {
        Some(ms) if ms > 0 => Ok(u64::try_from(ms).unwrap_or(u64::MAX)),
        _ => Err(fault(format!(
            "{at}: duration must be longer than zero, such as \"30s\", \"2m\" or 90 (seconds), got {}",
            show(&v)
        ))),
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::Nil => "nothing".into(),
        Value::String(s) => format!("{:?}", s.to_string_lossy()),
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => n.to_string(),
        other => format!("a {}", type_name(other)),
    }
}
