//! Everything the master and its workers say to each other, and nothing else
//! that knows bytes.
//!
//! Each direction is one closed enum ([`WorkerMessage`], [`MasterMessage`]), so
//! a new message is a compile error everywhere it is not handled. Frames are
//! length-delimited msgpack ([`MessageCodec`]) with a hard size limit; the
//! in-process worker of standalone mode uses [`memory::pair`] and skips bytes
//! altogether, but speaks the same messages.

#![forbid(unsafe_code)]

mod codec;
mod handshake;
pub mod memory;
mod messages;

pub use codec::{CodecError, MessageCodec, framed};
pub use handshake::{HandshakeError, check_hello, tokens_match};
pub use messages::*;

/// Bumped whenever a message changes shape; both sides must agree exactly.
pub const PROTOCOL_VERSION: u32 = 2;

/// The swarmer release, sent in the handshake so refusals can name both.
pub const SWARMER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The largest frame either side accepts. A report of 500 entries with full
/// histograms stays far below it; anything bigger is an attack or a bug.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;
