//! The UI's run loop in headless Chromium (issue 18, items 6 to 9), against
//! the web server on a loopback socket with a real in-process worker:
//! the About line, the run clock, the failure badge, the Current ratio tab,
//! the column picker (kept across a reload), a drag-zoom kept across live
//! updates until a double-click and a legend with the latest values, RPS 0
//! once stopped, the confirmation before a reset wipes a finished run (the
//! table and the charts then empty together), the remembered run form, and
//! the lost-connection banner when the web server goes away and comes back.
//!
//! Skips (passing, with a message) when Chromium or chromedriver is absent,
//! except under `CI=true`, where that fails (see `web_support/browser.rs`).

mod web_support;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
use fantoccini::{Client, Locator};
use master::RunState;
use master::web::WebConfig;
use serde_json::json;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use web_support::browser::*;
use web_support::*;

const TEST_LIMIT: Duration = Duration::from_secs(150);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_run_loop_in_chromium() {
    in_chromium("run-loop", TEST_LIMIT, |chromium, chromedriver, profile| async move {
        drive(&chromium, &chromedriver, &profile).await
    })
    .await;
}

/// The web server on `listener` until `stop`, which this test cancels to
/// take the server away while the master goes on.
fn serve(
    h: &Harness,
    listener: tokio::net::TcpListener,
    stop: &CancellationToken,
) -> JoinHandle<std::io::Result<()>> {
    let config = WebConfig {
        max_workers: 4,
        ..WebConfig::default()
    };
    tokio::spawn(master::web::run(
        listener,
        h.master.clone(),
        config,
        stop.clone(),
    ))
}

async fn drive(chromium: &Path, chromedriver: &Path, profile: &Path) {
    let h = Harness::with_worker().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let server = serve(&h, listener, &stop);
    with_browser(chromium, chromedriver, profile, |browser| async move {
        steps(&browser, &h, addr, &stop, server).await
    })
    .await;
}

async fn steps(
    browser: &Client,
    h: &Harness,
    addr: SocketAddr,
    stop: &CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
) {
    browser
        .goto(&format!("http://{addr}/"))
        .await
        .expect("the page loads");
    until(
        browser,
        "the start dialog",
        "document.querySelector('#run-dialog').open",
    )
    .await;
    let about = until(
        browser,
        "the About line",
        "document.querySelector('#about')?.textContent",
    )
    .await;
    assert!(
        about.as_str().unwrap().contains(env!("CARGO_PKG_VERSION")),
        "{about}"
    );

    start_from_the_form(browser, h).await;
    clock_and_badge(browser, h).await;
    ratio_tab(browser).await;
    column_picker(browser).await;
    zoom_and_legend(browser).await;

    click(browser, "#stop-button").await;
    h.wait_for(|s| s.state == RunState::Stopped).await;
    until(
        browser,
        "the stopped state",
        "document.querySelector('#fig-state').textContent === 'stopped'",
    )
    .await;
    until(
        browser,
        "RPS 0 once stopped",
        "document.querySelector('#fig-rps').textContent === '0'",
    )
    .await;
    reset_confirmed(browser, h).await;
    remembered(browser).await;
    lost_connection(browser, h, addr, stop, server).await;
}

async fn start_from_the_form(browser: &Client, h: &Harness) {
    type_into(browser, "#run-form [name=user_count]", "3").await;
    type_into(browser, "#run-form [name=spawn_rate]", "50").await;
    type_into(browser, "#run-form [name=run_time]", "5m").await;
    // Only Browse: the remembered form must bring the choice back.
    click(browser, "#user-types input[value=Buy]").await;
    click(browser, "#run-submit").await;
    until(
        browser,
        "the dialog to close",
        "!document.querySelector('#run-dialog').open",
    )
    .await;
    h.wait_for(|s| s.user_count == 3).await;
    let kept = until(
        browser,
        "the kept form",
        "localStorage.getItem('swarmer-run-form')",
    )
    .await;
    let kept: serde_json::Value = serde_json::from_str(kept.as_str().unwrap()).unwrap();
    assert_eq!(kept["user_count"], "3");
    assert_eq!(kept["run_time"], "5m");
    assert_eq!(kept["user_types"], json!(["Browse"]));
}

