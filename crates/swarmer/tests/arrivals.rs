//! End-to-end tests of the open model (arrival rates) through the binary:
//! a headless run against the demo target, whose `/stats` counts what it
//! served, so the delivered rate is checked at the target, not only in
//! swarmer's own figures.

mod common;

use std::time::Duration;

use common::cluster::{Master, worker};
use common::{DemoTarget, Proc, TempDir, poll, serial};

const LONG: Duration = Duration::from_secs(60);

/// One arrival-driven type hitting `path`.
fn script(rate: u32, pre: u32, max: u32, path: &str) -> String {
    format!(
        r#"
local Api = swarmer.user {{
  name = "Api",
  arrivals = {{ rate = {rate}, per = "1s", pre_allocated = {pre}, max_users = {max} }},
}}
Api:task(function(self) self.http:get("{path}", {{ name = "api" }}) end)
"#
    )
}

/// Seconds of the day of a log line's timestamp (`2026-11-30T22:54:55.254538Z`).
fn stamp_s(line: &str) -> Option<f64> {
    let time = line.split_once('T')?.1.split_once('Z')?.0;
    let mut parts = time.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = parts.next()?.parse().ok()?;
    let s: f64 = parts.next()?.parse().ok()?;
    Some(h * 3600.0 + m * 60.0 + s)
}

/// How long run 1 ran, from its start to its stop, as the master logged
/// them: the run-time deadline is checked once a second, so the window is
/// what arrivals are measured against, not `-t`.
fn run_window_s(p: &Proc) -> f64 {
    let lines = p.lines();
    let find = |needle: &str| {
        lines
            .iter()
            .find(|l| l.contains(needle))
            .and_then(|l| stamp_s(l))
            .unwrap_or_else(|| panic!("no {needle:?} line in {lines:?}"))
    };
    let window = find("INFO run 1: stopping") - find("INFO run 1: 1 users at");
    assert!(window > 1.0, "{window}");
    window
}

/// Asserts `got` is within `tolerance` (a fraction) of `rate` x `window_s`.
fn assert_rate(got: u64, rate: f64, window_s: f64, tolerance: f64, json: &serde_json::Value) {
    let want = rate * window_s;
    assert!(
        (got as f64 - want).abs() <= want * tolerance + 2.0,
        "{got} over {window_s:.2} s, wanted {want:.1} at {rate}/s: {json}"
    );
}

/// Runs a headless standalone test to its end and returns its `--json` and
/// its run window in seconds.
fn headless(
    dir: &TempDir,
    target: &DemoTarget,
    script: &str,
    run_time: &str,
    extra: &[&str],
) -> (serde_json::Value, f64) {
    let path = dir.write("arrivals.lua", script);
    let mut args = vec![
        "-f",
        &path,
        "--headless",
        "--json",
        "--only-summary",
        "-H",
        &target.url,
        "-t",
        run_time,
        "--stop-timeout",
        "5s",
        // The run window is read from info lines, below a headless default.
        "-L",
        "info",
    ];
    args.extend_from_slice(extra);
    let mut p = Proc::swarmer("swarmer", dir.path(), &args);
    let status = p.wait_exit(LONG).expect("the run ends by itself");
    assert!(status.code().is_some(), "{status:?}");
    let json = serde_json::from_str(&p.stdout())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", p.stdout()));
    (json, run_window_s(&p))
}

fn requests(json: &serde_json::Value) -> u64 {
    json["stats"]
        .as_array()
        .expect("stats")
        .iter()
        .find(|e| e["name"] == "api")
        .map_or(0, |e| e["num_requests"].as_u64().unwrap())
}

#[test]
fn a_slow_target_gets_the_rate_not_fewer_requests() {
    let _serial = serial();
    let dir = TempDir::new("arrivals-slow");
    let target = DemoTarget::start(dir.path());
    // 300 ms per request: a closed user would make 3 a second; the pool
    // grows instead, so the target still sees 20 a second.
    let (json, window_s) = headless(&dir, &target, &script(20, 1, 50, "/slow?ms=300"), "4s", &[]);
    let served = target.served();
    assert_rate(served, 20.0, window_s, 0.05, &json);
    assert_eq!(requests(&json), served, "{json}");
    assert_eq!(json["dropped_iterations"], 0, "{json}");
    // Each request really waited for the slow target.
    let api = json["stats"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "api")
        .unwrap();
    assert!(api["min_response_time"].as_f64().unwrap() >= 290.0, "{api}");
}

