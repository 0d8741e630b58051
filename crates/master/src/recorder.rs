//! Recording finished runs in the run history: what a run's final
//! snapshot becomes as a [`history::RunRecord`], and the task that records
//! every run the web UI (or API) starts once it has stopped. A headless
//! run is recorded by the binary itself, with its verdict and checks.
//!
//! A history that fails (a database gone mid-run) never stops a run: the
//! failure is logged and the run goes on; the next one tries again.

use std::collections::BTreeSet;

use history::{EntryFigures, Interval, Profile, RunRecord, Store};
use tokio_util::sync::CancellationToken;

use crate::autoscale::Autoscale;
use crate::profile::Profile as LoadProfile;
use crate::{HistoryPoint, MasterHandle, RunRequest, RunState, Snapshot};

/// What the history keeps of the script: its file name and a hash of its text.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ScriptMeta {
    pub name: String,
    pub hash: String,
}

impl ScriptMeta {
    pub fn new(path: &str, code: &str) -> ScriptMeta {
        let name = std::path::Path::new(path)
            .file_name()
            .map_or_else(|| path.to_string(), |n| n.to_string_lossy().into_owned());
        ScriptMeta {
            name,
            hash: history::record::script_hash(code),
        }
    }
}

/// The record of a stopped run. `request` is the run as asked for, when
/// known (headless); otherwise the profile is read off the snapshot.
pub fn record_of(
    snap: &Snapshot,
    points: &[HistoryPoint],
    script: &ScriptMeta,
    request: Option<&RunRequest>,
    verdict: &str,
) -> RunRecord {
    let stats = &snap.stats;
    let (start, now) = (stats.start_ms(), snap.now_ms);
    let entry = |e: &stats::StatsEntry| EntryFigures {
        method: e.method.to_string(),
        name: e.name.to_string(),
        requests: e.num_requests,
        failures: e.num_failures,
        avg_ms: e.avg_response_time_ms(),
        min_ms: e.min_response_time_ms(),
        max_ms: e.max_response_time_ms(),
        p50_ms: e.median_response_time_ms(),
        p95_ms: e.percentile_ms(0.95),
        p99_ms: e.percentile_ms(0.99),
        rps: e.total_rps(start, now),
    };
    let mut entries: Vec<_> = stats.entries().map(entry).collect();
    entries.push(entry(stats.total()));
    RunRecord {
        id: 0,
        started_ms: to_i64(snap.run_started_ms.unwrap_or(start)),
        ended_ms: to_i64(now),
        script: script.name.clone(),
        script_hash: script.hash.clone(),
        host: snap.host.clone().unwrap_or_default(),
        profile: profile_of(snap, points, request),
        verdict: verdict.to_string(),
        entries,
        checks: snap.checks.clone(),
        scaling: Vec::new(),
        intervals: points
            .iter()
            .map(|p| Interval {
                time_ms: p.time_ms,
                users: p.user_count,
                rps: p.rps,
                fail_per_sec: p.fail_per_sec,
                p50_ms: p.p50_ms,
                p95_ms: p.p95_ms,
            })
            .collect(),
    }
}

/// The run's load profile: from the request when known, else what the
/// snapshot and the per-second history show of it.
fn profile_of(snap: &Snapshot, points: &[HistoryPoint], request: Option<&RunRequest>) -> Profile {
    let peak_planned = points.iter().map(|p| p.target_users).max().unwrap_or(0);
    let peak = peak_planned.max(snap.target_users);
    let run_time_ms = request
        .and_then(|r| r.run_time)
        .map(|d| d.as_millis() as u64)
        .or(snap.run_time_ms);
    match request.and_then(|r| r.profile.as_ref()) {
        Some(LoadProfile::Stages(stages)) => Profile {
            kind: "stages".into(),
            users: stages.iter().map(|s| s.users).max().unwrap_or(peak),
            spawn_rate: snap.spawn_rate,
            run_time_ms: None,
            stages: Some(
                stages
                    .iter()
                    .map(|s| format!("{}:{}", humantime::format_duration(s.duration), s.users))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
        },
        Some(LoadProfile::Function) => Profile {
            kind: "shape".into(),
            users: peak,
            spawn_rate: snap.spawn_rate,
            run_time_ms: None,
            stages: None,
        },
        None if snap.profile.is_some() => Profile {
            kind: "stages".into(),
            users: peak,
            spawn_rate: snap.spawn_rate,
            run_time_ms: None,
            stages: None,
        },
        None => Profile {
            kind: "fixed".into(),
            users: request.map_or(peak, |r| r.users),
            spawn_rate: request.map_or(snap.spawn_rate, |r| r.spawn_rate),
            run_time_ms,
            stages: None,
        },
    }
}

/// A UI run's verdict: its thresholds when it has some, else Locust's rule
/// (any failure, or no request at all, fails it).
pub fn plain_verdict(snap: &Snapshot) -> &'static str {
    if !snap.checks.is_empty() {
        return if snap.checks.iter().all(|c| c.ok) {
            "passed"
        } else {
            "failed"
        };
    }
    let stats = &snap.stats;
    let failed =
        stats.num_requests() == 0 || stats.num_failures() > 0 || stats.exceptions().len() > 0;
    if failed { "failed" } else { "passed" }
}

/// Records every run that stops from now on until `shutdown`: the web
/// UI's runs. Each run once, from its final (Stopped) snapshot, with the
/// script the run ran (`script` only when the snapshot does not say) and
/// the autoscaler's decisions in it, when there is one.
pub async fn run(
    master: MasterHandle,
    store: Store,
    script: ScriptMeta,
    autoscale: Option<Autoscale>,
    shutdown: CancellationToken,
) {
    let mut updates = master.subscribe();
    let mut recorded = BTreeSet::new();
    loop {
        tokio::select! {
            changed = updates.changed() => if changed.is_err() { return },
            _ = shutdown.cancelled() => return,
        }
        let snap = updates.borrow_and_update().clone();
        if snap.state != RunState::Stopped || snap.run_started_ms.is_none() {
            continue;
        }
        if !recorded.insert(snap.run_id) {
            continue;
        }
        // The run's own script: an upload may have replaced the first one.
        let script = snap.run_script.as_ref().unwrap_or(&script);
        let mut record = record_of(&snap, &master.history(), script, None, plain_verdict(&snap));
        if let Some(autoscale) = &autoscale {
            record.scaling = autoscale.scaling_of_run(snap.run_id);
        }
        match store.record(&record).await {
            Ok(id) => tracing::info!("run recorded in the history as #{id}"),
            Err(e) => tracing::error!("the run was not recorded: {e}"),
        }
    }
}

fn to_i64(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}
