//! The UI for everyone, in headless Chromium against a master with a real
//! worker running users: the statistics headers sort from the keyboard and
//! say so (`aria-sort`); the tabs follow the ARIA tab pattern (arrow keys,
//! Home, End); the theme button is a named two-state toggle; the page has
//! one `<h1>`; the layout holds at 1024×700 (one header line, every
//! statistics column in view) and at 390×844 (a short sticky header, the
//! selected tab in view, no sideways scrolling of the page); and every
//! visible text has a contrast of 4.5:1 or more in both themes, on every
//! tab.
//!
//! Skips (passing, with a message) without Chromium or chromedriver, except
//! under `CI=true`, where that fails (see `web_support::browser`).

mod web_support;

use std::path::Path;
use std::time::Duration;

use fantoccini::Client;
use fantoccini::key::Key;
use fantoccini::wd::WebDriverCompatibleCommand;
use master::web::WebConfig;
use master::{RunRequest, RunState};
use serde_json::{Value, json};
use web_support::browser::*;
use web_support::*;

const TEST_LIMIT: Duration = Duration::from_secs(180);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_is_usable_by_keyboard_on_small_screens_and_readable() {
    in_chromium("access", TEST_LIMIT, |chromium, chromedriver, profile| async move {
        drive(&chromium, &chromedriver, &profile).await
    })
    .await;
}

async fn drive(chromium: &Path, chromedriver: &Path, profile: &Path) {
    let h = Harness::with_worker().await;
    let config = WebConfig {
        max_workers: 4,
        ..WebConfig::default()
    };
    let url = serve_web(&h.master, config, &h.shutdown).await;
    h.master
        .start_run(RunRequest {
            users: 4,
            spawn_rate: 40.0,
            host: None,
            run_time: None,
            user_types: vec![],
            profile: None,
        })
        .await
        .expect("the run starts");
    h.wait_for(|s| s.user_count == 4 && s.stats.total().num_failures > 0)
        .await;

    with_browser(chromium, chromedriver, profile, |browser| async move {
        browser.goto(&url).await.expect("the page loads");
        until(
            &browser,
            "statistics rows",
            "document.querySelectorAll('#stats-table tbody tr').length >= 3",
        )
        .await;
        landmarks(&browser).await;
        keyboard_sorting(&browser).await;
        keyboard_tabs(&browser).await;
        theme_toggle(&browser).await;
        contrast_everywhere(&browser, "running").await;
        layout_at_1024(&browser).await;
        layout_at_390(&browser).await;
        // A stopped run has other colours (the pill, the buttons).
        h.master.stop_run().await.expect("the run stops");
        h.wait_for(|s| s.state == RunState::Stopped).await;
        set_viewport(&browser, 1400, 1000).await;
        until(
            &browser,
            "the stopped state",
            "document.querySelector('#fig-state').textContent === 'stopped'",
        )
        .await;
        contrast_everywhere(&browser, "stopped").await;
        dialog_contrast(&browser).await;
    })
    .await;
}

async fn js(browser: &Client, expression: &str) -> Value {
    browser
        .execute(&format!("return ({expression});"), vec![])
        .await
        .expect("script runs")
}

/// Sends keys to the element that has the focus.
async fn press(browser: &Client, keys: &str) {
    browser
        .active_element()
        .await
        .expect("a focused element")
        .send_keys(keys)
        .await
        .expect("keys sent");
}

async fn landmarks(browser: &Client) {
    assert_eq!(
        js(browser, "document.querySelectorAll('h1').length").await,
        json!(1)
    );
    assert_eq!(
        js(browser, "document.querySelector('h1').textContent").await,
        json!("Swarmer")
    );
}

