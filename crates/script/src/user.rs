//! One running user: `on_start`, then pick a task, run it as a coroutine,
//! wait, until told to stop; then `on_stop`. Script errors become exception
//! records and the user carries on.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use mlua::thread::ThreadStatus;
use mlua::{Function, Table, Thread, Value};
use rand::Rng;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::define::Wait;
use crate::drive::{Current, perform};
use crate::held::Held;
use crate::http::{Client, Http};
use crate::lua_env::{LuaEnv, UserCtx};
use crate::luax::fix_path;
use crate::runtime::{LoadedScript, RunType};
use crate::wait::Pacer;

/// Creates one user of type `ty` now, with `self.index` = `index` (the
/// run-wide index the engine leased it; its per-core `id` without one), so a user that cannot be created is
/// an error for the caller to count rather than a user that silently never
/// runs; the returned future runs it.
///
/// The user's table is [`Held`]: a handle while the core has slots, in
/// the registry after, so a core is not capped at the reference stack's
/// 8,000 handles ("out of Lua stack").
pub fn start(
    core: Rc<LoadedScript>,
    ty: usize,
    stop: CancellationToken,
    mode: Mode,
    index: Option<u32>,
) -> mlua::Result<impl std::future::Future<Output = ()> + 'static> {
    let rt = &core.types[ty];
    let ctx = Rc::new(UserCtx {
        id: core.next_user_id(),
        user_type: rt.name.clone(),
        stop,
        lateness_us: Cell::new(None),
        pending: RefCell::new(None),
        op: RefCell::new(None),
        hosts: rt.http.hosts.clone(),
        sockets: RefCell::new(Vec::new()),
    });
    let index = index.map_or(ctx.id, u64::from);
    let this = user_table(&core, rt, &ctx, index)?;
    let this = Held::new(&core.lua, &core.slots, this)?;
    Ok(run(core, ty, ctx, this, mode))
}

/// Idle users of one arrival pool, each waiting for the due instant of the
/// arrival it is to serve. Whoever pops a sender owns that user's next
/// task; a send that fails means the user has stopped: try the next one.
pub type IdlePool = Rc<RefCell<Vec<tokio::sync::oneshot::Sender<Instant>>>>;

/// How a user decides when to run a task.
pub enum Mode {
    /// The closed model: task, wait, task... until stopped.
    Closed,
    /// The open model: one task per arrival handed to it through `idle`
    /// (the first may come with the user), then idle again.
    Pooled {
        idle: IdlePool,
        first_due: Option<Instant>,
    },
}

async fn run(core: Rc<LoadedScript>, ty: usize, ctx: Rc<UserCtx>, this: Held<Table>, mode: Mode) {
    let rt = &core.types[ty];
    // Records the last response even if the engine drops this user
    // mid-task (stop timeout): every response counts exactly once.
    let _settle = SettleOnDrop(ctx.clone());
    if let Some(f) = &rt.on_start {
        call(&core, &ctx, f, &this).await;
    }
    if rt.tasks.is_empty() {
        // Every task was filtered out by tags: nothing to do but wait.
        ctx.stop.cancelled().await;
    } else {
        match mode {
            Mode::Closed => task_loop(&core, rt, &ctx, &this).await,
            Mode::Pooled { idle, first_due } => {
                pooled_loop(&core, rt, &ctx, &this, &idle, first_due).await
            }
        }
    }
    ctx.lateness_us.set(None);
    if let Some(f) = &rt.on_stop {
        call(&core, &ctx, f, &this).await;
    }
}

