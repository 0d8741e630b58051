//! The UI in a real browser: headless Chromium driven over WebDriver
//! (chromedriver + fantoccini) against the web server on a loopback socket,
//! with a real in-process worker running users against a local target.
//!
//! It loads the page, starts a run from the form (after the form refuses a
//! bad value), sees the statistics table fill, the phases table fill and a
//! chart draw, changes the user count, drives the scale form, stops the
//! run, and saves screenshots under the target directory.
//!
//! Skips (passing, with a message) when Chromium or chromedriver is absent,
//! except under `CI=true`, where that fails;
//! `apt-get install -y chromium chromium-driver` provides both. Override the
//! paths with SWARMER_CHROMIUM and SWARMER_CHROMEDRIVER.

mod web_support;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use fantoccini::Client;
use master::RunState;
use master::scale::Scaler;
use master::web::WebConfig;
use serde_json::json;
use web_support::browser::*;
use web_support::*;

const TEST_LIMIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_runs_a_test_in_chromium() {
    in_chromium("ui", TEST_LIMIT, |chromium, chromedriver, profile| async move {
        drive(&chromium, &chromedriver, &profile).await
    })
    .await;
}

async fn drive(chromium: &Path, chromedriver: &Path, profile: &Path) {
    let h = Harness::with_worker().await;
    let scaler = Arc::new(FakeScaler::default());
    *scaler.desired.lock().unwrap() = 1;
    let config = WebConfig {
        base_path: "/swarmer".into(),
        scaler: Some(scaler.clone() as Arc<dyn Scaler>),
        max_workers: 4,
        ..WebConfig::default()
    };
    let url = serve_web(&h.master, config, &h.shutdown).await;

    with_browser(chromium, chromedriver, profile, |browser| async move {
        steps(&browser, &h, &scaler, &url).await
    })
    .await;
}

