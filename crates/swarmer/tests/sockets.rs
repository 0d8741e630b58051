//! WebSocket and raw sockets end to end through the binary, against real
//! servers on loopback (`sockets_support`): what the servers counted
//! equals what swarmer counted, exactly; wss (through `--resolve`) and a
//! TLS socket verify a test CA given with `--ca-cert`; a refused upgrade
//! is a failure with its status; bad URLs and options are exceptions
//! naming the problem; and the Redis example against a real
//! `redis-server` (skipped with a reason when it is not installed, a
//! failure under CI=true).

mod common;
mod sockets_support;

use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use serde_json::Value;
use sockets_support::runs::{entry, errors, exceptions, run};
use sockets_support::{Counts, Redis, certificates, tls_line_echo, wait_for, ws_echo};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
}

/// Waits for the server to have seen what swarmer counted (its threads
/// may still be finishing the last close when swarmer exits).
fn assert_counts(json: &Value, counts: &Counts, name: &str) {
    let (upgrades, upgrade_failures) = entry(json, "WS", name);
    assert!(upgrades > 0, "no upgrade recorded: {json}");
    assert_eq!(upgrade_failures, 0, "{:?}", errors(json));
    let (sent, _) = entry(json, "COUNT", &format!("{name} sent"));
    let (received, _) = entry(json, "COUNT", &format!("{name} received"));
    let (sessions, _) = entry(json, "WS", &format!("{name} session"));
    let (pings, ping_failures) = entry(json, "WS", "ping");
    let seen = |n: &AtomicU64| Counts::get(n);
    let settled = wait_for(Duration::from_secs(10), || {
        seen(&counts.upgrades) == upgrades
            && seen(&counts.received) == sent
            && seen(&counts.sent) == received
            && seen(&counts.open) == 0
    });
    assert!(
        settled,
        "swarmer: {upgrades} upgrades, {sent} sent, {received} received; server: {} upgrades, {} received, {} sent, {} open",
        seen(&counts.upgrades),
        seen(&counts.received),
        seen(&counts.sent),
        seen(&counts.open)
    );
    assert_eq!(
        sessions, upgrades,
        "every session's duration is recorded once"
    );
    assert!(pings > 0 && ping_failures == 0, "{json}");
    // The example's three texts, one binary and one ping per session.
    assert_eq!(sent, 5 * upgrades, "{json}");
    assert!(exceptions(json).is_empty(), "{:?}", exceptions(json));
}

#[test]
fn websocket_counts_equal_the_echo_servers() {
    let server = ws_echo(None);
    let url = format!("ws://{}/chat", server.addr);
    let json = run(
        &example("websocket.lua"),
        (3, 2, 0),
        &[],
        &[("WS_URL", url)],
    );
    assert_counts(&json, &server.counts, "chat");
}

#[test]
fn websocket_counts_stay_exact_on_two_cores() {
    let server = ws_echo(None);
    let url = format!("ws://{}/chat", server.addr);
    let json = run(
        &example("websocket.lua"),
        (4, 2, 0),
        &["--cores", "2"],
        &[("WS_URL", url)],
    );
    assert_counts(&json, &server.counts, "chat");
}

#[test]
fn wss_verifies_the_server_with_the_ca_given() {
    // A name no DNS knows, aimed at loopback by --resolve: TLS still
    // verifies (and sends) the URL's name.
    let (ca, config) = certificates("chat.example.test");
    let server = ws_echo(Some(config));
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let port = server.addr.port();
    let url = format!("wss://chat.example.test:{port}/chat");
    let resolve = format!("chat.example.test:{port}:127.0.0.1");
    let ca_arg = ca_file.to_str().unwrap();
    let json = run(
        &example("websocket.lua"),
        (2, 2, 0),
        &["--ca-cert", ca_arg, "--resolve", &resolve],
        &[("WS_URL", url.clone())],
    );
    assert_counts(&json, &server.counts, "chat");
    // Without the CA the handshake fails, as a failure of the upgrade.
    let json = run(
        &example("websocket.lua"),
        (1, 1, 1),
        &["--resolve", &resolve],
        &[("WS_URL", url)],
    );
    let (n, failed) = entry(&json, "WS", "chat");
    assert!(n > 0 && failed == n, "{json}");
    assert!(
        errors(&json).iter().any(|e| e.contains("certificate")),
        "{:?}",
        errors(&json)
    );
}

#[test]
fn a_refused_upgrade_is_a_failure_with_its_status() {
    let server = ws_echo(None);
    let url = format!("ws://{}/refuse", server.addr);
    let json = run(
        &example("websocket.lua"),
        (1, 1, 1),
        &[],
        &[("WS_URL", url)],
    );
    let (n, failed) = entry(&json, "WS", "chat");
    assert!(n > 0 && failed == n, "{json}");
    assert_eq!(Counts::get(&server.counts.refused), n);
    let errs = errors(&json);
    assert!(
        errs.iter()
            .any(|e| e.contains("upgrade refused: HTTP 404 Not Found")),
        "{errs:?}"
    );
    assert!(exceptions(&json).is_empty(), "{:?}", exceptions(&json));
}

