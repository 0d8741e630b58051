//! A worker: runs users on every core of this machine and reports to a
//! master.
//!
//! The [`Engine`] owns one thread per core, each with a current-thread tokio
//! runtime and its own Lua state, and ramps users up and down at the spawn
//! rate. The [`session`] speaks the protocol with a master over any transport
//! (a TCP connection, or the in-memory link of standalone mode), and
//! [`client`] keeps a remote worker connected through master restarts.

#![forbid(unsafe_code)]

mod arrival_pool;
pub mod client;
mod core;
mod engine;
mod indexes;
mod leases;
mod plan;
pub mod session;
mod sysstat;

pub use engine::{Collected, Engine, EngineConfig, EngineError};
pub use plan::split_across_cores;
pub use session::{SessionConfig, SessionEnd};
