//! The engine: every core of this machine running users, steered as one.
//!
//! It owns one [`crate::core`] thread per core and fans the master's plan
//! out to them: users are split evenly across cores and each core ramps at
//! its share of the spawn rate, so the whole worker ramps at the plan's rate.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use script::files::FileSet;
use script::{LuaLimits, RuntimeConfig, ScriptSource};
use stats::RequestStats;
use tokio::sync::{mpsc, oneshot};

use crate::core::{self, CoreAnswer, CoreCommand};
use crate::indexes::Indexes;
use crate::plan::split_across_cores;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Threads to run users on; 0 means one per available core.
    pub cores: usize,
    /// Names this worker in exception "nodes".
    pub node_id: String,
    pub insecure_tls: bool,
    /// `--accept-encoding`, `--resolve`.
    pub http: std::sync::Arc<script::HttpSettings>,
    /// Where relative data-file paths in scripts resolve.
    pub base_dir: Option<PathBuf>,
    /// Time and memory bounds of every core's Lua state.
    pub limits: LuaLimits,
    /// How long a user a downscale removes may take to finish its task
    /// (`--stop-timeout`). Set once here: a stop of the old run with no
    /// grace (a new run, a refusal) must not shorten the next run's.
    pub stop_timeout: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot start a core thread: {0}")]
    Thread(#[from] std::io::Error),
    #[error("{0}")]
    Script(String),
    #[error("a core thread has stopped unexpectedly")]
    CoreGone,
}

/// What the cores recorded since the last collection, and who runs now.
#[derive(Debug, Default)]
pub struct Collected {
    pub stats: RequestStats,
    pub users_by_type: BTreeMap<String, u32>,
    /// Cores that did not answer in time (busy in Lua); what they hold
    /// comes with a later collection.
    pub late_cores: usize,
    /// Users allocated in the arrival pools (not in `users_by_type`).
    pub pool_users: u32,
    /// Indexes the master took back that no user holds any more.
    pub released_indexes: Vec<u32>,
}

impl Collected {
    pub fn user_count(&self) -> u32 {
        self.users_by_type.values().sum()
    }
}

pub struct Engine {
    /// Set once the open-files warning was given, so it is given once.
    fd_warned: std::sync::atomic::AtomicBool,
    cores: Vec<CoreLink>,
    config: EngineConfig,
    /// The script the cores hold, with the files that came with it.
    loaded: Option<(ScriptSource, Option<Arc<FileSet>>)>,
    /// The run-wide user indexes the master granted, shared by the cores.
    indexes: Indexes,
    /// `unique` feeders' requests for rows, for the session to forward.
    leases: mpsc::UnboundedReceiver<script::LeaseRequest>,
    lease_tx: script::LeaseSender,
}

/// The engine's side of one core.
struct CoreLink {
    tx: mpsc::UnboundedSender<CoreCommand>,
    /// A collection the core has not answered yet.
    collecting: Option<oneshot::Receiver<CoreAnswer>>,
    /// Its users (closed model, arrival pools) at its last answer.
    users: BTreeMap<String, u32>,
    pool_users: u32,
}

