//! A user's WebSockets and sockets close when the user stops, even when
//! the script still holds them (here in a global table, so the Lua
//! garbage collector cannot be what closes them): no connection leaks
//! from one user to the next. Checked while the core's Lua state lives.
//! Also: a receive timeout is a Lua error (a script may `pcall` it) that
//! keeps the bytes read so far for the next receive; pings are answered
//! while a script waits for a message.

mod common;

use std::cell::RefCell;
use std::net::{SocketAddr, TcpListener};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use script::{CoreRuntime, RuntimeConfig};
use stats::RequestStats;
use tokio_util::sync::CancellationToken;

/// Accepts connections (upgrading them to WebSockets when `ws`) and
/// counts those open: each is read until the client closes it.
fn server(ws: bool) -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let open = Arc::new(AtomicU64::new(0));
    let counter = open.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let open = counter.clone();
            std::thread::spawn(move || {
                use std::io::Read;
                if ws {
                    let Ok(mut ws) = tokio_tungstenite::tungstenite::accept(stream) else {
                        return;
                    };
                    open.fetch_add(1, Ordering::SeqCst);
                    while ws.read().is_ok() {}
                } else {
                    open.fetch_add(1, Ordering::SeqCst);
                    let mut stream = stream;
                    let mut buf = [0u8; 1024];
                    while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
                }
                open.fetch_sub(1, Ordering::SeqCst);
            });
        }
    });
    (addr, open)
}

const SCRIPT: &str = r#"
keep = {}
local U = swarmer.user { name = "U", wait = swarmer.constant(0.01) }
function U:on_start()
  keep[#keep + 1] = self.ws:connect("ws://WS/", { name = "held" })
  keep[#keep + 1] = swarmer.tcp.connect("127.0.0.1", TCP)
end
U:task(function(self) swarmer.sleep(0.01) end)
"#;

async fn until(max: Duration, cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + max;
    while !cond() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

#[test]
fn a_stopped_user_closes_the_connections_its_script_still_holds() {
    let (ws_addr, ws_open) = server(true);
    let (tcp_addr, tcp_open) = server(false);
    let code = SCRIPT
        .replace("WS", &ws_addr.to_string())
        .replace("TCP", &tcp_addr.port().to_string());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let local = tokio::task::LocalSet::new();
    local.block_on(&rt, async {
        let stats = Rc::new(RefCell::new(RequestStats::new(0)));
        let src = common::source(&code);
        let core = CoreRuntime::new(&src, RuntimeConfig::default(), stats.clone()).unwrap();
        let stop = CancellationToken::new();
        let users: Vec<_> = (0..2)
            .map(|_| tokio::task::spawn_local(core.run_user("U", stop.clone()).unwrap()))
            .collect();
        let both = || ws_open.load(Ordering::SeqCst) == 2 && tcp_open.load(Ordering::SeqCst) == 2;
        assert!(
            until(Duration::from_secs(10), both).await,
            "connections never opened; exceptions: {:?}",
            common::exceptions(&stats.borrow())
        );
        stop.cancel();
        for u in users {
            tokio::time::timeout(Duration::from_secs(10), u)
                .await
                .expect("users did not stop")
                .unwrap();
        }
        let closed = || ws_open.load(Ordering::SeqCst) == 0 && tcp_open.load(Ordering::SeqCst) == 0;
        assert!(
            until(Duration::from_secs(10), closed).await,
            "still open after the users stopped: {} WebSockets, {} sockets",
            ws_open.load(Ordering::SeqCst),
            tcp_open.load(Ordering::SeqCst)
        );
        // Each session's duration was recorded when its user closed it.
        assert_eq!(common::count(&stats.borrow(), "WS", "held session"), (2, 0));
        assert_eq!(common::count(&stats.borrow(), "WS", "held"), (2, 0));
        // The Lua state (and `keep`) is still alive here.
        drop(core);
    });
}

/// Sends `abc`, then `def\n` once it reads a line from the client.
fn slow_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        use std::io::{BufRead, Write};
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let _ = stream.write_all(b"abc");
                let mut line = String::new();
                let mut r = std::io::BufReader::new(stream.try_clone().unwrap());
                if r.read_line(&mut line).is_ok() {
                    let _ = stream.write_all(b"def\n");
                }
            });
        }
    });
    addr
}

