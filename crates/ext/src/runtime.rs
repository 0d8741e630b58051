//! The master's own Lua state for a script's extensions, and how one call
//! (a view's render, an action, a route, a hook) runs in it.
//!
//! Each call runs as a coroutine driven like a user's task (the script
//! crate's driver, through [`script::host`]): `ctx.http` requests and
//! `swarmer.sleep` park work in the call's context and yield; the driver
//! does it and resumes. So master-side handlers get
//! the same HTTP client as users, and several calls can wait on the network
//! at once on the one thread.
//!
//! Time limits: an instruction-count hook raises an error inside Lua once
//! the running call is past its deadline (a loop that never ends), and the
//! awaits between resumes are bounded by the same deadline. The deadline
//! counts from when the call starts running, not from when it was queued.
//! A call whose caller went away (its [`CancellationToken`] cancelled) is
//! stopped the same way, at the next hook check or await. LuaJIT does not
//! run hooks in compiled code, so this state runs with the JIT off; views
//! and actions are light work and the interpreter is plenty fast for them.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::Duration;

use http_client::Origin;
use mlua::{Function, HookTriggers, IntoLuaMulti, Lua, Table, Value, VmState};
use script::convert::{json_to_lua, to_json};
use script::declare::Declarations;
use script::declare::route::split_path;
use script::host::{CallUser, Host};
use script::luax::{fault, fix_path};
use script::{RuntimeConfig, ScriptError, ScriptSource};
use serde_json::Value as Json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::output::{ActionOutcome, ViewData};
use crate::{CallContext, Catalog, ExtConfig, ExtError, ShapeTarget, args};

/// How often (in Lua instructions) the hook looks at the clock.
const HOOK_EVERY: u32 = 1_000;

/// What the hook raises; the runner puts the Lua line in front.
const STOPPED: &str = ": stopped: it ran past its time limit";

/// Wraps the protected runner so the called function's result comes back
/// too: (error message, traceback, result).
const CALL: &str = r#"
local runner = ...
return function(fn, ...)
  local out
  local msg, tb = runner(function(...) out = fn(...) end, ...)
  return msg, tb, out
end
"#;

/// Given a shape function, a function returning its results as one table
/// `{ users, spawn_rate, user_types }` (no `users`: it returned nil).
const SHAPE_PACKER: &str = r#"
local f = ...
return function(ctx)
  local users, rate, types = f(ctx)
  return { users = users, spawn_rate = rate, user_types = types }
end
"#;

/// Functions that record statistics only mean something on workers; on
/// the master they would record into nothing, so they say so instead.
const MASTER_ONLY: &str = r#"
local function on_workers_only(name)
  return function()
    error(name .. " records statistics on workers: call it from a task, not from a view, action, route or hook", 2)
  end
end
swarmer.record = on_workers_only("swarmer.record")
swarmer.count = on_workers_only("swarmer.count")
if jit then jit.off() jit.flush() end
"#;

/// The deadline of the call whose Lua code runs right now, read by the hook.
#[derive(Default)]
struct Guard {
    deadline: Cell<Option<Instant>>,
    /// Cancelled when the running call's caller went away.
    cancel: RefCell<Option<CancellationToken>>,
    /// Set by the hook when it stopped the running call.
    fired: Cell<bool>,
    /// The hook runs on every instruction (after a deadline passed).
    tight: Cell<bool>,
}

fn install_hook(lua: &Lua, guard: Rc<Guard>, every: u32) -> mlua::Result<()> {
    guard.tight.set(every == 1);
    let triggers = HookTriggers::new().every_nth_instruction(every);
    lua.set_global_hook(triggers, move |lua, debug| on_hook(lua, debug, &guard))
}

/// Stops the running call once it is past its deadline, by raising an
/// error in the script's own code (never in swarmer's chunks, named "=...",
/// which must run to report it).
fn on_hook(lua: &Lua, debug: &mlua::debug::Debug, guard: &Rc<Guard>) -> mlua::Result<VmState> {
    let abandoned = guard
        .cancel
        .borrow()
        .as_ref()
        .is_some_and(|c| c.is_cancelled());
    match guard.deadline.get() {
        Some(d) if abandoned || Instant::now() >= d => {
            let ours = debug
                .source()
                .source
                .as_deref()
                .is_some_and(|s| s.starts_with('='));
            if ours {
                return Ok(VmState::Continue);
            }
            guard.fired.set(true);
            // Checked every 1000 instructions, a loop of `pcall`s would get
            // the error at the same point of its protected part each time and
            // never stop; checked at every instruction, the next error lands
            // outside the `pcall`.
            if !guard.tight.get() {
                install_hook(lua, guard.clone(), 1)?;
            }
            Err(fault(STOPPED.trim_start_matches(": ")))
        }
        _ => Ok(VmState::Continue),
    }
}

