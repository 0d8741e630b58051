//! The run's figures after it ends and the full-history CSV, through the
//! router with a real worker running users against a local target:
//! current RPS is 0 once a run has stopped (not Locust's sliding window
//! decaying for 12 s), everywhere it is served; `/stats/requests_full_history/csv`
//! is a 404 naming `--csv-full-history` without it, and with it has the
//! headless file's header and one row per entry and `Aggregated` each second.

mod web_support;

use master::RunState;
use master::web::WebConfig;
use serde_json::json;
use web_support::*;

async fn start_run(h: &Harness, app: &axum::Router) {
    let start = json!({ "users": 4, "spawn_rate": 100 });
    let reply = send(app, json("POST", "/api/v1/run", start)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    h.wait_for(|s| s.user_count == 4 && s.stats.num_requests() > 20)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn current_rps_is_zero_once_stopped() {
    let h = Harness::with_worker().await;
    let app = h.default_router();
    start_run(&h, &app).await;
    // While running, the window has requests in it.
    let live = send_until(
        &app,
        "a current RPS above 0",
        || get("/stats/requests"),
        |r| r.json()["current_rps"].as_f64().unwrap_or(0.0) > 0.0,
    )
    .await;
    assert!(live.json()["total_rps"].as_f64().unwrap() > 0.0);

    let stop = send(&app, post("/api/v1/run/stop")).await;
    assert_eq!(stop.status, 200, "{}", stop.body);
    h.wait_for(|s| s.state == RunState::Stopped).await;

    // At once, not after the window has slid past the last request.
    let locust = send(&app, get("/stats/requests")).await.json();
    assert_eq!(locust["state"], "stopped");
    assert_eq!(locust["current_rps"], 0.0, "{locust}");
    assert_eq!(locust["current_fail_per_sec"], 0.0, "{locust}");
    for row in locust["stats"].as_array().unwrap() {
        assert_eq!(row["current_rps"], 0.0, "{row}");
    }
    // The totals of the finished run stay.
    assert!(locust["total_rps"].as_f64().unwrap() > 0.0, "{locust}");
    let state = send(&app, get("/api/v1/state")).await.json();
    assert_eq!(state["current_rps"], 0.0, "{state}");
    let metrics = send(&app, get("/metrics")).await.body;
    let gauge = metrics
        .lines()
        .find(|l| l.starts_with("swarmer_total_current_requests_per_second "))
        .expect("the total rate gauge");
    assert!(gauge.ends_with(" 0"), "{gauge}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_history_csv_is_a_404_without_the_flag() {
    let h = Harness::new().await;
    let reply = send(&h.default_router(), get("/stats/requests_full_history/csv")).await;
    assert_eq!(reply.status, 404);
    assert!(reply.body.contains("--csv-full-history"), "{}", reply.body);
    let ui = send(&h.default_router(), get("/api/v1/ui")).await.json();
    assert_eq!(ui["full_history"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_history_csv_has_every_entry_each_second() {
    let h = Harness::with_worker().await;
    let app = h.router(WebConfig {
        max_workers: 10,
        full_history: true,
        ..WebConfig::default()
    });
    let ui = send(&app, get("/api/v1/ui")).await.json();
    assert_eq!(ui["full_history"], true);
    // Before a run: the header alone.
    let empty = send(&app, get("/stats/requests_full_history/csv")).await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.body, master::web::history_csv_header());

    start_run(&h, &app).await;
    let names = ["/", "/item/[id]", "/checkout", "Aggregated"];
    let reply = send_until(
        &app,
        "two seconds of rows for every entry",
        || get("/stats/requests_full_history/csv"),
        |r| {
            let rows: Vec<&str> = r.body.lines().skip(1).collect();
            names.iter().all(|n| {
                rows.iter()
                    .filter(|l| l.contains(&format!(",{n},")))
                    .count()
                    >= 2
            })
        },
    )
    .await;
    assert!(reply.header("content-type").starts_with("text/csv"));
    assert!(
        reply
            .header("content-disposition")
            .contains("requests_full_history_")
    );
    let mut lines = reply.body.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with(stats::csv::STATS_HISTORY_HEADER),
        "{header}"
    );
    assert!(
        header.ends_with(master::web::HISTORY_OWN_HEADER),
        "{header}"
    );
    let width = header.split(',').count();
    let mut seconds = std::collections::BTreeSet::new();
    for line in lines {
        let fields: Vec<&str> = line.split(',').collect();
        assert_eq!(fields.len(), width, "{line}");
        seconds.insert(fields[0].parse::<u64>().expect("a timestamp in seconds"));
        let users: u32 = fields[1].parse().expect("a user count");
        assert!(users <= 4, "{line}");
    }
    assert!(seconds.len() >= 2, "{seconds:?}");
    // Each second once: an entry's rows never repeat a timestamp.
    let aggregated: Vec<&str> = reply
        .body
        .lines()
        .filter(|l| l.contains(",Aggregated,"))
        .map(|l| l.split(',').next().unwrap())
        .collect();
    let unique: std::collections::BTreeSet<_> = aggregated.iter().collect();
    assert_eq!(unique.len(), aggregated.len(), "{aggregated:?}");
}
