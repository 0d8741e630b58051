//! Benchmarks of the hot paths: `RequestStats::record` into existing entries
//! (a worker core calls it for every request, up to ~100k times a second)
//! and the master's `merge` of one 50-entry delta (once per worker report).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use stats::{LatencyHistogram, RequestStats, Sample};

const START_MS: u64 = 1_700_000_000_000;
const ENTRIES: usize = 50;

fn names() -> Vec<String> {
    (0..ENTRIES).map(|i| format!("/api/v1/items/{i}")).collect()
}

fn sample<'a>(name: &'a str, i: u64, error: Option<&'a str>) -> Sample<'a> {
    Sample {
        method: "GET",
        name,
        // Spread over 0.1–100 ms so the histogram sees many buckets.
        response_time_us: 100 + (i * 7919) % 100_000,
        due_latency_us: None,
        content_length: 512,
        error,
    }
}

/// Stats where every entry (and error group) already exists.
fn warmed(names: &[String]) -> RequestStats {
    let mut stats = RequestStats::new(START_MS);
    for (i, name) in names.iter().enumerate() {
        for j in 0..1000 {
            stats.record(&sample(name, (i * 1000 + j) as u64, None), START_MS);
        }
        stats.record(&sample(name, 0, Some("HTTP 500")), START_MS);
    }
    stats
}

fn bench_record(c: &mut Criterion) {
    let names = names();
    let mut group = c.benchmark_group("record");
    for (label, error) in [
        ("existing_entry", None),
        ("existing_error", Some("HTTP 500")),
    ] {
        let mut stats = warmed(&names);
        let mut i = 0u64;
        group.bench_function(label, |b| {
            b.iter(|| {
                i += 1;
                let name = &names[i as usize % ENTRIES];
                // ~100k records per simulated second, as on a busy core.
                let now_ms = START_MS + i / 100;
                stats.record(black_box(&sample(name, i, error)), now_ms);
                // Per-second data stays bounded as in a real run, where the
                // worker takes its delta every report.
                if i % 100_000 == 0 {
                    stats.prune(now_ms);
                }
            })
        });
    }
    let mut h = LatencyHistogram::new();
    let mut i = 0u64;
    group.bench_function("histogram_only", |b| {
        b.iter(|| {
            i += 1;
            h.record(black_box(100 + (i * 7919) % 100_000));
        })
    });
    group.finish();
}

fn bench_merge(c: &mut Criterion) {
    let names = names();
    let mut master = warmed(&names);
    let delta = warmed(&names);
    c.bench_function("merge/50_entry_delta", |b| {
        b.iter(|| master.merge(black_box(&delta)))
    });
    c.bench_function("take/50_entries", |b| {
        b.iter_batched_ref(
            || warmed(&names),
            |s| black_box(s.take()),
            criterion::BatchSize::LargeInput,
        )
    });
}

criterion_group!(benches, bench_record, bench_merge);
criterion_main!(benches);
