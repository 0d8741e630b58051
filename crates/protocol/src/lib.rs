//! Everything the master and its workers say to each other, and nothing else
//! that knows bytes.
//!
//! Each direction is one closed enum ([`WorkerMessage`], [`MasterMessage`]), so
//! a new message is a compile error everywhere it is not handled. Frames are
//! length-delimited msgpack ([`MessageCodec`]) with a hard size limit, and a
//! much smaller one until the peer has passed the handshake; the in-process
//! worker of standalone mode uses [`memory::pair`] and skips bytes
//! altogether, but speaks the same messages.

#![forbid(unsafe_code)]

mod auth;
mod bundle;
mod codec;
mod handshake;
pub mod memory;
mod messages;
mod text;

pub use auth::{Exchange, NONCE_BYTES, new_nonce};
pub use bundle::{BundleFile, ScriptBundle, ScriptHash, ScriptRef};
pub use codec::{CodecError, FrameLimit, MessageCodec, decode_message, framed, guarded};
pub use handshake::{HandshakeError, check_hello, valid_worker_id};
pub use messages::*;
pub use text::printable;

/// Bumped whenever a message changes shape; both sides must agree exactly.
/// 3: the cluster token is proven by HMAC both ways and never sent.
/// 4: histograms travel as varint bucket-index gaps and counts; a plan
/// names its script by hash and carries the text only when the worker
/// may not hold it (`ScriptRef`, `WorkerMessage::ScriptWanted`).
/// 5: a bundle carries the script's files, their bytes as binary.
/// 6: messages are positional msgpack arrays, not maps keyed by field name
/// (a struct's field order is now part of the protocol; new fields go last).
pub const PROTOCOL_VERSION: u32 = 6;

/// The swarmer release, sent in the handshake so refusals can name both.
pub const SWARMER_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The largest frame either side accepts. A report of 500 entries with full
/// histograms stays far below it; anything bigger is an attack or a bug.
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;

/// The largest frame the master reads from a peer that has not passed the
/// handshake. A hello and a proof take a few hundred bytes; a stranger must
/// not make the master reserve megabytes per connection.
pub const MAX_HANDSHAKE_FRAME_BYTES: usize = 4 * 1024;

/// The longest worker id accepted, in characters (all ASCII).
pub const MAX_WORKER_ID_CHARS: usize = 128;
