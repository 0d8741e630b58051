//! The run history over HTTP: `/api/v1/history` (this run's per-second
//! points, as before, and the recorded runs), one recorded run, and two
//! compared. Read-only; the store is `WebConfig::history` (None with
//! `--no-history`, when the list is empty and a run is not found).

use axum::Json;
use axum::extract::{Path, Query, State};
use history::Comparison;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::router::Routes;
use super::state::Shared;
use crate::HistoryPoint;

/// Every route of this area, below the base path.
pub fn routes(base: &str) -> Routes {
    Routes::new(base)
        .get("/api/v1/history", list)
        .get("/api/v1/history/compare", compare)
        .get("/api/v1/history/{id}", one)
}

#[derive(Deserialize)]
pub struct ListQuery {
    script: Option<String>,
    limit: Option<u32>,
}

/// The most runs one list returns.
const MAX_LIST: u32 = 1000;

/// The current run's points (what the charts load first) and the recorded
/// runs, newest first.
pub async fn list(
    State(app): State<Shared>,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let points: Vec<HistoryPoint> = app.master.history();
    let limit = q.limit.unwrap_or(50).clamp(1, MAX_LIST);
    let runs = match &app.config.history {
        Some(store) => store
            .list(q.script.as_deref().filter(|s| !s.is_empty()), limit)
            .await
            .map_err(unavailable)?,
        None => Vec::new(),
    };
    Ok(Json(json!({
        "run_id": app.master.snapshot().run_id,
        "points": points,
        "recording": app.config.history.is_some(),
        "runs": runs,
    })))
}

/// One recorded run with its entries, checks and per-second history.
pub async fn one(
    State(app): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = parse_id("id", &id)?;
    let run = find(&app, id).await?;
    Ok(Json(serde_json::to_value(run).unwrap_or(Value::Null)))
}

#[derive(Deserialize)]
pub struct CompareQuery {
    a: Option<String>,
    b: Option<String>,
}

/// Two recorded runs side by side: per-entry deltas, B against A.
pub async fn compare(
    State(app): State<Shared>,
    Query(q): Query<CompareQuery>,
) -> Result<Json<Value>, ApiError> {
    let a = parse_id("a", q.a.as_deref().unwrap_or(""))?;
    let b = parse_id("b", q.b.as_deref().unwrap_or(""))?;
    let (a, b) = (find(&app, a).await?, find(&app, b).await?);
    let comparison = Comparison::new(&a, &b);
    Ok(Json(
        serde_json::to_value(comparison).unwrap_or(Value::Null),
    ))
}

fn parse_id(field: &'static str, text: &str) -> Result<i64, ApiError> {
    text.trim()
        .parse()
        .map_err(|_| ApiError::field(field, format!("expected a run id, got {text:?}")))
}

async fn find(app: &Shared, id: i64) -> Result<history::RunRecord, ApiError> {
    let Some(store) = &app.config.history else {
        return Err(ApiError::NotFound(format!(
            "run {id}: the run history is off (--no-history)"
        )));
    };
    store
        .get(id)
        .await
        .map_err(unavailable)?
        .ok_or_else(|| ApiError::NotFound(format!("run {id} is not in the history")))
}

fn unavailable(e: history::HistoryError) -> ApiError {
    ApiError::History(e.to_string())
}
