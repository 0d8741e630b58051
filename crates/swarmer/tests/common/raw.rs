//! A worker connection driven by hand, for what a real worker cannot be
//! made to do on purpose: speak another protocol version, send junk, or
//! report whatever status a test needs. Blocking std I/O, with the protocol
//! crate's own codec for the frames.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use protocol::{Hello, MasterMessage, MessageCodec, PROTOCOL_VERSION, WorkerMessage};
use tokio_util::codec::{Decoder, Encoder};

/// A worker connection driven by hand, speaking the protocol (or not).
pub struct RawClient {
    stream: TcpStream,
    codec: MessageCodec<MasterMessage, WorkerMessage>,
    buf: BytesMut,
}

impl RawClient {
    pub fn connect(port: u16) -> RawClient {
        let stream = TcpStream::connect(("127.0.0.1", port)).expect("connect to the master port");
        RawClient {
            stream,
            codec: MessageCodec::default(),
            buf: BytesMut::new(),
        }
    }

    pub fn send(&mut self, msg: WorkerMessage) {
        let mut out = BytesMut::new();
        self.codec.encode(msg, &mut out).expect("encode");
        self.stream.write_all(&out).expect("send a message");
    }

    /// Writes raw bytes; the master may already have hung up.
    pub fn send_bytes(&mut self, bytes: &[u8]) {
        let _ = self.stream.write_all(bytes);
    }

    /// The next message, or Err("closed") when the master hangs up, or
    /// Err("timeout").
    pub fn recv(&mut self, timeout: Duration) -> Result<MasterMessage, String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(msg) = self
                .codec
                .decode(&mut self.buf)
                .map_err(|e| e.to_string())?
            {
                return Ok(msg);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err("timeout".into());
            }
            self.stream
                .set_read_timeout(Some(left))
                .expect("read timeout");
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return Err("closed".into()),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return Err("timeout".into());
                }
                Err(_) => return Err("closed".into()),
            }
        }
    }

    /// True once the master has closed this connection.
    pub fn closed_within(&mut self, timeout: Duration) -> bool {
        loop {
            match self.recv(timeout) {
                Err(e) if e == "timeout" => return false,
                Err(_) => return true,
                Ok(_) => continue,
            }
        }
    }
}

/// A hello of this protocol version from `id`, with one core.
pub fn hello(id: &str) -> WorkerMessage {
    WorkerMessage::Hello(Hello {
        protocol_version: PROTOCOL_VERSION,
        swarmer_version: protocol::SWARMER_VERSION.into(),
        worker_id: id.into(),
        incarnation: 1,
        cores: 1,
        token: None,
        nonce: None,
    })
}
