//! `LatencyHistogram`: response times in microseconds, a thin wrapper over an
//! auto-resizing `hdrhistogram::Histogram<u64>` at 2 significant figures.
//!
//! The wrapper exists so the rest of the system never sees hdrhistogram's
//! fallible API (recording and adding cannot fail here: the histogram grows),
//! and so it travels over the wire in the compact form of [`crate::sparse`].
//! A histogram read off the wire stays in that form: a report's histograms
//! are only ever merged into the master's, and adding their few buckets
//! one by one costs neither a dense array nor a walk over every bucket.

use std::fmt;

use hdrhistogram::Histogram;
use serde::de::{SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use smallvec::SmallVec;

use crate::sparse::{self, SparseError};

/// Significant figures kept: at most 1% relative error per value. The
/// wire form's bucket indices assume this layout.
const SIGFIG: u8 = 2;

/// hdrhistogram auto-resizes only up to `i64::MAX / 2`; larger values (which
/// no real latency reaches, ~146 000 years in µs) are clamped so recording
/// never fails.
pub(crate) const MAX_TRACKABLE_US: u64 = (i64::MAX / 2) as u64;

/// A mergeable latency histogram in microseconds (≤ 1% relative error).
#[derive(Clone)]
pub struct LatencyHistogram {
    repr: Repr,
    /// Counts merged from the wire and not yet added to the dense form,
    /// by bucket index (see [`LatencyHistogram::settle`]). Only a dense
    /// histogram has them.
    pending: Option<Box<Pending>>,
}

/// Bucket counts waiting to be recorded into a dense histogram. Adding a
/// wire bucket here is an index and an add; recording it into hdrhistogram
/// costs several times that (measured: ~90 instructions a bucket), so a
/// master merging thousands of reports a second records each bucket once a
/// publication instead of once a report.
#[derive(Clone, Default)]
struct Pending {
    /// By bucket index; grown to the highest index merged.
    counts: Vec<u64>,
    /// Their sum.
    len: u64,
}

#[derive(Clone)]
enum Repr {
    /// Where values are recorded and merged into.
    Dense(Histogram<u64>),
    /// As decoded from the wire: validated bytes and their total count.
    /// Turned dense the first time something is recorded into it.
    Sparse { len: u64, bytes: SparseBytes },
}

/// A wire form this short is kept inline, in the room the dense variant
/// takes anyway: a report's connect and TLS histograms (pooled
/// connections; a few buckets) then cost a master no allocation to decode
/// and none to free on another thread.
const INLINE_SPARSE_BYTES: usize = 64;

type SparseBytes = SmallVec<[u8; INLINE_SPARSE_BYTES]>;

fn new_dense() -> Histogram<u64> {
    // `Histogram::new` only fails for sigfig > 5; SIGFIG is a constant 2.
    Histogram::new(SIGFIG).expect("sigfig 2 is always valid")
}

/// Adds `count` values of `us` to `h`, clamped so it cannot fail.
#[inline]
fn record_into(h: &mut Histogram<u64>, us: u64, count: u64) {
    // Cannot fail: auto-resize is on and the value is within its limit.
    // Saturating keeps this panic-free should that ever change.
    let us = us.min(MAX_TRACKABLE_US);
    if h.record_n(us, count).is_err() {
        h.saturating_record_n(us, count);
    }
}

/// Adds the buckets of a validated encoding to `h`: one record per bucket,
/// no allocation once `h` covers their range.
fn add_sparse(h: &mut Histogram<u64>, bytes: &[u8]) {
    for (index, count) in sparse::decode(bytes).map_while(Result::ok) {
        record_into(h, sparse::lowest_value_of(index), count);
    }
}

impl LatencyHistogram {
    /// An empty histogram that grows to fit whatever is recorded.
    pub fn new() -> Self {
        Self {
            repr: Repr::Dense(new_dense()),
            pending: None,
        }
    }

    /// The histogram `bytes` encode (the form it travels in), or why they
    /// do not: a peer's bytes are checked in full here, never trusted.
    pub fn decode_sparse(bytes: &[u8]) -> Result<Self, SparseError> {
        let len = sparse::validate(bytes)?;
        Ok(Self {
            repr: Repr::Sparse {
                len,
                bytes: SparseBytes::from_slice(bytes),
            },
            pending: None,
        })
    }

    /// The compact form this histogram travels in: only its non-empty
    /// buckets, as varint index gaps and counts.
    pub fn encode_sparse(&self) -> Vec<u8> {
        match &self.repr {
            Repr::Sparse { bytes, .. } => bytes.to_vec(),
            Repr::Dense(_) if self.has_pending() => self.settled().encode_sparse(),
            Repr::Dense(_) => {
                let mut out = Vec::new();
                sparse::encode(self.buckets(), &mut out);
                out
            }
        }
    }

    /// The dense histogram to record into, made from the sparse form first
    /// if need be.
    #[inline]
    fn dense_mut(&mut self) -> &mut Histogram<u64> {
        self.settle();
        self.dense_mut_keeping_pending()
    }

    /// The dense form, pending counts left pending.
    fn dense_mut_keeping_pending(&mut self) -> &mut Histogram<u64> {
        if let Repr::Sparse { bytes, .. } = &self.repr {
            let mut h = new_dense();
            add_sparse(&mut h, bytes);
            self.repr = Repr::Dense(h);
        }
        match &mut self.repr {
            Repr::Dense(h) => h,
            Repr::Sparse { .. } => unreachable!("made dense just above"),
        }
    }

    fn has_pending(&self) -> bool {
        self.pending.as_ref().is_some_and(|p| p.len > 0)
    }

    /// A copy with its pending counts recorded, for a reader holding only
    /// `&self` (correct, not fast: whoever merges should [`Self::settle`]
    /// before reading).
    fn settled(&self) -> LatencyHistogram {
        let mut h = self.clone();
        h.settle();
        h
    }

    /// Records the counts merged since the last call into the dense form,
    /// once per non-empty bucket however many merges brought them. Readers
    /// see the same figures either way; this only makes reading cheap, so
    /// call it before reading a histogram that many merges went into.
    pub fn settle(&mut self) {
        let Self { repr, pending } = self;
        let (Repr::Dense(h), Some(p)) = (repr, pending.as_deref_mut()) else {
            return;
        };
        if p.len == 0 {
            return;
        }
        for (index, count) in p.counts.iter_mut().enumerate() {
            if *count > 0 {
                // An index below MAX_INDEX, so it fits in u32.
                record_into(h, sparse::lowest_value_of(index as u32), *count);
                *count = 0;
            }
        }
        p.len = 0;
    }

    /// Adds validated wire buckets, `len` values in all, to the pending
    /// counts.
    fn pend_sparse(&mut self, bytes: &[u8], len: u64) {
        self.dense_mut_keeping_pending();
        let p = self.pending.get_or_insert_with(Box::default);
        let counts = &mut p.counts;
        sparse::for_each_validated(bytes, |index, count| {
            if index >= counts.len() {
                counts.resize(index + 1, 0);
            }
            if let Some(slot) = counts.get_mut(index) {
                *slot = slot.saturating_add(count);
            }
        });
        p.len = p.len.saturating_add(len);
    }

    /// Adds another histogram's pending counts to this one's.
    fn pend_counts(&mut self, theirs: &Pending) {
        self.dense_mut_keeping_pending();
        let p = self.pending.get_or_insert_with(Box::default);
        if p.counts.len() < theirs.counts.len() {
            p.counts.resize(theirs.counts.len(), 0);
        }
        for (mine, n) in p.counts.iter_mut().zip(&theirs.counts) {
            *mine = mine.saturating_add(*n);
        }
        p.len = p.len.saturating_add(theirs.len);
    }

    /// Runs a query on the dense form (built for the occasion when this
    /// histogram came off the wire and was never merged into).
    fn query<R>(&self, f: impl FnOnce(&Histogram<u64>) -> R) -> R {
        if self.has_pending() {
            return self.settled().query(f);
        }
        match &self.repr {
            Repr::Dense(h) => f(h),
            Repr::Sparse { bytes, .. } => {
                let mut h = new_dense();
                add_sparse(&mut h, bytes);
                f(&h)
            }
        }
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
        record_into(self.dense_mut(), us, n);
    }

    /// Adds every count of `other` to this histogram (exact, commutative).
    /// From a decoded (sparse) `other` this costs one record per bucket it
    /// holds and allocates nothing once `self` covers its range; into a
    /// decoded `self` it makes a new wire form of the union of buckets.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        if other.is_empty() {
            return;
        }
        if let Repr::Sparse { bytes, len } = &other.repr {
            match (&mut self.repr, &self.pending) {
                // Two wire forms stay one: a master's inbox holding a report
                // back keeps it the size of its buckets, not of dense ones.
                (
                    Repr::Sparse {
                        bytes: mine,
                        len: my_len,
                    },
                    None,
                ) => {
                    *mine = SparseBytes::from_vec(sparse::merge(mine, bytes));
                    *my_len = my_len.saturating_add(*len);
                }
                _ => self.pend_sparse(bytes, *len),
            }
            return;
        }
        if let Some(theirs) = other.pending.as_deref() {
            self.pend_counts(theirs);
        }
        let mine = self.dense_mut_keeping_pending();
        match &other.repr {
            Repr::Sparse { .. } => unreachable!("handled above"),
            Repr::Dense(theirs) => {
                if mine.add(theirs).is_err() {
                    // Only possible without auto-resize; bucket by bucket.
                    for v in theirs.iter_recorded() {
                        record_into(mine, v.value_iterated_to(), v.count_at_value());
                    }
                }
            }
        }
    }

    /// Number of recorded values.
    pub fn len(&self) -> u64 {
        let pending = self.pending.as_ref().map_or(0, |p| p.len);
        match &self.repr {
            Repr::Dense(h) => h.len().saturating_add(pending),
            Repr::Sparse { len, .. } => *len,
        }
    }

    /// Whether nothing has been recorded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lowest recorded value (bucket precision); 0 when empty.
    pub fn min_us(&self) -> u64 {
        if self.is_empty() {
            0
        } else {
            self.query(Histogram::min)
        }
    }

    /// Highest recorded value (bucket precision); 0 when empty.
    pub fn max_us(&self) -> u64 {
        if self.is_empty() {
            0
        } else {
            self.query(Histogram::max)
        }
    }

    /// Mean of the recorded values (bucket precision); 0.0 when empty.
    pub fn mean_us(&self) -> f64 {
        if self.is_empty() {
            0.0
        } else {
            self.query(Histogram::mean)
        }
    }

    /// The value at quantile `q` (clamped into `0.0..=1.0`; NaN reads as 0);
    /// 0 when empty.
    pub fn value_at_quantile_us(&self, q: f64) -> u64 {
        if self.is_empty() {
            return 0;
        }
        let q = if q.is_nan() { 0.0 } else { q.clamp(0.0, 1.0) };
        self.query(|h| h.value_at_quantile(q))
    }

    /// The non-empty buckets as `(highest value in bucket, count)`, ascending.
    pub fn buckets(&self) -> impl Iterator<Item = (u64, u64)> + '_ {
        // Rare (a reader that did not settle first): correct, not fast.
        let settled = self.has_pending().then(|| {
            let h = self.settled();
            h.buckets().collect::<Vec<_>>()
        });
        let (dense, sparse) = match &self.repr {
            _ if settled.is_some() => (None, None),
            Repr::Dense(h) => (Some(h.iter_recorded()), None),
            Repr::Sparse { bytes, .. } => (None, Some(sparse::decode(bytes))),
        };
        let dense = dense
            .into_iter()
            .flatten()
            .map(|v| (v.value_iterated_to(), v.count_at_value()));
        let sparse = sparse
            .into_iter()
            .flatten()
            .map_while(Result::ok)
            .map(|(index, count)| (sparse::highest_value_of(index), count));
        settled.into_iter().flatten().chain(dense.chain(sparse))
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
        match &self.repr {
            Repr::Sparse { bytes, .. } => serializer.serialize_bytes(bytes),
            Repr::Dense(_) => serializer.serialize_bytes(&self.encode_sparse()),
        }
    }
}

