//! The peer of bench/sockets.sh's WebSocket figure, and its echo server:
//! plain tokio-tungstenite on a current-thread runtime (one core, as
//! swarmer runs with `--cores 1`), with none of swarmer's Lua, stats or
//! scheduling, so the ratio of the two figures is what scripting costs.
//!
//! `ws_peer client URL CONNECTIONS SECONDS`: opens the connections, then
//! each does what `bench/ws.lua`'s users do (send a 16-byte text, wait for
//! the reply) for that long; prints `sent=N received=N secs=S` (the
//! messages of all connections, and the seconds they took).
//! `ws_peer echo 127.0.0.1:PORT`: echoes every text and binary message.

use std::error::Error;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

/// What `bench/ws.lua` sends.
const PAYLOAD: &str = "0123456789abcdef";

/// How long a reply may take before the connection gives up (as the Lua
/// users' `recv({ timeout = 5 })`).
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

type Ws = WebSocketStream<TcpStream>;
type BoxError = Box<dyn Error + Send + Sync>;

fn main() -> Result<(), BoxError> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match args[..] {
        ["echo", addr] => rt.block_on(echo(addr)),
        ["client", url, connections, secs] => {
            let connections: usize = connections.parse()?;
            let secs: f64 = secs.parse()?;
            rt.block_on(client(url, connections, Duration::from_secs_f64(secs)))
        }
        _ => Err("usage: ws_peer client URL CONNECTIONS SECONDS | ws_peer echo HOST:PORT".into()),
    }
}

async fn echo(addr: &str) -> Result<(), BoxError> {
    let listener = TcpListener::bind(addr).await?;
    loop {
        let (tcp, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let Ok(mut ws) = tokio_tungstenite::accept_async(tcp).await else {
                return;
            };
            while let Some(Ok(msg)) = ws.next().await {
                if (msg.is_text() || msg.is_binary()) && ws.send(msg).await.is_err() {
                    break;
                }
            }
        });
    }
}

/// Messages sent and received by all connections.
#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    received: AtomicU64,
}

async fn client(url: &str, connections: usize, length: Duration) -> Result<(), BoxError> {
    let mut sockets = Vec::with_capacity(connections);
    for _ in 0..connections {
        sockets.push(connect(url).await?);
    }
    let counts = Arc::new(Counts::default());
    let start = Instant::now();
    let deadline = start + length;
    let tasks: Vec<_> = sockets
        .into_iter()
        .map(|ws| tokio::spawn(round_trips(ws, deadline, counts.clone())))
        .collect();
    for t in tasks {
        t.await??;
    }
    println!(
        "sent={} received={} secs={:.3}",
        counts.sent.load(Ordering::Relaxed),
        counts.received.load(Ordering::Relaxed),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn connect(url: &str) -> Result<Ws, BoxError> {
    let parsed = url::Url::parse(url)?;
    let host = parsed.host_str().ok_or("the URL has no host")?;
    let port = parsed
        .port_or_known_default()
        .ok_or("the URL has no port")?;
    let tcp = TcpStream::connect((host, port)).await?;
    tcp.set_nodelay(true)?;
    let (ws, _) = tokio_tungstenite::client_async(url, tcp).await?;
    Ok(ws)
}

/// Send, wait for the reply, again, until `deadline`; then close.
async fn round_trips(mut ws: Ws, deadline: Instant, counts: Arc<Counts>) -> Result<(), BoxError> {
    while Instant::now() < deadline {
        ws.send(Message::text(PAYLOAD)).await?;
        counts.sent.fetch_add(1, Ordering::Relaxed);
        loop {
            match tokio::time::timeout(REPLY_TIMEOUT, ws.next()).await? {
                Some(Ok(m)) if m.is_text() || m.is_binary() => break,
                Some(Ok(_)) => continue,
                Some(Err(e)) => return Err(e.into()),
                None => return Err("the server closed the connection".into()),
            }
        }
        counts.received.fetch_add(1, Ordering::Relaxed);
    }
    let _ = ws.close(None).await;
    Ok(())
}
