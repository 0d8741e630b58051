//! Building a Lua state with the `swarmer` API, loading the script into it,
//! and turning its declarations into what the per-core runtime runs.

use std::cell::{Cell, RefCell};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use mlua::{Function, Lua, Table, Thread, Value};

use crate::define::{self, Registry, TaskDef, Wait};
use crate::held::{HANDLE_SLOTS, Held, Slots};
use crate::http::type_options::TypeHttp;
use crate::lua_env::LuaEnv;
use crate::luax::{fix_path, make_runner};
use crate::watchdog::Watchdog;
use crate::{RuntimeConfig, ScriptError, ScriptInfo, ScriptSource, api};
use http_client::Origin;

/// A user type ready to run on this core.
pub struct RunType {
    pub name: Rc<str>,
    /// The tasks left after `--tags`/`--exclude-tags`.
    pub tasks: Vec<TaskDef>,
    pub wait: Wait,
    pub sequential: bool,
    pub on_start: Option<Function>,
    pub on_stop: Option<Function>,
    /// `{ __index = <the user type table> }`: every user's `self` inherits
    /// the type's methods and fields.
    pub user_meta: Table,
    pub base: Option<Rc<Origin>>,
    pub http: Rc<TypeHttp>,
}

/// One core's loaded script.
pub struct LoadedScript {
    pub lua: Lua,
    pub shared: Rc<LuaEnv>,
    pub info: ScriptInfo,
    pub types: Vec<RunType>,
    pub runner: Function,
    next_user_id: Cell<u64>,
    /// Finished coroutines kept for the next task: a task needs one only
    /// while it runs, so idle users hold none.
    threads: RefCell<Vec<Held<Thread>>>,
    /// Handle slots left for what users keep across awaits (see `held`).
    pub slots: Slots,
    /// Interrupts Lua code that runs too long without yielding.
    pub watchdog: Watchdog,
    /// `self.ws`: one table for every user (it acts for the running one).
    pub ws: Table,
    /// `self.grpc`, likewise.
    pub grpc: Table,
}

/// Enough for every user of a busy core to find one without growing the
/// pool without bound after a burst.
const MAX_IDLE_THREADS: usize = 1024;

impl LoadedScript {
    /// A coroutine ready to run the runner.
    pub fn take_thread(&self) -> mlua::Result<Held<Thread>> {
        let pooled = self.threads.borrow_mut().pop();
        match pooled {
            Some(t) => Ok(t),
            None => {
                let thread = self.lua.create_thread(self.runner.clone())?;
                Held::new(&self.lua, &self.slots, thread)
            }
        }
    }

    /// Returns a finished coroutine to the pool.
    pub fn put_thread(&self, thread: Held<Thread>) {
        let mut threads = self.threads.borrow_mut();
        if threads.len() < MAX_IDLE_THREADS
            && thread
                .with(&self.lua, |t| t.reset(self.runner.clone()))
                .is_ok()
        {
            threads.push(thread);
        }
    }

    pub fn next_user_id(&self) -> u64 {
        let id = self.next_user_id.get() + 1;
        self.next_user_id.set(id);
        id
    }
}

impl Drop for LoadedScript {
    fn drop(&mut self) {
        // Before `lua` closes: the watchdog thread must not touch it after.
        self.watchdog.detach();
    }
}

fn internal(src: &ScriptSource, e: mlua::Error) -> ScriptError {
    ScriptError::Load {
        message: format!("{}: {e}", src.path),
    }
}

/// Where data files and `require`d modules are looked up.
pub fn base_dir(src: &ScriptSource, config: &RuntimeConfig) -> PathBuf {
    config.base_dir.clone().unwrap_or_else(|| {
        Path::new(&src.path)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default()
    })
}

/// A fresh state with the script loaded: the state, what it declared, and
/// the protected runner used to call its functions. Loading is bounded in
/// time and memory; nothing watches the state afterwards.
pub fn load(
    src: &ScriptSource,
    shared: Rc<LuaEnv>,
) -> Result<(Lua, Registry, Function), ScriptError> {
    load_watched(src, shared).map(|(lua, registry, runner, _watchdog)| (lua, registry, runner))
}

