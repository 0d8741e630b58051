//! Wait times between task iterations, and the schedule of paced users.
//!
//! Kept free of Lua and of the clock so the arithmetic can be tested with an
//! injected random source and made-up instants; `user.rs` feeds it the real
//! clock.

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

/// How long a user waits after each task, as declared by `wait = ...`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum WaitTime {
    /// `swarmer.constant(s)`: always `s` seconds.
    Constant(f64),
    /// `swarmer.between(a, b)`: uniform in `[a, b]` seconds.
    Between(f64, f64),
    /// `swarmer.constant_pacing(s)`: one iteration every `s` seconds.
    ConstantPacing(f64),
    /// `swarmer.constant_throughput(n)`: `n` iterations per second.
    ConstantThroughput(f64),
}

impl Default for WaitTime {
    fn default() -> Self {
        WaitTime::Constant(0.0)
    }
}

/// Why a wait time was refused (the message names the Lua function).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum WaitError {
    #[error("{func}: seconds must be a finite number >= 0, got {value}")]
    Negative { func: &'static str, value: f64 },
    #[error("swarmer.between(min, max): min ({min}) is greater than max ({max})")]
    Reversed { min: f64, max: f64 },
    #[error("swarmer.constant_throughput(tasks_per_second): must be > 0, got {0}")]
    Throughput(f64),
}

fn non_negative(func: &'static str, value: f64) -> Result<f64, WaitError> {
    if value.is_finite() && value >= 0.0 {
        Ok(value)
    } else {
        Err(WaitError::Negative { func, value })
    }
}

impl WaitTime {
    pub fn constant(s: f64) -> Result<Self, WaitError> {
        Ok(WaitTime::Constant(non_negative("swarmer.constant", s)?))
    }

    pub fn between(min: f64, max: f64) -> Result<Self, WaitError> {
        let min = non_negative("swarmer.between", min)?;
        let max = non_negative("swarmer.between", max)?;
        if min > max {
            return Err(WaitError::Reversed { min, max });
        }
        Ok(WaitTime::Between(min, max))
    }

    pub fn constant_pacing(s: f64) -> Result<Self, WaitError> {
        Ok(WaitTime::ConstantPacing(non_negative(
            "swarmer.constant_pacing",
            s,
        )?))
    }

    pub fn constant_throughput(per_second: f64) -> Result<Self, WaitError> {
        if per_second.is_finite() && per_second > 0.0 {
            Ok(WaitTime::ConstantThroughput(per_second))
        } else {
            Err(WaitError::Throughput(per_second))
        }
    }

    /// The fixed period between iteration starts of a paced user, if any.
    pub fn pacing_interval(&self) -> Option<Duration> {
        match *self {
            WaitTime::ConstantPacing(s) => Some(Duration::from_secs_f64(s)),
            WaitTime::ConstantThroughput(n) => Some(Duration::from_secs_f64(1.0 / n)),
            _ => None,
        }
    }

    /// The pause after an iteration for unpaced wait times (paced ones use
    /// a [`Pacer`]; for them this is zero).
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        match *self {
            WaitTime::Constant(s) => Duration::from_secs_f64(s),
            WaitTime::Between(a, b) if b > a => Duration::from_secs_f64(rng.random_range(a..=b)),
            WaitTime::Between(a, _) => Duration::from_secs_f64(a),
            WaitTime::ConstantPacing(_) | WaitTime::ConstantThroughput(_) => Duration::ZERO,
        }
    }
}

/// The fixed schedule of a paced user: iteration `k` is due at
/// `first + k * interval`, whatever happened before. Never re-basing the
/// schedule when the target is slow is what lets late iterations carry their
/// lateness into `due_latency_us` (coordinated omission).
#[derive(Debug, Clone)]
pub struct Pacer {
    interval: Duration,
    next_due: Option<Instant>,
}

impl Pacer {
    pub fn new(interval: Duration) -> Self {
        Self {
            interval,
            next_due: None,
        }
    }

    /// An iteration starts at `now`: returns how late it is against its due
    /// time and moves the schedule on by one interval.
    pub fn start_iteration(&mut self, now: Instant) -> Duration {
        let due = self.next_due.unwrap_or(now);
        self.next_due = Some(due + self.interval);
        now.saturating_duration_since(due)
    }

