//! `arrivals = { ... }` in `swarmer.user`: what `inspect` reports, and every
//! bad declaration refused at load with the file and line.

mod common;

use common::*;
use script::ScriptError;

fn load_error(code: &str) -> String {
    match script::inspect(&source(code)) {
        Err(ScriptError::Load { message }) => message,
        other => panic!("expected a load error, got {other:?}"),
    }
}

#[test]
fn a_constant_rate_is_per_second() {
    let info = script::inspect(&source(
        "swarmer.user { name = 'Api', arrivals = { rate = 120, per = '1m', pre_allocated = 2, max_users = 5 } }\n",
    ))
    .unwrap();
    let spec = info.user_types[0].arrivals.clone().unwrap();
    assert_eq!(spec.rate_per_s, Some(2.0));
    assert_eq!((spec.pre_allocated, spec.max_users), (2, 5));
}

#[test]
fn stages_ramp_from_the_start_rate() {
    let info = script::inspect(&source(
        "swarmer.user { arrivals = { start_rate = 10, stages = { { duration = '30s', rate = 50 }, { duration = 10, rate = 0 } } } }\n",
    ))
    .unwrap();
    let spec = info.user_types[0].arrivals.clone().unwrap();
    assert_eq!(spec.rate_per_s, None);
    assert_eq!(spec.stages.len(), 2);
    assert_eq!(spec.rate_at(15.0), 30.0);
    assert_eq!(spec.duration_s(), Some(40.0));
    assert_eq!(spec.max_users, 1000);
}

#[test]
fn bad_declarations_name_file_and_line() {
    let cases = [
        (
            "arrivals = { rate = 10 }, fixed_count = 2",
            "arrivals and fixed_count exclude each other",
        ),
        (
            "arrivals = { rate = 0 }",
            "rate must be a finite number > 0, got 0",
        ),
        (
            "arrivals = { rate = -5 }",
            "rate must be a finite number > 0, got -5",
        ),
        (
            "arrivals = { rate = 5, pre_allocated = 10, max_users = 5 }",
            "pre_allocated (10) is more than max_users (5)",
        ),
        (
            "arrivals = { rate = 5, burst = 1 }",
            "unknown option \"burst\"",
        ),
        (
            "arrivals = { rate = 5, per = 'fortnight' }",
            "per \"fortnight\" is not a duration",
        ),
        (
            "arrivals = { rate = 5, per = '0s' }",
            "per \"0s\" is not a duration",
        ),
        ("arrivals = {}", "give a rate"),
        (
            "arrivals = { rate = 5, stages = { { duration = '1s', rate = 1 } } }",
            "not both",
        ),
        (
            "arrivals = { stages = { { duration = '-1s', rate = 1 } } }",
            "stages[1]",
        ),
        (
            "arrivals = { stages = { { duration = '1s', rate = -1 } } }",
            "stages[1]",
        ),
        (
            "arrivals = { stages = { { duration = '1s', rate = 0 } } }",
            "rate of 0",
        ),
        ("arrivals = 5", "arrivals must be a table"),
        (
            "arrivals = { rate = 1e308, per = '1ms' }",
            "more than the 10000000 a run can make",
        ),
        (
            "arrivals = { rate = 5, max_users = 0 }",
            "max_users must be a whole number >= 1",
        ),
    ];
    for (opts, expected) in cases {
        let msg = load_error(&format!("\n\nswarmer.user {{ {opts} }}\n"));
        assert!(msg.starts_with("test.lua:3: "), "{opts}: {msg}");
        assert!(msg.contains(expected), "{opts}: {msg}");
    }
}
