//! What a script declares: `swarmer.user { ... }` and `Type:task(...)`.
//!
//! Declarations are collected into a [`Registry`] while the script's main
//! chunk runs; afterwards the registry becomes both the [`ScriptInfo`] the
//! master sees and the definitions the per-core runtime runs.

use std::collections::HashMap;
use std::ffi::c_void;

use mlua::{Function, Lua, Table, Value};

use crate::arrivals::ArrivalSpec;
use crate::http::type_options::DeclaredHttp;
use crate::luax::{check_keys, fault, number, opt_string, type_name};
use crate::wait::WaitTime;
use crate::{ScriptInfo, TaskInfo, UserTypeInfo};
use http_client::Origin;

/// One task of a user type.
pub struct TaskDef {
    pub name: String,
    pub weight: u32,
    pub tags: Vec<String>,
    pub func: Function,
}

/// How long a user pauses between tasks.
#[derive(Clone)]
pub enum Wait {
    Time(WaitTime),
    /// `wait = function(self) return seconds end`, Locust's custom wait_time.
    Custom(Function),
}

impl Wait {
    /// The declaration as a script writes it, for listings.
    pub fn describe(&self) -> String {
        match self {
            Wait::Time(WaitTime::Constant(s)) => format!("constant({s})"),
            Wait::Time(WaitTime::Between(a, b)) => format!("between({a}, {b})"),
            Wait::Time(WaitTime::ConstantPacing(s)) => format!("constant_pacing({s})"),
            Wait::Time(WaitTime::ConstantThroughput(n)) => format!("constant_throughput({n})"),
            Wait::Custom(_) => "function".to_string(),
        }
    }
}

/// One user type as declared.
pub struct UserTypeDef {
    pub name: String,
    pub weight: u32,
    pub fixed_count: Option<u32>,
    pub arrivals: Option<ArrivalSpec>,
    pub host: Option<String>,
    /// `accept_encoding` and `hosts`.
    pub http: DeclaredHttp,
    pub wait: Wait,
    pub sequential: bool,
    /// The table the script got back: holds `on_start`, `on_stop` and any
    /// helper methods, and is the `__index` of every user's `self`.
    pub table: Table,
    pub tasks: Vec<TaskDef>,
}

/// Declarations in definition order.
#[derive(Default)]
pub struct Registry {
    pub types: Vec<UserTypeDef>,
    by_table: HashMap<*const c_void, usize>,
    /// Views, actions, routes and hooks: only the master runs them.
    pub ext: crate::declare::Declarations,
}

impl Registry {
    pub fn info(&self) -> ScriptInfo {
        ScriptInfo {
            user_types: self
                .types
                .iter()
                .map(|t| UserTypeInfo {
                    name: t.name.clone(),
                    weight: t.weight,
                    fixed_count: t.fixed_count,
                    host: t.host.clone(),
                    arrivals: t.arrivals.clone(),
                    tasks: t
                        .tasks
                        .iter()
                        .map(|k| TaskInfo {
                            name: k.name.clone(),
                            weight: k.weight,
                            tags: k.tags.clone(),
                        })
                        .collect(),
                })
                .collect(),
            shape: self.ext.shape.as_ref().map(|s| s.info()),
            thresholds: self.ext.thresholds.clone(),
        }
    }
}

const USER_KEYS: [&str; 11] = [
    "name",
    "weight",
    "fixed_count",
    "arrivals",
    "wait",
    "host",
    "sequential",
    "accept_encoding",
    "hosts",
    "client_cert",
    "client_key",
];
const TASK_KEYS: [&str; 4] = ["fn", "weight", "name", "tags"];

