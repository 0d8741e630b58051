//! A load profile from the UI in headless Chromium: stages typed in the run
//! form start a run whose header shows the stage and the time left, which
//! then ends by itself. Skips like the other browser tests when Chromium or
//! chromedriver is absent (fails under `CI=true`).

mod web_support;

use std::path::Path;
use std::time::Duration;

use fantoccini::Client;
use master::RunState;
use master::web::WebConfig;
use web_support::browser::*;
use web_support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stages_typed_in_the_form_run_and_show_in_the_header() {
    in_chromium("profile", Duration::from_secs(90), |chromium, chromedriver, profile| async move {
        drive(&chromium, &chromedriver, &profile).await
    })
    .await;
}

async fn drive(chromium: &Path, chromedriver: &Path, profile: &Path) {
    let h = Harness::with_worker().await;
    let url = serve_web(&h.master, WebConfig::default(), &h.shutdown).await;
    with_browser(chromium, chromedriver, profile, |browser| async move {
        steps(&browser, &h, &url).await
    })
    .await;
}

async fn steps(browser: &Client, h: &Harness, url: &str) {
    browser.goto(url).await.expect("the page loads");
    until(
        browser,
        "the start dialog",
        "document.querySelector('#run-dialog').open",
    )
    .await;
    // A typo is caught in the browser; nothing is sent.
    type_into(browser, "#run-form [name=stages]", "3s:4,oops").await;
    click(browser, "#run-submit").await;
    let error = until(
        browser,
        "the form's message",
        "document.querySelector('#run-error').textContent",
    )
    .await;
    assert!(
        error.as_str().unwrap().contains("Stages look like"),
        "{error}"
    );
    assert_eq!(h.master.snapshot().state, RunState::Ready);

    type_into(browser, "#run-form [name=stages]", "3s:4,3s:4").await;
    click(browser, "#run-submit").await;
    until(
        browser,
        "the dialog to close",
        "!document.querySelector('#run-dialog').open",
    )
    .await;
    let shown = until(
        browser,
        "the header's profile",
        "(() => { const t = document.querySelector('#fig-profile').textContent; \
          return !document.querySelector('#fig-profile-box').hidden && /^stage [12]\\/2 · \\d+ s left$/.test(t) && t; })()",
    )
    .await;
    assert!(shown.as_str().unwrap().starts_with("stage "), "{shown}");
    screenshot(browser, "profile-header.png").await;
    // The charts draw the whole plan ahead, dashed, to the end of the
    // last stage: further than any point measured yet.
    let plan_end = h
        .master
        .snapshot()
        .profile
        .as_ref()
        .and_then(|p| p.plan.last().map(|c| c.time_ms))
        .expect("a stage profile has a plan");
    let drawn = until(
        browser,
        "the users chart's plan to its end",
        &format!(
            "(() => {{ if (location.hash !== '#charts') location.hash = '#charts'; \
              const el = document.querySelector('#chart-users'); \
              return el && el.querySelector('canvas') && el.dataset.planEnd === '{plan_end}' \
                && el.dataset.planEnd; }})()"
        ),
    )
    .await;
    assert_eq!(drawn.as_str(), Some(plan_end.to_string().as_str()));
    let last_measured = h.master.history().last().map_or(0, |p| p.time_ms);
    assert!(plan_end > last_measured, "{plan_end} vs {last_measured}");
    screenshot(browser, "profile-charts.png").await;
    // Nobody stops it: the stages end the run, and the header follows.
    h.wait_for(|s| s.state == RunState::Stopped).await;
    until(
        browser,
        "the profile hidden once stopped",
        "document.querySelector('#fig-profile-box').hidden",
    )
    .await;
}

/// The script's shape *function*, offered by the form (checked by
/// default), raising after a while: the header shows it steering, then why
/// it stopped the run.
const SHAPE_SCRIPT: &str = r#"
local U = swarmer.user { name = "U", host = HOST, wait = swarmer.constant(0.05) }
U:task(function(self) self.http:get("/") end)
swarmer.shape(function(ctx)
  if ctx.run_time >= 3 then error("shape gave up") end
  return 3, 50
end)
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_form_starts_a_shape_function_and_shows_why_it_stopped() {
    in_chromium(
        "shape-fn",
        Duration::from_secs(90),
        |chromium, chromedriver, profile| async move {
            let h = Harness::with_script(SHAPE_SCRIPT).await;
            let ext = master::ext::Extensions::start(&h.src, Default::default(), h.master.clone())
                .await
                .expect("the shape loads")
                .expect("a shape function starts the extension engine");
            h.attach_worker("shape-worker");
            h.wait_for(|s| s.worker_count == 1).await;
            let config = WebConfig {
                ext: Some(ext),
                ..WebConfig::default()
            };
            let url = serve_web(&h.master, config, &h.shutdown).await;
            with_browser(&chromium, &chromedriver, &profile, |browser| async move {
                shape_steps(&browser, &h, &url).await
            })
            .await;
        },
    )
    .await;
}

async fn shape_steps(browser: &Client, h: &Harness, url: &str) {
    browser.goto(url).await.expect("the page loads");
    until(
        browser,
        "the start dialog, offering the shape (checked)",
        "document.querySelector('#run-dialog').open && !document.querySelector('#shape-choice').hidden \
         && document.querySelector('#run-form [name=use_shape]').checked",
    )
    .await;
    click(browser, "#run-submit").await;
    let shown = until(
        browser,
        "the header's shape function",
        "(() => { const t = document.querySelector('#fig-profile').textContent; \
          return !document.querySelector('#fig-profile-box').hidden && t.startsWith('shape function') && t; })()",
    )
    .await;
    assert_eq!(shown, "shape function · 3 users");
    h.wait_for(|s| s.user_count == 3).await;
    // The function raises at 3 s: the run stops, and the header says why.
    h.wait_for(|s| s.state == RunState::Stopped).await;
    let why = until(
        browser,
        "the header's stop error",
        "!document.querySelector('#fig-stop-error-box').hidden \
         && document.querySelector('#fig-stop-error').textContent",
    )
    .await;
    let why = why.as_str().unwrap();
    assert!(why.contains("web_test.lua:5: shape gave up"), "{why}");
    screenshot(browser, "shape-function-stopped.png").await;
    assert!(h.master.snapshot().stats.num_requests() > 0, "stats kept");
}
