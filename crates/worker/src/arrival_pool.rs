//! One core's part of an arrival-driven (open model) user type: a driver
//! task that follows the type's [`Schedule`] on the real clock and hands
//! each due arrival to an idle pooled user, grows the pool up to its bound,
//! and counts an arrival that finds neither as dropped.
//!
//! The schedule never waits for users: a slow target shows up as lateness
//! (latency counts from the due instant) and a bigger pool, not as fewer
//! arrivals.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use script::arrivals::{ArrivalSpec, Schedule};
use script::{CoreRuntime, IdlePool};

use crate::indexes::Indexes;
use stats::RequestStats;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// This core's part of one type, as the engine splits the worker's.
#[derive(Debug, Clone, PartialEq)]
pub struct CoreShare {
    pub share: f64,
    pub pre_allocated: u32,
    pub max_users: u32,
    /// How far into the profile the run was when the plan was sent.
    pub elapsed: Duration,
}

/// Splits a worker's part of a type over `cores`: the pool bounds as evenly
/// as whole users allow, and the rate in proportion to each core's pool, so
/// a core with no room (more cores than `max_users`) gets no arrivals to
/// drop. The cores' shares add up to the worker's.
pub fn split_across_cores(worker: &protocol::ArrivalShare, cores: usize) -> Vec<CoreShare> {
    let cores = cores.max(1) as u32;
    let part = |total: u32, core: u32| total / cores + u32::from(core < total % cores);
    (0..cores)
        .map(|core| {
            let max_users = part(worker.max_users, core);
            CoreShare {
                share: if worker.max_users == 0 {
                    0.0
                } else {
                    worker.share * f64::from(max_users) / f64::from(worker.max_users)
                },
                pre_allocated: part(worker.pre_allocated, core).min(max_users),
                max_users,
                elapsed: Duration::from_millis(worker.elapsed_ms),
            }
        })
        .collect()
}

/// The core's handle on a running driver.
pub struct ArrivalRun {
    pub ctl: watch::Sender<CoreShare>,
    pub stop: CancellationToken,
    pub task: JoinHandle<()>,
    /// Users in its pool now, idle or busy (the type's concurrency).
    pub allocated: Rc<Cell<u32>>,
}

/// Starts the driver of `name` on this core.
pub fn start(
    runtime: CoreRuntime,
    indexes: Indexes,
    name: String,
    spec: ArrivalSpec,
    share: CoreShare,
    stats: Rc<RefCell<RequestStats>>,
    aborted: Aborted,
) -> ArrivalRun {
    let (ctl, rx) = watch::channel(share);
    let stop = CancellationToken::new();
    let allocated = Rc::new(Cell::new(0));
    let driver = Driver {
        runtime,
        indexes,
        name,
        stats,
        idle: IdlePool::default(),
        pool: Pool {
            users: Vec::new(),
            aborted,
        },
        allocated: allocated.clone(),
    };
    let task = tokio::task::spawn_local(driver.run(spec, rx, stop.clone()));
    ArrivalRun {
        ctl,
        stop,
        task,
        allocated,
    }
}

/// The pool's users; dropping it (the core gave up waiting for the driver
/// at stop) aborts them, since a detached user would outlive its run, and
/// hands them to the core's [`Aborted`] so that it can wait for their drop.
struct Pool {
    users: Vec<(CancellationToken, JoinHandle<()>)>,
    aborted: Aborted,
}

impl Drop for Pool {
    fn drop(&mut self) {
        for (_, task) in self.users.drain(..) {
            task.abort();
            self.aborted.0.borrow_mut().push(task);
        }
    }
}

/// Pooled users aborted with their driver. An abort only schedules a
/// task's drop, and a user's drop is what counts its request in flight
/// ("cancelled at stop"): the core waits for them before it answers the
/// collection after a stop.
#[derive(Clone, Default)]
pub struct Aborted(Rc<RefCell<Vec<JoinHandle<()>>>>);

impl Aborted {
    /// Waits until every user aborted so far has been dropped.
    pub async fn settle(&self) {
        let tasks = std::mem::take(&mut *self.0.borrow_mut());
        for task in tasks {
            let _ = task.await;
        }
    }

    /// Forgets the users already dropped, so the list stays short.
    pub fn prune(&self) {
        self.0.borrow_mut().retain(|task| !task.is_finished());
    }
}

struct Driver {
    runtime: CoreRuntime,
    /// Every pooled user holds a run-wide index for its life.
    indexes: Indexes,
    name: String,
    stats: Rc<RefCell<RequestStats>>,
    idle: IdlePool,
    pool: Pool,
    /// The pool's size, for the core's user count.
    allocated: Rc<Cell<u32>>,
}

