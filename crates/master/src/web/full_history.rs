//! The full-history CSV: the rows `--csv-full-history` writes to
//! `PREFIX_stats_history.csv` (one per entry and the `Aggregated` one, each
//! second of a run), shaped once here for the headless file and for the
//! web route `/stats/requests_full_history/csv`.
//!
//! As Locust, the route answers 404 with a message naming the flag when the
//! server was not started with `--csv-full-history`; with it, the web
//! server records the rows of the current run itself (a UI run writes no
//! file) and serves the rows collected so far.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use stats::csv as locust_csv;
use tokio_util::sync::CancellationToken;

use super::state::Shared;
use crate::{MasterHandle, Snapshot, now_ms};

/// Swarmer's own columns after Locust's, so tools that read Locust's
/// columns by position still do: the users the run aims at now, the open
/// model's dropped arrivals so far (all types) and its target rate now.
pub const HISTORY_OWN_HEADER: &str = "Target Users,Dropped Iterations,Target Rate";

/// The first line of `_stats_history.csv`, with its terminator.
pub fn history_csv_header() -> String {
    format!(
        "{},{HISTORY_OWN_HEADER}\n",
        locust_csv::STATS_HISTORY_HEADER
    )
}

/// The rows of `_stats_history.csv` for `snap`'s moment: the `Aggregated`
/// one, and with `full` one per entry before it.
pub fn history_csv_rows(snap: &Snapshot, full: bool) -> String {
    let rows =
        locust_csv::stats_history_rows(&snap.stats, u64::from(snap.user_count), snap.now_ms, full);
    let target = snap
        .profile
        .as_ref()
        .map_or(snap.target_users, |p| p.planned_users);
    let tail = format!(
        ",{},{},{:.6}",
        target,
        snap.stats.dropped_iterations_total(),
        snap.target_rate
    );
    let mut out = String::with_capacity(rows.len() + 32);
    for line in rows.lines() {
        out.push_str(line);
        out.push_str(&tail);
        out.push('\n');
    }
    out
}

/// The current run's rows, recorded once a second while it is active.
#[derive(Default)]
pub struct FullHistory {
    rows: Mutex<Recorded>,
}

#[derive(Default)]
struct Recorded {
    run_id: u64,
    /// The last second recorded: a snapshot published twice in one second
    /// must not write its rows twice.
    last_s: u64,
    body: String,
}

impl FullHistory {
    /// Appends `snap`'s rows when its run is active; a new run starts over.
    fn record(&self, snap: &Snapshot) {
        let mut rec = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        if rec.run_id != snap.run_id {
            *rec = Recorded {
                run_id: snap.run_id,
                ..Recorded::default()
            };
        }
        let second = snap.now_ms / 1000;
        if !snap.state.is_active() || second <= rec.last_s {
            return;
        }
        rec.last_s = second;
        rec.body.push_str(&history_csv_rows(snap, true));
    }

    fn csv(&self) -> String {
        let rec = self.rows.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = history_csv_header();
        out.push_str(&rec.body);
        out
    }
}

/// Records `master`'s rows into `history` every second until `shutdown`
/// or the master ends.
pub fn spawn_recorder(
    master: MasterHandle,
    history: Arc<FullHistory>,
    shutdown: CancellationToken,
) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            if !master.is_alive() {
                return;
            }
            history.record(&master.snapshot());
        }
    });
}

/// `GET /stats/requests_full_history/csv`, as Locust's.
pub async fn csv_route(State(app): State<Shared>) -> Response {
    let Some(history) = &app.full_history else {
        return (
            StatusCode::NOT_FOUND,
            "Error: the server was not started with --csv-full-history, \
             so it keeps no full history",
        )
            .into_response();
    };
    let disposition = format!(
        "attachment; filename=\"requests_full_history_{}.csv\"",
        now_ms() / 1000
    );
    let mut response = history.csv().into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/csv; charset=utf-8"),
    );
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}
