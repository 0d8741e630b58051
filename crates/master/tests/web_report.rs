//! The HTML report as the headless `--html` writes it: self-contained (the
//! chart library inlined, no external URL), and safe with hostile names,
//! errors and tracebacks from a script.

mod web_support;

use master::web::render_report;
use master::{HistoryPoint, RunState, Snapshot};
use stats::{PhaseSample, RequestStats, Sample};
use web_support::*;

const HOSTILE: &str = "</script><script>alert('x')</script><b>&amp;";

fn hostile_snapshot(base: &Snapshot) -> Snapshot {
    let now = base.now_ms;
    let mut stats = RequestStats::new(now - 60_000);
    for i in 0..100 {
        let sample = Sample {
            method: "GET",
            name: HOSTILE,
            response_time_us: 1_000 + i * 100,
            due_latency_us: None,
            content_length: 512,
            error: (i % 10 == 0).then_some(HOSTILE),
        };
        stats.record(&sample, now - 30_000 + i * 100);
    }
    stats.record_exception(
        HOSTILE,
        "traceback <img src=x onerror=alert(1)>",
        "node-1",
        now,
    );
    let mut snap = base.clone();
    snap.state = RunState::Stopped;
    snap.host = Some(format!("http://target/{HOSTILE}"));
    snap.run_started_ms = Some(now - 60_000);
    snap.stats = stats;
    snap.checks = vec![
        check(HOSTILE, "p95 < 300ms", Some(412.0), false),
        check("Aggregated", "fail_ratio < 50%", Some(10.0), true),
    ];
    snap
}

fn check(scope: &str, expr: &str, observed: Option<f64>, ok: bool) -> verdict::Check {
    verdict::Check {
        kind: verdict::CheckKind::Threshold,
        expr: expr.into(),
        scope: scope.into(),
        observed,
        op: "<".into(),
        limit: 300.0,
        unit: "ms".into(),
        ok,
    }
}

#[tokio::test]
async fn the_report_lists_thresholds_with_their_result() {
    let h = Harness::new().await;
    let snap = hostile_snapshot(&h.master.snapshot());
    let html = render_report(&h.master, &snap, &history(snap.now_ms));
    let section = &html[html.find("id=\"thresholds\"").expect("a thresholds table")..];
    let section = &section[..section.find("</table>").unwrap()];
    assert_eq!(
        section.matches("<tr class=\"crossed\">").count(),
        1,
        "{section}"
    );
    assert_eq!(section.matches("<tr class=\"ok\">").count(), 1, "{section}");
    assert!(
        section.contains("412 ms") && section.contains("CROSSED"),
        "{section}"
    );
    assert!(section.contains("&lt; 300 ms"), "{section}");
    let mut quiet = snap.clone();
    quiet.checks.clear();
    let html = render_report(&h.master, &quiet, &history(snap.now_ms));
    assert!(
        !html.contains("id=\"thresholds\""),
        "no table without thresholds"
    );
}

fn history(now: u64) -> Vec<HistoryPoint> {
    (0..30)
        .map(|i| HistoryPoint {
            time_ms: now - 30_000 + i * 1000,
            user_count: 10,
            rps: 3.5,
            fail_per_sec: 0.5,
            p50_ms: Some(2.0),
            p95_ms: None,
            worker_count: 1,
            target_users: 10,
            target_rate: 0.0,
        })
        .collect()
}

#[tokio::test]
async fn the_report_escapes_everything_a_script_produced() {
    let h = Harness::new().await;
    let snap = hostile_snapshot(&h.master.snapshot());
    let html = render_report(&h.master, &snap, &history(snap.now_ms));
    assert!(
        html.starts_with("<!doctype html>"),
        "{}",
        &html[..200.min(html.len())]
    );
    assert!(
        !html.contains("<script>alert"),
        "a name was injected as markup"
    );
    assert!(
        !html.contains("<img src=x"),
        "a traceback was injected as markup"
    );
    assert!(!html.contains("<b>&amp;"));
    assert!(html.contains("&lt;&#x2f;script&gt;") || html.contains("&lt;/script&gt;"));
    // Exactly our three script elements: history data, uPlot, the charts.
    assert_eq!(html.matches("<script").count(), 3);
    assert_eq!(html.matches("</script>").count(), 3);
}

