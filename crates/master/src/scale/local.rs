//! The local scaler: starts and stops `swarmer --worker` processes on this
//! machine that join this master, so the rescale action works on a laptop.
//!
//! Children are numbered (`local-1`, `local-2`, …) and never renumbered, so
//! a worker that is still leaving cannot clash with a new one. Scaling down
//! sends SIGTERM to the newest children, which leave gracefully after a
//! final report; one that has not left after the grace period is killed.
//! The owner calls [`LocalScaler::stop_all`] when the master exits; as a
//! last resort every child is killed when its handle is dropped, and a
//! master killed outright is outlived by no child: each is told the
//! master's pid ([`PARENT_PID_ENV`]) and leaves when that process dies.
//! A child's output is copied line by line to the master's stderr behind
//! `[worker N] `, so interleaved lines still say whose they are.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::process::{Child, Command};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;

use super::{BoxFuture, ScaleError, ScaleStatus, Scaler};

/// The environment variable that tells a child which process started it,
/// so it can die with it (the worker role reads it).
pub const PARENT_PID_ENV: &str = "SWARMER_PARENT_PID";

/// How to start a worker process.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// The `swarmer` executable (the master's own, normally).
    pub program: PathBuf,
    pub master_host: String,
    pub master_port: u16,
    /// Passed in the environment, not on the command line, where any local
    /// user could read it from the process list.
    pub cluster_token: Option<String>,
    pub heartbeat_interval: Duration,
    /// More flags for every worker (e.g. `--cores 1`, `--loglevel warn`).
    pub extra_args: Vec<String>,
    /// How long a worker told to leave may take before it is killed.
    pub grace: Duration,
    /// The prefix of worker ids: `local` gives `local-1`, `local-2`, ….
    pub id_prefix: String,
}

impl LocalConfig {
    pub fn new(
        program: impl Into<PathBuf>,
        master_host: impl Into<String>,
        master_port: u16,
    ) -> Self {
        LocalConfig {
            program: program.into(),
            master_host: master_host.into(),
            master_port,
            cluster_token: None,
            heartbeat_interval: Duration::from_secs(1),
            extra_args: Vec::new(),
            grace: Duration::from_secs(15),
            id_prefix: "local".into(),
        }
    }

    fn command(&self, id: &str) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.arg("--worker")
            .args(["--master-host", &self.master_host])
            .args(["--master-port", &self.master_port.to_string()])
            .args(["--worker-id", id])
            .arg(format!(
                "--heartbeat-interval={}ms",
                self.heartbeat_interval.as_millis()
            ))
            .args(&self.extra_args);
        // The master's own settings (SWARMER_MASTER, SWARMER_SCALER, a
        // swarmer.toml with `master = true`) would turn the child into
        // something other than a plain worker: it gets only its flags.
        for (key, _) in std::env::vars_os() {
            if key
                .to_str()
                .is_some_and(|k| k.starts_with("SWARMER_") && k != "SWARMER_LOG")
            {
                cmd.env_remove(key);
            }
        }
        cmd.env("SWARMER_CONFIG", "/dev/null");
        // A master killed with SIGKILL cannot stop its children: they stop
        // themselves when this process is gone.
        cmd.env(PARENT_PID_ENV, std::process::id().to_string());
        if let Some(token) = &self.cluster_token {
            cmd.env("SWARMER_CLUSTER_TOKEN", token);
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        cmd
    }
}

