//! The coordinator: the one task that owns the master's state (membership,
//! the run, the merged statistics) and changes it in response to events.
//!
//! Connections and the web server never touch that state; they send
//! [`Event`]s and read the published [`Snapshot`]. One owner means no locks
//! and a total order on what happened (a worker's last report is merged
//! before its goodbye is processed).
//!
//! Here: the state and the event loop; `run` starts, stops and splits the
//! run; `tick` holds the once-a-heartbeat work and the publication;
//! `follow` moves a run along its load profile.

mod follow;
mod run;
mod tick;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use protocol::{Hello, MasterMessage, ScriptText, WorkerMessage, WorkerState};
use script::ScriptInfo;
use stats::RequestStats;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::current_script::{CurrentScript, ScriptCell};
use crate::error::MasterError;
use crate::membership::{ConnId, Joined, Liveness, Member, Members};
use crate::profile::Profile;
use crate::recorder::ScriptMeta;
use crate::snapshot::{HistoryPoint, RunState, Snapshot};

#[derive(Debug, Clone)]
pub struct MasterConfig {
    /// Re-read at the start of every run, so an edited script (or an
    /// updated ConfigMap) reaches the workers at the next start.
    pub script: ScriptText,
    pub heartbeat_interval: Duration,
    pub report_interval: Duration,
    /// Heartbeats a worker may miss before it is lost.
    pub missed_heartbeats: u32,
    pub token: Option<String>,
    pub stop_timeout: Duration,
    pub tags: Vec<String>,
    pub exclude_tags: Vec<String>,
    pub host: Option<String>,
    /// `--max-users`: the most users a run request may ask for
    /// ([`crate::validate::DEFAULT_MAX_USERS`] unless raised).
    pub max_users: u32,
    /// Judged on every published snapshot ([`Snapshot::checks`]): the
    /// command line's and the script's, resolved once by the caller.
    pub thresholds: Vec<verdict::Threshold>,
}

/// What a user asks for when starting (or retuning) a run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunRequest {
    pub users: u32,
    pub spawn_rate: f64,
    pub host: Option<String>,
    pub run_time: Option<Duration>,
    /// Empty: all user types.
    pub user_types: Vec<String>,
    /// Follow this over time instead of `users`/`spawn_rate` (which the
    /// coordinator then sets from the profile every tick); the run stops by
    /// itself when the profile ends.
    pub profile: Option<Profile>,
}

pub enum Event {
    Joined {
        hello: Hello,
        conn: ConnId,
        tx: mpsc::Sender<MasterMessage>,
        /// Updated by the connection as it reads.
        liveness: Arc<Liveness>,
    },
    FromWorker {
        id: String,
        conn: ConnId,
        msg: WorkerMessage,
        /// Held until the message is handled: a decoded report counts
        /// against the master's budget until merged.
        permit: Option<OwnedSemaphorePermit>,
    },
    Closed {
        id: String,
        conn: ConnId,
        reason: String,
    },
    Start(RunRequest, oneshot::Sender<Result<(), MasterError>>),
    /// Stop the run; with a reason when a failure stops it (shown as the
    /// snapshot's `stop_error`).
    Stop(Option<String>, oneshot::Sender<Result<(), MasterError>>),
    Reset(oneshot::Sender<()>),
    /// Tell every worker to leave (the end of a headless run).
    QuitWorkers(oneshot::Sender<()>),
    /// Make this (already loaded) script the one of the next run; refused
    /// while a run is going.
    ReplaceScript(Box<CurrentScript>, oneshot::Sender<Result<(), MasterError>>),
}

/// Heartbeats a worker's CPU must stay above 90% before the master warns.
const HOT_HEARTBEATS: u32 = 10;

/// Lost workers are listed this long, then forgotten.
const FORGET_LOST_AFTER: Duration = Duration::from_secs(600);

