//! The HTML report of a real run (a master, an in-process worker, users
//! against a loopback target), as `/stats/report` serves it once the run
//! stopped: the verdict line (failures in words, or the thresholds), the
//! PEAK users (not the 0 a stopped run ends with), the host, spawn rate and
//! run time asked for, the user types that ran, the script's path and its
//! text folded away; and, in headless Chromium, chart axes in HH:MM:SS.

mod web_support;

use std::path::Path;
use std::time::Duration;

use master::web::WebConfig;
use master::{RunRequest, RunState};
use serde_json::json;
use web_support::browser::*;
use web_support::*;

/// One user type of the two, so the report must tell which ran: `Buy`,
/// whose every request fails.
fn buy_only(h: &Harness, users: u32) -> RunRequest {
    RunRequest {
        users,
        spawn_rate: 25.0,
        host: Some(format!("http://{}", h.target)),
        run_time: Some(Duration::from_secs(90)),
        user_types: vec!["Buy".into()],
        profile: None,
    }
}

/// Runs until `users` ran for a whole history second, then stops and waits
/// until the workers report 0 users.
async fn run_and_stop(h: &Harness, request: RunRequest) {
    let users = request.users;
    h.master.start_run(request).await.expect("the run starts");
    h.wait_for(|s| s.user_count == users && s.stats.total().num_requests > 0)
        .await;
    let deadline = tokio::time::Instant::now() + MAX_WAIT;
    while !h.master.history().iter().any(|p| p.user_count == users) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no history point with {users} users"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    h.master.stop_run().await.expect("the run stops");
    h.wait_for(|s| s.state == RunState::Stopped && s.user_count == 0)
        .await;
}

/// Undoes minijinja's HTML escaping, to compare with plain text.
fn unescape(html: &str) -> String {
    html.replace("&#x2f;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The text of the element with `id` up to its closing `tag`, markup
/// stripped and unescaped.
fn text_of(html: &str, id: &str, tag: &str) -> String {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the report"));
    let rest = &html[start..];
    let body = &rest[rest.find('>').unwrap() + 1..rest.find(&format!("</{tag}>")).unwrap()];
    let mut text = String::new();
    let mut in_tag = false;
    for c in body.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                text.push(' ');
            }
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    unescape(&text.split_whitespace().collect::<Vec<_>>().join(" "))
}

async fn report(h: &Harness) -> String {
    let reply = send(&h.default_router(), get("/stats/report")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_of_a_stopped_run_says_what_ran_and_whether_it_passed() {
    let h = Harness::with_worker().await;
    run_and_stop(&h, buy_only(&h, 3)).await;
    let snap = h.master.snapshot();
    let html = report(&h).await;

    let (n, f) = (
        snap.stats.total().num_requests,
        snap.stats.total().num_failures,
    );
    assert!(n > 0 && f == n, "every Buy request fails: {f} of {n}");
    assert_eq!(
        text_of(&html, "verdict", "p"),
        format!("Failed: {f} of {n} requests failed")
    );
    assert!(html.contains("class=\"verdict failed\""));

    let peak = text_of(&html, "card-peak-users", "div");
    assert!(peak.starts_with("Peak users 3 "), "{peak}");
    assert!(peak.contains("0 at the end"), "{peak}");
    assert_eq!(
        text_of(&html, "card-host", "div"),
        format!("Host http://{}", h.target)
    );
    assert_eq!(
        text_of(&html, "card-spawn-rate", "div"),
        "Spawn rate 25 users/s"
    );
    assert_eq!(
        text_of(&html, "card-run-time", "div"),
        "Run time asked 1m 30s"
    );

    // Only the type that ran, with its weight.
    let types = text_of(&html, "user-types", "table");
    assert!(types.contains("Buy 1"), "{types}");
    assert!(!types.contains("Browse"), "{types}");

    assert_eq!(text_of(&html, "script-path", "code"), "web_test.lua");
    let script = text_of(&html, "script-text", "details");
    assert!(script.starts_with("The script's text "), "{script}");
    assert!(
        script.contains("Buy:task(function(self) self.http:post(\"/checkout\") end)"),
        "{script}"
    );
    assert!(
        html.contains("<details id=\"script-text\">"),
        "the script is folded away"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_verdict_is_the_thresholds_when_there_are_some() {
    let h = Harness::with_thresholds(&["fail_ratio < 50%", "p95 < 60s"]).await;
    h.attach_worker("report-worker");
    h.wait_for(|s| s.worker_count == 1).await;
    run_and_stop(&h, buy_only(&h, 2)).await;
    let snap = h.master.snapshot();
    let html = report(&h).await;
    let (n, f) = (
        snap.stats.total().num_requests,
        snap.stats.total().num_failures,
    );
    assert_eq!(
        text_of(&html, "verdict", "p"),
        format!("Failed: 1 of 2 thresholds not met ({f} of {n} requests failed)")
    );
    let peak = text_of(&html, "card-peak-users", "div");
    assert!(peak.starts_with("Peak users 2 "), "{peak}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_charts_read_hh_mm_ss_in_chromium() {
    in_chromium(
        "report",
        Duration::from_secs(120),
        |chromium, chromedriver, profile| async move {
            drive(&chromium, &chromedriver, &profile).await
        },
    )
    .await;
}

async fn drive(chromium: &Path, chromedriver: &Path, profile: &Path) {
    let h = Harness::with_worker().await;
    run_and_stop(&h, buy_only(&h, 2)).await;
    let url = serve_web(&h.master, WebConfig::default(), &h.shutdown).await;
    with_browser(chromium, chromedriver, profile, |browser| async move {
        browser
            .goto(&format!("{url}stats/report"))
            .await
            .expect("the report loads");
        until(&browser, "three charts", "window.reportCharts?.length === 3").await;
        let labels = until(
            &browser,
            "the time axis labels",
            "reportCharts.map(u => u.axes[0].values(u, [u.data[0][0], u.data[0][u.data[0].length - 1]], 0, 90, 1)).flat()",
        )
        .await;
        let labels = labels.as_array().unwrap();
        assert_eq!(labels.len(), 6);
        for label in labels {
            let label = label.as_str().unwrap_or_default();
            let digits = label.split(':').collect::<Vec<_>>();
            assert!(
                digits.len() == 3 && digits.iter().all(|d| d.len() == 2 && d.parse::<u8>().is_ok()),
                "not HH:MM:SS: {label:?}"
            );
        }
        // The script is folded until asked for.
        assert_eq!(
            browser
                .execute("return document.querySelector('#script-text').open", vec![])
                .await
                .unwrap(),
            json!(false)
        );
        click(&browser, "#script-text summary").await;
        until(
            &browser,
            "the script's text",
            "document.querySelector('#script-text pre').getClientRects().length > 0 && document.querySelector('#script-text pre').textContent.includes('Buy:task')",
        )
        .await;
        let found = contrast::measure(&browser).await;
        assert!(found.checked >= 20, "only {} texts measured", found.checked);
        assert!(
            found.offenders.is_empty(),
            "report text below 4.5:1:\n{}",
            found.offenders.join("\n")
        );
        screenshot(&browser, "report.png").await;
    })
    .await;
}
