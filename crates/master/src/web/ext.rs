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
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use ext::{ExtError, ViewData};
use serde_json::{Value, json};

use super::api::TabInfo;
use super::state::{Identity, Shared};

/// Tab ids of views: prefixed, so a view named "charts" is not the Charts tab.
pub const VIEW_TAB_PREFIX: &str = "ext-";
/// The tab of actions that name no view.
pub const ACTIONS_TAB: &str = "ext-actions";

/// An extension call that gave no result, as an HTTP answer.
pub struct ExtReply(ExtError);

impl From<ExtError> for ExtReply {
    fn from(e: ExtError) -> Self {
        ExtReply(e)
    }
}

impl IntoResponse for ExtReply {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            ExtError::NotFound { .. } => StatusCode::NOT_FOUND,
            ExtError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ExtError::Script(_) | ExtError::Timeout(_) => StatusCode::INTERNAL_SERVER_ERROR,
            ExtError::Gone | ExtError::Busy(_) | ExtError::Cancelled => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        let mut body = json!({ "success": false, "message": self.0.to_string() });
        if let ExtError::Invalid { field, .. } = &self.0 {
            body["field"] = json!(field);
        }
        (status, Json(body)).into_response()
    }
}

fn none_declared(kind: &'static str, id: &str) -> ExtReply {
    ExtReply(ExtError::NotFound {
        kind,
        id: id.to_string(),
    })
}

/// The built-in tabs, then one per script view, then Actions when some
/// action names no view.
pub fn tabs(app: &Shared) -> Vec<TabInfo> {
    let mut tabs = super::api::builtin_tabs();
    let Some(ext) = &app.config.ext else {
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
    match &app.config.ext {
        Some(ext) => Json(json!(ext.catalog())),
        None => Json(json!({ "views": [], "actions": [], "routes": [], "hooks": [] })),
    }
}

/// `GET /api/v1/ext/views/{id}`: the view rendered from the live state.
pub async fn view(
    State(app): State<Shared>,
    Path(id): Path<String>,
) -> Result<Json<ViewData>, ExtReply> {
    let ext = app
        .config
        .ext
        .as_ref()
        .ok_or_else(|| none_declared("view", &id))?;
    Ok(Json(ext.render(&id).await?))
}

/// `POST /api/v1/ext/actions/{id}` with the arguments as a JSON object.
pub async fn action(
    State(app): State<Shared>,
    identity: Option<Extension<Identity>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ExtReply> {
    let ext = app
        .config
        .ext
        .as_ref()
        .ok_or_else(|| none_declared("action", &id))?;
    let args: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ExtReply(ExtError::Invalid {
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
pub async fn route(State(app): State<Shared>, uri: Uri) -> Result<Json<Value>, ExtReply> {
    let prefix = app.url("/api/v1/ext");
    let path = uri.path().strip_prefix(&prefix).unwrap_or(uri.path());
    let ext = app
        .config
        .ext
        .as_ref()
        .ok_or_else(|| none_declared("route", path))?;
    let query: Vec<(String, String)> = uri
        .query()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    Ok(Json(ext.route(path, query).await?))
}
