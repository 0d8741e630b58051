//! What the master publishes about itself: the run, its workers and its
//! statistics, as one immutable value the web UI, the API and the headless
//! console read without holding any lock on the master; [`views`] shapes
//! it as JSON for all of them and for the script's extensions.

pub(crate) mod views;

use std::collections::BTreeMap;

use serde::Serialize;
use stats::RequestStats;

use crate::membership::WorkerView;
pub use crate::profile::PlanPoint;

/// The run's state, as Locust names it on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// No run yet.
    Ready,
    Spawning,
    Running,
    Stopping,
    Stopped,
}

impl RunState {
    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Ready => "ready",
            RunState::Spawning => "spawning",
            RunState::Running => "running",
            RunState::Stopping => "stopping",
            RunState::Stopped => "stopped",
        }
    }

    pub fn is_active(self) -> bool {
        matches!(self, RunState::Spawning | RunState::Running)
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    pub state: RunState,
    pub run_id: u64,
    pub host: Option<String>,
    pub target_users: u32,
    pub spawn_rate: f64,
    /// Arrivals per second the run's arrival-driven types ask for now
    /// (the open model's target; 0 without such types or run).
    pub target_rate: f64,
    /// Users running now, as the workers last reported: the closed-model
    /// users and those allocated in arrival pools (idle or busy).
    pub user_count: u32,
    pub users_by_type: BTreeMap<String, u32>,
    pub run_started_ms: Option<u64>,
    pub run_time_ms: Option<u64>,
    pub workers: Vec<WorkerView>,
    /// Live workers only.
    pub worker_count: usize,
    /// Workers lost during this run: their last unreported second is missing.
    pub lost_workers: u32,
    /// Workers that were saturated (CPU over 90% of their cores for ten
    /// heartbeats) during this run: its figures were taken with saturated
    /// generators, so its latencies include their own queueing.
    pub saturated_workers: Vec<String>,
    pub user_types: Vec<String>,
    /// The user types the current (or last) run asked for; empty: all.
    pub run_user_types: Vec<String>,
    pub stats: RequestStats,
    pub now_ms: u64,
    /// Time the coordinator has spent working since it started: its rate
    /// of growth is how much of one core it uses (it is one task).
    pub coordinator_busy_us: u64,
    /// Where the run is in its load profile, when it follows one.
    pub profile: Option<ProfileView>,
    /// The thresholds judged on these stats as of `now_ms`: live badges,
    /// `/metrics`, and at the end of a run its verdict.
    pub checks: Vec<verdict::Check>,
    /// The planned arrival rate as far as it is known (the end of the
    /// arrival stages or of the profile); empty without arrival types.
    pub rate_plan: Vec<RatePoint>,
    /// Why the run was stopped, when it was stopped by a failure rather
    /// than by someone or its end (a shape function that raised).
    pub stop_error: Option<String>,
    /// The script of the current (or last) run, for the run history.
    pub run_script: Option<crate::recorder::ScriptMeta>,
}

/// The load profile's progress, for the UI's header and the API.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileView {
    /// `"stages"`, or `"function"`: the script's shape function, whose
    /// plan is made as the run goes (no stages, no time left, no plan).
    pub kind: &'static str,
    /// 1-based, as shown to people (0 for a function).
    pub stage: usize,
    pub stages: usize,
    pub time_left_ms: Option<u64>,
    /// The users the plan wanted when `user_count` was taken (the workers'
    /// counts are up to a report interval old), so the two compare; for a
    /// function, its last answer.
    pub planned_users: u32,
    /// The whole plan ahead, as the corners of its line (linear between
    /// them; `time_ms` on the clock of `now_ms`), up to the profile's end.
    pub plan: Vec<PlanPoint>,
}

/// A corner of the planned arrival rate's line: the sum of the run's
/// arrival-driven types at `time_ms` (linear between corners).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RatePoint {
    pub time_ms: u64,
    pub rate: f64,
}

/// One point per second of the run, for charts and the HTML report.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryPoint {
    pub time_ms: u64,
    pub user_count: u32,
    pub rps: f64,
    pub fail_per_sec: f64,
    pub p50_ms: Option<f64>,
    pub p95_ms: Option<f64>,
    pub worker_count: usize,
    /// The users the run aimed at when `user_count` was taken: the
    /// profile's plan at that instant, or the fixed count (Locust's history
    /// has only the actual users).
    pub target_users: u32,
    /// The arrivals per second the open model aimed at then (0: none).
    pub target_rate: f64,
}
