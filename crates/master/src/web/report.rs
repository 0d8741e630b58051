//! The self-contained HTML report: `/stats/report` and the binary's
//! `--html FILE`.
//!
//! One file with the tables, the charts and the chart library inlined, so it
//! opens offline years later. It opens with what a reader asks first: did
//! the run pass, against what, with how many users at the peak, from which
//! script (its text folded away). Rendered by minijinja with HTML auto-escaping
//! from `web/report/report.html`: every name, error message and traceback a
//! script produced is escaped, and the chart data is embedded as JSON that
//! cannot close its `<script>` element.

use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use minijinja::Environment;
use minijinja::value::{Serde, Value};
use serde::{Deserialize, Serialize};
use stats::StatsEntry;

use super::state::Shared;
use crate::snapshot::views;
use crate::{HistoryPoint, MasterHandle, Snapshot};

const TEMPLATE: &str = include_str!("../../../../web/report/report.html");
const REPORT_JS: &str = include_str!("../../../../web/report/report.js");
const REPORT_CSS: &str = include_str!("../../../../web/report/report.css");
const UPLOT_JS: &str = include_str!("../../../../web/ui/vendor/uPlot.iife.min.js");
const UPLOT_CSS: &str = include_str!("../../../../web/ui/vendor/uPlot.min.css");

#[derive(Debug, thiserror::Error)]
#[error("cannot render the HTML report: {0}")]
pub struct ReportError(#[from] minijinja::Error);

/// One statistics row, formatted for reading.
#[derive(Serialize)]
struct Row {
    method: String,
    name: String,
    requests: u64,
    failures: u64,
    median: String,
    p95: String,
    p99: String,
    average: String,
    min: String,
    max: String,
    size: String,
    rps: String,
    fail_per_sec: String,
    percentiles: Vec<String>,
}

fn row(e: &StatsEntry, snap: &Snapshot) -> Row {
    let json = views::entry_json(e, snap);
    let none = e.num_requests == 0;
    let ms = |v: f64| if none { "N/A".to_string() } else { fmt_ms(v) };
    Row {
        method: e.method.to_string(),
        name: e.name.to_string(),
        requests: e.num_requests,
        failures: e.num_failures,
        median: ms(json.median_response_time),
        p95: ms(json.p95),
        p99: ms(json.p99),
        average: ms(json.avg_response_time),
        min: ms(json.min_response_time),
        max: ms(json.max_response_time),
        size: format!("{:.0}", json.avg_content_length),
        rps: format!("{:.2}", json.total_rps),
        fail_per_sec: format!("{:.2}", json.total_fail_per_sec),
        percentiles: stats::PERCENTILES
            .iter()
            .map(|q| ms(e.percentile_ms(*q)))
            .collect(),
    }
}

/// One row of the Phases table: p50/p95/p99 of connect, TLS and TTFB.
#[derive(Serialize)]
struct PhaseRow {
    method: String,
    name: String,
    total: bool,
    values: Vec<String>,
}

/// The Phases table: only entries whose requests reported phases (HTTP).
fn phase_rows(snap: &Snapshot) -> Vec<PhaseRow> {
    let total = snap.stats.total();
    let entries = snap.stats.entries().map(|e| (e, false));
    entries
        .chain([(total, true)])
        .filter_map(|(e, total)| {
            let p = views::phases_json(e)?;
            let values = [p.connect, p.tls, p.ttfb]
                .iter()
                .flat_map(|q| [q.p50, q.p95, q.p99])
                .map(fmt_ms)
                .collect();
            Some(PhaseRow {
                method: e.method.to_string(),
                name: e.name.to_string(),
                total,
                values,
            })
        })
        .collect()
}

/// Everything the template reads; names match `report.html`.
#[derive(Serialize)]
struct ReportContext<'a> {
    host: String,
    state: &'static str,
    started: Option<String>,
    ended: String,
    duration: Option<String>,
    verdict: VerdictLine,
    /// The most users that ran at once (a stopped run ends with 0).
    peak_users: u32,
    target_users: u32,
    user_count: u32,
    spawn_rate: String,
    /// The run time asked for, or how the run was meant to end.
    run_time: String,
    user_types: Vec<TypeRow>,
    script_path: &'a str,
    script_code: &'a str,
    worker_count: usize,
    lost_workers: u32,
    /// Workers saturated during the run: its figures include their queueing.
    saturated_workers: Vec<String>,
    /// The autoscaler's decisions during the run ("scaled 3 → 5: …").
    autoscale: Vec<String>,
    num_requests: u64,
    num_failures: u64,
    fail_ratio: String,
    total_rps: String,
    rows: Vec<Row>,
    percentile_labels: Vec<String>,
    phase_rows: Vec<PhaseRow>,
    failures: Vec<views::ErrorJson>,
    exceptions: Vec<views::ExceptionJson>,
    workers: Vec<crate::WorkerView>,
    checks: Vec<CheckRow>,
    history: &'a [HistoryPoint],
    generated: String,
    version: &'static str,
    uplot_js: &'static str,
    uplot_css: &'static str,
    report_js: &'static str,
    report_css: &'static str,
}

