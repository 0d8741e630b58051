//! A worker started by a master's local scaler dies with that master.
//!
//! The scaler names itself in [`PARENT_PID_ENV`]. Killed with SIGKILL, a
//! master cannot stop its children; left alone they would retry forever
//! and join whatever process later listens on its port. So the worker asks
//! the kernel for SIGTERM when its parent dies (Linux's parent-death
//! signal; SIGTERM is a graceful leave), then checks its parent is still
//! that master, since it may have died before the request. A once-a-second
//! check of the parent pid backs this up (and is all other systems get).
//! A worker started by hand has no such variable and none of this.

use std::time::Duration;

use anyhow::Context;
use master::scale::local::PARENT_PID_ENV;
use nix::unistd::{Pid, getppid};
use tokio_util::sync::CancellationToken;

use crate::config::usage;

/// Ties this worker's life to the master named in [`PARENT_PID_ENV`], if
/// any: `shutdown` fires when it dies. An error when it is already gone.
pub fn follow(shutdown: &CancellationToken) -> anyhow::Result<()> {
    let Some(value) = std::env::var_os(PARENT_PID_ENV) else {
        return Ok(());
    };
    let parent = value
        .to_str()
        .and_then(|v| v.parse::<i32>().ok())
        .filter(|&pid| pid > 1)
        .map(Pid::from_raw)
        .ok_or_else(|| {
            usage(format!(
                "{PARENT_PID_ENV} must be a process id, got {value:?}"
            ))
        })?;
    #[cfg(target_os = "linux")]
    nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGTERM)
        .context("cannot ask to be told when the master exits")?;
    if getppid() != parent {
        return Err(usage(format!(
            "the master that started this worker (pid {parent}) is gone"
        ))
        .into());
    }
    let shutdown = shutdown.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.cancelled() => return,
            }
            if getppid() != parent {
                tracing::warn!(
                    "the master that started this worker (pid {parent}) is gone; leaving"
                );
                shutdown.cancel();
                return;
            }
        }
    });
    Ok(())
}
