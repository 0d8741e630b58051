//! The master port against raw protocol clients on loopback: a worker of
//! the previous protocol (in either framing) is refused by name, and a plan carries the script
//! text once per connection, naming it by hash after that.

use std::net::SocketAddr;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use master::{MasterConfig, MasterHandle, RunRequest};
use protocol::{
    Hello, MasterMessage, MessageCodec, PROTOCOL_VERSION, SWARMER_VERSION, ScriptText, SpawnPlan,
    WorkerMessage,
};
use script::ScriptSource;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_util::bytes::BytesMut;
use tokio_util::codec::{Encoder, Framed};
use tokio_util::sync::CancellationToken;

/// Every wait here is bounded by this.
const MAX_WAIT: Duration = Duration::from_secs(20);

/// A script whose text (~20 kB of comment) dwarfs any plan.
fn script() -> String {
    let padding = "-- a long comment that makes the script text large\n".repeat(400);
    format!(
        "{padding}local U = swarmer.user {{ name = \"U\", wait = swarmer.constant(1) }}\n\
         U:task(function(self) end)\n"
    )
}

async fn start_master() -> (MasterHandle, SocketAddr, CancellationToken) {
    let src = ScriptSource {
        path: "big.lua".into(),
        code: script(),
    };
    let info = script::inspect(&src).expect("the script loads");
    let config = MasterConfig {
        script: ScriptText {
            path: src.path,
            code: src.code,
            files: Vec::new(),
        },
        // Long enough that these silent raw workers are never lost.
        heartbeat_interval: Duration::from_secs(30),
        report_interval: Duration::from_secs(1),
        missed_heartbeats: 3,
        token: None,
        stop_timeout: Duration::from_secs(1),
        tags: vec![],
        exclude_tags: vec![],
        host: Some("http://127.0.0.1:9".into()),
        max_users: u32::MAX,
        thresholds: vec![],
    };
    let shutdown = CancellationToken::new();
    let (handle, _task) = master::start(config, info, shutdown.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(master::listener::run(
        listener,
        handle.clone(),
        shutdown.clone(),
    ));
    (handle, addr, shutdown)
}

type Link = Framed<TcpStream, MessageCodec<MasterMessage, WorkerMessage>>;

fn hello(id: &str, version: u32) -> WorkerMessage {
    WorkerMessage::Hello(Hello {
        protocol_version: version,
        swarmer_version: "0.0.1-old".into(),
        worker_id: id.into(),
        incarnation: 7,
        cores: 1,
        token: None,
        nonce: None,
    })
}

async fn connect(addr: SocketAddr, id: &str, version: u32) -> (Link, MasterMessage) {
    let stream = TcpStream::connect(addr).await.expect("connect");
    let mut link = protocol::framed(stream);
    link.send(hello(id, version)).await.expect("send hello");
    let answer = next(&mut link).await;
    (link, answer)
}

async fn next(link: &mut Link) -> MasterMessage {
    tokio::time::timeout(MAX_WAIT, link.next())
        .await
        .expect("the master answers in time")
        .expect("the link stays open")
        .expect("a well-formed message")
}

/// The next spawn plan and its size on the wire, skipping anything else.
async fn next_plan(link: &mut Link) -> (SpawnPlan, usize) {
    loop {
        if let MasterMessage::Spawn(plan) = next(link).await {
            let mut bytes = BytesMut::new();
            MessageCodec::<WorkerMessage, MasterMessage>::default()
                .encode(MasterMessage::Spawn(plan.clone()), &mut bytes)
                .expect("encode");
            return (*plan, bytes.len());
        }
    }
}

async fn joined(handle: &MasterHandle, n: usize) {
    tokio::time::timeout(MAX_WAIT, handle.wait_for(|s| s.worker_count == n))
        .await
        .expect("the workers join in time")
        .expect("the master is running");
}

#[tokio::test]
async fn a_worker_of_the_previous_protocol_is_refused_naming_both_versions() {
    let (_handle, addr, shutdown) = start_master().await;
    let old = PROTOCOL_VERSION - 1;
    let (mut link, answer) = connect(addr, "old-worker", old).await;
    let MasterMessage::Refused { reason } = answer else {
        panic!("expected a refusal, got {answer:?}");
    };
    for part in [
        format!("worker old-worker speaks protocol {old} (swarmer 0.0.1-old)"),
        format!("this master speaks protocol {PROTOCOL_VERSION} (swarmer {SWARMER_VERSION})"),
    ] {
        assert!(reason.contains(&part), "{reason:?} should say {part:?}");
    }
    let closed = tokio::time::timeout(MAX_WAIT, link.next()).await;
    assert!(
        matches!(closed, Ok(None | Some(Err(_)))),
        "the master hangs up after refusing: {closed:?}"
    );
    shutdown.cancel();
}

/// Protocol 5 framed every message as a map keyed by field name; 6 sends
/// them positionally. A worker of 5 must still be told, by name, why not.
#[tokio::test]
async fn a_protocol_5_worker_with_named_fields_is_refused_naming_both_versions() {
    let (_handle, addr, shutdown) = start_master().await;
    let body = rmp_serde::to_vec_named(&hello("named-worker", 5)).expect("encode");
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let mut frame = (body.len() as u32).to_be_bytes().to_vec();
    frame.extend_from_slice(&body);
    stream.write_all(&frame).await.expect("send hello");
    let mut link: Link = protocol::framed(stream);
    let MasterMessage::Refused { reason } = next(&mut link).await else {
        panic!("expected a refusal");
    };
    for part in [
        "worker named-worker speaks protocol 5 (swarmer 0.0.1-old)".to_string(),
        format!("this master speaks protocol {PROTOCOL_VERSION} (swarmer {SWARMER_VERSION})"),
    ] {
        assert!(reason.contains(&part), "{reason:?} should say {part:?}");
    }
    shutdown.cancel();
}

#[tokio::test]
async fn the_script_text_travels_once_per_connection_and_plans_name_it_by_hash() {
    let (handle, addr, shutdown) = start_master().await;
    let code_len = script().len();
    let (mut w1, welcome) = connect(addr, "w1", PROTOCOL_VERSION).await;
    assert!(
        matches!(welcome, MasterMessage::Welcome { .. }),
        "{welcome:?}"
    );
    joined(&handle, 1).await;
    handle
        .start_run(RunRequest {
            users: 4,
            spawn_rate: 100.0,
            host: None,
            run_time: None,
            user_types: vec![],
            profile: None,
        })
        .await
        .expect("the run starts");

    let (first, first_bytes) = next_plan(&mut w1).await;
    let bundle = first
        .script
        .bundle
        .clone()
        .expect("the first plan carries the script");
    assert_eq!(bundle.code, script());
    assert_eq!(first.script.hash, bundle.hash());
    assert!(first_bytes > code_len, "{first_bytes} bytes");

    // A second worker joins: w1's share changes, and its new plan names the
    // script by hash only, while the newcomer gets the text.
    let (mut w2, _) = connect(addr, "w2", PROTOCOL_VERSION).await;
    let (rebalanced, rebalanced_bytes) = next_plan(&mut w1).await;
    assert_eq!(rebalanced.users.values().sum::<u32>(), 2);
    assert_eq!(rebalanced.script.hash, first.script.hash);
    assert_eq!(rebalanced.script.bundle, None);
    assert!(
        rebalanced_bytes < 1024,
        "a rebalance costs {rebalanced_bytes} bytes, the script is {code_len}"
    );
    let (newcomer, _) = next_plan(&mut w2).await;
    assert_eq!(newcomer.script.bundle.as_ref(), Some(&bundle));

    // A worker that does not hold the hash says so and gets the text again.
    w1.send(WorkerMessage::ScriptWanted {
        hash: rebalanced.script.hash.clone(),
    })
    .await
    .expect("send");
    let (resent, _) = next_plan(&mut w1).await;
    assert_eq!(resent.script.bundle.as_ref(), Some(&bundle));
    assert_eq!(resent.users, rebalanced.users);

    // A new connection (a reconnect, or a restarted worker) starts without.
    drop(w2);
    let (mut w2, _) = connect(addr, "w2", PROTOCOL_VERSION).await;
    let (again, _) = next_plan(&mut w2).await;
    assert_eq!(again.script.bundle.as_ref(), Some(&bundle));
    shutdown.cancel();
}