/// Copies a child's stdout and stderr to this process's stderr, each line
/// behind `prefix`. The copies end when the child closes its pipes.
fn relay_output(child: &mut Child, prefix: String) {
    if let Some(out) = child.stdout.take() {
        tokio::spawn(relay_lines(out, prefix.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(relay_lines(err, prefix));
    }
}

async fn relay_lines(pipe: impl tokio::io::AsyncRead + Unpin, prefix: String) {
    use tokio::io::AsyncBufReadExt;
    // Split on bytes, not UTF-8 lines: a line that is not UTF-8 must not
    // end the copy, or the child would block on a full pipe.
    let mut lines = tokio::io::BufReader::new(pipe).split(b'\n');
    while let Ok(Some(line)) = lines.next_segment().await {
        eprintln!("{prefix}{}", String::from_utf8_lossy(&line));
    }
}

struct LocalChild {
    id: String,
    child: Child,
}

#[derive(Default)]
struct Children {
    /// Oldest first, so the newest are at the end.
    running: Vec<LocalChild>,
    /// Tasks that wait for SIGTERMed children to exit (or kill them).
    leaving: Vec<JoinHandle<()>>,
    started: u64,
    desired: u32,
}

pub struct LocalScaler {
    config: LocalConfig,
    children: Mutex<Children>,
}

impl LocalScaler {
    pub fn new(config: LocalConfig) -> Self {
        LocalScaler {
            config,
            children: Mutex::new(Children::default()),
        }
    }

    pub fn config(&self) -> &LocalConfig {
        &self.config
    }

    /// The ids of the children that are running, oldest first.
    pub async fn worker_ids(&self) -> Vec<String> {
        let mut children = self.children.lock().await;
        reap(&mut children.running);
        children.running.iter().map(|c| c.id.clone()).collect()
    }

    /// Tells every child to leave and waits until all have exited (killing
    /// those that outlast the grace period).
    pub async fn stop_all(&self) {
        let mut children = self.children.lock().await;
        children.desired = 0;
        let running = std::mem::take(&mut children.running);
        for child in running {
            let task = self.dismiss(child);
            children.leaving.push(task);
        }
        for task in std::mem::take(&mut children.leaving) {
            let _ = task.await;
        }
    }

    async fn set_count(&self, workers: u32) -> Result<(), ScaleError> {
        let mut children = self.children.lock().await;
        reap(&mut children.running);
        children.leaving.retain(|t| !t.is_finished());
        children.desired = workers;
        let target = workers as usize;
        let before = children.running.len();
        while children.running.len() > target {
            let child = children
                .running
                .pop()
                .expect("more children than the target");
            let task = self.dismiss(child);
            children.leaving.push(task);
        }
        while children.running.len() < target {
            children.started += 1;
            let id = format!("{}-{}", self.config.id_prefix, children.started);
            let mut child = self.config.command(&id).spawn().map_err(|e| {
                ScaleError::Other(format!(
                    "cannot start a worker process ({}): {e}",
                    self.config.program.display()
                ))
            })?;
            tracing::debug!("started local worker {id} (pid {:?})", child.id());
            relay_output(&mut child, format!("[worker {}] ", children.started));
            children.running.push(LocalChild { id, child });
        }
        tracing::info!("local workers: {before} -> {workers}");
        Ok(())
    }

    /// SIGTERM now, SIGKILL after the grace period; the task reaps it.
    fn dismiss(&self, mut local: LocalChild) -> JoinHandle<()> {
        if let Some(pid) = local.child.id() {
            // ESRCH only means it already exited; the wait below reaps it.
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
        let grace = self.config.grace;
        tokio::spawn(async move {
            match tokio::time::timeout(grace, local.child.wait()).await {
                Ok(status) => tracing::debug!("local worker {} left: {status:?}", local.id),
                Err(_) => {
                    tracing::warn!(
                        "local worker {} did not leave within {grace:?}; killing it",
                        local.id
                    );
                    let _ = local.child.kill().await;
                }
            }
        })
    }

    async fn read_status(&self) -> Result<ScaleStatus, ScaleError> {
        let mut children = self.children.lock().await;
        reap(&mut children.running);
        let alive = children.running.len() as u32;
        let warning = (alive < children.desired).then(|| {
            format!(
                "{} of {} local worker processes have exited; scale again to replace them",
                children.desired - alive,
                children.desired
            )
        });
        Ok(ScaleStatus {
            desired: children.desired,
            ready: Some(alive),
            warning,
        })
    }
}

/// Drops children that have exited (reaping them), saying why they did:
/// nobody told them to leave.
fn reap(running: &mut Vec<LocalChild>) {
    running.retain_mut(|c| match c.child.try_wait() {
        Ok(None) => true,
        Ok(Some(status)) => {
            tracing::warn!("local worker {} exited on its own: {status}", c.id);
            false
        }
        Err(e) => {
            tracing::warn!("cannot check local worker {}: {e}", c.id);
            true
        }
    });
}

impl Scaler for LocalScaler {
    fn name(&self) -> &'static str {
        "local"
    }

    fn status(&self) -> BoxFuture<'_, Result<ScaleStatus, ScaleError>> {
        Box::pin(self.read_status())
    }

    fn scale(&self, workers: u32) -> BoxFuture<'_, Result<(), ScaleError>> {
        Box::pin(self.set_count(workers))
    }
}
