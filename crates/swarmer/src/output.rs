//! Files and JSON a headless run leaves behind: Locust's four CSV files
//! (the history one appended once a second while running), `--json` and
//! `--html`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use master::{HistoryPoint, MasterHandle, Snapshot};
use stats::csv as locust_csv;

/// Appends rows to `PREFIX_stats_history.csv` as the run goes.
pub struct HistoryCsv {
    file: File,
    path: PathBuf,
    full: bool,
}

impl HistoryCsv {
    pub fn create(prefix: &str, full: bool) -> anyhow::Result<Self> {
        let path = PathBuf::from(format!("{prefix}_stats_history.csv"));
        let mut file =
            File::create(&path).with_context(|| format!("cannot write {}", path.display()))?;
        // Locust's columns first and unchanged, so its readers still work.
        file.write_all(master::web::history_csv_header().as_bytes())?;
        Ok(Self { file, path, full })
    }

    pub fn append(&mut self, snap: &Snapshot) -> anyhow::Result<()> {
        // Shaped by the master, so the UI's full-history CSV has the same columns.
        let rows = master::web::history_csv_rows(snap, self.full);
        self.file
            .write_all(rows.as_bytes())
            .with_context(|| format!("cannot write {}", self.path.display()))
    }
}

/// Writes the three end-of-run CSV files.
pub fn write_final_csv(prefix: &str, snap: &Snapshot) -> anyhow::Result<()> {
    let files = [
        ("stats", locust_csv::stats_csv(&snap.stats, snap.now_ms)),
        ("failures", locust_csv::failures_csv(&snap.stats)),
        ("exceptions", locust_csv::exceptions_csv(&snap.stats)),
    ];
    for (suffix, body) in files {
        let path = format!("{prefix}_{suffix}.csv");
        std::fs::write(&path, body).with_context(|| format!("cannot write {path}"))?;
    }
    Ok(())
}

/// The final statistics as JSON: Locust's per-entry field names.
pub fn final_json(snap: &Snapshot, verdict: &verdict::Verdict) -> serde_json::Value {
    let s = &snap.stats;
    let now = snap.now_ms;
    let entry = |e: &stats::StatsEntry| {
        let mut json = serde_json::json!({
            "method": e.method,
            "name": e.name,
            "num_requests": e.num_requests,
            "num_failures": e.num_failures,
            "min_response_time": e.min_response_time_ms(),
            "max_response_time": e.max_response_time_ms(),
            "avg_response_time": e.avg_response_time_ms(),
            "median_response_time": e.median_response_time_ms(),
            "response_time_percentile_0.95": e.percentile_ms(0.95),
            "response_time_percentile_0.99": e.percentile_ms(0.99),
            "avg_content_length": e.avg_content_length(),
            "total_rps": e.total_rps(s.start_ms(), now),
            "total_fail_per_sec": e.total_fail_per_sec(s.start_ms(), now),
        });
        // HTTP entries only, as in the UI's stats JSON.
        if let Some(phases) = master::phases_json(e) {
            json["phases"] = serde_json::json!(phases);
        }
        json
    };
    let mut entries: Vec<_> = s.entries().map(entry).collect();
    entries.push(entry(s.total()));
    let errors: Vec<_> = s
        .errors()
        .iter()
        .map(|(k, v)| serde_json::json!({"method": k.method, "name": k.name, "error": k.error, "occurrences": v.occurrences}))
        .collect();
    let exceptions: Vec<_> = s
        .exceptions()
        .map(|x| serde_json::json!({"count": x.count, "msg": x.message, "traceback": x.traceback, "nodes": x.nodes}))
        .collect();
    serde_json::json!({
        "stats": entries,
        "errors": errors,
        "exceptions": exceptions,
        "user_count": snap.user_count,
        "worker_count": snap.worker_count,
        "lost_workers": snap.lost_workers,
        "saturated_workers": snap.saturated_workers,
        "fail_ratio": s.fail_ratio(),
        "dropped_iterations": s.dropped_iterations_total(),
        "dropped_iterations_by_user_type": s.dropped_iterations(),
        "thresholds": verdict.checks,
    })
}

pub fn write_html(
    path: &Path,
    master: &MasterHandle,
    snap: &Snapshot,
    verdict: &verdict::Verdict,
    history: &[HistoryPoint],
    autoscaled: &[master::autoscale::Event],
) -> anyhow::Result<()> {
    let html = if snap.checks == verdict.checks {
        master::web::render_report_autoscaled(master, snap, history, autoscaled)
    } else {
        // The verdict holds checks the master did not make (regressions).
        let mut judged = snap.clone();
        judged.checks = verdict.checks.clone();
        master::web::render_report_autoscaled(master, &judged, history, autoscaled)
    };
    std::fs::write(path, html).with_context(|| format!("cannot write {}", path.display()))
}

/// `--junit FILE`: one testcase per check.
pub fn write_junit(path: &Path, verdict: &verdict::Verdict) -> anyhow::Result<()> {
    std::fs::write(path, verdict::render::junit(verdict, "swarmer"))
        .with_context(|| format!("cannot write {}", path.display()))
}
