//! Tests of `RequestStats` and `StatsEntry`: exact, order-independent merging
//! of deltas, the Locust figures (current/total RPS, ratios), failure and
//! exception grouping, take/reset/prune, and the msgpack round trip.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use stats::{ErrorKey, RequestStats, Sample};

const T0: u64 = 1_795_424_070_000;

fn ok<'a>(method: &'a str, name: &'a str, us: u64) -> Sample<'a> {
    Sample {
        method,
        name,
        response_time_us: us,
        due_latency_us: None,
        content_length: 100,
        error: None,
    }
}

fn failed<'a>(method: &'a str, name: &'a str, us: u64, error: &'a str) -> Sample<'a> {
    Sample {
        error: Some(error),
        ..ok(method, name, us)
    }
}

/// One random request: (method, name, latency, due latency, bytes, error).
type Req = (
    &'static str,
    &'static str,
    u64,
    Option<u64>,
    u64,
    Option<&'static str>,
);

/// A random workload spread over ~30 s with several entries and errors.
fn workload(seed: u64, n: usize) -> Vec<(Req, u64)> {
    let mut rng = StdRng::seed_from_u64(seed);
    let names = ["/", "/login", "/items/{id}", "/cart, \"quoted\""];
    let methods = ["GET", "POST"];
    let errors = ["HTTP 500", "timeout", "connection refused"];
    let mut now = T0;
    (0..n)
        .map(|_| {
            now += rng.random_range(0..60);
            let error = rng
                .random_bool(0.1)
                .then(|| errors[rng.random_range(0..errors.len())]);
            let due = rng.random_bool(0.3).then(|| rng.random_range(0..50_000));
            let req = (
                methods[rng.random_range(0..2)],
                names[rng.random_range(0..names.len())],
                rng.random_range(0..2_000_000),
                due,
                rng.random_range(0..10_000),
                error,
            );
            (req, now)
        })
        .collect()
}

fn record(stats: &mut RequestStats, req: &Req, now_ms: u64) {
    let (method, name, rt, due, len, error) = *req;
    let sample = Sample {
        method,
        name,
        response_time_us: rt,
        due_latency_us: due,
        content_length: len,
        error,
    };
    stats.record(&sample, now_ms);
}

fn record_all(work: &[(Req, u64)]) -> RequestStats {
    let mut stats = RequestStats::new(T0);
    for (req, now) in work {
        record(&mut stats, req, *now);
    }
    stats.record_exception("boom", "tb1", "worker-a", T0);
    stats.record_exception("boom", "tb1", "worker-b", T0);
    stats.record_exception("bang", "tb2", "worker-a", T0);
    stats
}

/// The same workload recorded by 3 "workers", each taking a delta every 97
/// requests; exceptions spread over the workers.
fn deltas(work: &[(Req, u64)]) -> Vec<RequestStats> {
    let mut workers = vec![RequestStats::new(T0); 3];
    let mut out = Vec::new();
    for (i, (req, now)) in work.iter().enumerate() {
        let w = &mut workers[i % 3];
        record(w, req, *now);
        if i % 97 == 0 {
            out.push(w.take());
        }
    }
    workers[0].record_exception("boom", "tb1", "worker-a", T0);
    workers[1].record_exception("boom", "tb1", "worker-b", T0);
    workers[2].record_exception("bang", "tb2", "worker-a", T0);
    out.extend(workers.iter_mut().map(RequestStats::take));
    out
}

#[test]
fn merging_deltas_equals_recording_everything_in_one() {
    let work = workload(1, 20_000);
    let expected = record_all(&work);
    let mut master = RequestStats::new(T0);
    for d in deltas(&work) {
        master.merge(&d);
    }
    assert_eq!(master, expected);
    // Spot checks, so a failure says what differs.
    assert_eq!(master.num_requests(), 20_000);
    assert_eq!(master.num_failures(), expected.num_failures());
    assert_eq!(master.errors(), expected.errors());
    let exc: Vec<_> = master.exceptions().collect();
    assert_eq!(exc, expected.exceptions().collect::<Vec<_>>());
    for (m, e) in master.entries().zip(expected.entries()) {
        assert_eq!(m.histogram, e.histogram);
        assert_eq!(m.due_histogram, e.due_histogram);
        assert_eq!(m.num_reqs_per_sec, e.num_reqs_per_sec);
        assert_eq!(m.num_fail_per_sec, e.num_fail_per_sec);
    }
}

