//! The web UI and HTTP API (placeholder until the web issue lands).

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::MasterHandle;
use crate::scale::Scaler;

#[derive(Clone, Default)]
pub struct WebConfig {
    /// e.g. "/swarmer"; empty for the root.
    pub base_path: String,
    /// `--web-auth user:password`.
    pub auth: Option<(String, String)>,
    /// `SWARMER_WEB_TOKEN`: a bearer token accepted instead of the password.
    pub token: Option<String>,
    pub scaler: Option<Arc<dyn Scaler>>,
    /// `--max-workers`: the largest count the scale form accepts.
    pub max_workers: u32,
}

pub async fn run(
    listener: TcpListener,
    master: MasterHandle,
    config: WebConfig,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let _ = (listener, master, config);
    shutdown.cancelled().await;
    Ok(())
}