/// Tab reaches a header, Enter sorts it descending (a number column),
/// Space flips it, and `aria-sort` follows; only one header has it.
async fn keyboard_sorting(browser: &Client) {
    let requests = "[...document.querySelectorAll('#stats-table thead th')].find(t => t.textContent === '# Requests')";
    run_js(browser, &format!("{requests}.focus()")).await;
    assert_eq!(
        js(
            browser,
            &format!("document.activeElement === {requests} && {requests}.tabIndex === 0")
        )
        .await,
        json!(true),
        "a sortable header takes the focus"
    );
    let counts = "[...document.querySelectorAll('#stats-table tbody tr')].map(r => Number(r.children[2].textContent.replace(/\\D/g, '')))";
    press(browser, &Key::Enter.to_string()).await;
    assert_eq!(
        js(browser, &format!("{requests}.getAttribute('aria-sort')")).await,
        json!("descending")
    );
    let rows: Vec<u64> = serde_json::from_value(js(browser, counts).await).unwrap();
    assert!(
        rows.windows(2).all(|w| w[0] >= w[1]),
        "not descending: {rows:?}"
    );
    press(browser, " ").await;
    assert_eq!(
        js(browser, &format!("{requests}.getAttribute('aria-sort')")).await,
        json!("ascending")
    );
    let rows: Vec<u64> = serde_json::from_value(js(browser, counts).await).unwrap();
    assert!(
        rows.windows(2).all(|w| w[0] <= w[1]),
        "not ascending: {rows:?}"
    );
    assert_eq!(
        js(
            browser,
            "document.querySelectorAll('#stats-table th[aria-sort]').length"
        )
        .await,
        json!(1)
    );
    // Space sorted rather than scrolling the page.
    assert_eq!(js(browser, "window.scrollY").await, json!(0));
}

/// The tab pattern: one tab in the Tab order, arrow keys move and select
/// (wrapping), Home and End jump; each tab names the panel it controls.
async fn keyboard_tabs(browser: &Client) {
    let ids: Vec<String> = serde_json::from_value(
        js(
            browser,
            "[...document.querySelectorAll('#tabs [role=tab]')].map(t => t.id)",
        )
        .await,
    )
    .unwrap();
    assert!(ids.len() >= 5, "{ids:?}");
    assert_eq!(
        js(
            browser,
            "document.querySelector('#tabs').getAttribute('role')"
        )
        .await,
        json!("tablist")
    );
    let pattern = "[...document.querySelectorAll('#tabs [role=tab]')].every(t => { \
        const p = document.getElementById(t.getAttribute('aria-controls')); \
        return p && p.getAttribute('role') === 'tabpanel' && p.getAttribute('aria-labelledby') === t.id; })";
    assert_eq!(js(browser, pattern).await, json!(true));
    let state = "[...document.querySelectorAll('#tabs [role=tab]')].map(t => [t.id, t.getAttribute('aria-selected'), t.tabIndex])";
    let selected = |id: &str| -> String {
        format!(
            "document.activeElement.id === '{id}' && \
             document.querySelectorAll('#tabs [aria-selected=true]').length === 1 && \
             document.querySelector('#{id}').getAttribute('aria-selected') === 'true' && \
             document.querySelector('#{id}').tabIndex === 0 && \
             document.querySelectorAll('#tabs [tabindex=\"0\"]').length === 1 && \
             document.querySelector('#' + document.querySelector('#{id}').getAttribute('aria-controls')).classList.contains('active')"
        )
    };
    click(browser, &format!("#{}", ids[0])).await;
    for (key, expect) in [
        (Key::Right.to_string(), &ids[1]),
        (Key::Left.to_string(), &ids[0]),
        (Key::Left.to_string(), &ids[ids.len() - 1]),
        (Key::Right.to_string(), &ids[0]),
        (Key::End.to_string(), &ids[ids.len() - 1]),
        (Key::Home.to_string(), &ids[0]),
    ] {
        press(browser, &key).await;
        let ok = js(browser, &selected(expect)).await;
        assert_eq!(
            ok,
            json!(true),
            "after a key, {expect} should be focused and selected: {}",
            js(browser, state).await
        );
    }
}

/// Two states, named, starting from the system's (light in headless
/// Chromium); the choice survives a reload.
async fn theme_toggle(browser: &Client) {
    let button = "document.querySelector('#theme-button')";
    assert_eq!(
        js(browser, &format!("[{button}.getAttribute('aria-label'), {button}.getAttribute('aria-pressed'), document.documentElement.dataset.theme]")).await,
        json!(["Dark theme", "false", "light"])
    );
    click(browser, "#theme-button").await;
    assert_eq!(
        js(
            browser,
            &format!(
                "[{button}.getAttribute('aria-pressed'), document.documentElement.dataset.theme]"
            )
        )
        .await,
        json!(["true", "dark"])
    );
    browser.refresh().await.expect("reload");
    until(
        browser,
        "the page again",
        "document.querySelectorAll('#tabs [role=tab]').length > 0",
    )
    .await;
    assert_eq!(
        js(
            browser,
            &format!(
                "[{button}.getAttribute('aria-pressed'), document.documentElement.dataset.theme]"
            )
        )
        .await,
        json!(["true", "dark"])
    );
    click(browser, "#theme-button").await;
    assert_eq!(
        js(browser, "document.documentElement.dataset.theme").await,
        json!("light")
    );
}