struct Run {
    id: u64,
    request: RunRequest,
    per_type: BTreeMap<String, u32>,
    started_ms: u64,
    deadline: Option<Instant>,
    /// Set while stopping: past it, stop waiting for silent workers.
    stop_deadline: Option<Instant>,
    /// When the request's profile (if any) started: the profile clock.
    profile_started: Instant,
    /// The same moment on the wall clock (`now_ms`), for the plan's times.
    profile_started_ms: u64,
    /// Why a failure stopped the run.
    stop_error: Option<String>,
    /// The script it runs (name and text hash), for the run history.
    script: ScriptMeta,
    /// Which worker may give which `self.index` to its users.
    indexes: crate::indexes::IndexBook,
    /// Rows of each `unique` feeder handed out so far.
    feeders: BTreeMap<String, u32>,
}

pub struct Coordinator {
    config: MasterConfig,
    info: ScriptInfo,
    members: Members,
    state: RunState,
    run: Option<Run>,
    next_run_id: u64,
    stats: RequestStats,
    events: mpsc::Receiver<Event>,
    published: watch::Sender<Arc<Snapshot>>,
    history: Arc<RwLock<Vec<HistoryPoint>>>,
    /// The last membership summary logged, to log only changes.
    last_summary: String,
    /// Until when workers that fell silent together keep the longer
    /// silence limit (see `tick::silent_workers`).
    group_silence_until: Option<Instant>,
    /// Membership changed: rebalance and publish once the events already
    /// queued are handled, not once per event (500 workers joining at once
    /// would otherwise cost 500 rebalances of 500 workers each).
    rebalance_due: bool,
    publish_due: bool,
    /// Time spent handling events and ticks, for the scale bench and
    /// anyone wondering how close the coordinator is to one full core.
    busy: Duration,
    /// A worker's message changed user counts: see whether the run is
    /// fully spawned after this batch (a look at every worker, so not
    /// once per message).
    spawn_check_due: bool,
    /// Tests only ([`crate::handle::start_slowed`]): time each merge is
    /// made to take, to see a master that cannot keep up.
    merge_delay: Duration,
    /// That time, owed by the merges of the batch at hand.
    delay_owed: Duration,
    /// The script as handlers see it; written on every change.
    script: ScriptCell,
    /// Files uploaded with the script, sent in its bundle.
    files: Vec<protocol::BundleFile>,
    /// A script was uploaded: it stays until the next upload, and the
    /// `-f` file on disk is no longer re-read at each start.
    uploaded: bool,
}

/// Events handled in one batch before the deferred work is done.
const BATCH: usize = 256;

/// The shortest time from one batch to the next. Thousands of workers send
/// a report and a heartbeat a second each; taken as they come, nearly
/// every event woke this task (and a thread of its runtime) on its own,
/// and the wakeups cost more than the events. Waiting out the rest of the
/// period after a short batch lets the next one gather: at 5,000 workers
/// the master took 0.90-0.93 cores instead of 1.00-1.05 (0.96-1.00 with
/// 1 ms; `benches/scale`), and reports waited ~1.3 ms more. A batch that
/// took longer than this waits for nothing, so a busy master loses no
/// throughput.
const BATCH_PERIOD: Duration = Duration::from_millis(2);

impl Coordinator {
    pub fn new(
        config: MasterConfig,
        info: ScriptInfo,
        events: mpsc::Receiver<Event>,
        published: watch::Sender<Arc<Snapshot>>,
        history: Arc<RwLock<Vec<HistoryPoint>>>,
        script: ScriptCell,
    ) -> Self {
        Self {
            script,
            files: Vec::new(),
            uploaded: false,
            config,
            info,
            members: Members::default(),
            state: RunState::Ready,
            run: None,
            next_run_id: 1,
            stats: RequestStats::new(now_ms()),
            events,
            published,
            history,
            last_summary: String::new(),
            group_silence_until: None,
            rebalance_due: false,
            publish_due: false,
            busy: Duration::ZERO,
            spawn_check_due: false,
            merge_delay: Duration::ZERO,
            delay_owed: Duration::ZERO,
        }
    }

    /// Makes every merge take `delay` longer (a test hook).
    pub fn slowed(mut self, delay: Duration) -> Self {
        self.merge_delay = delay;
        self
    }

