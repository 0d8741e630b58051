//! Scalers: what changes the number of workers. The web API and UI talk to
//! a `dyn Scaler`; the backends are Kubernetes (the worker Deployment's
//! scale subresource) and local processes.

pub mod kubernetes;
pub mod local;

pub use kubernetes::KubernetesScaler;
pub use local::{LocalConfig, LocalScaler};

use std::future::Future;
use std::pin::Pin;

use serde::Serialize;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What the scaler believes, to show beside the connected count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ScaleStatus {
    /// Workers asked for (the Deployment's spec.replicas, or local children).
    pub desired: u32,
    /// Workers the backend considers ready (pods ready), when it knows.
    pub ready: Option<u32>,
    /// Something the user should know, e.g. an HPA that also scales.
    pub warning: Option<String>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScaleError {
    /// Names the missing RBAC rule.
    #[error("forbidden: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("the cluster API is unreachable: {0}")]
    Unreachable(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Other(String),
}

pub trait Scaler: Send + Sync {
    /// "kubernetes" or "local", as the API reports it.
    fn name(&self) -> &'static str;
    fn status(&self) -> BoxFuture<'_, Result<ScaleStatus, ScaleError>>;
    fn scale(&self, workers: u32) -> BoxFuture<'_, Result<(), ScaleError>>;
}
