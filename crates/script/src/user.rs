//! One running user: `on_start`, then pick a task, run it as a coroutine,
//! wait, until told to stop; then `on_stop`. Script errors become exception
//! records and the user carries on.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use mlua::{Function, Table};
use rand::Rng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::define::Wait;
use crate::drive::{Current, drive};
use crate::http::{Client, Http};
use crate::lua_env::{LuaEnv, UserCtx};
use crate::luax::fix_path;
use crate::runtime::{LoadedScript, RunType};
use crate::wait::Pacer;

pub async fn run(core: Rc<LoadedScript>, ty: usize, stop: CancellationToken) {
    let rt = &core.types[ty];
    let ctx = Rc::new(UserCtx {
        id: core.next_user_id(),
        user_type: rt.name.clone(),
        stop: stop.clone(),
        lateness_us: Cell::new(None),
        pending: RefCell::new(None),
        op: RefCell::new(None),
    });
    // Records the last response even if the engine drops this user
    // mid-task (stop timeout): every response counts exactly once.
    let _settle = SettleOnDrop(ctx.clone());
    let this = match user_table(&core, rt, &ctx) {
        Ok(t) => t,
        Err(e) => {
            core.shared
                .record_exception(&format!("cannot create a {} user: {e}", rt.name), "");
            return;
        }
    };
    if let Some(f) = &rt.on_start {
        call(&core, &ctx, f, &this).await;
    }
    if rt.tasks.is_empty() {
        // Every task was filtered out by tags: nothing to do but wait.
        stop.cancelled().await;
    } else {
        task_loop(&core, rt, &ctx, &this).await;
    }
    ctx.lateness_us.set(None);
    if let Some(f) = &rt.on_stop {
        call(&core, &ctx, f, &this).await;
    }
}

async fn task_loop(core: &LoadedScript, rt: &RunType, ctx: &Rc<UserCtx>, this: &Table) {
    let mut picker = Picker::new(rt);
    let mut pacer = match &rt.wait {
        Wait::Time(w) => w.pacing_interval().map(Pacer::new),
        Wait::Custom(_) => None,
    };
    while !ctx.stop.is_cancelled() {
        let task = picker.next(&core.shared);
        if let Some(p) = &mut pacer {
            let late = p.start_iteration(Instant::now());
            ctx.lateness_us.set(Some(late.as_micros() as u64));
        }
        call(core, ctx, &rt.tasks[task].func, this).await;
        if ctx.stop.is_cancelled() {
            break;
        }
        let wait = match &pacer {
            Some(p) => p.wait(Instant::now()),
            None => wait_time(core, ctx, &rt.wait, this),
        };
        if wait.is_zero() {
            // A task that never waits on I/O must still let the other users
            // of this core (and the stop signal) run.
            tokio::task::consume_budget().await;
        } else {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = ctx.stop.cancelled() => {}
            }
        }
    }
}

fn wait_time(core: &LoadedScript, ctx: &Rc<UserCtx>, wait: &Wait, this: &Table) -> Duration {
    match wait {
        Wait::Time(w) => w.sample(&mut *core.shared.rng.borrow_mut()),
        Wait::Custom(f) => {
            let secs = {
                let _current = Current::set(&core.shared, ctx);
                f.call::<f64>(this)
            };
            match secs {
                Ok(s) if s.is_finite() && s >= 0.0 => Duration::from_secs_f64(s.min(1e9)),
                Ok(s) => {
                    core.shared.record_exception(
                        &format!(
                            "{}: the wait function returned {s}; it must return seconds >= 0",
                            ctx.user_type
                        ),
                        "",
                    );
                    Duration::ZERO
                }
                Err(e) => {
                    core.shared.record_exception(
                        &format!("{}: wait function failed: {e}", ctx.user_type),
                        "",
                    );
                    Duration::ZERO
                }
            }
        }
    }
}

fn user_table(core: &LoadedScript, rt: &RunType, ctx: &Rc<UserCtx>) -> mlua::Result<Table> {
    let t = core.lua.create_table_with_capacity(0, 4)?;
    let http = Http(Rc::new(Client::new(
        ctx.clone(),
        core.shared.clone(),
        rt.base.clone(),
    )));
    t.raw_set("http", core.lua.create_userdata(http)?)?;
    t.raw_set("id", ctx.id)?;
    t.raw_set("user_type", &*rt.name)?;
    t.set_metatable(Some(rt.user_meta.clone()))?;
    Ok(t)
}

/// Runs one script function of this user as a coroutine, doing the work
/// it yields for (HTTP, sleep) until it finishes; then the last response
/// gets its verdict and any error is recorded.
async fn call(core: &LoadedScript, ctx: &Rc<UserCtx>, f: &Function, this: &Table) {
    let thread = match core.take_thread() {
        Ok(t) => t,
        Err(e) => {
            core.shared
                .record_exception(&format!("cannot start a coroutine: {e}"), "");
            return;
        }
    };
    let args = (f, this);
    let step = drive::<_, (Option<String>, Option<String>), _>(
        &core.lua,
        &core.shared,
        ctx,
        &thread,
        args,
        || (),
    )
    .await;
    ctx.settle_pending();
    match step {
        Ok((msg, tb)) => {
            if let Some(msg) = msg {
                let msg = fix_path(&msg, &core.shared.script_path);
                tracing::debug!(target: "script", user = %format!("{}#{}", ctx.user_type, ctx.id), "{msg}");
                core.shared.record_exception(&msg, &tb.unwrap_or_default());
            }
            core.put_thread(thread);
        }
        // Only the runner's own failure lands here (task errors are caught
        // inside it); the thread is not reused.
        Err(e) => core.shared.record_exception(&e.to_string(), ""),
    }
}

struct SettleOnDrop(Rc<UserCtx>);

impl Drop for SettleOnDrop {
    fn drop(&mut self) {
        self.0.settle_pending();
    }
}

/// Chooses the next task: weighted at random, or in declaration order
/// (each task `weight` times in a row) for `sequential = true`.
struct Picker {
    cumulative: Vec<u64>,
    sequence: Option<(Vec<usize>, usize)>,
}

impl Picker {
    fn new(rt: &RunType) -> Self {
        let mut total = 0;
        let cumulative = rt
            .tasks
            .iter()
            .map(|t| {
                total += u64::from(t.weight);
                total
            })
            .collect();
        let sequence = rt.sequential.then(|| {
            let order = rt
                .tasks
                .iter()
                .enumerate()
                .flat_map(|(i, t)| std::iter::repeat_n(i, t.weight as usize))
                .collect();
            (order, 0)
        });
        Picker {
            cumulative,
            sequence,
        }
    }

    fn next(&mut self, shared: &LuaEnv) -> usize {
        if let Some((order, pos)) = &mut self.sequence {
            let i = order[*pos % order.len()];
            *pos = (*pos + 1) % order.len();
            return i;
        }
        let total = *self.cumulative.last().unwrap_or(&1);
        if self.cumulative.len() == 1 {
            return 0;
        }
        let x = shared.rng.borrow_mut().random_range(0..total);
        self.cumulative.partition_point(|&c| c <= x)
    }
}
