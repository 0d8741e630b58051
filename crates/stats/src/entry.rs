//! One statistics entry per (method, name): counts, response-time totals, the
//! latency histograms and per-second counts for "current" rates.
//!
//! Also holds the key type and the hash and order of a (method, name) that
//! the entries table (`entries.rs`) finds entries by.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};

use compact_str::CompactString;
use serde::{Deserialize, Serialize};

use crate::CURRENT_WINDOW_SECS;
use crate::histogram::LatencyHistogram;
use crate::phases::{PhaseHistograms, PhaseSample};

/// Seconds at the end of the window left out of "current" figures because
/// their counts may still be arriving (Locust: 2 s).
const CURRENT_LAG_SECS: u64 = 2;

/// One request as the runtime saw it, borrowed so recording allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample<'a> {
    pub method: &'a str,
    pub name: &'a str,
    /// Time from sending the request to its response.
    pub response_time_us: u64,
    /// Time from when the request was due (paced users) to its response.
    pub due_latency_us: Option<u64>,
    pub content_length: u64,
    /// Set when the request failed; the failure is grouped by this text.
    pub error: Option<&'a str>,
}

/// Identifies a [`StatsEntry`]. Ordered like Locust sorts its entries: by
/// name, then method.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryKey {
    pub method: String,
    pub name: String,
}

impl EntryKey {
    pub fn new(method: &str, name: &str) -> Self {
        Self {
            method: method.to_owned(),
            name: name.to_owned(),
        }
    }
}

/// Locust's order: name first, then method.
pub(crate) fn cmp_pairs(a: (&str, &str), b: (&str, &str)) -> Ordering {
    a.1.cmp(b.1).then_with(|| a.0.cmp(b.0))
}

/// The one hash of an entry's (method, name): `EntryKey`'s, and the
/// entries table's (`entries.rs`).
pub(crate) fn hash_pair<H: Hasher>((method, name): (&str, &str), state: &mut H) {
    // The separator keeps ("ab", "c") and ("a", "bc") apart.
    state.write(method.as_bytes());
    state.write_u8(0xff);
    state.write(name.as_bytes());
}

impl Hash for EntryKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_pair((&self.method, &self.name), state);
    }
}

impl PartialOrd for EntryKey {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for EntryKey {
    fn cmp(&self, other: &Self) -> Ordering {
        cmp_pairs((&self.method, &self.name), (&other.method, &other.name))
    }
}

/// Statistics of one (method, name), or of the aggregated total.
///
/// Empty entries have every count, time and timestamp at 0; merging treats
/// an entry without requests as having no min/first/last.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatsEntry {
    /// Inline up to 24 bytes, as [`crate::ErrorKey`]'s strings are: a
    /// master decodes fifty entries a report, thousands of reports a
    /// second.
    pub method: CompactString,
    pub name: CompactString,
    pub num_requests: u64,
    pub num_failures: u64,
    pub total_response_time_us: u64,
    pub min_response_time_us: u64,
    pub max_response_time_us: u64,
    pub total_content_length: u64,
    pub histogram: LatencyHistogram,
    /// Latency measured from when the request was due (coordinated
    /// omission); only present once a paced request was recorded.
    pub due_histogram: Option<LatencyHistogram>,
    /// Requests per unix second, for current RPS.
    pub num_reqs_per_sec: BTreeMap<u64, u64>,
    /// Failures per unix second, for current failures/s.
    pub num_fail_per_sec: BTreeMap<u64, u64>,
    /// Unix ms of the first request; 0 while there is none.
    pub first_request_ms: u64,
    /// Unix ms of the last request; 0 while there is none.
    pub last_request_ms: u64,
    /// Connect/TLS/TTFB histograms, only once a request reported its
    /// phases (HTTP); absent from the wire otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phases: Option<Box<PhaseHistograms>>,
}

/// Adds `n` to the count of second `sec`. Requests arrive in time order, so
/// the last second is almost always the one to bump: check it first.
#[inline]
pub(crate) fn bump_second(map: &mut BTreeMap<u64, u64>, sec: u64, n: u64) {
    match map.last_entry() {
        Some(mut last) if *last.key() == sec => *last.get_mut() += n,
        _ => *map.entry(sec).or_insert(0) += n,
    }
}

