//! A load profile across processes: the master owns the profile clock and
//! the arithmetic, two worker processes only follow the user counts they
//! are sent, and the headless master ends the run (and its workers) when
//! the stages end.

mod common;

use std::time::Duration;

use common::cluster::{Master, worker};
use common::{DemoTarget, TempDir, serial};

const LONG: Duration = Duration::from_secs(60);

const LIGHT: &str = r#"
local U = swarmer.user { name = "U", wait = swarmer.constant(0.1) }
U:task(1, function(self) self.http:get("/") end)
"#;

#[test]
fn a_master_follows_stages_over_two_workers_and_ends_the_run() {
    let _serial = serial();
    let dir = TempDir::new("profile");
    let script = dir.write("users.lua", LIGHT);
    let target = DemoTarget::start(dir.path());
    let mut master = Master::start(
        dir.path(),
        &[
            "-f",
            &script,
            "--headless",
            "-H",
            &target.url,
            "--expect-workers",
            "2",
            "--stages",
            "2s:8,2s:8,1s:0",
            "--heartbeat-interval",
            "250ms",
        ],
    );
    let mut w1 = worker(dir.path(), master.port, "w1", &["--cores", "1"]);
    let mut w2 = worker(dir.path(), master.port, "w2", &["--cores", "1"]);
    master.proc.expect_line(LONG, "all 8 users spawned on");
    master.proc.expect_line(LONG, "its load profile ended");
    let status = master
        .proc
        .wait_exit(LONG)
        .expect("the master ends the run by itself");
    assert_eq!(status.code(), Some(0), "{}", master.proc.tail(20));
    // A headless run is over for good: its workers are told to leave.
    assert!(w1.wait_exit(LONG).is_some(), "w1 left");
    assert!(w2.wait_exit(LONG).is_some(), "w2 left");
}