#[tokio::test]
async fn the_report_is_self_contained() {
    let h = Harness::new().await;
    let snap = hostile_snapshot(&h.master.snapshot());
    let points = history(snap.now_ms);
    let html = render_report(&h.master, &snap, &points);
    assert!(
        html.contains("/*! https://github.com/leeoniya/uPlot"),
        "uPlot is inlined"
    );
    for external in ["src=\"http", "href=\"http", "src=\"//", "@import"] {
        assert!(
            !html.contains(external),
            "refers to an outside file: {external}"
        );
    }
    for id in [
        "id=\"stats\"",
        "id=\"percentiles\"",
        "id=\"failures\"",
        "id=\"exceptions\"",
        "id=\"chart-rps\"",
    ] {
        assert!(html.contains(id), "misses {id}");
    }
    // The chart data parses back to the history.
    let start = html.find("id=\"history\">").unwrap() + "id=\"history\">".len();
    let end = start + html[start..].find("</script>").unwrap();
    let data: serde_json::Value = serde_json::from_str(&html[start..end]).unwrap();
    assert_eq!(data.as_array().unwrap().len(), points.len());
    assert_eq!(data[0]["rps"], 3.5);

    let empty = render_report(&h.master, &h.master.snapshot(), &[]);
    assert!(empty.contains("No history was recorded"));
    assert!(empty.contains("No failures."));
}

#[tokio::test]
async fn the_report_says_when_generators_were_saturated_and_lists_autoscaling() {
    use master::autoscale::{Decision, Direction, Event};
    let h = Harness::new().await;
    let snap = hostile_snapshot(&h.master.snapshot());
    let html = render_report(&h.master, &snap, &history(snap.now_ms));
    assert!(!html.contains("id=\"saturated\""), "not without saturation");
    assert!(!html.contains("<h2>Autoscaling</h2>"));

    let mut hot = snap.clone();
    hot.saturated_workers = vec!["w-1".into(), HOSTILE.into()];
    let decision = Decision {
        from: 3,
        to: 5,
        direction: Direction::Up,
        reason: "average worker CPU 91% for 15 s".into(),
    };
    let event = Event {
        time_ms: snap.now_ms,
        run_id: snap.run_id,
        message: decision.message(),
        decision,
        error: None,
    };
    let html =
        master::web::render_report_autoscaled(&h.master, &hot, &history(snap.now_ms), &[event]);
    let banner = &html[html.find("id=\"saturated\"").expect("the banner")..];
    let banner = &banner[..banner.find("</p>").unwrap()];
    assert!(
        banner.contains("Figures taken with saturated generators: w-1, "),
        "{banner}"
    );
    assert!(!banner.contains("<script>"), "names are escaped: {banner}");
    assert!(html.contains("scaled 3 → 5: average worker CPU 91% for 15 s"));
}

#[tokio::test]
async fn the_report_shows_phases_of_http_entries_only() {
    let h = Harness::new().await;
    let mut snap = Snapshot::clone(&h.master.snapshot());
    let now = snap.now_ms;
    let mut stats = RequestStats::new(now - 60_000);
    for i in 0..100u64 {
        let sample = |method, name| Sample {
            method,
            name,
            response_time_us: 20_000,
            due_latency_us: None,
            content_length: 10,
            error: None,
        };
        // One fresh connection (connect 4 ms, TLS 12 ms), 99 reused.
        let phases = PhaseSample {
            connect_us: if i == 0 { 4_000 } else { 0 },
            tls_us: if i == 0 { 12_000 } else { 0 },
            ttfb_us: 15_000,
        };
        stats.record_with_phases(&sample("GET", "api-call"), Some(&phases), now - 1_000);
        stats.record(&sample("WS", "socket"), now - 1_000);
    }
    // As a worker reports it: the total's phases summed from the entries'.
    let stats = stats.take_report();
    snap.stats = stats.clone();
    let html = render_report(&h.master, &snap, &history(now));
    let section = &html[html.find("id=\"phases\"").expect("a phases table")..];
    let section = &section[..section.find("</table>").unwrap()];
    assert!(section.contains("<td>api-call</td>"), "{section}");
    assert!(section.contains("Aggregated"), "{section}");
    assert!(
        !section.contains("socket"),
        "WebSocket has no phases: {section}"
    );
    // Connect and TLS p50 are 0 (reused), TTFB p50 is ~15 ms.
    let api_row = &section[section.find("<td>api-call</td>").unwrap()..];
    let api_row = &api_row[..api_row.find("</tr>").unwrap()];
    assert!(
        api_row.starts_with("<td>api-call</td><td>0.00</td>"),
        "{api_row}"
    );
    assert!(api_row.contains("<td>15.0</td>"), "{api_row}");

    let mut plain = RequestStats::new(now - 60_000);
    for e in stats.entries().map(|e| e.key()) {
        let sample = Sample {
            method: &e.method,
            name: &e.name,
            response_time_us: 1_000,
            due_latency_us: None,
            content_length: 0,
            error: None,
        };
        plain.record(&sample, now - 1_000);
    }
    snap.stats = plain;
    let html = render_report(&h.master, &snap, &history(now));
    assert!(!html.contains("id=\"phases\""), "no table without phases");
}
