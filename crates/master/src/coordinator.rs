//! The coordinator: the one task that owns the master's state (membership,
//! the run, the merged statistics) and changes it in response to events.
//!
//! Connections and the web server never touch that state; they send
//! [`Event`]s and read the published [`Snapshot`]. One owner means no locks
//! and a total order on what happened (a worker's last report is merged
//! before its goodbye is processed).

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use protocol::{Hello, MasterMessage, ScriptText, SpawnPlan, WorkerMessage, WorkerState};
use script::{ScriptInfo, ScriptSource};
use stats::RequestStats;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

use crate::dispatch::{split_across_workers, users_per_type};
use crate::error::MasterError;
use crate::membership::{ConnId, Joined, Member, Members};
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
}

pub enum Event {
    Joined {
        hello: Hello,
        conn: ConnId,
        tx: mpsc::Sender<MasterMessage>,
        /// Updated by the connection whenever a frame arrives.
        seen: Arc<AtomicU64>,
    },
    FromWorker {
        id: String,
        conn: ConnId,
        msg: WorkerMessage,
    },
    Closed {
        id: String,
        conn: ConnId,
        reason: String,
    },
    Start(RunRequest, oneshot::Sender<Result<(), MasterError>>),
    Stop(oneshot::Sender<Result<(), MasterError>>),
    Reset(oneshot::Sender<()>),
    /// Tell every worker to leave (the end of a headless run).
    QuitWorkers(oneshot::Sender<()>),
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
    /// Membership changed: rebalance and publish once the events already
    /// queued are handled, not once per event (500 workers joining at once
    /// would otherwise cost 500 rebalances of 500 workers each).
    rebalance_due: bool,
    publish_due: bool,
    /// Time spent handling events and ticks, for the scale bench and
    /// anyone wondering how close the coordinator is to one full core.
    busy: Duration,
}

/// Events handled in one batch before the deferred work is done.
const BATCH: usize = 256;

