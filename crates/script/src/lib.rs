//! The Lua side of swarmer: loads a user script, describes its user types,
//! and runs simulated users as coroutines with an HTTP client each.
//!
//! One [`CoreRuntime`] lives on each worker core (a Lua state is not `Send`);
//! the worker engine asks it to run users with [`CoreRuntime::run_user`] and
//! collects what they recorded from the shared per-core [`stats::RequestStats`].
//! The master calls [`inspect`] to learn the user types; its extension
//! engine (the `ext` crate) runs the views, actions, routes and hooks a
//! script declares ([`declare`]) through [`host`].

// Unsafe code is allowed in two modules only: the watchdog's hook, set on a
// Lua state from another thread (see watchdog.rs for why that is sound),
// and the response object, a raw userdata made on every request
// (http/response_ud.rs says why mlua's userdata cost too much there).
#![deny(unsafe_code)]

#[cfg(all(feature = "luajit", feature = "lua54"))]
compile_error!(
    "features `luajit` and `lua54` exclude each other: build with `--no-default-features --features lua54`"
);

mod api;
pub mod arrivals;
pub mod convert;
mod data;
pub mod declare;
mod define;
mod drive;
mod feeder;
pub mod files;
mod grpc;
mod held;
pub mod host;
mod http;
mod io;
mod lua_env;
pub mod luax;
mod modules;
mod runtime;
mod tcp;
mod user;
pub mod wait;
#[allow(unsafe_code)]
mod watchdog;
mod ws;

pub use feeder::{LeaseRequest, LeaseSender};
pub use user::IdlePool;
pub use watchdog::LuaLimits;

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;

use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// A script's text and where it came from (used in every error message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptSource {
    /// The path as the user gave it, e.g. `examples/quickstart.lua`.
    pub path: String,
    pub code: String,
}

