//! The three roles of the binary, assembled from the library crates:
//! standalone (a master with one in-process worker, the default), master,
//! and worker. Each builds its configs, starts components with a shared
//! shutdown token, and hands headless runs to [`crate::headless`].
//! The master also builds the scaler `--scaler` asks for and owns the
//! local workers it starts, stopping them when it exits.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use master::ext::Extensions;
use master::scale::{KubernetesScaler, LocalConfig, LocalScaler, Scaler};
use master::web::{LogBuffer, WebConfig};
use master::{MasterConfig, MasterHandle};
use protocol::ScriptText;
use script::{ScriptInfo, ScriptSource};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use worker::session::{self, Outbox, SessionConfig};
use worker::{Engine, EngineConfig};

use crate::cli::RunArgs;
use crate::headless;

/// Errors that mean "the user asked for something impossible" (exit 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

pub fn usage(msg: impl Into<String>) -> anyhow::Error {
    UsageError(msg.into()).into()
}

/// The script and what it defines, or a usage error naming file and line.
pub async fn load_script(
    args: &RunArgs,
    shutdown: &CancellationToken,
) -> anyhow::Result<(ScriptSource, ScriptInfo)> {
    let Some(path) = &args.script else {
        return Err(usage(
            "no script given: pass -f SCRIPT (for example -f examples/quickstart.lua)",
        ));
    };
    let src = ScriptSource::read(&path.to_string_lossy()).map_err(|e| usage(e.to_string()))?;
    // Off the runtime's threads, so Ctrl-C is obeyed while a slow script
    // loads (the load time limit ends the load itself).
    let (probe, limits) = (src.clone(), lua_limits(args));
    let inspecting = tokio::task::spawn_blocking(move || script::inspect_limited(&probe, limits));
    let info = tokio::select! {
        info = inspecting => info?.map_err(|e| usage(e.to_string()))?,
        _ = shutdown.cancelled() => {
            return Err(usage(format!("interrupted while loading {}", src.path)));
        }
    };
    for name in args.selected_user_types() {
        if !info.user_types.iter().any(|t| t.name == name) {
            let known: Vec<_> = info.user_types.iter().map(|t| t.name.as_str()).collect();
            return Err(usage(format!(
                "unknown user type {name:?} in --user-types; {} defines: {}",
                src.path,
                known.join(", ")
            )));
        }
    }
    Ok((src, info))
}

fn master_config(args: &RunArgs, src: &ScriptSource) -> MasterConfig {
    MasterConfig {
        script: ScriptText {
            path: src.path.clone(),
            code: src.code.clone(),
        },
        heartbeat_interval: args
            .cluster
            .heartbeat_interval
            .max(Duration::from_millis(10)),
        report_interval: args.cluster.report_interval.max(Duration::from_millis(10)),
        missed_heartbeats: 3,
        token: args.cluster.cluster_token.clone(),
        stop_timeout: args.stop_timeout,
        tags: args.tags.clone(),
        exclude_tags: args.exclude_tags.clone(),
        host: args.host.clone(),
    }
}

fn engine_config(args: &RunArgs, node_id: &str) -> EngineConfig {
    EngineConfig {
        cores: args.cores,
        node_id: node_id.to_string(),
        insecure_tls: args.insecure,
        base_dir: args
            .script
            .as_deref()
            .and_then(Path::parent)
            .map(PathBuf::from),
        limits: lua_limits(args),
    }
}

pub fn lua_limits(args: &RunArgs) -> script::LuaLimits {
    script::LuaLimits {
        task_time: args.task_time_limit,
        load_time: args.load_time_limit,
        memory_bytes: usize::try_from(args.lua_memory_limit.saturating_mul(1 << 20))
            .unwrap_or(usize::MAX),
    }
}

fn session_config(args: &RunArgs, worker_id: String) -> SessionConfig {
    SessionConfig {
        worker_id,
        incarnation: rand::random(),
        token: args.cluster.cluster_token.clone(),
        stop_timeout: args.stop_timeout,
        missed_heartbeats: 3,
    }
}

