//! The handle through which everything else controls the master: the web
//! API, the headless console, tests. Cheap to clone.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::{Sink, Stream};
use protocol::{CodecError, FrameLimit, MasterMessage};
use script::ScriptInfo;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::connection::{self, Greeting};
use crate::coordinator::{Coordinator, Event, MasterConfig, RunRequest, now_ms};
use crate::current_script::{self, CurrentScript, ScriptCell};
use crate::error::MasterError;
use crate::snapshot::{HistoryPoint, RunState, Snapshot};
use crate::wire::{Heard, Incoming};

#[derive(Clone)]
pub struct MasterHandle {
    events: mpsc::Sender<Event>,
    snapshot: watch::Receiver<Arc<Snapshot>>,
    history: Arc<RwLock<Vec<HistoryPoint>>>,
    greeting: Greeting,
    next_conn: Arc<AtomicU64>,
    script: ScriptCell,
    max_users: u32,
}

/// Events queued for the coordinator at most.
const EVENTS_QUEUED: usize = 64;

/// Starts the coordinator; it runs until `shutdown` fires.
pub fn start(
    config: MasterConfig,
    info: ScriptInfo,
    shutdown: CancellationToken,
) -> (MasterHandle, JoinHandle<()>) {
    start_slowed(config, info, shutdown, Duration::ZERO)
}

/// [`start`], with every merge of a report made to take `merge_delay`
/// longer: how tests see a master that cannot keep up with its workers.
#[doc(hidden)]
pub fn start_slowed(
    config: MasterConfig,
    info: ScriptInfo,
    shutdown: CancellationToken,
    merge_delay: Duration,
) -> (MasterHandle, JoinHandle<()>) {
    // Short on purpose: what waits here is past merging into later reports
    // of its worker, so a long queue would only add delay. Past it,
    // connections hold their worker's messages (one report, merged) and,
    // past the report budget, TCP pushes back.
    let (events_tx, events_rx) = mpsc::channel(EVENTS_QUEUED);
    let initial = Snapshot {
        state: RunState::Ready,
        run_id: 0,
        host: config.host.clone(),
        target_users: 0,
        spawn_rate: 0.0,
        target_rate: 0.0,
        user_count: 0,
        users_by_type: Default::default(),
        run_started_ms: None,
        run_time_ms: None,
        workers: Vec::new(),
        worker_count: 0,
        lost_workers: 0,
        saturated_workers: Vec::new(),
        user_types: info.user_types.iter().map(|t| t.name.clone()).collect(),
        run_user_types: Vec::new(),
        stats: stats::RequestStats::new(now_ms()),
        now_ms: now_ms(),
        coordinator_busy_us: 0,
        profile: None,
        checks: Vec::new(),
        rate_plan: Vec::new(),
        stop_error: None,
        run_script: None,
    };
    let (published, snapshot) = watch::channel(Arc::new(initial));
    let history = Arc::new(RwLock::new(Vec::new()));
    let greeting = Greeting::new(
        config.token.clone(),
        config.heartbeat_interval,
        config.report_interval,
    );
    let script: ScriptCell = Arc::new(RwLock::new(Arc::new(CurrentScript::new(
        config.script.clone(),
        Vec::new(),
        info.clone(),
    ))));
    let handle = MasterHandle {
        events: events_tx,
        snapshot,
        history: history.clone(),
        greeting,
        next_conn: Arc::new(AtomicU64::new(1)),
        script: script.clone(),
        max_users: config.max_users,
    };
    let coordinator =
        Coordinator::new(config, info, events_rx, published, history, script).slowed(merge_delay);
    let task = tokio::spawn(coordinator.run(shutdown));
    (handle, task)
}

impl MasterHandle {
    /// Starts a run, or retunes the running one (users, spawn rate).
    pub async fn start_run(&self, request: RunRequest) -> Result<(), MasterError> {
        let (tx, rx) = oneshot::channel();
        self.send(Event::Start(request, tx)).await?;
        rx.await.map_err(|_| MasterError::Gone)?
    }

    pub async fn stop_run(&self) -> Result<(), MasterError> {
        let (tx, rx) = oneshot::channel();
        self.send(Event::Stop(None, tx)).await?;
        rx.await.map_err(|_| MasterError::Gone)?
    }

