//! One worker connection on the master's side, over any transport: the
//! handshake, then messages pumped between the socket and the coordinator.
//!
//! A malformed or oversized frame ends this connection only; the
//! coordinator hears `Closed` and decides whether the worker is lost.
//! Until a peer has passed the handshake it is a stranger, and costs the
//! master little: its frames are capped at a few KiB (the link's
//! [`FrameLimit`] opens only after), the whole handshake has a deadline,
//! at most [`MAX_PENDING_HANDSHAKES`] run at once, and what it said is
//! logged only once checked or made [`printable`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{Sink, SinkExt, Stream, StreamExt};
use protocol::{
    CodecError, Exchange, FrameLimit, HandshakeError, Hello, MasterMessage, PROTOCOL_VERSION,
    SWARMER_VERSION, WorkerMessage, check_hello, new_nonce, printable,
};
use tokio::sync::{Semaphore, mpsc};
use tokio::time::{Instant, timeout_at};

use crate::coordinator::Event;
use crate::membership::{ConnId, mono_ms};

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
        }
    }
}

pub async fn serve<T>(mut io: T, conn: ConnId, greeting: Greeting, events: mpsc::Sender<Event>)
where
    T: Stream<Item = Result<WorkerMessage, CodecError>>
        + Sink<MasterMessage, Error = CodecError>
        + FrameLimit
        + Unpin,
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
    let seen = Arc::new(AtomicU64::new(mono_ms()));
    let joined = Event::Joined {
        hello,
        conn,
        tx,
        seen: seen.clone(),
    };
    if events.send(joined).await.is_err() {
        return;
    }
    let Some(reason) = pump(&mut io, &id, conn, &seen, &mut rx, &events).await else {
        return;
    };
    let _ = events.send(Event::Closed { id, conn, reason }).await;
}

/// Moves messages both ways until the link ends, and says why; None when
/// the coordinator is gone. A worker message waiting for room in the
/// coordinator's queue does not hold up what the master sends (heartbeats
/// above all), so a master that is busy still sounds alive to its workers.
async fn pump<T>(
    io: &mut T,
    id: &str,
    conn: ConnId,
    seen: &AtomicU64,
    rx: &mut mpsc::Receiver<MasterMessage>,
    events: &mpsc::Sender<Event>,
) -> Option<String>
where
    T: Stream<Item = Result<WorkerMessage, CodecError>>
        + Sink<MasterMessage, Error = CodecError>
        + Unpin,
{
    let mut waiting: Option<WorkerMessage> = None;
    loop {
        tokio::select! {
            incoming = io.next(), if waiting.is_none() => match incoming {
                Some(Ok(msg)) => {
                    seen.store(mono_ms(), Ordering::Relaxed);
                    waiting = Some(msg);
                }
                Some(Err(e)) => return Some(e.to_string()),
                None => return Some("the worker closed the connection".to_string()),
            },
            permit = events.reserve(), if waiting.is_some() => {
                let (Ok(permit), Some(msg)) = (permit, waiting.take()) else {
                    return None;
                };
                permit.send(Event::FromWorker { id: id.to_string(), conn, msg });
            }
            outgoing = rx.recv() => match outgoing {
                Some(msg) => {
                    if let Err(e) = io.send(msg).await {
                        // What the worker said before it hung up still
                        // counts: a goodbye must not read as a lost worker.
                        drain(io, id, conn, waiting, events).await?;
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

/// Hands the coordinator what a peer that can no longer be written to
/// had already sent, up to the end of its stream; None when the
/// coordinator is gone. Bounded: a link that refuses writes has ended, so
/// its stream ends with what was in flight.
async fn drain<T>(
    io: &mut T,
    id: &str,
    conn: ConnId,
    mut waiting: Option<WorkerMessage>,
    events: &mpsc::Sender<Event>,
) -> Option<()>
where
    T: Stream<Item = Result<WorkerMessage, CodecError>> + Unpin,
{
    loop {
        let msg = match waiting.take() {
            Some(msg) => msg,
            None => match io.next().await {
                Some(Ok(msg)) => msg,
                Some(Err(_)) | None => return Some(()),
            },
        };
        let event = Event::FromWorker {
            id: id.to_string(),
            conn,
            msg,
        };
        events.send(event).await.ok()?;
    }
}

/// Greets a new connection: its hello is checked, then (when the master
/// has a token) the worker proves it knows the token and the master proves
/// it back in its welcome. Returns the hello once the worker is welcome;
/// None when it was refused or gave up.
async fn handshake<T>(io: &mut T, greeting: &Greeting, deadline: Instant) -> Option<Hello>
where
    T: Stream<Item = Result<WorkerMessage, CodecError>>
        + Sink<MasterMessage, Error = CodecError>
        + FrameLimit
        + Unpin,
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
async fn receive_hello<T>(io: &mut T, deadline: Instant) -> Option<Hello>
where
    T: Stream<Item = Result<WorkerMessage, CodecError>>
        + Sink<MasterMessage, Error = CodecError>
        + Unpin,
{
    match timeout_at(deadline, io.next()).await {
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
async fn receive_proof<T>(io: &mut T, worker_id: &str, deadline: Instant) -> Option<Vec<u8>>
where
    T: Stream<Item = Result<WorkerMessage, CodecError>> + Unpin,
{
    match timeout_at(deadline, io.next()).await {
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

/// A message's name, without what it carries (a stranger's bytes).
fn kind(msg: &WorkerMessage) -> &'static str {
    match msg {
        WorkerMessage::Hello(_) => "a hello",
        WorkerMessage::Proof { .. } => "a proof",
        WorkerMessage::Heartbeat(_) => "a heartbeat",
        WorkerMessage::Report(_) => "a report",
        WorkerMessage::ScriptWanted { .. } => "a script request",
        WorkerMessage::ScriptError { .. } => "a script error",
        WorkerMessage::Stopped { .. } => "a stopped notice",
        WorkerMessage::Quitting => "a goodbye",
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
    use futures::SinkExt;
    use protocol::memory;

    /// A worker that says goodbye and hangs up while the master is sending
    /// to it: the goodbye reaches the coordinator before the hangup, so
    /// the worker leaves instead of being lost. Repeated, because the
    /// pump's select picks its branch at random.
    #[tokio::test]
    async fn a_goodbye_before_a_hangup_is_delivered() {
        for _ in 0..32 {
            let (mut master_end, mut worker_end) = memory::pair();
            worker_end.send(WorkerMessage::Quitting).await.unwrap();
            drop(worker_end);
            let (tx, mut rx) = mpsc::channel(4);
            tx.send(MasterMessage::Heartbeat).await.unwrap();
            let (events_tx, mut events) = mpsc::channel(4);
            let seen = AtomicU64::new(0);
            let reason = pump(&mut master_end, "w1", 1, &seen, &mut rx, &events_tx).await;
            assert!(reason.is_some(), "the link ended, the coordinator is there");
            let got = events.try_recv().expect("the goodbye was handed on");
            assert!(
                matches!(
                    got,
                    Event::FromWorker {
                        msg: WorkerMessage::Quitting,
                        ..
                    }
                ),
                "expected the goodbye"
            );
        }
    }
}