/// Standalone: the master and one in-process worker, linked in memory.
pub async fn standalone(
    mut args: RunArgs,
    logs: LogBuffer,
    shutdown: CancellationToken,
) -> anyhow::Result<i32> {
    refuse_scaling_in_standalone(&args)?;
    let (src, info) = load_script(&args, &shutdown).await?;
    if args.demo_target {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}", listener.local_addr()?);
        tracing::info!("demo target serving at {url}");
        args.host.get_or_insert(url);
        // Not tied to `shutdown`: users still finishing their task after
        // Ctrl-C must not see their target vanish. It ends with the process.
        tokio::spawn(crate::demo_target::run(listener, CancellationToken::new()));
    }
    // The coordinator outlives Ctrl-C: it must see the run stop and merge
    // the final reports before the summary is printed.
    let coordinator_stop = CancellationToken::new();
    let (handle, _coordinator) =
        master::start(master_config(&args, &src), info, coordinator_stop.clone());
    let engine =
        Engine::start(engine_config(&args, "local")).context("cannot start the worker engine")?;
    let (master_end, worker_end) = protocol::memory::pair();
    handle.attach(master_end);
    let config = session_config(&args, "local".into());
    let worker_stop = CancellationToken::new();
    let worker_token = worker_stop.clone();
    let worker_task = tokio::spawn(async move {
        let mut engine = engine;
        session::run(
            worker_end,
            &mut engine,
            &mut Outbox::default(),
            &config,
            &worker_token,
        )
        .await
    });
    let ext = start_extensions(&args, &src, &handle).await?;
    let code = serve(&args, handle.clone(), None, logs, None, ext, shutdown).await;
    stop_run(&handle, args.stop_timeout).await;
    worker_stop.cancel();
    let _ = tokio::time::timeout(args.stop_timeout + Duration::from_secs(2), worker_task).await;
    coordinator_stop.cancel();
    code
}

/// A master that remote workers join on the master port.
pub async fn master(
    args: RunArgs,
    logs: LogBuffer,
    shutdown: CancellationToken,
) -> anyhow::Result<i32> {
    let (src, info) = load_script(&args, &shutdown).await?;
    let bind = format!(
        "{}:{}",
        args.cluster.master_bind_host, args.cluster.master_bind_port
    );
    let listener = TcpListener::bind(&bind).await.map_err(|e| {
        usage(format!(
            "cannot listen for workers on {bind} (--master-bind-host/--master-bind-port): {e}"
        ))
    })?;
    let worker_addr = listener.local_addr()?;
    tracing::info!("waiting for workers on {}", listener.local_addr()?);
    let coordinator_stop = CancellationToken::new();
    let (handle, _coordinator) =
        master::start(master_config(&args, &src), info, coordinator_stop.clone());
    tokio::spawn(master::listener::run(
        listener,
        handle.clone(),
        coordinator_stop.clone(),
    ));
    let scaling = start_scaling(&args, worker_addr).await?;
    let expect = args.cluster.expect_workers;
    let ext = start_extensions(&args, &src, &handle).await?;
    let code = serve(
        &args,
        handle.clone(),
        Some(expect),
        logs,
        scaling.scaler.clone(),
        ext,
        shutdown,
    )
    .await;
    stop_run(&handle, args.stop_timeout).await;
    if args.headless {
        // A headless run is over for good: its workers exit, as Locust's do,
        // so a CI job that started them ends. A master that is merely
        // restarting (UI mode, SIGTERM) keeps them: they reconnect.
        if handle.quit_workers().await.is_ok() {
            let gone = handle.wait_for(|s| s.worker_count == 0);
            let _ = tokio::time::timeout(args.stop_timeout + Duration::from_secs(2), gone).await;
        }
    }
    scaling.stop().await;
    coordinator_stop.cancel();
    code
}

/// Stops a run still going when the master quits, so workers do not keep
/// loading the target, and waits (bounded) for them to confirm.
async fn stop_run(handle: &MasterHandle, stop_timeout: Duration) {
    if handle.stop_run().await.is_ok() {
        let stopped = handle.wait_for(|s| s.state == master::RunState::Stopped);
        let _ = tokio::time::timeout(stop_timeout + Duration::from_secs(2), stopped).await;
    }
}

