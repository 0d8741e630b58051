//! The HTTP client against servers that send exactly the bytes a test
//! gives them, one session sending requests in turn as a user would: keep-alive reuse, servers that close connections (idle,
//! after each response, with or without saying so), HTTP/1.0 peers,
//! responses without bodies, chunked bodies, header access, and broken
//! responses, which must become clear failures and never a panic.

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use http::Method;

use common::*;

#[test]
fn keep_alive_connections_are_reused() {
    let (addr, conns) = raw_server(|_| Then::Reply(ok("hi")));
    let user = User::new(addr);
    for _ in 0..20 {
        let r = user.get("/x");
        assert_eq!((r.message.status, ok_body(&r).as_str()), (200, "hi"));
    }
    assert_eq!(ok_body(&user.post("/x", "abc")), "hi");
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
    let user = User::new(addr);
    assert_eq!(ok_body(&user.post("/p?q=1", "abc")), "POST|/p?q=1|true|abc");
    assert_eq!(ok_body(&user.get("/g")), "GET|/g|false|");
}

#[test]
fn a_server_that_closes_idle_connections() {
    // Like a keep-alive timeout: each connection is closed 20 ms after its
    // response, without a word; the user comes back 200 ms later. GETs are
    // sent again on a fresh connection, POSTs find the close before they
    // are sent; none of them fails.
    let (addr, conns) = raw_server(|_| Then::ReplyCloseAfter(ok("ok"), Duration::from_millis(20)));
    let user = User::new(addr);
    for _ in 0..5 {
        assert_eq!(ok_body(&user.get("/g")), "ok");
        user.idle(Duration::from_millis(200));
        assert_eq!(ok_body(&user.post("/p", "x")), "ok");
        user.idle(Duration::from_millis(200));
    }
    assert_eq!(conns.load(Ordering::SeqCst), 10);
}

#[test]
fn a_server_that_closes_right_after_each_response() {
    // Keep-alive by the headers, closed at once in fact: the next request
    // finds the connection closed (idempotent ones are sent again).
    let (addr, _) = raw_server(|_| Then::ReplyClose(ok("ok")));
    let user = User::new(addr);
    for _ in 0..10 {
        assert_eq!(ok_body(&user.get("/g")), "ok");
        assert_eq!(ok_body(&user.send(Method::PUT, "/p", "x", MAX)), "ok");
    }
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
    let user = User::new(addr);
    for _ in 0..3 {
        assert_eq!(ok_body(&user.get("/close")), "ok");
    }
    let r = user.get("/old");
    assert_eq!((r.message.status, ok_body(&r).as_str()), (200, "old body"));
    assert_eq!(ok_body(&user.get("/old-ka")), "ka");
    assert_eq!(ok_body(&user.get("/old-ka")), "ka");
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
    let user = User::new(addr);
    let r = user.send(Method::HEAD, "/head", "", MAX);
    assert_eq!((r.message.status, ok_body(&r).as_str()), (200, ""));
    assert_eq!(header(&r, "content-length").as_deref(), Some("1000"));
    let r = user.get("/204");
    assert_eq!((r.message.status, ok_body(&r).as_str()), (204, ""));
    let r = user.get("/304");
    assert_eq!((r.message.status, ok_body(&r).as_str()), (304, ""));
    let r = user.post("/continue", "x");
    assert_eq!((r.message.status, ok_body(&r).as_str()), (200, "more"));
    assert_eq!(ok_body(&user.get("/")), "after");
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
    let user = User::new(addr);
    let r = user.get("/");
    assert_eq!(ok_body(&r), "chunked");
    let reps: Vec<&[u8]> = r.message.headers().all("x-rep").collect();
    assert_eq!(reps, [b"a", b"b"]);
    let cookies: Vec<&[u8]> = r.message.headers().all("set-cookie").collect();
    assert_eq!(cookies, [&b"s=1; Path=/"[..], b"t=2; Path=/"]);
    assert_eq!(header(&r, "content-type").as_deref(), Some("text/plain"));
    assert_eq!(header(&r, "X-REP").as_deref(), Some("a"));
    assert_eq!(header(&r, "nope"), None);
    assert_eq!(ok_body(&user.get("/again")), "chunked");
}

