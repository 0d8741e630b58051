//! The JSON API under `/api/v1/`: everything the UI reads and does, in one
//! documented place (see `openapi.json`), so scripts can do what the UI does.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::error::ApiError;
use super::forms::{self, JSON_NAMES};
use super::router::Routes;
use super::state::Shared;
use crate::snapshot::views::{self, Summary};

/// Every route of this area, below the base path.
pub fn routes(base: &str) -> Routes {
    Routes::new(base)
        .get("/api/v1/openapi.json", super::openapi::document)
        .get("/api/v1/ui", ui)
        .get("/api/v1/state", state)
        .get("/api/v1/stats", stats)
        .get("/api/v1/failures", failures)
        .get("/api/v1/exceptions", exceptions)
        .get("/api/v1/workers", workers)
        .get("/api/v1/logs", logs)
        .get("/api/v1/events", super::events::events)
        .post("/api/v1/run", start)
        .post("/api/v1/run/stop", stop)
        .post("/api/v1/stats/reset", reset)
}

/// One tab of the UI. The list is data so that script-defined views can be
/// appended later without the page knowing them in advance.
#[derive(Debug, Clone, Serialize)]
pub struct TabInfo {
    pub id: String,
    pub title: String,
    /// "builtin": rendered by the page's own code for `id`.
    pub kind: &'static str,
}

pub fn builtin_tabs() -> Vec<TabInfo> {
    [
        ("statistics", "Statistics"),
        ("charts", "Charts"),
        ("phases", "Phases"),
        ("failures", "Failures"),
        ("exceptions", "Exceptions"),
        ("ratio", "Current ratio"),
        ("workers", "Workers"),
        ("logs", "Logs"),
        ("script", "Script"),
        ("history", "History"),
        ("downloads", "Downloads"),
    ]
    .into_iter()
    .map(|(id, title)| TabInfo {
        id: id.to_string(),
        title: title.to_string(),
        kind: "builtin",
    })
    .collect()
}

#[derive(Serialize)]
struct UserTypeJson<'a> {
    name: &'a str,
    weight: u32,
    fixed_count: Option<u32>,
    host: Option<&'a str>,
}

/// What the page needs once at load: tabs, the CSRF token, form defaults.
pub async fn ui(State(app): State<Shared>) -> Json<Value> {
    let info = app.master.script_info();
    let user_types: Vec<UserTypeJson> = info
        .user_types
        .iter()
        .map(|t| UserTypeJson {
            name: &t.name,
            weight: t.weight,
            fixed_count: t.fixed_count,
            host: t.host.as_deref(),
        })
        .collect();
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "base_path": app.base,
        "csrf_token": app.csrf_token,
        "auth": app.config.auth.is_some() || app.config.token.is_some(),
        "tabs": super::ext::tabs(&app),
        "user_types": user_types,
        "default_host": app.master.snapshot().host,
        "scaler": app.config.scaler.as_ref().map(|s| s.name()),
        "max_workers": app.config.max_workers,
        "logs": app.config.logs.is_some(),
        // Whether `/stats/requests_full_history/csv` has rows (--csv-full-history).
        "full_history": app.config.full_history,
        // The run form offers the script's shape: "stages", "function" or null.
        "shape": match app.master.script_info().shape {
            Some(script::declare::shape::ShapeInfo::Stages { .. }) => Some("stages"),
            Some(script::declare::shape::ShapeInfo::Function) => Some("function"),
            None => None,
        },
    }))
}

#[derive(Serialize)]
pub struct StateJson {
    #[serde(flatten)]
    pub summary: Summary,
    pub users_by_type: std::collections::BTreeMap<String, u32>,
    pub user_types: Vec<String>,
    /// The load profile the run follows (stage, time left, planned users).
    pub profile: Option<crate::ProfileView>,
}

pub async fn state(State(app): State<Shared>) -> Json<StateJson> {
    let snap = app.master.snapshot();
    Json(StateJson {
        summary: views::summary(&snap),
        users_by_type: snap.users_by_type.clone(),
        user_types: snap.user_types.clone(),
        profile: snap.profile.clone(),
    })
}

pub async fn stats(State(app): State<Shared>) -> Json<Value> {
    let snap = app.master.snapshot();
    Json(json!({
        "stats": views::stats_rows(&snap),
        "now_ms": snap.now_ms,
        "thresholds": snap.checks,
    }))
}

pub async fn failures(State(app): State<Shared>) -> Json<Value> {
    Json(json!({ "failures": views::errors(&app.master.snapshot()) }))
}

pub async fn exceptions(State(app): State<Shared>) -> Json<Value> {
    Json(json!({ "exceptions": views::exceptions(&app.master.snapshot()) }))
}

pub async fn workers(State(app): State<Shared>) -> Json<Value> {
    let snap = app.master.snapshot();
    Json(json!({
        "workers": views::workers(&snap),
        "worker_count": snap.worker_count,
        "lost_workers": snap.lost_workers,
    }))
}

#[derive(Deserialize)]
pub struct LogQuery {
    #[serde(default)]
    after: u64,
    limit: Option<usize>,
}

pub async fn logs(State(app): State<Shared>, Query(q): Query<LogQuery>) -> Json<Value> {
    let limit = q.limit.unwrap_or(500).min(5000);
    let lines = app
        .config
        .logs
        .as_ref()
        .map(|b| b.since(q.after, limit))
        .unwrap_or_default();
    let last_seq = lines.last().map_or(q.after, |l| l.seq);
    Json(json!({ "enabled": app.config.logs.is_some(), "lines": lines, "last_seq": last_seq }))
}

pub async fn start(State(app): State<Shared>, body: Bytes) -> Result<Json<Value>, ApiError> {
    let mut fields = forms::run_fields_from_json(&body)?;
    let snap = app.master.snapshot();
    let retune = snap.state.is_active();
    if retune && !fields.user_types_given {
        // Changing users or spawn rate keeps the run's user types; the
        // master reads an empty list as "all types".
        fields.user_classes = running_types(&snap);
    }
    let request = forms::run_request(
        &fields,
        &app.master.script_info(),
        JSON_NAMES,
        app.master.max_users(),
    )?;
    tracing::info!(
        "web: {} requested: {} users at {}/s",
        if retune { "retune" } else { "start" },
        request.users,
        request.spawn_rate
    );
    crate::ext::start_run(&app.master, app.ext().as_ref(), request).await?;
    let message = if retune {
        "Run updated"
    } else {
        "Swarming started"
    };
    Ok(Json(json!({ "success": true, "message": message })))
}

/// The running test's user types (the workers' plans list every chosen
/// type, even with 0 users), or none (= all) when it runs every type.
fn running_types(snap: &crate::Snapshot) -> Vec<String> {
    let running: Vec<String> = snap.users_by_type.keys().cloned().collect();
    if running.len() == snap.user_types.len() {
        Vec::new()
    } else {
        running
    }
}

pub async fn stop(State(app): State<Shared>) -> Result<Json<Value>, ApiError> {
    // Unlike Locust's /stop, the API says when nothing was running (409).
    app.master.stop_run().await?;
    Ok(Json(json!({ "success": true, "message": "Test stopped" })))
}

pub async fn reset(State(app): State<Shared>) -> Result<Json<Value>, ApiError> {
    app.master.reset_stats().await?;
    Ok(Json(
        json!({ "success": true, "message": "Statistics reset" }),
    ))
}