impl Engine {
    pub fn start(config: EngineConfig) -> Result<Self, EngineError> {
        let count = match config.cores {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let indexes = Indexes::default();
        let cores = (0..count)
            .map(|i| {
                core::spawn(i, indexes.clone()).map(|tx| CoreLink {
                    tx,
                    collecting: None,
                    users: BTreeMap::new(),
                    pool_users: 0,
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (lease_tx, leases) = mpsc::unbounded_channel();
        Ok(Self {
            fd_warned: Default::default(),
            cores,
            config,
            loaded: None,
            indexes,
            leases,
            lease_tx,
        })
    }

    pub fn core_count(&self) -> usize {
        self.cores.len()
    }

    /// Longest a core may take to answer when one of its users is inside
    /// Lua: the watchdog interrupts it after the task time limit.
    pub fn settle_time(&self) -> Duration {
        self.config.limits.task_time + Duration::from_secs(2)
    }

    pub fn loaded_script(&self) -> Option<&ScriptSource> {
        self.loaded.as_ref().map(|(s, _)| s)
    }

    /// Whether the cores hold `script` with exactly `files`.
    pub fn holds(&self, script: &ScriptSource, files: &FileSet) -> bool {
        self.loaded
            .as_ref()
            .is_some_and(|(s, f)| s == script && f.as_deref() == Some(files))
    }

    /// Loads `script` on every core (stopping any users first), reading
    /// its files from disk. The first core's error is returned as is: it
    /// names the file and line.
    pub async fn load(
        &mut self,
        script: &ScriptSource,
        host: Option<String>,
        tags: Vec<String>,
        exclude_tags: Vec<String>,
    ) -> Result<(), EngineError> {
        self.load_sent(script, None, host, tags, exclude_tags).await
    }

    /// [`Engine::load`] for a script the master sent: with `files`, the
    /// script reads only those, never this machine's disk.
    pub async fn load_sent(
        &mut self,
        script: &ScriptSource,
        files: Option<Arc<FileSet>>,
        host: Option<String>,
        tags: Vec<String>,
        exclude_tags: Vec<String>,
    ) -> Result<(), EngineError> {
        let config = RuntimeConfig {
            host,
            insecure_tls: self.config.insecure_tls,
            http: self.config.http.clone(),
            tags,
            exclude_tags,
            node_id: self.config.node_id.clone(),
            base_dir: self.config.base_dir.clone(),
            files: files.clone(),
            limits: self.config.limits,
            feeder_leases: Some(self.lease_tx.clone()),
        };
        let mut replies = Vec::new();
        for core in &self.cores {
            let (reply, rx) = oneshot::channel();
            let cmd = CoreCommand::Load {
                script: script.clone(),
                config: Box::new(config.clone()),
                stop_timeout: self.config.stop_timeout,
                reply,
            };
            core.tx.send(cmd).map_err(|_| EngineError::CoreGone)?;
            replies.push(rx);
        }
        self.loaded = None;
        for rx in replies {
            rx.await
                .map_err(|_| EngineError::CoreGone)?
                .map_err(EngineError::Script)?;
        }
        self.loaded = Some((script.clone(), files));
        // The cores stopped the old run's users before loading.
        self.indexes.reset();
        Ok(())
    }

    /// The run-wide user indexes the master grants this worker with a
    /// plan (`None`: it grants none, and users are numbered here).
    pub fn grant_indexes(&self, ranges: Option<&[protocol::IndexRange]>) {
        self.indexes.grant(ranges);
    }

    /// Indexes the master took back that no user holds any more, since
    /// the last call: for the next report.
    pub fn released_indexes(&self) -> Vec<u32> {
        self.indexes.take_released()
    }

    /// The next request of a `unique` feeder for rows from the master.
    pub async fn next_lease(&mut self) -> Option<script::LeaseRequest> {
        self.leases.recv().await
    }

    /// Moves towards `users` (per type, for this whole worker) at
    /// `spawn_rate` users per second in total.
    ///
    /// The ramp counts from `since`, when the plan arrived: time spent
    /// loading the script before it could start is made up at once, so
    /// the users follow the master's profile clock, not one that starts a
    /// load late.
    pub fn apply(
        &self,
        users: &BTreeMap<String, u32>,
        spawn_rate: f64,
        since: Instant,
    ) -> Result<(), EngineError> {
        self.check_open_files(users.values().map(|&n| u64::from(n)).sum());
        let per_core = split_across_cores(users, self.cores.len());
        let rate = spawn_rate / self.cores.len() as f64;
        for (core, target) in self.cores.iter().zip(per_core) {
            let cmd = CoreCommand::SetUsers {
                target,
                rate_per_sec: rate,
                since,
            };
            core.tx.send(cmd).map_err(|_| EngineError::CoreGone)?;
        }
        Ok(())
    }

    /// Runs this worker's part of each arrival-driven type (`arrivals`),
    /// split over the cores; types missing from it stop.
    pub fn apply_arrivals(
        &self,
        arrivals: &BTreeMap<String, protocol::ArrivalShare>,
    ) -> Result<(), EngineError> {
        let mut per_core = vec![BTreeMap::new(); self.cores.len()];
        for (name, share) in arrivals {
            let parts = crate::arrival_pool::split_across_cores(share, self.cores.len());
            for (core, part) in per_core.iter_mut().zip(parts) {
                if part.max_users > 0 {
                    core.insert(name.clone(), part);
                }
            }
        }
        for (core, arrivals) in self.cores.iter().zip(per_core) {
            core.tx
                .send(CoreCommand::SetArrivals { arrivals })
                .map_err(|_| EngineError::CoreGone)?;
        }
        Ok(())
    }

    /// Says once, before it bites, when users that each keep a connection
    /// would pass this process's open-files limit: otherwise the run shows
    /// only a pile of "Too many open files" failures.
    fn check_open_files(&self, users: u64) {
        use std::sync::atomic::Ordering;
        let Some(limit) = open_files_limit() else {
            return;
        };
        // Room for the master link, logs, the runtime's own descriptors.
        let room = limit.saturating_sub(64);
        if users > room && !self.fd_warned.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                "{users} users may each keep a connection open, but this process may open only \
                 {limit} files: users past that fail to connect. Raise the limit with `ulimit -n` \
                 (or run more workers)"
            );
        }
    }

    /// Stops every user on every core, waiting at most `timeout`.
    pub async fn stop(&self, timeout: Duration) -> Result<(), EngineError> {
        let mut replies = Vec::new();
        for core in &self.cores {
            let (reply, rx) = oneshot::channel();
            core.tx
                .send(CoreCommand::StopAll { timeout, reply })
                .map_err(|_| EngineError::CoreGone)?;
            replies.push(rx);
        }
        for rx in replies {
            rx.await.map_err(|_| EngineError::CoreGone)?;
        }
        Ok(())
    }

    /// Takes what the cores recorded since the last call, merged, waiting
    /// at most `wait` for them. A core busy in a long task misses this
    /// collection, never loses anything: its answer is picked up by the
    /// next one, and its users are counted as at its last answer.
    ///
    /// An answer that arrived since the last call is taken and a new
    /// question asked as well: that answer predates whatever the core did
    /// since (a stop that counted requests cut short, say), and the final
    /// report must hold everything.
    pub async fn collect(&mut self, wait: Duration) -> Result<Collected, EngineError> {
        let mut out = Collected::default();
        for core in &mut self.cores {
            if let Some(rx) = &mut core.collecting {
                match rx.try_recv() {
                    Ok(answer) => {
                        out.stats.merge(&answer.stats);
                        (core.users, core.pool_users) = (answer.users, answer.pool_users);
                        core.collecting = None;
                    }
                    Err(oneshot::error::TryRecvError::Empty) => {}
                    Err(oneshot::error::TryRecvError::Closed) => return Err(EngineError::CoreGone),
                }
            }
            if core.collecting.is_none() {
                let (reply, rx) = oneshot::channel();
                core.tx
                    .send(CoreCommand::Collect { reply })
                    .map_err(|_| EngineError::CoreGone)?;
                core.collecting = Some(rx);
            }
        }
        let deadline = tokio::time::Instant::now() + wait;
        for core in &mut self.cores {
            let Some(rx) = &mut core.collecting else {
                continue;
            };
            match tokio::time::timeout_at(deadline, rx).await {
                Ok(answer) => {
                    let answer = answer.map_err(|_| EngineError::CoreGone)?;
                    out.stats.merge(&answer.stats);
                    (core.users, core.pool_users) = (answer.users, answer.pool_users);
                    core.collecting = None;
                }
                Err(_) => out.late_cores += 1,
            }
            out.pool_users += core.pool_users;
            for (name, n) in &core.users {
                *out.users_by_type.entry(name.clone()).or_default() += n;
            }
        }
        Ok(out)
    }
}

/// This process's soft limit on open files, where the system says it.
fn open_files_limit() -> Option<u64> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}
