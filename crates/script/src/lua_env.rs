//! `LuaEnv`: what Rust code needs in one Lua state (a worker core's, or the
//! master's extension state): the run's configuration, the stats sink, the
//! random source, the TLS configuration and the user whose coroutine is
//! running right now. Reachable from Lua callbacks through the state's app
//! data; all single-threaded, so `Rc` and `RefCell`.

use std::cell::RefCell;
use std::collections::HashMap;
use std::path::PathBuf;
use std::rc::Rc;

use mlua::{Lua, RegistryKey};
use rand::SeedableRng;
use rand::rngs::SmallRng;
use stats::{PhaseSample, RequestStats, Sample, now_ms};
use tokio_util::sync::CancellationToken;

use crate::RuntimeConfig;
use crate::luax::fault;

pub struct LuaEnv {
    pub config: RuntimeConfig,
    /// The script's path as given, to restore it in Lua's shortened names.
    pub script_path: String,
    /// Where `swarmer.data` paths resolve: `config.base_dir`, else the
    /// script's directory.
    pub base_dir: PathBuf,
    pub stats: Rc<RefCell<RequestStats>>,
    pub rng: RefCell<SmallRng>,
    /// The core's TLS configuration, shared by all its users' connections.
    pub tls: http_client::Tls,
    /// TLS configurations of the client certificates the script chose.
    pub identities: crate::http::identity::Identities,
    /// The user whose Lua code runs right now (set around each poll), so
    /// global functions like `swarmer.sleep` know whose stop token to watch.
    pub current: RefCell<Option<Rc<UserCtx>>>,
    /// `swarmer.data` results by normalised path, loaded once per core.
    pub data: RefCell<HashMap<String, RegistryKey>>,
    /// Feeders created so far: the default name of the next is
    /// "feeder N", the same on every core since each runs the same script.
    pub feeders: std::cell::Cell<u32>,
    /// Where the script's files come from: the master's disk (recorded),
    /// or the files that came with the script (`files.rs`).
    pub files: crate::files::Files,
    /// `.proto` files compiled by `self.grpc:connect`, once per core.
    pub protos: RefCell<crate::grpc::protos::PoolCache>,
    /// The metatable of response objects, made on the first response.
    pub response_meta: std::cell::OnceCell<crate::http::response_ud::ResponseMeta>,
}

/// The per-user facts Rust needs while the user's Lua code runs.
pub struct UserCtx {
    pub id: u64,
    pub user_type: Rc<str>,
    pub stop: CancellationToken,
    /// For paced users: how late the current iteration started, in µs.
    pub lateness_us: std::cell::Cell<Option<u64>>,
    /// The last response not yet recorded (Locust's catch_response).
    pub pending: RefCell<Option<Rc<crate::http::response::Outcome>>>,
    /// What the user's coroutine yielded for (set just before it yields).
    pub op: RefCell<Option<Op>>,
    /// DNS overrides for its non-HTTP connections (its type's, with
    /// `--resolve`), as `self.http` uses them.
    pub hosts: Rc<[http_client::HostOverride]>,
    /// WebSockets and sockets it opened, closed when it ends (`io.rs`).
    pub sockets: RefCell<Vec<std::rc::Weak<dyn crate::io::Closable>>>,
}

/// Work a task's coroutine hands to its driver when it yields.
pub enum Op {
    // Boxed: every user has an `Option<Op>` slot, mostly empty.
    Http(Box<crate::http::HttpOp>),
    /// `swarmer.sleep(s)`; zero means "let the other users run".
    Sleep(std::time::Duration),
    /// A WebSocket or socket call (`io.rs`).
    Io(crate::io::IoFuture),
}

impl UserCtx {
    pub fn new(id: u64, user_type: Rc<str>, stop: CancellationToken) -> Self {
        UserCtx {
            id,
            user_type,
            stop,
            lateness_us: std::cell::Cell::new(None),
            pending: RefCell::new(None),
            op: RefCell::new(None),
            hosts: Rc::from([]),
            sockets: RefCell::new(Vec::new()),
        }
    }

    /// Records the pending response with its default verdict, if any.
    pub fn settle_pending(&self) {
        let pending = self.pending.borrow_mut().take();
        if let Some(p) = pending {
            p.settle_default();
        }
    }
}

impl LuaEnv {
    pub fn new(
        config: RuntimeConfig,
        script_path: String,
        base_dir: PathBuf,
        stats: Rc<RefCell<RequestStats>>,
    ) -> Self {
        let tls = http_client::Tls::with_files(config.insecure_tls, config.http.tls.clone());
        let files = crate::files::Files::new(base_dir.clone(), config.files.clone());
        LuaEnv {
            config,
            script_path,
            base_dir,
            stats,
            rng: RefCell::new(SmallRng::from_os_rng()),
            tls,
            identities: Default::default(),
            current: RefCell::new(None),
            data: RefCell::new(HashMap::new()),
            feeders: std::cell::Cell::new(0),
            files,
            protos: RefCell::new(Default::default()),
            response_meta: std::cell::OnceCell::new(),
        }
    }

    pub fn from_lua(lua: &Lua) -> mlua::Result<Rc<LuaEnv>> {
        lua.app_data_ref::<Rc<LuaEnv>>()
            .map(|s| s.clone())
            .ok_or_else(|| fault("the swarmer runtime is not available in this Lua state"))
    }

    pub fn record(&self, sample: &Sample<'_>) {
        self.stats.borrow_mut().record(sample, now_ms());
    }

    /// [`record`](Self::record) with the request's phases (HTTP).
    pub fn record_with_phases(&self, sample: &Sample<'_>, phases: &PhaseSample) {
        self.stats
            .borrow_mut()
            .record_with_phases(sample, Some(phases), now_ms());
    }

    pub fn record_exception(&self, message: &str, traceback: &str) {
        tracing::debug!(target: "script", "{message}");
        self.stats.borrow_mut().record_exception(
            message,
            traceback,
            &self.config.node_id,
            now_ms(),
        );
    }

    /// The running user, for functions that act on "the current user".
    pub fn current_user(&self) -> Option<Rc<UserCtx>> {
        self.current.borrow().clone()
    }
}
