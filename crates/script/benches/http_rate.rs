//! Requests per second of one core running 50 users of a one-task user
//! doing `GET /` with no wait: the figure to hold against `wrk -t1 -c50`.
//! Point it at a target with SWARMER_BENCH_URL (pin both with taskset, as
//! bench/ does); without it, a hyper server on another thread is used.
//!
//! SWARMER_BENCH_URL=http://127.0.0.1:8081 taskset -c 1 cargo bench -p script --bench http_rate

mod common;

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use script::RuntimeConfig;

const GET: &str = r#"
local U = swarmer.user { name = "U" }
U:task(function(self) self.http:get("/") end)
"#;

fn local_target() -> String {
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
            while let Ok((tcp, _)) = listener.accept().await {
                tcp.set_nodelay(true).ok();
                tokio::spawn(async move {
                    let svc = service_fn(|_req| async {
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                            b"ok",
                        ))))
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), svc)
                        .await;
                });
            }
        });
    });
    format!("http://{addr}")
}

fn main() {
    let url = std::env::var("SWARMER_BENCH_URL").unwrap_or_else(|_| local_target());
    let users = common::env_or("SWARMER_BENCH_USERS", 50);
    let secs = common::env_or("SWARMER_BENCH_SECS", 5.0);
    let config = RuntimeConfig {
        host: Some(url.clone()),
        ..Default::default()
    };
    let r = common::rate(GET, config, users, secs);
    println!(
        "{}: {r:.0} requests/s, {users} users on one core, GET {url}/",
        common::interpreter()
    );
}
