//! Hostile peers, end to end with real processes on loopback: strangers on
//! the master port cost it bounded memory and cannot forge its log lines;
//! a worker gives an impostor master neither its token nor its users; and
//! local workers die with a master killed with SIGKILL instead of joining
//! whatever listens on its port next.

mod common;
mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use bytes::BytesMut;
use common::cluster::{self, worker};
use common::raw::{RawClient, RawMaster};
use common::{TempDir, http_get, poll, serial};
use protocol::{
    Exchange, Hello, MAX_FRAME_BYTES, MasterMessage, MessageCodec, NONCE_BYTES, PROTOCOL_VERSION,
    WorkerMessage,
};
use support::{Master, children_of, is_alive};
use tokio_util::codec::Encoder;

const TOKEN: &str = "hostile-test-token-5f0c2a9e71d4";
const LONG: Duration = Duration::from_secs(30);

/// Resident memory of a process, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the master port");
    s.set_write_timeout(Some(Duration::from_secs(5)))
        .expect("write timeout");
    s
}

/// A framed hello as a worker of `version` would send it, with any id.
fn hello_frame(id: &str, version: u32) -> Vec<u8> {
    let hello = WorkerMessage::Hello(Hello {
        protocol_version: version,
        swarmer_version: "6.6.6".into(),
        worker_id: id.into(),
        incarnation: 1,
        cores: 1,
        token: None,
        nonce: None,
    });
    let mut out = BytesMut::new();
    MessageCodec::<MasterMessage, WorkerMessage>::default()
        .encode(hello, &mut out)
        .expect("encode");
    out.to_vec()
}

/// Whether the peer has closed `s` (after whatever it said), without
/// waiting.
fn is_closed(mut s: &TcpStream) -> bool {
    s.set_nonblocking(true).expect("nonblocking");
    let closed = loop {
        match s.read(&mut [0u8; 4096]) {
            Ok(0) => break true,
            Ok(_) => continue,
            Err(e) => break e.kind() != std::io::ErrorKind::WouldBlock,
        }
    };
    s.set_nonblocking(false).expect("blocking");
    closed
}

#[test]
fn strangers_cost_the_master_bounded_memory_and_cannot_forge_log_lines() {
    let _serial = serial();
    let dir = TempDir::new("hostile-memory");
    let master = Master::start(&dir, &["--cluster-token", TOKEN], &[]);
    let pid = master.proc.pid();
    let port = master.worker_port;
    assert_eq!(
        http_get(&format!("{}/healthz", master.web))
            .expect("healthz")
            .0,
        200
    );
    let before = rss_kib(pid);

    // 100 first frames that declare 16 MiB and bring 1 MiB of it, all held
    // open at once, then 100 hellos with 8 MB ids.
    let body = vec![0x42u8; 1 << 20];
    let mut held = Vec::new();
    for _ in 0..100 {
        let mut s = connect(port);
        let _ = s.write_all(&(MAX_FRAME_BYTES as u32).to_be_bytes());
        let _ = s.write_all(&body);
        held.push(s);
    }
    let huge_id = hello_frame(&"x".repeat(8 << 20), PROTOCOL_VERSION);
    for _ in 0..100 {
        let mut s = connect(port);
        let _ = s.write_all(&huge_id);
        held.push(s);
    }
    // Ids that would forge log lines, in this version's hello and another's.
    for n in 0..50 {
        let id = format!("evil-{n}\nFORGED line from a stranger");
        for version in [PROTOCOL_VERSION, 99] {
            let mut s = connect(port);
            let _ = s.write_all(&hello_frame(&id, version));
            held.push(s);
        }
    }
    let closed = poll(LONG, || {
        let n = held.iter().filter(|s| is_closed(s)).count();
        (n == held.len()).then_some(n)
    });
    assert!(closed.is_some(), "the master hangs up on every one of them");
    drop(held);

    // More idle connections than the master lets wait in the handshake:
    // the surplus is closed at once.
    let idle: Vec<TcpStream> = (0..600).map(|_| connect(port)).collect();
    master
        .proc
        .expect_line(LONG, "connections are in the handshake already");
    let surplus = poll(Duration::from_secs(8), || {
        let n = idle.iter().filter(|s| is_closed(s)).count();
        (n >= 600 - 512).then_some(n)
    });
    assert!(surplus.is_some(), "no idle connection was turned away");
    let after = rss_kib(pid);
    drop(idle);
    eprintln!("master RSS: {before} KiB before, {after} KiB after the attacks");
    assert!(
        after < before + 64 * 1024,
        "the master grew from {before} KiB to {after} KiB"
    );

    master
        .proc
        .expect_line(LONG, "closing a connection that sent a bad first frame");
    master.proc.expect_line(LONG, "evil-0\\nFORGED line");
    let lines = master.proc.lines();
    assert!(
        lines.iter().all(|l| !l.starts_with("FORGED")),
        "a stranger forged a log line"
    );
    assert!(lines.iter().all(|l| l.len() < 4096), "a log line is huge");

    // The master still serves, and a real worker still joins.
    assert_eq!(
        http_get(&format!("{}/healthz", master.web))
            .expect("healthz")
            .0,
        200
    );
    let _real = worker(
        dir.path(),
        port,
        "real",
        &["--cluster-token", TOKEN, "--cores", "1"],
    );
    let joined = poll(LONG, || {
        (master.get_json("/stats/requests")["worker_count"] == 1).then_some(())
    });
    assert!(
        joined.is_some(),
        "a real worker could not join after the attacks"
    );
}

