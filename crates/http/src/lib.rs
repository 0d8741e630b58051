//! The load generator's HTTP client (HTTP/1.1 of its own, HTTP/2 through
//! the h2 crate), free of Lua: a [`Session`] is one
//! simulated user's connections, cookie jar and timeout timer; it sends one
//! [`Request`] at a time and hands back a [`Reply`]. The script crate binds
//! it to Lua (`self.http`); other protocol clients are meant to sit beside
//! it with the same shape, and dial with [`dial`] or [`dial_origin`] (the
//! latter through a proxy, chosen by [`ProxyChoice::pick`]) so they share
//! its TLS configuration, DNS overrides and proxy rules.
//!
//! Everything here is single-threaded (`Rc`, `RefCell`): a session lives
//! inside its user's future on one core.

#![forbid(unsafe_code)]

mod client;
mod conn;
mod deadline;
pub mod decode;
mod dial;
mod error;
mod h2conn;
pub mod origin;
mod pool;
pub mod proxy;
pub mod settings;
mod target;
pub mod timings;
mod tls;
pub mod version;
pub mod wire;

pub use client::{Reply, Request, Session};
pub use conn::Stream;
pub use dial::{dial, dial_origin};
pub use error::Error;
pub use origin::{Origin, Scheme, is_absolute};
pub use proxy::{Proxies, Proxy, ProxyChoice};
pub use settings::{HostOverride, Settings};
pub use target::encode_target;
pub use timings::Timings;
pub use tls::Tls;
pub use version::{HttpVersion, Proto};
pub use wire::{Fields, Message};
