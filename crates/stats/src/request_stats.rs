//! `RequestStats`: every entry of a run plus the aggregated total, failure
//! groups and exceptions, in the one mergeable form both worker and master
//! use.
//!
//! A worker core records into one, `take`s the delta each report interval
//! and sends it; the master `merge`s deltas. Besides per-second counts, the
//! total keeps one histogram per second so the master can show "current"
//! percentiles over the recent window, not only since the start.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::CURRENT_WINDOW_SECS;
use crate::entries::Entries;
use crate::entry::{Sample, StatsEntry};
use crate::errors::{ErrorEntry, ErrorKey, ExceptionEntry, KeyTriple};
use crate::histogram::LatencyHistogram;
use crate::phases::{PhaseHistograms, PhaseSample};
use crate::serde_maps::{Keyed, pairs, values};

/// Per-second data older than this is dropped by [`RequestStats::prune`].
const KEEP_SECS: u64 = 20;

/// Method and name of the aggregated total, as Locust names it.
const TOTAL_METHOD: &str = "";
const TOTAL_NAME: &str = "Aggregated";

impl Keyed for ExceptionEntry {
    type Key = (String, String);
    fn map_key(&self) -> (String, String) {
        (self.message.clone(), self.traceback.clone())
    }
}

/// The statistics of a run (or of a delta of one). See the crate docs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestStats {
    start_ms: u64,
    /// Hashed rather than ordered: `record` looks an entry up for every
    /// request, and hashing two short strings beats a tree's string
    /// comparisons (measured with 50 entries: the tree search was ~45% of
    /// `record`; hashing took `record` from ~86 to ~71 ns).
    /// `entries()` sorts on the way out instead.
    entries: Entries,
    total: StatsEntry,
    /// The total's response times per unix second, for current percentiles.
    total_histograms_per_sec: BTreeMap<u64, LatencyHistogram>,
    /// Ordered because `errors()` hands out the map itself; a failure's
    /// lookup costs ~80 ns more than a success's, acceptable off the
    /// common path.
    #[serde(with = "pairs")]
    errors: BTreeMap<ErrorKey, ErrorEntry>,
    /// Keyed by (message, traceback).
    #[serde(with = "values")]
    exceptions: BTreeMap<(String, String), ExceptionEntry>,
    /// Arrivals of the open model that found no idle user and no room to
    /// add one, per user type: counted, never run.
    #[serde(default)]
    dropped_iterations: BTreeMap<String, u64>,
}

impl Default for RequestStats {
    fn default() -> Self {
        Self::new(0)
    }
}

impl RequestStats {
    /// Empty statistics of a run that started at `start_ms` (unix ms).
    pub fn new(start_ms: u64) -> Self {
        Self {
            start_ms,
            entries: Entries::default(),
            total: StatsEntry::new(TOTAL_METHOD, TOTAL_NAME),
            total_histograms_per_sec: BTreeMap::new(),
            errors: BTreeMap::new(),
            exceptions: BTreeMap::new(),
            dropped_iterations: BTreeMap::new(),
        }
    }

    /// When the run (or the last reset) started, unix ms.
    pub fn start_ms(&self) -> u64 {
        self.start_ms
    }

    /// Counts one request in its entry and in the total; with an error, also
    /// as a failure in its error group. Allocates only for a new entry or
    /// error group (and when a histogram first grows to a new range).
    pub fn record(&mut self, sample: &Sample<'_>, now_ms: u64) {
        self.record_with_phases(sample, None, now_ms);
    }

