//! One core's share of the users: a thread with a current-thread runtime, a
//! Lua state and the users it runs, driven by commands from the engine.
//!
//! Everything here is `!Send` (Lua), so it never leaves its thread; the
//! engine talks to it only through [`CoreCommand`].

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use script::{CoreRuntime, RuntimeConfig, ScriptSource};
use stats::RequestStats;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, LocalSet};
use tokio_util::sync::CancellationToken;

use crate::arrival_pool::{self, Aborted, ArrivalRun, CoreShare};
use crate::indexes::Indexes;
use crate::plan::{Change, Counts, RampPace, next_change, pending_changes};

pub enum CoreCommand {
    Load {
        script: ScriptSource,
        config: Box<RuntimeConfig>,
        /// What users a downscale removes get to finish their task.
        stop_timeout: Duration,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Move towards these counts at `rate_per_sec` (this core's share).
    SetUsers {
        target: BTreeMap<String, u32>,
        rate_per_sec: f64,
        /// Where the ramp's clock starts (the plan's arrival).
        since: Instant,
    },
    /// Run these arrival-driven types at these shares; stop the others.
    SetArrivals {
        arrivals: BTreeMap<String, CoreShare>,
    },
    /// Stop every user; abandon those still busy after `timeout`.
    StopAll {
        timeout: Duration,
        reply: oneshot::Sender<()>,
    },
    Collect {
        reply: oneshot::Sender<CoreAnswer>,
    },
}

/// A core's answer to a collection: what it recorded since the last one
/// and who runs on it now.
#[derive(Debug, Default)]
pub struct CoreAnswer {
    pub stats: RequestStats,
    /// Closed-model users per type (the ones a plan's counts ask for).
    pub users: BTreeMap<String, u32>,
    /// Users allocated in its arrival pools, idle or busy: the open
    /// model's concurrency, which no plan count asks for.
    pub pool_users: u32,
}

/// A running user: cancelling `stop` asks it to finish; `task` is aborted if
/// it overstays the stop timeout.
struct UserSlot {
    stop: CancellationToken,
    task: JoinHandle<()>,
    /// Its run-wide index (0 for an arrival driver, which has none).
    index: u32,
}

struct Core {
    runtime: Option<CoreRuntime>,
    stats: Rc<RefCell<RequestStats>>,
    users: BTreeMap<String, Vec<UserSlot>>,
    target: BTreeMap<String, u32>,
    ramp: Option<Ramp>,
    /// Arrival-driven types: each a driver with its pool of users.
    arrivals: BTreeMap<String, ArrivalRun>,
    /// Users told to stop by a downscale, still finishing their task, with
    /// the moment they are aborted if they have not.
    leaving: Vec<(UserSlot, Instant)>,
    stop_timeout: Duration,
    /// Names this worker in exceptions (from the loaded config).
    node_id: String,
    /// The worker's run-wide user indexes, shared with its other cores.
    indexes: Indexes,
    /// Pooled users aborted with their arrival driver, until dropped.
    aborted: Aborted,
}

struct Ramp {
    started: Instant,
    pace: RampPace,
}

/// Most users one ramp step starts: creating a user is quick but not free,
/// and a step of 100,000 users would keep the core from its other users
/// and its commands for too long. At 50 steps a second this still allows
/// 100,000 users a second per core.
const MAX_CHANGES_PER_STEP: u32 = 2_000;

/// Starts a core thread and returns the sender that drives it.
pub fn spawn(
    index: usize,
    indexes: Indexes,
) -> std::io::Result<mpsc::UnboundedSender<CoreCommand>> {
    let (tx, rx) = mpsc::unbounded_channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name(format!("swarmer-core-{index}"))
        .spawn(move || {
            let local = LocalSet::new();
            local.block_on(&runtime, run(rx, indexes));
        })?;
    Ok(tx)
}

async fn run(mut rx: mpsc::UnboundedReceiver<CoreCommand>, indexes: Indexes) {
    let mut core = Core {
        runtime: None,
        stats: Rc::new(RefCell::new(RequestStats::new(now_ms()))),
        users: BTreeMap::new(),
        target: BTreeMap::new(),
        ramp: None,
        arrivals: BTreeMap::new(),
        leaving: Vec::new(),
        stop_timeout: Duration::from_secs(10),
        node_id: String::new(),
        indexes,
        aborted: Aborted::default(),
    };
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            cmd = rx.recv() => match cmd {
                Some(cmd) => core.handle(cmd).await,
                // The engine is gone: stop users at once, the process is ending.
                None => break,
            },
            _ = tick.tick(), if core.ramp.is_some() || !core.leaving.is_empty() => core.step(),
        }
    }
    core.stop_all(Duration::ZERO).await;
}

