//! The History tab in headless Chromium: runs recorded in a real SQLite
//! store (two before the page opens, one run by the in-process worker and
//! recorded by `master::recorder` while the page is open) fill the table
//! and the trend chart; two picked runs are compared side by side; one is
//! overlaid on the live charts as a baseline.
//!
//! Skips (passing, with a message) without Chromium or chromedriver,
//! except under `CI=true`, where that fails.

mod web_support;

use std::path::Path;
use std::time::Duration;

use fantoccini::Client;
use history::{EntryFigures, Interval, Location, Profile, RunRecord, ScaleEvent, Store};
use master::recorder::ScriptMeta;
use master::web::WebConfig;
use master::{RunRequest, RunState};
use web_support::browser::*;
use web_support::*;

const TEST_LIMIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_history_tab_lists_trends_and_compares_runs() {
    in_chromium("history", TEST_LIMIT, |chromium, chromedriver, profile| async move {
        drive(&chromium, &chromedriver, &profile).await
    })
    .await;
}

fn total(p95_ms: f64, rps: f64) -> EntryFigures {
    EntryFigures {
        method: String::new(),
        name: "Aggregated".into(),
        requests: 1000,
        failures: 0,
        avg_ms: p95_ms / 2.0,
        min_ms: 1.0,
        max_ms: p95_ms * 2.0,
        p50_ms: p95_ms / 2.0,
        p95_ms,
        p99_ms: p95_ms * 1.5,
        rps,
    }
}

fn earlier_run(started_ms: i64, p95_ms: f64, rps: f64) -> RunRecord {
    RunRecord {
        id: 0,
        started_ms,
        ended_ms: started_ms + 60_000,
        script: "web_test.lua".into(),
        script_hash: history::record::script_hash("earlier"),
        host: "http://127.0.0.1:1".into(),
        profile: Profile {
            kind: "fixed".into(),
            users: 5,
            spawn_rate: 5.0,
            run_time_ms: Some(60_000),
            stages: None,
        },
        verdict: "passed".into(),
        entries: vec![total(p95_ms, rps)],
        checks: vec![],
        intervals: (0..3)
            .map(|i| Interval {
                time_ms: started_ms as u64 + i * 1000,
                users: 5,
                rps,
                fail_per_sec: 0.0,
                p50_ms: Some(p95_ms / 2.0),
                p95_ms: Some(p95_ms),
            })
            .collect(),
        scaling: vec![],
    }
}

fn scale_event(from: u32, to: u32, message: &str) -> ScaleEvent {
    ScaleEvent {
        time_ms: 1_700_000_010_000,
        from,
        to,
        message: message.into(),
        error: None,
    }
}

async fn drive(chromium: &Path, chromedriver: &Path, profile: &Path) {
    let h = Harness::with_worker().await;
    let dir = std::env::temp_dir().join(format!("swarmer-history-ui-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let store = Store::open(&Location::Sqlite(dir.join("runs.db")))
        .await
        .expect("the history opens");
    let mut autoscaled = earlier_run(1_700_000_000_000, 100.0, 50.0);
    autoscaled.scaling = vec![
        scale_event(1, 3, "scaled 1 → 3: average worker CPU 91% for 15 s"),
        scale_event(3, 1, "scaled 3 → 1: the run ended"),
    ];
    let a = store.record(&autoscaled).await.unwrap();
    let b = store
        .record(&earlier_run(1_700_000_100_000, 120.0, 40.0))
        .await
        .unwrap();
    tokio::spawn(master::recorder::run(
        h.master.clone(),
        store.clone(),
        ScriptMeta::new("web_test.lua", "code"),
        None,
        h.shutdown.clone(),
    ));
    let config = WebConfig {
        history: Some(store),
        ..WebConfig::default()
    };
    let url = format!(
        "{}#history",
        serve_web(&h.master, config, &h.shutdown).await
    );
    with_browser(chromium, chromedriver, profile, |browser| async move {
        steps(&browser, &h, &url, a, b).await
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}

async fn steps(browser: &Client, h: &Harness, url: &str, a: i64, b: i64) {
    browser.goto(url).await.expect("the page loads");
    until(
        browser,
        "the two earlier runs",
        "document.querySelectorAll('#history-table tbody tr').length === 2",
    )
    .await;

    // The autoscaled run shows the counts its workers went through.
    let cell = format!("document.querySelector(\"#history-table tr[data-id='{a}'] td.scaling\")");
    until(
        browser,
        "the scaling of the autoscaled run",
        &format!("{cell}.textContent === '1 → 3 → 1' && {cell}.title.includes('CPU 91%')"),
    )
    .await;

    // A run from the UI's side: recorded when it stops, shown without a reload.
    let request = RunRequest {
        users: 2,
        spawn_rate: 100.0,
        host: None,
        run_time: Some(Duration::from_secs(1)),
        user_types: vec![],
        profile: None,
    };
    h.master.start_run(request).await.expect("the run starts");
    h.wait_for(|s| s.state == RunState::Stopped).await;
    until(
        browser,
        "the new run in the table",
        "document.querySelectorAll('#history-table tbody tr').length === 3",
    )
    .await;
    let newest = until(
        browser,
        "the newest run first",
        "document.querySelector('#history-table tbody tr').dataset.id",
    )
    .await;
    assert!(newest.as_str().unwrap().parse::<i64>().unwrap() > b);
    until(
        browser,
        "the trend over the script's three runs",
        "document.querySelector('#history-trend').dataset.points === '3' \
         && document.querySelector('#history-trend canvas')",
    )
    .await;

    // Pick the two earlier runs and compare them.
    click(browser, &format!("#history-table input[value='{a}']")).await;
    click(browser, &format!("#history-table input[value='{b}']")).await;
    until(
        browser,
        "the compare button enabled",
        "!document.querySelector('#history-compare').disabled",
    )
    .await;
    click(browser, "#history-compare").await;
    let p95 = until(
        browser,
        "the p95 change",
        "document.querySelector('#history-compare-table tr[data-figure=\"p95_ms\"] .change')?.textContent",
    )
    .await;
    assert_eq!(p95, "+20.0%");
    let rps = until(
        browser,
        "the rps change",
        "document.querySelector('#history-compare-table tr[data-figure=\"rps\"] .change')?.textContent",
    )
    .await;
    assert_eq!(rps, "-20.0%");
    screenshot(browser, "history.png").await;
    overlay_a_baseline(browser, a).await;
}

/// The Charts tab lists the recorded runs; picking one draws its three
/// per-second points under the live run's.
async fn overlay_a_baseline(browser: &Client, a: i64) {
    click(browser, "#tab-charts").await;
    until(
        browser,
        "the recorded runs offered as baselines",
        &format!("document.querySelector('#chart-baseline option[value=\"{a}\"]') !== null"),
    )
    .await;
    run_js(
        browser,
        &format!(
            "const s = document.querySelector('#chart-baseline'); s.value = '{a}'; \
             s.dispatchEvent(new Event('change'));"
        ),
    )
    .await;
    until(
        browser,
        "the baseline's points on the RPS chart",
        "document.querySelector('#chart-rps').dataset.baseline === '3'",
    )
    .await;
    let drawn = until(
        browser,
        "the baseline series in the legend",
        "[...document.querySelectorAll('#chart-rps .u-legend .u-label')].map((e) => e.textContent).join('|')",
    )
    .await;
    assert!(drawn.as_str().unwrap().contains("Baseline RPS"), "{drawn}");
    screenshot(browser, "history-baseline.png").await;
}
