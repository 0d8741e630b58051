//! End-to-end tests of what the master port accepts: the cluster token,
//! the protocol version, and anything else a stranger may send (random
//! bytes, oversized or malformed frames, messages out of order). Refusals
//! must be clear on both sides; junk must close that one connection and
//! leave the master serving its workers.
//!
//! Where a real worker cannot misbehave on purpose, a raw client built from
//! the protocol crate (or from hand-made bytes) plays the part.

mod common;

use std::time::Duration;

use common::cluster::{Master, worker};
use common::raw::RawClient;
use common::{DemoTarget, Proc, TempDir, serial};
use protocol::{
    Hello, MAX_FRAME_BYTES, MasterMessage, PROTOCOL_VERSION, SWARMER_VERSION, WorkerMessage,
    WorkerStatus,
};

const SCRIPT: &str = r#"
local U = swarmer.user { name = "U", wait = swarmer.constant(0.1) }
U:task(1, function(self) self.http:get("/") end)
"#;

const LONG: Duration = Duration::from_secs(30);

fn hello(id: &str, version: u32) -> WorkerMessage {
    WorkerMessage::Hello(Hello {
        protocol_version: version,
        swarmer_version: "99.0.0".into(),
        worker_id: id.into(),
        incarnation: 7,
        cores: 1,
        token: None,
        nonce: None,
    })
}

/// A headless master with a target, waiting for `expect` workers.
fn master(dir: &TempDir, target: &DemoTarget, expect: &str, extra: &[&str]) -> Master {
    let script = dir.write("users.lua", SCRIPT);
    let mut args = vec![
        "-f",
        &script,
        "--headless",
        "--json",
        "--only-summary",
        "-H",
        &target.url,
        "--expect-workers",
        expect,
        "-u",
        "2",
        "-r",
        "10",
    ];
    args.extend_from_slice(extra);
    Master::start(dir.path(), &args)
}

#[test]
fn a_wrong_or_missing_cluster_token_is_refused_with_clear_messages_on_both_sides() {
    let _serial = serial();
    let dir = TempDir::new("token");
    let target = DemoTarget::start(dir.path());
    let master = master(&dir, &target, "1", &["--cluster-token", "s3cret"]);

    let mut wrong = worker(
        dir.path(),
        master.port,
        "wrong",
        &["--cluster-token", "guess"],
    );
    let status = wrong.wait_exit(LONG).expect("a refused worker exits");
    assert_eq!(status.code(), Some(2), "a refusal is a usage error");
    wrong.expect_line(
        LONG,
        "the master refused this worker: worker wrong presented a wrong cluster token",
    );
    master.proc.expect_line(
        LONG,
        "refused a worker: worker wrong presented a wrong cluster token",
    );

    let mut missing = worker(dir.path(), master.port, "missing", &[]);
    assert_eq!(missing.wait_exit(LONG).and_then(|s| s.code()), Some(2));
    missing.expect_line(
        LONG,
        "worker missing presented no cluster token, but this master requires one",
    );
    master.proc.expect_line(
        LONG,
        "refused a worker: worker missing presented no cluster token",
    );

    // The right token, from the environment as a Kubernetes Secret gives it.
    let args = [
        "--worker",
        "--master-host",
        "127.0.0.1",
        "--master-port",
        &master.port.to_string(),
    ];
    let env = [
        ("SWARMER_CLUSTER_TOKEN", "s3cret"),
        ("SWARMER_WORKER_ID", "good"),
        ("SWARMER_CORES", "1"),
    ];
    let good = Proc::swarmer_with_env("worker good", dir.path(), &args, &env);
    master
        .proc
        .expect_line(LONG, "worker good joined with 1 cores; 1 live");
    master
        .proc
        .expect_line(LONG, "all 2 users spawned on 1 worker");
    assert_eq!(
        master.live_counts_from(0).into_iter().max(),
        Some(1),
        "refused workers never count"
    );
    for p in [&master.proc, &wrong, &missing, &good] {
        assert!(
            p.lines().iter().all(|l| !l.contains("s3cret")),
            "{} logged the token",
            p.name
        );
    }
}

