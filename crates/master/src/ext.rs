//! The master's side of script extensions: it starts the script's
//! extension engine ([`ext`]), describes its live state to the
//! script as `ctx`, and turns what it publishes into run events for the
//! script's hooks.
//!
//! Events are derived by watching the published snapshots (a new run id
//! is a start; the run reaching `stopped` is a stop; a worker id becoming
//! live or ceasing to be is a join or a leave), so the coordinator knows
//! nothing of extensions. A watch channel keeps only the latest snapshot,
//! so events are computed from the difference between the last snapshot
//! seen and the current one: nothing is missed, though two quick changes
//! may be reported together.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ext::{ActionOutcome, CallContext, Catalog, ExtConfig, ExtHandle, ShapeTarget};
use script::ScriptSource;
use serde_json::{Value, json};
use tokio::task::AbortHandle;

use crate::snapshot::views;

use crate::profile::Profile;
use crate::{MasterError, MasterHandle, RunRequest, RunState, Snapshot};
/// What the web layer needs of the engine's types, re-exported here so the
/// web layer does not depend on where the engine lives.
pub use ext::{ExtError, ViewData};

/// A script's extensions, running. Cheap to clone; the engine and the
/// hook watcher stop when the last clone is dropped.
#[derive(Clone)]
pub struct Extensions {
    inner: Arc<Inner>,
}

struct Inner {
    handle: ExtHandle,
    master: MasterHandle,
    watcher: Option<AbortHandle>,
    /// Shape runs started so far: a follower whose number is no longer
    /// the latest stops, so a restart never leaves two steering one run.
    shape_runs: AtomicU64,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(w) = &self.watcher {
            w.abort();
        }
    }
}

impl Extensions {
    /// Loads the script's extensions; `Ok(None)` when it declares none.
    /// Hooks start receiving events at once (workers already connected
    /// and a run already going are reported as joins and a start).
    pub async fn start(
        src: &ScriptSource,
        config: ExtConfig,
        master: MasterHandle,
    ) -> Result<Option<Extensions>, script::ScriptError> {
        let Some(handle) = ext::start(src, config).await? else {
            return Ok(None);
        };
        let watcher = (!handle.catalog().hooks.is_empty())
            .then(|| tokio::spawn(watch(handle.clone(), master.clone())).abort_handle());
        Ok(Some(Extensions {
            inner: Arc::new(Inner {
                handle,
                master,
                watcher,
                shape_runs: AtomicU64::new(0),
            }),
        }))
    }

    pub fn catalog(&self) -> &Catalog {
        self.inner.handle.catalog()
    }

    pub async fn render(&self, id: &str) -> Result<ViewData, ExtError> {
        let ctx = context(&self.inner.master.snapshot());
        self.inner.handle.render(id, ctx).await
    }

    pub async fn act(&self, id: &str, args: Value) -> Result<ActionOutcome, ExtError> {
        let ctx = context(&self.inner.master.snapshot());
        self.inner.handle.act(id, args, ctx).await
    }

    pub async fn route(&self, path: &str, query: Vec<(String, String)>) -> Result<Value, ExtError> {
        let ctx = context(&self.inner.master.snapshot());
        self.inner.handle.route(path, query, ctx).await
    }
}

/// Starts a run as `request` asks, or retunes the running one: the one way
/// the command line, `/api/v1/run` and the UI's form start a run. A request
/// that follows the script's shape function ([`Profile::Function`]) starts
/// at the function's first answer and is then steered by it (see
/// [`Extensions::start_shape_run`]); any other goes to the master as is.
pub async fn start_run(
    master: &MasterHandle,
    ext: Option<&Extensions>,
    request: RunRequest,
) -> Result<(), MasterError> {
    if request.profile != Some(Profile::Function) {
        return master.start_run(request).await;
    }
    let ext = ext.ok_or_else(|| MasterError::Shape("it did not load".into()))?;
    ext.start_shape_run(request).await
}

impl Extensions {
    /// Calls the script's shape function at `run_time_s` into the run.
    pub async fn shape(&self, run_time_s: f64) -> Result<Option<ShapeTarget>, ExtError> {
        let ctx = shape_context(run_time_s, &self.inner.master.snapshot());
        self.inner.handle.shape(ctx).await
    }

