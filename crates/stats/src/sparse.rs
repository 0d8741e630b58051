//! The compact wire form of a latency histogram: its non-empty buckets as
//! (bucket index, count), each index written as the gap from the bucket
//! after the previous one, all as LEB128 varints in one byte string.
//!
//! A report's histograms are deltas of one interval, so they hold a few
//! dozen buckets out of thousands: a gap and a count take 2–3 bytes where a
//! msgpack `(value, count)` pair took 7–12. The bucket index is
//! hdrhistogram's own counts index for our fixed layout (2 significant
//! figures, lowest value 1), which does not depend on how far a histogram
//! has grown, so the master can add a bucket straight into its own
//! histogram. Decoding checks everything (a peer's bytes may be anything)
//! and fails with a [`SparseError`], never a panic.

use crate::histogram::MAX_TRACKABLE_US;

/// hdrhistogram's layout at 2 significant figures from 1 µs: 256 sub-buckets
/// (the power of two above 2·10²), half of them new in each bucket.
const HALF_COUNT_MAGNITUDE: u32 = 7;
const HALF_COUNT: u32 = 1 << HALF_COUNT_MAGNITUDE;
const SUB_BUCKET_MASK: u64 = (2 * HALF_COUNT as u64) - 1;
/// 64 − unit magnitude (0) − half-count magnitude (7) − 1.
const LEADING_ZERO_COUNT_BASE: u32 = 56;

/// The highest bucket index a value we record can have.
pub(crate) const MAX_INDEX: u32 = index_of(MAX_TRACKABLE_US);

/// A LEB128 u64 takes at most 10 bytes.
const MAX_VARINT_BYTES: usize = 10;

/// Why a byte string is not a histogram.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SparseError {
    #[error("histogram encoding ends inside a number at byte {offset}")]
    TruncatedVarint { offset: usize },
    #[error("histogram encoding has a number too large for 64 bits at byte {offset}")]
    VarintOverflow { offset: usize },
    #[error("histogram bucket index {index} is beyond the last bucket ({MAX_INDEX})")]
    IndexOutOfRange { index: u64 },
    #[error("histogram bucket {index} has a count of 0")]
    ZeroCount { index: u32 },
    #[error("histogram counts add up to more than 2^64")]
    CountOverflow,
}

/// The bucket index hdrhistogram gives `value` in our layout.
pub(crate) const fn index_of(value: u64) -> u32 {
    let bucket = LEADING_ZERO_COUNT_BASE - (value | SUB_BUCKET_MASK).leading_zeros();
    // < 256 by construction of `bucket`.
    let sub_bucket = (value >> bucket) as u32;
    ((bucket + 1) << HALF_COUNT_MAGNITUDE) + sub_bucket - HALF_COUNT
}

/// The lowest value of bucket `index` and the bucket's width (values it
/// holds), the inverse of [`index_of`].
fn bucket_of(index: u32) -> (u64, u64) {
    let bucket = (index >> HALF_COUNT_MAGNITUDE).saturating_sub(1);
    let sub_bucket = if index < HALF_COUNT {
        index
    } else {
        (index & (HALF_COUNT - 1)) + HALF_COUNT
    };
    (u64::from(sub_bucket) << bucket, 1 << bucket)
}

/// The lowest value that lands in bucket `index`.
pub(crate) fn lowest_value_of(index: u32) -> u64 {
    bucket_of(index).0
}

/// The highest value that lands in bucket `index` (what hdrhistogram's
/// iterators report for it).
pub(crate) fn highest_value_of(index: u32) -> u64 {
    let (low, width) = bucket_of(index);
    low + (width - 1)
}