/// The run's pass/fail line: the thresholds when there are any, else
/// the failures, in words.
#[derive(Serialize)]
struct VerdictLine {
    passed: bool,
    text: String,
}

fn plural(n: u64, one: &str) -> String {
    if n == 1 {
        one.to_string()
    } else {
        format!("{one}s")
    }
}

/// The failures in words, as the console's last line says them.
fn failures_text(snap: &Snapshot) -> String {
    let total = snap.stats.total();
    let (n, f) = (total.num_requests, total.num_failures);
    let raised: u64 = snap.stats.exceptions().map(|x| x.count).sum();
    let requests = match (n, f) {
        (0, _) => "no request completed".to_string(),
        (n, 0) => format!("all {n} {} succeeded", plural(n, "request")),
        (n, f) => format!("{f} of {n} {} failed", plural(n, "request")),
    };
    if raised == 0 {
        requests
    } else {
        format!(
            "{requests}; tasks raised {raised} {}",
            plural(raised, "error")
        )
    }
}

fn verdict_line(snap: &Snapshot) -> VerdictLine {
    let failures = failures_text(snap);
    if !snap.checks.is_empty() {
        let n = snap.checks.len() as u64;
        let crossed = snap.checks.iter().filter(|c| !c.ok).count() as u64;
        let (passed, checks) = if crossed == 0 {
            (true, format!("all {n} {} held", plural(n, "threshold")))
        } else {
            let what = plural(n, "threshold");
            (false, format!("{crossed} of {n} {what} not met"))
        };
        let verdict = if passed { "Passed" } else { "Failed" };
        return VerdictLine {
            passed,
            text: format!("{verdict}: {checks} ({failures})"),
        };
    }
    let total = snap.stats.total();
    let raised = snap.stats.exceptions().next().is_some();
    let passed = total.num_requests > 0 && total.num_failures == 0 && !raised;
    let verdict = if passed { "Passed" } else { "Failed" };
    VerdictLine {
        passed,
        text: format!("{verdict}: {failures}"),
    }
}

/// A user type the run ran, as the script declares it.
#[derive(Serialize)]
struct TypeRow {
    name: String,
    weight: u32,
    fixed_count: Option<u32>,
    host: Option<String>,
}

fn user_types(master: &MasterHandle, snap: &Snapshot) -> Vec<TypeRow> {
    let ran = |name: &str| {
        snap.run_user_types.is_empty() || snap.run_user_types.iter().any(|t| t == name)
    };
    master
        .script_info()
        .user_types
        .iter()
        .filter(|t| ran(&t.name))
        .map(|t| TypeRow {
            name: t.name.clone(),
            weight: t.weight,
            fixed_count: t.fixed_count,
            host: t.host.clone(),
        })
        .collect()
}

/// How the run was meant to end: its run time, its profile, or a person.
fn run_time_text(snap: &Snapshot) -> String {
    match (snap.run_time_ms, &snap.profile) {
        (Some(ms), _) => {
            humantime::format_duration(std::time::Duration::from_millis(ms)).to_string()
        }
        (None, Some(_)) => "as the load profile ends".into(),
        (None, None) if snap.run_started_ms.is_some() => "until stopped".into(),
        (None, None) => "no run".into(),
    }
}

/// One threshold or regression check, formatted for reading.
#[derive(Serialize)]
struct CheckRow {
    kind: verdict::CheckKind,
    scope: String,
    expr: String,
    observed: String,
    limit: String,
    ok: bool,
    status: &'static str,
}

fn check_row(c: &verdict::Check) -> CheckRow {
    CheckRow {
        kind: c.kind,
        scope: c.scope.clone(),
        expr: c.expr.clone(),
        observed: c.observed_text(),
        limit: format!("{} {}", c.op, verdict::value_text(c.limit, &c.unit)),
        ok: c.ok,
        status: c.status(),
    }
}

/// Milliseconds to 3 significant figures or whole numbers past 100.
fn fmt_ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

/// "2026-11-25 18:16:51 UTC": the CSV's timestamp, easier to read.
fn readable_time(ms: u64) -> String {
    let stamp = stats::csv::utc_timestamp(ms);
    format!("{} UTC", stamp.replace('T', " ").trim_end_matches('Z'))
}

fn percentile_labels() -> Vec<String> {
    stats::PERCENTILES
        .iter()
        .map(|q| format!("{}%", q * 100.0))
        .collect()
}

