//! `swarmer.shape`: stages are read and checked as the script loads (a bad
//! one fails with file:line), a function is recorded for the master, and
//! the master sees either through `script::inspect`.

use script::declare::shape::{ShapeInfo, StageInfo};
use script::{ScriptSource, inspect};

const USERS: &str = "local A = swarmer.user { name = 'A' }\nA:task(function() end)\n\
local B = swarmer.user { name = 'B' }\nB:task(function() end)\n";

fn load(shape: &str) -> Result<script::ScriptInfo, String> {
    let src = ScriptSource {
        path: "shape.lua".into(),
        code: format!("{USERS}{shape}"),
    };
    inspect(&src).map_err(|e| e.to_string())
}

#[test]
fn stages_are_read_with_their_options() {
    let info = load(
        "swarmer.shape { stages = {\n\
           { duration = '30s', users = 100 },\n\
           { duration = 120, users = 100, spawn_rate = 20, user_types = { 'B' } },\n\
           { duration = '1m30s', users = 0 } } }\n",
    )
    .unwrap();
    let stage = |ms, users, rate, types: &[&str]| StageInfo {
        duration_ms: ms,
        users,
        spawn_rate: rate,
        user_types: types.iter().map(|s| s.to_string()).collect(),
    };
    assert_eq!(
        info.shape,
        Some(ShapeInfo::Stages {
            stages: vec![
                stage(30_000, 100, None, &[]),
                stage(120_000, 100, Some(20.0), &["B"]),
                stage(90_000, 0, None, &[]),
            ]
        })
    );
    assert_eq!(load("").unwrap().shape, None);
}

#[test]
fn a_function_is_recorded_for_the_master() {
    let info = load("swarmer.shape(function(ctx) return nil end)\n").unwrap();
    assert_eq!(info.shape, Some(ShapeInfo::Function));
}

#[test]
fn bad_stages_fail_the_load_with_file_and_line() {
    let cases = [
        (
            "swarmer.shape { stages = { { duration = '0s', users = 5 } } }",
            "shape.lua:5: swarmer.shape: stage 1: duration must be longer than zero",
        ),
        (
            "swarmer.shape { stages = { { duration = -3, users = 5 } } }",
            "stage 1: duration must be longer than zero",
        ),
        (
            "swarmer.shape { stages = { { duration = '1s', users = 5 }, { duration = '1s', users = -1 } } }",
            "shape.lua:5: swarmer.shape: stage 2: users must be a whole number of 0 or more, got -1",
        ),
        (
            "swarmer.shape { stages = { { duration = '1s', users = 2.5 } } }",
            "got 2.5",
        ),
        (
            "swarmer.shape { stages = { { duration = '1s', users = 1, spawn_rate = 0 } } }",
            "stage 1: spawn_rate must be a positive number",
        ),
        (
            "swarmer.shape { stages = { { duration = '1s', users = 1, user = 'A' } } }",
            "stage 1: unknown option \"user\"",
        ),
        (
            "swarmer.shape { stages = { { duration = '1s', users = 1, user_types = { 'Nope' } } } }",
            "shape.lua:5: swarmer.shape: stage 1: unknown user type \"Nope\"; the script defines: A, B",
        ),
        (
            "swarmer.shape { stages = {} }",
            "must list at least one stage",
        ),
        ("swarmer.shape(5)", "swarmer.shape expects"),
        (
            "swarmer.shape(function() end)\nswarmer.shape(function() end)",
            "shape.lua:6: swarmer.shape: a script has one shape, and one was declared at shape.lua:5",
        ),
    ];
    for (code, message) in cases {
        let e = load(code).unwrap_err();
        assert!(e.contains(message), "{code}: {e}");
    }
}
