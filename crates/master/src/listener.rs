//! Accepts remote workers on the master port, on the caller's runtime
//! ([`run`]) or on one of the connections' own ([`spawn_apart`]).

use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::MasterHandle;

/// Serves worker connections on `listener` until `shutdown` fires. Each
/// connection is independent: a bad one is closed without touching others.
pub async fn run(listener: TcpListener, master: MasterHandle, shutdown: CancellationToken) {
    accept(listener, &master, &shutdown, None).await;
}

/// The kernel's receive buffer of a worker's socket. Left to autotuning
/// it grows to `tcp_rmem`'s maximum (32 MiB here) on a fast link, and a
/// master that is behind keeps reports waiting in its sockets: at 10,000
/// simulated workers that ran the machine's TCP memory out ("TCP: out of
/// memory", resets, dropped segments that read as silent workers). 64 KiB
/// (the kernel doubles it for its own bookkeeping) caps what a connection
/// keeps there while still carrying a report a round trip at LAN speeds.
const RECV_BUFFER_BYTES: usize = 64 * 1024;

/// How long connections get, after `shutdown`, to pass on the master's
/// last words before [`spawn_apart`]'s runtime ends.
const APART_GRACE: Duration = Duration::from_secs(5);

/// [`run`] on a runtime of its own, in threads named `swarmer-conn`.
///
/// Reading and decoding thousands of workers' reports is the master's
/// heaviest work. On the runtime of the coordinator and the web server it
/// queues them behind thousands of connection tasks: at 10,000 simulated
/// workers `/healthz` took up to 10 s (`crates/master/benches/scale`).
/// Apart, the operating system shares the cores between the two
/// runtimes' threads, so a master past its capacity still answers its UI
/// and probes in milliseconds and merges as fast as it can.
///
/// The thread ends once `shutdown` fired and the connections ended (the
/// coordinator closes them as it stops), or [`APART_GRACE`] after.
pub fn spawn_apart(
    listener: TcpListener,
    master: MasterHandle,
    shutdown: CancellationToken,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let listener = listener.into_std()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .thread_name("swarmer-conn")
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name("swarmer-conn".into())
        .spawn(move || {
            runtime.block_on(async move {
                let listener = match TcpListener::from_std(listener) {
                    Ok(listener) => listener,
                    Err(e) => {
                        tracing::error!("cannot accept workers: {e}");
                        return;
                    }
                };
                let connections = TaskTracker::new();
                accept(listener, &master, &shutdown, Some(&connections)).await;
                connections.close();
                let _ = tokio::time::timeout(APART_GRACE, connections.wait()).await;
            });
        })
}

async fn accept(
    listener: TcpListener,
    master: &MasterHandle,
    shutdown: &CancellationToken,
    connections: Option<&TaskTracker>,
) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let _ = socket2::SockRef::from(&stream).set_recv_buffer_size(RECV_BUFFER_BYTES);
                    tracing::debug!(%peer, "worker connection");
                    // Small frames only, until the peer passes the handshake;
                    // read whole and decoded when the master can afford it.
                    let served = master.attach(crate::wire::raw_link(stream));
                    if let Some(tracker) = connections {
                        tracker.spawn(served);
                    }
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
