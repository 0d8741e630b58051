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
use serde::de::{DeserializeOwned, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
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

/// A hello's first three fields, in either framing: by name (protocol 5
/// and before) or by position (protocol 6 on), where a later version's
/// extra fields must be skipped rather than refused.
#[derive(Default)]
struct ProbeFields {
    protocol_version: u32,
    swarmer_version: String,
    worker_id: String,
}

impl<'de> Deserialize<'de> for ProbeFields {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ProbeVisitor)
    }
}

struct ProbeVisitor;

impl<'de> Visitor<'de> for ProbeVisitor {
    type Value = ProbeFields;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a hello")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ProbeFields, A::Error> {
        let protocol_version = seq
            .next_element()?
            .ok_or_else(|| serde::de::Error::missing_field("protocol_version"))?;
        let swarmer_version = seq.next_element()?.unwrap_or_default();
        let worker_id = seq.next_element()?.unwrap_or_default();
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(ProbeFields {
            protocol_version,
            swarmer_version,
            worker_id,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ProbeFields, A::Error> {
        let mut fields = ProbeFields::default();
        let mut version = None;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "protocol_version" => version = Some(map.next_value()?),
                "swarmer_version" => fields.swarmer_version = map.next_value()?,
                "worker_id" => fields.worker_id = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        fields.protocol_version =
            version.ok_or_else(|| serde::de::Error::missing_field("protocol_version"))?;
        Ok(fields)
    }
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

/// The message one frame's body (its length prefix taken off) holds: for a
/// reader that split the frames itself, as the master's links do.
pub fn decode_message<In: DeserializeOwned>(body: &[u8]) -> Result<In, CodecError> {
    rmp_serde::from_slice(body).map_err(|e| undecodable(body, e))
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
            Some(frame) => decode_message(&frame).map(Some),
            None => Ok(None),
        }
    }
}

impl<In, Out: Serialize> Encoder<Out> for MessageCodec<In, Out> {
    type Error = CodecError;

    fn encode(&mut self, item: Out, dst: &mut BytesMut) -> Result<(), CodecError> {
        // Positional: a report's field names cost more to decode than its
        // numbers (see `PROTOCOL_VERSION` 6).
        let bytes = rmp_serde::to_vec(&item)?;
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
