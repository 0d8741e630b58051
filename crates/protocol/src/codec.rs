//! Length-delimited msgpack frames, with a maximum size.
//!
//! tokio-util's length codec does the framing (and refuses oversized frames
//! before reading them); rmp-serde turns messages into bytes. A frame that
//! fails either step is an error for that one connection only. The master
//! reads strangers through a [`guarded`] codec, limited to a few KiB until
//! the handshake is passed ([`FrameLimit::open_frames`]).
//!
//! A frame that is not a message of this version but still looks like a
//! hello (the one message whose shape never changes) becomes
//! [`CodecError::OtherVersion`], so the master can refuse a worker of
//! another version by name instead of calling its hello malformed.

use std::marker::PhantomData;

use bytes::{Bytes, BytesMut};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{Decoder, Encoder, Framed, LengthDelimitedCodec};

use crate::memory::MemoryEnd;
use crate::{
    MAX_FRAME_BYTES, MAX_HANDSHAKE_FRAME_BYTES, MAX_WORKER_ID_CHARS, PROTOCOL_VERSION, printable,
};

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed message: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
    #[error("cannot encode message: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    #[error(
        "worker {worker_id:?} (swarmer {swarmer_version}) speaks protocol {protocol_version}, \
         this side speaks protocol {PROTOCOL_VERSION}"
    )]
    OtherVersion {
        protocol_version: u32,
        swarmer_version: String,
        worker_id: String,
    },
}

/// The least any version's hello is sure to hold.
#[derive(Deserialize)]
enum HelloProbe {
    Hello(ProbeFields),
}

#[derive(Deserialize)]
struct ProbeFields {
    protocol_version: u32,
    #[serde(default)]
    swarmer_version: String,
    #[serde(default)]
    worker_id: String,
}

/// Turns a frame that failed to decode into the most useful error. The
/// peer's strings end up in logs and refusals: they are made printable and
/// short first.
fn undecodable(frame: &[u8], error: rmp_serde::decode::Error) -> CodecError {
    match rmp_serde::from_slice::<HelloProbe>(frame) {
        Ok(HelloProbe::Hello(h)) if h.protocol_version != PROTOCOL_VERSION => {
            CodecError::OtherVersion {
                protocol_version: h.protocol_version,
                swarmer_version: printable(&h.swarmer_version, 64),
                worker_id: printable(&h.worker_id, MAX_WORKER_ID_CHARS),
            }
        }
        _ => CodecError::Decode(error),
    }
}

/// Decodes `In` and encodes `Out`: the master uses
/// `MessageCodec<WorkerMessage, MasterMessage>`, a worker the reverse.
pub struct MessageCodec<In, Out> {
    frames: LengthDelimitedCodec,
    _types: PhantomData<fn(Out) -> In>,
}

impl<In, Out> Default for MessageCodec<In, Out> {
    /// Frames up to [`MAX_FRAME_BYTES`] each way.
    fn default() -> Self {
        Self::with_limit(MAX_FRAME_BYTES)
    }
}

impl<In, Out> MessageCodec<In, Out> {
    /// Reads frames of at most [`MAX_HANDSHAKE_FRAME_BYTES`] until
    /// [`MessageCodec::open`]: for a peer that has not proven anything yet.
    pub fn guarded() -> Self {
        Self::with_limit(MAX_HANDSHAKE_FRAME_BYTES)
    }

    /// Lifts the read limit to [`MAX_FRAME_BYTES`].
    pub fn open(&mut self) {
        self.frames.set_max_frame_length(MAX_FRAME_BYTES);
    }

    /// The largest frame this codec reads now.
    pub fn read_limit(&self) -> usize {
        self.frames.max_frame_length()
    }

    fn with_limit(max: usize) -> Self {
        Self {
            frames: LengthDelimitedCodec::builder()
                .max_frame_length(max)
                .new_codec(),
            _types: PhantomData,
        }
    }
}

impl<In: DeserializeOwned, Out> Decoder for MessageCodec<In, Out> {
    type Item = In;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<In>, CodecError> {
        match self.frames.decode(src)? {
            Some(frame) => match rmp_serde::from_slice(&frame) {
                Ok(msg) => Ok(Some(msg)),
                Err(e) => Err(undecodable(&frame, e)),
            },
            None => Ok(None),
        }
    }
}

impl<In, Out: Serialize> Encoder<Out> for MessageCodec<In, Out> {
    type Error = CodecError;

    fn encode(&mut self, item: Out, dst: &mut BytesMut) -> Result<(), CodecError> {
        let bytes = rmp_serde::to_vec_named(&item)?;
        if bytes.len() > MAX_FRAME_BYTES {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("message of {} bytes exceeds the frame limit", bytes.len()),
            )
            .into());
        }
        self.frames.encode(Bytes::from(bytes), dst)?;
        Ok(())
    }
}

/// Wraps a byte stream (TCP, or a test's duplex pipe) in the message codec.
pub fn framed<T, In, Out>(io: T) -> Framed<T, MessageCodec<In, Out>>
where
    T: AsyncRead + AsyncWrite,
{
    Framed::new(io, MessageCodec::default())
}

/// Like [`framed`], reading only small frames until
/// [`FrameLimit::open_frames`]: how the master takes a new connection.
pub fn guarded<T, In, Out>(io: T) -> Framed<T, MessageCodec<In, Out>>
where
    T: AsyncRead + AsyncWrite,
{
    Framed::new(io, MessageCodec::guarded())
}

/// A link whose read limit widens once the peer has passed the handshake.
pub trait FrameLimit {
    /// Lifts the handshake's small frame limit to [`MAX_FRAME_BYTES`].
    fn open_frames(&mut self);
}

impl<T, In, Out> FrameLimit for Framed<T, MessageCodec<In, Out>> {
    fn open_frames(&mut self) {
        self.codec_mut().open();
    }
}

/// In-process links carry no bytes, so there is nothing to limit.
impl<In, Out> FrameLimit for MemoryEnd<In, Out> {
    fn open_frames(&mut self) {}
}