#[test]
fn a_worker_of_another_protocol_version_is_refused_naming_both_versions() {
    let _serial = serial();
    let dir = TempDir::new("version");
    let target = DemoTarget::start(dir.path());
    let master = master(&dir, &target, "1", &[]);
    let newer = PROTOCOL_VERSION + 1;

    let mut raw = RawClient::connect(master.port);
    raw.send(hello("future", newer));
    let reason = match raw.recv(LONG) {
        Ok(MasterMessage::Refused { reason }) => reason,
        other => panic!("expected a refusal, got {other:?}"),
    };
    for part in [
        format!("worker future speaks protocol {newer} (swarmer 99.0.0)"),
        format!("this master speaks protocol {PROTOCOL_VERSION} (swarmer {SWARMER_VERSION})"),
    ] {
        assert!(reason.contains(&part), "{reason:?} should say {part:?}");
    }
    assert!(
        raw.closed_within(LONG),
        "the master hangs up after refusing"
    );
    master.proc.expect_line(
        LONG,
        &format!("refused a worker: incompatible protocol: worker future speaks protocol {newer}"),
    );

    // A hello whose shape changed in another version (fields gone, a new
    // one) is still read for its version, and refused by name. Written as
    // raw msgpack: {"Hello": {"protocol_version": 7, "worker_id": "odd",
    // "labels": [1, 2]}}, behind a 4-byte big-endian length.
    let mut body = vec![0x81, 0xa5];
    body.extend_from_slice(b"Hello");
    body.extend_from_slice(&[0x83, 0xb0]);
    body.extend_from_slice(b"protocol_version");
    body.extend_from_slice(&[0x07, 0xa9]);
    body.extend_from_slice(b"worker_id");
    body.push(0xa3);
    body.extend_from_slice(b"odd");
    body.push(0xa6);
    body.extend_from_slice(b"labels");
    body.extend_from_slice(&[0x92, 0x01, 0x02]);
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    let mut odd = RawClient::connect(master.port);
    odd.send_bytes(&frame);
    match odd.recv(LONG) {
        Ok(MasterMessage::Refused { reason }) => {
            assert!(reason.contains("worker odd speaks protocol 7"), "{reason}");
            assert!(
                reason.contains(&format!("speaks protocol {PROTOCOL_VERSION}")),
                "{reason}"
            );
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let counts = master.live_counts_from(0);
    assert!(
        counts.iter().all(|&n| n == 0),
        "a refused worker never counts: {counts:?}"
    );
}

/// Bytes that look random but are the same on every run.
fn noise(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 24) as u8
        })
        .collect()
}

#[test]
fn junk_on_the_master_port_closes_that_connection_and_nothing_else() {
    let _serial = serial();
    let dir = TempDir::new("junk");
    let target = DemoTarget::start(dir.path());
    let master = master(&dir, &target, "1", &[]);
    let w1 = worker(dir.path(), master.port, "w1", &["--cores", "1"]);
    master
        .proc
        .expect_line(LONG, "all 2 users spawned on 1 worker");
    let mark = master.proc.mark();

    let oversized = ((MAX_FRAME_BYTES + 1) as u32).to_be_bytes();
    let mut malformed = 64u32.to_be_bytes().to_vec();
    malformed.extend(noise(64, 3));
    let attempts: Vec<(&str, Vec<u8>)> = vec![
        ("random bytes", noise(64 * 1024, 1)),
        ("an oversized frame", oversized.to_vec()),
        ("a malformed frame", malformed),
        ("a 4 GiB length", vec![0xff; 4]),
    ];
    for (what, bytes) in &attempts {
        let mut c = RawClient::connect(master.port);
        c.send_bytes(bytes);
        assert!(
            c.closed_within(Duration::from_secs(5)),
            "{what}: the master should hang up"
        );
    }
    // A message before the hello.
    let mut early = RawClient::connect(master.port);
    early.send(WorkerMessage::Heartbeat(WorkerStatus::default()));
    assert!(
        early.closed_within(Duration::from_secs(5)),
        "a message before hello is refused"
    );

    // A worker that joined, then sends an oversized frame: that worker is
    // lost, the other one untouched.
    let mut joined = RawClient::connect(master.port);
    joined.send(hello("raw", PROTOCOL_VERSION));
    assert!(matches!(
        joined.recv(LONG),
        Ok(MasterMessage::Welcome { .. })
    ));
    master
        .proc
        .expect_line_from(mark, LONG, "worker raw joined with 1 cores; 2 live");
    joined.send_bytes(&oversized);
    assert!(joined.closed_within(Duration::from_secs(5)));
    master
        .proc
        .expect_line_from(mark, LONG, "worker raw lost (connection error");

    master.proc.expect_line_from(
        mark,
        LONG,
        "closing a connection that sent a bad first frame",
    );
    master.expect_summary_from(mark, 1, 2, LONG);
    // The master still takes workers, and w1 never noticed anything.
    let _w2 = worker(dir.path(), master.port, "w2", &["--cores", "1"]);
    master
        .proc
        .expect_line_from(mark, LONG, "worker w2 joined with 1 cores; 2 live");
    assert!(
        w1.lines().iter().all(|l| !l.contains("lost the master")),
        "{}",
        w1.tail(20)
    );
}
