//! One conversation between this worker and a master, over any transport.
//!
//! The same code serves a TCP connection and the in-memory link of
//! standalone mode, so standalone runs exercise the distributed path. A
//! session ends when the master quits, the link breaks, the master falls
//! silent, or this worker is told to shut down (then it stops its users,
//! sends a final report and says it is leaving).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures::{Sink, SinkExt, Stream, StreamExt};
use protocol::{
    CodecError, Exchange, Hello, MasterMessage, NONCE_BYTES, PROTOCOL_VERSION, Report,
    SWARMER_VERSION, ScriptBundle, ScriptHash, ScriptRef, SpawnPlan, WorkerMessage, WorkerState,
    WorkerStatus, new_nonce,
};
use script::ScriptSource;
use script::files::FileSet;
use tokio::time::{Instant, MissedTickBehavior, interval, timeout_at};
use tokio_util::sync::CancellationToken;

use crate::Engine;
use crate::leases::PendingLeases;
use crate::sysstat::ProcessUsage;

#[derive(Debug, Clone)]
pub struct SessionConfig {
    pub worker_id: String,
    /// Random per process; see [`protocol::Hello::incarnation`].
    pub incarnation: u64,
    pub token: Option<String>,
    pub stop_timeout: Duration,
    /// A master silent for this many heartbeat intervals is gone.
    pub missed_heartbeats: u32,
}

/// Why a session ended, which decides whether the worker reconnects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// We were told to shut down and left gracefully.
    Shutdown,
    /// The master said Quit.
    MasterQuit,
    /// The master refused us; retrying would not help.
    Refused(String),
    /// The peer did not prove it knows this worker's cluster token: not our
    /// master (or not configured as one). Nothing was run for it; worth
    /// trying again later, as the real master may come back.
    Untrusted(String),
    /// The link broke or went silent; worth reconnecting.
    Disconnected(String),
}

/// How long a regular report waits for the cores: they answer in
/// microseconds unless one is inside a long Lua call, and then its numbers
/// simply come with a later report.
const REPORT_WAIT: Duration = Duration::from_millis(100);

/// Regular reports sent and not yet acknowledged, past which the next one
/// waits. The master acknowledges a report once it is merged, so a master
/// that is behind gets no more than this from each worker: what the users
/// do meanwhile stays in the cores and comes with a later report, one
/// report's worth of merging for several seconds. The master's sockets
/// hold no more than a report each, and the kernel has no reason to drop
/// what they receive.
const MAX_UNACKNOWLEDGED: usize = 1;

/// Reports kept until the master acknowledges them. Only the reports that
/// end a run or a session are sent past [`MAX_UNACKNOWLEDGED`]; past this
/// many of them (a master that stopped acknowledging but not talking),
/// the oldest go.
const MAX_PENDING_REPORTS: usize = 60;

/// What must outlive one connection: the reports the master has not yet
/// acknowledged, and what this worker was doing.
#[derive(Default)]
pub struct Outbox {
    seq: u64,
    /// Sent but not acknowledged, oldest first; sent again at the start of
    /// the next session with the same master. The master drops numbers it
    /// has merged already, so nothing is counted twice or lost.
    pending: VecDeque<Report>,
    /// The master this worker last spoke with (see `Welcome::master_id`).
    master_id: Option<u64>,
    run_id: u64,
    state: Option<WorkerState>,
    target_users: u32,
    /// Users running at the last report, for heartbeats in between.
    user_count: u32,
    heartbeat: Duration,
    /// The last script bundle a master sent, by its hash: later plans name
    /// it by hash only.
    script: Option<(ScriptHash, ScriptBundle)>,
}

impl Outbox {
    /// After the link broke and the users were stopped: nothing runs now.
    pub fn users_stopped(&mut self) {
        self.state = Some(WorkerState::Ready);
        self.user_count = 0;
        self.target_users = 0;
    }

    /// Reports sent but not acknowledged yet.
    pub fn unacknowledged(&self) -> usize {
        self.pending.len()
    }