pub struct ExtRuntime {
    host: Host,
    call: Function,
    decls: Declarations,
    /// `ctx.state` of each view and action, kept between calls.
    view_states: Vec<Table>,
    action_states: Vec<Table>,
    guard: Rc<Guard>,
    limit: Duration,
    /// The first user type's host: `ctx.http`'s base when the run has none.
    default_host: Option<String>,
    origins: RefCell<HashMap<String, Option<Rc<Origin>>>>,
    /// Wraps a shape function so its several results come back as one table.
    shape_packer: Function,
}

fn load_error(src: &ScriptSource, e: impl std::fmt::Display) -> ScriptError {
    ScriptError::Load {
        message: format!("{}: {e}", src.path),
    }
}

impl ExtRuntime {
    pub fn load(src: &ScriptSource, config: &ExtConfig) -> Result<ExtRuntime, ScriptError> {
        let rc = RuntimeConfig {
            insecure_tls: config.insecure_tls,
            node_id: "master".into(),
            base_dir: config.base_dir.clone(),
            files: config.files.clone(),
            http: config.http.clone(),
            ..RuntimeConfig::default()
        };
        let loaded = script::host::load(src, rc)?;
        let (host, decls) = (loaded.host, loaded.declarations);
        decls.check().map_err(|e| load_error(src, e))?;
        let lua = host.lua();
        let e = |e: mlua::Error| load_error(src, e);
        lua.load(MASTER_ONLY)
            .set_name("=swarmer.ext")
            .exec()
            .map_err(e)?;
        let call = lua
            .load(CALL)
            .set_name("=swarmer.ext")
            .call::<Function>(host.runner())
            .map_err(e)?;
        let shape_packer = lua
            .load(SHAPE_PACKER)
            .set_name("=swarmer.ext")
            .into_function()
            .map_err(e)?;
        let guard = Rc::new(Guard::default());
        install_hook(lua, guard.clone(), HOOK_EVERY).map_err(e)?;
        let states = |n: usize| {
            (0..n)
                .map(|_| lua.create_table())
                .collect::<mlua::Result<Vec<_>>>()
        };
        let view_states = states(decls.views.len()).map_err(e)?;
        let action_states = states(decls.actions.len()).map_err(e)?;
        Ok(ExtRuntime {
            default_host: loaded.default_host,
            host,
            call,
            decls,
            view_states,
            action_states,
            guard,
            limit: config.call_timeout,
            origins: RefCell::new(HashMap::new()),
            shape_packer,
        })
    }

    pub fn catalog(&self) -> Catalog {
        self.decls.catalog()
    }

    /// The event of each hook, in declaration order.
    pub fn hook_events(&self) -> Vec<String> {
        self.decls
            .hooks
            .iter()
            .map(|h| h.event.to_string())
            .collect()
    }

    pub async fn render(
        &self,
        id: &str,
        ctx: CallContext,
        cancel: &CancellationToken,
    ) -> Result<ViewData, ExtError> {
        let Some(i) = self.decls.views.iter().position(|v| v.id == id) else {
            return Err(not_found("view", id));
        };
        let view = &self.decls.views[i];
        let what = format!("view {id:?}");
        let out = self
            .invoke(
                &what,
                &view.render,
                &ctx,
                Some(&self.view_states[i]),
                cancel,
                |c| c,
            )
            .await?;
        ViewData::from_json(&out).map_err(|e| self.unusable(&what, &view.render, "render", e))
    }

