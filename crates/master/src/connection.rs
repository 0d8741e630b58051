//! One worker connection on the master's side, over any transport: the
//! handshake, then messages pumped between the socket and the coordinator.
//!
//! A malformed or oversized frame ends this connection only; the
//! coordinator hears `Closed` and decides whether the worker is lost.
//! The connection, not the coordinator, tells when the worker was last
//! heard from: it timestamps every frame as it reads it, and keeps reading
//! while the coordinator is busy (see [`Inbox`]), so a master that is
//! behind never takes its own slowness for its workers' silence.
//! Until a peer has passed the handshake it is a stranger, and costs the
//! master little: its frames are capped at a few KiB (the link's
//! [`FrameLimit`] opens only after), the whole handshake has a deadline,
//! at most [`MAX_PENDING_HANDSHAKES`] run at once, and what it said is
//! logged only once checked or made [`printable`].

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use futures::{Sink, SinkExt, Stream, StreamExt};
use protocol::{
    CodecError, Exchange, FrameLimit, HandshakeError, Hello, MasterMessage, PROTOCOL_VERSION,
    SWARMER_VERSION, WorkerMessage, check_hello, new_nonce, printable,
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio::time::{Instant, timeout_at};

use crate::coordinator::Event;
use crate::inbox::{Inbox, ReportBudget, permits_for, report_budget};
use crate::membership::{ConnId, HELD, Liveness, mono_ms};
use crate::wire::{Heard, Incoming};

/// How long a new connection has to pass the whole handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Connections in the handshake at once; more are closed at once. Each
/// costs a task and a few KiB of buffers, so this bounds what strangers
/// can make the master hold; workers that find it full retry.
pub const MAX_PENDING_HANDSHAKES: usize = 512;

/// What a connection needs to know to greet a worker.
#[derive(Clone)]
pub struct Greeting {
    pub token: Option<String>,
    pub heartbeat_interval: Duration,
    pub report_interval: Duration,
    /// Random per master process; see `MasterMessage::Welcome`.
    pub master_id: u64,
    /// Permits for connections in the handshake, shared by all of them.
    pub pending: Arc<Semaphore>,
    /// Permits for decoded reports, shared by all connections.
    pub budget: ReportBudget,
}

impl Greeting {
    pub fn new(
        token: Option<String>,
        heartbeat_interval: Duration,
        report_interval: Duration,
    ) -> Self {
        Greeting {
            token,
            heartbeat_interval,
            report_interval,
            master_id: rand::random(),
            pending: Arc::new(Semaphore::new(MAX_PENDING_HANDSHAKES)),
            budget: report_budget(),
        }
    }
}

pub async fn serve<T, I>(mut io: T, conn: ConnId, greeting: Greeting, events: mpsc::Sender<Event>)
where
    T: Stream<Item = Result<I, CodecError>>
        + Sink<MasterMessage, Error = CodecError>
        + FrameLimit
        + Heard
        + Unpin,
    I: Incoming,
{
    let Ok(permit) = greeting.pending.clone().try_acquire_owned() else {
        tracing::warn!(
            "{MAX_PENDING_HANDSHAKES} connections are in the handshake already; closing a new one"
        );
        return;
    };
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    // The deadline also bounds sending: a peer that reads nothing cannot
    // hold the permit by stalling a refusal or a welcome.
    let handshaken = timeout_at(deadline, handshake(&mut io, &greeting, deadline)).await;
    let Ok(Some(hello)) = handshaken else {
        return;
    };
    drop(permit);
    let id = hello.worker_id.clone();
    let (tx, mut rx) = mpsc::channel(256);
    let liveness = Liveness::new();
    let joined = Event::Joined {
        hello,
        conn,
        tx,
        liveness: liveness.clone(),
    };
    if events.send(joined).await.is_err() {
        return;
    }
    let to = ToCoordinator {
        id: &id,
        conn,
        events: &events,
        budget: &greeting.budget,
    };
    let mut unsent = Unsent {
        inbox: Inbox::default(),
        raw: None,
    };
    let Some(reason) = pump(&mut io, &to, &liveness, &mut rx, &mut unsent).await else {
        return;
    };
    // A worker that reported and hung up: what it said still counts, and
    // before its goodbye.
    if !hand_over(&to, unsent).await {
        return;
    }
    let _ = events.send(Event::Closed { id, conn, reason }).await;
}

/// Where a connection's messages go.
struct ToCoordinator<'a> {
    id: &'a str,
    conn: ConnId,
    events: &'a mpsc::Sender<Event>,
    budget: &'a ReportBudget,
}

