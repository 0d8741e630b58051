//! Test fixtures: a small HTTP(S) target on 127.0.0.1 port 0 running on its
//! own thread, and a harness that runs users of a script through
//! `CoreRuntime` on a current-thread runtime until a condition holds.
#![allow(dead_code)]

pub mod proxy;

use std::cell::RefCell;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use script::{CoreRuntime, RuntimeConfig, ScriptSource};
use stats::RequestStats;
use tokio_util::sync::CancellationToken;

/// Starts the target; it lives until the test process ends.
pub fn start_server() -> SocketAddr {
    start(None)
}

/// The same target over TLS with a fresh self-signed certificate for
/// "localhost".
pub fn start_tls_server() -> SocketAddr {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let cert = ck.cert.der().clone();
    let key = rustls::pki_types::PrivateKeyDer::try_from(ck.signing_key.serialize_der()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .unwrap();
    start(Some(tokio_rustls::TlsAcceptor::from(Arc::new(config))))
}

fn start(tls: Option<tokio_rustls::TlsAcceptor>) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        None => serve(TokioIo::new(tcp)).await,
                        Some(acceptor) => {
                            if let Ok(s) = acceptor.accept(tcp).await {
                                serve(TokioIo::new(s)).await;
                            }
                        }
                    }
                });
            }
        });
    });
    addr
}

async fn serve<I>(io: I)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(io, service_fn(handle))
        .await;
}

fn reply(status: u16, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .body(Full::new(body.into()))
        .unwrap()
}

fn json(v: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(v.to_string())))
        .unwrap()
}

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let path = parts.uri.path().to_string();
    let query = parts.uri.query().unwrap_or("").to_string();
    let cookie = parts
        .headers
        .get("cookie")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let resp = match (parts.method.as_str(), segs.as_slice()) {
        ("GET" | "HEAD", [""]) => reply(200, "<html>hello</html>"),
        ("GET", ["item", id]) => {
            let id: u64 = id.parse().unwrap_or(0);
            json(serde_json::json!({ "id": id, "in_stock": !id.is_multiple_of(10) }))
        }
        (_, ["status", code]) => reply(code.parse().unwrap_or(500), ""),
        ("POST", ["login"]) => {
            let user = url::form_urlencoded::parse(&body)
                .find(|(k, _)| k == "user")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            Response::builder()
                .header("set-cookie", format!("session={user}; Path=/"))
                .body(Full::new(Bytes::from_static(b"ok")))
                .unwrap()
        }
        ("POST", ["cart"]) => match cookie.strip_prefix("session=") {
            Some(_) if serde_json::from_slice::<serde_json::Value>(&body).is_ok() => {
                json(serde_json::json!({ "ok": true }))
            }
            Some(_) => reply(400, "bad json"),
            None => reply(401, "login first"),
        },
        ("GET", ["cart"]) => match cookie.strip_prefix("session=") {
            Some(user) => json(serde_json::json!({ "user": user })),
            None => reply(401, "login first"),
        },
        (_, ["echo"]) => echo(&parts, &path, &query, &body),
        ("POST", ["see-other"]) => Response::builder()
            .status(StatusCode::SEE_OTHER)
            .header("location", "/echo")
            .body(Full::new(Bytes::new()))
            .unwrap(),
        ("GET", ["redirect", n]) => {
            let n: u32 = n.parse().unwrap_or(0);
            if n == 0 {
                reply(200, "arrived")
            } else {
                Response::builder()
                    .status(StatusCode::FOUND)
                    .header("location", format!("/redirect/{}", n - 1))
                    .body(Full::new(Bytes::new()))
                    .unwrap()
            }
        }
        ("GET", ["slow"]) => {
            let ms: u64 = query
                .strip_prefix("ms=")
                .and_then(|v| v.parse().ok())
                .unwrap_or(100);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            reply(200, "slow")
        }
        _ => reply(404, "not found"),
    };
    Ok(resp)
}

/// The request as JSON: method, path, query, headers and body.
fn echo(
    parts: &http::request::Parts,
    path: &str,
    query: &str,
    body: &[u8],
) -> Response<Full<Bytes>> {
    let headers: serde_json::Map<String, serde_json::Value> = parts
        .headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").into()))
        .collect();
    json(serde_json::json!({
        "method": parts.method.as_str(),
        "path": path,
        "query": query,
        "headers": headers,
        "body": String::from_utf8_lossy(body),
    }))
}

/// A port nothing listens on (bound, then released).
pub fn closed_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

pub fn source(code: &str) -> ScriptSource {
    ScriptSource {
        path: "test.lua".to_string(),
        code: code.to_string(),
    }
}

/// Runs `users` (type name, count) of `code` until `until(stats)` holds or
/// `max` passes, stops them, waits for them to finish (on_stop included),
/// and returns what they recorded.
pub fn run_users(
    code: &str,
    config: RuntimeConfig,
    users: &[(&str, usize)],
    until: impl Fn(&RequestStats) -> bool,
    max: Duration,
) -> RequestStats {
    run_with_source(&source(code), config, users, until, max)
}

pub fn run_with_source(
    src: &ScriptSource,
    config: RuntimeConfig,
    users: &[(&str, usize)],
    until: impl Fn(&RequestStats) -> bool,
    max: Duration,
) -> RequestStats {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let stats = Rc::new(RefCell::new(RequestStats::new(0)));
        let core = CoreRuntime::new(src, config, stats.clone()).unwrap();
        let stop = CancellationToken::new();
        let mut handles = Vec::new();
        for (name, n) in users {
            for _ in 0..*n {
                let fut = core.run_user(name, stop.clone()).unwrap();
                handles.push(tokio::task::spawn_local(fut));
            }
        }
        let deadline = Instant::now() + max;
        while !until(&stats.borrow()) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        stop.cancel();
        let all = futures::future::join_all(handles);
        tokio::time::timeout(Duration::from_secs(10), all)
            .await
            .expect("users did not stop within 10 s");
        stats.borrow().clone()
    })
}

pub fn host(addr: SocketAddr) -> String {
    format!("http://{addr}")
}

/// The script with `HOST` replaced by the target's URL.
pub fn with_host(code: &str, addr: SocketAddr) -> String {
    code.replace("HOST", &format!("\"{}\"", host(addr)))
}

pub fn exceptions(stats: &RequestStats) -> Vec<String> {
    stats.exceptions().map(|e| e.message.clone()).collect()
}

pub fn count(stats: &RequestStats, method: &str, name: &str) -> (u64, u64) {
    stats
        .entry(method, name)
        .map_or((0, 0), |e| (e.num_requests, e.num_failures))
}

pub fn error_count(stats: &RequestStats, method: &str, name: &str, error: &str) -> u64 {
    stats
        .errors()
        .iter()
        .find(|(k, _)| k.method == method && k.name == name && k.error == error)
        .map_or(0, |(_, e)| e.occurrences)
}