/// A hello of this version from `id` with a fresh nonce, and the nonce.
fn hello_with_nonce(id: &str) -> (WorkerMessage, Vec<u8>) {
    let nonce = protocol::new_nonce();
    let hello = WorkerMessage::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        swarmer_version: protocol::SWARMER_VERSION.into(),
        worker_id: id.into(),
        incarnation: 1,
        cores: 1,
        token: None,
        nonce: Some(nonce.clone()),
    });
    (hello, nonce)
}

/// Says hello with a nonce and returns the master's challenge nonce.
fn challenged(c: &mut RawClient, id: &str) -> Vec<u8> {
    let (hello, _) = hello_with_nonce(id);
    c.send(hello);
    match c.recv(LONG) {
        Ok(MasterMessage::Challenge { nonce }) => nonce,
        other => panic!("expected a challenge, got {other:?}"),
    }
}

#[test]
fn the_master_welcomes_and_proves_itself_only_to_a_worker_that_proved_the_token() {
    let _serial = serial();
    let dir = TempDir::new("hostile-stranger");
    let master = Master::start(&dir, &["--cluster-token", TOKEN], &[]);
    let port = master.worker_port;

    // A wrong proof: refused by name, and nothing else, proof least of all.
    let mut c = RawClient::connect(port);
    let nonce = challenged(&mut c, "guesser");
    assert_eq!(nonce.len(), NONCE_BYTES);
    c.send(WorkerMessage::Proof { mac: vec![0; 32] });
    match c.recv(LONG) {
        Ok(MasterMessage::Refused { reason }) => assert!(
            reason.contains("worker guesser presented a wrong cluster token"),
            "{reason}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert!(c.closed_within(LONG));

    // The right proof: welcomed, with the master's own proof.
    let mut c = RawClient::connect(port);
    let (hello, worker_nonce) = hello_with_nonce("prover");
    c.send(hello);
    let Ok(MasterMessage::Challenge {
        nonce: master_nonce,
    }) = c.recv(LONG)
    else {
        panic!("no challenge");
    };
    let ex = Exchange {
        token: TOKEN,
        worker_id: "prover",
        worker_nonce: &worker_nonce,
        master_nonce: &master_nonce,
    };
    let mac = ex.worker_proof();
    c.send(WorkerMessage::Proof { mac: mac.clone() });
    match c.recv(LONG) {
        Ok(MasterMessage::Welcome {
            proof: Some(proof), ..
        }) => assert!(ex.is_master_proof(&proof), "the master's proof is wrong"),
        other => panic!("expected a welcome with a proof, got {other:?}"),
    }

    // That proof replayed on another connection is worthless: the master's
    // nonce is new every time.
    let mut replay = RawClient::connect(port);
    let again = challenged(&mut replay, "prover");
    assert_ne!(again, master_nonce);
    replay.send(WorkerMessage::Proof { mac });
    assert!(matches!(
        replay.recv(LONG),
        Ok(MasterMessage::Refused { .. })
    ));

    // A stranger that says hello and then nothing is let go in 10 s.
    let mut silent = RawClient::connect(port);
    challenged(&mut silent, "silent");
    assert!(silent.closed_within(Duration::from_secs(20)));
    master.proc.expect_line(
        LONG,
        "worker silent sent no proof of the cluster token in time",
    );
}

/// A worker's next message, which must be `want`.
fn expect_msg(m: &mut RawMaster, what: &str) -> WorkerMessage {
    m.recv(LONG)
        .unwrap_or_else(|e| panic!("expected {what} from the worker: {e}"))
}

#[test]
fn a_worker_gives_an_impostor_neither_its_token_nor_its_users() {
    let _serial = serial();
    let dir = TempDir::new("hostile-impostor");
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let mut w = worker(
        dir.path(),
        port,
        "w1",
        &["--cluster-token", TOKEN, "--cores", "1"],
    );
    let plan = MasterMessage::Spawn(Box::new(protocol::SpawnPlan {
        run_id: 1,
        users: [("U".to_string(), 1)].into(),
        spawn_rate: 100.0,
        host: Some("http://127.0.0.1:9".into()),
        tags: vec![],
        exclude_tags: vec![],
        arrivals: Default::default(),
        indexes: None,
        script: protocol::ScriptRef::sending(protocol::ScriptBundle::script(
            "evil.lua",
            "local U = swarmer.user { name = \"U\" }\nU:task(function(self) end)",
        )),
    }));
    let welcome = |proof| MasterMessage::Welcome {
        heartbeat_interval_ms: 50,
        report_interval_ms: 50,
        master_id: 1,
        proof,
    };

    // An impostor that welcomes the worker without asking for any proof.
    let mut m = RawMaster::accept(&listener, LONG);
    let WorkerMessage::Hello(hello) = expect_msg(&mut m, "a hello") else {
        panic!("the first message is not a hello");
    };
    assert_eq!(hello.token, None, "the token went over the wire");
    assert_eq!(hello.nonce.as_ref().map(Vec::len), Some(NONCE_BYTES));
    m.send(welcome(None));
    m.send(plan.clone());
    assert_eq!(
        m.recv(LONG).err().as_deref(),
        Some("closed"),
        "it said more"
    );
    w.expect_line(
        LONG,
        "not joining: the master did not ask this worker to prove",
    );

    // An impostor that challenges, then cannot prove it knows the token.
    let mut m = RawMaster::accept(&listener, LONG);
    assert!(matches!(
        expect_msg(&mut m, "a hello"),
        WorkerMessage::Hello(_)
    ));
    m.send(MasterMessage::Challenge {
        nonce: protocol::new_nonce(),
    });
    let WorkerMessage::Proof { mac } = expect_msg(&mut m, "a proof") else {
        panic!("no proof after the challenge");
    };
    assert_eq!(mac.len(), 32);
    m.send(welcome(Some(vec![0; 32])));
    m.send(plan);
    assert_eq!(
        m.recv(LONG).err().as_deref(),
        Some("closed"),
        "it said more"
    );
    w.expect_line(LONG, "not joining: the master's welcome does not prove");
    assert!(
        !m.seen.windows(TOKEN.len()).any(|s| s == TOKEN.as_bytes()),
        "the token went over the wire"
    );

    // A real master without the token on that port refuses it by name.
    drop(listener);
    let script = dir.write("u.lua", support::IDLE_SCRIPT);
    let args = ["-f", &script, "--web-host", "127.0.0.1", "--web-port", "0"];
    let master = cluster::Master::start_on(dir.path(), port, &args);
    let status = w.wait_exit(LONG).expect("the refused worker exits");
    assert_eq!(status.code(), Some(2));
    w.expect_line(
        LONG,
        "worker w1 has a cluster token but this master has none",
    );
    master
        .proc
        .expect_line(LONG, "refused a worker: worker w1 has a cluster token");
    assert!(
        w.lines().iter().all(|l| !l.contains(TOKEN)),
        "the worker logged its token"
    );
}

#[test]
fn local_workers_die_with_a_master_killed_with_sigkill() {
    let _serial = serial();
    let dir = TempDir::new("hostile-orphans");
    let flags = [
        "--scaler",
        "local",
        "--workers",
        "2",
        "--cores",
        "1",
        "--cluster-token",
        TOKEN,
        "--stop-timeout",
        "1s",
    ];
    let mut master = Master::start(&dir, &flags, &[]);
    master.wait_scale("2 workers", LONG, |s| s["connected"] == 2);
    let children: Vec<u32> = children_of(master.proc.pid())
        .into_iter()
        .filter(|&p| is_alive(p))
        .collect();
    assert_eq!(children.len(), 2, "{children:?}");

    // kill -9 to the master alone, not to its process group.
    master.proc.kill9();
    let gone = poll(Duration::from_secs(10), || {
        children.iter().all(|&p| !is_alive(p)).then_some(())
    });
    let alive: Vec<u32> = children.iter().copied().filter(|&p| is_alive(p)).collect();
    assert!(
        gone.is_some(),
        "local workers {alive:?} outlived their master"
    );
}
