//! How the master reads a worker's TCP link: whole frames first, decoded
//! later, so a connection can take a frame off the socket (and so know the
//! worker is alive) without yet paying for what it decodes into.
//!
//! A report of many entries is small on the wire and large once decoded
//! (dense histograms); a master that is behind must not hold thousands of
//! decoded reports. So a connection decodes a large frame only once it holds
//! a permit of the master-wide budget (see `connection`), and until then
//! keeps the frame's bytes. Small frames (heartbeats, stop notices) decode
//! at once. Framing and decoding are the protocol crate's: a frame's body
//! is decoded by [`protocol::decode_message`], as a worker's
//! [`MessageCodec`] decodes it.

use std::pin::Pin;
use std::task::{Context, Poll};

use futures::{Sink, Stream};
use protocol::{
    CodecError, FrameLimit, MAX_FRAME_BYTES, MAX_HANDSHAKE_FRAME_BYTES, MasterMessage,
    MessageCodec, WorkerMessage,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::bytes::BytesMut;
use tokio_util::codec::{Decoder, Encoder, Framed, LengthDelimitedCodec};

/// One message from a worker, decoded already or not yet.
pub trait Incoming: Send + 'static {
    /// Whether decoding it may cost much memory: a frame larger than a
    /// handshake's, not yet decoded.
    fn is_large(&self) -> bool;
    /// Its size on the wire (0 when it never was bytes).
    fn wire_bytes(&self) -> usize;
    fn decode(self) -> Result<WorkerMessage, CodecError>;
}

/// In-process links carry decoded messages: nothing left to pay for.
impl Incoming for WorkerMessage {
    fn is_large(&self) -> bool {
        false
    }

    fn wire_bytes(&self) -> usize {
        0
    }

    fn decode(self) -> Result<WorkerMessage, CodecError> {
        Ok(self)
    }
}

/// A frame's body as read, its length prefix taken off.
pub struct RawFrame(BytesMut);

impl Incoming for RawFrame {
    fn is_large(&self) -> bool {
        self.0.len() > MAX_HANDSHAKE_FRAME_BYTES
    }

    fn wire_bytes(&self) -> usize {
        self.0.len()
    }

    fn decode(self) -> Result<WorkerMessage, CodecError> {
        // The frame was limited when read; this only parses it.
        protocol::decode_message(&self.0)
    }
}

/// Splits frames off the socket without decoding them; encodes the
/// master's messages as the protocol does.
pub struct RawCodec {
    frames: LengthDelimitedCodec,
    out: MessageCodec<WorkerMessage, MasterMessage>,
}

impl RawCodec {
    /// Small frames only, until the peer passes the handshake.
    fn guarded() -> Self {
        RawCodec {
            frames: LengthDelimitedCodec::builder()
                .max_frame_length(MAX_HANDSHAKE_FRAME_BYTES)
                .new_codec(),
            out: MessageCodec::default(),
        }
    }
}

impl Decoder for RawCodec {
    type Item = RawFrame;
    type Error = CodecError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<RawFrame>, CodecError> {
        Ok(self.frames.decode(src)?.map(RawFrame))
    }
}

impl Encoder<MasterMessage> for RawCodec {
    type Error = CodecError;

    fn encode(&mut self, item: MasterMessage, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.out.encode(item, dst)
    }
}

/// A link that can tell when its last bytes came in, before they make a
/// whole frame: a large report arriving slowly is a worker talking.
pub trait Heard {
    /// [`crate::membership::mono_ms`] of the last bytes read, or of the
    /// last bytes the kernel dropped for want of room; None when the link
    /// does not know.
    fn heard_ms(&mut self) -> Option<u64>;
}

impl<T, C> Heard for Framed<T, C> {
    fn heard_ms(&mut self) -> Option<u64> {
        None
    }
}

impl<In, Out> Heard for protocol::memory::MemoryEnd<In, Out> {
    fn heard_ms(&mut self) -> Option<u64> {
        None
    }
}

/// A socket that counts the segments its kernel dropped because its
/// receive buffer was full. A dropped segment is bytes the worker sent:
/// it is alive, and the master is the one behind (a busy master leaves
/// its small buffers full, the worker's kernel backs off before it sends
/// again, and for seconds nothing comes in at all).
pub trait KernelDrops {
    /// The socket's drop count so far; None where there is no socket.
    fn kernel_drops(&self) -> Option<u32> {
        None
    }
}

impl KernelDrops for tokio::net::TcpStream {
    #[allow(unsafe_code)]
    fn kernel_drops(&self) -> Option<u32> {
        use nix::libc;
        use std::os::fd::AsRawFd;
        let mut info = [0u32; libc::SK_MEMINFO_DROPS as usize + 1];
        let mut len = std::mem::size_of_val(&info) as libc::socklen_t;
        // SAFETY: the fd is this live socket's, and `info` is writable for
        // `len` bytes, which the kernel does not exceed.
        let rc = unsafe {
            libc::getsockopt(
                self.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_MEMINFO,
                info.as_mut_ptr().cast(),
                &mut len,
            )
        };
        let drops = libc::SK_MEMINFO_DROPS as usize;
        (rc == 0 && len as usize > drops * 4).then(|| info[drops])
    }
}

impl KernelDrops for tokio::io::DuplexStream {}

