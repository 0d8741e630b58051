//! End-to-end tests of distributed mode's options and warnings:
//! `--expect-workers-max-wait`, the default `--worker-id` and its
//! stability across reconnects, and the master's warning about a worker
//! whose CPU stays above 90%, and its patience with workers that fall
//! silent all at once.

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::cluster::{Master, worker};
use common::raw::{RawClient, hello};
use common::relay::Relay;
use common::{DemoTarget, Proc, TempDir, serial};
use protocol::{MasterMessage, WorkerMessage, WorkerState, WorkerStatus};

const LONG: Duration = Duration::from_secs(30);

const LIGHT: &str = r#"
local U = swarmer.user { name = "U", wait = swarmer.constant(0.1) }
U:task(1, function(self) self.http:get("/") end)
"#;

#[test]
fn a_headless_master_gives_up_after_expect_workers_max_wait() {
    let _serial = serial();
    let dir = TempDir::new("maxwait");
    let script = dir.write("users.lua", LIGHT);
    let mut master = Master::start(
        dir.path(),
        &[
            "-f",
            &script,
            "--headless",
            "-u",
            "1",
            "--expect-workers",
            "2",
            "--expect-workers-max-wait",
            "1s",
        ],
    );
    let _w1 = worker(dir.path(), master.port, "w1", &["--cores", "1"]);
    let status = master.proc.wait_exit(LONG).expect("the master gives up");
    assert_eq!(status.code(), Some(2), "{}", master.proc.tail(10));
    master.proc.expect_line(
        LONG,
        "only 1 of 2 workers connected within --expect-workers-max-wait 1s",
    );
}

#[test]
fn the_default_worker_id_is_the_host_name_and_a_suffix_and_survives_reconnects() {
    let _serial = serial();
    let dir = TempDir::new("workerid");
    let script = dir.write("users.lua", LIGHT);
    let target = DemoTarget::start(dir.path());
    let master = Master::start(
        dir.path(),
        &[
            "-f",
            &script,
            "--headless",
            "-H",
            &target.url,
            "-u",
            "2",
            "-r",
            "10",
            "--heartbeat-interval",
            "200ms",
        ],
    );
    let relay = Relay::start(SocketAddr::from(([127, 0, 0, 1], master.port)));
    let port = relay.port().to_string();
    let args = [
        "--worker",
        "--master-host",
        "127.0.0.1",
        "--master-port",
        &port,
        "--cores",
        "1",
    ];
    let _w = Proc::swarmer_with_env("worker", dir.path(), &args, &[("HOSTNAME", "loadgen-7")]);
    let (_, joined) = master.proc.expect_line_from(0, LONG, "worker loadgen-7_");
    let id = joined
        .split("worker ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .expect("an id")
        .to_string();
    let suffix = id.strip_prefix("loadgen-7_").expect("host name first");
    assert!(
        suffix.len() == 6 && suffix.chars().all(|c| c.is_ascii_hexdigit()),
        "{id}"
    );

    // Through a cut and back, the same process keeps its id: a rejoin.
    master
        .proc
        .expect_line(LONG, "all 2 users spawned on 1 worker");
    let mark = master.proc.mark();
    relay.pause();
    master
        .proc
        .expect_line_from(mark, LONG, &format!("worker {id} lost"));
    relay.resume();
    master
        .proc
        .expect_line_from(mark, LONG, &format!("worker {id} rejoined"));
    assert!(master.live_counts_from(0).iter().all(|&n| n <= 1));
}

#[test]
fn the_master_warns_once_when_a_workers_cpu_stays_above_90_percent() {
    let _serial = serial();
    let dir = TempDir::new("hot");
    let script = dir.write("users.lua", LIGHT);
    // No run: the master waits for a third worker that never comes.
    let master = Master::start(
        dir.path(),
        &[
            "-f",
            &script,
            "--headless",
            "--expect-workers",
            "3",
            "--heartbeat-interval",
            "100ms",
        ],
    );
    // Two hand-driven workers report their CPU: one hot, one not. A real
    // worker cannot be made hot reliably on a machine others share.
    let mut hot = RawClient::connect(master.port);
    let mut cool = RawClient::connect(master.port);
    for (client, id) in [(&mut hot, "hot"), (&mut cool, "cool")] {
        client.send(hello(id));
        assert!(matches!(
            client.recv(LONG),
            Ok(MasterMessage::Welcome { .. })
        ));
    }
    let status = |cpu_percent| {
        WorkerMessage::Heartbeat(WorkerStatus {
            state: Some(WorkerState::Running),
            user_count: 0,
            cpu_percent,
            memory_bytes: 1 << 20,
        })
    };
    // 10 heartbeats of 100 ms above 90% make a warning; keep it up for 3 s.
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        hot.send(status(97.0));
        cool.send(status(40.0));
        std::thread::sleep(Duration::from_millis(50));
    }
    let warnings: Vec<String> = master
        .proc
        .lines()
        .into_iter()
        .filter(|l| l.contains("of its CPU"))
        .collect();
    assert_eq!(warnings.len(), 1, "one warning per hot spell: {warnings:?}");
    assert!(
        warnings[0].contains("worker hot has used over 90% of its CPU")
            && warnings[0].contains("add workers"),
        "{warnings:?}"
    );
    assert_eq!(master.live(), Some(2));
}

#[test]
fn workers_falling_silent_together_get_longer_than_one_alone() {
    let _serial = serial();
    let dir = TempDir::new("stall");
    let script = dir.write("users.lua", LIGHT);
    let master = Master::start(
        dir.path(),
        &[
            "-f",
            &script,
            "--headless",
            "--expect-workers",
            "9",
            "--heartbeat-interval",
            "100ms",
        ],
    );
    let mut clients: Vec<RawClient> = (0..4).map(|_| RawClient::connect(master.port)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(hello(&format!("raw{i}")));
        assert!(matches!(c.recv(LONG), Ok(MasterMessage::Welcome { .. })));
    }
    master.expect_live_from(0, 4, LONG);
    let beat = || WorkerMessage::Heartbeat(WorkerStatus::default());
    // One falls silent alone: lost after 3 heartbeats (300 ms).
    let mark = master.proc.mark();
    let alone = Instant::now();
    while alone.elapsed() < Duration::from_secs(1) {
        for c in &mut clients[1..] {
            c.send(beat());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let (_, lost) = master.proc.expect_line_from(mark, LONG, "worker raw0 lost");
    assert!(lost.contains("silent for over 300ms"), "{lost}");
    // The other three at once, as when the master itself stalls: they get
    // twice as long, and the master says why.
    let mark = master.proc.mark();
    master
        .proc
        .expect_line_from(mark, LONG, "3 of 3 workers fell silent at once");
    for i in 1..4 {
        let (_, lost) = master
            .proc
            .expect_line_from(mark, LONG, &format!("worker raw{i} lost"));
        assert!(lost.contains("silent for over 600ms"), "{lost}");
    }
}
