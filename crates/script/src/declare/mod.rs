//! The declaring half of the extension API: `swarmer.ui.view`,
//! `swarmer.ui.action`, `swarmer.api.route` and `swarmer.on`, plus
//! `swarmer.count` (a worker-side statistic, installed here to keep every
//! extension function in one place), `swarmer.shape` (the load profile)
//! and `swarmer.thresholds` (the run's pass/fail conditions).
//!
//! Declarations are checked as they are made (so a typo fails the load on
//! every process, with the file and line) and collected into the load's
//! [`Registry`], next to the user types; workers drop them, the master's
//! extension engine (the `ext` crate) runs them.

pub mod arrivals;
mod count;
pub mod fields;
pub mod route;
pub mod shape;
mod thresholds;

use mlua::{Function, Lua, Table, Value};
use serde::Serialize;

use crate::define::Registry;
use crate::luax::{check_keys, fault, opt_string, type_name};
pub use count::COUNT_METHOD;
pub use fields::{FieldKind, FieldSpec};
use route::Pattern;

/// The run events a script can hook with `swarmer.on(name, fn)`.
pub const EVENTS: [&str; 4] = ["test_start", "test_stop", "worker_joined", "worker_left"];

/// Everything a script declared, as the UI and API list it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Catalog {
    pub views: Vec<ViewInfo>,
    pub actions: Vec<ActionInfo>,
    /// Route patterns under `/api/v1/ext`, e.g. "/ranking".
    pub routes: Vec<String>,
    /// Events with at least one hook, in [`EVENTS`] order.
    pub hooks: Vec<String>,
    /// The script's shape is a function (`swarmer.shape(function(ctx) ...)`),
    /// which only the master's extension engine runs. Not listed by the
    /// extensions API (`/api/v1/ext`), whose shape stays as it was.
    #[serde(skip)]
    pub shape_function: bool,
}