    /// Asks the shape function for its first target (run time 0), starts
    /// the run with it, and leaves a task that asks again about once a
    /// second. A function that raises, returns garbage or `nil` at once,
    /// or asks for what the master refuses, starts nothing: the error says
    /// why.
    async fn start_shape_run(&self, request: RunRequest) -> Result<(), MasterError> {
        let master = &self.inner.master;
        let first = match self.shape(0.0).await {
            Ok(Some(t)) => t,
            Ok(None) => {
                return Err(MasterError::Shape(
                    "it returned nil at once: nothing to run".into(),
                ));
            }
            Err(e) => return Err(MasterError::Shape(e.to_string())),
        };
        let request = retarget(&request, first);
        master
            .start_run(request.clone())
            .await
            .map_err(|e| match e {
                MasterError::Invalid(e) => MasterError::Shape(format!(
                    "it asked for {} that the master refuses: {e}",
                    e.field().json_name()
                )),
                other => other,
            })?;
        // The coordinator publishes before it answers: this is our run.
        let run_id = master.snapshot().run_id;
        let generation = self.inner.shape_runs.fetch_add(1, Ordering::SeqCst) + 1;
        tokio::spawn(self.clone().follow_shape(run_id, generation, request));
        Ok(())
    }

    /// Steers run `run_id` by the shape function about once a second: each
    /// answer retunes the run as a UI "edit users" would; `nil` stops it,
    /// and so does a function that raises or returns garbage (the error
    /// published as the run's `stop_error`, the statistics kept). Ends when
    /// the run stops, is retuned to something else, or another shape run
    /// started (`generation`). The master owns this loop; workers only
    /// follow.
    async fn follow_shape(self, run_id: u64, generation: u64, first: RunRequest) {
        let master = self.inner.master.clone();
        let started = tokio::time::Instant::now();
        let mut last = first;
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        tick.tick().await;
        loop {
            tick.tick().await;
            let snap = master.snapshot();
            let ours = snap.run_id == run_id
                && snap.state.is_active()
                && snap.profile.as_ref().is_some_and(|p| p.kind == "function")
                && self.inner.shape_runs.load(Ordering::SeqCst) == generation;
            if !ours {
                return;
            }
            let target = match self.shape(started.elapsed().as_secs_f64()).await {
                Ok(Some(t)) => t,
                Ok(None) => {
                    tracing::info!("run {run_id}: its load shape ended the run");
                    let _ = master.stop_run().await;
                    return;
                }
                Err(e) => {
                    let reason = format!("the shape function failed: {e}");
                    let _ = master.stop_run_because(reason).await;
                    return;
                }
            };
            let request = retarget(&last, target);
            if request == last {
                continue;
            }
            if let Err(e) = master.start_run(request.clone()).await {
                let reason = format!("the shape function asked for what the master refuses: {e}");
                let _ = master.stop_run_because(reason).await;
                return;
            }
            last = request;
        }
    }
}

/// `request` with the shape's numbers in place of its own.
fn retarget(request: &RunRequest, target: ShapeTarget) -> RunRequest {
    RunRequest {
        users: target.users,
        spawn_rate: target.spawn_rate,
        user_types: target.user_types,
        ..request.clone()
    }
}

/// A shape function's `ctx`: the time into the run (seconds) and the live
/// figures of the last window.
pub fn shape_context(run_time_s: f64, snap: &Snapshot) -> CallContext {
    let now = snap.now_ms;
    let total = snap.stats.total();
    let rps = total.current_rps(now);
    let fail = total.current_fail_per_sec(now);
    let pct = |q| snap.stats.current_response_time_percentile_ms(q, now);
    let data = json!({
        "run_time": run_time_s,
        "stats": {
            "users": snap.user_count,
            "rps": rps,
            "fail_ratio": if rps > 0.0 { fail / rps } else { 0.0 },
            "p50": pct(0.5),
            "p95": pct(0.95),
            "p99": pct(0.99),
        },
    });
    CallContext {
        data,
        host: snap.host.clone(),
    }
}

/// The master's state as the script's `ctx` sees it: the same rows and
/// figures the API serves, so a view never disagrees with the tables.
pub fn context(snap: &Snapshot) -> CallContext {
    let mut stats = views::stats_rows(snap);
    let total = stats.pop();
    let data = json!({
        "run": views::summary(snap),
        "stats": stats,
        "total": total,
        "errors": views::errors(snap),
        "workers": views::workers(snap),
        "users_by_type": snap.users_by_type,
        "user_types": snap.user_types,
    });
    CallContext {
        data,
        host: snap.host.clone(),
    }
}

/// What the event rules look at in a snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    pub run_id: u64,
    pub state: Option<RunState>,
    /// Worker id → live (false: shown as lost).
    pub workers: BTreeMap<String, bool>,
}

impl Observed {
    pub fn of(snap: &Snapshot) -> Observed {
        Observed {
            run_id: snap.run_id,
            state: Some(snap.state),
            workers: snap
                .workers
                .iter()
                .map(|w| (w.id.clone(), w.state != protocol::WorkerState::Lost))
                .collect(),
        }
    }
}

/// A run event for the hooks: its name (one of [`ext::EVENTS`])
/// and the table the hook gets as its first argument.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEvent {
    pub name: &'static str,
    pub data: Value,
}