impl ToCoordinator<'_> {
    /// False when the coordinator is gone.
    async fn send(&self, msg: WorkerMessage, permit: Option<OwnedSemaphorePermit>) -> bool {
        let event = Event::FromWorker {
            id: self.id.to_string(),
            conn: self.conn,
            msg,
            permit,
        };
        self.events.send(event).await.is_ok()
    }
}

/// What a connection has read and not handed over yet.
struct Unsent<I> {
    inbox: Inbox,
    /// A large frame not decoded yet: it waits for a permit.
    raw: Option<I>,
}

/// Hands everything unsent to the coordinator, waiting as long as it
/// takes; false when the coordinator is gone.
async fn hand_over<I: Incoming>(to: &ToCoordinator<'_>, mut unsent: Unsent<I>) -> bool {
    loop {
        while let Some((msg, permit)) = unsent.inbox.next() {
            if !to.send(msg, permit).await {
                return false;
            }
        }
        let Some(frame) = unsent.raw.take() else {
            return true;
        };
        let n = permits_for(frame.wire_bytes());
        let Ok(permit) = to.budget.clone().acquire_many_owned(n).await else {
            return false;
        };
        match frame.decode() {
            Ok(msg) => unsent.inbox.put(msg, Some(permit)),
            // The link failed anyway; what came before is handed over.
            Err(_) => return true,
        }
    }
}