    fn acknowledge(&mut self, seq: u64) {
        while self.pending.front().is_some_and(|r| r.seq <= seq) {
            self.pending.pop_front();
        }
    }

    /// The bundle `script` names: the one it carries (kept for later plans),
    /// or the one kept from before if the hash matches; `None` when this
    /// worker does not hold it.
    fn script(&mut self, script: ScriptRef) -> Option<&ScriptBundle> {
        match script.bundle {
            Some(bundle) => self.script = Some((script.hash, bundle)),
            None if self.script.as_ref().is_some_and(|(h, _)| *h == script.hash) => {}
            None => return None,
        }
        self.script.as_ref().map(|(_, bundle)| bundle)
    }

    fn keep(&mut self, report: Report) {
        if self.pending.len() >= MAX_PENDING_REPORTS {
            tracing::warn!("the master acknowledges no reports; dropping the oldest");
            self.pending.pop_front();
        }
        self.pending.push_back(report);
    }
}

pub async fn run<T>(
    mut io: T,
    engine: &mut Engine,
    outbox: &mut Outbox,
    config: &SessionConfig,
    shutdown: &CancellationToken,
) -> SessionEnd
where
    T: Stream<Item = Result<MasterMessage, CodecError>>
        + Sink<WorkerMessage, Error = CodecError>
        + Unpin,
{
    // No users run before the welcome, so a shutdown may cut it short.
    let welcome = tokio::select! {
        welcome = handshake(&mut io, engine, config) => welcome,
        _ = shutdown.cancelled() => return SessionEnd::Shutdown,
    };
    let (heartbeat, report_every, master_id) = match welcome {
        Ok(welcome) => welcome,
        Err(end) => return end,
    };
    if let Err(end) = resume(&mut io, engine, outbox, master_id).await {
        return end;
    }
    outbox.heartbeat = heartbeat;
    let mut usage = ProcessUsage::new();
    let mut beat = interval(heartbeat);
    let mut report_tick = interval(report_every);
    beat.set_missed_tick_behavior(MissedTickBehavior::Delay);
    report_tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let silence_limit = heartbeat * config.missed_heartbeats.max(1);
    let mut last_heard = Instant::now();
    let mut leases = PendingLeases::default();
    loop {
        let step = tokio::select! {
            msg = io.next() => match msg {
                Some(Ok(MasterMessage::FeederGrant { feeder, first, count })) => {
                    last_heard = Instant::now();
                    leases.granted(&feeder, first, count);
                    Ok(())
                }
                Some(Ok(msg)) => {
                    last_heard = Instant::now();
                    on_message(msg, &mut io, engine, outbox, config).await
                }
                Some(Err(e)) => Err(SessionEnd::Disconnected(e.to_string())),
                None => Err(SessionEnd::Disconnected("the master closed the connection".into())),
            },
            Some(request) = engine.next_lease() => {
                let msg = leases.ask(outbox.run_id, request);
                send(&mut io, msg).await
            }
            _ = report_tick.tick() => send_report(&mut io, engine, outbox).await,
            _ = beat.tick() => {
                if last_heard.elapsed() > silence_limit {
                    Err(SessionEnd::Disconnected(format!(
                        "no word from the master for {:.1} s", last_heard.elapsed().as_secs_f64())))
                } else {
                    send_heartbeat(&mut io, outbox, &mut usage).await
                }
            }
            _ = shutdown.cancelled() => {
                leave(&mut io, engine, outbox, config).await;
                Err(SessionEnd::Shutdown)
            }
        };
        if let Err(end) = step {
            return end;
        }
    }
}

