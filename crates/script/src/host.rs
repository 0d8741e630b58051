//! Running a script's functions outside of a simulated user: the master's
//! extension engine (the `ext` crate) loads the script through here and
//! calls its views, actions, routes and hooks as coroutines driven like a
//! user's tasks ([`crate::drive`]), with the same HTTP client as users.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use http_client::Origin;
use mlua::{AnyUserData, FromLuaMulti, Function, IntoLuaMulti, Lua, Thread};
use tokio_util::sync::CancellationToken;

use crate::declare::Declarations;
use crate::http::type_options::TypeHttp;
use crate::http::{Client, Http};
use crate::lua_env::{LuaEnv, UserCtx};
use crate::{RuntimeConfig, ScriptError, ScriptSource, drive, runtime};

/// A script loaded for calls from the host process (the master).
pub struct Host {
    lua: Lua,
    shared: Rc<LuaEnv>,
    runner: Function,
    calls: Cell<u64>,
}

/// What [`load`] gives: the host, what the script declared for it, and the
/// first user type's host (the base of master-side requests when the run
/// has none).
pub struct HostScript {
    pub host: Host,
    pub declarations: Declarations,
    pub default_host: Option<String>,
}

/// One call's stand-in for a user: where its requests and sleeps park.
pub struct CallUser(Rc<UserCtx>);

/// Loads the script into a fresh Lua state; requests it makes record into
/// statistics nobody reads (see [`Host::finish`]).
pub fn load(src: &ScriptSource, config: RuntimeConfig) -> Result<HostScript, ScriptError> {
    let base_dir = runtime::base_dir(src, &config);
    let stats = Rc::new(RefCell::new(stats::RequestStats::default()));
    let shared = Rc::new(LuaEnv::new(config, src.path.clone(), base_dir, stats));
    let (lua, registry, runner) = runtime::load(src, shared.clone())?;
    let default_host = registry.types.iter().find_map(|t| t.host.clone());
    Ok(HostScript {
        host: Host {
            lua,
            shared,
            runner,
            calls: Cell::new(0),
        },
        declarations: registry.ext,
        default_host,
    })
}

impl Host {
    pub fn lua(&self) -> &Lua {
        &self.lua
    }

    /// The protected runner: `runner(fn, ...)` returns `nil` or the error
    /// message and traceback (see [`crate::luax::make_runner`]).
    pub fn runner(&self) -> &Function {
        &self.runner
    }

    /// The script's path as given, for error messages.
    pub fn script_path(&self) -> &str {
        &self.shared.script_path
    }

    pub fn new_call(&self) -> CallUser {
        let id = self.calls.get() + 1;
        self.calls.set(id);
        CallUser(Rc::new(UserCtx::new(
            id,
            Rc::from("master"),
            CancellationToken::new(),
        )))
    }

    /// An HTTP client (the Lua `self.http` object) acting for `call`,
    /// sending relative paths to `base`.
    pub fn http_client(
        &self,
        call: &CallUser,
        base: Option<Rc<Origin>>,
    ) -> mlua::Result<AnyUserData> {
        let http = TypeHttp::new(&self.shared.config.http, &Default::default());
        let client = Client::new(call.0.clone(), self.shared.clone(), base, http);
        self.lua.create_userdata(Http(Rc::new(client)))
    }

    /// Runs `thread` from `args` for `call` until it returns (see
    /// [`crate::drive`]); `around` is held while Lua code runs.
    pub async fn drive<A: IntoLuaMulti, R: FromLuaMulti, G>(
        &self,
        call: &CallUser,
        thread: &Thread,
        args: A,
        around: impl FnMut() -> G,
    ) -> mlua::Result<R> {
        drive::drive(&self.lua, &self.shared, &call.0, thread, args, around).await
    }

    /// Ends a call: its last response gets its verdict, and what its
    /// requests recorded is dropped (master-side requests are not part of
    /// the run's statistics).
    pub fn finish(&self, call: &CallUser) {
        call.0.settle_pending();
        crate::io::close_all(&call.0);
        self.shared.stats.borrow_mut().take();
    }
}
