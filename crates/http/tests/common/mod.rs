//! The raw test server (it answers with exactly the bytes a test gives it
//! and records what each request looked like) and a one-user session
//! driving the client, shared by the HTTP client's test files.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::header::HeaderMap;
use http::{Method, Uri};
use http_client::{Origin, Reply, Request, Session, Tls};

/// Longer than any test should take: a hang fails instead of blocking.
pub const MAX: Duration = Duration::from_secs(10);

/// One request as the raw server saw it.
pub struct Seen {
    pub method: String,
    pub target: String,
    pub head: String,
    pub body: Vec<u8>,
    /// Index of the connection (from 0) and of the request on it.
    pub conn: usize,
    pub nth: usize,
}

/// What the raw server does after reading a request.
pub enum Then {
    /// Write these bytes and wait for the next request.
    Reply(Vec<u8>),
    /// Write these bytes and close the connection.
    ReplyClose(Vec<u8>),
    /// Write these bytes, then close after this long.
    ReplyCloseAfter(Vec<u8>, Duration),
}

/// A server on 127.0.0.1:0 that answers each request with what `handler`
/// says. Returns its address and a count of accepted connections.
pub fn raw_server(
    handler: impl Fn(&Seen) -> Then + Send + Sync + 'static,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let handler = Arc::new(handler);
    let counter = conns.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let conn = counter.fetch_add(1, Ordering::SeqCst);
            let handler = handler.clone();
            std::thread::spawn(move || serve_raw(stream, conn, &*handler));
        }
    });
    (addr, conns)
}

pub fn serve_raw(mut stream: TcpStream, conn: usize, handler: &dyn Fn(&Seen) -> Then) {
    let mut buf = Vec::new();
    let mut nth = 0;
    loop {
        let Some(seen) = read_request(&mut stream, &mut buf, conn, nth) else {
            return;
        };
        nth += 1;
        match handler(&seen) {
            Then::Reply(bytes) => {
                if stream.write_all(&bytes).is_err() {
                    return;
                }
            }
            Then::ReplyClose(bytes) => {
                let _ = stream.write_all(&bytes);
                return;
            }
            Then::ReplyCloseAfter(bytes, after) => {
                let _ = stream.write_all(&bytes);
                std::thread::sleep(after);
                return;
            }
        }
    }
}

pub fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    conn: usize,
    nth: usize,
) -> Option<Seen> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end + 4]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                let body = buf[end + 4..end + 4 + len].to_vec();
                buf.drain(..end + 4 + len);
                let mut words = head.split(' ');
                let method = words.next().unwrap_or("").to_string();
                let target = words.next().unwrap_or("").to_string();
                return Some(Seen {
                    method,
                    target,
                    head,
                    body,
                    conn,
                    nth,
                });
            }
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

pub fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// One user's session against one server, as the Lua binding drives it.
/// It keeps its runtime: pooled sockets and the timeout timer belong to it.
pub struct User {
    rt: tokio::runtime::Runtime,
    session: Session,
    pub tls: Tls,
    pub origin: Rc<Origin>,
}

impl User {
    pub fn new(addr: SocketAddr) -> Self {
        User {
            rt: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap(),
            session: Session::default(),
            tls: Tls::new(false),
            origin: Rc::new(Origin::parse(&format!("http://{addr}")).unwrap()),
        }
    }

    /// A GET of `path` on this user's server, to adjust before sending.
    pub fn request(&self, path: &str) -> Request {
        Request {
            method: Method::GET,
            origin: self.origin.clone(),
            uri: Uri::try_from(path).unwrap(),
            headers: HeaderMap::new(),
            body: Bytes::new(),
            timeout: MAX,
            max_redirects: 10,
            accept_encoding: None,
            proxy: Default::default(),
            version: Default::default(),
        }
    }

    /// Sends one request and waits for its reply, at most [`MAX`].
    pub fn send(&self, method: Method, path: &str, body: &str, timeout: Duration) -> Reply {
        let req = Request {
            method,
            body: Bytes::copy_from_slice(body.as_bytes()),
            timeout,
            ..self.request(path)
        };
        self.send_request(req)
    }

    /// Sends a request as built and waits for its reply, at most [`MAX`].
    pub fn send_request(&self, mut req: Request) -> Reply {
        self.rt
            .block_on(async {
                let send = self
                    .session
                    .send(&self.tls, &mut req, tokio::time::Instant::now());
                tokio::time::timeout(MAX, send).await
            })
            .expect("the request neither finished nor timed out")
    }

    /// Waits between requests with the runtime running, as a user's
    /// `swarmer.sleep` does (so the reactor sees the server's close).
    pub fn idle(&self, d: Duration) {
        self.rt.block_on(async { tokio::time::sleep(d).await });
    }

    pub fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, "", MAX)
    }

    pub fn post(&self, path: &str, body: &str) -> Reply {
        self.send(Method::POST, path, body, MAX)
    }
}

/// The body of a reply that must have succeeded.
pub fn ok_body(r: &Reply) -> String {
    assert!(r.error.is_none(), "{:?}", r.error);
    String::from_utf8_lossy(r.message.body()).into_owned()
}

pub fn header(r: &Reply, name: &str) -> Option<String> {
    r.message
        .header(name)
        .map(|v| String::from_utf8_lossy(v).into_owned())
}