impl Core {
    async fn handle(&mut self, cmd: CoreCommand) {
        match cmd {
            CoreCommand::Load {
                script,
                config,
                stop_timeout,
                reply,
            } => {
                self.stop_all(self.stop_timeout).await;
                self.stop_timeout = stop_timeout;
                self.node_id = config.node_id.clone();
                let result = CoreRuntime::new(&script, *config, self.stats.clone())
                    .map(|rt| self.runtime = Some(rt))
                    .map_err(|e| e.to_string());
                let _ = reply.send(result);
            }
            CoreCommand::SetUsers {
                target,
                rate_per_sec,
                since,
            } => {
                self.target = target;
                self.ramp = Some(Ramp {
                    started: since,
                    pace: RampPace::new(rate_per_sec),
                });
                self.step();
            }
            CoreCommand::SetArrivals { arrivals } => self.set_arrivals(arrivals),
            CoreCommand::StopAll { timeout, reply } => {
                self.stop_all(timeout).await;
                let _ = reply.send(());
            }
            CoreCommand::Collect { reply } => {
                let stats = self.stats.borrow_mut().take_report();
                let _ = reply.send(CoreAnswer {
                    stats,
                    users: self.user_counts(),
                    pool_users: self.arrivals.values().map(|a| a.allocated.get()).sum(),
                });
            }
        }
    }

    /// Starts, retunes or stops arrival drivers to match `wanted`.
    fn set_arrivals(&mut self, mut wanted: BTreeMap<String, CoreShare>) {
        let gone: Vec<String> = self
            .arrivals
            .keys()
            .filter(|name| !wanted.contains_key(*name))
            .cloned()
            .collect();
        for name in gone {
            if let Some(run) = self.arrivals.remove(&name) {
                self.retire(run);
            }
        }
        for (name, run) in &self.arrivals {
            if let Some(share) = wanted.remove(name) {
                run.ctl.send_if_modified(|old| {
                    let changed = *old != share;
                    *old = share;
                    changed
                });
            }
        }
        let Some(runtime) = &self.runtime else { return };
        for (name, share) in wanted {
            let spec = runtime
                .info()
                .user_types
                .iter()
                .find(|t| t.name == name)
                .and_then(|t| t.arrivals.clone());
            let Some(spec) = spec else {
                tracing::error!(
                    "the plan has arrivals for {name}, which the script does not drive by arrivals"
                );
                continue;
            };
            let run = arrival_pool::start(
                runtime.clone(),
                self.indexes.clone(),
                name.clone(),
                spec,
                share,
                self.stats.clone(),
                self.aborted.clone(),
            );
            self.arrivals.insert(name, run);
        }
    }

    /// A driver no longer wanted: its users finish their task, within the
    /// stop timeout.
    fn retire(&mut self, run: ArrivalRun) {
        run.stop.cancel();
        let slot = UserSlot {
            stop: run.stop,
            task: run.task,
            index: 0,
        };
        self.leaving
            .push((slot, Instant::now() + self.stop_timeout));
    }

    fn user_counts(&self) -> Counts {
        self.users
            .iter()
            .map(|(name, slots)| (name.clone(), slots.len() as u32))
            .collect()
    }

    /// One ramp step: start or stop as many users as the rate allows so far.
    fn step(&mut self) {
        self.reap_leaving();
        let Some(ramp) = &self.ramp else { return };
        let pending = pending_changes(&self.target, &self.user_counts());
        let budget = ramp
            .pace
            .budget(ramp.started.elapsed().as_secs_f64(), pending)
            .min(MAX_CHANGES_PER_STEP);
        let mut made = 0;
        let mut failed = Failures::default();
        while made < budget {
            let Some(change) = next_change(&self.target, &self.user_counts()) else {
                break;
            };
            match change {
                Change::Start(name) => {
                    if let Err(e) = self.start_user(&name) {
                        let StartError::Failed(e) = e else {
                            // Every index is held, some by users still
                            // stopping: the next step tries again.
                            break;
                        };
                        failed.note(&name, e);
                        // No retry in this ramp: every attempt would fail
                        // the same way. The next plan tries again.
                        let have = self.users.get(&name).map_or(0, Vec::len) as u32;
                        self.target.insert(name, have);
                        continue;
                    }
                }
                Change::Stop(name) => self.stop_one_user(&name),
            }
            made += 1;
        }
        failed.report(&self.stats, &self.node_id, &self.user_counts());
        if let Some(ramp) = &mut self.ramp {
            ramp.pace.done += made;
        }
        if pending_changes(&self.target, &self.user_counts()) == 0 {
            self.ramp = None;
        }
    }

