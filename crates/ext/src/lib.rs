//! Script extensions of the master: views, actions, JSON routes and
//! run-event hooks (declared with `swarmer.ui.view`, `swarmer.ui.action`,
//! `swarmer.api.route`, `swarmer.on`).
//!
//! Every process that loads a script runs the declarations (the script
//! crate's `declare` module), so a bad one fails the load everywhere with
//! its file and line; only the master keeps them. There the script gets its own Lua state on a dedicated thread
//! ([`start`]), because a Lua state is not `Send` and the web server is
//! multi-threaded: the web handlers talk to it through an [`ExtHandle`], a
//! channel of calls with one-shot replies, and every call has a time limit
//! enforced inside Lua (an instruction-count hook) and outside it (a
//! timeout on the reply), so a script stuck in a loop cannot hang the web
//! server. The limit counts from when the call starts running; a call whose
//! caller went away is stopped; and at most [`ExtConfig::max_pending`]
//! calls wait or run at once (one more gets [`ExtError::Busy`], a 503).
//!
//! The data crossing the thread boundary is JSON (`serde_json::Value`):
//! the master describes its live state as JSON, the script answers with
//! Lua tables that are checked and turned into [`ViewData`],
//! [`ActionOutcome`] or plain JSON.

#![forbid(unsafe_code)]

mod args;
mod handle;
mod output;
mod runtime;
mod shape;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use handle::{ExtHandle, start};
pub use output::{ActionOutcome, Cell, ChartData, Figure, Series, TableData, ViewData};
pub use script::declare::{ActionInfo, Catalog, EVENTS, FieldKind, FieldSpec, ViewInfo};

/// What the master needs to run extensions.
#[derive(Debug, Clone)]
pub struct ExtConfig {
    /// Longest a view, action, route or hook may run, HTTP waits included.
    pub call_timeout: Duration,
    /// Accept any TLS certificate in master-side requests (`--insecure`).
    pub insecure_tls: bool,
    /// Where `swarmer.data` and `require` look (default: the script's directory).
    pub base_dir: Option<PathBuf>,
    /// The files that came with an uploaded script: the script reads
    /// these, never the master's disk (as a worker does). `None`: the disk
    /// under `base_dir`.
    pub files: Option<Arc<script::files::FileSet>>,
    /// Calls queued or running at once; beyond this a call is refused with
    /// [`ExtError::Busy`] rather than queued behind a backlog.
    pub max_pending: usize,
    /// The run's HTTP settings (`--proxy`, `--http-version`, `--ca-cert`,
    /// `--client-cert`, `--resolve`, `--accept-encoding`): master-side
    /// requests honour them as the users' do.
    pub http: Arc<script::HttpSettings>,
}

impl Default for ExtConfig {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(10),
            insecure_tls: false,
            base_dir: None,
            files: None,
            max_pending: 16,
            http: Arc::default(),
        }
    }
}

/// What the master passes to every call: its live state as JSON (the
/// script sees it as `ctx`) and the host master-side requests go to.
/// What a shape function asked for: `users, spawn_rate [, user_types]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeTarget {
    pub users: u32,
    pub spawn_rate: f64,
    /// Empty: all user types.
    pub user_types: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct CallContext {
    pub data: serde_json::Value,
    /// Base URL of `ctx.http` (the run's host); relative paths need one.
    pub host: Option<String>,
}

/// Why an extension call gave no result. Messages from the script start
/// with its `file:line:`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExtError {
    #[error("the script declares no {kind} {id:?}")]
    NotFound { kind: &'static str, id: String },
    /// An action argument that does not fit its field (checked before the
    /// handler runs).
    #[error("{field}: {problem}")]
    Invalid { field: String, problem: String },
    /// The script raised an error or returned something unusable.
    #[error("{0}")]
    Script(String),
    /// The call ran past [`ExtConfig::call_timeout`] and was stopped.
    #[error("{0}")]
    Timeout(String),
    #[error("the script's extension runtime has stopped")]
    Gone,
    /// [`ExtConfig::max_pending`] calls are already queued or running.
    #[error("the script's extensions are busy ({0} calls queued or running); try again")]
    Busy(usize),
    /// The caller went away before the call finished; it was stopped.
    #[error("the call was cancelled: its caller went away")]
    Cancelled,
}
