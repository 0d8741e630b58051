//! What the worker's tests share: an engine's configuration with one core
//! and the defaults, for each test to change what it is about, and a
//! target on loopback that answers late or never.

use std::time::Duration;

use script::LuaLimits;
use worker::EngineConfig;

/// One core, node "w", the default Lua limits, a 1 s stop timeout.
pub fn one_core() -> EngineConfig {
    EngineConfig {
        cores: 1,
        node_id: "w".into(),
        insecure_tls: false,
        http: Default::default(),
        base_dir: None,
        limits: LuaLimits::default(),
        stop_timeout: Duration::from_secs(1),
    }
}

/// A target on loopback that says (on the receiver) when a request
/// arrives, and answers it "ok" after `reply_after`, or never (`None`: a
/// connection then says so once, as it holds one request forever).
#[allow(dead_code)] // not every test binary uses it
pub async fn target(
    reply_after: Option<Duration>,
) -> (String, tokio::sync::mpsc::UnboundedReceiver<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (seen, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let seen = seen.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let mut told = false;
                while let Ok(n) = conn.read(&mut buf).await {
                    if n == 0 {
                        return;
                    }
                    if !told || reply_after.is_some() {
                        told = seen.send(()).is_ok();
                    }
                    let Some(delay) = reply_after else { continue };
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
