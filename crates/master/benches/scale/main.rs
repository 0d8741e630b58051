//! The master at scale: one coordinator (`master::start` plus
//! `master::listener::run` on loopback) fed by N simulated workers, each
//! sending a heartbeat and a report of 50 entries with histograms every
//! second. Prints, per N, the master's CPU use (this process: the
//! simulators run in a child process) and how long a report waits to be
//! merged, and so where the master saturates.
//!
//! `cargo bench -p master --bench scale`; `SCALE_WORKERS=500,1000,2000`
//! (the default) chooses the sizes, `SCALE_SECONDS=10` the measurement
//! window after a 3 s warm-up. Target: under half a core at 500 workers.
//!
//! Figures of 2026-11 on a 2-core VM that other builds shared (load ~2.4):
//!
//! | workers | master cores | coordinator task | p50 / p99 report to merge |
//! |--------:|-------------:|-----------------:|--------------------------:|
//! |     500 |         0.29 |             0.10 |              0.7 / 5-7 ms |
//! |    1000 |         0.54 |             0.20 |             0.8 / 6-21 ms |
//! |    1500 |         0.93 |             0.40 |            1.1 / 477 ms   |
//! |    2000 |         1.19 |             0.72 |       seconds: saturated  |
//!
//! About 0.55 ms of CPU per report, a third of it in the coordinator (the
//! merge) and the rest decoding, spread over the runtime's threads; most of
//! both is dense histogram work in the stats crate (`Histogram::add` over
//! every bucket, deserialising by recording bucket after bucket).

mod sim;

use std::time::{Duration, Instant};

use master::{MasterConfig, RunRequest};
use protocol::ScriptText;
use script::ScriptSource;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio_util::sync::CancellationToken;

const SCRIPT: &str = r#"
local A = swarmer.user { name = "A", wait = swarmer.constant(1) }
A:task(1, function(self) self.http:get("/") end)
"#;

struct Figures {
    workers: usize,
    join_secs: f64,
    master_cores: f64,
    coordinator_cores: f64,
    lost: u32,
    load: String,
    rss_mib: f64,
    merged_per_sec: f64,
    sim: serde_json::Value,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--simulate") {
        let n = args
            .get(i + 1)
            .and_then(|n| n.parse().ok())
            .expect("--simulate N ADDR");
        let addr = args.get(i + 2).expect("--simulate N ADDR").clone();
        sim::main(n, addr);
        return;
    }
    let sizes: Vec<usize> = std::env::var("SCALE_WORKERS")
        .unwrap_or_else(|_| "500,1000,2000".into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    let window = std::env::var("SCALE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(10), Duration::from_secs);
    println!(
        "master scale: each worker sends a heartbeat and a report of {} entries per second",
        sim::ENTRIES
    );
    println!(
        "{:>7} {:>8} {:>12} {:>11} {:>9} {:>13} {:>9} {:>9} {:>9} {:>9} {:>5} {:>5}",
        "workers",
        "join s",
        "master cores",
        "coordinator",
        "RSS MiB",
        "reports/s",
        "p50 ms",
        "p99 ms",
        "max ms",
        "sim cores",
        "lost",
        "load"
    );
    // Figures on a machine busy with other work are not the master's own:
    // the last column is the 1-minute load average at the end of a round.
    for n in sizes {
        let f = round(n, window);
        println!(
            "{:>7} {:>8.1} {:>12.3} {:>11.3} {:>9.0} {:>6.0} of {:>4.0} {:>9.1} {:>9.1} {:>9.1} {:>9.2} {:>5} {:>5}",
            f.workers,
            f.join_secs,
            f.master_cores,
            f.coordinator_cores,
            f.rss_mib,
            f.merged_per_sec,
            f.sim["sent_per_sec"].as_f64().unwrap_or(0.0),
            f.sim["p50_ms"].as_f64().unwrap_or(0.0),
            f.sim["p99_ms"].as_f64().unwrap_or(0.0),
            f.sim["max_ms"].as_f64().unwrap_or(0.0),
            f.sim["sim_cores"].as_f64().unwrap_or(0.0),
            f.lost,
            f.load,
        );
    }
}

fn config() -> (MasterConfig, script::ScriptInfo) {
    let src = ScriptSource {
        path: "scale-bench.lua".into(),
        code: SCRIPT.into(),
    };
    let info = script::inspect(&src).expect("the bench script loads");
    let config = MasterConfig {
        script: ScriptText {
            path: src.path,
            code: src.code,
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

/// One measurement: a fresh master, `n` simulated workers in a child.
fn round(n: usize, window: Duration) -> Figures {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let figures = rt.block_on(async move {
        let shutdown = CancellationToken::new();
        let (config, info) = config();
        let (handle, _task) = master::start(config, info, shutdown.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        tokio::spawn(master::listener::run(
            listener,
            handle.clone(),
            shutdown.clone(),
        ));

        let exe = std::env::current_exe().expect("own path");
        let mut child = Command::new(exe)
            .args(["--simulate", &n.to_string(), &addr])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start the simulators");
        let mut stdin = child.stdin.take().expect("stdin");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();

        let started = Instant::now();
        let joined = handle.wait_for(|s| s.worker_count == n);
        tokio::time::timeout(Duration::from_secs(120), joined)
            .await
            .expect("every simulated worker joins within 2 minutes")
            .expect("the master runs");
        let join_secs = started.elapsed().as_secs_f64();
        let request = RunRequest {
            users: n as u32 * sim::USERS,
            // All at once: the simulated workers do not ramp anyway.
            spawn_rate: master::validate::MAX_SPAWN_RATE,
            host: None,
            run_time: None,
            user_types: vec![],
            profile: None,
        };
        handle.start_run(request).await.expect("the run starts");
        tokio::time::sleep(Duration::from_secs(3)).await;

        stdin
            .write_all(b"reset\n")
            .await
            .expect("reset the simulators");
        let before = handle.snapshot();
        let per_report = sim::mean_requests_per_report();
        let cpu0 = sim::process_cpu_seconds();
        let t0 = Instant::now();
        tokio::time::sleep(window).await;
        let secs = t0.elapsed().as_secs_f64();
        let master_cores = (sim::process_cpu_seconds() - cpu0) / secs;
        // Counts and busy time advance at publications (once a heartbeat),
        // so both are measured between the same two snapshots.
        let after = handle.snapshot();
        let published = after.now_ms.saturating_sub(before.now_ms).max(1) as f64 / 1000.0;
        let merged = after.stats.num_requests()
            - before.stats.num_requests().min(after.stats.num_requests());
        let busy = after
            .coordinator_busy_us
            .saturating_sub(before.coordinator_busy_us);
        stdin
            .write_all(b"report\n")
            .await
            .expect("ask the simulators");
        let mut sim = serde_json::Value::Null;
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with('{') {
                sim = serde_json::from_str(&line).unwrap_or_default();
                break;
            }
        }
        drop(stdin);
        let _ = child.kill().await;
        shutdown.cancel();
        Figures {
            workers: n,
            join_secs,
            master_cores,
            coordinator_cores: busy as f64 / 1e6 / published,
            lost: after.lost_workers,
            load: std::fs::read_to_string("/proc/loadavg")
                .ok()
                .and_then(|l| l.split(' ').next().map(str::to_string))
                .unwrap_or_default(),
            rss_mib: rss_mib(),
            merged_per_sec: merged as f64 / per_report / published,
            sim,
        }
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    figures
}

/// This process's resident memory.
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