/// A byte stream that notes when bytes last came in.
pub struct Stamped<T> {
    io: T,
    heard_ms: u64,
    /// The socket's drop count when last looked at.
    drops: u32,
}

impl<T: KernelDrops> Stamped<T> {
    /// When the worker was last heard, counting the bytes the kernel
    /// dropped since the last look as heard now.
    fn heard_ms(&mut self) -> u64 {
        if let Some(drops) = self.io.kernel_drops()
            && drops != self.drops
        {
            self.drops = drops;
            self.heard_ms = crate::membership::mono_ms();
        }
        self.heard_ms
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Stamped<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.heard_ms = crate::membership::mono_ms();
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Stamped<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// A worker's TCP link as the master reads it.
pub struct RawLink<T>(Framed<Stamped<T>, RawCodec>);

/// Wraps a new connection: small frames until the handshake is passed.
pub fn raw_link<T: AsyncRead + AsyncWrite>(io: T) -> RawLink<T> {
    let io = Stamped {
        io,
        heard_ms: crate::membership::mono_ms(),
        drops: 0,
    };
    RawLink(Framed::new(io, RawCodec::guarded()))
}

impl<T: KernelDrops> Heard for RawLink<T> {
    fn heard_ms(&mut self) -> Option<u64> {
        Some(self.0.get_mut().heard_ms())
    }
}

impl<T> FrameLimit for RawLink<T> {
    fn open_frames(&mut self) {
        self.0
            .codec_mut()
            .frames
            .set_max_frame_length(MAX_FRAME_BYTES);
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Stream for RawLink<T> {
    type Item = Result<RawFrame, CodecError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.0).poll_next(cx)
    }
}

impl<T: AsyncRead + AsyncWrite + Unpin> Sink<MasterMessage> for RawLink<T> {
    type Error = CodecError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), CodecError>> {
        Pin::new(&mut self.0).poll_ready(cx)
    }

    fn start_send(mut self: Pin<&mut Self>, item: MasterMessage) -> Result<(), CodecError> {
        Pin::new(&mut self.0).start_send(item)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), CodecError>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), CodecError>> {
        Pin::new(&mut self.0).poll_close(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{SinkExt, StreamExt};

    #[tokio::test]
    async fn a_raw_frame_decodes_as_the_protocol_reads_it_and_the_limit_holds() {
        let (a, b) = tokio::io::duplex(1 << 20);
        let mut worker = protocol::framed::<_, MasterMessage, WorkerMessage>(a);
        let mut master = raw_link(b);
        worker.send(WorkerMessage::Quitting).await.expect("send");
        let frame = master.next().await.expect("a frame").expect("read");
        assert!(!frame.is_large());
        let decoded = frame.decode();
        assert!(
            matches!(decoded, Ok(WorkerMessage::Quitting)),
            "{decoded:?}"
        );
        // Past the handshake's cap before the link opens: refused unread.
        let big = WorkerMessage::ScriptError {
            message: "x".repeat(MAX_HANDSHAKE_FRAME_BYTES * 2),
        };
        worker.send(big.clone()).await.expect("send");
        assert!(master.next().await.expect("an answer").is_err());
        // An opened link reads it, and calls it large.
        let (a, b) = tokio::io::duplex(1 << 20);
        let mut worker = protocol::framed::<_, MasterMessage, WorkerMessage>(a);
        let mut master = raw_link(b);
        master.open_frames();
        worker.send(big).await.expect("send");
        let frame = master.next().await.expect("a frame").expect("read");
        assert!(frame.is_large());
        assert!(matches!(
            frame.decode(),
            Ok(WorkerMessage::ScriptError { message }) if message.len() == MAX_HANDSHAKE_FRAME_BYTES * 2
        ));
    }

    /// A worker whose bytes the kernel dropped (the master left its small
    /// buffer full) was heard when they were dropped, though nothing new
    /// was read.
    #[tokio::test]
    async fn bytes_the_kernel_dropped_count_as_heard() {
        use std::time::{Duration, Instant};
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let mut worker = tokio::net::TcpStream::connect(listener.local_addr().expect("addr"))
            .await
            .expect("connect");
        worker.set_nodelay(true).expect("nodelay");
        let (stream, _) = listener.accept().await.expect("accept");
        socket2::SockRef::from(&stream)
            .set_recv_buffer_size(4096)
            .expect("rcvbuf");
        let mut master = raw_link(stream);
        let before = master.heard_ms().expect("a TCP link knows");
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert_eq!(master.heard_ms(), Some(before), "nothing came in");
        // Small writes into a buffer nobody reads: the kernel runs out of
        // room for them before the window closes, and drops some.
        let deadline = Instant::now() + Duration::from_secs(5);
        let chunk = [0u8; 100];
        while master.0.get_ref().io.kernel_drops() == Some(0) {
            assert!(Instant::now() < deadline, "the kernel dropped nothing");
            let _ = tokio::time::timeout(Duration::from_millis(10), worker.write_all(&chunk)).await;
        }
        let heard = master.heard_ms().expect("a TCP link knows");
        assert!(heard > before, "dropped bytes are news of the worker");
        let duplex = raw_link(tokio::io::duplex(64).0);
        assert_eq!(duplex.0.get_ref().io.kernel_drops(), None);
    }
}
