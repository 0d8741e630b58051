//! Autoscaling on generator saturation (`--autoscale MIN:MAX`): a task that
//! watches the workers' CPU in the master's snapshots and asks the
//! [`Scaler`] for more workers while they are saturated during a run, and
//! for fewer once it ends. The rules are in [`policy`]; this module feeds
//! them samples, carries out their decisions, and keeps what the UI, the
//! API, `/metrics` and the run's report show ([`Autoscale`]).
//!
//! A manual scale (the form or the API) pauses autoscaling until the next
//! run starts: a person's choice is not overridden behind their back.

pub mod policy;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::MasterHandle;
use crate::scale::Scaler;
use crate::snapshot::Snapshot;
pub use policy::{Decider, Decision, Direction, Policy, Sample};

/// The decisions kept for the UI and reports (the oldest are dropped).
const KEPT_DECISIONS: usize = 200;

/// A decision as it was carried out, for the UI, the API and reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// The master's clock (ms since the epoch).
    pub time_ms: u64,
    /// The run it happened in (or after).
    pub run_id: u64,
    #[serde(flatten)]
    pub decision: Decision,
    /// "scaled 3 → 5: average worker CPU 91% for 15 s".
    pub message: String,
    /// Why the scaler refused, when it did.
    pub error: Option<String>,
}

/// What the autoscaler shows, as the API serves it.
#[derive(Debug, Clone, Serialize)]
pub struct View {
    pub policy: Policy,
    /// The count it last asked for.
    pub target: Option<u32>,
    /// Why autoscaling is paused ("manual scale to 3 by alice"), until the
    /// next run starts; `None` while it is on.
    pub paused: Option<String>,
    /// Newest last.
    pub events: Vec<Event>,
    pub decisions_up: u64,
    pub decisions_down: u64,
}

#[derive(Debug)]
struct State {
    view: View,
    /// The run during (or after) which it was paused: the next one resumes it.
    paused_run: u64,
    /// Set by [`Autoscale::pause`] for the task to forget its spells.
    reset_due: bool,
}

/// The autoscaler's shared record: written by its task and by manual
/// scales, read by the web handlers and reports.
#[derive(Debug, Clone)]
pub struct Autoscale {
    state: Arc<Mutex<State>>,
}

