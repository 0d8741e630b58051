//! Who runs how many users of which type: pure arithmetic, no I/O.
//!
//! First the run's user count is split into user types (fixed counts first,
//! the rest by weight), then each type is split across live workers in
//! proportion to their cores. Both splits use largest remainders, so totals
//! are exact and the result is the same for the same inputs.

use std::collections::BTreeMap;

use protocol::ArrivalShare;
use script::UserTypeInfo;

/// Users per type for a run of `total` users over `types`. Types driven by
/// arrivals (the open model) take no part: their pools follow their rate.
pub fn users_per_type(total: u32, types: &[UserTypeInfo]) -> BTreeMap<String, u32> {
    let closed: Vec<UserTypeInfo> = types
        .iter()
        .filter(|t| t.arrivals.is_none())
        .cloned()
        .collect();
    let types = &closed[..];
    let mut out: BTreeMap<String, u32> = types.iter().map(|t| (t.name.clone(), 0)).collect();
    let mut left = total;
    for t in types {
        if let Some(fixed) = t.fixed_count {
            let n = fixed.min(left);
            out.insert(t.name.clone(), n);
            left -= n;
        }
    }
    let weighted: Vec<(&str, u64)> = types
        .iter()
        .filter(|t| t.fixed_count.is_none())
        .map(|t| (t.name.as_str(), u64::from(t.weight)))
        .collect();
    for (name, n) in largest_remainder(left, &weighted) {
        out.insert(name.to_string(), n);
    }
    out
}

/// Splits each type's users across `workers` (id, cores), in proportion to
/// cores, keeping every worker's total as close to its share as possible.
pub fn split_across_workers(
    per_type: &BTreeMap<String, u32>,
    workers: &[(String, u32)],
) -> BTreeMap<String, BTreeMap<String, u32>> {
    let mut out: BTreeMap<String, BTreeMap<String, u32>> = workers
        .iter()
        .map(|(id, _)| (id.clone(), BTreeMap::new()))
        .collect();
    if workers.is_empty() {
        return out;
    }
    let weights: Vec<(&str, u64)> = workers
        .iter()
        .map(|(id, cores)| (id.as_str(), u64::from((*cores).max(1))))
        .collect();
    // Split the grand total first so remainders of many small types do not
    // all land on the same worker, then fill each worker's quota type by type.
    let total: u32 = per_type.values().sum();
    let mut quota: BTreeMap<&str, u32> = largest_remainder(total, &weights).into_iter().collect();
    for (name, &count) in per_type {
        let mut share: Vec<(&str, u32)> = largest_remainder(count, &weights);
        // Where a proportional share would exceed what a worker has left,
        // move the excess to workers with room.
        let mut excess = 0;
        for (id, n) in &mut share {
            let room = quota[*id];
            if *n > room {
                excess += *n - room;
                *n = room;
            }
        }
        for (id, n) in &mut share {
            let room = quota[*id] - *n;
            let moved = room.min(excess);
            *n += moved;
            excess -= moved;
        }
        for (id, n) in share {
            *quota.get_mut(id).expect("every worker has a quota") -= n;
            out.get_mut(id)
                .expect("every worker is listed")
                .insert(name.clone(), n);
        }
    }
    out
}

/// Each worker's part of every arrival-driven type of `types`, keyed by
/// worker id then type: the pool bounds split by cores with largest
/// remainders (exact), and the rate in proportion to each worker's pool, so
/// the shares add up to exactly 1 and the cluster makes the configured
/// rate. A worker without room gets no entry. `elapsed_ms`: how far into
/// the run the plans go out (the profile's clock, for stages).
pub fn split_arrivals(
    types: &[UserTypeInfo],
    workers: &[(String, u32)],
    elapsed_ms: u64,
) -> BTreeMap<String, BTreeMap<String, ArrivalShare>> {
    let mut out: BTreeMap<String, BTreeMap<String, ArrivalShare>> = workers
        .iter()
        .map(|(id, _)| (id.clone(), BTreeMap::new()))
        .collect();
    let weights: Vec<(&str, u64)> = workers
        .iter()
        .map(|(id, cores)| (id.as_str(), u64::from((*cores).max(1))))
        .collect();
    for t in types {
        let Some(spec) = &t.arrivals else { continue };
        let max = largest_remainder(spec.max_users, &weights);
        let pre = largest_remainder(spec.pre_allocated, &weights);
        for ((id, max_users), (_, pre_allocated)) in max.into_iter().zip(pre) {
            if max_users == 0 {
                continue;
            }
            out.get_mut(id).expect("every worker is listed").insert(
                t.name.clone(),
                ArrivalShare {
                    share: f64::from(max_users) / f64::from(spec.max_users),
                    pre_allocated: pre_allocated.min(max_users),
                    max_users,
                    elapsed_ms,
                },
            );
        }
    }
    out
}

