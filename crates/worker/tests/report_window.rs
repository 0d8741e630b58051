//! A worker sends its next regular report only once the master has
//! acknowledged the last: a master that is behind is not sent more than it
//! merges, and what the users do meanwhile comes with a later report.
//! Played against a hand-held master on the in-process link, so nothing
//! acknowledges unless the test says so.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use protocol::memory::{MasterEnd, pair};
use protocol::{MasterMessage, WorkerMessage};
use tokio_util::sync::CancellationToken;
use worker::session::{self, Outbox};
use worker::{Engine, SessionConfig};

mod support;

const REPORT_EVERY_MS: u64 = 20;

/// The reports that arrive within `window`, by number.
async fn reports_within(master: &mut MasterEnd, window: Duration) -> Vec<u64> {
    let mut seqs = Vec::new();
    let deadline = tokio::time::Instant::now() + window;
    while let Ok(Some(msg)) = tokio::time::timeout_at(deadline, master.next()).await {
        if let WorkerMessage::Report(report) = msg.expect("a message") {
            seqs.push(report.seq);
        }
    }
    seqs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regular_report_waits_for_the_last_to_be_acknowledged() {
    let mut engine = Engine::start(support::one_core()).expect("an engine");
    let (mut master, worker_end) = pair();
    let shutdown = CancellationToken::new();
    let config = SessionConfig {
        worker_id: "w".into(),
        incarnation: 1,
        token: None,
        stop_timeout: Duration::from_secs(1),
        missed_heartbeats: 100,
    };
    let session = {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut outbox = Outbox::default();
            session::run(worker_end, &mut engine, &mut outbox, &config, &shutdown).await
        })
    };
    let hello = master.next().await.expect("a hello").expect("read");
    assert!(matches!(hello, WorkerMessage::Hello(_)), "{hello:?}");
    master
        .send(MasterMessage::Welcome {
            heartbeat_interval_ms: 1000,
            report_interval_ms: REPORT_EVERY_MS,
            master_id: 7,
            proof: None,
        })
        .await
        .expect("welcome");

    // Ten report intervals without an acknowledgement: one report.
    let window = Duration::from_millis(REPORT_EVERY_MS * 10);
    assert_eq!(reports_within(&mut master, window).await, vec![1]);
    // Acknowledged, the next follows within an interval or two; then it
    // waits again.
    master
        .send(MasterMessage::Ack { seq: 1 })
        .await
        .expect("ack");
    assert_eq!(reports_within(&mut master, window).await, vec![2]);
    master
        .send(MasterMessage::Ack { seq: 2 })
        .await
        .expect("ack");
    assert_eq!(reports_within(&mut master, window).await, vec![3]);

    // Leaving, the final report goes whether or not the last was
    // acknowledged: nothing the users did is kept back.
    shutdown.cancel();
    let mut last = Vec::new();
    while let Some(Ok(msg)) = master.next().await {
        match msg {
            WorkerMessage::Report(report) => last.push(report.seq),
            WorkerMessage::Quitting => break,
            _ => {}
        }
    }
    assert_eq!(last, vec![4]);
    let end = session.await.expect("the session ends");
    assert_eq!(end, worker::SessionEnd::Shutdown);
}