    pub async fn act(
        &self,
        id: &str,
        args: Json,
        ctx: CallContext,
        cancel: &CancellationToken,
    ) -> Result<ActionOutcome, ExtError> {
        let Some(i) = self.decls.actions.iter().position(|a| a.info.id == id) else {
            return Err(not_found("action", id));
        };
        let action = &self.decls.actions[i];
        let args = args::validate(&action.info.fields, &args)?;
        let args = json_to_lua(self.lua(), &Json::Object(args)).map_err(lua_error)?;
        let what = format!("action {id:?}");
        let state = Some(&self.action_states[i]);
        let out = self
            .invoke(&what, &action.run, &ctx, state, cancel, |c| (args, c))
            .await?;
        ActionOutcome::from_json(&out).map_err(|e| self.unusable(&what, &action.run, "run", e))
    }

    /// Serves `GET /api/v1/ext{path}` from the first route that matches.
    pub async fn route(
        &self,
        path: &str,
        query: Vec<(String, String)>,
        ctx: CallContext,
        cancel: &CancellationToken,
    ) -> Result<Json, ExtError> {
        let segments = split_path(path).ok_or_else(|| not_found("route", path))?;
        let found = self
            .decls
            .routes
            .iter()
            .find_map(|r| r.pattern.matches(&segments).map(|p| (r, p)));
        let Some((route, params)) = found else {
            return Err(not_found("route", path));
        };
        let query: BTreeMap<String, String> = query.into_iter().collect();
        let req = serde_json::json!({ "path": path, "params": params, "query": query });
        let req = json_to_lua(self.lua(), &req).map_err(lua_error)?;
        let what = format!("route {:?}", route.pattern.text);
        self.invoke(&what, &route.handler, &ctx, None, cancel, |c| (req, c))
            .await
    }

    /// Runs every hook of `event` in declaration order; returns their errors.
    pub async fn emit(
        &self,
        event: &str,
        data: Json,
        ctx: CallContext,
        cancel: &CancellationToken,
    ) -> Vec<ExtError> {
        let mut errors = Vec::new();
        for hook in self.decls.hooks.iter().filter(|h| h.event == event) {
            let result = async {
                let ev = json_to_lua(self.lua(), &data).map_err(lua_error)?;
                let what = format!("hook {event}");
                self.invoke(&what, &hook.handler, &ctx, None, cancel, |c| (ev, c))
                    .await
            };
            if let Err(e) = result.await {
                errors.push(e);
            }
        }
        errors
    }

    /// Runs `f` as a coroutine with `args(ctx)` until it returns, the
    /// deadline passes, `cancel` fires, or it fails; returns its result as
    /// JSON.
    async fn invoke<A: IntoLuaMulti>(
        &self,
        what: &str,
        f: &Function,
        ctx: &CallContext,
        state: Option<&Table>,
        cancel: &CancellationToken,
        args: impl FnOnce(Table) -> A,
    ) -> Result<Json, ExtError> {
        if cancel.is_cancelled() {
            return Err(ExtError::Cancelled);
        }
        let deadline = Instant::now() + self.limit;
        let user = self.host.new_call();
        let ctx = self.ctx_table(ctx, state, &user).map_err(lua_error)?;
        let thread = self
            .lua()
            .create_thread(self.call.clone())
            .map_err(lua_error)?;
        let first = (f.clone(), args(ctx))
            .into_lua_multi(self.lua())
            .map_err(lua_error)?;
        let run = self.drive(what, &thread, &user, first, deadline, cancel);
        let outcome = tokio::select! {
            timed = tokio::time::timeout_at(deadline, run) => timed,
            _ = cancel.cancelled() => Ok(Err(ExtError::Cancelled)),
        };
        self.host.finish(&user);
        match outcome {
            Ok(result) => result,
            Err(_) => Err(ExtError::Timeout(format!(
                "{}: {what} ran for more than {:?} (waiting for a request or a sleep) and was stopped",
                self.position(f),
                self.limit
            ))),
        }
        .and_then(|v| {
            to_json(&v, "the result").map_err(|e| self.unusable(what, f, "the function", e))
        })
    }

