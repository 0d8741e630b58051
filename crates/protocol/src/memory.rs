//! An in-process link between a master and a worker, for standalone mode.
//!
//! Both ends are a `Stream` of what they receive and a `Sink` of what they
//! send, exactly like a framed TCP connection, so the master and worker code
//! cannot tell the difference. Messages are moved, never encoded.

use futures::{Sink, Stream};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;
use tokio_util::sync::PollSender;

use crate::{CodecError, MasterMessage, WorkerMessage};

/// One end of an in-memory link: receives `In`, sends `Out`.
pub struct MemoryEnd<In, Out> {
    rx: mpsc::Receiver<In>,
    tx: PollSender<Out>,
}

/// The master's end receives worker messages; the worker's end the reverse.
pub type MasterEnd = MemoryEnd<WorkerMessage, MasterMessage>;
pub type WorkerEnd = MemoryEnd<MasterMessage, WorkerMessage>;

pub fn pair() -> (MasterEnd, WorkerEnd) {
    let (to_worker, from_master) = mpsc::channel(64);
    let (to_master, from_worker) = mpsc::channel(64);
    (
        MemoryEnd {
            rx: from_worker,
            tx: PollSender::new(to_worker),
        },
        MemoryEnd {
            rx: from_master,
            tx: PollSender::new(to_master),
        },
    )
}

fn closed() -> CodecError {
    std::io::Error::new(std::io::ErrorKind::BrokenPipe, "in-process peer is gone").into()
}

impl<In, Out> Stream for MemoryEnd<In, Out> {
    type Item = Result<In, CodecError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.rx.poll_recv(cx).map(|m| m.map(Ok))
    }
}

impl<In, Out: Send + 'static> Sink<Out> for MemoryEnd<In, Out> {
    type Error = CodecError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), CodecError>> {
        self.tx.poll_reserve(cx).map_err(|_| closed())
    }

    fn start_send(mut self: Pin<&mut Self>, item: Out) -> Result<(), CodecError> {
        self.tx.send_item(item).map_err(|_| closed())
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), CodecError>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Result<(), CodecError>> {
        self.tx.close();
        Poll::Ready(Ok(()))
    }
}
