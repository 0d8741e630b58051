//! End-to-end tests of the verdict for CI: the real binary against the
//! demo target on loopback port 0, with thresholds from the command line,
//! the environment, the config file and the script; the exit code, the
//! JSON `thresholds`, the JUnit file, the console table, aborting on a
//! crossed threshold, and bad expressions refused with exit 2.

mod common;

use std::time::{Duration, Instant};

use common::{DemoTarget, Proc, TempDir, serial};

const FAST: &str = "local U = swarmer.user { name = 'U', wait = swarmer.constant(0.01) }\n\
U:task(1, function(self) self.http:get('/') end)\n";

/// Requests that take 30 ms each: any p50 below that is crossed.
const SLOW: &str = "local U = swarmer.user { name = 'U', wait = swarmer.constant(0.01) }\n\
U:task(1, function(self) self.http:get('/slow?ms=30', { name = '/slow' }) end)\n";

/// Runs swarmer headless for `secs` against `target` with `extra` flags;
/// returns the process once it has exited.
fn run(
    dir: &TempDir,
    target: &DemoTarget,
    script: &str,
    extra: &[&str],
    env: &[(&str, &str)],
    secs: u32,
) -> (Proc, i32) {
    let path = dir.write("test.lua", script);
    let run_time = format!("{secs}s");
    let mut args = vec![
        "-f",
        &path,
        "--headless",
        "-u",
        "2",
        "-r",
        "100",
        "-t",
        &run_time,
        "-H",
        &target.url,
    ];
    args.extend_from_slice(extra);
    let mut p = Proc::swarmer_with_env("swarmer", dir.path(), &args, env);
    let limit = Duration::from_secs(u64::from(secs) + 60);
    let status = p
        .wait_exit(limit)
        .unwrap_or_else(|| panic!("swarmer did not exit within {limit:?}: {}", p.tail(30)));
    (p, status.code().expect("an exit code"))
}

fn json_of(p: &Proc) -> serde_json::Value {
    let out = p.stdout();
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {out}"))
}

fn thresholds(json: &serde_json::Value) -> Vec<(String, String, bool)> {
    json["thresholds"]
        .as_array()
        .expect("a thresholds list")
        .iter()
        .map(|c| {
            (
                c["scope"].as_str().unwrap().to_string(),
                c["expr"].as_str().unwrap().to_string(),
                c["ok"].as_bool().unwrap(),
            )
        })
        .collect()
}

#[test]
fn thresholds_that_hold_exit_0_from_every_source() {
    let _serial = serial();
    let dir = TempDir::new("thresholds-hold");
    let target = DemoTarget::start(dir.path());
    let config = dir.write("swarmer.toml", "thresholds = [\"rps > 0\"]\n");
    let junit = dir.path().join("junit.xml");
    let script = format!("{FAST}swarmer.thresholds {{ ['GET /'] = {{ 'requests > 0' }} }}\n");
    let (p, code) = run(
        &dir,
        &target,
        &script,
        &[
            "--config",
            &config,
            "--threshold",
            "p95 < 10s",
            "--threshold",
            "fail_ratio < 1%",
            "--json",
            "--junit",
            junit.to_str().unwrap(),
        ],
        &[],
        2,
    );
    assert_eq!(code, 0, "{}", p.tail(30));
    let json = json_of(&p);
    let got = thresholds(&json);
    let want = [
        ("Aggregated", "rps > 0", true),
        ("Aggregated", "p95 < 10s", true),
        ("Aggregated", "fail_ratio < 1%", true),
        ("GET /", "requests > 0", true),
    ];
    assert_eq!(
        got,
        want.map(|(s, e, ok)| (s.to_string(), e.to_string(), ok))
            .to_vec()
    );
    let check = &json["thresholds"][1];
    assert_eq!(
        (
            check["kind"].as_str(),
            check["unit"].as_str(),
            check["limit"].as_f64()
        ),
        (Some("threshold"), Some("ms"), Some(10_000.0))
    );
    assert!(check["observed"].as_f64().unwrap() > 0.0, "{check}");
    let xml = std::fs::read_to_string(&junit).expect("the JUnit file");
    assert_eq!(xml.matches("<testcase ").count(), 4, "{xml}");
    assert!(!xml.contains("<failure"), "{xml}");
    // The table goes to stderr beside the JSON document.
    let all = p.lines().join("\n");
    assert!(all.contains("4 of 4 checks hold"), "{all}");
}

