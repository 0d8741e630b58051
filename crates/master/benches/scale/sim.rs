//! The simulated workers: N protocol clients in one process (a child of
//! the bench, so their CPU is not the master's), each saying hello, then
//! every second a heartbeat and a report of 50 entries with histograms,
//! as a real worker does. As a real worker, a simulator sends its next
//! report only once the last is acknowledged; a second whose report waits
//! is counted as `waited` (a real worker's would come with its next
//! report; a simulator's is not sent, so the totals hold what was sent).
//!
//! Latency is measured from sending a report to receiving the master's
//! `Ack` for it: the master acknowledges right after merging, so this is
//! the time a report waits to be counted (queueing in the coordinator
//! included), plus one loopback hop.
//!
//! Driven over stdin by the bench: `reset` starts a measurement window,
//! `report` prints one JSON line about it (with the totals sent since the
//! start, to hold against the master's), `pause` stops sending reports
//! (heartbeats go on), end of input exits. Tests start a [`Fleet`] in
//! their own process instead.
//!
//! Reports are encoded once a second per template and only their run and
//! sequence numbers patched per send, so the simulators cost little CPU and
//! the machine's cores go to the master being measured.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use protocol::{
    Hello, MasterMessage, MessageCodec, PROTOCOL_VERSION, Report, SWARMER_VERSION, WorkerMessage,
    WorkerState, WorkerStatus,
};
use stats::{LatencyHistogram, PhaseSample, RequestStats, Sample};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::bytes::BytesMut;
use tokio_util::codec::{Encoder, FramedRead};

/// Distinct report contents in rotation (rebuilt every second, so their
/// per-second counts are current, as a real worker's are).
const TEMPLATES: usize = 4;
/// Entries per report unless told otherwise.
pub const ENTRIES: usize = 50;
/// Users each simulated worker says it runs (the bench plans as many).
pub const USERS: u32 = 10;
/// Stand-ins for the run and sequence numbers in an encoded report,
/// found once and overwritten per send (msgpack writes them as 0xcf and
/// eight big-endian bytes).
const RUN_MARK: u64 = 0xdead_beef_0000_0001;
const SEQ_MARK: u64 = 0xdead_beef_0000_0002;

/// One encoded report frame and where its numbers sit.
struct Frame {
    bytes: Vec<u8>,
    run_at: usize,
    seq_at: usize,
}

impl Frame {
    fn encode(stats: RequestStats) -> Frame {
        let report = Report {
            run_id: RUN_MARK,
            seq: SEQ_MARK,
            stats,
            user_count: USERS,
            users_by_type: BTreeMap::from([("A".to_string(), USERS)]),
            pool_users: 0,
            released_indexes: Vec::new(),
        };
        let bytes = encode(WorkerMessage::Report(Box::new(report)));
        let find = |mark: u64| {
            let mut needle = vec![0xcf];
            needle.extend_from_slice(&mark.to_be_bytes());
            let at = bytes.windows(9).position(|w| w == needle.as_slice());
            at.expect("the mark is in the frame") + 1
        };
        let (run_at, seq_at) = (find(RUN_MARK), find(SEQ_MARK));
        Frame {
            bytes,
            run_at,
            seq_at,
        }
    }

    fn with(&self, run_id: u64, seq: u64) -> Vec<u8> {
        let mut out = self.bytes.clone();
        out[self.run_at..self.run_at + 8].copy_from_slice(&run_id.to_be_bytes());
        out[self.seq_at..self.seq_at + 8].copy_from_slice(&seq.to_be_bytes());
        out
    }
}

/// Checks once that a patched frame decodes to the numbers written in it.
fn check_frames() {
    use tokio_util::codec::Decoder;
    let frame = Frame::encode(one_second_of_requests(9, 1));
    let mut buf = BytesMut::from(&frame.with(7, 42)[..]);
    let mut codec = MessageCodec::<WorkerMessage, MasterMessage>::default();
    match codec.decode(&mut buf) {
        Ok(Some(WorkerMessage::Report(r))) => assert_eq!((r.run_id, r.seq), (7, 42)),
        other => panic!("a patched report does not decode: {other:?}"),
    }
}

