//! Live updates for the UI as server-sent events: a compact state + stats
//! payload at most once a second, whenever the master publishes.
//!
//! The page loads the run's history from `/api/v1/history` first and then
//! appends the `point` carried here, so charts show the whole run even after
//! a reload. SSE rather than a WebSocket: one direction is all that is
//! needed, it passes through proxies and ingresses as plain HTTP, and the
//! browser reconnects by itself.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde::Serialize;
use tokio::sync::watch;

use super::state::Shared;
use crate::snapshot::views::{self, EntryJson, Summary};
use crate::{HistoryPoint, MasterHandle, Snapshot, WorkerView};

/// Updates are coalesced to at most one per this interval.
const PACE: Duration = Duration::from_secs(1);

#[derive(Serialize)]
pub struct LivePayload {
    pub summary: Summary,
    pub stats: Vec<EntryJson>,
    pub workers: Vec<WorkerView>,
    pub users_by_type: std::collections::BTreeMap<String, u32>,
    /// History points recorded since the previous event of this stream
    /// (on the first event, only the newest), for the charts to append.
    pub points: Vec<HistoryPoint>,
    /// The thresholds judged on this snapshot, for the UI's badges.
    pub thresholds: Vec<verdict::Check>,
}

/// The payload, with the history points newer than `after_ms`.
pub fn payload(snap: &Snapshot, master: &MasterHandle, after_ms: Option<u64>) -> LivePayload {
    let points = master.history_since(after_ms);
    LivePayload {
        summary: views::summary(snap),
        stats: views::stats_rows(snap),
        workers: views::workers(snap),
        users_by_type: snap.users_by_type.clone(),
        points,
        thresholds: snap.checks.clone(),
    }
}

pub async fn events(
    State(app): State<Shared>,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let rx = app.master.subscribe();
    let stream = updates(rx, app.master.clone()).take_until(app.shutdown.clone().cancelled_owned());
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

/// One event at once, then one per publication, no faster than [`PACE`].
/// Ends when the master shuts down (its channel closes).
fn updates(
    rx: watch::Receiver<Arc<Snapshot>>,
    master: MasterHandle,
) -> impl Stream<Item = Result<Event, Infallible>> {
    struct Cursor {
        rx: watch::Receiver<Arc<Snapshot>>,
        master: MasterHandle,
        first: bool,
        /// The newest history point this stream has sent.
        last_ms: Option<u64>,
    }
    let start = Cursor {
        rx,
        master,
        first: true,
        last_ms: None,
    };
    futures::stream::unfold(start, |mut c| async move {
        if !c.first {
            tokio::time::sleep(PACE).await;
            c.rx.changed().await.ok()?;
        }
        let snap = c.rx.borrow_and_update().clone();
        let after = if c.first { None } else { c.last_ms.or(Some(0)) };
        let body = payload(&snap, &c.master, after);
        c.last_ms = body.points.last().map(|p| p.time_ms).or(c.last_ms);
        c.first = false;
        let event = match Event::default().event("update").json_data(body) {
            Ok(event) => event,
            // Serialising our own structs cannot fail; a comment beats a panic.
            Err(e) => Event::default().event("error").data(e.to_string()),
        };
        Some((Ok(event), c))
    })
}
