//! A forward proxy of the tests' own, on 127.0.0.1 port 0, counting what
//! passes: plain requests (absolute-form, one per connection: it asks the
//! origin to close, so every request is seen) and CONNECT tunnels. Every
//! host name is sent to 127.0.0.1. With credentials set, a request without
//! the matching `Proxy-Authorization` gets 407.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
pub struct ProxyCounts {
    pub forwarded: AtomicU64,
    pub tunnels: AtomicU64,
    pub refused: AtomicU64,
    /// The last CONNECT target and absolute URL seen.
    pub last_target: std::sync::Mutex<String>,
}

impl ProxyCounts {
    pub fn forwarded(&self) -> u64 {
        self.forwarded.load(Ordering::SeqCst)
    }
    pub fn tunnels(&self) -> u64 {
        self.tunnels.load(Ordering::SeqCst)
    }
    pub fn refused(&self) -> u64 {
        self.refused.load(Ordering::SeqCst)
    }
}

/// Starts the proxy on its own thread; `auth`: the `Proxy-Authorization`
/// value it requires.
pub fn start_proxy(auth: Option<&'static str>) -> (SocketAddr, Arc<ProxyCounts>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    let counts = Arc::new(ProxyCounts::default());
    let c = counts.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = TcpListener::from_std(listener).unwrap();
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(serve(tcp, auth, c.clone()));
            }
        });
    });
    (addr, counts)
}

async fn serve(tcp: TcpStream, auth: Option<&'static str>, counts: Arc<ProxyCounts>) {
    let mut client = BufReader::new(tcp);
    let mut head = Vec::new();
    loop {
        let mut line = String::new();
        if client.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let end = line == "\r\n";
        head.push(line);
        if end {
            break;
        }
    }
    let mut parts = head[0].split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let authorized = auth.is_none_or(|want| {
        head.iter().any(|l| {
            l.to_ascii_lowercase().starts_with("proxy-authorization:") && l[20..].trim() == want
        })
    });
    if !authorized {
        counts.refused.fetch_add(1, Ordering::SeqCst);
        let _ = client
            .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .await;
        return;
    }
    *counts.last_target.lock().unwrap() = target.to_string();
    let port_of = |authority: &str| {
        authority
            .rsplit(':')
            .next()
            .unwrap_or("80")
            .parse::<u16>()
            .unwrap_or(80)
    };
    if method == "CONNECT" {
        counts.tunnels.fetch_add(1, Ordering::SeqCst);
        let Ok(mut origin) = TcpStream::connect(("127.0.0.1", port_of(target))).await else {
            let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
            return;
        };
        let _ = client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await;
        let _ = tokio::io::copy_bidirectional(&mut client, &mut origin).await;
        return;
    }
    // Absolute form: http://authority/path
    let Some(rest) = target.strip_prefix("http://") else {
        let _ = client
            .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            .await;
        return;
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    counts.forwarded.fetch_add(1, Ordering::SeqCst);
    let Ok(mut origin) = TcpStream::connect(("127.0.0.1", port_of(authority))).await else {
        return;
    };
    let mut out = format!("{method} {path} HTTP/1.1\r\n");
    for l in &head[1..head.len() - 1] {
        let lower = l.to_ascii_lowercase();
        if !lower.starts_with("proxy-authorization:") && !lower.starts_with("connection:") {
            out.push_str(l);
        }
    }
    out.push_str("connection: close\r\n\r\n");
    let _ = origin.write_all(out.as_bytes()).await;
    // Bodies (content-length) follow the head; then the answer comes back
    // and both ends close.
    let mut buf = client.buffer().to_vec();
    let _ = origin.write_all(&buf).await;
    buf.clear();
    let (mut cr, mut cw) = client.into_inner().into_split();
    let (mut or, mut ow) = origin.into_split();
    let up = async move {
        let mut b = [0u8; 4096];
        while let Ok(n) = cr.read(&mut b).await {
            if n == 0 || ow.write_all(&b[..n]).await.is_err() {
                break;
            }
        }
    };
    let down = async move {
        let _ = tokio::io::copy(&mut or, &mut cw).await;
        let _ = cw.shutdown().await;
    };
    tokio::select! {
        _ = down => {}
        _ = async { up.await; std::future::pending::<()>().await } => {}
    }
}
