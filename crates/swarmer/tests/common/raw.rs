//! Either end of a connection driven by hand, for what a real process
//! cannot be made to do on purpose: a worker that speaks another protocol
//! version, sends junk or reports whatever status a test needs
//! ([`RawClient`]); a master that is an impostor ([`RawMaster`]). Blocking
//! std I/O, with the protocol crate's own codec for the frames.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use protocol::{CodecError, Hello, MasterMessage, MessageCodec, PROTOCOL_VERSION, WorkerMessage};
use tokio_util::codec::{Decoder, Encoder};

/// The next message decoded from `stream`, or Err("closed") when the peer
/// hangs up, or Err("timeout"). Every byte read is appended to `seen`.
fn read_message<D>(
    stream: &mut TcpStream,
    codec: &mut D,
    buf: &mut BytesMut,
    seen: &mut Vec<u8>,
    timeout: Duration,
) -> Result<D::Item, String>
where
    D: Decoder<Error = CodecError>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(msg) = codec.decode(buf).map_err(|e| e.to_string())? {
            return Ok(msg);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err("timeout".into());
        }
        stream.set_read_timeout(Some(left)).expect("read timeout");
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) => return Err("closed".into()),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                seen.extend_from_slice(&chunk[..n]);
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Err("timeout".into());
            }
            Err(_) => return Err("closed".into()),
        }
    }
}

/// The master's end of one worker connection, played by a test: what a
/// worker says to whatever listens where it expects its master.
pub struct RawMaster {
    stream: TcpStream,
    codec: MessageCodec<WorkerMessage, MasterMessage>,
    buf: BytesMut,
    /// Every byte the worker sent so far, to look for secrets in.
    pub seen: Vec<u8>,
}

impl RawMaster {
    /// Waits (up to `timeout`) for a worker to connect to `listener`.
    pub fn accept(listener: &TcpListener, timeout: Duration) -> RawMaster {
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let deadline = Instant::now() + timeout;
        let stream = loop {
            match listener.accept() {
                Ok((stream, _)) => break stream,
                Err(e) if e.kind() == ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("no worker connected within {timeout:?}: {e}"),
            }
        };
        stream.set_nonblocking(false).expect("blocking stream");
        RawMaster {
            stream,
            codec: MessageCodec::default(),
            buf: BytesMut::new(),
            seen: Vec::new(),
        }
    }

    pub fn send(&mut self, msg: MasterMessage) {
        let mut out = BytesMut::new();
        self.codec.encode(msg, &mut out).expect("encode");
        let _ = self.stream.write_all(&out);
    }

    /// The next message, or Err("closed") / Err("timeout").
    pub fn recv(&mut self, timeout: Duration) -> Result<WorkerMessage, String> {
        read_message(
            &mut self.stream,
            &mut self.codec,
            &mut self.buf,
            &mut self.seen,
            timeout,
        )
    }
}

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
        read_message(
            &mut self.stream,
            &mut self.codec,
            &mut self.buf,
            &mut Vec::new(),
            timeout,
        )
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
