//! Phase histograms of one entry: TCP connect, TLS handshake and time to
//! first byte, as `r.timings` splits an HTTP request (a connection reused
//! from the pool records 0 connect and 0 TLS).
//!
//! Only entries that saw a phase carry them (`StatsEntry::phases` is
//! `None` otherwise: WebSocket, TCP and `swarmer.record` entries), and they
//! travel as three sparse histograms in one msgpack array, no field names,
//! so a report grows by a few bytes per HTTP entry.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::histogram::LatencyHistogram;

/// The phases of one request, in microseconds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhaseSample {
    pub connect_us: u64,
    pub tls_us: u64,
    pub ttfb_us: u64,
}

/// The three phase histograms of an entry. Each holds one value per
/// request that reported phases, so their counts agree.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PhaseHistograms {
    pub connect: LatencyHistogram,
    pub tls: LatencyHistogram,
    pub ttfb: LatencyHistogram,
}

/// One phase's percentiles in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct PhasePercentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

/// Significant bits a phase value keeps (≤ ~1.6% off, plus the
/// histogram's own 1%), against the response times' ~8: a phase breakdown
/// needs no finer grain, and an interval's TTFB values then fall into about
/// a quarter as many buckets, which is what the report carries.
const PHASE_BITS: u32 = 6;

/// `us` rounded to the middle of its [`PHASE_BITS`]-bit bucket.
#[inline]
fn coarse(us: u64) -> u64 {
    let bits = u64::BITS - us.leading_zeros();
    if bits <= PHASE_BITS {
        return us;
    }
    let shift = bits - PHASE_BITS;
    ((us >> shift) << shift) | (1 << (shift - 1))
}

impl PhaseHistograms {
    #[inline]
    pub fn record(&mut self, sample: &PhaseSample) {
        self.connect.record(coarse(sample.connect_us));
        self.tls.record(coarse(sample.tls_us));
        self.ttfb.record(coarse(sample.ttfb_us));
    }

    /// Adds `other` in, exactly (order of merges does not matter).
    pub fn merge(&mut self, other: &PhaseHistograms) {
        self.connect.merge(&other.connect);
        self.tls.merge(&other.tls);
        self.ttfb.merge(&other.ttfb);
    }

    /// Requests that reported phases.
    /// Settles the three histograms' merged counts (see
    /// [`LatencyHistogram::settle`]).
    pub fn settle(&mut self) {
        self.connect.settle();
        self.tls.settle();
        self.ttfb.settle();
    }

    pub fn len(&self) -> u64 {
        self.ttfb.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// p50/p95/p99 of connect, TLS and TTFB, in that order.
    pub fn percentiles_ms(&self) -> [(&'static str, PhasePercentiles); 3] {
        [
            ("connect", percentiles(&self.connect)),
            ("tls", percentiles(&self.tls)),
            ("ttfb", percentiles(&self.ttfb)),
        ]
    }
}

fn percentiles(h: &LatencyHistogram) -> PhasePercentiles {
    let ms = |q: f64| h.value_at_quantile_us(q) as f64 / 1000.0;
    PhasePercentiles {
        p50: ms(0.5),
        p95: ms(0.95),
        p99: ms(0.99),
    }
}

// An array, not a map: field names would cost more than the buckets of a
// typical interval's connect and TLS histograms (one bucket of zeros).
impl Serialize for PhaseHistograms {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        (&self.connect, &self.tls, &self.ttfb).serialize(s)
    }
}

impl<'de> Deserialize<'de> for PhaseHistograms {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let (connect, tls, ttfb) = Deserialize::deserialize(d)?;
        Ok(PhaseHistograms { connect, tls, ttfb })
    }
}

#[cfg(test)]
mod tests {
    use super::coarse;

    #[test]
    fn coarse_values_stay_within_two_percent() {
        for us in (0..200_000u64).step_by(7).chain([u64::MAX / 4, 1 << 40]) {
            let c = coarse(us);
            let off = c.abs_diff(us) as f64;
            assert!(off <= 1.0 || off / us as f64 <= 0.016, "{us} -> {c}");
        }
        assert_eq!(coarse(0), 0);
        assert_eq!(coarse(63), 63);
    }
}