/// One message as a length-prefixed frame, as the protocol sends it.
fn encode(msg: WorkerMessage) -> Vec<u8> {
    let mut codec = MessageCodec::<MasterMessage, WorkerMessage>::default();
    let mut buf = BytesMut::new();
    codec.encode(msg, &mut buf).expect("encode");
    buf.to_vec()
}

/// A report's frame and the requests it counts.
struct Template {
    frame: Frame,
    requests: u64,
}

/// When a simulator sends its next report.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Pace {
    /// As a worker does: once the last one is acknowledged.
    Acknowledged,
    /// Every second whatever the master says, as a worker that does not
    /// wait would: the master must hold against that too.
    EverySecond,
}

/// What all simulated workers share.
struct SimState {
    entries: usize,
    pace: Pace,
    templates: RwLock<Vec<Arc<Template>>>,
    latency: Mutex<LatencyHistogram>,
    /// Since the last `reset`.
    acked: AtomicU64,
    sent: AtomicU64,
    /// Seconds whose report waited for the last one's acknowledgement.
    waited: AtomicU64,
    ready: AtomicUsize,
    paused: AtomicBool,
    totals: Totals,
}

/// What the simulators sent and had acknowledged since they started.
#[derive(Default)]
pub struct Totals {
    pub reports_sent: AtomicU64,
    pub requests_sent: AtomicU64,
    pub reports_acked: AtomicU64,
}

/// `n` simulated workers running on the current runtime.
pub struct Fleet {
    shared: Arc<SimState>,
}

impl Fleet {
    /// Connects `n` workers sending reports of `entries` entries to
    /// `addr` at `pace`, and returns once every one is welcome.
    pub async fn start(n: usize, addr: &str, entries: usize, pace: Pace) -> Fleet {
        check_frames();
        let shared = Arc::new(SimState {
            entries,
            pace,
            templates: RwLock::new(build_templates(entries)),
            latency: Mutex::new(LatencyHistogram::new()),
            acked: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            waited: AtomicU64::new(0),
            ready: AtomicUsize::new(0),
            paused: AtomicBool::new(false),
            totals: Totals::default(),
        });
        tokio::spawn(refresh_templates(shared.clone()));
        for i in 0..n {
            tokio::spawn(worker(i, addr.to_string(), shared.clone()));
            // Do not overrun the listen backlog all at once.
            if i % 100 == 99 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        while shared.ready.load(Ordering::Relaxed) < n {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Fleet { shared }
    }

    pub fn totals(&self) -> &Totals {
        &self.shared.totals
    }

    /// The longest a report waited for its acknowledgement, in ms.
    pub fn max_wait_ms(&self) -> u64 {
        self.shared.latency.lock().expect("lock").max_us() / 1000
    }

    /// Stops sending reports (heartbeats go on).
    pub fn pause(&self) {
        self.shared.paused.store(true, Ordering::Relaxed);
    }
}

/// Runs `n` simulated workers against `addr` until stdin closes.
pub fn main(n: usize, addr: String, entries: usize, pace: Pace) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let fleet = Fleet::start(n, &addr, entries, pace).await;
        println!("ready");
        commands(&fleet).await;
    });
    rt.shutdown_timeout(Duration::from_millis(100));
}

async fn commands(fleet: &Fleet) {
    let shared = &fleet.shared;
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut cpu0 = process_cpu_seconds();
    let mut t0 = Instant::now();
    while let Ok(Some(line)) = lines.next_line().await {
        match line.trim() {
            "reset" => {
                *shared.latency.lock().expect("lock") = LatencyHistogram::new();
                shared.acked.store(0, Ordering::Relaxed);
                shared.sent.store(0, Ordering::Relaxed);
                shared.waited.store(0, Ordering::Relaxed);
                cpu0 = process_cpu_seconds();
                t0 = Instant::now();
            }
            "report" => {
                let h = shared.latency.lock().expect("lock").clone();
                let secs = t0.elapsed().as_secs_f64();
                let ms = |q: f64| h.value_at_quantile_us(q) as f64 / 1000.0;
                let line = serde_json::json!({
                    "sent_per_sec": shared.sent.load(Ordering::Relaxed) as f64 / secs,
                    "acked_per_sec": shared.acked.load(Ordering::Relaxed) as f64 / secs,
                    "waited_per_sec": shared.waited.load(Ordering::Relaxed) as f64 / secs,
                    "p50_ms": ms(0.5),
                    "p99_ms": ms(0.99),
                    "max_ms": fleet.max_wait_ms(),
                    "sim_cores": (process_cpu_seconds() - cpu0) / secs,
                    "reports_sent": fleet.totals().reports_sent.load(Ordering::Relaxed),
                    "requests_sent": fleet.totals().requests_sent.load(Ordering::Relaxed),
                    "reports_acked": fleet.totals().reports_acked.load(Ordering::Relaxed),
                });
                println!("{line}");
            }
            "pause" => fleet.pause(),
            _ => break,
        }
    }
}

