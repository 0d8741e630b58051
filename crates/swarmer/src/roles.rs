//! The three roles of the binary, started from a resolved
//! [`crate::config::Config`]: standalone (a master with one in-process
//! worker, the default), master, and worker. Each starts components with a
//! shared shutdown token and hands headless runs to [`crate::headless`].
//! The master also builds the scaler `--scaler` asks for and owns the
//! local workers it starts, stopping them when it exits. Nothing here
//! checks what the user asked for: `config` did.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use master::MasterHandle;
use master::autoscale::Autoscale;
use master::ext::Extensions;
use master::scale::{KubernetesScaler, LocalConfig, LocalScaler, Scaler};
use master::web::{LogBuffer, WebConfig};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use worker::Engine;
use worker::session::{self, Outbox};

use crate::cli::ScalerKind;
use crate::config::{Cluster, Control, Mode, WorkerRole, usage};
use crate::headless;
use crate::recording::Recording;

/// Standalone: the master and one in-process worker, linked in memory.
pub async fn standalone(
    mut control: Control,
    logs: LogBuffer,
    shutdown: CancellationToken,
) -> anyhow::Result<i32> {
    let recording = open_history(&control).await?;
    start_demo_target(&mut control).await?;
    // The coordinator outlives Ctrl-C: it must see the run stop and merge
    // the final reports before the summary is printed.
    let coordinator_stop = CancellationToken::new();
    let (handle, coordinator) = master::start(
        control.master.clone(),
        control.info.clone(),
        coordinator_stop.clone(),
    );
    supervise(coordinator, coordinator_stop.clone());
    let engine = Engine::start(control.engine.clone()).context("cannot start the worker engine")?;
    let (master_end, worker_end) = protocol::memory::pair();
    handle.attach(master_end);
    let config = control.session.clone();
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
    let ext = start_extensions(&control, &handle).await?;
    let stop_timeout = control.stop_timeout;
    let code = serve(
        control,
        handle.clone(),
        logs,
        &Scaling::default(),
        ext,
        &recording,
        shutdown,
    )
    .await;
    stop_run(&handle, stop_timeout).await;
    worker_stop.cancel();
    let _ = tokio::time::timeout(stop_timeout + Duration::from_secs(2), worker_task).await;
    coordinator_stop.cancel();
    recording.finish().await;
    code
}

/// `--demo-target`: the bundled demo shop on a free loopback port, and the
/// run aimed at it unless `-H` says otherwise. The master hands that host
/// to its workers with the run, so local workers reach it too.
async fn start_demo_target(control: &mut Control) -> anyhow::Result<()> {
    if !control.demo_target {
        return Ok(());
    }
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tracing::info!("demo target serving at {url}");
    control.master.host.get_or_insert(url.clone());
    control.request.host.get_or_insert(url);
    // Not tied to `shutdown`: users still finishing their task after
    // Ctrl-C must not see their target vanish. It ends with the process.
    tokio::spawn(crate::demo_target::run(listener, CancellationToken::new()));
    Ok(())
}

/// A master that remote workers join on the master port.
pub async fn master(
    mut control: Control,
    cluster: Cluster,
    logs: LogBuffer,
    shutdown: CancellationToken,
) -> anyhow::Result<i32> {
    let recording = open_history(&control).await?;
    let bind = &cluster.bind;
    let listener = TcpListener::bind(bind).await.map_err(|e| {
        usage(format!(
            "cannot listen for workers on {bind} (--master-bind-host/--master-bind-port): {e}"
        ))
    })?;
    let worker_addr = listener.local_addr()?;
    tracing::info!("waiting for workers on {worker_addr}");
    start_demo_target(&mut control).await?;
    if control.demo_target && !worker_addr.ip().is_loopback() {
        tracing::warn!(
            "--demo-target listens on this machine's loopback only: workers on other \
             machines cannot reach it"
        );
    }
    if worker_addr.ip().is_loopback() {
        tracing::info!(
            "workers can join from this machine only; to accept remote workers set \
             --cluster-token (see README, Distributed)"
        );
    }
    let coordinator_stop = CancellationToken::new();
    let (handle, coordinator) = master::start(
        control.master.clone(),
        control.info.clone(),
        coordinator_stop.clone(),
    );
    supervise(coordinator, coordinator_stop.clone());
    // Its own runtime: decoding reports must not queue the UI (see there).
    master::listener::spawn_apart(listener, handle.clone(), coordinator_stop.clone())?;
    let mut scaling = start_scaling(&cluster, worker_addr).await?;
    let autoscale_stop = CancellationToken::new();
    scaling.start_autoscale(&cluster, &handle, &autoscale_stop);
    if let Mode::Headless(headless) = &mut control.mode {
        headless.autoscale = scaling.autoscale.clone();
    }
    let ext = start_extensions(&control, &handle).await?;
    let stop_timeout = control.stop_timeout;
    let headless = matches!(control.mode, Mode::Headless(_));
    let code = serve(
        control,
        handle.clone(),
        logs,
        &scaling,
        ext,
        &recording,
        shutdown,
    )
    .await;
    stop_run(&handle, stop_timeout).await;
    // The workers are the master's to stop now, not the autoscaler's.
    autoscale_stop.cancel();
    if headless {
        // A headless run is over for good: its workers exit, as Locust's do,
        // so a CI job that started them ends. A master that is merely
        // restarting (UI mode, SIGTERM) keeps them: they reconnect.
        if handle.quit_workers().await.is_ok() {
            let gone = handle.wait_for(|s| s.worker_count == 0);
            let _ = tokio::time::timeout(stop_timeout + Duration::from_secs(2), gone).await;
        }
    }
    scaling.stop().await;
    coordinator_stop.cancel();
    recording.finish().await;
    code
}

