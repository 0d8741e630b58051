//! The extension engine's thread and the `Send` handle the web server and
//! the hook watcher use to call into it.
//!
//! A call travels as a job (a closure) over a channel; the thread runs each
//! job as a local task, so one call waiting on HTTP does not hold up the
//! others, and replies through a oneshot. The engine bounds each call's
//! running time itself; the handle bounds the wait for the reply as well
//! (a little longer), for the case Lua cannot interrupt: a single C
//! function that never returns, such as a pathological `string.find`.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value as Json;
use tokio::sync::{mpsc, oneshot};

use script::{ScriptError, ScriptSource};

use crate::output::{ActionOutcome, ViewData};
use crate::runtime::ExtRuntime;
use crate::{CallContext, Catalog, ExtConfig, ExtError};

type LocalFuture = Pin<Box<dyn Future<Output = ()>>>;
type Job = Box<dyn FnOnce(Rc<ExtRuntime>) -> LocalFuture + Send>;

/// Calls waiting for the thread; beyond this, callers wait to enqueue.
const QUEUE: usize = 256;

/// How much longer than the engine's own limit a caller waits.
const SLACK: Duration = Duration::from_secs(2);

/// A cheap, cloneable, thread-safe handle on a script's extensions. The
/// engine's thread ends when the last handle is dropped.
#[derive(Clone)]
pub struct ExtHandle {
    jobs: mpsc::Sender<Job>,
    catalog: Arc<Catalog>,
    limit: Duration,
}

/// Loads the script's extensions on a thread of their own. `Ok(None)`
/// when the script declares none (the thread has then already ended).
pub async fn start(
    src: &ScriptSource,
    config: ExtConfig,
) -> Result<Option<ExtHandle>, ScriptError> {
    let (jobs, queue) = mpsc::channel::<Job>(QUEUE);
    let (ready, loaded) = oneshot::channel();
    let limit = config.call_timeout;
    let src = src.clone();
    std::thread::Builder::new()
        .name("swarmer-ext".into())
        .spawn(move || serve(src, config, queue, ready))
        .map_err(|e| ScriptError::Load {
            message: format!("cannot start the script extensions' thread: {e}"),
        })?;
    let catalog = loaded.await.map_err(|_| ScriptError::Load {
        message: "the script extensions' thread ended while loading".into(),
    })??;
    if catalog.is_empty() {
        return Ok(None);
    }
    Ok(Some(ExtHandle {
        jobs,
        catalog: Arc::new(catalog),
        limit,
    }))
}

fn serve(
    src: ScriptSource,
    config: ExtConfig,
    mut queue: mpsc::Receiver<Job>,
    ready: oneshot::Sender<Result<Catalog, ScriptError>>,
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
        if ready.send(Ok(catalog)).is_err() || empty {
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

    /// Renders view `id` from `ctx`.
    pub async fn render(&self, id: &str, ctx: CallContext) -> Result<ViewData, ExtError> {
        let id = id.to_string();
        self.call(move |e| Box::pin(async move { e.render(&id, ctx).await }))
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
        self.call(move |e| Box::pin(async move { e.act(&id, args, ctx).await }))
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
        self.call(move |e| Box::pin(async move { e.route(&path, query, ctx).await }))
            .await
    }

    /// Runs the hooks of `event` (one of [`crate::EVENTS`]) with `data` as
    /// their first argument; returns the errors they raised.
    pub async fn emit(&self, event: &str, data: Json, ctx: CallContext) -> Vec<ExtError> {
        let event = event.to_string();
        let result = self
            .call(move |e| Box::pin(async move { Ok(e.emit(&event, data, ctx).await) }))
            .await;
        result.unwrap_or_else(|e| vec![e])
    }

    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(Rc<ExtRuntime>) -> Pin<Box<dyn Future<Output = Result<T, ExtError>>>>
        + Send
        + 'static,
    ) -> Result<T, ExtError> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |engine| {
            Box::pin(async move {
                let _ = reply.send(f(engine).await);
            })
        });
        let wait = async {
            self.jobs.send(job).await.map_err(|_| ExtError::Gone)?;
            answer.await.map_err(|_| ExtError::Gone)?
        };
        // Hooks run one after another: a queue of them may wait a while.
        let limit = self.limit * 2 + SLACK;
        match tokio::time::timeout(limit, wait).await {
            Ok(result) => result,
            Err(_) => Err(ExtError::Timeout(format!(
                "the script did not answer within {limit:?}: it may be stuck in a call Lua cannot interrupt, or busy with other calls"
            ))),
        }
    }
}