impl StatsEntry {
    /// An empty entry.
    pub fn new(method: &str, name: &str) -> Self {
        Self {
            method: method.into(),
            name: name.into(),
            num_requests: 0,
            num_failures: 0,
            total_response_time_us: 0,
            min_response_time_us: 0,
            max_response_time_us: 0,
            total_content_length: 0,
            histogram: LatencyHistogram::new(),
            due_histogram: None,
            num_reqs_per_sec: BTreeMap::new(),
            num_fail_per_sec: BTreeMap::new(),
            first_request_ms: 0,
            last_request_ms: 0,
            phases: None,
        }
    }

    /// This entry's key.
    pub fn key(&self) -> EntryKey {
        EntryKey::new(&self.method, &self.name)
    }

    /// Counts one request (and a failure when `sample.error` is set).
    #[inline]
    pub fn record(&mut self, sample: &Sample<'_>, now_ms: u64) {
        let rt = sample.response_time_us;
        if self.num_requests == 0 {
            self.min_response_time_us = rt;
            self.max_response_time_us = rt;
            self.first_request_ms = now_ms;
            self.last_request_ms = now_ms;
        } else {
            self.min_response_time_us = self.min_response_time_us.min(rt);
            self.max_response_time_us = self.max_response_time_us.max(rt);
            self.first_request_ms = self.first_request_ms.min(now_ms);
            self.last_request_ms = self.last_request_ms.max(now_ms);
        }
        self.num_requests += 1;
        self.total_response_time_us = self.total_response_time_us.saturating_add(rt);
        self.total_content_length = self
            .total_content_length
            .saturating_add(sample.content_length);
        self.histogram.record(rt);
        if let Some(due) = sample.due_latency_us {
            self.due_histogram
                .get_or_insert_with(LatencyHistogram::new)
                .record(due);
        }
        let sec = now_ms / 1000;
        bump_second(&mut self.num_reqs_per_sec, sec, 1);
        if sample.error.is_some() {
            self.num_failures += 1;
            bump_second(&mut self.num_fail_per_sec, sec, 1);
        }
    }

    /// Counts the phases of one request (recorded with [`record`](Self::record)).
    #[inline]
    pub fn record_phases(&mut self, phases: &PhaseSample) {
        self.phases
            .get_or_insert_with(Default::default)
            .record(phases);
    }

    /// Adds `other` into this entry, exactly; the order of merges does not
    /// matter. Method and name are left as they are.
    pub fn merge(&mut self, other: &StatsEntry) {
        if other.num_requests > 0 {
            if self.num_requests == 0 {
                self.min_response_time_us = other.min_response_time_us;
                self.max_response_time_us = other.max_response_time_us;
                self.first_request_ms = other.first_request_ms;
                self.last_request_ms = other.last_request_ms;
            } else {
                self.min_response_time_us =
                    self.min_response_time_us.min(other.min_response_time_us);
                self.max_response_time_us =
                    self.max_response_time_us.max(other.max_response_time_us);
                self.first_request_ms = self.first_request_ms.min(other.first_request_ms);
                self.last_request_ms = self.last_request_ms.max(other.last_request_ms);
            }
        }
        // Saturating: a delta comes off the wire and may be nonsense.
        self.num_requests = self.num_requests.saturating_add(other.num_requests);
        self.num_failures = self.num_failures.saturating_add(other.num_failures);
        self.total_response_time_us = self
            .total_response_time_us
            .saturating_add(other.total_response_time_us);
        self.total_content_length = self
            .total_content_length
            .saturating_add(other.total_content_length);
        self.histogram.merge(&other.histogram);
        if let Some(due) = &other.due_histogram {
            self.due_histogram
                .get_or_insert_with(LatencyHistogram::new)
                .merge(due);
        }
        merge_seconds(&mut self.num_reqs_per_sec, &other.num_reqs_per_sec);
        merge_seconds(&mut self.num_fail_per_sec, &other.num_fail_per_sec);
        if let Some(phases) = &other.phases {
            self.phases
                .get_or_insert_with(Default::default)
                .merge(phases);
        }
    }

    /// Records what merges left pending into the histograms (see
    /// [`LatencyHistogram::settle`]).
    pub fn settle(&mut self) {
        self.histogram.settle();
        if let Some(due) = &mut self.due_histogram {
            due.settle();
        }
        if let Some(phases) = &mut self.phases {
            phases.settle();
        }
    }

    /// Drops per-second counts of seconds before `oldest_sec`.
    pub(crate) fn prune_before(&mut self, oldest_sec: u64) {
        self.num_reqs_per_sec = self.num_reqs_per_sec.split_off(&oldest_sec);
        self.num_fail_per_sec = self.num_fail_per_sec.split_off(&oldest_sec);
    }

