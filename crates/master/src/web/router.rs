//! The route table: every path the web server answers, under the base path,
//! with authentication around all of it but `/healthz` and the cross-site
//! check around the control routes.

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use super::state::{AppState, Shared};
use super::{WebConfig, api, assets, events, locust, metrics, openapi, report, scale, security};
use crate::MasterHandle;

/// Every (method, path) served below the base path, for the OpenAPI
/// document's test and for anyone wondering what exists. The UI's own files
/// (`/` and `/static/...`) are listed too but are not part of the API.
pub const ROUTES: &[(&str, &str)] = &[
    ("GET", "/"),
    ("GET", "/static/{path}"),
    ("GET", "/healthz"),
    ("GET", "/metrics"),
    ("POST", "/swarm"),
    ("POST", "/stop"),
    ("GET", "/stop"),
    ("POST", "/stats/reset"),
    ("GET", "/stats/reset"),
    ("GET", "/stats/requests"),
    ("GET", "/stats/requests/csv"),
    ("GET", "/stats/failures/csv"),
    ("GET", "/exceptions"),
    ("GET", "/exceptions/csv"),
    ("GET", "/stats/report"),
    ("GET", "/tasks"),
    ("GET", "/logs"),
    ("GET", "/worker-count"),
    ("POST", "/rescale"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/ui"),
    ("GET", "/api/v1/state"),
    ("GET", "/api/v1/stats"),
    ("GET", "/api/v1/history"),
    ("GET", "/api/v1/failures"),
    ("GET", "/api/v1/exceptions"),
    ("GET", "/api/v1/workers"),
    ("GET", "/api/v1/logs"),
    ("GET", "/api/v1/events"),
    ("POST", "/api/v1/run"),
    ("POST", "/api/v1/run/stop"),
    ("POST", "/api/v1/stats/reset"),
    ("GET", "/api/v1/workers/scale"),
    ("PUT", "/api/v1/workers/scale"),
];

/// The whole web server as a router, for tests (`tower::ServiceExt::oneshot`)
/// and for [`super::run`]. Live-update streams end with the master.
pub fn router(master: MasterHandle, config: WebConfig) -> Router {
    build(master, config, CancellationToken::new())
}

pub fn build(master: MasterHandle, config: WebConfig, shutdown: CancellationToken) -> Router {
    let app: Shared = Arc::new(AppState::new(master, config, shutdown));
    let inner = routes()
        .route_layer(from_fn_with_state(app.clone(), security::csrf_guard))
        .fallback(not_found);
    let base = app.base.clone();
    let outer = if base.is_empty() {
        inner
    } else {
        Router::new()
            .route("/healthz", get(healthz))
            .route(&base, get(assets::to_index))
            .nest(&base, inner)
            .fallback(not_found)
    };
    outer
        .layer(from_fn_with_state(app.clone(), security::authenticate))
        .with_state(app)
}

fn routes() -> Router<Shared> {
    Router::new()
        .route("/", get(assets::index))
        .route("/static/{*path}", get(assets::static_file))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/swarm", post(locust::swarm))
        .route("/stop", get(locust::stop).post(locust::stop))
        .route("/stats/reset", get(locust::reset).post(locust::reset))
        .route("/stats/requests", get(locust::stats_requests))
        .route("/stats/requests/csv", get(locust::requests_csv))
        .route("/stats/failures/csv", get(locust::failures_csv))
        .route("/exceptions", get(locust::exceptions))
        .route("/exceptions/csv", get(locust::exceptions_csv))
        .route("/stats/report", get(report::report))
        .route("/tasks", get(locust::tasks))
        .route("/logs", get(locust::logs))
        .route("/worker-count", get(locust::worker_count))
        .route("/rescale", post(scale::rescale_form))
        .route("/api/v1/openapi.json", get(openapi::document))
        .route("/api/v1/ui", get(api::ui))
        .route("/api/v1/state", get(api::state))
        .route("/api/v1/stats", get(api::stats))
        .route("/api/v1/history", get(api::history))
        .route("/api/v1/failures", get(api::failures))
        .route("/api/v1/exceptions", get(api::exceptions))
        .route("/api/v1/workers", get(api::workers))
        .route("/api/v1/logs", get(api::logs))
        .route("/api/v1/events", get(events::events))
        .route("/api/v1/run", post(api::start))
        .route("/api/v1/run/stop", post(api::stop))
        .route("/api/v1/stats/reset", post(api::reset))
        .route(
            "/api/v1/workers/scale",
            get(scale::get_scale).put(scale::put_scale),
        )
}

async fn healthz() -> &'static str {
    "ok"
}

async fn not_found(uri: axum::http::Uri) -> super::error::ApiError {
    super::error::ApiError::NotFound(uri.path().to_string())
}
