//! The master's web UI and HTTP API.
//!
//! - [`router`] builds every route under `WebConfig::base_path`, area by
//!   area, each area's module declaring its own `routes()`: the page and
//!   its files (`router`), Locust's routes (`locust`), the `/api/v1/` JSON
//!   API with its OpenAPI document and live updates (`api`), scaling
//!   (`scale`), the run history (`history`), the script itself and its
//!   uploads (`script`) and the script's extensions (`ext`); [`route_table`] lists
//!   them from the same declarations.
//! - [`run`] serves it on a listener until shutdown, with the timeouts and
//!   the connection cap of [`ServeLimits`] (`serve`).
//! - [`render_report`] is the HTML report, also used by headless `--html`.
//! - [`LogBuffer`] keeps recent log lines for the Logs tab.
//! - `ext` serves a script's extensions (`WebConfig::ext`) under `/api/v1/ext`.
//!
//! Handlers only read the master's published [`crate::Snapshot`] and send it
//! requests through [`MasterHandle`]; they never hold its state.

mod api;
mod assets;
mod error;
mod events;
mod ext;
mod forms;
mod full_history;
mod history;
mod hosts;
mod locust;
mod logs;
mod metrics;
mod openapi;
mod profile_json;
pub mod report;
mod router;
mod scale;
mod script;
mod security;
mod serve;
mod state;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::MasterHandle;
use crate::scale::Scaler;

pub use error::ApiError;
pub use full_history::{HISTORY_OWN_HEADER, history_csv_header, history_csv_rows};
pub use logs::{LogBuffer, LogLine};
pub use report::{render_report, render_report_autoscaled};
pub use router::{route_table, router};
pub use security::CSRF_HEADER;
pub use serve::ServeLimits;

#[derive(Clone, Default)]
pub struct WebConfig {
    /// e.g. "/swarmer"; empty for the root.
    pub base_path: String,
    /// `--web-auth user:password`.
    pub auth: Option<(String, String)>,
    /// `SWARMER_WEB_TOKEN`: a bearer token accepted instead of the password.
    pub token: Option<String>,
    pub scaler: Option<Arc<dyn Scaler>>,
    /// `--autoscale`: its record, shown in the Workers tab, the scale
    /// API, `/metrics` and the report; a manual scale pauses it.
    pub autoscale: Option<crate::autoscale::Autoscale>,
    /// `--max-workers`: the largest count the scale form accepts.
    pub max_workers: u32,
    /// Recent log lines for the Logs tab; the binary installs the same
    /// buffer as a tracing layer.
    pub logs: Option<LogBuffer>,
    /// The script's views, actions, routes and hooks, when it declares any.
    pub ext: Option<crate::ext::Extensions>,
    /// How extensions are started: again when a script is uploaded.
    pub ext_config: ::ext::ExtConfig,
    /// Host names the UI answers to without auth, besides IP addresses and
    /// localhost (`--web-allowed-hosts` and `--web-host`; "*": any name).
    pub allowed_hosts: Vec<String>,
    /// Timeouts and the connection cap of [`run`].
    pub limits: ServeLimits,
    /// The run history the History tab and `/api/v1/history` read (None:
    /// `--no-history`).
    pub history: Option<::history::Store>,
    /// `--csv-full-history`: record every entry's row each second of a run
    /// for `/stats/requests_full_history/csv` (404 without it, as Locust).
    pub full_history: bool,
}

/// Serves the web UI and API on `listener` until `shutdown`.
pub async fn run(
    listener: TcpListener,
    master: MasterHandle,
    config: WebConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let limits = config.limits;
    let app = router::build(master, config, shutdown.child_token());
    serve::serve(listener, app, limits, shutdown).await
}
