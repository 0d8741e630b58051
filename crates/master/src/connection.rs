//! One worker connection on the master's side, over any transport: the
//! handshake, then messages pumped between the socket and the coordinator.
//!
//! A malformed or oversized frame ends this connection only; the
//! coordinator hears `Closed` and decides whether the worker is lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::{Sink, SinkExt, Stream, StreamExt};
use protocol::{
    CodecError, HandshakeError, Hello, MasterMessage, PROTOCOL_VERSION, SWARMER_VERSION,
    WorkerMessage, check_hello,
};
use tokio::sync::mpsc;

use crate::coordinator::Event;
use crate::membership::{ConnId, mono_ms};

/// What a connection needs to know to greet a worker.
#[derive(Clone)]
pub struct Greeting {
    pub token: Option<String>,
    pub heartbeat_interval: Duration,
    pub report_interval: Duration,
    /// Random per master process; see `MasterMessage::Welcome`.
    pub master_id: u64,
}

pub async fn serve<T>(mut io: T, conn: ConnId, greeting: Greeting, events: mpsc::Sender<Event>)
where
    T: Stream<Item = Result<WorkerMessage, CodecError>>
        + Sink<MasterMessage, Error = CodecError>
        + Unpin,
{
    let Some(hello) = receive_hello(&mut io, &greeting).await else {
        return;
    };
    let welcome = MasterMessage::Welcome {
        heartbeat_interval_ms: greeting.heartbeat_interval.as_millis() as u64,
        report_interval_ms: greeting.report_interval.as_millis() as u64,
        master_id: greeting.master_id,
    };
    if io.send(welcome).await.is_err() {
        return;
    }
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

async fn receive_hello<T>(io: &mut T, greeting: &Greeting) -> Option<Hello>
where
    T: Stream<Item = Result<WorkerMessage, CodecError>>
        + Sink<MasterMessage, Error = CodecError>
        + Unpin,
{
    let first = tokio::time::timeout(Duration::from_secs(10), io.next()).await;
    let hello = match first {
        Ok(Some(Ok(WorkerMessage::Hello(hello)))) => hello,
        Ok(Some(Ok(other))) => {
            tracing::warn!("a connection spoke before saying hello ({other:?}); closing it");
            return None;
        }
        Ok(Some(Err(CodecError::OtherVersion {
            protocol_version,
            swarmer_version,
            worker_id,
        }))) => {
            // A hello of another version: refuse it in words both sides read.
            let refusal = HandshakeError::Version {
                worker_id,
                worker_protocol: protocol_version,
                worker_version: swarmer_version,
                master_protocol: PROTOCOL_VERSION,
                master_version: SWARMER_VERSION.to_string(),
            };
            refuse(io, refusal).await;
            return None;
        }
        Ok(Some(Err(e))) => {
            tracing::warn!("closing a connection that sent a bad first frame: {e}");
            return None;
        }
        Ok(None) => return None,
        Err(_) => {
            tracing::warn!("closing a connection that sent no hello within 10 s");
            return None;
        }
    };
    if let Err(refusal) = check_hello(&hello, greeting.token.as_deref()) {
        refuse(io, refusal).await;
        return None;
    }
    Some(hello)
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
