//! The compact wire form of `LatencyHistogram`: exact round trips, merges of
//! decoded deltas equal to merges of the full histograms, and malformed
//! bytes rejected with an error that names the problem.

use proptest::prelude::*;
use stats::{LatencyHistogram, SparseError};

fn of(values: &[u64]) -> LatencyHistogram {
    let mut h = LatencyHistogram::new();
    for &us in values {
        h.record(us);
    }
    h
}

fn round_trip(h: &LatencyHistogram) -> LatencyHistogram {
    let back = LatencyHistogram::decode_sparse(&h.encode_sparse()).unwrap();
    assert_eq!(&back, h);
    assert_eq!(back.len(), h.len());
    assert_eq!(back.min_us(), h.min_us());
    assert_eq!(back.max_us(), h.max_us());
    assert_eq!(back.mean_us(), h.mean_us());
    for q in stats::PERCENTILES {
        assert_eq!(back.value_at_quantile_us(q), h.value_at_quantile_us(q));
    }
    // Re-encoding the decoded form gives the same bytes.
    assert_eq!(back.encode_sparse(), h.encode_sparse());
    back
}

#[test]
fn round_trips_empty_one_bucket_and_huge_values() {
    let empty = round_trip(&LatencyHistogram::new());
    assert!(empty.is_empty());
    assert!(LatencyHistogram::new().encode_sparse().is_empty());

    let one = round_trip(&of(&[42]));
    assert_eq!(one.buckets().collect::<Vec<_>>(), vec![(42, 1)]);

    // Beyond what hdrhistogram tracks: clamped, like `record` clamps.
    let huge = round_trip(&of(&[0, u64::MAX, i64::MAX as u64, 1 << 61]));
    assert_eq!(huge.len(), 4);
    assert_eq!(huge.max_us(), of(&[u64::MAX]).max_us());

    let mut big_counts = LatencyHistogram::new();
    big_counts.record_n(7, u64::MAX / 2);
    big_counts.record_n(1_000_000, u64::MAX / 2);
    round_trip(&big_counts);
}

#[test]
fn a_report_sized_delta_is_a_few_bytes_per_bucket() {
    let values: Vec<u64> = (0..200u64).map(|i| 5_000 + i * i * 37 % 200_000).collect();
    let h = of(&values);
    let buckets = h.buckets().count();
    let bytes = h.encode_sparse().len();
    assert!(bytes <= buckets * 3, "{bytes} bytes for {buckets} buckets");
}

#[test]
fn malformed_encodings_are_errors_not_panics() {
    // A varint whose continuation bit promises a byte that is not there.
    assert_eq!(
        LatencyHistogram::decode_sparse(&[0x80]),
        Err(SparseError::TruncatedVarint { offset: 0 })
    );
    // A bucket without its count.
    assert_eq!(
        LatencyHistogram::decode_sparse(&[3]),
        Err(SparseError::TruncatedVarint { offset: 1 })
    );
    // Eleven bytes, or bits past 64.
    let mut long = vec![0, 0x80 | 1];
    long.extend([0x80; 9]);
    long.push(1);
    assert!(matches!(
        LatencyHistogram::decode_sparse(&long),
        Err(SparseError::VarintOverflow { offset: 1 })
    ));
    // An index past the last bucket, alone or by adding up gaps.
    assert!(matches!(
        LatencyHistogram::decode_sparse(&[0xff, 0xff, 0x03, 1]),
        Err(SparseError::IndexOutOfRange { .. })
    ));
    let mut gaps = Vec::new();
    for _ in 0..100 {
        gaps.extend([0xff, 0x00, 1]); // gap 127, count 1
    }
    assert!(matches!(
        LatencyHistogram::decode_sparse(&gaps),
        Err(SparseError::IndexOutOfRange { .. })
    ));
    let mut max_gap = vec![0xff; 9];
    max_gap.extend([1, 1]);
    assert!(matches!(
        LatencyHistogram::decode_sparse(&max_gap),
        Err(SparseError::IndexOutOfRange { .. })
    ));
    // A bucket counted 0 times (the form only lists non-empty buckets).
    assert_eq!(
        LatencyHistogram::decode_sparse(&[5, 0]),
        Err(SparseError::ZeroCount { index: 5 })
    );
    // Counts adding up past u64.
    let mut over = vec![0];
    over.extend([0xff; 9]);
    over.push(1); // u64::MAX
    over.extend([0, 1]);
    assert_eq!(
        LatencyHistogram::decode_sparse(&over),
        Err(SparseError::CountOverflow)
    );
    // Through serde, the error names the problem.
    let err = rmp_serde::from_slice::<LatencyHistogram>(&[0xc4, 1, 0x80]).unwrap_err();
    assert!(err.to_string().contains("ends inside a number"), "{err}");
}