#[test]
fn with_thresholds_failed_requests_count_only_through_them() {
    let _serial = serial();
    let dir = TempDir::new("thresholds-failures");
    let target = DemoTarget::start(dir.path());
    let failing = "local U = swarmer.user { name = 'U', wait = swarmer.constant(0.01) }\n\
U:task(1, function(self) self.http:get('/status/500') end)\n";
    let (p, code) = run(&dir, &target, failing, &[], &[], 1);
    assert_eq!(
        code,
        1,
        "without thresholds a failure fails the run: {}",
        p.tail(20)
    );
    let (p, code) = run(
        &dir,
        &target,
        failing,
        &["--threshold", "p95 < 10s"],
        &[],
        1,
    );
    assert_eq!(code, 0, "the thresholds alone decide: {}", p.tail(20));
    assert!(p.stdout().contains("1 of 1 checks hold"), "{}", p.stdout());
    let (p, code) = run(
        &dir,
        &target,
        failing,
        &["--threshold", "p95 < 10s", "--exit-code-on-error", "4"],
        &[],
        1,
    );
    assert_eq!(
        code,
        4,
        "an explicit --exit-code-on-error still counts: {}",
        p.tail(20)
    );
    let (p, code) = run(
        &dir,
        &target,
        failing,
        &["--threshold", "fail_ratio < 1%"],
        &[],
        1,
    );
    assert_eq!(code, 3, "{}", p.tail(20));
}

#[test]
fn a_crossed_threshold_exits_3_with_a_junit_failure_and_json() {
    let _serial = serial();
    let dir = TempDir::new("thresholds-crossed");
    let target = DemoTarget::start(dir.path());
    let junit = dir.path().join("junit.xml");
    let (p, code) = run(
        &dir,
        &target,
        SLOW,
        &[
            "--threshold",
            "p50 < 1ms",
            "--threshold",
            "GET /slow: failures == 0",
            "--json",
            "--junit",
            junit.to_str().unwrap(),
        ],
        &[],
        2,
    );
    assert_eq!(code, 3, "{}", p.tail(30));
    let json = json_of(&p);
    let got = thresholds(&json);
    assert_eq!(
        got,
        [
            ("Aggregated".to_string(), "p50 < 1ms".to_string(), false),
            ("GET /slow".to_string(), "failures == 0".to_string(), true)
        ]
    );
    assert!(
        json["thresholds"][0]["observed"].as_f64().unwrap() >= 30.0,
        "{json}"
    );
    let xml = std::fs::read_to_string(&junit).expect("the JUnit file");
    assert_eq!(xml.matches("<testcase ").count(), 2, "{xml}");
    assert_eq!(xml.matches("<failure ").count(), 1, "{xml}");
    assert!(xml.contains("name=\"Aggregated: p50 &lt; 1ms\""), "{xml}");
    assert!(
        xml.contains("message=\"observed ") && xml.contains("limit &lt; 1 ms\""),
        "{xml}"
    );
    let all = p.lines().join("\n");
    assert!(
        all.contains("CROSSED") && all.contains("1 of 2 checks hold: FAILED"),
        "{all}"
    );
}

