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
use super::views::{self, EntryJson, Summary};
use crate::{HistoryPoint, MasterHandle, Snapshot, WorkerView};

/// Updates are coalesced to at most one per this interval.
const PACE: Duration = Duration::from_secs(1);

#[derive(Serialize)]
pub struct LivePayload {
    pub summary: Summary,
    pub stats: Vec<EntryJson>,
    pub workers: Vec<WorkerView>,
    pub users_by_type: std::collections::BTreeMap<String, u32>,
    /// The newest history point, for the charts to append.
    pub point: Option<HistoryPoint>,
}

pub fn payload(snap: &Snapshot, master: &MasterHandle) -> LivePayload {
    LivePayload {
        summary: views::summary(snap),
        stats: views::stats_rows(snap),
        workers: views::workers(snap),
        users_by_type: snap.users_by_type.clone(),
        point: master.history().pop(),
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
    futures::stream::unfold((rx, master, true), |(mut rx, master, first)| async move {
        if !first {
            tokio::time::sleep(PACE).await;
            rx.changed().await.ok()?;
        }
        let snap = rx.borrow_and_update().clone();
        let event = match Event::default()
            .event("update")
            .json_data(payload(&snap, &master))
        {
            Ok(event) => event,
            // Serialising our own structs cannot fail; a comment beats a panic.
            Err(e) => Event::default().event("error").data(e.to_string()),
        };
        Some((Ok(event), (rx, master, false)))
    })
}
