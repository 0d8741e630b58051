//! The route table: every path the web server answers, under the base path,
//! with authentication around all of it but `/healthz` and the cross-site
//! check around the control routes.

use axum::Router;
use axum::middleware::from_fn_with_state;
use axum::routing::{get, post};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use super::state::{AppState, Shared};
use super::{
    WebConfig, api, assets, events, ext, locust, metrics, openapi, report, scale, security,
};
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
    ("GET", "/api/v1/ext"),
    ("GET", "/api/v1/ext/views/{id}"),
    ("POST", "/api/v1/ext/actions/{id}"),
    ("GET", "/api/v1/ext/{path}"),
];

/// The whole web server as a router, for tests (`tower::ServiceExt::oneshot`)
/// and for [`super::run`]. Live-update streams end with the master.
pub fn router(master: MasterHandle, config: WebConfig) -> Router {
    build(master, config, CancellationToken::new())
}

pub fn build(master: MasterHandle, config: WebConfig, shutdown: CancellationToken) -> Router {
    let app: Shared = Arc::new(AppState::new(master, config, shutdown));
    let base = app.base.clone();
    let mut router = routes(&base);
    if !base.is_empty() {
        // Ingress probes often know only the root.
        router = router
            .route("/healthz", get(healthz))
            .route(&base, get(assets::to_index));
    }
    router
        .route_layer(from_fn_with_state(app.clone(), security::csrf_guard))
        .fallback(not_found)
        .layer(from_fn_with_state(app.clone(), security::authenticate))
        .with_state(app)
}

/// The routes with the base path in front. Not `Router::nest`: a nested
/// "/" would also answer the base without its slash, and the page's
/// relative links need the slash.
fn routes(base: &str) -> Router<Shared> {
    let at = |path: &str| format!("{base}{path}");
    Router::new()
        .route(&at("/"), get(assets::index))
        .route(&at("/static/{*path}"), get(assets::static_file))
        .route(&at("/healthz"), get(healthz))
        .route(&at("/metrics"), get(metrics::metrics))
        .route(&at("/swarm"), post(locust::swarm))
        .route(&at("/stop"), get(locust::stop).post(locust::stop))
        .route(&at("/stats/reset"), get(locust::reset).post(locust::reset))
        .route(&at("/stats/requests"), get(locust::stats_requests))
        .route(&at("/stats/requests/csv"), get(locust::requests_csv))
        .route(&at("/stats/failures/csv"), get(locust::failures_csv))
        .route(&at("/exceptions"), get(locust::exceptions))
        .route(&at("/exceptions/csv"), get(locust::exceptions_csv))
        .route(&at("/stats/report"), get(report::report))
        .route(&at("/tasks"), get(locust::tasks))
        .route(&at("/logs"), get(locust::logs))
        .route(&at("/worker-count"), get(locust::worker_count))
        .route(&at("/rescale"), post(scale::rescale_form))
        .route(&at("/api/v1/openapi.json"), get(openapi::document))
        .route(&at("/api/v1/ui"), get(api::ui))
        .route(&at("/api/v1/state"), get(api::state))
        .route(&at("/api/v1/stats"), get(api::stats))
        .route(&at("/api/v1/history"), get(api::history))
        .route(&at("/api/v1/failures"), get(api::failures))
        .route(&at("/api/v1/exceptions"), get(api::exceptions))
        .route(&at("/api/v1/workers"), get(api::workers))
        .route(&at("/api/v1/logs"), get(api::logs))
        .route(&at("/api/v1/events"), get(events::events))
        .route(&at("/api/v1/run"), post(api::start))
        .route(&at("/api/v1/run/stop"), post(api::stop))
        .route(&at("/api/v1/stats/reset"), post(api::reset))
        .route(
            &at("/api/v1/workers/scale"),
            get(scale::get_scale).put(scale::put_scale),
        )
        .route(&at("/api/v1/ext"), get(ext::list))
        .route(&at("/api/v1/ext/views/{id}"), get(ext::view))
        .route(&at("/api/v1/ext/actions/{id}"), post(ext::action))
        .route(&at("/api/v1/ext/{*path}"), get(ext::route))
}

/// Unhealthy (503) once the coordinator is gone: the web server alone
/// cannot start or stop a run, so a probe must restart the process.
async fn healthz(
    axum::extract::State(app): axum::extract::State<Shared>,
) -> (axum::http::StatusCode, &'static str) {
    if app.master.is_alive() {
        (axum::http::StatusCode::OK, "ok")
    } else {
        (
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            "the coordinator has stopped",
        )
    }
}

async fn not_found(uri: axum::http::Uri) -> super::error::ApiError {
    super::error::ApiError::NotFound(uri.path().to_string())
}
