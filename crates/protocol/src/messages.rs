//! The messages of both directions, and the small types they carry.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What a worker is doing, as the master shows it. `Lost` is never sent by a
/// worker: the master assigns it when heartbeats stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkerState {
    Ready,
    Spawning,
    Running,
    Stopping,
    Lost,
}

impl WorkerState {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerState::Ready => "ready",
            WorkerState::Spawning => "spawning",
            WorkerState::Running => "running",
            WorkerState::Stopping => "stopping",
            WorkerState::Lost => "lost",
        }
    }
}

/// The first message on every connection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Hello {
    pub protocol_version: u32,
    pub swarmer_version: String,
    pub worker_id: String,
    /// Random per worker process: tells a restarted process (whose report
    /// numbers start again) from a reconnecting one (whose may repeat).
    pub incarnation: u64,
    pub cores: u32,
    /// Never sent since protocol 3 (the token does not cross the wire any
    /// more; see `nonce`), and ignored. Kept because a hello only ever
    /// gains fields.
    pub token: Option<String>,
    /// A fresh random nonce of [`crate::NONCE_BYTES`], present when this
    /// worker has a cluster token: both sides then prove they know it over
    /// this and the master's nonce ([`crate::Exchange`]) before anything
    /// else is said.
    #[serde(default)]
    pub nonce: Option<Vec<u8>>,
}

/// Resource use and users, sent with every heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WorkerStatus {
    pub state: Option<WorkerState>,
    pub user_count: u32,
    pub cpu_percent: f32,
    pub memory_bytes: u64,
}

/// The deltas since the previous report. `seq` lets the master drop a
/// report it has already merged (a resend after reconnect), so no request
/// is counted twice.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Report {
    pub run_id: u64,
    pub seq: u64,
    pub stats: stats::RequestStats,
    /// Closed-model users (what the plan's counts ask for).
    pub user_count: u32,
    pub users_by_type: BTreeMap<String, u32>,
    /// Users allocated in the open model's arrival pools, idle or busy:
    /// not in `user_count`, since no plan count asks for them.
    #[serde(default)]
    pub pool_users: u32,
    /// User indexes (`self.index`) the master took back from this worker
    /// that no user of it holds any more: the master may now hand them to
    /// another worker. Sent again with the report until acknowledged;
    /// releasing twice is harmless.
    #[serde(default)]
    pub released_indexes: Vec<u32>,
}

/// How many users of each type one worker should run, and how fast to get
/// there. Sent at start and whenever the master rebalances.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpawnPlan {
    pub run_id: u64,
    pub users: BTreeMap<String, u32>,
    /// This worker's share of the run's spawn rate, users per second.
    pub spawn_rate: f64,
    pub host: Option<String>,
    pub tags: Vec<String>,
    pub exclude_tags: Vec<String>,
    /// The script to run, by hash; the bundle comes along only the first
    /// time this connection hears of it. A worker reloads when it differs
    /// from its own.
    pub script: crate::ScriptRef,
    /// This worker's part of each arrival-driven (open model) user type;
    /// a type missing here has no arrivals on this worker.
    #[serde(default)]
    pub arrivals: BTreeMap<String, ArrivalShare>,
    /// The run-wide user indexes (`self.index`) this worker's users take
    /// from, as inclusive ranges: one per user it may run at once (its
    /// users plus its arrival pools' bounds). Slots it held before and
    /// holds no more are still used by running users until they stop;
    /// the worker says so in `Report::released_indexes`. `None` (an older
    /// master): the worker numbers its users itself.
    #[serde(default)]
    pub indexes: Option<Vec<IndexRange>>,
}

/// `first..=last`, a run of user indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct IndexRange {
    pub first: u32,
    pub last: u32,
}