fn event(name: &'static str, mut data: Value) -> RunEvent {
    data["name"] = json!(name);
    RunEvent { name, data }
}

/// The events between two observations, in the order they happened as far
/// as can be told: the end of an earlier run, workers leaving, workers
/// joining, the start of a new run (and its end, if it ended already).
pub fn events(prev: &Observed, next: &Observed) -> Vec<RunEvent> {
    let mut out = Vec::new();
    let new_run = next.run_id != prev.run_id && next.run_id != 0;
    let stopped = |o: &Observed| o.state == Some(RunState::Stopped);
    let ran = |o: &Observed| o.run_id != 0 && !stopped(o);
    if new_run && ran(prev) {
        out.push(event("test_stop", json!({ "run_id": prev.run_id })));
    }
    for (id, live) in &prev.workers {
        if *live && next.workers.get(id) != Some(&true) {
            let reason = if next.workers.contains_key(id) {
                "lost"
            } else {
                "quit"
            };
            out.push(event(
                "worker_left",
                json!({ "worker_id": id, "reason": reason }),
            ));
        }
    }
    for (id, live) in &next.workers {
        if *live && prev.workers.get(id) != Some(&true) {
            out.push(event("worker_joined", json!({ "worker_id": id })));
        }
    }
    if new_run {
        out.push(event("test_start", json!({ "run_id": next.run_id })));
    }
    if stopped(next) && (new_run || !stopped(prev)) {
        out.push(event("test_stop", json!({ "run_id": next.run_id })));
    }
    out
}

/// Feeds the hooks until the master shuts down. Hook errors go to the
/// run's log (the Logs tab) with the script's file and line.
async fn watch(handle: ExtHandle, master: MasterHandle) {
    let mut rx = master.subscribe();
    let mut seen = Observed::default();
    loop {
        let snap = rx.borrow_and_update().clone();
        let now = Observed::of(&snap);
        for ev in events(&seen, &now) {
            tracing::debug!(target: "script", "run event {}: {}", ev.name, ev.data);
            for e in handle.emit(ev.name, ev.data, context(&snap)).await {
                tracing::error!(target: "script", "{} hook failed: {e}", ev.name);
            }
        }
        seen = now;
        if rx.changed().await.is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obs(run_id: u64, state: RunState, workers: &[(&str, bool)]) -> Observed {
        Observed {
            run_id,
            state: Some(state),
            workers: workers.iter().map(|(i, l)| (i.to_string(), *l)).collect(),
        }
    }

    fn names(prev: &Observed, next: &Observed) -> Vec<String> {
        events(prev, next)
            .into_iter()
            .map(|e| match e.data.get("worker_id") {
                Some(id) => format!("{} {}", e.name, id.as_str().unwrap()),
                None => format!("{} {}", e.name, e.data["run_id"]),
            })
            .collect()
    }

    #[test]
    fn runs_start_and_stop() {
        let ready = obs(0, RunState::Ready, &[("w1", true)]);
        let running = obs(1, RunState::Running, &[("w1", true)]);
        let stopped = obs(1, RunState::Stopped, &[("w1", true)]);
        assert_eq!(names(&Observed::default(), &ready), ["worker_joined w1"]);
        assert_eq!(names(&ready, &running), ["test_start 1"]);
        // A retune changes the state, not the run.
        let retune = obs(1, RunState::Spawning, &[("w1", true)]);
        assert!(names(&running, &retune).is_empty());
        assert_eq!(names(&running, &stopped), ["test_stop 1"]);
        assert!(names(&stopped, &stopped).is_empty());
        // A whole run between two looks, and a restart while running.
        assert_eq!(
            names(&stopped, &obs(2, RunState::Stopped, &[("w1", true)])),
            ["test_start 2", "test_stop 2"]
        );
        assert_eq!(
            names(&running, &obs(2, RunState::Spawning, &[("w1", true)])),
            ["test_stop 1", "test_start 2"]
        );
    }

    #[test]
    fn workers_join_leave_and_get_lost() {
        let one = obs(0, RunState::Ready, &[("a", true)]);
        let two = obs(0, RunState::Ready, &[("a", true), ("b", true)]);
        let lost = obs(0, RunState::Ready, &[("a", false), ("b", true)]);
        let back = obs(0, RunState::Ready, &[("a", true)]);
        assert_eq!(names(&one, &two), ["worker_joined b"]);
        assert_eq!(names(&two, &lost), ["worker_left a"]);
        assert_eq!(events(&two, &lost)[0].data["reason"], "lost");
        assert_eq!(names(&lost, &back), ["worker_left b", "worker_joined a"]);
        assert_eq!(events(&lost, &back)[0].data["reason"], "quit");
    }
}
