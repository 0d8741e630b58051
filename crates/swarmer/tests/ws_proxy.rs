//! WebSocket through HTTP proxies, end to end through the binary: a
//! tokio-tungstenite echo server and a CONNECT proxy of the test's own
//! (`sockets_support::proxy`, which counts its tunnels) on loopback. The
//! counts are exact: the messages the echo server saw are swarmer's
//! counters, and the proxy opened one tunnel per upgrade swarmer recorded
//! (none when the connection went direct). Covered: `--proxy` with
//! credentials (ws and wss, TLS naming the origin inside the tunnel), the
//! per-connection `proxy` option, `proxy = false`, `HTTP_PROXY` with
//! `NO_PROXY`, and proxies that refuse or cannot be reached.

mod common;
mod sockets_support;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use sockets_support::proxy::{self, ConnectProxy, Mode};
use sockets_support::runs::{entry, errors, exceptions, run};
use sockets_support::{Counts, Server, certificates, wait_for, ws_echo};

/// Each task: connect (with `proxy` from WS_PROXY: a URL, "false", or
/// absent), three timed round trips, close.
const SCRIPT: &str = r#"
local url = swarmer.env("WS_URL")
local proxy = swarmer.env("WS_PROXY", "")
local opts = { name = "chat", timeout = 5 }
if proxy == "false" then opts.proxy = false elseif proxy ~= "" then opts.proxy = proxy end
local U = swarmer.user { name = "U", wait = swarmer.constant(0.05) }
U:task(function(self)
  local ws = self.ws:connect(url, opts)
  if not ws then return end
  for i = 1, 3 do
    ws:request("hello " .. i, { name = "echo", timeout = 2 })
  end
  ws:close()
end)
"#;

fn script(dir: &Path) -> PathBuf {
    let path = dir.join("ws_proxy.lua");
    std::fs::write(&path, SCRIPT).unwrap();
    path
}

/// The run's upgrades, all successful; the echo server saw exactly what
/// swarmer counted; the proxy opened `tunnels(upgrades)` tunnels.
fn assert_exact(json: &Value, echo: &Server, proxy: &ConnectProxy, tunnels: fn(u64) -> u64) {
    let (upgrades, failed) = entry(json, "WS", "chat");
    assert!(upgrades > 0, "no upgrade recorded: {json}");
    assert_eq!(failed, 0, "{:?}", errors(json));
    assert!(exceptions(json).is_empty(), "{:?}", exceptions(json));
    let (sent, _) = entry(json, "COUNT", "chat sent");
    let (received, _) = entry(json, "COUNT", "chat received");
    let c = &echo.counts;
    let settled = wait_for(Duration::from_secs(10), || {
        Counts::get(&c.upgrades) == upgrades
            && Counts::get(&c.received) == sent
            && Counts::get(&c.sent) == received
            && Counts::get(&c.open) == 0
    });
    assert!(
        settled,
        "swarmer: {upgrades} upgrades, {sent} sent, {received} received; echo server: {} upgrades, {} received, {} sent, {} open",
        Counts::get(&c.upgrades),
        Counts::get(&c.received),
        Counts::get(&c.sent),
        Counts::get(&c.open)
    );
    assert!(sent >= 3 * (upgrades - 1) && sent <= 3 * upgrades, "{json}");
    assert_eq!(proxy.counts.tunnels(), tunnels(upgrades), "tunnels");
    assert_eq!(proxy.counts.refused(), 0);
}

fn all(n: u64) -> u64 {
    n
}

fn none(_: u64) -> u64 {
    0
}

#[test]
fn the_run_proxy_tunnels_ws_and_wss_with_its_credentials() {
    let echo = ws_echo(None);
    // "u:p@ss" in base64: the URL's credentials, percent-decoded.
    let p = proxy::start(Mode::Auth("Basic dTpwQHNz".to_string()));
    let dir = tempfile::tempdir().unwrap();
    let url = format!("ws://{}/chat", echo.addr);
    let via = p.url(Some("u:p%40ss"));
    let json = run(
        &script(dir.path()),
        (2, 2, 0),
        &["--proxy", &via],
        &[("WS_URL", url)],
    );
    assert_exact(&json, &echo, &p, all);
    let target = echo.addr.to_string();
    assert!(
        p.counts
            .targets
            .lock()
            .unwrap()
            .iter()
            .all(|t| *t == target)
    );

    // wss: a name only the proxy resolves; TLS inside the tunnel verifies
    // (and sends) the URL's name against the test's CA.
    let (ca, config) = certificates("chat.example.test");
    let secure = ws_echo(Some(config));
    let p = proxy::start(Mode::Open);
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let url = format!("wss://chat.example.test:{}/chat", secure.addr.port());
    let json = run(
        &script(dir.path()),
        (1, 1, 0),
        &[
            "--proxy",
            &p.url(None),
            "--ca-cert",
            ca_file.to_str().unwrap(),
        ],
        &[("WS_URL", url)],
    );
    assert_exact(&json, &secure, &p, all);
    let target = format!("chat.example.test:{}", secure.addr.port());
    assert!(
        p.counts
            .targets
            .lock()
            .unwrap()
            .iter()
            .all(|t| *t == target)
    );
}

