//! Evaluating a [`Threshold`] against a run's [`RequestStats`]: resolve
//! its scope to the entries it names, read the figure, compare.
//!
//! A scope text is resolved leniently, because names are free text: first
//! as `METHOD NAME` (so `GET /item` or `COUNT orders`), then as a name
//! alone (every method's entry of that name, merged). For
//! `dropped_iterations` a named scope is a user type. A scope that matches
//! nothing, or a time or ratio of a scope without requests, observes
//! nothing (`None`) and so does not hold: a gate must not pass on no data.

use stats::{RequestStats, StatsEntry};

use crate::check::{Check, CheckKind, Verdict};
use crate::expr::{Figure, Scope, Threshold};

impl Threshold {
    /// Judges this threshold on `stats` as of `now_ms` (unix ms; the rate
    /// is requests over the time from the stats' start to it).
    pub fn evaluate(&self, stats: &RequestStats, now_ms: u64) -> Check {
        let observed = observe(self, stats, now_ms);
        Check {
            kind: CheckKind::Threshold,
            expr: self.expr.clone(),
            scope: self.scope.name().to_string(),
            observed,
            op: self.op.symbol().to_string(),
            limit: self.limit,
            unit: self.figure.unit().to_string(),
            ok: observed.is_some_and(|v| self.op.holds(v, self.limit)),
        }
    }
}

impl Verdict {
    /// A verdict of these thresholds (regression checks may be pushed after).
    pub fn of_thresholds(thresholds: &[Threshold], stats: &RequestStats, now_ms: u64) -> Verdict {
        Verdict {
            checks: thresholds
                .iter()
                .map(|t| t.evaluate(stats, now_ms))
                .collect(),
        }
    }
}

fn observe(t: &Threshold, stats: &RequestStats, now_ms: u64) -> Option<f64> {
    if t.figure == Figure::DroppedIterations {
        return Some(match &t.scope {
            Scope::Aggregated => stats.dropped_iterations_total(),
            Scope::Named(user_type) => stats
                .dropped_iterations()
                .get(user_type)
                .copied()
                .unwrap_or(0),
        } as f64);
    }
    let merged;
    let entry = match &t.scope {
        Scope::Aggregated => stats.total(),
        Scope::Named(text) => {
            merged = resolve(stats, text)?;
            &merged
        }
    };
    figure(t.figure, entry, stats.start_ms(), now_ms)
}

/// The entry a scope text names, or the merge of every entry of that name.
fn resolve(stats: &RequestStats, text: &str) -> Option<StatsEntry> {
    if let Some((method, name)) = text.split_once(' ')
        && let Some(e) = stats.entry(method, name.trim_start())
    {
        return Some(e.clone());
    }
    let mut found = stats.entries().filter(|e| e.name == text).peekable();
    let first = found.next()?.clone();
    Some(found.fold(first, |mut acc, e| {
        acc.merge(e);
        acc
    }))
}

fn figure(f: Figure, e: &StatsEntry, start_ms: u64, now_ms: u64) -> Option<f64> {
    let has_requests = e.num_requests > 0;
    match f {
        Figure::Requests => Some(e.num_requests as f64),
        Figure::Failures => Some(e.num_failures as f64),
        Figure::Rps => Some(e.total_rps(start_ms, now_ms)),
        Figure::FailRatio => has_requests.then(|| e.fail_ratio() * 100.0),
        Figure::Avg => has_requests.then(|| e.avg_response_time_ms()),
        Figure::Min => has_requests.then(|| e.min_response_time_ms()),
        Figure::Max => has_requests.then(|| e.max_response_time_ms()),
        Figure::Percentile(p) => has_requests.then(|| e.percentile_ms(p / 100.0)),
        Figure::DroppedIterations => None,
    }
}
