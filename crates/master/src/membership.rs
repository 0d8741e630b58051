//! The master's set of workers: who is live, who is lost, and what each one
//! last said. Only live workers count; a lost one is kept to be shown as
//! lost, and becomes live again (never a duplicate) if it returns.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use protocol::{Hello, MasterMessage, WorkerState, WorkerStatus};
use serde::Serialize;
use tokio::sync::mpsc;

/// Identifies one connection, so a stale connection's goodbye cannot remove
/// the same worker's newer one.
pub type ConnId = u64;

/// A connection's `seen` while the master holds it up (it has left a
/// frame unread for want of room): the worker is not silent, the master
/// is behind.
pub const HELD: u64 = u64::MAX;

/// What a connection knows of its worker's liveness: written by the
/// connection as it reads, read by the coordinator's tick. The silence it
/// measures is the connection's own observation, so neither a busy
/// coordinator nor a connection task the runtime has not run for a while
/// turns into a worker's silence.
pub struct Liveness {
    /// When a frame last arrived ([`mono_ms`]), or [`HELD`].
    pub seen: AtomicU64,
    /// When the connection last found nothing left to read (as it passed
    /// on the master's heartbeat); 0 before the first time.
    pub drained: AtomicU64,
}

impl Liveness {
    pub fn new() -> Arc<Liveness> {
        Arc::new(Liveness {
            seen: AtomicU64::new(mono_ms()),
            drained: AtomicU64::new(0),
        })
    }

    /// How long the worker had been silent when its connection last
    /// looked; None while the master holds the connection up.
    pub fn silent_ms(&self) -> Option<u64> {
        let seen = self.seen.load(Ordering::Relaxed);
        if seen == HELD {
            return None;
        }
        let until = match self.drained.load(Ordering::Relaxed) {
            0 => mono_ms(),
            drained => drained,
        };
        Some(until.saturating_sub(seen))
    }
}

/// Milliseconds on a monotonic clock that starts with the process.
pub fn mono_ms() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_millis() as u64
}

pub struct Member {
    pub id: String,
    pub cores: u32,
    pub state: WorkerState,
    pub conn: ConnId,
    pub tx: mpsc::Sender<MasterMessage>,
    pub incarnation: u64,
    /// The highest report number merged from this incarnation.
    pub last_seq: u64,
    /// The acknowledgement of `last_seq` found the connection's queue full:
    /// sent again with the next heartbeat, since a worker sends its next
    /// regular report only once the last is acknowledged.
    pub ack_owed: bool,
    /// An ack went out since the last heartbeat: the worker heard from
    /// this master, so the next heartbeat is not needed.
    pub acked_since_beat: bool,
    /// When a frame last arrived from this worker ([`mono_ms`]), set by
    /// its connection as bytes come in, or [`HELD`]: a busy coordinator
    /// that is slow to handle a heartbeat must not take the worker for
    /// silent.
    pub liveness: Arc<Liveness>,
    pub last_heartbeat_ms: u64,
    pub status: WorkerStatus,
    /// Users per type this worker was last told to run, in run `plan_run`.
    pub plan: BTreeMap<String, u32>,
    pub plan_run: u64,
    /// Its part of each arrival-driven type in that plan (`elapsed_ms` 0,
    /// so only a changed share counts as a change).
    pub plan_arrivals: BTreeMap<String, protocol::ArrivalShare>,
    /// The script bundle this connection was sent: later plans name it by
    /// hash only. A new connection (reconnect, restart) starts without.
    pub script_sent: Option<protocol::ScriptHash>,
    /// The last run this worker confirmed as stopped.
    pub stopped_run: Option<u64>,
    pub hot_since: Option<Instant>,
    /// Warned about this hot spell already.
    pub hot_warned: bool,
    /// When this worker was lost, so it can be forgotten after a while.
    pub lost_at: Option<Instant>,
    /// Users of its arrival pools at its last report (not in
    /// `status.user_count`, which counts the closed-model users).
    pub pool_users: u32,
    /// When its user counts arrived (`now_ms`): the worker takes them just
    /// before it sends its report, so this is when they were true.
    pub users_counted_ms: u64,
}

/// How a worker came to be in the set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Joined {
    New,
    /// Known already (a reconnect, or a lost worker back): one entry still.
    Returned,
    /// Another process took a live worker's id; the old one was told to go.
    Displaced,
}