const TIMEOUT_SCRIPT: &str = r#"
local U = swarmer.user { name = "U", wait = swarmer.constant(0.01) }
U:task(function(self)
  local s = swarmer.tcp.connect("127.0.0.1", PORT)
  local ok, err = pcall(s.receive, s, 6, { timeout = 0.1 })
  swarmer.record { type = "T", name = "timeout", duration_ms = 0, success = not ok,
    error = "no timeout" }
  if not err:find("socket:receive on 127.0.0.1:PORT: timeout after 100ms", 1, true) then
    error("unexpected error: " .. err)
  end
  -- The 3 bytes read before the timeout are still there.
  s:send("go\n")
  local got = s:receive("*l")
  swarmer.record { type = "T", name = "kept", duration_ms = 0, success = got == "abcdef",
    error = "got " .. got }
  s:close()
end)
"#;

#[test]
fn a_receive_timeout_is_an_error_that_keeps_the_bytes_read() {
    let addr = slow_server();
    let code = TIMEOUT_SCRIPT.replace("PORT", &addr.port().to_string());
    let stats = common::run_users(
        &code,
        RuntimeConfig::default(),
        &[("U", 1)],
        |s| s.entry("T", "kept").is_some_and(|e| e.num_requests >= 2),
        Duration::from_secs(10),
    );
    assert!(
        common::exceptions(&stats).is_empty(),
        "{:?}",
        common::exceptions(&stats)
    );
    let (n, failed) = common::count(&stats, "T", "kept");
    assert!(n >= 2 && failed == 0, "{n} {failed}");
    assert_eq!(common::count(&stats, "T", "timeout").1, 0);
}

/// Pings each client, and sends `pong seen` once the client's pong came.
fn pinging_server() -> SocketAddr {
    use tokio_tungstenite::tungstenite::Message;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            std::thread::spawn(move || {
                let Ok(mut ws) = tokio_tungstenite::tungstenite::accept(stream) else {
                    return;
                };
                if ws
                    .send(Message::Ping(b"are you there".to_vec().into()))
                    .is_err()
                {
                    return;
                }
                while let Ok(msg) = ws.read() {
                    if matches!(msg, Message::Pong(ref p) if &p[..] == b"are you there") {
                        let _ = ws.send(Message::text("pong seen"));
                    }
                }
            });
        }
    });
    addr
}

const PING_SCRIPT: &str = r#"
local U = swarmer.user { name = "U", wait = swarmer.constant(0.01) }
U:task(function(self)
  local ws = self.ws:connect("ws://ADDR/", { name = "pinged" })
  local msg, why = ws:recv({ timeout = 2 })
  swarmer.record { type = "T", name = "answered", duration_ms = 0,
    success = msg == "pong seen", error = tostring(why) }
  ws:close()
end)
"#;

#[test]
fn pings_are_answered_while_the_script_waits_for_a_message() {
    let addr = pinging_server();
    let code = PING_SCRIPT.replace("ADDR", &addr.to_string());
    let stats = common::run_users(
        &code,
        RuntimeConfig::default(),
        &[("U", 1)],
        |s| s.entry("T", "answered").is_some(),
        Duration::from_secs(10),
    );
    assert!(
        common::exceptions(&stats).is_empty(),
        "{:?}",
        common::exceptions(&stats)
    );
    let (n, failed) = common::count(&stats, "T", "answered");
    assert!(n >= 1 && failed == 0, "{n} {failed}: {:?}", stats.errors());
}