impl Coordinator {
    pub fn new(
        config: MasterConfig,
        info: ScriptInfo,
        events: mpsc::Receiver<Event>,
        published: watch::Sender<Arc<Snapshot>>,
        history: Arc<RwLock<Vec<HistoryPoint>>>,
    ) -> Self {
        Self {
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
            rebalance_due: false,
            publish_due: false,
            busy: Duration::ZERO,
        }
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
                    Some(event) => self.handle_batch(event),
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
                seen,
            } => self.on_join(hello, conn, tx, seen),
            Event::FromWorker { id, conn, msg } => self.on_message(&id, conn, msg),
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
            Event::Stop(reply) => {
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
        seen: Arc<AtomicU64>,
    ) {
        let member = Member {
            id: hello.worker_id.clone(),
            cores: hello.cores.max(1),
            state: WorkerState::Ready,
            conn,
            tx,
            incarnation: hello.incarnation,
            last_seq: 0,
            seen,
            last_heartbeat_ms: now_ms(),
            status: Default::default(),
            plan: BTreeMap::new(),
            stopped_run: None,
            hot_since: None,
            hot_warned: false,
            plan_run: 0,
            lost_at: None,
        };
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
                self.check_spawned();
            }
            WorkerMessage::Report(report) => {
                let fresh = report.seq > member.last_seq;
                member.last_seq = member.last_seq.max(report.seq);
                member.status.user_count = report.user_count;
                if fresh && Some(report.run_id) == run_id {
                    self.stats.merge(&report.stats);
                }
                // Cumulative: a lost ack is covered by the next one.
                let _ = member.tx.try_send(MasterMessage::Ack {
                    seq: member.last_seq,
                });
                self.check_spawned();
            }
            WorkerMessage::Stopped { run_id } => {
                member.stopped_run = Some(run_id);
                member.state = WorkerState::Ready;
                self.check_stopped();
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
            WorkerMessage::Hello(_) => {
                tracing::warn!("worker {id} said hello twice; ignoring");
            }
        }
    }

    fn start(&mut self, request: RunRequest) -> Result<(), MasterError> {
        let rate = request.spawn_rate;
        if rate.is_nan() || rate <= 0.0 || !rate.is_finite() {
            return Err(MasterError::BadSpawnRate(request.spawn_rate));
        }
        if self.members.live_count() == 0 {
            return Err(MasterError::NoWorkers);
        }
        if self.state.is_active()
            && let Some(run) = &mut self.run
        {
            // Retune the running test: same run, new target.
            if request.run_time.is_some() {
                run.deadline = request.run_time.map(|t| Instant::now() + t);
            }
            run.per_type = select_types(&self.info, &request)?;
            run.request = RunRequest {
                host: run.request.host.clone(),
                ..request
            };
            self.state = RunState::Spawning;
            self.rebalance(true);
            return Ok(());
        }
        self.reload_script()?;
        let per_type = select_types(&self.info, &request)?;
        let id = self.next_run_id;
        self.next_run_id += 1;
        let now = now_ms();
        self.stats.reset(now);
        self.members.lost_this_run = 0;
        if let Ok(mut h) = self.history.write() {
            h.clear();
        }
        tracing::info!(
            "run {id}: {} users at {}/s{}",
            request.users,
            request.spawn_rate,
            request
                .run_time
                .map(|t| format!(" for {t:?}"))
                .unwrap_or_default()
        );
        self.run = Some(Run {
            id,
            deadline: request.run_time.map(|t| Instant::now() + t),
            request,
            per_type,
            started_ms: now,
            stop_deadline: None,
        });
        self.state = RunState::Spawning;
        self.rebalance(true);
        Ok(())
    }

    fn reload_script(&mut self) -> Result<(), MasterError> {
        let Ok(code) = std::fs::read_to_string(&self.config.script.path) else {
            // The script came as text only (tests) or the file is gone: keep it.
            return Ok(());
        };
        if code == self.config.script.code {
            return Ok(());
        }
        let src = ScriptSource {
            path: self.config.script.path.clone(),
            code,
        };
        let info = script::inspect(&src).map_err(|e| MasterError::Script(e.to_string()))?;
        tracing::info!("script {} changed; workers get it with this run", src.path);
        self.config.script.code = src.code;
        self.info = info;
        Ok(())
    }

    fn stop(&mut self) -> Result<(), MasterError> {
        let Some(run) = &mut self.run else {
            return Err(MasterError::NotRunning);
        };
        if !self.state.is_active() {
            return Err(MasterError::NotRunning);
        }
        tracing::info!("run {}: stopping", run.id);
        run.deadline = None;
        run.stop_deadline =
            Some(Instant::now() + self.config.stop_timeout + Duration::from_secs(5));
        let stop = MasterMessage::Stop {
            run_id: run.id,
            stop_timeout_ms: self.config.stop_timeout.as_millis() as u64,
        };
        for m in self.members.live_mut() {
            m.plan.clear();
            let _ = m.tx.try_send(stop.clone());
        }
        self.state = RunState::Stopping;
        self.check_stopped();
        Ok(())
    }

    /// Tells every live worker whose share changed (all of them when
    /// `force`: a new run or a retune) its share of the run. Workers ramp
    /// towards their new share at their part of the spawn rate, so the
    /// total stays at the target through joins and departures.
    fn rebalance(&mut self, force: bool) {
        let Some(run) = &self.run else { return };
        if !self.state.is_active() {
            return;
        }
        let workers: Vec<(String, u32)> = self
            .members
            .live()
            .map(|m| (m.id.clone(), m.cores))
            .collect();
        let total_cores: u32 = workers.iter().map(|(_, c)| c).sum::<u32>().max(1);
        let mut plans = split_across_workers(&run.per_type, &workers);
        for m in self.members.live_mut() {
            let users = plans.remove(&m.id).unwrap_or_default();
            if !force && m.plan_run == run.id && m.plan == users {
                continue;
            }
            let plan = SpawnPlan {
                run_id: run.id,
                users: users.clone(),
                spawn_rate: run.request.spawn_rate * f64::from(m.cores) / f64::from(total_cores),
                host: run
                    .request
                    .host
                    .clone()
                    .or_else(|| self.config.host.clone()),
                tags: self.config.tags.clone(),
                exclude_tags: self.config.exclude_tags.clone(),
                script: self.config.script.clone(),
            };
            m.stopped_run = None;
            if m.tx.try_send(MasterMessage::Spawn(plan)).is_err() {
                // Left unrecorded, so the next rebalance sends it again.
                tracing::warn!("worker {} is not keeping up; its plan was dropped", m.id);
                continue;
            }
            m.plan = users;
            m.plan_run = run.id;
        }
    }

    fn check_spawned(&mut self) {
        if self.state != RunState::Spawning {
            return;
        }
        let Some(run) = &self.run else { return };
        let users: u32 = self.members.live().map(|m| m.status.user_count).sum();
        if users == run.request.users {
            tracing::info!(
                "run {}: all {users} users spawned on {}",
                run.id,
                self.members.users_by_worker()
            );
            self.state = RunState::Running;
        }
    }

    fn check_stopped(&mut self) {
        if self.state != RunState::Stopping {
            return;
        }
        let Some(run) = &self.run else { return };
        let overdue = run.stop_deadline.is_some_and(|d| Instant::now() >= d);
        let all_done = self.members.live().all(|m| m.stopped_run == Some(run.id));
        if all_done || overdue {
            if overdue && !all_done {
                tracing::warn!(
                    "run {}: some workers did not confirm the stop in time",
                    run.id
                );
            }
            tracing::info!("run {}: stopped", run.id);
            self.state = RunState::Stopped;
            self.publish();
        }
    }

    fn tick(&mut self) {
        for m in self.members.live() {
            let _ = m.tx.try_send(MasterMessage::Heartbeat);
        }
        let limit = self.config.heartbeat_interval * self.config.missed_heartbeats.max(1);
        let silent = self.members.silent(limit);
        for (id, conn) in &silent {
            if self.members.mark_lost(id, *conn) {
                tracing::warn!(
                    "worker {id} lost: silent for over {limit:?}; {} live",
                    self.members.live_count()
                );
            }
        }
        if !silent.is_empty() {
            self.rebalance(false);
        }
        self.warn_hot_workers();
        self.members.forget_lost(FORGET_LOST_AFTER);
        self.log_membership_change();
        if let Some(run) = &self.run
            && self.state.is_active()
            && run.deadline.is_some_and(|d| Instant::now() >= d)
        {
            tracing::info!("run {}: run time reached", run.id);
            let _ = self.stop();
        }
        self.check_stopped();
        self.record_history();
        self.stats.prune(now_ms());
        self.publish();
    }

    /// Logs who is there whenever that changed since the last tick, so the
    /// logs alone tell the membership at every moment.
    fn log_membership_change(&mut self) {
        let summary = self.members.summary();
        if summary != self.last_summary {
            tracing::info!("{summary}");
            self.last_summary = summary;
        }
    }

    /// Warns once per hot spell when a worker's CPU stays above 90% (of
    /// the cores it runs users on) for 10 heartbeats: its response times
    /// then measure its own queueing as much as the target's.
    fn warn_hot_workers(&mut self) {
        let window = self.config.heartbeat_interval * HOT_HEARTBEATS;
        for m in self.members.live_mut() {
            if m.status.cpu_percent < 90.0 * m.cores as f32 {
                m.hot_since = None;
                m.hot_warned = false;
                continue;
            }
            let since = *m.hot_since.get_or_insert_with(Instant::now);
            if !m.hot_warned && since.elapsed() >= window {
                tracing::warn!(
                    "worker {} has used over 90% of its CPU for {:.1} s ({:.0}% of {} cores); \
                     its response times may be skewed: add workers",
                    m.id,
                    since.elapsed().as_secs_f64(),
                    m.status.cpu_percent,
                    m.cores
                );
                m.hot_warned = true;
            }
        }
    }

    fn record_history(&mut self) {
        if !self.state.is_active() && self.state != RunState::Stopping {
            return;
        }
        let now = now_ms();
        let total = self.stats.total();
        let point = HistoryPoint {
            time_ms: now,
            user_count: self.members.live().map(|m| m.status.user_count).sum(),
            rps: total.current_rps(now),
            fail_per_sec: total.current_fail_per_sec(now),
            p50_ms: self.stats.current_response_time_percentile_ms(0.5, now),
            p95_ms: self.stats.current_response_time_percentile_ms(0.95, now),
            worker_count: self.members.live_count(),
        };
        if let Ok(mut h) = self.history.write() {
            h.push(point);
        }
    }

    fn publish(&self) {
        let run = self.run.as_ref();
        let users_by_type = self.members.live().fold(BTreeMap::new(), |mut acc, m| {
            for (name, n) in &m.plan {
                *acc.entry(name.clone()).or_insert(0) += n;
            }
            acc
        });
        let snapshot = Snapshot {
            state: self.state,
            run_id: run.map_or(0, |r| r.id),
            host: run
                .and_then(|r| r.request.host.clone())
                .or_else(|| self.config.host.clone()),
            target_users: run.map_or(0, |r| r.request.users),
            spawn_rate: run.map_or(0.0, |r| r.request.spawn_rate),
            user_count: self.members.live().map(|m| m.status.user_count).sum(),
            users_by_type,
            run_started_ms: run.map(|r| r.started_ms),
            run_time_ms: run
                .and_then(|r| r.request.run_time)
                .map(|t| t.as_millis() as u64),
            workers: self.members.views(),
            worker_count: self.members.live_count(),
            lost_workers: self.members.lost_this_run,
            user_types: self
                .info
                .user_types
                .iter()
                .map(|t| t.name.clone())
                .collect(),
            stats: self.stats.clone(),
            now_ms: now_ms(),
            coordinator_busy_us: self.busy.as_micros() as u64,
        };
        self.published.send_replace(Arc::new(snapshot));
    }
}

/// The run's users per type, limited to the requested types.
fn select_types(
    info: &ScriptInfo,
    request: &RunRequest,
) -> Result<BTreeMap<String, u32>, MasterError> {
    let known = || {
        info.user_types
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    for name in &request.user_types {
        if !info.user_types.iter().any(|t| &t.name == name) {
            return Err(MasterError::UnknownUserType {
                name: name.clone(),
                known: known(),
            });
        }
    }
    let chosen: Vec<_> = info
        .user_types
        .iter()
        .filter(|t| request.user_types.is_empty() || request.user_types.contains(&t.name))
        .cloned()
        .collect();
    Ok(users_per_type(request.users, &chosen))
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