#[test]
fn threshold_abort_ends_the_run_early_and_still_writes_the_outputs() {
    let _serial = serial();
    let dir = TempDir::new("thresholds-abort");
    let target = DemoTarget::start(dir.path());
    let junit = dir.path().join("junit.xml");
    let started = Instant::now();
    let (p, code) = run(
        &dir,
        &target,
        SLOW,
        &[
            "--threshold",
            "p50 < 1ms",
            "--threshold-abort",
            "--threshold-grace",
            "1s",
            "--json",
            "--junit",
            junit.to_str().unwrap(),
        ],
        &[],
        120,
    );
    let took = started.elapsed();
    assert_eq!(code, 3, "{}", p.tail(30));
    assert!(
        took < Duration::from_secs(60),
        "the 120 s run was not cut short: {took:?}"
    );
    let all = p.lines().join("\n");
    assert!(
        all.contains("threshold crossed: Aggregated: p50 < 1ms (observed "),
        "{all}"
    );
    assert!(all.contains("aborted on a crossed threshold"), "{all}");
    let json = json_of(&p);
    assert!(
        json["stats"].as_array().unwrap().len() >= 2,
        "the summary is written: {json}"
    );
    assert!(!thresholds(&json)[0].2, "crossed");
    assert!(
        std::fs::read_to_string(&junit)
            .unwrap()
            .contains("<failure ")
    );
}

#[test]
fn bad_expressions_exit_2_naming_the_expression_and_position() {
    let _serial = serial();
    let dir = TempDir::new("thresholds-bad");
    let target = DemoTarget::start(dir.path());
    let (p, code) = run(&dir, &target, FAST, &["--threshold", "p95 < 3xx"], &[], 1);
    assert_eq!(code, 2, "{}", p.tail(20));
    let all = p.lines().join("\n");
    assert!(
        all.contains("--threshold: threshold \"p95 < 3xx\": at position 8: unknown unit \"xx\""),
        "{all}"
    );
    let (p, code) = run(
        &dir,
        &target,
        FAST,
        &[],
        &[("SWARMER_THRESHOLDS", "p95 < 1s;latency < 1s")],
        1,
    );
    assert_eq!(code, 2, "{}", p.tail(20));
    let all = p.lines().join("\n");
    assert!(
        all.contains("\"latency < 1s\": at position 1: unknown figure"),
        "{all}"
    );
    let script = format!("{FAST}swarmer.thresholds {{ 'p99 <= 1 fortnight' }}\n");
    let (p, code) = run(&dir, &target, &script, &[], &[], 1);
    assert_eq!(code, 2, "{}", p.tail(20));
    let all = p.lines().join("\n");
    assert!(
        all.contains(
            "test.lua:3: swarmer.thresholds: threshold \"p99 <= 1 fortnight\": at position 10"
        ),
        "{all}"
    );
    let (p, code) = run(&dir, &target, FAST, &["--threshold-abort"], &[], 1);
    assert_eq!(code, 2, "{}", p.tail(20));
    let path = dir.write("test.lua", FAST);
    let mut web = Proc::swarmer(
        "swarmer",
        dir.path(),
        &["-f", &path, "--web-port", "0", "--junit", "j.xml"],
    );
    let status = web
        .wait_exit(Duration::from_secs(30))
        .expect("refused at once");
    assert_eq!(status.code(), Some(2));
    assert!(
        web.lines().join("\n").contains("--junit needs --headless"),
        "{}",
        web.tail(10)
    );
    assert_eq!(target.served(), 0, "no run started");
}

#[test]
fn a_headless_master_judges_what_its_worker_processes_report() {
    let _serial = serial();
    let dir = TempDir::new("thresholds-master");
    let target = DemoTarget::start(dir.path());
    let port = common::free_port().to_string();
    let (p, code) = run(
        &dir,
        &target,
        SLOW,
        &[
            "--master",
            "--master-bind-port",
            &port,
            "--scaler",
            "local",
            "--workers",
            "1",
            "--threshold",
            "p50 < 1ms",
            "--threshold",
            "/slow: requests > 0",
            "--json",
        ],
        &[],
        2,
    );
    assert_eq!(code, 3, "{}", p.tail(30));
    let json = json_of(&p);
    assert_eq!(
        thresholds(&json),
        [
            ("Aggregated".to_string(), "p50 < 1ms".to_string(), false),
            ("/slow".to_string(), "requests > 0".to_string(), true),
        ]
    );
    assert!(
        json["thresholds"][1]["observed"].as_f64().unwrap() > 0.0,
        "{json}"
    );
}
