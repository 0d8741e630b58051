//! The web server on a real loopback socket with small limits: a client
//! that never finishes its headers, one that sits on a keep-alive
//! connection, and one whose request body never comes are all closed in
//! time; at the connection cap a new client is still answered, the oldest
//! silent one making room; shutdown ends the server.

mod web_support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use master::web::{ServeLimits, WebConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use web_support::*;

const HEADER_TIMEOUT: Duration = Duration::from_millis(300);
const IDLE_TIMEOUT: Duration = Duration::from_millis(600);

struct Server {
    addr: SocketAddr,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _harness: Harness,
}

async fn serve(max_connections: usize, header_read_timeout: Duration) -> Server {
    let harness = Harness::new().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let config = WebConfig {
        limits: ServeLimits {
            header_read_timeout,
            idle_timeout: IDLE_TIMEOUT,
            max_connections,
        },
        ..WebConfig::default()
    };
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(master::web::run(
        listener,
        harness.master.clone(),
        config,
        shutdown.clone(),
    ));
    Server {
        addr,
        shutdown,
        task,
        _harness: harness,
    }
}

/// Waits until the server closes `stream` (EOF or reset), within MAX_WAIT;
/// returns how long that took.
async fn closed_after(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(MAX_WAIT, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return started.elapsed(),
            Ok(Ok(_)) => continue, // an answer (e.g. 408) before closing
            Err(_) => panic!("the server kept the connection open for {MAX_WAIT:?}"),
        }
    }
}

async fn healthz(addr: SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(MAX_WAIT, stream.read_to_string(&mut answer))
        .await
        .expect("/healthz answered in time")
        .unwrap();
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_clients_are_closed_in_time() {
    let server = serve(64, HEADER_TIMEOUT).await;

    let mut slow = TcpStream::connect(server.addr).await.unwrap();
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHo")
        .await
        .unwrap();
    let took = closed_after(&mut slow).await;
    assert!(took >= HEADER_TIMEOUT / 2, "closed too early: {took:?}");

    // After one answer, a keep-alive connection left idle is closed too.
    let mut idle = TcpStream::connect(server.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = idle.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    closed_after(&mut idle).await;

    // Headers complete, body promised and never sent: the idle timeout.
    let mut stalled = TcpStream::connect(server.addr).await.unwrap();
    stalled
        .write_all(b"POST /api/v1/run HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100\r\n\r\n{")
        .await
        .unwrap();
    let took = closed_after(&mut stalled).await;
    assert!(took >= IDLE_TIMEOUT / 2, "closed too early: {took:?}");

    assert!(healthz(server.addr).await.starts_with("HTTP/1.1 200"));
    server.shutdown.cancel();
    let ended = tokio::time::timeout(MAX_WAIT, server.task).await;
    assert!(
        matches!(ended, Ok(Ok(Ok(())))),
        "the server ends on shutdown"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_the_oldest_silent_client_makes_room() {
    // A header timeout far longer than the test: only eviction closes.
    let server = serve(3, Duration::from_secs(30)).await;
    let mut silent = Vec::new();
    for _ in 0..3 {
        silent.push(TcpStream::connect(server.addr).await.unwrap());
    }
    for round in 0..3 {
        assert!(healthz(server.addr).await.starts_with("HTTP/1.1 200"));
        let took = closed_after(&mut silent[round]).await;
        assert!(took < Duration::from_secs(5), "round {round}: {took:?}");
        // The others are still open: nothing arrives, no EOF.
        for other in &mut silent[round + 1..] {
            let mut buf = [0u8; 1];
            let read = tokio::time::timeout(Duration::from_millis(50), other.read(&mut buf)).await;
            assert!(
                read.is_err(),
                "round {round}: another silent client was closed"
            );
        }
        // Back to the cap for the next round.
        silent.push(TcpStream::connect(server.addr).await.unwrap());
    }
    server.shutdown.cancel();
    let ended = tokio::time::timeout(MAX_WAIT, server.task).await;
    assert!(
        matches!(ended, Ok(Ok(Ok(())))),
        "silent clients do not hold up shutdown"
    );
}