    pub fn avg_response_time_ms(&self) -> f64 {
        if self.num_requests == 0 {
            return 0.0;
        }
        self.total_response_time_us as f64 / self.num_requests as f64 / 1000.0
    }

    /// Exact minimum (not bucketed); 0 without requests.
    pub fn min_response_time_ms(&self) -> f64 {
        self.min_response_time_us as f64 / 1000.0
    }

    /// Exact maximum (not bucketed); 0 without requests.
    pub fn max_response_time_ms(&self) -> f64 {
        self.max_response_time_us as f64 / 1000.0
    }

    pub fn median_response_time_ms(&self) -> f64 {
        self.percentile_ms(0.5)
    }

    /// Response time at quantile `q` (0.0..=1.0, clamped); 0 without requests.
    /// Within 1% of the true value, and never outside the exact min and max
    /// (so the 100th percentile is the true maximum).
    pub fn percentile_ms(&self, q: f64) -> f64 {
        if self.num_requests == 0 {
            return 0.0;
        }
        let us = self.histogram.value_at_quantile_us(q);
        // A bucket reports its highest value, up to 1% above what was
        // recorded; the exact extremes bound it. Not `clamp`, which panics
        // should a decoded entry carry min > max.
        let us = us
            .max(self.min_response_time_us)
            .min(self.max_response_time_us);
        us as f64 / 1000.0
    }

    /// Latency from when requests were due at quantile `q`; `None` when no
    /// paced request was recorded.
    pub fn due_percentile_ms(&self, q: f64) -> Option<f64> {
        let h = self.due_histogram.as_ref().filter(|h| !h.is_empty())?;
        Some(h.value_at_quantile_us(q) as f64 / 1000.0)
    }

    pub fn avg_content_length(&self) -> f64 {
        if self.num_requests == 0 {
            return 0.0;
        }
        self.total_content_length as f64 / self.num_requests as f64
    }

    /// Locust's current RPS: mean requests per second over the
    /// [`CURRENT_WINDOW_SECS`] before the last 2 s, or over what exists of
    /// that window since this entry's first request.
    pub fn current_rps(&self, now_ms: u64) -> f64 {
        self.current_per_sec(&self.num_reqs_per_sec, now_ms)
    }

    /// Like [`current_rps`](Self::current_rps), for failures.
    pub fn current_fail_per_sec(&self, now_ms: u64) -> f64 {
        self.current_per_sec(&self.num_fail_per_sec, now_ms)
    }

    fn current_per_sec(&self, per_sec: &BTreeMap<u64, u64>, now_ms: u64) -> f64 {
        if self.num_requests == 0 {
            return 0.0;
        }
        let now_s = now_ms / 1000;
        let end = now_s.saturating_sub(CURRENT_LAG_SECS);
        let start = now_s
            .saturating_sub(CURRENT_LAG_SECS + CURRENT_WINDOW_SECS)
            .max(self.first_request_ms / 1000);
        if end <= start {
            return 0.0;
        }
        let sum: u64 = per_sec.range(start..end).map(|(_, &n)| n).sum();
        sum as f64 / (end - start) as f64
    }

    /// Requests per second from `start_ms` to this entry's last request
    /// (at least 1 s), as Locust: a summary printed after the stop, or a
    /// run that idled at its end, must not dilute the rate it served.
    pub fn total_rps(&self, start_ms: u64, now_ms: u64) -> f64 {
        self.num_requests as f64 / self.active_secs(start_ms, now_ms)
    }

    /// Failures per second over the same time as [`total_rps`](Self::total_rps).
    pub fn total_fail_per_sec(&self, start_ms: u64, now_ms: u64) -> f64 {
        self.num_failures as f64 / self.active_secs(start_ms, now_ms)
    }

    fn active_secs(&self, start_ms: u64, now_ms: u64) -> f64 {
        let end_ms = if self.num_requests > 0 {
            self.last_request_ms.min(now_ms)
        } else {
            now_ms
        };
        (end_ms.saturating_sub(start_ms) as f64 / 1000.0).max(1.0)
    }

    /// Failures / requests; 0 without requests.
    pub fn fail_ratio(&self) -> f64 {
        if self.num_requests == 0 {
            return 0.0;
        }
        self.num_failures as f64 / self.num_requests as f64
    }
}

fn merge_seconds(mine: &mut BTreeMap<u64, u64>, other: &BTreeMap<u64, u64>) {
    for (&sec, &n) in other {
        let count = mine.entry(sec).or_insert(0);
        *count = count.saturating_add(n);
    }
}
