//! The engine: every core of this machine running users, steered as one.
//!
//! It owns one [`crate::core`] thread per core and fans the master's plan
//! out to them: users are split evenly across cores and each core ramps at
//! its share of the spawn rate, so the whole worker ramps at the plan's rate.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use script::{RuntimeConfig, ScriptSource};
use stats::RequestStats;
use tokio::sync::{mpsc, oneshot};

use crate::core::{self, CoreCommand};
use crate::plan::split_across_cores;

#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Threads to run users on; 0 means one per available core.
    pub cores: usize,
    /// Names this worker in exception "nodes".
    pub node_id: String,
    pub insecure_tls: bool,
    /// Where relative data-file paths in scripts resolve.
    pub base_dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("cannot start a core thread: {0}")]
    Thread(#[from] std::io::Error),
    #[error("{0}")]
    Script(String),
    #[error("a core thread has stopped unexpectedly")]
    CoreGone,
}

/// What the cores recorded since the last collection, and who runs now.
#[derive(Debug, Default)]
pub struct Collected {
    pub stats: RequestStats,
    pub users_by_type: BTreeMap<String, u32>,
}

impl Collected {
    pub fn user_count(&self) -> u32 {
        self.users_by_type.values().sum()
    }
}

pub struct Engine {
    cores: Vec<mpsc::UnboundedSender<CoreCommand>>,
    config: EngineConfig,
    loaded: Option<ScriptSource>,
}

impl Engine {
    pub fn start(config: EngineConfig) -> Result<Self, EngineError> {
        let count = match config.cores {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let cores = (0..count).map(core::spawn).collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            cores,
            config,
            loaded: None,
        })
    }

    pub fn core_count(&self) -> usize {
        self.cores.len()
    }

    pub fn loaded_script(&self) -> Option<&ScriptSource> {
        self.loaded.as_ref()
    }

    /// Loads `script` on every core (stopping any users first). The first
    /// core's error is returned as is: it names the file and line.
    pub async fn load(
        &mut self,
        script: &ScriptSource,
        host: Option<String>,
        tags: Vec<String>,
        exclude_tags: Vec<String>,
    ) -> Result<(), EngineError> {
        let config = RuntimeConfig {
            host,
            insecure_tls: self.config.insecure_tls,
            tags,
            exclude_tags,
            node_id: self.config.node_id.clone(),
            base_dir: self.config.base_dir.clone(),
        };
        let mut replies = Vec::new();
        for core in &self.cores {
            let (reply, rx) = oneshot::channel();
            let cmd = CoreCommand::Load {
                script: script.clone(),
                config: config.clone(),
                reply,
            };
            core.send(cmd).map_err(|_| EngineError::CoreGone)?;
            replies.push(rx);
        }
        self.loaded = None;
        for rx in replies {
            rx.await
                .map_err(|_| EngineError::CoreGone)?
                .map_err(EngineError::Script)?;
        }
        self.loaded = Some(script.clone());
        Ok(())
    }

    /// Moves towards `users` (per type, for this whole worker) at
    /// `spawn_rate` users per second in total.
    pub fn apply(&self, users: &BTreeMap<String, u32>, spawn_rate: f64) -> Result<(), EngineError> {
        let per_core = split_across_cores(users, self.cores.len());
        let rate = spawn_rate / self.cores.len() as f64;
        for (core, target) in self.cores.iter().zip(per_core) {
            let cmd = CoreCommand::SetUsers {
                target,
                rate_per_sec: rate,
            };
            core.send(cmd).map_err(|_| EngineError::CoreGone)?;
        }
        Ok(())
    }

    /// Stops every user on every core, waiting at most `timeout`.
    pub async fn stop(&self, timeout: Duration) -> Result<(), EngineError> {
        let mut replies = Vec::new();
        for core in &self.cores {
            let (reply, rx) = oneshot::channel();
            core.send(CoreCommand::StopAll { timeout, reply })
                .map_err(|_| EngineError::CoreGone)?;
            replies.push(rx);
        }
        for rx in replies {
            rx.await.map_err(|_| EngineError::CoreGone)?;
        }
        Ok(())
    }

    /// Takes what every core recorded since the last call, merged.
    pub async fn collect(&self) -> Result<Collected, EngineError> {
        let mut replies = Vec::new();
        for core in &self.cores {
            let (reply, rx) = oneshot::channel();
            core.send(CoreCommand::Collect { reply })
                .map_err(|_| EngineError::CoreGone)?;
            replies.push(rx);
        }
        let mut out = Collected::default();
        for rx in replies {
            let (stats, users) = rx.await.map_err(|_| EngineError::CoreGone)?;
            out.stats.merge(&stats);
            for (name, n) in users {
                *out.users_by_type.entry(name).or_default() += n;
            }
        }
        Ok(out)
    }
}