/// Latencies spread like real ones: mostly milliseconds, some tail, a few
/// extremes.
fn latency() -> impl Strategy<Value = u64> {
    prop_oneof![
        8 => 100u64..200_000,
        2 => 0u64..100_000_000,
        1 => any::<u64>(),
    ]
}

proptest! {
    #[test]
    fn merging_decoded_deltas_equals_merging_full_histograms(
        values in prop::collection::vec(latency(), 0..400),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
        seed in prop::collection::vec(latency(), 0..50),
    ) {
        // A worker's successive deltas: the values split at random cuts.
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c.index(values.len() + 1)).collect();
        cuts.push(0);
        cuts.push(values.len());
        cuts.sort_unstable();
        // What the master held before, and the whole histogram merged at once.
        let mut from_full = of(&seed);
        from_full.merge(&of(&values));
        let mut from_deltas = of(&seed);
        // A connection's held report: deltas merged into one (their counts
        // pending), then merged into the master as a whole.
        let mut held = LatencyHistogram::new();
        // Or the first decoded delta itself, later ones merged in their
        // wire form (what a master's inbox holds).
        let mut held_decoded: Option<LatencyHistogram> = None;
        for pair in cuts.windows(2) {
            let delta = of(&values[pair[0]..pair[1]]);
            let bytes = rmp_serde::to_vec(&delta).unwrap();
            let decoded: LatencyHistogram = rmp_serde::from_slice(&bytes).unwrap();
            from_deltas.merge(&decoded);
            held.merge(&decoded);
            match &mut held_decoded {
                Some(h) => h.merge(&decoded),
                None => held_decoded = Some(decoded),
            }
        }
        let mut via_held = of(&seed);
        via_held.merge(&held);
        prop_assert_eq!(&via_held, &from_full);
        let held_decoded = held_decoded.unwrap_or_default();
        prop_assert_eq!(held_decoded.encode_sparse(), of(&values).encode_sparse());
        prop_assert_eq!(held_decoded.len(), values.len() as u64);
        let mut via_decoded = of(&seed);
        via_decoded.merge(&held_decoded);
        prop_assert_eq!(&via_decoded, &from_full);
        // Read before and after the pending counts are recorded.
        prop_assert_eq!(&from_deltas, &from_full);
        prop_assert_eq!(from_deltas.value_at_quantile_us(0.99), from_full.value_at_quantile_us(0.99));
        from_deltas.settle();
        prop_assert_eq!(from_deltas.min_us(), from_full.min_us());
        prop_assert_eq!(from_deltas.max_us(), from_full.max_us());
        prop_assert_eq!(from_deltas.mean_us(), from_full.mean_us());
        for q in stats::PERCENTILES {
            prop_assert_eq!(from_deltas.value_at_quantile_us(q), from_full.value_at_quantile_us(q));
        }
    }

    #[test]
    fn arbitrary_bytes_decode_or_fail_without_panic(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        if let Ok(h) = LatencyHistogram::decode_sparse(&bytes) {
            let mut master = LatencyHistogram::new();
            master.merge(&h);
            prop_assert_eq!(master.len(), h.len());
        }
    }
}