/// Moves messages both ways until the link ends, and says why; None when
/// the coordinator is gone. The socket is read whether or not the
/// coordinator has room: what it has no room for waits in the [`Inbox`]
/// (reports merged into one), so a busy master still hears its workers and
/// still sounds alive to them. Only a report that would need a decoded
/// copy beyond the master's budget stops the reading, and then the worker
/// is not judged by its silence ([`HELD`]): the master is the one behind.
async fn pump<T, I>(
    io: &mut T,
    to: &ToCoordinator<'_>,
    liveness: &Liveness,
    rx: &mut mpsc::Receiver<MasterMessage>,
    unsent: &mut Unsent<I>,
) -> Option<String>
where
    T: Stream<Item = Result<I, CodecError>>
        + Sink<MasterMessage, Error = CodecError>
        + Heard
        + Unpin,
    I: Incoming,
{
    let Unsent { inbox, raw } = unsent;
    let mut was_held = false;
    loop {
        let reading = raw.is_none() && inbox.open();
        if reading == was_held {
            was_held = !reading;
            let seen = if was_held { HELD } else { mono_ms() };
            liveness.seen.store(seen, Ordering::Relaxed);
        }
        // Biased: what the worker sent is read before the master's
        // heartbeat goes out, so passing one on means the socket was empty.
        tokio::select! {
            biased;
            incoming = io.next(), if reading => match incoming {
                Some(Ok(frame)) => {
                    liveness.seen.store(mono_ms(), Ordering::Relaxed);
                    match take_in(frame, inbox, to.budget) {
                        Ok(waiting) => *raw = waiting,
                        Err(e) => return Some(e.to_string()),
                    }
                }
                Some(Err(e)) => return Some(e.to_string()),
                None => return Some("the worker closed the connection".to_string()),
            },
            permit = to.budget.clone().acquire_many_owned(raw.as_ref().map_or(1, |f| permits_for(f.wire_bytes()))),
                if raw.is_some() && !inbox.holds_report() => {
                let (Ok(permit), Some(frame)) = (permit, raw.take()) else {
                    return None;
                };
                match frame.decode() {
                    Ok(msg) => inbox.put(msg, Some(permit)),
                    Err(e) => return Some(e.to_string()),
                }
            }
            slot = to.events.reserve(), if !inbox.is_empty() => {
                let (Ok(slot), Some((msg, permit))) = (slot, inbox.next()) else {
                    return None;
                };
                slot.send(Event::FromWorker { id: to.id.to_string(), conn: to.conn, msg, permit });
            }
            outgoing = rx.recv() => match outgoing {
                Some(msg) => {
                    // The master's heartbeat, or an ack in its place: the
                    // socket was found empty just now (reading comes first).
                    if let MasterMessage::Ack { .. } | MasterMessage::Heartbeat = &msg {
                        // Part of a frame is news of the worker too.
                        if let (true, Some(heard)) = (reading, io.heard_ms()) {
                            liveness.seen.fetch_max(heard, Ordering::Relaxed);
                        }
                        liveness.drained.store(mono_ms(), Ordering::Relaxed);
                    }
                    if let MasterMessage::Ack { seq } = &msg {
                        inbox.acked(*seq);
                    }
                    if let Err(e) = io.send(msg).await {
                        // What the worker said before it hung up still
                        // counts: a goodbye must not read as a lost worker.
                        // Bounded: a link that refuses writes has ended.
                        while raw.is_none() {
                            let Some(Ok(frame)) = io.next().await else { break };
                            match take_in(frame, inbox, to.budget) {
                                Ok(waiting) => *raw = waiting,
                                Err(_) => break,
                            }
                        }
                        return Some(e.to_string());
                    }
                }
                // The coordinator dropped us (lost, replaced or shut down).
                None => {
                    let _ = io.close().await;
                    return Some("closed by the master".to_string());
                }
            },
        }
    }
}

/// Takes a frame into the inbox, decoding it when that costs little or a
/// permit is free; otherwise hands it back to wait, undecoded.
fn take_in<I: Incoming>(
    frame: I,
    inbox: &mut Inbox,
    budget: &ReportBudget,
) -> Result<Option<I>, CodecError> {
    // Merged into the held report at once, a decoded copy lives only here.
    if !frame.is_large() || inbox.can_merge() {
        inbox.put(frame.decode()?, None);
        return Ok(None);
    }
    if inbox.holds_report() {
        return Ok(Some(frame));
    }
    match budget
        .clone()
        .try_acquire_many_owned(permits_for(frame.wire_bytes()))
    {
        Ok(permit) => {
            inbox.put(frame.decode()?, Some(permit));
            Ok(None)
        }
        Err(_) => Ok(Some(frame)),
    }
}