impl Catalog {
    pub fn is_empty(&self) -> bool {
        self.views.is_empty()
            && self.actions.is_empty()
            && self.routes.is_empty()
            && self.hooks.is_empty()
            && !self.shape_function
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ViewInfo {
    pub id: String,
    pub title: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionInfo {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    /// The view whose tab shows this action; `None`: the Actions tab.
    pub view: Option<String>,
    pub fields: Vec<FieldSpec>,
}

pub struct ViewDecl {
    pub id: String,
    pub title: String,
    pub render: Function,
}

pub struct ActionDecl {
    pub info: ActionInfo,
    pub run: Function,
}

pub struct RouteDecl {
    pub pattern: Pattern,
    pub handler: Function,
}

pub struct HookDecl {
    pub event: &'static str,
    pub handler: Function,
}

/// Everything a script declared for the master, in declaration order.
#[derive(Default)]
pub struct Declarations {
    pub views: Vec<ViewDecl>,
    pub actions: Vec<ActionDecl>,
    pub routes: Vec<RouteDecl>,
    pub hooks: Vec<HookDecl>,
    /// `swarmer.shape`: at most one.
    pub shape: Option<shape::Shape>,
    /// `swarmer.thresholds`, parsed, in declaration order.
    pub thresholds: Vec<verdict::Threshold>,
}

impl Declarations {
    pub fn catalog(&self) -> Catalog {
        Catalog {
            views: self
                .views
                .iter()
                .map(|v| ViewInfo {
                    id: v.id.clone(),
                    title: v.title.clone(),
                })
                .collect(),
            actions: self.actions.iter().map(|a| a.info.clone()).collect(),
            routes: self.routes.iter().map(|r| r.pattern.text.clone()).collect(),
            hooks: EVENTS
                .iter()
                .filter(|e| self.hooks.iter().any(|h| h.event == **e))
                .map(|e| e.to_string())
                .collect(),
            shape_function: self.shape_function().is_some(),
        }
    }

    /// The shape function, when the script's shape is one.
    pub fn shape_function(&self) -> Option<&Function> {
        match &self.shape.as_ref()?.decl {
            shape::ShapeDecl::Function(f) => Some(f),
            shape::ShapeDecl::Stages(_) => None,
        }
    }

    /// Checks what can only be checked once the whole script has loaded:
    /// an action's `view` must name a declared view.
    pub fn check(&self) -> Result<(), String> {
        for a in &self.actions {
            if let Some(view) = &a.info.view
                && !self.views.iter().any(|v| &v.id == view)
            {
                return Err(format!(
                    "swarmer.ui.action {:?}: view {view:?} is not declared (declared views: {})",
                    a.info.id,
                    self.views
                        .iter()
                        .map(|v| v.id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
        Ok(())
    }
}

/// Adds `swarmer.ui`, `swarmer.api`, `swarmer.on` and `swarmer.count`.
pub fn install(lua: &Lua, swarmer: &Table) -> mlua::Result<()> {
    let ui = lua.create_table()?;
    ui.set("view", lua.create_function(declare_view)?)?;
    ui.set("action", lua.create_function(declare_action)?)?;
    swarmer.set("ui", ui)?;
    let api = lua.create_table()?;
    api.set("route", lua.create_function(declare_route)?)?;
    swarmer.set("api", api)?;
    swarmer.set("on", lua.create_function(declare_hook)?)?;
    swarmer.set("count", lua.create_function(count::count)?)?;
    swarmer.set("shape", lua.create_function(shape::declare_shape)?)?;
    swarmer.set(
        "thresholds",
        lua.create_function(thresholds::declare_thresholds)?,
    )?;
    Ok(())
}

/// Runs `f` on the registry of the load in progress; declaring anything
/// after the script has loaded (from a task, a view...) is an error.
fn with_registry<T>(
    lua: &Lua,
    what: &str,
    f: impl FnOnce(&mut Declarations) -> mlua::Result<T>,
) -> mlua::Result<T> {
    let mut reg = lua
        .app_data_mut::<Registry>()
        .ok_or_else(|| fault(format!("{what} can only be called while the script loads")))?;
    f(&mut reg.ext)
}

fn options(what: &str, v: Value) -> mlua::Result<Table> {
    match v {
        Value::Table(t) => Ok(t),
        other => Err(fault(format!(
            "{what} expects a table such as {{ id = \"my-view\", ... }}, got a {}",
            type_name(&other)
        ))),
    }
}

fn function(what: &str, v: Value) -> mlua::Result<Function> {
    match v {
        Value::Function(f) => Ok(f),
        other => Err(fault(format!(
            "{what} must be a function, got a {}",
            type_name(&other)
        ))),
    }
}

/// Ids appear in URLs and element ids: letters, digits, `-` and `_`.
fn id(what: &str, v: Value) -> mlua::Result<String> {
    let Some(id) = opt_string(&format!("{what}: id"), v)? else {
        return Err(fault(format!(
            "{what}: id is required (letters, digits, - and _)"
        )));
    };
    let valid = (1..=64).contains(&id.len())
        && id.starts_with(|c: char| c.is_ascii_alphanumeric())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !valid {
        return Err(fault(format!(
            "{what}: id {id:?} must be 1 to 64 letters, digits, - or _, starting with a letter or digit"
        )));
    }
    Ok(id)
}

fn declare_view(lua: &Lua, opts: Value) -> mlua::Result<()> {
    const WHAT: &str = "swarmer.ui.view";
    let t = options(WHAT, opts)?;
    check_keys(&t, WHAT, &["id", "title", "render"])?;
    let id = id(WHAT, t.raw_get("id")?)?;
    let title = opt_string(&format!("{WHAT}: title"), t.raw_get("title")?)?;
    let render = function(&format!("{WHAT} {id:?}: render"), t.raw_get("render")?)?;
    with_registry(lua, WHAT, |d| {
        if d.views.iter().any(|v| v.id == id) {
            return Err(fault(format!(
                "{WHAT}: a view with id {id:?} is already declared"
            )));
        }
        d.views.push(ViewDecl {
            title: title.unwrap_or_else(|| id.clone()),
            id,
            render,
        });
        Ok(())
    })
}

fn declare_action(lua: &Lua, opts: Value) -> mlua::Result<()> {
    const WHAT: &str = "swarmer.ui.action";
    let t = options(WHAT, opts)?;
    check_keys(
        &t,
        WHAT,
        &["id", "title", "description", "view", "fields", "run"],
    )?;
    let id = id(WHAT, t.raw_get("id")?)?;
    let at = format!("{WHAT} {id:?}");
    let title = opt_string(&format!("{at}: title"), t.raw_get("title")?)?;
    let description = opt_string(&format!("{at}: description"), t.raw_get("description")?)?;
    let view = opt_string(&format!("{at}: view"), t.raw_get("view")?)?;
    let fields: Vec<FieldSpec> = fields::parse_list(&at, t.raw_get("fields")?)?;
    let run = function(&format!("{at}: run"), t.raw_get("run")?)?;
    with_registry(lua, WHAT, |d| {
        if d.actions.iter().any(|a| a.info.id == id) {
            return Err(fault(format!(
                "{WHAT}: an action with id {id:?} is already declared"
            )));
        }
        d.actions.push(ActionDecl {
            info: ActionInfo {
                title: title.unwrap_or_else(|| id.clone()),
                id,
                description,
                view,
                fields,
            },
            run,
        });
        Ok(())
    })
}

fn declare_route(lua: &Lua, (path, handler): (Value, Value)) -> mlua::Result<()> {
    const WHAT: &str = "swarmer.api.route";
    let Some(path) = opt_string(&format!("{WHAT}: the path"), path)? else {
        return Err(fault(format!(
            "{WHAT}: use swarmer.api.route(\"/name\", function(req, ctx) ... end)"
        )));
    };
    let pattern = Pattern::parse(&path).map_err(|e| fault(format!("{WHAT} {path:?}: {e}")))?;
    let handler = function(&format!("{WHAT} {path:?}: the handler"), handler)?;
    with_registry(lua, WHAT, |d| {
        if let Some(other) = d.routes.iter().find(|r| r.pattern.same_shape(&pattern)) {
            return Err(fault(format!(
                "{WHAT} {path:?}: is the same route as {:?} declared before it",
                other.pattern.text
            )));
        }
        d.routes.push(RouteDecl { pattern, handler });
        Ok(())
    })
}

fn declare_hook(lua: &Lua, (event, handler): (Value, Value)) -> mlua::Result<()> {
    const WHAT: &str = "swarmer.on";
    let name = opt_string(&format!("{WHAT}: the event"), event)?.unwrap_or_default();
    let Some(event) = EVENTS.iter().find(|e| **e == name) else {
        return Err(fault(format!(
            "{WHAT}: unknown event {name:?} (expected one of: {})",
            EVENTS.join(", ")
        )));
    };
    let handler = function(&format!("{WHAT}({name:?}): the handler"), handler)?;
    with_registry(lua, WHAT, |d| {
        d.hooks.push(HookDecl { event, handler });
        Ok(())
    })
}