impl<'de> Deserialize<'de> for LatencyHistogram {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_bytes(SparseVisitor)
    }
}

struct SparseVisitor;

impl<'de> Visitor<'de> for SparseVisitor {
    type Value = LatencyHistogram;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a histogram's bytes (varint bucket index gaps and counts)")
    }

    fn visit_bytes<E: serde::de::Error>(self, bytes: &[u8]) -> Result<Self::Value, E> {
        LatencyHistogram::decode_sparse(bytes).map_err(E::custom)
    }

    /// Text formats (JSON) write bytes as a list of numbers.
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64 * 1024));
        while let Some(byte) = seq.next_element::<u8>()? {
            bytes.push(byte);
        }
        self.visit_bytes(&bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The inline wire form fits in the room the dense variant takes.
    #[test]
    fn a_short_wire_form_is_inline_and_costs_no_room() {
        assert!(std::mem::size_of::<SparseBytes>() + 8 <= std::mem::size_of::<Histogram<u64>>());
        let mut h = LatencyHistogram::new();
        for us in [0, 0, 150, 900] {
            h.record(us);
        }
        let decoded = LatencyHistogram::decode_sparse(&h.encode_sparse()).expect("decodes");
        let Repr::Sparse { bytes, .. } = &decoded.repr else {
            panic!("decoded histograms stay sparse");
        };
        assert!(!bytes.spilled(), "{} bytes", bytes.len());
        assert_eq!(decoded.len(), 4);
    }
}