impl Member {
    /// A worker that just said `hello` on connection `conn`.
    pub fn new(
        hello: &Hello,
        conn: ConnId,
        tx: mpsc::Sender<MasterMessage>,
        liveness: Arc<Liveness>,
        now_ms: u64,
    ) -> Member {
        Member {
            id: hello.worker_id.clone(),
            cores: hello.cores.max(1),
            state: WorkerState::Ready,
            conn,
            tx,
            incarnation: hello.incarnation,
            last_seq: 0,
            ack_owed: false,
            acked_since_beat: false,
            liveness,
            last_heartbeat_ms: now_ms,
            status: WorkerStatus::default(),
            plan: BTreeMap::new(),
            plan_run: 0,
            plan_arrivals: BTreeMap::new(),
            script_sent: None,
            stopped_run: None,
            hot_since: None,
            hot_warned: false,
            lost_at: None,
            pool_users: 0,
            users_counted_ms: now_ms,
        }
    }

    pub fn is_live(&self) -> bool {
        self.state != WorkerState::Lost
    }

    /// Acknowledges the reports up to `last_seq`, or owes it when the
    /// connection's queue is full.
    pub fn acknowledge(&mut self) {
        self.ack_owed = self
            .tx
            .try_send(MasterMessage::Ack { seq: self.last_seq })
            .is_err();
        self.acked_since_beat |= !self.ack_owed;
    }

    /// The master's heartbeat, unless an ack went out since the last one:
    /// either tells the worker its master is there, and at thousands of
    /// workers each message is a write and a wakeup the master pays for.
    pub fn beat(&mut self) {
        if !std::mem::take(&mut self.acked_since_beat) {
            let _ = self.tx.try_send(MasterMessage::Heartbeat);
        }
    }

    /// Sends an acknowledgement owed since its queue was full.
    pub fn pay_owed_ack(&mut self) {
        if self.ack_owed {
            self.acknowledge();
        }
    }
}

/// What the UI and API show of one worker.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerView {
    pub id: String,
    pub state: WorkerState,
    pub user_count: u32,
    pub cores: u32,
    /// Percent of one core, as Locust reports it.
    pub cpu_usage: f32,
    pub memory_usage: u64,
    pub last_heartbeat_ms: u64,
}

#[derive(Default)]
pub struct Members {
    map: BTreeMap<String, Member>,
    /// Workers lost during the current run (not those that left cleanly).
    pub lost_this_run: u32,
    /// Workers saturated during the current run (the hot-worker warning):
    /// its figures include their own queueing.
    pub saturated_this_run: std::collections::BTreeSet<String>,
}

impl Members {
    /// Adds a worker, or revives the one with the same id: an id is one
    /// entry, whatever happened to its earlier connections.
    pub fn join(&mut self, mut member: Member) -> Joined {
        let Some(prev) = self.map.get(&member.id) else {
            self.map.insert(member.id.clone(), member);
            return Joined::New;
        };
        let mut joined = Joined::Returned;
        if prev.incarnation == member.incarnation {
            // The same process reconnecting sends again the reports we have
            // not acknowledged; remembering its numbers drops those that did
            // arrive. A new process starts its numbers again.
            member.last_seq = prev.last_seq;
        } else if prev.is_live() {
            // Two live processes under one id would take turns replacing
            // each other forever; the newest wins and the other is told why.
            let reason = format!(
                "another worker process joined with the id {:?}; worker ids must be unique (--worker-id)",
                member.id
            );
            let _ = prev.tx.try_send(MasterMessage::Refused { reason });
            joined = Joined::Displaced;
        }
        self.map.insert(member.id.clone(), member);
        joined
    }

    pub fn get_mut(&mut self, id: &str, conn: ConnId) -> Option<&mut Member> {
        self.map
            .get_mut(id)
            .filter(|m| m.conn == conn && m.is_live())
    }

    /// Removes a worker that said goodbye. Returns whether it was there.
    pub fn remove(&mut self, id: &str, conn: ConnId) -> bool {
        if self.map.get(id).is_some_and(|m| m.conn == conn) {
            self.map.remove(id);
            return true;
        }
        false
    }

    /// Marks a live worker lost; its connection is dropped with its sender.
    pub fn mark_lost(&mut self, id: &str, conn: ConnId) -> bool {
        match self.map.get_mut(id) {
            Some(m) if m.conn == conn && m.is_live() => {
                m.state = WorkerState::Lost;
                m.lost_at = Some(Instant::now());
                m.status.user_count = 0;
                m.pool_users = 0;
                m.plan.clear();
                // Closing the channel ends the connection task.
                let (dead, _) = mpsc::channel(1);
                m.tx = dead;
                self.lost_this_run += 1;
                true
            }
            _ => false,
        }
    }