    /// Runs the call's coroutine to its end; its Lua code runs under the
    /// hook's deadline.
    async fn drive(
        &self,
        what: &str,
        thread: &mlua::Thread,
        user: &CallUser,
        first: mlua::MultiValue,
        deadline: Instant,
        cancel: &CancellationToken,
    ) -> Result<Value, ExtError> {
        let step = self
            .host
            .drive::<_, (Option<String>, Option<String>, Value), _>(user, thread, first, || {
                Deadline::enter(self, deadline, cancel)
            })
            .await;
        let stopped = self.guard.fired.replace(false);
        let (msg, _tb, out) = step.map_err(lua_error)?;
        match msg {
            None => Ok(out),
            Some(_) if stopped && cancel.is_cancelled() => Err(ExtError::Cancelled),
            Some(m) if stopped => {
                let m = fix_path(&m, self.host.script_path());
                let at = m.strip_suffix(STOPPED).unwrap_or(&m);
                Err(ExtError::Timeout(format!(
                    "{at}: {what} ran for more than {:?} and was stopped",
                    self.limit
                )))
            }
            Some(m) => Err(ExtError::Script(fix_path(&m, self.host.script_path()))),
        }
    }

    /// Calls the script's shape function with `ctx` (`run_time`, `stats`);
    /// `None` when it returned `nil` (the profile has ended).
    pub async fn shape(
        &self,
        ctx: CallContext,
        cancel: &CancellationToken,
    ) -> Result<Option<ShapeTarget>, ExtError> {
        let Some(f) = self.decls.shape_function() else {
            return Err(not_found("shape", "function"));
        };
        // Several return values become one table, which `invoke` returns.
        let packed = self.shape_packer.call::<Function>(f).map_err(lua_error)?;
        let out = self
            .invoke("shape", &packed, &ctx, None, cancel, |c| c)
            .await?;
        crate::shape::target(&out).map_err(|e| self.unusable("shape", f, "the function", e))
    }

    fn lua(&self) -> &Lua {
        self.host.lua()
    }

    fn ctx_table(
        &self,
        ctx: &CallContext,
        state: Option<&Table>,
        user: &CallUser,
    ) -> mlua::Result<Table> {
        let t = match json_to_lua(self.lua(), &ctx.data)? {
            Value::Table(t) => t,
            _ => self.lua().create_table()?,
        };
        if let Some(s) = state {
            t.raw_set("state", s)?;
        }
        let host = ctx.host.as_deref().or(self.default_host.as_deref());
        t.raw_set("http", self.host.http_client(user, self.origin(host))?)?;
        Ok(t)
    }

    fn origin(&self, host: Option<&str>) -> Option<Rc<Origin>> {
        let host = host.filter(|h| !h.is_empty())?;
        self.origins
            .borrow_mut()
            .entry(host.to_string())
            .or_insert_with(|| Origin::parse(host).ok().map(Rc::new))
            .clone()
    }

    /// "file:line" where `f` is defined, for errors Lua gave no place to.
    fn position(&self, f: &Function) -> String {
        let info = f.info();
        let file = info
            .source
            .as_deref()
            .and_then(|s| s.strip_prefix('@'))
            .unwrap_or(self.host.script_path())
            .to_string();
        match info.line_defined {
            Some(line) => format!("{file}:{line}"),
            None => file,
        }
    }

    fn unusable(&self, what: &str, f: &Function, returned: &str, problem: String) -> ExtError {
        ExtError::Script(format!(
            "{}: {what}: {returned} returned something unusable: {problem}",
            self.position(f)
        ))
    }
}

fn not_found(kind: &'static str, id: &str) -> ExtError {
    ExtError::NotFound {
        kind,
        id: id.to_string(),
    }
}

fn lua_error(e: mlua::Error) -> ExtError {
    ExtError::Script(e.to_string())
}

/// While a call's Lua code runs, its deadline is the hook's.
struct Deadline<'a> {
    engine: &'a ExtRuntime,
}

impl<'a> Deadline<'a> {
    fn enter(engine: &'a ExtRuntime, deadline: Instant, cancel: &CancellationToken) -> Self {
        engine.guard.deadline.set(Some(deadline));
        *engine.guard.cancel.borrow_mut() = Some(cancel.clone());
        engine.guard.fired.set(false);
        Deadline { engine }
    }
}

impl Drop for Deadline<'_> {
    fn drop(&mut self) {
        let guard = &self.engine.guard;
        guard.deadline.set(None);
        guard.cancel.borrow_mut().take();
        if guard.tight.get() {
            // Back to the cheap check for the calls that follow.
            let _ = install_hook(self.engine.lua(), guard.clone(), HOOK_EVERY);
        }
    }
}