/// Installs `swarmer.user` and the wait-time constructors into `swarmer`.
pub fn install(lua: &Lua, swarmer: &Table) -> mlua::Result<()> {
    let methods = lua.create_table()?;
    methods.set(
        "task",
        lua.create_function(|lua, (ut, a, b): (Table, Value, Value)| add_task(lua, &ut, a, b))?,
    )?;
    let type_meta = lua.create_table()?;
    type_meta.set("__index", methods)?;
    swarmer.set(
        "user",
        lua.create_function(move |lua, opts: Value| declare_user(lua, &type_meta, opts))?,
    )?;
    swarmer.set(
        "constant",
        lua.create_function(|_, s: f64| wait_value(WaitTime::constant(s)))?,
    )?;
    swarmer.set(
        "between",
        lua.create_function(|_, (a, b): (f64, f64)| wait_value(WaitTime::between(a, b)))?,
    )?;
    swarmer.set(
        "constant_pacing",
        lua.create_function(|_, s: f64| wait_value(WaitTime::constant_pacing(s)))?,
    )?;
    swarmer.set(
        "constant_throughput",
        lua.create_function(|_, n: f64| wait_value(WaitTime::constant_throughput(n)))?,
    )?;
    crate::declare::install(lua, swarmer)
}

/// Wait times travel through Lua as userdata so `wait = ` can tell them
/// from numbers and functions.
#[derive(Clone, Copy)]
pub struct WaitValue(pub WaitTime);

impl mlua::UserData for WaitValue {
    fn add_methods<M: mlua::UserDataMethods<Self>>(methods: &mut M) {
        methods.add_meta_method("__tostring", |_, this, ()| Ok(format!("{:?}", this.0)));
    }
}

fn wait_value(w: Result<WaitTime, crate::wait::WaitError>) -> mlua::Result<WaitValue> {
    w.map(WaitValue).map_err(|e| fault(e.to_string()))
}

fn positive_int(what: &str, v: Value) -> mlua::Result<u32> {
    let Some(n) = number(&v) else {
        return Err(fault(format!(
            "{what} must be a whole number >= 1, got a {}",
            type_name(&v)
        )));
    };
    if n.fract() != 0.0 || !(1.0..=1e9).contains(&n) {
        return Err(fault(format!(
            "{what} must be a whole number >= 1, got {n}"
        )));
    }
    Ok(n as u32)
}

fn parse_wait(v: Value) -> mlua::Result<Wait> {
    let seconds = match v {
        Value::Nil => return Ok(Wait::Time(WaitTime::default())),
        Value::Integer(_) | Value::Number(_) => number(&v).unwrap_or_default(),
        Value::Function(f) => return Ok(Wait::Custom(f)),
        Value::UserData(ud) => {
            return match ud.borrow::<WaitValue>() {
                Ok(w) => Ok(Wait::Time(w.0)),
                Err(_) => Err(fault(
                    "swarmer.user: wait must be swarmer.constant(s), swarmer.between(a, b), swarmer.constant_pacing(s), swarmer.constant_throughput(n), a number of seconds or a function",
                )),
            };
        }
        other => {
            return Err(fault(format!(
                "swarmer.user: wait must be a wait time such as swarmer.between(1, 3), got a {}",
                type_name(&other)
            )));
        }
    };
    WaitTime::constant(seconds)
        .map(Wait::Time)
        .map_err(|e| fault(e.to_string()))
}

