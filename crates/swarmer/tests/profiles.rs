//! End-to-end tests of load profiles through the real binary against the
//! demo target (`--demo-target`, port 0): stages followed second by second
//! (read back from the CSV history's `Target Users` column), a run that
//! ends by itself when its stages end, and bad stages refused with exit
//! code 2 before anything starts.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{text, wait_with_deadline};

const BIN: &str = env!("CARGO_BIN_EXE_swarmer");

/// Users that wait a little between requests, none of which fail.
const SCRIPT: &str = "local U = swarmer.user { name = 'U', wait = swarmer.constant(0.05) }\n\
U:task(1, function(self) self.http:get('/item/1', { name = '/item/[id]' }) end)\n";

fn run(args: &[&str], dir: &Path, limit: Duration) -> Output {
    let child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        // The tests read the run's milestones, info lines that a headless
        // run hides by default.
        .env("SWARMER_LOGLEVEL", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn swarmer");
    wait_with_deadline(child, limit)
}

/// (actual users, target users) of each Aggregated row of the history.
fn history_rows(dir: &Path) -> Vec<(u32, u32)> {
    let history = std::fs::read_to_string(dir.join("out_stats_history.csv")).unwrap();
    let mut lines = history.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let target_col = header.iter().position(|c| *c == "Target Users");
    assert!(
        header[..5] == ["Timestamp", "User Count", "Type", "Name", "Requests/s"]
            && target_col.is_some_and(|i| header[i - 1] == "Total Average Content Size"),
        "Locust's columns first, then Target Users: {header:?}"
    );
    let target_col = target_col.unwrap();
    lines
        .filter(|l| l.contains(",Aggregated,"))
        .map(|l| {
            let cols: Vec<&str> = l.split(',').collect();
            let users = cols[1].parse().expect("user count");
            let target = cols[target_col].parse().expect("target users");
            (users, target)
        })
        .collect()
}

#[test]
fn stages_are_followed_second_by_second_and_end_the_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.lua"), SCRIPT).unwrap();
    let started = Instant::now();
    let out = run(
        &[
            "-f",
            "s.lua",
            "--headless",
            "--demo-target",
            "--stages",
            "3s:30,3s:30,3s:0",
            "--csv",
            "out",
            "--csv-full-history",
            "--only-summary",
        ],
        dir.path(),
        Duration::from_secs(60),
    );
    // No -t and no Ctrl-C: the stages alone ended the run, as a run time would.
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "ran the 9 s plan"
    );
    assert!(
        text(&out.stderr).contains("its load profile ended"),
        "{}",
        text(&out.stderr)
    );
    let rows = history_rows(dir.path());
    assert!(rows.len() >= 8, "one row a second over 9 s: {rows:?}");
    let targets: Vec<u32> = rows.iter().map(|r| r.1).collect();
    let peak = targets
        .iter()
        .position(|&t| t == 30)
        .expect("plan reaches 30");
    assert!(
        targets[..=peak].windows(2).all(|w| w[0] <= w[1]),
        "the plan ramps up: {targets:?}"
    );
    let last_peak = targets.iter().rposition(|&t| t == 30).unwrap();
    assert!(
        targets[last_peak..].windows(2).all(|w| w[0] >= w[1]),
        "then down: {targets:?}"
    );
    assert!(rows.iter().any(|&(u, t)| u == 30 && t == 30), "{rows:?}");
    // A row's plan is the plan when its count was taken, so on a quiet
    // machine the two agree; a loaded one can still trail by a row or
    // three (workers slow to start or stop users). Ahead by at most 2:
    // a worker starts one user at once on each new plan, and the count's
    // instant is when the master got it, just after it was taken. A run
    // that did not follow the plan fails this.
    for (i, &(users, _)) in rows.iter().enumerate() {
        let window = &targets[i.saturating_sub(3)..=i];
        let (lo, hi) = (*window.iter().min().unwrap(), *window.iter().max().unwrap());
        assert!(
            users + 2 >= lo && users <= hi + 2,
            "row {i}: {users} users, plan {window:?}: {rows:?}"
        );
    }
}