    /// Live workers silent for longer than `limit`.
    pub fn silent(&self, limit: Duration) -> Vec<(String, ConnId)> {
        self.map
            .values()
            .filter(|m| {
                let silent_ms = m.liveness.silent_ms().unwrap_or(0);
                m.is_live() && u128::from(silent_ms) > limit.as_millis()
            })
            .map(|m| (m.id.clone(), m.conn))
            .collect()
    }

    /// Forgets workers lost longer ago than `limit`: a pod that is gone for
    /// good must not be listed for ever.
    pub fn forget_lost(&mut self, limit: Duration) {
        self.map
            .retain(|_, m| m.lost_at.is_none_or(|at| at.elapsed() < limit));
    }

    pub fn live(&self) -> impl Iterator<Item = &Member> {
        self.map.values().filter(|m| m.is_live())
    }

    pub fn live_mut(&mut self) -> impl Iterator<Item = &mut Member> {
        self.map.values_mut().filter(|m| m.is_live())
    }

    pub fn live_count(&self) -> usize {
        self.live().count()
    }

    /// Workers shown as lost now.
    pub fn lost_count(&self) -> usize {
        self.map.len() - self.live_count()
    }

    /// One line on who is there: live workers by state, lost ones, users.
    pub fn summary(&self) -> String {
        let mut by_state: BTreeMap<&str, usize> = BTreeMap::new();
        for m in self.live() {
            *by_state.entry(m.state.as_str()).or_default() += 1;
        }
        let states: Vec<String> = by_state.iter().map(|(s, n)| format!("{n} {s}")).collect();
        let states = if states.is_empty() {
            String::new()
        } else {
            format!(" ({})", states.join(", "))
        };
        let users: u32 = self.live().map(|m| m.status.user_count).sum();
        format!(
            "workers: {} live{states}, {} lost, {users} users",
            self.live_count(),
            self.lost_count()
        )
    }

    /// Users per live worker, for logs: `2 workers (w1: 5, w2: 5)`, or
    /// only the count when the list would be long.
    pub fn users_by_worker(&self) -> String {
        let n = self.live_count();
        let noun = if n == 1 { "worker" } else { "workers" };
        if n > 10 {
            return format!("{n} {noun}");
        }
        let each: Vec<String> = self
            .live()
            .map(|m| format!("{}: {}", m.id, m.status.user_count))
            .collect();
        format!("{n} {noun} ({})", each.join(", "))
    }

    /// Every user the live workers run: the closed-model users and those
    /// allocated in arrival pools (the open model's concurrency).
    pub fn user_count(&self) -> u32 {
        self.live()
            .map(|m| m.status.user_count + m.pool_users)
            .sum()
    }

    /// When the oldest of the live workers' user counts was taken
    /// (`now_ms`), or `None` without live workers: the instant
    /// [`Members::user_count`] is sure to describe, to hold it against
    /// the plan of that instant rather than of now.
    pub fn users_counted_ms(&self) -> Option<u64> {
        self.live().map(|m| m.users_counted_ms).min()
    }

