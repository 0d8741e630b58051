//! The script through the API: `GET /api/v1/script` (the current one,
//! with the recent changes) and `PUT /api/v1/script` (replace it).
//!
//! A new script is checked and loaded before anything changes
//! ([`crate::upload`]); its extensions are started next, then the master
//! takes it for the next run and the page's views, actions and routes
//! switch to the new extensions. A run going refuses the change (409):
//! a run never mixes two scripts. Every change is logged with who made it
//! and kept in a short in-memory list the Script tab shows.

use std::collections::VecDeque;
use std::sync::Mutex;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Extension, State};
use axum::handler::Handler;
use serde::Serialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::router::Routes;
use super::state::{Identity, Shared};
use crate::current_script::CurrentScript;
use crate::ext::Extensions;
use crate::upload::{self, UploadError};
use crate::{MasterError, RunState, now_ms};

/// Changes kept for the Script tab; older ones are only in the log.
const CHANGES_KEPT: usize = 20;

/// Every route of this area, below the base path.
pub fn routes(base: &str) -> Routes {
    Routes::new(base).get("/api/v1/script", current).put(
        "/api/v1/script",
        replace.layer(DefaultBodyLimit::max(upload::MAX_BODY_BYTES)),
    )
}

/// One accepted change of script.
#[derive(Debug, Clone, Serialize)]
pub struct ScriptChange {
    pub time_ms: u64,
    /// The authenticated user (or "token", or "anonymous") and address.
    pub who: String,
    pub name: String,
    pub hash: String,
}

/// The last [`CHANGES_KEPT`] changes, newest last, and the turn of the
/// change being made: two uploads at once must not end with one's script
/// and the other's extensions.
#[derive(Default)]
pub struct ChangeLog {
    list: Mutex<VecDeque<ScriptChange>>,
    turn: tokio::sync::Mutex<()>,
}

impl ChangeLog {
    fn push(&self, change: ScriptChange) {
        let mut list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        if list.len() == CHANGES_KEPT {
            list.pop_front();
        }
        list.push_back(change);
    }

    fn list(&self) -> Vec<ScriptChange> {
        let list = self.list.lock().unwrap_or_else(|p| p.into_inner());
        list.iter().cloned().collect()
    }
}

/// What the API says of a script.
fn describe(script: &CurrentScript) -> Value {
    let files: Vec<Value> = script
        .files
        .iter()
        .map(|f| json!({ "path": f.path, "bytes": f.bytes.len() }))
        .collect();
    let user_types: Vec<&str> = script
        .info
        .user_types
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    json!({
        "name": script.name(),
        "path": script.text.path,
        "hash": script.hash.to_string(),
        "user_types": user_types,
        "files": files,
        "text": script.text.code,
    })
}

/// `GET /api/v1/script`: the script of the next run and recent changes.
pub async fn current(State(app): State<Shared>) -> Json<Value> {
    let mut body = describe(&app.master.script());
    body["changes"] = json!(app.script_changes.list());
    body["limits"] = json!({
        "script_bytes": upload::MAX_SCRIPT_BYTES,
        "file_bytes": upload::MAX_FILE_BYTES,
        "total_bytes": upload::MAX_TOTAL_BYTES,
        "files": upload::MAX_FILES,
    });
    Json(body)
}

/// `PUT /api/v1/script` with `{"name", "text", "files"}`.
pub async fn replace(
    State(app): State<Shared>,
    identity: Option<Extension<Identity>>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let who = identity.map_or_else(|| "anonymous".to_string(), |i| i.0.describe());
    let turn = app.script_changes.turn.lock().await;
    let result = load_and_apply(&app, body).await;
    match &result {
        Ok(script) => {
            tracing::info!(
                "web: script {} ({}) set by {who}; the next run uses it",
                script.name(),
                script.hash
            );
            app.script_changes.push(ScriptChange {
                time_ms: now_ms(),
                who,
                name: script.name(),
                hash: script.hash.to_string(),
            });
        }
        Err(e) => tracing::warn!("web: script change by {who} refused: {e}"),
    }
    drop(turn);
    let script = result?;
    Ok(Json(json!({
        "success": true,
        "message": format!("Script {} loaded: the next run uses it", script.name()),
        "script": describe(&script),
    })))
}

/// Checks, loads and hands the script to the master; starts its
/// extensions. Nothing changes unless every step succeeds.
async fn load_and_apply(app: &Shared, body: Bytes) -> Result<CurrentScript, ApiError> {
    // Before the load: a run going would refuse it anyway.
    if busy(app.master.snapshot().state) {
        return Err(MasterError::RunActive.into());
    }
    let upload = upload::parse(&body)?;
    let script = tokio::task::spawn_blocking(move || upload::load(upload))
        .await
        .map_err(|e| UploadError::Load(format!("loading it failed: {e}")))??;
    let src = script::ScriptSource {
        path: script.text.path.clone(),
        code: script.text.code.clone(),
    };
    // Its extensions read the uploaded files too, never the master's disk.
    let files = crate::script_files::file_set(&script.files)
        .map_err(|e| UploadError::Load(e.to_string()))?;
    let ext_config = ::ext::ExtConfig {
        files: Some(files.into()),
        ..app.config.ext_config.clone()
    };
    let ext = Extensions::start(&src, ext_config, app.master.clone())
        .await
        .map_err(|e| UploadError::Load(e.to_string()))?;
    app.master.replace_script(script.clone()).await?;
    app.set_ext(ext);
    Ok(script)
}

fn busy(state: RunState) -> bool {
    state.is_active() || state == RunState::Stopping
}
