//! The self-contained HTML report: `/stats/report` and the binary's
//! `--html FILE`.
//!
//! One file with the tables, the charts and the chart library inlined, so it
//! opens offline years later. Rendered by minijinja with HTML auto-escaping
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
use crate::{HistoryPoint, Snapshot};

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
        method: e.method.clone(),
        name: e.name.clone(),
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

/// Everything the template reads; names match `report.html`.
#[derive(Serialize)]
struct ReportContext<'a> {
    host: String,
    state: &'static str,
    started: Option<String>,
    ended: String,
    duration: Option<String>,
    target_users: u32,
    user_count: u32,
    worker_count: usize,
    lost_workers: u32,
    num_requests: u64,
    num_failures: u64,
    fail_ratio: String,
    total_rps: String,
    rows: Vec<Row>,
    percentile_labels: Vec<String>,
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

/// The report as one HTML document.
pub fn try_render_report(
    snapshot: &Snapshot,
    history: &[HistoryPoint],
) -> Result<String, ReportError> {
    let mut env = Environment::new();
    env.add_template("report.html", TEMPLATE)?;
    let snap = snapshot;
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
        target_users: snap.target_users,
        user_count: snap.user_count,
        worker_count: snap.worker_count,
        lost_workers: snap.lost_workers,
        num_requests: summary.num_requests,
        num_failures: summary.num_failures,
        fail_ratio: format!("{:.2}%", summary.fail_ratio * 100.0),
        total_rps: format!("{:.2}", summary.total_rps),
        rows,
        percentile_labels: percentile_labels(),
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
pub fn render_report(snapshot: &Snapshot, history: &[HistoryPoint]) -> String {
    try_render_report(snapshot, history).unwrap_or_else(|e| {
        tracing::error!("{e}");
        e.to_string()
    })
}

#[derive(Deserialize)]
pub struct ReportQuery {
    download: Option<String>,
}

/// `GET /stats/report[?download=1]`.
pub async fn report(State(app): State<Shared>, Query(q): Query<ReportQuery>) -> Response {
    let snap = app.master.snapshot();
    let html = render_report(&snap, &app.master.history());
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
