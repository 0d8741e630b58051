//! The extension API under `/api/v1/ext`: the list of what the script
//! declares, rendered views, actions (control requests: authenticated and
//! cross-site checked like starting a run, and logged with who asked) and
//! the script's own JSON routes; plus the tabs the UI adds for views.
//!
//! A script error never becomes a broken page or a dead server: it is
//! answered as `{"success": false, "message": "file:line: ..."}` with a
//! status saying whose fault it was (422: the arguments; 500: the script),
//! and the UI shows the message where the view or result would be.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Extension, Path, State};
use axum::http::Uri;
use serde_json::{Value, json};

use super::api::TabInfo;
use super::error::ApiError;
use super::router::Routes;
use super::state::{Identity, Shared};
use crate::ext::{ExtError, ViewData};

/// Tab ids of views: prefixed, so a view named "charts" is not the Charts tab.
pub const VIEW_TAB_PREFIX: &str = "ext-";
/// The tab of actions that name no view.
pub const ACTIONS_TAB: &str = "ext-actions";

/// Every route of this area, below the base path.
pub fn routes(base: &str) -> Routes {
    Routes::new(base)
        .get("/api/v1/ext", list)
        .get("/api/v1/ext/views/{id}", view)
        .post("/api/v1/ext/actions/{id}", action)
        .get("/api/v1/ext/{*path}", route)
}

fn none_declared(kind: &'static str, id: &str) -> ApiError {
    ApiError::Ext(ExtError::NotFound {
        kind,
        id: id.to_string(),
    })
}

/// The built-in tabs, then one per script view, then Actions when some
/// action names no view.
pub fn tabs(app: &Shared) -> Vec<TabInfo> {
    let mut tabs = super::api::builtin_tabs();
    let Some(ext) = app.ext() else {
        return tabs;
    };
    let catalog = ext.catalog();
    for v in &catalog.views {
        tabs.push(TabInfo {
            id: format!("{VIEW_TAB_PREFIX}{}", v.id),
            title: v.title.clone(),
            kind: "ext-view",
        });
    }
    if catalog.actions.iter().any(|a| a.view.is_none()) {
        tabs.push(TabInfo {
            id: ACTIONS_TAB.to_string(),
            title: "Actions".to_string(),
            kind: "ext-actions",
        });
    }
    tabs
}

/// `GET /api/v1/ext`: views, actions (with their fields), routes, hooks.
pub async fn list(State(app): State<Shared>) -> Json<Value> {
    match app.ext() {
        Some(ext) => Json(json!(ext.catalog())),
        None => Json(json!({ "views": [], "actions": [], "routes": [], "hooks": [] })),
    }
}

/// `GET /api/v1/ext/views/{id}`: the view rendered from the live state.
pub async fn view(
    State(app): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<ViewData>, ApiError> {
    let ext = app.ext().ok_or_else(|| none_declared("view", &id))?;
    Ok(Json(ext.render(&id).await?))
}

/// `POST /api/v1/ext/actions/{id}` with the arguments as a JSON object.
pub async fn action(
    State(app): State<Shared>,
    identity: Option<Extension<Identity>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let ext = app.ext().ok_or_else(|| none_declared("action", &id))?;
    let args: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::Ext(ExtError::Invalid {
                field: "body".into(),
                problem: format!("must be a JSON object of the action's fields ({e})"),
            })
        })?
    };
    let who = identity.map(|i| i.0.describe()).unwrap_or_default();
    tracing::info!("web: action {id} requested by {who} with {args}");
    let result = ext.act(&id, args).await;
    match &result {
        Ok(done) if done.success => tracing::info!("web: action {id}: {}", done.message),
        Ok(done) => tracing::warn!("web: action {id} failed: {}", done.message),
        Err(e) => tracing::warn!("web: action {id}: {e}"),
    }
    let done = result?;
    Ok(Json(json!({
        "success": done.success,
        "message": done.message,
        "data": done.data,
    })))
}

/// `GET /api/v1/ext/{*path}`: a script route, answered with its JSON.
pub async fn route(State(app): State<Shared>, uri: Uri) -> Result<Json<Value>, ApiError> {
    let prefix = app.url("/api/v1/ext");
    let path = uri.path().strip_prefix(&prefix).unwrap_or(uri.path());
    let ext = app.ext().ok_or_else(|| none_declared("route", path))?;
    let query: Vec<(String, String)> = uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    Ok(Json(ext.route(path, query).await?))
}
