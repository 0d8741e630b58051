//! Table tests of the autoscaler's decisions on a made-up clock.

use super::*;

fn policy() -> Policy {
    let mut p = Policy::new(1, 5);
    p.window_ms = 10_000;
    p.low_window_ms = 30_000;
    p
}

/// A sample during a run: `n` workers connected and asked for.
fn at(now_s: u64, n: u32, avg: f32, max: f32) -> Sample {
    Sample {
        now_ms: now_s * 1000,
        active: true,
        connected: n,
        desired: n,
        avg_cpu_pct: avg,
        max_cpu_pct: max,
    }
}

/// A decision as (index of the sample that made it, from, to).
type Made = (usize, u32, u32);

/// Feeds the samples in order; returns the decisions they made.
fn run(policy: &Policy, samples: &[Sample]) -> Vec<Made> {
    let mut decider = Decider::new();
    samples
        .iter()
        .enumerate()
        .filter_map(|(i, s)| decider.observe(policy, s).map(|d| (i, d.from, d.to)))
        .collect()
}

#[test]
fn decisions_follow_the_rules() {
    let p = policy();
    let table: Vec<(&str, Vec<Sample>, Vec<Made>)> = vec![
        (
            "hot for the window: enough workers for 60%",
            vec![
                at(0, 2, 91.0, 95.0),
                at(5, 2, 91.0, 95.0),
                at(10, 2, 91.0, 95.0),
            ],
            // 2 × 91% = 182% of one worker: ceil(182 / 60) = 4.
            vec![(2, 2, 4)],
        ),
        (
            "hot, but not for the whole window",
            vec![at(0, 2, 91.0, 95.0), at(9, 2, 91.0, 95.0)],
            vec![],
        ),
        (
            "hysteresis: one cooler sample restarts the window",
            vec![
                at(0, 2, 91.0, 95.0),
                at(6, 2, 70.0, 75.0),
                at(12, 2, 91.0, 95.0),
                at(21, 2, 91.0, 95.0),
                at(22, 2, 91.0, 95.0),
            ],
            vec![(4, 2, 4)],
        ),
        (
            "never above MAX",
            vec![at(0, 3, 99.0, 100.0), at(10, 3, 99.0, 100.0)],
            vec![(1, 3, 5)],
        ),
        (
            "at MAX already: nothing to ask",
            vec![at(0, 5, 99.0, 100.0), at(10, 5, 99.0, 100.0)],
            vec![],
        ),
        (
            "the hottest alone, saturated, adds one worker",
            vec![at(0, 2, 70.0, 96.0), at(10, 2, 70.0, 96.0)],
            vec![(1, 2, 3)],
        ),
        (
            "idle for the low window during a run: down, never below MIN",
            vec![at(0, 4, 5.0, 8.0), at(15, 4, 5.0, 8.0), at(30, 4, 5.0, 8.0)],
            vec![(2, 4, 1)],
        ),
        (
            "low but not for the longer window",
            vec![at(0, 4, 5.0, 8.0), at(29, 4, 5.0, 8.0)],
            vec![],
        ),
        (
            "moderately low: down only as far as 60% allows",
            vec![at(0, 5, 25.0, 28.0), at(30, 5, 25.0, 28.0)],
            // 5 × 25% = 125%: ceil(125 / 60) = 3.
            vec![(1, 5, 3)],
        ),
        (
            "between the marks: nothing",
            vec![at(0, 3, 50.0, 70.0), at(60, 3, 50.0, 70.0)],
            vec![],
        ),
    ];
    for (name, samples, expected) in table {
        assert_eq!(run(&p, &samples), expected, "{name}");
    }
}

#[test]
fn the_run_ending_scales_down_to_min_and_idle_does_nothing_more() {
    let p = policy();
    let mut ended = at(20, 4, 0.0, 0.0);
    ended.active = false;
    let mut later = ended;
    later.now_ms = 200_000;
    later.desired = 1;
    later.connected = 1;
    assert_eq!(
        run(&p, &[at(0, 4, 50.0, 60.0), ended, later]),
        vec![(1, 4, 1)]
    );

    // No run yet: workers above MIN stay (someone asked for them).
    let mut idle = at(0, 3, 0.0, 0.0);
    idle.active = false;
    assert_eq!(run(&p, &[idle]), vec![]);
}

#[test]
fn fewer_than_min_at_start_are_raised_to_min() {
    let p = Policy::new(2, 4);
    let mut idle = at(0, 0, 0.0, 0.0);
    idle.active = false;
    let decisions = run(&p, &[idle, idle]);
    assert_eq!(decisions, vec![(0, 0, 2)]);
}

#[test]
fn no_flapping_while_new_workers_join() {
    let p = policy();
    let mut decider = Decider::new();
    let up = decider.observe(&p, &at(0, 2, 95.0, 99.0));
    assert_eq!(up, None);
    let up = decider
        .observe(&p, &at(10, 2, 95.0, 99.0))
        .expect("scales up");
    assert_eq!((up.from, up.to, up.direction), (2, 4, Direction::Up));
    assert_eq!(
        up.message(),
        "scaled 2 → 4: average worker CPU 95% for 10 s"
    );
    // Asked for 4, two have joined so far and are idle: the average is
    // low and the old ones still hot, but nothing is judged until they are in.
    for t in [11, 20, 30] {
        let mut s = at(t, 2, 20.0, 99.0);
        s.desired = 4;
        assert_eq!(decider.observe(&p, &s), None, "t={t}");
    }
    // All four in at 55%: between the marks, nothing for a long while.
    for t in (31..200).step_by(5) {
        assert_eq!(decider.observe(&p, &at(t, 4, 55.0, 60.0)), None, "t={t}");
    }
}

#[test]
fn a_change_that_never_settles_is_judged_again_after_four_windows() {
    let p = policy();
    let mut decider = Decider::new();
    decider.observe(&p, &at(0, 2, 95.0, 99.0));
    assert!(decider.observe(&p, &at(10, 2, 95.0, 99.0)).is_some());
    // Only 3 of 4 ever join (e.g. a quota): still hot.
    let mut s = at(20, 3, 95.0, 99.0);
    s.desired = 4;
    assert_eq!(decider.observe(&p, &s), None);
    s.now_ms = 50_000;
    assert_eq!(
        decider.observe(&p, &s),
        None,
        "the window starts after settling"
    );
    s.now_ms = 60_000;
    let d = decider
        .observe(&p, &s)
        .expect("hot for a window after settling");
    assert_eq!((d.from, d.to), (4, 5));
}
