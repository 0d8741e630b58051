//! A small web shop to load-test: what the README's first command and the
//! end-to-end tests aim at, so a fresh machine needs nothing else.
//!
//! It counts every request it serves (`GET /stats`), which lets tests check
//! that swarmer's totals are exact.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[derive(Default)]
struct Counters {
    served: AtomicU64,
}

type Shared = Arc<Counters>;

pub fn router() -> Router {
    let counters: Shared = Arc::default();
    Router::new()
        .route("/", get(index))
        .route("/item/{id}", get(item))
        .route("/login", post(login))
        .route("/cart", get(cart).post(add_to_cart))
        .route("/slow", get(slow))
        .route("/status/{code}", get(status))
        .route("/reset", post(reset))
        .route("/stats", get(stats))
        .layer(axum::middleware::from_fn_with_state(
            counters.clone(),
            count,
        ))
        .with_state(counters)
}

/// Serves until `shutdown` fires.
pub async fn run(listener: TcpListener, shutdown: CancellationToken) -> std::io::Result<()> {
    axum::serve(listener, router())
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
}

async fn count(
    State(c): State<Shared>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    // /stats and /reset are the test's own questions, not load.
    let path = req.uri().path();
    if path != "/stats" && path != "/reset" {
        c.served.fetch_add(1, Ordering::Relaxed);
    }
    next.run(req).await
}

async fn index() -> Html<&'static str> {
    Html(
        "<!doctype html><title>Demo shop</title><h1>Demo shop</h1><p>Items at /item/1 .. /item/100.</p>",
    )
}

async fn item(Path(id): Path<u32>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "id": id, "name": format!("Item {id}"), "in_stock": id % 10 != 0 }))
}

#[derive(Deserialize)]
struct LoginForm {
    user: Option<String>,
}

async fn login(Form(form): Form<LoginForm>) -> Response {
    match form.user.filter(|u| !u.is_empty()) {
        Some(user) => {
            let cookie = format!("session={user}; Path=/; HttpOnly");
            ([(header::SET_COOKIE, cookie)], "welcome").into_response()
        }
        None => (StatusCode::BAD_REQUEST, "form field `user` is required").into_response(),
    }
}

fn session(headers: &HeaderMap) -> Option<String> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    cookies
        .split(';')
        .find_map(|c| c.trim().strip_prefix("session="))
        .map(str::to_string)
}

async fn cart(headers: HeaderMap) -> Response {
    match session(&headers) {
        Some(user) => Json(serde_json::json!({ "user": user, "items": [] })).into_response(),
        None => (StatusCode::UNAUTHORIZED, "log in first").into_response(),
    }
}

async fn add_to_cart(headers: HeaderMap, body: Option<Json<serde_json::Value>>) -> Response {
    match (session(&headers), body) {
        (None, _) => (StatusCode::UNAUTHORIZED, "log in first").into_response(),
        (Some(_), None) => (StatusCode::BAD_REQUEST, "expected a JSON body").into_response(),
        (Some(user), Some(Json(item))) => {
            Json(serde_json::json!({ "user": user, "added": item })).into_response()
        }
    }
}

async fn slow(Query(q): Query<BTreeMap<String, String>>) -> &'static str {
    let ms = q
        .get("ms")
        .and_then(|v| v.parse().ok())
        .unwrap_or(100u64)
        .min(60_000);
    tokio::time::sleep(Duration::from_millis(ms)).await;
    "slow"
}

async fn status(Path(code): Path<u16>) -> Response {
    let code = StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST);
    (code, code.canonical_reason().unwrap_or("")).into_response()
}

async fn reset(State(c): State<Shared>) -> &'static str {
    c.served.store(0, Ordering::Relaxed);
    "reset"
}

async fn stats(State(c): State<Shared>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "served": c.served.load(Ordering::Relaxed) }))
}
