//! The open model's arithmetic: an arrival-rate profile (constant, or
//! stages with linear ramps), its integral (how many arrivals are due by a
//! time), the inverse (when the n-th arrival is due), and the per-core
//! [`Schedule`] that follows a share of the profile.
//!
//! Pure and clock-free (times are seconds since the profile began) so it is
//! tested with made-up instants; the worker core feeds it the real clock.
//! Counts come from the closed-form integral, never from summing steps, so
//! fractional rates accumulate without drift.

use serde::{Deserialize, Serialize};

/// One stage of a ramping arrival rate: over `duration_s` the rate moves
/// linearly from the previous stage's end rate (the profile's `start_rate`
/// for the first) to `rate_per_s`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateStage {
    pub duration_s: f64,
    pub rate_per_s: f64,
}

/// `arrivals = { ... }` as declared, rates already converted to per second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArrivalSpec {
    /// A constant rate for the whole run, or `None` for `stages`.
    pub rate_per_s: Option<f64>,
    /// Where the first stage starts from (k6's `startRate`), per second.
    pub start_rate_per_s: f64,
    pub stages: Vec<RateStage>,
    /// Users created before the first arrival.
    pub pre_allocated: u32,
    /// The pool never grows past this; an arrival finding no idle user
    /// and no room is dropped.
    pub max_users: u32,
}

/// Why an `arrivals` table was refused (the loader adds `file:line`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ArrivalError {
    #[error("arrivals: {what} must be a finite number > 0, got {value}")]
    NotPositive { what: String, value: f64 },
    #[error("arrivals: {what} must be a finite number >= 0, got {value}")]
    Negative { what: String, value: f64 },
    #[error("arrivals: per {0:?} is not a duration such as \"1s\", \"500ms\", \"1m\" or \"1h\"")]
    BadDuration(String),
    #[error("arrivals: pre_allocated ({pre}) is more than max_users ({max})")]
    PoolReversed { pre: u32, max: u32 },
    #[error("arrivals: give either rate or stages, not both")]
    RateAndStages,
    #[error("arrivals: give a rate (rate = 10, per = \"1s\") or stages")]
    NoRate,
    #[error("arrivals: every stage has a rate of 0: nothing would arrive")]
    AllZero,
    #[error("arrivals: a rate of {0} per second is more than the {MAX_RATE_PER_S} a run can make")]
    TooFast(f64),
}

/// The highest arrival rate a declaration may ask for, per second: far past
/// what a cluster can serve, low enough that the schedule's counts stay
/// exact in an `f64` over any run.
pub const MAX_RATE_PER_S: f64 = 10_000_000.0;

/// `"1s"`, `"500ms"`, `"2m"`, `"1h"`, or a plain number of seconds.
pub fn parse_duration_s(text: &str) -> Result<f64, ArrivalError> {
    let t = text.trim();
    let bad = || ArrivalError::BadDuration(text.to_string());
    let (num, unit) = match t.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => t.split_at(i),
        None => (t, "s"),
    };
    let n: f64 = num.trim().parse().map_err(|_| bad())?;
    let scale = match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad()),
    };
    let s = n * scale;
    if s.is_finite() && s > 0.0 {
        Ok(s)
    } else {
        Err(bad())
    }
}

/// A rate that must be > 0 (a constant rate, a stage duration).
pub fn positive(what: &str, value: f64) -> Result<f64, ArrivalError> {
    if value.is_finite() && value > 0.0 {
        Ok(value)
    } else {
        Err(ArrivalError::NotPositive {
            what: what.to_string(),
            value,
        })
    }
}

/// A rate that may be 0 (a stage ramping down).
pub fn non_negative(what: &str, value: f64) -> Result<f64, ArrivalError> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(ArrivalError::Negative {
            what: what.to_string(),
            value,
        })
    }
}

impl ArrivalSpec {
    /// Checks what spans several keys.
    pub fn check(&self) -> Result<(), ArrivalError> {
        let rates = self
            .rate_per_s
            .into_iter()
            .chain([self.start_rate_per_s])
            .chain(self.stages.iter().map(|s| s.rate_per_s));
        for r in rates {
            if r.is_nan() || r > MAX_RATE_PER_S {
                return Err(ArrivalError::TooFast(r));
            }
        }
        if self.pre_allocated > self.max_users {
            return Err(ArrivalError::PoolReversed {
                pre: self.pre_allocated,
                max: self.max_users,
            });
        }
        match (self.rate_per_s, self.stages.is_empty()) {
            (Some(_), false) => Err(ArrivalError::RateAndStages),
            (None, true) => Err(ArrivalError::NoRate),
            (None, false) if self.stages.iter().all(|s| s.rate_per_s == 0.0) => {
                Err(ArrivalError::AllZero)
            }
            _ => Ok(()),
        }
    }

    /// The rate at `t_s` seconds into the profile, per second.
    pub fn rate_at(&self, t_s: f64) -> f64 {
        if let Some(r) = self.rate_per_s {
            return r;
        }
        let mut from = self.start_rate_per_s;
        let mut t = t_s.max(0.0);
        for s in &self.stages {
            if t < s.duration_s {
                return from + (s.rate_per_s - from) * t / s.duration_s;
            }
            t -= s.duration_s;
            from = s.rate_per_s;
        }
        0.0
    }

