//! The extension engine's thread and the `Send` handle the web server and
//! the hook watcher use to call into it.
//!
//! A call travels as a job (a closure) over a channel; the thread runs each
//! job as a local task, so one call waiting on HTTP does not hold up the
//! others, and replies through a oneshot. The engine bounds each call's
//! running time itself, from when it starts running; the handle bounds the
//! wait for the reply as well (a little longer), for the case Lua cannot
//! interrupt: a single C function that never returns, such as a
//! pathological `string.find`.
//!
//! Calls that spin until their limit run one after another on the one
//! thread, so the handle keeps the backlog short: at most `max_pending`
//! calls are queued or running (one more is refused at once with
//! [`ExtError::Busy`]), and a call whose caller went away (the web client
//! closed the connection, dropping the caller's future) is cancelled:
//! skipped if it has not started, stopped if it has.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use script::{ScriptError, ScriptSource};

use crate::output::{ActionOutcome, ViewData};
use crate::runtime::ExtRuntime;
use crate::{CallContext, Catalog, ExtConfig, ExtError, ShapeTarget};

type LocalFuture = Pin<Box<dyn Future<Output = ()>>>;
type Job = Box<dyn FnOnce(Rc<ExtRuntime>) -> LocalFuture + Send>;
type Call<T> = Box<
    dyn FnOnce(
            Rc<ExtRuntime>,
            CancellationToken,
        ) -> Pin<Box<dyn Future<Output = Result<T, ExtError>>>>
        + Send,
>;

/// How much longer than the engine's own limit a caller waits.
const SLACK: Duration = Duration::from_secs(2);

/// A cheap, cloneable, thread-safe handle on a script's extensions. The
/// engine's thread ends when the last handle is dropped.
#[derive(Clone)]
pub struct ExtHandle {
    jobs: mpsc::UnboundedSender<Job>,
    /// One permit per call queued or running (`ExtConfig::max_pending`).
    pending: Arc<Semaphore>,
    max_pending: usize,
    catalog: Arc<Catalog>,
    /// The event of each hook, in declaration order (to bound `emit`'s wait).
    hooks: Arc<[String]>,
    limit: Duration,
}

/// Loads the script's extensions on a thread of their own. `Ok(None)`
/// when the script declares none (the thread has then already ended).
pub async fn start(
    src: &ScriptSource,
    config: ExtConfig,
) -> Result<Option<ExtHandle>, ScriptError> {
    // Unbounded: `pending` bounds what can be in it.
    let (jobs, queue) = mpsc::unbounded_channel::<Job>();
    let (ready, loaded) = oneshot::channel();
    let limit = config.call_timeout;
    let max_pending = config.max_pending.max(1);
    let src = src.clone();
    std::thread::Builder::new()
        .name("swarmer-ext".into())
        .spawn(move || serve(src, config, queue, ready))
        .map_err(|e| ScriptError::Load {
            message: format!("cannot start the script extensions' thread: {e}"),
        })?;
    let (catalog, hooks) = loaded.await.map_err(|_| ScriptError::Load {
        message: "the script extensions' thread ended while loading".into(),
    })??;
    if catalog.is_empty() {
        return Ok(None);
    }
    Ok(Some(ExtHandle {
        jobs,
        pending: Arc::new(Semaphore::new(max_pending)),
        max_pending,
        catalog: Arc::new(catalog),
        hooks: hooks.into(),
        limit,
    }))
}

fn serve(
    src: ScriptSource,
    config: ExtConfig,
    mut queue: mpsc::UnboundedReceiver<Job>,
    ready: oneshot::Sender<Result<(Catalog, Vec<String>), ScriptError>>,
) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(ScriptError::Load {
                message: format!("cannot start the script extensions' runtime: {e}"),
            }));
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async move {
        let engine = match ExtRuntime::load(&src, &config) {
            Ok(engine) => Rc::new(engine),
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let catalog = engine.catalog();
        let empty = catalog.is_empty();
        if ready.send(Ok((catalog, engine.hook_events()))).is_err() || empty {
            return;
        }
        while let Some(job) = queue.recv().await {
            tokio::task::spawn_local(job(engine.clone()));
        }
    });
}

impl ExtHandle {
    pub fn catalog(&self) -> &Catalog {
        &self.catalog
    }