/// A coordinator that ends before it was told to has panicked: the master
/// can no longer start, stop or count anything, so the process must not
/// linger half alive (a web UI answering 503, workers idling). The panic
/// hook installed by `main` already exits on any panic; this covers a
/// coordinator ended any other way.
fn supervise(coordinator: tokio::task::JoinHandle<()>, stop: CancellationToken) {
    tokio::spawn(async move {
        let result = coordinator.await;
        if !stop.is_cancelled() {
            let why = match result {
                Err(e) if e.is_panic() => "it panicked",
                _ => "it ended unexpectedly",
            };
            eprintln!("error: the master's coordinator stopped ({why}); exiting");
            std::process::exit(1);
        }
    });
}

/// Stops a run still going when the master quits, so workers do not keep
/// loading the target, and waits (bounded) for them to confirm.
async fn stop_run(handle: &MasterHandle, stop_timeout: Duration) {
    if handle.stop_run().await.is_ok() {
        let stopped = handle.wait_for(|s| s.state == master::RunState::Stopped);
        let _ = tokio::time::timeout(stop_timeout + Duration::from_secs(2), stopped).await;
    }
}

/// The run history, opened before anything starts (a bad one is exit 2).
async fn open_history(control: &Control) -> anyhow::Result<Recording> {
    let script = master::recorder::ScriptMeta::new(&control.src.path, &control.src.code);
    Recording::open(&control.history, script).await
}

/// Headless: run once and report. Otherwise: serve the web UI until stopped.
async fn serve(
    control: Control,
    handle: MasterHandle,
    logs: LogBuffer,
    scaling: &Scaling,
    ext: Option<Extensions>,
    recording: &Recording,
    shutdown: CancellationToken,
) -> anyhow::Result<i32> {
    tokio::spawn(crate::hints::watch_refused(
        handle.clone(),
        shutdown.clone(),
    ));
    let (bind, web, autostart) = match control.mode {
        Mode::Headless(config) => {
            return headless::run(
                &config,
                control.request,
                handle,
                ext.as_ref(),
                recording,
                shutdown,
            )
            .await;
        }
        Mode::Web {
            bind,
            web,
            autostart,
        } => (bind, web, autostart),
    };
    let listener = TcpListener::bind(&bind).await.map_err(|e| {
        usage(format!(
            "cannot serve the web UI on {bind} (--web-host/--web-port): {e}"
        ))
    })?;
    let addr = listener.local_addr()?;
    println!("web UI at http://{addr}{}/ (Ctrl-C to quit)", web.base_path);
    // Awaited by the role after the run stopped on the way out is recorded.
    recording.record_ui_runs(handle.clone(), scaling.autoscale.clone());
    if autostart {
        let request = control.request;
        let (handle, ext) = (handle.clone(), ext.clone());
        tokio::spawn(async move {
            let _ = handle.wait_for(|s| s.worker_count >= 1).await;
            if let Err(e) = master::ext::start_run(&handle, ext.as_ref(), request).await {
                tracing::error!("autostart failed: {e}");
            }
        });
    }
    let config = WebConfig {
        logs: Some(logs),
        scaler: scaling.scaler.clone(),
        autoscale: scaling.autoscale.clone(),
        ext,
        ext_config: control.ext.clone(),
        history: recording.store(),
        ..web
    };
    master::web::run(listener, handle, config, shutdown).await?;
    Ok(0)
}

