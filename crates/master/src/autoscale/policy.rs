//! The autoscaler's decisions, as pure logic over samples of the workers'
//! CPU taken on the master's clock: no I/O and no timers, so every rule
//! (hysteresis, the MAX cap, the MIN floor, no flapping) is tested with
//! made-up times.
//!
//! CPU is measured per worker as a share of the cores it runs users on
//! (a worker's process reports percent of one core), so workers of
//! different sizes compare.

use serde::Serialize;

/// A worker at or above this share of its cores is saturated, whatever the
/// average: the same mark as the master's "add workers" warning.
pub const SATURATED_PCT: f32 = 90.0;

/// What `--autoscale` and its companion flags ask for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Policy {
    pub min: u32,
    pub max: u32,
    /// Average CPU (percent of the workers' cores) above which workers are
    /// added once it has lasted `window_ms`.
    pub high_pct: f32,
    /// Average CPU below which, for `low_window_ms`, workers are removed
    /// during a run.
    pub low_pct: f32,
    /// The average a change aims for.
    pub target_pct: f32,
    pub window_ms: u64,
    pub low_window_ms: u64,
}

impl Policy {
    /// The defaults around a MIN:MAX range: 80% for 15 s up, 30% for 60 s
    /// down, aiming at 60%.
    pub fn new(min: u32, max: u32) -> Policy {
        Policy {
            min,
            max,
            high_pct: 80.0,
            low_pct: 30.0,
            target_pct: 60.0,
            window_ms: 15_000,
            low_window_ms: 60_000,
        }
    }
}

/// One look at the cluster.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// The master's clock.
    pub now_ms: u64,
    /// A run is spawning or running.
    pub active: bool,
    /// Live workers.
    pub connected: u32,
    /// Workers the scaler was asked for (its desired count).
    pub desired: u32,
    /// Mean over the live workers of each one's CPU share (percent).
    pub avg_cpu_pct: f32,
    /// The hottest live worker's CPU share (percent).
    pub max_cpu_pct: f32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Up,
    Down,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

/// A change the scaler is to make, with the reason people read.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    pub from: u32,
    pub to: u32,
    pub direction: Direction,
    /// e.g. "average worker CPU 91% for 15 s".
    pub reason: String,
}

impl Decision {
    /// "scaled 3 → 5: average worker CPU 91% for 15 s".
    pub fn message(&self) -> String {
        format!("scaled {} → {}: {}", self.from, self.to, self.reason)
    }
}

/// The memory between samples: how long the load has been high or low,
/// and whether the last change has settled.
#[derive(Debug, Default)]
pub struct Decider {
    high_since: Option<u64>,
    low_since: Option<u64>,
    was_active: bool,
    /// The count last asked for and when: until that many workers are
    /// connected (or four windows have passed) their CPU is not judged,
    /// since newcomers start idle and leavers stop early.
    settling: Option<(u32, u64)>,
    started: bool,
}

impl Decider {
    pub fn new() -> Decider {
        Decider::default()
    }

    /// The decision this sample calls for, if any.
    pub fn observe(&mut self, policy: &Policy, s: &Sample) -> Option<Decision> {
        let ended = self.was_active && !s.active;
        self.was_active = s.active;
        if !std::mem::replace(&mut self.started, true) && s.desired < policy.min {
            return self.change(policy, s, policy.min, "below the autoscale minimum".into());
        }
        if ended {
            self.forget_load();
            if s.desired > policy.min {
                return self.change(policy, s, policy.min, "the run ended".into());
            }
            return None;
        }
        if !s.active || s.connected == 0 || self.still_settling(policy, s) {
            self.forget_load();
            return None;
        }
        self.track_load(policy, s);
        self.up(policy, s).or_else(|| self.down(policy, s))
    }

    /// Autoscaling was paused (a manual scale): the spells it measured no
    /// longer describe the workers it will see.
    pub fn reset(&mut self) {
        self.forget_load();
        self.settling = None;
    }

    fn forget_load(&mut self) {
        self.high_since = None;
        self.low_since = None;
    }

    fn still_settling(&mut self, policy: &Policy, s: &Sample) -> bool {
        let Some((count, at_ms)) = self.settling else {
            return false;
        };
        let timed_out = s.now_ms.saturating_sub(at_ms) >= policy.window_ms * 4;
        if s.connected == count || timed_out {
            self.settling = None;
            return false;
        }
        true
    }

    fn hot(policy: &Policy, s: &Sample) -> bool {
        s.avg_cpu_pct >= policy.high_pct || s.max_cpu_pct >= SATURATED_PCT.max(policy.high_pct)
    }

    /// Starts or ends the high and low spells: one sample outside a
    /// spell ends it, which is the hysteresis.
    fn track_load(&mut self, policy: &Policy, s: &Sample) {
        if Self::hot(policy, s) {
            self.high_since.get_or_insert(s.now_ms);
        } else {
            self.high_since = None;
        }
        if s.avg_cpu_pct < policy.low_pct && s.max_cpu_pct < policy.high_pct {
            self.low_since.get_or_insert(s.now_ms);
        } else {
            self.low_since = None;
        }
    }

    fn up(&mut self, policy: &Policy, s: &Sample) -> Option<Decision> {
        let since = self.high_since?;
        let lasted_ms = s.now_ms.saturating_sub(since);
        if lasted_ms < policy.window_ms || s.desired >= policy.max {
            return None;
        }
        let needed = workers_for(s.connected, s.avg_cpu_pct, policy.target_pct);
        let to = needed.max(s.desired + 1).min(policy.max);
        let reason = if s.avg_cpu_pct >= policy.high_pct {
            format!(
                "average worker CPU {:.0}% for {}",
                s.avg_cpu_pct,
                seconds(lasted_ms)
            )
        } else {
            format!(
                "hottest worker CPU {:.0}% (average {:.0}%) for {}",
                s.max_cpu_pct,
                s.avg_cpu_pct,
                seconds(lasted_ms)
            )
        };
        self.change(policy, s, to, reason)
    }

    fn down(&mut self, policy: &Policy, s: &Sample) -> Option<Decision> {
        let since = self.low_since?;
        let lasted_ms = s.now_ms.saturating_sub(since);
        if lasted_ms < policy.low_window_ms || s.desired <= policy.min {
            return None;
        }
        let to = workers_for(s.connected, s.avg_cpu_pct, policy.target_pct).max(policy.min);
        if to >= s.desired {
            return None;
        }
        let reason = format!(
            "average worker CPU {:.0}% for {}",
            s.avg_cpu_pct,
            seconds(lasted_ms)
        );
        self.change(policy, s, to, reason)
    }

    fn change(&mut self, policy: &Policy, s: &Sample, to: u32, reason: String) -> Option<Decision> {
        let to = to.clamp(policy.min, policy.max);
        if to == s.desired {
            return None;
        }
        self.forget_load();
        self.settling = Some((to, s.now_ms));
        let direction = if to > s.desired {
            Direction::Up
        } else {
            Direction::Down
        };
        Some(Decision {
            from: s.desired,
            to,
            direction,
            reason,
        })
    }
}

/// Workers that would carry `connected` workers' load at `target_pct` each.
fn workers_for(connected: u32, avg_pct: f32, target_pct: f32) -> u32 {
    let load = connected as f64 * f64::from(avg_pct.max(0.0));
    (load / f64::from(target_pct.max(1.0))).ceil().max(1.0) as u32
}

/// "15 s": whole seconds, as people read a spell's length.
fn seconds(ms: u64) -> String {
    format!("{} s", (ms + 500) / 1000)
}

#[cfg(test)]
mod tests;