/// The report as one HTML document: `snapshot`'s figures (passed apart
/// from `master` so a caller may add checks), with the script `master`
/// loaded.
pub fn try_render_report(
    master: &MasterHandle,
    snapshot: &Snapshot,
    history: &[HistoryPoint],
    autoscale: &[crate::autoscale::Event],
) -> Result<String, ReportError> {
    let mut env = Environment::new();
    env.add_template("report.html", TEMPLATE)?;
    let snap = snapshot;
    let script = master.script();
    let mut rows: Vec<Row> = snap.stats.entries().map(|e| row(e, snap)).collect();
    rows.push(row(snap.stats.total(), snap));
    let summary = views::summary(snap);
    let end_ms = history.last().map_or(snap.now_ms, |p| p.time_ms);
    let start_ms = snap.run_started_ms.or(history.first().map(|p| p.time_ms));
    let duration = start_ms.map(|s| {
        humantime::format_duration(std::time::Duration::from_secs(
            end_ms.saturating_sub(s) / 1000,
        ))
        .to_string()
    });
    let ctx = ReportContext {
        host: snap
            .host
            .clone()
            .unwrap_or_else(|| "(set by the script)".into()),
        state: snap.state.as_str(),
        started: start_ms.map(readable_time),
        ended: readable_time(end_ms),
        duration,
        verdict: verdict_line(snap),
        peak_users: history
            .iter()
            .map(|p| p.user_count)
            .chain([snap.user_count])
            .max()
            .unwrap_or(0),
        target_users: snap.target_users,
        user_count: snap.user_count,
        spawn_rate: format!("{} users/s", verdict::number_text(snap.spawn_rate)),
        run_time: run_time_text(snap),
        user_types: user_types(master, snap),
        script_path: &script.text.path,
        script_code: &script.text.code,
        worker_count: snap.worker_count,
        lost_workers: snap.lost_workers,
        saturated_workers: snap.saturated_workers.clone(),
        autoscale: autoscale.iter().map(event_line).collect(),
        num_requests: summary.num_requests,
        num_failures: summary.num_failures,
        fail_ratio: format!("{:.2}%", summary.fail_ratio * 100.0),
        total_rps: format!("{:.2}", summary.total_rps),
        rows,
        percentile_labels: percentile_labels(),
        phase_rows: phase_rows(snap),
        failures: views::errors(snap),
        exceptions: views::exceptions(snap),
        workers: views::workers(snap),
        checks: snap.checks.iter().map(check_row).collect(),
        history,
        generated: stats::csv::utc_timestamp(crate::now_ms()),
        version: env!("CARGO_PKG_VERSION"),
        uplot_js: UPLOT_JS,
        uplot_css: UPLOT_CSS,
        report_js: REPORT_JS,
        report_css: REPORT_CSS,
    };
    Ok(env
        .get_template("report.html")?
        .render(Value::from(Serde(&ctx)))?)
}

/// As [`try_render_report`]; a rendering failure (a bug in the template)
/// becomes a plain-text explanation rather than a panic in a headless run.
pub fn render_report(
    master: &MasterHandle,
    snapshot: &Snapshot,
    history: &[HistoryPoint],
) -> String {
    render_report_autoscaled(master, snapshot, history, &[])
}

/// As [`render_report`], listing the autoscaler's decisions of the run.
pub fn render_report_autoscaled(
    master: &MasterHandle,
    snapshot: &Snapshot,
    history: &[HistoryPoint],
    autoscale: &[crate::autoscale::Event],
) -> String {
    try_render_report(master, snapshot, history, autoscale).unwrap_or_else(|e| {
        tracing::error!("{e}");
        e.to_string()
    })
}

/// "18:16:51 UTC scaled 3 → 5: …", with the scaler's refusal if any.
fn event_line(e: &crate::autoscale::Event) -> String {
    let time = readable_time(e.time_ms);
    match &e.error {
        None => format!("{time}: {}", e.message),
        Some(error) => format!("{time}: {} (refused: {error})", e.message),
    }
}

#[derive(Deserialize)]
pub struct ReportQuery {
    download: Option<String>,
}

/// `GET /stats/report[?download=1]`.
pub async fn report(State(app): State<Shared>, Query(q): Query<ReportQuery>) -> Response {
    let snap = app.master.snapshot();
    let events = app
        .config
        .autoscale
        .as_ref()
        .map_or_else(Vec::new, |a| a.events_of_run(snap.run_id));
    let html = render_report_autoscaled(&app.master, &snap, &app.master.history(), &events);
    let mut response = html.into_response();
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    if q.download
        .as_deref()
        .is_some_and(|d| !d.is_empty() && d != "0" && d != "false")
    {
        let name = format!(
            "attachment; filename=\"swarmer_report_{}.html\"",
            snap.now_ms / 1000
        );
        if let Ok(value) = HeaderValue::from_str(&name) {
            h.insert(header::CONTENT_DISPOSITION, value);
        }
    }
    response
}
