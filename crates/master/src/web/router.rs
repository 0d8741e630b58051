//! The route table: each area (the page, Locust's routes, `/api/v1`,
//! extensions, scaling) declares its own routes through [`Routes`], which
//! records every (method, path) as it adds it, so the list of what exists
//! ([`route_table`], read by the OpenAPI test) and the router are one
//! source. The Host check (`hosts`) and authentication wrap all of it but
//! `/healthz`; the cross-site check wraps the control routes.

use axum::Router;
use axum::handler::Handler;
use axum::middleware::from_fn_with_state;
use axum::routing::{MethodFilter, get, on};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

use super::state::{AppState, Shared};
use super::{
    WebConfig, api, assets, ext, history, hosts, locust, metrics, scale, script, security,
};
use crate::MasterHandle;

/// One area's routes with the base path in front, and the table of what
/// they are. Not `Router::nest`: a nested "/" would also answer the base
/// without its slash, and the page's relative links need the slash.
pub struct Routes {
    base: String,
    router: Router<Shared>,
    table: Vec<(&'static str, &'static str)>,
}

impl Routes {
    pub fn new(base: &str) -> Self {
        Self {
            base: base.to_string(),
            router: Router::new(),
            table: Vec::new(),
        }
    }

    pub fn get<H: Handler<T, Shared>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.on(MethodFilter::GET, "GET", path, h)
    }

    pub fn post<H: Handler<T, Shared>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.on(MethodFilter::POST, "POST", path, h)
    }

    pub fn put<H: Handler<T, Shared>, T: 'static>(self, path: &'static str, h: H) -> Self {
        self.on(MethodFilter::PUT, "PUT", path, h)
    }

    /// Adding a second method to a path merges it into the same route.
    fn on<H: Handler<T, Shared>, T: 'static>(
        mut self,
        filter: MethodFilter,
        method: &'static str,
        path: &'static str,
        handler: H,
    ) -> Self {
        let at = format!("{}{path}", self.base);
        self.router = self.router.route(&at, on(filter, handler));
        self.table.push((method, path));
        self
    }

    pub fn merge(mut self, other: Routes) -> Self {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }
}

/// The page, its files, and what operators probe: not part of the API.
fn page_routes(base: &str) -> Routes {
    Routes::new(base)
        .get("/", assets::index)
        .get("/static/{*path}", assets::static_file)
        .get("/healthz", healthz)
        .get("/metrics", metrics::metrics)
}

fn all_routes(base: &str) -> Routes {
    page_routes(base)
        .merge(locust::routes(base))
        .merge(api::routes(base))
        .merge(history::routes(base))
        .merge(scale::routes(base))
        .merge(script::routes(base))
        .merge(ext::routes(base))
}

/// Every (method, path) served below the base path, with paths as the
/// OpenAPI document writes them (`{path}` for a wildcard). The UI's own
/// files (`/` and `/static/{path}`) are listed too but are not the API.
pub fn route_table() -> Vec<(&'static str, String)> {
    all_routes("")
        .table
        .into_iter()
        .map(|(method, path)| (method, path.replace("{*", "{")))
        .collect()
}

/// The whole web server as a router, for tests (`tower::ServiceExt::oneshot`)
/// and for [`super::run`]. Live-update streams end with the master.
pub fn router(master: MasterHandle, config: WebConfig) -> Router {
    build(master, config, CancellationToken::new())
}

pub fn build(master: MasterHandle, config: WebConfig, shutdown: CancellationToken) -> Router {
    let app: Shared = Arc::new(AppState::new(master, config, shutdown));
    let base = app.base.clone();
    let mut router = all_routes(&base).router;
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
        .layer(from_fn_with_state(app.clone(), hosts::host_guard))
        .with_state(app)
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
