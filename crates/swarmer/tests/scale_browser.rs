//! The Workers tab's scale form, driven in headless Chromium against a
//! real `swarmer --master --scaler local`: the form moves real worker
//! processes, the page shows desired and connected side by side while they
//! move and the truth once they settle, and a bad count is refused in the
//! page without reaching the scaler.
//!
//! Skips with a message when Chromium or chromedriver is missing, except
//! in CI (`CI=true`), where that fails the test.

// Shared with the master's browser tests; not every helper is used here.
#[allow(dead_code)]
#[path = "../../master/tests/web_support/browser.rs"]
mod browser;
mod common;

use std::path::Path;
use std::time::Duration;

use browser::*;
use common::{Proc, TempDir, free_port, http_get, poll};

const IDLE: &str = r#"
local Idle = swarmer.user { name = "Idle", wait = swarmer.constant(1), host = "http://127.0.0.1:9" }
Idle:task(function(self) end)
"#;

const LIMIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scale_form_moves_local_workers() {
    in_chromium(
        "scale",
        LIMIT,
        |chromium, chromedriver, profile| async move {
            scale_with_the_form(&chromium, &chromedriver, &profile).await
        },
    )
    .await;
}

async fn scale_with_the_form(chromium: &Path, chromedriver: &Path, profile: &Path) {
    let dir = TempDir::new("scale-browser");
    let script = dir.write("idle.lua", IDLE);
    let (web, workers) = (free_port().to_string(), free_port().to_string());
    let master = Proc::swarmer(
        "master",
        dir.path(),
        &[
            "-f",
            &script,
            "--master",
            "--master-bind-host",
            "127.0.0.1",
            "--master-bind-port",
            &workers,
            "--web-host",
            "127.0.0.1",
            "--web-port",
            &web,
            "--scaler",
            "local",
            "--workers",
            "1",
            "--max-workers",
            "4",
            "--cores",
            "1",
            "--heartbeat-interval",
            "500ms",
        ],
    );
    let url = format!("http://127.0.0.1:{web}");
    let scale = |want: u64| {
        let url = format!("{url}/api/v1/workers/scale");
        poll(LIMIT, move || {
            // Refused until the web server is up: keep polling.
            let (_, body) = http_get(&url).ok()?;
            let s: serde_json::Value = serde_json::from_str(&body).ok()?;
            (s["connected"] == want && s["desired"] == want).then_some(s)
        })
    };
    scale(1).expect("the first local worker connects");
    drive(chromium, chromedriver, profile, &url).await;
    assert!(
        scale(2).is_some(),
        "the master ends with the 2 workers the form asked for: {}",
        master.tail(30)
    );
}

async fn drive(chromium: &Path, chromedriver: &Path, profile: &Path, url: &str) {
    let driver = start_driver(chromedriver).await;
    let browser = open_browser(&driver, chromium, profile).await;
    // A link to the Workers tab (where POST /rescale lands too) skips the
    // start form a fresh master offers.
    browser
        .goto(&format!("{url}/#workers"))
        .await
        .expect("the page loads");
    until(
        &browser,
        "one connected",
        "document.querySelector('#scale-connected')?.textContent === '1'",
    )
    .await;

    type_into(&browser, "#scale-input", "9").await;
    click(&browser, "#scale-submit").await;
    let note = until(
        &browser,
        "a refusal",
        "document.querySelector('#scale-note.bad')?.textContent",
    )
    .await;
    assert!(note.as_str().unwrap().contains("At most 4"), "{note}");

    type_into(&browser, "#scale-input", "3").await;
    click(&browser, "#scale-submit").await;
    until(
        &browser,
        "3 desired",
        "document.querySelector('#scale-desired').textContent === '3'",
    )
    .await;
    until(
        &browser,
        "3 connected",
        "document.querySelector('#scale-connected').textContent === '3'",
    )
    .await;
    until(
        &browser,
        "3 rows of live workers",
        "[...document.querySelectorAll('#workers-table tbody tr')].filter(r => !r.textContent.includes('lost')).length === 3",
    )
    .await;
    screenshot(&browser, "scale-local-3.png").await;

    type_into(&browser, "#scale-input", "2").await;
    click(&browser, "#scale-submit").await;
    until(
        &browser,
        "2 connected",
        "document.querySelector('#scale-connected').textContent === '2'",
    )
    .await;
    screenshot(&browser, "scale-local-2.png").await;
    let _ = browser.close().await;
}
