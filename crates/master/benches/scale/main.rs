//! The master at scale: one coordinator (`master::start` plus
//! `master::listener::spawn_apart` on loopback, and the web server) fed by N
//! simulated workers (`sim.rs`, in a child process so their CPU is not the
//! master's), each sending a heartbeat and a report of E entries with
//! histograms every second. Prints, per N: the master's CPU (this process)
//! in cores and per 1,000 workers, the coordinator task's share, the
//! largest RSS seen, reports merged per second of those sent, the seconds
//! a second whose report waited for the last one's acknowledgement, how long a
//! report waits for its acknowledgement (sent after the merge; the
//! snapshot shows it at the next publication, once a heartbeat), how long
//! `/healthz` and `/stats/requests` take (probed every 100 ms through the
//! window and the drain; "hz max" is `/healthz`'s worst), the workers
//! declared lost, and whether the master's total equals what the
//! simulators sent once they pause and every report is acknowledged
//! ("exact", or the difference). Last, the
//! largest N held: merged as sent, p99 under 1 s, under one core, nobody
//! lost, the web under 100 ms.
//!
//! `cargo bench -p master --bench scale`; `SCALE_WORKERS=1000,2000,5000`
//! (the default) the sizes, `SCALE_ENTRIES=50` (default; `50,500` for
//! both) the entries per report, `SCALE_SECONDS=10` the window after a 3 s
//! warm-up, `SCALE_LOG=1` the master's warnings on stderr, `SCALE_PACE=every`
//! simulators that send a report every second without waiting for the
//! last one's acknowledgement (the master's own defences alone).
//!
//! Figures of 2026-12-02 ~17:39 UTC, `SCALE_SECONDS=10`, on the 2-core VM
//! with nothing else running (the load is the simulators' and the
//! master's own). Protocol 6 (positional frames), reports recorded with
//! phases as an HTTP worker sends them (50 entries: ~39 kB, 2% failures
//! over three error texts), the binary's allocator (mimalloc), the
//! connections on their own runtime with 64 KiB receive buffers, the
//! coordinator taking its events at most every 2 ms, and simulators that,
//! as workers do, send a report only once the last is acknowledged
//! ("waited": seconds a second whose report waited):
//!
//! | workers | E   | cores | cores/1k | coordinator | RSS max MiB | merged of sent/s | waited/s | p50 / p99 ms | web p99 / max ms | lost | totals |
//! |--------:|----:|------:|---------:|------------:|------------:|-----------------:|---------:|-------------:|-----------------:|-----:|-------:|
//! |    1000 |  50 |  0.27 |     0.27 |        0.09 |          95 |     1000 of 1000 |        0 |    2.2 / 4.5 |         13 / 20  |    0 | exact  |
//! |    2000 |  50 |  0.45 |     0.22 |        0.16 |         124 |     2000 of 2001 |        0 |    2.1 / 5.2 |         12 / 15  |    0 | exact  |
//! |    5000 |  50 |  0.94 |     0.19 |        0.36 |         236 |     5000 of 4999 |        0 |    2.3 / 7.6 |         25 / 31  |    0 | exact  |
//! |   10000 |  50 |  1.47 |     0.15 |        0.69 |         704 |     6715 of 6863 |     3135 |   696 / 2408 |         38 / 45  |    0 | exact  |
//! |     250 | 500 |  0.62 |     2.49 |        0.32 |         308 |      250 of  252 |        0 |   4.6 / 66.0 |         15 / 16  |    0 | exact  |
//! |     500 | 500 |  1.03 |     2.06 |        0.56 |         292 |      500 of  500 |        0 |   5.4 / 84.5 |         22 / 22  |    0 | exact  |
//! |    1000 | 500 |  1.66 |     1.66 |        0.99 |         686 |      719 of  691 |      306 |  893 / 2933 |         73 / 73  |    0 | exact  |
//!
//! Largest count held: 5,000 with 50 entries, 250 with 500. 5,000 workers
//! took 0.90, 0.93, 0.93, 0.93 and 0.94 cores over the last runs (±5%),
//! every time merged as sent, p99 under 15 ms, nobody lost, exact, RSS
//! under 240 MiB, the web under 55 ms. At the start of the day's last
//! session it took 1.19-1.24 cores. What took it there, each measured
//! alone: the coordinator taking its events at most every 2 ms instead of
//! being woken for nearly each of 10,000 a second (1.00-1.05 -> 0.90-0.93);
//! entries in a table found by their own method and name (no key copies),
//! the strings of entries and failure groups and short histograms inline
//! (a report decoded with about half the allocations, each freed on
//! another thread than it was made on), a failure group's key copied only
//! when new (together 1.19-1.24 -> 1.00-1.05); an ack standing for the
//! next heartbeat. What remains (perf, 5,000 workers): the coordinator's
//! merge of ~20,000 wire buckets a report (`sparse::for_each_validated`,
//! 15% of the master's samples), decoding on the connection threads
//! (validating histograms 7%, msgpack 9%, mimalloc collecting cross-thread
//! frees 5%). A merge straight from the frame's bytes (no decoded report
//! at all) would be the next step; `stats/benches/merge.rs` has decode per
//! entry at 880 ns, decode and merge at 1572 ns.
//!
//! Past saturation (10,000 workers, 1,000 of 500 entries) workers wait for
//! their acknowledgements, so the master is sent what it merges: nobody
//! lost, exact totals, the web within 75 ms, RSS flat at ~700 MiB (the
//! decoded-report budget and each connection's frame buffer). With
//! `SCALE_PACE=every` (simulators that do not wait) at 10,000: 1.33
//! cores, 4,964 of 7,343 merged a second, RSS 850 MiB, the web at 281 /
//! 303 ms, nobody lost and exact in that run (7-31 lost in earlier ones):
//! the master's own defences alone. There the kernel drops segments into
//! full receive buffers (`TcpExtTCPRcvQDrop`) and the workers' TCP backs
//! off for seconds; the drops count as hearing the worker
//! (`wire::KernelDrops`), which took the lost from 28-71 to 0-31, but a
//! back-off longer than the silence limit still reads as silence.
//!
//! Before issue 16's work (2026-11, load ~2.4) 2,000 workers took 1.19-1.4
//! cores, reports waited 3-6 s, RSS reached 744 MiB and 1,071 workers were
//! declared lost.

