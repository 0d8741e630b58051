//! End-to-end tests of distributed mode through failures of the network
//! and of the master: a cut that passes no bytes (a relay in this test),
//! a master killed and started again, and the exact totals that must hold
//! through all of it (every request the target served counted once).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::cluster::{Master, worker};
use common::relay::Relay;
use common::{DemoTarget, Proc, TempDir, serial};

const SCRIPT: &str = r#"
local U = swarmer.user { name = "U", wait = swarmer.constant(0.05) }
U:task(1, function(self) self.http:get("/") end)
"#;

const LONG: Duration = Duration::from_secs(30);

fn script(dir: &TempDir) -> String {
    dir.write("users.lua", SCRIPT)
}

/// Stops a headless master and returns its `--json` output.
fn finish(master: &mut Master) -> serde_json::Value {
    master.proc.signal("TERM");
    let status = master
        .proc
        .wait_exit(LONG)
        .expect("the master exits after SIGTERM");
    assert!(status.success(), "master exit status {status:?}");
    serde_json::from_str(&master.proc.stdout()).expect("the master prints its --json summary")
}

fn total_requests(json: &serde_json::Value) -> u64 {
    let stats = json["stats"].as_array().expect("stats array");
    let total = stats
        .iter()
        .find(|e| e["name"] == "Aggregated")
        .expect("an Aggregated row");
    total["num_requests"].as_u64().expect("num_requests")
}

/// Leaves gracefully (SIGTERM) and checks the exit code.
fn leave(w: &mut Proc) {
    w.signal("TERM");
    let status = w.wait_exit(LONG).expect("the worker exits after SIGTERM");
    assert_eq!(status.code(), Some(0), "{} exit status", w.name);
}

#[test]
fn totals_equal_what_the_target_served_when_workers_leave_gracefully() {
    let _serial = serial();
    let dir = TempDir::new("exact");
    let script = script(&dir);
    let target = DemoTarget::start(dir.path());
    let mut master = Master::start(
        dir.path(),
        &[
            "-f",
            &script,
            "--headless",
            "--json",
            "--only-summary",
            "-H",
            &target.url,
            "--expect-workers",
            "3",
            "-u",
            "15",
            "-r",
            "15",
            "--stop-timeout",
            "5s",
        ],
    );
    // Workers need no script: the master sends its own.
    let mut workers: Vec<Proc> = ["w1", "w2", "w3"]
        .iter()
        .map(|id| worker(dir.path(), master.port, id, &["--cores", "1"]))
        .collect();
    master
        .proc
        .expect_line(LONG, "all 15 users spawned on 3 workers");
    std::thread::sleep(Duration::from_secs(2));
    // One leaves mid-run (its users go to the others), then the rest.
    leave(&mut workers[0]);
    std::thread::sleep(Duration::from_secs(1));
    leave(&mut workers[1]);
    leave(&mut workers[2]);
    let served = target.served();
    let json = finish(&mut master);
    assert!(served > 100, "the target served only {served}");
    assert_eq!(
        total_requests(&json),
        served,
        "master totals vs. target: {json}"
    );
    assert_eq!(json["lost_workers"], 0, "{json}");
}

#[test]
fn a_network_cut_loses_the_worker_and_it_rejoins_when_the_network_is_back() {
    let _serial = serial();
    let dir = TempDir::new("cut");
    let script = script(&dir);
    let target = DemoTarget::start(dir.path());
    // Fast heartbeats: lost after 3 × 200 ms of silence.
    let mut master = Master::start(
        dir.path(),
        &[
            "-f",
            &script,
            "--headless",
            "--json",
            "--only-summary",
            "-H",
            &target.url,
            "--expect-workers",
            "2",
            "-u",
            "10",
            "-r",
            "20",
            "--stop-timeout",
            "5s",
            "--heartbeat-interval",
            "200ms",
        ],
    );
    let relay = Relay::start(SocketAddr::from(([127, 0, 0, 1], master.port)));
    let mut direct = worker(dir.path(), master.port, "direct", &["--cores", "1"]);
    let mut cut = worker(dir.path(), relay.port(), "cut", &["--cores", "1"]);
    master
        .proc
        .expect_line(LONG, "all 10 users spawned on 2 workers");

    let mark = master.proc.mark();
    relay.pause();
    let paused = Instant::now();
    let (_, lost) = master
        .proc
        .expect_line_from(mark, Duration::from_secs(5), "worker cut lost");
    assert!(
        lost.contains("silent for over") && lost.ends_with("1 live"),
        "{lost}"
    );
    // The cut worker notices too, and stops its users.
    cut.expect_line_from(0, Duration::from_secs(5), "lost the master");
    master.expect_summary_from(mark, 1, 10, LONG);
    std::thread::sleep(Duration::from_secs(1).saturating_sub(paused.elapsed()));

    let mark = master.proc.mark();
    relay.resume();
    let (_, back) =
        master
            .proc
            .expect_line_from(mark, Duration::from_secs(10), "worker cut rejoined");
    assert!(back.ends_with("2 live"), "{back}");
    master.expect_summary_from(mark, 2, 10, LONG);
    // Exactly two at every moment, the cut one never twice.
    assert!(master.live_counts_from(0).iter().all(|&n| n <= 2));

    // The reports held during the cut were sent again and merged once, so
    // even through the cut the totals are exact.
    std::thread::sleep(Duration::from_secs(1));
    leave(&mut direct);
    leave(&mut cut);
    let served = target.served();
    let json = finish(&mut master);
    assert_eq!(
        total_requests(&json),
        served,
        "master totals vs. target: {json}"
    );
    assert_eq!(json["lost_workers"], 1, "{json}");
}