fn push_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Appends the encoding of `buckets` (`(any value in the bucket, count)`,
/// ascending, counts > 0) to `out`.
pub(crate) fn encode(buckets: impl Iterator<Item = (u64, u64)>, out: &mut Vec<u8>) {
    let indexed = buckets.map(|(value, count)| (index_of(value.min(MAX_TRACKABLE_US)), count));
    encode_indexed(indexed, out);
}

/// Appends the encoding of `(index, count)` buckets (ascending indexes,
/// counts > 0) to `out`.
fn encode_indexed(buckets: impl Iterator<Item = (u32, u64)>, out: &mut Vec<u8>) {
    let mut next_index = 0u32;
    for (index, count) in buckets {
        push_varint(out, u64::from(index - next_index));
        push_varint(out, count);
        next_index = index + 1;
    }
}

/// The encoding of two validated encodings' buckets added together, as
/// long as their union of buckets: how a master's inbox, holding one
/// report back, merges later ones into it without a dense histogram each.
pub(crate) fn merge(a: &[u8], b: &[u8]) -> Vec<u8> {
    let mut xs = decode(a).map_while(Result::ok).peekable();
    let mut ys = decode(b).map_while(Result::ok).peekable();
    let union = std::iter::from_fn(|| match (xs.peek().copied(), ys.peek().copied()) {
        (Some(x), Some(y)) if x.0 == y.0 => {
            xs.next();
            ys.next();
            Some((x.0, x.1.saturating_add(y.1)))
        }
        (Some(x), Some(y)) if x.0 < y.0 => xs.next(),
        (_, Some(_)) => ys.next(),
        (Some(_), None) => xs.next(),
        (None, None) => None,
    });
    let mut out = Vec::with_capacity(a.len() + b.len());
    encode_indexed(union, &mut out);
    out
}

/// The buckets of an encoding as `(index, count)`, ascending; stops after
/// the first error.
pub(crate) struct Decoder<'a> {
    bytes: &'a [u8],
    pos: usize,
    next_index: u64,
    failed: bool,
}

/// Reads the buckets of `bytes`.
pub(crate) fn decode(bytes: &[u8]) -> Decoder<'_> {
    Decoder {
        bytes,
        pos: 0,
        next_index: 0,
        failed: false,
    }
}

impl Decoder<'_> {
    #[inline]
    fn varint(&mut self) -> Result<u64, SparseError> {
        // Most gaps and counts fit in one byte.
        if let Some(&byte) = self.bytes.get(self.pos)
            && byte < 0x80
        {
            self.pos += 1;
            return Ok(u64::from(byte));
        }
        let start = self.pos;
        let mut n = 0u64;
        for shift in 0..MAX_VARINT_BYTES {
            let Some(&byte) = self.bytes.get(self.pos) else {
                return Err(SparseError::TruncatedVarint { offset: start });
            };
            self.pos += 1;
            let bits = u64::from(byte & 0x7f);
            // The 10th byte may only hold the top bit of a u64.
            if shift == MAX_VARINT_BYTES - 1 && bits > 1 {
                return Err(SparseError::VarintOverflow { offset: start });
            }
            n |= bits << (7 * shift);
            if byte & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err(SparseError::VarintOverflow { offset: start })
    }

    fn bucket(&mut self) -> Result<(u32, u64), SparseError> {
        let gap = self.varint()?;
        let index = self
            .next_index
            .checked_add(gap)
            .filter(|&i| i <= u64::from(MAX_INDEX))
            .ok_or(SparseError::IndexOutOfRange {
                index: self.next_index.saturating_add(gap),
            })?;
        // Fits: at most MAX_INDEX.
        let index = index as u32;
        let count = self.varint()?;
        if count == 0 {
            return Err(SparseError::ZeroCount { index });
        }
        self.next_index = u64::from(index) + 1;
        Ok((index, count))
    }
}

impl Iterator for Decoder<'_> {
    type Item = Result<(u32, u64), SparseError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.bytes.len() {
            return None;
        }
        let bucket = self.bucket();
        self.failed = bucket.is_err();
        Some(bucket)
    }
}

/// Calls `f(index, count)` for each bucket of `bytes`, an encoding that
/// [`validate`] accepted: the hot loop of a master's merges, so without
/// the error bookkeeping of [`Decoder`]. Anything malformed still ends it
/// quietly (never a panic), just without saying why.
pub(crate) fn for_each_validated(bytes: &[u8], mut f: impl FnMut(usize, u64)) {
    let mut pos = 0;
    let mut next_index = 0usize;
    while pos < bytes.len() {
        let (Some(gap), Some(count)) = (varint_at(bytes, &mut pos), varint_at(bytes, &mut pos))
        else {
            return;
        };
        let index = usize::try_from(gap)
            .ok()
            .and_then(|gap| next_index.checked_add(gap))
            .filter(|&i| i <= MAX_INDEX as usize);
        let Some(index) = index else {
            return;
        };
        f(index, count);
        next_index = index + 1;
    }
}

/// The LEB128 number at `pos`, moving past it; None when it is cut short
/// or too long. Most gaps and counts take one byte: that path comes first.
#[inline(always)]
fn varint_at(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let first = *bytes.get(*pos)?;
    *pos += 1;
    if first < 0x80 {
        return Some(u64::from(first));
    }
    let mut n = u64::from(first & 0x7f);
    let mut shift = 7u32;
    loop {
        let byte = *bytes.get(*pos)?;
        *pos += 1;
        n |= u64::from(byte & 0x7f).checked_shl(shift)?;
        if byte & 0x80 == 0 {
            return Some(n);
        }
        shift += 7;
    }
}

