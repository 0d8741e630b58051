//! Locust's routes through the router, without a socket: the form fields and
//! JSON field names Locust's users rely on, bad input refused with 400 and a
//! message naming the field (and the running test left alone), CSV headers.

mod web_support;

use master::RunState;
use web_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_swarm_forms_are_refused_and_change_nothing() {
    let h = Harness::with_worker().await;
    let app = h.default_router();
    let cases = [
        ("user_count=-5&spawn_rate=1", "user_count"),
        ("user_count=abc&spawn_rate=1", "user_count"),
        ("user_count=2.5&spawn_rate=1", "user_count"),
        ("spawn_rate=1", "user_count"),
        ("user_count=5&spawn_rate=0", "spawn_rate"),
        ("user_count=5&spawn_rate=-1", "spawn_rate"),
        ("user_count=5&spawn_rate=fast", "spawn_rate"),
        ("user_count=5", "spawn_rate"),
        ("user_count=5&spawn_rate=1&run_time=soon", "run_time"),
        ("user_count=5&spawn_rate=1&host=example.com", "host"),
        (
            "user_count=5&spawn_rate=1&user_classes=Nobody",
            "user_classes",
        ),
    ];
    for (body, field) in cases {
        let reply = send(&app, form("/swarm", body)).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        let message = reply.message();
        assert!(message.starts_with(field), "{body}: {message}");
    }
    assert_eq!(h.master.snapshot().state, RunState::Ready);

    // Start for real, then send a bad retune: the run keeps its users.
    let ok = send(&app, form("/swarm", "user_count=3&spawn_rate=100")).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.json()["success"], true);
    assert_eq!(ok.json()["message"], "Swarming started");
    h.wait_for(|s| s.user_count == 3).await;
    let bad = send(&app, form("/swarm", "user_count=-1&spawn_rate=1")).await;
    assert_eq!(bad.status, 400);
    assert_eq!(h.master.snapshot().target_users, 3);
    let stop = send(&app, post("/stop")).await;
    assert_eq!(stop.json()["message"], "Test stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_without_workers_is_a_conflict() {
    let h = Harness::new().await;
    let reply = send(
        &h.default_router(),
        form("/swarm", "user_count=1&spawn_rate=1"),
    )
    .await;
    assert_eq!(reply.status, 409);
    assert!(reply.message().contains("no workers"), "{}", reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_through_locust_routes() {
    let h = Harness::with_worker().await;
    let app = h.default_router();
    let body = format!(
        "user_count=4&spawn_rate=50&host=http%3A%2F%2F{}&user_classes=Browse&user_classes=Buy&run_time=5m",
        h.target
    );
    let reply = send(&app, form("/swarm", &body)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.json()["host"],
        format!("http://{}", h.target).as_str()
    );
    h.wait_for(|s| s.user_count == 4 && s.stats.num_failures() > 0 && s.stats.num_requests() > 20)
        .await;

    let stats = send(&app, get("/stats/requests")).await.json();
    for key in [
        "stats",
        "errors",
        "current_rps",
        "current_fail_per_sec",
        "total_rps",
        "total_fail_per_sec",
        "fail_ratio",
        "current_response_time_percentiles",
        "state",
        "user_count",
        "workers",
        "worker_count",
    ] {
        assert!(stats.get(key).is_some(), "missing {key}: {stats}");
    }
    assert_eq!(stats["user_count"], 4);
    assert_eq!(stats["worker_count"], 1);
    assert!(matches!(
        stats["state"].as_str(),
        Some("spawning" | "running")
    ));
    let rows = stats["stats"].as_array().unwrap();
    let last = rows.last().unwrap();
    assert_eq!(last["name"], "Aggregated");
    assert_eq!(last["method"], "");
    for key in [
        "method",
        "name",
        "num_requests",
        "num_failures",
        "min_response_time",
        "max_response_time",
        "current_rps",
        "current_fail_per_sec",
        "avg_response_time",
        "median_response_time",
        "total_rps",
        "total_fail_per_sec",
        "response_time_percentile_0.95",
        "response_time_percentile_0.99",
        "avg_content_length",
    ] {
        assert!(last.get(key).is_some(), "entry misses {key}");
    }
    assert!(rows.iter().any(|r| r["name"] == "/item/[id]"));
    let errors = stats["errors"].as_array().unwrap();
    let checkout = errors.iter().find(|e| e["name"] == "/checkout").unwrap();
    assert_eq!(checkout["method"], "POST");
    assert!(checkout["occurrences"].as_u64().unwrap() > 0);
    assert!(
        stats["current_response_time_percentiles"]
            .get("response_time_percentile_0.95")
            .is_some()
    );
    let worker = &stats["workers"][0];
    for key in ["id", "state", "user_count", "cpu_usage", "memory_usage"] {
        assert!(worker.get(key).is_some(), "worker misses {key}");
    }

    let count = send(&app, get("/worker-count")).await.json();
    assert_eq!(count["worker_count"], 1);

    // Older Locust scripts stop with GET.
    let stop = send(&app, get("/stop")).await;
    assert_eq!(stop.status, 200);
    h.wait_for(|s| s.state == RunState::Stopped).await;
    let again = send(&app, post("/stop")).await;
    assert_eq!(again.status, 200, "stopping twice is harmless");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_downloads_have_locust_headers() {
    let h = Harness::with_worker().await;
    let app = h.default_router();
    let cases = [
        (
            "/stats/requests/csv",
            "requests_",
            "Type,Name,Request Count,Failure Count,Median Response Time",
        ),
        (
            "/stats/failures/csv",
            "failures_",
            "Method,Name,Error,Occurrences",
        ),
        (
            "/exceptions/csv",
            "exceptions_",
            "Count,Message,Traceback,Nodes",
        ),
    ];
    for (path, name, header) in cases {
        let reply = send(&app, get(path)).await;
        assert_eq!(reply.status, 200, "{path}");
        assert!(
            reply.header("content-type").starts_with("text/csv"),
            "{path}"
        );
        let disposition = reply.header("content-disposition");
        assert!(disposition.starts_with("attachment"), "{disposition}");
        assert!(disposition.contains(name), "{disposition}");
        assert!(reply.body.starts_with(header), "{path}: {}", reply.body);
    }
    let stats = send(&app, get("/stats/requests/csv")).await;
    assert!(stats.body.contains("Aggregated"));
    assert!(
        stats.body.contains("N/A"),
        "no requests yet: percentiles are N/A"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_exceptions_tasks_and_logs() {
    let h = Harness::new().await;
    let app = h.default_router();
    for request in [post("/stats/reset"), get("/stats/reset")] {
        let reply = send(&app, request).await;
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, "ok");
    }
    let exceptions = send(&app, get("/exceptions")).await.json();
    assert!(exceptions["exceptions"].as_array().unwrap().is_empty());

    let tasks = send(&app, get("/tasks")).await.json();
    let browse = &tasks["per_class"]["Browse"];
    assert_eq!(browse["ratio"], 0.75);
    assert_eq!(browse["tasks"]["item"]["ratio"], 0.25);
    assert_eq!(tasks["total"]["Buy"]["ratio"], 0.25);
    assert_eq!(tasks["total"]["Browse"]["tasks"]["item"]["ratio"], 0.1875);

    let logs = send(&app, get("/logs")).await.json();
    assert!(logs["master"].as_array().unwrap().is_empty());

    let missing = send(&app, get("/no/such/route")).await;
    assert_eq!(missing.status, 404);
    assert!(missing.message().contains("/no/such/route"));
}