/// The script's views, actions, routes and hooks (docs/extending.md),
/// when it declares any. Hooks also run in headless mode.
async fn start_extensions(
    control: &Control,
    handle: &MasterHandle,
) -> anyhow::Result<Option<Extensions>> {
    let ext = Extensions::start(&control.src, control.ext.clone(), handle.clone())
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
pub async fn worker(role: WorkerRole, shutdown: CancellationToken) -> anyhow::Result<i32> {
    crate::parent::follow(&shutdown)?;
    let id = role.session.worker_id.clone();
    let engine = Engine::start(role.engine).context("cannot start the worker engine")?;
    let addr = role.master_addr;
    tracing::info!(
        "worker {id} with {} cores joining {addr}",
        engine.core_count()
    );
    match worker::client::run(&addr, engine, role.session, shutdown).await {
        Ok(()) => Ok(0),
        Err(e) => Err(usage(e.to_string()).into()),
    }
}

// Scaling workers: which scaler the flags ask for, the `--workers N` local
// workers started with the master, and stopping them when it exits.

/// The configured scaler; `local` is the same one again when it starts
/// processes, which the master must stop when it exits.
#[derive(Default)]
struct Scaling {
    scaler: Option<Arc<dyn Scaler>>,
    local: Option<Arc<LocalScaler>>,
    /// `--autoscale`: the record its task keeps.
    autoscale: Option<Autoscale>,
}

impl Scaling {
    /// `--autoscale`: watches the workers' CPU (on a tick a fifth of the
    /// window, so a spell is measured to within 20%) until `stop`.
    fn start_autoscale(
        &mut self,
        cluster: &Cluster,
        handle: &MasterHandle,
        stop: &CancellationToken,
    ) {
        let (Some(policy), Some(scaler)) = (&cluster.autoscale, &self.scaler) else {
            return;
        };
        let every = (Duration::from_millis(policy.window_ms) / 5)
            .clamp(Duration::from_millis(100), Duration::from_secs(1));
        tracing::info!(
            "autoscaling between {} and {} workers on CPU above {}% for {} ms",
            policy.min,
            policy.max,
            policy.high_pct,
            policy.window_ms
        );
        let autoscale = Autoscale::new(policy.clone());
        tokio::spawn(master::autoscale::run(
            handle.clone(),
            scaler.clone(),
            autoscale.clone(),
            every,
            stop.clone(),
        ));
        self.autoscale = Some(autoscale);
    }

    /// Tells the local workers to leave and waits for them (bounded by
    /// their grace period); nothing to do for Kubernetes.
    async fn stop(&self) {
        if let Some(local) = &self.local {
            local.stop_all().await;
        }
    }
}

async fn start_scaling(
    cluster: &Cluster,
    worker_addr: std::net::SocketAddr,
) -> anyhow::Result<Scaling> {
    match cluster.scaler {
        None => Ok(Scaling::default()),
        Some(ScalerKind::Kubernetes) => kubernetes_scaling(cluster).await,
        Some(ScalerKind::Local) => local_scaling(cluster, worker_addr).await,
    }
}

async fn kubernetes_scaling(cluster: &Cluster) -> anyhow::Result<Scaling> {
    let deployment = &cluster.deployment;
    let scaler = KubernetesScaler::from_environment(deployment, cluster.namespace.clone())
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
        autoscale: None,
    })
}

async fn local_scaling(
    cluster: &Cluster,
    worker_addr: std::net::SocketAddr,
) -> anyhow::Result<Scaling> {
    let program = std::env::current_exe()
        .context("cannot find the swarmer executable to start local workers")?;
    let local = &cluster.local;
    let mut config = LocalConfig::new(program, local.host.clone(), worker_addr.port());
    config.cluster_token = local.cluster_token.clone();
    config.heartbeat_interval = local.heartbeat_interval;
    config.grace = local.grace;
    config.extra_args = local.extra_args.clone();
    let local = Arc::new(LocalScaler::new(config));
    if let Some(n) = cluster.workers {
        local
            .scale(n)
            .await
            .map_err(|e| usage(format!("--workers {n}: {e}")))?;
        tracing::info!("started {n} local workers");
    }
    Ok(Scaling {
        scaler: Some(local.clone()),
        local: Some(local),
        autoscale: None,
    })
}