/// Greets a new connection: its hello is checked, then (when the master
/// has a token) the worker proves it knows the token and the master proves
/// it back in its welcome. Returns the hello once the worker is welcome;
/// None when it was refused or gave up.
async fn handshake<T, I>(io: &mut T, greeting: &Greeting, deadline: Instant) -> Option<Hello>
where
    T: Stream<Item = Result<I, CodecError>>
        + Sink<MasterMessage, Error = CodecError>
        + FrameLimit
        + Unpin,
    I: Incoming,
{
    let hello = receive_hello(io, deadline).await?;
    if let Err(refusal) = check_hello(&hello, greeting.token.as_deref()) {
        refuse(io, refusal).await;
        return None;
    }
    let proof = match (&greeting.token, &hello.nonce) {
        (Some(token), Some(worker_nonce)) => {
            let master_nonce = new_nonce();
            let exchange = Exchange {
                token,
                worker_id: &hello.worker_id,
                worker_nonce,
                master_nonce: &master_nonce,
            };
            let challenge = MasterMessage::Challenge {
                nonce: master_nonce.clone(),
            };
            io.send(challenge).await.ok()?;
            let mac = receive_proof(io, &hello.worker_id, deadline).await?;
            if !exchange.is_worker_proof(&mac) {
                let worker_id = hello.worker_id.clone();
                refuse(io, HandshakeError::WrongToken { worker_id }).await;
                return None;
            }
            Some(exchange.master_proof())
        }
        // check_hello let through only a nonce with a token, or neither.
        _ => None,
    };
    // Proven (or no token to prove): from now on frames may be large.
    io.open_frames();
    let welcome = MasterMessage::Welcome {
        heartbeat_interval_ms: greeting.heartbeat_interval.as_millis() as u64,
        report_interval_ms: greeting.report_interval.as_millis() as u64,
        master_id: greeting.master_id,
        proof,
    };
    io.send(welcome).await.ok()?;
    Some(hello)
}

/// The first message, which must be a hello.
async fn receive_hello<T, I>(io: &mut T, deadline: Instant) -> Option<Hello>
where
    T: Stream<Item = Result<I, CodecError>> + Sink<MasterMessage, Error = CodecError> + Unpin,
    I: Incoming,
{
    match timeout_at(deadline, next_message(io)).await {
        Ok(Some(Ok(WorkerMessage::Hello(hello)))) => Some(hello),
        Ok(Some(Ok(other))) => {
            tracing::warn!(
                "a connection spoke before saying hello ({}); closing it",
                kind(&other)
            );
            None
        }
        Ok(Some(Err(CodecError::OtherVersion {
            protocol_version,
            swarmer_version,
            worker_id,
        }))) => {
            // A hello of another version: refuse it in words both sides
            // read. The codec made its strings printable and short.
            let refusal = HandshakeError::Version {
                worker_id,
                worker_protocol: protocol_version,
                worker_version: swarmer_version,
                master_protocol: PROTOCOL_VERSION,
                master_version: SWARMER_VERSION.to_string(),
            };
            refuse(io, refusal).await;
            None
        }
        Ok(Some(Err(e))) => {
            // A decode error may quote the peer's bytes (an unknown variant).
            let e = printable(&e.to_string(), 200);
            tracing::warn!("closing a connection that sent a bad first frame: {e}");
            None
        }
        Ok(None) => None,
        Err(_) => {
            tracing::warn!(
                "closing a connection that did not finish the handshake within {HANDSHAKE_TIMEOUT:?}"
            );
            None
        }
    }
}

/// The worker's answer to the challenge.
async fn receive_proof<T, I>(io: &mut T, worker_id: &str, deadline: Instant) -> Option<Vec<u8>>
where
    T: Stream<Item = Result<I, CodecError>> + Unpin,
    I: Incoming,
{
    match timeout_at(deadline, next_message(io)).await {
        Ok(Some(Ok(WorkerMessage::Proof { mac }))) => Some(mac),
        Ok(Some(Ok(other))) => {
            tracing::warn!(
                "worker {worker_id} sent {} instead of its proof of the cluster token; closing",
                kind(&other)
            );
            None
        }
        Ok(Some(Err(e))) => {
            let e = printable(&e.to_string(), 200);
            tracing::warn!("worker {worker_id} broke off the handshake: {e}");
            None
        }
        Ok(None) => {
            tracing::warn!("worker {worker_id} hung up during the handshake");
            None
        }
        Err(_) => {
            tracing::warn!("worker {worker_id} sent no proof of the cluster token in time");
            None
        }
    }
}

/// The next message, decoded (handshake frames are small).
async fn next_message<T, I>(io: &mut T) -> Option<Result<WorkerMessage, CodecError>>
where
    T: Stream<Item = Result<I, CodecError>> + Unpin,
    I: Incoming,
{
    Some(io.next().await?.and_then(Incoming::decode))
}