#[test]
fn arrivals_without_room_are_dropped_and_counted() {
    let _serial = serial();
    let dir = TempDir::new("arrivals-dropped");
    let target = DemoTarget::start(dir.path());
    // Two users of 1 s each can serve 2 arrivals a second of the 20 due.
    let (json, window_s) = headless(
        &dir,
        &target,
        &script(20, 2, 2, "/slow?ms=1000"),
        "3s",
        &["--csv", "out"],
    );
    let served = target.served();
    let dropped = json["dropped_iterations"]
        .as_u64()
        .expect("dropped_iterations");
    // About 2 a second served (the users' capacity), the rest dropped, and
    // together the whole rate: no arrival is lost without a trace.
    assert_rate(served, 2.0, window_s, 0.25, &json);
    assert_rate(served + dropped, 20.0, window_s, 0.05, &json);
    // The history rows carry the drops so far and the target rate, after
    // Locust's columns.
    let history = std::fs::read_to_string(dir.path().join("out_stats_history.csv")).unwrap();
    let header: Vec<&str> = history.lines().next().unwrap().split(',').collect();
    assert_eq!(
        header[header.len() - 2..],
        ["Dropped Iterations", "Target Rate"]
    );
    let rows: Vec<Vec<&str>> = history
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert!(rows.len() >= 2, "{history}");
    let last = rows.last().unwrap();
    assert_eq!(last.len(), header.len(), "{history}");
    let dropped_then: u64 = last[last.len() - 2].parse().unwrap();
    assert!(dropped_then > 0 && dropped_then <= dropped, "{history}");
    let running = rows.iter().any(|r| r[r.len() - 1] == "20.000000");
    assert!(running, "a row at the target rate of 20/s: {history}");
    assert_eq!(
        json["dropped_iterations_by_user_type"]["Api"], dropped,
        "{json}"
    );
}

/// A master waiting for `workers` (one core each) to run `script` for
/// `run_time`, against a fresh demo target.
fn cluster(
    label: &str,
    script: &str,
    ids: &[&str],
    run_time: &str,
) -> (TempDir, DemoTarget, Master, Vec<Proc>) {
    let dir = TempDir::new(label);
    let target = DemoTarget::start(dir.path());
    let path = dir.write("arrivals.lua", script);
    let expect = ids.len().to_string();
    let master = Master::start(
        dir.path(),
        &[
            "-f",
            &path,
            "--headless",
            "--json",
            "--only-summary",
            "-H",
            &target.url,
            "--expect-workers",
            &expect,
            "-t",
            run_time,
        ],
    );
    let workers = ids
        .iter()
        .map(|id| worker(dir.path(), master.port, id, &["--cores", "1"]))
        .collect();
    (dir, target, master, workers)
}

#[test]
fn a_lost_worker_s_share_moves_at_once() {
    let _serial = serial();
    let (_dir, target, mut master, mut workers) = cluster(
        "arrivals-lost",
        &script(40, 2, 20, "/"),
        &["w1", "w2"],
        "5s",
    );
    // Once the run is well under way, one worker dies without a goodbye:
    // the other takes over its share at once, so the target still gets
    // 40 a second over the whole run, with no gap (too few) and no burst
    // (too many).
    poll(LONG, || (target.served() >= 60).then_some(())).expect("the run starts");
    workers[1].kill9();
    let status = master.proc.wait_exit(LONG).expect("the run ends by itself");
    assert!(status.success(), "{status:?}");
    let json: serde_json::Value = serde_json::from_str(&master.proc.stdout()).expect("json");
    let served = target.served();
    assert_rate(served, 40.0, run_window_s(&master.proc), 0.06, &json);
    assert_eq!(json["worker_count"], 1, "{json}");
}