#[test]
fn merge_order_does_not_matter() {
    let work = workload(2, 5_000);
    let mut parts = deltas(&work);
    let mut forward = RequestStats::new(T0);
    for d in &parts {
        forward.merge(d);
    }
    parts.shuffle(&mut StdRng::seed_from_u64(9));
    let mut shuffled = RequestStats::new(T0);
    for d in &parts {
        shuffled.merge(d);
    }
    assert_eq!(forward, shuffled);

    // Merging pre-merged halves (as a relay would) gives the same too.
    let (a, b) = parts.split_at(parts.len() / 2);
    let mut left = RequestStats::new(T0);
    a.iter().for_each(|d| left.merge(d));
    let mut right = RequestStats::new(T0);
    b.iter().for_each(|d| right.merge(d));
    right.merge(&left);
    assert_eq!(right, forward);
}

#[test]
fn merging_an_empty_delta_changes_nothing() {
    let work = workload(3, 1_000);
    let mut stats = record_all(&work);
    let before = stats.clone();
    stats.merge(&RequestStats::new(T0));
    stats.merge(&RequestStats::default());
    assert_eq!(stats, before);
}

#[test]
fn entry_min_max_mean_and_content_length() {
    let mut stats = RequestStats::new(T0);
    for us in [3_000, 1_000, 2_000] {
        stats.record(&ok("GET", "/", us), T0);
    }
    let e = stats.entry("GET", "/").unwrap();
    assert_eq!(e.num_requests, 3);
    assert_eq!(e.min_response_time_ms(), 1.0);
    assert_eq!(e.max_response_time_ms(), 3.0);
    assert_eq!(e.avg_response_time_ms(), 2.0);
    // Percentiles are bucketed (≤ 1% off) but bounded by the exact extremes.
    assert!((e.median_response_time_ms() - 2.0).abs() <= 0.02);
    assert_eq!(e.percentile_ms(1.0), 3.0);
    assert_eq!(e.percentile_ms(0.0), 1.0);
    assert_eq!(e.avg_content_length(), 100.0);
    assert_eq!(e.due_percentile_ms(0.5), None);
    assert!(stats.entry("POST", "/").is_none());
    assert_eq!(stats.total().min_response_time_us, 1_000);
    assert_eq!(stats.total().max_response_time_us, 3_000);
}

#[test]
fn entry_of_empty_stats_is_all_zero() {
    let stats = RequestStats::default();
    let t = stats.total();
    assert_eq!((t.method.as_str(), t.name.as_str()), ("", "Aggregated"));
    assert_eq!(stats.start_ms(), 0);
    assert_eq!(t.avg_response_time_ms(), 0.0);
    assert_eq!(t.percentile_ms(0.95), 0.0);
    assert_eq!(t.avg_content_length(), 0.0);
    assert_eq!(t.current_rps(T0), 0.0);
    assert_eq!(t.total_rps(T0, T0), 0.0);
    assert_eq!(stats.fail_ratio(), 0.0);
    assert_eq!(stats.current_response_time_percentile_ms(0.5, T0), None);
}

#[test]
fn due_latency_is_kept_apart() {
    let mut stats = RequestStats::new(T0);
    let mut s = ok("GET", "/", 1_000);
    s.due_latency_us = Some(250_000);
    stats.record(&s, T0);
    let e = stats.entry("GET", "/").unwrap();
    assert_eq!(e.percentile_ms(1.0), 1.0);
    let due = e.due_percentile_ms(1.0).unwrap();
    assert!((due - 250.0).abs() <= 2.5, "{due}");
    assert!(stats.total().due_percentile_ms(0.5).is_some());
}

#[test]
fn current_rps_is_the_mean_of_the_ten_seconds_before_the_last_two() {
    let mut stats = RequestStats::new(T0);
    // Second k (k = 0..30) after T0 gets k requests, one failing.
    for k in 0..30u64 {
        for i in 0..k {
            let at = T0 + k * 1000 + i;
            if i == 0 {
                stats.record(&failed("GET", "/", 1_000, "x"), at);
            } else {
                stats.record(&ok("GET", "/", 1_000), at);
            }
        }
    }
    let e = stats.entry("GET", "/").unwrap();
    // Now = second 30.5: the window is seconds 18..=27, mean 22.5.
    let now = T0 + 30_500;
    assert_eq!(e.current_rps(now), 22.5);
    assert_eq!(e.current_fail_per_sec(now), 1.0);
    assert_eq!(stats.total().current_rps(now), 22.5);
    // Long after the last request the window is empty: 0.
    assert_eq!(e.current_rps(T0 + 100_000), 0.0);
    // Young run: at second 5 only seconds 1..=2 exist (first request at 1).
    assert_eq!(e.current_rps(T0 + 5_000), 1.5);
    // Younger than the 2 s lag: nothing to average yet.
    assert_eq!(e.current_rps(T0 + 2_000), 0.0);
    // Totals from the start to the last request (T0 + 29.028 s), as Locust.
    let n = e.num_requests as f64;
    assert_eq!(e.total_rps(T0, T0 + 30_000), n / 29.028);
    assert_eq!(e.total_fail_per_sec(T0, T0 + 29_000), 29.0 / 29.0);
    // Less than a second counts as one, as Locust does.
    assert_eq!(e.total_rps(T0, T0 + 10), n);
    assert_eq!(e.fail_ratio(), 29.0 / n);
}

