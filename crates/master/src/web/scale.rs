//! Rescaling workers from the UI and the API, through whichever [`Scaler`]
//! the binary configured.
//!
//! The count is validated here (a whole number from 0 to `max_workers`)
//! before the scaler is called, so a bad value never reaches the cluster.
//! Every scale action is logged with from, to and who asked, and pauses
//! `--autoscale` until the next run.

use axum::Extension;
use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use super::error::ApiError;
use super::forms;
use super::router::Routes;
use super::state::{Identity, Shared};
use crate::scale::ScaleError;

/// Every route of this area, below the base path: the UI's form and the
/// API's resource.
pub fn routes(base: &str) -> Routes {
    Routes::new(base)
        .post("/rescale", rescale_form)
        .get("/api/v1/workers/scale", get_scale)
        .put("/api/v1/workers/scale", put_scale)
}

#[derive(Debug, Serialize)]
pub struct ScaleJson {
    /// Workers asked for; `None` without a scaler.
    pub desired: Option<u32>,
    /// Live workers connected to this master.
    pub connected: usize,
    /// Workers the backend reports ready (e.g. pods ready), when it knows.
    pub ready: Option<u32>,
    /// "kubernetes", "local", or `None` when scaling is not configured.
    pub scaler: Option<&'static str>,
    pub max_workers: u32,
    /// Something to show beside the counts (an HPA that also scales, or
    /// why the scaler's status could not be read).
    pub warning: Option<String>,
    /// `--autoscale`: its range, whether it is paused, and its decisions.
    pub autoscale: Option<crate::autoscale::View>,
}

pub async fn get_scale(State(app): State<Shared>) -> Json<ScaleJson> {
    let connected = app.master.snapshot().worker_count;
    let mut out = ScaleJson {
        desired: None,
        connected,
        ready: None,
        scaler: None,
        max_workers: app.config.max_workers,
        warning: None,
        autoscale: app.config.autoscale.as_ref().map(|a| a.view()),
    };
    if let Some(scaler) = &app.config.scaler {
        out.scaler = Some(scaler.name());
        match scaler.status().await {
            Ok(status) => {
                out.desired = Some(status.desired);
                out.ready = status.ready;
                out.warning = status.warning;
            }
            // The page still shows what the master knows; the warning says
            // why the rest is missing.
            Err(e) => out.warning = Some(format!("cannot read the scaler's status: {e}")),
        }
    }
    Json(out)
}

pub async fn put_scale(
    State(app): State<Shared>,
    identity: Option<Extension<Identity>>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let workers = validated(&app, |max| forms::workers_from_json(&body, max))?;
    let who = identity.map(|Extension(i)| i).unwrap_or_default();
    scale_to(&app, workers, &who).await?;
    Ok(Json(json!({
        "success": true,
        "message": format!("Scaling to {workers} workers"),
        "desired": workers,
    })))
}

/// The Locust extension's `POST /rescale`: same action, then back to the UI.
pub async fn rescale_form(
    State(app): State<Shared>,
    identity: Option<Extension<Identity>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let workers = validated(&app, |max| forms::workers_from_form(&body, max))?;
    let who = identity.map(|Extension(i)| i).unwrap_or_default();
    scale_to(&app, workers, &who).await?;
    let mut response = StatusCode::SEE_OTHER.into_response();
    let location = app.url("/#workers");
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

fn validated(
    app: &Shared,
    parse: impl FnOnce(u32) -> Result<u32, ApiError>,
) -> Result<u32, ApiError> {
    if app.config.scaler.is_none() {
        return Err(ApiError::NoScaler);
    }
    parse(app.config.max_workers)
}

async fn scale_to(app: &Shared, workers: u32, who: &Identity) -> Result<(), ApiError> {
    let Some(scaler) = &app.config.scaler else {
        return Err(ApiError::NoScaler);
    };
    let from = match scaler.status().await {
        Ok(status) => status.desired.to_string(),
        Err(_) => format!("{} connected", app.master.snapshot().worker_count),
    };
    let by = who.describe();
    tracing::info!(target: "swarmer::scale", %from, to = workers, %by, "scaling workers");
    scaler.scale(workers).await.map_err(|e: ScaleError| {
        tracing::warn!(target: "swarmer::scale", "scaling to {workers} failed: {e}");
        ApiError::Scale(e)
    })?;
    // A person chose this count: the autoscaler must not undo it.
    if let Some(autoscale) = &app.config.autoscale {
        autoscale.pause(workers, &by, app.master.snapshot().run_id);
    }
    Ok(())
}