mod sim;

/// The swarmer binary's allocator (see its `main.rs`), so the master here
/// allocates as it does there: against glibc's malloc, 2,000 workers took
/// 0.50 cores instead of 0.71-0.76.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use master::{MasterConfig, MasterHandle, RunRequest};
use protocol::ScriptText;
use script::ScriptSource;
use stats::LatencyHistogram;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{ChildStdin, ChildStdout, Command};
use tokio_util::sync::CancellationToken;

const SCRIPT: &str = r#"
local A = swarmer.user { name = "A", wait = swarmer.constant(1) }
A:task(1, function(self) self.http:get("/") end)
"#;

/// How long the simulators get, once paused, to have every report
/// acknowledged before the totals are compared.
const DRAIN: Duration = Duration::from_secs(60);

struct Figures {
    workers: usize,
    join_secs: f64,
    master_cores: f64,
    coordinator_cores: f64,
    lost: u32,
    load: String,
    rss_max_mib: f64,
    merged_per_sec: f64,
    web_p99_ms: f64,
    web_max_ms: f64,
    /// `/healthz` alone: a probe's answer does not grow with the workers
    /// as `/stats/requests`'s does (it lists every one of them).
    healthz_max_ms: f64,
    /// Requests the master counted less what the simulators sent (0: exact).
    totals_diff: i64,
    sim: serde_json::Value,
}

impl Figures {
    /// Held: a report a second from every worker (none waiting for the
    /// last one's acknowledgement) merged as fast as sent, within a second
    /// at p99, on under one core, nobody lost, the web answering within
    /// 100 ms.
    fn held(&self) -> bool {
        let sent = self.sim["sent_per_sec"].as_f64().unwrap_or(0.0);
        sent >= 0.95 * self.workers as f64
            && self.merged_per_sec >= 0.95 * sent
            && self.sim["p99_ms"].as_f64().unwrap_or(f64::MAX) < 1000.0
            && self.master_cores < 1.0
            && self.lost == 0
            && self.web_max_ms < 100.0
    }
}

