//! The snapshot as JSON: one shaping of entries, errors, exceptions and the
//! run's summary, shared by Locust's routes, the JSON API, the live stream
//! and the metrics, so the same figure never differs between them.

use serde::Serialize;
use stats::{PhasePercentiles, StatsEntry};

use crate::{RunState, Snapshot, WorkerView};

/// Locust caps its stats and error tables at this many rows.
pub const MAX_ROWS: usize = 500;

/// One row of the statistics table, with Locust's field names (times in ms).
#[derive(Debug, Clone, Serialize)]
pub struct EntryJson {
    pub method: String,
    pub name: String,
    pub num_requests: u64,
    pub num_failures: u64,
    pub min_response_time: f64,
    pub max_response_time: f64,
    pub current_rps: f64,
    pub current_fail_per_sec: f64,
    pub avg_response_time: f64,
    pub median_response_time: f64,
    pub total_rps: f64,
    pub total_fail_per_sec: f64,
    #[serde(rename = "response_time_percentile_0.95")]
    pub p95: f64,
    #[serde(rename = "response_time_percentile_0.99")]
    pub p99: f64,
    pub avg_content_length: f64,
    /// Connect/TLS/TTFB percentiles; only for entries whose requests
    /// reported phases (HTTP), absent for WebSocket, TCP and custom ones.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phases: Option<PhasesJson>,
}

/// p50/p95/p99 (ms) of each phase of an entry's requests; a request on a
/// reused connection counts 0 connect and 0 TLS.
#[derive(Debug, Clone, Serialize)]
pub struct PhasesJson {
    pub connect: PhasePercentiles,
    pub tls: PhasePercentiles,
    pub ttfb: PhasePercentiles,
}

pub fn phases_json(e: &StatsEntry) -> Option<PhasesJson> {
    let phases = e.phases.as_deref().filter(|p| !p.is_empty())?;
    let [(_, connect), (_, tls), (_, ttfb)] = phases.percentiles_ms();
    Some(PhasesJson { connect, tls, ttfb })
}

pub fn entry_json(e: &StatsEntry, snap: &Snapshot) -> EntryJson {
    let start = snap.stats.start_ms();
    // Locust divides by the time up to the last request, so totals do not
    // decay while a stopped run sits on screen.
    let end = if e.num_requests > 0 {
        e.last_request_ms
    } else {
        snap.now_ms
    };
    EntryJson {
        method: e.method.to_string(),
        name: e.name.to_string(),
        num_requests: e.num_requests,
        num_failures: e.num_failures,
        min_response_time: e.min_response_time_ms(),
        max_response_time: e.max_response_time_ms(),
        current_rps: current_rps(e, snap),
        current_fail_per_sec: current_fail_per_sec(e, snap),
        avg_response_time: e.avg_response_time_ms(),
        median_response_time: e.median_response_time_ms(),
        total_rps: e.total_rps(start, end),
        total_fail_per_sec: e.total_fail_per_sec(start, end),
        p95: e.percentile_ms(0.95),
        p99: e.percentile_ms(0.99),
        avg_content_length: e.avg_content_length(),
        phases: phases_json(e),
    }
}

/// Requests per second now: Locust's window (the 10 s before the last 2 s)
/// while users run, and 0 once the run has stopped. The window alone would
/// keep the rate sliding down for 12 s after Stop, as if requests were
/// still being sent.
pub fn current_rps(e: &StatsEntry, snap: &Snapshot) -> f64 {
    if stopped(snap) {
        0.0
    } else {
        e.current_rps(snap.now_ms)
    }
}

/// Like [`current_rps`], for failures.
pub fn current_fail_per_sec(e: &StatsEntry, snap: &Snapshot) -> f64 {
    if stopped(snap) {
        0.0
    } else {
        e.current_fail_per_sec(snap.now_ms)
    }
}

fn stopped(snap: &Snapshot) -> bool {
    matches!(snap.state, RunState::Stopped | RunState::Ready)
}

/// The table's rows, capped like Locust's, with `Aggregated` last.
pub fn stats_rows(snap: &Snapshot) -> Vec<EntryJson> {
    let mut rows: Vec<EntryJson> = snap
        .stats
        .entries()
        .take(MAX_ROWS)
        .map(|e| entry_json(e, snap))
        .collect();
    rows.push(entry_json(snap.stats.total(), snap));
    rows
}

#[derive(Debug, Clone, Serialize)]
pub struct ErrorJson {
    pub method: String,
    pub name: String,
    pub error: String,
    pub occurrences: u64,
    pub first_seen_ms: u64,
    pub last_seen_ms: u64,
}