#[test]
fn cookies_set_by_the_server_are_sent_back() {
    let (addr, _) = raw_server(|seen| match seen.target.as_str() {
        "/login" => Then::Reply(
            b"HTTP/1.1 200 OK\r\nSet-Cookie: sid=42; Path=/\r\nContent-Length: 0\r\n\r\n".to_vec(),
        ),
        _ => {
            let cookie = seen
                .head
                .lines()
                .find_map(|l| l.strip_prefix("cookie: "))
                .unwrap_or("none")
                .to_string();
            Then::Reply(ok(&cookie))
        }
    });
    let user = User::new(addr);
    assert_eq!(ok_body(&user.get("/me")), "none");
    ok_body(&user.get("/login"));
    assert_eq!(ok_body(&user.get("/me")), "sid=42");
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
    let user = User::new(addr);
    let cases = [
        ("/big-head", "response head larger than 256 KiB"),
        ("/junk", "invalid HTTP response: invalid HTTP version"),
        (
            "/short",
            "connection closed before the response was complete",
        ),
        ("/bad-length", "invalid Content-Length in the response"),
        (
            "/bad-chunk",
            "invalid chunked response body: invalid chunk size",
        ),
        (
            "/nothing",
            "connection closed before the response was complete",
        ),
    ];
    for (path, error) in cases {
        let r = user.get(path);
        assert_eq!(r.message.status, 0, "{path}");
        assert_eq!(r.error.map(|e| e.to_string()).as_deref(), Some(error));
    }
    assert_eq!(ok_body(&user.get("/")), "fine");
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
    let user = User::new(addr);
    let r = user.send(Method::GET, "/hang", "", Duration::from_millis(200));
    assert_eq!(r.message.status, 0);
    assert_eq!(
        r.error.map(|e| e.to_string()).as_deref(),
        Some("timeout after 0.2s")
    );
    assert_eq!(ok_body(&user.get("/")), "ok");
    let r = user.send(Method::GET, "/", "", Duration::from_millis(100));
    assert_eq!(ok_body(&r), "ok");
    assert_eq!(conns.load(Ordering::SeqCst), 2);
}

#[test]
fn redirects_are_followed_up_to_the_limit() {
    let (addr, _) = raw_server(|seen| match seen.target.as_str() {
        "/loop" => Then::Reply(
            b"HTTP/1.1 302 Found\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n".to_vec(),
        ),
        "/moved" => Then::Reply(
            b"HTTP/1.1 301 Moved\r\nLocation: /here\r\nContent-Length: 0\r\n\r\n".to_vec(),
        ),
        _ => Then::Reply(ok(&seen.target)),
    });
    let user = User::new(addr);
    assert_eq!(ok_body(&user.get("/moved")), "/here");
    let r = user.get("/loop");
    assert_eq!(r.message.status, 302);
    assert_eq!(
        r.error.map(|e| e.to_string()).as_deref(),
        Some("too many redirects (more than 10)")
    );
}

#[test]
fn codings_in_repeated_fields_are_undone_in_order() {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(b"inner").unwrap();
    let gz = e.finish().unwrap();
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&gz).unwrap();
    let both = e.finish().unwrap();
    let (addr, _) = raw_server(move |_| {
        let mut out = format!(
            "HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Encoding: deflate\r\nContent-Length: {}\r\n\r\n",
            both.len()
        )
        .into_bytes();
        out.extend_from_slice(&both);
        Then::Reply(out)
    });
    let r = User::new(addr).get("/");
    assert_eq!(ok_body(&r), "inner");
    assert!(r.wire_body_len > 0 && r.wire_body_len != 5);
}