/// One worker's part of an arrival-driven user type. The master owns the
/// arithmetic: the shares of all workers add up to 1, and their pools to
/// the type's `max_users`, so the cluster makes the configured rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArrivalShare {
    /// The fraction (0..=1) of the type's arrival rate this worker makes.
    pub share: f64,
    /// This worker's part of the pool bounds.
    pub pre_allocated: u32,
    pub max_users: u32,
    /// How far into the arrival profile the run is as the plan is sent, so
    /// a worker joining mid-profile (stages) follows the same clock.
    pub elapsed_ms: u64,
}

/// A script as the master holds it. Plain text here, so the protocol does
/// not depend on the Lua runtime. It travels as a [`crate::ScriptBundle`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptText {
    /// The path on the master, for error messages (`file:line`).
    pub path: String,
    pub code: String,
    /// The files it reads, sent with it.
    #[serde(default)]
    pub files: Vec<crate::BundleFile>,
}

impl From<&ScriptText> for crate::ScriptBundle {
    fn from(script: &ScriptText) -> Self {
        crate::ScriptBundle {
            files: script.files.clone(),
            ..crate::ScriptBundle::script(&script.path, &script.code)
        }
    }
}

/// What a worker says. `Hello` comes first and keeps its shape across
/// versions (fields may only be added), so any master can read the version
/// it carries and refuse it by name.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum WorkerMessage {
    Hello(Hello),
    /// Answers the master's `Challenge`: [`crate::Exchange::worker_proof`].
    Proof {
        mac: Vec<u8>,
    },
    Heartbeat(WorkerStatus),
    /// Boxed: a report dwarfs every other message.
    Report(Box<Report>),
    /// A plan named a script by a hash this worker does not hold: the
    /// master sends the plan again with the bundle.
    ScriptWanted {
        hash: crate::ScriptHash,
    },
    /// The worker could not load the script the master sent.
    ScriptError {
        message: String,
    },
    /// Every user of `run_id` has stopped and the final report came before.
    Stopped {
        run_id: u64,
    },
    /// Leaving for good (SIGTERM, a downscale); the final report came before.
    Quitting,
    /// A `unique` feeder of this worker ran out of rows: it asks for the
    /// next `want` of its `rows` rows. The master answers `FeederGrant`;
    /// requests of one feeder are answered in order.
    FeederLease {
        run_id: u64,
        feeder: String,
        rows: u32,
        want: u32,
    },
}

/// What the master says. `Welcome` and `Refused` answer a hello, so their
/// shape must never change: a worker of another version must still be able
/// to read why it was refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MasterMessage {
    Welcome {
        heartbeat_interval_ms: u64,
        report_interval_ms: u64,
        /// Random per master process: a worker that finds a different one
        /// after reconnecting knows the master restarted, and drops what
        /// it still held for the old one.
        #[serde(default)]
        master_id: u64,
        /// [`crate::Exchange::master_proof`], when the worker's hello
        /// carried a nonce: a worker with a token trusts no master without it.
        #[serde(default)]
        proof: Option<Vec<u8>>,
    },
    Refused {
        reason: String,
    },
    /// Answers a hello that carried a nonce: the master's own nonce, which
    /// the worker's `Proof` must cover.
    Challenge {
        nonce: Vec<u8>,
    },
    /// Every report up to `seq` is merged (or was a duplicate): the worker
    /// may forget it. Reports not yet acknowledged are sent again after a
    /// reconnect, which is what makes totals exact through network cuts.
    Ack {
        seq: u64,
    },
    /// Boxed: a plan dwarfs the other messages.
    Spawn(Box<SpawnPlan>),
    /// Stop every user, within `stop_timeout_ms`, then send a final report.
    Stop {
        run_id: u64,
        stop_timeout_ms: u64,
    },
    ResetStats,
    Heartbeat,
    /// The master is going away; the worker should exit.
    Quit,
    /// Answers `FeederLease`: rows `first..first + count` (0-based) are
    /// this worker's alone for the run. `count` 0: every row is handed out.
    FeederGrant {
        feeder: String,
        first: u32,
        count: u32,
    },
}
