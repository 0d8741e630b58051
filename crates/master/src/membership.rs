//! The master's set of workers: who is live, who is lost, and what each one
//! last said. Only live workers count; a lost one is kept to be shown as
//! lost, and becomes live again (never a duplicate) if it returns.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use protocol::{MasterMessage, WorkerState, WorkerStatus};
use serde::Serialize;
use tokio::sync::mpsc;

/// Identifies one connection, so a stale connection's goodbye cannot remove
/// the same worker's newer one.
pub type ConnId = u64;

pub struct Member {
    pub id: String,
    pub cores: u32,
    pub state: WorkerState,
    pub conn: ConnId,
    pub tx: mpsc::Sender<MasterMessage>,
    pub incarnation: u64,
    /// The highest report number merged from this incarnation.
    pub last_seq: u64,
    pub last_seen: Instant,
    pub last_heartbeat_ms: u64,
    pub status: WorkerStatus,
    /// Users per type this worker was last told to run.
    pub plan: BTreeMap<String, u32>,
    /// The last run this worker confirmed as stopped.
    pub stopped_run: Option<u64>,
    pub hot_since: Option<Instant>,
}

impl Member {
    pub fn is_live(&self) -> bool {
        self.state != WorkerState::Lost
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
}

impl Members {
    /// Adds a worker, or revives one with the same id. Returns true if the
    /// id was already known (a reconnect).
    pub fn join(&mut self, mut member: Member) -> bool {
        let previous = self.map.get(&member.id);
        // The same process reconnecting may resend a report that did arrive
        // before the link broke; remembering its numbers keeps it from being
        // counted twice. A new process starts its numbers again.
        if let Some(prev) = previous
            && prev.incarnation == member.incarnation
        {
            member.last_seq = prev.last_seq;
        }
        let known = previous.is_some();
        self.map.insert(member.id.clone(), member);
        known
    }

    pub fn get_mut(&mut self, id: &str, conn: ConnId) -> Option<&mut Member> {
        self.map.get_mut(id).filter(|m| m.conn == conn && m.is_live())
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
                m.status.user_count = 0;
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
            .filter(|m| m.is_live() && m.last_seen.elapsed() > limit)
            .map(|m| (m.id.clone(), m.conn))
            .collect()
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

    pub fn views(&self) -> Vec<WorkerView> {
        self.map
            .values()
            .map(|m| WorkerView {
                id: m.id.clone(),
                state: m.state,
                user_count: m.status.user_count,
                cores: m.cores,
                cpu_usage: m.status.cpu_percent,
                memory_usage: m.status.memory_bytes,
                last_heartbeat_ms: m.last_heartbeat_ms,
            })
            .collect()
    }
}