/// Splits `total` by `weights` with the largest-remainder method; ties go
/// to the earlier entry. Zero weights get nothing unless all are zero.
fn largest_remainder<'a>(total: u32, weights: &[(&'a str, u64)]) -> Vec<(&'a str, u32)> {
    let sum: u64 = weights.iter().map(|(_, w)| w).sum();
    if weights.is_empty() {
        return Vec::new();
    }
    let weights: Vec<(&str, u64)> = if sum == 0 {
        weights.iter().map(|(n, _)| (*n, 1)).collect()
    } else {
        weights.to_vec()
    };
    let sum: u64 = weights.iter().map(|(_, w)| w).sum();
    let mut out: Vec<(&str, u32)> = Vec::with_capacity(weights.len());
    let mut remainders: Vec<(u64, usize)> = Vec::with_capacity(weights.len());
    let mut given = 0u32;
    for (i, (name, w)) in weights.iter().enumerate() {
        let exact = u64::from(total) * w;
        let n = (exact / sum) as u32;
        out.push((name, n));
        remainders.push((exact % sum, i));
        given += n;
    }
    remainders.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in remainders.into_iter().take((total - given) as usize) {
        out[i].1 += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ut(name: &str, weight: u32, fixed: Option<u32>) -> UserTypeInfo {
        UserTypeInfo {
            name: name.into(),
            weight,
            fixed_count: fixed,
            host: None,
            tasks: vec![],
            arrivals: None,
        }
    }

    fn open(name: &str, pre: u32, max: u32) -> UserTypeInfo {
        UserTypeInfo {
            arrivals: Some(script::arrivals::ArrivalSpec {
                rate_per_s: Some(60.0),
                start_rate_per_s: 0.0,
                stages: vec![],
                pre_allocated: pre,
                max_users: max,
            }),
            ..ut(name, 1, None)
        }
    }

    #[test]
    fn arrival_types_take_no_closed_users() {
        let types = [ut("A", 1, None), open("Api", 1, 10)];
        let split = users_per_type(4, &types);
        assert_eq!(split.get("A"), Some(&4));
        assert_eq!(split.get("Api"), None);
    }

    #[test]
    fn arrival_rates_split_to_exactly_one() {
        let types = [ut("A", 1, None), open("Api", 3, 10)];
        let two = vec![("w1".to_string(), 1), ("w2".to_string(), 1)];
        let split = split_arrivals(&types, &two, 2_000);
        assert_eq!(split["w1"]["Api"].share, 0.5);
        assert_eq!(split["w2"]["Api"].share, 0.5);
        assert_eq!(
            split["w1"]["Api"].pre_allocated + split["w2"]["Api"].pre_allocated,
            3
        );
        assert_eq!(split["w2"]["Api"].elapsed_ms, 2_000);
        assert!(!split["w1"].contains_key("A"));
        // Uneven cores, and a worker without room.
        let three = vec![
            ("w1".to_string(), 4),
            ("w2".to_string(), 2),
            ("w3".to_string(), 1),
        ];
        let split = split_arrivals(&[open("Api", 1, 3)], &three, 0);
        let shares: f64 = split
            .values()
            .filter_map(|m| m.get("Api"))
            .map(|a| a.share)
            .sum();
        assert!((shares - 1.0).abs() < 1e-12, "{split:?}");
        let maxes: u32 = split
            .values()
            .filter_map(|m| m.get("Api"))
            .map(|a| a.max_users)
            .sum();
        assert_eq!(maxes, 3);
    }

    #[test]
    fn weights_split_exactly() {
        let types = [ut("A", 3, None), ut("B", 1, None)];
        let split = users_per_type(10, &types);
        assert_eq!(split["A"] + split["B"], 10);
        assert_eq!(split["A"], 8); // 7.5 rounds up first: ties go to the earlier type
        assert_eq!(users_per_type(0, &types).values().sum::<u32>(), 0);
    }

    #[test]
    fn fixed_counts_come_first() {
        let types = [ut("Admin", 1, Some(2)), ut("A", 1, None), ut("B", 1, None)];
        let split = users_per_type(10, &types);
        assert_eq!(split["Admin"], 2);
        assert_eq!(split["A"] + split["B"], 8);
        assert_eq!(users_per_type(1, &types)["Admin"], 1);
    }

    #[test]
    fn workers_get_users_by_cores_and_totals_hold() {
        let per_type: BTreeMap<String, u32> = [
            ("A".to_string(), 7),
            ("B".to_string(), 1),
            ("C".to_string(), 1),
        ]
        .into();
        let workers = vec![
            ("w1".to_string(), 2),
            ("w2".to_string(), 1),
            ("w3".to_string(), 1),
        ];
        let split = split_across_workers(&per_type, &workers);
        for t in ["A", "B", "C"] {
            let sum: u32 = split.values().map(|m| m[t]).sum();
            assert_eq!(sum, per_type[t], "{t}");
        }
        let totals: Vec<u32> = workers
            .iter()
            .map(|(id, _)| split[id].values().sum())
            .collect();
        assert_eq!(totals.iter().sum::<u32>(), 9);
        assert!(totals[0] >= 4 && totals[0] <= 5, "{totals:?}"); // half of 9
    }

    #[test]
    fn no_workers_no_plan() {
        let per_type: BTreeMap<String, u32> = [("A".to_string(), 3)].into();
        assert!(split_across_workers(&per_type, &[]).is_empty());
    }
}
