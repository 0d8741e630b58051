//! End-to-end tests of the master's membership through churn: real
//! master and worker processes on loopback, workers killed, stopped and
//! started while a headless run goes on, and the master's count checked at
//! every step from its logs and its final `--json`.
//!
//! The count must be exact at every moment: this is where Locust's master
//! said 6 workers when 3 existed.

mod common;

use std::time::{Duration, Instant};

use common::cluster::{Master, live_in, lost_in, users_in, worker};
use common::{DemoTarget, Proc, TempDir, serial};

/// Light users: ten requests a second each, so several workers and a
/// target share two cores without skewing timings.
const SCRIPT: &str = r#"
local U = swarmer.user { name = "U", wait = swarmer.constant(0.1) }
U:task(1, function(self) self.http:get("/") end)
"#;

const LONG: Duration = Duration::from_secs(30);

/// A headless master (no run time: it runs until told to stop) aiming at
/// a fresh demo target, and its workers, one core each.
struct Cluster {
    dir: TempDir,
    _target: DemoTarget,
    master: Master,
    workers: Vec<Proc>,
}

impl Cluster {
    fn start(label: &str, ids: &[&str], users: u32, rate: u32, extra: &[&str]) -> Cluster {
        let dir = TempDir::new(label);
        let script = dir.write("users.lua", SCRIPT);
        let target = DemoTarget::start(dir.path());
        let (expect, users, rate) = (ids.len().to_string(), users.to_string(), rate.to_string());
        let mut args = vec![
            "-f",
            &script,
            "--headless",
            "--json",
            "--only-summary",
            "-H",
            &target.url,
            "--expect-workers",
            &expect,
            "-u",
            &users,
            "-r",
            &rate,
            "--stop-timeout",
            "5s",
        ];
        args.extend_from_slice(extra);
        let master = Master::start(dir.path(), &args);
        let workers = ids
            .iter()
            .map(|id| worker(dir.path(), master.port, id, &["--cores", "1"]))
            .collect();
        Cluster {
            dir,
            _target: target,
            master,
            workers,
        }
    }

    fn add_worker(&mut self, id: &str) -> usize {
        self.workers.push(worker(
            self.dir.path(),
            self.master.port,
            id,
            &["--cores", "1"],
        ));
        self.workers.len() - 1
    }

    /// Stops the master (which stops the run and waits for the workers'
    /// final reports) and returns its `--json` output.
    fn finish(&mut self) -> serde_json::Value {
        self.master.proc.signal("TERM");
        let status = self
            .master
            .proc
            .wait_exit(LONG)
            .expect("the master exits after SIGTERM");
        assert!(status.success(), "master exit status {status:?}");
        serde_json::from_str(&self.master.proc.stdout())
            .expect("the master prints its --json summary")
    }
}

#[test]
fn kill_9_and_sigterm_keep_the_count_exact_and_the_users_at_target() {
    let _serial = serial();
    let mut c = Cluster::start("kill", &["w1", "w2", "w3"], 30, 30, &[]);
    c.master
        .proc
        .expect_line(LONG, "all 30 users spawned on 3 workers");

    // kill -9: no goodbye. The master counts 2 within 4 s and gives the
    // lost worker's users to the other two.
    let mark = c.master.proc.mark();
    let killed = Instant::now();
    c.workers[2].kill9();
    c.master.expect_live_from(mark, 2, Duration::from_secs(4));
    assert!(
        killed.elapsed() < Duration::from_secs(4),
        "took {:?}",
        killed.elapsed()
    );
    let (_, lost) = c.master.proc.expect_line_from(mark, LONG, "worker w3 lost");
    assert!(lost.ends_with("2 live"), "{lost}");
    c.master
        .expect_summary_from(mark, 2, 30, Duration::from_secs(10));

    // SIGTERM: a graceful leave, gone from the count within 1 s, exit 0.
    let mark = c.master.proc.mark();
    let termed = Instant::now();
    c.workers[1].signal("TERM");
    c.master
        .proc
        .expect_line_from(mark, Duration::from_secs(1), "worker w2 left; 1 live");
    assert!(
        termed.elapsed() < Duration::from_secs(1),
        "took {:?}",
        termed.elapsed()
    );
    let status = c.workers[1]
        .wait_exit(Duration::from_secs(10))
        .expect("w2 exits");
    assert_eq!(status.code(), Some(0), "w2 exit status");
    c.master
        .expect_summary_from(mark, 1, 30, Duration::from_secs(10));

    // No line ever counted more workers than were alive.
    assert!(c.master.live_counts_from(0).iter().all(|&n| n <= 3));
    let json = c.finish();
    assert_eq!(json["worker_count"], 1, "{json}");
    assert_eq!(
        json["lost_workers"], 1,
        "only the killed worker was lost: {json}"
    );
    assert!(
        json["stats"][0]["num_requests"].as_u64().unwrap_or(0) > 0,
        "{json}"
    );
}