/// Headless: run once and report. Otherwise: serve the web UI until stopped.
async fn serve(
    args: &RunArgs,
    handle: MasterHandle,
    expect_workers: Option<usize>,
    logs: LogBuffer,
    scaler: Option<Arc<dyn Scaler>>,
    ext: Option<Extensions>,
    shutdown: CancellationToken,
) -> anyhow::Result<i32> {
    if args.headless {
        let expect = expect_workers.unwrap_or(1);
        return headless::run(args, handle, expect, shutdown).await;
    }
    let bind = format!("{}:{}", args.web.web_host, args.web.web_port);
    let listener = TcpListener::bind(&bind).await.map_err(|e| {
        usage(format!(
            "cannot serve the web UI on {bind} (--web-host/--web-port): {e}"
        ))
    })?;
    let addr = listener.local_addr()?;
    let base = args.web.web_base_path.trim_end_matches('/');
    println!("web UI at http://{addr}{base}/ (Ctrl-C to quit)");
    let config = web_config(args, logs, scaler, ext)?;
    if args.autostart {
        let request = headless::run_request(args)?;
        let handle = handle.clone();
        tokio::spawn(async move {
            let _ = handle.wait_for(|s| s.worker_count >= 1).await;
            if let Err(e) = handle.start_run(request).await {
                tracing::error!("autostart failed: {e}");
            }
        });
    }
    master::web::run(listener, handle, config, shutdown).await?;
    Ok(0)
}

fn web_config(
    args: &RunArgs,
    logs: LogBuffer,
    scaler: Option<Arc<dyn Scaler>>,
    ext: Option<Extensions>,
) -> anyhow::Result<WebConfig> {
    let auth = match &args.web.web_auth {
        Some(pair) => match pair.split_once(':') {
            Some((user, pass)) if !user.is_empty() => Some((user.to_string(), pass.to_string())),
            _ => bail!(usage(format!(
                "--web-auth must be USER:PASSWORD, got {pair:?}"
            ))),
        },
        None => None,
    };
    let base = args.web.web_base_path.trim_end_matches('/');
    if !base.is_empty() && !base.starts_with('/') {
        bail!(usage(format!(
            "--web-base-path must start with '/', got {base:?}"
        )));
    }
    Ok(WebConfig {
        base_path: base.to_string(),
        auth,
        token: args.web.web_token.clone(),
        scaler,
        max_workers: args.cluster.max_workers,
        logs: Some(logs),
        ext,
    })
}

/// The script's views, actions, routes and hooks (docs/extending.md),
/// when it declares any. Hooks also run in headless mode.
async fn start_extensions(
    args: &RunArgs,
    src: &ScriptSource,
    handle: &MasterHandle,
) -> anyhow::Result<Option<Extensions>> {
    let config = script::ext::ExtConfig {
        insecure_tls: args.insecure,
        base_dir: args
            .script
            .as_deref()
            .and_then(Path::parent)
            .map(PathBuf::from),
        ..Default::default()
    };
    let ext = Extensions::start(src, config, handle.clone())
        .await
        .map_err(|e| usage(e.to_string()))?;
    if let Some(c) = ext.as_ref().map(Extensions::catalog) {
        tracing::info!(
            "script extensions: {} views, {} actions, {} routes, hooks on {:?}",
            c.views.len(),
            c.actions.len(),
            c.routes.len(),
            c.hooks
        );
    }
    Ok(ext)
}

/// A worker: connect to the master and serve it until told to leave.
pub async fn worker(args: RunArgs, shutdown: CancellationToken) -> anyhow::Result<i32> {
    let id = args
        .cluster
        .worker_id
        .clone()
        .unwrap_or_else(default_worker_id);
    let engine =
        Engine::start(engine_config(&args, &id)).context("cannot start the worker engine")?;
    let addr = format!("{}:{}", args.cluster.master_host, args.cluster.master_port);
    tracing::info!(
        "worker {id} with {} cores joining {addr}",
        engine.core_count()
    );
    let config = session_config(&args, id);
    match worker::client::run(&addr, engine, config, shutdown).await {
        Ok(()) => Ok(0),
        Err(e) => Err(usage(e.to_string())),
    }
}

/// The host name plus a short random suffix, like Locust's.
fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    format!("{host}_{:06x}", rand::random::<u32>() & 0xff_ffff)
}

// Scaling workers: which scaler the flags ask for, the `--workers N` local
// workers started with the master, and stopping them when it exits.

/// The configured scaler; `local` is the same one again when it starts
/// processes, which the master must stop when it exits.
#[derive(Default)]
struct Scaling {
    scaler: Option<Arc<dyn Scaler>>,
    local: Option<Arc<LocalScaler>>,
}

