//! `LatencyHistogram`: response times in microseconds, a thin wrapper over an
//! auto-resizing `hdrhistogram::Histogram<u64>` at 2 significant figures.
//!
//! The wrapper exists so the rest of the system never sees hdrhistogram's
//! fallible API (recording and adding cannot fail here: the histogram grows),
//! and so it can travel over the wire as a sparse list of `(bucket value,
//! count)` pairs that rebuilds every bucket exactly on the other side.

use std::fmt;

use hdrhistogram::Histogram;
use serde::de::{SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Significant figures kept: at most 1% relative error per value.
const SIGFIG: u8 = 2;

/// hdrhistogram auto-resizes only up to `i64::MAX / 2`; larger values (which
/// no real latency reaches, ~146 000 years in µs) are clamped so recording
/// never fails.
const MAX_TRACKABLE_US: u64 = (i64::MAX / 2) as u64;

/// A mergeable latency histogram in microseconds (≤ 1% relative error).
#[derive(Clone)]
pub struct LatencyHistogram {
    inner: Histogram<u64>,
}

impl LatencyHistogram {
    /// An empty histogram that grows to fit whatever is recorded.
    pub fn new() -> Self {
        // `Histogram::new` only fails for sigfig > 5; SIGFIG is a constant 2.
        let inner = Histogram::new(SIGFIG).expect("sigfig 2 is always valid");
        Self { inner }
    }

    /// Records one response time.
    #[inline]
    pub fn record(&mut self, us: u64) {
        self.record_n(us, 1);
    }

    /// Records `n` occurrences of one response time.
    #[inline]
    pub fn record_n(&mut self, us: u64, n: u64) {
        if n == 0 {
            return;
        }
        // Cannot fail: auto-resize is on and the value is within its limit.
        // Saturating keeps this panic-free should that ever change.
        let us = us.min(MAX_TRACKABLE_US);
        if self.inner.record_n(us, n).is_err() {
            self.inner.saturating_record_n(us, n);
        }
    }

    /// Adds every count of `other` to this histogram (exact, commutative).
    pub fn merge(&mut self, other: &LatencyHistogram) {
        if other.is_empty() {
            return;
        }
        if self.inner.add(&other.inner).is_err() {
            // Only possible without auto-resize; fall back bucket by bucket.
            for (value, count) in other.buckets() {
                self.record_n(value, count);
            }
        }
    }

    /// Number of recorded values.
    pub fn len(&self) -> u64 {
        self.inner.len()
    }

    /// Whether nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// Lowest recorded value (bucket precision); 0 when empty.
    pub fn min_us(&self) -> u64 {
        if self.is_empty() { 0 } else { self.inner.min() }
    }

    /// Highest recorded value (bucket precision); 0 when empty.
    pub fn max_us(&self) -> u64 {
        if self.is_empty() { 0 } else { self.inner.max() }
    }

    /// Mean of the recorded values (bucket precision); 0.0 when empty.
    pub fn mean_us(&self) -> f64 {
        if self.is_empty() {
            0.0
        } else {
            self.inner.mean()
        }
    }

    /// The value at quantile `q` (clamped into `0.0..=1.0`; NaN reads as 0);
    /// 0 when empty.
    pub fn value_at_quantile_us(&self, q: f64) -> u64 {
        if self.is_empty() {
            return 0;
        }
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        self.inner.value_at_quantile(q)
    }

    /// The non-empty buckets as `(highest value in bucket, count)`, ascending.
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.inner
            .iter_recorded()
            .map(|v| (v.value_iterated_to(), v.count_at_value()))
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        Self::new()
    }
}

impl PartialEq for LatencyHistogram {
    /// Equal when they hold the same counts in the same buckets; unlike
    /// hdrhistogram's own `eq`, the size the histogram happened to grow to
    /// does not matter.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.buckets().eq(other.buckets())
    }
}

impl Eq for LatencyHistogram {}

impl fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The dense counts array is noise; the sparse buckets say it all.
        f.debug_struct("LatencyHistogram")
            .field("len", &self.len())
            .field("buckets", &self.buckets().collect::<Vec<_>>())
            .finish()
    }
}

impl Serialize for LatencyHistogram {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // msgpack needs the length up front; hdrhistogram's
        // `distinct_values` counts every slot, not the non-empty ones.
        let n = self.buckets().count();
        let mut seq = serializer.serialize_seq(Some(n))?;
        for pair in self.buckets() {
            seq.serialize_element(&pair)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for LatencyHistogram {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_seq(BucketsVisitor)
    }
}

struct BucketsVisitor;

impl<'de> Visitor<'de> for BucketsVisitor {
    type Value = LatencyHistogram;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence of (bucket value, count) pairs")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut h = LatencyHistogram::new();
        // Recording a bucket's highest value lands in that same bucket, so
        // the rebuilt histogram answers every query exactly as the original.
        while let Some((value, count)) = seq.next_element::<(u64, u64)>()? {
            h.record_n(value, count);
        }
        Ok(h)
    }
}
