//! Pure arithmetic of the engine: how a worker's users are spread over its
//! cores, and how many users a ramp may have started by a given time.

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
}