    /// Arrivals due over the first `t_s` seconds (the rate's integral).
    pub fn count_by(&self, t_s: f64) -> f64 {
        let t_s = t_s.max(0.0);
        if let Some(r) = self.rate_per_s {
            return r * t_s;
        }
        let mut from = self.start_rate_per_s;
        let mut t = t_s;
        let mut total = 0.0;
        for s in &self.stages {
            let d = t.min(s.duration_s);
            let slope = (s.rate_per_s - from) / s.duration_s;
            total += from * d + slope * d * d / 2.0;
            if t <= s.duration_s {
                return total;
            }
            t -= s.duration_s;
            from = s.rate_per_s;
        }
        total
    }

    /// When the integral reaches `count`; `None` if it never does (the
    /// stages end first).
    pub fn time_of(&self, count: f64) -> Option<f64> {
        if count <= 0.0 {
            return Some(0.0);
        }
        if let Some(r) = self.rate_per_s {
            return Some(count / r);
        }
        let mut from = self.start_rate_per_s;
        let mut start = 0.0;
        let mut left = count;
        for s in &self.stages {
            let slope = (s.rate_per_s - from) / s.duration_s;
            let area = from * s.duration_s + slope * s.duration_s * s.duration_s / 2.0;
            if left <= area {
                // Solve from*x + slope*x²/2 = left for the smallest x >= 0.
                let x = if slope.abs() < 1e-12 {
                    left / from
                } else {
                    let disc = (from * from + 2.0 * slope * left).max(0.0);
                    (disc.sqrt() - from) / slope
                };
                return Some(start + x.clamp(0.0, s.duration_s));
            }
            left -= area;
            start += s.duration_s;
            from = s.rate_per_s;
        }
        None
    }

    /// Seconds until the profile ends (`None`: a constant rate never ends).
    pub fn duration_s(&self) -> Option<f64> {
        self.rate_per_s
            .is_none()
            .then(|| self.stages.iter().map(|s| s.duration_s).sum())
    }
}

/// One core's (or worker's) part of a profile: `share` (0..=1) of its
/// arrivals. A new share takes effect from the moment it is set, carrying
/// the count reached so far, so a rebalance makes neither a burst nor a gap.
#[derive(Debug, Clone)]
pub struct Schedule {
    spec: ArrivalSpec,
    share: f64,
    /// Arrivals credited up to `origin_s` under earlier shares.
    offset: f64,
    origin_s: f64,
    /// Arrivals already handed out (due ones, 1-based count).
    issued: u64,
}

impl Schedule {
    /// Follows `share` of `spec` from `now_s` on: a schedule joining a
    /// profile already under way owes nothing for the time before it.
    pub fn new(spec: ArrivalSpec, share: f64, now_s: f64) -> Self {
        Schedule {
            spec,
            share: share.clamp(0.0, 1.0),
            offset: 0.0,
            origin_s: now_s,
            issued: 0,
        }
    }

    /// This schedule's arrivals due by `t_s` (fractional).
    pub fn count_by(&self, t_s: f64) -> f64 {
        let t_s = t_s.max(self.origin_s);
        self.offset + self.share * (self.spec.count_by(t_s) - self.spec.count_by(self.origin_s))
    }

    /// When this schedule's `n`-th arrival (1-based) is due.
    pub fn due_of(&self, n: u64) -> Option<f64> {
        let need = n as f64 - self.offset;
        if need <= 0.0 {
            return Some(self.origin_s);
        }
        if self.share <= 0.0 {
            return None;
        }
        let base = self.spec.count_by(self.origin_s);
        self.spec.time_of(base + need / self.share)
    }

    /// Changes the share from `now_s` on.
    pub fn set_share(&mut self, share: f64, now_s: f64) {
        let now_s = now_s.max(self.origin_s);
        self.offset = self.count_by(now_s);
        self.origin_s = now_s;
        self.share = share.clamp(0.0, 1.0);
    }

    pub fn share(&self) -> f64 {
        self.share
    }

    /// When the next arrival is due (`None`: no more arrivals).
    pub fn next_due(&self) -> Option<f64> {
        self.due_of(self.issued + 1)
    }

    /// Hands out every arrival due by `now_s`, each with its due time.
    pub fn take_due(&mut self, now_s: f64, mut each: impl FnMut(f64)) {
        // A tiny epsilon so an arrival due exactly now counts, despite
        // rounding in the integral.
        let due = (self.count_by(now_s) + 1e-9).floor() as u64;
        while self.issued < due {
            self.issued += 1;
            each(self.due_of(self.issued).unwrap_or(now_s).min(now_s));
        }
    }

    /// True once the profile has ended and everything due was handed out.
    pub fn finished(&self) -> bool {
        self.next_due().is_none()
    }
}

#[cfg(test)]
#[path = "arrivals_tests.rs"]
mod tests;
