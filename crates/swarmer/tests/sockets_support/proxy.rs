//! A forward proxy that speaks only CONNECT, on loopback port 0 in a thread
//! of its own, for the WebSocket proxy tests: it counts the tunnels it
//! opened and the ones it refused, records each tunnel's target and
//! `Proxy-Authorization`, and can insist on credentials (407) or refuse
//! every tunnel (403). Names under `.test` lead to 127.0.0.1, so a test can
//! aim at a name no DNS knows and see that only the proxy resolved it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How the proxy answers a CONNECT.
#[derive(Clone)]
pub enum Mode {
    /// Every tunnel.
    Open,
    /// Only with this `Proxy-Authorization` value, else 407.
    Auth(String),
    /// None: 403.
    Refuse,
}

/// What the proxy saw.
#[derive(Default)]
pub struct ProxyCounts {
    pub tunnels: AtomicU64,
    pub refused: AtomicU64,
    /// The target of each tunnel opened, in order.
    pub targets: Mutex<Vec<String>>,
}

impl ProxyCounts {
    pub fn tunnels(&self) -> u64 {
        self.tunnels.load(Ordering::SeqCst)
    }

    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }
}

pub struct ConnectProxy {
    pub addr: SocketAddr,
    pub counts: Arc<ProxyCounts>,
}

impl ConnectProxy {
    /// `http://[credentials@]127.0.0.1:port`.
    pub fn url(&self, credentials: Option<&str>) -> String {
        match credentials {
            Some(c) => format!("http://{c}@{}", self.addr),
            None => format!("http://{}", self.addr),
        }
    }
}

pub fn start(mode: Mode) -> ConnectProxy {
    let (addr, counts) =
        super::serve_counting(move |listener, counts: Arc<ProxyCounts>| async move {
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(serve(tcp, mode.clone(), counts.clone()));
            }
        });
    ConnectProxy { addr, counts }
}

async fn serve(mut client: TcpStream, mode: Mode, counts: Arc<ProxyCounts>) {
    let Some(head) = read_head(&mut client).await else {
        return;
    };
    let mut lines = head.split("\r\n");
    let request = lines.next().unwrap_or_default().to_string();
    let auth = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("proxy-authorization"))
        .map(|(_, v)| v.trim().to_string());
    let target = match request.split(' ').collect::<Vec<_>>()[..] {
        ["CONNECT", target, "HTTP/1.1"] => target.to_string(),
        _ => return answer(&mut client, "405 Method Not Allowed").await,
    };
    let refusal = match &mode {
        Mode::Open => None,
        Mode::Auth(wanted) if auth.as_deref() == Some(wanted.as_str()) => None,
        Mode::Auth(_) => Some("407 Proxy Authentication Required"),
        Mode::Refuse => Some("403 Forbidden"),
    };
    if let Some(status) = refusal {
        counts.refused.fetch_add(1, Ordering::SeqCst);
        return answer(&mut client, status).await;
    }
    let Some((host, port)) = target.rsplit_once(':') else {
        return answer(&mut client, "400 Bad Request").await;
    };
    let host = if host.ends_with(".test") {
        "127.0.0.1"
    } else {
        host
    };
    let Ok(mut upstream) = TcpStream::connect((host, port.parse().unwrap_or(0))).await else {
        return answer(&mut client, "502 Bad Gateway").await;
    };
    counts.tunnels.fetch_add(1, Ordering::SeqCst);
    counts.targets.lock().unwrap().push(target);
    let ok = b"HTTP/1.1 200 Connection established\r\n\r\n";
    if client.write_all(ok).await.is_ok() {
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    }
}

/// The request head, up to its blank line (nothing of the tunnel's bytes
/// is read past it).
async fn read_head(client: &mut TcpStream) -> Option<String> {
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 {
            return None;
        }
        head.push(client.read_u8().await.ok()?);
    }
    String::from_utf8(head).ok()
}

async fn answer(client: &mut TcpStream, status: &str) {
    let extra = if status.starts_with("407") {
        "proxy-authenticate: Basic realm=\"test\"\r\n"
    } else {
        ""
    };
    let text = format!("HTTP/1.1 {status}\r\n{extra}content-length: 0\r\n\r\n");
    let _ = client.write_all(text.as_bytes()).await;
    let _ = client.shutdown().await;
}