/// Says hello and waits for the welcome. With a cluster token, the worker
/// proves it knows the token when challenged and accepts the welcome only
/// if it proves the master knows it too; the token itself is never sent.
async fn handshake<T>(
    io: &mut T,
    engine: &Engine,
    config: &SessionConfig,
) -> Result<(Duration, Duration, u64), SessionEnd>
where
    T: Stream<Item = Result<MasterMessage, CodecError>>
        + Sink<WorkerMessage, Error = CodecError>
        + Unpin,
{
    let nonce = config.token.as_ref().map(|_| new_nonce());
    let hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        swarmer_version: SWARMER_VERSION.to_string(),
        worker_id: config.worker_id.clone(),
        incarnation: config.incarnation,
        cores: engine.core_count() as u32,
        token: None,
        nonce: nonce.clone(),
    };
    send(io, WorkerMessage::Hello(hello)).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut reply = handshake_reply(io, deadline).await?;
    let mut exchange = None;
    if let (Some(token), Some(worker_nonce)) = (&config.token, &nonce) {
        let master_nonce = match reply {
            MasterMessage::Challenge { nonce } if nonce.len() == NONCE_BYTES => nonce,
            MasterMessage::Refused { reason } => return Err(SessionEnd::Refused(reason)),
            _ => {
                return Err(SessionEnd::Untrusted(
                    "the master did not ask this worker to prove its cluster token, so it \
                     cannot prove it knows it either"
                        .into(),
                ));
            }
        };
        let ex = Exchange {
            token,
            worker_id: &config.worker_id,
            worker_nonce,
            master_nonce: &master_nonce,
        };
        let mac = ex.worker_proof();
        send(io, WorkerMessage::Proof { mac }).await?;
        exchange = Some((token, master_nonce));
        reply = handshake_reply(io, deadline).await?;
    }
    match reply {
        MasterMessage::Welcome {
            heartbeat_interval_ms,
            report_interval_ms,
            master_id,
            proof,
        } => {
            if let (Some((token, master_nonce)), Some(worker_nonce)) = (&exchange, &nonce) {
                let ex = Exchange {
                    token,
                    worker_id: &config.worker_id,
                    worker_nonce,
                    master_nonce,
                };
                if !proof.is_some_and(|p| ex.is_master_proof(&p)) {
                    return Err(SessionEnd::Untrusted(
                        "the master's welcome does not prove it knows the cluster token".into(),
                    ));
                }
            }
            Ok((
                Duration::from_millis(heartbeat_interval_ms.max(10)),
                Duration::from_millis(report_interval_ms.max(10)),
                master_id,
            ))
        }
        MasterMessage::Refused { reason } => Err(SessionEnd::Refused(reason)),
        other => Err(SessionEnd::Disconnected(format!(
            "expected a welcome from the master, got {}",
            protocol::printable(&format!("{other:?}"), 200)
        ))),
    }
}

/// The master's next message in the handshake, by `deadline`.
async fn handshake_reply<T>(io: &mut T, deadline: Instant) -> Result<MasterMessage, SessionEnd>
where
    T: Stream<Item = Result<MasterMessage, CodecError>> + Unpin,
{
    match timeout_at(deadline, io.next()).await {
        Ok(Some(Ok(msg))) => Ok(msg),
        Ok(Some(Err(e))) => Err(SessionEnd::Disconnected(e.to_string())),
        Ok(None) => Err(SessionEnd::Disconnected(
            "the master closed the connection during the handshake".into(),
        )),
        Err(_) => Err(SessionEnd::Disconnected(
            "the master did not answer the handshake within 10 s".into(),
        )),
    }
}

type Step = Result<(), SessionEnd>;

/// Picks up where the last session left off: the same master gets the
/// reports it has not acknowledged; a new one (the master restarted) gets
/// nothing of the old master's run, which it knows nothing about.
async fn resume<T>(io: &mut T, engine: &mut Engine, outbox: &mut Outbox, master_id: u64) -> Step
where
    T: Sink<WorkerMessage, Error = CodecError> + Unpin,
{
    if outbox.master_id.is_some_and(|old| old != master_id) {
        if !outbox.pending.is_empty() {
            tracing::info!(
                "the master restarted; dropping {} reports of its old run",
                outbox.pending.len()
            );
        }
        outbox.pending.clear();
        outbox.run_id = 0;
        // What the users did since the last report belongs to the old run.
        engine
            .collect(REPORT_WAIT)
            .await
            .map_err(|e| SessionEnd::Disconnected(e.to_string()))?;
    }
    outbox.master_id = Some(master_id);
    for report in outbox.pending.clone() {
        send(io, WorkerMessage::Report(Box::new(report))).await?;
    }
    Ok(())
}

