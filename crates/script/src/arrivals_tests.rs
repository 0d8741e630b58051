//! Virtual-clock tests of the arrival arithmetic.

use super::*;

fn constant(rate: f64) -> ArrivalSpec {
    ArrivalSpec {
        rate_per_s: Some(rate),
        start_rate_per_s: 0.0,
        stages: Vec::new(),
        pre_allocated: 1,
        max_users: 10,
    }
}

fn staged(start: f64, stages: &[(f64, f64)]) -> ArrivalSpec {
    ArrivalSpec {
        rate_per_s: None,
        start_rate_per_s: start,
        stages: stages
            .iter()
            .map(|&(d, r)| RateStage {
                duration_s: d,
                rate_per_s: r,
            })
            .collect(),
        pre_allocated: 1,
        max_users: 10,
    }
}

/// Steps a schedule through `[0, end_s]` in `step_s` ticks and returns the
/// due times it handed out.
fn run(s: &mut Schedule, end_s: f64, step_s: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut t = 0.0;
    while t <= end_s + 1e-12 {
        s.take_due(t, |due| out.push(due));
        t += step_s;
    }
    out
}

#[test]
fn constant_rate_is_due_evenly() {
    let mut s = Schedule::new(constant(4.0), 1.0, 0.0);
    let dues = run(&mut s, 2.0, 0.001);
    assert_eq!(dues.len(), 8);
    for (i, d) in dues.iter().enumerate() {
        assert!((d - (i as f64 + 1.0) * 0.25).abs() < 1e-9, "{dues:?}");
    }
}

#[test]
fn due_times_are_never_later_than_when_taken() {
    // Coarse ticks: several arrivals fall due between two looks, and each
    // keeps its own due time (lateness is measured from it).
    let mut s = Schedule::new(constant(10.0), 1.0, 0.0);
    let mut got = Vec::new();
    s.take_due(0.35, |d| got.push(d));
    assert_eq!(got.len(), 3);
    assert!((got[0] - 0.1).abs() < 1e-9 && (got[2] - 0.3).abs() < 1e-9);
}

#[test]
fn fractional_rates_accumulate_without_drift() {
    // One arrival every 3 s, looked at 7 times a second for almost an hour.
    let mut s = Schedule::new(constant(1.0 / 3.0), 1.0, 0.0);
    let mut n = 0u64;
    let mut t = 0.0;
    for _ in 0..(3000 * 7) {
        t += 1.0 / 7.0;
        s.take_due(t, |_| n += 1);
    }
    assert_eq!(n, 1000, "t = {t}");
}

#[test]
fn shares_split_the_rate_exactly() {
    // Two halves of 60/s over 10 s make 600 together.
    let mut a = Schedule::new(constant(60.0), 0.5, 0.0);
    let mut b = Schedule::new(constant(60.0), 0.5, 0.0);
    let total = run(&mut a, 10.0, 0.02).len() + run(&mut b, 10.0, 0.02).len();
    assert_eq!(total, 600);
}

#[test]
fn a_new_share_makes_neither_a_burst_nor_a_gap() {
    // Alone for 5 s, then half for 5 s (another worker joined at 5 s with
    // the other half): 10/s * 5 + 5/s * 5 = 75, and the joiner makes 25.
    let spec = constant(10.0);
    let mut a = Schedule::new(spec.clone(), 1.0, 0.0);
    let mut n_a = 0;
    let mut t = 0.0;
    while t < 5.0 - 1e-9 {
        t += 0.01;
        a.take_due(t, |_| n_a += 1);
    }
    a.set_share(0.5, 5.0);
    let mut b = Schedule::new(spec, 0.5, 5.0);
    let mut n_b = 0;
    let mut gaps = Vec::new();
    let mut last = 0.0;
    while t < 10.0 - 1e-9 {
        t += 0.01;
        a.take_due(t, |d| {
            n_a += 1;
            gaps.push(d - last);
            last = d;
        });
        b.take_due(t, |_| n_b += 1);
    }
    assert_eq!(n_a, 75);
    assert_eq!(n_b, 25);
    assert!(
        gaps.iter().skip(1).all(|g| (g - 0.2).abs() < 1e-6),
        "{gaps:?}"
    );
}

#[test]
fn ramps_follow_the_integral() {
    // 0 -> 10/s over 10 s (50 arrivals), hold 10/s for 5 s (50), down to
    // 0 over 10 s (50): 150, then nothing more.
    let spec = staged(0.0, &[(10.0, 10.0), (5.0, 10.0), (10.0, 0.0)]);
    assert!((spec.count_by(10.0) - 50.0).abs() < 1e-9);
    assert!((spec.rate_at(5.0) - 5.0).abs() < 1e-9);
    assert_eq!(spec.rate_at(30.0), 0.0);
    let mut s = Schedule::new(spec.clone(), 1.0, 0.0);
    let dues = run(&mut s, 40.0, 0.01);
    assert_eq!(dues.len(), 150);
    assert!(s.finished());
    // The n-th arrival of a linear ramp from 0 is due at sqrt(2n/slope).
    assert!(
        (dues[7] - (2.0 * 8.0f64).sqrt()).abs() < 1e-6,
        "{}",
        dues[7]
    );
    for w in dues.windows(2) {
        assert!(w[1] >= w[0]);
    }
    for n in [1.0, 49.5, 75.0, 120.0] {
        let t = spec.time_of(n).unwrap();
        assert!((spec.count_by(t) - n).abs() < 1e-6, "{n} at {t}");
    }
    assert_eq!(spec.time_of(151.0), None);
}

#[test]
fn durations_and_checks() {
    assert_eq!(parse_duration_s("1s"), Ok(1.0));
    assert_eq!(parse_duration_s("500ms"), Ok(0.5));
    assert_eq!(parse_duration_s("2m"), Ok(120.0));
    assert_eq!(parse_duration_s("1h"), Ok(3600.0));
    assert_eq!(parse_duration_s("3"), Ok(3.0));
    for bad in ["", "1x", "-1s", "0s", "s", "1 fortnight"] {
        assert!(parse_duration_s(bad).is_err(), "{bad}");
    }
    let mut spec = constant(5.0);
    spec.pre_allocated = 11;
    assert_eq!(
        spec.check(),
        Err(ArrivalError::PoolReversed { pre: 11, max: 10 })
    );
    assert_eq!(
        staged(0.0, &[(1.0, 0.0)]).check(),
        Err(ArrivalError::AllZero)
    );
    assert!(positive("rate", 0.0).is_err());
    assert!(positive("rate", -1.0).is_err());
    assert!(non_negative("rate", f64::NAN).is_err());
}
