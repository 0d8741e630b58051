//! One worker connection on the master's side, over any transport: the
//! handshake, then messages pumped between the socket and the coordinator.
//!
//! A malformed or oversized frame ends this connection only; the
//! coordinator hears `Closed` and decides whether the worker is lost.

use std::time::Duration;

use futures::{Sink, SinkExt, Stream, StreamExt};
use protocol::{
    CodecError, HandshakeError, Hello, MasterMessage, PROTOCOL_VERSION, SWARMER_VERSION,
    WorkerMessage, check_hello,
};
use tokio::sync::mpsc;

use crate::coordinator::Event;
use crate::membership::ConnId;

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
    if events
        .send(Event::Joined { hello, conn, tx })
        .await
        .is_err()
    {
        return;
    }
    let reason = loop {
        tokio::select! {
            incoming = io.next() => match incoming {
                Some(Ok(msg)) => {
                    let event = Event::FromWorker { id: id.clone(), conn, msg };
                    if events.send(event).await.is_err() {
                        return;
                    }
                }
                Some(Err(e)) => break e.to_string(),
                None => break "the worker closed the connection".to_string(),
            },
            outgoing = rx.recv() => match outgoing {
                Some(msg) => {
                    if let Err(e) = io.send(msg).await {
                        break e.to_string();
                    }
                }
                // The coordinator dropped us (lost, replaced or shut down).
                None => {
                    let _ = io.close().await;
                    break "closed by the master".to_string();
                }
            },
        }
    };
    let _ = events.send(Event::Closed { id, conn, reason }).await;
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
