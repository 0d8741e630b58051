//! Why the master refused a request, in words a user can act on.

use crate::validate::RunError;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MasterError {
    #[error("no workers are connected")]
    NoWorkers,
    /// The request breaks a rule of [`crate::validate`]; names the field.
    #[error("{field}: {0}", field = .0.field().json_name())]
    Invalid(#[from] RunError),
    #[error("no run is active")]
    NotRunning,
    #[error("the script does not load: {0}")]
    Script(String),
    /// The script's shape function gave no usable first target.
    #[error("shape: the script's shape function: {0}")]
    Shape(String),
    /// The script cannot change while a run is going.
    #[error("a run is active: stop it before changing the script")]
    RunActive,
    #[error("the master has shut down")]
    Gone,
}