    /// How long to wait, from `now`, until the next iteration is due (zero
    /// when it is already late).
    pub fn wait(&self, now: Instant) -> Duration {
        self.next_due
            .map_or(Duration::ZERO, |due| due.saturating_duration_since(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::SmallRng;

    #[test]
    fn constant_is_constant() {
        let mut rng = SmallRng::seed_from_u64(1);
        let w = WaitTime::constant(1.5).unwrap();
        for _ in 0..10 {
            assert_eq!(w.sample(&mut rng), Duration::from_millis(1500));
        }
    }

    #[test]
    fn between_is_uniform_within_bounds() {
        let mut rng = SmallRng::seed_from_u64(7);
        let w = WaitTime::between(1.0, 3.0).unwrap();
        let n = 20_000;
        let mut sum = 0.0;
        let mut buckets = [0u32; 4];
        for _ in 0..n {
            let s = w.sample(&mut rng).as_secs_f64();
            assert!((1.0..=3.0).contains(&s), "{s}");
            sum += s;
            buckets[((s - 1.0) / 0.5).min(3.0) as usize] += 1;
        }
        let mean = sum / n as f64;
        assert!((mean - 2.0).abs() < 0.03, "mean {mean}");
        for b in buckets {
            // Each quarter of the range should hold about a quarter of draws.
            assert!((4_500..5_500).contains(&b), "{buckets:?}");
        }
    }

    #[test]
    fn between_equal_bounds_is_that_value() {
        let mut rng = SmallRng::seed_from_u64(3);
        let w = WaitTime::between(2.0, 2.0).unwrap();
        assert_eq!(w.sample(&mut rng), Duration::from_secs(2));
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert!(WaitTime::constant(-1.0).is_err());
        assert!(WaitTime::constant(f64::NAN).is_err());
        assert_eq!(
            WaitTime::between(3.0, 1.0),
            Err(WaitError::Reversed { min: 3.0, max: 1.0 })
        );
        assert!(WaitTime::constant_throughput(0.0).is_err());
        assert!(WaitTime::constant_pacing(f64::INFINITY).is_err());
    }

    #[test]
    fn throughput_and_pacing_intervals() {
        let t = WaitTime::constant_throughput(4.0).unwrap();
        assert_eq!(t.pacing_interval(), Some(Duration::from_millis(250)));
        let p = WaitTime::constant_pacing(2.0).unwrap();
        assert_eq!(p.pacing_interval(), Some(Duration::from_secs(2)));
        assert_eq!(WaitTime::Constant(1.0).pacing_interval(), None);
    }

    #[test]
    fn pacer_waits_out_the_rest_of_the_interval() {
        let t0 = Instant::now();
        let mut p = Pacer::new(Duration::from_secs(1));
        assert_eq!(p.start_iteration(t0), Duration::ZERO);
        // The task took 300 ms: wait the other 700 ms.
        let end = t0 + Duration::from_millis(300);
        assert_eq!(p.wait(end), Duration::from_millis(700));
        let second = t0 + Duration::from_secs(1);
        assert_eq!(p.start_iteration(second), Duration::ZERO);
    }

    #[test]
    fn pacer_keeps_its_schedule_when_late() {
        let t0 = Instant::now();
        let mut p = Pacer::new(Duration::from_secs(1));
        p.start_iteration(t0);
        // The first iteration took 2.5 s: the second is 1.5 s late, starts
        // at once, and the third is still due at t0 + 2 s (0.5 s late).
        let end = t0 + Duration::from_millis(2500);
        assert_eq!(p.wait(end), Duration::ZERO);
        assert_eq!(p.start_iteration(end), Duration::from_millis(1500));
        let end2 = t0 + Duration::from_millis(2600);
        assert_eq!(p.wait(end2), Duration::ZERO);
        assert_eq!(p.start_iteration(end2), Duration::from_millis(600));
        // Caught up: the fourth is due at t0 + 3 s.
        let end3 = t0 + Duration::from_millis(2700);
        assert_eq!(p.wait(end3), Duration::from_millis(300));
    }

    #[test]
    fn throughput_pacer_makes_the_rate() {
        let t0 = Instant::now();
        let w = WaitTime::constant_throughput(10.0).unwrap();
        let mut p = Pacer::new(w.pacing_interval().unwrap());
        let mut now = t0;
        let mut starts = 0;
        // Tasks of 30 ms for 10 simulated seconds: 100 iterations.
        while now < t0 + Duration::from_secs(10) {
            p.start_iteration(now);
            starts += 1;
            now += Duration::from_millis(30);
            now += p.wait(now);
        }
        assert_eq!(starts, 100);
    }
}
