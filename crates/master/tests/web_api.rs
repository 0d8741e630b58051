//! The `/api/v1/` JSON API, live events, the OpenAPI document, metrics,
//! health, the report route and the UI's files, through the router without
//! a socket; also the same routes under a base path.

mod web_support;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use master::RunState;
use master::web::{LogBuffer, WebConfig};
use serde_json::json;
use tower::ServiceExt;
use web_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_through_the_json_api() {
    let h = Harness::with_worker().await;
    let app = h.default_router();

    let ui = send(&app, get("/api/v1/ui")).await.json();
    let tabs: Vec<&str> = ui["tabs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        tabs,
        [
            "statistics",
            "charts",
            "phases",
            "failures",
            "exceptions",
            "ratio",
            "workers",
            "logs",
            "script",
            "history",
            "downloads"
        ]
    );
    assert_eq!(ui["user_types"][0]["name"], "Browse");
    assert_eq!(ui["csrf_token"].as_str().unwrap().len(), 32);

    let start =
        json!({ "users": 2, "spawn_rate": 100, "run_time": "10m", "user_types": ["Browse"] });
    let reply = send(&app, json("POST", "/api/v1/run", start)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["message"], "Swarming started");
    h.wait_for(|s| s.user_count == 2 && s.stats.num_requests() > 10)
        .await;

    let state = send(&app, get("/api/v1/state")).await.json();
    assert_eq!(state["target_users"], 2);
    assert_eq!(state["run_time_ms"], 600_000);
    assert_eq!(state["users_by_type"]["Browse"], 2);
    assert!(state["users_by_type"].get("Buy").is_none());

    // A retune without user_types keeps the run's types.
    let retune = send(
        &app,
        json(
            "POST",
            "/api/v1/run",
            json!({ "users": 5, "spawn_rate": 100 }),
        ),
    )
    .await;
    assert_eq!(retune.json()["message"], "Run updated");
    h.wait_for(|s| s.user_count == 5).await;
    assert_eq!(
        h.master
            .snapshot()
            .users_by_type
            .get("Buy")
            .copied()
            .unwrap_or(0),
        0
    );

    let stats = send(&app, get("/api/v1/stats")).await.json();
    let rows = stats["stats"].as_array().unwrap();
    assert_eq!(rows.last().unwrap()["name"], "Aggregated");
    assert!(rows.iter().any(|r| r["name"] == "/"));

    h.wait_for(|s| s.state == RunState::Running).await;
    let history = send_until(
        &app,
        "a history point while running",
        || get("/api/v1/history"),
        |r| r.json()["points"].as_array().is_some_and(|p| !p.is_empty()),
    )
    .await
    .json();
    let points = history["points"].as_array().unwrap();
    for key in [
        "time_ms",
        "user_count",
        "rps",
        "fail_per_sec",
        "p50_ms",
        "p95_ms",
        "worker_count",
    ] {
        assert!(points[0].get(key).is_some(), "point misses {key}");
    }

    let workers = send(&app, get("/api/v1/workers")).await.json();
    assert_eq!(workers["worker_count"], 1);
    assert_eq!(workers["workers"][0]["id"], "web-test-worker");
    assert!(workers["workers"][0].get("last_heartbeat_ms").is_some());

    let failures = send(&app, get("/api/v1/failures")).await.json();
    assert!(
        failures["failures"].as_array().unwrap().is_empty(),
        "only Browse runs"
    );

    let stop = send(&app, post("/api/v1/run/stop")).await;
    assert_eq!(stop.status, 200, "{}", stop.body);
    h.wait_for(|s| s.state == RunState::Stopped).await;
    let again = send(&app, post("/api/v1/run/stop")).await;
    assert_eq!(again.status, 409, "the API says when nothing runs");

    let reset = send(&app, post("/api/v1/stats/reset")).await;
    assert_eq!(reset.status, 200);
    h.wait_for(|s| s.stats.num_requests() == 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_json_runs_are_refused_with_the_field_named() {
    let h = Harness::with_worker().await;
    let app = h.default_router();
    let cases = [
        (
            json!({ "users": -1, "spawn_rate": 1 }),
            "users: must not be negative",
        ),
        (
            json!({ "users": 1.5, "spawn_rate": 1 }),
            "users: must be a whole number",
        ),
        (
            json!({ "users": "many", "spawn_rate": 1 }),
            "users: must be a whole number",
        ),
        (json!({ "spawn_rate": 1 }), "users: is required"),
        (
            json!({ "users": 1, "spawn_rate": 0 }),
            "spawn_rate: must be a positive",
        ),
        (
            json!({ "users": 1, "spawn_rate": true }),
            "spawn_rate: must be a number",
        ),
        (
            json!({ "users": 1, "spawn_rate": 1, "run_time": "later" }),
            "run_time: cannot read",
        ),
        (
            json!({ "users": 1, "spawn_rate": 1, "user_types": "Browse" }),
            "user_types: must be a list",
        ),
        (
            json!({ "users": 1, "spawn_rate": 1, "user_types": ["Ghost"] }),
            "user_types: unknown user type",
        ),
        (json!([1, 2]), "must be a JSON object"),
    ];
    for (body, expected) in cases {
        let reply = send(&app, json("POST", "/api/v1/run", body.clone())).await;
        assert_eq!(reply.status, 400, "{body}");
        let message = reply.message();
        assert!(message.contains(expected), "{body}: {message}");
    }
    let raw = axum::http::Request::post("/api/v1/run")
        .body(axum::body::Body::from("{not json"))
        .unwrap();
    let reply = send(&app, raw).await;
    assert_eq!(reply.status, 400);
    assert!(reply.message().contains("not valid JSON"));
    assert_eq!(h.master.snapshot().state, RunState::Ready);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_events_carry_state_and_stats() {
    let h = Harness::with_worker().await;
    let app = h.default_router();
    let response = app.clone().oneshot(get("/api/v1/events")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let mut body = response.into_body();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + MAX_WAIT;
    while !text.contains("\n\n") {
        let frame = tokio::time::timeout_at(deadline, body.frame())
            .await
            .expect("an event in time")
            .expect("the stream is open")
            .unwrap();
        if let Ok(data) = frame.into_data() {
            text.push_str(&String::from_utf8_lossy(&data));
        }
    }
    assert!(text.starts_with("event: update\n"), "{text}");
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .expect("a data line");
    let payload: serde_json::Value = serde_json::from_str(data).unwrap();
    assert_eq!(payload["summary"]["state"], "ready");
    assert_eq!(payload["summary"]["worker_count"], 1);
    assert_eq!(
        payload["stats"].as_array().unwrap().last().unwrap()["name"],
        "Aggregated"
    );
    assert_eq!(payload["workers"][0]["id"], "web-test-worker");
    assert!(payload["points"].is_array());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_parses_and_lists_every_route() {
    let h = Harness::new().await;
    let doc = send(&h.default_router(), get("/api/v1/openapi.json"))
        .await
        .json();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert_eq!(doc["servers"][0]["url"], "/");
    let paths = doc["paths"].as_object().unwrap();
    let table = master::web::route_table();
    for (method, path) in &table {
        if path == "/" || path.starts_with("/static/") {
            continue; // the UI's files, not the API
        }
        let ops = paths
            .get(path)
            .unwrap_or_else(|| panic!("{path} is not documented"));
        assert!(
            ops.get(method.to_lowercase()).is_some(),
            "{method} {path} is not documented"
        );
    }
    // Every documented operation exists too.
    for (path, ops) in paths {
        for method in ops.as_object().unwrap().keys() {
            let known = table
                .iter()
                .any(|(m, p)| p == path && m.eq_ignore_ascii_case(method));
            assert!(known, "{method} {path} is documented but not routed");
        }
    }
    // Every $ref resolves.
    let text = doc.to_string();
    for piece in text.split("\"$ref\":\"#/").skip(1) {
        let pointer = format!("/{}", &piece[..piece.find('"').unwrap()]);
        assert!(doc.pointer(&pointer).is_some(), "dangling $ref {pointer}");
    }
}

/// The table comes from the same declarations as the router; this checks
/// the router really answers each entry (not the fallback's 404, not 405),
/// and that a method not listed for a path is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_listed_route_is_routed() {
    let h = Harness::new().await;
    let app = h.default_router();
    let table = master::web::route_table();
    assert!(table.len() > 30, "{table:?}");
    for (method, path) in &table {
        let uri = path.replace("{path}", "style.css").replace("{id}", "x");
        let request = Request::builder()
            .method(*method)
            .uri(&uri)
            .body(Body::empty())
            .unwrap();
        // Not `send`: the live stream never ends; the status is enough,
        // and only a 404 needs its (short) body read.
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        assert_ne!(status, StatusCode::METHOD_NOT_ALLOWED, "{method} {uri}");
        if status == StatusCode::NOT_FOUND {
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            let body = String::from_utf8_lossy(&bytes);
            assert!(
                !body.contains("\"not found: "),
                "{method} {uri} fell through to the fallback: {body}"
            );
        }
    }
    let unlisted = Request::builder()
        .method("DELETE")
        .uri("/api/v1/run")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        send(&app, unlisted).await.status,
        StatusCode::METHOD_NOT_ALLOWED
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_health_and_logs() {
    let h = Harness::with_worker().await;
    let logs = LogBuffer::new(50);
    logs.push("INFO", "swarmer", "hello from the log".into());
    let app = h.router(WebConfig {
        logs: Some(logs.clone()),
        ..WebConfig::default()
    });
    send(&app, form("/swarm", "user_count=4&spawn_rate=100")).await;
    h.wait_for(|s| s.stats.num_failures() > 0 && s.stats.num_requests() > 10)
        .await;

    let metrics = send(&app, get("/metrics")).await;
    assert_eq!(metrics.status, 200);
    assert!(
        metrics
            .header("content-type")
            .starts_with("text/plain; version=0.0.4")
    );
    let text = &metrics.body;
    assert!(text.contains("# TYPE swarmer_requests_total counter"));
    assert!(text.contains("swarmer_requests_total{method=\"GET\",name=\"/\"} "));
    assert!(text.contains("swarmer_failures_total{method=\"POST\",name=\"/checkout\"} "));
    assert!(
        text.contains(
            "swarmer_response_time_seconds{method=\"GET\",name=\"/\",quantile=\"0.95\"} "
        )
    );
    assert!(text.contains("swarmer_response_time_seconds_count{method=\"GET\",name=\"/\"} "));
    assert!(text.contains("swarmer_workers{state=\"lost\"} 0"));
    assert!(text.contains("swarmer_users "));
    assert!(
        !text.contains("Aggregated"),
        "sum() over entries must not double"
    );
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "bad sample line {line:?}");
    }

    let health = send(&app, get("/healthz")).await;
    assert_eq!(
        (health.status, health.body.as_str()),
        (StatusCode::OK, "ok")
    );

    let lines = send(&app, get("/api/v1/logs")).await.json();
    assert_eq!(lines["enabled"], true);
    assert_eq!(lines["lines"][0]["message"], "hello from the log");
    let seq = lines["last_seq"].as_u64().unwrap();
    logs.push("WARN", "swarmer", "second".into());
    let newer = send(&app, get(&format!("/api/v1/logs?after={seq}")))
        .await
        .json();
    assert_eq!(newer["lines"].as_array().unwrap().len(), 1);
    assert_eq!(newer["lines"][0]["level"], "WARN");
    let locust = send(&app, get("/logs")).await.json();
    assert!(
        locust["master"][0]
            .as_str()
            .unwrap()
            .ends_with("INFO/swarmer: hello from the log")
    );
    send(&app, post("/stop")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_and_the_page() {
    let h = Harness::new().await;
    let app = h.default_router();
    let report = send(&app, get("/stats/report")).await;
    assert_eq!(report.status, 200);
    assert!(report.header("content-type").starts_with("text/html"));
    assert!(report.body.contains("<table id=\"stats\">"));
    assert!(
        report.body.contains("uPlot"),
        "the chart library is inlined"
    );
    assert!(report.header("content-disposition").is_empty());
    let download = send(&app, get("/stats/report?download=1")).await;
    assert!(
        download
            .header("content-disposition")
            .starts_with("attachment")
    );

    let page = send(&app, get("/")).await;
    assert_eq!(page.status, 200);
    assert!(page.header("content-type").starts_with("text/html"));
    assert!(
        page.header("content-security-policy")
            .contains("script-src 'self'")
    );
    assert!(page.body.contains("static/js/app.js"));
    for asset in [
        "/static/js/app.js",
        "/static/style.css",
        "/static/vendor/uPlot.iife.min.js",
    ] {
        let reply = send(&app, get(asset)).await;
        assert_eq!(reply.status, 200, "{asset}");
        let etag = reply.header("etag").to_string();
        let cached = axum::http::Request::get(asset)
            .header("if-none-match", &etag)
            .body(axum::body::Body::empty())
            .unwrap();
        assert_eq!(send(&app, cached).await.status, 304, "{asset}");
    }
    let js = send(&app, get("/static/js/app.js")).await;
    assert!(js.header("content-type").starts_with("text/javascript"));
    assert_eq!(send(&app, get("/static/nope.js")).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn everything_lives_under_the_base_path() {
    let h = Harness::new().await;
    let app = h.router(WebConfig {
        base_path: "/swarmer/".into(),
        ..WebConfig::default()
    });
    assert_eq!(send(&app, get("/swarmer/")).await.status, 200);
    let bare = send(&app, get("/swarmer")).await;
    assert!(bare.status.is_redirection());
    assert_eq!(bare.header("location"), "/swarmer/");
    assert_eq!(send(&app, get("/swarmer/stats/requests")).await.status, 200);
    assert_eq!(
        send(&app, get("/swarmer/static/style.css")).await.status,
        200
    );
    assert_eq!(send(&app, get("/swarmer/healthz")).await.body, "ok");
    assert_eq!(
        send(&app, get("/healthz")).await.body,
        "ok",
        "also at the root"
    );
    assert_eq!(send(&app, get("/stats/requests")).await.status, 404);
    let doc = send(&app, get("/swarmer/api/v1/openapi.json")).await.json();
    assert_eq!(doc["servers"][0]["url"], "/swarmer");
    let ui = send(&app, get("/swarmer/api/v1/ui")).await.json();
    assert_eq!(ui["base_path"], "/swarmer");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_workers_are_shown_as_lost_and_not_counted() {
    let h = Harness::with_worker().await;
    let app = h.default_router();
    let second = h.attach_worker("doomed-worker");
    h.wait_for(|s| s.worker_count == 2).await;
    second.abort();
    h.wait_for(|s| s.worker_count == 1).await;

    let workers = send(&app, get("/api/v1/workers")).await.json();
    assert_eq!(workers["worker_count"], 1);
    let list = workers["workers"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["id"], "web-test-worker", "live workers first");
    assert_eq!(list[1]["id"], "doomed-worker");
    assert_eq!(list[1]["state"], "lost");
    let locust = send(&app, get("/stats/requests")).await.json();
    assert_eq!(locust["worker_count"], 1);
    assert_eq!(
        send(&app, get("/worker-count")).await.json()["worker_count"],
        1
    );
    let metrics = send(&app, get("/metrics")).await.body;
    assert!(
        metrics.contains("swarmer_workers{state=\"lost\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("swarmer_workers{state=\"ready\"} 1"),
        "{metrics}"
    );
}