async fn steps(browser: &Client, h: &Harness, scaler: &FakeScaler, url: &str) {
    browser.goto(url).await.expect("the page loads");
    // A fresh master opens the start form by itself.
    until(
        browser,
        "the start dialog",
        "document.querySelector('#run-dialog').open",
    )
    .await;
    until(
        browser,
        "the user types",
        "document.querySelectorAll('#user-types input').length === 2",
    )
    .await;

    // The browser refuses a bad value before anything is sent.
    type_into(browser, "#run-form [name=user_count]", "-3").await;
    type_into(browser, "#run-form [name=spawn_rate]", "20").await;
    click(browser, "#run-submit").await;
    let error = until(
        browser,
        "the form's message",
        "document.querySelector('#run-error').textContent",
    )
    .await;
    assert!(error.as_str().unwrap().contains("whole number"), "{error}");
    assert_eq!(h.master.snapshot().state, RunState::Ready);
    screenshot(browser, "start-form.png").await;

    type_into(browser, "#run-form [name=user_count]", "5").await;
    click(browser, "#run-submit").await;
    until(
        browser,
        "the dialog to close",
        "!document.querySelector('#run-dialog').open",
    )
    .await;
    h.wait_for(|s| s.target_users == 5).await;

    // The statistics table fills.
    until(
        browser,
        "statistics rows",
        "document.querySelectorAll('#stats-table tbody tr').length >= 3",
    )
    .await;
    let total = until(
        browser,
        "aggregated requests",
        "(() => { const c = document.querySelectorAll('#stats-table tfoot td'); \
          return c.length && c[1].textContent === 'Aggregated' && Number(c[2].textContent.replace(/\\D/g, '')) > 0; })()",
    )
    .await;
    assert_eq!(total, json!(true));
    until(
        browser,
        "the header's users",
        "document.querySelector('#fig-users').textContent === '5'",
    )
    .await;
    screenshot(browser, "statistics.png").await;

    // The phases of the HTTP entries: a row per entry with numbers, the
    // Aggregated row in the footer.
    click(browser, "#tab-phases").await;
    until(
        browser,
        "phase rows",
        "document.querySelectorAll('#phases-table tbody tr').length >= 3 && \
         document.querySelector('#panel-phases .empty').hidden",
    )
    .await;
    let footer = until(
        browser,
        "the aggregated phases",
        "(() => { const c = [...document.querySelectorAll('#phases-table tfoot td')]; \
          return c.length === 11 && c[1].textContent === 'Aggregated' && \
            c.slice(2).every(td => /^[0-9.,]+$/.test(td.textContent)) && Number(c[8].textContent) > 0; })()",
    )
    .await;
    assert_eq!(footer, json!(true));
    screenshot(browser, "phases.png").await;

    // A chart draws, with points from the run.
    click(browser, "#tab-charts").await;
    until(
        browser,
        "a chart canvas",
        "document.querySelector('#chart-rps canvas')?.width > 0",
    )
    .await;
    until(
        browser,
        "chart points",
        "Number(document.querySelector('#chart-rps').dataset.points) >= 2",
    )
    .await;
    screenshot(browser, "charts.png").await;

    // The failure group of the failing task, fetched into its tab.
    click(browser, "#tab-failures").await;
    until(
        browser,
        "the /checkout failure group",
        "[...document.querySelectorAll('#failures-table tbody tr')].some(r => r.textContent.includes('/checkout'))",
    )
    .await;
    click(browser, "#tab-exceptions").await;
    until(
        browser,
        "the exceptions tab, empty for this script",
        "document.querySelector('#exceptions-table') !== null && !document.querySelector('#panel-exceptions .empty').hidden",
    )
    .await;

    // Change the running test's users.
    click(browser, "#edit-button").await;
    until(
        browser,
        "the edit dialog",
        "document.querySelector('#run-dialog').open",
    )
    .await;
    type_into(browser, "#run-form [name=user_count]", "8").await;
    click(browser, "#run-submit").await;
    h.wait_for(|s| s.target_users == 8 && s.user_count == 8)
        .await;
    until(
        browser,
        "8 users shown",
        "document.querySelector('#fig-users').textContent === '8'",
    )
    .await;

    scale_form(browser, scaler).await;

    click(browser, "#stop-button").await;
    h.wait_for(|s| s.state == RunState::Stopped).await;
    until(
        browser,
        "the stopped state",
        "document.querySelector('#fig-state').textContent === 'stopped'",
    )
    .await;
    click(browser, "#tab-statistics").await;
    screenshot(browser, "stopped.png").await;

    // The theme button (light by default in headless Chromium) turns dark
    // mode on; the charts redraw in its colours.
    click(browser, "#theme-button").await;
    until(
        browser,
        "dark mode",
        "document.documentElement.dataset.theme === 'dark'",
    )
    .await;
    click(browser, "#tab-charts").await;
    until(
        browser,
        "charts after the theme change",
        "document.querySelector('#chart-rps canvas')?.width > 0",
    )
    .await;
    screenshot(browser, "charts-dark.png").await;
}

/// The Workers tab's scale form: bad values are refused in the page, a
/// good one reaches the scaler.
async fn scale_form(browser: &Client, scaler: &FakeScaler) {
    click(browser, "#tab-workers").await;
    until(
        browser,
        "the worker row",
        "document.querySelectorAll('#workers-table tbody tr').length === 1",
    )
    .await;
    until(
        browser,
        "the desired count",
        "document.querySelector('#scale-desired').textContent === '1'",
    )
    .await;
    for (bad, expected) in [
        ("1.5", "whole number"),
        ("9", "At most 4"),
        ("-1", "negative"),
    ] {
        type_into(browser, "#scale-input", bad).await;
        click(browser, "#scale-submit").await;
        let note = until(
            browser,
            "the scale message",
            "document.querySelector('#scale-note.bad')?.textContent",
        )
        .await;
        assert!(note.as_str().unwrap().contains(expected), "{bad}: {note}");
    }
    assert!(scaler.calls().is_empty(), "a bad count reached the scaler");
    type_into(browser, "#scale-input", "3").await;
    click(browser, "#scale-submit").await;
    until(
        browser,
        "the new desired count",
        "document.querySelector('#scale-desired').textContent === '3'",
    )
    .await;
    assert_eq!(scaler.calls(), [3]);
    let note = until(
        browser,
        "the scaling note",
        "document.querySelector('#scale-note').textContent",
    )
    .await;
    assert!(note.as_str().unwrap().contains("1 of 3"), "{note}");
    screenshot(browser, "workers.png").await;
}
