//! What every handler shares: the master, the configuration, and the
//! per-process secrets and paths derived from it once at start.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use tokio_util::sync::CancellationToken;

use super::WebConfig;
use super::full_history::{self, FullHistory};
use super::hosts::AllowedHosts;
use super::script::ChangeLog;
use crate::MasterHandle;
use crate::ext::Extensions;

pub struct AppState {
    pub master: MasterHandle,
    pub config: WebConfig,
    /// Normalised: empty, or "/prefix" without a trailing slash.
    pub base: String,
    /// Sent by the UI in `X-CSRF-Token`; a page on another origin cannot
    /// read it, so a request carrying it came from our own page.
    pub csrf_token: String,
    /// Ends the live-update streams so a graceful shutdown is not held open.
    pub shutdown: CancellationToken,
    /// From `config.allowed_hosts`.
    pub allowed_hosts: AllowedHosts,
    /// The rows `/stats/requests_full_history/csv` serves, recorded while
    /// `config.full_history` (`--csv-full-history`) is on.
    pub full_history: Option<Arc<FullHistory>>,
    /// The script's extensions: `config.ext` at start (taken from it),
    /// replaced when a
    /// new script is uploaded (see `script`).
    ext: RwLock<Option<Extensions>>,
    /// Recent script changes, for the Script tab.
    pub script_changes: ChangeLog,
}

pub type Shared = Arc<AppState>;

impl AppState {
    pub fn new(master: MasterHandle, mut config: WebConfig, shutdown: CancellationToken) -> Self {
        let base = normalize_base(&config.base_path);
        let csrf_token = rand::random::<[u8; 16]>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let allowed_hosts = AllowedHosts::new(&config.allowed_hosts);
        let full_history = config.full_history.then(|| {
            let history = Arc::new(FullHistory::default());
            full_history::spawn_recorder(master.clone(), history.clone(), shutdown.clone());
            history
        });
        Self {
            // Taken, not copied: replaced extensions must stop (their
            // hooks too) once no request uses them.
            ext: RwLock::new(config.ext.take()),
            script_changes: ChangeLog::default(),
            full_history,
            master,
            config,
            allowed_hosts,
            base,
            csrf_token,
            shutdown,
        }
    }

    /// The current script's extensions, if it declares any.
    pub fn ext(&self) -> Option<Extensions> {
        match self.ext.read() {
            Ok(e) => e.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Switches to a new script's extensions; the old ones stop once the
    /// requests still using them are done.
    pub fn set_ext(&self, ext: Option<Extensions>) {
        match self.ext.write() {
            Ok(mut e) => *e = ext,
            Err(poisoned) => *poisoned.into_inner() = ext,
        }
    }

    /// A path inside the UI, e.g. `url("/")` → "/swarmer/".
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

/// "swarmer/", "/swarmer" and "/swarmer/" all mean "/swarmer"; "/" means none.
pub fn normalize_base(path: &str) -> String {
    let trimmed = path.trim().trim_matches('/');
    if trimmed.is_empty() {
        String::new()
    } else {
        format!("/{trimmed}")
    }
}

/// Who made a request, for the log of control actions. Inserted by the
/// authentication middleware.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// The authenticated user; `None` when auth is off.
    pub user: Option<String>,
    pub addr: Option<SocketAddr>,
}

impl Identity {
    /// "alice", "alice (10.0.0.7:5123)", or "anonymous (…)" for the logs.
    pub fn describe(&self) -> String {
        let user = self.user.as_deref().unwrap_or("anonymous");
        match self.addr {
            Some(addr) => format!("{user} ({addr})"),
            None => user.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_paths_normalise() {
        assert_eq!(normalize_base(""), "");
        assert_eq!(normalize_base("/"), "");
        assert_eq!(normalize_base("swarmer/"), "/swarmer");
        assert_eq!(normalize_base("/a/b/"), "/a/b");
    }
}