    /// Stops the run because something failed: `reason` is logged and
    /// published as the snapshot's `stop_error` (UI and API show it); the
    /// statistics stay as they are.
    pub async fn stop_run_because(&self, reason: String) -> Result<(), MasterError> {
        let (tx, rx) = oneshot::channel();
        self.send(Event::Stop(Some(reason), tx)).await?;
        rx.await.map_err(|_| MasterError::Gone)?
    }

    pub async fn reset_stats(&self) -> Result<(), MasterError> {
        let (tx, rx) = oneshot::channel();
        self.send(Event::Reset(tx)).await?;
        rx.await.map_err(|_| MasterError::Gone)
    }

    /// Tells every live worker to stop its users, send its last report and
    /// exit, as Locust's master does at the end of a headless run. A master
    /// that merely shuts down does not: its workers wait for it to return.
    pub async fn quit_workers(&self) -> Result<(), MasterError> {
        let (tx, rx) = oneshot::channel();
        self.send(Event::QuitWorkers(tx)).await?;
        rx.await.map_err(|_| MasterError::Gone)
    }

    async fn send(&self, event: Event) -> Result<(), MasterError> {
        self.events.send(event).await.map_err(|_| MasterError::Gone)
    }

    /// The latest published state.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.snapshot.borrow().clone()
    }

    /// A receiver that wakes on every publication (for live UI updates).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshot.clone()
    }

    /// Waits until `pred` holds for a published snapshot.
    pub async fn wait_for(
        &self,
        mut pred: impl FnMut(&Snapshot) -> bool,
    ) -> Result<Arc<Snapshot>, MasterError> {
        let mut rx = self.snapshot.clone();
        let snap = rx
            .wait_for(|s| pred(s))
            .await
            .map_err(|_| MasterError::Gone)?;
        Ok(snap.clone())
    }

    /// The run's per-second history so far.
    pub fn history(&self) -> Vec<HistoryPoint> {
        self.history.read().map(|h| h.clone()).unwrap_or_default()
    }

    /// The history points newer than `after_ms` (with `None`, only the
    /// newest): what a live stream appends, without copying a whole long run
    /// every second.
    pub fn history_since(&self, after_ms: Option<u64>) -> Vec<HistoryPoint> {
        let Ok(h) = self.history.read() else {
            return Vec::new();
        };
        match after_ms {
            None => h.last().cloned().into_iter().collect(),
            Some(after) => {
                // Points are in time order: find the first newer one.
                let from = h.partition_point(|p| p.time_ms <= after);
                h[from..].to_vec()
            }
        }
    }

    /// Whether the coordinator still serves requests. False once it ended,
    /// whether by shutdown or by a panic: the master can no longer start
    /// or stop anything, which `/healthz` must say.
    pub fn is_alive(&self) -> bool {
        !self.events.is_closed()
    }

    /// `--max-users`, for the web forms' checks of a run request.
    pub fn max_users(&self) -> u32 {
        self.max_users
    }

    /// The user types of the current script (the one the next run uses).
    pub fn script_info(&self) -> Arc<ScriptInfo> {
        current_script::read(&self.script).info.clone()
    }

    /// The current script: its path, text, files and hash.
    pub fn script(&self) -> Arc<CurrentScript> {
        current_script::read(&self.script)
    }

    /// Makes `script` (loaded already: see [`crate::upload::load`]) the
    /// script of the next run, sent to every worker with its plan.
    /// Refused while a run is going ([`MasterError::RunActive`]).
    pub async fn replace_script(&self, script: CurrentScript) -> Result<(), MasterError> {
        let (tx, rx) = oneshot::channel();
        self.send(Event::ReplaceScript(Box::new(script), tx))
            .await?;
        rx.await.map_err(|_| MasterError::Gone)?
    }

    /// Serves one worker connection (TCP or in-memory) until it ends. A
    /// TCP link should come [`protocol::guarded`]: it opens after the
    /// handshake.
    pub fn attach<T, I>(&self, io: T) -> JoinHandle<()>
    where
        T: Stream<Item = Result<I, CodecError>>
            + Sink<MasterMessage, Error = CodecError>
            + FrameLimit
            + Heard
            + Unpin
            + Send
            + 'static,
        I: Incoming,
    {
        let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(connection::serve(
            io,
            conn,
            self.greeting.clone(),
            self.events.clone(),
        ))
    }
}
