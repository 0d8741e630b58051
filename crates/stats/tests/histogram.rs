//! Tests of `LatencyHistogram`: accuracy against known distributions, exact
//! merging, odd input, and the compact serde form's exact round trip.

use stats::LatencyHistogram;

fn uniform(range: std::ops::RangeInclusive<u64>) -> LatencyHistogram {
    let mut h = LatencyHistogram::new();
    for us in range {
        h.record(us);
    }
    h
}

fn within(actual: u64, expected: f64, rel: f64) -> bool {
    (actual as f64 - expected).abs() <= expected * rel
}

#[test]
fn percentiles_of_uniform_distribution_within_one_percent() {
    let h = uniform(1..=100_000);
    assert_eq!(h.len(), 100_000);
    for (q, expected) in [
        (0.5, 50_000.0),
        (0.9, 90_000.0),
        (0.95, 95_000.0),
        (0.99, 99_000.0),
        (0.999, 99_900.0),
    ] {
        let v = h.value_at_quantile_us(q);
        assert!(within(v, expected, 0.01), "q={q}: {v} vs {expected}");
    }
    assert!(within(h.value_at_quantile_us(1.0), 100_000.0, 0.01));
    assert!(within(h.mean_us() as u64, 50_000.5, 0.01));
}

#[test]
fn min_max_mean_of_small_values_are_exact() {
    // Below 256 µs the histogram has single-microsecond buckets.
    let mut h = LatencyHistogram::new();
    for us in [10, 20, 30] {
        h.record(us);
    }
    assert_eq!(h.min_us(), 10);
    assert_eq!(h.max_us(), 30);
    assert_eq!(h.mean_us(), 20.0);
    assert_eq!(h.value_at_quantile_us(0.5), 20);
}

#[test]
fn zero_and_huge_values_record() {
    let mut h = LatencyHistogram::new();
    h.record(0);
    assert_eq!(h.len(), 1);
    assert_eq!(h.min_us(), 0);
    assert_eq!(h.max_us(), 0);
    h.record(u64::MAX);
    assert_eq!(h.len(), 2);
    assert!(h.max_us() > 1 << 60);
}

#[test]
fn record_n_counts_and_zero_n_is_a_no_op() {
    let mut h = LatencyHistogram::new();
    h.record_n(500, 0);
    assert!(h.is_empty());
    h.record_n(500, 7);
    assert_eq!(h.len(), 7);
    let mut one_by_one = LatencyHistogram::new();
    for _ in 0..7 {
        one_by_one.record(500);
    }
    assert_eq!(h, one_by_one);
}

#[test]
fn empty_histogram_answers_zero() {
    let h = LatencyHistogram::default();
    assert!(h.is_empty());
    assert_eq!(h.len(), 0);
    assert_eq!(h.min_us(), 0);
    assert_eq!(h.max_us(), 0);
    assert_eq!(h.mean_us(), 0.0);
    assert_eq!(h.value_at_quantile_us(0.5), 0);
}

#[test]
fn quantile_out_of_range_clamps() {
    let h = uniform(1..=1000);
    assert_eq!(h.value_at_quantile_us(-3.0), h.value_at_quantile_us(0.0));
    assert_eq!(h.value_at_quantile_us(7.0), h.value_at_quantile_us(1.0));
    assert_eq!(
        h.value_at_quantile_us(f64::NAN),
        h.value_at_quantile_us(0.0)
    );
    assert_eq!(h.value_at_quantile_us(f64::INFINITY), h.max_us());
}

#[test]
fn merge_equals_recording_everything_in_one() {
    let mut all = LatencyHistogram::new();
    let mut parts = vec![LatencyHistogram::new(); 4];
    for (i, us) in (0..20_000u64).map(|i| (i, i * i % 3_000_017)) {
        all.record(us);
        parts[(i % 4) as usize].record(us);
    }
    let mut merged = LatencyHistogram::new();
    for p in parts.iter().rev() {
        merged.merge(p);
    }
    assert_eq!(merged, all);
    assert_eq!(merged.max_us(), all.max_us());
    assert_eq!(merged.min_us(), all.min_us());
    assert_eq!(merged.mean_us(), all.mean_us());
    merged.merge(&LatencyHistogram::new());
    assert_eq!(merged, all);
}

#[test]
fn merge_into_smaller_histogram_grows_it() {
    let mut small = uniform(1..=10);
    let big = uniform(1_000_000..=1_000_100);
    small.merge(&big);
    assert_eq!(small.len(), 111);
    assert!(within(small.max_us(), 1_000_100.0, 0.01));
}

fn assert_same_answers(a: &LatencyHistogram, b: &LatencyHistogram) {
    assert_eq!(a, b);
    assert_eq!(a.len(), b.len());
    assert_eq!(a.min_us(), b.min_us());
    assert_eq!(a.max_us(), b.max_us());
    assert_eq!(a.mean_us(), b.mean_us());
    for q in stats::PERCENTILES {
        assert_eq!(a.value_at_quantile_us(q), b.value_at_quantile_us(q));
    }
}

#[test]
fn serde_round_trip_keeps_every_bucket() {
    let mut h = uniform(0..=5_000);
    h.record_n(123_456_789, 3);
    h.record(0);

    let packed = rmp_serde::to_vec(&h).unwrap();
    let back: LatencyHistogram = rmp_serde::from_slice(&packed).unwrap();
    assert_same_answers(&h, &back);

    let json = serde_json::to_string(&h).unwrap();
    let back: LatencyHistogram = serde_json::from_str(&json).unwrap();
    assert_same_answers(&h, &back);
}

#[test]
fn serde_form_is_bucket_index_gaps_and_counts() {
    let mut h = LatencyHistogram::new();
    h.record_n(5, 2);
    h.record(0);
    // Bucket 0 once, then 4 empty buckets skipped, then bucket 5 twice.
    assert_eq!(serde_json::to_string(&h).unwrap(), "[0,1,4,2]");
    let empty: LatencyHistogram = serde_json::from_str("[]").unwrap();
    assert!(empty.is_empty());
}

#[test]
fn debug_shows_buckets_not_dense_counts() {
    let mut h = LatencyHistogram::new();
    h.record(3);
    assert_eq!(
        format!("{h:?}"),
        "LatencyHistogram { len: 1, buckets: [(3, 1)] }"
    );
}
