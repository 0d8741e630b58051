//! The HTTP client against servers that send exactly the bytes a test
//! gives them: keep-alive reuse, servers that close connections (idle,
//! after each response, with or without saying so), HTTP/1.0 peers,
//! responses without bodies, chunked bodies, header access, and broken
//! responses, which must become clear failures and never a panic.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use script::RuntimeConfig;

const MAX: Duration = Duration::from_secs(10);

/// One request as the raw server saw it.
#[allow(dead_code)]
struct Seen {
    method: String,
    target: String,
    head: String,
    body: Vec<u8>,
    /// Index of the connection (from 0) and of the request on it.
    conn: usize,
    nth: usize,
}

/// What the raw server does after reading a request.
enum Then {
    /// Write these bytes and wait for the next request.
    Reply(Vec<u8>),
    /// Write these bytes and close the connection.
    ReplyClose(Vec<u8>),
    /// Write these bytes, then close after this long.
    ReplyCloseAfter(Vec<u8>, Duration),
}

/// A server on 127.0.0.1:0 that answers each request with what `handler`
/// says. Returns its address and a count of accepted connections.
fn raw_server(
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

fn serve_raw(mut stream: TcpStream, conn: usize, handler: &dyn Fn(&Seen) -> Then) {
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

fn read_request(
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

fn ok(body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// A script whose user runs `body` once (with `HOST` as the server's URL),
/// then idles.
fn once(body: &str, addr: SocketAddr) -> String {
    with_host(
        &format!(
            r#"
local U = swarmer.user {{ name = "U", host = HOST }}
U:task(function(self)
  if self.done then swarmer.sleep(1000) return end
  self.done = true
{body}
end)
"#
        ),
        addr,
    )
}

fn run_once(body: &str, addr: SocketAddr, requests: u64) -> stats::RequestStats {
    let stats = run_users(
        &once(body, addr),
        RuntimeConfig::default(),
        &[("U", 1)],
        |s| s.num_requests() >= requests || s.exceptions().next().is_some(),
        MAX,
    );
    assert!(exceptions(&stats).is_empty(), "{:?}", exceptions(&stats));
    stats
}

fn errors(stats: &stats::RequestStats) -> Vec<String> {
    stats.errors().keys().map(|k| k.error.clone()).collect()
}

#[test]
fn keep_alive_connections_are_reused() {
    let (addr, conns) = raw_server(|_| Then::Reply(ok("hi")));
    let stats = run_once(
        r#"
  for i = 1, 20 do
    local r = self.http:get("/x")
    assert(r.status == 200 and r.body == "hi", r.error)
  end
  self.http:post("/x", { body = "abc" })
"#,
        addr,
        21,
    );
    assert_eq!(count(&stats, "GET", "/x"), (20, 0));
    assert_eq!(count(&stats, "POST", "/x"), (1, 0));
    assert_eq!(conns.load(Ordering::SeqCst), 1);
}

#[test]
fn requests_arrive_as_written() {
    let (addr, _) = raw_server(|seen| {
        let body = format!(
            "{}|{}|{}|{}",
            seen.method,
            seen.target,
            seen.head
                .to_ascii_lowercase()
                .contains("content-length: 3\r\n"),
            String::from_utf8_lossy(&seen.body)
        );
        Then::Reply(ok(&body))
    });
    run_once(
        r#"
  local r = self.http:post("/p?q=1", { body = "abc" })
  assert(r.body == "POST|/p?q=1|true|abc", r.body)
  r = self.http:get("/g")
  assert(r.body == "GET|/g|false|", r.body)
"#,
        addr,
        2,
    );
}

#[test]
fn a_server_that_closes_idle_connections() {
    // Like a keep-alive timeout: each connection is closed 20 ms after its
    // response, without a word; the user comes back 200 ms later. GETs are
    // sent again on a fresh connection, POSTs find the close before they
    // are sent; none of them fails.
    let (addr, conns) = raw_server(|_| Then::ReplyCloseAfter(ok("ok"), Duration::from_millis(20)));
    let stats = run_once(
        r#"
  for i = 1, 5 do
    local r = self.http:get("/g")
    assert(r.status == 200, r.error)
    swarmer.sleep(0.2)
    r = self.http:post("/p", { body = "x" })
    assert(r.status == 200, r.error)
    swarmer.sleep(0.2)
  end
"#,
        addr,
        10,
    );
    assert_eq!(count(&stats, "GET", "/g"), (5, 0), "{:?}", errors(&stats));
    assert_eq!(count(&stats, "POST", "/p"), (5, 0), "{:?}", errors(&stats));
    assert_eq!(conns.load(Ordering::SeqCst), 10);
}

#[test]
fn a_server_that_closes_right_after_each_response() {
    // Keep-alive by the headers, closed at once in fact: the next request
    // finds the connection closed (idempotent ones are sent again).
    let (addr, _) = raw_server(|_| Then::ReplyClose(ok("ok")));
    let stats = run_once(
        r#"
  for i = 1, 10 do
    local r = self.http:get("/g")
    assert(r.status == 200, r.error)
    r = self.http:put("/p", { body = "x" })
    assert(r.status == 200, r.error)
  end
"#,
        addr,
        20,
    );
    assert_eq!(count(&stats, "GET", "/g"), (10, 0), "{:?}", errors(&stats));
    assert_eq!(count(&stats, "PUT", "/p"), (10, 0), "{:?}", errors(&stats));
}

#[test]
fn connection_close_and_http10_peers() {
    let (addr, conns) = raw_server(|seen| match seen.target.as_str() {
        "/close" => Then::Reply(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok".to_vec(),
        ),
        // No length: the body is all until the close.
        "/old" => Then::ReplyClose(
            b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nold body".to_vec(),
        ),
        "/old-ka" => Then::Reply(
            b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nka".to_vec(),
        ),
        _ => Then::Reply(ok("")),
    });
    run_once(
        r#"
  for i = 1, 3 do
    local r = self.http:get("/close")
    assert(r.body == "ok", r.error)
  end
  local r = self.http:get("/old")
  assert(r.status == 200 and r.body == "old body", r.error)
  r = self.http:get("/old-ka")
  assert(r.body == "ka", r.error)
  r = self.http:get("/old-ka")
  assert(r.body == "ka", r.error)
"#,
        addr,
        6,
    );
    // One per /close, one for /old, one shared by both /old-ka.
    assert_eq!(conns.load(Ordering::SeqCst), 5);
}

#[test]
fn responses_without_a_body_keep_the_connection() {
    let (addr, conns) = raw_server(|seen| match seen.target.as_str() {
        "/head" => Then::Reply(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n".to_vec()),
        "/204" => Then::Reply(b"HTTP/1.1 204 No Content\r\n\r\n".to_vec()),
        "/304" => Then::Reply(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n".to_vec()),
        "/continue" => Then::Reply(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nmore"
                .to_vec(),
        ),
        _ => Then::Reply(ok("after")),
    });
    run_once(
        r#"
  local r = self.http:head("/head")
  assert(r.status == 200 and r.body == "" and r:header("content-length") == "1000")
  r = self.http:get("/204")
  assert(r.status == 204 and r.body == "")
  r = self.http:get("/304")
  assert(r.status == 304 and r.body == "")
  r = self.http:post("/continue", { body = "x" })
  assert(r.status == 200 and r.body == "more")
  r = self.http:get("/")
  assert(r.body == "after")
"#,
        addr,
        5,
    );
    assert_eq!(conns.load(Ordering::SeqCst), 1);
}

#[test]
fn chunked_bodies_and_headers() {
    let (addr, _) = raw_server(|_| {
        Then::Reply(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Rep: a\r\nx-rep: b\r\nSet-Cookie: s=1; Path=/\r\nSet-Cookie: t=2; Path=/\r\nContent-Type: text/plain\r\n\r\n4\r\nchun\r\n3;x=y\r\nked\r\n0\r\nX-Trailer: z\r\n\r\n"
                .to_vec(),
        )
    });
    run_once(
        r#"
  local r = self.http:get("/")
  assert(r.body == "chunked", r.body)
  local h = r.headers
  assert(h["x-rep"] == "a, b", h["x-rep"])
  assert(h["set-cookie"] == "s=1; Path=/\nt=2; Path=/", h["set-cookie"])
  assert(h["content-type"] == "text/plain")
  assert(r:header("X-REP") == "a" and r:header("nope") == nil)
  r = self.http:get("/again")
  assert(r.body == "chunked")
"#,
        addr,
        2,
    );
}

#[test]
fn broken_responses_are_failures_with_clear_errors() {
    let (addr, _) = raw_server(|seen| match seen.target.as_str() {
        "/big-head" => {
            let mut b = b"HTTP/1.1 200 OK\r\nX-Big: ".to_vec();
            b.resize(300 * 1024, b'a');
            b.extend_from_slice(b"\r\n\r\n");
            Then::ReplyClose(b)
        }
        "/junk" => Then::ReplyClose(b"SSH-2.0-OpenSSH_9.2\r\n\r\n".to_vec()),
        "/short" => Then::ReplyClose(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc".to_vec()),
        "/bad-length" => Then::ReplyClose(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n".to_vec()),
        "/bad-chunk" => Then::ReplyClose(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
        ),
        "/nothing" => Then::ReplyClose(Vec::new()),
        _ => Then::Reply(ok("fine")),
    });
    let stats = run_once(
        r#"
  for _, p in ipairs({ "/big-head", "/junk", "/short", "/bad-length", "/bad-chunk", "/nothing" }) do
    local r = self.http:get(p)
    assert(r.status == 0 and r.error and not r.ok, p)
  end
  assert(self.http:get("/").body == "fine")
"#,
        addr,
        7,
    );
    let error = |path: &str| {
        stats
            .errors()
            .iter()
            .find(|(k, _)| k.name == path)
            .map(|(k, _)| k.error.clone())
            .unwrap_or_default()
    };
    assert_eq!(error("/big-head"), "response head larger than 256 KiB");
    assert_eq!(
        error("/junk"),
        "invalid HTTP response: invalid HTTP version"
    );
    assert_eq!(
        error("/short"),
        "connection closed before the response was complete"
    );
    assert_eq!(
        error("/bad-length"),
        "invalid Content-Length in the response"
    );
    assert_eq!(
        error("/bad-chunk"),
        "invalid chunked response body: invalid chunk size"
    );
    assert_eq!(
        error("/nothing"),
        "connection closed before the response was complete"
    );
    assert_eq!(count(&stats, "GET", "/"), (1, 0));
}

#[test]
fn a_silent_server_times_out_and_the_next_request_goes_on() {
    // The first request never gets an answer; the second, on a fresh
    // connection, does.
    let (addr, conns) = raw_server(|seen| {
        if seen.target == "/hang" {
            Then::ReplyCloseAfter(Vec::new(), Duration::from_secs(3))
        } else {
            Then::Reply(ok("ok"))
        }
    });
    let stats = run_once(
        r#"
  local r = self.http:get("/hang", { timeout = 0.2 })
  assert(r.status == 0 and r.error == "timeout after 0.2s", r.error)
  r = self.http:get("/")
  assert(r.body == "ok", r.error)
  r = self.http:get("/", { timeout = 0.1 })
  assert(r.body == "ok", r.error)
"#,
        addr,
        3,
    );
    assert_eq!(count(&stats, "GET", "/hang"), (1, 1));
    assert_eq!(conns.load(Ordering::SeqCst), 2);
}
