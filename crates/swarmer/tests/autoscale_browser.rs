//! The Workers tab's autoscaling line, in headless Chromium against a real
//! `swarmer --master --scaler local --autoscale 1:2` whose one-core worker
//! only burns CPU: the page shows the decision ("scaled 1 → 2: …"), and
//! after a scale from the form, that autoscaling is paused until the next
//! run.
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

const BUSY: &str = r#"
local Busy = swarmer.user { name = "Busy", wait = swarmer.constant(0), host = "http://127.0.0.1:9" }
Busy:task(function(self)
  local x = 0
  for i = 1, 300000 do x = x + i % 7 end
end)
"#;

const LIMIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workers_tab_shows_autoscaling_and_its_pause() {
    in_chromium(
        "autoscale",
        LIMIT,
        |chromium, chromedriver, profile| async move {
            autoscale_in_the_page(&chromium, &chromedriver, &profile).await
        },
    )
    .await;
}

async fn autoscale_in_the_page(chromium: &Path, chromedriver: &Path, profile: &Path) {
    let dir = TempDir::new("autoscale-browser");
    let script = dir.write("busy.lua", BUSY);
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
            "--cores",
            "1",
            "--heartbeat-interval",
            "500ms",
            "--autoscale",
            "1:2",
            // Low marks: a busy worker on a shared, loaded test machine
            // may get a small share of a core.
            "--autoscale-high",
            "5%",
            "--autoscale-target",
            "2%",
            "--autoscale-low",
            "1%",
            "--autoscale-window",
            "2s",
        ],
    );
    let url = format!("http://127.0.0.1:{web}");
    let scale_url = format!("{url}/api/v1/workers/scale");
    let connected = poll(LIMIT, || {
        let (_, body) = http_get(&scale_url).ok()?;
        let s: serde_json::Value = serde_json::from_str(&body).ok()?;
        (s["connected"] == 1).then_some(())
    });
    assert!(connected.is_some(), "{}", master.tail(30));
    let (code, reply) =
        common::http_post_form(&format!("{url}/swarm"), "user_count=4&spawn_rate=50")
            .expect("POST /swarm");
    assert_eq!(code, 200, "{reply}");
    drive(chromium, chromedriver, profile, &url).await;
}

async fn drive(chromium: &Path, chromedriver: &Path, profile: &Path, url: &str) {
    let driver = start_driver(chromedriver).await;
    let browser = open_browser(&driver, chromium, profile).await;
    browser
        .goto(&format!("{url}/#workers"))
        .await
        .expect("the page loads");
    let line = until(
        &browser,
        "the autoscale decision",
        "(t => t.includes('scaled 1 → 2: ') && t)(document.querySelector('#autoscale-note')?.textContent || '')",
    )
    .await;
    let line = line.as_str().unwrap_or_default().to_string();
    assert!(
        line.contains("Autoscaling between 1 and 2 workers"),
        "{line}"
    );
    assert!(line.contains("worker CPU"), "{line}");
    screenshot(&browser, "autoscale-decision.png").await;

    type_into(&browser, "#scale-input", "1").await;
    click(&browser, "#scale-submit").await;
    let paused = until(
        &browser,
        "the pause",
        "(t => t.includes('paused by a manual scale to 1') && t)(document.querySelector('#autoscale-note.warn')?.textContent || '')",
    )
    .await;
    assert!(
        paused
            .as_str()
            .unwrap_or_default()
            .contains("until the next run"),
        "{paused}"
    );
    screenshot(&browser, "autoscale-paused.png").await;
    let _ = browser.close().await;
}
