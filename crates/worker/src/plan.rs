//! Pure arithmetic of the engine: how a worker's users are spread over its
//! cores, how many users a ramp may have started by a given time, and which
//! user a core starts or stops next. Free of threads, Lua and the clock so
//! ramps and downscales are unit-tested here.

use std::collections::BTreeMap;

/// Splits per-type user counts across `cores` so that every core ends up
/// with almost the same number of users in total (at most one apart) and
/// every type is spread as evenly as it can be.
pub fn split_across_cores(
    users: &BTreeMap<String, u32>,
    cores: usize,
) -> Vec<BTreeMap<String, u32>> {
    let cores = cores.max(1);
    let mut out = vec![BTreeMap::new(); cores];
    let mut totals = vec![0u32; cores];
    for (name, &count) in users {
        let base = count / cores as u32;
        let mut extra = count % cores as u32;
        for (core, map) in out.iter_mut().enumerate() {
            map.insert(name.clone(), base);
            totals[core] += base;
        }
        // Remainders go to the least loaded cores, so types with one user
        // each do not all pile onto core 0.
        while extra > 0 {
            let core = (0..cores).min_by_key(|&c| (totals[c], c)).unwrap_or(0);
            *out[core].get_mut(name).expect("inserted above") += 1;
            totals[core] += 1;
            extra -= 1;
        }
    }
    out
}

/// How many user changes a ramp at `rate_per_sec` may have made after
/// `elapsed_secs`. A rate of zero or less means "all at once", like Locust.
pub fn ramp_allowance(rate_per_sec: f64, elapsed_secs: f64, pending: u32) -> u32 {
    // NaN fails the comparison too, and means "all at once" like zero.
    if rate_per_sec.is_nan() || rate_per_sec <= 0.0 || !rate_per_sec.is_finite() {
        return pending;
    }
    // One user goes at once so a ramp never starts with an idle gap.
    let allowed = 1.0 + (rate_per_sec * elapsed_secs).floor();
    (allowed.min(pending as f64)) as u32
}

/// Users per type, wanted or running.
pub type Counts = BTreeMap<String, u32>;

/// The next change a core makes on its way from `have` to `target`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Start(String),
    Stop(String),
}

/// How many users must still start or stop to reach `target`; a type
/// missing from `target` is wanted at zero.
pub fn pending_changes(target: &Counts, have: &Counts) -> u32 {
    let names: std::collections::BTreeSet<&String> = target.keys().chain(have.keys()).collect();
    names
        .into_iter()
        .map(|name| want_minus_have(target, have, name).unsigned_abs() as u32)
        .sum()
}

fn want_minus_have(target: &Counts, have: &Counts, name: &str) -> i64 {
    let want = target.get(name).copied().unwrap_or(0) as i64;
    want - have.get(name).copied().unwrap_or(0) as i64
}

/// The type furthest from its target changes first (ties: the last name),
/// so a ramp or a downscale keeps the mix of types close to the target's
/// all the way. `None` when `have` is the target.
pub fn next_change(target: &Counts, have: &Counts) -> Option<Change> {
    let names: std::collections::BTreeSet<&String> = target.keys().chain(have.keys()).collect();
    let (name, diff) = names
        .into_iter()
        .map(|name| (name, want_minus_have(target, have, name)))
        .filter(|(_, diff)| *diff != 0)
        .max_by_key(|(_, diff)| diff.abs())?;
    Some(if diff > 0 {
        Change::Start(name.clone())
    } else {
        Change::Stop(name.clone())
    })
}

/// A ramp in progress on one core: how many changes it has made since it
/// began, against what its rate allows so far.
#[derive(Debug, Clone)]
pub struct RampPace {
    pub rate_per_sec: f64,
    pub done: u32,
}

impl RampPace {
    pub fn new(rate_per_sec: f64) -> Self {
        RampPace {
            rate_per_sec,
            done: 0,
        }
    }