impl Scaling {
    /// Tells the local workers to leave and waits for them (bounded by
    /// their grace period); nothing to do for Kubernetes.
    async fn stop(&self) {
        if let Some(local) = &self.local {
            local.stop_all().await;
        }
    }
}

/// Standalone has no worker port for scaled workers to join.
fn refuse_scaling_in_standalone(args: &RunArgs) -> anyhow::Result<()> {
    if args.cluster.scaler.is_some() || args.cluster.workers.is_some() {
        bail!(usage(
            "--scaler and --workers need --master: scaled workers join a master's worker port \
             (for example: swarmer --master --scaler local --workers 4 -f SCRIPT)"
        ));
    }
    Ok(())
}

async fn start_scaling(
    args: &RunArgs,
    worker_addr: std::net::SocketAddr,
) -> anyhow::Result<Scaling> {
    use crate::cli::ScalerKind;
    if let Some(n) = args.cluster.workers {
        if args.cluster.scaler != Some(ScalerKind::Local) {
            bail!(usage(
                "--workers starts local worker processes: it needs --scaler local"
            ));
        }
        if n > args.cluster.max_workers {
            bail!(usage(format!(
                "--workers {n} is more than --max-workers {}",
                args.cluster.max_workers
            )));
        }
    }
    match args.cluster.scaler {
        None => Ok(Scaling::default()),
        Some(ScalerKind::Kubernetes) => kubernetes_scaling(args).await,
        Some(ScalerKind::Local) => local_scaling(args, worker_addr).await,
    }
}

async fn kubernetes_scaling(args: &RunArgs) -> anyhow::Result<Scaling> {
    let deployment = &args.cluster.worker_deployment;
    let scaler = KubernetesScaler::from_environment(deployment, args.cluster.namespace.clone())
        .await
        .map_err(|e| usage(format!("--scaler kubernetes: {e}")))?;
    let scaler = Arc::new(scaler);
    tracing::info!(
        "scaling workers through deployments/{} in namespace {}",
        scaler.deployment(),
        scaler.namespace()
    );
    // A missing RBAC rule or Deployment shows in the log at startup, not
    // only when someone first tries to scale.
    let check = scaler.clone();
    tokio::spawn(async move {
        match check.status().await {
            Ok(status) => {
                tracing::info!(
                    "worker Deployment: {} desired, {:?} ready",
                    status.desired,
                    status.ready
                );
                if let Some(warning) = status.warning {
                    tracing::warn!("{warning}");
                }
            }
            Err(e) => {
                tracing::warn!("the Kubernetes scaler cannot read the worker Deployment: {e}")
            }
        }
    });
    Ok(Scaling {
        scaler: Some(scaler),
        local: None,
    })
}

async fn local_scaling(
    args: &RunArgs,
    worker_addr: std::net::SocketAddr,
) -> anyhow::Result<Scaling> {
    let program = std::env::current_exe()
        .context("cannot find the swarmer executable to start local workers")?;
    // Children join over loopback unless the master listens on one address only.
    let host = match args.cluster.master_bind_host.as_str() {
        "0.0.0.0" | "::" | "[::]" | "" => "127.0.0.1".to_string(),
        bound => bound.to_string(),
    };
    let mut config = LocalConfig::new(program, host, worker_addr.port());
    config.cluster_token = args.cluster.cluster_token.clone();
    config.heartbeat_interval = args.cluster.heartbeat_interval;
    config.grace = args.stop_timeout + Duration::from_secs(5);
    config.extra_args = local_worker_args(args);
    let local = Arc::new(LocalScaler::new(config));
    if let Some(n) = args.cluster.workers {
        local
            .scale(n)
            .await
            .map_err(|e| usage(format!("--workers {n}: {e}")))?;
        tracing::info!("started {n} local workers");
    }
    Ok(Scaling {
        scaler: Some(local.clone()),
        local: Some(local),
    })
}

/// The master's settings that also shape a worker.
fn local_worker_args(args: &RunArgs) -> Vec<String> {
    let mut out = vec![
        format!("--stop-timeout={}ms", args.stop_timeout.as_millis()),
        format!("--loglevel={}", args.loglevel),
    ];
    if args.cores != 0 {
        out.push(format!("--cores={}", args.cores));
    }
    if args.insecure {
        out.push("--insecure".into());
    }
    // Workers get the script from the master, but read data files next to it.
    if let Some(script) = &args.script {
        out.push(format!("--script={}", script.display()));
    }
    out
}
