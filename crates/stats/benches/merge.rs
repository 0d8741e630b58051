//! The cost of a worker report on the wire and in the master's merge, in
//! the compact form (varint bucket-index gaps and counts, merged bucket by
//! bucket) against the form it replaced (msgpack `(value, count)` pairs,
//! decoded into a fresh dense histogram, then `Histogram::add` over every
//! bucket), which this bench keeps as `OldForm` so both run side by side.
//!
//! Prints bytes per 50-entry report and merge time per entry, before, after
//! and their ratio. No criterion: one run, plain figures. Run with
//! `cargo bench -p stats --bench merge`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::de::{SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use stats::{LatencyHistogram, PhaseSample, RequestStats, Sample};

const ENTRIES: usize = 50;
/// A worker at 10,000 requests/s reporting every second.
const REQUESTS_PER_REPORT: usize = 10_000;
const REPORTS: usize = 200;
const START_MS: u64 = 1_700_000_000_000;

/// The previous wire form of a histogram.
struct OldForm(LatencyHistogram);

impl Serialize for OldForm {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let n = self.0.buckets().count();
        let mut seq = serializer.serialize_seq(Some(n))?;
        for pair in self.0.buckets() {
            seq.serialize_element(&pair)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for OldForm {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Pairs;
        impl<'de> Visitor<'de> for Pairs {
            type Value = OldForm;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("pairs")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<OldForm, A::Error> {
                let mut h = LatencyHistogram::new();
                while let Some((value, count)) = seq.next_element::<(u64, u64)>()? {
                    h.record_n(value, count);
                }
                Ok(OldForm(h))
            }
        }
        deserializer.deserialize_seq(Pairs)
    }
}

/// A latency as a web service spreads them: log-uniform over 1–50 ms for
/// most requests, a tail to 2 s for one in twenty.
fn latency_us(rng: &mut StdRng) -> u64 {
    let (low, high): (f64, f64) = if rng.random_bool(0.95) {
        (1_000.0, 50_000.0)
    } else {
        (50_000.0, 2_000_000.0)
    };
    (low.ln() + rng.random::<f64>() * (high / low).ln()).exp() as u64
}

/// One second of a worker's requests over 50 entries. All in one second,
/// so the per-second total histogram the report carries equals the total's.
fn report(rng: &mut StdRng, names: &[String]) -> RequestStats {
    let mut stats = RequestStats::new(START_MS);
    let now = START_MS + 500;
    for i in 0..REQUESTS_PER_REPORT {
        let sample = Sample {
            method: "GET",
            name: &names[i % names.len()],
            response_time_us: latency_us(rng),
            due_latency_us: None,
            content_length: 512,
            error: None,
        };
        // As an HTTP worker records them: a pooled connection (no
        // connect, no TLS) but for one request in a hundred.
        let fresh = i % 100 == 0;
        let phases = PhaseSample {
            connect_us: if fresh { 150 } else { 0 },
            tls_us: if fresh { 900 } else { 0 },
            ttfb_us: sample.response_time_us * 9 / 10,
        };
        stats.record_with_phases(&sample, Some(&phases), now);
    }
    stats
}

/// Every histogram a report carries: the entries', the total's, and the
/// total's one per-second histogram (equal to the total's, see `report`).
fn histograms(stats: &RequestStats) -> Vec<LatencyHistogram> {
    let mut all: Vec<LatencyHistogram> = stats.entries().map(|e| e.histogram.clone()).collect();
    all.push(stats.total().histogram.clone());
    all.push(stats.total().histogram.clone());
    all
}

fn per_entry(elapsed: Duration, merges: usize) -> f64 {
    elapsed.as_nanos() as f64 / merges as f64
}

fn main() {
    let names: Vec<String> = (0..ENTRIES).map(|i| format!("/api/v1/items/{i}")).collect();
    let mut rng = StdRng::seed_from_u64(16);
    let reports: Vec<RequestStats> = (0..REPORTS).map(|_| report(&mut rng, &names)).collect();

    // Bytes: the report as sent now; before, the same minus each
    // histogram's new form plus its old one (msgpack concatenates).
    let (mut new_bytes, mut old_bytes, mut buckets) = (0usize, 0usize, 0usize);
    for r in &reports {
        let now = rmp_serde::to_vec(r).expect("encode").len();
        let (mut hist_new, mut hist_old) = (0, 0);
        for h in histograms(r) {
            buckets += h.buckets().count();
            hist_new += rmp_serde::to_vec(&h).expect("encode").len();
            hist_old += rmp_serde::to_vec(&OldForm(h)).expect("encode").len();
        }
        new_bytes += now;
        old_bytes += now - hist_new + hist_old;
    }
    let (new_b, old_b) = (new_bytes / REPORTS, old_bytes / REPORTS);
    println!(
        "report: {ENTRIES} entries, {REQUESTS_PER_REPORT} requests, ~{} non-empty buckets per histogram",
        buckets / REPORTS / (ENTRIES + 2)
    );
    println!(
        "bytes per report: before {old_b}, after {new_b}, ratio {:.2}x smaller",
        old_b as f64 / new_b as f64
    );

    // Merge time per entry histogram: decode + merge into the master's
    // histogram of that entry, already grown (the steady state).
    let old_wire: Vec<Vec<Vec<u8>>> = reports
        .iter()
        .map(|r| {
            histograms(r)
                .into_iter()
                .take(ENTRIES)
                .map(|h| rmp_serde::to_vec(&OldForm(h)).expect("encode"))
                .collect()
        })
        .collect();
    let new_wire: Vec<Vec<Vec<u8>>> = reports
        .iter()
        .map(|r| {
            histograms(r)
                .into_iter()
                .take(ENTRIES)
                .map(|h| rmp_serde::to_vec(&h).expect("encode"))
                .collect()
        })
        .collect();
    let grown = || {
        let mut h = LatencyHistogram::new();
        h.record(10_000_000);
        vec![h; ENTRIES]
    };
    let merges = REPORTS * ENTRIES;
    let rounds = 5;
    let (mut old_best, mut new_best) = (f64::MAX, f64::MAX);
    for _ in 0..rounds {
        let mut master = grown();
        let t = Instant::now();
        for report in &old_wire {
            for (mine, bytes) in master.iter_mut().zip(report) {
                let OldForm(h) = rmp_serde::from_slice(bytes).expect("decode");
                mine.merge(&h);
            }
        }
        old_best = old_best.min(per_entry(t.elapsed(), merges));
        black_box(&master);

        let mut master = grown();
        let t = Instant::now();
        for report in &new_wire {
            for (mine, bytes) in master.iter_mut().zip(report) {
                let h: LatencyHistogram = rmp_serde::from_slice(bytes).expect("decode");
                mine.merge(&h);
            }
        }
        new_best = new_best.min(per_entry(t.elapsed(), merges));
        black_box(&master);
    }
    println!(
        "histogram decode+merge per entry: before {old_best:.0} ns, after {new_best:.0} ns, ratio {:.2}x faster",
        old_best / new_best
    );

    // The new path split in two: where its time goes.
    let decoded: Vec<Vec<LatencyHistogram>> = new_wire
        .iter()
        .map(|r| {
            r.iter()
                .map(|b| rmp_serde::from_slice(b).expect("decode"))
                .collect()
        })
        .collect();
    let t = Instant::now();
    for report in &new_wire {
        for bytes in report {
            black_box(rmp_serde::from_slice::<LatencyHistogram>(bytes).expect("decode"));
        }
    }
    let decode = per_entry(t.elapsed(), merges);
    let mut master = grown();
    let t = Instant::now();
    for report in &decoded {
        for (mine, h) in master.iter_mut().zip(report) {
            mine.merge(h);
        }
    }
    let merge = per_entry(t.elapsed(), merges);
    black_box(&master);
    println!("  after, split: decode {decode:.0} ns + merge {merge:.0} ns");

    // The whole report as the master handles it now: decode, merge.
    let packed: Vec<Vec<u8>> = reports
        .iter()
        .map(|r| rmp_serde::to_vec(r).expect("encode"))
        .collect();
    let mut best = f64::MAX;
    for _ in 0..rounds {
        let mut master = RequestStats::new(START_MS);
        master.merge(&reports[0]);
        let t = Instant::now();
        for bytes in &packed {
            let r: RequestStats = rmp_serde::from_slice(bytes).expect("decode");
            master.merge(&r);
        }
        best = best.min(per_entry(t.elapsed(), merges));
        black_box(&master);
    }
    println!("whole report decode+merge per entry (after): {best:.0} ns");

    // Decoding alone, in the two framings of the same report: with field
    // names (protocol 5 and before) and positional (protocol 6).
    let named: Vec<Vec<u8>> = reports
        .iter()
        .map(|r| rmp_serde::to_vec_named(r).expect("encode"))
        .collect();
    let size = |all: &[Vec<u8>]| all.iter().map(Vec::len).sum::<usize>() / REPORTS;
    let (named_b, packed_b) = (size(&named), size(&packed));
    println!(
        "report bytes: named fields {named_b}, positional {packed_b} ({:.1}% smaller)",
        100.0 * (1.0 - packed_b as f64 / named_b as f64)
    );
    let decode_all = |all: &[Vec<u8>]| {
        let t = Instant::now();
        for bytes in all {
            black_box(rmp_serde::from_slice::<RequestStats>(bytes).expect("decode"));
        }
        per_entry(t.elapsed(), merges)
    };
    let (mut named_best, mut packed_best) = (f64::MAX, f64::MAX);
    for _ in 0..rounds {
        named_best = named_best.min(decode_all(&named));
        packed_best = packed_best.min(decode_all(&packed));
    }
    println!(
        "report decode per entry: named fields {named_best:.0} ns, positional {packed_best:.0} ns, ratio {:.2}x faster",
        named_best / packed_best
    );
}