/// The number of values `bytes` holds, or why it is not an encoding.
///
/// Every report's histograms pass through here on the master, so the
/// common shape (gaps and counts of one or two bytes: a millisecond
/// latency's first gap is over 127) is checked in a tight loop first; at
/// the first bucket that is anything else, the [`Decoder`] takes over from
/// that point, with its exact errors.
pub(crate) fn validate(bytes: &[u8]) -> Result<u64, SparseError> {
    let (mut pos, mut next_index, mut total) = (0, 0u64, 0u64);
    loop {
        let mut at = pos;
        let (Some(gap), Some(count)) = (short_varint(bytes, &mut at), short_varint(bytes, &mut at))
        else {
            break;
        };
        let index = next_index + gap;
        if count == 0 || index > u64::from(MAX_INDEX) {
            break;
        }
        // Cannot overflow: under 2^14 per two bytes of a slice.
        total += count;
        next_index = index + 1;
        pos = at;
    }
    let mut rest = Decoder {
        bytes,
        pos,
        next_index,
        failed: false,
    };
    rest.try_fold(total, |total, bucket| {
        let (_, count) = bucket?;
        total.checked_add(count).ok_or(SparseError::CountOverflow)
    })
}

/// The varint at `pos` if it takes one or two bytes, moving past it.
#[inline(always)]
fn short_varint(bytes: &[u8], pos: &mut usize) -> Option<u64> {
    let first = *bytes.get(*pos)?;
    if first < 0x80 {
        *pos += 1;
        return Some(u64::from(first));
    }
    let second = *bytes.get(*pos + 1)?;
    if second >= 0x80 {
        return None;
    }
    *pos += 2;
    Some(u64::from(first & 0x7f) | u64::from(second) << 7)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::Histogram;
    use proptest::prelude::*;

    proptest! {
        /// The fast loop of `validate` is an optimisation only: on any
        /// bytes it answers as the decoder alone does, error included.
        #[test]
        fn validate_answers_as_the_decoder_does(
            bytes in prop::collection::vec(
                prop_oneof![6 => 0u8..0x80, 2 => 0x80u8..=0x81, 1 => any::<u8>()], 0..64),
        ) {
            let reference = decode(&bytes).try_fold(0u64, |total, bucket| {
                let (_, count) = bucket?;
                total.checked_add(count).ok_or(SparseError::CountOverflow)
            });
            prop_assert_eq!(validate(&bytes), reference);
        }
    }

    #[test]
    fn index_math_matches_hdrhistogram() {
        let mut h = Histogram::<u64>::new(2).unwrap();
        let mut values = vec![0, 1, 127, 128, 255, 256, 257, 511, 512, 1000, 12_345];
        values.extend((0..62).map(|s| 1u64 << s));
        values.extend((1..62).map(|s| (1u64 << s) - 1));
        values.extend((1..62).map(|s| (1u64 << s) + 1));
        values.push(MAX_TRACKABLE_US);
        for value in values {
            h.record(value).unwrap();
            let index = index_of(value);
            assert!(index <= MAX_INDEX, "{value}");
            assert_eq!(
                lowest_value_of(index),
                h.lowest_equivalent(value),
                "{value}"
            );
            assert_eq!(
                highest_value_of(index),
                h.highest_equivalent(value),
                "{value}"
            );
            assert_eq!(index_of(lowest_value_of(index)), index, "{value}");
            assert_eq!(index_of(highest_value_of(index)), index, "{value}");
        }
    }

    #[test]
    fn varints_round_trip_at_their_edges() {
        for n in [0, 1, 127, 128, 16_383, 16_384, u64::MAX / 2, u64::MAX] {
            let mut out = Vec::new();
            push_varint(&mut out, n);
            let mut d = decode(&out);
            assert_eq!(d.varint(), Ok(n));
            assert_eq!(d.pos, out.len());
        }
    }

    #[test]
    fn an_eleventh_varint_byte_or_bits_past_64_overflow() {
        let mut eleven = vec![0x80; 10];
        eleven.push(0);
        assert_eq!(
            decode(&eleven).varint(),
            Err(SparseError::VarintOverflow { offset: 0 })
        );
        let mut past = vec![0xff; 9];
        past.push(0x02);
        assert_eq!(
            decode(&past).varint(),
            Err(SparseError::VarintOverflow { offset: 0 })
        );
    }
}