impl Driver {
    async fn run(
        mut self,
        spec: ArrivalSpec,
        mut ctl: watch::Receiver<CoreShare>,
        stop: CancellationToken,
    ) {
        let first = ctl.borrow_and_update().clone();
        let origin = Instant::now()
            .checked_sub(first.elapsed)
            .unwrap_or_else(Instant::now);
        let secs = |t: Instant| t.saturating_duration_since(origin).as_secs_f64();
        let mut schedule = Schedule::new(spec, first.share, secs(Instant::now()));
        let mut max_users = first.max_users;
        for _ in 0..first.pre_allocated.min(max_users) {
            if !self.add_user(None) {
                break;
            }
        }
        loop {
            // At most an hour ahead: a very low rate (or none left) must
            // neither overflow the clock nor keep a changed share waiting.
            let far = Instant::now() + Duration::from_secs(3600);
            let wake = schedule
                .next_due()
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .and_then(|d| origin.checked_add(d))
                .map_or(far, |w| w.min(far));
            tokio::select! {
                _ = tokio::time::sleep_until(wake) => {}
                changed = ctl.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let next = ctl.borrow_and_update().clone();
                    schedule.set_share(next.share, secs(Instant::now()));
                    max_users = next.max_users;
                }
                _ = stop.cancelled() => break,
            }
            let now = Instant::now();
            let mut dropped = 0;
            schedule.take_due(secs(now), |due_s| {
                let due = origin + Duration::from_secs_f64(due_s);
                if !self.dispatch(due, max_users) {
                    dropped += 1;
                }
            });
            self.stats.borrow_mut().record_dropped(&self.name, dropped);
            // Thousands of arrivals a second must not starve the users.
            tokio::task::yield_now().await;
        }
        self.stop_users().await;
    }

    /// Gives the arrival due at `due` to an idle user, or to a new one if
    /// the pool has room; `false`: dropped.
    fn dispatch(&mut self, due: Instant, max_users: u32) -> bool {
        let mut due = due;
        loop {
            let Some(user) = self.idle.borrow_mut().pop() else {
                break;
            };
            match user.send(due) {
                Ok(()) => return true,
                // That user has stopped; the arrival goes to the next.
                Err(back) => due = back,
            }
        }
        // Pooled users end only when stopped, so the pool's length is its
        // size: no scan per arrival (a full pool at 20,000 arrivals a
        // second would make that the core's main work).
        if (self.pool.users.len() as u32) < max_users {
            return self.add_user(Some(due));
        }
        false
    }

    fn add_user(&mut self, first_due: Option<Instant>) -> bool {
        // None free: users of a shrinking plan still hold them; dropped.
        let Some(lease) = self.indexes.take() else {
            return false;
        };
        let stop = CancellationToken::new();
        let user = match self.runtime.run_pooled_user(
            &self.name,
            stop.clone(),
            self.idle.clone(),
            first_due,
            Some(lease.index),
        ) {
            Ok(user) => user,
            Err(e) => {
                let msg = format!("could not create a {} user: {e}", self.name);
                tracing::error!("{msg}");
                self.stats
                    .borrow_mut()
                    .record_exception(&msg, "", "", stats::now_ms());
                return false;
            }
        };
        let user = async move {
            let _lease = lease;
            user.await
        };
        self.pool.users.push((stop, tokio::task::spawn_local(user)));
        self.allocated.set(self.pool.users.len() as u32);
        true
    }

    /// Asks every pooled user to stop and waits for them; the core bounds
    /// the wait (and aborts the rest by dropping this driver).
    async fn stop_users(&mut self) {
        for (stop, _) in &self.pool.users {
            stop.cancel();
        }
        for (_, task) in &mut self.pool.users {
            let _ = task.await;
        }
        self.pool.users.clear();
        self.allocated.set(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cores_split_the_pool_and_the_rate_together() {
        let worker = protocol::ArrivalShare {
            share: 0.5,
            pre_allocated: 3,
            max_users: 5,
            elapsed_ms: 1_500,
        };
        let cores = split_across_cores(&worker, 2);
        assert_eq!(
            cores.iter().map(|c| c.max_users).collect::<Vec<_>>(),
            [3, 2]
        );
        assert_eq!(
            cores.iter().map(|c| c.pre_allocated).collect::<Vec<_>>(),
            [2, 1]
        );
        let total: f64 = cores.iter().map(|c| c.share).sum();
        assert!((total - 0.5).abs() < 1e-12);
        assert!((cores[0].share - 0.3).abs() < 1e-12);
        assert_eq!(cores[1].elapsed, Duration::from_millis(1_500));
        // More cores than users: the cores without room get no arrivals.
        let cores = split_across_cores(
            &protocol::ArrivalShare {
                max_users: 1,
                pre_allocated: 1,
                ..worker
            },
            4,
        );
        assert_eq!(cores[0].share, 0.5);
        assert!(
            cores[1..]
                .iter()
                .all(|c| c.share == 0.0 && c.max_users == 0)
        );
    }
}
