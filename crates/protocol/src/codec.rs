//! Length-delimited msgpack frames, with a maximum size.
//!
//! tokio-util's length codec does the framing (and refuses oversized frames
//! before reading them); rmp-serde turns messages into bytes. A frame that
//! fails either step is an error for that one connection only.

use std::marker::PhantomData;

use bytes::{Bytes, BytesMut};
use serde::{Serialize, de::DeserializeOwned};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{Decoder, Encoder, Framed, LengthDelimitedCodec};

use crate::MAX_FRAME_BYTES;

#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    #[error("connection error: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed message: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
    #[error("cannot encode message: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
}

/// Decodes `In` and encodes `Out`: the master uses
/// `MessageCodec<WorkerMessage, MasterMessage>`, a worker the reverse.
pub struct MessageCodec<In, Out> {
    frames: LengthDelimitedCodec,
    _types: PhantomData<fn(Out) -> In>,
}

impl<In, Out> Default for MessageCodec<In, Out> {
    fn default() -> Self {
        Self {
            frames: LengthDelimitedCodec::builder()
                .max_frame_length(MAX_FRAME_BYTES)
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
            Some(frame) => Ok(Some(rmp_serde::from_slice(&frame)?)),
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