/// Every tab, in both themes: no text under 4.5:1.
async fn contrast_everywhere(browser: &Client, moment: &str) {
    let ids: Vec<String> = serde_json::from_value(
        js(
            browser,
            "[...document.querySelectorAll('#tabs [role=tab]')].map(t => t.id)",
        )
        .await,
    )
    .unwrap();
    let mut offenders = Vec::new();
    for theme in ["light", "dark"] {
        if js(browser, "document.documentElement.dataset.theme").await != json!(theme) {
            click(browser, "#theme-button").await;
        }
        for id in &ids {
            click(browser, &format!("#{id}")).await;
            let found = contrast::measure(browser).await;
            assert!(
                found.checked >= 10,
                "only {} texts measured on {id}",
                found.checked
            );
            for o in found.offenders {
                offenders.push(format!("{moment}, {theme}, {id}: {o}"));
            }
        }
    }
    if js(browser, "document.documentElement.dataset.theme").await != json!("light") {
        click(browser, "#theme-button").await;
    }
    offenders.sort();
    offenders.dedup();
    assert!(
        offenders.is_empty(),
        "text below {}:1:\n{}",
        contrast::MIN_CONTRAST,
        offenders.join("\n")
    );
}

/// The run dialog (modal: the theme is switched by script), both themes.
async fn dialog_contrast(browser: &Client) {
    click(browser, "#start-button").await;
    until(
        browser,
        "the run dialog",
        "document.querySelector('#run-dialog').open",
    )
    .await;
    let mut offenders = Vec::new();
    for _ in 0..2 {
        run_js(browser, "document.querySelector('#theme-button').click()").await;
        let theme = js(browser, "document.documentElement.dataset.theme").await;
        let found = contrast::measure(browser).await;
        assert!(found.checked >= 10, "only {} texts measured", found.checked);
        offenders.extend(
            found
                .offenders
                .into_iter()
                .map(|o| format!("dialog, {theme}: {o}")),
        );
    }
    click(browser, "#run-cancel").await;
    assert!(
        offenders.is_empty(),
        "text below 4.5:1:\n{}",
        offenders.join("\n")
    );
}

/// A Chromium DevTools command through chromedriver (`goog/cdp/execute`).
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        let body = json!({ "cmd": self.cmd, "params": self.params });
        (http::Method::POST, Some(body.to_string()))
    }
}

/// Emulates a `w`×`h` viewport (a window cannot be made that narrow).
async fn set_viewport(browser: &Client, w: u32, h: u32) {
    let params = json!({ "width": w, "height": h, "deviceScaleFactor": 1, "mobile": w < 720 });
    browser
        .issue_cmd(Cdp {
            cmd: "Emulation.setDeviceMetricsOverride",
            params,
        })
        .await
        .expect("the viewport is emulated");
    until(
        browser,
        "the viewport size",
        &format!("window.innerWidth === {w} && window.innerHeight === {h}"),
    )
    .await;
}

const NO_PAGE_SCROLL: &str = "document.documentElement.scrollWidth <= window.innerWidth";

/// The header's visible parts and the figures sit on one line; the
/// statistics table needs no sideways scrolling.
async fn layout_at_1024(browser: &Client) {
    set_viewport(browser, 1024, 700).await;
    click(browser, "#tab-statistics").await;
    let one_line = "(() => { const tops = (sel) => [...document.querySelectorAll(sel)] \
        .filter(e => e.getClientRects().length).map(e => e.getBoundingClientRect().top); \
        const a = tops('.topbar > *'), b = tops('#figures > div'); \
        return Math.max(...a) - Math.min(...a) < 12 && Math.max(...b) - Math.min(...b) < 2; })()";
    assert_eq!(
        js(browser, one_line).await,
        json!(true),
        "the header wraps at 1024 px"
    );
    let header = js(browser, "document.querySelector('.topbar').offsetHeight").await;
    assert!(
        header.as_f64().unwrap() <= 72.0,
        "header {header} px at 1024 px"
    );
    let fits = "(() => { const t = document.querySelector('#stats-table'); \
        return t.scrollWidth <= t.parentElement.clientWidth; })()";
    assert_eq!(
        js(browser, fits).await,
        json!(true),
        "statistics columns scroll away at 1024 px: table {} px in {} px",
        js(
            browser,
            "document.querySelector('#stats-table').scrollWidth"
        )
        .await,
        js(
            browser,
            "document.querySelector('#stats-table').parentElement.clientWidth"
        )
        .await
    );
    assert_eq!(js(browser, NO_PAGE_SCROLL).await, json!(true));
    screenshot(browser, "access-1024.png").await;
}

