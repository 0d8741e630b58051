//! What the coordinator does once a heartbeat, and how it publishes: lost
//! workers, the run time, CPU warnings, the history, the snapshot.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Coordinator, FORGET_LOST_AFTER, HOT_HEARTBEATS, now_ms};
use crate::autoscale::policy::SATURATED_PCT;
use crate::membership::ConnId;
use crate::snapshot::{HistoryPoint, RunState, Snapshot};

impl Coordinator {
    pub(super) fn tick(&mut self) {
        for m in self.members.live_mut() {
            m.beat();
            m.pay_owed_ack();
        }
        let limit = self.config.heartbeat_interval * self.config.missed_heartbeats.max(1);
        let (silent, limit) = self.silent_workers(limit);
        for (id, conn) in &silent {
            if self.members.mark_lost(id, *conn) {
                tracing::warn!(
                    "worker {id} lost: silent for over {limit:?}; {} live",
                    self.members.live_count()
                );
            }
        }
        if !silent.is_empty() {
            self.rebalance_due = true;
        }
        self.warn_hot_workers();
        self.members.forget_lost(FORGET_LOST_AFTER);
        self.log_membership_change();
        if let Some(run) = &self.run
            && self.state.is_active()
            && run.deadline.is_some_and(|d| Instant::now() >= d)
        {
            tracing::info!("run {}: run time reached", run.id);
            let _ = self.stop();
        }
        self.follow_profile();
        if self.arrivals_ended() {
            if let Some(run) = &self.run {
                tracing::info!("run {}: its arrival stages ended", run.id);
            }
            let _ = self.stop();
        }
        self.check_stopped();
        // Once a heartbeat, the buckets of every report merged since.
        self.stats.settle();
        self.record_history();
        self.stats.prune(now_ms());
        self.publish_due = true;
        self.flush();
    }

    /// Live workers silent for longer than `limit`. When half of them (and
    /// at least three) fall silent in the same heartbeat, the cause is more
    /// often this master not getting the CPU to read them than half the
    /// workers dying at once; they get twice as long, so a stalled master
    /// does not throw away its workers (and their users) all together.
    /// Returns them with the limit applied.
    ///
    /// Silence is measured per connection, when it passes on the master's
    /// heartbeat, so workers that went quiet together cross the limit up
    /// to a heartbeat apart: those within one heartbeat of it count as
    /// falling silent with them.
    fn silent_workers(&mut self, limit: Duration) -> (Vec<(String, ConnId)>, Duration) {
        let silent = self.members.silent(limit);
        let live = self.members.live_count();
        let near = limit.saturating_sub(self.config.heartbeat_interval);
        let together = self.members.silent(near).len().max(silent.len());
        let grouped = !silent.is_empty() && together >= 3 && together * 2 > live;
        if grouped {
            self.group_silence_until = Some(Instant::now() + limit * 2);
        }
        // The group keeps the longer limit while it lasts: one of it that
        // crosses a tick after the others is not judged alone.
        let in_grace = self
            .group_silence_until
            .is_some_and(|until| Instant::now() < until);
        if !in_grace {
            return (silent, limit);
        }
        let longer = self.members.silent(limit * 2);
        if grouped && longer.len() < silent.len() {
            tracing::warn!(
                "{together} of {live} workers fell silent at once; this master may be short of CPU, \
                 so they get until {:?} of silence",
                limit * 2
            );
        }
        (longer, limit * 2)
    }

    /// Logs who is there whenever that changed since the last tick, so the
    /// logs alone tell the membership at every moment.
    pub(super) fn log_membership_change(&mut self) {
        let summary = self.members.summary();
        if summary != self.last_summary {
            tracing::info!("{summary}");
            self.last_summary = summary;
        }
    }

    /// Warns once per hot spell when a worker's CPU stays above 90% (of
    /// the cores it runs users on) for 10 heartbeats: its response times
    /// then measure its own queueing as much as the target's.
    pub(super) fn warn_hot_workers(&mut self) {
        let window = self.config.heartbeat_interval * HOT_HEARTBEATS;
        let active = self.state.is_active();
        let mut saturated = Vec::new();
        for m in self.members.live_mut() {
            if m.status.cpu_percent < SATURATED_PCT * m.cores as f32 {
                m.hot_since = None;
                m.hot_warned = false;
                continue;
            }
            let since = *m.hot_since.get_or_insert_with(Instant::now);
            if !m.hot_warned && since.elapsed() >= window {
                tracing::warn!(
                    "worker {} has used over {SATURATED_PCT}% of its CPU for {:.1} s ({:.0}% of {} cores); \
                     its response times may be skewed: add workers",
                    m.id,
                    since.elapsed().as_secs_f64(),
                    m.status.cpu_percent,
                    m.cores
                );
                m.hot_warned = true;
            }
            if active && since.elapsed() >= window {
                saturated.push(m.id.clone());
            }
        }
        self.members.saturated_this_run.extend(saturated);
    }

    pub(super) fn record_history(&mut self) {
        if !self.state.is_active() && self.state != RunState::Stopping {
            return;
        }
        let now = now_ms();
        let total = self.stats.total();
        let point = HistoryPoint {
            time_ms: now,
            user_count: self.members.user_count(),
            rps: total.current_rps(now),
            fail_per_sec: total.current_fail_per_sec(now),
            p50_ms: self.stats.current_response_time_percentile_ms(0.5, now),
            p95_ms: self.stats.current_response_time_percentile_ms(0.95, now),
            worker_count: self.members.live_count(),
            target_users: self.planned_users(),
            target_rate: self.target_rate(),
        };
        if let Ok(mut h) = self.history.write() {
            h.push(point);
        }
    }

    pub(super) fn publish(&mut self) {
        // Merges only add to pending counts; the snapshot is read many
        // times, so record them here, once a publication.
        self.stats.settle();
        let run = self.run.as_ref();
        let users_by_type = self.members.live().fold(BTreeMap::new(), |mut acc, m| {
            for (name, n) in &m.plan {
                *acc.entry(name.clone()).or_insert(0) += n;
            }
            acc
        });
        let now = now_ms();
        let snapshot = Snapshot {
            state: self.state,
            run_id: run.map_or(0, |r| r.id),
            host: run
                .and_then(|r| r.request.host.clone())
                .or_else(|| self.config.host.clone()),
            target_users: run.map_or(0, |r| r.request.users),
            spawn_rate: run.map_or(0.0, |r| r.request.spawn_rate),
            target_rate: self.target_rate(),
            user_count: self.members.user_count(),
            users_by_type,
            run_started_ms: run.map(|r| r.started_ms),
            run_time_ms: run
                .and_then(|r| r.request.run_time)
                .map(|t| t.as_millis() as u64),
            workers: self.members.views(),
            worker_count: self.members.live_count(),
            lost_workers: self.members.lost_this_run,
            saturated_workers: self.members.saturated_this_run.iter().cloned().collect(),
            user_types: self
                .info
                .user_types
                .iter()
                .map(|t| t.name.clone())
                .collect(),
            run_user_types: run.map_or_else(Vec::new, |r| r.request.user_types.clone()),
            checks: verdict::Verdict::of_thresholds(&self.config.thresholds, &self.stats, now)
                .checks,
            stats: self.stats.clone(),
            now_ms: now,
            coordinator_busy_us: self.busy.as_micros() as u64,
            profile: self.profile_view(),
            rate_plan: self.rate_plan(),
            stop_error: run.and_then(|r| r.stop_error.clone()),
            run_script: run.map(|r| r.script.clone()),
        };
        self.published.send_replace(Arc::new(snapshot));
    }
}
