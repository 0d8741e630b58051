//! The Script tab in headless Chromium: it shows the current script; a
//! broken script (picked from a file) is refused with its
//! file:line shown under the form and the old one stays; a pasted good one
//! becomes the current script, is listed in the changes and is what the
//! next run runs (a new view asks for a reload); during that run the form
//! says why it cannot be used.
//!
//! Skips (passing, with a message) without Chromium or chromedriver,
//! except under `CI=true`, where that fails.

mod web_support;

use std::path::Path;
use std::time::Duration;

use fantoccini::Client;
use master::web::WebConfig;
use master::{RunRequest, RunState};
use web_support::browser::*;
use web_support::*;

const TEST_LIMIT: Duration = Duration::from_secs(120);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_script_tab_refuses_a_broken_script_in_place_and_loads_a_good_one() {
    in_chromium("script", TEST_LIMIT, |chromium, chromedriver, profile| async move {
        drive(&chromium, &chromedriver, &profile).await
    })
    .await;
}

async fn drive(chromium: &Path, chromedriver: &Path, profile: &Path) {
    let h = Harness::with_worker().await;
    let url = format!(
        "{}#script",
        serve_web(&h.master, WebConfig::default(), &h.shutdown).await
    );
    with_browser(chromium, chromedriver, profile, |browser| async move {
        steps(&browser, &h, &url).await
    })
    .await;
}

/// Sets a form field's value as a user's typing would end.
async fn set_value(browser: &Client, css: &str, value: &str) {
    let value = serde_json::to_string(value).unwrap();
    run_js(
        browser,
        &format!("document.querySelector('{css}').value = {value};"),
    )
    .await;
}

async fn steps(browser: &Client, h: &Harness, url: &str) {
    browser.goto(url).await.expect("the page loads");
    until(
        browser,
        "the current script",
        "document.querySelector('#script-name').textContent === 'web_test.lua' \
         && document.querySelector('#script-types').textContent === 'Browse, Buy'",
    )
    .await;

    refuse_a_picked_broken_file(browser, h).await;
    // Pasted: a good one.
    let good = format!(
        "local Fresh = swarmer.user {{ name = \"Fresh\", host = \"http://{}\", wait = swarmer.constant(0.05) }}\n\
         Fresh:task(function(self) self.http:get(\"/item/1\", {{ name = \"fresh\" }}) end)\n\
         swarmer.ui.view {{ id = \"fresh\", render = function(ctx) return {{ note = \"hi\" }} end }}\n",
        h.target
    );
    set_value(browser, "#script-upload-name", "fresh.lua").await;
    set_value(browser, "#script-upload-text", &good).await;
    click(browser, "#script-upload-submit").await;
    until(
        browser,
        "the new script shown, and its change listed",
        "document.querySelector('#script-name').textContent === 'fresh.lua' \
         && document.querySelector('#script-types').textContent === 'Fresh' \
         && document.querySelector('#script-error').hidden \
         && document.querySelectorAll('#script-changes tbody tr').length === 1 \
         && document.querySelector('#script-done').textContent.includes('Reload the page')",
    )
    .await;
    let hash = h.master.script().hash.to_string();
    until(
        browser,
        "the hash shown",
        &format!("document.querySelector('#script-hash').title === '{hash}'"),
    )
    .await;

    next_run_waits_for_the_form(browser, h).await;
}

/// Picked from a file, its name and text fill the form; it does not load,
/// so the refusal shows under the form and the old script stays.
async fn refuse_a_picked_broken_file(browser: &Client, h: &Harness) {
    // Picked from a file: its name and text fill the form.
    let dir = std::env::temp_dir().join(format!("swarmer-script-ui-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("broken.lua");
    std::fs::write(&file, "local U = swarmer.user { name = \"U\" }\nU:task(\n").unwrap();
    browser
        .find(fantoccini::Locator::Css("#script-upload-file"))
        .await
        .expect("the file field")
        .send_keys(file.to_str().unwrap())
        .await
        .expect("a file picked");
    until(
        browser,
        "the picked file in the form",
        "document.querySelector('#script-upload-name').value === 'broken.lua' \
         && document.querySelector('#script-upload-text').value.includes('U:task(')",
    )
    .await;
    click(browser, "#script-upload-submit").await;
    let refusal = until(
        browser,
        "the refusal in place",
        "!document.querySelector('#script-error').hidden \
         && document.querySelector('#script-error').textContent",
    )
    .await;
    assert!(
        refusal.as_str().unwrap_or_default().contains("broken.lua:"),
        "{refusal}"
    );
    assert_eq!(
        h.master.script().name(),
        "web_test.lua",
        "the old one stays"
    );

    let _ = std::fs::remove_dir_all(&dir);
}

/// The next run runs it; meanwhile the form says it must wait.
async fn next_run_waits_for_the_form(browser: &Client, h: &Harness) {
    let request = RunRequest {
        users: 1,
        spawn_rate: 100.0,
        host: None,
        run_time: None,
        user_types: vec![],
        profile: None,
    };
    h.master.start_run(request).await.expect("the run starts");
    h.wait_for(|s| s.stats.entries().any(|e| e.name == "fresh"))
        .await;
    until(
        browser,
        "the form disabled during the run",
        "!document.querySelector('#script-busy').hidden \
         && document.querySelector('#script-upload-submit').disabled",
    )
    .await;
    h.master.stop_run().await.expect("the run stops");
    h.wait_for(|s| s.state == RunState::Stopped).await;
    until(
        browser,
        "the form usable again",
        "document.querySelector('#script-busy').hidden \
         && !document.querySelector('#script-upload-submit').disabled",
    )
    .await;
}