#[test]
fn churn_of_two_to_one_to_three_counts_exactly_three() {
    let _serial = serial();
    let mut c = Cluster::start("churn", &["w1", "w2"], 6, 60, &[]);
    c.master
        .proc
        .expect_line(LONG, "all 6 users spawned on 2 workers");

    // Downscale to 1 and at once upscale to 3, as a Deployment does.
    let mark = c.master.proc.mark();
    c.workers[1].signal("TERM");
    c.add_worker("w3");
    c.add_worker("w4");
    assert_eq!(c.workers[1].wait_exit(LONG).and_then(|s| s.code()), Some(0));
    c.master.expect_summary_from(mark, 3, 6, LONG);
    for id in ["w3", "w4"] {
        c.master
            .proc
            .expect_line_from(mark, LONG, &format!("worker {id} joined"));
    }
    c.master.proc.expect_line_from(mark, LONG, "worker w2 left");
    // A few heartbeats later the count is still exactly 3, never more.
    let settled = c.master.proc.mark();
    std::thread::sleep(Duration::from_secs(3));
    let counts = c.master.live_counts_from(mark);
    assert!(counts.iter().all(|&n| n <= 3), "{counts:?}");
    assert_eq!(c.master.live(), Some(3));
    assert!(c.master.live_counts_from(settled).iter().all(|&n| n == 3));

    // A pod restarted under the same name (kill -9, then a new process
    // with the same id) is one worker, not two.
    let mark = c.master.proc.mark();
    c.workers[2].kill9();
    c.add_worker("w3");
    c.master
        .proc
        .expect_line_from(mark, LONG, "worker w3 rejoined");
    c.master.expect_summary_from(mark, 3, 6, LONG);
    assert!(c.master.live_counts_from(mark).iter().all(|&n| n <= 3));
    let json = c.finish();
    assert_eq!(json["worker_count"], 3, "{json}");
}

#[test]
fn a_second_live_process_with_the_same_id_replaces_the_first_with_a_clear_error() {
    let _serial = serial();
    let mut c = Cluster::start("dupid", &["w1"], 2, 10, &[]);
    c.master
        .proc
        .expect_line(LONG, "all 2 users spawned on 1 worker");
    let mark = c.master.proc.mark();
    let i = c.add_worker("w1");
    c.master
        .proc
        .expect_line_from(mark, LONG, "replacing another live process");
    // The displaced process is told why and exits with a usage error.
    let status = c.workers[0].wait_exit(LONG).expect("the first w1 exits");
    assert_eq!(status.code(), Some(2));
    c.workers[0].expect_line(LONG, "worker ids must be unique");
    assert!(c.workers[i].is_running());
    c.master.expect_summary_from(mark, 1, 2, LONG);
    assert!(c.master.live_counts_from(0).iter().all(|&n| n <= 1));
}

#[test]
fn lost_users_are_restored_at_the_spawn_rate() {
    let _serial = serial();
    // 20 users at 4/s: the 10 users of a lost worker come back over ~2.5 s.
    let mut c = Cluster::start("rate", &["w1", "w2"], 20, 4, &[]);
    c.master
        .proc
        .expect_line(LONG, "all 20 users spawned on 2 workers");
    let mark = c.master.proc.mark();
    let killed = Instant::now();
    c.workers[1].kill9();
    c.master.expect_summary_from(mark, 1, 20, LONG);
    let restored = killed.elapsed();
    let users: Vec<u32> = c.master.proc.lines()[mark..]
        .iter()
        .filter(|l| live_in(l) == Some(1))
        .filter_map(|l| users_in(l))
        .collect();
    assert!(
        users.iter().any(|&u| u > 10 && u < 20),
        "the users should climb gradually, saw {users:?}"
    );
    assert!(
        restored >= Duration::from_millis(1500),
        "restored in {restored:?}: faster than 4/s"
    );
    let summary = c
        .master
        .proc
        .lines()
        .into_iter()
        .rev()
        .find(|l| l.contains("workers: "));
    assert_eq!(summary.as_deref().and_then(lost_in), Some(1), "{summary:?}");
}
