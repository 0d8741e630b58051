//! Checks the hot-path promise: once an entry, its error group and the
//! current second exist, `RequestStats::record` allocates nothing. A
//! counting global allocator (this test binary only) watches every call
//! made on the test's own thread: the harness's threads allocate too, and
//! under load their allocations would land inside the measured loop.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

use stats::{RequestStats, Sample};

struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    // Const-initialised and without a destructor, so reading it from the
    // allocator never allocates.
    static WATCHED: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if WATCHED.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: defers every call to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn record_into_existing_entries_does_not_allocate() {
    const NOW: u64 = 1_795_424_070_000;
    let names: Vec<String> = (0..50).map(|i| format!("/items/{i}")).collect();
    let sample = |name, i: u64, error| Sample {
        method: "GET",
        name,
        response_time_us: i * 7919 % 1_000_000,
        due_latency_us: Some(i % 1000),
        content_length: 10,
        error,
    };
    let mut stats = RequestStats::new(NOW);
    // Warm up: every entry, error group, second and histogram range.
    for name in &names {
        stats.record(&sample(name, 0, Some("HTTP 500")), NOW);
        stats.record(&sample(name, 0, None), NOW);
        stats.record(&sample(name, 999_999, None), NOW);
    }
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    WATCHED.with(|w| w.set(true));
    for i in 0..100_000u64 {
        let name = &names[(i % 50) as usize];
        let error = (i % 10 == 0).then_some("HTTP 500");
        stats.record(&sample(name, i, error), NOW + i % 1000);
    }
    WATCHED.with(|w| w.set(false));
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    assert_eq!(after - before, 0, "record allocated");
    assert_eq!(stats.num_requests(), 100_150);
}

#[test]
fn merging_a_decoded_histogram_into_a_grown_one_does_not_allocate() {
    use stats::LatencyHistogram;
    // The master's histogram, already grown to a 10 s range.
    let mut master = LatencyHistogram::new();
    master.record(10_000_000);
    let mut delta = LatencyHistogram::new();
    for i in 0..5_000u64 {
        delta.record(i * 7919 % 2_000_000);
    }
    let decoded = LatencyHistogram::decode_sparse(&delta.encode_sparse()).unwrap();
    // Its first merge grows the buffer merges add into (once per
    // histogram); settling records those counts and keeps the buffer.
    master.merge(&decoded);
    master.settle();
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    WATCHED.with(|w| w.set(true));
    master.merge(&decoded);
    WATCHED.with(|w| w.set(false));
    let after = ALLOCATIONS.load(Ordering::Relaxed);
    assert_eq!(after - before, 0, "merge allocated");
    assert_eq!(master.len(), 10_001);
    master.settle();
    assert_eq!(master.len(), 10_001);
}