async fn clock_and_badge(browser: &Client, h: &Harness) {
    // "00:02 · 04:58 left": elapsed and remaining add up to the run time.
    let clock = until(
        browser,
        "the run clock past its first second",
        "(() => { const t = document.querySelector('#fig-clock').textContent; \
          return !document.querySelector('#fig-clock-box').hidden && /^\\d\\d:\\d\\d · \\d\\d:\\d\\d left$/.test(t) \
            && !t.startsWith('00:00') && t; })()",
    )
    .await;
    let text = clock.as_str().unwrap();
    let secs = |mmss: &str| {
        let (m, s) = mmss.split_once(':').unwrap();
        m.parse::<u64>().unwrap() * 60 + s.parse::<u64>().unwrap()
    };
    let (elapsed, left) = text.trim_end_matches(" left").split_once(" · ").unwrap();
    let sum = secs(elapsed) + secs(left);
    assert!((299..=300).contains(&sum), "{text}");

    // No failures yet (Browse only succeeds): no badge.
    let badge = browser
        .execute(
            "return document.querySelector('#tab-failures .badge')",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(badge, json!(null));
    // Buy fails on purpose; a retune cannot add a type, so a second run
    // of both types starts through the API.
    let app = h.default_router();
    let stopped = send(&app, post("/api/v1/run/stop")).await;
    assert_eq!(stopped.status, 200, "{}", stopped.body);
    h.wait_for(|s| s.state == RunState::Stopped).await;
    let both = json!({ "users": 4, "spawn_rate": 50, "run_time": "5m" });
    let started = send(&app, web_support::json("POST", "/api/v1/run", both)).await;
    assert_eq!(started.status, 200, "{}", started.body);
    h.wait_for(|s| s.stats.num_failures() > 0).await;
    let shown = until(
        browser,
        "the failure badge",
        "Number(document.querySelector('#tab-failures .badge')?.textContent.replace(/\\D/g, ''))",
    )
    .await;
    let failures = h.master.snapshot().stats.num_failures();
    assert!(
        shown.as_u64().unwrap() > 0 && shown.as_u64().unwrap() <= failures,
        "{shown} of {failures}"
    );
}

async fn ratio_tab(browser: &Client) {
    click(browser, "#tab-ratio").await;
    let per_class = until(
        browser,
        "the ratios per user type",
        "document.querySelector('#ratio-per-class')?.textContent",
    )
    .await;
    let per_class = per_class.as_str().unwrap();
    // Browse weighs 3, Buy 1.
    assert!(per_class.contains("75% Browse"), "{per_class}");
    assert!(per_class.contains("25% Buy"), "{per_class}");
    let total_items = until(
        browser,
        "the total ratios",
        "document.querySelectorAll('#ratio-total li').length",
    )
    .await;
    // Two types and three tasks.
    assert_eq!(total_items, json!(5));
}

async fn column_picker(browser: &Client) {
    click(browser, "#tab-statistics").await;
    until(
        browser,
        "statistics rows",
        "document.querySelectorAll('#stats-table tbody tr').length >= 2",
    )
    .await;
    click(browser, "#column-picker summary").await;
    click(browser, "#column-picker input[value=avg_content_length]").await;
    let hidden = until(
        browser,
        "the size column hidden",
        "(() => { const th = [...document.querySelectorAll('#stats-table thead th')].find(t => t.textContent.startsWith('Avg size')); \
          const i = [...th.parentNode.children].indexOf(th); \
          const cells = [...document.querySelectorAll('#stats-table tbody tr')].map(r => r.children[i]); \
          return th.hidden && cells.length > 0 && cells.every(c => c.hidden); })()",
    )
    .await;
    assert_eq!(hidden, json!(true));
    screenshot(browser, "run-loop-columns.png").await;
}

/// The first chart's x range as uPlot has it, "min,max" in seconds.
const X_RANGE: &str = "document.querySelector('#chart-rps').dataset.xRange";

async fn zoom_and_legend(browser: &Client) {
    click(browser, "#tab-charts").await;
    until(
        browser,
        "chart points",
        "Number(document.querySelector('#chart-rps').dataset.points) >= 4",
    )
    .await;
    // The legend shows the latest figures without a hover.
    let legend = until(
        browser,
        "the legend's values",
        "[...document.querySelectorAll('#chart-rps .u-legend .u-series')].slice(0, 2).map(r => r.querySelector('.u-value')?.textContent).join('|')",
    )
    .await;
    let legend = legend.as_str().unwrap();
    assert!(!legend.contains("--") && !legend.contains('—'), "{legend}");
    let (time, rps) = legend.split_once('|').unwrap();
    assert!(regex_like_hms(time), "{legend}");
    assert!(
        rps.replace([',', '.'], "").parse::<u64>().is_ok(),
        "{legend}"
    );

    // Drag across the middle of the plot with the pointer, as a user
    // selects a span.
    let over = browser
        .find(Locator::Css("#chart-rps .u-over"))
        .await
        .expect("the plot area");
    let drag = MouseActions::new("mouse".into())
        .then(PointerAction::MoveToElement {
            element: over,
            duration: None,
            x: -80.0,
            y: 0.0,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::MoveBy {
            duration: Some(Duration::from_millis(300)),
            x: 160.0,
            y: 0.0,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    browser.perform_actions(drag).await.expect("a drag");
    // Off the chart, so the legend goes back to the latest values.
    let away = MouseActions::new("mouse".into()).then(PointerAction::MoveTo {
        duration: None,
        x: 5.0,
        y: 5.0,
    });
    browser.perform_actions(away).await.expect("a move away");
    until(
        browser,
        "a zoom",
        "document.querySelector('#chart-rps').dataset.zoomed",
    )
    .await;
    let range = until(browser, "the zoomed range", X_RANGE).await;
    // Live points arrive; the zoom stays.
    let points = until(
        browser,
        "points",
        "Number(document.querySelector('#chart-rps').dataset.points)",
    )
    .await;
    let later = format!(
        "Number(document.querySelector('#chart-rps').dataset.points) >= {}",
        points.as_u64().unwrap() + 2
    );
    until(browser, "two more live points", &later).await;
    let after = browser
        .execute(&format!("return {X_RANGE}"), vec![])
        .await
        .unwrap();
    assert_eq!(after, range, "a live update kept the zoom");
    screenshot(browser, "run-loop-zoomed.png").await;

    // A double-click shows the whole run again, and live updates follow it.
    let over = browser
        .find(Locator::Css("#chart-rps .u-over"))
        .await
        .expect("the plot area");
    let click_once = |m: MouseActions| {
        m.then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        })
    };
    let to_plot = MouseActions::new("mouse".into()).then(PointerAction::MoveToElement {
        element: over,
        duration: None,
        x: 0.0,
        y: 0.0,
    });
    let double = click_once(click_once(to_plot));
    browser
        .perform_actions(double)
        .await
        .expect("a double-click");
    until(
        browser,
        "the zoom gone",
        "document.querySelector('#chart-rps').dataset.zoomed === ''",
    )
    .await;
    let unzoomed = until(
        browser,
        "the whole range",
        &format!("{X_RANGE} !== {range}"),
    )
    .await;
    assert_eq!(unzoomed, json!(true));
    // Last: the resize moves the plot under any pointer action.
    time_labels_at_1024px(browser).await;
}

/// In the run's first minute and at 1024 px, the time labels are short,
/// whole seconds, never the same twice, and apart enough not to overlap.
async fn time_labels_at_1024px(browser: &Client) {
    browser.set_window_size(1024, 900).await.expect("a resize");
    until(browser, "the narrow layout", "window.innerWidth <= 1024").await;
    // A redraw after the resize, with a live point.
    let points = until(
        browser,
        "points",
        "Number(document.querySelector('#chart-rps').dataset.points)",
    )
    .await;
    let later = format!(
        "Number(document.querySelector('#chart-rps').dataset.points) > {}",
        points.as_u64().unwrap()
    );
    until(browser, "a live point", &later).await;
    for id in ["chart-rps", "chart-times", "chart-users"] {
        let axis = browser
            .execute(
                &format!("const d = document.querySelector('#{id} .uplot').dataset; return [d.xLabels, d.xGapPx];"),
                vec![],
            )
            .await
            .unwrap();
        let labels: Vec<&str> = axis[0].as_str().unwrap().split(' ').collect();
        assert!(labels.iter().all(|l| regex_like_hms(l)), "{id}: {axis}");
        let unique: std::collections::BTreeSet<_> = labels.iter().collect();
        assert_eq!(unique.len(), labels.len(), "{id}: {axis}");
        if labels.len() > 1 {
            let gap: u32 = axis[1].as_str().unwrap().parse().unwrap();
            assert!(gap >= 70, "{id}: labels {gap} px apart: {axis}");
        }
    }
    screenshot(browser, "run-loop-charts-1024.png").await;
    browser.set_window_size(1400, 1000).await.expect("a resize");
    until(browser, "the wide layout", "window.innerWidth > 1024").await;
}

fn regex_like_hms(text: &str) -> bool {
    let parts: Vec<&str> = text.split(':').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| p.len() == 2 && p.parse::<u8>().is_ok())
}

async fn reset_confirmed(browser: &Client, h: &Harness) {
    let before = h.master.snapshot().stats.num_requests();
    assert!(before > 0);
    // Declined: nothing is wiped.
    run_js(
        browser,
        "window.asked = ''; window.confirm = (m) => { window.asked = m; return false; };",
    )
    .await;
    click(browser, "#reset-button").await;
    let asked = until(browser, "the confirmation", "window.asked").await;
    assert!(asked.as_str().unwrap().contains("wiped"), "{asked}");
    assert!(h.master.snapshot().stats.num_requests() >= before);

    // Accepted: the table and the charts empty together.
    run_js(browser, "window.confirm = () => true;").await;
    click(browser, "#reset-button").await;
    h.wait_for(|s| s.stats.num_requests() == 0).await;
    until(
        browser,
        "the charts emptied",
        "document.querySelector('#chart-rps').dataset.points === '0'",
    )
    .await;
    click(browser, "#tab-statistics").await;
    until(
        browser,
        "the table emptied",
        "document.querySelectorAll('#stats-table tbody tr').length === 0",
    )
    .await;
}

async fn remembered(browser: &Client) {
    // A reload keeps the hidden column and the last run's form values.
    browser.refresh().await.expect("a reload");
    until(
        browser,
        "the size column still hidden",
        "[...document.querySelectorAll('#stats-table thead th')].find(t => t.textContent.startsWith('Avg size'))?.hidden",
    )
    .await;
    click(browser, "#start-button").await;
    until(
        browser,
        "the start dialog",
        "document.querySelector('#run-dialog').open",
    )
    .await;
    let values = browser
        .execute(
            "const f = document.querySelector('#run-form').elements; \
             return [f.user_count.value, f.spawn_rate.value, f.run_time.value, \
               [...document.querySelectorAll('#user-types input:checked')].map(b => b.value).join()];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(values, json!(["3", "50", "5m", "Browse"]));
    click(browser, "#run-cancel").await;
}

async fn lost_connection(
    browser: &Client,
    h: &Harness,
    addr: SocketAddr,
    stop: &CancellationToken,
    server: JoinHandle<std::io::Result<()>>,
) {
    until(
        browser,
        "a live page",
        "document.querySelector('#live').classList.contains('on')",
    )
    .await;
    assert!(!banner_shown(browser).await);
    stop.cancel();
    tokio::time::timeout(MAX_WAIT, server)
        .await
        .expect("the web server stopped in time")
        .unwrap()
        .unwrap();
    let text = until(
        browser,
        "the lost-connection banner",
        "(() => { const b = document.querySelector('#connection-lost'); return b && !b.hidden && b.textContent; })()",
    )
    .await;
    let text = text.as_str().unwrap();
    let since = text
        .split("data frozen since ")
        .nth(1)
        .and_then(|t| t.get(..8))
        .unwrap_or_default();
    assert!(regex_like_hms(since), "{text}");
    screenshot(browser, "run-loop-lost.png").await;

    // The server comes back on the same address: the banner goes.
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let again = CancellationToken::new();
    let _server = serve(h, listener, &again);
    until(
        browser,
        "the banner gone",
        "document.querySelector('#connection-lost').hidden",
    )
    .await;
    again.cancel();
}

async fn banner_shown(browser: &Client) -> bool {
    let shown = browser
        .execute(
            "return !document.querySelector('#connection-lost').hidden",
            vec![],
        )
        .await
        .unwrap();
    shown == json!(true)
}