pub fn errors(snap: &Snapshot) -> Vec<ErrorJson> {
    let mut rows: Vec<ErrorJson> = snap
        .stats
        .errors()
        .iter()
        .map(|(k, e)| ErrorJson {
            method: k.method.to_string(),
            name: k.name.to_string(),
            error: k.error.to_string(),
            occurrences: e.occurrences,
            first_seen_ms: e.first_seen_ms,
            last_seen_ms: e.last_seen_ms,
        })
        .collect();
    rows.sort_by_key(|e| std::cmp::Reverse(e.occurrences));
    rows.truncate(MAX_ROWS);
    rows
}

#[derive(Debug, Clone, Serialize)]
pub struct ExceptionJson {
    pub count: u64,
    pub msg: String,
    pub traceback: String,
    pub nodes: String,
}

pub fn exceptions(snap: &Snapshot) -> Vec<ExceptionJson> {
    snap.stats
        .exceptions()
        .map(|e| ExceptionJson {
            count: e.count,
            msg: e.message.clone(),
            traceback: e.traceback.clone(),
            nodes: e.nodes.iter().cloned().collect::<Vec<_>>().join(", "),
        })
        .collect()
}

/// The header's figures and the run's parameters.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub state: RunState,
    pub run_id: u64,
    pub host: Option<String>,
    pub user_count: u32,
    pub target_users: u32,
    pub spawn_rate: f64,
    /// The open model's target arrivals per second now (0: none).
    pub target_rate: f64,
    pub worker_count: usize,
    pub lost_workers: u32,
    /// Workers saturated during this run (see [`Snapshot::saturated_workers`]).
    pub saturated_workers: Vec<String>,
    pub num_requests: u64,
    pub num_failures: u64,
    pub current_rps: f64,
    pub current_fail_per_sec: f64,
    pub total_rps: f64,
    pub fail_ratio: f64,
    pub current_p50_ms: Option<f64>,
    pub current_p95_ms: Option<f64>,
    pub run_started_ms: Option<u64>,
    pub run_time_ms: Option<u64>,
    /// When the statistics began (a run's start or the last reset): the
    /// charts drop older points, so they and the table reset together.
    pub stats_started_ms: u64,
    pub now_ms: u64,
    pub error_groups: usize,
    pub exception_count: usize,
    /// Arrivals of the open model dropped for want of a user (all types).
    pub dropped_iterations: u64,
    /// The load profile the run follows: stage, time left, planned users.
    pub profile: Option<super::ProfileView>,
    /// The planned arrival rate ahead (corners of its line; empty without
    /// arrival-driven types).
    pub rate_plan: Vec<super::RatePoint>,
    /// Why a failure stopped the run (a shape function that raised).
    pub stop_error: Option<String>,
}

pub fn summary(snap: &Snapshot) -> Summary {
    let total = entry_json(snap.stats.total(), snap);
    Summary {
        state: snap.state,
        run_id: snap.run_id,
        host: snap.host.clone(),
        user_count: snap.user_count,
        target_users: snap.target_users,
        spawn_rate: snap.spawn_rate,
        target_rate: snap.target_rate,
        worker_count: snap.worker_count,
        lost_workers: snap.lost_workers,
        saturated_workers: snap.saturated_workers.clone(),
        num_requests: total.num_requests,
        num_failures: total.num_failures,
        current_rps: total.current_rps,
        current_fail_per_sec: total.current_fail_per_sec,
        total_rps: total.total_rps,
        fail_ratio: snap.stats.fail_ratio(),
        current_p50_ms: snap
            .stats
            .current_response_time_percentile_ms(0.5, snap.now_ms),
        current_p95_ms: snap
            .stats
            .current_response_time_percentile_ms(0.95, snap.now_ms),
        run_started_ms: snap.run_started_ms,
        run_time_ms: snap.run_time_ms,
        stats_started_ms: snap.stats.start_ms(),
        profile: snap.profile.clone(),
        rate_plan: snap.rate_plan.clone(),
        stop_error: snap.stop_error.clone(),
        now_ms: snap.now_ms,
        error_groups: snap.stats.errors().len(),
        exception_count: snap.stats.exceptions().len(),
        dropped_iterations: snap.stats.dropped_iterations_total(),
    }
}

/// Workers as shown: live ones first, lost ones after, each group by id.
pub fn workers(snap: &Snapshot) -> Vec<WorkerView> {
    let mut list = snap.workers.clone();
    list.sort_by_key(|w| (w.state == protocol::WorkerState::Lost, w.id.clone()));
    list
}
