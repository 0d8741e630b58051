//! Servers for the socket tests, each on loopback port 0 in a thread of
//! its own: a WebSocket echo server (tokio-tungstenite, plain or TLS) that
//! counts what it received and sent, a TLS line-echo server for raw
//! sockets, a CA and its server certificate (rcgen), and a Redis server
//! when `redis-server` is installed. `proxy` is a CONNECT proxy that
//! counts its tunnels; `runs` runs the binary and reads its `--json`.
#![allow(dead_code)]

pub mod proxy;
pub mod runs;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};

/// What a server saw, read by the test while and after swarmer runs.
#[derive(Default)]
pub struct Counts {
    pub upgrades: AtomicU64,
    pub refused: AtomicU64,
    pub received: AtomicU64,
    pub sent: AtomicU64,
    /// Connections open right now.
    pub open: AtomicU64,
}

impl Counts {
    pub fn get(n: &AtomicU64) -> u64 {
        n.load(Ordering::SeqCst)
    }
}

pub struct Server {
    pub addr: SocketAddr,
    pub counts: Arc<Counts>,
}

fn spawn<F, Fut>(serve: F) -> Server
where
    F: FnOnce(TcpListener, Arc<Counts>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let (addr, counts) = serve_counting(serve);
    Server { addr, counts }
}

/// Runs `serve` on a listener bound to loopback port 0, on a
/// current-thread runtime in a thread of its own; the address and the
/// counts it shares with the test.
pub fn serve_counting<C, F, Fut>(serve: F) -> (SocketAddr, Arc<C>)
where
    C: Default + Send + Sync + 'static,
    F: FnOnce(TcpListener, Arc<C>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let counts = Arc::new(C::default());
    let (tx, rx) = std::sync::mpsc::channel();
    let c = counts.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            serve(listener, c).await;
        });
    });
    let addr = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    (addr, counts)
}

/// Echoes every text and binary message; refuses the upgrade of
/// `/refuse` with a 404.
pub fn ws_echo(tls: Option<Arc<rustls::ServerConfig>>) -> Server {
    spawn(move |listener, counts| async move {
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (counts, acceptor) = (counts.clone(), acceptor.clone());
            tokio::spawn(async move {
                match acceptor {
                    Some(a) => {
                        if let Ok(s) = a.accept(tcp).await {
                            echo(s, &counts).await;
                        }
                    }
                    None => echo(tcp, &counts).await,
                }
            });
        }
    })
}

// The callback's error type is tungstenite's (a whole response).
#[allow(clippy::result_large_err)]
async fn echo<S>(stream: S, counts: &Counts)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let check = |req: &Request, resp: Response| -> Result<Response, ErrorResponse> {
        if req.uri().path() == "/refuse" {
            counts.refused.fetch_add(1, Ordering::SeqCst);
            let mut e = ErrorResponse::new(Some("no".to_string()));
            *e.status_mut() = tokio_tungstenite::tungstenite::http::StatusCode::NOT_FOUND;
            return Err(e);
        }
        Ok(resp)
    };
    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, check).await else {
        return;
    };
    counts.upgrades.fetch_add(1, Ordering::SeqCst);
    counts.open.fetch_add(1, Ordering::SeqCst);
    while let Some(Ok(msg)) = ws.next().await {
        if msg.is_text() || msg.is_binary() {
            counts.received.fetch_add(1, Ordering::SeqCst);
            if ws.send(msg).await.is_err() {
                break;
            }
            counts.sent.fetch_add(1, Ordering::SeqCst);
        }
    }
    counts.open.fetch_sub(1, Ordering::SeqCst);
}

/// TLS: answers each line with `echo: LINE\r\n`; `quit` closes.
pub fn tls_line_echo(tls: Arc<rustls::ServerConfig>) -> Server {
    spawn(move |listener, counts| async move {
        let acceptor = tokio_rustls::TlsAcceptor::from(tls);
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let (counts, acceptor) = (counts.clone(), acceptor.clone());
            tokio::spawn(async move {
                let Ok(s) = acceptor.accept(tcp).await else {
                    return;
                };
                counts.open.fetch_add(1, Ordering::SeqCst);
                let (r, mut w) = tokio::io::split(s);
                let mut lines = BufReader::new(r).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    counts.received.fetch_add(1, Ordering::SeqCst);
                    if line == "quit" {
                        break;
                    }
                    if w.write_all(format!("echo: {line}\r\n").as_bytes())
                        .await
                        .is_err()
                    {
                        break;
                    }
                    counts.sent.fetch_add(1, Ordering::SeqCst);
                }
                let _ = w.shutdown().await;
                counts.open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    })
}

/// A CA (PEM) and a server configuration for `name` signed by it.
pub fn certificates(name: &str) -> (String, Arc<rustls::ServerConfig>) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "sockets-test-ca");
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server_params = CertificateParams::new(vec![name.to_string()]).unwrap();
    let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
    let key = rustls::pki_types::PrivatePkcs8KeyDer::from(server_key.serialize_der());
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![server_cert.der().clone()], key.into())
        .unwrap();
    (ca_cert.pem(), Arc::new(config))
}

/// Waits until `cond` holds, for up to `max`.
pub fn wait_for(max: Duration, cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + max;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cond()
}

/// A `redis-server` on a free port (bind port 0, release, start: the
/// window for another process to take it is tiny), killed on drop.
pub struct Redis {
    pub port: u16,
    child: Child,
}

impl Redis {
    /// `None` when redis-server is not installed.
    pub fn start(dir: &Path) -> Option<Redis> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
            ])
            .args(["--appendonly", "no", "--dir"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let redis = Redis { port, child };
        let up = wait_for(Duration::from_secs(10), || redis.command("PING").is_some());
        assert!(up, "redis-server did not answer on port {port} within 10 s");
        Some(redis)
    }

    /// One inline command's reply line, e.g. `:42` or `$2`.
    pub fn command(&self, cmd: &str) -> Option<String> {
        use std::io::{BufRead, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(format!("{cmd}\r\n").as_bytes()).ok()?;
        let mut r = std::io::BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).ok()?;
        if line.starts_with('$') && !line.starts_with("$-1") {
            let mut value = String::new();
            r.read_line(&mut value).ok()?;
            return Some(value.trim_end().to_string());
        }
        Some(line.trim_end().to_string())
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Redis {
    /// `INFO commandstats` as text (`cmdstat_set:calls=N,...` lines).
    pub fn info_commandstats(&self) -> String {
        use std::io::{BufRead, Read, Write};
        let mut s = std::net::TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        s.write_all(b"INFO commandstats\r\n").unwrap();
        let mut r = std::io::BufReader::new(s);
        let mut head = String::new();
        r.read_line(&mut head).unwrap();
        let n: usize = head.trim_start_matches('$').trim().parse().unwrap();
        let mut body = vec![0; n];
        r.read_exact(&mut body).unwrap();
        String::from_utf8(body).unwrap()
    }
}
