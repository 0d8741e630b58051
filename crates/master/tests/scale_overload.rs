//! A master that cannot keep up, on purpose: a few hundred simulated
//! workers (the scale bench's, `benches/scale/sim.rs`) on loopback, each
//! sending a report a second, to a master whose every merge is made slow
//! through [`master::start_slowed`], far slower than the reports arrive.
//!
//! The simulators send a report every second whether or not the last was
//! acknowledged: a worker waits for it (`worker::session`), but the
//! master must not rely on its workers' courtesy.
//!
//! Behind as it is, the master must declare no worker lost (it hears them
//! on their sockets), keep its memory bounded (it holds a bounded number
//! of decoded reports and merges a worker's waiting reports into one), and,
//! once the workers stop reporting, have counted every request they sent,
//! exactly once.

#[allow(dead_code)]
#[path = "../benches/scale/sim.rs"]
mod sim;

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use master::{MasterConfig, RunRequest};
use protocol::ScriptText;
use script::ScriptSource;
use tokio_util::sync::CancellationToken;

const WORKERS: usize = 300;
const ENTRIES: usize = 10;
/// 300 reports a second at 10 ms each would take 3 s a second: only a
/// third of them could be merged one by one.
const MERGE_DELAY: Duration = Duration::from_millis(10);
const OVERLOAD: Duration = Duration::from_secs(8);
/// A held report with later ones merged into it stays in wire form (~21
/// MiB of growth in all, debug build); held as dense histograms, as
/// before, the 300 of them grew it by 200-230 MiB. A queue of every
/// report would take far more.
const RSS_GROWTH_MAX_MIB: f64 = 100.0;

const SCRIPT: &str = r#"
local A = swarmer.user { name = "A", wait = swarmer.constant(1) }
A:task(1, function(self) self.http:get("/") end)
"#;

fn config() -> (MasterConfig, script::ScriptInfo) {
    let src = ScriptSource {
        path: "overload.lua".into(),
        code: SCRIPT.into(),
    };
    let info = script::inspect(&src).expect("the script loads");
    let config = MasterConfig {
        script: ScriptText {
            path: src.path,
            code: src.code,
            files: Vec::new(),
        },
        heartbeat_interval: Duration::from_secs(1),
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
    (config, info)
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0);
    kib / 1024.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_master_behind_loses_no_worker_holds_its_memory_and_counts_every_request_once() {
    // What the master says of its workers (lost, silent) is the story of
    // a failure here.
    let _ = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::WARN)
        .with_test_writer()
        .try_init();
    let shutdown = CancellationToken::new();
    let (config, info) = config();
    let (master, _task) = master::start_slowed(config, info, shutdown.clone(), MERGE_DELAY);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    tokio::spawn(master::listener::run(
        listener,
        master.clone(),
        shutdown.clone(),
    ));
    let fleet = tokio::time::timeout(
        Duration::from_secs(60),
        sim::Fleet::start(WORKERS, &addr, ENTRIES, sim::Pace::EverySecond),
    )
    .await
    .expect("every simulated worker is welcome within a minute");
    tokio::time::timeout(
        Duration::from_secs(30),
        master.wait_for(|s| s.worker_count == WORKERS),
    )
    .await
    .expect("the master lists every worker")
    .expect("the master runs");
    let request = RunRequest {
        users: WORKERS as u32 * sim::USERS,
        spawn_rate: master::validate::MAX_SPAWN_RATE,
        host: None,
        run_time: None,
        user_types: vec![],
        profile: None,
    };
    master.start_run(request).await.expect("the run starts");
    let rss_before = rss_mib();

    // Behind and falling further behind, were reports merged one by one.
    let mut rss_max = rss_before;
    let until = Instant::now() + OVERLOAD;
    while Instant::now() < until {
        let s = master.snapshot();
        assert_eq!(s.lost_workers, 0, "a live worker was declared lost");
        assert_eq!(s.worker_count, WORKERS);
        rss_max = rss_max.max(rss_mib());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let totals = fleet.totals();
    let sent_in_overload = totals.reports_sent.load(Ordering::Relaxed);
    let mergeable_one_by_one = (OVERLOAD.as_millis() / MERGE_DELAY.as_millis()) as u64;
    assert!(
        sent_in_overload > 2 * mergeable_one_by_one,
        "the master was not overloaded: {sent_in_overload} reports sent"
    );

    // The reports stop; every one sent is acknowledged in time.
    fleet.pause();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let sent = totals.reports_sent.load(Ordering::Relaxed);
        if totals.reports_acked.load(Ordering::Relaxed) == sent {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {sent} reports acknowledged after a minute",
            totals.reports_acked.load(Ordering::Relaxed)
        );
        let s = master.snapshot();
        assert_eq!(s.lost_workers, 0, "a live worker was declared lost");
        rss_max = rss_max.max(rss_mib());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Acknowledged means merged; the next publication shows it.
    let after = master::now_ms() + 1;
    let s = tokio::time::timeout(
        Duration::from_secs(10),
        master.wait_for(|s| s.now_ms >= after),
    )
    .await
    .expect("the master publishes")
    .expect("the master runs");
    assert_eq!(
        s.stats.num_requests(),
        totals.requests_sent.load(Ordering::Relaxed),
        "the master's total is not what the workers sent"
    );
    assert_eq!(s.lost_workers, 0);
    assert_eq!(s.worker_count, WORKERS);
    assert!(
        fleet.max_wait_ms() > 1000,
        "reports never waited: the master was not behind"
    );
    assert!(
        rss_max - rss_before < RSS_GROWTH_MAX_MIB,
        "memory grew by {:.0} MiB while behind",
        rss_max - rss_before
    );
    shutdown.cancel();
}
