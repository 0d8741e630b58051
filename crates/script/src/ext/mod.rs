//! Script extensions of the master: views, actions, JSON routes, run-event
//! hooks (declared with `swarmer.ui.view`, `swarmer.ui.action`,
//! `swarmer.api.route`, `swarmer.on`) and the worker-side counter
//! `swarmer.count`.
//!
//! Every process that loads a script runs the declarations, so a bad one
//! fails the load everywhere with its file and line; only the master keeps
//! them. There the script gets its own Lua state on a dedicated thread
//! ([`start`]), because a Lua state is not `Send` and the web server is
//! multi-threaded: the web handlers talk to it through an [`ExtHandle`], a
//! channel of calls with one-shot replies, and every call has a time limit
//! enforced inside Lua (an instruction-count hook) and outside it (a
//! timeout on the reply), so a script stuck in a loop cannot hang the web
//! server.
//!
//! The data crossing the thread boundary is JSON (`serde_json::Value`):
//! the master describes its live state as JSON, the script answers with
//! Lua tables that are checked and turned into [`ViewData`],
//! [`ActionOutcome`] or plain JSON.

mod convert;
mod count;
mod declare;
mod engine;
mod fields;
mod handle;
mod output;
mod route;

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

pub(crate) use declare::{Declarations, install};
pub use fields::{FieldKind, FieldSpec};
pub use handle::{ExtHandle, start};
pub use output::{ActionOutcome, Cell, ChartData, Figure, Series, TableData, ViewData};

/// The run events a script can hook with `swarmer.on(name, fn)`.
pub const EVENTS: [&str; 4] = ["test_start", "test_stop", "worker_joined", "worker_left"];

/// What the master needs to run extensions.
#[derive(Debug, Clone)]
pub struct ExtConfig {
    /// Longest a view, action, route or hook may run, HTTP waits included.
    pub call_timeout: Duration,
    /// Accept any TLS certificate in master-side requests (`--insecure`).
    pub insecure_tls: bool,
    /// Where `swarmer.data` and `require` look (default: the script's directory).
    pub base_dir: Option<PathBuf>,
}

impl Default for ExtConfig {
    fn default() -> Self {
        Self {
            call_timeout: Duration::from_secs(10),
            insecure_tls: false,
            base_dir: None,
        }
    }
}

/// Everything a script declared, as the UI and API list it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Catalog {
    pub views: Vec<ViewInfo>,
    pub actions: Vec<ActionInfo>,
    /// Route patterns under `/api/v1/ext`, e.g. "/ranking".
    pub routes: Vec<String>,
    /// Events with at least one hook, in [`EVENTS`] order.
    pub hooks: Vec<String>,
}

impl Catalog {
    pub fn is_empty(&self) -> bool {
        self.views.is_empty()
            && self.actions.is_empty()
            && self.routes.is_empty()
            && self.hooks.is_empty()
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

/// What the master passes to every call: its live state as JSON (the
/// script sees it as `ctx`) and the host master-side requests go to.
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
}
