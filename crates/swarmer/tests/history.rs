//! The run history end to end: the real binary against the demo target on
//! port 0, recording into a SQLite file and into a real PostgreSQL server
//! (one test body over both), `swarmer history list/show/compare` in text
//! and JSON, baselines from a JSON file and from the history with
//! `--max-regression` (exit 3), and bad input (exit 2 before the run).

mod common;
#[path = "../../history/tests/support/postgres.rs"]
mod postgres;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{DemoTarget, TempDir, text, wait_with_deadline};

const BIN: &str = env!("CARGO_BIN_EXE_swarmer");

/// Hits one fast page; the file name (`api.lua`) is what runs share.
const FAST: &str = r#"
local U = swarmer.user { name = "U", wait = swarmer.constant(0.01) }
U:task(function(self) self.http:get("/item/1", { name = "/item" }) end)
"#;

/// The regression tests' fast run: every request takes at least 20 ms, so
/// a loaded machine's few milliseconds of noise stay far inside the limit.
const STEADY: &str = r#"
local U = swarmer.user { name = "U", wait = swarmer.constant(0.01) }
U:task(function(self) self.http:get("/slow?ms=20", { name = "/item" }) end)
"#;

/// The same test, gone slow: every request takes 1 s, far past six times
/// the fast run's p95 even when a busy machine stretches that run.
const SLOW: &str = r#"
local U = swarmer.user { name = "U", wait = swarmer.constant(0.01) }
U:task(function(self) self.http:get("/slow?ms=1000", { name = "/item" }) end)
"#;

fn swarmer(dir: &Path, args: &[&str]) -> Output {
    let child = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        // Never the real per-user history.
        .env("XDG_STATE_HOME", dir.join("state"))
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn swarmer");
    wait_with_deadline(child, Duration::from_secs(60))
}

/// A short headless run of `script` recorded in `history`.
fn headless(dir: &Path, script: &str, target: &str, history: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "-f",
        script,
        "--headless",
        "-u",
        "2",
        "-r",
        "20",
        "-t",
        "2s",
        "-H",
        target,
        "--history",
        history,
    ];
    args.extend_from_slice(extra);
    swarmer(dir, &args)
}