    pub fn views(&self) -> Vec<WorkerView> {
        self.map
            .values()
            .map(|m| WorkerView {
                id: m.id.clone(),
                state: m.state,
                user_count: m.status.user_count + m.pool_users,
                cores: m.cores,
                cpu_usage: m.status.cpu_percent,
                memory_usage: m.status.memory_bytes,
                last_heartbeat_ms: m.last_heartbeat_ms,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, conn: ConnId, incarnation: u64) -> (Member, mpsc::Receiver<MasterMessage>) {
        let hello = Hello {
            protocol_version: protocol::PROTOCOL_VERSION,
            swarmer_version: "test".into(),
            worker_id: id.into(),
            incarnation,
            cores: 2,
            token: None,
            nonce: None,
        };
        let (tx, rx) = mpsc::channel(8);
        (Member::new(&hello, conn, tx, Liveness::new(), 0), rx)
    }

    /// A worker waits for the acknowledgement of its last report before it
    /// sends the next, so one that found the queue full is owed, not lost.
    #[test]
    fn an_acknowledgement_that_found_the_queue_full_is_sent_later() {
        let (mut a, mut rx) = member("w1", 1, 7);
        while a.tx.try_send(MasterMessage::Heartbeat).is_ok() {}
        a.last_seq = 3;
        a.acknowledge();
        a.pay_owed_ack();
        assert!(a.ack_owed, "still no room");
        while let Ok(msg) = rx.try_recv() {
            assert!(matches!(msg, MasterMessage::Heartbeat), "{msg:?}");
        }
        a.pay_owed_ack();
        assert!(!a.ack_owed);
        assert!(matches!(rx.try_recv(), Ok(MasterMessage::Ack { seq: 3 })));
        a.pay_owed_ack();
        assert!(rx.try_recv().is_err(), "paid once");
    }

    /// An ack tells the worker its master is there as well as a heartbeat
    /// does: the heartbeat after one is not sent, the one after that is.
    #[test]
    fn a_heartbeat_is_left_out_after_an_ack() {
        let (mut a, mut rx) = member("w1", 1, 7);
        a.beat();
        assert!(matches!(rx.try_recv(), Ok(MasterMessage::Heartbeat)));
        a.last_seq = 1;
        a.acknowledge();
        assert!(matches!(rx.try_recv(), Ok(MasterMessage::Ack { seq: 1 })));
        a.beat();
        assert!(rx.try_recv().is_err(), "the ack stood for this heartbeat");
        a.beat();
        assert!(matches!(rx.try_recv(), Ok(MasterMessage::Heartbeat)));
    }

    #[test]
    fn an_id_is_one_entry_through_loss_and_return() {
        let mut m = Members::default();
        let (a, _rx) = member("w1", 1, 7);
        assert_eq!(m.join(a), Joined::New);
        m.get_mut("w1", 1).expect("live").last_seq = 5;
        assert!(m.mark_lost("w1", 1));
        assert!(!m.mark_lost("w1", 1), "lost once");
        assert_eq!((m.live_count(), m.lost_count()), (0, 1));
        // The same process back on a new connection keeps its numbers.
        let (again, _rx2) = member("w1", 2, 7);
        assert_eq!(m.join(again), Joined::Returned);
        assert_eq!((m.live_count(), m.lost_count()), (1, 0));
        assert_eq!(m.get_mut("w1", 2).expect("live").last_seq, 5);
        // The old connection's goodbye cannot touch the new one.
        assert!(!m.mark_lost("w1", 1));
        assert!(!m.remove("w1", 1));
        assert!(m.get_mut("w1", 1).is_none());
        assert_eq!(m.live_count(), 1);
    }

    #[test]
    fn a_second_process_with_a_live_id_displaces_the_first_and_tells_it() {
        let mut m = Members::default();
        let (first, mut first_rx) = member("w1", 1, 7);
        m.join(first);
        m.get_mut("w1", 1).expect("live").last_seq = 5;
        let (second, _rx) = member("w1", 2, 8);
        assert_eq!(m.join(second), Joined::Displaced);
        assert!(matches!(
            first_rx.try_recv(),
            Ok(MasterMessage::Refused { .. })
        ));
        assert_eq!(m.live_count(), 1);
        // A new process numbers its reports from the start again.
        assert_eq!(m.get_mut("w1", 2).expect("live").last_seq, 0);
    }

    #[test]
    fn silence_is_judged_by_the_connection_clock_and_lost_ones_are_forgotten() {
        let mut m = Members::default();
        let (a, _rx) = member("w1", 1, 7);
        let liveness = a.liveness.clone();
        m.join(a);
        assert!(m.silent(Duration::from_secs(60)).is_empty());
        liveness.seen.store(0, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(
            m.silent(Duration::from_millis(1)),
            vec![("w1".to_string(), 1)]
        );
        // Held up by the master: not silent, however long.
        liveness.seen.store(HELD, Ordering::Relaxed);
        assert!(m.silent(Duration::ZERO).is_empty());
        // Silence is what the connection saw when it last drained the
        // socket, not the time since then (it may not have run since).
        liveness.seen.store(mono_ms(), Ordering::Relaxed);
        liveness.drained.store(mono_ms() + 1, Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(5));
        assert!(m.silent(Duration::from_millis(2)).is_empty());
        liveness.seen.store(0, Ordering::Relaxed);
        m.mark_lost("w1", 1);
        assert!(
            m.silent(Duration::ZERO).is_empty(),
            "only live workers go silent"
        );
        m.forget_lost(Duration::from_secs(60));
        assert_eq!(m.lost_count(), 1);
        m.forget_lost(Duration::ZERO);
        assert_eq!(m.views().len(), 0);
        assert_eq!(m.summary(), "workers: 0 live, 0 lost, 0 users");
    }
}
