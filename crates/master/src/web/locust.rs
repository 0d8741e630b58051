//! Locust's routes with Locust's field names, so existing CI scripts,
//! Prometheus exporters and KEDA triggers work unchanged. Where Locust
//! answers an error with HTTP 200, these answer 400/409 with the same body.

use std::collections::BTreeMap;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::forms::{self, FORM_NAMES};
use super::router::Routes;
use super::state::Shared;
use crate::snapshot::views::{self, EntryJson, ErrorJson};
use crate::{MasterError, WorkerView, now_ms};

/// Every route of this area, below the base path. `/stop` and
/// `/stats/reset` also answer GET, as older Locust scripts call them.
pub fn routes(base: &str) -> Routes {
    Routes::new(base)
        .post("/swarm", swarm)
        .get("/stop", stop)
        .post("/stop", stop)
        .get("/stats/reset", reset)
        .post("/stats/reset", reset)
        .get("/stats/requests", stats_requests)
        .get("/stats/requests/csv", requests_csv)
        .get("/stats/failures/csv", failures_csv)
        .get(
            "/stats/requests_full_history/csv",
            super::full_history::csv_route,
        )
        .get("/exceptions", exceptions)
        .get("/exceptions/csv", exceptions_csv)
        .get("/stats/report", super::report::report)
        .get("/tasks", tasks)
        .get("/logs", logs)
        .get("/worker-count", worker_count)
}

pub async fn swarm(State(app): State<Shared>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let fields = forms::run_fields_from_form(&body);
    let request = forms::run_request(
        &fields,
        &app.master.script_info(),
        FORM_NAMES,
        app.master.max_users(),
    )?;
    let host = request
        .host
        .clone()
        .or_else(|| app.master.snapshot().host.clone());
    tracing::info!(
        "web: start/retune requested: {} users at {}/s",
        request.users,
        request.spawn_rate
    );
    app.master.start_run(request).await?;
    Ok(Json(
        json!({ "success": true, "message": "Swarming started", "host": host }),
    ))
}

pub async fn stop(State(app): State<Shared>) -> Result<Json<Value>, ApiError> {
    match app.master.stop_run().await {
        Ok(()) => Ok(Json(json!({ "success": true, "message": "Test stopped" }))),
        // Stopping what is not running is what the caller wanted anyway;
        // CI scripts call /stop unconditionally at the end.
        Err(MasterError::NotRunning) => Ok(Json(
            json!({ "success": true, "message": "No test is running" }),
        )),
        Err(e) => Err(e.into()),
    }
}

pub async fn reset(State(app): State<Shared>) -> Result<&'static str, ApiError> {
    app.master.reset_stats().await?;
    Ok("ok")
}

#[derive(Serialize)]
struct ErrorRow {
    method: String,
    name: String,
    error: String,
    occurrences: u64,
}

impl From<ErrorJson> for ErrorRow {
    fn from(e: ErrorJson) -> Self {
        Self {
            method: e.method,
            name: e.name,
            error: e.error,
            occurrences: e.occurrences,
        }
    }
}

#[derive(Serialize)]
struct StatsRequests {
    stats: Vec<EntryJson>,
    errors: Vec<ErrorRow>,
    total_rps: f64,
    total_fail_per_sec: f64,
    fail_ratio: f64,
    current_rps: f64,
    current_fail_per_sec: f64,
    current_response_time_percentiles: BTreeMap<&'static str, Option<f64>>,
    state: &'static str,
    user_count: u32,
    workers: Vec<WorkerView>,
    worker_count: usize,
    /// Not Locust's: workers lost during this run, whose last unreported
    /// second is missing from the figures.
    lost_workers: u32,
    host: Option<String>,
    /// Not Locust's: the thresholds judged now (see `verdict::Check`).
    thresholds: Vec<verdict::Check>,
}