    /// [`record`](Self::record), plus the request's connect/TLS/TTFB
    /// phases in its entry, with one entry lookup. The total's phases are
    /// summed from the entries' once a report ([`take_report`](Self::take_report)),
    /// not per request: recording them twice cost the hot path about 430
    /// instructions a request (callgrind).
    pub fn record_with_phases(
        &mut self,
        sample: &Sample<'_>,
        phases: Option<&PhaseSample>,
        now_ms: u64,
    ) {
        let entry = self.entries.get_or_new(sample.method, sample.name);
        entry.record(sample, now_ms);
        if let Some(phases) = phases {
            entry.record_phases(phases);
        }
        // A counter is a business event, not a request: it has its own row
        // but must not inflate the Aggregated count or pull its latencies
        // towards zero.
        if sample.method != crate::COUNTER_METHOD {
            self.total.record(sample, now_ms);
            self.record_total_histogram(sample.response_time_us, now_ms / 1000);
        }
        if let Some(error) = sample.error {
            self.record_error(sample.method, sample.name, error, now_ms);
        }
    }

    #[inline]
    fn record_total_histogram(&mut self, us: u64, sec: u64) {
        // Time moves forward, so the newest second is nearly always the one.
        match self.total_histograms_per_sec.last_entry() {
            Some(mut last) if *last.key() == sec => last.get_mut().record(us),
            _ => self
                .total_histograms_per_sec
                .entry(sec)
                .or_default()
                .record(us),
        }
    }

    fn record_error(&mut self, method: &str, name: &str, error: &str, now_ms: u64) {
        let key = (method, name, error);
        if let Some(group) = self.errors.get_mut(&key as &dyn KeyTriple) {
            group.occur(now_ms);
        } else {
            self.errors
                .insert(ErrorKey::new(method, name, error), ErrorEntry::new(now_ms));
        }
    }

    /// Counts one exception raised by user code on `node`. `now_ms` is
    /// part of the contract for symmetry with `record`; exception groups
    /// carry no times (Locust's do not either).
    pub fn record_exception(&mut self, message: &str, traceback: &str, node: &str, _now_ms: u64) {
        let key = (message.to_owned(), traceback.to_owned());
        let entry = self
            .exceptions
            .entry(key)
            .or_insert_with(|| ExceptionEntry {
                message: message.to_owned(),
                traceback: traceback.to_owned(),
                count: 0,
                nodes: Default::default(),
            });
        entry.count += 1;
        if !entry.nodes.contains(node) {
            entry.nodes.insert(node.to_owned());
        }
    }

    /// Counts `n` arrivals of `user_type` dropped (see the field).
    pub fn record_dropped(&mut self, user_type: &str, n: u64) {
        if n == 0 {
            return;
        }
        match self.dropped_iterations.get_mut(user_type) {
            Some(count) => *count += n,
            None => {
                self.dropped_iterations.insert(user_type.to_owned(), n);
            }
        }
    }

    /// Dropped arrivals per user type.
    pub fn dropped_iterations(&self) -> &BTreeMap<String, u64> {
        &self.dropped_iterations
    }

    /// Dropped arrivals of every user type.
    pub fn dropped_iterations_total(&self) -> u64 {
        self.dropped_iterations.values().sum()
    }

    /// Everything recorded since the last take, leaving `self` empty with
    /// the same start. This is what a worker reports.
    pub fn take(&mut self) -> RequestStats {
        std::mem::replace(self, RequestStats::new(self.start_ms))
    }

    /// The delta a worker reports: [`take`](Self::take), with the total's
    /// phases summed from its entries' (counters have none).
    pub fn take_report(&mut self) -> RequestStats {
        let mut delta = self.take();
        let mut total: Option<Box<PhaseHistograms>> = None;
        for e in delta.entries.values() {
            if let Some(p) = &e.phases {
                total.get_or_insert_with(Default::default).merge(p);
            }
        }
        if let Some(mut t) = total {
            t.settle();
            delta.total.phases = Some(t);
        }
        delta
    }

    /// Adds `other` into `self`, exactly; any order of merges gives the same
    /// result. `self`'s start is kept.
    /// Records what merges left pending into the dense histograms: the
    /// figures read the same before and after, but reading many of them
    /// (a snapshot, a report) is cheap only after. A master merging many
    /// reports calls this once per publication, not once per merge.
    pub fn settle(&mut self) {
        for entry in self.entries.values_mut() {
            entry.settle();
        }
        self.total.settle();
        for h in self.total_histograms_per_sec.values_mut() {
            h.settle();
        }
    }

