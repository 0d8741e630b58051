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

use crate::plan::ramp_allowance;

pub enum CoreCommand {
    Load {
        script: ScriptSource,
        config: RuntimeConfig,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Move towards these counts at `rate_per_sec` (this core's share).
    SetUsers {
        target: BTreeMap<String, u32>,
        rate_per_sec: f64,
    },
    /// Stop every user; abandon those still busy after `timeout`.
    StopAll {
        timeout: Duration,
        reply: oneshot::Sender<()>,
    },
    Collect {
        reply: oneshot::Sender<(RequestStats, BTreeMap<String, u32>)>,
    },
}

/// A running user: cancelling `stop` asks it to finish; `task` is aborted if
/// it overstays the stop timeout.
struct UserSlot {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

struct Core {
    runtime: Option<CoreRuntime>,
    stats: Rc<RefCell<RequestStats>>,
    users: BTreeMap<String, Vec<UserSlot>>,
    target: BTreeMap<String, u32>,
    ramp: Option<Ramp>,
    /// Users told to stop by a downscale, still finishing their task, with
    /// the moment they are aborted if they have not.
    leaving: Vec<(UserSlot, Instant)>,
    stop_timeout: Duration,
}

struct Ramp {
    started: Instant,
    rate_per_sec: f64,
    done: u32,
}

/// Starts a core thread and returns the sender that drives it.
pub fn spawn(index: usize) -> std::io::Result<mpsc::UnboundedSender<CoreCommand>> {
    let (tx, rx) = mpsc::unbounded_channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    std::thread::Builder::new()
        .name(format!("swarmer-core-{index}"))
        .spawn(move || {
            let local = LocalSet::new();
            local.block_on(&runtime, run(rx));
        })?;
    Ok(tx)
}

async fn run(mut rx: mpsc::UnboundedReceiver<CoreCommand>) {
    let mut core = Core {
        runtime: None,
        stats: Rc::new(RefCell::new(RequestStats::new(now_ms()))),
        users: BTreeMap::new(),
        target: BTreeMap::new(),
        ramp: None,
        leaving: Vec::new(),
        stop_timeout: Duration::from_secs(10),
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
                reply,
            } => {
                self.stop_all(self.stop_timeout).await;
                let result = CoreRuntime::new(&script, config, self.stats.clone())
                    .map(|rt| self.runtime = Some(rt))
                    .map_err(|e| e.to_string());
                let _ = reply.send(result);
            }
            CoreCommand::SetUsers {
                target,
                rate_per_sec,
            } => {
                self.target = target;
                self.ramp = Some(Ramp {
                    started: Instant::now(),
                    rate_per_sec,
                    done: 0,
                });
                self.step();
            }
            CoreCommand::StopAll { timeout, reply } => {
                self.stop_timeout = timeout;
                self.stop_all(timeout).await;
                let _ = reply.send(());
            }
            CoreCommand::Collect { reply } => {
                let stats = self.stats.borrow_mut().take();
                let _ = reply.send((stats, self.user_counts()));
            }
        }
    }

    fn user_counts(&self) -> BTreeMap<String, u32> {
        self.users
            .iter()
            .map(|(name, slots)| (name.clone(), slots.len() as u32))
            .collect()
    }

    /// One ramp step: start or stop as many users as the rate allows so far.
    fn step(&mut self) {
        self.reap_leaving();
        let Some(ramp) = &self.ramp else { return };
        let pending = self.pending_changes();
        let allowed = ramp_allowance(
            ramp.rate_per_sec,
            ramp.started.elapsed().as_secs_f64(),
            ramp.done + pending,
        );
        let mut budget = allowed.saturating_sub(ramp.done);
        let mut made = 0;
        while budget > 0 && self.change_one_user() {
            budget -= 1;
            made += 1;
        }
        if let Some(ramp) = &mut self.ramp {
            ramp.done += made;
        }
        if self.pending_changes() == 0 {
            self.ramp = None;
        }
    }

    fn pending_changes(&self) -> u32 {
        let mut pending = 0;
        for (name, &want) in &self.target {
            let have = self.users.get(name).map_or(0, Vec::len) as u32;
            pending += want.abs_diff(have);
        }
        for (name, slots) in &self.users {
            if !self.target.contains_key(name) {
                pending += slots.len() as u32;
            }
        }
        pending
    }

    /// Starts or stops one user, the type furthest from its target first.
    /// Returns false when nothing is left to change.
    fn change_one_user(&mut self) -> bool {
        let names: std::collections::BTreeSet<&String> =
            self.target.keys().chain(self.users.keys()).collect();
        let furthest = names
            .into_iter()
            .map(|name| {
                let want = self.target.get(name).copied().unwrap_or(0) as i64;
                let have = self.users.get(name).map_or(0, Vec::len) as i64;
                (name.clone(), want - have)
            })
            .filter(|(_, diff)| *diff != 0)
            .max_by_key(|(_, diff)| diff.abs());
        let Some((name, diff)) = furthest else {
            return false;
        };
        if diff > 0 {
            self.start_user(&name)
        } else {
            let slots = self.users.get_mut(&name).expect("has users");
            let slot = slots.pop().expect("diff < 0 means a user exists");
            slot.stop.cancel();
            self.leaving
                .push((slot, Instant::now() + self.stop_timeout));
            true
        }
    }

    fn start_user(&mut self, name: &str) -> bool {
        let Some(runtime) = &self.runtime else {
            tracing::error!("asked to start {name} users before a script was loaded");
            self.target.clear();
            return false;
        };
        let stop = CancellationToken::new();
        match runtime.run_user(name, stop.clone()) {
            Ok(user) => {
                let task = tokio::task::spawn_local(user);
                self.users
                    .entry(name.to_string())
                    .or_default()
                    .push(UserSlot { stop, task });
                true
            }
            Err(e) => {
                tracing::error!("cannot start a {name} user: {e}");
                self.target.remove(name);
                false
            }
        }
    }

    fn reap_leaving(&mut self) {
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
        for slot in &slots {
            slot.stop.cancel();
        }
        let deadline = tokio::time::Instant::now() + timeout;
        for slot in slots {
            let abort = slot.task.abort_handle();
            if tokio::time::timeout_at(deadline, slot.task).await.is_err() {
                abort.abort();
            }
        }
    }
}

pub use stats::now_ms;