#[test]
fn two_workers_share_one_rate() {
    let _serial = serial();
    let (_dir, target, mut master, _workers) =
        cluster("arrivals-two", &script(30, 2, 20, "/"), &["w1", "w2"], "4s");
    let status = master.proc.wait_exit(LONG).expect("the run ends by itself");
    assert!(status.success(), "{status:?}");
    let json: serde_json::Value = serde_json::from_str(&master.proc.stdout()).expect("json");
    let served = target.served();
    // 30/s together, not 30/s each.
    assert_rate(served, 30.0, run_window_s(&master.proc), 0.05, &json);
    assert_eq!(requests(&json), served, "{json}");
    assert_eq!(json["worker_count"], 2, "{json}");
}

#[test]
fn a_bad_arrivals_declaration_exits_2_before_anything_starts() {
    let dir = TempDir::new("arrivals-bad");
    let path = dir.write(
        "bad.lua",
        "local Api = swarmer.user {\n  name = 'Api', fixed_count = 2,\n  arrivals = { rate = 10 },\n}\n",
    );
    let mut p = Proc::swarmer(
        "swarmer",
        dir.path(),
        &[
            "-f",
            &path,
            "--headless",
            "-t",
            "2s",
            "-H",
            "http://127.0.0.1:9",
        ],
    );
    let status = p.wait_exit(LONG).expect("exits at once");
    assert_eq!(status.code(), Some(2), "{}", p.tail(20));
    let out = p.lines().join("\n");
    assert!(
        out.contains("bad.lua:1:") && out.contains("arrivals and fixed_count exclude each other"),
        "{out}"
    );
    assert!(!out.contains("run 1:"), "nothing started: {out}");
}

#[test]
fn the_pool_s_users_count_as_users_while_arrivals_run() {
    let _serial = serial();
    let dir = TempDir::new("arrivals-users");
    let target = DemoTarget::start(dir.path());
    // 20 a second of 300 ms each keep about 6 users busy: concurrency the
    // user count must show (it said 0 when only fixed users counted).
    let (json, _) = headless(
        &dir,
        &target,
        &script(20, 1, 50, "/slow?ms=300"),
        "4s",
        &["--csv", "out"],
    );
    let history = std::fs::read_to_string(dir.path().join("out_stats_history.csv")).unwrap();
    let users: Vec<u64> = history
        .lines()
        .skip(1)
        .filter(|l| l.contains(",Aggregated,"))
        .map(|l| l.split(',').nth(1).unwrap().parse().unwrap())
        .collect();
    let most = users.iter().copied().max().unwrap_or(0);
    assert!(
        (4..=50).contains(&most),
        "User Count of the rows: {users:?}; {json}"
    );
}

#[test]
fn a_run_of_arrival_stages_ends_by_itself_when_they_end() {
    let _serial = serial();
    let dir = TempDir::new("arrivals-stages-end");
    let target = DemoTarget::start(dir.path());
    let path = dir.write(
        "arrivals.lua",
        r#"
local Api = swarmer.user {
  name = "Api",
  arrivals = { stages = { { duration = "2s", rate = 20 }, { duration = "1s", rate = 20 } },
               pre_allocated = 2, max_users = 20 },
}
Api:task(function(self) self.http:get("/", { name = "api" }) end)
"#,
    );
    // No -t: the stages are the run's length.
    let mut p = Proc::swarmer(
        "swarmer",
        dir.path(),
        &[
            "-f",
            &path,
            "--headless",
            "--json",
            "--only-summary",
            // The line that says why the run ended is at info.
            "-L",
            "info",
            "-H",
            &target.url,
        ],
    );
    let status = p.wait_exit(LONG).expect("the run ends by itself");
    assert_eq!(status.code(), Some(0), "{}", p.tail(20));
    assert!(
        p.lines()
            .iter()
            .any(|l| l.contains("its arrival stages ended")),
        "{}",
        p.tail(20)
    );
    // About the stages' 3 s (the end is seen at a once-a-second tick).
    let window_s = run_window_s(&p);
    assert!((2.9..=4.6).contains(&window_s), "{window_s}");
    let json: serde_json::Value = serde_json::from_str(&p.stdout()).expect("json");
    // 0 to 20 a second over 2 s, then 20 for 1 s: about 40 arrivals.
    assert_rate(target.served(), 40.0 / 3.0, 3.0, 0.15, &json);
}
