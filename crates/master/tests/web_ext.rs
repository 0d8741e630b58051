//! The extension API through the router: the list of declarations and the
//! UI's tabs, a view ranking endpoints by error rate from a real run, an
//! action resetting the target over HTTP from the master (arguments checked
//! first, authenticated and cross-site checked, logged), script errors
//! answered with file and line, script routes, hooks fed from the run's
//! events, and counters from `swarmer.count` in every place entries show.

mod web_ext_support;
mod web_support;

use std::sync::atomic::Ordering;

use axum::body::Body;
use axum::http::{Request, header};
use master::RunState;
use master::web::WebConfig;
use serde_json::{Value, json};
use web_ext_support::*;
use web_support::*;

fn post_json(path: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_actions_and_routes() {
    let h = ExtHarness::start().await;
    let app = h.router(h.config(""));

    let list = send(&app, get("/api/v1/ext")).await.json();
    assert_eq!(
        list["views"][0],
        json!({ "id": "error-rate", "title": "Error rate" })
    );
    assert_eq!(list["actions"][0]["id"], "reset-target");
    assert_eq!(list["actions"][0]["view"], "error-rate");
    assert_eq!(list["actions"][0]["fields"][1]["type"], "number");
    assert_eq!(list["routes"], json!(["/ranking", "/events"]));
    assert_eq!(
        list["hooks"],
        json!(["test_start", "test_stop", "worker_joined", "worker_left"])
    );
    let ui = send(&app, get("/api/v1/ui")).await.json();
    let tabs: Vec<(String, String)> = ui["tabs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t["id"].as_str().unwrap().into(),
                t["kind"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(
        tabs.contains(&("ext-error-rate".into(), "ext-view".into())),
        "{tabs:?}"
    );
    assert!(tabs.contains(&("ext-broken".into(), "ext-view".into())));
    assert!(
        tabs.contains(&("ext-actions".into(), "ext-actions".into())),
        "`fail` names no view"
    );

    h.run(&app, "").await;
    let view = send(&app, get("/api/v1/ext/views/error-rate")).await;
    assert_eq!(view.status, 200, "{}", view.body);
    let view = view.json();
    let rows = view["tables"][0]["rows"].as_array().unwrap();
    assert_eq!(
        rows[0][0], "POST /checkout",
        "the worst endpoint first: {rows:?}"
    );
    assert_eq!(rows[0][3].as_f64(), Some(100.0));
    assert_eq!(rows.last().unwrap()[0], "GET /", "the best last: {rows:?}");
    assert_eq!(view["figures"][0]["value"], "POST /checkout");
    assert_eq!(
        view["charts"][0]["series"][0]["values"]
            .as_array()
            .unwrap()
            .len(),
        rows.len()
    );
    let again = send(&app, get("/api/v1/ext/views/error-rate")).await.json();
    assert_eq!(
        again["figures"][1]["value"], 2,
        "the view keeps its own state"
    );

    let ranking = send(&app, get("/api/v1/ext/ranking?limit=1")).await.json();
    assert_eq!(ranking.as_array().unwrap().len(), 1, "{ranking}");
    assert_eq!(ranking[0]["endpoint"], "POST /checkout");
    assert_eq!(ranking[0]["error_pct"].as_f64(), Some(100.0));
    let missing = send(&app, get("/api/v1/ext/nothing/here")).await;
    assert_eq!(missing.status, 404);
    assert!(
        missing.message().contains("\"/nothing/here\""),
        "{}",
        missing.body
    );
    assert_eq!(send(&app, get("/api/v1/ext/views/nope")).await.status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_check_their_arguments_and_reach_the_target() {
    let h = ExtHarness::start().await;
    let app = h.router(h.config("/swarmer"));
    h.run(&app, "/swarmer").await;
    let url = "/swarmer/api/v1/ext/actions/reset-target";

    for (body, field, problem) in [
        (
            r#"{"confirm": "maybe"}"#,
            "confirm",
            "must be one of \"yes\", \"no\"",
        ),
        (r#"{"confirm": "yes", "n": -1}"#, "n", "must be >= 0"),
        (
            r#"{"confirm": "yes", "note": "far too long for the field"}"#,
            "note",
            "at most 20 characters",
        ),
        (r#"{"n": 1}"#, "confirm", "is required"),
        (r#"{"confirm": "yes", "x": 1}"#, "x", "unknown field"),
        ("not json", "body", "must be a JSON object"),
    ] {
        let reply = send(&app, post_json(url, body)).await;
        assert_eq!(reply.status, 422, "{body}: {}", reply.body);
        assert_eq!(reply.json()["field"], field, "{body}");
        assert!(reply.message().contains(problem), "{body}: {}", reply.body);
    }
    assert!(h.target.served.load(Ordering::Relaxed) > 0);

    let done = send(&app, post_json(url, r#"{"confirm": "yes", "n": "2"}"#)).await;
    assert_eq!(done.status, 200, "{}", done.body);
    let done = done.json();
    assert_eq!(done["success"], true);
    assert!(
        done["message"]
            .as_str()
            .unwrap()
            .starts_with("Target reset"),
        "{done}"
    );
    assert!(
        done["data"]["served_before"].as_u64().unwrap() > 0,
        "{done}"
    );
    let declined = send(&app, post_json(url, r#"{"confirm": "no"}"#))
        .await
        .json();
    assert_eq!(
        declined,
        json!({ "success": false, "message": "Not confirmed", "data": null })
    );

    let failed = send(&app, post("/swarmer/api/v1/ext/actions/fail")).await;
    assert_eq!(failed.status, 500);
    let line = line_of("this action always fails");
    assert_eq!(
        failed.message(),
        format!("{SCRIPT_PATH}:{line}: this action always fails")
    );
    let broken = send(&app, get("/swarmer/api/v1/ext/views/broken")).await;
    assert_eq!(broken.status, 500);
    let line = line_of("return missing.field");
    assert!(
        broken
            .message()
            .starts_with(&format!("{SCRIPT_PATH}:{line}:")),
        "{}",
        broken.body
    );
    // Script errors break neither the run nor the server.
    assert!(h.master.snapshot().state.is_active());
    assert_eq!(
        send(&app, get("/swarmer/api/v1/ext/views/error-rate"))
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn actions_are_control_requests() {
    let h = ExtHarness::start().await;
    let app = h.router(WebConfig {
        auth: Some(("alice".into(), "secret".into())),
        ..h.config("")
    });
    let url = "/api/v1/ext/actions/reset-target";
    let anonymous = send(&app, post_json(url, r#"{"confirm": "yes"}"#)).await;
    assert_eq!(anonymous.status, 401);
    let basic = format!("Basic {}", base64_encode("alice:secret"));
    let cross_site = Request::post(url)
        .header(header::AUTHORIZATION, &basic)
        .header(header::HOST, "master:8089")
        .header(header::ORIGIN, "http://evil.example")
        .body(Body::from(r#"{"confirm": "yes"}"#))
        .unwrap();
    assert_eq!(send(&app, cross_site).await.status, 403);
    assert_eq!(h.target.served.load(Ordering::Relaxed), 0);
    let same_site = Request::post(url)
        .header(header::AUTHORIZATION, &basic)
        .header(header::HOST, "master:8089")
        .header(header::ORIGIN, "http://master:8089")
        .body(Body::from(r#"{"confirm": "yes"}"#))
        .unwrap();
    let done = send(&app, same_site).await;
    assert_eq!(done.status, 200, "{}", done.body);
    // Reading a view needs credentials like any other page.
    assert_eq!(
        send(&app, get("/api/v1/ext/views/error-rate")).await.status,
        401
    );
}

fn base64_encode(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Polls the script's `/events` route until it lists `item`.
async fn wait_event(app: &axum::Router, item: &str) -> Value {
    for _ in 0..200 {
        let list = send(app, get("/api/v1/ext/events")).await.json();
        if list.as_array().unwrap().iter().any(|e| e == item) {
            return list;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let list = send(app, get("/api/v1/ext/events")).await.body;
    panic!("no {item:?} event: {list}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_see_the_run_and_the_workers() {
    let h = ExtHarness::start().await;
    let app = h.router(h.config(""));
    wait_event(&app, "joined web-ext-worker").await;
    h.run(&app, "").await;
    wait_event(&app, "start 1").await;
    let second = h.attach_worker("second-worker");
    wait_event(&app, "joined second-worker").await;
    second.abort();
    wait_event(&app, "left second-worker lost").await;
    send(&app, post("/api/v1/run/stop")).await;
    h.wait_for(|s| s.state == RunState::Stopped).await;
    let list = wait_event(&app, "stop 1").await;
    let order: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    let at = |item: &str| order.iter().position(|e| *e == item).unwrap();
    assert!(
        at("joined web-ext-worker") < at("start 1") && at("start 1") < at("stop 1"),
        "{order:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counters_show_wherever_entries_do() {
    let h = ExtHarness::start().await;
    let app = h.router(h.config(""));
    h.run(&app, "").await;
    h.wait_for(|s| s.stats.entry("COUNT", "items seen").is_some())
        .await;
    let stats = send(&app, get("/stats/requests")).await.json();
    let counter = stats["stats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["method"] == "COUNT")
        .expect("the counter in /stats/requests")
        .clone();
    assert_eq!(counter["name"], "items seen");
    assert_eq!(
        (
            counter["num_failures"].as_u64(),
            counter["max_response_time"].as_f64()
        ),
        (Some(0), Some(0.0))
    );
    let csv = send(&app, get("/stats/requests/csv")).await.body;
    assert!(
        csv.lines().any(|l| l.starts_with("COUNT,items seen,")),
        "{csv}"
    );
    let metrics = send(&app, get("/metrics")).await.body;
    assert!(
        metrics.contains("swarmer_requests_total{method=\"COUNT\",name=\"items seen\"}"),
        "{metrics}"
    );
    let api = send(&app, get("/api/v1/stats")).await.json();
    assert!(
        api["stats"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["method"] == "COUNT")
    );
    let report = send(&app, get("/stats/report")).await.body;
    assert!(report.contains("items seen"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_extensions_the_api_is_empty() {
    let h = Harness::new().await;
    let app = h.default_router();
    let list = send(&app, get("/api/v1/ext")).await.json();
    assert_eq!(
        list,
        json!({ "views": [], "actions": [], "routes": [], "hooks": [] })
    );
    assert_eq!(send(&app, get("/api/v1/ext/views/x")).await.status, 404);
    assert_eq!(send(&app, post("/api/v1/ext/actions/x")).await.status, 404);
    assert_eq!(send(&app, get("/api/v1/ext/x")).await.status, 404);
    let ui = send(&app, get("/api/v1/ui")).await.json();
    assert!(
        ui["tabs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["kind"] == "builtin")
    );
}
