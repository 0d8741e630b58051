//! A user removed by a downscale finishes its request within the stop
//! timeout, even when the previous run was cleared with no grace (the
//! session stops the old run's users at once before a new run): its
//! request is counted as served, never as "cancelled at stop".

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use script::ScriptSource;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use worker::{Engine, EngineConfig};

mod support;

/// Answers every request after `delay`, and says when one has arrived.
async fn slow_target(delay: Duration) -> (String, tokio::sync::mpsc::UnboundedReceiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (seen, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                while let Ok(n) = conn.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    let _ = seen.send(());
                    tokio::time::sleep(delay).await;
                    let reply = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                    if conn.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn a_downscaled_user_finishes_its_request_after_a_cleared_run() {
    let (url, mut seen) = slow_target(Duration::from_millis(400)).await;
    let mut engine = Engine::start(EngineConfig {
        stop_timeout: Duration::from_secs(10),
        ..support::one_core()
    })
    .unwrap();
    // What the session does before every new run.
    engine.stop(Duration::ZERO).await.unwrap();
    let src = ScriptSource {
        path: "slow.lua".into(),
        code: format!(
            "local U = swarmer.user {{ name = 'U' }}\n\
             U:task(function(self) self.http:get('{url}/', {{ name = 'slow' }}) end)\n"
        ),
    };
    engine.load(&src, None, vec![], vec![]).await.unwrap();
    engine
        .apply(&BTreeMap::from([("U".to_string(), 1)]), 0.0, Instant::now())
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), seen.recv())
        .await
        .expect("the user's request reached the target");
    // The downscale, while that request is on the wire.
    engine
        .apply(&BTreeMap::from([("U".to_string(), 0)]), 0.0, Instant::now())
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    let (mut served, mut failed) = (0, 0);
    while Instant::now() < deadline && served == 0 && failed == 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let c = engine.collect(Duration::from_millis(200)).await.unwrap();
        if let Some(e) = c.stats.entry("GET", "slow") {
            served += e.num_requests - e.num_failures;
            failed += e.num_failures;
        }
    }
    assert_eq!(
        (served, failed),
        (1, 0),
        "the request in flight was served, not cut by the downscale"
    );
    engine.stop(Duration::from_secs(1)).await.unwrap();
}