    /// Serves events until `shutdown`; a run still going then is stopped
    /// first, and the coordinator lives on until every worker confirmed (or
    /// the stop timeout passed), so the final figures hold everything.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(self.config.heartbeat_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut draining = false;
        while !draining || self.state == RunState::Stopping {
            tokio::select! {
                event = self.events.recv() => match event {
                    Some(event) => {
                        let started = Instant::now();
                        self.handle_batch(event);
                        // The test hook (`start_slowed`): busy for as long,
                        // handling nothing, without holding up the
                        // runtime's other tasks (a test's simulated workers).
                        let owed = std::mem::take(&mut self.delay_owed);
                        let rest = BATCH_PERIOD.saturating_sub(started.elapsed());
                        let pause = owed.max(rest);
                        if !pause.is_zero() {
                            tokio::time::sleep(pause).await;
                        }
                    }
                    None => break,
                },
                _ = tick.tick() => {
                    let started = Instant::now();
                    self.tick();
                    self.busy += started.elapsed();
                }
                _ = shutdown.cancelled(), if !draining => {
                    draining = true;
                    if self.state.is_active() {
                        let _ = self.stop();
                        self.publish();
                    }
                }
            }
        }
        // Workers are not told to quit: a master that stops is usually one
        // that restarts (a new script, a rollout), and its workers should
        // be there when it is back. They reconnect until it is.
    }

    /// Handles `first` and what else is queued already (up to a bound),
    /// then the rebalance and publication they made due, once.
    fn handle_batch(&mut self, first: Event) {
        let started = Instant::now();
        self.handle(first);
        for _ in 1..BATCH {
            match self.events.try_recv() {
                Ok(event) => self.handle(event),
                Err(_) => break,
            }
        }
        self.flush();
        self.busy += started.elapsed();
    }

    fn flush(&mut self) {
        if std::mem::take(&mut self.spawn_check_due) {
            self.check_spawned();
        }
        if std::mem::take(&mut self.rebalance_due) {
            self.rebalance(false);
        }
        if std::mem::take(&mut self.publish_due) {
            self.publish();
        }
    }

    /// Membership changed: rebalance and publish after this batch.
    fn membership_changed(&mut self) {
        self.rebalance_due = true;
        self.publish_due = true;
    }

    fn handle(&mut self, event: Event) {
        match event {
            Event::Joined {
                hello,
                conn,
                tx,
                liveness,
            } => self.on_join(hello, conn, tx, liveness),
            Event::FromWorker {
                id,
                conn,
                msg,
                permit,
            } => {
                self.on_message(&id, conn, msg);
                drop(permit);
            }
            Event::Closed { id, conn, reason } => {
                if self.members.mark_lost(&id, conn) {
                    tracing::warn!(
                        "worker {id} lost ({reason}); {} live",
                        self.members.live_count()
                    );
                    self.membership_changed();
                }
            }
            Event::Start(request, reply) => {
                let result = self.start(request);
                self.publish();
                let _ = reply.send(result);
            }
            Event::Stop(reason, reply) => {
                if let (Some(reason), Some(run)) = (reason, &mut self.run)
                    && self.state.is_active()
                {
                    tracing::error!(
                        "run {}: {reason}; the run stops, its statistics are kept",
                        run.id
                    );
                    run.stop_error = Some(reason);
                }
                let result = self.stop();
                self.publish();
                let _ = reply.send(result);
            }
            Event::QuitWorkers(reply) => {
                for m in self.members.live() {
                    let _ = m.tx.try_send(MasterMessage::Quit);
                }
                let _ = reply.send(());
            }
            Event::ReplaceScript(script, reply) => {
                let result = self.replace_script(*script);
                self.publish();
                let _ = reply.send(result);
            }
            Event::Reset(reply) => {
                self.stats.reset(now_ms());
                for m in self.members.live() {
                    let _ = m.tx.try_send(MasterMessage::ResetStats);
                }
                self.publish();
                let _ = reply.send(());
            }
        }
    }

    fn on_join(
        &mut self,
        hello: Hello,
        conn: ConnId,
        tx: mpsc::Sender<MasterMessage>,
        liveness: Arc<Liveness>,
    ) {
        let member = Member::new(&hello, conn, tx, liveness, now_ms());
        let verb = match self.members.join(member) {
            Joined::New => "joined",
            Joined::Returned => "rejoined",
            Joined::Displaced => "joined, replacing another live process with that id,",
        };
        tracing::info!(
            "worker {} {verb} with {} cores; {} live",
            hello.worker_id,
            hello.cores,
            self.members.live_count()
        );
        self.membership_changed();
    }

    fn on_message(&mut self, id: &str, conn: ConnId, msg: WorkerMessage) {
        let run_id = self.run.as_ref().map(|r| r.id);
        let Some(member) = self.members.get_mut(id, conn) else {
            return;
        };
        match msg {
            WorkerMessage::Heartbeat(status) => {
                member.last_heartbeat_ms = now_ms();
                // Only the master decides that a worker is lost.
                if let Some(state) = status.state.filter(|s| *s != WorkerState::Lost) {
                    member.state = state;
                }
                member.status = status;
                self.spawn_check_due = true;
            }
            WorkerMessage::Report(report) => {
                let fresh = report.seq > member.last_seq;
                member.last_seq = member.last_seq.max(report.seq);
                member.status.user_count = report.user_count;
                member.pool_users = report.pool_users;
                member.users_counted_ms = now_ms();
                if Some(report.run_id) == run_id
                    && let Some(run) = &mut self.run
                {
                    run.indexes.released(id, &report.released_indexes);
                }
                if fresh && Some(report.run_id) == run_id {
                    self.stats.merge(&report.stats);
                    self.delay_owed += self.merge_delay;
                }
                // Cumulative, and owed until sent: the worker waits for it.
                member.acknowledge();
                self.spawn_check_due = true;
            }
            WorkerMessage::Stopped { run_id } => {
                member.stopped_run = Some(run_id);
                member.state = WorkerState::Ready;
                self.check_stopped();
            }
            WorkerMessage::ScriptWanted { hash } => {
                // Its plan again, this time with the bundle.
                tracing::info!("worker {id} does not hold script {hash}; sending it");
                member.script_sent = None;
                member.plan_run = 0;
                self.rebalance(false);
            }
            WorkerMessage::ScriptError { message } => {
                tracing::error!("worker {id} cannot load the script: {message}");
            }
            WorkerMessage::Quitting => {
                self.members.remove(id, conn);
                tracing::info!("worker {id} left; {} live", self.members.live_count());
                self.membership_changed();
                self.check_stopped();
            }
            WorkerMessage::FeederLease {
                run_id: lease_run,
                feeder,
                rows,
                want,
            } => {
                let (first, count) = match &mut self.run {
                    Some(run) if run.id == lease_run && self.state.is_active() => {
                        lease_rows(&mut run.feeders, &feeder, rows, want)
                    }
                    // Not this run's: nothing is handed out.
                    _ => (0, 0),
                };
                let grant = MasterMessage::FeederGrant {
                    feeder,
                    first,
                    count,
                };
                if member.tx.try_send(grant).is_err() {
                    tracing::warn!("worker {id} is not keeping up; a feeder grant was dropped");
                }
            }
            WorkerMessage::Hello(_) | WorkerMessage::Proof { .. } => {
                tracing::warn!("worker {id} repeated its handshake; ignoring");
            }
        }
    }
}

/// Hands out the next `want` of a `unique` feeder's `rows` (0-based):
/// `(first, count)`, with `count` 0 once every row is out.
fn lease_rows(given: &mut BTreeMap<String, u32>, feeder: &str, rows: u32, want: u32) -> (u32, u32) {
    let next = given.entry(feeder.to_string()).or_default();
    let first = *next;
    let count = want.min(rows.saturating_sub(first));
    *next += count;
    (first, count)
}

pub use stats::now_ms;

#[cfg(test)]
mod tests {
    use super::lease_rows;
    use std::collections::BTreeMap;

    #[test]
    fn feeder_rows_go_out_once_then_grants_are_empty() {
        let mut given = BTreeMap::new();
        assert_eq!(lease_rows(&mut given, "a", 5, 2), (0, 2));
        assert_eq!(lease_rows(&mut given, "b", 5, 2), (0, 2), "per feeder");
        assert_eq!(lease_rows(&mut given, "a", 5, 2), (2, 2));
        assert_eq!(lease_rows(&mut given, "a", 5, 2), (4, 1), "the last one");
        assert_eq!(lease_rows(&mut given, "a", 5, 2).1, 0);
        assert_eq!(lease_rows(&mut given, "a", 5, 2).1, 0);
    }
}