/// Whether the tab `id` lies within the tab strip and the viewport.
fn in_view(id: &str) -> String {
    format!(
        "(() => {{ const t = document.querySelector('#{id}').getBoundingClientRect(); \
         const s = document.querySelector('#tabs').getBoundingClientRect(); \
         return t.left >= s.left - 1 && t.right <= s.right + 1 && t.left >= -1 && t.right <= window.innerWidth + 1 \
           && t.top >= 0 && t.bottom <= window.innerHeight; }})()"
    )
}

/// A short sticky header, the selected tab in view however far right it
/// is, and no tab whose content makes the page scroll sideways.
async fn layout_at_390(browser: &Client) {
    set_viewport(browser, 390, 844).await;
    let header = js(browser, "document.querySelector('.topbar').offsetHeight").await;
    assert!(
        header.as_f64().unwrap() <= 844.0 * 0.12,
        "the header takes {header} px of 844"
    );
    let inside = "[...document.querySelectorAll('.topbar > *, .actions > button')] \
        .filter(e => e.getClientRects().length) \
        .every(e => { const r = e.getBoundingClientRect(); return r.left >= 0 && r.right <= window.innerWidth; })";
    assert_eq!(
        js(browser, inside).await,
        json!(true),
        "a part of the header is cut off at 390 px"
    );
    let ids: Vec<String> = serde_json::from_value(
        js(
            browser,
            "[...document.querySelectorAll('#tabs [role=tab]')].map(t => t.id)",
        )
        .await,
    )
    .unwrap();
    for id in &ids {
        // As a tap would (the strip scrolled by hand): the page reveals it.
        run_js(browser, &format!("document.querySelector('#{id}').click()")).await;
        let rects = format!(
            "JSON.stringify([document.querySelector('#{id}').getBoundingClientRect(), \
             document.querySelector('#tabs').getBoundingClientRect(), window.innerWidth, \
             window.innerHeight, window.scrollY, document.querySelector('#tabs').scrollLeft])"
        );
        assert_eq!(
            js(browser, &in_view(id)).await,
            json!(true),
            "{id} is out of view at 390 px: {}",
            js(browser, &rects).await
        );
        assert_eq!(
            js(browser, NO_PAGE_SCROLL).await,
            json!(true),
            "the page scrolls sideways at 390 px on {id}: {} px wide",
            js(browser, "document.documentElement.scrollWidth").await
        );
    }
    let last = ids.last().unwrap();
    click(browser, &format!("#{}", ids[0])).await;
    press(browser, &Key::End.to_string()).await;
    assert_eq!(
        js(browser, &in_view(last)).await,
        json!(true),
        "End: {last} out of view"
    );
    a_link_opens_its_tab_in_view(browser, last).await;
    screenshot(browser, "access-390.png").await;
}

/// A link to the last tab opens with it in view.
async fn a_link_opens_its_tab_in_view(browser: &Client, last: &str) {
    browser
        .goto(&format!(
            "{}#{}",
            js(browser, "location.href.split('#')[0]")
                .await
                .as_str()
                .unwrap(),
            &last[4..]
        ))
        .await
        .expect("the page loads");
    browser.refresh().await.expect("reload");
    until(
        browser,
        "the linked tab",
        &format!("document.querySelector('#{last}')?.getAttribute('aria-selected') === 'true'"),
    )
    .await;
    // The page scrolls the tab into view once layout has settled (a
    // ResizeObserver), a moment after it is selected.
    until(
        browser,
        &format!("a link to {last} in view"),
        &in_view(last),
    )
    .await;
}