#[test]
fn total_rps_is_not_diluted_by_time_after_the_last_request() {
    // 1,000,000 requests over a 10 s run, summarised 1 s after the stop:
    // the rate served is 100,000/s, not 1,000,000 / 11 s.
    let mut stats = RequestStats::new(T0);
    for i in 0..1_000_000u64 {
        stats.record(&ok("GET", "/", 1_000), T0 + i / 100);
    }
    let summary_at = T0 + 11_000;
    let e = stats.entry("GET", "/").unwrap();
    let rps = e.total_rps(T0, summary_at);
    assert!((rps - 100_010.0).abs() < 1.0, "{rps}");
    assert_eq!(stats.total().total_rps(T0, summary_at), rps);
    // No request at all: 0, whatever the time.
    assert_eq!(RequestStats::new(T0).total().total_rps(T0, summary_at), 0.0);
}

#[test]
fn current_percentiles_cover_the_last_ten_seconds() {
    let mut stats = RequestStats::new(T0);
    // Slow requests early, fast ones in the last 10 s.
    for k in 0..5u64 {
        stats.record(&ok("GET", "/", 900_000), T0 + k * 1000);
    }
    for k in 20..30u64 {
        stats.record(&ok("GET", "/", 10_000), T0 + k * 1000);
    }
    let now = T0 + 29_999;
    let p = stats.current_response_time_percentile_ms(1.0, now).unwrap();
    assert!((p - 10.0).abs() < 0.1, "{p}");
    let p = stats.current_response_time_percentile_ms(0.5, T0 + 12_000);
    assert!((p.unwrap() - 900.0).abs() < 9.0);
    assert_eq!(
        stats.current_response_time_percentile_ms(0.5, T0 + 60_000),
        None
    );
    // Since the start, the slow ones still count.
    assert!(stats.total().percentile_ms(1.0) > 890.0);
}

#[test]
fn failures_are_grouped_by_method_name_and_error() {
    let mut stats = RequestStats::new(T0);
    stats.record(&failed("GET", "/a", 1, "HTTP 500"), T0 + 5_000);
    stats.record(&failed("GET", "/a", 1, "HTTP 500"), T0 + 1_000);
    stats.record(&failed("GET", "/a", 1, "HTTP 500"), T0 + 9_000);
    stats.record(&failed("GET", "/a", 1, "HTTP 503"), T0);
    stats.record(&failed("POST", "/a", 1, "HTTP 500"), T0);
    stats.record(&ok("GET", "/a", 1), T0);
    assert_eq!(stats.errors().len(), 3);
    let g = &stats.errors()[&ErrorKey::new("GET", "/a", "HTTP 500")];
    assert_eq!(g.occurrences, 3);
    assert_eq!(g.first_seen_ms, T0 + 1_000);
    assert_eq!(g.last_seen_ms, T0 + 9_000);
    assert_eq!(stats.num_failures(), 5);
    assert_eq!(stats.entry("GET", "/a").unwrap().num_failures, 3 + 1);
    assert_eq!(stats.fail_ratio(), 5.0 / 6.0);
}

#[test]
fn exceptions_are_grouped_by_message_and_traceback() {
    let mut stats = RequestStats::new(T0);
    stats.record_exception("boom", "at line 3", "w1", T0);
    stats.record_exception("boom", "at line 3", "w2", T0);
    stats.record_exception("boom", "at line 3", "w1", T0);
    stats.record_exception("boom", "at line 9", "w1", T0);
    assert!(!stats.is_empty());
    let exc: Vec<_> = stats.exceptions().collect();
    assert_eq!(exc.len(), 2);
    assert_eq!(exc[0].traceback, "at line 3");
    assert_eq!(exc[0].count, 3);
    let nodes: Vec<&str> = exc[0].nodes.iter().map(String::as_str).collect();
    assert_eq!(nodes, ["w1", "w2"]);
    assert_eq!(exc[1].count, 1);
}

