//! What one worker connection holds for the coordinator while the
//! coordinator is busy: at most one report (later ones merged into it), the
//! latest heartbeat, and one message that must keep its place in line.
//!
//! A master that falls behind thus keeps reading its sockets (so it knows
//! its workers are alive) and its own work shrinks instead of piling up: k
//! reports a worker sent while the coordinator was busy reach it as one,
//! merged on the connection's thread. Decoded reports are large, so holding
//! one takes a permit of the master-wide [`ReportBudget`]; a connection
//! without one leaves the report's bytes undecoded (and the rest in the
//! socket) until a permit is free.

use std::sync::Arc;

use protocol::{Report, WorkerMessage, WorkerStatus};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Decoded reports held master-wide (queued for the coordinator or held by
/// connections), counted in reports of [`BUDGET_UNIT_BYTES`] on the wire
/// (a report of 50 entries, about a megabyte decoded; a larger one takes
/// as many permits as it is units long): this bounds the master's memory
/// however far behind it is.
pub const DECODED_REPORTS: usize = 128;
pub const BUDGET_UNIT_BYTES: usize = 64 * 1024;

/// Permits for holding a decoded report, shared by all connections.
pub type ReportBudget = Arc<Semaphore>;

pub fn report_budget() -> ReportBudget {
    Arc::new(Semaphore::new(DECODED_REPORTS))
}

/// The permits a frame of `wire_bytes` takes.
pub fn permits_for(wire_bytes: usize) -> u32 {
    (wire_bytes / BUDGET_UNIT_BYTES).clamp(1, DECODED_REPORTS) as u32
}

/// A report on its way to the coordinator, with what it cost.
pub struct Held {
    pub report: Box<Report>,
    /// The lowest report number merged into it.
    first_seq: u64,
    pub permit: Option<OwnedSemaphorePermit>,
}

/// One message for the coordinator and the permit it holds, if any.
pub type Delivery = (WorkerMessage, Option<OwnedSemaphorePermit>);

#[derive(Default)]
pub struct Inbox {
    report: Option<Held>,
    beat: Option<WorkerStatus>,
    /// Anything else (a stop notice, a goodbye, a report of another run):
    /// while it waits, the connection reads no further, so nothing can
    /// overtake it.
    other: Option<WorkerMessage>,
    /// The highest report number the coordinator acknowledged on this
    /// connection: the reports it had merged, whatever connection of the
    /// worker brought them.
    acked: Option<u64>,
}

impl Inbox {
    /// Whether the connection may read the next frame.
    pub fn open(&self) -> bool {
        self.other.is_none()
    }

    pub fn is_empty(&self) -> bool {
        self.report.is_none() && self.beat.is_none() && self.other.is_none()
    }

    pub fn holds_report(&self) -> bool {
        self.report.is_some()
    }

    /// The coordinator acknowledged reports up to `seq`.
    pub fn acked(&mut self, seq: u64) {
        self.acked = Some(self.acked.map_or(seq, |a| a.max(seq)));
    }

    /// Whether a later report of this worker may be merged into the held
    /// one. Not before the coordinator has answered on this connection: a
    /// worker that reconnects sends again what was not acknowledged, and a
    /// report the coordinator has merged already must reach it alone to
    /// be recognised (by its number) and dropped.
    pub fn can_merge(&self) -> bool {
        match (&self.report, self.acked) {
            (Some(held), Some(acked)) => held.first_seq > acked,
            _ => false,
        }
    }

    /// Takes a message in; `permit` is the budget's, for a report that
    /// needed one.
    pub fn put(&mut self, msg: WorkerMessage, permit: Option<OwnedSemaphorePermit>) {
        match msg {
            WorkerMessage::Report(report) => self.put_report(report, permit),
            WorkerMessage::Heartbeat(status) => self.beat = Some(status),
            other => self.other = Some(other),
        }
    }

    fn put_report(&mut self, report: Box<Report>, permit: Option<OwnedSemaphorePermit>) {
        let mergeable = self.can_merge();
        match &mut self.report {
            Some(held)
                if mergeable
                    && held.report.run_id == report.run_id
                    && report.seq > held.report.seq =>
            {
                // Exact: merging is associative and commutative, and the
                // coordinator sees one report numbered as the newest.
                held.report.stats.merge(&report.stats);
                held.report.seq = report.seq;
                held.report.user_count = report.user_count;
                held.report.users_by_type = report.users_by_type;
                held.report.pool_users = report.pool_users;
                held.report.released_indexes.extend(report.released_indexes);
            }
            Some(_) => self.other = Some(WorkerMessage::Report(report)),
            None => {
                self.report = Some(Held {
                    first_seq: report.seq,
                    report,
                    permit,
                })
            }
        }
    }

    /// The next message for the coordinator, in the order that keeps its
    /// meaning: the report, then the newest heartbeat, then the rest.
    pub fn next(&mut self) -> Option<Delivery> {
        if let Some(held) = self.report.take() {
            return Some((WorkerMessage::Report(held.report), held.permit));
        }
        if let Some(status) = self.beat.take() {
            return Some((WorkerMessage::Heartbeat(status), None));
        }
        self.other.take().map(|msg| (msg, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stats::{RequestStats, Sample};

    fn report(run_id: u64, seq: u64, requests: u64) -> WorkerMessage {
        let mut stats = RequestStats::new(0);
        for i in 0..requests {
            let sample = Sample {
                method: "GET",
                name: "/",
                response_time_us: 1_000 + i,
                due_latency_us: None,
                content_length: 1,
                error: None,
            };
            stats.record(&sample, 1_000);
        }
        WorkerMessage::Report(Box::new(Report {
            run_id,
            seq,
            stats,
            user_count: seq as u32,
            users_by_type: Default::default(),
            pool_users: 0,
            released_indexes: Vec::new(),
        }))
    }

    fn delivered_report(inbox: &mut Inbox) -> Box<Report> {
        match inbox.next() {
            Some((WorkerMessage::Report(r), _)) => r,
            other => panic!("expected a report, got {:?}", other.map(|d| d.0)),
        }
    }

    #[test]
    fn reports_merge_only_once_the_coordinator_has_answered_and_only_fresh_ones() {
        let mut inbox = Inbox::default();
        inbox.put(report(1, 4, 10), None);
        // No answer yet: report 4 may be a resend the coordinator has.
        inbox.put(report(1, 5, 20), None);
        assert!(!inbox.open(), "the second waits, and reading stops");
        assert_eq!(delivered_report(&mut inbox).seq, 4);
        assert_eq!(delivered_report(&mut inbox).seq, 5);
        assert!(inbox.is_empty() && inbox.open());

        inbox.acked(5);
        inbox.put(report(1, 6, 1), None);
        inbox.put(report(1, 7, 2), None);
        inbox.put(WorkerMessage::Heartbeat(WorkerStatus::default()), None);
        inbox.put(report(1, 8, 3), None);
        assert!(inbox.open());
        let merged = delivered_report(&mut inbox);
        assert_eq!((merged.seq, merged.user_count), (8, 8));
        assert_eq!(merged.stats.num_requests(), 6);
        assert!(matches!(
            inbox.next(),
            Some((WorkerMessage::Heartbeat(_), None))
        ));
        assert!(inbox.next().is_none());
    }

    #[test]
    fn a_report_already_acknowledged_or_of_another_run_is_not_merged() {
        let mut inbox = Inbox::default();
        inbox.acked(9);
        // A resend the coordinator merged already: it must arrive alone.
        inbox.put(report(1, 9, 1), None);
        inbox.put(report(1, 10, 1), None);
        assert_eq!(delivered_report(&mut inbox).seq, 9);
        assert_eq!(delivered_report(&mut inbox).seq, 10);
        inbox.put(report(1, 11, 1), None);
        inbox.put(report(2, 1, 1), None);
        assert_eq!(delivered_report(&mut inbox).run_id, 1);
        assert_eq!(delivered_report(&mut inbox).run_id, 2);
    }

    #[test]
    fn a_stop_notice_keeps_its_place_behind_the_report_and_heartbeat() {
        let mut inbox = Inbox::default();
        inbox.put(report(1, 1, 1), None);
        inbox.put(WorkerMessage::Stopped { run_id: 1 }, None);
        assert!(!inbox.open());
        assert!(matches!(inbox.next(), Some((WorkerMessage::Report(_), _))));
        assert!(matches!(
            inbox.next(),
            Some((WorkerMessage::Stopped { run_id: 1 }, _))
        ));
        assert!(inbox.open());
    }
}