async fn refresh_templates(shared: Arc<SimState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        let fresh = build_templates(shared.entries);
        *shared.templates.write().expect("lock") = fresh;
    }
}

/// A worker's send buffer as on a machine of its own: the kernel's default
/// grows to megabytes per socket, and 10,000 of them on the master's
/// machine ran its TCP memory out ("TCP: out of memory", resets and
/// dropped segments) before the master's own memory mattered. Small, a
/// simulated worker whose master is behind waits to send, as a real one
/// does, rather than piling reports into this machine's kernel.
const SEND_BUFFER_BYTES: u32 = 64 * 1024;

async fn connect(addr: &str) -> std::io::Result<TcpStream> {
    let addr: std::net::SocketAddr = addr
        .parse()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let socket = tokio::net::TcpSocket::new_v4()?;
    socket.set_send_buffer_size(SEND_BUFFER_BYTES)?;
    socket.connect(addr).await
}

/// Reports sent and not yet acknowledged, oldest first: (seq, sent at).
type InFlight = Arc<Mutex<VecDeque<(u64, Instant)>>>;

async fn worker(i: usize, addr: String, shared: Arc<SimState>) {
    let Ok(stream) = connect(&addr).await else {
        eprintln!("sim-{i}: cannot connect");
        return;
    };
    let _ = stream.set_nodelay(true);
    let (read, mut write) = stream.into_split();
    let mut stream = FramedRead::new(
        read,
        MessageCodec::<MasterMessage, WorkerMessage>::default(),
    );
    let hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        swarmer_version: SWARMER_VERSION.into(),
        worker_id: format!("sim-{i:05}"),
        incarnation: i as u64,
        cores: 1,
        token: None,
        nonce: None,
    };
    if write
        .write_all(&encode(WorkerMessage::Hello(hello)))
        .await
        .is_err()
    {
        return;
    }
    match stream.next().await {
        Some(Ok(MasterMessage::Welcome { .. })) => {}
        other => {
            eprintln!("sim-{i}: no welcome: {other:?}");
            return;
        }
    }
    shared.ready.fetch_add(1, Ordering::Relaxed);
    let run_id = Arc::new(AtomicU64::new(0));
    let users = Arc::new(AtomicU32::new(0));
    let in_flight: InFlight = Arc::default();
    let reader = {
        let (run_id, users, in_flight, shared) = (
            run_id.clone(),
            users.clone(),
            in_flight.clone(),
            shared.clone(),
        );
        async move {
            while let Some(Ok(msg)) = stream.next().await {
                match msg {
                    MasterMessage::Spawn(plan) => {
                        run_id.store(plan.run_id, Ordering::Relaxed);
                        users.store(plan.users.values().sum(), Ordering::Relaxed);
                    }
                    MasterMessage::Ack { seq } => acknowledge(&in_flight, &shared, seq),
                    _ => {}
                }
            }
        }
    };
    tokio::spawn(reader);
    // Workers start at different moments; so do their seconds.
    let offset = Duration::from_millis((i as u64 * 7919) % 1000);
    let mut tick =
        tokio::time::interval_at(tokio::time::Instant::now() + offset, Duration::from_secs(1));
    let mut seq = 0;
    loop {
        tick.tick().await;
        let user_count = users.load(Ordering::Relaxed);
        let status = WorkerStatus {
            state: Some(WorkerState::Running),
            user_count,
            cpu_percent: 35.0,
            memory_bytes: 60 << 20,
        };
        let heartbeat = encode(WorkerMessage::Heartbeat(status));
        if write.write_all(&heartbeat).await.is_err() {
            return;
        }
        let run = run_id.load(Ordering::Relaxed);
        if run == 0 || shared.paused.load(Ordering::Relaxed) {
            continue;
        }
        if shared.pace == Pace::Acknowledged && !in_flight.lock().expect("lock").is_empty() {
            shared.waited.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        seq += 1;
        let template = shared.templates.read().expect("lock")[i % TEMPLATES].clone();
        let bytes = template.frame.with(run, seq);
        in_flight
            .lock()
            .expect("lock")
            .push_back((seq, Instant::now()));
        if write.write_all(&bytes).await.is_err() {
            return;
        }
        shared.sent.fetch_add(1, Ordering::Relaxed);
        let totals = &shared.totals;
        totals.reports_sent.fetch_add(1, Ordering::Relaxed);
        totals
            .requests_sent
            .fetch_add(template.requests, Ordering::Relaxed);
    }
}

