//! Why the master refused a request, in words a user can act on.

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MasterError {
    #[error("no workers are connected")]
    NoWorkers,
    #[error("unknown user type {name:?}; the script defines: {known}")]
    UnknownUserType { name: String, known: String },
    #[error("spawn_rate must be a positive number, got {0}")]
    BadSpawnRate(f64),
    #[error("no run is active")]
    NotRunning,
    #[error("the script does not load: {0}")]
    Script(String),
    #[error("the master has shut down")]
    Gone,
}
