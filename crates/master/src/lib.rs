//! The master: membership, dispatch, the run state machine, and (in
//! `web`) the UI and API.
//!
//! [`start`] creates the coordinator task that owns all state and returns
//! a [`MasterHandle`] to control it; [`listener::run`] accepts remote
//! workers and [`MasterHandle::attach`] links an in-process one, through
//! the same connection code.

// One `getsockopt` (`wire::KernelDrops`) has no safe wrapper; it alone
// is allowed.
#![deny(unsafe_code)]

pub mod autoscale;
mod connection;
mod coordinator;
pub mod current_script;
mod dispatch;
mod error;
pub mod ext;
mod handle;
mod inbox;
mod indexes;
pub mod listener;
mod membership;
pub mod profile;
pub mod recorder;
pub mod script_files;
mod snapshot;
pub mod upload;

pub use coordinator::{MasterConfig, RunRequest, now_ms};
pub use dispatch::{split_across_workers, users_per_type};
pub use error::MasterError;
pub use handle::{MasterHandle, start, start_slowed};
pub use membership::WorkerView;
pub use snapshot::views::{PhasesJson, phases_json};
pub use snapshot::{HistoryPoint, ProfileView, RunState, Snapshot};
pub use wire::{Heard, Incoming};
pub mod scale;
pub mod validate;
pub mod web;
mod wire;
