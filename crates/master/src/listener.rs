//! Accepts remote workers on the master port.

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::MasterHandle;

/// Serves worker connections on `listener` until `shutdown` fires. Each
/// connection is independent: a bad one is closed without touching others.
pub async fn run(listener: TcpListener, master: MasterHandle, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    tracing::debug!(%peer, "worker connection");
                    // Small frames only, until the peer passes the handshake;
                    // read whole and decoded when the master can afford it.
                    master.attach(crate::wire::raw_link(stream));
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    tracing::warn!("accepting a worker connection failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            },
            _ = shutdown.cancelled() => break,
        }
    }
}