impl ScriptSource {
    pub fn read(path: &str) -> Result<Self, ScriptError> {
        let code = std::fs::read_to_string(path).map_err(|source| ScriptError::Read {
            path: path.to_string(),
            source,
        })?;
        Ok(Self {
            path: path.to_string(),
            code,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ScriptError {
    #[error("cannot read script {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    /// A syntax or runtime error while loading; `message` starts with `file:line:`.
    #[error("{message}")]
    Load { message: String },
    #[error("the script defines no user types (call swarmer.user{{...}} at least once)")]
    NoUserTypes,
    #[error("unknown user type {name:?}; the script defines: {known}")]
    UnknownUserType { name: String, known: String },
    #[error("cannot create a {user_type} user: {message}")]
    UserCreation { user_type: String, message: String },
}

/// What the master needs to know about a script.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptInfo {
    pub user_types: Vec<UserTypeInfo>,
    /// `swarmer.shape`: the load profile a run follows by default.
    #[serde(default)]
    pub shape: Option<declare::shape::ShapeInfo>,
    /// `swarmer.thresholds`: conditions the run's verdict judges.
    #[serde(default)]
    pub thresholds: Vec<verdict::Threshold>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserTypeInfo {
    pub name: String,
    pub weight: u32,
    /// Locust's `fixed_count`: this many users regardless of weights.
    pub fixed_count: Option<u32>,
    pub host: Option<String>,
    pub tasks: Vec<TaskInfo>,
    /// The open model: driven by arrivals instead of a user count.
    #[serde(default)]
    pub arrivals: Option<arrivals::ArrivalSpec>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskInfo {
    pub name: String,
    pub weight: u32,
    pub tags: Vec<String>,
}

/// The run's HTTP settings (flags), for the crates that build a config.
pub use http_client::Settings as HttpSettings;
pub use http_client::settings as http_settings;

/// How users on one core behave, beyond what the script says.
#[derive(Debug, Clone, Default)]
pub struct RuntimeConfig {
    /// `-H/--host`: overrides every user type's host when set.
    pub host: Option<String>,
    /// Accept any TLS certificate (test servers only).
    pub insecure_tls: bool,
    /// `--accept-encoding`, `--resolve`: every user type starts from these.
    /// Shared: the config is copied to every core.
    pub http: std::sync::Arc<http_client::Settings>,
    /// `--tags`: only tasks with one of these tags run (empty: all).
    pub tags: Vec<String>,
    /// `--exclude-tags`: tasks with one of these tags never run.
    pub exclude_tags: Vec<String>,
    /// Names this process in exception "nodes" (the worker id).
    pub node_id: String,
    /// Directory relative paths in the script (data files) resolve against.
    pub base_dir: Option<PathBuf>,
    /// The files that came with the script (a worker): the script reads
    /// these and never the disk. `None`: it reads from disk under
    /// `base_dir`, recording what it reads (the master; see `files.rs`).
    pub files: Option<std::sync::Arc<files::FileSet>>,
    /// Time and memory bounds of the Lua state.
    pub limits: LuaLimits,
    /// Where `unique` feeders lease rows from the master (the worker's
    /// session); without it they are unique on their core only.
    pub feeder_leases: Option<LeaseSender>,
}

/// Loads the script in a throwaway Lua state and lists its user types.
pub fn inspect(src: &ScriptSource) -> Result<ScriptInfo, ScriptError> {
    inspect_limited(src, LuaLimits::default())
}

/// [`inspect`] with the run's bounds on loading time and memory.
pub fn inspect_limited(src: &ScriptSource, limits: LuaLimits) -> Result<ScriptInfo, ScriptError> {
    with_declarations(src, limits, |registry, _| registry.info())
}

/// [`inspect_limited`], and the files the script read from disk while it
/// loaded (`swarmer.data`, `swarmer.files`, `.proto` files): what travels
/// to the workers with it (`files.rs`).
pub fn inspect_bundle(
    src: &ScriptSource,
    limits: LuaLimits,
) -> Result<(ScriptInfo, files::FileSet), ScriptError> {
    with_declarations(src, limits, |registry, files| {
        (registry.info(), files.recorded())
    })
}

/// [`inspect_limited`] of a script whose files came with it (an upload):
/// it reads those and never the disk, as a worker will.
pub fn inspect_sent(
    src: &ScriptSource,
    limits: LuaLimits,
    files: std::sync::Arc<files::FileSet>,
) -> Result<ScriptInfo, ScriptError> {
    with_files(src, limits, Some(files), |registry, _| registry.info())
}

/// What `swarmer inspect` lists: [`ScriptInfo`] plus what only the loaded
/// script knows (each type's wait and order, the master's extensions).
#[derive(Debug, Clone, Serialize)]
pub struct ScriptListing {
    pub info: ScriptInfo,
    /// Per user type, in the order of `info.user_types`.
    pub types: Vec<TypeListing>,
    pub extensions: declare::Catalog,
}

#[derive(Debug, Clone, Serialize)]
pub struct TypeListing {
    /// As declared: `between(1, 3)`, `constant(0.5)`, `function`, ….
    pub wait: String,
    pub sequential: bool,
}

/// Loads the script like [`inspect_limited`] and lists everything it declares.
pub fn listing(src: &ScriptSource, limits: LuaLimits) -> Result<ScriptListing, ScriptError> {
    with_declarations(src, limits, |registry, _| ScriptListing {
        info: registry.info(),
        types: registry
            .types
            .iter()
            .map(|t| TypeListing {
                wait: t.wait.describe(),
                sequential: t.sequential,
            })
            .collect(),
        extensions: registry.ext.catalog(),
    })
}

/// Loads the script in a throwaway Lua state and reads its declarations
/// while that state lives (they hold its functions).
fn with_declarations<T>(
    src: &ScriptSource,
    limits: LuaLimits,
    read: impl FnOnce(&define::Registry, &files::Files) -> T,
) -> Result<T, ScriptError> {
    with_files(src, limits, None, read)
}

/// [`with_declarations`], reading the script's files from `sent` when
/// given (as a worker does) instead of the disk.
fn with_files<T>(
    src: &ScriptSource,
    limits: LuaLimits,
    sent: Option<std::sync::Arc<files::FileSet>>,
    read: impl FnOnce(&define::Registry, &files::Files) -> T,
) -> Result<T, ScriptError> {
    let config = RuntimeConfig {
        limits,
        files: sent,
        ..RuntimeConfig::default()
    };
    let shared = Rc::new(lua_env::LuaEnv::new(
        config.clone(),
        src.path.clone(),
        runtime::base_dir(src, &config),
        Rc::new(RefCell::new(stats::RequestStats::default())),
    ));
    let (_lua, registry, _runner) = runtime::load(src, shared.clone())?;
    Ok(read(&registry, &shared.files))
}

/// One core's Lua state with the script loaded. Cheap to clone (shared state).
#[derive(Clone)]
pub struct CoreRuntime {
    core: Rc<runtime::LoadedScript>,
}

impl CoreRuntime {
    /// Loads the script; everything users record goes into `stats`.
    pub fn new(
        src: &ScriptSource,
        config: RuntimeConfig,
        stats: Rc<RefCell<stats::RequestStats>>,
    ) -> Result<Self, ScriptError> {
        let core = runtime::build(src, config, stats)?;
        Ok(CoreRuntime {
            core: Rc::new(core),
        })
    }

    pub fn info(&self) -> &ScriptInfo {
        &self.core.info
    }

    /// Runs one user of `user_type`: `on_start`, then pick task, run it, wait,
    /// until `stop` is cancelled; then the current task finishes (a wait is cut
    /// short) and `on_stop` runs. Errors raised by the script are recorded as
    /// exceptions and never end the user early. The engine drops the future
    /// if the stop timeout passes first. The user is created before this
    /// returns: an error means it does not exist and must not be counted.
    pub fn run_user(
        &self,
        user_type: &str,
        stop: CancellationToken,
    ) -> Result<impl std::future::Future<Output = ()> + 'static, ScriptError> {
        self.start(user_type, stop, user::Mode::Closed, None)
    }

    /// [`Self::run_user`] with `self.index` = `index`, the run-wide index
    /// the engine leased this user.
    pub fn run_user_indexed(
        &self,
        user_type: &str,
        stop: CancellationToken,
        index: u32,
    ) -> Result<impl std::future::Future<Output = ()> + 'static, ScriptError> {
        self.start(user_type, stop, user::Mode::Closed, Some(index))
    }

    /// Runs one pooled user of an arrival-driven type: `on_start`, then one
    /// task per arrival it is handed through `idle` (the first one may be
    /// `first_due`), until `stop`; then `on_stop`. See [`user::IdlePool`].
    pub fn run_pooled_user(
        &self,
        user_type: &str,
        stop: CancellationToken,
        idle: IdlePool,
        first_due: Option<tokio::time::Instant>,
        index: Option<u32>,
    ) -> Result<impl std::future::Future<Output = ()> + 'static, ScriptError> {
        self.start(
            user_type,
            stop,
            user::Mode::Pooled { idle, first_due },
            index,
        )
    }

    fn start(
        &self,
        user_type: &str,
        stop: CancellationToken,
        mode: user::Mode,
        index: Option<u32>,
    ) -> Result<impl std::future::Future<Output = ()> + 'static, ScriptError> {
        let Some(ty) = self.core.types.iter().position(|t| &*t.name == user_type) else {
            let known = self
                .core
                .types
                .iter()
                .map(|t| &*t.name)
                .collect::<Vec<_>>()
                .join(", ");
            return Err(ScriptError::UnknownUserType {
                name: user_type.to_string(),
                known,
            });
        };
        user::start(self.core.clone(), ty, stop, mode, index).map_err(|e| {
            ScriptError::UserCreation {
                user_type: user_type.to_string(),
                message: e.to_string(),
            }
        })
    }

    /// Bytes of memory the Lua state uses (for the idle-user measurement).
    pub fn lua_memory(&self) -> usize {
        self.core.lua.used_memory()
    }
}
