//! Script extensions in a real browser (headless Chromium): the view's tab
//! shows the endpoints ranked by error rate from a live run, with its
//! figures and chart, and markup from the script stays text; the action
//! under it refuses a bad value in the page, then resets the target and
//! shows the result; a view whose script fails shows the error with the
//! script's file and line in place, and the rest of the page carries on;
//! an action that fails says so where its result would be.
//!
//! Skips (passing, with a message) when Chromium or chromedriver is absent,
//! except under `CI=true`, where that fails.

mod web_ext_support;
mod web_support;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::Duration;

use fantoccini::Client;
use serde_json::json;
use web_ext_support::*;
use web_support::browser::*;
use web_support::with_browser;

const TEST_LIMIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn script_views_and_actions_in_chromium() {
    in_chromium("ext", TEST_LIMIT, |chromium, chromedriver, profile| async move {
        drive(&chromium, &chromedriver, &profile).await
    })
    .await;
}

async fn drive(chromium: &Path, chromedriver: &Path, profile: &Path) {
    let h = ExtHarness::start().await;
    let app = h.router(h.config("/swarmer"));
    h.run(&app, "/swarmer").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/swarmer/", listener.local_addr().unwrap());
    tokio::spawn(master::web::run(
        listener,
        h.master.clone(),
        h.config("/swarmer"),
        h.shutdown.clone(),
    ));
    with_browser(chromium, chromedriver, profile, |browser| async move {
        steps(&browser, &h, &url).await
    })
    .await;
}

async fn steps(browser: &Client, h: &ExtHarness, url: &str) {
    browser.goto(url).await.expect("the page loads");
    until(
        browser,
        "the view's tab",
        "document.querySelector('#tab-ext-error-rate')",
    )
    .await;
    click(browser, "#tab-ext-error-rate").await;
    let panel = "#panel-ext-error-rate";
    let first = until(
        browser,
        "the ranked table",
        &format!("document.querySelector('{panel} table.ext-table tbody td')?.textContent"),
    )
    .await;
    assert_eq!(first, json!("POST /checkout"), "the worst endpoint first");
    let last = until(
        browser,
        "the best endpoint last",
        &format!(
            "[...document.querySelectorAll('{panel} table.ext-table tbody tr')].pop()?.cells[0].textContent"
        ),
    )
    .await;
    assert_eq!(last, json!("GET /"));
    until(
        browser,
        "the chart",
        &format!("document.querySelector('{panel} .ext-chart canvas')?.width > 0"),
    )
    .await;
    let markup = until(
        browser,
        "the figure with markup",
        &format!("[...document.querySelectorAll('{panel} .ext-figures dd')].map(d => d.textContent).join('|')"),
    )
    .await;
    assert!(markup.as_str().unwrap().contains("<img src=x"), "{markup}");
    let injected = browser
        .execute(
            &format!("return document.querySelectorAll('{panel} img').length"),
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(injected, json!(0), "script text must never become markup");
    screenshot(browser, "ext-view.png").await;

    reset_action(browser, h, panel).await;
    failures_in_place(browser, h).await;
}

/// The action under the view: refused in the page first, then run.
async fn reset_action(browser: &Client, h: &ExtHarness, panel: &str) {
    let form = format!("{panel} #action-reset-target");
    until(
        browser,
        "the action's form",
        &format!("document.querySelector('{form}')"),
    )
    .await;
    run_js(
        browser,
        "document.querySelector('#action-reset-target-confirm').value = 'yes'",
    )
    .await;
    type_into(browser, "#action-reset-target-n", "-1").await;
    click(browser, &format!("{form} button[type=submit]")).await;
    let refused = until(
        browser,
        "the page's refusal",
        "document.querySelector('#action-reset-target-result.bad')?.textContent",
    )
    .await;
    assert!(
        refused.as_str().unwrap().contains("at least 0"),
        "{refused}"
    );
    assert!(
        h.target.served.load(Ordering::Relaxed) > 0,
        "nothing was reset yet"
    );

    type_into(browser, "#action-reset-target-n", "2").await;
    type_into(browser, "#action-reset-target-note", "from the browser").await;
    click(browser, &format!("{form} button[type=submit]")).await;
    let done = until(
        browser,
        "the action's result",
        "document.querySelector('#action-reset-target-result.ok')?.textContent",
    )
    .await;
    let done = done.as_str().unwrap();
    assert!(
        done.contains("Target reset") && done.contains("served_before"),
        "{done}"
    );
    screenshot(browser, "ext-action.png").await;
}

/// Script errors are shown where their output would be; the page goes on.
async fn failures_in_place(browser: &Client, h: &ExtHarness) {
    // The header stays on top when the page scrolls: go back up to the tabs.
    run_js(browser, "window.scrollTo(0, 0)").await;
    click(browser, "#tab-ext-broken").await;
    let error = until(
        browser,
        "the view's error",
        "document.querySelector('#panel-ext-broken .ext-error')?.textContent",
    )
    .await;
    let line = line_of("return missing.field");
    assert!(
        error
            .as_str()
            .unwrap()
            .starts_with(&format!("{SCRIPT_PATH}:{line}:")),
        "{error}"
    );
    screenshot(browser, "ext-error.png").await;

    click(browser, "#tab-ext-actions").await;
    until(
        browser,
        "the actions tab",
        "document.querySelector('#action-fail')",
    )
    .await;
    click(browser, "#action-fail button[type=submit]").await;
    let failed = until(
        browser,
        "the failed action's message",
        "document.querySelector('#action-fail-result.bad')?.textContent",
    )
    .await;
    let line = line_of("this action always fails");
    let expected = format!("{SCRIPT_PATH}:{line}: this action always fails");
    assert!(failed.as_str().unwrap().contains(&expected), "{failed}");

    // The page and the run carry on.
    run_js(browser, "window.scrollTo(0, 0)").await;
    click(browser, "#tab-statistics").await;
    until(
        browser,
        "statistics still updating",
        "document.querySelectorAll('#stats-table tbody tr').length >= 4",
    )
    .await;
    until(
        browser,
        "the run still running",
        "document.querySelector('#fig-state').textContent === 'running'",
    )
    .await;
    assert!(h.master.snapshot().state.is_active());
}