#[test]
fn the_proxy_option_chooses_per_connection() {
    let dir = tempfile::tempdir().unwrap();
    // Its own proxy, where the run has none.
    let echo = ws_echo(None);
    let p = proxy::start(Mode::Open);
    let json = run(
        &script(dir.path()),
        (2, 1, 0),
        &["--proxy", "none"],
        &[
            ("WS_URL", format!("ws://{}/chat", echo.addr)),
            ("WS_PROXY", p.url(None)),
        ],
    );
    assert_exact(&json, &echo, &p, all);

    // `false`: direct, though the run has a proxy (one that would refuse).
    let echo = ws_echo(None);
    let run_proxy = proxy::start(Mode::Refuse);
    let json = run(
        &script(dir.path()),
        (2, 1, 0),
        &["--proxy", &run_proxy.url(None)],
        &[
            ("WS_URL", format!("ws://{}/chat", echo.addr)),
            ("WS_PROXY", "false".to_string()),
        ],
    );
    assert_exact(&json, &echo, &run_proxy, none);
}

#[test]
fn http_proxy_from_the_environment_and_no_proxy() {
    let dir = tempfile::tempdir().unwrap();
    // A name only the proxy resolves: the environment's proxy takes it.
    let echo = ws_echo(None);
    let p = proxy::start(Mode::Open);
    let url = format!("ws://chat.example.test:{}/chat", echo.addr.port());
    let json = run(
        &script(dir.path()),
        (2, 1, 0),
        &[],
        &[("WS_URL", url.clone()), ("HTTP_PROXY", p.url(None))],
    );
    assert_exact(&json, &echo, &p, all);

    // NO_PROXY sends it direct, to the address --resolve gives the name.
    let echo = ws_echo(None);
    let p = proxy::start(Mode::Open);
    let url = format!("ws://chat.example.test:{}/chat", echo.addr.port());
    let resolve = format!("chat.example.test:{}:127.0.0.1", echo.addr.port());
    let json = run(
        &script(dir.path()),
        (2, 1, 0),
        &["--resolve", &resolve],
        &[
            ("WS_URL", url),
            ("HTTP_PROXY", p.url(None)),
            ("NO_PROXY", "example.test".to_string()),
        ],
    );
    assert_exact(&json, &echo, &p, none);

    // And with --proxy too, NO_PROXY still lists what goes direct.
    let echo = ws_echo(None);
    let json = run(
        &script(dir.path()),
        (1, 1, 0),
        &["--proxy", &p.url(None)],
        &[
            ("WS_URL", format!("ws://{}/chat", echo.addr)),
            ("NO_PROXY", "127.0.0.1".to_string()),
        ],
    );
    assert_exact(&json, &echo, &p, none);
}

/// Every upgrade of the run failed, naming `wanted`; the user went on
/// (more than one attempt) and the echo server saw none.
fn assert_refused(json: &Value, echo: &Server, wanted: &str) -> u64 {
    let (n, failed) = entry(json, "WS", "chat");
    assert!(n >= 2 && failed == n, "{json}");
    let errs = errors(json);
    assert!(
        errs.iter().any(|e| e.contains(wanted)),
        "no {wanted:?} in {errs:?}"
    );
    assert!(exceptions(json).is_empty(), "{:?}", exceptions(json));
    assert_eq!(Counts::get(&echo.counts.upgrades), 0);
    n
}

#[test]
fn a_proxy_that_refuses_or_is_not_there_fails_the_upgrade_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let echo = ws_echo(None);
    let url = format!("ws://{}/chat", echo.addr);
    // Credentials wanted, none given: 407.
    let p = proxy::start(Mode::Auth("Basic dTpw".to_string()));
    let json = run(
        &script(dir.path()),
        (1, 1, 1),
        &["--proxy", &p.url(None)],
        &[("WS_URL", url.clone())],
    );
    let wanted = format!(
        "proxy {}: CONNECT {}: refused with 407 Proxy Authentication Required",
        p.url(None),
        echo.addr
    );
    let n = assert_refused(&json, &echo, &wanted);
    assert_eq!(p.counts.refused(), n);

    // A 403, from the connection's own proxy.
    let p = proxy::start(Mode::Refuse);
    let json = run(
        &script(dir.path()),
        (1, 1, 1),
        &["--proxy", "none"],
        &[("WS_URL", url.clone()), ("WS_PROXY", p.url(None))],
    );
    let wanted = format!(
        "proxy {}: CONNECT {}: refused with 403 Forbidden",
        p.url(None),
        echo.addr
    );
    let n = assert_refused(&json, &echo, &wanted);
    assert_eq!(p.counts.refused(), n);

    // Nobody listening where the proxy should be.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let json = run(
        &script(dir.path()),
        (1, 1, 1),
        &["--proxy", &dead_url],
        &[("WS_URL", url)],
    );
    assert_refused(&json, &echo, &format!("connect to proxy {dead_url}"));
}

#[test]
fn a_bad_proxy_option_is_an_exception_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let json = run(
        &script(dir.path()),
        (1, 1, 1),
        &[],
        &[
            ("WS_URL", "ws://127.0.0.1:1/chat".to_string()),
            ("WS_PROXY", "socks5://p.test:1080".to_string()),
        ],
    );
    let ex = exceptions(&json);
    let wanted =
        "self.ws:connect: proxy \"socks5://p.test:1080\": only http:// proxies are supported";
    assert!(
        ex.iter().any(|m| m.contains(wanted)),
        "no {wanted:?} in {ex:#?}"
    );
    assert!(ex.iter().all(|m| m.contains("ws_proxy.lua:8:")), "{ex:#?}");
}