#[test]
fn entries_are_sorted_by_name_then_method() {
    let mut stats = RequestStats::new(T0);
    for (m, n) in [
        ("POST", "/b"),
        ("GET", "/b"),
        ("GET", "/a"),
        ("DELETE", "/c"),
    ] {
        stats.record(&ok(m, n, 1), T0);
    }
    let keys: Vec<(String, String)> = stats
        .entries()
        .map(|e| (e.method.to_string(), e.name.to_string()))
        .collect();
    let want = [
        ("GET", "/a"),
        ("GET", "/b"),
        ("POST", "/b"),
        ("DELETE", "/c"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(m, n)| (m.to_string(), n.to_string()))
        .collect();
    assert_eq!(keys, want);
    assert_eq!(stats.entries().len(), 4);
}

#[test]
fn take_leaves_empty_stats_with_the_same_start() {
    let work = workload(4, 500);
    let mut stats = record_all(&work);
    let copy = stats.clone();
    let taken = stats.take();
    assert_eq!(taken, copy);
    assert!(stats.is_empty());
    assert_eq!(stats, RequestStats::new(T0));
    assert_eq!(stats.start_ms(), T0);
    assert_eq!(stats.entries().len(), 0);
    assert!(stats.errors().is_empty());
    assert_eq!(stats.exceptions().len(), 0);
}

#[test]
fn reset_forgets_everything_and_restarts_the_clock() {
    let mut stats = record_all(&workload(5, 500));
    stats.reset(T0 + 99_000);
    assert!(stats.is_empty());
    assert_eq!(stats, RequestStats::new(T0 + 99_000));
    assert_eq!(stats.total().name, "Aggregated");
}

#[test]
fn prune_drops_only_old_per_second_data() {
    let mut stats = RequestStats::new(T0);
    for k in 0..60u64 {
        stats.record(&ok("GET", "/", 1_000), T0 + k * 1000);
    }
    let now = T0 + 60_000;
    let before_rps = stats.total().current_rps(now);
    let before_p = stats.current_response_time_percentile_ms(0.5, now);
    stats.prune(now);
    let e = stats.entry("GET", "/").unwrap();
    assert_eq!(e.num_reqs_per_sec.len(), 20);
    assert_eq!(stats.total().num_reqs_per_sec.len(), 20);
    assert_eq!(e.num_requests, 60);
    assert_eq!(e.histogram.len(), 60);
    assert_eq!(stats.total().current_rps(now), before_rps);
    assert_eq!(
        stats.current_response_time_percentile_ms(0.5, now),
        before_p
    );
}

#[test]
fn msgpack_round_trip_equals_the_original() {
    let stats = record_all(&workload(6, 3_000));
    let compact = rmp_serde::to_vec(&stats).unwrap();
    let back: RequestStats = rmp_serde::from_slice(&compact).unwrap();
    assert_eq!(back, stats);
    let named = rmp_serde::to_vec_named(&stats).unwrap();
    let back: RequestStats = rmp_serde::from_slice(&named).unwrap();
    assert_eq!(back, stats);
    let json = serde_json::to_string(&stats).unwrap();
    let back: RequestStats = serde_json::from_str(&json).unwrap();
    assert_eq!(back, stats);
    // Deterministic bytes, whatever the hash map's iteration order.
    assert_eq!(rmp_serde::to_vec(&back).unwrap(), compact);
}

#[test]
fn garbage_does_not_decode() {
    assert!(rmp_serde::from_slice::<RequestStats>(&[0xc1, 0x00]).is_err());
    assert!(rmp_serde::from_slice::<RequestStats>(&[]).is_err());
}

#[test]
fn counters_have_their_own_row_but_stay_out_of_the_total() {
    let mut stats = RequestStats::new(0);
    let sample = |method| stats::Sample {
        method,
        name: "orders",
        response_time_us: 0,
        due_latency_us: None,
        content_length: 0,
        error: None,
    };
    stats.record(&sample(stats::COUNTER_METHOD), 1_000);
    stats.record(&sample(stats::COUNTER_METHOD), 1_000);
    stats.record(&sample("GET"), 1_000);
    assert_eq!(
        stats
            .entry(stats::COUNTER_METHOD, "orders")
            .unwrap()
            .num_requests,
        2
    );
    assert_eq!(stats.total().num_requests, 1);
}

#[test]
fn dropped_iterations_merge_take_and_reset_exactly() {
    let mut a = RequestStats::new(1_000);
    a.record_dropped("Api", 3);
    a.record_dropped("Api", 0);
    a.record_dropped("Web", 1);
    let mut b = RequestStats::new(1_000);
    b.record_dropped("Api", 2);
    assert!(!b.is_empty());
    let mut total = RequestStats::new(1_000);
    total.merge(&a.take());
    total.merge(&b.take());
    assert!(a.is_empty() && a.dropped_iterations().is_empty());
    assert_eq!(total.dropped_iterations().get("Api"), Some(&5));
    assert_eq!(total.dropped_iterations().get("Web"), Some(&1));
    assert_eq!(total.dropped_iterations_total(), 6);
    // Across the wire (msgpack, as reports travel) nothing is lost.
    let bytes = rmp_serde::to_vec(&total).unwrap();
    let back: RequestStats = rmp_serde::from_slice(&bytes).unwrap();
    assert_eq!(back.dropped_iterations_total(), 6);
    total.reset(2_000);
    assert_eq!(total.dropped_iterations_total(), 0);
}