fn json(out: &Output) -> serde_json::Value {
    let stdout = text(&out.stdout);
    serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\n{}", text(&out.stderr)))
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

fn explain(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// `swarmer history ARGS --history HISTORY`.
fn read(dir: &Path, history: &str, args: &[&str]) -> Output {
    swarmer(dir, &[args, &["--history", history]].concat())
}

/// Record two runs, then read them back every way.
fn record_list_show_compare(history: &str) {
    let dir = TempDir::new("history-e2e");
    let target = DemoTarget::start(dir.path());
    let script = dir.write("api.lua", FAST);
    for _ in 0..2 {
        let run = headless(dir.path(), &script, &target.url, history, &[]);
        assert_eq!(code(&run), 0, "{}", explain(&run));
        let said = text(&run.stderr);
        assert!(said.contains("run recorded in the history as #"), "{said}");
    }
    let (a, b) = check_list(dir.path(), history, &target.url);
    check_show(dir.path(), history, a);
    check_compare(dir.path(), history, a, b);
    let missing = read(dir.path(), history, &["history", "show", "99999"]);
    assert_eq!(code(&missing), 2, "{}", explain(&missing));
    let said = text(&missing.stderr);
    assert!(said.contains("no run #99999"), "{said}");
}

/// Both runs listed, newest first, in JSON and as a table; their ids.
fn check_list(dir: &Path, history: &str, target: &str) -> (i64, i64) {
    let list = read(dir, history, &["history", "list", "--json"]);
    assert_eq!(code(&list), 0, "{}", explain(&list));
    let runs = json(&list);
    let runs = runs.as_array().expect("a list");
    assert_eq!(runs.len(), 2, "{runs:?}");
    let ids: Vec<i64> = runs.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert!(ids[0] > ids[1], "newest first");
    for run in runs {
        assert_eq!(run["script"], "api.lua");
        assert_eq!(run["host"], target);
        assert_eq!(run["verdict"], "passed");
        assert_eq!(run["profile"]["users"], 2);
        assert!(run["requests"].as_u64().unwrap() > 0);
        assert!(run["rps"].as_f64().unwrap() > 0.0);
    }
    let table = text(&read(dir, history, &["history", "list"]).stdout);
    let columns = [
        "Id",
        "When",
        "Script",
        "Host",
        "Users/profile",
        "RPS",
        "p95",
        "Verdict",
    ];
    for needle in columns {
        assert!(table.contains(needle), "{needle} in {table}");
    }
    assert!(table.contains("2 users @ 20/s, 2s"), "{table}");
    (ids[1], ids[0])
}

/// One run's entries, per-second history and script hash.
fn check_show(dir: &Path, history: &str, id: i64) {
    let id = id.to_string();
    let run = json(&read(dir, history, &["history", "show", &id, "--json"]));
    let entries = run["entries"].as_array().expect("entries");
    let names: Vec<_> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["/item", "Aggregated"]);
    assert_eq!(entries[0]["method"], "GET");
    let intervals = run["intervals"].as_array().unwrap();
    assert!(!intervals.is_empty(), "per-second history kept");
    assert_eq!(run["script_hash"].as_str().unwrap().len(), 64);
    let shown = read(dir, history, &["history", "show", &id]);
    assert!(
        text(&shown.stdout).contains("GET /item"),
        "{}",
        explain(&shown)
    );
}

/// Per-entry deltas with percent change, in JSON and as text.
fn check_compare(dir: &Path, history: &str, a: i64, b: i64) {
    let (a, b) = (a.to_string(), b.to_string());
    let cmp = json(&read(
        dir,
        history,
        &["history", "compare", &a, &b, "--json"],
    ));
    let total = cmp["entries"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(total["name"], "Aggregated");
    let figures = total["figures"].as_array().unwrap();
    let requests = figures.iter().find(|f| f["figure"] == "requests").unwrap();
    let (ra, rb) = (
        requests["a"].as_f64().unwrap(),
        requests["b"].as_f64().unwrap(),
    );
    assert_eq!(requests["delta"].as_f64().unwrap(), rb - ra);
    let pct = requests["percent"].as_f64().unwrap();
    assert!((pct - (rb - ra) / ra * 100.0).abs() < 1e-6);
    let shown = text(&read(dir, history, &["history", "compare", &a, &b]).stdout);
    assert!(
        shown.contains("GET /item") && shown.contains("Change"),
        "{shown}"
    );
    assert!(shown.contains(&format!("{pct:+.1}%")), "{shown}");
}

#[test]
fn sqlite_history_records_lists_shows_and_compares() {
    let dir = TempDir::new("history-sqlite");
    let db = dir.path().join("runs.db");
    record_list_show_compare(db.to_str().unwrap());
}

#[test]
fn postgres_history_records_lists_shows_and_compares() {
    let Some(pg) = postgres::start() else { return };
    record_list_show_compare(&pg.url);
}

/// The regression limits of these tests: generous for p95 (a 20 ms run
/// still varies on a busy machine), far below the slow script's 1 s.
const LIMITS: [&str; 2] = ["--max-regression", "p95=500%,fail_ratio=+1%"];

/// Two copies of one test (the same file name), the second gone slow, with
/// a fast run recorded as `base.json` and in `runs.db`.
struct Regress {
    dir: TempDir,
    target: DemoTarget,
    fast: String,
    slow: String,
    db: String,
    base_file: String,
}

impl Regress {
    fn new() -> Regress {
        let dir = TempDir::new("history-regress");
        let target = DemoTarget::start(dir.path());
        let db = dir.path().join("runs.db").to_string_lossy().into_owned();
        std::fs::create_dir_all(dir.path().join("fast")).unwrap();
        std::fs::create_dir_all(dir.path().join("slow")).unwrap();
        let fast = dir.write("fast/api.lua", STEADY);
        let slow = dir.write("slow/api.lua", SLOW);
        let base = headless(dir.path(), &fast, &target.url, &db, &["--json"]);
        assert_eq!(code(&base), 0, "{}", explain(&base));
        let base_file = dir.write("base.json", &text(&base.stdout));
        Regress {
            dir,
            target,
            fast,
            slow,
            db,
            base_file,
        }
    }

    /// A run of `script` judged against `baseline` with [`LIMITS`].
    fn judged(&self, script: &str, baseline: &str, json_out: bool) -> Output {
        let mut extra = vec!["--baseline", baseline, LIMITS[0], LIMITS[1]];
        if json_out {
            extra.push("--json");
        }
        headless(self.dir.path(), script, &self.target.url, &self.db, &extra)
    }
}

#[test]
fn regression_against_a_json_file_and_the_history_exits_3() {
    let r = Regress::new();
    // Against the file: the same speed holds, the slow one is caught.
    let same = r.judged(&r.fast, &r.base_file, true);
    assert_eq!(code(&same), 0, "{}", explain(&same));
    let checks = json(&same)["regressions"].clone();
    let checks = checks.as_array().unwrap();
    assert_eq!(checks.len(), 2, "{checks:?}");
    assert!(checks.iter().all(|c| c["ok"] == true), "{checks:?}");

    let worse = r.judged(&r.slow, &r.base_file, true);
    assert_eq!(code(&worse), 3, "{}", explain(&worse));
    let checks = json(&worse)["regressions"].clone();
    let p95 = &checks[0];
    assert_eq!(p95["kind"], "regression");
    assert_eq!(p95["expr"], "p95 <= +500% vs baseline");
    assert_eq!(p95["scope"], "Aggregated");
    assert_eq!(p95["ok"], false);
    assert!(p95["observed"].as_f64().unwrap() >= 1000.0, "{p95}");
    assert!(p95["limit"].as_f64().unwrap() < 1000.0, "{p95}");
    assert_eq!(checks[1]["ok"], true, "no failures either way: {checks}");
    against_the_history(&r);
}

/// `last-passed` skips the failed slow run just recorded and finds a fast
/// one; `last` is the newest run, failed or not.
fn against_the_history(r: &Regress) {
    let again = r.judged(&r.slow, "last-passed", false);
    assert_eq!(code(&again), 3, "{}", explain(&again));
    let summary = text(&again.stdout);
    for needle in ["Against baseline #", "p95 <= +500% vs baseline", "CROSSED"] {
        assert!(summary.contains(needle), "{needle:?} in {summary}");
    }
    let dir = r.dir.path();
    let list = json(&read(dir, &r.db, &["history", "list", "--json"]));
    let list = list.as_array().unwrap();
    let verdicts: Vec<_> = list
        .iter()
        .map(|r| r["verdict"].as_str().unwrap())
        .collect();
    assert_eq!(verdicts, ["failed", "failed", "passed", "passed"]);
    let failed_id = list[0]["id"].as_i64().unwrap().to_string();
    let shown = json(&read(
        dir,
        &r.db,
        &["history", "show", &failed_id, "--json"],
    ));
    assert_eq!(
        shown["checks"][0]["ok"], false,
        "checks are recorded: {shown}"
    );

    // The newest run is itself slow, so the slow run holds against it.
    let last = r.judged(&r.slow, "last", false);
    assert_eq!(code(&last), 0, "{}", explain(&last));
}

#[test]
fn bad_history_or_baseline_is_exit_2_before_the_run() {
    let dir = TempDir::new("history-bad");
    let target = DemoTarget::start(dir.path());
    let script = dir.write("api.lua", FAST);
    let corrupt = dir.write("corrupt.db", &"not a database ".repeat(300));
    let not_json = dir.write("notes.txt", "hello");
    let other_json = dir.write("other.json", r#"{"hello": "world"}"#);
    let db = dir.path().join("runs.db");
    let db = db.to_str().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let refused = format!("postgres://me:secret@127.0.0.1:{port}/runs");
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--history", &corrupt], "not a database"),
        (
            vec!["--history", &refused],
            "cannot open the run history at postgres://me:***@",
        ),
        (vec!["--history", "mysql://h/db"], "unsupported scheme"),
        (
            vec!["--history", db, "--baseline", &not_json],
            "notes.txt: not a swarmer JSON output",
        ),
        (
            vec!["--history", db, "--baseline", &other_json],
            "other.json: not a swarmer JSON output",
        ),
        (
            vec!["--history", db, "--baseline", "missing.json"],
            "missing.json: cannot read it",
        ),
        (vec!["--history", db, "--baseline", "42"], "no run #42"),
        (
            vec!["--history", db, "--baseline", "last"],
            "no recorded run of api.lua",
        ),
        (
            vec!["--no-history", "--baseline", "last"],
            "the history, which is off",
        ),
        (
            vec!["--history", db, "--max-regression", "p95=10%"],
            "needs --baseline",
        ),
        (
            vec![
                "--history",
                db,
                "--baseline",
                "last",
                "--max-regression",
                "p42=1%",
            ],
            "unknown figure",
        ),
    ];
    for (extra, needle) in cases {
        let mut args = vec![
            "-f",
            &script,
            "--headless",
            "-u",
            "1",
            "-r",
            "1",
            "-t",
            "1s",
            "-H",
            &target.url,
        ];
        args.extend(extra.iter().copied());
        let out = swarmer(dir.path(), &args);
        assert_eq!(code(&out), 2, "{extra:?}: {}", explain(&out));
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains(needle),
            "{extra:?}: expected {needle:?} in {stderr}"
        );
        assert!(
            !stderr.contains("secret"),
            "{extra:?}: the password shows: {stderr}"
        );
    }
    assert_eq!(target.served(), 0, "no run started");
}

#[test]
fn an_unusable_default_location_runs_without_history() {
    let dir = TempDir::new("history-default");
    let target = DemoTarget::start(dir.path());
    let script = dir.write("api.lua", FAST);
    // A state "directory" that is a file: as unwritable as a read-only
    // home in a container.
    let state = dir.write("state-is-a-file", "");
    let args = [
        "-f",
        &script,
        "--headless",
        "-u",
        "1",
        "-r",
        "10",
        "-t",
        "1s",
        "-H",
        &target.url,
    ];
    let child = Command::new(BIN)
        .args(args)
        .current_dir(dir.path())
        .env("XDG_STATE_HOME", &state)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn swarmer");
    let out = wait_with_deadline(child, Duration::from_secs(60));
    assert_eq!(code(&out), 0, "{}", explain(&out));
    let said = text(&out.stderr);
    assert!(
        said.contains("the run history is off: cannot open"),
        "{said}"
    );
    assert!(target.served() > 0, "the run ran");
    // Asked for explicitly, the same place is a usage error.
    let history = format!("{state}/history.db");
    let out = swarmer(dir.path(), &[&args[..], &["--history", &history]].concat());
    assert_eq!(code(&out), 2, "{}", explain(&out));
}

#[test]
fn a_database_lost_mid_run_loses_no_output() {
    let Some(mut pg) = postgres::start() else {
        return;
    };
    let dir = TempDir::new("history-lost");
    let target = DemoTarget::start(dir.path());
    let script = dir.write("api.lua", FAST);
    let csv = dir.path().join("out");
    let child = Command::new(BIN)
        .args([
            "-f",
            &script,
            "--headless",
            "-u",
            "2",
            "-r",
            "20",
            "-t",
            "3s",
            "-H",
            &target.url,
        ])
        .args([
            "--history",
            &pg.url,
            "--json",
            "--csv",
            csv.to_str().unwrap(),
        ])
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn swarmer");
    // The run is under way once the target serves it; then the database goes.
    let served = common::poll(Duration::from_secs(20), || {
        (target.served() > 0).then_some(())
    });
    assert!(served.is_some(), "the run never started");
    pg.kill();
    let out = wait_with_deadline(child, Duration::from_secs(60));
    assert_eq!(code(&out), 0, "the run itself passed: {}", explain(&out));
    assert!(
        text(&out.stderr).contains("the run was not recorded"),
        "{}",
        explain(&out)
    );
    let summary = json(&out);
    assert!(summary["stats"].as_array().unwrap().len() >= 2, "{summary}");
    let stats_csv = std::fs::read_to_string(dir.path().join("out_stats.csv")).unwrap();
    assert!(stats_csv.contains("/item"), "{stats_csv}");
}

/// The web UI's address from its banner line.
fn web_url(proc: &common::Proc) -> String {
    let line = proc.expect_line(Duration::from_secs(30), "web UI at ");
    let url = line.split("web UI at ").nth(1).expect("address");
    url.split_whitespace()
        .next()
        .unwrap()
        .trim_end_matches('/')
        .to_string()
}

#[test]
fn ui_runs_are_recorded_served_by_the_api_and_survive_a_restart() {
    let dir = TempDir::new("history-web");
    let target = DemoTarget::start(dir.path());
    let script = dir.write("api.lua", FAST);
    let db = dir.path().join("runs.db");
    let db = db.to_str().unwrap();
    let state = dir.path().join("state");
    let env = [("XDG_STATE_HOME", state.to_str().unwrap())];
    let web = [
        "--web-host",
        "127.0.0.1",
        "--web-port",
        "0",
        "--history",
        db,
    ];
    // Autostarted with no run time: the run goes on until the master quits,
    // which stops it and records it on the way out.
    let mut first = common::Proc::swarmer_with_env(
        "master-1",
        dir.path(),
        &[
            &[
                "-f",
                &script,
                "-H",
                &target.url,
                "--autostart",
                "-u",
                "2",
                "-r",
                "20",
            ],
            &web[..],
        ]
        .concat(),
        &env,
    );
    let url = web_url(&first);
    let busy = common::poll(Duration::from_secs(30), || {
        let state = common::get_json(&format!("{url}/api/v1/state"));
        (state["num_requests"].as_u64().unwrap_or(0) > 0).then_some(())
    });
    assert!(busy.is_some(), "the autostarted run sends requests");
    let none_yet = common::get_json(&format!("{url}/api/v1/history"));
    assert_eq!(
        none_yet["runs"],
        serde_json::json!([]),
        "not recorded while running"
    );
    first.signal("TERM");
    assert!(
        first.wait_exit(Duration::from_secs(30)).is_some(),
        "the master quits"
    );

    let second = common::Proc::swarmer_with_env(
        "master-2",
        dir.path(),
        &[&["-f", &script], &web[..]].concat(),
        &env,
    );
    let url = web_url(&second);
    let list = common::get_json(&format!("{url}/api/v1/history"));
    assert_eq!(list["recording"], true);
    assert!(
        list["points"].is_array(),
        "the charts' points are still there: {list}"
    );
    let runs = list["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1, "the run stopped by quitting is kept: {list}");
    let id = runs[0]["id"].as_i64().unwrap();
    assert_eq!(runs[0]["script"], "api.lua");
    assert!(runs[0]["requests"].as_u64().unwrap() > 0);

    let run = common::get_json(&format!("{url}/api/v1/history/{id}"));
    assert_eq!(
        run["entries"].as_array().unwrap().last().unwrap()["name"],
        "Aggregated"
    );
    assert!(!run["intervals"].as_array().unwrap().is_empty());
    let cmp = common::get_json(&format!("{url}/api/v1/history/compare?a={id}&b={id}"));
    assert_eq!(cmp["a"]["id"], id);
    assert!(cmp["entries"].as_array().unwrap().len() >= 2, "{cmp}");
    let (code, body) = common::http_get(&format!("{url}/api/v1/history/{}", id + 100)).unwrap();
    assert_eq!(code, 404, "{body}");
    let (code, body) = common::http_get(&format!("{url}/api/v1/history/compare?a=x&b=1")).unwrap();
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("expected a run id"), "{body}");
}