#[test]
fn stages_come_from_the_environment_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.lua"), SCRIPT).unwrap();
    let child = Command::new(BIN)
        .args([
            "-f",
            "s.lua",
            "--headless",
            "--demo-target",
            "--only-summary",
        ])
        .env("SWARMER_STAGES", "1s:2,1s:0")
        .env("SWARMER_LOGLEVEL", "info")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_with_deadline(child, Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("its load profile ended"));
}

#[test]
fn stages_come_from_the_config_file_too() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.lua"), SCRIPT).unwrap();
    std::fs::write(dir.path().join("swarmer.toml"), "stages = \"1s:2,1s:0\"\n").unwrap();
    let out = run(
        &[
            "-f",
            "s.lua",
            "--headless",
            "--demo-target",
            "--only-summary",
        ],
        dir.path(),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("its load profile ended"));
}

#[test]
fn bad_stages_exit_2_naming_the_flag_and_value() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.lua"), SCRIPT).unwrap();
    let cases: &[(&[&str], &str)] = &[
        (
            &["--stages", "1s:5,0s:5"],
            "--stages: stage 2: the duration must be longer than zero",
        ),
        (
            &["--stages", "30s:-5"],
            "--stages \"30s:-5\": stage 1 \"30s:-5\": the user count must be a whole number of 0 or more, got \"-5\"",
        ),
        (&["--stages", "30s:2.5"], "got \"2.5\""),
        (&["--stages", "-30s:5"], "--stages \"-30s:5\": stage 1"),
        (&["--stages", "30s"], "is not DURATION:USERS"),
        (
            &["--stages", "10s:500", "--max-users", "100"],
            "--stages: stage 1: must be at most 100",
        ),
        (
            &["--stages", "10s:5", "-u", "5"],
            "--stages and -u/--users cannot be used together",
        ),
        (
            &["--stages", "10s:5", "-t", "5s"],
            "--stages and -t/--run-time cannot be used together",
        ),
    ];
    for (extra, message) in cases {
        let mut args = vec!["-f", "s.lua", "--headless", "--demo-target"];
        args.extend_from_slice(extra);
        let out = run(&args, dir.path(), Duration::from_secs(30));
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(stderr.contains(message), "{extra:?}: {stderr}");
        assert!(
            !stderr.contains("users spawned"),
            "nothing started: {stderr}"
        );
    }
}

/// Two user types and a shape whose last stage runs only one of them.
const SHAPED: &str = "local A = swarmer.user { name = 'A', wait = swarmer.constant(0.05) }\n\
A:task(1, function(self) self.http:get('/item/1', { name = '/item/[id]' }) end)\n\
local B = swarmer.user { name = 'B', wait = swarmer.constant(0.05) }\n\
B:task(1, function(self) self.http:get('/') end)\n\
swarmer.shape { stages = {\n\
  { duration = '2s', users = 10 },\n\
  { duration = '2s', users = 4, spawn_rate = 50, user_types = { 'B' } },\n\
} }\n";

#[test]
fn the_scripts_shape_runs_by_default_and_ends_the_run() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.lua"), SHAPED).unwrap();
    let out = run(
        &[
            "-f",
            "s.lua",
            "--headless",
            "--demo-target",
            "--csv",
            "out",
            "--only-summary",
        ],
        dir.path(),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("its load profile ended"));
    let rows = history_rows(dir.path());
    let targets: Vec<u32> = rows.iter().map(|r| r.1).collect();
    // Rows come once a second, so they catch the first stage's ramp
    // (0 to 10 over 2 s) somewhere past its middle, never above 10.
    assert!(
        targets.iter().any(|&t| (5..=10).contains(&t)) && targets.iter().all(|&t| t <= 10),
        "the first stage ramps to 10: {rows:?}"
    );
    // Once the stages have ended the run is stopping and plans 0 users.
    let last_planned = targets.iter().rev().find(|&&t| t != 0);
    assert_eq!(last_planned, Some(&4), "the last stage holds 4: {rows:?}");
}