/// A message's name, without what it carries (a stranger's bytes).
fn kind(msg: &WorkerMessage) -> &'static str {
    match msg {
        WorkerMessage::Hello(_) => "a hello",
        WorkerMessage::Proof { .. } => "a proof",
        WorkerMessage::Heartbeat(_) => "a heartbeat",
        WorkerMessage::Report(_) => "a report",
        WorkerMessage::ScriptError { .. } => "a script error",
        WorkerMessage::Stopped { .. } => "a stopped notice",
        WorkerMessage::Quitting => "a goodbye",
        WorkerMessage::ScriptWanted { .. } => "a script request",
        WorkerMessage::FeederLease { .. } => "a feeder lease request",
    }
}

/// Says why, on both sides, and hangs up.
async fn refuse<T>(io: &mut T, refusal: HandshakeError)
where
    T: Sink<MasterMessage, Error = CodecError> + Unpin,
{
    tracing::warn!("refused a worker: {refusal}");
    let reason = refusal.to_string();
    let _ = io.send(MasterMessage::Refused { reason }).await;
    let _ = io.close().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::{Report, WorkerStatus};

    #[tokio::test]
    async fn what_a_worker_said_before_hanging_up_reaches_the_coordinator_in_order() {
        let (events, mut queue) = mpsc::channel(8);
        let budget = report_budget();
        let to = ToCoordinator {
            id: "w1",
            conn: 1,
            events: &events,
            budget: &budget,
        };
        let mut unsent = Unsent {
            inbox: Inbox::default(),
            raw: Some(WorkerMessage::Stopped { run_id: 1 }),
        };
        let report = Report {
            run_id: 1,
            seq: 3,
            stats: stats::RequestStats::new(0),
            user_count: 0,
            users_by_type: Default::default(),
            pool_users: 0,
            released_indexes: Vec::new(),
        };
        unsent
            .inbox
            .put(WorkerMessage::Report(Box::new(report)), None);
        unsent
            .inbox
            .put(WorkerMessage::Heartbeat(WorkerStatus::default()), None);
        assert!(hand_over(&to, unsent).await);
        drop(events);
        let mut kinds = Vec::new();
        while let Some(Event::FromWorker { msg, .. }) = queue.recv().await {
            kinds.push(kind(&msg));
        }
        assert_eq!(kinds, ["a report", "a heartbeat", "a stopped notice"]);
    }

    /// A worker that says goodbye and hangs up while the master is sending
    /// to it: the goodbye reaches the coordinator, so the worker leaves
    /// instead of being lost.
    #[tokio::test]
    async fn a_goodbye_before_a_hangup_is_delivered() {
        use futures::SinkExt;
        let (mut master_end, mut worker_end) = protocol::memory::pair();
        worker_end.send(WorkerMessage::Quitting).await.unwrap();
        drop(worker_end);
        let (tx, mut rx) = mpsc::channel(4);
        tx.send(MasterMessage::Heartbeat).await.unwrap();
        let (events, mut queue) = mpsc::channel(8);
        let budget = report_budget();
        let to = ToCoordinator {
            id: "w1",
            conn: 1,
            events: &events,
            budget: &budget,
        };
        let mut unsent = Unsent::<WorkerMessage> {
            inbox: Inbox::default(),
            raw: None,
        };
        let liveness = Liveness::new();
        let reason = pump(&mut master_end, &to, &liveness, &mut rx, &mut unsent).await;
        assert!(reason.is_some(), "the link ended, the coordinator is there");
        assert!(hand_over(&to, unsent).await);
        drop(events);
        let mut kinds = Vec::new();
        while let Some(Event::FromWorker { msg, .. }) = queue.recv().await {
            kinds.push(kind(&msg));
        }
        assert_eq!(kinds, ["a goodbye"]);
    }
}