impl Autoscale {
    pub fn new(policy: Policy) -> Autoscale {
        let view = View {
            policy,
            target: None,
            paused: None,
            events: Vec::new(),
            decisions_up: 0,
            decisions_down: 0,
        };
        Autoscale {
            state: Arc::new(Mutex::new(State {
                view,
                paused_run: 0,
                reset_due: false,
            })),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding it leaves plain data, still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn view(&self) -> View {
        self.lock().view.clone()
    }

    pub fn policy(&self) -> Policy {
        self.lock().view.policy.clone()
    }

    /// The decisions made during (or after) run `run_id`, oldest first.
    pub fn events_of_run(&self, run_id: u64) -> Vec<Event> {
        let state = self.lock();
        let events = state.view.events.iter();
        events.filter(|e| e.run_id == run_id).cloned().collect()
    }

    /// The decisions of run `run_id` as the run history keeps them.
    pub fn scaling_of_run(&self, run_id: u64) -> Vec<history::ScaleEvent> {
        let events = self.events_of_run(run_id).into_iter();
        events
            .map(|e| history::ScaleEvent {
                time_ms: i64::try_from(e.time_ms).unwrap_or(i64::MAX),
                from: e.decision.from,
                to: e.decision.to,
                message: e.message,
                error: e.error,
            })
            .collect()
    }

    /// A manual scale to `workers` by `who` during or after run `run_id`:
    /// autoscaling stops until the next run starts.
    pub fn pause(&self, workers: u32, who: &str, run_id: u64) {
        let mut state = self.lock();
        let why = format!("paused by a manual scale to {workers} by {who} until the next run");
        tracing::info!(target: "swarmer::autoscale", "autoscaling {why}");
        state.view.paused = Some(why);
        state.view.target = Some(workers);
        state.paused_run = run_id;
        state.reset_due = true;
    }

    /// Resumes when a run later than the pausing one has started; true
    /// while still paused. Clears the reset flag it returns in `reset`.
    fn paused(&self, snap: &Snapshot, reset: &mut bool) -> bool {
        let mut state = self.lock();
        *reset = std::mem::take(&mut state.reset_due);
        if state.view.paused.is_some() && snap.state.is_active() && snap.run_id > state.paused_run {
            tracing::info!(target: "swarmer::autoscale", "autoscaling resumed: run {} started", snap.run_id);
            state.view.paused = None;
        }
        state.view.paused.is_some()
    }

    fn record(&self, event: Event) {
        let mut state = self.lock();
        if event.error.is_none() {
            state.view.target = Some(event.decision.to);
            match event.decision.direction {
                Direction::Up => state.view.decisions_up += 1,
                Direction::Down => state.view.decisions_down += 1,
            }
        }
        let events = &mut state.view.events;
        if events.len() == KEPT_DECISIONS {
            events.remove(0);
        }
        events.push(event);
    }
}

/// The sample a snapshot gives: live workers' CPU, each as a share of its
/// cores (a worker's process reports percent of one core).
pub fn sample(snap: &Snapshot, desired: u32) -> Sample {
    let shares: Vec<f32> = snap
        .workers
        .iter()
        .filter(|w| w.state != protocol::WorkerState::Lost)
        .map(|w| w.cpu_usage / w.cores.max(1) as f32)
        .collect();
    let avg = match shares.len() {
        0 => 0.0,
        n => shares.iter().sum::<f32>() / n as f32,
    };
    Sample {
        now_ms: snap.now_ms,
        active: snap.state.is_active(),
        connected: shares.len() as u32,
        desired,
        avg_cpu_pct: avg,
        max_cpu_pct: shares.iter().copied().fold(0.0, f32::max),
    }
}

/// Watches the master every `every` and scales through `scaler` until
/// `shutdown`. The scaler's desired count is read each time, so a count
/// changed elsewhere (another master, kubectl) is what it starts from.
pub async fn run(
    master: MasterHandle,
    scaler: Arc<dyn Scaler>,
    autoscale: Autoscale,
    every: Duration,
    shutdown: CancellationToken,
) {
    let mut decider = Decider::new();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Between runs there is nothing to judge but the floor (first look)
    // and the end of a run: the scaler (an API server) is not asked then.
    let mut watching = true;
    let mut last_error = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let snap = master.snapshot();
        let mut reset = false;
        let paused = autoscale.paused(&snap, &mut reset);
        if reset {
            decider.reset();
        }
        let active = snap.state.is_active();
        if paused || !(active || watching) {
            continue;
        }
        let desired = match scaler.status().await {
            Ok(status) => status.desired,
            Err(e) => {
                let text = e.to_string();
                // Once per distinct error, not once a tick.
                if last_error.as_ref() != Some(&text) {
                    tracing::warn!(target: "swarmer::autoscale", "cannot read the scaler's status: {text}");
                    last_error = Some(text);
                }
                continue;
            }
        };
        last_error = None;
        watching = active;
        let policy = autoscale.policy();
        let Some(decision) = decider.observe(&policy, &sample(&snap, desired)) else {
            continue;
        };
        carry_out(&*scaler, &autoscale, &snap, decision).await;
    }
}

async fn carry_out(scaler: &dyn Scaler, autoscale: &Autoscale, snap: &Snapshot, d: Decision) {
    let message = d.message();
    let error = match scaler.scale(d.to).await {
        Ok(()) => {
            tracing::info!(target: "swarmer::autoscale", direction = d.direction.as_str(), "{message}");
            None
        }
        Err(e) => {
            tracing::warn!(target: "swarmer::autoscale", "autoscale failed ({message}): {e}");
            Some(e.to_string())
        }
    };
    autoscale.record(Event {
        time_ms: snap.now_ms,
        run_id: snap.run_id,
        decision: d,
        message,
        error,
    });
}
