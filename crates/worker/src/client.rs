//! A remote worker's connection to its master, kept alive through restarts
//! and network cuts.
//!
//! Each connection runs one [`session`](crate::session); when it breaks, the
//! users stop (the master has already handed them to other workers) and the
//! worker retries with capped exponential backoff until the master is back.
//! The [`Outbox`] outlives the connections, so unacknowledged reports are
//! sent again to the same master after a reconnect.

use std::time::Duration;

use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use crate::Engine;
use crate::session::{self, Outbox, SessionConfig, SessionEnd};

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("the master refused this worker: {0}")]
    Refused(String),
}

const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Serves `master` (a `host:port`) until `shutdown` fires or the master
/// refuses us. Returns Ok after a graceful leave.
pub async fn run(
    master: &str,
    mut engine: Engine,
    config: SessionConfig,
    shutdown: CancellationToken,
) -> Result<(), ClientError> {
    let mut outbox = Outbox::default();
    let mut backoff = FIRST_BACKOFF;
    loop {
        let connected = tokio::select! {
            c = tokio::time::timeout(Duration::from_secs(5), TcpStream::connect(master)) => c,
            _ = shutdown.cancelled() => break,
        };
        match connected {
            Ok(Ok(stream)) => {
                let _ = stream.set_nodelay(true);
                tracing::info!(%master, worker_id = %config.worker_id, "connected to the master");
                let io = protocol::framed(stream);
                let end = session::run(io, &mut engine, &mut outbox, &config, &shutdown).await;
                match end {
                    SessionEnd::Shutdown => break,
                    SessionEnd::MasterQuit => {
                        tracing::info!("the master asked this worker to quit");
                        break;
                    }
                    SessionEnd::Refused(reason) => {
                        // Whoever answered may not be our master: its words
                        // are logged short and on one line.
                        let reason = protocol::printable(&reason, 1024);
                        tracing::error!("the master refused this worker: {reason}");
                        let _ = engine.stop(Duration::ZERO).await;
                        return Err(ClientError::Refused(reason));
                    }
                    SessionEnd::Untrusted(why) => {
                        // An impostor, or a master without this token: it
                        // got neither the token nor a user; the real master
                        // may be back later.
                        tracing::error!(
                            %master,
                            "not joining: {why}; check that the master has the same \
                             --cluster-token; retrying in {backoff:?}"
                        );
                        let _ = engine.stop(Duration::ZERO).await;
                    }
                    SessionEnd::Disconnected(why) => {
                        tracing::warn!("lost the master ({why}); stopping users and reconnecting");
                        // Users finish their task, so what they did is
                        // recorded and reaches the master if it is the same
                        // one when we are back; it has already handed their
                        // share to the other workers.
                        let _ = engine.stop(config.stop_timeout).await;
                        outbox.users_stopped();
                        backoff = FIRST_BACKOFF;
                    }
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(%master, "cannot reach the master: {e}; retrying in {backoff:?}")
            }
            Err(_) => tracing::warn!(%master, "connecting to the master timed out; retrying"),
        }
        tokio::select! {
            _ = tokio::time::sleep(backoff) => {}
            _ = shutdown.cancelled() => break,
        }
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
    let _ = engine.stop(config.stop_timeout).await;
    Ok(())
}