    /// The longest a call may run.
    pub fn call_timeout(&self) -> Duration {
        self.limit
    }

    /// Calls queued or running right now.
    pub fn pending_calls(&self) -> usize {
        self.max_pending - self.pending.available_permits()
    }

    /// Renders view `id` from `ctx`.
    pub async fn render(&self, id: &str, ctx: CallContext) -> Result<ViewData, ExtError> {
        let id = id.to_string();
        self.call(
            1,
            Box::new(move |e, c| Box::pin(async move { e.render(&id, ctx, &c).await })),
        )
        .await
    }

    /// Checks `args` against action `id`'s fields, then runs it.
    pub async fn act(
        &self,
        id: &str,
        args: Json,
        ctx: CallContext,
    ) -> Result<ActionOutcome, ExtError> {
        let id = id.to_string();
        self.call(
            1,
            Box::new(move |e, c| Box::pin(async move { e.act(&id, args, ctx, &c).await })),
        )
        .await
    }

    /// Serves a script route; `path` is relative to `/api/v1/ext`.
    pub async fn route(
        &self,
        path: &str,
        query: Vec<(String, String)>,
        ctx: CallContext,
    ) -> Result<Json, ExtError> {
        let path = path.to_string();
        self.call(
            1,
            Box::new(move |e, c| Box::pin(async move { e.route(&path, query, ctx, &c).await })),
        )
        .await
    }

    /// Calls the script's shape function (`ctx.run_time`, `ctx.stats`);
    /// `None`: it returned nil, the profile has ended.
    pub async fn shape(&self, ctx: CallContext) -> Result<Option<ShapeTarget>, ExtError> {
        self.call(
            1,
            Box::new(move |e, c| Box::pin(async move { e.shape(ctx, &c).await })),
        )
        .await
    }

    /// Runs the hooks of `event` (one of [`crate::EVENTS`]) with `data` as
    /// their first argument; returns the errors they raised.
    pub async fn emit(&self, event: &str, data: Json, ctx: CallContext) -> Vec<ExtError> {
        let event = event.to_string();
        let hooks = self.hooks.iter().filter(|e| **e == event).count() as u32;
        let result = self
            .call(
                hooks,
                Box::new(move |e, c| {
                    Box::pin(async move { Ok(e.emit(&event, data, ctx, &c).await) })
                }),
            )
            .await;
        result.unwrap_or_else(|e| vec![e])
    }

    /// Queues `f` (which makes `calls` script calls, one after another) and
    /// waits for its result: first for it to start (it is cancelled if this
    /// future is dropped meanwhile), then for at most `calls` limits and a
    /// little slack from when it started.
    async fn call<T: Send + 'static>(&self, calls: u32, f: Call<T>) -> Result<T, ExtError> {
        let permit = self
            .pending
            .clone()
            .try_acquire_owned()
            .map_err(|_| ExtError::Busy(self.max_pending))?;
        let cancel = CancellationToken::new();
        // Dropping this future (the caller went away) cancels the call; so
        // does giving up on it below, if it is still running.
        let _abandon = cancel.clone().drop_guard();
        let (started, running) = oneshot::channel::<()>();
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |engine| {
            Box::pin(async move {
                let _permit = permit;
                if cancel.is_cancelled() || started.send(()).is_err() {
                    return;
                }
                let _ = reply.send(f(engine, cancel).await);
            })
        });
        self.jobs.send(job).map_err(|_| ExtError::Gone)?;
        // Every call ahead of this one ends within its own limit.
        let queued = (self.limit + SLACK) * self.max_pending as u32;
        match tokio::time::timeout(queued, running).await {
            Ok(Ok(())) => {
                let limit = self.limit * calls.max(1) + SLACK;
                match tokio::time::timeout(limit, answer).await {
                    Ok(result) => result.unwrap_or(Err(ExtError::Gone)),
                    Err(_) => Err(ExtError::Timeout(format!(
                        "the script did not answer within {limit:?}: it may be stuck in a call Lua cannot interrupt"
                    ))),
                }
            }
            Ok(Err(_)) => Err(ExtError::Gone),
            Err(_) => Err(ExtError::Timeout(format!(
                "the call did not start within {queued:?}: the script may be stuck in a call Lua cannot interrupt"
            ))),
        }
    }
}