    pub fn merge(&mut self, other: &RequestStats) {
        for entry in other.entries.values() {
            self.entries.merge(entry);
        }
        self.total.merge(&other.total);
        for (&sec, h) in &other.total_histograms_per_sec {
            self.total_histograms_per_sec
                .entry(sec)
                .or_default()
                .merge(h);
        }
        for (key, group) in &other.errors {
            // The key is copied only for a group new to this master: a
            // report's failures are mostly of groups seen before.
            match self.errors.get_mut(key) {
                Some(mine) => mine.merge(group),
                None => {
                    let mut mine = ErrorEntry::default();
                    mine.merge(group);
                    self.errors.insert(key.clone(), mine);
                }
            }
        }
        for (key, exc) in &other.exceptions {
            match self.exceptions.get_mut(key) {
                Some(mine) => mine.merge(exc),
                None => {
                    self.exceptions.insert(key.clone(), exc.clone());
                }
            }
        }
        for (user_type, &n) in &other.dropped_iterations {
            self.record_dropped(user_type, n);
        }
    }

    /// Forgets everything and starts again at `now_ms`.
    pub fn reset(&mut self, now_ms: u64) {
        *self = RequestStats::new(now_ms);
    }

    /// Drops per-second data older than 20 s, bounding memory on long runs.
    pub fn prune(&mut self, now_ms: u64) {
        let oldest = (now_ms / 1000).saturating_sub(KEEP_SECS);
        for entry in self.entries.values_mut() {
            entry.prune_before(oldest);
        }
        self.total.prune_before(oldest);
        self.total_histograms_per_sec = self.total_histograms_per_sec.split_off(&oldest);
    }

    /// Whether nothing (no request, no exception) has been recorded.
    pub fn is_empty(&self) -> bool {
        self.total.num_requests == 0
            && self.entries.is_empty()
            && self.exceptions.is_empty()
            && self.dropped_iterations.is_empty()
    }

    /// The entries, sorted by key (name, then method), without the total.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = &StatsEntry> + '_ {
        self.entries.sorted().into_iter()
    }

    /// The entry of one (method, name), if any request was recorded for it.
    pub fn entry(&self, method: &str, name: &str) -> Option<&StatsEntry> {
        self.entries.get(method, name)
    }

    /// The aggregated total (method "", name "Aggregated").
    pub fn total(&self) -> &StatsEntry {
        &self.total
    }

    /// Failure groups, sorted by (method, name, error).
    pub fn errors(&self) -> &BTreeMap<ErrorKey, ErrorEntry> {
        &self.errors
    }

    /// Exception groups, sorted by (message, traceback).
    pub fn exceptions(&self) -> impl ExactSizeIterator<Item = &ExceptionEntry> + '_ {
        self.exceptions.values()
    }

    pub fn num_requests(&self) -> u64 {
        self.total.num_requests
    }

    pub fn num_failures(&self) -> u64 {
        self.total.num_failures
    }

    /// Failures / requests over all entries; 0 without requests.
    pub fn fail_ratio(&self) -> f64 {
        self.total.fail_ratio()
    }

    /// Response time at quantile `q` over the total's last
    /// [`CURRENT_WINDOW_SECS`] seconds (the current one included), in ms;
    /// `None` when no request falls in that window.
    pub fn current_response_time_percentile_ms(&self, q: f64, now_ms: u64) -> Option<f64> {
        let now_s = now_ms / 1000;
        let start = (now_s + 1).saturating_sub(CURRENT_WINDOW_SECS);
        let mut window = self.total_histograms_per_sec.range(start..=now_s);
        let (_, first) = window.next()?;
        let mut merged = first.clone();
        for (_, h) in window {
            merged.merge(h);
        }
        if merged.is_empty() {
            return None;
        }
        Some(merged.value_at_quantile_us(q) as f64 / 1000.0)
    }
}