    /// Stops the newest user of `name`, or rather one whose index the
    /// master took back: the master hands that index on only once its
    /// user has ended.
    fn stop_one_user(&mut self, name: &str) {
        let Some(slots) = self.users.get_mut(name) else {
            return;
        };
        let revoked = slots
            .iter()
            .rposition(|s| !self.indexes.is_granted(s.index));
        let slot = match revoked {
            Some(i) => slots.remove(i),
            None => match slots.pop() {
                Some(slot) => slot,
                None => return,
            },
        };
        slot.stop.cancel();
        self.leaving
            .push((slot, Instant::now() + self.stop_timeout));
    }

    /// Creates a user and starts it; an error means no user was created.
    fn start_user(&mut self, name: &str) -> Result<(), StartError> {
        let Some(runtime) = &self.runtime else {
            return Err(StartError::Failed("no script is loaded".into()));
        };
        let lease = self.indexes.take().ok_or(StartError::NoIndex)?;
        let stop = CancellationToken::new();
        let user = runtime
            .run_user_indexed(name, stop.clone(), lease.index)
            .map_err(|e| StartError::Failed(e.to_string()))?;
        // The index goes back when the task ends or is aborted.
        let index = lease.index;
        let task = tokio::task::spawn_local(async move {
            let _lease = lease;
            user.await
        });
        self.users
            .entry(name.to_string())
            .or_default()
            .push(UserSlot { stop, task, index });
        Ok(())
    }

    fn reap_leaving(&mut self) {
        self.aborted.prune();
        let now = Instant::now();
        self.leaving.retain(|(slot, deadline)| {
            if now >= *deadline {
                slot.task.abort();
            }
            !slot.task.is_finished() && now < *deadline
        });
    }

    /// Asks every user to stop, waits up to `timeout` for them to finish
    /// their task and `on_stop`, then aborts the rest.
    async fn stop_all(&mut self, timeout: Duration) {
        self.target.clear();
        self.ramp = None;
        let mut slots: Vec<UserSlot> = std::mem::take(&mut self.leaving)
            .into_iter()
            .map(|(slot, _)| slot)
            .collect();
        for (_, mut users) in std::mem::take(&mut self.users) {
            slots.append(&mut users);
        }
        // Aborting a driver (below) aborts its pool's users with it.
        for (_, run) in std::mem::take(&mut self.arrivals) {
            slots.push(UserSlot {
                stop: run.stop,
                task: run.task,
                index: 0,
            });
        }
        for slot in &slots {
            slot.stop.cancel();
        }
        let deadline = tokio::time::Instant::now() + timeout;
        for mut slot in slots {
            if tokio::time::timeout_at(deadline, &mut slot.task)
                .await
                .is_err()
            {
                // `abort` only schedules the drop; awaiting the handle waits
                // for it, so that a request cut short is counted ("cancelled
                // at stop") before this core answers its next collection.
                slot.task.abort();
                let _ = slot.task.await;
            }
        }
        self.aborted.settle().await;
    }
}

/// Why a user was not started.
enum StartError {
    /// Every index this worker holds is in use for now.
    NoIndex,
    Failed(String),
}

/// Users that could not be created in one ramp step, per type, with the
/// first reason: said once per step, loudly, and counted as exceptions so
/// the run's report shows them too.
#[derive(Default)]
struct Failures(BTreeMap<String, (u32, String)>);

impl Failures {
    fn note(&mut self, name: &str, reason: String) {
        self.0.entry(name.to_string()).or_insert((0, reason)).0 += 1;
    }

    fn report(self, stats: &RefCell<RequestStats>, node: &str, running: &Counts) {
        for (name, (count, reason)) in self.0 {
            let have = running.get(&name).copied().unwrap_or(0);
            let msg = format!("could not create a {name} user: {reason}");
            tracing::error!("{msg} ({count} not created; {have} {name} users run on this core)");
            let mut stats = stats.borrow_mut();
            for _ in 0..count {
                stats.record_exception(&msg, "", node, now_ms());
            }
        }
    }
}

pub use stats::now_ms;