async fn task_loop(core: &LoadedScript, rt: &RunType, ctx: &Rc<UserCtx>, this: &Held<Table>) {
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
        let interruptions = core.watchdog.interruptions();
        call(core, ctx, &rt.tasks[task].func, this).await;
        if ctx.stop.is_cancelled() {
            break;
        }
        let wait = match &pacer {
            Some(p) => p.wait(Instant::now()),
            None => wait_time(core, ctx, &rt.wait, this),
        };
        if core.watchdog.interruptions() != interruptions {
            // The core was held for the whole time limit: let its commands
            // (a stop, a collection) and other users run first.
            tokio::task::yield_now().await;
        }
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

/// One task per arrival. Latency counts from the arrival's due instant,
/// so a pool that cannot keep up shows as lateness, not as a lower rate.
async fn pooled_loop(
    core: &LoadedScript,
    rt: &RunType,
    ctx: &Rc<UserCtx>,
    this: &Held<Table>,
    idle: &IdlePool,
    mut next_due: Option<Instant>,
) {
    let mut picker = Picker::new(rt);
    while !ctx.stop.is_cancelled() {
        let due = match next_due.take() {
            Some(due) => due,
            None => {
                let (tx, rx) = tokio::sync::oneshot::channel();
                idle.borrow_mut().push(tx);
                tokio::select! {
                    due = rx => match due {
                        Ok(due) => due,
                        Err(_) => break,
                    },
                    _ = ctx.stop.cancelled() => break,
                }
            }
        };
        let late = Instant::now().saturating_duration_since(due);
        ctx.lateness_us.set(Some(late.as_micros() as u64));
        let task = picker.next(&core.shared);
        call(core, ctx, &rt.tasks[task].func, this).await;
        tokio::task::consume_budget().await;
    }
}

fn wait_time(core: &LoadedScript, ctx: &Rc<UserCtx>, wait: &Wait, this: &Held<Table>) -> Duration {
    match wait {
        Wait::Time(w) => w.sample(&mut *core.shared.rng.borrow_mut()),
        Wait::Custom(f) => {
            let secs = {
                let _current = Current::set(&core.shared, ctx);
                let _busy = core.watchdog.enter();
                this.with(&core.lua, |this| f.call::<f64>(this))
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

fn user_table(
    core: &LoadedScript,
    rt: &RunType,
    ctx: &Rc<UserCtx>,
    index: u64,
) -> mlua::Result<Table> {
    let t = core.lua.create_table_with_capacity(0, 4)?;
    let http = Http(Rc::new(Client::new(
        ctx.clone(),
        core.shared.clone(),
        rt.base.clone(),
        rt.http.clone(),
    )));
    t.raw_set("http", core.lua.create_userdata(http)?)?;
    t.raw_set("ws", core.ws.clone())?;
    t.raw_set("grpc", core.grpc.clone())?;
    // `id` counts users on this core (from 1, so it repeats across cores
    // and workers); `index` is unique across the run while the user lives.
    t.raw_set("id", ctx.id)?;
    t.raw_set("index", index)?;
    t.raw_set("user_type", &*rt.name)?;
    t.set_metatable(Some(rt.user_meta.clone()))?;
    Ok(t)
}

/// Runs one script function of this user as a coroutine, doing the work
/// it yields for (HTTP, sleep) until it finishes; then the last response
/// gets its verdict and any error is recorded.
///
/// While it waits, the coroutine is [`Held`] like the user's table.
async fn call(core: &LoadedScript, ctx: &Rc<UserCtx>, f: &Function, this: &Held<Table>) {
    let parked = match core.take_thread() {
        Ok(t) => t,
        Err(e) => {
            core.shared
                .record_exception(&format!("cannot start a coroutine: {e}"), "");
            return;
        }
    };
    let mut input = Value::Nil;
    let mut first = true;
    loop {
        let step = resume(
            core,
            ctx,
            &parked,
            f,
            this,
            std::mem::take(&mut first),
            input,
        );
        let (resumable, msg, tb) = match step {
            Ok(r) => r,
            Err(e) => {
                // Only the runner's own failure lands here (task errors are
                // caught inside it); the thread is not reused.
                ctx.settle_pending();
                core.shared.record_exception(&e.to_string(), "");
                return;
            }
        };
        if !resumable {
            ctx.settle_pending();
            if let Some(msg) = msg {
                let msg = fix_path(&msg, &core.shared.script_path);
                tracing::debug!(target: "script", user = %format!("{}#{}", ctx.user_type, ctx.id), "{msg}");
                core.shared.record_exception(&msg, &tb.unwrap_or_default());
            }
            core.put_thread(parked);
            return;
        }
        input = perform(&core.lua, &core.shared, ctx).await;
    }
}

/// Whether the coroutine can be resumed again, and the error message and
/// traceback of a task that failed.
type Resumed = (bool, Option<String>, Option<String>);

/// One resume of a parked coroutine, with the watchdog told that this core
/// is inside Lua until it returns.
fn resume(
    core: &LoadedScript,
    ctx: &Rc<UserCtx>,
    parked: &Held<Thread>,
    f: &Function,
    this: &Held<Table>,
    first: bool,
    input: Value,
) -> mlua::Result<Resumed> {
    let _current = Current::set(&core.shared, ctx);
    let _busy = core.watchdog.enter();
    parked.with(&core.lua, |thread| {
        let (msg, tb) = if first {
            this.with(&core.lua, |this| {
                thread.resume::<(Option<String>, Option<String>)>((f, this))
            })?
        } else {
            thread.resume::<(Option<String>, Option<String>)>(input)?
        };
        Ok((thread.status() == ThreadStatus::Resumable, msg, tb))
    })
}

struct SettleOnDrop(Rc<UserCtx>);

impl Drop for SettleOnDrop {
    /// Also closes the user's sockets: when it ends, or when the engine
    /// drops it at the stop timeout.
    fn drop(&mut self) {
        self.0.settle_pending();
        crate::io::close_all(&self.0);
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