fn declare_user(lua: &Lua, type_meta: &Table, opts: Value) -> mlua::Result<Table> {
    let opts = match opts {
        Value::Table(t) => t,
        Value::Nil => lua.create_table()?,
        other => {
            return Err(fault(format!(
                "swarmer.user expects a table such as {{ name = \"Shopper\", weight = 1 }}, got a {}",
                type_name(&other)
            )));
        }
    };
    check_keys(&opts, "swarmer.user", &USER_KEYS)?;
    let mut reg = lua
        .app_data_mut::<Registry>()
        .ok_or_else(|| fault("swarmer.user can only be called while the script loads"))?;
    let name = match opt_string("swarmer.user: name", opts.raw_get("name")?)? {
        Some(n) if n.trim().is_empty() => {
            return Err(fault("swarmer.user: name must not be empty"));
        }
        Some(n) => n,
        // Locust names user types after their class; Lua values have no
        // names, so number them in definition order.
        None => format!("User{}", reg.types.len() + 1),
    };
    if reg.types.iter().any(|t| t.name == name) {
        return Err(fault(format!(
            "swarmer.user: a user type named {name:?} is already defined"
        )));
    }
    let weight = match opts.raw_get::<Value>("weight")? {
        Value::Nil => 1,
        v => positive_int("swarmer.user: weight", v)?,
    };
    let fixed_count = match opts.raw_get::<Value>("fixed_count")? {
        Value::Nil => None,
        v => Some(positive_int("swarmer.user: fixed_count", v)?),
    };
    let arrivals = match opts.raw_get::<Value>("arrivals")? {
        Value::Nil => None,
        v => Some(crate::declare::arrivals::parse(v)?),
    };
    if arrivals.is_some() && fixed_count.is_some() {
        return Err(fault(
            "swarmer.user: arrivals and fixed_count exclude each other (arrivals drive the type by rate, fixed_count by a user count)",
        ));
    }
    let host = opt_string("swarmer.user: host", opts.raw_get("host")?)?;
    if let Some(h) = &host {
        Origin::parse(h).map_err(|e| fault(format!("swarmer.user: host {h:?}: {e}")))?;
    }
    let sequential = match opts.raw_get::<Value>("sequential")? {
        Value::Nil => false,
        Value::Boolean(b) => b,
        other => {
            return Err(fault(format!(
                "swarmer.user: sequential must be true or false, got a {}",
                type_name(&other)
            )));
        }
    };
    let base_dir = crate::lua_env::LuaEnv::from_lua(lua)?.base_dir.clone();
    let http = DeclaredHttp::parse(&opts, &base_dir)?;
    let wait = parse_wait(opts.raw_get("wait")?)?;
    let table = lua.create_table()?;
    table.set_metatable(Some(type_meta.clone()))?;
    let index = reg.types.len();
    reg.by_table.insert(table.to_pointer(), index);
    reg.types.push(UserTypeDef {
        name,
        weight,
        fixed_count,
        arrivals,
        host,
        http,
        wait,
        sequential,
        table: table.clone(),
        tasks: Vec::new(),
    });
    Ok(table)
}

fn add_task(lua: &Lua, ut: &Table, a: Value, b: Value) -> mlua::Result<()> {
    let (weight, name, tags, func) = match (a, b) {
        (Value::Function(f), Value::Nil) => (1, None, Vec::new(), f),
        (w @ (Value::Integer(_) | Value::Number(_)), Value::Function(f)) => {
            (positive_int("task weight", w)?, None, Vec::new(), f)
        }
        (Value::Table(t), Value::Nil) => task_from_table(&t)?,
        _ => {
            return Err(fault(
                "task: use T:task(fn), T:task(weight, fn) or T:task { weight = 1, name = \"...\", tags = { ... }, fn = function(self) ... end }",
            ));
        }
    };
    let mut reg = lua
        .app_data_mut::<Registry>()
        .ok_or_else(|| fault("tasks can only be added while the script loads"))?;
    let Some(&index) = reg.by_table.get(&ut.to_pointer()) else {
        return Err(fault(
            "task must be called on a user type, as MyUser:task(...) (note the colon)",
        ));
    };
    let tasks = &mut reg.types[index].tasks;
    let name = name.unwrap_or_else(|| format!("task{}", tasks.len() + 1));
    tasks.push(TaskDef {
        name,
        weight,
        tags,
        func,
    });
    Ok(())
}

type TaskParts = (u32, Option<String>, Vec<String>, Function);

fn task_from_table(t: &Table) -> mlua::Result<TaskParts> {
    check_keys(t, "task", &TASK_KEYS)?;
    let func = match t.raw_get::<Value>("fn")? {
        Value::Function(f) => f,
        other => {
            return Err(fault(format!(
                "task: fn must be a function, got a {}",
                type_name(&other)
            )));
        }
    };
    let weight = match t.raw_get::<Value>("weight")? {
        Value::Nil => 1,
        v => positive_int("task weight", v)?,
    };
    let name = opt_string("task name", t.raw_get("name")?)?;
    let tags = match t.raw_get::<Value>("tags")? {
        Value::Nil => Vec::new(),
        Value::String(s) => vec![s.to_str()?.to_string()],
        Value::Table(list) => list
            .sequence_values::<Value>()
            .map(|v| match v? {
                Value::String(s) => Ok(s.to_str()?.to_string()),
                other => Err(fault(format!(
                    "task tags must be strings, got a {}",
                    type_name(&other)
                ))),
            })
            .collect::<mlua::Result<Vec<_>>>()?,
        other => {
            return Err(fault(format!(
                "task tags must be a list of strings, got a {}",
                type_name(&other)
            )));
        }
    };
    Ok((weight, name, tags, func))
}
