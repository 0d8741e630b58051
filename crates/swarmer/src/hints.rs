//! Advice for a run that cannot work as aimed: when every request so far
//! failed with "connection refused", nothing listens where the test points.
//! Said once per run, as a warning (stderr and the UI's Logs tab), naming
//! the address and the two ways to aim the test.

use std::time::Duration;

use master::{MasterHandle, Snapshot};
use tokio_util::sync::CancellationToken;

/// Watches the runs and warns once per run whose requests are all refused.
pub async fn watch_refused(master: MasterHandle, shutdown: CancellationToken) {
    let mut warned_run = None;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.cancelled() => return,
        }
        let snap = master.snapshot();
        if warned_run == Some(snap.run_id) {
            continue;
        }
        if let Some(hint) = refused_hint(&snap) {
            tracing::warn!("{hint}");
            warned_run = Some(snap.run_id);
        }
    }
}

/// The advice, when every request of the run failed and every failure was
/// a refused connection.
pub fn refused_hint(snap: &Snapshot) -> Option<String> {
    let stats = &snap.stats;
    if stats.num_requests() == 0 || stats.num_failures() < stats.num_requests() {
        return None;
    }
    let refused = |error: &str| error.to_ascii_lowercase().contains("connection refused");
    if !stats.errors().keys().all(|k| refused(&k.error)) {
        return None;
    }
    let address = stats
        .errors()
        .keys()
        .find_map(|k| connect_address(&k.error))
        .or(snap.host.as_deref())
        .unwrap_or("the target");
    Some(format!(
        "nothing is listening at {address}: every request so far failed with \
         \"connection refused\". Start the service there, aim the test at it with \
         -H URL (or the web form's host), or try swarmer on its bundled demo \
         shop with --demo-target"
    ))
}

/// `127.0.0.1:8080` out of `connect to 127.0.0.1:8080: Connection refused`.
fn connect_address(error: &str) -> Option<&str> {
    let rest = error.split_once("connect to ")?.1;
    let (address, _) = rest.rsplit_once(": ")?;
    (!address.is_empty()).then_some(address)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_comes_from_the_error() {
        assert_eq!(
            connect_address("connect to 127.0.0.1:1: Connection refused (os error 111)"),
            Some("127.0.0.1:1")
        );
        assert_eq!(connect_address("HTTP 500"), None);
    }
}
