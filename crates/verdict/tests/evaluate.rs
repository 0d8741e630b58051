//! Evaluation against real `RequestStats`: each figure, each kind of
//! scope, no data, and the verdict's exit code with a regression pushed in.

use stats::{COUNTER_METHOD, RequestStats, Sample};
use verdict::{Check, CheckKind, EXIT_CROSSED, EXIT_PASSED, Threshold, Verdict};

const START_MS: u64 = 1_000_000;

fn record(stats: &mut RequestStats, method: &str, name: &str, ms: u64, failed: bool) {
    let error = failed.then_some("boom");
    stats.record(
        &Sample {
            method,
            name,
            response_time_us: ms * 1000,
            content_length: 10,
            error,
            due_latency_us: None,
        },
        START_MS + 500,
    );
}

/// 100 GETs of /a taking 1..=100 ms (one failed), 10 POSTs of /b at 500 ms,
/// a counter "orders" at 7 and 4 dropped arrivals of user type "Buyer".
fn stats() -> RequestStats {
    let mut s = RequestStats::new(START_MS);
    for ms in 1..=100 {
        record(&mut s, "GET", "/a", ms, ms == 50);
    }
    for _ in 0..10 {
        record(&mut s, "POST", "/b", 500, false);
    }
    for _ in 0..7 {
        record(&mut s, COUNTER_METHOD, "orders", 0, false);
    }
    s.record_dropped("Buyer", 4);
    s
}

fn check(expr: &str) -> Check {
    Threshold::parse(expr)
        .unwrap()
        .evaluate(&stats(), START_MS + 10_000)
}

fn observed(expr: &str) -> f64 {
    check(expr)
        .observed
        .unwrap_or_else(|| panic!("{expr}: no data"))
}

#[test]
fn figures_of_the_aggregated_row() {
    assert_eq!(observed("requests > 0"), 110.0);
    assert_eq!(observed("failures == 0"), 1.0);
    assert!((observed("fail_ratio < 1%") - 100.0 / 110.0).abs() < 1e-9);
    assert_eq!(observed("max < 1s"), 500.0);
    assert_eq!(observed("min < 1s"), 1.0);
    assert!(
        (observed("p50 < 1s") - 55.0).abs() <= 1.0,
        "the 55th of 110"
    );
    assert!((observed("avg < 1s") - (5050.0 + 5000.0) / 110.0).abs() < 1e-9);
    // Up to the last request (0.5 s in), counted as a second as Locust
    // does; the 9.5 s after it do not dilute the rate.
    assert!(
        (observed("rps > 1") - 110.0).abs() < 1e-9,
        "110 requests by the last one"
    );
    assert_eq!(observed("dropped_iterations == 0"), 4.0);
}

#[test]
fn comparisons_decide_ok() {
    assert!(check("failures <= 1").ok);
    assert!(!check("failures < 1").ok);
    assert!(check("failures == 1").ok);
    assert!(check("p99 > 100ms").ok);
    assert!(!check("max < 0.4s").ok);
    assert!(check("max >= 0.5s").ok);
    let c = check("fail_ratio < 1%");
    assert!(c.ok);
    assert_eq!((c.unit.as_str(), c.limit, c.op.as_str()), ("%", 1.0, "<"));
    assert_eq!(c.kind, CheckKind::Threshold);
    assert_eq!(c.scope, "Aggregated");
}

#[test]
fn scopes_name_entries_counters_and_user_types() {
    assert_eq!(observed("GET /a: requests > 0"), 100.0);
    assert_eq!(observed("/b: max < 1s"), 500.0, "a name alone");
    assert_eq!(observed("POST /b: fail_ratio == 0%"), 0.0);
    assert_eq!(observed("COUNT orders: requests > 0"), 7.0, "a counter");
    assert_eq!(observed("orders: requests > 0"), 7.0, "a counter by name");
    assert_eq!(observed("Buyer: dropped_iterations < 5"), 4.0);
    assert_eq!(observed("Seller: dropped_iterations < 5"), 0.0);
    assert_eq!(check("/a: p100 < 1s").observed, Some(100.0));
    assert_eq!(
        check("GET /b: requests > 0").observed,
        None,
        "no such entry"
    );
}

#[test]
fn no_data_does_not_hold() {
    let empty = RequestStats::new(START_MS);
    let p95 = Threshold::parse("p95 < 1s")
        .unwrap()
        .evaluate(&empty, START_MS);
    assert_eq!(
        (p95.observed, p95.ok, p95.status()),
        (None, false, "no data")
    );
    let missing = check("GET /nowhere: failures == 0");
    assert!(!missing.ok);
    let requests = Threshold::parse("requests == 0")
        .unwrap()
        .evaluate(&empty, START_MS);
    assert!(requests.ok, "a count of nothing is 0");
}

#[test]
fn exit_codes_and_pushed_regressions() {
    assert_eq!(Verdict::default().exit_code(), None);
    let thresholds: Vec<Threshold> = ["p95 < 1s", "failures <= 1"]
        .iter()
        .map(|t| Threshold::parse(t).unwrap())
        .collect();
    let mut v = Verdict::of_thresholds(&thresholds, &stats(), START_MS + 10_000);
    assert_eq!(v.exit_code(), Some(EXIT_PASSED));
    v.push(Check {
        kind: CheckKind::Regression,
        expr: "p95 <= +10%".into(),
        scope: "Aggregated".into(),
        observed: Some(25.0),
        op: "<=".into(),
        limit: 10.0,
        unit: "%".into(),
        ok: false,
    });
    assert_eq!(v.exit_code(), Some(EXIT_CROSSED));
    assert_eq!(v.crossed().count(), 1);
}