#[test]
fn a_fixed_count_beside_a_shape_needs_no_shape() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.lua"), SHAPED).unwrap();
    let base = [
        "-f",
        "s.lua",
        "--headless",
        "--demo-target",
        "--only-summary",
    ];
    let mut args = base.to_vec();
    args.extend(["-u", "2", "-t", "2s"]);
    let out = run(&args, dir.path(), Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("so -u/--users needs --no-shape"),
        "{}",
        text(&out.stderr)
    );
    args.push("--no-shape");
    let out = run(&args, dir.path(), Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(!text(&out.stderr).contains("its load profile ended"));
}

#[test]
fn a_bad_shape_exits_2_with_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let bad = SHAPED.replace("user_types = { 'B' }", "user_types = { 'C' }");
    std::fs::write(dir.path().join("s.lua"), bad).unwrap();
    let out = run(
        &["-f", "s.lua", "--headless", "--demo-target"],
        dir.path(),
        Duration::from_secs(30),
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("s.lua:5: swarmer.shape: stage 2: unknown user type \"C\""),
        "{stderr}"
    );
}

fn shape_script(shape: &str) -> String {
    format!(
        "local U = swarmer.user {{ name = 'U', wait = swarmer.constant(0.05) }}\n\
         U:task(1, function(self) self.http:get('/') end)\n{shape}\n"
    )
}

fn run_shape(shape: &str) -> (Option<i32>, String, String) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.lua"), shape_script(shape)).unwrap();
    let out = run(
        &[
            "-f",
            "s.lua",
            "--headless",
            "--demo-target",
            "--only-summary",
        ],
        dir.path(),
        Duration::from_secs(60),
    );
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

#[test]
fn a_shape_function_steers_the_run_and_ends_it() {
    let (code, stdout, stderr) = run_shape(
        "swarmer.shape(function(ctx)\n\
           assert(type(ctx.stats.users) == 'number' and type(ctx.stats.rps) == 'number')\n\
           if ctx.run_time >= 3 then return nil end\n\
           if ctx.run_time >= 1 then return 4, 20 end\n\
           return 2, 20\n\
         end)",
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("its load shape ended the run"), "{stderr}");
    assert!(stderr.contains("all 4 users spawned"), "{stderr}");
    assert!(stdout.contains("Aggregated"), "{stdout}");
}

#[test]
fn a_shape_that_raises_mid_run_stops_it_and_keeps_the_stats() {
    let (code, stdout, stderr) = run_shape(
        "swarmer.shape(function(ctx)\n\
           if ctx.run_time >= 2 then error('boom') end\n\
           return 2, 20\n\
         end)",
    );
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains("the shape function failed") && stderr.contains("s.lua:4: boom"),
        "{stderr}"
    );
    assert!(
        stdout.contains("Aggregated"),
        "the stats are kept: {stdout}"
    );
}

#[test]
fn a_bad_shape_function_exits_2_before_anything_starts() {
    let cases = [
        (
            "swarmer.shape(function(ctx) error('nope') end)",
            "the script's shape function: s.lua:3: nope",
        ),
        (
            "swarmer.shape(function(ctx) return -1, 5 end)",
            "users must be a whole number of 0 or more, got -1",
        ),
        (
            "swarmer.shape(function(ctx) return 5 end)",
            "spawn_rate must be a positive number",
        ),
        (
            "swarmer.shape(function(ctx) return 5, 1, { 'Nope' } end)",
            "unknown user type \"Nope\"",
        ),
        (
            "swarmer.shape(function(ctx) return nil end)",
            "returned nil at once",
        ),
    ];
    for (shape, message) in cases {
        let (code, _, stderr) = run_shape(shape);
        assert_eq!(code, Some(2), "{shape}: {stderr}");
        assert!(stderr.contains(message), "{shape}: {stderr}");
        assert!(!stderr.contains("users spawned"), "{shape}: {stderr}");
    }
}
