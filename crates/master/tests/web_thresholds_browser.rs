//! Threshold badges in headless Chromium: the master judges its thresholds
//! on every snapshot and the page shows one badge each, red while crossed,
//! green once it holds, grey without data. Also the same checks in the
//! stats JSON. Skips like the other browser tests when Chromium or
//! chromedriver is absent (fails under `CI=true`).

mod web_support;

use std::path::Path;
use std::time::Duration;

use fantoccini::Client;
use master::RunState;
use master::web::WebConfig;
use web_support::browser::*;
use web_support::*;

const THRESHOLDS: [&str; 3] = [
    // Crossed before the run (0 requests), holds once it has run a little.
    "requests > 20",
    // `Buy` posts to /checkout, which always fails: crossed once it ran.
    "POST /checkout: failures == 0",
    // No data before the first request; then holds.
    "p95 < 10s",
];

fn badge_state(expr: &str) -> String {
    format!(
        "(() => {{ const b = [...document.querySelectorAll('#thresholds .threshold')]\
           .find((e) => e.dataset.expr === {expr:?}); return b ? b.dataset.state : null; }})()"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn badges_turn_red_while_a_threshold_is_crossed() {
    in_chromium("thresholds", Duration::from_secs(90), |chromium, chromedriver, profile| async move {
        drive(&chromium, &chromedriver, &profile).await
    })
    .await;
}

async fn drive(chromium: &Path, chromedriver: &Path, profile: &Path) {
    let h = Harness::with_thresholds(&THRESHOLDS).await;
    h.attach_worker("thresholds-worker");
    h.wait_for(|s| s.worker_count == 1).await;
    let url = format!(
        "{}#statistics",
        serve_web(&h.master, WebConfig::default(), &h.shutdown).await
    );
    with_browser(chromium, chromedriver, profile, |browser| async move {
        steps(&browser, &h, &url).await
    })
    .await;
}

async fn steps(browser: &Client, h: &Harness, url: &str) {
    browser.goto(url).await.expect("the page loads");
    let count = until(
        browser,
        "three badges",
        "(() => { const n = document.querySelectorAll('#thresholds .threshold').length; \
          return !document.querySelector('#thresholds').hidden && n === 3 && n; })()",
    )
    .await;
    assert_eq!(count, 3);
    let before = until(browser, "the requests badge", &badge_state("requests > 20")).await;
    assert_eq!(before, "crossed", "0 requests before the run");
    let p95 = until(browser, "the p95 badge", &badge_state("p95 < 10s")).await;
    assert_eq!(p95, "nodata");
    let red = until(
        browser,
        "a crossed badge's colour",
        "(() => { const b = document.querySelector('#thresholds .threshold.crossed'); \
          return b && getComputedStyle(b).backgroundColor; })()",
    )
    .await;
    assert!(
        red.as_str().unwrap().starts_with("rgb(185, 28, 28)")
            || red.as_str().unwrap().starts_with("rgb(248, 113, 113)"),
        "{red}"
    );

    h.master
        .start_run(master::RunRequest {
            users: 4,
            spawn_rate: 100.0,
            host: None,
            run_time: None,
            user_types: vec![],
            profile: None,
        })
        .await
        .expect("the run starts");
    until(
        browser,
        "the requests badge turning green",
        &format!("{} === 'ok'", badge_state("requests > 20")),
    )
    .await;
    until(
        browser,
        "the checkout badge turning red",
        &format!("{} === 'crossed'", badge_state("failures == 0")),
    )
    .await;
    until(
        browser,
        "the p95 badge turning green",
        &format!("{} === 'ok'", badge_state("p95 < 10s")),
    )
    .await;
    let title = until(
        browser,
        "the crossed badge's explanation",
        "(() => { const b = document.querySelector('#thresholds .threshold.crossed'); return b && b.title; })()",
    )
    .await;
    let title = title.as_str().unwrap();
    assert!(
        title.contains("POST /checkout: failures == 0: observed ") && title.contains("limit == 0"),
        "{title}"
    );
    screenshot(browser, "threshold-badges.png").await;

    // The same checks in the API, as the master judged them.
    let snap = h.master.snapshot();
    let stats = send(&h.default_router(), get("/api/v1/stats")).await.json();
    let listed: Vec<&str> = stats["thresholds"]
        .as_array()
        .expect("thresholds in /api/v1/stats")
        .iter()
        .map(|c| c["expr"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["requests > 20", "failures == 0", "p95 < 10s"]);
    assert_eq!(snap.checks.len(), 3);
    h.master.stop_run().await.expect("the run stops");
    h.wait_for(|s| s.state == RunState::Stopped).await;
}