pub async fn stats_requests(State(app): State<Shared>) -> Json<impl Serialize> {
    let snap = app.master.snapshot();
    let stats = views::stats_rows(&snap);
    let total = stats
        .last()
        .cloned()
        .unwrap_or_else(|| views::entry_json(snap.stats.total(), &snap));
    let mut percentiles = BTreeMap::new();
    for (key, q) in [
        ("response_time_percentile_0.5", 0.5),
        ("response_time_percentile_0.95", 0.95),
    ] {
        percentiles.insert(
            key,
            snap.stats
                .current_response_time_percentile_ms(q, snap.now_ms),
        );
    }
    Json(StatsRequests {
        errors: views::errors(&snap)
            .into_iter()
            .map(ErrorRow::from)
            .collect(),
        total_rps: total.total_rps,
        total_fail_per_sec: total.total_fail_per_sec,
        fail_ratio: snap.stats.fail_ratio(),
        current_rps: total.current_rps,
        current_fail_per_sec: total.current_fail_per_sec,
        current_response_time_percentiles: percentiles,
        state: snap.state.as_str(),
        user_count: snap.user_count,
        workers: views::workers(&snap),
        worker_count: snap.worker_count,
        lost_workers: snap.lost_workers,
        host: snap.host.clone(),
        thresholds: snap.checks.clone(),
        stats,
    })
}

/// A CSV attachment named as Locust names its downloads.
fn csv(kind: &str, body: String) -> Response {
    let disposition = format!("attachment; filename=\"{kind}_{}.csv\"", now_ms() / 1000);
    let mut response = body.into_response();
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

pub async fn requests_csv(State(app): State<Shared>) -> Response {
    let snap = app.master.snapshot();
    csv("requests", stats::csv::stats_csv(&snap.stats, snap.now_ms))
}

pub async fn failures_csv(State(app): State<Shared>) -> Response {
    csv(
        "failures",
        stats::csv::failures_csv(&app.master.snapshot().stats),
    )
}

pub async fn exceptions_csv(State(app): State<Shared>) -> Response {
    csv(
        "exceptions",
        stats::csv::exceptions_csv(&app.master.snapshot().stats),
    )
}

pub async fn exceptions(State(app): State<Shared>) -> Json<Value> {
    Json(json!({ "exceptions": views::exceptions(&app.master.snapshot()) }))
}

pub async fn worker_count(State(app): State<Shared>) -> Json<Value> {
    Json(json!({ "worker_count": app.master.snapshot().worker_count }))
}

pub async fn logs(State(app): State<Shared>) -> Json<Value> {
    let lines: Vec<String> = match &app.config.logs {
        Some(buffer) => buffer
            .since(0, usize::MAX)
            .iter()
            .map(|l| l.to_text())
            .collect(),
        None => Vec::new(),
    };
    Json(json!({ "master": lines, "workers": {} }))
}

/// Locust's `/tasks`: each user type's share of users and each task's share
/// of its type's picks, from the weights in the script.
pub async fn tasks(State(app): State<Shared>) -> Json<Value> {
    let info = app.master.script_info();
    let type_total: f64 = info.user_types.iter().map(|t| f64::from(t.weight)).sum();
    let mut per_class = serde_json::Map::new();
    let mut total = serde_json::Map::new();
    for t in &info.user_types {
        let class_ratio = ratio(f64::from(t.weight), type_total);
        let task_total: f64 = t.tasks.iter().map(|k| f64::from(k.weight)).sum();
        let mut tasks = serde_json::Map::new();
        let mut total_tasks = serde_json::Map::new();
        for task in &t.tasks {
            let r = ratio(f64::from(task.weight), task_total);
            tasks.insert(task.name.clone(), json!({ "ratio": r, "tasks": {} }));
            total_tasks.insert(
                task.name.clone(),
                json!({ "ratio": r * class_ratio, "tasks": {} }),
            );
        }
        per_class.insert(
            t.name.clone(),
            json!({ "ratio": class_ratio, "tasks": tasks }),
        );
        total.insert(
            t.name.clone(),
            json!({ "ratio": class_ratio, "tasks": total_tasks }),
        );
    }
    Json(json!({ "per_class": per_class, "total": total }))
}

fn ratio(part: f64, whole: f64) -> f64 {
    if whole > 0.0 { part / whole } else { 0.0 }
}