async fn on_message<T>(
    msg: MasterMessage,
    io: &mut T,
    engine: &mut Engine,
    outbox: &mut Outbox,
    config: &SessionConfig,
) -> Step
where
    T: Sink<WorkerMessage, Error = CodecError> + Unpin,
{
    match msg {
        MasterMessage::Spawn(plan) => spawn(*plan, io, engine, outbox).await,
        MasterMessage::Stop {
            run_id,
            stop_timeout_ms,
        } => {
            outbox.state = Some(WorkerState::Stopping);
            let timeout = Duration::from_millis(stop_timeout_ms);
            stop_users(io, engine, outbox, timeout).await?;
            send_final_report(io, engine, outbox).await?;
            outbox.state = Some(WorkerState::Ready);
            outbox.target_users = 0;
            send(io, WorkerMessage::Stopped { run_id }).await
        }
        MasterMessage::ResetStats => {
            let _ = engine.collect(REPORT_WAIT).await;
            Ok(())
        }
        MasterMessage::Quit => {
            // Leave as on SIGTERM, so the master removes us rather than
            // counting us lost when the connection closes.
            leave(io, engine, outbox, config).await;
            Err(SessionEnd::MasterQuit)
        }
        MasterMessage::Ack { seq } => {
            outbox.acknowledge(seq);
            Ok(())
        }
        MasterMessage::Heartbeat
        | MasterMessage::FeederGrant { .. }
        | MasterMessage::Welcome { .. }
        | MasterMessage::Challenge { .. } => Ok(()),
        MasterMessage::Refused { reason } => Err(SessionEnd::Refused(reason)),
    }
}

async fn spawn<T>(plan: SpawnPlan, io: &mut T, engine: &mut Engine, outbox: &mut Outbox) -> Step
where
    T: Sink<WorkerMessage, Error = CodecError> + Unpin,
{
    // The ramp counts from here, load time included.
    let received = std::time::Instant::now();
    let hash = plan.script.hash.clone();
    let Some(bundle) = outbox.script(plan.script) else {
        // The master sends this plan again with the bundle.
        tracing::info!("the plan names script {hash}, which this worker does not hold");
        return send(io, WorkerMessage::ScriptWanted { hash }).await;
    };
    let script = ScriptSource {
        path: bundle.path.clone(),
        code: bundle.code.clone(),
    };
    let files = match sent_files(bundle) {
        Ok(files) => files,
        Err(e) => {
            let message = format!("{}: {e}", bundle.path);
            tracing::error!("cannot take the master's script: {message}");
            return send(io, WorkerMessage::ScriptError { message }).await;
        }
    };
    if outbox.run_id != plan.run_id || !engine.holds(&script, &files) {
        // A new run: what the cores still hold belongs to the old one.
        stop_users(io, engine, outbox, Duration::ZERO).await?;
        send_final_report(io, engine, outbox).await?;
        // Heartbeats go on while the cores load: a slow load is bounded by
        // the load time limit, not by the master's patience.
        let loading = engine.load_sent(
            &script,
            Some(Arc::new(files)),
            plan.host.clone(),
            plan.tags.clone(),
            plan.exclude_tags.clone(),
        );
        let loaded = heartbeating(io, outbox, loading).await?;
        if let Err(e) = loaded {
            tracing::error!("cannot load the master's script: {e}");
            return send(
                io,
                WorkerMessage::ScriptError {
                    message: e.to_string(),
                },
            )
            .await;
        }
        outbox.run_id = plan.run_id;
    }
    outbox.target_users = plan.users.values().sum();
    outbox.state = Some(WorkerState::Spawning);
    engine.grant_indexes(plan.indexes.as_deref());
    if let Err(e) = engine
        .apply(&plan.users, plan.spawn_rate, received)
        .and_then(|()| engine.apply_arrivals(&plan.arrivals))
    {
        return Err(SessionEnd::Disconnected(e.to_string()));
    }
    Ok(())
}

