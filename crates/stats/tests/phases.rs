//! Tests of the per-entry phase histograms (connect, TLS, TTFB): recorded
//! only where a request reported phases, merged exactly like response
//! times (at a coarser grain, ~2%), carried over msgpack, and cheap on the wire.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stats::{PhaseSample, RequestStats, Sample};

const T0: u64 = 1_795_424_070_000;

fn ok<'a>(name: &'a str, us: u64) -> Sample<'a> {
    Sample {
        method: "GET",
        name,
        response_time_us: us,
        due_latency_us: None,
        content_length: 100,
        error: None,
    }
}

fn phases(connect_us: u64, tls_us: u64, ttfb_us: u64) -> PhaseSample {
    PhaseSample {
        connect_us,
        tls_us,
        ttfb_us,
    }
}

fn wire(stats: &RequestStats) -> Vec<u8> {
    // As the protocol sends a report.
    rmp_serde::to_vec_named(stats).expect("encode")
}

#[test]
fn only_entries_that_saw_phases_carry_them() {
    let mut s = RequestStats::new(T0);
    s.record_with_phases(&ok("/a", 5_000), Some(&phases(300, 900, 4_000)), T0);
    s.record(
        &Sample {
            method: "WS",
            ..ok("/ws", 2_000)
        },
        T0,
    );
    assert!(s.entry("GET", "/a").unwrap().phases.is_some());
    assert!(s.entry("WS", "/ws").unwrap().phases.is_none());
    let back: RequestStats = rmp_serde::from_slice(&wire(&s)).unwrap();
    assert_eq!(back, s);
    assert!(back.entry("WS", "/ws").unwrap().phases.is_none());
    // The total's phases are summed once a report, not per request.
    assert!(s.total().phases.is_none());
    let report = s.take_report();
    let total = report.total().phases.as_ref().unwrap();
    assert_eq!(total.len(), 1);
}

#[test]
fn percentiles_follow_recorded_values_and_reuse_counts_zero() {
    let mut s = RequestStats::new(T0);
    // One new connection, 99 reused: p50 connect and TLS are 0.
    s.record_with_phases(&ok("/a", 9_000), Some(&phases(2_000, 5_000, 1_000)), T0);
    for i in 0..99 {
        s.record_with_phases(&ok("/a", 2_000), Some(&phases(0, 0, 1_000 + i * 10)), T0);
    }
    let p = s.entry("GET", "/a").unwrap().phases.as_ref().unwrap();
    let [(_, connect), (_, tls), (name, ttfb)] = p.percentiles_ms();
    assert_eq!(name, "ttfb");
    assert_eq!(connect.p50, 0.0);
    assert_eq!(tls.p50, 0.0);
    // 99 of 100 are zero, so p99 is too; the one handshake is the maximum.
    assert_eq!(tls.p99, 0.0);
    assert!(
        (4_900..=5_100).contains(&p.tls.max_us()),
        "{}",
        p.tls.max_us()
    );
    assert!((1.45..=1.55).contains(&ttfb.p50), "{}", ttfb.p50);
    assert!(ttfb.p99 >= ttfb.p95 && ttfb.p95 >= ttfb.p50);
}

#[test]
fn merging_deltas_equals_recording_in_one() {
    let mut rng = StdRng::seed_from_u64(12);
    let mut whole = RequestStats::new(T0);
    let mut master = RequestStats::new(T0);
    for _ in 0..20 {
        let mut delta = RequestStats::new(T0);
        for _ in 0..50 {
            let ph = phases(
                rng.random_range(0..3_000),
                rng.random_range(0..8_000),
                rng.random_range(100..90_000),
            );
            let sample = ok(["/a", "/b"][rng.random_range(0..2)], 10_000);
            delta.record_with_phases(&sample, Some(&ph), T0);
            whole.record_with_phases(&sample, Some(&ph), T0);
        }
        let sent: RequestStats = rmp_serde::from_slice(&wire(&delta)).unwrap();
        master.merge(&sent);
    }
    assert_eq!(master, whole);
    let a = master.entry("GET", "/a").unwrap().phases.as_ref().unwrap();
    assert_eq!(
        a.len(),
        master.entry("GET", "/a").unwrap().num_requests,
        "one value per request"
    );
}

/// The report of one second over 50 HTTP entries, with or without phases:
/// how many bytes the phases add. Printed (run with `--nocapture`) and
/// bounded, so a regression in the wire form fails here.
#[test]
fn phases_cost_few_bytes_per_report() {
    let names: Vec<String> = (0..50).map(|i| format!("/api/v1/items/{i}")).collect();
    let mut rng = StdRng::seed_from_u64(16);
    let (mut plain, mut with) = (RequestStats::new(T0), RequestStats::new(T0));
    for i in 0..10_000 {
        let rt = rng.random_range(1_000..50_000u64);
        let sample = ok(&names[i % names.len()], rt);
        // Keep-alive: a connection is made for about one request in 200.
        let fresh = rng.random_ratio(1, 200);
        let ph = if fresh {
            phases(
                rng.random_range(100..500),
                rng.random_range(1_000..3_000),
                rt / 2,
            )
        } else {
            phases(0, 0, rt * 9 / 10)
        };
        plain.record(&sample, T0 + 500);
        with.record_with_phases(&sample, Some(&ph), T0 + 500);
    }
    let (before, after) = (wire(&plain).len(), wire(&with).len());
    let per_entry = (after - before) as f64 / 51.0;
    println!(
        "bytes per report (50 entries, 10,000 requests): without phases {before}, with {after} (+{:.1}%, {per_entry:.0} bytes per entry)",
        100.0 * (after - before) as f64 / before as f64
    );
    // The TTFB histogram is as wide as the response times'; connect and
    // TLS are mostly one bucket of zeros.
    assert!(after < before * 3 / 2, "{before} -> {after}");
}
