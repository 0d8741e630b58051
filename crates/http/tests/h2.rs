//! HTTP/2 against a real server (hyper's, speaking h2, h2c and HTTP/1.1 on
//! one port, on 127.0.0.1:0): ALPN picks h2 over TLS unless the request
//! asks for HTTP/1.1, h2c by prior knowledge over TCP, one connection per
//! user and origin carries every request, bodies and fields arrive, and a
//! stream the server resets is a failed request naming the reset.

mod common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::Method;
use http_body_util::{BodyExt, Full};
use http_client::{HttpVersion, Origin, Proto, Tls};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};

use common::*;

#[derive(Default)]
struct Counts {
    connections: AtomicU64,
    requests: AtomicU64,
}

/// A listener on 127.0.0.1:0 whose connections `serve` handles, each in a
/// task of a runtime on its own thread; it lives until the test ends.
fn listen<F, Fut>(serve: F) -> SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            while let Ok((tcp, _)) = listener.accept().await {
                tokio::spawn(serve(tcp));
            }
        });
    });
    addr
}

/// A self-signed certificate for "localhost", offering `alpn`.
fn tls_acceptor(alpn: &[&[u8]]) -> tokio_rustls::TlsAcceptor {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(ck.signing_key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![ck.cert.der().clone()], key)
        .unwrap();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// The server; `tls`: over TLS, offering h2 and http/1.1 by ALPN.
fn start(tls: bool) -> (SocketAddr, Arc<Counts>) {
    let counts = Arc::new(Counts::default());
    let c = counts.clone();
    let acceptor = tls.then(|| tls_acceptor(&[b"h2", b"http/1.1"]));
    let addr = listen(move |tcp| {
        c.connections.fetch_add(1, Ordering::SeqCst);
        let (c, acceptor) = (c.clone(), acceptor.clone());
        async move {
            match acceptor {
                None => serve(TokioIo::new(tcp), c).await,
                Some(a) => {
                    if let Ok(s) = a.accept(tcp).await {
                        serve(TokioIo::new(s), c).await;
                    }
                }
            }
        }
    });
    (addr, counts)
}

async fn serve<I>(io: I, counts: Arc<Counts>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let service = service_fn(move |req: hyper::Request<Incoming>| {
        let counts = counts.clone();
        async move {
            counts.requests.fetch_add(1, Ordering::SeqCst);
            let version = format!("{:?}", req.version());
            let path = req.uri().path().to_string();
            let agent = req
                .headers()
                .get("user-agent")
                .map(|v| v.to_str().unwrap_or("").to_string())
                .unwrap_or_default();
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let text = format!("{version} {path} {} {agent}", body.len());
            let resp = hyper::Response::builder()
                .header("x-seen", "yes")
                .body(Full::new(Bytes::from(text)))
                .unwrap();
            Ok::<_, Infallible>(resp)
        }
    });
    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
        .serve_connection(io, service)
        .await;
}

fn user(addr: SocketAddr, scheme: &str) -> User {
    let mut u = User::new(addr);
    u.origin = Rc::new(Origin::parse(&format!("{scheme}://localhost:{}", addr.port())).unwrap());
    u.tls = Tls::new(true);
    u
}

fn get(u: &User, path: &str, version: HttpVersion) -> http_client::Reply {
    let req = http_client::Request {
        version,
        ..u.request(path)
    };
    u.send_request(req)
}

#[test]
fn tls_negotiates_h2_and_one_connection_carries_every_request() {
    let (addr, counts) = start(true);
    let u = user(addr, "https");
    for i in 0..5 {
        let r = get(&u, &format!("/r{i}"), HttpVersion::Auto);
        assert_eq!(r.proto, Proto::Http2, "{:?}", r.error);
        let body = ok_body(&r);
        assert!(
            body.starts_with(&format!("HTTP/2.0 /r{i} 0 swarmer/")),
            "{body}"
        );
        assert_eq!(header(&r, "x-seen").as_deref(), Some("yes"));
    }
    let post = http_client::Request {
        method: Method::POST,
        body: Bytes::from_static(b"12345"),
        ..u.request("/post")
    };
    let r = u.send_request(post);
    assert!(
        ok_body(&r).starts_with("HTTP/2.0 /post 5 "),
        "{}",
        ok_body(&r)
    );
    assert_eq!(counts.requests.load(Ordering::SeqCst), 6);
    assert_eq!(counts.connections.load(Ordering::SeqCst), 1);
}

#[test]
fn http1_can_be_forced_over_tls() {
    let (addr, counts) = start(true);
    let u = user(addr, "https");
    let r = get(&u, "/one", HttpVersion::Http1);
    assert_eq!(r.proto, Proto::Http1);
    assert!(ok_body(&r).starts_with("HTTP/1.1 /one"), "{}", ok_body(&r));
    // An HTTP/1.1 connection in the pool does not serve an HTTP/2 request.
    let r = get(&u, "/two", HttpVersion::Http2);
    assert_eq!(r.proto, Proto::Http2);
    assert_eq!(counts.connections.load(Ordering::SeqCst), 2);
}

#[test]
fn h2c_by_prior_knowledge_over_tcp() {
    let (addr, counts) = start(false);
    let u = user(addr, "http");
    for _ in 0..3 {
        let r = get(&u, "/c", HttpVersion::Http2);
        assert_eq!(r.proto, Proto::Http2, "{:?}", r.error);
        assert!(ok_body(&r).starts_with("HTTP/2.0 /c"), "{}", ok_body(&r));
    }
    // Auto over plain TCP stays HTTP/1.1.
    let r = get(&u, "/plain", HttpVersion::Auto);
    assert_eq!(r.proto, Proto::Http1);
    assert_eq!(counts.requests.load(Ordering::SeqCst), 4);
    assert_eq!(counts.connections.load(Ordering::SeqCst), 2);
}

/// A server that resets every stream: the request fails naming the reset,
/// and the next request still works on the same connection.
#[test]
fn a_reset_stream_is_a_failed_request() {
    let addr = listen(|tcp| async move {
        let mut conn = h2::server::handshake(tcp).await.unwrap();
        while let Some(Ok((_req, mut respond))) = conn.accept().await {
            respond.send_reset(h2::Reason::REFUSED_STREAM);
        }
    });
    let u = user(addr, "http");
    for _ in 0..2 {
        let r = get(&u, "/", HttpVersion::Http2);
        let e = r.error.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            e.contains("HTTP/2") && e.to_lowercase().contains("refused"),
            "{e}"
        );
    }
}

#[test]
fn http2_only_to_a_server_without_h2_says_so() {
    // A TLS server that offers no ALPN protocol: HTTP/1.1 only.
    let acceptor = tls_acceptor(&[]);
    let addr = listen(move |tcp| {
        let acceptor = acceptor.clone();
        async move {
            let _ = acceptor.accept(tcp).await;
        }
    });
    let u = user(addr, "https");
    let r = get(&u, "/", HttpVersion::Http2);
    let e = r.error.map(|e| e.to_string()).unwrap_or_default();
    assert!(e.contains("does not speak HTTP/2"), "{e}");
}
