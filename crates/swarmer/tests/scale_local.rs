//! Scaling with local worker processes, end to end: real `swarmer --worker`
//! children joining a master, moved 2 → 4 → 1 → 3, first through the
//! scaler in-process, then through the `swarmer --master --scaler local`
//! binary's API; the master stops its children when it exits, and scaling
//! flags that cannot work are refused at startup.

mod common;
mod support;

use std::time::Duration;

use master::scale::{LocalConfig, LocalScaler, Scaler};
use support::{
    BIN, Master, Proc, TempDir, WAIT, children_of, is_alive, library_master, wait_connected,
};
use tokio_util::sync::CancellationToken;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_scaler_moves_real_workers() {
    let shutdown = CancellationToken::new();
    let _stop = shutdown.clone().drop_guard();
    let (handle, port) = library_master(&shutdown).await;
    let mut config = LocalConfig::new(BIN, "127.0.0.1", port);
    config.heartbeat_interval = Duration::from_millis(500);
    config.extra_args = ["--cores", "1", "--loglevel", "warn"]
        .map(String::from)
        .to_vec();
    let scaler = LocalScaler::new(config);

    scaler.scale(2).await.unwrap();
    wait_connected(&handle, 2).await;
    scaler.scale(4).await.unwrap();
    wait_connected(&handle, 4).await;
    scaler.scale(1).await.unwrap();
    scaler.scale(3).await.unwrap();
    // Three connected is not enough: on a loaded machine the count passes
    // through 3 while the new children join and the stopped ones leave.
    // The connected workers become the scaler's children, and stay so.
    let mut expected = scaler.worker_ids().await;
    expected.sort();
    let reached = tokio::time::timeout(WAIT, handle.wait_for(|s| live_ids(s) == expected)).await;
    assert!(
        reached.is_ok(),
        "the connected workers {:?} never became the scaler's children {expected:?}",
        live_ids(&handle.snapshot())
    );
    for _ in 0..8 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        assert_eq!(handle.snapshot().worker_count, 3);
    }
    assert_eq!(
        live_ids(&handle.snapshot()),
        expected,
        "the connected workers are the scaler's children"
    );
    let status = scaler.status().await.unwrap();
    assert_eq!((status.desired, status.ready), (3, Some(3)));

    scaler.stop_all().await;
    wait_connected(&handle, 0).await;
}

/// The ids of the workers the master counts, sorted. A child stopped
/// mid-handshake may be listed as lost, never as live.
fn live_ids(snapshot: &master::Snapshot) -> Vec<String> {
    let mut ids: Vec<String> = snapshot
        .workers
        .iter()
        .filter(|w| w.state != protocol::WorkerState::Lost)
        .map(|w| w.id.clone())
        .collect();
    ids.sort();
    ids
}

#[test]
fn local_churn_through_the_master_api_and_children_stop_with_the_master() {
    let dir = TempDir::new("scale-local-bin");
    let flags = [
        "--scaler",
        "local",
        "--workers",
        "2",
        "--cores",
        "1",
        "--cluster-token",
        "t0ken",
    ];
    let mut master = Master::start(&dir, &flags, &[]);
    master.wait_scale("2 workers", WAIT, |s| {
        s["connected"] == 2 && s["desired"] == 2 && s["ready"] == 2
    });
    assert_eq!(master.scale()["scaler"], "local");

    let (code, reply) = master.put_scale(r#"{"workers": 4}"#);
    assert_eq!(code, 200, "{reply}");
    master.wait_scale("4 workers", WAIT, |s| {
        s["connected"] == 4 && s["desired"] == 4
    });
    for n in [1, 3] {
        let (code, reply) = master.put_scale(&format!(r#"{{"workers": {n}}}"#));
        assert_eq!(code, 200, "PUT {n}: {reply}");
    }
    master.wait_scale("3 workers", WAIT, |s| {
        s["connected"] == 3 && s["desired"] == 3 && s["ready"] == 3
    });
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(master.scale()["connected"], 3);
    }
    assert_eq!(master.get_json("/stats/requests")["worker_count"], 3);

    // The workers told to leave have exited and been reaped: three remain.
    let alive = || -> Vec<u32> {
        let kids = children_of(master.proc.pid());
        kids.into_iter().filter(|&p| is_alive(p)).collect()
    };
    let children = support::poll(WAIT, || Some(alive()).filter(|c| c.len() == 3))
        .unwrap_or_else(|| panic!("expected 3 live children, found {:?}", alive()));

    // Ctrl-C to the master alone (not its process group): it must stop
    // its children itself.
    master.proc.signal("INT");
    let status = master.proc.wait_exit(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "master exit: {status:?}"
    );
    for pid in children {
        assert!(!is_alive(pid), "local worker {pid} outlived the master");
    }
}

fn refused(args: &[&str]) -> String {
    let dir = TempDir::new("scale-local-flags");
    let script = dir.write("idle.lua", support::IDLE_SCRIPT);
    let mut all = vec![
        "-f",
        script.as_str(),
        "--web-port",
        "0",
        "--master-bind-port",
        "0",
    ];
    all.extend_from_slice(args);
    let mut proc = Proc::swarmer("refused", dir.path(), &all);
    let status = proc
        .wait_exit(Duration::from_secs(30))
        .expect("exits by itself");
    // `wait_exit` has let the readers drain the output: no sleep needed.
    assert_eq!(status.code(), Some(2), "{}", proc.tail(10));
    proc.lines().join("\n")
}

#[test]
fn scaling_flags_that_cannot_work_are_refused_at_startup() {
    let text = refused(&["--master", "--workers", "2"]);
    assert!(
        text.contains("--workers starts local worker processes: it needs --scaler local"),
        "{text}"
    );
    let text = refused(&["--scaler", "local", "--workers", "2"]);
    assert!(
        text.contains("--scaler and --workers need --master"),
        "{text}"
    );
    let text = refused(&[
        "--master",
        "--scaler",
        "local",
        "--workers",
        "5",
        "--max-workers",
        "4",
    ]);
    assert!(
        text.contains("--workers 5 is more than --max-workers 4"),
        "{text}"
    );
}