/// Each task makes one mistake; each is an exception that names it, and
/// the user goes on to the next.
const BAD_INPUT: &str = r#"
local U = swarmer.user { name = "U", wait = swarmer.constant(0.05), sequential = true }
U:task(function(self) self.ws:connect("http://127.0.0.1:1/") end)
U:task(function(self) self.ws:connect("ws://127.0.0.1:1/", { timout = 1 }) end)
U:task(function(self) self.ws:connect("ws://127.0.0.1:1/", { subprotocols = "chat" }) end)
U:task(function(self) swarmer.tcp.connect("127.0.0.1", 70000) end)
U:task(function(self) swarmer.tcp.connect("127.0.0.1", CLOSED, { timeout = 2 }) end)
U:task(function(self)
  local s = swarmer.tcp.connect("127.0.0.1", OPEN, { tls = "yes" })
end)
"#;

#[test]
fn bad_urls_and_options_are_exceptions_naming_them() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("bad.lua");
    let code = BAD_INPUT
        .replace("CLOSED", &closed_port.to_string())
        .replace("OPEN", "1");
    std::fs::write(&script, code).unwrap();
    let json = run(&script, (1, 2, 1), &[], &[]);
    let ex = exceptions(&json);
    for wanted in [
        "bad.lua:3: self.ws:connect http://127.0.0.1:1/: the scheme must be ws:// or wss://, got http://",
        "bad.lua:4: self.ws:connect: unknown option \"timout\"",
        "bad.lua:5: self.ws:connect: subprotocols must be a list of strings",
        "bad.lua:6: swarmer.tcp.connect: the port must be a number from 1 to 65535, got 70000",
        &format!("bad.lua:7: swarmer.tcp.connect: connect to 127.0.0.1:{closed_port}"),
        "bad.lua:9: swarmer.tcp.connect: tls must be true or false, got a string",
    ] {
        assert!(
            ex.iter().any(|m| m.contains(wanted)),
            "no {wanted:?} in {ex:#?}"
        );
    }
}

const TLS_SOCKET: &str = r#"
local U = swarmer.user { name = "U", wait = swarmer.constant(0.01) }
U:task(function(self)
  local started = swarmer.now_ms()
  local s = swarmer.tcp.connect("localhost", PORT, { tls = true, timeout = 5 })
  s:send("hello\r\n")
  local line = s:receive("*l")
  s:send("again\r\n")
  local rest = s:receive({ delimiter = "\r\n" })
  swarmer.record {
    type = "TLS", name = "echo", duration_ms = swarmer.now_ms() - started,
    success = line == "echo: hello" and rest == "echo: again",
    error = "got " .. tostring(line) .. " / " .. tostring(rest),
  }
  s:send("quit\r\n")
  -- The server closes after quit: reading on is an error naming it.
  s:receive("*l")
end)
"#;

#[test]
fn a_tls_socket_talks_and_a_read_after_the_close_is_an_exception() {
    let (ca, config) = certificates("localhost");
    let server = tls_line_echo(config);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let script = dir.path().join("tls.lua");
    std::fs::write(
        &script,
        TLS_SOCKET.replace("PORT", &server.addr.port().to_string()),
    )
    .unwrap();
    let json = run(
        &script,
        (2, 2, 1),
        &["--ca-cert", ca_file.to_str().unwrap()],
        &[],
    );
    let (n, failed) = entry(&json, "TLS", "echo");
    assert!(n > 0, "{json}");
    assert_eq!(failed, 0, "{:?}", errors(&json));
    // Each recorded exchange is 3 lines to the server (hello, again, quit).
    assert!(
        wait_for(Duration::from_secs(10), || Counts::get(
            &server.counts.received
        ) == 3 * n),
        "server got {} lines for {n} exchanges",
        Counts::get(&server.counts.received)
    );
    let ex = &json["exceptions"][0];
    assert!(
        ex["msg"]
            .as_str()
            .unwrap()
            .contains("tls.lua:17: socket:receive on localhost:"),
        "{ex}"
    );
    assert!(
        ex["msg"].as_str().unwrap().contains("closed by the peer"),
        "{ex}"
    );
    assert_eq!(ex["count"].as_u64(), Some(n), "{json}");
}

#[test]
fn the_redis_example_counts_what_redis_counted() {
    let dir = tempfile::tempdir().unwrap();
    let Some(redis) = Redis::start(dir.path()) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "redis-server is not installed; CI must run this test (.ci/run installs it)"
        );
        eprintln!("skipped: redis-server is not installed (apt-get install redis-server)");
        return;
    };
    let json = run(
        &example("redis.lua"),
        (4, 2, 0),
        &["--cores", "2"],
        &[("REDIS_PORT", redis.port.to_string())],
    );
    assert!(exceptions(&json).is_empty(), "{:?}", exceptions(&json));
    let (set, set_failed) = entry(&json, "REDIS", "SET");
    let (get, _) = entry(&json, "REDIS", "GET");
    let (incr, _) = entry(&json, "REDIS", "INCR");
    assert!(set > 0 && set_failed == 0, "{json}");
    assert_eq!(redis.command("GET swarmer:incr").unwrap(), incr.to_string());
    let stats = redis.info_commandstats();
    // The test's own GET counts too.
    for (cmd, n) in [("set", set), ("get", get + 1), ("incr", incr)] {
        let calls = format!("cmdstat_{cmd}:calls={n},");
        assert!(stats.contains(&calls), "no {calls:?} in {stats}");
    }
}
