//! Request statistics, pure and I/O-free: per-(method, name) entries with
//! mergeable latency histograms, failure groups, exceptions, sliding windows
//! for current RPS and percentiles, and Locust-compatible CSV rendering.
//!
//! One type, [`RequestStats`], serves both sides of the wire: a worker core
//! records into one and hands it over (`take`) every report interval; the
//! master merges those deltas into its own. Merging is exact and
//! order-independent, so every request is counted once wherever it landed.
//! Time is always passed in (`now_ms`, unix milliseconds) so tests are exact;
//! [`now_ms`] is the one clock read every caller uses to get it.

#![forbid(unsafe_code)]

pub mod csv;
mod entries;
mod entry;
mod errors;
mod histogram;
mod phases;
mod request_stats;
mod serde_maps;
mod sparse;

pub use entry::{EntryKey, Sample, StatsEntry};
pub use errors::{ErrorEntry, ErrorKey, ExceptionEntry};
pub use histogram::LatencyHistogram;
pub use phases::{PhaseHistograms, PhasePercentiles, PhaseSample};
pub use request_stats::RequestStats;
pub use sparse::SparseError;

/// Unix time in milliseconds, the timestamp every recorded sample and
/// report carries (0 if the clock is before 1970).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The percentiles Locust prints and writes to CSV, as fractions.
pub const PERCENTILES: [f64; 11] = [
    0.5, 0.66, 0.75, 0.8, 0.9, 0.95, 0.98, 0.99, 0.999, 0.9999, 1.0,
];

/// The method of counter entries (`swarmer.count`): shown as rows of their
/// own, left out of the Aggregated total.
pub const COUNTER_METHOD: &str = "COUNT";

/// Seconds of per-second history used for "current" figures (Locust: 10 s).
pub const CURRENT_WINDOW_SECS: u64 = 10;