#[test]
fn workers_rejoin_a_restarted_master_and_its_next_run_uses_them_all() {
    let _serial = serial();
    let dir = TempDir::new("restart");
    let script = script(&dir);
    let target = DemoTarget::start(dir.path());
    let args = |users: &'static str| {
        vec![
            "-f".to_string(),
            script.clone(),
            "--headless".into(),
            "--json".into(),
            "--only-summary".into(),
            "-H".into(),
            target.url.clone(),
            "--expect-workers".into(),
            "2".into(),
            "-u".into(),
            users.into(),
            "-r".into(),
            "20".into(),
            "--stop-timeout".into(),
            "5s".into(),
        ]
    };
    let first_args = args("4");
    let first_args: Vec<&str> = first_args.iter().map(String::as_str).collect();
    let mut first = Master::start(dir.path(), &first_args);
    let port = first.port;
    let _workers: Vec<Proc> = ["w1", "w2"]
        .iter()
        .map(|id| worker(dir.path(), port, id, &["--cores", "1"]))
        .collect();
    first
        .proc
        .expect_line(LONG, "all 4 users spawned on 2 workers");
    first.proc.kill9();

    // A new master on the same port; the workers find it by themselves.
    let restarted = Instant::now();
    let second_args = args("6");
    let mut second_args: Vec<&str> = second_args.iter().map(String::as_str).collect();
    second_args.extend_from_slice(&["-t", "3s"]);
    let mut second = Master::start_on(dir.path(), port, &second_args);
    second.expect_live_from(0, 2, Duration::from_secs(10));
    let rejoin = restarted.elapsed();
    assert!(
        rejoin < Duration::from_secs(8),
        "workers took {rejoin:?} to rejoin"
    );
    let (_, spawned) = second
        .proc
        .expect_line_from(0, LONG, "all 6 users spawned on 2 workers");
    assert!(
        spawned.contains("w1: 3") && spawned.contains("w2: 3"),
        "{spawned}"
    );
    let status = second
        .proc
        .wait_exit(LONG)
        .expect("the run time ends the run");
    assert!(status.success(), "{status:?}");
    let json: serde_json::Value =
        serde_json::from_str(&second.proc.stdout()).expect("--json summary");
    assert_eq!(json["worker_count"], 2, "{json}");
    assert!(total_requests(&json) > 0, "{json}");
}

#[test]
fn a_worker_cut_off_from_its_master_still_leaves_at_once_on_sigterm() {
    let _serial = serial();
    let dir = TempDir::new("cutterm");
    let script = script(&dir);
    let master = Master::start(dir.path(), &["-f", &script, "--headless"]);
    let relay = Relay::start(SocketAddr::from(([127, 0, 0, 1], master.port)));
    relay.pause();
    // Connected to the relay, waiting for a welcome that cannot come.
    let mut w = worker(dir.path(), relay.port(), "stuck", &["--cores", "1"]);
    w.expect_line(LONG, "connected to the master");
    let termed = Instant::now();
    w.signal("TERM");
    let status = w
        .wait_exit(Duration::from_secs(5))
        .expect("the worker exits");
    assert_eq!(status.code(), Some(0));
    assert!(
        termed.elapsed() < Duration::from_secs(2),
        "took {:?}",
        termed.elapsed()
    );
}

#[test]
fn workers_of_a_headless_master_exit_when_its_run_is_over() {
    let _serial = serial();
    let dir = TempDir::new("headless-end");
    let script = script(&dir);
    let target = DemoTarget::start(dir.path());
    let mut master = Master::start(
        dir.path(),
        &[
            "-f",
            &script,
            "--headless",
            "--only-summary",
            "-H",
            &target.url,
            "--expect-workers",
            "2",
            "-u",
            "4",
            "-r",
            "10",
            "-t",
            "2s",
        ],
    );
    let mut workers: Vec<Proc> = ["w1", "w2"]
        .iter()
        .map(|id| worker(dir.path(), master.port, id, &["--cores", "1"]))
        .collect();
    let status = master
        .proc
        .wait_exit(LONG)
        .expect("the headless master ends");
    assert!(status.code().is_some(), "{}", master.proc.tail(20));
    for w in &mut workers {
        let status = w.wait_exit(Duration::from_secs(10));
        assert_eq!(
            status.and_then(|s| s.code()),
            Some(0),
            "a worker leaves with its master's run, as Locust's do: {}",
            w.tail(20)
        );
    }
}