    /// How many more changes may be made now, `elapsed_secs` into the
    /// ramp, with `pending` still to make.
    pub fn budget(&self, elapsed_secs: f64, pending: u32) -> u32 {
        let allowed = ramp_allowance(self.rate_per_sec, elapsed_secs, self.done + pending);
        allowed.saturating_sub(self.done)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(pairs: &[(&str, u32)]) -> BTreeMap<String, u32> {
        pairs.iter().map(|(n, c)| (n.to_string(), *c)).collect()
    }

    #[test]
    fn split_keeps_totals_and_balance() {
        let u = users(&[("A", 7), ("B", 1), ("C", 1), ("D", 0)]);
        let split = split_across_cores(&u, 3);
        for name in ["A", "B", "C", "D"] {
            let sum: u32 = split.iter().map(|m| m[name]).sum();
            assert_eq!(sum, u[name], "{name}");
        }
        let totals: Vec<u32> = split.iter().map(|m| m.values().sum()).collect();
        let (min, max) = (totals.iter().min(), totals.iter().max());
        assert!(max.unwrap() - min.unwrap() <= 1, "{totals:?}");
    }

    #[test]
    fn split_on_one_core_is_identity() {
        let u = users(&[("A", 5)]);
        assert_eq!(split_across_cores(&u, 1), vec![u.clone()]);
        assert_eq!(split_across_cores(&u, 0), vec![u]);
    }

    #[test]
    fn ramp_follows_rate() {
        assert_eq!(ramp_allowance(10.0, 0.0, 100), 1);
        assert_eq!(ramp_allowance(10.0, 0.55, 100), 6);
        assert_eq!(ramp_allowance(10.0, 100.0, 100), 100);
        assert_eq!(ramp_allowance(0.0, 0.0, 100), 100);
        assert_eq!(ramp_allowance(f64::NAN, 0.0, 7), 7);
    }

    /// Plays a ramp as a core does, one step every `tick_secs`, and returns
    /// how many users run after each step.
    fn play(rate: f64, tick_secs: f64, target: &Counts, have: &mut Counts) -> Vec<u32> {
        let mut pace = RampPace::new(rate);
        let mut after = Vec::new();
        for step in 0..10_000 {
            let pending = pending_changes(target, have);
            if pending == 0 {
                break;
            }
            let budget = pace.budget(step as f64 * tick_secs, pending);
            for _ in 0..budget {
                match next_change(target, have) {
                    Some(Change::Start(n)) => *have.entry(n).or_default() += 1,
                    Some(Change::Stop(n)) => *have.get_mut(&n).unwrap() -= 1,
                    None => break,
                }
                pace.done += 1;
            }
            after.push(have.values().sum());
        }
        after
    }

    #[test]
    fn a_ramp_starts_users_at_its_rate_and_no_faster() {
        let mut have = Counts::new();
        // 20 ms ticks at 10 users/s: one at once, then one per 100 ms.
        let after = play(10.0, 0.02, &users(&[("A", 30)]), &mut have);
        assert_eq!(after[0], 1, "one user starts at once");
        assert_eq!(after[50], 11, "after 1 s: 1 + 10");
        assert_eq!(*after.last().unwrap(), 30);
        // The 30th user starts at 2.9 s: step 145.
        assert_eq!(after.len(), 146);
        for pair in after.windows(2) {
            assert!(pair[1] - pair[0] <= 1, "never a burst: {pair:?}");
        }
    }

    #[test]
    fn a_zero_rate_changes_everything_in_one_step() {
        let mut have = Counts::new();
        let after = play(0.0, 0.02, &users(&[("A", 500), ("B", 7)]), &mut have);
        assert_eq!(after, vec![507]);
        assert_eq!(have, users(&[("A", 500), ("B", 7)]));
    }

    #[test]
    fn a_ramp_closes_the_largest_gap_first() {
        let target = users(&[("A", 40), ("B", 20)]);
        let mut have = Counts::new();
        let mut order = String::new();
        while let Some(change) = next_change(&target, &have) {
            let Change::Start(n) = change else {
                panic!("a ramp up stops no one: {change:?}")
            };
            order.push_str(&n);
            *have.entry(n).or_default() += 1;
        }
        // A's gap is 20 larger: 20 A first, then both gaps close together.
        assert_eq!(&order[..20], "A".repeat(20));
        assert_eq!(&order[20..], "BA".repeat(20));
        assert_eq!(have, target);
    }

    #[test]
    fn a_downscale_stops_users_of_the_types_above_their_target_only() {
        let target = users(&[("A", 2), ("B", 3)]);
        let mut have = users(&[("A", 6), ("B", 3), ("C", 2)]);
        let mut stopped = Vec::new();
        while let Some(change) = next_change(&target, &have) {
            let Change::Stop(n) = change else {
                panic!("a downscale starts no one: {change:?}")
            };
            *have.get_mut(&n).unwrap() -= 1;
            stopped.push(n);
        }
        // A is 4 too many, C (gone from the plan) 2: B is never touched,
        // and the furthest type goes first.
        assert_eq!(stopped, ["A", "A", "C", "A", "C", "A"]);
        assert_eq!(have, users(&[("A", 2), ("B", 3), ("C", 0)]));
        assert_eq!(pending_changes(&target, &have), 0);
    }

    #[test]
    fn a_downscale_is_paced_like_a_ramp() {
        let mut have = users(&[("A", 20)]);
        let after = play(5.0, 0.02, &users(&[("A", 10)]), &mut have);
        // One at once, then one per 200 ms: 10 stops take 1.8 s.
        assert_eq!(after[0], 19);
        assert_eq!(after[50], 14);
        assert_eq!(*after.last().unwrap(), 10);
        assert_eq!(after.len(), 91);
    }

    #[test]
    fn pending_counts_both_ways() {
        let target = users(&[("A", 3), ("B", 0)]);
        let have = users(&[("A", 1), ("B", 2), ("C", 4)]);
        assert_eq!(pending_changes(&target, &have), 2 + 2 + 4);
        assert_eq!(pending_changes(&have, &have), 0);
    }
}