/// The files that came with the script: the only ones it may read here.
fn sent_files(bundle: &ScriptBundle) -> Result<FileSet, script::files::FileError> {
    let mut files = FileSet::default();
    for f in &bundle.files {
        files.insert(&f.path, f.bytes.as_slice().into())?;
    }
    Ok(files)
}

async fn send<T>(io: &mut T, msg: WorkerMessage) -> Step
where
    T: Sink<WorkerMessage, Error = CodecError> + Unpin,
{
    io.send(msg)
        .await
        .map_err(|e| SessionEnd::Disconnected(e.to_string()))
}

async fn send_report<T>(io: &mut T, engine: &mut Engine, outbox: &mut Outbox) -> Step
where
    T: Sink<WorkerMessage, Error = CodecError> + Unpin,
{
    if outbox.unacknowledged() >= MAX_UNACKNOWLEDGED {
        return Ok(());
    }
    let mut collected = engine
        .collect(REPORT_WAIT)
        .await
        .map_err(|e| SessionEnd::Disconnected(e.to_string()))?;
    collected.released_indexes = engine.released_indexes();
    send_collected(io, outbox, collected).await
}

/// A report that must hold everything (the run ends, or this worker
/// leaves): waits, heartbeating, for a core inside a long Lua call until
/// the watchdog has had time to interrupt it.
async fn send_final_report<T>(io: &mut T, engine: &mut Engine, outbox: &mut Outbox) -> Step
where
    T: Sink<WorkerMessage, Error = CodecError> + Unpin,
{
    let wait = engine.settle_time();
    let mut collected = heartbeating(io, outbox, engine.collect(wait))
        .await?
        .map_err(|e| SessionEnd::Disconnected(e.to_string()))?;
    collected.released_indexes = engine.released_indexes();
    if collected.late_cores > 0 {
        tracing::error!(
            "{} core(s) still busy in Lua after {:.1} s: their latest numbers are missing from this report",
            collected.late_cores,
            wait.as_secs_f64()
        );
    }
    send_collected(io, outbox, collected).await
}

async fn send_collected<T>(io: &mut T, outbox: &mut Outbox, collected: crate::Collected) -> Step
where
    T: Sink<WorkerMessage, Error = CodecError> + Unpin,
{
    let users = collected.user_count();
    outbox.user_count = users;
    if outbox.state == Some(WorkerState::Spawning) && users == outbox.target_users {
        outbox.state = Some(WorkerState::Running);
    }
    outbox.seq += 1;
    let report = Report {
        run_id: outbox.run_id,
        seq: outbox.seq,
        stats: collected.stats,
        user_count: users,
        users_by_type: collected.users_by_type,
        pool_users: collected.pool_users,
        released_indexes: collected.released_indexes,
    };
    outbox.keep(report.clone());
    send(io, WorkerMessage::Report(Box::new(report))).await
}

/// Stops every user within `timeout`, heartbeating meanwhile: a stop timeout
/// longer than the master's patience must not get this worker marked lost.
async fn stop_users<T>(io: &mut T, engine: &Engine, outbox: &Outbox, timeout: Duration) -> Step
where
    T: Sink<WorkerMessage, Error = CodecError> + Unpin,
{
    heartbeating(io, outbox, engine.stop(timeout))
        .await?
        .map_err(|e| SessionEnd::Disconnected(e.to_string()))
}