fn acknowledge(in_flight: &InFlight, shared: &SimState, seq: u64) {
    let mut q = in_flight.lock().expect("lock");
    let mut h = shared.latency.lock().expect("lock");
    while let Some(&(s, at)) = q.front() {
        if s > seq {
            break;
        }
        h.record(at.elapsed().as_micros() as u64);
        shared.acked.fetch_add(1, Ordering::Relaxed);
        shared.totals.reports_acked.fetch_add(1, Ordering::Relaxed);
        q.pop_front();
    }
}

fn build_templates(entries: usize) -> Vec<Arc<Template>> {
    (0..TEMPLATES)
        .map(|t| {
            let stats = one_second_of_requests(t as u64, entries);
            let requests = stats.num_requests();
            let frame = Frame::encode(stats);
            Arc::new(Template { frame, requests })
        })
        .collect()
}

/// Requests in one report, on average over the templates.
pub fn mean_requests_per_report(entries: usize) -> f64 {
    let total: u64 = (0..TEMPLATES)
        .map(|t| one_second_of_requests(t as u64, entries).num_requests())
        .sum();
    total as f64 / TEMPLATES as f64
}

/// What one worker records in a second: `entries` endpoints, a few
/// hundred requests each with spread latencies, some failures in a few
/// groups.
pub fn one_second_of_requests(seed: u64, entries: usize) -> RequestStats {
    let now = master::now_ms();
    let mut stats = RequestStats::new(now - 1000);
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let names: Vec<String> = (0..entries)
        .map(|i| format!("/api/v1/resource/{i}"))
        .collect();
    let errors = ["HTTP 500", "HTTP 503", "connection reset by peer"];
    for (i, name) in names.iter().enumerate() {
        let method = if i % 5 == 0 { "POST" } else { "GET" };
        let count = 100 + next() % 200;
        for _ in 0..count {
            let r = next();
            // Mostly 1-50 ms, with a long tail to a few seconds.
            let us = 1_000 + r % 49_000 + if r % 50 == 0 { r % 3_000_000 } else { 0 };
            let error = (r % 100 < 2).then(|| errors[(r % 3) as usize]);
            let sample = Sample {
                method,
                name,
                response_time_us: us,
                due_latency_us: None,
                content_length: 200 + r % 4_000,
                error,
            };
            // As an HTTP worker records them: the phases of each request,
            // on a pooled connection but for one request in a hundred.
            let fresh = r % 100 == 7;
            let phases = PhaseSample {
                connect_us: if fresh { 150 + r % 500 } else { 0 },
                tls_us: if fresh { 900 + r % 2_000 } else { 0 },
                ttfb_us: us * 9 / 10,
            };
            stats.record_with_phases(&sample, Some(&phases), now - (r % 1000));
        }
    }
    stats
}

/// CPU time this process used so far (user + system), in seconds.
pub fn process_cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) in parentheses.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 11 and 12 here;
    // the kernel counts them in USER_HZ, 100 on Linux.
    (ticks(11) + ticks(12)) / 100.0
}