fn list(var: &str, default: &str) -> Vec<usize> {
    std::env::var(var)
        .unwrap_or_else(|_| default.into())
        .split(',')
        .filter_map(|s| s.trim().parse().ok())
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--simulate") {
        let arg = |k: usize| {
            args.get(i + k)
                .expect("--simulate N ADDR ENTRIES PACE")
                .clone()
        };
        let n = arg(1).parse().expect("N");
        let entries = arg(3).parse().expect("ENTRIES");
        let pace = match arg(4).as_str() {
            "every" => sim::Pace::EverySecond,
            _ => sim::Pace::Acknowledged,
        };
        sim::main(n, arg(2), entries, pace);
        return;
    }
    if std::env::var_os("SCALE_LOG").is_some() {
        // The master's warnings (workers lost, and why) on stderr.
        tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_writer(std::io::stderr)
            .init();
    }
    let sizes = list("SCALE_WORKERS", "1000,2000,5000");
    let entry_counts = list("SCALE_ENTRIES", &sim::ENTRIES.to_string());
    let window = std::env::var("SCALE_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .map_or(Duration::from_secs(10), Duration::from_secs);
    for entries in entry_counts {
        println!(
            "master scale: each worker sends a heartbeat and a report of {entries} entries per second"
        );
        println!(
            "{:>7} {:>6} {:>7} {:>9} {:>7} {:>7} {:>13} {:>6} {:>7} {:>7} {:>7} {:>7} {:>7} {:>5} {:>5} {:>6} {:>5}",
            "workers",
            "join s",
            "cores",
            "cores/1k",
            "coord",
            "RSS max",
            "reports/s",
            "waited",
            "p50 ms",
            "p99 ms",
            "web p99",
            "web max",
            "hz max",
            "sim",
            "lost",
            "totals",
            "load"
        );
        let mut held = 0;
        // Figures on a machine busy with other work are not the master's
        // own: the last column is the 1-minute load average at the end.
        for &n in &sizes {
            let f = round(n, entries, window);
            println!(
                "{:>7} {:>6.1} {:>7.3} {:>9.3} {:>7.3} {:>7.0} {:>6.0} of {:>4.0} {:>6.0} {:>7.1} {:>7.1} {:>7.1} {:>7.1} {:>7.1} {:>5.2} {:>5} {:>6} {:>5}",
                f.workers,
                f.join_secs,
                f.master_cores,
                f.master_cores * 1000.0 / n as f64,
                f.coordinator_cores,
                f.rss_max_mib,
                f.merged_per_sec,
                f.sim["sent_per_sec"].as_f64().unwrap_or(0.0),
                f.sim["waited_per_sec"].as_f64().unwrap_or(0.0),
                f.sim["p50_ms"].as_f64().unwrap_or(0.0),
                f.sim["p99_ms"].as_f64().unwrap_or(0.0),
                f.web_p99_ms,
                f.web_max_ms,
                f.healthz_max_ms,
                f.sim["sim_cores"].as_f64().unwrap_or(0.0),
                f.lost,
                if f.totals_diff == 0 {
                    "exact".to_string()
                } else {
                    format!("{:+}", f.totals_diff)
                },
                f.load,
            );
            if f.held() {
                held = held.max(n);
            }
        }
        println!("largest worker count held with {entries} entries per report: {held}");
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

/// The simulators in their child process, driven over its stdin.
struct Sims {
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Sims {
    async fn say(&mut self, command: &str) {
        let line = format!("{command}\n");
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("the simulators listen");
    }

    async fn report(&mut self) -> serde_json::Value {
        self.say("report").await;
        while let Ok(Some(line)) = self.lines.next_line().await {
            if line.starts_with('{') {
                return serde_json::from_str(&line).unwrap_or_default();
            }
        }
        serde_json::Value::Null
    }

    /// Pauses the reports, waits until every one sent is acknowledged (or
    /// [`DRAIN`] passed), and returns the requests they counted.
    async fn drain(&mut self) -> u64 {
        self.say("pause").await;
        let deadline = Instant::now() + DRAIN;
        loop {
            let r = self.report().await;
            let sent = r["reports_sent"].as_u64().unwrap_or(0);
            if r["reports_acked"].as_u64() == Some(sent) || Instant::now() > deadline {
                return r["requests_sent"].as_u64().unwrap_or(0);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// One measurement: a fresh master, `n` simulated workers in a child.
fn round(n: usize, entries: usize, window: Duration) -> Figures {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let figures = rt.block_on(measure(n, entries, window));
    rt.shutdown_timeout(Duration::from_secs(1));
    figures
}

async fn measure(n: usize, entries: usize, window: Duration) -> Figures {
    let shutdown = CancellationToken::new();
    let (config, info) = config();
    let (handle, _task) = master::start(config, info, shutdown.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr").to_string();
    // As the swarmer binary does: the connections on a runtime of their own.
    let connections = master::listener::spawn_apart(listener, handle.clone(), shutdown.clone())
        .expect("the connections' runtime starts");
    let web = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let web_addr = web.local_addr().expect("addr").to_string();
    let web_config = master::web::WebConfig::default();
    tokio::spawn(master::web::run(
        web,
        handle.clone(),
        web_config,
        shutdown.clone(),
    ));

    let exe = std::env::current_exe().expect("own path");
    let mut child = Command::new(exe)
        .args([
            "--simulate",
            &n.to_string(),
            &addr,
            &entries.to_string(),
            &std::env::var("SCALE_PACE").unwrap_or_default(),
        ])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start the simulators");
    let mut sims = Sims {
        stdin: child.stdin.take().expect("stdin"),
        lines: BufReader::new(child.stdout.take().expect("stdout")).lines(),
    };

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

    sims.say("reset").await;
    let before = handle.snapshot();
    let per_report = sim::mean_requests_per_report(entries);
    let cpu0 = sim::process_cpu_seconds();
    let t0 = Instant::now();
    let watching = Arc::new(AtomicBool::new(true));
    let rss_max = tokio::spawn(watch_rss(watching.clone()));
    let web_latency = tokio::spawn(probe_web(web_addr, watching.clone()));
    tokio::time::sleep(window).await;
    let secs = t0.elapsed().as_secs_f64();
    let master_cores = (sim::process_cpu_seconds() - cpu0) / secs;
    // Counts and busy time advance at publications (once a heartbeat),
    // so both are measured between the same two snapshots.
    let after = handle.snapshot();
    let published = after.now_ms.saturating_sub(before.now_ms).max(1) as f64 / 1000.0;
    let merged =
        after.stats.num_requests() - before.stats.num_requests().min(after.stats.num_requests());
    let busy = after
        .coordinator_busy_us
        .saturating_sub(before.coordinator_busy_us);
    let sim = sims.report().await;
    // The web keeps being probed while the master catches up.
    let sent_requests = sims.drain().await;
    let counted = counted_after(&handle).await;
    watching.store(false, Ordering::Relaxed);
    let (web, healthz) = web_latency.await.unwrap_or_default();
    let lost = handle.snapshot().lost_workers;
    drop(sims);
    let _ = child.kill().await;
    shutdown.cancel();
    // The next round starts on a quiet machine.
    let _ = tokio::task::spawn_blocking(move || connections.join()).await;
    Figures {
        workers: n,
        join_secs,
        master_cores,
        coordinator_cores: busy as f64 / 1e6 / published,
        lost,
        load: std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split(' ').next().map(str::to_string))
            .unwrap_or_default(),
        rss_max_mib: rss_max.await.unwrap_or_default(),
        merged_per_sec: merged as f64 / per_report / published,
        web_p99_ms: web.value_at_quantile_us(0.99) as f64 / 1000.0,
        web_max_ms: web.max_us() as f64 / 1000.0,
        healthz_max_ms: healthz.max_us() as f64 / 1000.0,
        totals_diff: counted as i64 - sent_requests as i64,
        sim,
    }
}

/// The requests of the first snapshot published from now on.
async fn counted_after(handle: &MasterHandle) -> u64 {
    let newer = master::now_ms() + 1;
    let snap = tokio::time::timeout(
        Duration::from_secs(5),
        handle.wait_for(|s| s.now_ms >= newer),
    )
    .await;
    match snap {
        Ok(Ok(s)) => s.stats.num_requests(),
        _ => handle.snapshot().stats.num_requests(),
    }
}

/// The largest resident memory seen while `watching`.
async fn watch_rss(watching: Arc<AtomicBool>) -> f64 {
    let mut max: f64 = 0.0;
    while watching.load(Ordering::Relaxed) {
        max = max.max(rss_mib());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    max.max(rss_mib())
}

/// Asks for `/healthz` and `/stats/requests` (what the UI polls) in turn
/// while `watching`; how long every answer took, and `/healthz`'s alone.
async fn probe_web(
    addr: String,
    watching: Arc<AtomicBool>,
) -> (LatencyHistogram, LatencyHistogram) {
    let (mut all, mut healthz) = (LatencyHistogram::new(), LatencyHistogram::new());
    let paths = ["/healthz", "/stats/requests"];
    let mut asked = 0;
    while watching.load(Ordering::Relaxed) {
        let path = paths[asked % paths.len()];
        asked += 1;
        let t = Instant::now();
        // An error or no answer counts as the longest wait.
        let us = if get(&addr, path).await {
            t.elapsed().as_micros() as u64
        } else {
            10_000_000
        };
        all.record(us);
        if path == "/healthz" {
            healthz.record(us);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    (all, healthz)
}

/// One HTTP/1.1 GET on a fresh connection; whether a 200 came back whole.
async fn get(addr: &str, path: &str) -> bool {
    let ask = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        let request =
            format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        s.write_all(request.as_bytes()).await.ok()?;
        let mut answer = Vec::new();
        s.read_to_end(&mut answer).await.ok()?;
        Some(answer.starts_with(b"HTTP/1.1 200"))
    };
    tokio::time::timeout(Duration::from_secs(10), ask)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
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
