//! Rows of `unique` feeders leased from the master: a core's request goes
//! out as `FeederLease`, and the master's `FeederGrant`s come back in the
//! order of the requests of each feeder, so each grant answers the oldest
//! request of its feeder still waiting.
//!
//! Held per connection: when it ends, the waiting requests are dropped
//! and their users get a clear error (their task fails, they go on).

use std::collections::{HashMap, VecDeque};
use std::ops::Range;

use protocol::WorkerMessage;
use script::LeaseRequest;
use tokio::sync::oneshot;

type Reply = oneshot::Sender<Result<Range<u32>, String>>;

#[derive(Default)]
pub struct PendingLeases(HashMap<String, VecDeque<Reply>>);

impl PendingLeases {
    /// Keeps `request`'s reply and gives the message to send for it.
    pub fn ask(&mut self, run_id: u64, request: LeaseRequest) -> WorkerMessage {
        self.0
            .entry(request.feeder.clone())
            .or_default()
            .push_back(request.reply);
        WorkerMessage::FeederLease {
            run_id,
            feeder: request.feeder,
            rows: request.rows,
            want: request.want,
        }
    }

    /// The master granted rows `first..first + count` of `feeder`.
    pub fn granted(&mut self, feeder: &str, first: u32, count: u32) {
        let Some(waiting) = self.0.get_mut(feeder) else {
            tracing::warn!("the master granted rows of feeder {feeder:?}, which asked for none");
            return;
        };
        if let Some(reply) = waiting.pop_front() {
            // A user that was dropped meanwhile leaves the rows unused.
            let _ = reply.send(Ok(first..first.saturating_add(count)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_answer_the_oldest_request_of_their_feeder() {
        let mut pending = PendingLeases::default();
        let mut ask = |feeder: &str| {
            let (reply, rx) = oneshot::channel();
            let request = LeaseRequest {
                feeder: feeder.into(),
                rows: 10,
                want: 2,
                reply,
            };
            let msg = pending.ask(7, request);
            assert!(matches!(msg, WorkerMessage::FeederLease { run_id: 7, .. }));
            rx
        };
        let (mut a1, mut b1, mut a2) = (ask("a"), ask("b"), ask("a"));
        pending.granted("a", 0, 2);
        pending.granted("b", 0, 2);
        pending.granted("a", 2, 0);
        assert_eq!(a1.try_recv().unwrap(), Ok(0..2));
        assert_eq!(b1.try_recv().unwrap(), Ok(0..2));
        assert_eq!(a2.try_recv().unwrap(), Ok(2..2));
        pending.granted("c", 0, 1);
    }
}
