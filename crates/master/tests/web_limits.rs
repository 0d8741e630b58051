//! What a run request may ask for (issue 15.5): values that used to panic
//! the coordinator or grow the process without bound are refused with the
//! field named, the master keeps serving afterwards, and `/healthz` tells
//! when the coordinator is gone.

mod web_support;

use axum::http::StatusCode;
use master::RunState;
use master::validate::{DEFAULT_MAX_USERS, MAX_SPAWN_RATE};
use serde_json::json;
use web_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_beyond_the_limits_are_refused_and_the_master_lives_on() {
    let h = Harness::with_worker().await;
    let app = h.default_router();
    let max = DEFAULT_MAX_USERS;
    let cases = [
        (
            "/swarm",
            "user_count=1&spawn_rate=1&run_time=18446744073709551615".to_string(),
            "run_time: must be at most 365 days, got 584542046090years 7months 15days 17h 5m 3s"
                .to_string(),
        ),
        (
            "/swarm",
            "user_count=4294967295&spawn_rate=1e308".to_string(),
            format!("user_count: must be at most {max} (the master's --max-users), got 4294967295"),
        ),
        (
            "/swarm",
            "user_count=1&spawn_rate=1e308".to_string(),
            format!(
                "spawn_rate: must be a positive number of users per second, at most {MAX_SPAWN_RATE}, got 1e308"
            ),
        ),
        (
            "/swarm",
            "user_count=1&spawn_rate=1&run_time=0".to_string(),
            "run_time: must be longer than zero".to_string(),
        ),
    ];
    for (path, body, expected) in cases {
        let reply = send(&app, form(path, &body)).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert_eq!(reply.message(), expected, "{body}");
    }
    let huge = json!({ "users": 1, "spawn_rate": 1, "run_time": 18446744073709551615u64 });
    let reply = send(&app, json("POST", "/api/v1/run", huge)).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(
        reply
            .message()
            .starts_with("run_time: must be at most 365 days")
    );

    // The coordinator is still there: a sane request starts a run.
    let ok = send(
        &app,
        form("/swarm", "user_count=1&spawn_rate=10&run_time=1h"),
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    h.wait_for(|s| s.user_count == 1).await;
    let health = send(&app, get("/healthz")).await;
    assert_eq!(
        (health.status, health.body.as_str()),
        (StatusCode::OK, "ok")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_coordinator_refuses_what_the_forms_refuse() {
    // The handle is the path the command line and scripts take: the same
    // rules hold there without any form in front.
    let h = Harness::with_worker().await;
    let request = master::RunRequest {
        users: 1,
        spawn_rate: 1.0,
        host: None,
        run_time: Some(std::time::Duration::from_secs(u64::MAX)),
        user_types: vec![],
        profile: None,
    };
    let e = h.master.start_run(request.clone()).await.unwrap_err();
    assert!(
        e.to_string()
            .starts_with("run_time: must be at most 365 days"),
        "{e}"
    );
    let e = h
        .master
        .start_run(master::RunRequest {
            users: u32::MAX,
            run_time: None,
            ..request.clone()
        })
        .await
        .unwrap_err();
    assert!(e.to_string().starts_with("users: must be at most"), "{e}");
    assert_eq!(h.master.snapshot().state, RunState::Ready);
    assert!(h.master.is_alive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_is_unhealthy_once_the_coordinator_is_gone() {
    let h = Harness::new().await;
    let app = h.default_router();
    assert_eq!(send(&app, get("/healthz")).await.status, StatusCode::OK);
    // Ending the coordinator's task; the web server stays up without it.
    h.shutdown.cancel();
    let deadline = std::time::Instant::now() + MAX_WAIT;
    while h.master.is_alive() {
        assert!(
            std::time::Instant::now() < deadline,
            "the coordinator never ended"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let health = send(&app, get("/healthz")).await;
    assert_eq!(
        health.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{}",
        health.body
    );
    assert!(health.body.contains("coordinator"), "{}", health.body);
}