/// Runs `work` while sending heartbeats: the session never waits on the
/// cores in silence, whatever they are doing.
async fn heartbeating<T, F>(io: &mut T, outbox: &Outbox, work: F) -> Result<F::Output, SessionEnd>
where
    T: Sink<WorkerMessage, Error = CodecError> + Unpin,
    F: std::future::Future,
{
    let mut usage = ProcessUsage::new();
    tokio::pin!(work);
    let mut beat = interval(outbox.heartbeat.max(Duration::from_millis(10)));
    loop {
        tokio::select! {
            out = &mut work => return Ok(out),
            _ = beat.tick() => send_heartbeat(io, outbox, &mut usage).await?,
        }
    }
}

async fn send_heartbeat<T>(io: &mut T, outbox: &Outbox, usage: &mut ProcessUsage) -> Step
where
    T: Sink<WorkerMessage, Error = CodecError> + Unpin,
{
    let (cpu_percent, memory_bytes) = usage.sample();
    let status = WorkerStatus {
        state: outbox.state.or(Some(WorkerState::Ready)),
        user_count: outbox.user_count,
        cpu_percent,
        memory_bytes,
    };
    send(io, WorkerMessage::Heartbeat(status)).await
}

/// Graceful exit: stop users within the stop timeout, flush the last
/// report, say goodbye. Errors are ignored: we are leaving anyway.
async fn leave<T>(io: &mut T, engine: &mut Engine, outbox: &mut Outbox, config: &SessionConfig)
where
    T: Sink<WorkerMessage, Error = CodecError> + Unpin,
{
    outbox.state = Some(WorkerState::Stopping);
    let _ = stop_users(io, engine, outbox, config.stop_timeout).await;
    if send_final_report(io, engine, outbox).await.is_ok() {
        let _ = send(io, WorkerMessage::Quitting).await;
        let _ = io.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(seq: u64) -> Report {
        Report {
            seq,
            ..Report::default()
        }
    }

    #[test]
    fn acknowledged_reports_are_forgotten_and_the_rest_kept_in_order() {
        let mut outbox = Outbox::default();
        for seq in 1..=4 {
            outbox.keep(report(seq));
        }
        outbox.acknowledge(2);
        let left: Vec<u64> = outbox.pending.iter().map(|r| r.seq).collect();
        assert_eq!(left, vec![3, 4]);
        // Acks are cumulative: a lost one is covered by the next.
        outbox.acknowledge(9);
        assert_eq!(outbox.unacknowledged(), 0);
    }

    #[test]
    fn a_master_that_never_acknowledges_costs_a_bounded_memory() {
        let mut outbox = Outbox::default();
        for seq in 1..=(MAX_PENDING_REPORTS as u64 + 10) {
            outbox.keep(report(seq));
        }
        assert_eq!(outbox.unacknowledged(), MAX_PENDING_REPORTS);
        assert_eq!(outbox.pending.front().map(|r| r.seq), Some(11));
    }

    #[test]
    fn stopped_users_are_not_reported_as_running() {
        let mut outbox = Outbox {
            state: Some(WorkerState::Running),
            user_count: 5,
            target_users: 5,
            ..Outbox::default()
        };
        outbox.users_stopped();
        assert_eq!(outbox.state, Some(WorkerState::Ready));
        assert_eq!((outbox.user_count, outbox.target_users), (0, 0));
    }

    #[test]
    fn a_script_is_kept_by_hash_and_an_unknown_hash_is_not_guessed() {
        let mut outbox = Outbox::default();
        let one = ScriptBundle::script("a.lua", "return 1");
        let two = ScriptBundle::script("a.lua", "return 2");
        assert_eq!(outbox.script(ScriptRef::by_hash(one.hash())), None);
        assert_eq!(outbox.script(ScriptRef::sending(one.clone())), Some(&one));
        assert_eq!(outbox.script(ScriptRef::by_hash(one.hash())), Some(&one));
        assert_eq!(outbox.script(ScriptRef::by_hash(two.hash())), None);
        assert_eq!(outbox.script(ScriptRef::sending(two.clone())), Some(&two));
        assert_eq!(outbox.script(ScriptRef::by_hash(one.hash())), None);
    }
}
