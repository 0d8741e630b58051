//! Load profiles through the JSON API: `/api/v1/run` with `stages` runs
//! them and the run stops by itself, `/api/v1/state` reports the profile,
//! `/api/v1/history` carries `target_users`, and bad stages are refused
//! with the field named.

mod web_support;

use std::time::Duration;

use master::RunState;
use serde_json::json;
use web_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stages_through_the_api_run_and_end_the_run() {
    let h = Harness::with_worker().await;
    let app = h.default_router();
    let body = json!({ "stages": [
        { "duration": "2s", "users": 4 },
        { "duration": 1.5, "users": 4, "user_types": ["Browse"] },
    ] });
    let reply = send(&app, json("POST", "/api/v1/run", body)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let state = send(&app, get("/api/v1/state")).await.json();
    assert_eq!(state["profile"]["stages"], 2, "{state}");
    let stage = state["profile"]["stage"].as_u64().unwrap();
    assert!((1..=2).contains(&stage), "{state}");
    assert!(state["profile"]["time_left_ms"].as_u64().unwrap() <= 3500);
    h.wait_for(|s| s.user_count == 4).await;
    // Nobody stops it: the profile's end does.
    h.wait_for(|s| s.state == RunState::Stopped).await;
    let history = send(&app, get("/api/v1/history")).await.json();
    let points = history["points"].as_array().unwrap();
    assert!(points.iter().any(|p| p["target_users"] == 4), "{history}");
    assert!(
        points
            .iter()
            .all(|p| p["target_users"].as_u64().unwrap() <= 4),
        "{history}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_holds_each_count_against_the_plan_of_its_instant() {
    // Rows four times a second, counts once a second: a count is up to a
    // second old when a row is written. Held against the plan of the row's
    // instant, a ramp of 10 users a second would look up to 10 users
    // behind; against the plan of the count's instant, it is on it.
    let h = Harness::with_intervals(
        web_support::SCRIPT,
        Duration::from_millis(250),
        Duration::from_secs(1),
    )
    .await;
    h.attach_worker("ramp-worker");
    h.wait_for(|s| s.worker_count == 1).await;
    let app = h.default_router();
    let body = json!({ "stages": "4s:40,1s:40" });
    let reply = send(&app, json("POST", "/api/v1/run", body)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    h.wait_for(|s| s.state == RunState::Stopped).await;
    let rows: Vec<(u32, u32)> = h
        .master
        .history()
        .iter()
        .map(|p| (p.user_count, p.target_users))
        .collect();
    let ramp: Vec<&(u32, u32)> = rows.iter().filter(|(_, t)| (5..40).contains(t)).collect();
    assert!(ramp.len() >= 8, "rows through the ramp: {rows:?}");
    // Held against the plan of the row's instant, rows would be up to 10
    // users behind (5 on average); a report a loaded machine delays may
    // still leave one row behind.
    let on_plan = ramp
        .iter()
        .filter(|(users, target)| users.abs_diff(*target) <= 3)
        .count();
    assert!(
        on_plan * 5 >= ramp.len() * 4,
        "{on_plan} of {} rows on their plan: {rows:?}",
        ramp.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_stages_are_refused_with_the_field_named() {
    let h = Harness::with_worker().await;
    let app = h.default_router();
    let cases = [
        (
            json!({ "stages": "1s:5,0s:5" }),
            "stages: stage 2: the duration must be longer than zero",
        ),
        (
            json!({ "stages": [{ "duration": "1s", "users": -2 }] }),
            "stages: stage 1: users must be a whole number of 0 or more, got -2",
        ),
        (
            json!({ "stages": [{ "duration": "1s", "users": 1, "user_types": ["Ghost"] }] }),
            "stages: stage 1: unknown user type \"Ghost\"",
        ),
        (
            json!({ "stages": "1s:5", "users": 3 }),
            "stages: cannot be given with \"users\"",
        ),
        (json!({ "stages": 5 }), "stages: must be text"),
        (
            json!({ "shape": true }),
            "shape: the script declares no shape",
        ),
    ];
    for (body, expected) in cases {
        let reply = send(&app, json("POST", "/api/v1/run", body.clone())).await;
        assert_eq!(reply.status, 400, "{body}");
        let message = reply.message();
        assert!(message.contains(expected), "{body}: {message}");
    }
    assert_eq!(h.master.snapshot().state, RunState::Ready);
}
