//! A script's shape *function* started through `/api/v1/run {"shape": true}`
//! (the path the UI's form and the command line take too): the users follow
//! the function's answers, `nil` ends the run, a function that raises
//! mid-run stops it with the error in `/api/v1/state` and the statistics
//! kept, and one that fails at once starts nothing.

mod web_support;

use ext::ExtConfig;
use master::RunState;
use master::ext::Extensions;
use master::web::WebConfig;
use serde_json::json;
use web_support::*;

/// `SHAPE` is replaced by each test's shape function.
const SCRIPT: &str = r#"
local U = swarmer.user { name = "U", host = HOST, wait = swarmer.constant(0.05) }
U:task(function(self) self.http:get("/") end)
SHAPE
"#;

/// A master running `shape`, its extensions, one worker, and a router
/// serving them as the binary does.
async fn start(shape: &str) -> (Harness, axum::Router) {
    let h = Harness::with_script(&SCRIPT.replace("SHAPE", shape)).await;
    let ext = Extensions::start(&h.src, ExtConfig::default(), h.master.clone())
        .await
        .expect("the shape loads")
        .expect("a shape function starts the extension engine");
    h.attach_worker("shape-worker");
    h.wait_for(|s| s.worker_count == 1).await;
    let app = h.router(WebConfig {
        ext: Some(ext),
        ..WebConfig::default()
    });
    (h, app)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_starts_a_shape_function_whose_users_follow_it_until_nil() {
    let (h, app) = start(
        "swarmer.shape(function(ctx)
           if ctx.run_time >= 4 then return nil end
           if ctx.run_time >= 1.5 then return 5, 50 end
           return 2, 50
         end)",
    )
    .await;
    let ui = send(&app, get("/api/v1/ui")).await.json();
    assert_eq!(ui["shape"], "function", "the form offers it: {ui}");
    let reply = send(&app, json("POST", "/api/v1/run", json!({ "shape": true }))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let state = send(&app, get("/api/v1/state")).await.json();
    assert_eq!(state["profile"]["kind"], "function", "{state}");
    assert_eq!(state["target_users"], 2, "the first answer: {state}");
    h.wait_for(|s| s.user_count == 2).await;
    // The function's later answer, asked by the master about once a second.
    h.wait_for(|s| s.user_count == 5).await;
    // Nobody stops it: its nil does.
    let end = h.wait_for(|s| s.state == RunState::Stopped).await;
    assert_eq!(end.stop_error, None);
    assert!(end.stats.num_requests() > 0);
    let history = send(&app, get("/api/v1/history")).await.json();
    let targets: Vec<u64> = history["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["target_users"].as_u64().unwrap())
        .collect();
    assert!(targets.contains(&2) && targets.contains(&5), "{targets:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shape_function_that_raises_mid_run_stops_it_with_the_error_shown() {
    let (h, app) = start(
        "swarmer.shape(function(ctx)
           if ctx.run_time >= 1.5 then error('boom') end
           return 3, 50
         end)",
    )
    .await;
    let reply = send(&app, json("POST", "/api/v1/run", json!({ "shape": true }))).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    h.wait_for(|s| s.user_count == 3).await;
    let end = h.wait_for(|s| s.state == RunState::Stopped).await;
    let state = send(&app, get("/api/v1/state")).await.json();
    let error = state["stop_error"].as_str().unwrap_or_default();
    assert!(
        error.contains("the shape function failed") && error.contains("web_test.lua:5: boom"),
        "{state}"
    );
    let requests = state["num_requests"].as_u64().unwrap();
    assert!(requests > 0, "the statistics are kept: {state}");
    assert_eq!(requests, end.stats.num_requests());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shape_function_that_fails_at_once_starts_nothing() {
    let (h, app) = start("swarmer.shape(function(ctx) return 5, 1, { 'Nope' } end)").await;
    let reply = send(&app, json("POST", "/api/v1/run", json!({ "shape": true }))).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    let message = reply.message();
    assert!(
        message.contains("shape function") && message.contains("unknown user type \"Nope\""),
        "{message}"
    );
    assert_eq!(h.master.snapshot().state, RunState::Ready);
}