/// [`load`], keeping the state's watchdog (now at the task time limit).
pub fn load_watched(
    src: &ScriptSource,
    shared: Rc<LuaEnv>,
) -> Result<(Lua, Registry, Function, Watchdog), ScriptError> {
    let lua = Lua::new();
    let limits = shared.config.limits;
    let watchdog = Watchdog::attach(
        &lua,
        limits.load_time,
        "loading the script",
        limits.memory_bytes,
    );
    lua.set_app_data(shared);
    lua.set_app_data(Registry::default());
    let runner = prepare_state(&lua).map_err(|e| internal(src, e))?;
    let chunk = lua
        .load(&src.code)
        .set_name(format!("@{}", src.path))
        .into_function()
        .map_err(|e| match e {
            mlua::Error::SyntaxError { message, .. } => ScriptError::Load {
                message: fix_path(&message, &src.path),
            },
            other => internal(src, other),
        })?;
    let (msg, _tb): (Option<String>, Option<String>) = {
        let _busy = watchdog.enter();
        runner.call(chunk).map_err(|e| internal(src, e))?
    };
    if let Some(msg) = msg {
        return Err(ScriptError::Load {
            message: fix_path(&msg, &src.path),
        });
    }
    watchdog.set_limit(limits.task_time, "task");
    let registry = lua.remove_app_data::<Registry>().unwrap_or_default();
    if registry.types.is_empty() {
        return Err(ScriptError::NoUserTypes);
    }
    if let Some(shape) = &registry.ext.shape {
        let known: Vec<&str> = registry.types.iter().map(|t| &*t.name).collect();
        shape
            .check_user_types(&known)
            .map_err(|message| ScriptError::Load { message })?;
    }
    Ok((lua, registry, runner, watchdog))
}

fn prepare_state(lua: &Lua) -> mlua::Result<Function> {
    let swarmer = lua.create_table()?;
    api::install(lua, &swarmer)?;
    define::install(lua, &swarmer)?;
    lua.globals().set("swarmer", swarmer)?;
    // LuaJIT's math.random starts from a fixed seed: every core would draw
    // the same sequence.
    let seed: u32 = rand::random::<u32>() >> 1;
    lua.load(format!("math.randomseed({seed})")).exec()?;
    // `require "helpers"` finds modules in the script's files only.
    crate::modules::install(lua)?;
    make_runner(lua)
}

/// Loads the script for running users.
pub fn build(
    src: &ScriptSource,
    config: RuntimeConfig,
    stats: Rc<std::cell::RefCell<stats::RequestStats>>,
) -> Result<LoadedScript, ScriptError> {
    let override_host = match &config.host {
        Some(h) if !h.is_empty() => Some(Rc::new(Origin::parse(h).map_err(|e| {
            ScriptError::Load {
                message: format!("invalid host {h:?} (-H/--host): {e}"),
            }
        })?)),
        _ => None,
    };
    let shared = Rc::new(LuaEnv::new(
        config.clone(),
        src.path.clone(),
        base_dir(src, &config),
        stats,
    ));
    let (lua, registry, runner, watchdog) = load_watched(src, shared.clone())?;
    let info = registry.info();
    let mut types = Vec::with_capacity(registry.types.len());
    for t in registry.types {
        let hook = |name: &str| -> Result<Option<Function>, ScriptError> {
            match t
                .table
                .raw_get::<Value>(name)
                .map_err(|e| internal(src, e))?
            {
                Value::Nil => Ok(None),
                Value::Function(f) => Ok(Some(f)),
                other => Err(ScriptError::Load {
                    message: format!(
                        "{}: {}.{name} must be a function, got a {}",
                        src.path,
                        t.name,
                        other.type_name()
                    ),
                }),
            }
        };
        let (on_start, on_stop) = (hook("on_start")?, hook("on_stop")?);
        let user_meta = lua.create_table().map_err(|e| internal(src, e))?;
        user_meta
            .set("__index", &t.table)
            .map_err(|e| internal(src, e))?;
        let base = match (&override_host, &t.host) {
            (Some(h), _) => Some(h.clone()),
            // Validated when declared.
            (None, Some(h)) => Origin::parse(h).ok().map(Rc::new),
            (None, None) => None,
        };
        let tasks = t
            .tasks
            .into_iter()
            .filter(|k| selected(&config, &k.tags))
            .collect();
        let http = TypeHttp::new(&config.http, &t.http);
        types.push(RunType {
            name: Rc::from(t.name.as_str()),
            tasks,
            wait: t.wait,
            sequential: t.sequential,
            on_start,
            on_stop,
            user_meta,
            base,
            http,
        });
    }
    let ws = crate::ws::table(&lua).map_err(|e| internal(src, e))?;
    let grpc = crate::grpc::table(&lua).map_err(|e| internal(src, e))?;
    Ok(LoadedScript {
        lua,
        shared,
        info,
        types,
        runner,
        next_user_id: Cell::new(0),
        threads: RefCell::new(Vec::new()),
        slots: Slots::new(HANDLE_SLOTS),
        watchdog,
        ws,
        grpc,
    })
}

/// Locust's rule: with `--tags`, a task runs if it has one of them; with
/// `--exclude-tags`, never if it has one of those.
pub fn selected(config: &RuntimeConfig, tags: &[String]) -> bool {
    let included = config.tags.is_empty() || tags.iter().any(|t| config.tags.contains(t));
    included && !tags.iter().any(|t| config.exclude_tags.contains(t))
}
